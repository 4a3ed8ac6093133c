use thiserror::Error;

#[derive(Debug, Error)]
pub enum GovernError {
    #[error("secret key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("purpose `{purpose}` is not configured; configured purposes: {known}")]
    UnknownPurpose { purpose: String, known: String },
}
