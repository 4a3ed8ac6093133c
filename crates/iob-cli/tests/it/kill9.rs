//! Crash safety, tested by killing: clients post batches while the server is SIGKILLed at
//! random moments and restarted. Every acknowledged messageId must be stored exactly once, and
//! batches whose answer was lost are retried (as SDKs do) without creating duplicates.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// Batches (id, messageIds) waiting to be (re)sent, shared by the client threads.
type WorkQueue = Arc<Mutex<Vec<(usize, Vec<String>)>>>;

#[test]
fn kill_dash_nine_during_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[store]\ncheckpoint_secs = 1\nsegment_mb = 1\n");
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let sent: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut next_batch = 0usize;
    // Batches that were sent but not acknowledged: retried after the restart.
    let mut pending: HashMap<usize, Vec<String>> = HashMap::new();
    for round in 0..6 {
        let server = Server::start(&cfg);
        let addr = server.addr.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let work: WorkQueue = Arc::new(Mutex::new(pending.drain().collect()));
        let mut handles = Vec::new();
        for _ in 0..4 {
            let (addr, stop, acked, sent, work) = (
                addr.clone(),
                stop.clone(),
                acked.clone(),
                sent.clone(),
                work.clone(),
            );
            let base = next_batch;
            next_batch += 10_000;
            handles.push(std::thread::spawn(move || {
                let mut unacked = Vec::new();
                let mut n = base;
                while !stop.load(Ordering::Relaxed) {
                    let (id, ids) = work.lock().unwrap().pop().unwrap_or_else(|| {
                        n += 1;
                        (n, (0..50).map(|i| format!("k{n}-{i}")).collect())
                    });
                    sent.lock().unwrap().extend(ids.iter().cloned());
                    let body = json!({"batch": ids.iter().map(|m| track(m, &format!("u{}", id % 13))).collect::<Vec<_>>()});
                    let r = std::panic::catch_unwind(|| request(&addr, "POST", "/v1/batch", Some(&basic(WRITE_KEY)), &[], body.to_string().as_bytes()));
                    match r {
                        Ok(resp) if resp.status == 200 => acked.lock().unwrap().extend(ids.iter().cloned()),
                        _ => {
                            unacked.push((id, ids));
                            break;
                        }
                    }
                }
                unacked
            }));
        }
        std::thread::sleep(Duration::from_millis(300 + rand() % 900));
        let mut server = server;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            pending.extend(h.join().unwrap());
        }
        pending.extend(work.lock().unwrap().drain(..));
        eprintln!(
            "round {round}: acked so far {}",
            acked.lock().unwrap().len()
        );
    }
    // Final round: retry what never got an answer, cleanly.
    let server = Server::start(&cfg);
    for (id, ids) in pending.drain() {
        let body = json!({"batch": ids.iter().map(|m| track(m, &format!("u{}", id % 13))).collect::<Vec<_>>()});
        let r = server.post("/v1/batch", Some(WRITE_KEY), body.to_string().as_bytes());
        assert_eq!(r.status, 200);
        acked.lock().unwrap().extend(ids);
    }
    server.stop();

    let stored = exported_message_ids(&cfg);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &stored {
        *counts.entry(m).or_default() += 1;
    }
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 1000,
        "the test must acknowledge real load, got {}",
        acked.len()
    );
    for m in acked.iter() {
        assert_eq!(
            counts.get(m.as_str()).copied(),
            Some(1),
            "acknowledged {m} must be stored exactly once"
        );
    }
    let sent = sent.lock().unwrap();
    for m in counts.keys() {
        assert!(sent.contains(*m), "stored {m} was never sent");
    }
    assert!(
        counts.values().all(|&c| c == 1),
        "no messageId stored twice"
    );
}

/// Audited reads under SIGKILL: four clients read profiles (each read's audit record is
/// group-committed before the answer) while the server is killed and restarted. Afterwards the
/// chain verifies, and every acknowledged read has its record: at least as many records as
/// acknowledged reads, at most one more per client per kill (a record committed whose answer
/// the kill cut off).
#[test]
fn kill_dash_nine_during_audited_reads_keeps_a_record_of_every_answered_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let admin = format!("Bearer {ADMIN_KEY}");
    let users: Vec<String> = (0..8).map(|i| format!("reader-subject-{i}")).collect();
    {
        let s = Server::start(&cfg);
        let mut events = Vec::new();
        for u in &users {
            events.push(json!({"type":"identify","userId":u,"traits":{"plan":"pro"}}));
            events.push(json!({"type":"consent","userId":u,"granted":["personalization"]}));
        }
        let r = s.post(
            "/v1/batch",
            Some(WRITE_KEY),
            json!({ "batch": events }).to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        s.stop();
    }
    let mut answered = 0usize;
    let rounds = 4;
    let clients = 4;
    for round in 0..rounds {
        let server = Server::start(&cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (addr, stop, admin, users) = (
                    server.addr.clone(),
                    stop.clone(),
                    admin.clone(),
                    users.clone(),
                );
                std::thread::spawn(move || {
                    let mut ok = 0usize;
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let path = format!(
                            "/v1/persons/{}?purpose=personalization",
                            users[i % users.len()]
                        );
                        i += 1;
                        let r = std::panic::catch_unwind(|| {
                            request(&addr, "GET", &path, Some(&admin), &[], b"")
                        });
                        match r {
                            Ok(resp) if resp.status == 200 => ok += 1,
                            Ok(resp) => panic!("read refused: {}", resp.status),
                            Err(_) => break,
                        }
                    }
                    ok
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400 + 200 * round as u64));
        let mut server = server;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        answered += handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>();
    }
    assert!(answered > 0);
    let (ok, out, err) = run(&cfg, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&cfg, &["audit", "list", "--limit", "1000000"]);
    assert!(ok, "{err}");
    let reads = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == "profile.read")
        .count();
    assert!(
        reads >= answered && reads <= answered + rounds * clients,
        "{reads} records for {answered} answered reads"
    );
    eprintln!("{answered} answered audited reads over {rounds} kills, {reads} records");
}
