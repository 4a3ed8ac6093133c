//! `iob bench recommend`: training time (EASE on MovieLens 100K; ALS seconds per iteration next
//! to `implicit`'s with the same factors and threads on the same split file), decide latency
//! (the decide logic in process over 10k and 100k items; the full engine path with its audit
//! record, and over HTTP, over 10k items; sizes are flags, so CI runs a small smoke) and the memory of each model.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use iob_engine::{Actor, Config, Endpoint, Engine, RecommendConfig, SourceConfig, Submission};
use iob_recommend::Recommender;
use iob_recommend::catalog::Catalog;
use iob_recommend::decide::{History, Placement, decide};
use iob_recommend::eval::{self, Protocol};
use iob_recommend::matrix::Interaction;
use iob_recommend::model::{ModelSet, TrainData};
use iob_recommend::rules::Rules;
use iob_types::Purpose;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::settings::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Decide calls timed per case.
    #[arg(long, default_value_t = 2000)]
    decides: usize,
    /// The `shared/data` folder (for the MovieLens 100K training figures).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Python with `implicit` (for the ALS per-iteration ratio); also IOB_PYTHON.
    #[arg(long, env = "IOB_PYTHON", default_value = "python3")]
    python: PathBuf,
    #[arg(long, default_value = "bench/recommend/implicit_peer.py")]
    peer_script: PathBuf,
    /// Catalog sizes for the in-process decide logic (each trains ALS and kNN on 10 views per
    /// item).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Items and persons of the engine and HTTP case.
    #[arg(long, default_value_t = 10_000)]
    engine_items: usize,
    #[arg(long, default_value_t = 3_000)]
    engine_persons: usize,
    /// Skip the MovieLens training figures.
    #[arg(long)]
    skip_training: bool,
    /// Also train EASE on the 10k-item catalog (about 2 GB while training).
    #[arg(long)]
    ease_10k: bool,
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(v: &[f64]) -> String {
    format!(
        "p50 {:.3} ms, p99 {:.3} ms",
        pct(v.to_vec(), 0.5) * 1e3,
        pct(v.to_vec(), 0.99) * 1e3
    )
}

pub fn run(_global: &Global, a: Args) -> anyhow::Result<()> {
    if !a.skip_training {
        training(&a)?;
    }
    for &items in &a.sizes {
        serving_core(&a, items, a.ease_10k && items <= 10_000)?;
    }
    serving_engine(&a)?;
    Ok(())
}

/// EASE and ALS training on MovieLens 100K (the random split's training part).
fn training(a: &Args) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let root = match &a.data {
        Some(d) => d.clone(),
        None => match eval::data::default_root(&cwd) {
            Some(r) => r,
            None => {
                println!("training: shared/data not found (pass --data); skipped");
                return Ok(());
            }
        },
    };
    let d = match eval::data::load(&root, "ml-100k") {
        Ok(d) => d,
        Err(e) => {
            println!("training: {e}; skipped");
            return Ok(());
        }
    };
    let s = eval::split::split(&d, Protocol::Random811, 2020);
    let dir = tempfile::tempdir()?;
    s.write(dir.path(), "ml-100k", Protocol::Random811)?;
    let x = eval::train_matrix(&s);
    let mut ease = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let m = iob_recommend::ease::Ease::train(&x, 500.0)?;
        ease.push(t.elapsed().as_secs_f64());
        drop(m);
    }
    println!(
        "training on MovieLens 100K (random 80/10/10 training part: {} persons, {} items, {} interactions)",
        s.n_users,
        s.n_items,
        x.nnz()
    );
    println!(
        "  EASE (lambda 500): median {:.3} s, min {:.3} s over 5 runs",
        pct(ease.clone(), 0.5),
        pct(ease, 0.0)
    );
    let params = iob_recommend::als::AlsParams {
        factors: 64,
        regularization: 0.05,
        alpha: 2.0,
        iterations: 15,
        cg_steps: 3,
        threads: 2,
        seed: 42,
    };
    let mut iob_runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        iob_recommend::als::Als::train(&x, &params);
        iob_runs.push(t.elapsed().as_secs_f64() / params.iterations as f64);
    }
    let iob_per = pct(iob_runs, 0.5);
    println!(
        "  iob ALS (64 factors, 2 threads, 3 CG steps): {:.2} ms per iteration (median of 3 fits)",
        iob_per * 1e3
    );
    let mut peer_runs = Vec::new();
    for _ in 0..3 {
        let out = std::process::Command::new(&a.python)
            .arg(&a.peer_script)
            .arg("--split")
            .arg(dir.path())
            .args(["--time-als", "64", "--iterations", "15", "--threads", "2"])
            .env("OPENBLAS_NUM_THREADS", "1")
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
                peer_runs.push(v["per_iteration"].as_f64().unwrap_or(f64::NAN));
            }
            Ok(o) => {
                println!(
                    "  implicit ALS: peer failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
                break;
            }
            Err(e) => {
                println!("  implicit ALS: cannot run {}: {e}", a.python.display());
                break;
            }
        }
    }
    if !peer_runs.is_empty() {
        let peer = pct(peer_runs, 0.5);
        println!(
            "  implicit 0.7.3 ALS (same factors, threads, CG steps, split file): {:.2} ms per iteration; ratio iob/implicit {:.2}",
            peer * 1e3,
            iob_per / peer
        );
    }
    Ok(())
}

