//! The cost of the audit record on a person read: `cargo bench -p iob-engine --bench audit`.
//! Times `Engine::profile` under an operator permit (audited: one record appended and
//! fsynced, `HEAD` replaced) against the same read under a system permit (not audited), and
//! one `AuditLog::record` alone. Prints the median and p99 per read. `IOB_BENCH_READS` sets the
//! number of reads per mode (default 2000); the data directory is a temp dir (set `TMPDIR` to
//! choose the disk).

use std::sync::Arc;
use std::time::Instant;

use iob_engine::{Actor, Config, Endpoint, Engine, SourceConfig, Submission};
use iob_govern::audit::AuditOptions;
use iob_govern::{Access, AuditEntry, AuditLog, Governor, Permit};
use iob_types::{PersonKey, Purpose, SystemClock, Timestamp};

const KEY: &str = "bench-write-key-000001";

fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(f64::total_cmp);
    (us[us.len() / 2], us[us.len() * 99 / 100])
}

fn time_reads(e: &Engine, permit: &Permit, n: usize) -> (f64, f64) {
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let p = e
            .profile(permit, &format!("user-{}", i % 100), None)
            .unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(p.is_some());
    }
    percentiles(us)
}

fn main() {
    let n: usize = std::env::var("IOB_BENCH_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: Some(dir.path().to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(KEY.into()),
        }],
        ..Config::default()
    };
    let (e, _) = Engine::open_with_clock(&cfg, Arc::new(SystemClock)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let batch: Vec<serde_json::Value> = (0..2000)
        .map(|i| {
            serde_json::json!({"type":"track","userId":format!("user-{}", i % 100),"event":"Product Viewed",
                "properties":{"product_id":format!("sku-{}", i % 50),"category":"shoes","price":19.9}})
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "batch": batch })).unwrap();
    rt.block_on(e.submit(Submission {
        endpoint: Endpoint::Batch,
        body: &body,
        key: Some(KEY),
        ip: None,
    }))
    .unwrap();
    e.update_profiles().unwrap();

    let audited = e
        .permit(Actor::Operator, &Purpose::new("analytics").unwrap())
        .unwrap();
    let unaudited = Governor::default().system("bench");
    // Warm up both paths, then interleave the modes in rounds so drift hits both alike.
    time_reads(&e, &unaudited, 100);
    time_reads(&e, &audited, 100);
    let (mut a, mut u) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        u.push(time_reads(&e, &unaudited, n / 4));
        a.push(time_reads(&e, &audited, n / 4));
    }
    let med = |v: &[(f64, f64)]| percentiles(v.iter().map(|x| x.0).collect()).0;
    let p99 = |v: &[(f64, f64)]| v.iter().map(|x| x.1).fold(0.0, f64::max);
    println!(
        "profile read, not audited (system permit): median {:.1} us, p99 {:.1} us",
        med(&u),
        p99(&u)
    );
    println!(
        "profile read, audited (operator permit):   median {:.1} us, p99 {:.1} us",
        med(&a),
        p99(&a)
    );
    e.close().unwrap();

    let d2 = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d2.path(), AuditOptions::default()).unwrap();
    let permit = Governor::default()
        .permit(Actor::Operator, &Purpose::analytics())
        .unwrap();
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let entry = AuditEntry::person(Access::ProfileRead, PersonKey([i as u8; 16]), 1);
        let t = Instant::now();
        log.record(&permit, Timestamp(i as i64), entry).unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (m, p) = percentiles(us);
    println!(
        "audit record alone, one caller (append + fdatasync, HEAD overwritten + fdatasync): median {m:.1} us, p99 {p:.1} us"
    );

    // Concurrent readers: their records are group-committed.
    let log = Arc::new(log);
    for threads in [4usize, 16] {
        let (records0, commits0) = (log.head().0, log.commits());
        let started = Instant::now();
        let per = n / threads;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (log, permit) = (log.clone(), permit.clone());
                std::thread::spawn(move || {
                    let mut us = Vec::with_capacity(per);
                    for i in 0..per {
                        let entry =
                            AuditEntry::person(Access::Decide, PersonKey([(t + i) as u8; 16]), 1);
                        let t0 = Instant::now();
                        log.record(&permit, Timestamp(i as i64), entry).unwrap();
                        us.push(t0.elapsed().as_secs_f64() * 1e6);
                    }
                    us
                })
            })
            .collect();
        let us: Vec<f64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let secs = started.elapsed().as_secs_f64();
        let (records, commits) = (log.head().0 - records0, log.commits() - commits0);
        let (m, p) = percentiles(us);
        println!(
            "audit records, {threads} concurrent callers: {:.0} records/s, median {m:.1} us, p99 {p:.1} us per call, {:.1} records per group commit",
            (per * threads) as f64 / secs,
            records as f64 / commits.max(1) as f64
        );
    }
}
