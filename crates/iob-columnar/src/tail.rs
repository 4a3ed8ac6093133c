//! The tail: rows of the log not compacted yet, held in memory so a read sees an event
//! acknowledged a moment ago without waiting for compaction.
//!
//! A read refreshes it from where it stopped; compaction trims what it wrote; erasure drops
//! the person's rows. It must never hold rows at or past a sequence it has not read in order.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{BooleanArray, RecordBatch};
use iob_engine::Engine;

use crate::ColumnarError;
use crate::rows::Rows;

/// Rows read per refresh page.
const PAGE: usize = 16 * 1024;

pub(crate) struct Tail {
    /// Sequence number of the next log record to read.
    next_seq: u64,
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl Tail {
    pub(crate) fn new(from_seq: u64) -> Self {
        Tail {
            next_seq: from_seq,
            batches: Vec::new(),
            rows: 0,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn batches(&self) -> Vec<RecordBatch> {
        self.batches.clone()
    }

    /// Reads the log up to its end; `Ok(false)` if it stopped because it holds more than
    /// `max_rows` (the caller compacts, then refreshes again).
    pub(crate) fn refresh(
        &mut self,
        engine: &Engine,
        max_rows: usize,
    ) -> Result<bool, ColumnarError> {
        let mut rows = Rows::default();
        loop {
            if self.rows > max_rows {
                return Ok(false);
            }
            let page = engine.derived_payloads(self.next_seq, PAGE)?;
            if page.next_seq == self.next_seq {
                return Ok(true);
            }
            for r in &page.records {
                rows.push(r);
            }
            self.next_seq = page.next_seq;
            if !rows.is_empty() {
                self.rows += rows.len();
                self.batches.push(rows.finish());
            }
        }
    }

    /// Compaction wrote everything below `through`.
    pub(crate) fn compacted(&mut self, through: u64) {
        self.retain(|seq| seq >= through);
        self.next_seq = self.next_seq.max(through);
    }

    /// Drops the rows at the given log positions (an erased person's).
    pub(crate) fn remove(&mut self, seqs: &HashSet<u64>) -> u64 {
        let before = self.rows;
        self.retain(|seq| !seqs.contains(&seq));
        (before - self.rows) as u64
    }

    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let mut out = Vec::with_capacity(self.batches.len());
        let mut rows = 0;
        for b in self.batches.drain(..) {
            let seqs = b.column(crate::schema::SEQ).as_primitive::<UInt64Type>();
            let mask: BooleanArray = seqs.values().iter().map(|&s| Some(keep(s))).collect();
            let kept = arrow_select::filter::filter_record_batch(&b, &mask)
                .expect("a mask as long as the batch");
            if kept.num_rows() > 0 {
                rows += kept.num_rows();
                out.push(kept);
            }
        }
        self.batches = out;
        self.rows = rows;
    }
}
