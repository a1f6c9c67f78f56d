//! Q4K and Q6K weights times many rows (the prefill's products) on AVX2 CPUs without VNNI.
//!
//! candle's AVX2 kernels for its packed tiles (`q4k_tile_avx2`, `q6k_tile_avx2`) turn every
//! `maddubs` (32 products of an unsigned weight and a signed 8-bit activation, summed in pairs
//! to 16-bit) into 32-bit at once with a second multiply (`madd` against ones). On CPUs whose
//! vector integer multiplies share one port (AMD Zen 1 runs each 256-bit one as two halves
//! there), that second multiply costs as much as the first. Here the 16-bit pair sums are
//! added in 16-bit as long as they cannot overflow, and one `madd` both widens them and
//! applies the sub-block's scale:
//!
//! - Q4K: a 32-value sub-block is eight `maddubs` of at most 2 x 15 x 127 = 3,810 per lane
//!   (at most 30,480 summed), then one `madd` by its 6-bit scale: 9 multiplies per 32 values
//!   and row where candle issues 16, and no float work per sub-block;
//! - Q6K: two `maddubs` of at most 2 x 63 x 127 = 16,002 (32,004 summed), then one `madd` by
//!   the 16-value block's scale: 6 multiplies per 16 values where candle issues 8, and the
//!   weights' offset of 32 applied once per superblock from the activations' sums.
//!
//! Layout: a tile is 8 output columns (one 32-bit lane each) by one 256-value superblock:
//! the weights ordered for `maddubs` against four broadcast activation bytes (Q4K as nibbles,
//! Q6K a byte each), the scales duplicated into both 16-bit halves of each lane, and the float
//! factors per column. The activations are quantized per row as Q8K (ggml's
//! `quantize_row_q8_K`, as candle and the decode step do), so the result is the sum candle
//! computes, in another order. Per 8 x 256 weights a Q4K tile takes 1,568 bytes (the ggml
//! blocks 1,152), a Q6K tile 3,104 (1,680); like candle's, the copy lives for one layer of one
//! prefill.

// SIMD loads from the packed tiles and rows; each unsafe block states why it is sound.
#![allow(unsafe_code)]

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use crate::decode::{q4k_scales, q6k_value, quantize_q8k_into, Q4K_BYTES, Q6K_BYTES, QK_K};

/// Output columns per tile: one 32-bit lane of a 256-bit register each.
pub(crate) const COLS: usize = 8;
/// Activation rows one kernel call multiplies (each keeps two accumulators in registers).
const ROWS: usize = 4;
/// Rows per parallel task: the task's activations (up to 64 x 6 KiB) stay in L2 while it
/// walks its column tiles.
const TASK_ROWS: usize = 64;
/// Column tiles per parallel task.
const TASK_TILES: usize = 4;

/// 8 columns x one Q4K superblock, packed for the kernel.
#[repr(C, align(32))]
#[derive(Clone, Copy)]
struct Tile4 {
    /// `[sub 8][group 4][col 8][4 bytes]`: byte `t` holds value `sub*32 + group*8 + t` in its
    /// low nibble and value `+ 4` in its high nibble.
    qs: [u8; 1024],
    /// `[sub 8][col 8][2]`: the sub-block's 6-bit scale in both 16-bit halves of the lane.
    scales: [i16; 128],
    /// Per column: the block's `d`.
    d: [f32; COLS],
    /// `[sub 8][col 8]`: the block's `dmin` times the sub-block's 6-bit minimum.
    mins: [f32; 64],
}

/// 8 columns x one Q6K superblock, packed for the kernel.
#[repr(C, align(32))]
#[derive(Clone, Copy)]
struct Tile6 {
    /// `[block 16][group 4][col 8][4 bytes]`: the 6-bit values `block*16 + group*4 + t`
    /// (stored with ggml's offset of 32).
    qs: [u8; 2048],
    /// `[block 16][col 8][2]`: the 16-value block's signed scale in both 16-bit halves.
    scales: [i16; 256],
    /// Per column: the block's `d`.
    d: [f32; COLS],
    /// `[block 16][col 8]`: 32 times the block's scale (the offset, applied through the
    /// activations' sums).
    offsets: [f32; 128],
}

