//! The C allocator's settings while a model is loaded.
//!
//! glibc serves each allocation above its mmap threshold (32 MiB at most) with a fresh `mmap`
//! and unmaps it when freed, and gives the heap's free top back to the system past a small trim
//! threshold. The vision tower's and the prefill's activations and per-layer packed copies are
//! tens of MiB each and short-lived, so every layer faulted in new zeroed pages: on a 2-vCPU
//! EPYC VM, `perf` put ~12 % of the time to first token in the kernel's page faults
//! (`clear_page_erms` alone 9 %). With `mmap` off and the trim threshold raised, freed buffers
//! are reused from the heap. The same settings through `GLIBC_TUNABLES`, alternated, took
//! `llama_peer bench` from 26.9 / 26.4 s to 24.3 / 23.2 s to the first token, peak RSS the
//! same (1,964-1,997 against 1,995-2,011 MiB). What the heap keeps is given back between
//! analyses ([`give_back`]), so an idle app does not hold it.
//!
//! Only on Linux with glibc; elsewhere both are no-ops.

/// Lets freed model buffers be reused instead of unmapped and faulted in again. Called when a
/// model loads, so a process without one keeps glibc's defaults; once per process.
pub fn tune() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(imp::tune);
}

/// Returns the heap's free memory to the system: after an analysis, when none waits.
pub fn give_back() {
    imp::give_back();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod imp {
    pub(super) fn tune() {
        // SAFETY: mallopt only changes glibc's malloc parameters, under its own lock, from any
        // thread. A refusal (0) leaves that parameter at glibc's default: slower, not wrong.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }

    pub(super) fn give_back() {
        // SAFETY: malloc_trim walks glibc's arenas under their locks; no pointer is passed.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn tune() {}
    pub(super) fn give_back() {}
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Minor page faults of this thread so far.
    #[allow(unsafe_code)]
    fn minor_faults() -> i64 {
        // SAFETY: getrusage writes into the zeroed struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
        u.ru_minflt
    }

    /// A buffer above glibc's largest mmap threshold (32 MiB), as the vision tower's, freed
    /// and allocated again: after `tune` it comes back from the heap, its pages already
    /// there, instead of as a new mapping whose every page faults in zeroed.
    #[test]
    fn a_freed_large_buffer_is_reused_without_faulting_its_pages_in_again() {
        super::tune();
        const BYTES: usize = 40 << 20;
        let pages = (BYTES / 4096) as i64;
        let touch = || {
            let mut v = Vec::<u8>::with_capacity(BYTES);
            v.resize(BYTES, 1);
            std::hint::black_box(&v);
        };
        touch();
        let before = minor_faults();
        for _ in 0..4 {
            touch();
        }
        let faults = minor_faults() - before;
        // Unmapped and mapped again each time, that is `pages` faults per buffer.
        assert!(
            faults < pages / 2,
            "{faults} page faults for 4 buffers of {pages} pages"
        );
    }
}
