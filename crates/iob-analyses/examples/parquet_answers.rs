//! Answers the three analytics benchmark questions over day-partitioned Parquet files, printing
//! the same JSON lines as `bench/analytics/duckdb_peer.py`, so their answers can be compared
//! byte for byte. Also writes a generated data set in that layout.
//!
//! ```text
//! cargo run --release -p iob-analyses --example parquet_answers -- DIR [--runs R] [--only Q]
//!     [--step NAME]… [--retention-start NAME] [--trends-event NAME]   (empty NAME: any event)
//! cargo run --release -p iob-analyses --example parquet_answers -- --write DIR PERSONS DAYS SEED [ROUND_MS]
//! ```
//! `DIR` holds `events/day=YYYY-MM-DD/*.parquet` (or is that `events` directory). Output: one
//! line per question, `{"answer":…,"question":…,"seconds":…}` with keys sorted; `seconds` is
//! the median of R runs (default 5), each reading the files anew.
//!
//! The Parquet-backed [`EventSource`] here is a stand-in for `iob-columnar`'s: two threads
//! decode alternate days (projected to the requested columns) while the kernel works through
//! them in day order, and a day of several files is merged by (ts, seq).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use iob_analyses::generator::{JourneyConfig, journey_days};
use iob_analyses::{AnalysisError, DayChunk, EventSource, questions};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

struct ParquetSource {
    days: Vec<(i32, Vec<PathBuf>)>,
}

fn src_err(e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Source(e.to_string())
}

impl ParquetSource {
    fn open(dir: &Path) -> std::io::Result<Self> {
        let events = if dir.join("events").is_dir() {
            dir.join("events")
        } else {
            dir.to_path_buf()
        };
        let mut days = Vec::new();
        for entry in std::fs::read_dir(&events)? {
            let path = entry?.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let Some(date) = name.strip_prefix("day=") else {
                continue;
            };
            let d = time::Date::parse(
                date,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|e| std::io::Error::other(format!("{name}: {e}")))?;
            let day = d.to_julian_day() - 2_440_588;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            days.push((day, files));
        }
        days.sort_by_key(|d| d.0);
        Ok(ParquetSource { days })
    }

    fn read_day(files: &[PathBuf], columns: &[&str]) -> Result<Vec<RecordBatch>, AnalysisError> {
        let mut batches = Vec::new();
        for f in files {
            let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(f).map_err(src_err)?)
                .map_err(src_err)?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(src_err)?;
            for b in reader {
                batches.push(b.map_err(src_err)?);
            }
        }
        if files.len() > 1 && !batches.is_empty() {
            // Several files: merge them in (ts, seq) order.
            let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches)
                .map_err(src_err)?;
            let ts = all
                .column_by_name("ts")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>()
                .values();
            let seq = all
                .column_by_name("seq")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .values();
            let mut idx: Vec<u32> = (0..all.num_rows() as u32).collect();
            idx.sort_unstable_by_key(|&i| (ts[i as usize], seq[i as usize]));
            let idx = arrow_array::UInt32Array::from(idx);
            return Ok(vec![
                arrow_select::take::take_record_batch(&all, &idx).map_err(src_err)?,
            ]);
        }
        Ok(batches)
    }
}

impl EventSource for ParquetSource {
    fn scan(
        &self,
        columns: &[&str],
        range: Option<(i64, i64)>,
        f: &mut dyn FnMut(DayChunk) -> Result<(), AnalysisError>,
    ) -> Result<(), AnalysisError> {
        assert!(range.is_none(), "the example source reads whole days");
        // `seq` only to merge a day of several files.
        let cols = iob_analyses::scan_columns(columns);
        let mut with_seq = cols.clone();
        with_seq.push("seq");
        iob_analyses::ordered_parallel(
            &self.days,
            2,
            |(day, files)| {
                let c = if files.len() > 1 { &with_seq } else { &cols };
                Ok((*day, Self::read_day(files, c)?))
            },
            |(day, batches)| {
                for batch in batches {
                    f(DayChunk { day, batch })?;
                }
                Ok(())
            },
        )
    }
}

fn write(dir: &Path, cfg: JourneyConfig) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let (mut rows, mut days) = (0usize, 0usize);
    let mut result: Result<(), Box<dyn std::error::Error>> = Ok(());
    journey_days(&cfg, true, usize::MAX, |c| {
        if result.is_err() {
            return;
        }
        rows += c.batch.num_rows();
        days += 1;
        result = (|| {
            let d = time::Date::from_julian_day(c.day + 2_440_588)?;
            let path = dir.join("events").join(format!("day={d}"));
            std::fs::create_dir_all(&path)?;
            let file = File::create(path.join("part-0.parquet"))?;
            let mut w =
                parquet::arrow::ArrowWriter::try_new(file, c.batch.schema(), Some(props.clone()))?;
            w.write(&c.batch)?;
            w.close()?;
            Ok(())
        })();
    });
    result?;
    eprintln!(
        "wrote {rows} events in {days} days to {} in {:.1}s",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write") {
        let (dir, persons, days, seed, round) = match &args[..] {
            [_, d, p, n, s] => (d, p, n, s, "0"),
            [_, d, p, n, s, r] => (d, p, n, s, r.as_str()),
            _ => return Err("usage: --write DIR PERSONS DAYS SEED [ROUND_MS]".into()),
        };
        let mut cfg = JourneyConfig::new(seed.parse()?, persons.parse()?, days.parse()?);
        cfg.round_ms = round.parse()?;
        return write(Path::new(dir), cfg);
    }
    let Some(dir) = args.first() else {
        return Err(
            "usage: parquet_answers DIR [--runs R] [--only funnel|retention|trends]".into(),
        );
    };
    let mut runs = 5;
    let mut only: Option<String> = None;
    let mut qs = questions::Questions::default();
    let mut steps: Vec<String> = Vec::new();
    let name = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().ok_or("--runs R")?.parse()?,
            "--only" => only = Some(it.next().ok_or("--only Q")?.clone()),
            "--step" => steps.push(it.next().ok_or("--step NAME")?.clone()),
            "--retention-start" => {
                qs.retention_start = name(it.next().ok_or("--retention-start NAME")?)
            }
            "--trends-event" => qs.trends_event = name(it.next().ok_or("--trends-event NAME")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !steps.is_empty() {
        qs.funnel_steps = steps;
    }
    let source = ParquetSource::open(Path::new(dir))?;
    if only.as_deref() == Some("scan") {
        // Decoding alone (person, ts, event), to separate it from kernel time.
        let t = Instant::now();
        let mut rows = 0;
        source.scan(&[], None, &mut |c| {
            rows += c.batch.num_rows();
            Ok(())
        })?;
        eprintln!("scan: {rows} rows in {:.3}s", t.elapsed().as_secs_f64());
        return Ok(());
    }
    for q in questions::QUESTIONS {
        if only.as_deref().is_some_and(|o| o != q) {
            continue;
        }
        let mut times = Vec::new();
        let mut answer = serde_json::Value::Null;
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            answer = qs.answer(&source, q)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let median = times[(times.len() - 1) / 2];
        let line = serde_json::json!({"question": q, "seconds": median, "answer": answer});
        println!("{}", questions::canonical_json(&line));
    }
    Ok(())
}
