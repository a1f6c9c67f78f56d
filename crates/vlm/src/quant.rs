//! Linear layers that are either dense (f32/f16) or quantized through candle's `QMatMul`.
//!
//! Quantization happens at load time, one tensor at a time, so the peak memory is the
//! quantized model plus one f32 tensor. On x86 CPUs candle's Q4K/Q8_0 kernels beat dense f32
//! by 1.3-2.5x in prefill and read 4-8x fewer bytes per decoded token; bf16 is never used on
//! CPU because candle's bf16 matmul there is ~5x slower than f32 (see reference/vlm.md §3.1).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

/// How the weights of the large matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightMode {
    /// Dense f32: the reference numerics, used by the parity tests.
    F32,
    /// Dense f16 weights, f32 activations: half the memory, no quantization error beyond f16.
    F16,
    /// 8-bit blocks (`GgmlDType::Q8_0`): near-lossless, ~4x smaller than f32.
    Q8_0,
    /// 6-bit k-quants (`GgmlDType::Q6K`): near-lossless like Q8_0 but with candle's repacked
    /// x86 kernels, so it is fast at prefill/vision sizes where Q8_0 is not.
    Q6K,
    /// 4-bit k-quants (`GgmlDType::Q4K`): the default on CPU for the decoder, the smallest
    /// and fastest (its repacked x86 kernels beat f32 even at prefill sizes).
    #[default]
    Q4K,
}

impl WeightMode {
    /// Parses the CLI spelling (`f32`, `f16`, `q8_0`, `q6k`, `q4k`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            "q8_0" | "q8" => Some(Self::Q8_0),
            "q6k" | "q6_k" | "q6" => Some(Self::Q6K),
            "q4k" | "q4_k" | "q4" => Some(Self::Q4K),
            _ => None,
        }
    }

    /// The ggml block format of this mode, if quantized.
    fn quant(self) -> Option<GgmlDType> {
        match self {
            Self::F32 | Self::F16 => None,
            Self::Q8_0 => Some(GgmlDType::Q8_0),
            Self::Q6K => Some(GgmlDType::Q6K),
            Self::Q4K => Some(GgmlDType::Q4K),
        }
    }

    /// The vision-tower storage paired with this decoder mode by default. Quantized modes keep
    /// the vision tower in f16 (computed in f32): candle's Q8_0 matmul is ~5x slower than f32 at
    /// the tower's 1-3k rows, and 4-bit vision weights are an untested quality risk.
    pub fn default_vision(self) -> Self {
        match self {
            Self::F32 => Self::F32,
            _ => Self::F16,
        }
    }

    /// Storage dtype of dense weights.
    pub fn dense_dtype(self) -> DType {
        match self {
            Self::F16 => DType::F16,
            _ => DType::F32,
        }
    }
}

/// Which tower a linear layer belongs to (they quantize differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tower {
    /// Vision encoder and mergers.
    Vision,
    /// Text decoder and `lm_head`.
    Text,
}

/// A `y = x W^T (+ b)` layer with dense or quantized `W`; `x` and `y` are always f32.
#[derive(Debug, Clone)]
pub struct Linear {
    inner: Inner,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Inner {
    Dense(Tensor),
    Quant(QMatMul),
}

impl Linear {
    /// Loads `{prefix}.weight` (and `{prefix}.bias` when `bias`) of shape `(out, inp)`.
    pub fn load(
        vb: &VarBuilder,
        inp: usize,
        out: usize,
        bias: bool,
        mode: WeightMode,
        tower: Tower,
    ) -> Result<Self> {
        let w = vb.get((out, inp), "weight")?;
        let bias = if bias {
            Some(vb.get(out, "bias")?)
        } else {
            None
        };
        Self::from_weight(w, bias, mode, tower)
    }

