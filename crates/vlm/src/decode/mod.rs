//! The single-token (decode) step on the CPU, on plain slices instead of candle tensors.
//!
//! A profile of a decode step at Qwen3-VL-2B shapes on the 2-vCPU AVX2 machine (issue 14)
//! showed ~55% of the CPU time in candle's thread-pool barriers (its repacked Q4K kernels run
//! one barrier-synchronised region per matmul, and spin while waiting), ~26% in the kernels
//! themselves, which read candle's repacked tiles (f32 scales: 3,072 bytes per 16 x 256
//! weights against the ggml blocks' 2,304), and the rest in per-op tensors and the per-step
//! concatenation of the KV cache. This module is the replacement for one token:
//!
//! - matrix-vector products straight from the ggml blocks (Q4K, Q6K, Q8_0) or f32 rows, with
//!   hand-written AVX2 + FMA + F16C kernels (chosen at run time; scalar fallbacks elsewhere),
//!   the input quantized once per product into buffers kept between steps, rows split over
//!   the rayon pool in a single region, and the result written or added in place;
//! - RMSNorm, per-head q/k norm + RoPE, SiLU x up and the residual adds as loops over the
//!   few thousand floats of one token, fused into the producers and consumers around them;
//! - single-query attention over the cache rows in place, one task per key/value head so
//!   each head's keys and values are read once for all the query heads that share them.
//!
//! Numerics follow the tensor path: activations are quantized like candle's Q8K / Q8_0
//! (`-127 / max` scaling, rounding half away from zero), norms divide by
//! `sqrt(mean(x^2) + eps)` as candle's `rms_norm` does; only summation orders differ.

// The kernels read packed block bytes through SIMD loads and are compiled for AVX2 behind
// run-time detection; each unsafe block states why it is sound.
#![allow(unsafe_code)]

use rayon::prelude::*;

/// Values per k-quant superblock.
pub(crate) const QK_K: usize = 256;
/// Bytes of one Q4K block: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 nibble bytes.
pub(crate) const Q4K_BYTES: usize = 144;
/// Bytes of one Q6K block: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed
/// 8-bit scales (one per 16 values), f16 d.
pub(crate) const Q6K_BYTES: usize = 210;
/// Values per Q8_0 block.
const QK8_0: usize = 32;
/// Bytes of one Q8_0 block: f16 scale, 32 signed bytes.
const Q8_0_BYTES: usize = 34;

