//! Compaction: the log, from where the manifest says it stopped, into one new Parquet file per
//! day touched (rows sorted by event time, then log position); then days with too many files
//! are merged into one. In the background (`Compactor`) and on demand (`Columnar::compact`).
//!
//! Each step commits the manifest after its files are durable, so a crash loses at most the
//! step in progress, which the next run redoes from the log. It must never commit a
//! sequence number whose rows are not in a committed file (or were not meant to be: health
//! readings, erased persons).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use iob_engine::Engine;
use serde::Serialize;

use crate::manifest::day_of;
use crate::rows::Rows;
use crate::{Columnar, ColumnarError, parquet_io, schema};

/// Log records read per page.
const PAGE: usize = 16 * 1024;

/// What one compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// Log records read.
    pub records: u64,
    /// Rows written to new files.
    pub rows: u64,
    /// Health readings left out (they stay, sealed, in the log only).
    pub health_skipped: u64,
    /// Records of erased persons or expired days (unreadable, nothing to write).
    pub unreadable: u64,
    pub files_written: usize,
    pub days_merged: usize,
    pub seconds: f64,
    /// First log sequence number not compacted after this run.
    pub compacted_through: u64,
}

/// Sorts a batch by (ts, seq).
pub(crate) fn sort_rows(b: &RecordBatch) -> RecordBatch {
    use arrow_ord::sort::{SortColumn, lexsort_to_indices};
    let cols = [
        SortColumn {
            values: b.column(schema::TS).clone(),
            options: None,
        },
        SortColumn {
            values: b.column(schema::SEQ).clone(),
            options: None,
        },
    ];
    let idx = lexsort_to_indices(&cols, None).expect("sortable columns");
    arrow_select::take::take_record_batch(b, &idx).expect("indices in range")
}

impl Columnar {
    /// Compacts everything the log holds now; returns what it did.
    pub fn compact(&self, engine: &Engine) -> Result<CompactReport, ColumnarError> {
        let started = Instant::now();
        let _writer = self.writer.lock();
        let mut report = CompactReport::default();
        // Days this run wrote to in more than one step: merged at the end, so a bulk
        // compaction leaves one sorted file per day (queries then need no re-sort).
        let mut written: BTreeMap<i32, usize> = BTreeMap::new();
        loop {
            let mut m = (*self.manifest()).clone();
            let start = m.next_seq;
            let mut seq = start;
            let mut by_day: BTreeMap<i32, Rows> = BTreeMap::new();
            let mut held = 0usize;
            while held < self.options.chunk_rows {
                let page =
                    engine.derived_payloads(seq, PAGE.min(self.options.chunk_rows.max(1)))?;
                if page.next_seq == seq {
                    break;
                }
                report.records += page.records.len() as u64 + page.unreadable;
                report.unreadable += page.unreadable;
                for r in &page.records {
                    if by_day.entry(day_of(r.at.0)).or_default().push(r) {
                        held += 1;
                    } else {
                        report.health_skipped += 1;
                    }
                }
                seq = page.next_seq;
            }
            if seq == start {
                break;
            }
            for (day, mut rows) in by_day {
                if rows.is_empty() {
                    continue;
                }
                let batch = sort_rows(&rows.finish());
                report.rows += batch.num_rows() as u64;
                if let Some(e) = self.write_file(&mut m.next_id, day, &[batch])? {
                    m.files.push(e);
                    report.files_written += 1;
                    *written.entry(day).or_default() += 1;
                }
            }
            m.next_seq = seq;
            self.commit(m)?;
            self.tail.lock().compacted(seq);
        }
        for (&day, &n) in &written {
            if n > 1 {
                self.rewrite_day(day, Ok)?;
                report.days_merged += 1;
            }
        }
        report.days_merged += self.merge_days()?;
        report.compacted_through = self.manifest().next_seq;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Merges every day holding more than `max_files_per_day` files into one file. The writer
    /// lock must be held.
    fn merge_days(&self) -> Result<usize, ColumnarError> {
        let m = self.manifest();
        let crowded: Vec<i32> = m
            .days()
            .into_iter()
            .filter(|&d| m.files_of(d).count() > self.options.max_files_per_day)
            .collect();
        for &day in &crowded {
            self.rewrite_day(day, Ok)?;
        }
        Ok(crowded.len())
    }

    /// Replaces the files of `day` by one file of their rows passed through `edit` (which may
    /// drop rows), sorted. The writer lock must be held. Returns the rows dropped.
    pub(crate) fn rewrite_day(
        &self,
        day: i32,
        edit: impl Fn(RecordBatch) -> Result<RecordBatch, ColumnarError>,
    ) -> Result<u64, ColumnarError> {
        let mut m = (*self.manifest()).clone();
        let old: Vec<_> = m.files_of(day).cloned().collect();
        if old.is_empty() {
            return Ok(0);
        }
        let all: Vec<usize> = (0..schema::EVENTS.fields().len()).collect();
        let mut batches = Vec::new();
        let mut before = 0u64;
        {
            let _gate = self.files_gate.read();
            for f in &old {
                for b in parquet_io::read(&self.dir.join(f.relative_path()), &all, false)? {
                    before += b.num_rows() as u64;
                    batches.push(edit(b)?);
                }
            }
        }
        let merged =
            arrow_select::concat::concat_batches(&schema::EVENTS, &batches).map_err(|e| {
                ColumnarError::Corrupt {
                    what: format!("day {}", crate::day_name(day)),
                    reason: e.to_string(),
                }
            })?;
        let dropped = before - merged.num_rows() as u64;
        let sorted = sort_rows(&merged);
        m.files.retain(|f| f.day != day);
        if let Some(e) = self.write_file(&mut m.next_id, day, &[sorted])? {
            m.files.push(e);
        }
        self.commit(m)?;
        Ok(dropped)
    }
}

/// Compacts in the background every `every` until dropped.
pub struct Compactor {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Compactor {
    pub fn start(store: Arc<Columnar>, engine: Arc<Engine>, every: Duration) -> Compactor {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("iob-compact".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    match store.compact(&engine) {
                        Ok(r) if r.rows > 0 => tracing::info!(
                            rows = r.rows,
                            files = r.files_written,
                            seconds = r.seconds,
                            "compacted events into the columnar store"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "compaction failed; retrying at the next interval"),
                    }
                }
            })
            .expect("spawning the compaction thread");
        Compactor {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
