//! OpsLens local vision-language engine: a Qwen3-VL port on candle (default model
//! `Qwen/Qwen3-VL-2B-Instruct`), written here because candle-transformers' `qwen3_vl` lacks
//! M-RoPE, a causal prefill mask, a preprocessor, a chat template and a quantized path.
//!
//! Laid out as candle-transformers and mistral.rs lay out theirs: each model family in its own
//! folder ([`qwen3_vl`]), the pieces any family can use at the root (quantized layers, fused
//! attention, the quantized-weight cache, Pillow-exact resizing, weight files, generation, the
//! engine thread). A library only: the `opslens vlm` command lives in the binary.
//!
//! Knows nothing of HTTP or SQLite. Typical use:
//! ```no_run
//! # fn main() -> Result<(), opslens_vlm::VlmError> {
//! use opslens_vlm::{Engine, GenerateParams, LoadOptions};
//! let dev = candle_core::Device::Cpu;
//! let mut engine = Engine::load("models/qwen3-vl-2b".as_ref(), &dev, &LoadOptions::default())?;
//! let img = image::open("shot.png").map_err(|e| opslens_vlm::VlmError::Image(e.to_string()))?;
//! let out = engine.generate(Some(&img), "What is wrong?", &GenerateParams::default(), &mut |_, s| print!("{s}"), None)?;
//! println!("{} tokens", out.token_ids.len());
//! # Ok(()) }
//! ```

pub mod alloc;
pub mod attention;
pub mod chat_template;
mod decode;
pub mod embed;
pub mod engine;
pub mod error;
pub mod generate;
pub mod ops;
pub mod qcache;
pub mod quant;
pub mod qwen3_vl;
pub mod resize;
pub mod weights;
pub mod worker;

pub use embed::ImageEmbedding;
pub use engine::{Engine, LoadOptions};
pub use error::VlmError;
pub use generate::{GenerateParams, Generation, Sampling, StopReason, Timings};
pub use qcache::CacheUse;
pub use quant::WeightMode;
pub use qwen3_vl::{Config, ImageInput, ImageProcessor, PreprocessorConfig, Qwen3Vl};
pub use worker::{EngineHandle, Job};