/// A `(n, k)` weight as the decode kernels read it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WeightRef<'a> {
    /// ggml Q4K blocks, `k / 256` per row.
    Q4K(&'a [u8]),
    /// ggml Q6K blocks, `k / 256` per row (the head and the more-bits layers of Q4K mode).
    Q6K(&'a [u8]),
    /// ggml Q8_0 blocks, `k / 32` per row.
    Q8_0(&'a [u8]),
    /// Dense f32 rows.
    F32(&'a [f32]),
}

/// The input vector of a product in the form the kernels want, in buffers that persist
/// between steps (no allocation per product once warm).
#[derive(Debug, Clone, Default)]
pub(crate) struct Acts {
    /// Q8K: one scale per 256 values (the value is `d * q`).
    k_d: Vec<f32>,
    /// Q8K / Q8_0 quantized values.
    qs: Vec<i8>,
    /// Q8K: sums of each 16 quantized values (for the Q4K minimums).
    bsums: Vec<i16>,
    /// Q8_0: one scale per 32 values.
    b_d: Vec<f32>,
}

impl Acts {
    /// Quantizes `x` to Q8K blocks (as ggml's `quantize_row_q8_K` / candle's `BlockQ8K`).
    pub(crate) fn quantize_q8k(&mut self, x: &[f32]) {
        let nb = x.len() / QK_K;
        self.k_d.resize(nb, 0.0);
        self.qs.resize(nb * QK_K, 0);
        self.bsums.resize(nb * QK_K / 16, 0);
        quantize_q8k_into(x, &mut self.k_d, &mut self.qs, &mut self.bsums);
    }

    /// Quantizes `x` to 32-value blocks with an f32 scale (candle's Q8_0 activations keep an
    /// f16 scale; f32 only removes that rounding).
    pub(crate) fn quantize_q8_0(&mut self, x: &[f32]) {
        let nb = x.len() / QK8_0;
        self.b_d.resize(nb, 0.0);
        self.qs.resize(nb * QK8_0, 0);
        for (b, xs) in x.chunks_exact(QK8_0).enumerate() {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            quantize_scaled(xs, id, &mut self.qs[b * QK8_0..(b + 1) * QK8_0]);
            self.b_d[b] = d;
        }
    }
}

/// Quantizes `x` (a multiple of 256 values) to Q8K blocks into `d` (one scale per block),
/// `qs` (the values) and `bsums` (sums of each 16): shared by the decode step's single row
/// and the prefill's many rows ([`crate::quant::tiles`]). Compiled for AVX2 where the CPU has
/// it, so the rounding is vector code rather than a `roundf` call per value (same results).
pub(crate) fn quantize_q8k_into(x: &[f32], d: &mut [f32], qs: &mut [i8], bsums: &mut [i16]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: AVX2 and FMA are present (checked).
        unsafe { quantize_q8k_avx2(x, d, qs, bsums) };
        return;
    }
    quantize_q8k_body(x, d, qs, bsums);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_q8k_avx2(x: &[f32], d: &mut [f32], qs: &mut [i8], bsums: &mut [i16]) {
    quantize_q8k_body(x, d, qs, bsums);
}

#[inline(always)]
fn quantize_q8k_body(x: &[f32], d: &mut [f32], qs: &mut [i8], bsums: &mut [i16]) {
    for (b, xs) in x.chunks_exact(QK_K).enumerate() {
        // The value of largest magnitude, the first one where several tie (as ggml).
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let qs = &mut qs[b * QK_K..(b + 1) * QK_K];
        if amax == 0.0 {
            d[b] = 0.0;
            qs.fill(0);
            bsums[b * 16..(b + 1) * 16].fill(0);
            continue;
        }
        let max = xs.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
        let iscale = -127.0 / max;
        quantize_scaled(xs, iscale, qs);
        for (j, s) in bsums[b * 16..(b + 1) * 16].iter_mut().enumerate() {
            *s = qs[j * 16..(j + 1) * 16].iter().map(|&q| i16::from(q)).sum();
        }
        d[b] = 1.0 / iscale;
    }
}

/// `q = clamp(round(x * s))`, rounding half away from zero like `f32::round`.
#[inline(always)]
fn quantize_scaled(x: &[f32], s: f32, q: &mut [i8]) {
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (v * s).round().clamp(-128.0, 127.0) as i8;
    }
}

/// Whether the AVX2 kernels can run here (AVX2, FMA and F16C, detected once and cached by
/// the standard library).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 6-bit scales and minimums of the 8 sub-blocks of a Q4K block (ggml's
/// `get_scale_min_k4`).
pub(crate) fn q4k_scales(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
    }
    (sc, mn)
}

/// One Q4K row (`nb` blocks) against Q8K activations, portable.
fn dot_q4k_scalar(w: &[u8], a: &Acts, nb: usize) -> f32 {
    let mut acc = 0f32;
    for b in 0..nb {
        let blk = &w[b * Q4K_BYTES..(b + 1) * Q4K_BYTES];
        let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
        let (sc, mn) = q4k_scales(&blk[4..16]);
        let qs = &blk[16..];
        let aq = &a.qs[b * QK_K..(b + 1) * QK_K];
        let bs = &a.bsums[b * 16..(b + 1) * 16];
        let (mut sumi, mut summ) = (0i32, 0i32);
        for j in 0..8 {
            let (c, shift) = (j / 2, 4 * (j % 2));
            let s: i32 = (0..32)
                .map(|l| i32::from((qs[c * 32 + l] >> shift) & 15) * i32::from(aq[j * 32 + l]))
                .sum();
            sumi += i32::from(sc[j]) * s;
            summ += i32::from(mn[j]) * (i32::from(bs[2 * j]) + i32::from(bs[2 * j + 1]));
        }
        acc += a.k_d[b] * (d * sumi as f32 - dmin * summ as f32);
    }
    acc
}

/// The 6-bit value `i` (0..256, unsigned 0..63) of a Q6K block's `ql`/`qh` bytes (ggml's
/// `dequantize_row_q6_K` layout: two halves of 128, each four runs of 32 sharing `qh`).
pub(crate) fn q6k_value(ql: &[u8], qh: &[u8], i: usize) -> u8 {
    let (half, r) = (i / 128, i % 128);
    let (run, l) = (r / 32, r % 32);
    let lo = ql[64 * half + l + 32 * (run % 2)];
    let lo = if run < 2 { lo & 0x0F } else { lo >> 4 };
    lo | (((qh[32 * half + l] >> (2 * run)) & 3) << 4)
}

/// One Q6K row against Q8K activations, portable. Value `i` of a block is
/// `d * scales[i / 16] * (q6[i] - 32)`.
fn dot_q6k_scalar(w: &[u8], a: &Acts, nb: usize) -> f32 {
    let mut acc = 0f32;
    for b in 0..nb {
        let blk = &w[b * Q6K_BYTES..(b + 1) * Q6K_BYTES];
        let (ql, qh, sc) = (&blk[..128], &blk[128..192], &blk[192..208]);
        let aq = &a.qs[b * QK_K..(b + 1) * QK_K];
        let mut sumi = 0i32;
        for (g, &s) in sc.iter().enumerate() {
            let part: i32 = (16 * g..16 * g + 16)
                .map(|i| (i32::from(q6k_value(ql, qh, i)) - 32) * i32::from(aq[i]))
                .sum();
            sumi += i32::from(s as i8) * part;
        }
        acc += f16_at(blk, 208) * a.k_d[b] * sumi as f32;
    }
    acc
}

/// One Q8_0 row against Q8_0 activations, portable.
fn dot_q8_0_scalar(w: &[u8], a: &Acts, nb: usize) -> f32 {
    let mut acc = 0f32;
    for b in 0..nb {
        let blk = &w[b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES];
        let s: i32 = blk[2..]
            .iter()
            .zip(&a.qs[b * QK8_0..(b + 1) * QK8_0])
            .map(|(&x, &y)| i32::from(x as i8) * i32::from(y))
            .sum();
        acc += f16_at(blk, 0) * a.b_d[b] * s as f32;
    }
    acc
}

/// Dot product of two f32 slices, 8 lanes (vectorised inside the AVX2 wrappers).
#[inline(always)]
fn dot_f32_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            s[i] = x[i].mul_add(y[i], s[i]);
        }
    }
    let mut t: f32 = s.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        t += x * y;
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Acts, Q4K_BYTES, Q6K_BYTES, Q8_0_BYTES, QK8_0, QK_K};
    use std::arch::x86_64::*;

    /// How far ahead of the block being multiplied the kernels ask for weight bytes: about two
    /// rows of a 2048-wide Q4K weight (a task's rows lie one after another). Decode streams
    /// ~1.1 GB of weights per token, and on the 2-vCPU Sapphire Rapids VM the hardware
    /// prefetcher alone left each core waiting: one thread decoded 4.9 tok/s, two 8.9.
    /// `decode_bench`, three alternated pairs each:
    /// - no prefetch: 9.2-9.9 tok/s;
    /// - 1 KiB ahead: 10.8-12.2;
    /// - 2 KiB: 11.9-14.6;
    /// - 4 KiB: 13.4-14.4.
    const PREFETCH: usize = 2048;

    /// Asks for the cache lines of the `BYTES`-byte block [`PREFETCH`] bytes past `blk`.
    /// Addresses past the weight's end are harmless: a prefetch never faults.
    #[inline(always)]
    unsafe fn prefetch_ahead<const BYTES: usize>(blk: *const u8) {
        let mut off = 0;
        while off < BYTES {
            _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(PREFETCH + off) as *const i8);
            off += 64;
        }
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Both f16 scales at the start of a Q4K block, as f32 lanes 0 (d) and 1 (dmin).
    #[inline(always)]
    unsafe fn two_f16(p: *const u8) -> __m128 {
        _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const i32)))
    }

    /// One Q4K row against Q8K activations (ggml's AVX2 `vec_dot_q4_K_q8_K` scheme: unsigned
    /// nibbles times signed bytes with `maddubs`, sub-block scales applied with `madd`, the
    /// minimums through the activations' 16-value sums).
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `w` holds `nb` blocks and `a` holds at least
    /// `nb` Q8K blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q4k(w: &[u8], a: &Acts, nb: usize) -> f32 {
        debug_assert!(w.len() >= nb * Q4K_BYTES && a.qs.len() >= nb * QK_K);
        let m4 = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut acc_m = _mm_setzero_ps();
        let wp = w.as_ptr();
        let qp = a.qs.as_ptr();
        let bp = a.bsums.as_ptr();
        for b in 0..nb {
            let blk = wp.add(b * Q4K_BYTES);
            prefetch_ahead::<Q4K_BYTES>(blk);
            let dd = _mm_mul_ps(two_f16(blk), _mm_set1_ps(*a.k_d.get_unchecked(b)));
            let d = _mm_cvtss_f32(dd);
            let dmin = _mm_cvtss_f32(_mm_movehdup_ps(dd));
            // 6-bit scales and minimums, unpacked as ggml does (utmp).
            let mut u = [0u32; 4];
            std::ptr::copy_nonoverlapping(blk.add(4), u.as_mut_ptr() as *mut u8, 12);
            const K1: u32 = 0x3f3f_3f3f;
            const K2: u32 = 0x0f0f_0f0f;
            const K3: u32 = 0x0303_0303;
            u[3] = ((u[2] >> 4) & K2) | (((u[1] >> 6) & K3) << 4);
            let uaux = u[1] & K1;
            u[1] = (u[2] & K2) | (((u[0] >> 6) & K3) << 4);
            u[2] = uaux;
            u[0] &= K1;
            // lanes 0..8: scales, 8..16: minimums, as i16
            let mins_scales = _mm256_cvtepu8_epi16(_mm_loadu_si128(u.as_ptr() as *const __m128i));
            let q8sums = _mm256_loadu_si256(bp.add(b * 16) as *const __m256i);
            let q8s = _mm_hadd_epi16(
                _mm256_castsi256_si128(q8sums),
                _mm256_extracti128_si256(q8sums, 1),
            );
            let prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_scales, 1), q8s);
            acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
            let sc128 = _mm256_castsi256_si128(mins_scales);
            let scales = _mm256_set_m128i(sc128, sc128);
            let q4 = blk.add(16);
            let q8 = qp.add(b * QK_K);
            let mut s0 = _mm256_setzero_si256();
            let mut s1 = _mm256_setzero_si256();
            for j in 0..4 {
                // broadcast scale 2j (low nibbles) and 2j+1 (high nibbles) to all i16 lanes
                let sl = _mm256_shuffle_epi8(
                    scales,
                    _mm256_set1_epi16((0x0101 * (4 * j as i16)) + 0x0100),
                );
                let sh = _mm256_shuffle_epi8(
                    scales,
                    _mm256_set1_epi16((0x0101 * (4 * j as i16 + 2)) + 0x0100),
                );
                let bits = _mm256_loadu_si256(q4.add(32 * j) as *const __m256i);
                let lo = _mm256_and_si256(bits, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                let y0 = _mm256_loadu_si256(q8.add(64 * j) as *const __m256i);
                let y1 = _mm256_loadu_si256(q8.add(64 * j + 32) as *const __m256i);
                let p0 = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, y0));
                let p1 = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, y1));
                s0 = _mm256_add_epi32(s0, p0);
                s1 = _mm256_add_epi32(s1, p1);
            }
            let sumi = _mm256_add_epi32(s0, s1);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        let m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
        let m = _mm_add_ss(m, _mm_movehdup_ps(m));
        hsum(acc) - _mm_cvtss_f32(m)
    }

    /// One Q6K row against Q8K activations (ggml's AVX2 `vec_dot_q6_K_q8_K` scheme: the
    /// unsigned 6-bit values times signed bytes with `maddubs`, each 16-value group's scale
    /// applied with `madd`, and the `- 32` offset taken once per block through the
    /// activations' 16-value sums).
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `w` holds `nb` blocks and `a` holds at least
    /// `nb` Q8K blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q6k(w: &[u8], a: &Acts, nb: usize) -> f32 {
        debug_assert!(w.len() >= nb * Q6K_BYTES && a.qs.len() >= nb * QK_K);
        let m4 = _mm256_set1_epi8(0x0F);
        let m2 = _mm256_set1_epi8(0x03);
        let mut acc = _mm256_setzero_ps();
        let wp = w.as_ptr();
        let qp = a.qs.as_ptr();
        let bp = a.bsums.as_ptr();
        for b in 0..nb {
            let blk = wp.add(b * Q6K_BYTES);
            prefetch_ahead::<Q6K_BYTES>(blk);
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                std::ptr::read_unaligned(blk.add(208) as *const u16),
            )))) * *a.k_d.get_unchecked(b);
            // the 16 scales as i16, for the offset term and the per-group broadcasts
            let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const __m128i));
            let bsums = _mm256_loadu_si256(bp.add(b * 16) as *const __m256i);
            let offset = _mm256_madd_epi16(sc16, bsums);
            let mut sumi = _mm256_setzero_si256();
            let q8 = qp.add(b * QK_K);
            for half in 0..2 {
                let ql0 = _mm256_loadu_si256(blk.add(64 * half) as *const __m256i);
                let ql1 = _mm256_loadu_si256(blk.add(64 * half + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(blk.add(128 + 32 * half) as *const __m256i);
                let runs = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, m4),
                        _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4),
                    ),
                ];
                for (run, q6) in runs.iter().enumerate() {
                    let g = 8 * half + 2 * run;
                    let y = _mm256_loadu_si256(q8.add(128 * half + 32 * run) as *const __m256i);
                    // bytes 0..16 (i16 lanes 0..8) are group g, bytes 16..32 group g + 1
                    let s = _mm256_set_m128i(
                        _mm_set1_epi16(i16::from(*blk.add(192 + g + 1) as i8)),
                        _mm_set1_epi16(i16::from(*blk.add(192 + g) as i8)),
                    );
                    let p = _mm256_madd_epi16(s, _mm256_maddubs_epi16(*q6, y));
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            let total = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset, 5));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(total), acc);
        }
        hsum(acc)
    }

    /// One Q8_0 row against Q8_0 activations (sign trick so `maddubs` sees unsigned bytes).
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `w` holds `nb` blocks, `a` at least `nb`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q8_0(w: &[u8], a: &Acts, nb: usize) -> f32 {
        debug_assert!(w.len() >= nb * Q8_0_BYTES && a.qs.len() >= nb * QK8_0);
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        let wp = w.as_ptr();
        let qp = a.qs.as_ptr();
        for b in 0..nb {
            let blk = wp.add(b * Q8_0_BYTES);
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                std::ptr::read_unaligned(blk as *const u16),
            ))));
            let x = _mm256_loadu_si256(blk.add(2) as *const __m256i);
            let y = _mm256_loadu_si256(qp.add(b * QK8_0) as *const __m256i);
            let ax = _mm256_sign_epi8(x, x);
            let sy = _mm256_sign_epi8(y, x);
            let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);
            acc = _mm256_fmadd_ps(
                _mm256_set1_ps(d * *a.b_d.get_unchecked(b)),
                _mm256_cvtepi32_ps(dot),
                acc,
            );
        }
        hsum(acc)
    }

    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        super::dot_f32_lanes(a, b)
    }

    /// `a . b` with `b` in f16 (widened 8 at a time by F16C).
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
        let n = a.len().min(b.len());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            let x = _mm256_loadu_ps(a.as_ptr().add(i));
            let y = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i) as *const __m128i));
            acc = _mm256_fmadd_ps(x, y, acc);
            i += 8;
        }
        let mut s = hsum(acc);
        for j in i..n {
            s += a[j] * b[j].to_f32();
        }
        s
    }

    /// `y += a * x` with `x` in f16.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy_f16(y: &mut [f32], a: f32, x: &[half::f16]) {
        let n = y.len().min(x.len());
        let av = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            let xv = _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().add(i) as *const __m128i));
            let yp = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(yp, _mm256_fmadd_ps(av, xv, _mm256_loadu_ps(yp)));
            i += 8;
        }
        for j in i..n {
            y[j] = a.mul_add(x[j].to_f32(), y[j]);
        }
    }

    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        for (y, x) in y.iter_mut().zip(x) {
            *y = a.mul_add(*x, *y);
        }
    }
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked).
        return unsafe { avx2::dot_f32(a, b) };
    }
    dot_f32_lanes(a, b)
}

fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked).
        return unsafe { avx2::axpy(y, a, x) };
    }
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Rows per task: enough tasks for the pool to balance (a busy machine slows one worker),
/// few enough that the hand-off per task stays negligible.
fn rows_per_task(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (n / (threads * 16)).clamp(8, 512)
}

/// `out = W x` (or `out += W x` when `add`) for the `(n, k)` weight `w`. `a` must hold `x`
/// quantized for `w`'s kind ([`prepare`]); f32 weights read `x` itself.
pub(crate) fn matvec(w: WeightRef<'_>, k: usize, x: &[f32], a: &Acts, out: &mut [f32], add: bool) {
    let n = out.len();
    let avx2 = has_avx2();
    let row = |r: usize| -> f32 {
        match w {
            WeightRef::Q4K(d) => {
                let nb = k / QK_K;
                let bytes = &d[r * nb * Q4K_BYTES..(r + 1) * nb * Q4K_BYTES];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: AVX2/FMA/F16C present; `bytes` is one row of nb blocks and `a`
                    // was quantized from a k-long input (nb Q8K blocks).
                    return unsafe { avx2::dot_q4k(bytes, a, nb) };
                }
                dot_q4k_scalar(bytes, a, nb)
            }
            WeightRef::Q6K(d) => {
                let nb = k / QK_K;
                let bytes = &d[r * nb * Q6K_BYTES..(r + 1) * nb * Q6K_BYTES];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: as above, for Q6K blocks against Q8K activations.
                    return unsafe { avx2::dot_q6k(bytes, a, nb) };
                }
                dot_q6k_scalar(bytes, a, nb)
            }
            WeightRef::Q8_0(d) => {
                let nb = k / QK8_0;
                let bytes = &d[r * nb * Q8_0_BYTES..(r + 1) * nb * Q8_0_BYTES];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: as above, for Q8_0 blocks.
                    return unsafe { avx2::dot_q8_0(bytes, a, nb) };
                }
                dot_q8_0_scalar(bytes, a, nb)
            }
            WeightRef::F32(d) => dot_f32(&d[r * k..(r + 1) * k], x),
        }
    };
    let _ = avx2;
    let per = rows_per_task(n);
    out.par_chunks_mut(per).enumerate().for_each(|(c, o)| {
        for (i, y) in o.iter_mut().enumerate() {
            let v = row(c * per + i);
            if add {
                *y += v;
            } else {
                *y = v;
            }
        }
    });
}

