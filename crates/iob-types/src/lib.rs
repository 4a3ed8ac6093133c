//! Shared domain types of iob: the vocabulary every stage speaks.
//!
//! * [`Timestamp`] and [`Clock`]: event time in UTC milliseconds, and an injectable clock so
//!   that stage crates stay deterministic.
//! * [`PersonKey`] and [`Partition`]: the pseudonymous key all per-person state is keyed by,
//!   and the partition derived from it (the seam between embedded and distributed mode).
//! * [`Purpose`]: why personal data is read (consent is granted per purpose).
//! * [`Event`]: the canonical, validated behavioral event (Segment Spec types plus `observe`
//!   and `consent`), with the collector's [`Enrichment`] (parsed [`UserAgent`], sentiment).
//!
//! This crate must never do I/O, hold global state, or know about HTTP, files or wire formats
//! other than the canonical JSON of an [`Event`].

mod cache_hint;
mod canonical;
mod clock;
mod enrichment;
mod error;
mod event;
mod json_text;
mod object;
mod person;
mod purpose;

pub use cache_hint::prefetch;
pub use canonical::{EnrichmentRef, EventRef, ReadingRef, TimeCache, write_str as write_json_str};
pub use clock::{Clock, FixedClock, SystemClock, Timestamp};
pub use enrichment::{Device, Enrichment, UserAgent};
pub use error::TypesError;
pub use event::{ConsentChange, Event, EventKind, Reading, routing_id};
pub use json_text::string_stop;
pub use object::{
    AppendFields, ObjectFields, ObjectKey, split_object, split_object_into, split_top_level,
};
pub use person::{Partition, PersonKey, UniformHasher, UniformState};
pub use purpose::Purpose;
