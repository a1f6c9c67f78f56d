//! The full Qwen3-VL model: vision tower + text decoder, with image-token scattering,
//! DeepStack injection, 3-D position ids for prefill and `cache + delta` positions for decode.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::Config;
use super::processor::ImageInput;
use super::rope::{rope_index, PositionIds, TextRope};
use super::text::TextModel;
use super::vision::{VisionModel, VisionOutput};
use crate::quant::WeightMode;

/// Qwen3-VL for conditional generation (one sequence at a time).
#[derive(Debug, Clone)]
pub struct Qwen3Vl {
    vision: VisionModel,
    text: TextModel,
    rope: TextRope,
    cfg: Config,
    delta: i64,
    device: Device,
}

impl Qwen3Vl {
    /// Builds the model from a root `VarBuilder` (HF names: `model.visual.*`,
    /// `model.language_model.*`, `lm_head.*`) whose `get` yields f32.
    /// The vision tower gets `mode.default_vision()`.
    pub fn load(vb: VarBuilder, cfg: &Config, mode: WeightMode) -> Result<Self> {
        Self::load_split(vb, cfg, mode, mode.default_vision())
    }

    /// Like [`Self::load`] with explicit storage for the vision tower (benchmarks compare
    /// e.g. a Q4K decoder with f32, f16 or Q4K vision).
    pub fn load_split(
        vb: VarBuilder,
        cfg: &Config,
        mode: WeightMode,
        vision_mode: WeightMode,
    ) -> Result<Self> {
        crate::alloc::tune();
        let vision = VisionModel::load(vb.pp("model.visual"), &cfg.vision_config, vision_mode)?;
        let text = TextModel::load(
            vb.pp("model.language_model"),
            vb.pp("lm_head"),
            &cfg.text_config,
            cfg.tied_embeddings(),
            mode,
        )?;
        let tc = &cfg.text_config;
        Ok(Self {
            vision,
            text,
            rope: TextRope::new(tc.head_dim(), tc.rope_theta(), &tc.mrope_section()),
            cfg: cfg.clone(),
            delta: 0,
            device: vb.device().clone(),
        })
    }

    /// The model configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the vision tower on preprocessed images (concatenated in prompt order).
    pub fn encode_images(&self, images: &[ImageInput]) -> Result<VisionOutput> {
        let pv: Vec<&Tensor> = images.iter().map(|i| &i.pixel_values).collect();
        let grids: Vec<[usize; 3]> = images.iter().map(|i| i.grid_thw).collect();
        self.vision.forward(&Tensor::cat(&pv, 0)?, &grids)
    }

    /// Runs the vision tower on raw flattened patches (parity tests feed the reference's).
    pub fn encode_patches(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
    ) -> Result<VisionOutput> {
        self.vision.forward(pixel_values, grids)
    }

    /// 3-D position ids of a prompt whose image runs have patch grids `grids`.
    pub fn position_ids(&self, ids: &[u32], grids: &[[usize; 3]]) -> PositionIds {
        rope_index(
            ids,
            grids,
            self.cfg.image_token_id,
            self.cfg.vision_config.spatial_merge_size,
        )
    }

    /// Starts a new sequence: clears the cache and runs the whole prompt `ids` (with
    /// `vision` features for its `<|image_pad|>` runs) under a causal mask. Returns logits
    /// `(m, vocab)` when `all_logits`, else `(1, vocab)` for the last position.
    /// `on_layer(i, h)` observes each decoder layer's output.
    pub fn prefill(
        &mut self,
        ids: &[u32],
        grids: &[[usize; 3]],
        vision: Option<&VisionOutput>,
        all_logits: bool,
        on_layer: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        self.text.clear_cache();
        let pos = self.position_ids(ids, grids);
        self.delta = pos.delta;
        let m = ids.len();
        let mut x = self.text.embed(ids)?;
        let mut deepstack = Vec::new();
        if let Some(v) = vision {
            let image_rows: Vec<usize> = (0..m)
                .filter(|&i| ids[i] == self.cfg.image_token_id)
                .collect();
            let n_img = v.embeds.dim(0)?;
            if image_rows.len() != n_img {
                candle_core::bail!(
                    "prompt has {} image tokens but the images produce {n_img}",
                    image_rows.len()
                );
            }
            // Gather from [text rows; image rows] rather than scatter in place.
            let mut idx: Vec<u32> = (0..m as u32).collect();
            let mut ds_idx = vec![0u32; m];
            for (k, &r) in image_rows.iter().enumerate() {
                idx[r] = (m + k) as u32;
                ds_idx[r] = (k + 1) as u32;
            }
            let idx = Tensor::from_vec(idx, m, &self.device)?;
            let ds_idx = Tensor::from_vec(ds_idx, m, &self.device)?;
            x = Tensor::cat(&[&x, &v.embeds.to_dtype(DType::F32)?], 0)?.index_select(&idx, 0)?;
            let zero = Tensor::zeros((1, x.dim(1)?), DType::F32, &self.device)?;
            for d in &v.deepstack {
                deepstack.push(Tensor::cat(&[&zero, d], 0)?.index_select(&ds_idx, 0)?);
            }
        }
        let (cos, sin) = self.rope.cos_sin(&pos.axes, &self.device)?;
        let h = self.text.forward(&x, &cos, &sin, &deepstack, on_layer)?;
        if all_logits {
            self.text.logits(&h)
        } else {
            self.text.logits(&h.narrow(0, m - 1, 1)?)
        }
    }

    /// Feeds one more token after [`Self::prefill`] and returns its logits `(1, vocab)`.
    /// Decoded positions are `cache_len + delta` on all three axes, as in transformers.
    pub fn decode_step(&mut self, id: u32) -> Result<Tensor> {
        let p = (self.text.cache_len() as i64 + self.delta).max(0) as u32;
        let axes = [vec![p], vec![p], vec![p]];
        let (cos, sin) = self.rope.cos_sin(&axes, &self.device)?;
        let x = self.text.embed(&[id])?;
        let h = self.text.forward(&x, &cos, &sin, &[], &mut |_, _| {})?;
        self.text.logits(&h)
    }

    /// Positions currently cached.
    pub fn cache_len(&self) -> usize {
        self.text.cache_len()
    }
}
