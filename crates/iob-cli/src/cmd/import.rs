//! `iob import FILE`: history from JSON Lines (Segment events) or CSV with a column mapping,
//! gzip or plain, with a progress bar and a summary. Offline: takes the data directory lock.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use iob_collect::Received;
use iob_collect::import::{CsvMapping, maybe_gunzip};
use iob_engine::{Config, Engine, ImportSummary};

use crate::settings::{Global, print_new_keys};

#[derive(clap::Args)]
pub struct Args {
    /// The file: .jsonl / .ndjson / .json (Segment events, one per line) or .csv / .tsv / other
    /// delimited text (with --mapping or --preset); gzip is detected by content.
    pub file: PathBuf,
    /// CSV column mapping (TOML; see crates/iob-collect/mappings/ for examples).
    #[arg(long, conflicts_with = "preset")]
    pub mapping: Option<PathBuf>,
    /// A ready-made mapping: uci-online-retail, uci-online-retail-ii, yoochoose, movielens-100k,
    /// fitbit-hourly-steps, fitbit-hourly-calories, fitbit-hourly-intensity, fitbit-daily-sleep,
    /// fitbit-weight, fitbit-daily-activity.
    #[arg(long)]
    pub preset: Option<String>,
    /// Treat the file as JSON Lines even without a .jsonl name.
    #[arg(long, conflicts_with_all = ["mapping", "preset"])]
    pub jsonl: bool,
    /// The source the events are attributed to.
    #[arg(long, default_value = "import")]
    pub source: String,
    /// Seeds derived messageIds (default: the file name); re-importing under the same name is
    /// deduplicated.
    #[arg(long)]
    pub name: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// What kind of file.
pub enum Format {
    Jsonl,
    Csv(Box<CsvMapping>),
}

fn detect(args: &Args) -> anyhow::Result<Format> {
    if let Some(p) = &args.preset {
        let text = iob_collect::import::preset(p).with_context(|| {
            format!(
                "no preset `{p}`; available: {}",
                iob_collect::import::PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        return Ok(Format::Csv(Box::new(
            CsvMapping::from_toml_str(text).with_context(|| format!("preset {p}"))?,
        )));
    }
    if let Some(m) = &args.mapping {
        let text = std::fs::read_to_string(m)
            .with_context(|| format!("reading mapping {}", m.display()))?;
        return Ok(Format::Csv(Box::new(
            CsvMapping::from_toml_str(&text).with_context(|| format!("mapping {}", m.display()))?,
        )));
    }
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.trim_end_matches(".gz");
    if args.jsonl
        || [".jsonl", ".ndjson", ".json"]
            .iter()
            .any(|e| name.ends_with(e))
    {
        return Ok(Format::Jsonl);
    }
    if [".csv", ".tsv", ".txt", ".data", ".dat"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        bail!(
            "{} looks like delimited text: say how its columns map to events with --mapping FILE.toml or --preset NAME",
            args.file.display()
        );
    }
    Ok(Format::Jsonl)
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let cfg = global.load()?;
    let format = detect(&args)?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "import".into())
    });
    let done = import_with(&cfg, &args.file, &format, &args.source, &name, !args.quiet)?;
    let (s, secs) = (&done.summary, done.secs);
    println!(
        "imported {}  duplicates {}  quarantined {}  (read {} rows, {:.1} MB in {:.2}s: {:.0} rows/s)",
        s.imported,
        s.duplicates,
        s.quarantined,
        s.read,
        s.bytes as f64 / 1e6,
        secs,
        s.read as f64 / secs.max(1e-9)
    );
    if done.profile_events > 0 {
        println!(
            "profiles: applied {} events to identity and profiles in {:.2}s ({:.0} events/s)",
            done.profile_events,
            done.profile_secs,
            done.profile_events as f64 / done.profile_secs.max(1e-9)
        );
    }
    if s.quarantined > 0 {
        println!("see why: iob quarantine list");
    }
    Ok(())
}

/// What an import did, timed: the durable import, then bringing profiles up to date.
pub struct Imported {
    pub summary: ImportSummary,
    pub secs: f64,
    pub profile_events: u64,
    pub profile_secs: f64,
}

/// Imports `path` into the data directory of `cfg` (used by `iob bench import` too).
pub fn import_file(
    cfg: &Config,
    path: &Path,
    format: &Format,
    source: &str,
    progress: bool,
) -> anyhow::Result<Imported> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    import_with(cfg, path, format, source, &name, progress)
}

fn import_with(
    cfg: &Config,
    path: &Path,
    format: &Format,
    source: &str,
    name: &str,
    progress: bool,
) -> anyhow::Result<Imported> {
    let started = Instant::now();
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (engine, fresh) = Engine::open(cfg)
        .with_context(|| format!("opening data directory {}", cfg.data_dir().display()))?;
    print_new_keys(&fresh);
    let pb = if progress {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .expect("valid template"),
    );
    let reader = maybe_gunzip(BufReader::with_capacity(1 << 20, pb.wrap_read(file)))
        .with_context(|| format!("reading {}", path.display()))?;
    let rx = Received {
        source: Some(source),
        received_at: engine.now(),
        ip: None,
    };
    let collector = engine.collector();
    let report = |s: &ImportSummary| {
        pb.set_message(format!(
            "{} imported, {} duplicates, {} quarantined",
            s.imported, s.duplicates, s.quarantined
        ));
    };
    // Readers hand out raw lines/rows; the engine parses them on both cores.
    let summary = match format {
        Format::Jsonl => {
            let lines = collector.import_json_lines(reader, name, rx);
            engine.import_json_lines(lines, source, report)
        }
        Format::Csv(mapping) => {
            let mut rows = collector
                .import_csv(reader, mapping, name, rx)
                .with_context(|| format!("reading {}", path.display()))?;
            let parser = rows.parser();
            engine.import(
                std::iter::from_fn(|| rows.next_raw()),
                |r| parser.parse(r),
                source,
                report,
            )
        }
    }
    .with_context(|| format!("importing {}", path.display()))?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let t = Instant::now();
    // With live profiles, leave them current; otherwise the next read brings them up to date.
    let profile_events = if cfg.profiles.live {
        engine.update_profiles()?
    } else {
        0
    };
    let profile_secs = t.elapsed().as_secs_f64();
    close(engine)?;
    Ok(Imported {
        summary,
        secs,
        profile_events,
        profile_secs,
    })
}

fn close(engine: Engine) -> anyhow::Result<()> {
    engine.close().context("closing the data directory")
}
