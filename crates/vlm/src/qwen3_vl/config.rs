//! Model and preprocessor configuration, read from the Hugging Face `config.json` and
//! `preprocessor_config.json` of a Qwen3-VL checkpoint (transformers 4.57 layout).

use std::path::Path;

use serde::Deserialize;

use crate::error::VlmError;

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
    /// Top-level copy of the tying flag. transformers 4.57 does not read it for Qwen3-VL (it
    /// asks the decoder's config, see [`Config::tied_embeddings`]); kept to describe the file.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// `qwen3_vl` for the dense model this port implements (`qwen3_vl_moe` is another model).
    #[serde(default)]
    pub model_type: Option<String>,
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
    /// Whether `lm_head` reuses the token embedding: the flag transformers 4.57 follows
    /// (true for the 2B model).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Biases on q/k/v/o; the released models have none and neither does this port.
    #[serde(default)]
    pub attention_bias: bool,
    /// MLP activation; the port implements `silu` (SwiGLU).
    #[serde(default = "default_text_act")]
    pub hidden_act: String,
    /// `qwen3_vl_text` for the dense decoder.
    #[serde(default)]
    pub model_type: Option<String>,
}

/// The `rope_scaling` (4.57) or `rope_parameters` (5.x) object.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    /// RoPE variant; only `default` (plain inverse frequencies, no scaling) is implemented.
    #[serde(default)]
    pub rope_type: Option<String>,
    /// Older spelling of `rope_type`, read when `rope_type` is absent.
    #[serde(default, rename = "type")]
    pub legacy_type: Option<String>,
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
    /// Vision MLP activation; the port implements `gelu_pytorch_tanh`.
    #[serde(default = "default_vision_act")]
    pub hidden_act: String,
    /// `qwen3_vl` for the tower this port implements.
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_rms_eps() -> f64 {
    1e-6
}
fn default_channels() -> usize {
    3
}
fn default_text_act() -> String {
    "silu".into()
}
fn default_vision_act() -> String {
    "gelu_pytorch_tanh".into()
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
    /// Reads `config.json` and refuses what the port does not implement
    /// ([`Config::check_supported`]), so an unusual checkpoint fails to load instead of
    /// producing wrong tokens.
    pub fn from_file(path: &Path) -> Result<Self, VlmError> {
        let cfg: Config = crate::weights::read_json(path)?;
        cfg.check_supported()?;
        Ok(cfg)
    }

    /// True when `lm_head` is the embedding matrix. As transformers 4.57 decides it: the
    /// decoder's own flag (`text_config.tie_word_embeddings`, `get_text_config(decoder=True)`
    /// in `tie_embeddings_and_encoder_decoder`), false when absent (`Qwen3VLTextConfig`'s
    /// default); the top-level flag is not consulted. (A checkpoint without `lm_head.weight`
    /// uses the embedding either way, see `TextModel::load`.)
    pub fn tied_embeddings(&self) -> bool {
        self.text_config.tie_word_embeddings.unwrap_or(false)
    }

    /// Refuses configuration values the port does not implement, naming the field and value:
    /// another model type, attention biases, another activation, a RoPE variant other than
    /// `default`, or other than three colour channels.
    pub fn check_supported(&self) -> Result<(), VlmError> {
        let (t, v) = (&self.text_config, &self.vision_config);
        let refuse = |field: &str, value: String, supported: &'static str| {
            Err(VlmError::Unsupported {
                field: field.to_owned(),
                value,
                supported,
            })
        };
        let model_types = [
            ("model_type", &self.model_type, "qwen3_vl"),
            ("text_config.model_type", &t.model_type, "qwen3_vl_text"),
            ("vision_config.model_type", &v.model_type, "qwen3_vl"),
        ];
        for (field, value, want) in model_types {
            if let Some(value) = value.as_deref().filter(|m| *m != want) {
                return refuse(field, format!("{value:?}"), want);
            }
        }
        if t.attention_bias {
            return refuse("text_config.attention_bias", "true".into(), "false");
        }
        if t.hidden_act != "silu" {
            return refuse(
                "text_config.hidden_act",
                format!("{:?}", t.hidden_act),
                "silu",
            );
        }
        if v.hidden_act != "gelu_pytorch_tanh" {
            let value = format!("{:?}", v.hidden_act);
            return refuse("vision_config.hidden_act", value, "gelu_pytorch_tanh");
        }
        if v.in_channels != 3 {
            let value = v.in_channels.to_string();
            return refuse("vision_config.in_channels", value, "3");
        }
        let ropes = [
            ("text_config.rope_scaling", &t.rope_scaling),
            ("text_config.rope_parameters", &t.rope_parameters),
        ];
        for (field, rope) in ropes {
            let Some(r) = rope else { continue };
            let (key, kind) = match (&r.rope_type, &r.legacy_type) {
                (Some(k), _) => ("rope_type", k),
                (None, Some(k)) => ("type", k),
                (None, None) => continue,
            };
            // Qwen2-VL's configs spell the default `mrope`; transformers treats it as default.
            if kind != "default" && kind != "mrope" {
                return refuse(&format!("{field}.{key}"), format!("{kind:?}"), "default");
            }
        }
        Ok(())
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
                    rope_type: Some("default".into()),
                    legacy_type: None,
                    rope_theta: None,
                    mrope_section: Some(vec![24, 20, 20]),
                }),
                tie_word_embeddings: Some(true),
                attention_bias: false,
                hidden_act: default_text_act(),
                model_type: Some("qwen3_vl_text".into()),
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
                hidden_act: default_vision_act(),
                model_type: Some("qwen3_vl".into()),
            },
            image_token_id: 151_655,
            video_token_id: Some(151_656),
            vision_start_token_id: 151_652,
            vision_end_token_id: Some(151_653),
            tie_word_embeddings: Some(true),
            model_type: Some("qwen3_vl".into()),
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

    /// The tiny fixture's config.json with `edit` applied to its JSON.
    fn tiny_with(edit: impl FnOnce(&mut serde_json::Value)) -> Config {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/test/tiny-qwen3-vl/config.json"
        );
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tying_follows_the_text_config_as_transformers_4_57() {
        let tied = |top: Option<bool>, text: Option<bool>| {
            tiny_with(|v| {
                v["tie_word_embeddings"] = top.into();
                v["text_config"]["tie_word_embeddings"] = text.into();
            })
            .tied_embeddings()
        };
        assert!(!tied(Some(true), Some(false)));
        assert!(tied(Some(false), Some(true)));
        assert!(tied(Some(true), Some(true)));
        // Qwen3VLTextConfig's default when the decoder's flag is absent (null)
        assert!(!tied(Some(true), None));
    }

    #[test]
    fn the_fixture_and_the_2b_shapes_are_supported() {
        tiny_with(|_| {}).check_supported().unwrap();
        Config::qwen3_vl_2b().check_supported().unwrap();
        // transformers 5 layout and Qwen2-VL's spelling of the default rope
        tiny_with(|v| {
            v["text_config"]["rope_scaling"] = serde_json::Value::Null;
            v["text_config"]["rope_parameters"] =
                serde_json::json!({"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3]});
        })
        .check_supported()
        .unwrap();
        tiny_with(|v| v["text_config"]["rope_scaling"] = serde_json::json!({"type": "mrope"}))
            .check_supported()
            .unwrap();
    }

    #[test]
    fn unimplemented_values_are_refused_by_field_and_value() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit, &str); 8] = [
            (
                "text_config.attention_bias",
                |v| v["text_config"]["attention_bias"] = true.into(),
                "true",
            ),
            (
                "text_config.hidden_act",
                |v| v["text_config"]["hidden_act"] = "gelu".into(),
                "\"gelu\"",
            ),
            (
                "vision_config.hidden_act",
                |v| v["vision_config"]["hidden_act"] = "quick_gelu".into(),
                "\"quick_gelu\"",
            ),
            (
                "text_config.rope_scaling.rope_type",
                |v| v["text_config"]["rope_scaling"]["rope_type"] = "yarn".into(),
                "\"yarn\"",
            ),
            (
                "text_config.rope_parameters.type",
                |v| v["text_config"]["rope_parameters"] = serde_json::json!({"type": "linear"}),
                "\"linear\"",
            ),
            (
                "model_type",
                |v| v["model_type"] = "qwen3_vl_moe".into(),
                "\"qwen3_vl_moe\"",
            ),
            (
                "vision_config.model_type",
                |v| v["vision_config"]["model_type"] = "siglip".into(),
                "\"siglip\"",
            ),
            (
                "vision_config.in_channels",
                |v| v["vision_config"]["in_channels"] = 4.into(),
                "4",
            ),
        ];
        for (field, edit, value) in cases {
            let err = tiny_with(edit).check_supported().unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(&err, VlmError::Unsupported { field: f, value: v, .. } if f == field && v == value),
                "{field}: {msg}"
            );
            assert!(msg.contains(field) && msg.contains(value), "{msg}");
        }
    }

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
