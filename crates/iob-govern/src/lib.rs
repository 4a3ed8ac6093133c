//! Governance of personal data, cross-cutting every stage.
//!
//! * [`Pseudonymizer`]: keyed HMAC-SHA256 of raw identifiers, so that the key every piece of
//!   per-person state is stored under ([`iob_types::PersonKey`]) never reveals the identifier.
//! * [`Permit`]: the only way to read personal data. Every read API of the store and the engine
//!   takes a `&Permit`, and only this crate constructs one, for one purpose and one actor.
//! * [`audit`]: the hash-chained, keyed audit log of every read of personal data, and its
//!   verification.
//!
//! This crate must never hand out a permit without a purpose, and never log a raw identifier
//! or key material.

mod access;
pub mod audit;
mod error;
mod permit;
mod pseudonym;

pub use access::{KeyRing, Scope, StoredKey};
pub use audit::{Access, AuditEntry, AuditLog, AuditRecord};
pub use error::GovernError;
pub use permit::{Actor, Governor, Permit};
pub use pseudonym::{Pseudonymizer, SecretKey};
