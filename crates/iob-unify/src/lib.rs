//! The unify stage of iob: stored events → one person per human (identity graph) and a profile
//! per person, updated per event by event time.
//!
//! Synchronous and deterministic given its inputs; no I/O, no clock (reads take `now`). The
//! engine feeds it the log in order and serves its reads under a purpose; `iob rebuild` feeds
//! it the whole log again and must arrive at the same state.
//!
//! Code map: `rules` (identity configuration) → `identity` (the graph) · `signal` (what is
//! read from an event) → `unifier` (apply an event) → `profile` / `features` (the state) →
//! `view` (what users see) · `symbols` (interned strings).

pub mod consent;
pub mod features;
mod hash;
pub mod identity;
pub mod profile;
mod reads;
pub mod rules;
pub mod signal;
pub mod snapshot;
pub mod symbols;
pub mod unifier;
pub mod view;

pub use consent::{ConsentChoice, ConsentHistory, ConsentRules};
pub use identity::{Explanation, IdKey, Identifier, IdentityGraph, PersonId, Provenance};
pub use profile::{Feature, Profile, ProfileConfig};
pub use reads::{Erased, ReadRefused};
pub use rules::{IdentifierConfig, IdentityConfig, IdentityRules, Normalize};
pub use unifier::{StoredEvent, Unifier};
pub use view::ProfileView;

/// Errors of the unify stage.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum UnifyError {
    #[error("config `{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("a stored event could not be read: {0}")]
    Payload(String),
    #[error("the unify snapshot cannot be used: {0}")]
    Snapshot(String),
}