/// Quantizes `x` into `a` as `w`'s kernel expects (nothing for f32 weights).
pub(crate) fn prepare(w: WeightRef<'_>, x: &[f32], a: &mut Acts) {
    match w {
        WeightRef::Q4K(_) | WeightRef::Q6K(_) => a.quantize_q8k(x),
        WeightRef::Q8_0(_) => a.quantize_q8_0(x),
        WeightRef::F32(_) => {}
    }
}

/// Whether `w` fits an `(n, k)` product (block sizes and byte counts); the callers fall back
/// to the tensor path otherwise.
pub(crate) fn fits(w: WeightRef<'_>, n: usize, k: usize) -> bool {
    match w {
        WeightRef::Q4K(d) => k % QK_K == 0 && d.len() == n * k / QK_K * Q4K_BYTES,
        WeightRef::Q6K(d) => k % QK_K == 0 && d.len() == n * k / QK_K * Q6K_BYTES,
        WeightRef::Q8_0(d) => k % QK8_0 == 0 && d.len() == n * k / QK8_0 * Q8_0_BYTES,
        WeightRef::F32(d) => d.len() >= n * k,
    }
}

/// `out = x / sqrt(mean(x^2) + eps) * w` (candle's `rms_norm` on one row).
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum2 = dot_f32(x, x);
    let m = (sum2 / x.len() as f32 + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v / m * g;
    }
}

