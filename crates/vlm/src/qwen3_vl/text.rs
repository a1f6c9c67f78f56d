//! Qwen3 text decoder as used by Qwen3-VL: RMSNorm, grouped-query attention with per-head
//! q/k RMSNorm, interleaved M-RoPE, causal attention in multi-token prefill (missing in
//! candle-transformers' `qwen3_vl`), SwiGLU MLP, DeepStack injection and a KV cache.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::TextConfig;
use crate::decode::{self, Acts};
use crate::quant::{Linear, Tower, WeightMode};

/// Buffers of the single-token path ([`TextModel::forward`] with one row on the CPU), kept
/// between steps so a decode step allocates (almost) nothing.
#[derive(Debug, Clone, Default)]
struct Scratch {
    h: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    gate_up: Vec<f32>,
    acts: Acts,
}

#[derive(Debug, Clone)]
struct RmsNorm {
    w: Tensor,
    /// The weight as a plain vector, for the single-token path (a few KB).
    wv: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        let w = vb.get(dim, "weight")?.to_dtype(DType::F32)?;
        Ok(Self {
            wv: w.to_device(&Device::Cpu)?.to_vec1()?,
            w,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(&x.contiguous()?, &self.w, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    input_ln: RmsNorm,
    post_ln: RmsNorm,
    /// q, k and v projections as one `(heads + 2 kv_heads) * head_dim` x `hidden` weight.
    qkv: Linear,
    o: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    /// gate and up projections as one `2 * intermediate` x `hidden` weight.
    gate_up: Linear,
    down: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    intermediate: usize,
    hidden: usize,
}

/// Positions allocated beyond the current need when the cache (re)allocates. Small on
/// purpose: glibc serves a layer's few-MB buffer from its heap once its mmap threshold has
/// risen (after prefill frees its large temporaries), and zeroes it there, so every slack
/// position costs resident memory (measured: a 1,024-position slack added ~270 MB of peak RSS
/// at the 2B shapes). Growing by 128 positions copies the cache once per 128 tokens instead.
const KV_SLACK: usize = 128;

/// Keys and values of past positions for one layer: `(kv_heads, capacity, head_dim)` buffers
/// filled up to `len` and written in place, so a decode step copies its own row instead of
/// concatenating the whole history (28 layers x 2 x 3 MB per token at 770 positions).
#[derive(Debug, Default)]
struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
    len: usize,
}

/// A clone owns its buffers: the cache is written in place, so sharing candle's storage
/// between two models would let one overwrite the other's history.
impl Clone for LayerCache {
    fn clone(&self) -> Self {
        let kv = self
            .kv
            .as_ref()
            .and_then(|(k, v)| Some((k.copy().ok()?, v.copy().ok()?)));
        let len = if kv.is_some() { self.len } else { 0 };
        Self { kv, len }
    }
}

impl LayerCache {
    fn capacity(&self) -> usize {
        self.kv.as_ref().map_or(0, |(k, _)| k.dim(1).unwrap_or(0))
    }

    /// Makes room for `m` more positions of `(kv_heads, head_dim)` in `dtype` on `dev`.
    fn reserve(
        &mut self,
        m: usize,
        kvh: usize,
        hd: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<()> {
        let need = self.len + m;
        let cap = self.capacity();
        if need <= cap {
            return Ok(());
        }
        let new_cap = need + KV_SLACK;
        let grow = |old: Option<&Tensor>| -> Result<Tensor> {
            let t = Tensor::zeros((kvh, new_cap, hd), dtype, dev)?;
            if let Some(o) = old.filter(|_| self.len > 0) {
                t.slice_set(&o.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
            }
            Ok(t)
        };
        let (k, v) = match &self.kv {
            Some((k, v)) => (grow(Some(k))?, grow(Some(v))?),
            None => (grow(None)?, grow(None)?),
        };
        self.kv = Some((k, v));
        Ok(())
    }

    /// Writes `k`, `v` (`(kv_heads, m, head_dim)`) after the cached positions, stored as `store`
    /// (their own dtype when `None`), and returns views of all positions so far.
    fn append(&mut self, k: &Tensor, v: &Tensor, store: Option<DType>) -> Result<(Tensor, Tensor)> {
        let (kvh, m, hd) = k.dims3()?;
        let dtype = store.unwrap_or(k.dtype());
        let (k, v) = (&k.to_dtype(dtype)?, &v.to_dtype(dtype)?);
        self.reserve(m, kvh, hd, dtype, k.device())?;
        let Some((kc, vc)) = &self.kv else {
            candle_core::bail!("kv cache not allocated");
        };
        kc.slice_set(&k.contiguous()?, 1, self.len)?;
        vc.slice_set(&v.contiguous()?, 1, self.len)?;
        self.len += m;
        Ok((kc.narrow(1, 0, self.len)?, vc.narrow(1, 0, self.len)?))
    }
}

impl Layer {
    /// `strong` is the storage of the sensitive tensors (q/k/v and down; see
    /// [`WeightMode::sensitive`]), `mode` that of the others.
    fn load(vb: VarBuilder, c: &TextConfig, mode: WeightMode, strong: WeightMode) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let (h, kvh) = (c.num_attention_heads, c.num_key_value_heads);
        let t = Tower::Text;
        let a = vb.pp("self_attn");
        let m = vb.pp("mlp");
        let name = |vb: &VarBuilder, n: &str| format!("{}.{n}.weight", vb.prefix());
        let qkv = [
            (a.pp("q_proj"), h * hd),
            (a.pp("k_proj"), kvh * hd),
            (a.pp("v_proj"), kvh * hd),
        ];
        let gate_up = [
            (m.pp("gate_proj"), c.intermediate_size),
            (m.pp("up_proj"), c.intermediate_size),
        ];
        Ok(Self {
            input_ln: RmsNorm::load(vb.pp("input_layernorm"), d, c.rms_norm_eps)?,
            post_ln: RmsNorm::load(vb.pp("post_attention_layernorm"), d, c.rms_norm_eps)?,
            qkv: Linear::load_fused(&qkv, &name(&a, "qkv_proj"), d, strong, t)?,
            o: Linear::load(&a.pp("o_proj"), h * hd, d, false, mode, t)?,
            q_norm: RmsNorm::load(a.pp("q_norm"), hd, c.rms_norm_eps)?,
            k_norm: RmsNorm::load(a.pp("k_norm"), hd, c.rms_norm_eps)?,
            gate_up: Linear::load_fused(&gate_up, &name(&m, "gate_up_proj"), d, mode, t)?,
            down: Linear::load(&m.pp("down_proj"), c.intermediate_size, d, false, strong, t)?,
            heads: h,
            kv_heads: kvh,
            head_dim: hd,
            intermediate: c.intermediate_size,
            hidden: d,
        })
    }

    /// Whether [`Self::decode_one`] handles this layer's shapes.
    fn decodes_in_place(&self) -> bool {
        self.head_dim <= 512 && self.head_dim % 2 == 0 && self.heads / self.kv_heads <= 64
    }

    /// The layer for one token on the CPU, on plain slices: `x` (`hidden`) is updated in
    /// place; `cos`/`sin` are the token's `head_dim / 2` rotary values. Same computation as
    /// [`Self::forward`] with fused loops and the decode kernels of [`crate::decode`].
    fn decode_one(
        &self,
        x: &mut [f32],
        cos: &[f32],
        sin: &[f32],
        cache: &mut LayerCache,
        kv: Option<DType>,
        s: &mut Scratch,
    ) -> Result<()> {
        let hd = self.head_dim;
        let (kvh, nq, nkv) = (self.kv_heads, self.heads * hd, self.kv_heads * hd);
        s.h.resize(x.len(), 0.0);
        decode::rms_norm(x, &self.input_ln.wv, self.input_ln.eps, &mut s.h);
        s.qkv.resize(nq + 2 * nkv, 0.0);
        self.qkv.matvec(&s.h, &mut s.acts, &mut s.qkv, false)?;
        let (q, rest) = s.qkv.split_at_mut(nq);
        let (k, v) = rest.split_at_mut(nkv);
        let scale = (hd as f64).powf(-0.5) as f32;
        decode::norm_rope(q, hd, &self.q_norm.wv, self.q_norm.eps, cos, sin, scale);
        decode::norm_rope(k, hd, &self.k_norm.wv, self.k_norm.eps, cos, sin, 1.0);
        let dev = Device::Cpu;
        let (kc, vc) = cache.append(
            &Tensor::from_slice(k, (kvh, 1, hd), &dev)?,
            &Tensor::from_slice(v, (kvh, 1, hd), &dev)?,
            kv,
        )?;
        let n = cache.len;
        s.att.resize(nq, 0.0);
        {
            let (kg, kl) = kc.storage_and_layout();
            let (vg, vl) = vc.storage_and_layout();
            use candle_core::{CpuStorage, Storage};
            let cap = kl.stride()[0] / hd;
            if vl.stride()[0] != cap * hd || kl.stride()[1] != hd || vl.stride()[1] != hd {
                candle_core::bail!("decode: unexpected kv cache layout");
            }
            let (ko, vo) = (kl.start_offset(), vl.start_offset());
            match (&*kg, &*vg) {
                (Storage::Cpu(CpuStorage::F32(ks)), Storage::Cpu(CpuStorage::F32(vs))) => {
                    decode::attend_one(q, &ks[ko..], &vs[vo..], cap, n, kvh, hd, &mut s.att)
                }
                (Storage::Cpu(CpuStorage::F16(ks)), Storage::Cpu(CpuStorage::F16(vs))) => {
                    decode::attend_one(q, &ks[ko..], &vs[vo..], cap, n, kvh, hd, &mut s.att)
                }
                _ => candle_core::bail!("decode: the kv cache is not f32 or f16 on the cpu"),
            }
        }
        self.o.matvec(&s.att, &mut s.acts, x, true)?;
        decode::rms_norm(x, &self.post_ln.wv, self.post_ln.eps, &mut s.h);
        let ni = self.intermediate;
        s.gate_up.resize(2 * ni, 0.0);
        self.gate_up
            .matvec(&s.h, &mut s.acts, &mut s.gate_up, false)?;
        let (g, u) = s.gate_up.split_at_mut(ni);
        decode::silu_mul(g, u);
        self.down.matvec(g, &mut s.acts, x, true)
    }

    /// `x`: `(m, d)` new tokens after the cached ones; `cos`/`sin`: `(m, hd/2)`.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        cache: &mut LayerCache,
        kv: Option<DType>,
    ) -> Result<Tensor> {
        let m = x.dim(0)?;
        let hd = self.head_dim;
        let (nq, nkv) = (self.heads * hd, self.kv_heads * hd);
        let packed = self.packed_for(m)?;
        let h = self.input_ln.forward(x)?;
        let (q, k, v) = match &packed {
            Some(p) => (p.q.forward(&h)?, p.k.forward(&h)?, p.v.forward(&h)?),
            None => {
                let qkv = self.qkv.forward(&h)?;
                (
                    qkv.narrow(1, 0, nq)?,
                    qkv.narrow(1, nq, nkv)?,
                    qkv.narrow(1, nq + nkv, nkv)?,
                )
            }
        };
        // (m, heads, hd) -> per-head RMSNorm -> (1, heads, m, hd) for the rope kernel
        let heads = |t: &Tensor, n: usize, norm: &RmsNorm| -> Result<Tensor> {
            let t = t.contiguous()?.reshape((m, n, hd))?;
            let t = norm.forward(&t)?;
            t.transpose(0, 1)?.contiguous()?.unsqueeze(0)
        };
        let q = candle_nn::rotary_emb::rope(&heads(&q, self.heads, &self.q_norm)?, cos, sin)?
            .squeeze(0)?;
        let k = candle_nn::rotary_emb::rope(&heads(&k, self.kv_heads, &self.k_norm)?, cos, sin)?
            .squeeze(0)?;
        let v = v
            .contiguous()?
            .reshape((m, self.kv_heads, hd))?
            .transpose(0, 1)?
            .contiguous()?;
        let (k, v) = cache.append(&k, &v, kv)?;
        // An f16 cache is widened for the tensor path's attention (once per prefill).
        let (k, v) = (k.to_dtype(q.dtype())?, v.to_dtype(q.dtype())?);
        // Scale q (m rows) instead of the scores (m x n): same product, smaller pass.
        let scale = (hd as f64).powf(-0.5);
        let past = k.dim(1)? - m;
        // Grouped-query, causal: query i sees keys 0..=past+i; (m, heads * hd).
        let y = crate::attention::attention(&(q * scale)?, &k, &v, Some(past))?;
        let x = (x + packed.as_ref().map_or(&self.o, |p| &p.o).forward(&y)?)?;
        let h = self.post_ln.forward(&x)?;
        let (g, u) = match &packed {
            Some(p) => (p.gate.forward(&h)?, p.up.forward(&h)?),
            None => {
                let gu = self.gate_up.forward(&h)?;
                let n = self.intermediate;
                (gu.narrow(1, 0, n)?, gu.narrow(1, n, n)?)
            }
        };
        let g = candle_nn::ops::silu(&g)?;
        let down = packed.as_ref().map_or(&self.down, |p| &p.down);
        x + down.forward(&(g * u)?)?
    }

    /// Short-lived packed copies of this layer's weights for a product of `m` rows, where
    /// candle would otherwise build and keep its own (see [`Linear::packed_rows`]); `None`
    /// where the layer's own weights serve (one row, dense or GPU weights).
    ///
    /// The fused q/k/v and gate/up weights are copied as their parts: the prefill needs them
    /// apart anyway, and seven packings of similar size share two cores better than four.
    fn packed_for(&self, m: usize) -> Result<Option<Packed>> {
        let all = [&self.qkv, &self.o, &self.gate_up, &self.down];
        if m < 2 || !all.iter().all(|l| l.repacks_for_many_rows()) {
            return Ok(None);
        }
        let (nq, nkv) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        let (ni, d) = (self.intermediate, self.hidden);
        let parts = [
            (&self.qkv, 0, nq),
            (&self.qkv, nq, nkv),
            (&self.qkv, nq + nkv, nkv),
            (&self.o, 0, d),
            (&self.gate_up, 0, ni),
            (&self.gate_up, ni, ni),
            (&self.down, 0, d),
        ];
        use rayon::prelude::*;
        let mut l = parts
            .into_par_iter()
            .map(|(w, start, len)| w.packed_rows(start, len))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut next = || l.next().expect("seven parts");
        Ok(Some(Packed {
            q: next(),
            k: next(),
            v: next(),
            o: next(),
            gate: next(),
            up: next(),
            down: next(),
        }))
    }
}

/// One layer's weights for a prefill, packed for candle's many-row kernels and dropped after
/// the layer ([`Layer::packed_for`]).
struct Packed {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// Name of the tied head in the quantized-weight cache.
const LM_HEAD: &str = "lm_head.weight";

/// Token embedding storage: dense, or rows of the tied quantized `lm_head`.
#[derive(Debug, Clone)]
enum Embedding {
    Dense(Tensor),
    Quant(std::sync::Arc<candle_core::quantized::QTensor>),
}

/// The decoder stack plus embedding and output head.
#[derive(Debug, Clone)]
pub struct TextModel {
    embed: Embedding,
    device: Device,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    cache: Vec<LayerCache>,
    scratch: Scratch,
    vocab: usize,
    /// Single-token steps on the CPU take [`Layer::decode_one`] (tests turn it off to compare).
    fast_decode: bool,
    /// Storage of the KV cache: f16 for quantized modes on the CPU (a decode step reads the
    /// whole cache, ~180 MB per token in f32 at 800 positions of the 2B model, as much as
    /// its head; f16 halves that, as llama.cpp's default cache does), else the activations'
    /// own dtype (f32 keeps the parity path exact).
    kv: Option<DType>,
}

impl TextModel {
    /// Loads `model.language_model.*` from `vb` and `lm_head` from `head_vb` (or ties it to
    /// the embedding when `tied`). A tied embedding under a quantized mode gathers its rows from
    /// the quantized head (as llama.cpp's quantized `token_embd`); otherwise it stays dense
    /// (f16 when quantizing).
    pub fn load(
        vb: VarBuilder,
        head_vb: VarBuilder,
        cfg: &TextConfig,
        tied: bool,
        mode: WeightMode,
    ) -> Result<Self> {
        let (vocab, hidden) = (cfg.vocab_size, cfg.hidden_size);
        // Without `lm_head.weight` the head can only be the embedding, whatever the flag says
        // (transformers would leave it randomly initialised).
        let tied = tied || !head_vb.contains_tensor("weight");
        // A tied, quantized head saved by an earlier load (see `qcache`) spares reading and
        // quantizing the 151,936 x 2048 embedding.
        let cache = crate::qcache::current();
        // The head is sensitive: Q6K under Q4K (see `WeightMode::sensitive`).
        let head_mode = mode.sensitive();
        let cached = match (&cache, crate::quant::storage(head_mode, hidden)) {
            (Some(c), Some(dt)) if tied => c.get(LM_HEAD, (vocab, hidden), dt),
            _ => None,
        };
        let (lm_head, embed) = match cached {
            Some(q) => (Linear::from_qtensor(q.clone(), None)?, Embedding::Quant(q)),
            None => {
                let embed_f32 = vb.get((vocab, hidden), "embed_tokens.weight")?;
                let lm_w = if tied {
                    embed_f32.clone()
                } else {
                    head_vb.get((vocab, hidden), "weight")?
                };
                let lm_head = Linear::from_weight(lm_w, None, head_mode, Tower::Text)?;
                let embed = match (mode, lm_head.qtensor()) {
                    (WeightMode::F32, _) => Embedding::Dense(embed_f32.to_dtype(DType::F32)?),
                    (_, Some(q)) if tied => {
                        if let Some(c) = &cache {
                            c.record(LM_HEAD, q.clone());
                        }
                        Embedding::Quant(q)
                    }
                    (WeightMode::BF16, _) => Embedding::Dense(embed_f32.to_dtype(DType::BF16)?),
                    _ => Embedding::Dense(embed_f32.to_dtype(DType::F16)?),
                };
                (lm_head, embed)
            }
        };
        let n = cfg.num_hidden_layers;
        let layers = crate::quant::par_build(n, |i| {
            let strong = if crate::quant::more_bits(i, n) {
                mode.sensitive()
            } else {
                mode
            };
            Layer::load(vb.pp(format!("layers.{i}")), cfg, mode, strong)
        })?;
        Ok(Self {
            embed,
            device: vb.device().clone(),
            norm: RmsNorm::load(vb.pp("norm"), cfg.hidden_size, cfg.rms_norm_eps)?,
            cache: vec![LayerCache::default(); layers.len()],
            layers,
            lm_head,
            scratch: Scratch::default(),
            vocab,
            fast_decode: true,
            kv: (vb.device().is_cpu()
                && matches!(mode, WeightMode::Q8_0 | WeightMode::Q6K | WeightMode::Q4K))
            .then_some(DType::F16),
        })
    }

    /// Token embeddings `(m, d)` in f32.
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        match &self.embed {
            Embedding::Dense(t) => {
                let idx = Tensor::new(ids, t.device())?;
                t.index_select(&idx, 0)?.to_dtype(DType::F32)
            }
            Embedding::Quant(q) => crate::quant::gather_rows(q, ids, &self.device),
        }
    }

    /// Number of positions already in the KV cache.
    pub fn cache_len(&self) -> usize {
        self.cache.first().map_or(0, |c| c.len)
    }

    /// Forgets all cached positions (start of a new prompt).
    pub fn clear_cache(&mut self) {
        self.cache = vec![LayerCache::default(); self.layers.len()];
    }

    /// Runs the decoder on `x` (`(m, d)` embeddings) at rotary tables `cos`/`sin`, appending
    /// to the cache. `deepstack[i]` (`(m, d)`, zero off image rows) is added after layer `i`.
    /// `on_layer` sees every layer's output (before DeepStack), for parity tests.
    /// Returns the final-normed hidden states `(m, d)`.
    pub fn forward(
        &mut self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        deepstack: &[Tensor],
        on_layer: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let one = x.dim(0)? == 1 && deepstack.is_empty() && x.device().is_cpu();
        if one
            && self.fast_decode
            && x.dtype() == DType::F32
            && self.layers.iter().all(Layer::decodes_in_place)
        {
            let d = x.dim(1)?;
            let mut xv = x.flatten_all()?.to_vec1::<f32>()?;
            let cos = cos.flatten_all()?.to_vec1::<f32>()?;
            let sin = sin.flatten_all()?.to_vec1::<f32>()?;
            let s = &mut self.scratch;
            for (i, (layer, cache)) in self.layers.iter().zip(self.cache.iter_mut()).enumerate() {
                layer.decode_one(&mut xv, &cos, &sin, cache, self.kv, s)?;
                on_layer(i, &Tensor::from_slice(&xv, (1, d), &Device::Cpu)?);
            }
            let mut h = vec![0f32; d];
            decode::rms_norm(&xv, &self.norm.wv, self.norm.eps, &mut h);
            return Tensor::from_vec(h, (1, d), &Device::Cpu);
        }
        let mut x = x.clone();
        for (i, (layer, cache)) in self.layers.iter().zip(self.cache.iter_mut()).enumerate() {
            x = layer.forward(&x, cos, sin, cache, self.kv)?;
            on_layer(i, &x);
            if let Some(ds) = deepstack.get(i) {
                x = (x + ds)?;
            }
        }
        self.norm.forward(&x)
    }

    /// Logits `(rows, vocab)` for normed hidden states.
    ///
    /// One row (every generated token) goes through [`crate::quant::gemv`] on the quantized
    /// head's own blocks, so candle never builds its repacked copy of the 151,936-row head
    /// (~0.23 GB for the 2B model) for what is a matrix-vector product.
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        if h.dim(0)? == 1 && h.device().is_cpu() && h.dtype() == DType::F32 {
            let fits = self.lm_head.with_raw(|w| {
                w.is_some_and(|w| decode::fits(w, self.vocab, h.dim(1).unwrap_or(0)))
            });
            if fits {
                let x = h.flatten_all()?.to_vec1::<f32>()?;
                let mut out = vec![0f32; self.vocab];
                self.lm_head
                    .matvec(&x, &mut Acts::default(), &mut out, false)?;
                return Tensor::from_vec(out, (1, self.vocab), h.device());
            }
        }
        if h.dim(0)? == 1 {
            if let Some(q) = self.lm_head.qtensor() {
                if let Some(y) = crate::quant::gemv(&q, h)? {
                    return Ok(y);
                }
            }
        }
        self.lm_head.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rope::TextRope;
    use super::*;
    use std::collections::HashMap;

    /// A random two-layer decoder whose matrices are wide enough for Q4K (rows of 256).
    fn model(mode: WeightMode) -> (TextModel, TextConfig) {
        let cfg: TextConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": 300, "hidden_size": 256, "intermediate_size": 512,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 64, "rope_theta": 10000.0, "tie_word_embeddings": true
        }))
        .unwrap();
        let dev = Device::Cpu;
        let mut t = HashMap::new();
        let r = |shape: &[usize], s: f64| Tensor::randn(0f32, s as f32, shape, &dev).unwrap();
        let ones = |n: usize| (Tensor::ones(n, DType::F32, &dev).unwrap() + r(&[n], 0.1)).unwrap();
        t.insert("embed_tokens.weight".to_string(), r(&[300, 256], 0.5));
        t.insert("norm.weight".to_string(), ones(256));
        for i in 0..2 {
            let p = |n: &str| format!("layers.{i}.{n}");
            for (n, rows, cols) in [
                ("self_attn.q_proj", 256, 256),
                ("self_attn.k_proj", 128, 256),
                ("self_attn.v_proj", 128, 256),
                ("self_attn.o_proj", 256, 256),
                ("mlp.gate_proj", 512, 256),
                ("mlp.up_proj", 512, 256),
                ("mlp.down_proj", 256, 512),
            ] {
                t.insert(p(&format!("{n}.weight")), r(&[rows, cols], 0.06));
            }
            for (n, d) in [
                ("input_layernorm", 256),
                ("post_attention_layernorm", 256),
                ("self_attn.q_norm", 64),
                ("self_attn.k_norm", 64),
            ] {
                t.insert(p(&format!("{n}.weight")), ones(d));
            }
        }
        let vb = VarBuilder::from_tensors(t, DType::F32, &dev);
        let m = TextModel::load(vb.clone(), vb.pp("lm_head"), &cfg, true, mode).unwrap();
        (m, cfg)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// The single-token path (slices, decode kernels, in-place cache) and the tensor path give
    /// the same hidden states and logits step after step, for f32, Q6K and Q4K (with its Q6K
    /// head and layers) weights. Each quantized product gives candle's answer to 1e-5
    /// (`quant::tests::gemv_matches_qmatmul`), but the two paths' f32 loops sum in different
    /// orders, and a last-bit difference can move an input value across an 8-bit rounding
    /// step (1/127 of its block's largest), which the cache then carries on: the quantized
    /// tolerance is a few percent, far below what a wrong cache row or rotary position gives.
    #[test]
    fn single_token_path_matches_the_tensor_path() {
        let modes = [
            (WeightMode::F32, 1e-5f32),
            (WeightMode::Q6K, 3e-2),
            (WeightMode::Q4K, 3e-2),
        ];
        for (mode, tol) in modes {
            let (mut fast, _cfg) = model(mode);
            let mut slow = fast.clone();
            slow.fast_decode = false;
            let rope = TextRope::new(64, 10000.0, &[8, 12, 12]);
            let dev = Device::Cpu;
            let pos = |a: u32, b: u32| -> [Vec<u32>; 3] {
                let v: Vec<u32> = (a..b).collect();
                [v.clone(), v.clone(), v]
            };
            let prompt: Vec<u32> = (0..7).map(|i| (i * 41 + 3) % 300).collect();
            let (cos, sin) = rope.cos_sin(&pos(0, 7), &dev).unwrap();
            let mut outs = Vec::new();
            for m in [&mut fast, &mut slow] {
                let x = m.embed(&prompt).unwrap();
                outs.push(m.forward(&x, &cos, &sin, &[], &mut |_, _| {}).unwrap());
            }
            assert_eq!(max_diff(&outs[0], &outs[1]), 0.0, "prefill is shared");
            let rel = |a: &Tensor, b: &Tensor| {
                let scale = b.abs().unwrap().max_all().unwrap();
                max_diff(a, b) / scale.to_scalar::<f32>().unwrap().max(1e-6)
            };
            for step in 0..12u32 {
                let p = 7 + step;
                let (cos, sin) = rope.cos_sin(&pos(p, p + 1), &dev).unwrap();
                let id = [(p * 13) % 300];
                let mut hs = Vec::new();
                for m in [&mut fast, &mut slow] {
                    let x = m.embed(&id).unwrap();
                    let h = m.forward(&x, &cos, &sin, &[], &mut |_, _| {}).unwrap();
                    hs.push((m.logits(&h).unwrap(), h));
                }
                let (dl, dh) = (rel(&hs[0].0, &hs[1].0), rel(&hs[0].1, &hs[1].1));
                assert!(dh < tol && dl < tol, "{mode:?} step {step}: {dh} {dl}");
            }
            assert_eq!(fast.cache_len(), 19);
            // quantized modes keep the cache in f16, the f32 path in f32
            let want = if mode == WeightMode::F32 {
                DType::F32
            } else {
                DType::F16
            };
            let k = &fast.cache[0].kv.as_ref().expect("allocated").0;
            assert_eq!(k.dtype(), want, "{mode:?}");
        }
    }

