//! The audit log: a hash-chained, keyed, append-only record of every read of personal data.
//!
//! Each [`AuditRecord`] says who read (actor kind and API key id), for which purpose, whose
//! data (the subject's pseudonym, never a raw identifier), what (`profile.read`,
//! `timeline.read`, ...), how many items and when. Records are JSON Lines in
//! `DIR/audit/audit-NNNN.log`, fsynced before the read they record returns, and chained:
//! each carries `prev` (the previous record's hash; [`GENESIS`] for the first) and `hash`,
//! the HMAC-SHA256 under `DIR/secrets/audit.key` of a canonical encoding of all its other
//! fields. `DIR/audit/HEAD` names the last acknowledged record (sequence number and hash,
//! MACed) and is overwritten in place (one sector) after each group commit of records. [`verify`] walks the chain and names
//! the first bad record and why.
//!
//! **Threat model.** The adversary can read, edit, delete, reorder or truncate the files
//! under `DIR/audit/` but cannot read `DIR/secrets/audit.key` (0600, owned by the service
//! user). Then a changed field breaks that record's MAC; a removed record leaves a sequence
//! gap; reordered records break sequence order and `prev` links; removing the last records
//! contradicts `HEAD`; and a forged record, or a whole recomputed chain with a plain SHA-256
//! (or any hash made without the key), fails the MAC. Not covered, and said so: an adversary
//! who holds the key (root on the host) can rewrite everything consistently; one who saved
//! an old copy of both a log prefix and its `HEAD` can roll the log back to that point. To
//! detect those, copy the head hash that `iob audit verify` prints to somewhere the host
//! cannot write (a ticket, another machine) and compare later.
//!
//! Internal jobs (permits whose actor is [`Actor::System`]: the unify follower, recovery,
//! replay) are not audited per record: they read every event, and no person's data leaves
//! the engine through them. Every other permit's read is.
//!
//! This module must never write a raw identifier or key material into a record, and never
//! let a read proceed when its record could not be made durable.

mod chain;
mod files;
mod log;
mod tail;
mod verify;

#[cfg(test)]
mod commit_tests;
#[cfg(test)]
mod tests;

use iob_types::PersonKey;
use serde::{Deserialize, Serialize};

pub use chain::{AuditKey, GENESIS};
pub use log::{AuditLog, AuditOptions};
pub use verify::{Finding, FindingKind, ListFilter, VerifyReport, list, verify};

use crate::Actor;

/// One audit record as stored: one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 0, without gaps.
    pub seq: u64,
    /// When, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `api_key`, `operator` (the command line) or `system`.
    pub actor: String,
    /// The API key's id (never the key) for `api_key`; the job for `system`.
    pub key: Option<String>,
    /// The declared purpose of the read.
    pub purpose: String,
    /// The person read: the pseudonym (hex) of their first identifier. `None` for reads that
    /// span many persons (the log, the quarantine): those say what they asked for in `detail`.
    pub subject: Option<String>,
    /// What was read: see [`Access`].
    pub action: String,
    /// How many items the read returned, when known.
    pub items: Option<u64>,
    /// What was asked for (a sequence range, a time range), never a raw identifier.
    pub detail: Option<String>,
    /// The previous record's `hash` ([`GENESIS`] for the first record).
    pub prev: String,
    /// HMAC-SHA256 (hex) of this record's other fields under the audit key.
    pub hash: String,
}

/// The kinds of read that are audited. Adding a read of personal data means adding its kind
/// here and one [`AuditLog::record`] call (through the engine) in the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A person's profile.
    ProfileRead,
    /// A page of a person's journey (timeline).
    TimelineRead,
    /// A person's identity explanation.
    IdentityRead,
    /// A person's consent state and history.
    ConsentRead,
    /// Events in log order (`iob events tail`, reads by sequence number).
    LogRead,
    /// Events in an event-time range.
    LogScan,
    /// Every stored event (`iob events export`).
    LogExport,
    /// Quarantined (rejected) events, whose payloads may hold personal data.
    QuarantineRead,
    /// Everything about one person, machine-readable (data subject access).
    Export,
    /// Erasure of a person.
    Erase,
    /// Rows of a query over events.
    QueryRows,
    /// A decision computed from a person's data.
    Decide,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ProfileRead => "profile.read",
            Access::TimelineRead => "timeline.read",
            Access::IdentityRead => "identity.read",
            Access::ConsentRead => "consent.read",
            Access::LogRead => "log.read",
            Access::LogScan => "log.scan",
            Access::LogExport => "log.export",
            Access::QuarantineRead => "quarantine.read",
            Access::Export => "export",
            Access::Erase => "erase",
            Access::QueryRows => "query.rows",
            Access::Decide => "decide",
        }
    }
}

/// What the reader supplies for one record; the log adds who, when, purpose and the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub access: Access,
    pub subject: Option<PersonKey>,
    pub items: Option<u64>,
    pub detail: Option<String>,
}

impl AuditEntry {
    /// A read of one person's data.
    pub fn person(access: Access, subject: PersonKey, items: u64) -> Self {
        AuditEntry {
            access,
            subject: Some(subject),
            items: Some(items),
            detail: None,
        }
    }

    /// A read spanning many persons, described by `detail` (a range; never an identifier).
    pub fn bulk(access: Access, detail: impl Into<String>) -> Self {
        AuditEntry {
            access,
            subject: None,
            items: None,
            detail: Some(detail.into()),
        }
    }
}

/// The record's `actor` and `key` for an actor.
fn actor_fields(a: &Actor) -> (&'static str, Option<String>) {
    match a {
        Actor::ApiKey(id) => ("api_key", Some(id.clone())),
        Actor::Operator => ("operator", None),
        Actor::System(job) => ("system", Some((*job).to_string())),
    }
}