/// The packed tiles of one weight: `n / 8` columns of `k / 256` tiles each.
enum Packed {
    Q4K(Vec<Tile4>),
    Q6K(Vec<Tile6>),
}

/// A `(n, k)` Q4K or Q6K weight packed into tiles.
pub(crate) struct QTiles {
    tiles: Packed,
    n: usize,
    k: usize,
}

impl std::fmt::Debug for QTiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.tiles {
            Packed::Q4K(_) => "Q4K",
            Packed::Q6K(_) => "Q6K",
        };
        write!(f, "QTiles({kind}, {} x {})", self.n, self.k)
    }
}

/// Whether this CPU runs the kernel (AVX2, FMA; F16C for the block scales is read in Rust).
pub(crate) fn available() -> bool {
    crate::decode::has_avx2()
}

/// Whether a `(n, k)` weight fits the tiles.
pub(crate) fn fits(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && n % COLS == 0 && k % QK_K == 0
}

impl QTiles {
    /// Packs rows `start..start + n` of a Q4K (`q6k` false) or Q6K weight whose rows hold `k`
    /// values (`data`: the whole weight's ggml blocks), in parallel over the column tiles.
    pub(crate) fn pack(data: &[u8], q6k: bool, start: usize, n: usize, k: usize) -> Result<Self> {
        let kb = k / QK_K;
        let row = kb * if q6k { Q6K_BYTES } else { Q4K_BYTES };
        if !fits(n, k) || data.len() < (start + n) * row {
            candle_core::bail!(
                "quantized tiles: {n} x {k} rows from {start} do not fit the weight"
            );
        }
        let rows = start..start + n;
        let tiles = if q6k {
            let blank = Tile6 {
                qs: [0; 2048],
                scales: [0; 256],
                d: [0.0; COLS],
                offsets: [0.0; 128],
            };
            Packed::Q6K(pack_columns(data, rows, kb, Q6K_BYTES, blank, pack6))
        } else {
            let blank = Tile4 {
                qs: [0; 1024],
                scales: [0; 128],
                d: [0.0; COLS],
                mins: [0.0; 64],
            };
            Packed::Q4K(pack_columns(data, rows, kb, Q4K_BYTES, blank, pack4))
        };
        Ok(Self { tiles, n, k })
    }

    /// Output columns (the weight's rows).
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// `x W^T` for `x` of shape `(m, k)` (f32, CPU), as `(m, n)`.
    pub(crate) fn matmul(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.k {
            candle_core::bail!("Q4K tiles: input rows of {k}, weight rows of {}", self.k);
        }
        let xs = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let out = self.matmul_rows(&xs, m);
        Tensor::from_vec(out, (m, self.n), &Device::Cpu)
    }

    fn matmul_rows(&self, xs: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        let acts = Rows::quantize(xs, m, k);
        let mut out = vec![0f32; m * n];
        let col_tiles = n / COLS;
        let groups = col_tiles.div_ceil(TASK_TILES);
        let chunks = m.div_ceil(TASK_ROWS);
        let dst = Dst(out.as_mut_ptr());
        (0..groups * chunks).into_par_iter().for_each(|u| {
            let (g, c) = (u % groups, u / groups);
            let rows = c * TASK_ROWS..(c * TASK_ROWS + TASK_ROWS).min(m);
            let tiles = g * TASK_TILES..(g * TASK_TILES + TASK_TILES).min(col_tiles);
            for r0 in rows.clone().step_by(ROWS) {
                let rn = (rows.end - r0).min(ROWS);
                for t in tiles.clone() {
                    self.product(&acts, r0, rn, t, &dst);
                }
            }
        });
        out
    }

