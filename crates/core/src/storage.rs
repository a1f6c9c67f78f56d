//! Faults of the machine rather than of the request, told as such: a full disk becomes
//! [`CoreError::InsufficientStorage`] naming the data dir and its free space (so the user knows
//! what to clean up), a database locked by another process past the busy timeout becomes
//! [`CoreError::Busy`] (worth retrying). Everything else maps as before.

use std::path::Path;

use opslens_store::StoreError;

use crate::CoreError;

/// Maps a store failure, naming `data_dir` when its disk is full.
pub(crate) fn store_error(e: StoreError, data_dir: &Path) -> CoreError {
    if e.is_disk_full() {
        tracing::warn!(error = %e, dir = %data_dir.display(), "disk full");
        return CoreError::InsufficientStorage(disk_full_message(data_dir));
    }
    if let StoreError::Io(io) = &e {
        if io.to_string().starts_with("object store:") {
            // The bucket failed or refused: nothing was stored; say which and why (502).
            tracing::warn!(error = %io, "object store failed");
            return CoreError::Upstream(io.to_string());
        }
    }
    if e.is_busy() {
        tracing::warn!(error = %e, "database busy past the timeout");
        return CoreError::Busy(
            "the database is locked by another process (a backup, a second OpsLens, an sqlite3 \
             shell); retry in a moment"
                .into(),
        );
    }
    e.into()
}

/// What a full disk answer says: where, and how much is left.
pub fn disk_full_message(data_dir: &Path) -> String {
    let free = match free_bytes(data_dir) {
        Some(b) => format!("{} free", human_bytes(b)),
        None => "free space unknown".into(),
    };
    format!(
        "the disk holding the OpsLens data dir {} is full ({free}); nothing was stored: free \
         some space and retry",
        data_dir.display()
    )
}

/// Bytes an unprivileged process can still write on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Bytes the file system holding `dir` has in all, to put the free figure in proportion.
pub fn total_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(s.f_blocks.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Free space under which the status route and the UI warn, unless `OPSLENS_LOW_DISK_MB` says
/// otherwise: 1 GiB is a few thousand screenshots, enough time to clean up before writes fail.
pub const DEFAULT_LOW_DISK_BYTES: u64 = 1 << 30;

/// The warning threshold this process uses: `OPSLENS_LOW_DISK_MB` (MiB) or the default. A value
/// that does not parse is reported once in the log and ignored rather than failing the start.
pub fn low_disk_threshold_from_env() -> u64 {
    match std::env::var("OPSLENS_LOW_DISK_MB") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(mb) => mb.saturating_mul(1 << 20),
            Err(_) => {
                tracing::warn!(value = %v, "OPSLENS_LOW_DISK_MB is not a whole number of MiB; using 1024");
                DEFAULT_LOW_DISK_BYTES
            }
        },
        Err(_) => DEFAULT_LOW_DISK_BYTES,
    }
}

/// What the status route says about the disk before it fills: the free space, and a sentence
/// for the user when it is under `threshold` (None while all is well or when it cannot be read).
pub fn low_disk_warning(data_dir: &Path, free: Option<u64>, threshold: u64) -> Option<String> {
    let free = free?;
    (free < threshold).then(|| {
        format!(
            "the disk holding the OpsLens data dir {} has only {} free (warning under {}); new \
             evidence will be refused with 507 when it fills: free some space",
            data_dir.display(),
            human_bytes(free),
            human_bytes(threshold)
        )
    })
}

/// `b` the way people write sizes: "512 bytes", "1.5 MiB".
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn full_disk_and_busy_database_get_their_own_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = store_error(sqlite(rusqlite::ffi::SQLITE_FULL), dir.path());
        let CoreError::InsufficientStorage(m) = e else {
            panic!("{e:?}")
        };
        assert!(m.contains(&dir.path().display().to_string()), "{m}");
        #[cfg(unix)]
        assert!(m.contains(" free)"), "{m}");
        #[cfg(unix)]
        {
            let e = store_error(
                StoreError::Io(std::io::Error::from_raw_os_error(28)),
                dir.path(),
            );
            assert!(matches!(e, CoreError::InsufficientStorage(_)), "{e:?}");
        }
        let e = store_error(sqlite(rusqlite::ffi::SQLITE_BUSY), dir.path());
        assert!(matches!(e, CoreError::Busy(_)), "{e:?}");
        let e = store_error(sqlite(rusqlite::ffi::SQLITE_CORRUPT), dir.path());
        assert!(matches!(e, CoreError::Internal { .. }), "{e:?}");
        let e = store_error(
            StoreError::NotFound {
                what: "incident",
                id: 7,
            },
            dir.path(),
        );
        assert!(matches!(e, CoreError::NotFound(_)), "{e:?}");
    }

    #[test]
    fn low_disk_warning_names_dir_free_space_and_threshold() {
        let dir = Path::new("/data/opslens");
        assert_eq!(low_disk_warning(dir, Some(2 << 30), 1 << 30), None);
        assert_eq!(low_disk_warning(dir, None, u64::MAX), None);
        let w = low_disk_warning(dir, Some(300 << 20), 1 << 30).unwrap();
        assert!(w.contains("/data/opslens"), "{w}");
        assert!(w.contains("300.0 MiB free"), "{w}");
        assert!(w.contains("warning under 1.0 GiB"), "{w}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
