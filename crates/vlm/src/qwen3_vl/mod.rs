//! Qwen3-VL (dense): the vision tower with DeepStack taps, the Qwen3 text decoder with
//! interleaved 3-D M-RoPE, their configuration, and the `Qwen2VLImageProcessor` preprocessing
//! with the Qwen chat prompt. A second model family gets a sibling folder; what any family
//! can use (quantized layers, fused attention, the weight cache, Pillow-exact resizing,
//! sampling, the engine thread) stays at the crate root.

pub mod config;
pub mod model;
pub mod processor;
pub mod rope;
pub mod text;
pub mod vision;

pub use config::{Config, PreprocessorConfig};
pub use model::Qwen3Vl;
pub use processor::{ImageInput, ImageProcessor};
