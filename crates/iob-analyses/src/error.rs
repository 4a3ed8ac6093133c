//! The one error type of the crate.
//!
//! Every variant names the field (request field or column) at fault so that a CLI or HTTP caller
//! can fix its input without reading the code. Errors never carry event data (property values of
//! rows): only names taken from the request or the schema.

use thiserror::Error;

/// Why an analysis could not run.
#[derive(Debug, Error)]
pub enum AnalysisError {
    /// The request is malformed: `field` is the JSON path of the offending request member.
    #[error("invalid request: `{field}`: {reason}")]
    Request { field: String, reason: String },
    /// A column the analysis needs is absent from a batch the source delivered.
    #[error(
        "column `{column}` is missing from the event batch (the source must provide it when asked)"
    )]
    MissingColumn { column: String },
    /// A column has an Arrow type this crate does not read.
    #[error("column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        column: String,
        found: String,
        expected: String,
    },
    /// The source broke its ordering contract (days ascending, rows sorted by time within a day).
    #[error("event source out of order: {0}")]
    Order(String),
    /// The source failed (I/O, decoding); the message comes from the source.
    #[error("event source failed: {0}")]
    Source(String),
}

impl AnalysisError {
    /// A request error naming `field`.
    pub fn request(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AnalysisError::Request {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
