//! The input contract: an [`EventSource`] hands the kernels one day of compacted events at a time.
//!
//! The source (Parquet + un-compacted tail in `iob-columnar`, [`crate::MemorySource`] in tests)
//! owns consent filtering, identity remapping and ordering; the kernels trust it and check only
//! the order (a kernel fails with [`AnalysisError::Order`] rather than give a wrong answer on
//! unsorted input). Nothing here does I/O.

use arrow_array::RecordBatch;

use crate::AnalysisError;

/// One day's rows (day = days since 1970-01-01 UTC of the event time).
#[derive(Debug, Clone)]
pub struct DayChunk {
    pub day: i32,
    pub batch: RecordBatch,
}

/// A time-ordered stream of compacted events, as day chunks.
pub trait EventSource {
    /// Calls `f` for each day in ascending order, once per day or several times per day (chunks
    /// of the same day come consecutively; across chunks of one day rows remain sorted).
    /// Within a day rows are sorted by (ts, seq). `columns` are the columns the analysis needs;
    /// `person`, `ts`, `type`, `event` are always provided. `range` restricts event time to
    /// [from, to) ms. Rows of persons the caller's purpose may not see are already removed, and
    /// `person` is already the current (merged) person id.
    fn scan(
        &self,
        columns: &[&str],
        range: Option<(i64, i64)>,
        f: &mut dyn FnMut(DayChunk) -> Result<(), AnalysisError>,
    ) -> Result<(), AnalysisError>;
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Columns every scan provides.
pub const ALWAYS: [&str; 4] = ["person", "ts", "type", "event"];

/// The nullable string columns of the compacted schema (besides `type` and `event`).
pub const STRING_COLUMNS: [&str; 15] = [
    "source",
    "page_path",
    "page_title",
    "page_referrer",
    "campaign_source",
    "campaign_medium",
    "campaign_name",
    "device_type",
    "os_name",
    "browser",
    "app_name",
    "locale",
    "metric",
    "unit",
    "properties",
];

/// Every column of the compacted events schema, in schema order.
pub const ALL_COLUMNS: [&str; 22] = [
    "seq",
    "ts",
    "received_at",
    "person",
    "type",
    "event",
    "source",
    "page_path",
    "page_title",
    "page_referrer",
    "campaign_source",
    "campaign_medium",
    "campaign_name",
    "device_type",
    "os_name",
    "browser",
    "app_name",
    "locale",
    "metric",
    "unit",
    "value",
    "properties",
];

/// The day number (days since 1970-01-01 UTC) of an event time in ms.
pub fn day_of(ts_ms: i64) -> i32 {
    ts_ms.div_euclid(DAY_MS) as i32
}
