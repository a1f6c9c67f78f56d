//! Model and preprocessor configuration, read from the Hugging Face `config.json` and
//! `preprocessor_config.json` of a Qwen3-VL checkpoint (transformers 4.57 layout).

use serde::Deserialize;

/// Top-level `config.json` of a `Qwen3VLForConditionalGeneration` checkpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Decoder settings (`text_config`).
    pub text_config: TextConfig,
    /// Vision tower settings (`vision_config`).
    pub vision_config: VisionConfig,
    /// Id of `<|image_pad|>`: positions holding it receive the vision features.
    pub image_token_id: u32,
    /// Id of `<|video_pad|>`; videos are not supported, the id only keeps the config complete.
    #[serde(default)]
    pub video_token_id: Option<u32>,
    /// Id of `<|vision_start|>`, which precedes every image run in the prompt.
    pub vision_start_token_id: u32,
    /// Id of `<|vision_end|>`.
    #[serde(default)]
    pub vision_end_token_id: Option<u32>,
    /// Whether `lm_head` reuses the token embedding (true for the 2B model).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

/// Qwen3 text decoder settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    /// Vocabulary size (rows of the embedding and of `lm_head`).
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Per-head width; Qwen3 sets it explicitly rather than hidden/heads.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base; transformers 4.57 writes it at this level (5.x: inside `rope_parameters`).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers 5.x home of `rope_theta` and `mrope_section`.
    #[serde(default)]
    pub rope_parameters: Option<RopeScaling>,
    /// Holds `mrope_section`, the split of rotary frequencies between t, h and w.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// Nested duplicate of the top-level flag in some configs.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

/// The `rope_scaling` (4.57) or `rope_parameters` (5.x) object.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    /// RoPE base, when written here (5.x).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Frequencies assigned to (t, h, w); sums to head_dim / 2.
    #[serde(default)]
    pub mrope_section: Option<Vec<usize>>,
}

/// Vision transformer settings.
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    /// Number of ViT blocks.
    pub depth: usize,
    /// ViT width.
    pub hidden_size: usize,
    /// ViT MLP inner width.
    pub intermediate_size: usize,
    /// ViT attention heads.
    pub num_heads: usize,
    /// Side of a square patch in pixels (16).
    pub patch_size: usize,
    /// Side of the merge window: merge_size^2 patches become one text token.
    pub spatial_merge_size: usize,
    /// Frames per patch; still images are duplicated to fill it.
    pub temporal_patch_size: usize,
    /// Width of the merged features fed to the decoder (= text hidden size).
    pub out_hidden_size: usize,
    /// Learned position table size; its square root is the table's grid side.
    pub num_position_embeddings: usize,
    /// Blocks whose outputs are merged and added to the first decoder layers (DeepStack).
    #[serde(default)]
    pub deepstack_visual_indexes: Vec<usize>,
    /// Colour channels (3).
    #[serde(default = "default_channels")]
    pub in_channels: usize,
}

fn default_rms_eps() -> f64 {
    1e-6
}
fn default_channels() -> usize {
    3
}

impl TextConfig {
    /// Per-head width, falling back to hidden/heads when the config omits it.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// The M-RoPE split, defaulting to the released models' `[24, 20, 20]`.
    pub fn mrope_section(&self) -> Vec<usize> {
        [&self.rope_scaling, &self.rope_parameters]
            .iter()
            .find_map(|r| r.as_ref().and_then(|r| r.mrope_section.clone()))
            .unwrap_or_else(|| vec![24, 20, 20])
    }

    /// RoPE base from either config generation, defaulting to the released 5,000,000.
    pub fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|r| r.rope_theta))
            .unwrap_or(5_000_000.0)
    }
}

impl Config {
    /// True when `lm_head` is the embedding matrix (checked at both levels, as HF does).
    pub fn tied_embeddings(&self) -> bool {
        self.tie_word_embeddings
            .or(self.text_config.tie_word_embeddings)
            .unwrap_or(false)
    }

