//! Linear layers that are either dense (f32/f16) or quantized through candle's `QMatMul`.
//!
//! Quantization happens at load time, one tensor at a time, so the peak memory is the
//! quantized model plus one f32 tensor. On x86 CPUs candle's repacked Q4K kernels beat dense
//! f32 in prefill and read ~7x fewer bytes per decoded token; the decode kernels read the
//! blocks, and a prefill multiplies through short-lived packed copies of one layer at a time
//! ([`Linear::packed_rows`]; our own [`tiles`] on AVX2 CPUs without VNNI), so the decoder is
//! held once. Its Q8_0 matmul has no fast path
//! on AVX2 at many rows, so Q8_0 layers expand their weight to f32 per call there (storage
//! near-lossless at half of f16, compute at f32 speed); with VNNI they take candle's tiles,
//! packed per call. bf16 is never used on CPU because
//! candle's bf16 matmul there is ~5x slower than f32 (see reference/vlm.md §3.1).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::decode::{self, Acts, WeightRef};

/// How the weights of the large matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightMode {
    /// Dense f32: the reference numerics, used by the parity tests.
    F32,
    /// Dense f16 weights, f32 activations: half the memory, no quantization error beyond f16.
    F16,
    /// Dense bf16 weights (the checkpoints' own storage), f32 activations between layers: the
    /// GPU choice, since GPUs multiply bf16 natively and its range never overflows. Never
    /// chosen for the CPU, where candle's bf16 matmul is ~5x slower than f32.
    BF16,
    /// 8-bit blocks (`GgmlDType::Q8_0`): near-lossless, ~4x smaller than f32; at many rows
    /// computed by expanding the weight to f32 (candle's Q8_0 GEMM is slow on AVX2), or with
    /// candle's VNNI tiles where the CPU has VNNI (2.1-2.3x faster at vision sizes).
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
    /// The spellings [`WeightMode::parse`] takes, for error messages.
    pub const NAMES: &'static str = "f32, bf16, f16, q8_0, q6k, q4k";

    /// Parses the CLI spelling (`f32`, `bf16`, `f16`, `q8_0`, `q6k`, `q4k`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            "bf16" => Some(Self::BF16),
            "q8_0" | "q8" => Some(Self::Q8_0),
            "q6k" | "q6_k" | "q6" => Some(Self::Q6K),
            "q4k" | "q4_k" | "q4" => Some(Self::Q4K),
            _ => None,
        }
    }

    /// The ggml block format of this mode, if quantized.
    fn quant(self) -> Option<GgmlDType> {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => None,
            Self::Q8_0 => Some(GgmlDType::Q8_0),
            Self::Q6K => Some(GgmlDType::Q6K),
            Self::Q4K => Some(GgmlDType::Q4K),
        }
    }

    /// The vision-tower storage paired with this decoder mode by default. Quantized modes keep
    /// the vision tower in Q8_0 blocks (8.5 bits, ~0.5% weight error; computed as f32 by
    /// expanding each layer's weight per call, or with 8-bit activations through VNNI, as
    /// llama.cpp computes a Q8_0 projector): half the memory of f16 at the same speed or better,
    /// while 4-bit vision weights (~7% error per layer) are an untested quality risk for
    /// reading small numbers off dashboards.
    pub fn default_vision(self) -> Self {
        match self {
            Self::F32 => Self::F32,
            Self::F16 => Self::F16,
            Self::BF16 => Self::BF16,
            _ => Self::Q8_0,
        }
    }

    /// The mode of the decoder tensors a 4-bit model is most sensitive to: the output head
    /// (every logit goes through it) and, in [`more_bits`] layers, the attention input and
    /// the MLP output. Q4K keeps them in Q6K blocks, as llama.cpp's Q4_K_M does: with all of
    /// them at 4 bits, teacher-forced agreement with the f32 path fell below llama.cpp's on
    /// the same weights (issue 14). Other modes use one storage for every tensor.
    pub fn sensitive(self) -> Self {
        match self {
            Self::Q4K => Self::Q6K,
            m => m,
        }
    }

    /// Storage dtype of dense weights.
    pub fn dense_dtype(self) -> DType {
        match self {
            Self::F16 => DType::F16,
            Self::BF16 => DType::BF16,
            _ => DType::F32,
        }
    }
}

