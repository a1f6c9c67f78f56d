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
    /// `config.json` asks for something this port does not implement; refused so the model
    /// fails to load instead of producing wrong tokens.
    #[error("config.json: {field} = {value} is not supported (this port implements {supported})")]
    Unsupported {
        /// The field, dotted from the top level (`text_config.attention_bias`).
        field: String,
        /// Its value as written in the file.
        value: String,
        /// What the port implements instead.
        supported: &'static str,
    },
}
