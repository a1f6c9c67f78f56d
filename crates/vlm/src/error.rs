//! The crate's error type.

/// Everything that can go wrong loading or running the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VlmError {
    /// A tensor operation failed (shape mismatch, missing weight, backend error).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A model file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON config file is malformed.
    #[error("{path}: {source}")]
    Json {
        /// The file involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The tokenizer could not be loaded or failed to encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The image could not be decoded or has an unusable size.
    #[error("image: {0}")]
    Image(String),
    /// The model folder is incomplete or inconsistent.
    #[error("model: {0}")]
    Model(String),
}
