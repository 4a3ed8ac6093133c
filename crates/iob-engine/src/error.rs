use thiserror::Error;

/// Everything the engine can answer with. The server maps each variant to an HTTP status and
/// a stable error code in one table (`iob-server/src/problem.rs`).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("configuration `{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("derived store `{store}`: {reason}")]
    Derived { store: &'static str, reason: String },
    #[error(
        "no write key: send it as HTTP Basic auth user (Segment style) or as `writeKey` in the body"
    )]
    MissingKey,
    #[error("the key is not valid")]
    InvalidKey,
    #[error("the key has expired: ask an admin for a new one")]
    ExpiredKey,
    #[error("this key may not {action}")]
    Forbidden { action: &'static str },
    #[error("this key (scope {have}) may not {}; that needs a key with scope {}", need.action(), need.scopes().join(" or "))]
    NeedsScope {
        need: iob_govern::Need,
        have: &'static str,
    },
    #[error("this key is over its rate limit; retry in {} ms", retry_after.as_millis())]
    RateLimited { retry_after: std::time::Duration },
    #[error("rejected `{}`: {}", .0.rejection.field, .0.rejection.message)]
    Rejected(crate::RejectedItem),
    #[error(transparent)]
    Store(#[from] iob_store::StoreError),
    #[error(transparent)]
    Govern(#[from] iob_govern::GovernError),
    /// The audit log could not record a read (so the read was refused), or does not verify.
    #[error("audit log: {0}")]
    Audit(#[source] iob_govern::GovernError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("stored record {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("import stopped after {after_rows} rows (those are stored): {source}")]
    Import {
        after_rows: u64,
        #[source]
        source: iob_collect::CollectError,
    },
    #[error("`{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("no person is known by `{0}`")]
    UnknownPerson(String),
    #[error("the person has not consented to `{purpose}` ({basis}); reads for it are refused")]
    ConsentRequired { purpose: String, basis: String },
    #[error("the engine is shutting down")]
    ShuttingDown,
}

impl EngineError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            what: what.into(),
            source,
        }
    }
}
