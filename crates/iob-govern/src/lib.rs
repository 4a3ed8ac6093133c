//! Governance of personal data, cross-cutting every stage.
//!
//! * [`Pseudonymizer`]: keyed HMAC-SHA256 of raw identifiers, so that the key every piece of
//!   per-person state is stored under ([`iob_types::PersonKey`]) never reveals the identifier.
//! * [`ConsentPolicy`]: purposes, their opt-in/opt-out defaults, and the decision for a person.
//! * [`MasterKey`], [`DataKey`]: AES-256-GCM sealing of payloads under per-person data keys
//!   wrapped by a master key (crypto-shredding erasure, rotation without rewriting events).
//! * [`Permit`]: the only way to read personal data. Every read API of the store and the engine
//!   takes a `&Permit`, and only this crate constructs one, for one purpose and one actor.
//! * [`KeyRing`], [`Scope`], [`Need`]: scoped API keys (hashed, constant-time, expiring) and the
//!   one table of which scope grants which need; [`RateLimiter`]: a token bucket per key.
//! * [`audit`]: the hash-chained, keyed audit log of every read of personal data, and its
//!   verification.
//!
//! This crate must never hand out a permit without a purpose, and never log a raw identifier
//! or key material.

mod access;
pub mod audit;
mod consent;
mod error;
mod limit;
mod permit;
mod private_file;
mod pseudonym;
mod sealing;

pub use access::{KeyOrigin, KeyRing, Need, SCOPE_NAMES, Scope, StoredKey, valid_name};
pub use audit::{Access, AuditEntry, AuditLog, AuditRecord};
pub use consent::{Basis, ConsentPolicy, Decision, DefaultConsent};
pub use error::GovernError;
pub use limit::{Limit, RateLimiter};
pub use permit::{Actor, Governor, Permit};
pub use private_file::{sync_dir, write_private};
pub use pseudonym::{Pseudonymizer, SecretKey};
pub use sealing::{
    DataKey, MasterKey, PersonCipher, SEAL_OVERHEAD, WRAPPED_LEN, generate_master_key_text,
    sealed_generation,
};
