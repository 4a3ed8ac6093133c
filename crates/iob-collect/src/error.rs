//! The crate's error type: configuration that cannot work (a tracking-plan schema that does
//! not compile, a CSV mapping that names a missing column) and import streams that cannot be
//! read. Per-event problems are never errors: they are [`crate::Rejection`]s.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CollectError {
    #[error(
        "tracking plan: the JSON Schema for event `{event}` is invalid: {reason}; fix the schema in the plan (it must be a valid JSON Schema object)"
    )]
    InvalidSchema { event: String, reason: String },

    #[error("CSV mapping: `{field}` {reason}")]
    InvalidMapping { field: String, reason: String },

    #[error("CSV mapping is not valid TOML for an `[import.csv]` table: {0}")]
    MappingToml(String),

    #[error(
        "import `{name}`: cannot read input near line {line}: {source}; check that the file is complete (a truncated .gz fails here)"
    )]
    Read {
        name: String,
        line: u64,
        #[source]
        source: std::io::Error,
    },
}
