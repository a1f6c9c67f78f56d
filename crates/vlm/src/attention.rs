//! Fused scaled-dot-product attention for f32 on CPU.
//!
//! Done as separate tensor ops, one vision layer at full Qwen3-VL-2B shapes (2,880 patches,
//! 16 heads of 64) writes and re-reads sixteen 2,880 x 2,880 score matrices (33 MB each, far
//! beyond the L2 cache) and spends ~1.8 s of the layer's ~2.7 s in attention. Here each task
//! takes one head and a block of query rows whose scores fit in L2, computes the block's
//! scores with one GEMM, the softmax in place (unnormalised, with a vectorised `exp`), the
//! weighted sum of values with a second GEMM, and divides by the row sums once, writing
//! straight into the `(m, heads * head_dim)` layout the output projection wants. The work
//! spreads over the rayon pool by (head, block); GEMMs inside run single-threaded.
//!
//! The same routine serves the decoder: grouped-query heads (query head `h` reads key/value
//! head `h / (heads / kv_heads)`, as Hugging Face's `repeat_kv`) and a causal limit (query
//! `i` of the new tokens sees keys `0..=past + i`), with the masked tail of each row skipped
//! rather than filled with `-inf`. Other devices and dtypes take the tensor-op path, which
//! computes the same thing.

// The kernel hands raw pointers to the GEMM routine and lets tasks write disjoint tiles of
// one output buffer: the unsafe blocks below are confined to that, each with its reason.
#![allow(unsafe_code)]

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Scores per query block kept under this many floats (1 MiB, a typical L2). Measured at
/// 2,880 keys (`examples/vision_attention.rs`, 2-core AVX2 VM): 64 Ki floats 504 ms per layer,
/// 128 Ki 358 ms, 256 Ki 308 ms, 512 Ki 347 ms, 1 Mi 336 ms: fewer, larger blocks repack
/// K less often until the scores spill out of L2.
const BLOCK_FLOATS: usize = 256 * 1024;

/// `softmax(q kᵀ [causal]) v` for every head, as `(m, heads * head_dim)`.
///
/// `q`: `(heads, m, head_dim)`, already multiplied by the softmax scale; `k`, `v`:
/// `(kv_heads, n, head_dim)` with `heads` a multiple of `kv_heads`. `causal`: `Some(past)`
/// when the `m` queries are the tokens at positions `past..past + m` of the `n = past + m`
/// keys; `None` lets every query see every key (the vision tower).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, causal: Option<usize>) -> Result<Tensor> {
    let (h, m, d) = q.dims3()?;
    let (hk, n, dk) = k.dims3()?;
    if v.dims3()? != (hk, n, dk) || dk != d || hk == 0 || h % hk != 0 {
        candle_core::bail!(
            "attention: q {:?}, k {:?}, v {:?} do not fit together",
            q.shape(),
            k.shape(),
            v.shape()
        );
    }
    if let Some(past) = causal {
        if past + m != n {
            candle_core::bail!("attention: {past} cached + {m} new keys but k has {n}");
        }
    }
    let fused = q.device().is_cpu()
        && [q.dtype(), k.dtype(), v.dtype()]
            .iter()
            .all(|t| *t == DType::F32);
    if fused {
        q.apply_op3_no_bwd(k, v, &Fused { causal })
    } else {
        reference(q, k, v, causal)
    }
}

/// The tensor-op formulation (GPU, f16/bf16): same result, materialised scores.
fn reference(q: &Tensor, k: &Tensor, v: &Tensor, causal: Option<usize>) -> Result<Tensor> {
    let (h, m, d) = q.dims3()?;
    let (hk, n, _) = k.dims3()?;
    let groups = h / hk;
    // K and V may be views of a longer preallocated cache.
    let (k, v) = (&k.contiguous()?, &v.contiguous()?);
    // Query head j*groups+g uses kv head j: fold the groups into rows without copying K/V.
    let q = q.contiguous()?.reshape((hk, groups * m, d))?;
    let mut att = q.matmul(&k.t()?)?;
    if let Some(past) = causal {
        if m > 1 {
            let mask: Vec<f32> = (0..groups * m)
                .flat_map(|r| {
                    let last = past + r % m;
                    (0..n).map(move |j| if j <= last { 0.0 } else { f32::NEG_INFINITY })
                })
                .collect();
            let mask =
                Tensor::from_vec(mask, (groups * m, n), q.device())?.to_dtype(att.dtype())?;
            att = att.broadcast_add(&mask)?;
        }
    }
    crate::ops::softmax_last_dim(&att)?
        .matmul(v)?
        .reshape((h, m, d))?
        .transpose(0, 1)?
        .reshape((m, h * d))
}

struct Fused {
    causal: Option<usize>,
}

/// A strided 3-D f32 view: the slice, the offset of element (0, 0, 0) and the strides of the
/// first two dimensions (the last must be 1).
struct View<'a> {
    data: &'a [f32],
    start: usize,
    s0: usize,
    s1: usize,
}

fn view<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<View<'a>> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("attention: {what} is not f32");
    };
    let st = l.stride();
    if st.len() != 3 || (st[2] != 1 && l.dims()[2] > 1) {
        candle_core::bail!("attention: {what} needs a unit stride on its last dimension");
    }
    Ok(View {
        data,
        start: l.start_offset(),
        s0: st[0],
        s1: st[1],
    })
}

