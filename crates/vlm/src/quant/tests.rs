//! Tests of the linear layers: candle's products, the decode kernels and the packed copies agree.

use super::*;
use crate::ops::max_abs_diff;

/// The one-row product on the blocks equals candle's quantized matmul for each storage.
#[test]
fn gemv_matches_qmatmul() {
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 0.05, (40, 512), &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (1, 512), &dev).unwrap();
    for dt in [GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::Q8_0] {
        let q = std::sync::Arc::new(QTensor::quantize(&w, dt).unwrap());
        let ours = gemv(&q, &x).unwrap().expect("handled");
        let theirs = QMatMul::from_arc(q.clone()).unwrap().forward(&x).unwrap();
        assert_eq!(ours.dims(), &[1, 40]);
        let d = max_abs_diff(&ours, &theirs);
        assert!(d < 1e-4, "{dt:?}: {d}");
    }
    // The decode kernels on blocks from our quantizer give candle's answer too.
    for dt in [GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::Q8_0] {
        let q = std::sync::Arc::new(quantize(&w, dt).unwrap());
        let lin = Linear::from_qtensor(q.clone(), None).unwrap();
        let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let mut out = vec![0f32; 40];
        lin.matvec(&xs, &mut Acts::default(), &mut out, false)
            .unwrap();
        let ours = Tensor::from_vec(out, (1, 40), &dev).unwrap();
        let theirs = QMatMul::from_arc(q).unwrap().forward(&x).unwrap();
        let d = max_abs_diff(&ours, &theirs);
        // and so does candle's repacked copy (built by `prepare`)
        lin.prepare().unwrap();
        let packed = max_abs_diff(&ours, &lin.forward(&x).unwrap());
        // Q8_0: the decode kernel keeps the input's block scales in f32, candle in f16.
        let tol = if dt == GgmlDType::Q8_0 { 2e-3 } else { 1e-5 };
        assert!(d < tol && packed < tol, "decode {dt:?}: {d} {packed}");
    }
    // Unsupported inputs fall back to the caller.
    let q = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
    assert!(
        gemv(&q, &Tensor::zeros((2, 512), DType::F32, &dev).unwrap())
            .unwrap()
            .is_none()
    );
}

/// A Q4K product of many rows, split into calls below candle's AMX threshold where the
/// CPU could take AMX, gives the unsplit product's result (same kernels' numerics: each
/// row is an independent dot product per column), for inputs of any rank.
#[test]
fn many_row_q4k_products_split_and_agree() {
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 0.05, (48, 512), &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (3, 33, 512), &dev).unwrap();
    let q = std::sync::Arc::new(quantize(&w, GgmlDType::Q4K).unwrap());
    let lin = Linear::from_qtensor(q.clone(), None).unwrap();
    lin.prepare().unwrap();
    let ours = lin.forward(&x).unwrap();
    assert_eq!(ours.dims(), &[3, 33, 48]);
    let flat = x.reshape((99, 512)).unwrap();
    let dq = q.dequantize(&dev).unwrap();
    let exact = flat.matmul(&dq.t().unwrap()).unwrap();
    let scale = exact.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    let rel =
        max_abs_diff(&ours.reshape((99, 48)).unwrap(), &exact) / scale.to_scalar::<f32>().unwrap();
    assert!(rel < 0.02, "{rel}");
    // Row by row (one-row calls never take AMX) gives the same rows.
    for r in [0, 31, 32, 98] {
        let one = lin.forward(&flat.narrow(0, r, 1).unwrap()).unwrap();
        let got = ours.reshape((99, 48)).unwrap().narrow(0, r, 1).unwrap();
        assert!(max_abs_diff(&one, &got) < 1e-4, "row {r}");
    }
}

/// A packed part of a weight (as a prefill multiplies with) gives exactly the matching
/// columns of the whole weight's product (bit for bit where both take candle's kernels), at many rows (AMX-split on such CPUs) and few;
/// rows outside the weight, dense weights and Q8_0 are refused or not offered.
#[test]
fn packed_parts_equal_the_whole_weights_columns() {
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 0.05, (96, 512), &dev).unwrap();
    for dt in [GgmlDType::Q4K, GgmlDType::Q6K] {
        let lin =
            Linear::from_qtensor(std::sync::Arc::new(quantize(&w, dt).unwrap()), None).unwrap();
        assert!(lin.repacks_for_many_rows());
        for m in [2, 40] {
            let x = Tensor::randn(0f32, 1.0, (m, 512), &dev).unwrap();
            let whole = lin.forward(&x).unwrap();
            for (start, len) in [(0, 32), (32, 48), (80, 16)] {
                let part = lin.packed_rows(start, len).unwrap().forward(&x).unwrap();
                let cols = whole.narrow(1, start, len).unwrap();
                // Our AVX2 tiles (CPUs without VNNI) sum in another order than
                // candle's kernels on the whole weight: equal up to f32 rounding there.
                let tol = if our_tiles() { 1e-4 } else { 0.0 };
                let diff = max_abs_diff(&part, &cols);
                assert!(diff <= tol, "{dt:?} m={m} {start}+{len}: {diff}");
            }
        }
        assert!(lin.packed_rows(90, 16).is_err());
    }
    let dense = Linear::from_weight(w.clone(), None, WeightMode::F32, Tower::Text).unwrap();
    let q8 = Linear::from_weight(w, None, WeightMode::Q8_0, Tower::Text).unwrap();
    assert!(!dense.repacks_for_many_rows() && !q8.repacks_for_many_rows());
    assert!(dense.packed_rows(0, 16).is_err());
}

/// The parallel Q8_0 expansion equals candle's, and a Q8_0 layer gives the same result on
/// the expanded-f32 path (many rows) as through candle's quantized kernel (one row).
#[test]
fn q8_0_expansion_matches_candle() {
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 0.05, (48, 96), &dev).unwrap();
    let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
    let ours = dequantize_q8_0(&q, &dev).unwrap();
    assert_eq!(max_abs_diff(&ours, &q.dequantize(&dev).unwrap()), 0.0);

    // 96-wide rows are always expanded; 256-wide ones take candle's VNNI tiles where the
    // CPU has them (a packed copy per call), and are expanded elsewhere.
    for (n, k) in [(48, 96), (32, 256)] {
        let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap();
        let lin = Linear::from_weight(w.clone(), None, WeightMode::Q8_0, Tower::Vision).unwrap();
        assert!(lin.qtensor().is_some());
        let x = Tensor::randn(0f32, 1.0, (20, k), &dev).unwrap();
        let many = lin.forward(&x).unwrap();
        assert_eq!(many.dims(), &[20, n]);
        let exact = x.matmul(&w.t().unwrap()).unwrap();
        let scale = exact.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let rel = max_abs_diff(&many, &exact) / scale.to_scalar::<f32>().unwrap();
        assert!(rel < 0.02, "many-row Q8_0 vs f32 ({n} x {k}): {rel}");
        for r in [0, 7, 19] {
            let one = lin.forward(&x.narrow(0, r, 1).unwrap()).unwrap();
            // candle's kernel also quantizes the activations: close, not equal.
            let d = max_abs_diff(&one, &many.narrow(0, r, 1).unwrap());
            assert!(d < 0.05, "row {r}: {d}");
        }
        // A second call gives the same answer (each call packs its own copy).
        assert_eq!(max_abs_diff(&many, &lin.forward(&x).unwrap()), 0.0);
    }
}
