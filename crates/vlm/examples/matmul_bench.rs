//! Micro-benchmark of one linear layer in each weight storage, to choose the CPU defaults:
//! `cargo run --release -p opslens-vlm --example matmul_bench -- [M] [K] [N]`; also prints
//! each storage's relative output error against f32.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use opslens_vlm::quant::{Linear, Tower, WeightMode};

fn main() -> anyhow::Result<()> {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let (k, n) = (
        a.get(1).copied().unwrap_or(2048),
        a.get(2).copied().unwrap_or(6144),
    );
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 0.02, (n, k), &dev)?;
    for m in [a.first().copied().unwrap_or(770), 1] {
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let exact = x.matmul(&w.t()?)?;
        for (name, mode, tower) in [
            ("f32", WeightMode::F32, Tower::Text),
            ("f16", WeightMode::F16, Tower::Text), // f32 compute from M >= 16
            ("q8_0", WeightMode::Q8_0, Tower::Text),
            ("q6k", WeightMode::Q6K, Tower::Text),
            ("q4k", WeightMode::Q4K, Tower::Text),
        ] {
            let lin = Linear::from_weight(w.clone(), None, mode, tower)?;
            let (err, ms) = measure(&lin, &x, &exact, if m == 1 { 20 } else { 3 })?;
            println!("M={m:5} K={k} N={n} {name:5} {ms:9.2} ms   rel. error {err:.1e}");
        }
        if m > 1 {
            // What a prefill multiplies with: a short-lived packed copy of the k-quant weight
            // (our AVX2 tiles on CPUs without VNNI; candle's with OPSLENS_CANDLE_TILES=1).
            for (name, mode) in [("q4k", WeightMode::Q4K), ("q6k", WeightMode::Q6K)] {
                let lin = Linear::from_weight(w.clone(), None, mode, Tower::Text)?;
                let t = Instant::now();
                let part = lin.packed_rows(0, n)?;
                let pack_ms = t.elapsed().as_secs_f64() * 1e3;
                let (err, ms) = measure(&part, &x, &exact, 3)?;
                println!(
                    "M={m:5} K={k} N={n} {name} prefill copy {ms:9.2} ms   rel. error {err:.1e}   \
                     packed in {pack_ms:.1} ms"
                );
            }
        }
    }
    Ok(())
}

/// The layer's relative output error against the f32 product `exact` (random weights: a
/// storage's rounding, not a model-quality figure), and its mean time over `reps` calls in ms.
fn measure(lin: &Linear, x: &Tensor, exact: &Tensor, reps: usize) -> anyhow::Result<(f32, f64)> {
    let norm =
        |t: &Tensor| -> anyhow::Result<f32> { Ok(t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?) };
    let err = norm(&(lin.forward(x)? - exact)?)? / norm(exact)?;
    let t = Instant::now();
    for _ in 0..reps {
        lin.forward(x)?.to_dtype(DType::F32)?;
    }
    Ok((err, t.elapsed().as_secs_f64() * 1e3 / reps as f64))
}
