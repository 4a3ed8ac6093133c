use thiserror::Error;

/// Errors of the domain types: always about one value, named.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TypesError {
    #[error(
        "`{field}` is not a valid timestamp ({reason}); use ISO-8601 like 2024-05-01T12:00:00.000Z or epoch milliseconds"
    )]
    Timestamp { field: String, reason: String },
    #[error("`{value}` is not a valid purpose name: use 1-40 characters of a-z, 0-9, '_' or '-'")]
    Purpose { value: String },
    #[error(
        "`{value}` is not a known event type; expected one of track, identify, page, screen, group, alias, observe, consent"
    )]
    EventKind { value: String },
    #[error("stored event is not valid canonical JSON: {0}")]
    Canonical(String),
}