    /// Rows `r0..r0 + rn` (at most [`ROWS`]) times column tile `t`, into `dst`.
    fn product(&self, acts: &Rows, r0: usize, rn: usize, t: usize, dst: &Dst) {
        let kb = self.k / QK_K;
        let mut sums = [[0f32; COLS]; ROWS];
        match &self.tiles {
            Packed::Q4K(v) => column_product(&v[t * kb..(t + 1) * kb], acts, r0, rn, &mut sums),
            Packed::Q6K(v) => column_product(&v[t * kb..(t + 1) * kb], acts, r0, rn, &mut sums),
        }
        for (i, s) in sums.iter().enumerate().take(rn) {
            // SAFETY: row `r0 + i` < m and columns `t*8..t*8+8` < n lie inside the m x n
            // output, and no other task writes this (row, tile) (tasks split rows x tiles).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    s.as_ptr(),
                    dst.0.add((r0 + i) * self.n + t * COLS),
                    COLS,
                );
            }
        }
    }
}

/// One column of tiles times at most [`ROWS`] rows: the AVX2 kernel where the CPU has it, the
/// portable loop elsewhere.
trait Kernel: Sized {
    /// # Safety
    /// AVX2 and FMA must be present; `column` and the rows `r0..r0 + R` of `acts` must hold
    /// the same number of superblocks.
    #[cfg(target_arch = "x86_64")]
    unsafe fn simd<const R: usize>(column: &[Self], acts: &Rows, r0: usize, out: &mut Sums);
    /// Column `c` against one row's block (see [`portable`]).
    fn block_dot(&self, c: usize, a: &[i8], sums: &[f32]) -> f32;
}

/// Per row of a kernel call, the 8 columns' sums.
type Sums = [[f32; COLS]; ROWS];

impl Kernel for Tile4 {
    #[cfg(target_arch = "x86_64")]
    unsafe fn simd<const R: usize>(column: &[Self], acts: &Rows, r0: usize, out: &mut Sums) {
        avx2::product4::<R>(column, acts, r0, out)
    }
    fn block_dot(&self, c: usize, a: &[i8], sums: &[f32]) -> f32 {
        self.dot(c, a, sums)
    }
}

impl Kernel for Tile6 {
    #[cfg(target_arch = "x86_64")]
    unsafe fn simd<const R: usize>(column: &[Self], acts: &Rows, r0: usize, out: &mut Sums) {
        avx2::product6::<R>(column, acts, r0, out)
    }
    fn block_dot(&self, c: usize, a: &[i8], sums: &[f32]) -> f32 {
        self.dot(c, a, sums)
    }
}

fn column_product<T: Kernel>(column: &[T], acts: &Rows, r0: usize, rn: usize, out: &mut Sums) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 and FMA are present (checked); `column` holds the weight's `k / 256`
        // tiles and every row of `acts` as many blocks (both by construction).
        unsafe {
            match rn {
                1 => T::simd::<1>(column, acts, r0, out),
                2 => T::simd::<2>(column, acts, r0, out),
                3 => T::simd::<3>(column, acts, r0, out),
                _ => T::simd::<ROWS>(column, acts, r0, out),
            }
        }
        return;
    }
    portable(column, acts, r0, rn, out);
}

/// The output buffer that tasks fill in disjoint (rows, column tile) pieces.
struct Dst(*mut f32);
// SAFETY: every task writes a distinct set of elements, and the buffer outlives the parallel
// region that writes it (nothing reads it until the region ends).
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// The tiles of weight rows `rows` (`kb` blocks of `bytes` each per row), one column of tiles
/// per task: `pack(block, c, tile)` fills column `c` of a tile from a block.
fn pack_columns<T: Copy + Send + Sync>(
    data: &[u8],
    rows: std::ops::Range<usize>,
    kb: usize,
    bytes: usize,
    blank: T,
    pack: fn(&[u8], usize, &mut T),
) -> Vec<T> {
    let row = kb * bytes;
    let mut tiles = vec![blank; rows.len() / COLS * kb];
    tiles
        .par_chunks_mut(kb)
        .enumerate()
        .for_each(|(t, column)| {
            for (b, tile) in column.iter_mut().enumerate() {
                for c in 0..COLS {
                    let r = rows.start + t * COLS + c;
                    pack(
                        &data[r * row + b * bytes..r * row + (b + 1) * bytes],
                        c,
                        tile,
                    );
                }
            }
        });
    tiles
}

