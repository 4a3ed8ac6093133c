//! Integration tests of iob-analyses: hand-computed answers on small data for every analysis,
//! a property test of the streaming funnel against a brute-force reference, and the generator.

mod disclosure;
mod funnel;
mod funnel_prop;
mod generator;
mod paths;
mod retention;
mod retention_prop;
mod trends;

use iob_analyses::{MemorySource, Row, StringEncoding};

/// 2024-01-01T00:00:00Z, a Monday.
pub const T0: i64 = 1_704_067_200_000;
pub const MIN: i64 = 60_000;
pub const H: i64 = 3_600_000;
pub const D: i64 = 86_400_000;

/// Rows in arrival order as a source (Utf8 strings, small batches to cross chunk boundaries).
pub fn src(rows: Vec<Row>) -> MemorySource {
    MemorySource::from_rows(rows, StringEncoding::Utf8, 3)
}

/// The same rows in every string encoding.
pub fn all_encodings(rows: &[Row]) -> Vec<MemorySource> {
    StringEncoding::ALL
        .iter()
        .map(|&e| MemorySource::from_rows(rows.to_vec(), e, 1000))
        .collect()
}