/// Per-head RMSNorm then rotary embedding (candle's non-interleaved `rope`: the halves of
/// each head rotate together) of `n` heads of width `hd` in place, then `* scale`.
pub(crate) fn norm_rope(
    x: &mut [f32],
    hd: usize,
    w: &[f32],
    eps: f32,
    cos: &[f32],
    sin: &[f32],
    scale: f32,
) {
    let half = hd / 2;
    let mut tmp = [0f32; 512];
    for head in x.chunks_exact_mut(hd) {
        let t = &mut tmp[..hd];
        rms_norm(head, w, eps, t);
        for i in 0..half {
            let (a, b) = (t[i], t[i + half]);
            head[i] = (a * cos[i] - b * sin[i]) * scale;
            head[i + half] = (a * sin[i] + b * cos[i]) * scale;
        }
    }
}

/// `g = silu(g) * u` over the gate half `g` and up half `u` (vectorisable: `exp` of a
/// non-positive argument only).
pub(crate) fn silu_mul(g: &mut [f32], u: &[f32]) {
    for (g, &u) in g.iter_mut().zip(u) {
        let v = *g;
        // silu(v) = v / (1 + e^-v); with t = e^-|v| <= 1 both signs avoid overflow.
        let t = crate::ops::exp_neg(-v.abs());
        let s = if v >= 0.0 {
            v / (1.0 + t)
        } else {
            v * t / (1.0 + t)
        };
        *g = s * u;
    }
}

