//! Erasure reaches the compacted files: every day that held the erased person's rows is
//! rewritten without them (and the replaced files deleted), and their tail rows dropped.
//!
//! Reads already hide an erased person (the directory maps them to no one); this makes the
//! bytes go too. Must never commit a day file that still holds a row of the erased seqs.

use std::collections::{BTreeSet, HashSet};

use arrow_array::BooleanArray;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use iob_engine::{DerivedData, Engine, EngineError, ErasedPerson};

use crate::manifest::day_of;
use crate::{Columnar, schema};

impl Columnar {
    /// Removes the rows at `seqs` (event times `times`) from files and tail, and records
    /// `epoch` as reflected; returns how many rows went.
    pub fn remove_rows(
        &self,
        seqs: &[u64],
        times: &[i64],
        epoch: u64,
    ) -> Result<u64, crate::ColumnarError> {
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
        let mut m = (*self.manifest()).clone();
        if m.erasure_epoch < epoch {
            m.erasure_epoch = epoch;
            self.commit(m)?;
        }
        Ok(removed)
    }

    /// Brings the files up to the engine's erasure epoch: if erasures happened while this
    /// store was not open (an offline `iob privacy erase`, a library user that never opened
    /// it), every day is rewritten without the rows of persons who no longer resolve.
    /// Returns the rows removed.
    pub fn reconcile(&self, engine: &Engine) -> Result<u64, crate::ColumnarError> {
        let epoch = engine.erasure_epoch();
        if self.manifest().erasure_epoch >= epoch {
            return Ok(0);
        }
        let permit = engine.permit(
            iob_engine::Actor::Operator,
            &iob_types::Purpose::operations(),
        )?;
        let directory = engine.person_directory(&permit)?;
        let _writer = self.writer.lock();
        let mut removed = 0;
        for day in self.manifest().days() {
            removed += self.rewrite_day(day, |b| {
                let p = b.column(schema::PERSON).as_primitive::<UInt64Type>();
                let mask: BooleanArray = p
                    .values()
                    .iter()
                    .map(|&v| Some(v == crate::UNRESOLVED || directory.current(v).is_some()))
                    .collect();
                Ok(arrow_select::filter::filter_record_batch(&b, &mask).expect("mask fits"))
            })?;
        }
        let mut m = (*self.manifest()).clone();
        m.erasure_epoch = epoch;
        self.commit(m)?;
        if removed > 0 {
            tracing::info!(
                rows = removed,
                "removed rows of persons erased while the columnar store was closed"
            );
        }
        Ok(removed)
    }
}

impl DerivedData for Columnar {
    fn name(&self) -> &'static str {
        "analytics"
    }

    fn erase(&self, person: &ErasedPerson) -> Result<u64, EngineError> {
        self.remove_rows(&person.seqs, &person.times, person.epoch)
            .map_err(|e| EngineError::Derived {
                store: "analytics",
                reason: e.to_string(),
            })
    }
}
