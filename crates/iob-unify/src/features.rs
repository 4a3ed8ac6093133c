//! The building blocks of a profile's computed features. Each is updated by event time and
//! merges with another of its kind, and each gives the same state whatever order its events
//! arrive in (up to floating-point rounding where a sum of decayed or streaming values is
//! involved). That is what makes late events and identity merges safe.
//!
//! This module must never read a clock: rolling windows are evaluated at a time the caller
//! passes in.

use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;

/// The UTC day number of an event time.
pub fn day_of(at_ms: i64) -> i32 {
    at_ms.div_euclid(DAY_MS) as i32
}

/// Counts per day for the last `keep_days` days before the latest day seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCounts {
    /// `(day, count)`, ascending by day.
    days: Vec<(i32, u32)>,
}

impl DayCounts {
    pub fn add(&mut self, day: i32, n: u32, keep_days: i32) {
        let max = self.days.last().map_or(day, |d| d.0.max(day));
        if day <= max - keep_days {
            return;
        }
        match self.days.binary_search_by_key(&day, |d| d.0) {
            Ok(i) => self.days[i].1 += n,
            Err(i) => self.days.insert(i, (day, n)),
        }
        let cut = self.days.partition_point(|d| d.0 <= max - keep_days);
        self.days.drain(..cut);
    }

    pub fn merge(&mut self, other: &DayCounts, keep_days: i32) {
        for &(d, n) in &other.days {
            self.add(d, n, keep_days);
        }
    }

    /// Events in the `days` days ending with the day of `now_ms` (inclusive).
    pub fn in_window(&self, now_ms: i64, days: i32) -> u64 {
        let today = day_of(now_ms);
        self.days
            .iter()
            .filter(|d| d.0 <= today && d.0 > today - days)
            .map(|d| d.1 as u64)
            .sum()
    }

    pub fn heap_bytes(&self) -> usize {
        self.days.capacity() * 8
    }
}

/// Sessions of one channel: maximal runs of events with gaps no longer than the gap setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    /// `(start, end, events)`, ascending and separated by more than the gap.
    spans: Vec<(i64, i64, u32)>,
}

impl Sessions {
    pub fn add(&mut self, at: i64, gap_ms: i64) {
        self.add_span((at, at, 1), gap_ms);
    }

    fn add_span(&mut self, (start, end, n): (i64, i64, u32), gap_ms: i64) {
        // Spans that touch [start - gap, end + gap] merge with it.
        let lo = self.spans.partition_point(|s| s.1 < start - gap_ms);
        let hi = self.spans.partition_point(|s| s.0 <= end + gap_ms);
        if lo == hi {
            self.spans.insert(lo, (start, end, n));
            return;
        }
        let merged = self.spans[lo..hi].iter().fold((start, end, n), |a, s| {
            (a.0.min(s.0), a.1.max(s.1), a.2 + s.2)
        });
        self.spans.splice(lo..hi, [merged]);
    }

    pub fn merge(&mut self, other: &Sessions, gap_ms: i64) {
        for &s in &other.spans {
            self.add_span(s, gap_ms);
        }
    }

    pub fn count(&self) -> usize {
        self.spans.len()
    }

    pub fn total_ms(&self) -> i64 {
        self.spans.iter().map(|s| s.1 - s.0).sum()
    }

    pub fn events(&self) -> u64 {
        self.spans.iter().map(|s| s.2 as u64).sum()
    }

    pub fn last(&self) -> Option<(i64, i64, u32)> {
        self.spans.last().copied()
    }

    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * 24
    }
}

/// An exponentially decayed score: `Σ weight · 2^(−(now − t) / half_life)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decayed {
    score: f64,
    at: i64,
}

impl Decayed {
    pub fn new(weight: f64, at: i64) -> Self {
        Decayed { score: weight, at }
    }

    /// Adds another decayed score, re-anchoring at the later of the two times.
    pub fn add(&mut self, other: Decayed, half_life_ms: f64) {
        if other.at > self.at {
            self.score = self.score * decay(other.at - self.at, half_life_ms) + other.score;
            self.at = other.at;
        } else {
            self.score += other.score * decay(self.at - other.at, half_life_ms);
        }
    }

    pub fn at(&self, now_ms: i64, half_life_ms: f64) -> f64 {
        if now_ms >= self.at {
            self.score * decay(now_ms - self.at, half_life_ms)
        } else {
            self.score
        }
    }
}

fn decay(dt_ms: i64, half_life_ms: f64) -> f64 {
    (-(dt_ms as f64) / half_life_ms).exp2()
}

/// Streaming statistics of a metric (`observe` readings): all-time moments, extremes, the
/// latest reading by event time, and per-day aggregates for rolling windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    pub n: u64,
    pub mean: f64,
    m2: f64,
    pub min: f64,
    pub max: f64,
    /// `(event time, value)` of the latest reading (ties: the larger value).
    pub last: (i64, f64),
    /// `(day, n, sum, sum of squares, min, max)`, ascending by day.
    days: Vec<(i32, u32, f64, f64, f64, f64)>,
}

