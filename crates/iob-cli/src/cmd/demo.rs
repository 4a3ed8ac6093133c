//! `iob demo`: a simulated multi-channel population ingested end to end over HTTP.
//!
//! Starts the real server on a loopback port, posts each source's events the way SDKs do
//! (gzip batches with the source's write key), resends one batch to show deduplication, sends a
//! few bad events to show the quarantine, then prints what the store holds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use iob_engine::simulate::{self, Population};
use iob_engine::{Actor, Config, Engine, SourceConfig};
use iob_types::{Clock, Purpose, SystemClock, Timestamp};
use serde_json::json;

use crate::http_client::{Client, basic, gzip};
use crate::settings::Global;

#[derive(clap::Args)]
pub struct Args {
    /// How many people to simulate.
    #[arg(long, default_value_t = 400)]
    pub persons: usize,
    /// Days of history.
    #[arg(long, default_value_t = 60)]
    pub days: i64,
    /// Random seed (same seed, same population).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let mut cfg: Config = global.load()?;
    let dir: PathBuf = global
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("iob-demo-data"));
    // Start fresh, but only ever delete a directory an earlier demo made.
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        anyhow::ensure!(
            dir.join("DEMO").exists(),
            "{} exists and was not made by `iob demo`; refusing to overwrite it (pass another --data-dir)",
            dir.display()
        );
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the previous demo in {}", dir.display()))?;
    }

    cfg.data_dir = Some(dir.clone());
    // No keys configured: the first start generates one write key per source, as for a user.
    cfg.sources = simulate::SOURCES
        .iter()
        .map(|s| SourceConfig {
            name: s.to_string(),
            write_key: None,
        })
        .collect();
    cfg.admin.key = None;
    // A tracking plan: orders must carry a numeric revenue.
    cfg.tracking_plan.events.insert(
        "Order Completed".into(),
        json!({"type": "object", "required": ["revenue"], "properties": {"revenue": {"type": "number", "minimum": 0}}}),
    );

    let (engine, fresh) =
        Engine::open(&cfg).with_context(|| format!("opening {}", dir.display()))?;
    std::fs::write(
        dir.join("DEMO"),
        "made by `iob demo`; deleted by the next run\n",
    )?;
    let keys: BTreeMap<String, String> = fresh.into_iter().map(|k| (k.id, k.secret)).collect();
    anyhow::ensure!(
        keys.len() == simulate::SOURCES.len() + 1,
        "expected fresh keys for a fresh demo directory"
    );
    let engine = Arc::new(engine);
    let now = engine.now();
    let population = Population {
        persons: args.persons,
        days: args.days,
        seed: args.seed,
        end: now,
    };
    let (sources, truths) = simulate::generate(&population);
    let total: usize = sources.iter().map(|s| s.events.len()).sum();
    println!(
        "iob demo — {} people over {} days across {} channels: {} events",
        args.persons,
        args.days,
        sources.len(),
        total
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let report = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = iob_server::router(engine.clone(), &cfg.server);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(iob_server::serve(listener, router, async {
            let _ = stop_rx.await;
        }));
        let client = Client::new(&format!("http://{addr}"));
        println!("collector listening on http://{addr} (loopback), posting gzip batches with each source's write key");
        let mut tasks = Vec::new();
        for s in &sources {
            let client = client.clone();
            let auth = basic(&keys[s.source]);
            let events = s.events.clone();
            let source = s.source;
            tasks.push(tokio::spawn(async move {
                let mut acc = (0usize, 0usize, 0usize);
                for chunk in events.chunks(250) {
                    // Like an SDK: stamp sentAt at send time (clock-skew correction uses it).
                    let body = serde_json::to_vec(&json!({"batch": chunk, "sentAt": SystemClock.now().to_rfc3339()}))?;
                    let r = client.post("/v1/batch", Some(&auth), true, gzip(&body)).await?;
                    anyhow::ensure!(r.status == 200, "{source}: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body));
                    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
                    acc.0 += v["accepted"].as_u64().unwrap_or(0) as usize;
                    acc.1 += v["duplicates"].as_u64().unwrap_or(0) as usize;
                    acc.2 += v["rejected"].as_array().map_or(0, |a| a.len());
                }
                anyhow::Ok((source, acc))
            }));
        }
        let mut per_source = Vec::new();
        for t in tasks {
            per_source.push(t.await??);
        }
        let ingest_secs = started.elapsed().as_secs_f64();
        // A retried batch (same messageIds): acknowledged, not stored twice.
        let web = &sources[0].events[..100.min(sources[0].events.len())];
        let retry = client
            .post("/v1/batch", Some(&basic(&keys["web"])), false, serde_json::to_vec(&json!({"batch": web}))?)
            .await?;
        // Bad input: a string revenue (tracking plan), a track without event name, broken JSON.
        let pos = basic(&keys["pos"]);
        let bad1 = client.post("/v1/track", Some(&pos), false, br#"{"userId":"user-00001","event":"Order Completed","properties":{"revenue":"12,50"}}"#.to_vec()).await?;
        let bad2 = client.post("/v1/track", Some(&pos), false, br#"{"userId":"user-00001","properties":{}}"#.to_vec()).await?;
        let bad3 = client.post("/v1/track", Some(&pos), false, br#"{"userId": "user-00001", "event": "#.to_vec()).await?;
        let unauth = client.post("/v1/track", Some(&basic("not-a-key")), false, br#"{"userId":"x","event":"y"}"#.to_vec()).await?;
        // Sources stream in parallel, so some wearables' heart-rate readings arrived before
        // their owner's consent (sent by the web source) was stored: the health gate
        // quarantined them. Replaying the quarantine now stores those that consent allows.
        let ops = engine.permit(Actor::Operator, &Purpose::operations())?;
        let held = engine.stats().quarantine_open;
        let replay = engine.replay_quarantine(&ops, None).await?;
        let _ = stop_tx.send(());
        server.await??;
        anyhow::Ok((per_source, ingest_secs, retry, [bad1, bad2, bad3], unauth, (held, replay)))
    })?;
    drop(rt);
    let (per_source, secs, retry, bad, unauth, (held, replay)) = report;

    println!(
        "\ningested over HTTP in {secs:.2}s ({:.0} events/s, every 200 sent after fsync)",
        total as f64 / secs
    );
    println!(
        "  {:<10} {:>9} {:>11} {:>9}",
        "source", "accepted", "duplicates", "rejected"
    );
    for (s, (a, d, r)) in &per_source {
        println!("  {s:<10} {a:>9} {d:>11} {r:>9}");
    }
    let retry_v: serde_json::Value = serde_json::from_slice(&retry.body).unwrap_or_default();
    println!(
        "\nretried a web batch of 100: HTTP {} accepted {} duplicates {} (exactly-once by messageId)",
        retry.status, retry_v["accepted"], retry_v["duplicates"]
    );
    println!(
        "health gate: {held} events in quarantine after ingest (heart-rate readings that raced their owner's consent, and the bad input below); replayed: {} stored, {} still held",
        replay.replayed,
        replay.still_rejected.len()
    );
    println!("bad input:");
    for r in bad.iter().chain(std::iter::once(&unauth)) {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        println!(
            "  HTTP {} {:<16} {}",
            r.status,
            v["code"].as_str().unwrap_or(""),
            v["detail"].as_str().unwrap_or("")
        );
    }

    let engine = Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still shared"))?;
    let permit = engine.permit(Actor::Operator, &Purpose::operations())?;
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut persons = std::collections::HashSet::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    engine.for_each_event(&permit, |r| {
        *by_type.entry(r.event.kind.to_string()).or_default() += 1;
        if let Some(n) = &r.event.event {
            *by_name.entry(n.clone()).or_default() += 1;
        }
        persons.insert(r.person);
        first = first.min(r.event.timestamp.millis());
        last = last.max(r.event.timestamp.millis());
        Ok(())
    })?;
    let s = engine.stats();
    println!(
        "\nstored: {} events, {} bytes of log in {} segment(s), {} partitions",
        s.events,
        s.log_bytes,
        s.segments,
        s.partition_offsets.len()
    );
    println!(
        "  by type:  {}",
        by_type
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  by event: {}",
        by_name
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  person keys (pseudonymous, before identity resolution): {}",
        persons.len()
    );
    println!("  event time: {} .. {}", Timestamp(first), Timestamp(last));
    println!("quarantine: {} open", s.quarantine_open);
    for e in engine.quarantine_list(&permit, false, 10)? {
        let r = &e.reason["rejection"];
        println!(
            "  #{} {} `{}` {}",
            e.id,
            r["code"].as_str().unwrap_or(""),
            r["field"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        );
    }
    // Unify: the person keys above collapse into persons; show one of them.
    let u = engine.unify_stats();
    println!(
        "\nunified: {} persons from {} identifiers ({} person keys before identity resolution)",
        u["persons"],
        u["identifiers"],
        persons.len()
    );
    let personal = engine.permit(Actor::Operator, &Purpose::new("personalization")?)?;
    let at = Some(Timestamp(last));
    if let Some(p) = engine.profile(&personal, "user-00001", at)? {
        let v = serde_json::to_value(&p)?;
        let obj = |k: &str| {
            v[k].as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        println!(
            "  profile of user-00001 (iob profile user-00001 --at {}):",
            Timestamp(last)
        );
        println!(
            "    events {}   first {}   last {}",
            v["events"],
            Timestamp(p.first_seen),
            Timestamp(p.last_seen)
        );
        println!(
            "    channels: {}   devices: {}",
            obj("channels"),
            obj("devices")
        );
        println!(
            "    rfm: {} orders, monetary {}, last purchase {} days ago",
            p.rfm.frequency,
            p.rfm.monetary,
            p.rfm.recency_days.map_or("-".into(), |d| format!("{d:.1}"))
        );
        for (ch, st) in &p.sessions {
            println!(
                "    sessions on {ch}: {} ({:.0} min on average)",
                st.sessions, st.avg_minutes
            );
        }
        let items: Vec<String> = p
            .top_items
            .iter()
            .take(3)
            .map(|(i, s)| format!("{i} ({s:.2})"))
            .collect();
        println!("    top items: {}", items.join(", "));
        for (m, st) in &p.metrics {
            println!(
                "    {m}: mean {:.1} std {:.1} min {} max {} last {}",
                st.mean, st.std, st.min, st.max, st.last
            );
        }
    }
    if let Some(ex) = engine.explain_identity(&permit, "user-00001")? {
        let kinds: Vec<String> = ex
            .explanation
            .identifiers
            .iter()
            .map(|i| i.kind.clone())
            .collect();
        println!(
            "    identifiers: {} (iob identity explain user-00001)",
            kinds.join(", ")
        );
    }
    println!(
        "\nplanted truths for the next stages: {} churners, {} fraud victims, {} health deviations, {} bargain hunters",
        truths.churners.len(),
        truths.fraud_victims.len(),
        truths.health_deviations.len(),
        truths.bargain_hunters.len()
    );
    let engine = demo_analytics(Arc::new(engine), &cfg)?;
    let engine = recommend_once(engine, &cfg)?;
    engine.close()?;
    println!(
        "\nexplore: iob events tail -n 5 --data-dir {0}   |   iob quarantine list --data-dir {0}   |   iob timeline user-00001 --data-dir {0}",
        dir.display()
    );
    Ok(())
}

/// Trains the recommendation models on the demo's consenting persons and prints one decide
/// answer (what `GET /v1/decide?person=user-00001` would say).
fn recommend_once(engine: Engine, cfg: &Config) -> anyhow::Result<Engine> {
    let engine = Arc::new(engine);
    let started = Instant::now();
    let rec = iob_recommend::Recommender::open(engine.clone(), cfg)?;
    let trained = started.elapsed().as_secs_f64();
    let models = rec.models();
    let persons = models.als.as_ref().map_or(0, |a| a.persons.len());
    println!(
        "\nrecommendations: trained on {persons} persons who consent to personalization, {} items, in {trained:.2} s (iob train)",
        models.n_items()
    );
    let permit = engine.permit(Actor::Operator, &Purpose::new("personalization")?)?;
    for id in ["user-00001", "user-00002", "user-00003"] {
        let d = rec.decide(&permit, id, None, Some(3))?;
        let why = d
            .fallback
            .as_ref()
            .map(|f| format!(" (not personalized: {})", f.code()))
            .unwrap_or_default();
        println!("  iob recommend {id} -n 3: model {}{why}", d.model);
        for item in &d.items {
            println!(
                "    {:<12} {:>7.3}  {}",
                item.item, item.score, item.explanation
            );
        }
        if d.personalized {
            break;
        }
    }
    drop(rec);
    Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still shared"))
}

/// The analytics stage: compaction into Parquet, a SQL query and a funnel, under `analytics`.
fn demo_analytics(engine: Arc<Engine>, cfg: &iob_engine::Config) -> anyhow::Result<Engine> {
    let analytics = iob_query::Analytics::open(engine.clone(), &cfg.analytics, false)?;
    let r = analytics.compact()?;
    let info = analytics.columnar().info();
    println!(
        "\nanalytics: compacted {} events into {} Parquet file(s) over {} day(s) in {:.2} s ({} health readings kept out)",
        r.rows, info.files, info.days, r.seconds, r.health_skipped
    );
    let permit = engine.permit(Actor::Operator, &Purpose::analytics())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sql = "SELECT source, count(*) AS events, count(DISTINCT person) AS persons FROM events GROUP BY source ORDER BY events DESC";
    let q = rt.block_on(analytics.sql(&permit, sql))?;
    println!("  iob query \"{sql}\"");
    let table = iob_query::render(&q.schema, &q.batches, iob_query::Format::Table)?;
    for line in String::from_utf8_lossy(&table).lines() {
        println!("    {line}");
    }
    drop(rt);
    let funnel = iob_query::parse_analysis(
        "funnel",
        br#"{"steps":[{"event":"Product Viewed"},{"event":"Product Added"},{"event":"Order Completed"}],"window_ms":604800000}"#,
    )?;
    let v = analytics.analyze(&permit, &funnel, &iob_query::Disclosure::k(5))?;
    let steps: Vec<String> = v["groups"][0]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} {}", s["event"].as_str().unwrap_or("?"), s["persons"]))
        .collect();
    println!(
        "  funnel (7-day window, groups under 5 persons suppressed): {}",
        steps.join(" -> ")
    );
    drop(analytics);
    Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("engine still shared"))
}
