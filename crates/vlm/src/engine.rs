//! The engine: a loaded model with its tokenizer and image processor, built from a folder in
//! the Hugging Face layout (config.json, tokenizer.json, preprocessor_config.json,
//! model.safetensors or an index with shards). Today it holds a Qwen3-VL; a second family
//! would make [`Engine::model`] an enum chosen from `config.json`'s `model_type`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use tokenizers::Tokenizer;

use crate::chat_template::ChatTemplate;
use crate::error::VlmError;
use crate::qcache::{self, CacheUse, QuantCache};
use crate::quant::WeightMode;
use crate::qwen3_vl::{Config, ImageProcessor, PreprocessorConfig, Qwen3Vl};
use crate::weights::{mmap_var_builder, read_json, weight_files};

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Decoder weight storage; [`WeightMode::Q4K`] by default (fastest on CPU).
    pub mode: WeightMode,
    /// Vision-tower storage; `None` = `mode.default_vision()` (Q8_0 for quantized modes).
    pub vision_mode: Option<WeightMode>,
    /// Lower pixel budget override.
    pub min_pixels: Option<usize>,
    /// Upper pixel budget override (default: 1024x768 pixels).
    pub max_pixels: Option<usize>,
    /// Folder for the quantized weights of this model (see [`crate::qcache`]): the first load
    /// writes them there, later loads read them instead of quantizing. `None`: no cache.
    pub cache_dir: Option<PathBuf>,
}

/// A loaded model with its tokenizer and image processor: everything needed to answer a
/// prompt about an image. Not `Sync`-shared: run it on one engine thread.
#[derive(Debug)]
pub struct Engine {
    /// The network.
    pub model: Qwen3Vl,
    /// The tokenizer from `tokenizer.json`.
    pub tokenizer: Tokenizer,
    /// Image preprocessing settings.
    pub processor: ImageProcessor,
    /// Token ids that end generation (`<|im_end|>`, `<|endoftext|>`).
    pub stop_tokens: Vec<u32>,
    /// The model's own chat template, which every prompt goes through.
    pub template: ChatTemplate,
    /// Wall time of [`Engine::load`], for reporting.
    pub load_ms: f64,
    /// What the load did with the quantized-weight cache, when it had one.
    pub quant_cache: Option<CacheUse>,
    /// Which weights these are (see [`crate::embed::model_id`]), stamped on image embeddings
    /// so vectors of different models are never compared. Empty for an engine built with
    /// [`Engine::from_parts`] until the caller names it.
    pub model_id: String,
}

impl Engine {
    /// Loads a model folder on `device`.
    pub fn load(dir: &Path, device: &Device, opts: &LoadOptions) -> Result<Self, VlmError> {
        let t0 = Instant::now();
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let pre_path = dir.join("preprocessor_config.json");
        let pre: PreprocessorConfig = if pre_path.exists() {
            read_json(&pre_path)?
        } else {
            PreprocessorConfig::default()
        };
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| VlmError::Tokenizer(format!("{}: {e}", tok_path.display())))?;
        let template = ChatTemplate::from_dir(dir)?;
        let files = weight_files(dir)?;
        let vb = mmap_var_builder(&files, device)?;
        let vision_mode = opts.vision_mode.unwrap_or(opts.mode.default_vision());
        let cache = opts.cache_dir.as_ref().map(|d| {
            let modes = format!("{:?}/{:?}", opts.mode, vision_mode);
            Arc::new(QuantCache::open(d, &files, &modes, device))
        });
        let model = qcache::scoped(cache.clone(), || {
            Qwen3Vl::load_split(vb, &cfg, opts.mode, vision_mode)
        })?;
        let quant_cache = cache.map(|c| c.finish());
        let mut engine = Self::from_parts(
            model,
            tokenizer,
            ImageProcessor::new(&pre, opts.min_pixels, opts.max_pixels),
            template,
        );
        engine.load_ms = t0.elapsed().as_secs_f64() * 1e3;
        engine.quant_cache = quant_cache;
        engine.model_id = crate::embed::model_id(dir);
        Ok(engine)
    }

    /// Assembles an engine from an already built model (benchmarks use random weights).
    pub fn from_parts(
        model: Qwen3Vl,
        tokenizer: Tokenizer,
        processor: ImageProcessor,
        template: ChatTemplate,
    ) -> Self {
        let stop_tokens = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Self {
            model,
            tokenizer,
            processor,
            stop_tokens,
            template,
            load_ms: 0.0,
            quant_cache: None,
            model_id: String::new(),
        }
    }
}