/// Column `c` of a Q4K tile from one ggml Q4K block (`d`, `dmin`, 12 bytes of 6-bit scales
/// and minimums, 128 bytes of nibbles: value `64j + l` is the low nibble of byte `32j + l` for
/// `l < 32`, the high nibble of byte `32j + l - 32` otherwise).
fn pack4(blk: &[u8], c: usize, tile: &mut Tile4) {
    let d = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    let dmin = half::f16::from_le_bytes([blk[2], blk[3]]).to_f32();
    let (sc, mn) = q4k_scales(&blk[4..16]);
    let qs = &blk[16..];
    let value = |v: usize| -> u8 {
        let (j, l) = (v / 64, v % 64);
        if l < 32 {
            qs[32 * j + l] & 0x0F
        } else {
            qs[32 * j + l - 32] >> 4
        }
    };
    tile.d[c] = d;
    for sub in 0..8 {
        tile.scales[sub * 16 + 2 * c] = i16::from(sc[sub]);
        tile.scales[sub * 16 + 2 * c + 1] = i16::from(sc[sub]);
        tile.mins[sub * COLS + c] = dmin * f32::from(mn[sub]);
        for g in 0..4 {
            for t in 0..4 {
                let v = sub * 32 + g * 8 + t;
                tile.qs[((sub * 4 + g) * COLS + c) * 4 + t] = value(v) | (value(v + 4) << 4);
            }
        }
    }
}

/// Column `c` of a Q6K tile from one ggml Q6K block (128 bytes of low nibbles, 64 of high
/// bit pairs, 16 signed scales, f16 `d`).
fn pack6(blk: &[u8], c: usize, tile: &mut Tile6) {
    let (ql, qh, sc) = (&blk[..128], &blk[128..192], &blk[192..208]);
    tile.d[c] = half::f16::from_le_bytes([blk[208], blk[209]]).to_f32();
    for (j, &s) in sc.iter().enumerate() {
        let s = i16::from(s as i8);
        tile.scales[j * 16 + 2 * c] = s;
        tile.scales[j * 16 + 2 * c + 1] = s;
        tile.offsets[j * COLS + c] = 32.0 * f32::from(s);
        for g in 0..4 {
            for t in 0..4 {
                tile.qs[((j * 4 + g) * COLS + c) * 4 + t] = q6k_value(ql, qh, j * 16 + g * 4 + t);
            }
        }
    }
}

/// `m` rows quantized as Q8K: per row and superblock a scale, the 256 values, and the sums of
/// each 16 (for the Q4K minimums and the Q6K offset) as f32.
struct Rows {
    kb: usize,
    d: Vec<f32>,
    qs: Vec<i8>,
    sums: Vec<f32>,
}

impl Rows {
    fn quantize(xs: &[f32], m: usize, k: usize) -> Self {
        let kb = k / QK_K;
        let mut d = vec![0f32; m * kb];
        let mut qs = vec![0i8; m * k];
        let mut sums = vec![0f32; m * kb * 16];
        d.par_chunks_mut(kb)
            .zip(qs.par_chunks_mut(k))
            .zip(sums.par_chunks_mut(kb * 16))
            .zip(xs.par_chunks(k))
            .for_each_init(
                || vec![0i16; kb * 16],
                |bsums, (((d, q), s), x)| {
                    quantize_q8k_into(x, d, q, bsums);
                    for (s, &b) in s.iter_mut().zip(bsums.iter()) {
                        *s = f32::from(b);
                    }
                },
            );
        Self { kb, d, qs, sums }
    }
}