impl MetricStats {
    pub fn new(at: i64, v: f64) -> Self {
        MetricStats {
            n: 1,
            mean: v,
            m2: 0.0,
            min: v,
            max: v,
            last: (at, v),
            days: vec![(day_of(at), 1, v, v * v, v, v)],
        }
    }

    /// Adds one reading (Welford's update).
    pub fn add(&mut self, at: i64, v: f64, keep_days: i32) {
        self.n += 1;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if (at, v) > self.last {
            self.last = (at, v);
        }
        let day = day_of(at);
        match self.days.binary_search_by_key(&day, |x| x.0) {
            Ok(i) => {
                let a = &mut self.days[i];
                *a = (a.0, a.1 + 1, a.2 + v, a.3 + v * v, a.4.min(v), a.5.max(v));
            }
            Err(i) => self.days.insert(i, (day, 1, v, v * v, v, v)),
        }
        let max = self.days.last().map_or(day, |d| d.0);
        let cut = self.days.partition_point(|d| d.0 <= max - keep_days);
        self.days.drain(..cut);
    }

    pub fn merge(&mut self, o: &MetricStats, keep_days: i32) {
        // Chan et al.'s parallel combination of (n, mean, M2).
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * (self.n as f64 * o.n as f64) / n as f64;
        self.n = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if (o.last.0, o.last.1) > (self.last.0, self.last.1) {
            self.last = o.last;
        }
        for &b in &o.days {
            match self.days.binary_search_by_key(&b.0, |x| x.0) {
                Ok(i) => {
                    let a = &mut self.days[i];
                    *a = (
                        a.0,
                        a.1 + b.1,
                        a.2 + b.2,
                        a.3 + b.3,
                        a.4.min(b.4),
                        a.5.max(b.5),
                    );
                }
                Err(i) => self.days.insert(i, b),
            }
        }
        let max = self.days.last().map_or(0, |d| d.0);
        let cut = self.days.partition_point(|d| d.0 <= max - keep_days);
        self.days.drain(..cut);
    }

    pub fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }

    /// `(n, mean, std, min, max)` of readings in the `days` days ending with `now`'s day.
    pub fn window(&self, now_ms: i64, days: i32) -> Option<(u64, f64, f64, f64, f64)> {
        let today = day_of(now_ms);
        let mut acc = (0u64, 0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for d in self
            .days
            .iter()
            .filter(|d| d.0 <= today && d.0 > today - days)
        {
            acc = (
                acc.0 + d.1 as u64,
                acc.1 + d.2,
                acc.2 + d.3,
                acc.3.min(d.4),
                acc.4.max(d.5),
            );
        }
        if acc.0 == 0 {
            return None;
        }
        let n = acc.0 as f64;
        let mean = acc.1 / n;
        let var = if acc.0 > 1 {
            ((acc.2 - n * mean * mean) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        Some((acc.0, mean, var.sqrt(), acc.3, acc.4))
    }

    pub fn heap_bytes(&self) -> usize {
        self.days.capacity() * 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_merge_bridging_events() {
        let gap = 30 * 60_000;
        let mut s = Sessions::default();
        s.add(0, gap);
        s.add(50 * 60_000, gap);
        assert_eq!(s.count(), 2);
        // An event in between bridges both into one session.
        s.add(25 * 60_000, gap);
        assert_eq!(s.count(), 1);
        assert_eq!(s.total_ms(), 50 * 60_000);
        assert_eq!(s.events(), 3);
    }

    #[test]
    fn day_counts_keep_only_the_window() {
        let mut d = DayCounts::default();
        d.add(100, 1, 30);
        d.add(131, 2, 30);
        d.add(100, 1, 30); // now too old: ignored, as it would have been evicted
        assert_eq!(d.in_window(131 * DAY_MS, 30), 2);
        assert_eq!(d.in_window(131 * DAY_MS, 1), 2);
        assert_eq!(d.in_window(140 * DAY_MS, 7), 0);
    }

    #[test]
    fn decay_halves_per_half_life() {
        let h = 10.0 * DAY_MS as f64;
        let mut a = Decayed::new(4.0, 0);
        a.add(Decayed::new(2.0, 10 * DAY_MS), h);
        assert!((a.at(10 * DAY_MS, h) - 4.0).abs() < 1e-9);
        assert!((a.at(20 * DAY_MS, h) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn metric_windows_and_moments() {
        let mut m = MetricStats::new(0, 60.0);
        for (i, v) in [70.0, 80.0].into_iter().enumerate() {
            m.merge(&MetricStats::new((i as i64 + 1) * DAY_MS, v), 30);
        }
        assert_eq!(m.n, 3);
        assert!((m.mean - 70.0).abs() < 1e-9);
        assert!((m.std() - 10.0).abs() < 1e-9);
        assert_eq!(m.last, (2 * DAY_MS, 80.0));
        let (n, mean, _, min, max) = m.window(2 * DAY_MS, 2).unwrap();
        assert_eq!((n, mean, min, max), (2, 75.0, 70.0, 80.0));
    }
}
