//! Times the vision tower's self-attention for one layer at full Qwen3-VL-2B shapes (16 heads,
//! head dim 64) over the patches of a 1280x720 screenshot under the CPU pixel budget (2,880),
//! against the MLP of the same layer, to see where the vision phase's time goes and whether
//! cheaper attention formulations pay.
//!
//! `cargo run --release -p opslens-vlm --example vision_attention -- [--n 2880] [--reps 3]`

use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

/// The engine's first formulation: per head, scores, scale, softmax, weighted sum.
fn per_head(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    let heads = q.dim(0)?;
    let mut out = Vec::with_capacity(heads);
    for h in 0..heads {
        let att = (q.get(h)?.matmul(&k.get(h)?.t()?)? * scale)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        out.push(att.matmul(&v.get(h)?)?);
    }
    Tensor::stack(&out, 0)
}

/// The engine before the fused kernel: per head, q pre-scaled, our vectorised softmax.
fn per_head_fast(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    let q = (q * scale)?;
    let heads = q.dim(0)?;
    let mut out = Vec::with_capacity(heads);
    for h in 0..heads {
        let att = opslens_vlm::ops::softmax_last_dim(&q.get(h)?.matmul(&k.get(h)?.t()?)?)?;
        out.push(att.matmul(&v.get(h)?)?);
    }
    Tensor::stack(&out, 0)
}

/// Scale folded into q (an n x 64 pass instead of n x n), one batched matmul for all heads.
fn batched_prescaled(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let q = (q * scale)?;
    let att = q.matmul(&k.t()?)?;
    let att = candle_nn::ops::softmax_last_dim(&att)?;
    att.matmul(v)
}

/// Query blocks of `blk` rows: the score matrix of a block stays in cache.
fn blocked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    blk: usize,
) -> candle_core::Result<Tensor> {
    let q = (q * scale)?;
    let kt = k.t()?.contiguous()?;
    let n = q.dim(1)?;
    let mut parts = Vec::new();
    let mut s = 0;
    while s < n {
        let l = blk.min(n - s);
        let att = q.narrow(1, s, l)?.matmul(&kt)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        parts.push(att.matmul(v)?);
        s += l;
    }
    Tensor::cat(&parts, 1)
}

fn time<T>(
    name: &str,
    reps: usize,
    mut f: impl FnMut() -> candle_core::Result<T>,
) -> candle_core::Result<T> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        last = Some(f()?);
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("{name:<40} {best:>9.1} ms (best of {reps})");
    Ok(last.expect("reps >= 1"))
}

fn main() -> anyhow::Result<()> {
    let n: usize = arg("--n").map_or(Ok(2880), |s| s.parse())?;
    let reps: usize = arg("--reps").map_or(Ok(3), |s| s.parse())?;
    let (heads, hd, d, mlp) = (16usize, 64usize, 1024usize, 4096usize);
    let dev = Device::Cpu;
    let q = Tensor::randn(0f32, 1.0, (heads, n, hd), &dev)?;
    let k = Tensor::randn(0f32, 1.0, (heads, n, hd), &dev)?;
    let v = Tensor::randn(0f32, 1.0, (heads, n, hd), &dev)?;
    let x = Tensor::randn(0f32, 1.0, (n, d), &dev)?;
    let w1 = (Tensor::randn(0f32, 1.0, (mlp, d), &dev)? * 0.02)?;
    let w2 = (Tensor::randn(0f32, 1.0, (d, mlp), &dev)? * 0.02)?;
    let wqkv = (Tensor::randn(0f32, 1.0, (3 * d, d), &dev)? * 0.02)?;
    let scale = (hd as f64).powf(-0.5);
    println!(
        "one vision layer, {n} patches, {heads} heads x {hd}, {} rayon threads",
        rayon_threads()
    );
    let a = time("attention: per head (first engine)", reps, || {
        per_head(&q, &k, &v, scale)
    })?;
    let f = time("attention: per head, q scaled, fast softmax", reps, || {
        per_head_fast(&q, &k, &v, scale)
    })?;
    let b = time("attention: batched, scale folded into q", reps, || {
        batched_prescaled(&q, &k, &v, scale)
    })?;
    let c = time("attention: 256-row query blocks", reps, || {
        blocked(&q, &k, &v, scale, 256)
    })?;
    let fused = time("attention: fused, tiled (engine now)", reps, || {
        let qs = (&q * scale)?;
        // (n, heads*hd) -> (heads, n, hd) to compare with the others
        opslens_vlm::attention::attention(&qs, &k, &v, None)?
            .reshape((n, heads, hd))?
            .transpose(0, 1)?
            .contiguous()
    })?;
    for (name, o) in [
        ("batched", &b),
        ("blocked", &c),
        ("fast", &f),
        ("fused", &fused),
    ] {
        let diff = (o - &a)?
            .abs()?
            .flatten_all()?
            .max(D::Minus1)?
            .to_scalar::<f32>()?;
        println!("  max |{name} - per head| = {diff:.2e}");
    }
    let scores = q.get(0)?.matmul(&k.get(0)?.t()?)?;
    time("  of which: scores q.k^T, 16 heads", reps, || {
        (0..heads)
            .map(|h| q.get(h)?.matmul(&k.get(h)?.t()?))
            .collect::<candle_core::Result<Vec<_>>>()
    })?;
    time("  of which: softmax over 16 score matrices", reps, || {
        (0..heads)
            .map(|_| candle_nn::ops::softmax_last_dim(&scores))
            .collect::<candle_core::Result<Vec<_>>>()
    })?;
    time("  the same with ops::softmax_last_dim", reps, || {
        (0..heads)
            .map(|_| opslens_vlm::ops::softmax_last_dim(&scores))
            .collect::<candle_core::Result<Vec<_>>>()
    })?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    time("  of which: probs . v, 16 heads", reps, || {
        (0..heads)
            .map(|h| probs.matmul(&v.get(h)?))
            .collect::<candle_core::Result<Vec<_>>>()
    })?;
    time("qkv projection (n x 1024 -> 3072)", reps, || {
        x.matmul(&wqkv.t()?)
    })?;
    time("MLP (1024 -> 4096 -> 1024, gelu)", reps, || {
        x.matmul(&w1.t()?)?.gelu()?.matmul(&w2.t()?)
    })?;
    let _ = DType::F32;
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