/// The kernels' sums without SIMD (other CPUs; the tests' reference for the layout).
fn portable<T: Kernel>(column: &[T], acts: &Rows, r0: usize, rn: usize, out: &mut Sums) {
    let kb = acts.kb;
    for (i, o) in out.iter_mut().enumerate().take(rn) {
        let r = r0 + i;
        for (b, tile) in column.iter().enumerate() {
            let a = &acts.qs[(r * kb + b) * QK_K..(r * kb + b + 1) * QK_K];
            let sums = &acts.sums[(r * kb + b) * 16..(r * kb + b + 1) * 16];
            for (c, o) in o.iter_mut().enumerate() {
                *o += acts.d[r * kb + b] * tile.block_dot(c, a, sums);
            }
        }
    }
}

impl Tile4 {
    /// Column `c` against one row's block `a` (with its sums of 16), before the row's scale.
    fn dot(&self, c: usize, a: &[i8], sums: &[f32]) -> f32 {
        let mut isum = 0i32;
        let mut min = 0f32;
        for sub in 0..8 {
            let mut s = 0i32;
            for g in 0..4 {
                for t in 0..4 {
                    let byte = self.qs[((sub * 4 + g) * COLS + c) * 4 + t];
                    let v = sub * 32 + g * 8 + t;
                    s += i32::from(byte & 0x0F) * i32::from(a[v]);
                    s += i32::from(byte >> 4) * i32::from(a[v + 4]);
                }
            }
            isum += s * i32::from(self.scales[sub * 16 + 2 * c]);
            min += self.mins[sub * COLS + c] * (sums[2 * sub] + sums[2 * sub + 1]);
        }
        self.d[c] * isum as f32 - min
    }
}

impl Tile6 {
    /// Column `c` against one row's block `a` (with its sums of 16), before the row's scale.
    fn dot(&self, c: usize, a: &[i8], sums: &[f32]) -> f32 {
        let mut isum = 0i32;
        let mut offset = 0f32;
        for j in 0..16 {
            let mut s = 0i32;
            for g in 0..4 {
                for t in 0..4 {
                    let q = self.qs[((j * 4 + g) * COLS + c) * 4 + t];
                    s += i32::from(q) * i32::from(a[j * 16 + g * 4 + t]);
                }
            }
            isum += s * i32::from(self.scales[j * 16 + 2 * c]);
            offset += self.offsets[j * COLS + c] * sums[j];
        }
        self.d[c] * (isum as f32 - offset)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Rows, Tile4, Tile6, COLS, QK_K, ROWS};
    use std::arch::x86_64::*;

    /// Four activation bytes at `p`, broadcast to every 32-bit lane.
    #[inline(always)]
    unsafe fn four(p: *const i8) -> __m256i {
        _mm256_set1_epi32(p.cast::<i32>().read_unaligned())
    }