    /// Wraps an f32 weight, quantizing it when the mode asks and the row length allows.
    /// `tower` is informational (callers pick the mode per tower).
    pub fn from_weight(
        w: Tensor,
        bias: Option<Tensor>,
        mode: WeightMode,
        _tower: Tower,
    ) -> Result<Self> {
        let q = mode.quant();
        let inp = w.dim(1)?;
        // k-quants need rows that are multiples of 256, Q8_0 of 32; tiny test models fall back.
        let q = q.and_then(|q| {
            if inp % q.block_size() == 0 {
                Some(q)
            } else if inp % GgmlDType::Q8_0.block_size() == 0 {
                Some(GgmlDType::Q8_0)
            } else {
                None
            }
        });
        let inner = match q {
            Some(q) => {
                let qt = QTensor::quantize(&w.to_dtype(DType::F32)?, q)?;
                Inner::Quant(QMatMul::from_qtensor(qt)?)
            }
            None => Inner::Dense(w.to_dtype(mode.dense_dtype())?),
        };
        let bias = bias.map(|b| b.to_dtype(DType::F32)).transpose()?;
        Ok(Self { inner, bias })
    }

    /// The quantized weight, shared, when this layer is quantized (a tied embedding gathers
    /// its rows from it instead of keeping a second, dense copy).
    pub fn qtensor(&self) -> Option<std::sync::Arc<QTensor>> {
        match &self.inner {
            Inner::Quant(QMatMul::QTensor(q)) => Some(q.clone()),
            _ => None,
        }
    }

    /// Applies the layer to `x` of shape `(.., inp)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.inner {
            Inner::Quant(q) => q.forward(x)?,
            Inner::Dense(w) => {
                let dims = x.dims().to_vec();
                let inp = dims[dims.len() - 1];
                let x2 = x.reshape(((), inp))?;
                // candle's CPU f16 GEMM is slower than f32 beyond a few rows: upcast the weight
                // (transient) for prefill-sized inputs, stay in f16 for decode.
                let y = if w.dtype() == DType::F32 {
                    x2.matmul(&w.t()?)?
                } else if x2.dim(0)? >= 16 {
                    x2.to_dtype(DType::F32)?
                        .matmul(&w.to_dtype(DType::F32)?.t()?)?
                } else {
                    x2.to_dtype(w.dtype())?
                        .matmul(&w.t()?)?
                        .to_dtype(DType::F32)?
                };
                let mut out_dims = dims;
                let last = out_dims.len() - 1;
                out_dims[last] = w.dim(0)?;
                y.reshape(out_dims)?
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Builds `n` items with `f(i)` on all cores: candle quantizes on one thread, so loading a
/// 2B model layer by layer would take minutes; layers are independent.
pub fn par_build<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n.max(1));
    if threads <= 1 {
        return (0..n).map(&f).collect();
    }
    let f = &f;
    let mut slots: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, f(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(items) => {
                    for (i, r) in items {
                        slots[i] = Some(r);
                    }
                }
                Err(_) => {
                    if let Some(slot) = slots.iter_mut().find(|s| s.is_none()) {
                        *slot = Some(Err(candle_core::Error::Msg(
                            "loader thread panicked".into(),
                        )));
                    }
                }
            }
        }
    });
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err(candle_core::Error::Msg("layer not built".into()))))
        .collect()
}

/// Rows `ids` of a quantized `(rows, k)` matrix, dequantized to f32 `(ids.len(), k)`.
/// Lets a tied embedding share the quantized `lm_head` (saves 0.6 GB at f16 for the 2B model).
pub fn gather_rows(q: &QTensor, ids: &[u32], dev: &Device) -> Result<Tensor> {
    use candle_core::quantized::QStorage;
    let (_rows, k) = q.shape().dims2()?;
    let dtype = q.dtype();
    let row_bytes = k / dtype.block_size() * dtype.type_size();
    let data = q.data()?;
    let mut out = Vec::with_capacity(ids.len() * row_bytes);
    for &id in ids {
        let s = id as usize * row_bytes;
        let row = data
            .get(s..s + row_bytes)
            .ok_or_else(|| candle_core::Error::Msg(format!("token id {id} out of range")))?;
        out.extend_from_slice(row);
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), dev, dtype)?;
    QTensor::new(storage, (ids.len(), k))?.dequantize(dev)
}