/// Layers whose sensitive tensors get [`WeightMode::sensitive`] storage: the first and last
/// eighth and every third one between (llama.cpp's `use_more_bits`, 14 of Qwen3-VL-2B's 28).
pub fn more_bits(layer: usize, layers: usize) -> bool {
    let (head, tail) = (layers / 8, 7 * layers / 8);
    layer < head || layer >= tail || (layer - head) % 3 == 2
}

/// Quantizes an f32 weight to `dt`. The k-quants go through llama.cpp's weighted search for
/// block scales and minimums (candle's `quantize_imatrix`, every column of equal importance)
/// rather than candle's `quantize`, a 5-step min/max fit whose larger weight error showed as
/// lower agreement with the f32 path than llama.cpp's quantizer gets from the same weights.
/// Slower at load (the quantized-weight cache makes that a one-off).
pub fn quantize(w: &Tensor, dt: GgmlDType) -> Result<QTensor> {
    match dt {
        GgmlDType::Q2K | GgmlDType::Q3K | GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K => {
            let k = w.dim(candle_core::D::Minus1)?;
            QTensor::quantize_imatrix(w, &vec![1.0; k], dt)
        }
        _ => QTensor::quantize(w, dt),
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
    /// A prefill's short-lived copy on an AMX CPU: candle may build its AMX copy for products
    /// of many rows, since it goes with this one ([`Linear::packed_rows`]).
    amx: bool,
}

#[derive(Debug, Clone)]
enum Inner {
    Dense(Tensor),
    Quant(QMatMul),
    /// A prefill's short-lived Q4K/Q6K copy in our AVX2 tiles ([`Linear::packed_rows`]).
    Tiles(std::sync::Arc<tiles::QTiles>),
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
        let bias = if bias {
            Some(vb.get(out, "bias")?)
        } else {
            None
        };
        let name = format!("{}.weight", vb.prefix());
        let cache = crate::qcache::current();
        if let (Some(c), Some(dt)) = (&cache, storage(mode, inp)) {
            if let Some(q) = c.get(&name, (out, inp), dt) {
                return Self::from_qtensor(q, bias);
            }
        }
        let lin = Self::from_weight(vb.get((out, inp), "weight")?, bias, mode, tower)?;
        if let (Some(c), Some(q)) = (&cache, lin.qtensor()) {
            c.record(&name, q);
        }
        Ok(lin)
    }

    /// Loads several `(out_i, inp)` weights that read the same input (q/k/v, gate/up) as one
    /// `(sum out_i, inp)` layer, so a decode step reads the input once and runs one parallel
    /// region instead of several. Quantized rows are independent, so concatenating the parts'
    /// blocks gives exactly the blocks of the concatenated matrix; the fused weight is what the
    /// quantized-weight cache keeps, under `name`.
    pub fn load_fused(
        parts: &[(VarBuilder, usize)],
        name: &str,
        inp: usize,
        mode: WeightMode,
        tower: Tower,
    ) -> Result<Self> {
        let total: usize = parts.iter().map(|p| p.1).sum();
        let cache = crate::qcache::current();
        let Some(dt) = storage(mode, inp) else {
            let ws = parts
                .iter()
                .map(|(vb, out)| vb.get((*out, inp), "weight"))
                .collect::<Result<Vec<_>>>()?;
            return Self::from_weight(Tensor::cat(&ws, 0)?, None, mode, tower);
        };
        if let Some(q) = cache.as_ref().and_then(|c| c.get(name, (total, inp), dt)) {
            return Self::from_qtensor(q, None);
        }
        let mut bytes = Vec::new();
        let mut device = Device::Cpu;
        for (vb, out) in parts {
            let w = vb.get((*out, inp), "weight")?.to_dtype(DType::F32)?;
            device = w.device().clone();
            bytes.extend_from_slice(&quantize(&w, dt)?.data()?);
        }
        let storage = candle_core::quantized::QStorage::from_data(
            std::borrow::Cow::Owned(bytes),
            &device,
            dt,
        )?;
        let q = std::sync::Arc::new(QTensor::new(storage, (total, inp))?);
        if let Some(c) = &cache {
            c.record(name, q.clone());
        }
        Self::from_qtensor(q, None)
    }

    /// Wraps an already quantized weight (from the cache of an earlier load).
    pub fn from_qtensor(q: std::sync::Arc<QTensor>, bias: Option<Tensor>) -> Result<Self> {
        Ok(Self {
            amx: false,
            inner: Inner::Quant(QMatMul::from_arc(q)?),
            bias: bias.map(|b| b.to_dtype(DType::F32)).transpose()?,
        })
    }

    /// Wraps an f32 weight, quantizing it when the mode asks and the row length allows.
    /// `tower` is informational (callers pick the mode per tower).
    pub fn from_weight(
        w: Tensor,
        bias: Option<Tensor>,
        mode: WeightMode,
        _tower: Tower,
    ) -> Result<Self> {
        let inner = match storage(mode, w.dim(1)?) {
            Some(q) => {
                let qt = quantize(&w.to_dtype(DType::F32)?, q)?;
                Inner::Quant(QMatMul::from_qtensor(qt)?)
            }
            None => Inner::Dense(w.to_dtype(mode.dense_dtype())?),
        };
        let bias = bias.map(|b| b.to_dtype(DType::F32)).transpose()?;
        Ok(Self {
            inner,
            bias,
            amx: false,
        })
    }

    /// The quantized weight, shared, when this layer is quantized (a tied embedding gathers
    /// its rows from it instead of keeping a second, dense copy).
    pub fn qtensor(&self) -> Option<std::sync::Arc<QTensor>> {
        match &self.inner {
            Inner::Quant(QMatMul::QTensor(q)) => Some(q.clone()),
            _ => None,
        }
    }

    /// Builds candle's repacked copy of a quantized weight now rather than lazily inside the
    /// first product of many rows, so that the packing can run in parallel with other weights'
    /// (see [`Self::packed_rows`]).
    pub fn prepare(&self) -> Result<()> {
        if let Inner::Quant(QMatMul::QTensor(q)) = &self.inner {
            // Two rows: Q6K packs only for more than one row.
            let x = Tensor::zeros((2, q.shape().dims2()?.1), DType::F32, &q.device())?;
            self.forward(&x)?;
        }
        Ok(())
    }

    /// Whether candle multiplies this weight by many rows through a repacked copy that it then
    /// keeps for the weight's lifetime (Q4K and Q6K on the CPU, where the decode kernels read
    /// the blocks themselves, so the copy would double the weight's memory for good).
    pub(crate) fn repacks_for_many_rows(&self) -> bool {
        matches!(&self.inner, Inner::Quant(QMatMul::QTensor(q))
            if q.device().is_cpu() && matches!(q.dtype(), GgmlDType::Q4K | GgmlDType::Q6K))
    }

    /// Rows `start..start + len` of a quantized weight as a layer of their own, with candle's
    /// repacked copy already built (on AMX CPUs a Q4K part's AMX copy is built by its first
    /// product instead): for one prefill's products, after which the copy is dropped.
    ///
    /// Keeping candle's copy of every decoder weight held ~1.2 GB of the 2B model's ~3 GB
    /// beside the blocks the decode kernels read (issue 14); building it per prefill, layer by
    /// layer, costs ~35 ms of packing per layer on two cores. Rows are independent, so the
    /// part's products equal the matching columns of the whole weight's (bit for bit where
    /// both take the same kernels).
    pub fn packed_rows(&self, start: usize, len: usize) -> Result<Linear> {
        let Inner::Quant(QMatMul::QTensor(q)) = &self.inner else {
            candle_core::bail!("packed_rows: not a quantized weight");
        };
        if self.bias.is_some() {
            candle_core::bail!("packed_rows: a weight with a bias");
        }
        let (_, k) = q.shape().dims2()?;
        let q6k = q.dtype() == GgmlDType::Q6K;
        if (q6k || q.dtype() == GgmlDType::Q4K) && our_tiles() && tiles::fits(len, k) {
            let packed = tiles::QTiles::pack(&q.data()?, q6k, start, len, k)?;
            return Ok(Self {
                inner: Inner::Tiles(std::sync::Arc::new(packed)),
                bias: None,
                amx: false,
            });
        }
        let mut part = Self::from_qtensor(copy_rows(q, start, len)?, None)?;
        if q.dtype() == GgmlDType::Q4K && candle_x86().amx {
            // candle packs its AMX copy inside the product; VNNI tiles would go unused.
            part.amx = true;
        } else {
            part.prepare()?;
        }
        Ok(part)
    }

    /// Runs `f` on the weight as the CPU decode kernels read it ([`crate::decode`]), or on
    /// `None` where they cannot (other devices and storages, a bias).
    pub(crate) fn with_raw<R>(&self, f: impl FnOnce(Option<WeightRef<'_>>) -> R) -> R {
        if self.bias.is_some() {
            return f(None);
        }
        match &self.inner {
            Inner::Quant(QMatMul::QTensor(q)) if q.device().is_cpu() => {
                let Ok(data) = q.data() else {
                    return f(None);
                };
                match q.dtype() {
                    GgmlDType::Q4K => f(Some(WeightRef::Q4K(&data))),
                    GgmlDType::Q6K => f(Some(WeightRef::Q6K(&data))),
                    GgmlDType::Q8_0 => f(Some(WeightRef::Q8_0(&data))),
                    _ => f(None),
                }
            }
            Inner::Dense(w)
                if w.dtype() == DType::F32 && w.device().is_cpu() && w.is_contiguous() =>
            {
                let (guard, layout) = w.storage_and_layout();
                match &*guard {
                    candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => {
                        f(Some(WeightRef::F32(&v[layout.start_offset()..])))
                    }
                    _ => f(None),
                }
            }
            _ => f(None),
        }
    }

    /// `out = x W^T` (`out +=` when `add`) for one input row on the CPU: the decode kernels
    /// where they read this storage, else the tensor path. `acts` holds the quantized input
    /// between calls so no product allocates once warm.
    pub(crate) fn matvec(
        &self,
        x: &[f32],
        acts: &mut Acts,
        out: &mut [f32],
        add: bool,
    ) -> Result<()> {
        let (n, k) = (out.len(), x.len());
        let done = self.with_raw(|w| match w {
            Some(w) if decode::fits(w, n, k) => {
                decode::prepare(w, x, acts);
                decode::matvec(w, k, x, acts, out, add);
                true
            }
            _ => false,
        });
        if done {
            return Ok(());
        }
        let y = self
            .forward(&Tensor::from_slice(x, (1, k), &Device::Cpu)?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if y.len() != n {
            candle_core::bail!("matvec: {} outputs for {n} rows", y.len());
        }
        for (o, v) in out.iter_mut().zip(y) {
            if add {
                *o += v;
            } else {
                *o = v;
            }
        }
        Ok(())
    }

    /// Applies the layer to `x` of shape `(.., inp)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.inner {
            Inner::Quant(QMatMul::QTensor(q))
                if q.dtype() == GgmlDType::Q8_0 && x.elem_count() / q.shape().dims()[1] >= 16 =>
            {
                let (n, k) = q.shape().dims2()?;
                if x.device().is_cpu() && q8_0_tiles(n, k) {
                    // candle's VNNI tiles: 2.1-2.3x the f32 GEMM at vision sizes. Packed into
                    // a copy for this call (2-3 ms for 1024 x 4096) so that candle does not
                    // keep the tiles beside the blocks.
                    let part = QMatMul::from_arc(copy_rows(q, 0, n)?)?;
                    on_rows(x, n, |x2| part.forward(x2))?
                } else {
                    // Without VNNI candle's Q8_0 matmul has no fast path at many rows (~4x
                    // slower than f32 at vision sizes): expand the weight to f32 for this
                    // call (a ~5 ms transient for a 1024 x 4096 layer), take the f32 GEMM.
                    on_rows(x, n, |x2| x2.matmul(&dequantize_q8_0(q, x.device())?.t()?))?
                }
            }
            Inner::Quant(qm @ QMatMul::QTensor(q)) if !self.amx && avoid_amx(q, x)? => {
                on_rows(x, q.shape().dims2()?.0, |x2| {
                    let m = x2.dim(0)?;
                    let parts = (0..m)
                        .step_by(AMX_MIN_ROWS - 1)
                        .map(|s| qm.forward(&x2.narrow(0, s, (AMX_MIN_ROWS - 1).min(m - s))?))
                        .collect::<Result<Vec<_>>>()?;
                    Tensor::cat(&parts, 0)
                })?
            }
            Inner::Quant(q) => q.forward(x)?,
            Inner::Tiles(t) => on_rows(x, t.n(), |x2| t.matmul(x2))?,
            Inner::Dense(w) => on_rows(x, w.dim(0)?, |x2| {
                // candle's CPU f16 GEMM is slower than f32 beyond a few rows: upcast the weight
                // (transient) for prefill-sized inputs, stay in f16 for decode. A GPU
                // multiplies half precision natively at any size.
                if w.dtype() == DType::F32 {
                    x2.matmul(&w.t()?)
                } else if x2.dim(0)? >= 16 && w.device().is_cpu() {
                    x2.to_dtype(DType::F32)?
                        .matmul(&w.to_dtype(DType::F32)?.t()?)
                } else {
                    x2.to_dtype(w.dtype())?
                        .matmul(&w.t()?)?
                        .to_dtype(DType::F32)
                }
            })?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Applies `f` to `x` seen as `(rows, inp)` and gives its `(rows, n)` result `x`'s leading
/// dimensions back: the products here are two-dimensional, the layers' inputs of any rank.
fn on_rows(x: &Tensor, n: usize, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let mut dims = x.dims().to_vec();
    let last = dims.len() - 1;
    let y = f(&x.reshape(((), dims[last]))?)?;
    dims[last] = n;
    y.reshape(dims)
}

/// Rows from which candle 0.11 multiplies a Q4K weight with AMX tiles, on CPUs that have
/// AMX (its `repack_x86`: `m >= 32`).
const AMX_MIN_ROWS: usize = 32;

/// What candle 0.11's x86 kernels do on this CPU, as its `repack_x86::level` and
/// `amx_available` decide (environment overrides included), read once as candle caches them.
/// The choices below follow candle's, so they mirror it in this one place.
#[derive(Debug, Clone, Copy)]
struct CandleX86 {
    /// Many-row products of k-quant and Q8_0 weights run on its VNNI tiles (AVX-512 VNNI, or
    /// AVX-VNNI); elsewhere its Q8_0 product is a slow generic loop.
    vnni_tiles: bool,
    /// Q4K products of [`AMX_MIN_ROWS`] rows or more run on AMX: its AVX-512 VNNI level (no
    /// `MISTRALRS_FORCE_*` override) and AMX-TILE and AMX-INT8 in CPUID leaf 7 (candle reads
    /// them there too; the standard library's detection of them is unstable).
    amx: bool,
}

fn candle_x86() -> CandleX86 {
    static CPU: std::sync::OnceLock<CandleX86> = std::sync::OnceLock::new();
    *CPU.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let (force_avx2, force_vnni) = (
                env_is("MISTRALRS_FORCE_AVX2"),
                env_is("MISTRALRS_FORCE_AVXVNNI"),
            );
            let avx512 = !force_avx2 && !force_vnni && has!("avx512f") && has!("avx512vnni");
            let avx_vnni = !force_avx2 && (force_vnni || has!("avxvnni")) && has!("avx2");
            // Leaf 7 exists on every CPU with AVX-512 (checked first). `__cpuid_count` is safe
            // in recent Rust (1.95 here) and unsafe in older ones (the workspace builds from 1.85).
            #[allow(unsafe_code, unused_unsafe)]
            let amx = avx512 && {
                let edx = unsafe { std::arch::x86_64::__cpuid_count(7, 0) }.edx;
                edx & (1 << 24) != 0 && edx & (1 << 25) != 0
            };
            CandleX86 {
                vnni_tiles: avx512 || avx_vnni,
                amx,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            CandleX86 {
                vnni_tiles: false,
                amx: false,
            }
        }
    })
}

/// Whether a product of `x` by the quantized `w` must be split into calls of fewer than
/// [`AMX_MIN_ROWS`] rows so that candle takes its AVX-512 VNNI tiles rather than AMX.
///
/// On an AMX CPU (Sapphire Rapids and later) candle keeps, per Q4K weight, a copy for AMX
/// (unpacked bytes: 2.22x the blocks) beside the VNNI tiles [`Linear::prepare`] builds
/// (1.33x), which shorter products use. When every decoder weight kept both, the AMX copies
/// took the 2B model's peak RSS from ~2.9 to 4.35 GB (issue 14). A weight kept for the
/// model's life is therefore split into 31-row calls (2-15% slower per product,
/// `matmul_bench`, 777 rows); the prefill's short-lived copies ([`Linear::packed_rows`]) take
/// AMX, whose copy goes with them (prefill 12.1-14.1 -> 9.9-11.0 s, `decode_bench`).
fn avoid_amx(w: &QTensor, x: &Tensor) -> Result<bool> {
    // Without AMX, one call of any size takes the same tiles.
    if !candle_x86().amx
        || w.dtype() != GgmlDType::Q4K
        || !w.device().is_cpu()
        || !x.device().is_cpu()
    {
        return Ok(false);
    }
    let k = w.shape().dims2()?.1;
    Ok(x.elem_count() / k.max(1) >= AMX_MIN_ROWS)
}

/// The ggml format `mode` stores a weight with rows of `inp` values in; `None` = dense.
/// k-quants need rows that are multiples of 256, Q8_0 of 32; tiny test models fall back.
pub fn storage(mode: WeightMode, inp: usize) -> Option<GgmlDType> {
    mode.quant().and_then(|q| {
        if inp % q.block_size() == 0 {
            Some(q)
        } else if inp % GgmlDType::Q8_0.block_size() == 0 {
            Some(GgmlDType::Q8_0)
        } else {
            None
        }
    })
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
    // The workers load with the caller's quantized-weight cache.
    let cache = crate::qcache::current();
    let mut slots: Vec<Option<Result<T>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let cache = cache.clone();
                s.spawn(move || {
                    crate::qcache::scoped(cache, || {
                        (t..n)
                            .step_by(threads)
                            .map(|i| (i, f(i)))
                            .collect::<Vec<_>>()
                    })
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

/// Rows `start..start + len` of `q` in a weight of their own, whose repacked copy (built by
/// candle on its first product of many rows) goes when the copy does.
fn copy_rows(q: &QTensor, start: usize, len: usize) -> Result<std::sync::Arc<QTensor>> {
    let (n, k) = q.shape().dims2()?;
    if start + len > n {
        candle_core::bail!("copy_rows: rows {start}..{} of {n}", start + len);
    }
    let dt = q.dtype();
    let row = k / dt.block_size() * dt.type_size();
    let data = q.data()?;
    let storage = candle_core::quantized::QStorage::from_data(
        std::borrow::Cow::Borrowed(&data[start * row..(start + len) * row]),
        &q.device(),
        dt,
    )?;
    Ok(std::sync::Arc::new(QTensor::new(storage, (len, k))?))
}

/// Whether a prefill's Q4K and Q6K products take our AVX2 tiles ([`tiles`]) rather than
/// candle's: on x86 CPUs with AVX2 but neither VNNI nor AMX, where candle's AVX2 kernels spend
/// a second integer multiply per product that ours mostly save (`MISTRALRS_FORCE_AVX2=1`
/// counts as such a CPU, as candle reads it). `OPSLENS_CANDLE_TILES=1` keeps candle's, for
/// comparison.
fn our_tiles() -> bool {
    static OURS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OURS.get_or_init(|| {
        let cpu = candle_x86();
        tiles::available() && !cpu.vnni_tiles && !cpu.amx && !env_is("OPSLENS_CANDLE_TILES")
    })
}

/// Whether candle multiplies a Q8_0 `n x k` weight by many rows with its VNNI tiles (as its
/// `select` decides for the shape); elsewhere its Q8_0 product is a slow generic loop.
fn q8_0_tiles(n: usize, k: usize) -> bool {
    n % 16 == 0 && k % 256 == 0 && candle_x86().vnni_tiles
}

/// Whether the environment variable `name` is `1` (candle's spelling for its overrides).
fn env_is(name: &str) -> bool {
    std::env::var(name).as_deref() == Ok("1")
}

/// A Q8_0 matrix expanded to f32, rows in parallel (candle's `dequantize` runs on one thread).
fn dequantize_q8_0(q: &QTensor, dev: &Device) -> Result<Tensor> {
    if !dev.is_cpu() {
        return q.dequantize(dev);
    }
    let (rows, k) = q.shape().dims2()?;
    const BLOCK: usize = 32;
    const BYTES: usize = 2 + BLOCK; // f16 scale, 32 signed bytes
    let data = q.data()?;
    if k % BLOCK != 0 || data.len() != rows * k / BLOCK * BYTES {
        return q.dequantize(dev);
    }
    let mut out = vec![0f32; rows * k];
    out.par_chunks_mut(k)
        .zip(data.par_chunks(k / BLOCK * BYTES))
        .for_each(|(o, row)| {
            for (ob, b) in o.chunks_exact_mut(BLOCK).zip(row.chunks_exact(BYTES)) {
                let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                for (v, &q) in ob.iter_mut().zip(&b[2..]) {
                    *v = d * f32::from(q as i8);
                }
            }
        });
    Tensor::from_vec(out, (rows, k), dev)
}

/// `x W^T` for one row `x` (`(1, k)` f32 on the CPU) against the quantized `W` (`(n, k)`),
/// straight from its ggml blocks with candle's dot-product kernels (AVX2 chosen at run time),
/// rows in parallel. `None` for storage it does not handle (the caller uses `QMatMul`).
#[allow(unsafe_code)] // reinterprets the block bytes; length and alignment are checked
pub fn gemv(q: &QTensor, x: &Tensor) -> Result<Option<Tensor>> {
    use candle_core::quantized::k_quants::{BlockQ4K, BlockQ6K, BlockQ8_0, GgmlType};

    fn run<T: GgmlType>(data: &[u8], n: usize, k: usize, x: &[f32]) -> Option<Vec<f32>> {
        let nb = k / T::BLCK_SIZE;
        let whole = k % T::BLCK_SIZE == 0 && k % T::VecDotType::BLCK_SIZE == 0;
        if !whole
            || data.len() != n * nb * std::mem::size_of::<T>()
            || data.as_ptr().align_offset(std::mem::align_of::<T>()) != 0
        {
            return None;
        }
        // SAFETY: the bytes are exactly n * nb blocks, suitably aligned (both checked), and
        // ggml blocks are plain arrays of f16/u8/i8 for which any bit pattern is valid.
        let blocks: &[T] = unsafe { std::slice::from_raw_parts(data.as_ptr().cast(), n * nb) };
        let mut xq = vec![T::VecDotType::zeros(); k / T::VecDotType::BLCK_SIZE];
        T::VecDotType::from_float(x, &mut xq);
        let mut out = vec![0f32; n];
        out.par_chunks_mut(512).enumerate().for_each(|(c, o)| {
            for (i, y) in o.iter_mut().enumerate() {
                let r = c * 512 + i;
                *y = T::vec_dot(k, &blocks[r * nb..(r + 1) * nb], &xq);
            }
        });
        Some(out)
    }

    if !x.device().is_cpu() || x.dtype() != DType::F32 || x.dims() != [1, q.shape().dims2()?.1] {
        return Ok(None);
    }
    let (n, k) = q.shape().dims2()?;
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let data = q.data()?;
    let out = match q.dtype() {
        GgmlDType::Q4K => run::<BlockQ4K>(&data, n, k, &xs),
        GgmlDType::Q6K => run::<BlockQ6K>(&data, n, k, &xs),
        GgmlDType::Q8_0 => run::<BlockQ8_0>(&data, n, k, &xs),
        _ => None,
    };
    out.map(|v| Tensor::from_vec(v, (1, n), x.device()))
        .transpose()
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

#[cfg(test)]
mod tests;
pub(crate) mod tiles;