    /// `R` rows from `r0` times one column of Q4K tiles, into `out`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product4<const R: usize>(
        column: &[Tile4],
        acts: &Rows,
        r0: usize,
        out: &mut [[f32; COLS]; ROWS],
    ) {
        let kb = acts.kb;
        let nibble = _mm256_set1_epi8(0x0F);
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, tile) in column.iter().enumerate() {
            let mut isum = [_mm256_setzero_si256(); R];
            let a: [*const i8; R] =
                std::array::from_fn(|i| acts.qs.as_ptr().add(((r0 + i) * kb + b) * QK_K));
            for sub in 0..8 {
                let mut s16 = [_mm256_setzero_si256(); R];
                for g in 0..4 {
                    // SAFETY (whole function): tiles are 32-byte aligned with `qs`, `scales`,
                    // `d`, `mins` at 32-byte multiples; activation offsets stay inside the
                    // row's 256-value block and its 16 sums.
                    let w = _mm256_load_si256(tile.qs.as_ptr().add((sub * 4 + g) * 32).cast());
                    let lo = _mm256_and_si256(w, nibble);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble);
                    let off = sub * 32 + g * 8;
                    for i in 0..R {
                        let p = a[i].add(off);
                        s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(lo, four(p)));
                        s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(hi, four(p.add(4))));
                    }
                }
                let sc = _mm256_load_si256(tile.scales.as_ptr().add(sub * 16).cast());
                for i in 0..R {
                    isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(s16[i], sc));
                }
            }
            let d = _mm256_load_ps(tile.d.as_ptr());
            for i in 0..R {
                let row = (r0 + i) * kb + b;
                let sums = acts.sums.as_ptr().add(row * 16);
                let mut min = _mm256_setzero_ps();
                for sub in 0..8 {
                    let s = *sums.add(2 * sub) + *sums.add(2 * sub + 1);
                    let m = _mm256_load_ps(tile.mins.as_ptr().add(sub * COLS));
                    min = _mm256_fmadd_ps(m, _mm256_set1_ps(s), min);
                }
                let v = _mm256_fmsub_ps(d, _mm256_cvtepi32_ps(isum[i]), min);
                acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(*acts.d.as_ptr().add(row)), v, acc[i]);
            }
        }
        for i in 0..R {
            _mm256_storeu_ps(out[i].as_mut_ptr(), acc[i]);
        }
    }

    /// `R` rows from `r0` times one column of Q6K tiles, into `out`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product6<const R: usize>(
        column: &[Tile6],
        acts: &Rows,
        r0: usize,
        out: &mut [[f32; COLS]; ROWS],
    ) {
        let kb = acts.kb;
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, tile) in column.iter().enumerate() {
            let mut isum = [_mm256_setzero_si256(); R];
            let a: [*const i8; R] =
                std::array::from_fn(|i| acts.qs.as_ptr().add(((r0 + i) * kb + b) * QK_K));
            for j in 0..16 {
                let sc = _mm256_load_si256(tile.scales.as_ptr().add(j * 16).cast());
                for half in 0..2 {
                    let mut s16 = [_mm256_setzero_si256(); R];
                    for g in 2 * half..2 * half + 2 {
                        // SAFETY: as in `product4`.
                        let w = _mm256_load_si256(tile.qs.as_ptr().add((j * 4 + g) * 32).cast());
                        for i in 0..R {
                            let p = a[i].add(j * 16 + g * 4);
                            s16[i] = _mm256_add_epi16(s16[i], _mm256_maddubs_epi16(w, four(p)));
                        }
                    }
                    for i in 0..R {
                        isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(s16[i], sc));
                    }
                }
            }
            let d = _mm256_load_ps(tile.d.as_ptr());
            for i in 0..R {
                let row = (r0 + i) * kb + b;
                let sums = acts.sums.as_ptr().add(row * 16);
                let mut offset = _mm256_setzero_ps();
                for j in 0..16 {
                    let o = _mm256_load_ps(tile.offsets.as_ptr().add(j * COLS));
                    offset = _mm256_fmadd_ps(o, _mm256_set1_ps(*sums.add(j)), offset);
                }
                let v = _mm256_mul_ps(d, _mm256_sub_ps(_mm256_cvtepi32_ps(isum[i]), offset));
                acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(*acts.d.as_ptr().add(row)), v, acc[i]);
            }
        }
        for i in 0..R {
            _mm256_storeu_ps(out[i].as_mut_ptr(), acc[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};

    fn weight(n: usize, k: usize, dt: GgmlDType, seed: u64) -> QTensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-0.05..0.05)).collect();
        let w = Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, dt).unwrap()
    }

    fn rows(m: usize, k: usize, seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_vec(x, (m, k), &Device::Cpu).unwrap()
    }

    /// `got` within `rel` of `want` (relative, absolute below 1).
    fn close(got: f32, want: f32, rel: f32, at: &str) {
        assert!(
            (got - want).abs() <= rel * want.abs().max(1.0),
            "{at}: {got} vs {want}"
        );
    }

    const FORMATS: [(GgmlDType, bool); 2] = [(GgmlDType::Q4K, false), (GgmlDType::Q6K, true)];

    /// The tiles give what the decode step's dot products on the ggml blocks give row by row
    /// (the same quantized activations, so only the summation order differs), for both
    /// formats, every remainder of rows per kernel call, and a part of the weight that does
    /// not start at row 0.
    #[test]
    fn tiles_match_the_blocks_row_by_row() {
        let (n, k) = (48, 768);
        for (dt, q6k) in FORMATS {
            let q = weight(n, k, dt, 7);
            let data = q.data().unwrap();
            let w = if q6k {
                crate::decode::WeightRef::Q6K(&data)
            } else {
                crate::decode::WeightRef::Q4K(&data)
            };
            let (start, len) = (8, 32);
            let tiles = QTiles::pack(&data, q6k, start, len, k).unwrap();
            for m in [1, 2, 3, 4, 5, 7, 70] {
                let x = rows(m, k, m as u64);
                let y = tiles.matmul(&x).unwrap().to_vec2::<f32>().unwrap();
                for (r, xr) in x.to_vec2::<f32>().unwrap().iter().enumerate() {
                    let mut acts = crate::decode::Acts::default();
                    crate::decode::prepare(w, xr, &mut acts);
                    let mut want = vec![0f32; n];
                    crate::decode::matvec(w, k, xr, &acts, &mut want, false);
                    for c in 0..len {
                        let at = format!("{dt:?} m {m} row {r} col {c}");
                        close(y[r][c], want[start + c], 1e-4, &at);
                    }
                }
            }
        }
    }

    /// The SIMD kernels and the portable loops agree on the same packed tiles and rows.
    #[test]
    fn the_kernels_equal_the_portable_loops() {
        let (n, k) = (16, 512);
        let kb = k / QK_K;
        for (dt, q6k) in FORMATS {
            let q = weight(n, k, dt, 11);
            let tiles = QTiles::pack(&q.data().unwrap(), q6k, 0, n, k).unwrap();
            let x = rows(ROWS, k, 3)
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let acts = Rows::quantize(&x, ROWS, k);
            for t in 0..n / COLS {
                let mut want = [[0f32; COLS]; ROWS];
                match &tiles.tiles {
                    Packed::Q4K(v) => portable(&v[t * kb..(t + 1) * kb], &acts, 0, ROWS, &mut want),
                    Packed::Q6K(v) => portable(&v[t * kb..(t + 1) * kb], &acts, 0, ROWS, &mut want),
                }
                let mut got = vec![0f32; ROWS * n];
                tiles.product(&acts, 0, ROWS, t, &Dst(got.as_mut_ptr()));
                for (i, w) in want.iter().enumerate() {
                    for (c, &w) in w.iter().enumerate() {
                        close(got[i * n + t * COLS + c], w, 1e-5, &format!("{dt:?}"));
                    }
                }
            }
        }
    }

    /// Activations at the ends of the 8-bit range and weights at the ends of theirs: the 16-bit
    /// sums are at their largest here, and must not wrap.
    #[test]
    fn extreme_values_do_not_overflow_the_16_bit_sums() {
        let (n, k) = (8, 256);
        for (dt, q6k) in FORMATS {
            // Rows of +-0.05 quantize to the weight format's extreme codes.
            let w: Vec<f32> = (0..n * k)
                .map(|i| if i % 3 == 0 { -0.05 } else { 0.05 })
                .collect();
            let w = Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap();
            let q = QTensor::quantize(&w, dt).unwrap();
            let data = q.data().unwrap();
            let tiles = QTiles::pack(&data, q6k, 0, n, k).unwrap();
            for sign in [1f32, -1.0] {
                let x = Tensor::full(sign * 3.0, (5, k), &Device::Cpu).unwrap();
                let got = tiles.matmul(&x).unwrap();
                let want = x
                    .matmul(&q.dequantize(&Device::Cpu).unwrap().t().unwrap())
                    .unwrap();
                let diff = crate::ops::max_abs_diff(&got, &want);
                assert!(diff < 1e-2, "{dt:?} sign {sign}: {diff}");
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let q = weight(16, 256, GgmlDType::Q4K, 1);
        let data = q.data().unwrap();
        assert!(QTiles::pack(&data, false, 0, 12, 256).is_err());
        assert!(QTiles::pack(&data, false, 8, 16, 256).is_err());
        let tiles = QTiles::pack(&data, false, 0, 16, 256).unwrap();
        assert!(tiles.matmul(&rows(2, 512, 1)).is_err());
    }
}
