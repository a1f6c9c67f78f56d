//! Qwen3-VL vision encoder: Conv3d patch embedding (as a matmul), interpolated learned
//! position table, 2-D rotary ViT blocks, the 2x2 patch merger and the DeepStack mergers whose
//! outputs are injected into the first decoder layers.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::VisionConfig;
use super::rope::{pos_embed_corners, vision_cos_sin};
use crate::quant::{Linear, Tower, WeightMode};

const LN_EPS: f32 = 1e-6;

#[derive(Debug, Clone)]
struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

impl LayerNorm {
    fn load(vb: VarBuilder, dim: usize) -> Result<Self> {
        Ok(Self {
            w: vb.get(dim, "weight")?.to_dtype(DType::F32)?,
            b: vb.get(dim, "bias")?.to_dtype(DType::F32)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, LN_EPS)
    }
}

#[derive(Debug, Clone)]
struct Block {
    norm1: LayerNorm,
    norm2: LayerNorm,
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
}

impl Block {
    fn load(vb: VarBuilder, c: &VisionConfig, mode: WeightMode) -> Result<Self> {
        let d = c.hidden_size;
        let t = Tower::Vision;
        Ok(Self {
            norm1: LayerNorm::load(vb.pp("norm1"), d)?,
            norm2: LayerNorm::load(vb.pp("norm2"), d)?,
            qkv: Linear::load(&vb.pp("attn.qkv"), d, 3 * d, true, mode, t)?,
            proj: Linear::load(&vb.pp("attn.proj"), d, d, true, mode, t)?,
            fc1: Linear::load(
                &vb.pp("mlp.linear_fc1"),
                d,
                c.intermediate_size,
                true,
                mode,
                t,
            )?,
            fc2: Linear::load(
                &vb.pp("mlp.linear_fc2"),
                c.intermediate_size,
                d,
                true,
                mode,
                t,
            )?,
            heads: c.num_heads,
        })
    }

    /// `x`: `(n, d)`; `spans`: patch ranges of each image (attention never crosses images).
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        spans: &[(usize, usize)],
    ) -> Result<Tensor> {
        let (n, d) = x.dims2()?;
        let hd = d / self.heads;
        let h = self.norm1.forward(x)?;
        let qkv = self.qkv.forward(&h)?.reshape((n, 3, self.heads, hd))?;
        // (1, heads, n, hd) for candle's rope kernel
        let part = |i: usize| -> Result<Tensor> {
            qkv.narrow(1, i, 1)?
                .squeeze(1)?
                .transpose(0, 1)?
                .contiguous()?
                .unsqueeze(0)
        };
        // The 1/sqrt(d) scale is applied to q (n x d values) rather than to the scores
        // (n x n per head): the same product, a ~20x smaller pass.
        let scale = (hd as f64).powf(-0.5);
        let q = (candle_nn::rotary_emb::rope(&part(0)?, cos, sin)?.squeeze(0)? * scale)?;
        let k = candle_nn::rotary_emb::rope(&part(1)?, cos, sin)?.squeeze(0)?;
        let v = part(2)?.squeeze(0)?;
        let mut outs = Vec::with_capacity(spans.len());
        for &(s, len) in spans {
            // Fused and tiled on CPU (no len x len score matrix); (len, heads * hd).
            let span = |t: &Tensor| t.narrow(1, s, len);
            outs.push(crate::attention::attention(
                &span(&q)?,
                &span(&k)?,
                &span(&v)?,
                None,
            )?);
        }
        let a = Tensor::cat(&outs, 0)?;
        let x = (x + self.proj.forward(&a)?)?;
        let h = self.norm2.forward(&x)?;
        let h = self
            .fc2
            .forward(&crate::ops::gelu_tanh(&self.fc1.forward(&h)?)?)?;
        x + h
    }
}

/// Merges each 2x2 window of patch features into one decoder-width token.
#[derive(Debug, Clone)]
struct Merger {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    post_shuffle_norm: bool,
    width: usize,
}

