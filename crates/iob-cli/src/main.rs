//! `iob`: the command-line face of the engine. Thin: it parses flags, loads the layered config
//! (file < environment < flags), sets up logging, and calls the engine or the server.

mod cmd;
mod http_client;
mod settings;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// Measured (BENCHMARKS.md, "Allocator"): the parallel import frees on other threads than it
// allocates, where glibc's allocator costs ~40% (UCI import 209-217k vs 342-362k rows/s with
// mimalloc); single-core ingestion is equal within noise.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "iob",
    version,
    about = "iob — an Internet of Behaviors engine: collect, store, unify, understand and act on behavioral events, with privacy by design.",
    long_about = None,
    after_help = "EXAMPLES:\n  iob demo                                    simulate a population and ingest it end to end\n  iob serve --listen 127.0.0.1:8088           run the Segment-compatible collector\n  iob import events.jsonl.gz                  import Segment-format JSON Lines\n  iob import online_retail.csv.gz --preset uci-online-retail\n  iob events count                            how many events are stored\n  iob events tail -n 5                        the last five events\n  iob quarantine list                         rejected events and why\n  iob keys create --scope read:personal       a key for reading profiles (shown once)\n  iob audit verify                            check the audit log of personal-data reads\n\nConfig: --config FILE (TOML), then IOB_* environment variables (IOB_STORE__PARTITIONS=16,\nIOB_WRITE_KEY, IOB_ADMIN_KEY, IOB_DATA_DIR), then flags."
)]
struct Cli {
    /// TOML config file (also IOB_CONFIG).
    #[arg(long, global = true, env = "IOB_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./iob-data; also IOB_DATA_DIR or `data_dir` in the config).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `iob_store=debug` (also IOB_LOG).
    #[arg(long, global = true, env = "IOB_LOG", default_value = "info")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP collector (Segment-compatible /v1/* endpoints) and admin API.
    #[command(
        after_help = "EXAMPLE:\n  IOB_WRITE_KEY=my-web-write-key-123 iob serve --listen 0.0.0.0:8088\n  curl -u my-web-write-key-123: localhost:8088/v1/track -d '{\"userId\":\"u1\",\"event\":\"Signed Up\"}'"
    )]
    Serve(cmd::serve::Args),
    /// Import history from JSON Lines or CSV files (gzip or plain).
    #[command(
        after_help = "EXAMPLES:\n  iob import events.jsonl\n  iob import ../shared/data/uci-online-retail/online_retail.csv.gz --preset uci-online-retail\n  iob import clicks.tsv --mapping my-mapping.toml --source web"
    )]
    Import(cmd::import::Args),
    /// Inspect stored events: count, tail, export.
    #[command(subcommand)]
    Events(cmd::events::Command),
    /// Create, list and revoke scoped API keys (on a data directory no server holds).
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    /// List and replay rejected events.
    #[command(subcommand)]
    Quarantine(cmd::quarantine::Command),
    /// A person's profile: traits and computed behavioral features (JSON).
    #[command(
        after_help = "EXAMPLES:\n  iob profile user-42\n  iob profile email:ada@example.com --purpose analytics"
    )]
    Profile(cmd::persons::ProfileArgs),
    /// A person's journey across channels, newest first, paginated (JSON Lines).
    Timeline(cmd::persons::TimelineArgs),
    /// How identifiers resolve to persons.
    #[command(subcommand)]
    Identity(cmd::persons::IdentityCommand),
    /// Recompute identity and profiles from the event log and check them against the online state.
    Rebuild,
    /// Data-subject requests: erase or export a person.
    #[command(subcommand)]
    Privacy(cmd::privacy::Command),
    /// Simulate a multi-channel population (web, app, stores, wearables) and ingest it over HTTP.
    Demo(cmd::demo::Args),
    /// The audit log of reads of personal data: verify its chain, list its records.
    #[command(
        subcommand,
        after_help = "EXAMPLES:\n  iob audit verify\n  iob audit list --actor admin --limit 20\n  iob audit list --subject 3f2a...e1 --action profile.read"
    )]
    Audit(cmd::audit::Command),
    /// Recommendations for a person at a placement (the decide API's answer, JSON).
    #[command(
        after_help = "EXAMPLES:\n  iob recommend user-00001\n  iob recommend user-00001 --placement home -n 5"
    )]
    Recommend(cmd::recommend::RecommendArgs),
    /// (Re)train the recommendation models from persons who consent to personalization.
    Train,
    /// Offline evaluations (`iob eval recommend`).
    #[command(subcommand)]
    Eval(cmd::recommend::EvalCommand),
    /// SQL over events, persons and consents, under a declared purpose.
    #[command(
        after_help = "EXAMPLES:\n  iob query \"SELECT event, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 10\"\n  iob query \"SELECT properties->>'sku' AS sku, count(DISTINCT person) FROM events WHERE event = 'Order Completed' GROUP BY 1\" --format csv\n  iob query \"SELECT * FROM events\" --purpose marketing --format parquet --out events.parquet\n  iob query --schema"
    )]
    Query(cmd::query::QueryArgs),
    /// Funnels, retention, paths and trends over the events, under a declared purpose.
    #[command(
        after_help = "EXAMPLES:\n  iob analyze funnel '{\"steps\":[{\"event\":\"Product Viewed\"},{\"event\":\"Product Added\"},{\"event\":\"Order Completed\"}],\"window_ms\":604800000,\"breakdown\":\"device_type\"}'\n  iob analyze retention '{\"start_event\":{\"event\":\"Order Completed\"},\"return_event\":{},\"period\":\"week\",\"periods\":8}'\n  iob analyze paths '{\"anchor\":{\"event\":\"Product Added\"},\"direction\":\"next\",\"depth\":3}'\n  iob analyze trends '{\"events\":[{\"event\":\"Order Completed\"}],\"interval\":\"day\"}' --k 5 --epsilon 1.0\n  iob analyze funnel @funnel.json --purpose marketing"
    )]
    Analyze(cmd::query::AnalyzeArgs),
    /// Compact the event log into the columnar (Parquet) store now.
    Compact,
    /// Measure ingestion speed (in process, over HTTP, import).
    #[command(subcommand)]
    Bench(cmd::bench::Command),
}

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so `iob events tail | head` would panic on the closed pipe. Restore
    // the default, as Unix tools have it: the process ends quietly. (Crash-safe: a store killed at
    // any moment recovers on the next open.)
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    settings::init_logging(&cli.log, cli.log_json);
    let global = settings::Global {
        config: cli.config,
        data_dir: cli.data_dir,
    };
    let result = match cli.command {
        Command::Serve(a) => cmd::serve::run(&global, a),
        Command::Import(a) => cmd::import::run(&global, a),
        Command::Events(c) => cmd::events::run(&global, c),
        Command::Keys(c) => cmd::keys::run(&global, c),
        Command::Quarantine(c) => cmd::quarantine::run(&global, c),
        Command::Profile(a) => cmd::persons::profile(&global, a),
        Command::Timeline(a) => cmd::persons::timeline(&global, a),
        Command::Identity(c) => cmd::persons::identity(&global, c),
        Command::Rebuild => cmd::persons::rebuild(&global),
        Command::Privacy(c) => cmd::privacy::run(&global, c),
        Command::Demo(a) => cmd::demo::run(&global, a),
        Command::Audit(c) => cmd::audit::run(&global, c),
        Command::Query(a) => cmd::query::query(&global, a),
        Command::Compact => cmd::query::compact(&global),
        Command::Analyze(a) => cmd::query::analyze(&global, a),
        Command::Bench(c) => cmd::bench::run(&global, c),
        Command::Recommend(a) => cmd::recommend::recommend(&global, a),
        Command::Train => cmd::recommend::train(&global),
        Command::Eval(c) => cmd::recommend::eval(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
