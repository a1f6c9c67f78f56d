//! The decode kernels against dequantize-then-matmul, candle's activations and direct
//! formulas.

use super::*;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// The kernels (AVX2 where present, and the portable ones) against dequantize-then-matmul
/// in f32, for each block format, with and without accumulation.
#[test]
fn matvec_matches_dequantized_matmul() {
    let dev = Device::Cpu;
    let (n, k) = (67, 768);
    let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap();
    let xv: Vec<f32> = Tensor::randn(0f32, 1.0, k, &dev)
        .unwrap()
        .to_vec1()
        .unwrap();
    for dt in [GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::Q8_0] {
        let q = QTensor::quantize(&w, dt).unwrap();
        let wd: Vec<f32> = q
            .dequantize(&dev)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let data = q.data().unwrap();
        let wr = match dt {
            GgmlDType::Q4K => WeightRef::Q4K(&data),
            GgmlDType::Q6K => WeightRef::Q6K(&data),
            _ => WeightRef::Q8_0(&data),
        };
        assert!(fits(wr, n, k));
        let mut a = Acts::default();
        prepare(wr, &xv, &mut a);
        // The input as the kernels see it (8-bit, one scale per block): against it the
        // kernels differ from the dequantized product only in summation order.
        let xq: Vec<f32> = (0..k)
            .map(|i| {
                let d = match dt {
                    GgmlDType::Q8_0 => a.b_d[i / QK8_0],
                    _ => a.k_d[i / QK_K],
                };
                d * f32::from(a.qs[i])
            })
            .collect();
        let dot = |x: &[f32], r: usize| -> f32 {
            wd[r * k..(r + 1) * k]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum()
        };
        let exact: Vec<f32> = (0..n).map(|r| dot(&xq, r)).collect();
        let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mut out = vec![0f32; n];
        matvec(wr, k, &xv, &a, &mut out, false);
        for (r, (o, e)) in out.iter().zip(&exact).enumerate() {
            assert!((o - e).abs() < 1e-4 * scale, "{dt:?} row {r}: {o} vs {e}");
            // and the 8-bit input stays close to the f32 one
            let f = dot(&xv, r);
            assert!(
                (o - f).abs() < 0.02 * scale,
                "{dt:?} row {r}: {o} vs f32 {f}"
            );
        }
        // The portable kernel computes the same integer sums.
        let nb = k / dt.block_size();
        let rb = data.len() / n;
        for r in [0, 33, n - 1] {
            let row = &data[r * rb..(r + 1) * rb];
            let s = match dt {
                GgmlDType::Q4K => dot_q4k_scalar(row, &a, nb),
                GgmlDType::Q6K => dot_q6k_scalar(row, &a, nb),
                _ => dot_q8_0_scalar(row, &a, nb),
            };
            assert!(
                (s - out[r]).abs() < 1e-4 * scale.max(1.0),
                "{dt:?} scalar row {r}"
            );
        }
        let mut acc = vec![1f32; n];
        matvec(wr, k, &xv, &a, &mut acc, true);
        for (x, o) in acc.iter().zip(&out) {
            assert!((x - 1.0 - o).abs() < 1e-5 * scale.max(1.0));
        }
    }
    // f32 rows.
    let wv: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
    let mut out = vec![0f32; n];
    matvec(
        WeightRef::F32(&wv),
        k,
        &xv,
        &Acts::default(),
        &mut out,
        false,
    );
    for (r, o) in out.iter().enumerate() {
        let e: f32 = wv[r * k..(r + 1) * k]
            .iter()
            .zip(&xv)
            .map(|(a, b)| a * b)
            .sum();
        assert!((o - e).abs() < 1e-4, "f32 row {r}");
    }
}

/// The activation quantizer matches candle's Q8K exactly (same scale, same rounding), so
/// decode and the tensor path see the same integers.
#[test]
fn q8k_activations_match_candle() {
    use candle_core::quantized::k_quants::{BlockQ8K, GgmlType};
    let x: Vec<f32> = Tensor::randn(0f32, 2.0, 512, &Device::Cpu)
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut theirs = vec![BlockQ8K::zeros(); 2];
    BlockQ8K::from_float(&x, &mut theirs);
    let mut a = Acts::default();
    a.quantize_q8k(&x);
    // Dequantized values agree exactly.
    let mut back = vec![0f32; 512];
    BlockQ8K::to_float(&theirs, &mut back);
    for (i, v) in back.iter().enumerate() {
        let ours = a.k_d[i / QK_K] * f32::from(a.qs[i]);
        assert_eq!(ours, *v, "value {i}");
    }
}

/// One-token attention equals softmax(q k^T) v computed directly, with grouped heads and
/// a cache longer than its filled part.
#[test]
fn attend_one_matches_direct_softmax() {
    let (heads, kvh, hd, n, cap) = (6, 2, 16, 37, 50);
    let r = |len| -> Vec<f32> {
        Tensor::randn(0f32, 1.0, len, &Device::Cpu)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (q, k, v) = (r(heads * hd), r(kvh * cap * hd), r(kvh * cap * hd));
    // f16 caches: checked against the same formula on the f16-rounded keys and values
    let half16 =
        |x: &[f32]| -> Vec<half::f16> { x.iter().map(|&a| half::f16::from_f32(a)).collect() };
    let (k16, v16) = (half16(&k), half16(&v));
    let widen = |x: &[half::f16]| -> Vec<f32> { x.iter().map(|a| a.to_f32()).collect() };
    let mut out16 = vec![0f32; heads * hd];
    attend_one(&q, &k16, &v16, cap, n, kvh, hd, &mut out16);
    let mut out = vec![0f32; heads * hd];
    attend_one(&q, &k, &v, cap, n, kvh, hd, &mut out);
    for (out, k, v) in [(out, k, v), (out16, widen(&k16), widen(&v16))] {
        for h in 0..heads {
            let j = h / (heads / kvh);
            let qh = &q[h * hd..(h + 1) * hd];
            let s: Vec<f64> = (0..n)
                .map(|p| {
                    let kr = &k[(j * cap + p) * hd..(j * cap + p + 1) * hd];
                    qh.iter().zip(kr).map(|(a, b)| f64::from(a * b)).sum()
                })
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                let want: f64 = (0..n)
                    .map(|p| e[p] / z * f64::from(v[(j * cap + p) * hd + d]))
                    .sum();
                let got = f64::from(out[h * hd + d]);
                assert!(
                    (got - want).abs() < 1e-5,
                    "head {h} dim {d}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn silu_mul_matches_the_formula() {
    let g0 = [-100f32, -5.0, -0.5, 0.0, 0.3, 4.0, 90.0];
    let u = [1f32, 2.0, -1.0, 3.0, 0.5, -2.0, 1.0];
    let mut g = g0;
    silu_mul(&mut g, &u);
    for i in 0..g0.len() {
        let want = g0[i] / (1.0 + (-g0[i]).exp()) * u[i];
        assert!((g[i] - want).abs() < 1e-6 * want.abs().max(1.0), "{i}");
    }
}
