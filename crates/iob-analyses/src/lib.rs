//! Behavioral analyses of iob: funnels, retention, paths and trends as streaming kernels over
//! an [`EventSource`] (day-ordered Arrow batches of compacted events), with the privacy of
//! aggregates ([`Disclosure`]: k-suppression and Laplace noise) applied to every result.
//!
//! What this crate must never do: depend on a query engine or on the engine crate (it must build
//! fast), do I/O, decide consent (the source removes rows the purpose may not see), or release a
//! count without passing it through [`Disclosure`].
//!
//! Each analysis is one pass over the stream with O(1) work per row and per-person state in
//! `Vec`s indexed by the (small, dense) person id. Requests and results are serde types;
//! requests reject unknown fields so HTTP/CLI input errors name the field.

pub mod analysis;
mod columns;
mod common;
pub mod disclosure;
mod error;
mod filter;
pub mod funnel;
pub mod generator;
mod memory;
pub mod paths;
pub mod period;
mod property;
pub mod questions;
pub mod retention;
mod rng;
mod source;
mod stats;
pub mod trends;

pub use analysis::{Analysis, AnalysisResult, run};
pub use common::{EventMatch, TimeRange};
pub use disclosure::{Disclosure, DisclosureReport};
pub use error::AnalysisError;
pub use filter::{Filter, FilterOp};
pub use funnel::{FunnelMode, FunnelRequest, FunnelResult, FunnelStep, funnel};
pub use memory::{MemorySource, Row, StringEncoding};
pub use paths::{PathsRequest, PathsResult, paths};
pub use period::Period;
pub use retention::{RetentionMode, RetentionRequest, RetentionResult, retention};
pub use source::{
    ALL_COLUMNS, ALWAYS, DAY_MS, DayChunk, EventSource, STRING_COLUMNS, day_of, ordered_parallel,
    scan_columns,
};
pub use trends::{TrendsRequest, TrendsResult, trends};