/// The output buffer shared by tasks that write disjoint (row block, head) tiles.
struct Out(*mut f32);
// SAFETY: every task writes a distinct set of elements (its rows x its head's columns) and
// nothing reads the buffer until all tasks are done.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// Through a method so closures capture the `Sync` wrapper, not the bare pointer.
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

impl CustomOp3 for Fused {
    fn name(&self) -> &'static str {
        "opslens-fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (h, m, d) = l1.shape().dims3()?;
        let (hk, n, _) = l2.shape().dims3()?;
        let (q, k, v) = (view(s1, l1, "q")?, view(s2, l2, "k")?, view(s3, l3, "v")?);
        let groups = h / hk;
        let block = (BLOCK_FLOATS / n.max(1)).clamp(8, 256).min(m.max(1));
        let blocks = m.div_ceil(block);
        let width = h * d;
        let mut out = vec![0f32; m * width];
        let dst = Out(out.as_mut_ptr());
        let causal = self.causal;
        (0..h * blocks)
            .into_par_iter()
            .for_each_init(Vec::<f32>::new, |scores, task| {
                let (head, b) = (task / blocks, task % blocks);
                let kvh = head / groups;
                let r0 = b * block;
                let rows = block.min(m - r0);
                // Keys this block can see at all; rows below the last see fewer.
                let keys = match causal {
                    Some(past) => past + r0 + rows,
                    None => n,
                };
                scores.resize(rows * keys, 0.0);
                let qp = &q.data[q.start + head * q.s0 + r0 * q.s1..];
                let kp = &k.data[k.start + kvh * k.s0..];
                let vp = &v.data[v.start + kvh * v.s0..];
                // SAFETY: the views index inside their storage (candle checked the layouts);
                // `scores` holds rows x keys floats; the destination tile is this task's own.
                unsafe {
                    // scores = q_block (rows x d) . k^T (d x keys)
                    gemm::gemm(
                        rows,
                        keys,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        keys as isize,
                        false,
                        qp.as_ptr(),
                        1,
                        q.s1 as isize,
                        kp.as_ptr(),
                        k.s1 as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                let mut inv = [0f32; 256];
                for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
                    let seen = match causal {
                        Some(past) => past + r0 + i + 1,
                        None => keys,
                    };
                    let (live, masked) = row.split_at_mut(seen);
                    masked.fill(0.0);
                    inv[i] = 1.0 / crate::ops::exp_in_place(live);
                }
                let o = dst.at(r0 * width + head * d);
                unsafe {
                    // out_tile (rows x d) = probs (rows x keys) . v (keys x d)
                    gemm::gemm(
                        rows,
                        d,
                        keys,
                        o,
                        1,
                        width as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        keys as isize,
                        vp.as_ptr(),
                        1,
                        v.s1 as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                    for (i, s) in inv.iter().take(rows).enumerate() {
                        let row = std::slice::from_raw_parts_mut(o.add(i * width), d);
                        row.iter_mut().for_each(|x| *x *= s);
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((m, width))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::max_abs_diff;
    use candle_core::Device;

    /// Fused and tensor-op paths agree: odd sizes, several blocks, groups, causal with a cache,
    /// single-token decode, and strided (narrowed) inputs.
    #[test]
    fn fused_matches_the_tensor_ops() {
        let dev = Device::Cpu;
        let cases = [
            // (heads, kv_heads, m, past, d, causal)
            (2, 2, 5, 0, 8, false),
            (4, 4, 300, 0, 16, false),
            (3, 1, 130, 0, 4, false),
            (4, 2, 70, 0, 8, true),
            (4, 2, 9, 40, 8, true),
            (4, 2, 1, 63, 8, true),
            (16, 8, 600, 0, 32, true),
        ];
        for (h, hk, m, past, d, causal) in cases {
            let n = past + m;
            let q = (Tensor::randn(0f32, 1.0, (h, m, d), &dev).unwrap() * 0.5).unwrap();
            let k = Tensor::randn(0f32, 1.0, (hk, n, d), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (hk, n, d), &dev).unwrap();
            let c = causal.then_some(past);
            let fast = attention(&q, &k, &v, c).unwrap();
            let slow = reference(&q, &k, &v, c).unwrap();
            assert_eq!(fast.dims(), &[m, h * d]);
            let diff = max_abs_diff(&fast, &slow);
            assert!(diff < 2e-5, "{h}/{hk} heads, m {m}, past {past}: {diff}");
        }
        // A narrowed span of a longer sequence (the vision tower's per-image spans).
        let q = Tensor::randn(0f32, 1.0, (2, 50, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 50, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 50, 8), &dev).unwrap();
        let part = |t: &Tensor| t.narrow(1, 10, 30).unwrap();
        let fast = attention(&part(&q), &part(&k), &part(&v), None).unwrap();
        let slow = reference(
            &part(&q).contiguous().unwrap(),
            &part(&k).contiguous().unwrap(),
            &part(&v).contiguous().unwrap(),
            None,
        )
        .unwrap();
        assert!(max_abs_diff(&fast, &slow) < 2e-5);
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((3, 4, 8), DType::F32, &dev).unwrap();
        let k = Tensor::zeros((2, 4, 8), DType::F32, &dev).unwrap();
        assert!(attention(&q, &k, &k, None).is_err());
        let k = Tensor::zeros((3, 5, 8), DType::F32, &dev).unwrap();
        assert!(attention(&q, &k, &k, Some(0)).is_err());
    }
}
