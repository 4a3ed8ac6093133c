//! Micro-benchmark of the analysis kernels on a generated in-memory source, and of the journey
//! generator's JSON output.
//!
//! ```text
//! cargo run --release -p iob-analyses --example kernels -- [PERSONS] [RUNS]
//! ```
//! PERSONS defaults to 885,000 (about 10 M events). Prints one line per kernel: rows scanned per
//! second (median of RUNS, default 3). The source holds dictionary-encoded strings and the
//! `properties` JSON, as compaction would write them.

use std::time::Instant;

use iob_analyses::generator::{JourneyConfig, journey_source, journeys};
use iob_analyses::paths::Direction;
use iob_analyses::{
    Disclosure, EventSource, Filter, FilterOp, FunnelMode, MemorySource, PathsRequest, questions,
};
use serde_json::json;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

fn bench(name: &str, rows: usize, runs: usize, mut f: impl FnMut()) {
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let s = median(times);
    println!(
        "{name:<34} {:>8.3} s  {:>7.1} M rows/s",
        s,
        rows as f64 / s / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let persons: u64 = args
        .first()
        .map_or(885_000, |a| a.parse().expect("PERSONS"));
    let runs: usize = args.get(1).map_or(3, |a| a.parse().expect("RUNS"));
    let cfg = JourneyConfig::new(11, persons, 90);

    let t = Instant::now();
    let (mut events, mut bytes) = (0u64, 0u64);
    journeys(&cfg, |line| {
        events += 1;
        bytes += line.len() as u64;
    });
    let s = t.elapsed().as_secs_f64();
    println!(
        "generator (JSON lines)             {s:>8.3} s  {:>7.1} M events/s ({} events, {:.0} MB)",
        events as f64 / s / 1e6,
        events,
        bytes as f64 / 1e6
    );

    let t = Instant::now();
    let source: MemorySource = journey_source(&cfg, true, 64 * 1024);
    let rows = source.rows();
    println!(
        "in-memory source built             {:>8.3} s  ({rows} rows)",
        t.elapsed().as_secs_f64()
    );

    let none = Disclosure::none();
    let run = |q: &str| {
        let a = questions::answer(&source as &dyn EventSource, q).unwrap();
        std::hint::black_box(a);
    };
    bench("funnel 3 steps ordered 7d", rows, runs, || run("funnel"));
    bench("retention weekly 8 first-time", rows, runs, || {
        run("retention")
    });
    bench("trends daily Product Viewed", rows, runs, || run("trends"));

    let mut strict = questions::funnel_request();
    strict.mode = FunnelMode::Strict;
    bench("funnel strict (reads every row)", rows, runs, || {
        std::hint::black_box(iob_analyses::funnel(&source, &strict, &none).unwrap());
    });
    let mut any = questions::funnel_request();
    any.mode = FunnelMode::Any;
    bench("funnel any order", rows, runs, || {
        std::hint::black_box(iob_analyses::funnel(&source, &any, &none).unwrap());
    });
    let mut bd = questions::funnel_request();
    bd.breakdown = Some("campaign_source".into());
    bench("funnel + breakdown campaign_source", rows, runs, || {
        std::hint::black_box(iob_analyses::funnel(&source, &bd, &none).unwrap());
    });
    let mut filtered = questions::funnel_request();
    filtered.steps[0].filters = vec![Filter::new(
        "properties.price",
        FilterOp::Gt,
        Some(json!(50)),
    )];
    bench("funnel + JSON filter on step 1", rows, runs, || {
        std::hint::black_box(iob_analyses::funnel(&source, &filtered, &none).unwrap());
    });
    let mut all_trends = questions::trends_request();
    all_trends.events = vec![Default::default()];
    all_trends.breakdown = Some("device_type".into());
    bench("trends all events + breakdown", rows, runs, || {
        std::hint::black_box(iob_analyses::trends(&source, &all_trends, &none).unwrap());
    });
    let paths_req: PathsRequest = serde_json::from_value(json!({
        "anchor": {"event": "Product Added"}, "depth": 3, "direction": Direction::Both,
    }))
    .unwrap();
    bench("paths around Product Added depth 3", rows, runs, || {
        std::hint::black_box(iob_analyses::paths(&source, &paths_req, &none).unwrap());
    });
}
