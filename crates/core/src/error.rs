//! Errors of the use-cases, classified by what the caller did wrong (or not).

use std::error::Error as StdError;

use opslens_store::StoreError;

/// The cause behind an internal error, kept whole so the log shows the full chain.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

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
    /// Something failed on our side (500): what was being done, and why. For the log, not the
    /// client; `source()` walks the whole chain.
    #[error("{context}")]
    Internal {
        /// What was being done (`cannot open the database in …`).
        context: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
}

impl CoreError {
    /// An internal error with its cause kept.
    pub fn internal(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        CoreError::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// The error and its causes, `: `-joined, each once (a cause whose text its parent
    /// already quotes is not repeated): the line for a log or a terminal.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = StdError::source(self);
        while let Some(e) = cur {
            let s = e.to_string();
            if !out.contains(&s) {
                out.push_str(": ");
                out.push_str(&s);
            }
            cur = e.source();
        }
        out
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => CoreError::NotFound(e.to_string()),
            StoreError::Conflict(m) => CoreError::Conflict(m),
            other => CoreError::internal("the store failed", other),
        }
    }
}

impl From<tokio::task::JoinError> for CoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        CoreError::internal("a background task failed", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_cause_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = CoreError::from(StoreError::Io(io));
        assert!(matches!(e, CoreError::Internal { .. }));
        let store = StdError::source(&e).expect("the store error is kept");
        assert!(store.to_string().contains("denied"), "{store}");
        assert_eq!(
            e.chain(),
            "the store failed: file system error: denied",
            "each cause once"
        );
    }
}
