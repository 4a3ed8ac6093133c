//! Time-to-convert distributions: nearest-rank median and p90, and a histogram with fixed buckets.

use serde::{Deserialize, Serialize};

/// Upper bounds (exclusive, ms) of the histogram buckets: 1 min, 5 min, 15 min, 1 h, 6 h, 1 day,
/// 3 days, 7 days; the last bucket holds everything from 7 days on.
pub const HISTOGRAM_UPPER_MS: [i64; 8] = [
    60_000,
    300_000,
    900_000,
    3_600_000,
    21_600_000,
    86_400_000,
    259_200_000,
    604_800_000,
];

/// A distribution of durations (one per person).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeStats {
    /// Nearest-rank median: the ⌈n/2⌉-th smallest duration.
    pub median_ms: i64,
    /// Nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest duration.
    pub p90_ms: i64,
    /// Persons per bucket of [`HISTOGRAM_UPPER_MS`] (9 buckets).
    pub histogram: Vec<u64>,
}

/// Nearest-rank quantile of sorted, non-empty `v`.
pub fn quantile(v: &[i64], q: f64) -> i64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

impl TimeStats {
    /// Statistics of `durations` (sorted in place); `None` when empty.
    pub fn of(durations: &mut [i64]) -> Option<TimeStats> {
        if durations.is_empty() {
            return None;
        }
        durations.sort_unstable();
        let mut histogram = vec![0u64; HISTOGRAM_UPPER_MS.len() + 1];
        for &d in durations.iter() {
            histogram[HISTOGRAM_UPPER_MS.partition_point(|&u| u <= d)] += 1;
        }
        Some(TimeStats {
            median_ms: quantile(durations, 0.5),
            p90_ms: quantile(durations, 0.9),
            histogram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_and_buckets() {
        let mut v = vec![59_999, 60_000, 1, 604_800_000, 10];
        let s = TimeStats::of(&mut v).unwrap();
        assert_eq!(s.median_ms, 59_999, "3rd of 5 sorted");
        assert_eq!(s.p90_ms, 604_800_000);
        assert_eq!(s.histogram, vec![3, 1, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), 2);
        assert!(TimeStats::of(&mut []).is_none());
    }
}
