//! `iob recommend ID`, `iob train`, `iob eval recommend`: recommendations at the command line,
//! (re)training the models, and the offline evaluation with `implicit` side by side.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use iob_engine::{Actor, Engine};
use iob_recommend::Recommender;
use iob_recommend::eval::{self, EvalOptions, Protocol, Report};
use iob_types::Purpose;

use crate::settings::Global;

#[derive(clap::Args)]
pub struct RecommendArgs {
    /// Any identifier of the person (user id, anonymous id, `email:…`, `person:N`).
    id: String,
    /// A configured placement (`[placements.NAME]`; default `default`).
    #[arg(long)]
    placement: Option<String>,
    /// Number of items (default: the placement's `n`).
    #[arg(long, short = 'n')]
    n: Option<usize>,
}

fn open(global: &Global) -> anyhow::Result<(Arc<Engine>, Arc<Recommender>)> {
    let cfg = global.load()?;
    let engine = Arc::new(global.open(&cfg)?);
    let rec =
        Recommender::open(engine.clone(), &cfg).context("loading the recommendation models")?;
    Ok((engine, rec))
}

/// `iob recommend ID`: the decide answer as JSON (a purpose-bound read for personalization,
/// audited under the operator).
pub fn recommend(global: &Global, a: RecommendArgs) -> anyhow::Result<()> {
    let (engine, rec) = open(global)?;
    let permit = engine.permit(Actor::Operator, &Purpose::new(Purpose::PERSONALIZATION)?)?;
    let d = rec.decide(&permit, &a.id, a.placement.as_deref(), a.n)?;
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(())
}

/// `iob train`: trains every model from persons who consent to personalization and writes the
/// artifact.
pub fn train(global: &Global) -> anyhow::Result<()> {
    let (_engine, rec) = open(global)?;
    let r = rec.train()?;
    println!(
        "trained on {} persons, {} items, {} interactions",
        r.persons, r.items, r.interactions
    );
    if let Some(s) = r.ease_secs {
        println!("  ease: {s:.3} s");
    }
    if let Some(s) = r.als_secs {
        println!("  als:  {s:.3} s");
    }
    println!("  knn:  {:.3} s", r.knn_secs);
    for (m, bytes) in &r.memory_bytes {
        println!("  memory {m}: {:.1} KiB", *bytes as f64 / 1024.0);
    }
    println!("artifact: {}", rec.artifact_dir().display());
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum EvalCommand {
    /// Offline evaluation of the recommenders (two protocols) on the shared datasets.
    #[command(
        after_help = "EXAMPLES:\n  iob eval recommend                               every dataset, both protocols\n  iob eval recommend --dataset ml-100k --protocol random --peer\n  iob eval recommend --json > eval.json"
    )]
    Recommend(EvalArgs),
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The `shared/data` folder (default: `../shared/data` from the repository root).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Datasets (default: all of ml-100k, ml-latest-small, yoochoose-100k, diginetica-sample).
    #[arg(long = "dataset")]
    datasets: Vec<String>,
    /// `random` (per-person 80/10/10, RecBole's) or `last` (leave-last-out by time); default both.
    #[arg(long = "protocol")]
    protocols: Vec<String>,
    /// Where the split files are written (for peers).
    #[arg(long, default_value = "target/eval-recommend")]
    out: PathBuf,
    /// Also run `implicit` (ALS, BPR) on the same split files (bench/recommend/implicit_peer.py).
    #[arg(long)]
    peer: bool,
    /// Python with `implicit` installed (also IOB_PYTHON).
    #[arg(long, env = "IOB_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// The peer script (run from the repository root by default).
    #[arg(long, default_value = "bench/recommend/implicit_peer.py")]
    peer_script: PathBuf,
    /// Smaller hyper-parameter grids.
    #[arg(long)]
    quick: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn eval(a: EvalCommand) -> anyhow::Result<()> {
    let EvalCommand::Recommend(a) = a;
    let cwd = std::env::current_dir()?;
    let root = match a.data {
        Some(d) => d,
        None => eval::data::default_root(&cwd)
            .context("no shared/data folder found next to the repository: pass --data DIR")?,
    };
    let names: Vec<String> = if a.datasets.is_empty() {
        eval::data::DATASETS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    } else {
        a.datasets.clone()
    };
    let protocols: Vec<Protocol> = if a.protocols.is_empty() {
        vec![Protocol::Random811, Protocol::LeaveLastOut]
    } else {
        a.protocols
            .iter()
            .map(|p| match p.as_str() {
                "random" => Ok(Protocol::Random811),
                "last" => Ok(Protocol::LeaveLastOut),
                other => anyhow::bail!("--protocol `{other}`: use `random` or `last`"),
            })
            .collect::<anyhow::Result<_>>()?
    };
    let script = &a.peer_script;
    let opts = EvalOptions {
        quick: a.quick,
        ..EvalOptions::default()
    };
    let mut reports = Vec::new();
    for name in &names {
        let d = match eval::data::load(&root, name) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        for &p in &protocols {
            eprintln!(
                "{name} / {}: {} persons, {} items",
                p.name(),
                d.n_users,
                d.n_items
            );
            let s = eval::split::split(&d, p, opts.seed);
            let dir = a.out.join(name).join(p.slug());
            s.write(&dir, name, p)?;
            let mut results = eval::run_all(&s, &opts, &mut |m| tracing::debug!("{m}"));
            if a.peer {
                match eval::peer::run(&a.python, script, &dir, opts.threads, a.quick) {
                    Ok(r) => results.extend(r),
                    Err(e) => eprintln!("peer on {name}/{}: {e}", p.slug()),
                }
            }
            reports.push(Report {
                dataset: name.clone(),
                protocol: p,
                users: s.n_users,
                items: s.n_items,
                train_interactions: s.train.len(),
                results,
            });
            if !a.json {
                print!("{}", eval::table(&reports[reports.len() - 1..]));
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!(
            "\nmetrics on the test part (full ranking); configuration chosen on validation NDCG@10; splits in {}",
            a.out.display()
        );
    }
    Ok(())
}
