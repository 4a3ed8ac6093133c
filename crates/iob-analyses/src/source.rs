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
    /// `person`, `ts` and `event` are always provided (`type` when asked for). `range` restricts event time to
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
pub const ALWAYS: [&str; 3] = ["person", "ts", "event"];

/// The columns a source decodes for a kernel that asked for `columns`: [`ALWAYS`], then each
/// asked column not among them, once. `type` (promised by the contract) is decoded only when
/// asked: the kernels that need it ask.
pub fn scan_columns<'a>(columns: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&'a str> = ALWAYS.to_vec();
    for &c in columns {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

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
    "unit",
    "metric",
    "value",
    "properties",
];

/// The day number (days since 1970-01-01 UTC) of an event time in ms.
pub fn day_of(ts_ms: i64) -> i32 {
    // Clamped: open-ended ranges use i64::MIN / i64::MAX as bounds.
    ts_ms
        .div_euclid(DAY_MS)
        .clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Runs `decode` over `jobs` on `workers` threads and hands the outputs to `consume` in job
/// order: a source decodes days (or files) in parallel while the kernel, single-threaded and
/// order-dependent, works through them in time order. At most `workers` decoded jobs wait at
/// any time. The first error (from `decode` or `consume`) stops the run and is returned.
pub fn ordered_parallel<J: Sync, T: Send, E: Send>(
    jobs: &[J],
    workers: usize,
    decode: impl Fn(&J) -> Result<T, E> + Sync,
    mut consume: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    let workers = workers.clamp(1, jobs.len().max(1));
    std::thread::scope(|s| {
        let mut rxs = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, E>>(1);
            rxs.push(rx);
            let decode = &decode;
            s.spawn(move || {
                for job in jobs.iter().skip(w).step_by(workers) {
                    let r = decode(job);
                    let stop = r.is_err();
                    if tx.send(r).is_err() || stop {
                        return;
                    }
                }
            });
        }
        // Jobs are dealt round-robin; take them back in order. Dropping the receivers on an
        // early return makes the workers' sends fail, so they stop.
        for i in 0..jobs.len() {
            // A closed channel means its worker panicked: the scope re-raises that panic.
            let Ok(out) = rxs[i % workers].recv() else {
                break;
            };
            consume(out?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_parallel_keeps_order_and_stops_on_errors() {
        let jobs: Vec<u32> = (0..100).collect();
        let mut seen = Vec::new();
        ordered_parallel(
            &jobs,
            3,
            |&j| Ok::<_, AnalysisError>(j * 2),
            |x| {
                seen.push(x);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..100).map(|j| j * 2).collect::<Vec<_>>());
        let mut n = 0;
        let e = ordered_parallel(
            &jobs,
            2,
            |&j| {
                if j == 7 {
                    Err(AnalysisError::Source("bad day 7".into()))
                } else {
                    Ok(j)
                }
            },
            |_| {
                n += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("bad day 7"));
        assert_eq!(
            n, 7,
            "days before the failing one were consumed, none after"
        );
        let e = ordered_parallel(
            &jobs,
            2,
            |&j| Ok(j),
            |j| {
                if j == 3 {
                    Err(AnalysisError::Order("stop".into()))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(e, Err(AnalysisError::Order(_))));
    }
}
