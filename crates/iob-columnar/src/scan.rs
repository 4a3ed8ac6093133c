//! Reading the store for one purpose: day by day, compacted files plus tail rows, each person
//! mapped through the purpose's [`PersonDirectory`] (merged ids become the current person;
//! erased or non-consenting persons' rows are dropped) and rows sorted by (ts, seq).
//!
//! Days are decoded on a second thread while the caller works on the previous one. This
//! module must never hand a row to the caller before its person was mapped.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema};
use iob_engine::{Engine, PersonDirectory};

use crate::manifest::day_of;
use crate::rows::UNRESOLVED;
use crate::{Columnar, ColumnarError, parquet_io, schema};

/// What to read.
#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    /// Columns wanted, by name, in the order wanted.
    pub columns: Vec<String>,
    /// Event time in `[from, to)` (milliseconds), or everything.
    pub range: Option<(i64, i64)>,
    pub directory: &'a PersonDirectory,
    /// Keep rows no identifier resolved (their person is null) if the purpose's default
    /// allows it; else drop them (analyses that count persons).
    pub keep_unresolved: bool,
}

/// One day's rows.
#[derive(Debug, Clone)]
pub struct DayRows {
    pub day: i32,
    pub batch: RecordBatch,
}

impl Columnar {
    /// Brings the tail up to the end of the log (compacting first if it grew too long).
    pub fn refresh(&self, engine: &Engine) -> Result<(), ColumnarError> {
        loop {
            let done = self
                .tail
                .lock()
                .refresh(engine, self.options.max_tail_rows)?;
            if done {
                return Ok(());
            }
            self.compact(engine)?;
        }
    }

