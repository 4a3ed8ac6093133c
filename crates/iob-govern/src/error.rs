use thiserror::Error;

#[derive(Debug, Error)]
pub enum GovernError {
    #[error("secret key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("purpose `{purpose}` is not configured; configured purposes: {known}")]
    UnknownPurpose { purpose: String, known: String },
    #[error("consent policy: {0}")]
    Policy(String),
    #[error("master key must be 64 hex digits or the base64 of 32 bytes")]
    MasterKeyFormat,
    #[error("sealed data cannot be opened: {0}")]
    Sealed(&'static str),
}