    /// Shapes of `Qwen/Qwen3-VL-2B-Instruct` (its `config.json`), used by the benchmark so it
    /// measures the real model's cost without downloading weights.
    pub fn qwen3_vl_2b() -> Self {
        Config {
            text_config: TextConfig {
                vocab_size: 151_936,
                hidden_size: 2048,
                intermediate_size: 6144,
                num_hidden_layers: 28,
                num_attention_heads: 16,
                num_key_value_heads: 8,
                head_dim: Some(128),
                rms_norm_eps: 1e-6,
                rope_theta: Some(5_000_000.0),
                rope_parameters: None,
                rope_scaling: Some(RopeScaling {
                    rope_theta: None,
                    mrope_section: Some(vec![24, 20, 20]),
                }),
                tie_word_embeddings: Some(true),
            },
            vision_config: VisionConfig {
                depth: 24,
                hidden_size: 1024,
                intermediate_size: 4096,
                num_heads: 16,
                patch_size: 16,
                spatial_merge_size: 2,
                temporal_patch_size: 2,
                out_hidden_size: 2048,
                num_position_embeddings: 2304,
                deepstack_visual_indexes: vec![5, 11, 17],
                in_channels: 3,
            },
            image_token_id: 151_655,
            video_token_id: Some(151_656),
            vision_start_token_id: 151_652,
            vision_end_token_id: Some(151_653),
            tie_word_embeddings: Some(true),
        }
    }
}

/// `preprocessor_config.json` (`Qwen2VLImageProcessor`): resize bounds and normalisation.
#[derive(Debug, Clone, Deserialize)]
pub struct PreprocessorConfig {
    /// Patch side in pixels.
    #[serde(default = "default_patch")]
    pub patch_size: usize,
    /// Merge window side.
    #[serde(default = "default_merge")]
    pub merge_size: usize,
    /// Frames per temporal patch.
    #[serde(default = "default_temporal")]
    pub temporal_patch_size: usize,
    /// Per-channel mean subtracted after scaling to [0, 1].
    #[serde(default = "default_half")]
    pub image_mean: Vec<f32>,
    /// Per-channel divisor applied after the mean.
    #[serde(default = "default_half")]
    pub image_std: Vec<f32>,
    /// Lower pixel budget (older configs).
    #[serde(default)]
    pub min_pixels: Option<usize>,
    /// Upper pixel budget (older configs).
    #[serde(default)]
    pub max_pixels: Option<usize>,
    /// Newer configs: `{"shortest_edge": min_pixels, "longest_edge": max_pixels}`.
    #[serde(default)]
    pub size: Option<SizeConfig>,
}

/// The `size` object of newer preprocessor configs (pixel counts, despite the names).
#[derive(Debug, Clone, Deserialize)]
pub struct SizeConfig {
    /// Minimum pixel count.
    #[serde(default)]
    pub shortest_edge: Option<usize>,
    /// Maximum pixel count.
    #[serde(default)]
    pub longest_edge: Option<usize>,
}

fn default_patch() -> usize {
    16
}
fn default_merge() -> usize {
    2
}
fn default_temporal() -> usize {
    2
}
fn default_half() -> Vec<f32> {
    vec![0.5, 0.5, 0.5]
}

impl Default for PreprocessorConfig {
    fn default() -> Self {
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

impl PreprocessorConfig {
    /// Pixel bounds declared by the file, `(min, max)`, if any.
    pub fn pixel_bounds(&self) -> (Option<usize>, Option<usize>) {
        let s = self.size.as_ref();
        (
            self.min_pixels.or(s.and_then(|s| s.shortest_edge)),
            self.max_pixels.or(s.and_then(|s| s.longest_edge)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_transformers_5_rope_parameters() {
        let j = r#"{"vocab_size": 8, "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 1, "num_key_value_heads": 1,
            "rope_parameters": {"rope_theta": 1000.0, "mrope_section": [1, 1, 0], "rope_type": "default"}}"#;
        let c: TextConfig = serde_json::from_str(j).unwrap();
        assert_eq!(c.rope_theta(), 1000.0);
        assert_eq!(c.mrope_section(), vec![1, 1, 0]);
    }
}
