//! `iob events count|tail|export`: offline reads of the event log, under `--purpose`
//! (default `operations`: everything, raw; any other purpose sees only consenting persons'
//! events, with identifiers pseudonymized).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use iob_engine::{Actor, Engine, EventRecord};
use iob_types::{Purpose, Timestamp};

use crate::settings::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// How many events are stored, per partition, and the quarantine's size.
    Count,
    /// The most recent events (arrival order), as JSON Lines.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        n: usize,
        /// Why you read the events (a configured purpose, or `operations`).
        #[arg(long, default_value = "operations")]
        purpose: String,
    },
    /// Every event as Segment-format JSON Lines (re-importable with `iob import`).
    Export {
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Only events at or after this time (ISO-8601), by event time.
        #[arg(long)]
        from: Option<String>,
        /// Only events before this time (ISO-8601), by event time.
        #[arg(long)]
        to: Option<String>,
        /// Why you read the events (a configured purpose, or `operations`).
        #[arg(long, default_value = "operations")]
        purpose: String,
    },
}

fn line(r: &EventRecord, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(&r.event.to_json())?;
    out.write_all(b"\n")
}

pub fn run(global: &Global, cmd: Command) -> anyhow::Result<()> {
    let cfg = global.load()?;
    let engine: Engine = global.open(&cfg)?;
    let purpose = match &cmd {
        Command::Tail { purpose, .. } | Command::Export { purpose, .. } => Purpose::new(purpose)?,
        Command::Count => Purpose::operations(),
    };
    let permit = engine.permit(Actor::Operator, &purpose)?;
    let stdout = std::io::stdout();
    match cmd {
        Command::Count => {
            let s = engine.stats();
            println!("events      {}", s.events);
            println!("log bytes   {}", s.log_bytes);
            println!("segments    {}", s.segments);
            println!(
                "quarantine  {} open, {} resolved",
                s.quarantine_open, s.quarantine_resolved
            );
            for (p, n) in s.partition_offsets.iter().enumerate() {
                println!("  partition p{p:03}  {n}");
            }
        }
        Command::Tail { n, .. } => {
            let mut out = stdout.lock();
            for r in engine.tail(&permit, n)? {
                line(&r, &mut out)?;
            }
        }
        Command::Export { out, from, to, .. } => {
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(stdout.lock())),
            };
            let mut n = 0u64;
            let mut each = |r: EventRecord| {
                n += 1;
                line(&r, &mut w).map_err(|e| iob_engine::EngineError::io("writing the export", e))
            };
            if from.is_some() || to.is_some() {
                let from = from
                    .map(|s| Timestamp::parse("--from", &s))
                    .transpose()?
                    .unwrap_or(Timestamp(0));
                let to = to
                    .map(|s| Timestamp::parse("--to", &s))
                    .transpose()?
                    .unwrap_or(Timestamp(i64::MAX));
                engine.scan_time(&permit, from, to, &mut each)?;
            } else {
                engine.for_each_event(&permit, &mut each)?;
            }
            w.flush()?;
            if out.is_some() {
                eprintln!("exported {n} events");
            }
        }
    }
    engine.close()?;
    Ok(())
}
