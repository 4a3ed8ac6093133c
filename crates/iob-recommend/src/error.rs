//! The crate's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecommendError {
    /// A model artifact that cannot be read: truncated, corrupted or from another version.
    #[error("model artifact {path}: {reason}")]
    Artifact { path: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Bad input from a caller (`n`, placement, parameters), naming the field.
    #[error("`{field}`: {reason}")]
    Invalid { field: String, reason: String },
    /// The linear algebra failed (EASE's Gram matrix not positive definite: raise `lambda`).
    #[error("training {model}: {reason}")]
    Training { model: &'static str, reason: String },
    /// A dataset for evaluation that is absent or malformed.
    #[error("dataset {name}: {reason}")]
    Dataset { name: String, reason: String },
    #[error(transparent)]
    Engine(#[from] iob_engine::EngineError),
}

impl RecommendError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RecommendError::Io {
            what: what.into(),
            source,
        }
    }
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        RecommendError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = RecommendError> = std::result::Result<T, E>;
