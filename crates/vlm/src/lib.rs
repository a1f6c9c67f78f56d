//! OpsLens local vision-language engine: a Qwen3-VL port on candle (default model
//! `Qwen/Qwen3-VL-2B-Instruct`), written here because candle-transformers' `qwen3_vl` lacks
//! M-RoPE, a causal prefill mask, a preprocessor, a chat template and a quantized path.
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

pub mod attention;
pub mod cli;
pub mod config;
pub mod error;
pub mod generate;
pub mod load;
pub mod model;
pub mod ops;
pub mod processor;
pub mod qcache;
pub mod quant;
pub mod resize;
pub mod rope;
pub mod text;
pub mod vision;
pub mod worker;

pub use cli::{run_cli, RunArgs};
pub use config::{Config, PreprocessorConfig};
pub use error::VlmError;
pub use generate::{GenerateParams, Generation, Sampling, StopReason, Timings};
pub use load::{Engine, LoadOptions};
pub use model::Qwen3Vl;
pub use processor::{ImageInput, ImageProcessor};
pub use qcache::CacheUse;
pub use quant::WeightMode;
pub use worker::{EngineHandle, Job};
