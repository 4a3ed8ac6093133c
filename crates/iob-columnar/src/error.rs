//! Errors of the columnar store.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the columnar store is damaged ({what}): {reason}; remove the `analytics` directory to rebuild it from the log"
    )]
    Corrupt { what: String, reason: String },
    #[error(
        "the columnar store has format version {found}, this iob reads version {expected}; remove the `analytics` directory to rebuild it from the log"
    )]
    Version { found: u32, expected: u32 },
    #[error("parquet file {path}: {reason}")]
    Parquet { path: PathBuf, reason: String },
    #[error("unknown column `{0}` (see the events schema: `iob query --schema`)")]
    UnknownColumn(String),
    #[error("the reader of the scan went away before it ended")]
    Cancelled,
    #[error(transparent)]
    Engine(#[from] iob_engine::EngineError),
}

impl ColumnarError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ColumnarError::Io {
            what: what.into(),
            source,
        }
    }
}
