//! `[analytics]`: the columnar store (compaction), SQL limits and the disclosure rules of
//! aggregates. Read by `iob-columnar` and `iob-query`; the engine only carries it.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Compact the log into Parquet in the background this often while serving; 0: only on
    /// demand (`iob compact`, and when the un-compacted tail outgrows `max_tail_rows`).
    pub compact_interval_secs: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows one compaction step holds in memory (about 150 bytes each) before it writes its
    /// files and commits; a crash loses at most the step in progress.
    pub compact_chunk_rows: usize,
    /// A day partition with more files than this is merged into one.
    pub max_files_per_day: usize,
    /// A query reads at most this many un-compacted rows from the log; beyond, it compacts first.
    pub max_tail_rows: usize,
    /// Memory one SQL query may use (MiB) for joins, sorts and aggregations.
    pub query_memory_mb: usize,
    /// Rows a query returns at most; more are cut and the response says so.
    pub max_result_rows: usize,
    /// Aggregates shown to keys without `read:personal`: groups of fewer persons than this are
    /// suppressed (k-anonymity).
    pub min_group_persons: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            compact_interval_secs: 30,
            row_group_rows: 256 * 1024,
            compact_chunk_rows: 4_000_000,
            max_files_per_day: 8,
            max_tail_rows: 1_000_000,
            query_memory_mb: 4096,
            max_result_rows: 1_000_000,
            min_group_persons: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = toml::from_str::<AnalyticsConfig>("min_group_person = 3").unwrap_err();
        assert!(err.to_string().contains("min_group_person"), "{err}");
        let ok: AnalyticsConfig = toml::from_str("min_group_persons = 3").unwrap();
        assert_eq!(ok.min_group_persons, 3);
        assert_eq!(ok.compact_interval_secs, 30);
    }
}
