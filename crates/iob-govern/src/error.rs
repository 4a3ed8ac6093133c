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
    #[error("the key is not valid")]
    InvalidKey,
    #[error("the key has expired: ask an admin for a new one")]
    ExpiredKey,
    #[error("{0}")]
    BadScope(String),
    #[error("key id `{0}` must be 1-64 of a-z, A-Z, 0-9, '-', '_'")]
    BadKeyId(String),
    #[error("a key with id `{0}` already exists: choose another id or revoke it first")]
    DuplicateKey(String),
    #[error("no key has id `{0}`")]
    UnknownKey(String),
    #[error(
        "key `{0}` is set in the config file or environment: remove it there and restart to revoke it"
    )]
    ConfiguredKey(String),
    #[error("system permits are issued only to the engine's own jobs (Governor::system)")]
    ReservedActor,
    #[error("audit log: {what}: {source}")]
    AuditIo {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the audit log does not verify: {0}. Run `iob audit verify` to find the first bad record; reads of personal data stay refused until DIR/audit is moved aside (keep it as evidence) to start a new chain"
    )]
    AuditBroken(String),
}

impl GovernError {
    pub fn audit_io(what: impl Into<String>, source: std::io::Error) -> Self {
        GovernError::AuditIo {
            what: what.into(),
            source,
        }
    }
}
