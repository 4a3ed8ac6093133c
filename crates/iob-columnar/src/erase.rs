//! Erasure reaches the compacted files: every day that held the erased person's rows is
//! rewritten without them (and the replaced files deleted), and their tail rows dropped.
//!
//! Reads already hide an erased person (the directory maps them to no one); this makes the
//! bytes go too. Must never commit a day file that still holds a row of the erased seqs.

use std::collections::{BTreeSet, HashSet};

use arrow_array::BooleanArray;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use iob_engine::{DerivedData, EngineError, ErasedPerson};

use crate::manifest::day_of;
use crate::{Columnar, schema};

impl Columnar {
    /// Removes the rows at `seqs` (event times `times`) from files and tail; returns how many.
    pub fn remove_rows(&self, seqs: &[u64], times: &[i64]) -> Result<u64, crate::ColumnarError> {
        let _writer = self.writer.lock();
        let set: HashSet<u64> = seqs.iter().copied().collect();
        let mut removed = self.tail.lock().remove(&set);
        let days: BTreeSet<i32> = times.iter().map(|&t| day_of(t)).collect();
        let m = self.manifest();
        for day in days {
            // Only days whose files can hold one of the seqs.
            let touched = m
                .files_of(day)
                .any(|f| seqs.iter().any(|&s| s >= f.min_seq && s <= f.max_seq));
            if !touched {
                continue;
            }
            removed += self.rewrite_day(day, |b| {
                let s = b.column(schema::SEQ).as_primitive::<UInt64Type>();
                let mask: BooleanArray =
                    s.values().iter().map(|v| Some(!set.contains(v))).collect();
                Ok(arrow_select::filter::filter_record_batch(&b, &mask).expect("mask fits"))
            })?;
        }
        Ok(removed)
    }
}

impl DerivedData for Columnar {
    fn name(&self) -> &'static str {
        "analytics"
    }

    fn erase(&self, person: &ErasedPerson) -> Result<u64, EngineError> {
        self.remove_rows(&person.seqs, &person.times)
            .map_err(|e| EngineError::Derived {
                store: "analytics",
                reason: e.to_string(),
            })
    }
}