    /// Appending past the capacity reallocates and keeps every earlier position; the views
    /// returned cover exactly the filled part.
    #[test]
    fn kv_cache_grows_and_keeps_its_history() {
        let dev = Device::Cpu;
        let mut c = LayerCache::default();
        let row = |i: usize, m: usize| {
            let v: Vec<f32> = (0..2 * m * 3).map(|j| (i * 100 + j) as f32).collect();
            Tensor::from_vec(v, (2, m, 3), &dev).unwrap()
        };
        let mut all_k = Vec::new();
        let mut first_cap = 0;
        let mut steps = 0;
        while c.capacity() == first_cap || steps < 3 {
            let m = if steps == 0 { 5 } else { 1 };
            let k = row(steps, m);
            let (kv, vv) = c.append(&k, &(&k * 2.0).unwrap(), None).unwrap();
            all_k.push(k);
            if steps == 0 {
                first_cap = c.capacity();
                assert_eq!(first_cap, 5 + KV_SLACK);
            }
            steps += 1;
            assert_eq!(kv.dims(), &[2, c.len, 3]);
            if c.capacity() != first_cap || steps < 3 {
                let want = Tensor::cat(&all_k.iter().collect::<Vec<_>>(), 1).unwrap();
                assert_eq!(max_diff(&kv, &want), 0.0);
                assert_eq!(max_diff(&vv, &(&want * 2.0).unwrap()), 0.0);
            }
        }
        assert_eq!(c.len, 5 + KV_SLACK + 1);
        assert!(c.capacity() > first_cap);
        // A clone owns its storage: writing to one leaves the other alone.
        let mut d = c.clone();
        d.append(&row(999, 1), &row(999, 1), None).unwrap();
        assert_eq!(c.len + 1, d.len);
        let (k1, _) = c.append(&row(7, 1), &row(7, 1), None).unwrap();
        let (k2, _) = d.append(&row(8, 1), &row(8, 1), None).unwrap();
        assert!(max_diff(&k1.narrow(1, c.len - 1, 1).unwrap(), &row(7, 1)) == 0.0);
        assert!(max_diff(&k2.narrow(1, c.len - 1, 1).unwrap(), &row(999, 1)) == 0.0);
    }
}
