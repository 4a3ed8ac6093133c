//! `iob bench analytics`: the analytics benchmark of issue 5, side by side with DuckDB.
//!
//! 1. A generated dataset (view → cart → purchase journeys, `--events`, 50M by default) is
//!    ingested through the real import pipeline into `--dir` (kept and reused on later runs),
//!    then compacted into Parquet: compaction throughput in events/s.
//! 2. Freshness: an event is acknowledged and a query run at once; the lag is the time from
//!    the acknowledgement to the answer that includes it.
//! 3. The three questions (3-step funnel with a 7-day window, 8-week retention, daily trends;
//!    `iob_analyses::questions`) answered by iob (median of `--runs`) and by DuckDB
//!    (`bench/analytics/duckdb_peer.py`, same Parquet files, same runs, 2 threads); the answers
//!    must be identical byte for byte, and the ratio iob / DuckDB is printed.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use iob_analyses::generator::{JourneyConfig, journeys};
use iob_analyses::questions;
use iob_collect::Received;
use iob_columnar::ColumnarSource;
use iob_engine::{Actor, Config, Endpoint, Engine, SourceConfig, Submission};
use iob_query::Analytics;
use iob_types::Purpose;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// Events to generate (about 13 per person, over 90 days).
    #[arg(long, default_value_t = 50_000_000)]
    events: u64,
    /// Data directory of the generated dataset: kept, and reused when it already holds it.
    #[arg(long, default_value = "iob-bench-analytics")]
    dir: PathBuf,
    /// Timed runs of each question (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// A Python with duckdb 2.0.0 (`python3 -m venv ~/.cache/iob-venv && ~/.cache/iob-venv/bin/pip install duckdb==2.0.0`).
    #[arg(long, default_value = "python3")]
    python: String,
    /// The DuckDB peer script.
    #[arg(long, default_value = "bench/analytics/duckdb_peer.py")]
    peer: PathBuf,
}

const WRITE_KEY: &str = "bench-analytics-write-key-01";

fn config(dir: &Path) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(WRITE_KEY.into()),
        }],
        ..Config::default()
    }
}

