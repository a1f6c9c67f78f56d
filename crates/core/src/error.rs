//! Errors of the use-cases, classified by what the caller did wrong (or not).

use opslens_store::StoreError;

/// What went wrong, in categories an API maps 1:1 to status codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The request is well-formed but a value is not acceptable (422).
    #[error("{0}")]
    Invalid(String),
    /// A referenced id does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts stored data (409).
    #[error("{0}")]
    Conflict(String),
    /// The payload is not a supported kind (415).
    #[error("{0}")]
    UnsupportedMedia(String),
    /// The payload is too big, in bytes or in decoded pixels (413).
    #[error("{0}")]
    TooLarge(String),
    /// A webhook delivery's signature or credential does not check out (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The integration this request needs has no keys (409): the message names them.
    #[error("{0}")]
    NotConfigured(String),
    /// The other service failed or answered garbage (502).
    #[error("{0}")]
    Upstream(String),
    /// The disk holding the data dir is full (507); the message names the dir and its free
    /// space, so the user knows what to clean up.
    #[error("{0}")]
    InsufficientStorage(String),
    /// SQLite stayed busy or locked past its timeout (503): the same request can be retried.
    #[error("{0}")]
    Busy(String),
    /// Something failed on our side (500); the message is for the log, not the client.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => CoreError::NotFound(e.to_string()),
            StoreError::Conflict(m) => CoreError::Conflict(m),
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for CoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        CoreError::Internal(format!("background task failed: {e}"))
    }
}
