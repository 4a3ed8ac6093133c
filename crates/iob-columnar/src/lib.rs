//! The columnar copy of the event log, for analytics.
//!
//! ```text
//! event log ─(Engine::derived_payloads: person resolved; only non-identifying fields read)─► compaction ─► events/day=…/part-N.parquet
//!                                                      └───────────► tail (not compacted yet, in memory)
//! scan(purpose) = files of each day + tail rows of that day, person mapped through the
//!                 purpose's PersonDirectory (merged → current, erased / not consenting → gone)
//! ```
//!
//! Compaction runs in the background and on demand; a read always refreshes the tail first,
//! so an event acknowledged a moment ago is visible. Consent is applied at read time, never at
//! compaction, so a withdrawal takes effect on the next query without rewriting files; erasure
//! rewrites the day files that held the person's rows ([`DerivedData`](iob_engine::DerivedData)).
//!
//! This crate must never write identifiers (its schema has none; `fields.rs` never reads them), health
//! readings (dropped at compaction) or a file the manifest does not name; and never return a
//! row without mapping its person through the caller's directory.

mod compact;
mod erase;
mod error;
mod fields;
mod manifest;
mod parquet_io;
mod rows;
mod scan;
pub mod schema;
mod source;
mod store;
mod tail;

pub use compact::{CompactReport, Compactor};
pub use error::ColumnarError;
pub use manifest::{FileEntry, Manifest, day_name, day_of};
pub use rows::{Rows, UNRESOLVED};
pub use scan::{DayRows, ScanRequest};
pub use source::ColumnarSource;
pub use store::{Columnar, Options, StoreInfo};
