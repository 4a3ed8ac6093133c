//! `iob query SQL` and `iob compact`: SQL over the columnar store under a declared purpose
//! (default `analytics`), and compaction of the log into it, on a data directory no server
//! holds.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use iob_engine::{Actor, Engine};
use iob_query::{Analytics, Format, render};
use iob_types::Purpose;

use crate::settings::Global;

#[derive(clap::Args)]
pub struct QueryArgs {
    /// The query: tables `events`, `persons`, `consents` (`iob query --schema` lists columns).
    #[arg(required_unless_present = "schema")]
    sql: Option<String>,
    /// Why you read (a configured purpose): rows of persons without consent for it are
    /// invisible. `operations` (everyone) is for the operator.
    #[arg(long, default_value = "analytics")]
    purpose: String,
    /// table, csv, json, jsonl or parquet.
    #[arg(long, short, default_value = "table")]
    format: String,
    /// Write the result here (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Print the tables' columns and exit.
    #[arg(long)]
    schema: bool,
}

/// Opens the engine and the analytics service (no background compaction: offline command).
fn open(global: &Global) -> anyhow::Result<(Arc<Engine>, Analytics)> {
    let cfg = global.load()?;
    let engine = Arc::new(global.open(&cfg)?);
    let analytics = Analytics::open(engine.clone(), &cfg.analytics, false)
        .context("opening the columnar store")?;
    Ok((engine, analytics))
}

fn close(engine: Arc<Engine>, analytics: Analytics) -> anyhow::Result<()> {
    drop(analytics);
    let engine = Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still in use"))?;
    engine.close().context("closing the data directory")
}

pub fn query(global: &Global, a: QueryArgs) -> anyhow::Result<()> {
    if a.schema {
        print!("{}", iob_query::describe_tables());
        return Ok(());
    }
    let format: Format = a.format.parse()?;
    let (engine, analytics) = open(global)?;
    let permit = engine.permit(Actor::Operator, &Purpose::new(&a.purpose)?)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sql = a.sql.unwrap_or_default();
    let result = rt.block_on(analytics.sql(&permit, &sql))?;
    drop(rt);
    let bytes = render(&result.schema, &result.batches, format)?;
    match &a.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            if format == Format::Parquet {
                anyhow::bail!("parquet output is binary: give a file with --out");
            }
            std::io::stdout().write_all(&bytes)?;
        }
    }
    eprintln!(
        "{} row{}{} in {:.3} s (purpose {})",
        result.rows,
        if result.rows == 1 { "" } else { "s" },
        if result.truncated {
            " (cut at the row limit)"
        } else {
            ""
        },
        result.seconds,
        a.purpose
    );
    close(engine, analytics)
}

pub fn compact(global: &Global) -> anyhow::Result<()> {
    let (engine, analytics) = open(global)?;
    let r = analytics.compact()?;
    let info = analytics.columnar().info();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"compaction": r, "store": info}))?
    );
    close(engine, analytics)
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// funnel, retention, paths or trends.
    kind: String,
    /// The request as JSON, or @FILE (see the examples and the README for the fields).
    request: String,
    /// Why you read (a configured purpose): persons without consent for it are left out.
    #[arg(long, default_value = "analytics")]
    purpose: String,
    /// Suppress groups backed by fewer than K persons (what keys without read:personal get).
    #[arg(long)]
    k: Option<u32>,
    /// Add Laplace noise with this privacy budget to the released counts.
    #[arg(long)]
    epsilon: Option<f64>,
}

pub fn analyze(global: &Global, a: AnalyzeArgs) -> anyhow::Result<()> {
    let json = match a.request.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {path}"))?,
        None => a.request.clone().into_bytes(),
    };
    let analysis = iob_query::parse_analysis(&a.kind, &json)?;
    let (engine, analytics) = open(global)?;
    let permit = engine.permit(Actor::Operator, &Purpose::new(&a.purpose)?)?;
    let disclosure = iob_query::Disclosure {
        k: a.k,
        epsilon: a.epsilon,
        seed: rand::random(),
    };
    let started = std::time::Instant::now();
    let result = analytics.analyze(&permit, &analysis, &disclosure)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    eprintln!(
        "{} in {:.3} s (purpose {})",
        a.kind,
        started.elapsed().as_secs_f64(),
        a.purpose
    );
    close(engine, analytics)
}