/// An element of the key/value cache as the single-query attention reads it: f32 (the
/// reference numerics) or f16 (quantized modes: half the bytes to read per token, as
/// llama.cpp's default cache).
pub(crate) trait KvElem: Copy + Send + Sync {
    /// `q . k` with `k` widened to f32.
    fn dot(q: &[f32], k: &[Self]) -> f32;
    /// `y += a * x` with `x` widened to f32.
    fn axpy(y: &mut [f32], a: f32, x: &[Self]);
}

impl KvElem for f32 {
    fn dot(q: &[f32], k: &[f32]) -> f32 {
        dot_f32(q, k)
    }
    fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        axpy(y, a, x)
    }
}

impl KvElem for half::f16 {
    fn dot(q: &[f32], k: &[half::f16]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked).
            return unsafe { avx2::dot_f16(q, k) };
        }
        q.iter().zip(k).map(|(a, b)| a * b.to_f32()).sum()
    }
    fn axpy(y: &mut [f32], a: f32, x: &[half::f16]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked).
            return unsafe { avx2::axpy_f16(y, a, x) };
        }
        for (y, x) in y.iter_mut().zip(x) {
            *y = a.mul_add(x.to_f32(), *y);
        }
    }
}

/// Attention of one new token: `q` `(heads * hd)`, already scaled; the cache holds `n`
/// positions of `(kv_heads, cap, hd)` keys `k` and values `v` (the new token's included).
/// Writes `(heads * hd)` into `out`. One task per key/value head reads its keys and values
/// once for all `heads / kv_heads` query heads of its group.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend_one<T: KvElem>(
    q: &[f32],
    k: &[T],
    v: &[T],
    cap: usize,
    n: usize,
    kv_heads: usize,
    hd: usize,
    out: &mut [f32],
) {
    let heads = q.len() / hd;
    let groups = heads / kv_heads;
    out.par_chunks_mut(groups * hd)
        .enumerate()
        .for_each_init(Vec::<f32>::new, |scores, (j, o)| {
            let kh = &k[j * cap * hd..j * cap * hd + n * hd];
            let vh = &v[j * cap * hd..j * cap * hd + n * hd];
            let qg = &q[j * groups * hd..(j + 1) * groups * hd];
            scores.resize(groups * n, 0.0);
            for (p, krow) in kh.chunks_exact(hd).enumerate() {
                for (g, qh) in qg.chunks_exact(hd).enumerate() {
                    scores[g * n + p] = T::dot(qh, krow);
                }
            }
            let mut inv = [0f32; 64];
            for (g, s) in scores.chunks_exact_mut(n).enumerate() {
                inv[g] = 1.0 / crate::ops::exp_in_place(s);
            }
            o.fill(0.0);
            for (p, vrow) in vh.chunks_exact(hd).enumerate() {
                for (g, oh) in o.chunks_exact_mut(hd).enumerate() {
                    T::axpy(oh, scores[g * n + p], vrow);
                }
            }
            for (g, oh) in o.chunks_exact_mut(hd).enumerate() {
                oh.iter_mut().for_each(|x| *x *= inv[g]);
            }
        });
}

#[cfg(test)]
mod tests;
