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

use crate::cmd::bench::median;

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
    /// The public datasets (`../shared/data`): retention and trends on UCI Online Retail
    /// purchases and YOOCHOOSE clicks too, each imported into `--dir`-uci / `--dir`-yoochoose.
    #[arg(long)]
    real: Option<PathBuf>,
}

/// One question answered by both engines.
struct Compared {
    dataset: String,
    question: &'static str,
    iob_s: f64,
    duckdb_s: f64,
    same: bool,
}

/// Answers `names` over the store of `analytics` with iob (median of `runs`, the purpose's
/// directory and tail refresh included in each run) and with the DuckDB peer.
fn compare(
    a: &Args,
    dataset: &str,
    engine: &Arc<Engine>,
    analytics: &Analytics,
    q: &questions::Questions,
    names: &[&'static str],
) -> anyhow::Result<Vec<Compared>> {
    let permit = engine.permit(Actor::Operator, &Purpose::analytics())?;
    let mut out = Vec::new();
    for &name in names {
        let mut times = Vec::new();
        let mut answer = Value::Null;
        for _ in 0..a.runs.max(1) {
            let t = Instant::now();
            let directory = engine.person_directory(&permit)?;
            let source = ColumnarSource {
                columnar: analytics.columnar(),
                engine,
                directory: &directory,
            };
            answer = q.answer(&source, name)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let mut cmd = Command::new(&a.python);
        cmd.arg(&a.peer).arg(analytics.columnar().dir()).args([
            "--runs",
            &a.runs.max(1).to_string(),
            "--threads",
            "2",
            "--only",
            name,
        ]);
        for step in &q.funnel_steps {
            cmd.args(["--step", step]);
        }
        cmd.args([
            "--retention-start",
            q.retention_start.as_deref().unwrap_or(""),
        ]);
        cmd.args(["--trends-event", q.trends_event.as_deref().unwrap_or("")]);
        let peer = cmd
            .output()
            .with_context(|| format!("running {} {}", a.python, a.peer.display()))?;
        anyhow::ensure!(
            peer.status.success(),
            "the DuckDB peer failed: {}",
            String::from_utf8_lossy(&peer.stderr)
        );
        let line = String::from_utf8_lossy(&peer.stdout);
        let v: Value = serde_json::from_str(line.lines().next().unwrap_or_default())
            .context("the DuckDB peer's answer")?;
        let ours = questions::canonical_json(&answer);
        let theirs = questions::canonical_json(&v["answer"]);
        if ours != theirs {
            eprintln!("{dataset} {name}:\n  iob:    {ours}\n  duckdb: {theirs}");
        }
        out.push(Compared {
            dataset: dataset.to_string(),
            question: name,
            iob_s: median(times),
            duckdb_s: v["seconds"].as_f64().unwrap_or(f64::NAN),
            same: ours == theirs,
        });
    }
    Ok(out)
}

/// Imports `files` with `preset` into a fresh data directory (the `iob import` command).
fn import_real(dir: &Path, files: &[(PathBuf, &str)]) -> anyhow::Result<()> {
    let cfg_path = dir.with_extension("toml");
    std::fs::write(
        &cfg_path,
        format!(
            "data_dir = {:?}\n[[sources]]\nname = \"web\"\nwrite_key = \"{WRITE_KEY}\"\n",
            dir
        ),
    )?;
    for (file, preset) in files {
        anyhow::ensure!(
            file.exists(),
            "{} is absent (see ../shared/data/README.md)",
            file.display()
        );
        let st = Command::new(std::env::current_exe()?)
            .arg("--config")
            .arg(&cfg_path)
            .args(["import", "--preset", preset, "--source", "web"])
            .arg(file)
            .status()?;
        anyhow::ensure!(st.success(), "importing {} failed", file.display());
    }
    Ok(())
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

pub fn run(a: Args) -> anyhow::Result<()> {
    let cfg = config(&a.dir);
    let (engine, _) = Engine::open(&cfg).with_context(|| format!("opening {}", a.dir.display()))?;
    let engine = Arc::new(engine);
    let have = engine.stats().next_seq;
    if have < a.events {
        anyhow::ensure!(
            have == 0,
            "{} holds {have} events, not {}: use an empty --dir",
            a.dir.display(),
            a.events
        );
        // About 11 events per person; the generator is cut at exactly `events`.
        let persons = a.events / 9 + 1;
        let gen_cfg = JourneyConfig::new(42, persons, 90);
        let started = Instant::now();
        let rx = Received {
            source: Some("web"),
            received_at: engine.now(),
            ip: None,
        };
        let lines = engine.collector().import_json_lines(
            Generated::start(gen_cfg, a.events),
            "generated",
            rx,
        );
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let probe = format!("Freshness Probe {}", rand::random::<u32>());
    let body =
        json!({"batch": [{"type":"track","userId":"probe-user","event": probe}]}).to_string();
    let acked = Instant::now();
    rt.block_on(engine.submit(Submission {
        endpoint: Endpoint::Batch,
        body: body.as_bytes(),
        key: Some(WRITE_KEY),
        ip: None,
    }))?;
    let sql = format!(
        "SELECT count(*) AS n FROM events WHERE event = '{probe}' AND ts >= now() - INTERVAL '1 day'"
    );
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

    let mut rows = compare(
        &a,
        "generated",
        &engine,
        &analytics,
        &questions::Questions::default(),
        &questions::QUESTIONS,
    )?;

    println!(
        "events {}  rows compacted {}  files {}  parquet {:.1} MB",
        engine.stats().next_seq,
        info.rows,
        info.files,
        info.bytes as f64 / 1e6
    );
    if r.records > 0 {
        println!(
            "compaction: {:.0} events/s ({} records in {compact_secs:.1} s)",
            r.records as f64 / compact_secs,
            r.records
        );
    }
    println!(
        "freshness: an acknowledged event is in the next query's answer {lag_ms:.0} ms after its acknowledgement (background compaction every {} s does not delay it)",
        cfg.analytics.compact_interval_secs
    );
    drop(analytics);
    let engine = Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still in use"))?;
    engine.close()?;

    if let Some(data) = &a.real {
        type Case<'a> = (&'a str, Vec<(PathBuf, &'a str)>, questions::Questions);
        let cases: [Case; 2] = [
            (
                "uci-online-retail",
                vec![
                    (
                        data.join("uci-online-retail/online_retail.csv.gz"),
                        "uci-online-retail",
                    ),
                    (
                        data.join("uci-online-retail/online_retail_II_2009-2010.csv.gz"),
                        "uci-online-retail-ii",
                    ),
                ],
                questions::Questions {
                    funnel_steps: vec![],
                    retention_start: Some("Order Line".into()),
                    trends_event: Some("Order Line".into()),
                },
            ),
            (
                "yoochoose",
                vec![
                    (
                        data.join("yoochoose-rsc15-100k/yoochoose-clicks-100k_train_full.txt"),
                        "yoochoose",
                    ),
                    (
                        data.join("yoochoose-rsc15-100k/yoochoose-clicks-100k_test.txt"),
                        "yoochoose",
                    ),
                ],
                questions::Questions {
                    funnel_steps: vec![],
                    retention_start: Some("Product Viewed".into()),
                    trends_event: Some("Product Viewed".into()),
                },
            ),
        ];
        for (name, files, q) in cases {
            let dir = PathBuf::from(format!("{}-{name}", a.dir.display()));
            if !dir.join("analytics/manifest.json").exists() {
                import_real(&dir, &files)?;
            }
            let cfg = config(&dir);
            let (engine, _) = Engine::open(&cfg)?;
            let engine = Arc::new(engine);
            let analytics = Analytics::open(engine.clone(), &cfg.analytics, false)?;
            let r = analytics.compact()?;
            if r.records > 0 {
                println!(
                    "{name}: compacted {} records in {:.1} s: {:.0} events/s",
                    r.records,
                    r.seconds,
                    r.records as f64 / r.seconds
                );
            }
            rows.extend(compare(
                &a,
                name,
                &engine,
                &analytics,
                &q,
                &["retention", "trends"],
            )?);
            drop(analytics);
            Arc::try_unwrap(engine)
                .map_err(|_| anyhow::anyhow!("engine still in use"))?
                .close()?;
        }
    }

    println!(
        "{:<18} {:<10} {:>9} {:>9} {:>7}  answers",
        "dataset", "question", "iob s", "duckdb s", "ratio"
    );
    for c in &rows {
        println!(
            "{:<18} {:<10} {:>9.3} {:>9.3} {:>7.2}  {}",
            c.dataset,
            c.question,
            c.iob_s,
            c.duckdb_s,
            c.iob_s / c.duckdb_s,
            if c.same { "identical" } else { "DIFFERENT" }
        );
    }
    anyhow::ensure!(
        rows.iter().all(|c| c.same),
        "iob and DuckDB answered differently"
    );
    Ok(())
}