/// A synthetic catalog with taste clusters: each person views `per` items, 80 % from their
/// cluster (popular ones more often), the rest anywhere.
fn synthetic(items: usize, persons: usize, per: usize, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let clusters = 50usize;
    let mut out = Vec::with_capacity(persons * per);
    for p in 0..persons {
        let c = p % clusters;
        for _ in 0..per {
            let item = if rng.random_bool(0.8) {
                // Zipf-like within the cluster: squares favour low ranks.
                let in_cluster = items / clusters;
                let r: f64 = rng.random::<f64>();
                let k = ((r * r) * in_cluster as f64) as usize;
                (k * clusters + c).min(items - 1)
            } else {
                rng.random_range(0..items)
            };
            out.push((p as u32, item as u32));
        }
    }
    out
}

fn placement(n: usize, model: iob_engine::ModelChoice) -> Placement {
    Placement {
        name: "bench".into(),
        model,
        n,
        max_n: 100,
        blend_weight: 0.5,
        rules: Rules {
            exclude_purchased: true,
            exclude_seen: true,
            ..Rules::default()
        },
    }
}

/// The decide logic in process: models trained on synthetic data, top-20 for random persons'
/// 20-item histories.
fn serving_core(a: &Args, items: usize, with_ease: bool) -> anyhow::Result<()> {
    let persons = items / 2;
    let pairs = synthetic(items, persons, 20, 7);
    let mut catalog = Catalog::default();
    for i in 0..items {
        catalog.intern(&format!("sku-{i}"));
    }
    let interactions: Vec<Interaction> = pairs
        .iter()
        .map(|&(row, item)| Interaction {
            row,
            item,
            weight: 1.0,
            at: 0,
        })
        .collect();
    let cfg = RecommendConfig {
        half_life_days: 0.0,
        ease: iob_engine::EaseConfig {
            max_items: if with_ease { items } else { 0 },
            ..iob_engine::EaseConfig::default()
        },
        ..RecommendConfig::default()
    };
    let t = Instant::now();
    let (models, report) = ModelSet::train(
        1,
        TrainData {
            persons: (0..persons as u64).collect(),
            interactions,
            catalog,
            now: 0,
        },
        &cfg,
    );
    println!(
        "\ndecide in process, {items} items ({persons} persons, {} interactions; trained in {:.1} s: ALS {:.1} s, kNN {:.1} s{})",
        pairs.len(),
        t.elapsed().as_secs_f64(),
        report.als_secs.unwrap_or(0.0),
        report.knn_secs,
        report
            .ease_secs
            .map(|s| format!(", EASE {s:.1} s"))
            .unwrap_or_default()
    );
    for (m, bytes) in &report.memory_bytes {
        println!("  memory {m}: {:.1} MiB", *bytes as f64 / (1024.0 * 1024.0));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut models_to_time = vec![iob_engine::ModelChoice::Als, iob_engine::ModelChoice::Knn];
    if models.ease.is_some() {
        models_to_time.insert(0, iob_engine::ModelChoice::Ease);
        if models.als.is_some() {
            // The best model on MovieLens 100K: both scorings plus the blend's two passes.
            models_to_time.insert(1, iob_engine::ModelChoice::Blend);
        }
    }
    for choice in models_to_time {
        let p = placement(20, choice);
        let mut times = Vec::with_capacity(a.decides);
        // The first 100 calls warm caches and are not timed.
        for k in 0..a.decides + 100 {
            // A new visitor's history (not a training row): ALS folds them in.
            let u = rng.random_range(0..persons as u32);
            let mut items: Vec<(u32, f32)> = pairs[u as usize * 20..u as usize * 20 + 20]
                .iter()
                .map(|&(_, i)| (i, 1.0))
                .collect();
            items.sort_unstable_by_key(|p| p.0);
            items.dedup_by_key(|p| p.0);
            let h = History {
                person: None,
                items,
                purchased: Vec::new(),
            };
            let t = Instant::now();
            let d = decide(&models, &models.catalog, &p, Ok(&h), 20);
            if k >= 100 {
                times.push(t.elapsed().as_secs_f64());
            }
            std::hint::black_box(d);
        }
        println!("  {:<4} top-20: {}", choice.name(), ms(&times));
    }
    Ok(())
}

/// The whole decide path over an engine (person lookup, consent, audit record, real-time
/// history, decide) in process and over HTTP, 10k items.
fn serving_engine(a: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let admin = "bench-admin-key-0123456789abcdef";
    let write = "bench-write-key-0123456789";
    let cfg: Config = Config {
        data_dir: Some(dir.path().to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(write.into()),
        }],
        admin: iob_engine::AdminConfig {
            key: Some(admin.into()),
        },
        ..Config::default()
    };
    let (engine, _) = Engine::open(&cfg)?;
    let engine = Arc::new(engine);
    let (items, persons) = (a.engine_items.max(100), a.engine_persons.max(10));
    let pairs = synthetic(items, persons, 20, 9);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Instant::now();
    rt.block_on(async {
        for chunk in pairs.chunks(20 * 50) {
            let mut batch = Vec::with_capacity(chunk.len() + 50);
            let mut last = u32::MAX;
            for &(p, i) in chunk {
                if p != last {
                    batch.push(json!({"type":"consent","userId":format!("u{p}"),"granted":["personalization"],"denied":[]}));
                    last = p;
                }
                batch.push(json!({"type":"track","userId":format!("u{p}"),"event":"Product Viewed",
                    "properties":{"item_id":format!("sku-{i}"),"category":format!("c{}", i % 50)}}));
            }
            let body = serde_json::to_vec(&json!({ "batch": batch }))?;
            engine.submit(Submission { endpoint: Endpoint::Batch, body: &body, key: Some(write), ip: None }).await?;
        }
        anyhow::Ok(())
    })?;
    let ingest = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let rec = Recommender::open(engine.clone(), &cfg)?;
    let trained = t.elapsed().as_secs_f64();
    println!(
        "\ndecide through the engine, {} items seen ({persons} persons, {} events ingested in {ingest:.1} s; models trained at open in {trained:.1} s, model {})",
        rec.models().n_items(),
        pairs.len(),
        rec.model_of("default").map_or("-", |m| m.name())
    );
    let permit = engine.permit(Actor::Operator, &Purpose::new(Purpose::PERSONALIZATION)?)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut times = Vec::new();
    for _ in 0..a.decides {
        let id = format!("u{}", rng.random_range(0..persons));
        let t = Instant::now();
        let d = rec.decide(&permit, &id, None, Some(20))?;
        times.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(d.personalized, "expected a personalized answer");
    }
    println!(
        "  in process, with the audit record (fsync) of each call: top-20 {}",
        ms(&times)
    );
    // Where that goes: resolving the person, deciding consent and the durable audit record.
    let mut subject = Vec::new();
    for k in 0..a.decides.min(500) {
        let id = format!("u{}", (k * 31) % persons);
        let t = Instant::now();
        engine.decide_subject(&permit, &id)?;
        subject.push(t.elapsed().as_secs_f64());
    }
    println!(
        "    of which Engine::decide_subject (lookup, consent, audit record + fsync): {}",
        ms(&subject)
    );
    let mut audit = Vec::new();
    for _ in 0..a.decides.min(500) {
        let t = Instant::now();
        engine.record_access(
            &permit,
            iob_engine::AuditEntry::bulk(iob_engine::Access::Decide, "bench"),
        )?;
        audit.push(t.elapsed().as_secs_f64());
    }
    println!(
        "    of which the audit record alone (append + fdatasync + HEAD): {}",
        ms(&audit)
    );
    // HTTP on loopback.
    let router = iob_server::router_with(
        iob_server::AppState {
            recommend: Some(rec.clone()),
            ..iob_server::AppState::engine_only(engine.clone())
        },
        &cfg.server,
    );
    let times = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(iob_server::serve(listener, router, async {
            let _ = rx.await;
        }));
        let client = crate::http_client::Client::new(&format!("http://{addr}"));
        let auth = format!("Bearer {admin}");
        let mut times = Vec::new();
        for k in 0..a.decides {
            let id = format!("u{}", (k * 7919) % persons);
            let t = Instant::now();
            let r = client
                .get_with(&format!("/v1/decide?person={id}&n=20"), Some(&auth))
                .await?;
            times.push(t.elapsed().as_secs_f64());
            anyhow::ensure!(
                r.status == 200,
                "decide answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        // The same connection's floor: a route that does no work.
        let mut floor = Vec::new();
        for _ in 0..a.decides.min(500) {
            let t = Instant::now();
            client.get_with("/health", None).await?;
            floor.push(t.elapsed().as_secs_f64());
        }
        println!("  GET /health on the same connection: {}", ms(&floor));
        let mut profile = Vec::new();
        for k in 0..a.decides.min(500) {
            let id = format!("u{}", (k * 13) % persons);
            let t = Instant::now();
            let r = client
                .get_with(
                    &format!("/v1/persons/{id}?purpose=personalization"),
                    Some(&auth),
                )
                .await?;
            profile.push(t.elapsed().as_secs_f64());
            anyhow::ensure!(r.status == 200, "profile answered {}", r.status);
        }
        println!(
            "  GET /v1/persons/ID (an audited profile read) on the same connection: {}",
            ms(&profile)
        );
        let _ = tx.send(());
        let _ = server.await;
        anyhow::Ok(times)
    })?;
    println!(
        "  over HTTP (loopback, one connection, read:personal/admin key): top-20 {}",
        ms(&times)
    );
    drop(rec);
    drop(rt);
    Arc::try_unwrap(engine)
        .map_err(|_| anyhow::anyhow!("engine still in use"))?
        .close()
        .context("closing the bench engine")?;
    Ok(())
}
