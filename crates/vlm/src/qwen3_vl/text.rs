//! Qwen3 text decoder as used by Qwen3-VL: RMSNorm, grouped-query attention with per-head
//! q/k RMSNorm, interleaved M-RoPE, causal attention in multi-token prefill (missing in
//! candle-transformers' `qwen3_vl`), SwiGLU MLP, DeepStack injection and a KV cache.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::TextConfig;
use crate::quant::{Linear, Tower, WeightMode};

#[derive(Debug, Clone)]
struct RmsNorm {
    w: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            w: vb.get(dim, "weight")?.to_dtype(DType::F32)?,
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
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

/// Keys and values of past positions for one layer, `(kv_heads, len, head_dim)`.
#[derive(Debug, Clone, Default)]
struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
}

impl Layer {
    fn load(vb: VarBuilder, c: &TextConfig, mode: WeightMode) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let (h, kvh) = (c.num_attention_heads, c.num_key_value_heads);
        let t = Tower::Text;
        let a = vb.pp("self_attn");
        let m = vb.pp("mlp");
        Ok(Self {
            input_ln: RmsNorm::load(vb.pp("input_layernorm"), d, c.rms_norm_eps)?,
            post_ln: RmsNorm::load(vb.pp("post_attention_layernorm"), d, c.rms_norm_eps)?,
            q: Linear::load(&a.pp("q_proj"), d, h * hd, false, mode, t)?,
            k: Linear::load(&a.pp("k_proj"), d, kvh * hd, false, mode, t)?,
            v: Linear::load(&a.pp("v_proj"), d, kvh * hd, false, mode, t)?,
            o: Linear::load(&a.pp("o_proj"), h * hd, d, false, mode, t)?,
            q_norm: RmsNorm::load(a.pp("q_norm"), hd, c.rms_norm_eps)?,
            k_norm: RmsNorm::load(a.pp("k_norm"), hd, c.rms_norm_eps)?,
            gate: Linear::load(&m.pp("gate_proj"), d, c.intermediate_size, false, mode, t)?,
            up: Linear::load(&m.pp("up_proj"), d, c.intermediate_size, false, mode, t)?,
            down: Linear::load(&m.pp("down_proj"), c.intermediate_size, d, false, mode, t)?,
            heads: h,
            kv_heads: kvh,
            head_dim: hd,
        })
    }

    /// `x`: `(m, d)` new tokens after the cached ones; `cos`/`sin`: `(m, hd/2)`.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let m = x.dim(0)?;
        let hd = self.head_dim;
        let h = self.input_ln.forward(x)?;
        // (m, heads, hd) -> per-head RMSNorm -> (1, heads, m, hd) for the rope kernel
        let heads = |lin: &Linear, norm: &RmsNorm, n: usize| -> Result<Tensor> {
            let t = lin.forward(&h)?.reshape((m, n, hd))?;
            let t = norm.forward(&t)?;
            t.transpose(0, 1)?.contiguous()?.unsqueeze(0)
        };
        let q = candle_nn::rotary_emb::rope(&heads(&self.q, &self.q_norm, self.heads)?, cos, sin)?
            .squeeze(0)?;
        let k =
            candle_nn::rotary_emb::rope(&heads(&self.k, &self.k_norm, self.kv_heads)?, cos, sin)?
                .squeeze(0)?;
        let v = self
            .v
            .forward(&h)?
            .reshape((m, self.kv_heads, hd))?
            .transpose(0, 1)?
            .contiguous()?;
        let (k, v) = match cache.kv.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 1)?, Tensor::cat(&[&pv, &v], 1)?),
            None => (k, v),
        };
        cache.kv = Some((k.clone(), v.clone()));
        // Scale q (m rows) instead of the scores (m x n): same product, smaller pass.
        let scale = (hd as f64).powf(-0.5);
        let past = k.dim(1)? - m;
        // Grouped-query, causal: query i sees keys 0..=past+i; (m, heads * hd).
        let y = crate::attention::attention(&(q * scale)?, &k, &v, Some(past))?;
        let x = (x + self.o.forward(&y)?)?;
        let h = self.post_ln.forward(&x)?;
        let g = candle_nn::ops::silu(&self.gate.forward(&h)?)?;
        let u = self.up.forward(&h)?;
        x + self.down.forward(&(g * u)?)?
    }
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
        let cached = match (&cache, crate::quant::storage(mode, hidden)) {
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
                let lm_head = Linear::from_weight(lm_w, None, mode, Tower::Text)?;
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
        let layers = crate::quant::par_build(cfg.num_hidden_layers, |i| {
            let layer = Layer::load(vb.pp(format!("layers.{i}")), cfg, mode)?;
            for lin in [
                &layer.q,
                &layer.k,
                &layer.v,
                &layer.o,
                &layer.gate,
                &layer.up,
                &layer.down,
            ] {
                lin.prepare()?;
            }
            Ok(layer)
        })?;
        Ok(Self {
            embed,
            device: vb.device().clone(),
            norm: RmsNorm::load(vb.pp("norm"), cfg.hidden_size, cfg.rms_norm_eps)?,
            cache: vec![LayerCache::default(); layers.len()],
            layers,
            lm_head,
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
        self.cache
            .first()
            .and_then(|c| c.kv.as_ref())
            .map(|(k, _)| k.dim(1).unwrap_or(0))
            .unwrap_or(0)
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
        let mut x = x.clone();
        for (i, (layer, cache)) in self.layers.iter().zip(self.cache.iter_mut()).enumerate() {
            x = layer.forward(&x, cos, sin, cache)?;
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
