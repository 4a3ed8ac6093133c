//! Collection stage of iob: bytes → validated, enriched [`iob_types::Event`]s, or named
//! [`Rejection`]s.
//!
//! * [`Collector::parse_event`] and [`Collector::parse_batch`]: the Segment HTTP Tracking API
//!   (`track`, `identify`, `page`, `screen`, `group`, `alias`, `batch`) plus iob's `observe`
//!   (device readings) and `consent` calls, with Segment's clock-skew correction, derived
//!   `messageId`s and server-side enrichment (`receivedAt`, source, client ip, and
//!   `iobEnrichment`: the parsed user agent and the sentiment of configured free-text
//!   properties, see [`parse_user_agent`] and [`sentiment`]).
//! * [`Collector::parse_batch_canonical`] and [`Collector::parse_event_canonical`]: the same,
//!   with accepted events written straight to canonical JSON ([`CanonicalEvents`]), the
//!   engine's hot path.
//! * [`TrackingPlan`]: optional JSON Schema per event name (C4).
//! * [`import`]: JSON Lines and CSV readers (gzip detected) for bulk history (C3).
//!
//! The crate is synchronous and deterministic: it never reads the clock (the receive time
//! comes in [`Received`]), never draws random numbers, never opens files or sockets (it reads
//! `&[u8]` and `impl BufRead`), and never decides what happens to a rejected event.

mod batch;
mod batch_body;
mod canonical;
mod collector;
mod derive;
mod enrich;
mod error;
mod fields;
pub mod import;
mod json_scan;
mod parts;
mod plan;
mod reject;
pub mod sample;
mod segment;

pub use canonical::{CanonicalEvent, CanonicalEvents, SourceField};
pub use collector::{
    BatchItem, CollectOptions, Collector, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_SENTIMENT_PROPERTIES, Parsed, ParsedBatch, Received,
};
pub use derive::{
    MAX_SENTIMENT_TEXT_BYTES, MAX_USER_AGENT_BYTES, USER_AGENT_CACHE_ENTRIES, parse_user_agent,
    sentiment,
};
pub use error::CollectError;
pub use fields::{MAX_ID_BYTES, MAX_MESSAGE_ID_CHARS};
pub use plan::{TrackingPlan, TrackingPlanConfig, Unplanned};
pub use reject::{RejectCode, Rejection};
pub use segment::MAX_METRIC_CHARS;

#[cfg(test)]
mod segment_tests;