/// Generated JSON Lines, produced on another thread, read as a stream.
struct Generated {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Generated {
    fn start(cfg: JourneyConfig, limit: u64) -> Generated {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        std::thread::spawn(move || {
            let mut chunk = Vec::with_capacity(1 << 20);
            let mut n = 0u64;
            journeys(&cfg, |line| {
                if n >= limit {
                    return;
                }
                n += 1;
                chunk.extend_from_slice(line);
                if chunk.len() >= 1 << 20 {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(1 << 20));
                    let _ = tx.send(full);
                }
            });
            let _ = tx.send(chunk);
        });
        Generated {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Generated {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.at >= self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let cfg = config(&a.dir);
    let (engine, _) = Engine::open(&cfg).with_context(|| format!("opening {}", a.dir.display()))?;
    let engine = Arc::new(engine);
    let have = engine.stats().next_seq;
    if have < a.events {
        anyhow::ensure!(have == 0, "{} holds {have} events, not {}: use an empty --dir", a.dir.display(), a.events);
        let persons = a.events / 13 + 1;
        let gen_cfg = JourneyConfig::new(42, persons, 90);
        let started = Instant::now();
        let rx = Received {
            source: Some("web".into()),
            received_at: engine.now(),
            ip: None,
        };
        let lines = engine
            .collector()
            .import_json_lines(Generated::start(gen_cfg, a.events), "generated", rx);
        let s = engine.import_json_lines(lines, "web", |_| {})?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "ingested {} events ({} quarantined) in {secs:.1} s: {:.0} events/s",
            s.imported,
            s.quarantined,
            s.imported as f64 / secs
        );
    }
    let analytics = Analytics::open(engine.clone(), &cfg.analytics, false)?;
    // Compaction (the whole backlog on the first run).
    let t = Instant::now();
    let r = analytics.compact()?;
    let compact_secs = t.elapsed().as_secs_f64();
    let info = analytics.columnar().info();
    if r.records > 0 {
        eprintln!(
            "compacted {} records into {} rows, {} files, {:.1} MB in {compact_secs:.1} s: {:.0} events/s",
            r.records,
            r.rows,
            info.files,
            info.bytes as f64 / 1e6,
            r.records as f64 / compact_secs
        );
    }

    // Freshness: acknowledged, then queried at once.
    let permit = engine.permit(Actor::Operator, &Purpose::analytics())?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let probe = format!("Freshness Probe {}", rand::random::<u32>());
    let body = json!({"batch": [{"type":"track","userId":"probe-user","event": probe}]}).to_string();
    let acked = Instant::now();
    rt.block_on(engine.submit(Submission {
        endpoint: Endpoint::Batch,
        body: body.as_bytes(),
        key: Some(WRITE_KEY),
        ip: None,
    }))?;
    let sql = format!("SELECT count(*) AS n FROM events WHERE event = '{probe}' AND ts >= now() - INTERVAL '1 day'");
    let found = rt.block_on(analytics.sql(&permit, &sql))?;
    let lag_ms = acked.elapsed().as_secs_f64() * 1e3;
    let rows = iob_query::render(&found.schema, &found.batches, iob_query::Format::Json)?;
    anyhow::ensure!(
        serde_json::from_slice::<Value>(&rows)? == json!([{"n": 1}]),
        "the probe event was not visible to the next query"
    );
    drop(rt);
    // Compact the probe too, so DuckDB and iob read the same files.
    analytics.compact()?;

    // iob: the three questions over the store (directory and tail refresh included each run).
    let mut ours = Vec::new();
    for q in questions::QUESTIONS {
        let mut times = Vec::new();
        let mut answer = Value::Null;
        for _ in 0..a.runs.max(1) {
            let t = Instant::now();
            let directory = engine.person_directory(&permit)?;
            let source = ColumnarSource {
                columnar: analytics.columnar(),
                engine: &engine,
                directory: &directory,
            };
            answer = questions::answer(&source, q)?;
            times.push(t.elapsed().as_secs_f64());
        }
        ours.push((q, median(times), questions::canonical_json(&answer)));
    }

    // DuckDB on the same files.
    let out = Command::new(&a.python)
        .arg(&a.peer)
        .arg(analytics.columnar().dir())
        .args(["--runs", &a.runs.max(1).to_string(), "--threads", "2"])
        .output()
        .with_context(|| format!("running {} {}", a.python, a.peer.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "the DuckDB peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut theirs = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).context("a DuckDB peer line")?;
        let q = v["question"].as_str().unwrap_or_default().to_string();
        theirs.insert(q, (v["seconds"].as_f64().unwrap_or(f64::NAN), questions::canonical_json(&v["answer"])));
    }

    println!(
        "events {}  rows compacted {}  files {}  parquet {:.1} MB",
        engine.stats().next_seq,
        info.rows,
        info.files,
        info.bytes as f64 / 1e6
    );
    if r.records > 0 {
        println!("compaction: {:.0} events/s ({} records in {compact_secs:.1} s)", r.records as f64 / compact_secs, r.records);
    }
    println!("freshness: an acknowledged event is in the next query's answer {lag_ms:.0} ms after its acknowledgement (background compaction every {} s does not delay it)", cfg.analytics.compact_interval_secs);
    println!("{:<10} {:>10} {:>10} {:>8}  answers", "question", "iob s", "duckdb s", "ratio");
    let mut all_same = true;
    for (q, secs, answer) in &ours {
        let (theirs_s, theirs_a) = theirs.get(*q).cloned().unwrap_or((f64::NAN, String::new()));
        let same = *answer == theirs_a;
        all_same &= same;
        println!(
            "{q:<10} {secs:>10.3} {theirs_s:>10.3} {:>8.2}  {}",
            secs / theirs_s,
            if same { "identical" } else { "DIFFERENT" }
        );
        if !same {
            eprintln!("iob:    {answer}\nduckdb: {theirs_a}");
        }
    }
    drop(analytics);
    let engine = Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still in use"))?;
    engine.close()?;
    anyhow::ensure!(all_same, "iob and DuckDB answered differently");
    Ok(())
}
