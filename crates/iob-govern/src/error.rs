use thiserror::Error;

#[derive(Debug, Error)]
pub enum GovernError {
    #[error("secret key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("purpose `{purpose}` is not configured; configured purposes: {known}")]
    UnknownPurpose { purpose: String, known: String },
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