impl Merger {
    fn load(vb: VarBuilder, c: &VisionConfig, post: bool, mode: WeightMode) -> Result<Self> {
        let width = c.hidden_size * c.spatial_merge_size * c.spatial_merge_size;
        let t = Tower::Vision;
        Ok(Self {
            norm: LayerNorm::load(vb.pp("norm"), if post { width } else { c.hidden_size })?,
            fc1: Linear::load(&vb.pp("linear_fc1"), width, width, true, mode, t)?,
            fc2: Linear::load(
                &vb.pp("linear_fc2"),
                width,
                c.out_hidden_size,
                true,
                mode,
                t,
            )?,
            post_shuffle_norm: post,
            width,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if self.post_shuffle_norm {
            self.norm.forward(&x.reshape(((), self.width))?)?
        } else {
            self.norm.forward(x)?.reshape(((), self.width))?
        };
        self.fc2.forward(&self.fc1.forward(&x)?.gelu_erf()?)
    }
}

/// Output of the vision tower for a batch of images.
#[derive(Debug, Clone)]
pub struct VisionOutput {
    /// Merged image tokens, `(tokens, out_hidden)`, in prompt order.
    pub embeds: Tensor,
    /// One `(tokens, out_hidden)` tensor per DeepStack tap, added after decoder layer `i`.
    pub deepstack: Vec<Tensor>,
}

/// The vision tower.
#[derive(Debug, Clone)]
pub struct VisionModel {
    patch_w: Linear,
    pos_table: Tensor,
    blocks: Vec<Block>,
    merger: Merger,
    deepstack: Vec<(usize, Merger)>,
    cfg: VisionConfig,
}

impl VisionModel {
    /// Loads `model.visual.*` (pass `vb` already at that prefix).
    pub fn load(vb: VarBuilder, cfg: &VisionConfig, mode: WeightMode) -> Result<Self> {
        let c = cfg;
        let patch_in = c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size;
        let pe = vb.pp("patch_embed.proj");
        let w = pe
            .get(
                (
                    c.hidden_size,
                    c.in_channels,
                    c.temporal_patch_size,
                    c.patch_size,
                    c.patch_size,
                ),
                "weight",
            )?
            .reshape((c.hidden_size, patch_in))?;
        let b = pe.get(c.hidden_size, "bias")?;
        // A stride == kernel Conv3d over pre-flattened patches is exactly a matmul.
        let patch_w = Linear::from_weight(w, Some(b), mode, Tower::Vision)?;
        let pos_table = vb
            .get(
                (c.num_position_embeddings, c.hidden_size),
                "pos_embed.weight",
            )?
            .to_dtype(DType::F32)?;
        let blocks = crate::quant::par_build(c.depth, |i| {
            Block::load(vb.pp(format!("blocks.{i}")), c, mode)
        })?;
        let merger = Merger::load(vb.pp("merger"), c, false, mode)?;
        let deepstack = c
            .deepstack_visual_indexes
            .iter()
            .enumerate()
            .map(|(j, &layer)| {
                Ok((
                    layer,
                    Merger::load(vb.pp(format!("deepstack_merger_list.{j}")), c, true, mode)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_w,
            pos_table,
            blocks,
            merger,
            deepstack,
            cfg: cfg.clone(),
        })
    }

    fn pos_embeds(&self, grids: &[[usize; 3]], dev: &Device) -> Result<Tensor> {
        let side = (self.cfg.num_position_embeddings as f64).sqrt() as usize;
        let mut per_image = Vec::with_capacity(grids.len());
        for g in grids {
            let corners = pos_embed_corners(*g, self.cfg.spatial_merge_size, side);
            let mut acc: Option<Tensor> = None;
            for c in corners {
                let n = c.len();
                let idx: Vec<u32> = c.iter().map(|p| p.0).collect();
                let wt: Vec<f32> = c.iter().map(|p| p.1).collect();
                let idx = Tensor::from_vec(idx, n, dev)?;
                let wt = Tensor::from_vec(wt, (n, 1), dev)?;
                let e = self.pos_table.index_select(&idx, 0)?.broadcast_mul(&wt)?;
                acc = Some(match acc {
                    None => e,
                    Some(a) => (a + e)?,
                });
            }
            if let Some(a) = acc {
                per_image.push(a);
            }
        }
        Tensor::cat(&per_image, 0)
    }

    /// Encodes flattened patches `pixel_values` (`(patches, C*T*P*P)`, processor order) of
    /// images with patch grids `grids`.
    pub fn forward(&self, pixel_values: &Tensor, grids: &[[usize; 3]]) -> Result<VisionOutput> {
        let dev = pixel_values.device();
        let c = &self.cfg;
        let mut x = self.patch_w.forward(&pixel_values.to_dtype(DType::F32)?)?;
        x = (x + self.pos_embeds(grids, dev)?)?;
        let hd = c.hidden_size / c.num_heads;
        let (cos, sin) = vision_cos_sin(grids, c.spatial_merge_size, hd, dev)?;
        let mut spans = Vec::new();
        let mut s = 0;
        for g in grids {
            // frames of one video would attend separately; a still image is one frame
            let per_frame = g[1] * g[2];
            for _ in 0..g[0] {
                spans.push((s, per_frame));
                s += per_frame;
            }
        }
        let mut deepstack = Vec::new();
        for (i, blk) in self.blocks.iter().enumerate() {
            x = blk.forward(&x, &cos, &sin, &spans)?;
            if let Some((_, m)) = self.deepstack.iter().find(|(l, _)| *l == i) {
                deepstack.push(m.forward(&x)?);
            }
        }
        let embeds = self.merger.forward(&x)?;
        Ok(VisionOutput { embeds, deepstack })
    }
}