    /// The output schema of a scan of `columns`.
    pub fn scan_schema(columns: &[String]) -> Result<Arc<Schema>, ColumnarError> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| {
                let i = schema::column(c).ok_or_else(|| ColumnarError::UnknownColumn(c.clone()))?;
                let f = schema::EVENTS.field(i).clone();
                Ok(if i == schema::PERSON {
                    f.with_nullable(true)
                } else {
                    f
                })
            })
            .collect::<Result<_, ColumnarError>>()?;
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Calls `each` for every day with rows, ascending, after refreshing the tail.
    pub fn scan<E: From<ColumnarError> + Send>(
        &self,
        engine: &Engine,
        req: &ScanRequest<'_>,
        mut each: impl FnMut(DayRows) -> Result<(), E>,
    ) -> Result<(), E> {
        self.refresh(engine)?;
        let out_schema = Self::scan_schema(&req.columns)?;
        let wanted: Vec<usize> = req
            .columns
            .iter()
            .map(|c| schema::column(c).expect("checked by scan_schema"))
            .collect();
        // Read what is wanted plus what mapping and ordering need.
        let mut read: Vec<usize> = wanted.clone();
        read.extend([schema::SEQ, schema::TS, schema::PERSON]);
        read.sort_unstable();
        read.dedup();
        let manifest = self.manifest();
        let tail = self.tail.lock().batches();
        let mut days = manifest.days();
        for b in &tail {
            let ts = b
                .column(schema::TS)
                .as_primitive::<TimestampMillisecondType>();
            days.extend(ts.values().iter().map(|&t| day_of(t)));
        }
        days.sort_unstable();
        days.dedup();
        if let Some((from, to)) = req.range {
            days.retain(|&d| d >= day_of(from) && d <= day_of(to.saturating_sub(1)));
        }
        let _gate = self.files_gate.read();
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<DayRows, ColumnarError>>(2);
            let manifest = &manifest;
            let tail = &tail;
            let read = &read;
            let wanted = &wanted;
            let out_schema = &out_schema;
            s.spawn(move || {
                for &day in &days {
                    let r = self.load_day(manifest, tail, day, read, wanted, out_schema, req);
                    let stop = r.is_err();
                    match r {
                        Ok(Some(rows)) => {
                            if tx.send(Ok(rows)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                    if stop {
                        return;
                    }
                }
            });
            for r in rx {
                each(r?)?;
            }
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn load_day(
        &self,
        manifest: &crate::Manifest,
        tail: &[RecordBatch],
        day: i32,
        read: &[usize],
        wanted: &[usize],
        out_schema: &Arc<Schema>,
        req: &ScanRequest<'_>,
    ) -> Result<Option<DayRows>, ColumnarError> {
        // Full-width batches (unread columns as nulls would cost; instead project the file
        // read, then widen to the schema positions by index below).
        let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
        let mut sources = 0;
        for f in manifest.files_of(day) {
            sources += 1;
            for b in parquet_io::read(&self.dir.join(f.relative_path()), read)? {
                parts.push(b.columns().to_vec());
            }
        }
        let (lo, hi) = (day as i64 * 86_400_000, (day as i64 + 1) * 86_400_000);
        let mut from_tail = false;
        for b in tail {
            let ts = b
                .column(schema::TS)
                .as_primitive::<TimestampMillisecondType>();
            if !ts.values().iter().any(|&t| t >= lo && t < hi) {
                continue;
            }
            let mask: BooleanArray = ts
                .values()
                .iter()
                .map(|&t| Some(t >= lo && t < hi))
                .collect();
            let b = arrow_select::filter::filter_record_batch(b, &mask).expect("mask fits");
            parts.push(read.iter().map(|&i| b.column(i).clone()).collect());
            from_tail = true;
        }
        if from_tail {
            sources += 1;
        }
        let pos = |col: usize| read.iter().position(|&i| i == col).expect("always read");
        let (p_seq, p_ts, p_person) = (pos(schema::SEQ), pos(schema::TS), pos(schema::PERSON));
        let mut kept: Vec<RecordBatch> = Vec::new();
        let fields: Vec<Field> = read
            .iter()
            .map(|&i| {
                let f = schema::EVENTS.field(i).clone();
                if i == schema::PERSON {
                    f.with_nullable(true)
                } else {
                    f
                }
            })
            .collect();
        let read_schema = Arc::new(Schema::new(fields));
        for cols in parts {
            let (mapped, mask) = map_persons(cols[p_person].as_primitive::<UInt64Type>(), req);
            let ts = cols[p_ts].as_primitive::<TimestampMillisecondType>();
            let mask: BooleanArray = match req.range {
                Some((from, to)) => mask
                    .values()
                    .iter()
                    .zip(ts.values())
                    .map(|(m, &t)| Some(m && t >= from && t < to))
                    .collect(),
                None => mask,
            };
            let mut cols = cols;
            cols[p_person] = Arc::new(mapped);
            let b = RecordBatch::try_new(read_schema.clone(), cols).map_err(|e| {
                ColumnarError::Corrupt {
                    what: format!("day {}", crate::day_name(day)),
                    reason: e.to_string(),
                }
            })?;
            let b = arrow_select::filter::filter_record_batch(&b, &mask).expect("mask fits");
            if b.num_rows() > 0 {
                kept.push(b);
            }
        }
        if kept.is_empty() {
            return Ok(None);
        }
        let mut batch = arrow_select::concat::concat_batches(&read_schema, &kept).map_err(|e| {
            ColumnarError::Corrupt {
                what: format!("day {}", crate::day_name(day)),
                reason: e.to_string(),
            }
        })?;
        // Each file is sorted; tail rows are in arrival order.
        if sources > 1 || from_tail {
            use arrow_ord::sort::{SortColumn, lexsort_to_indices};
            let idx = lexsort_to_indices(
                &[
                    SortColumn {
                        values: batch.column(p_ts).clone(),
                        options: None,
                    },
                    SortColumn {
                        values: batch.column(p_seq).clone(),
                        options: None,
                    },
                ],
                None,
            )
            .expect("sortable");
            batch = arrow_select::take::take_record_batch(&batch, &idx).expect("in range");
        }
        let cols: Vec<ArrayRef> = wanted
            .iter()
            .map(|&w| batch.column(pos(w)).clone())
            .collect();
        let batch = RecordBatch::try_new(out_schema.clone(), cols).expect("projected schema");
        Ok(Some(DayRows { day, batch }))
    }
}

/// The person column mapped through the directory, and which rows stay.
fn map_persons(
    persons: &arrow_array::PrimitiveArray<UInt64Type>,
    req: &ScanRequest<'_>,
) -> (UInt64Array, BooleanArray) {
    let dir = req.directory.as_slice();
    let unresolved = req.keep_unresolved && req.directory.unresolved_allowed();
    let mut keep = Vec::with_capacity(persons.len());
    let mapped: UInt64Array = persons
        .values()
        .iter()
        .map(|&p| {
            if p == UNRESOLVED {
                keep.push(Some(unresolved));
                return None;
            }
            match dir.get(p as usize) {
                Some(&c) if c != u32::MAX => {
                    keep.push(Some(true));
                    Some(c as u64)
                }
                _ => {
                    keep.push(Some(false));
                    None
                }
            }
        })
        .collect();
    (mapped, keep.into_iter().collect())
}
