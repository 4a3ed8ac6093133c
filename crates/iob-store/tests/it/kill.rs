//! A real `kill -9` test: this test re-executes its own binary as a child that appends in a
//! loop and prints every acknowledged key; the parent SIGKILLs it at random moments, then
//! checks that every acknowledged key is in the store exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::util::*;

const CHILD_DIR: &str = "IOB_STORE_KILL_CHILD_DIR";
const CHILD_START: &str = "IOB_STORE_KILL_CHILD_START";

fn child(dir: &str, start: u64) {
    let o = opts(4, 64 * 1024);
    let t = Instant::now();
    let store = loop {
        match iob_store::Store::open(std::path::Path::new(dir), o.clone()) {
            Ok(s) => break s,
            Err(iob_store::StoreError::Locked { .. }) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nready").unwrap();
    out.flush().unwrap();
    let mut k = start;
    loop {
        // Each batch re-sends the previous batch's last key: it must come back Duplicate.
        let mut batch: Vec<_> = (k..k + 16).map(|i| rec(i, i, T0, 200)).collect();
        if k > start {
            batch.push(rec(k - 1, k - 1, T0, 200));
        }
        let outs = store.append(batch).unwrap();
        if k > start {
            assert_eq!(outs[16], iob_store::AppendOutcome::Duplicate);
        }
        for i in k..k + 16 {
            writeln!(out, "{i}").unwrap();
        }
        out.flush().unwrap();
        k += 16;
    }
}

#[test]
fn kill9_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start = std::env::var(CHILD_START).unwrap().parse().unwrap();
        child(&dir, start);
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    for round in 0..5u64 {
        let mut c = Command::new(&exe)
            .args([
                "kill::kill9_loses_nothing_acknowledged",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, d.path())
            .env(CHILD_START, (round * 10_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let a = Arc::clone(&acked);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.ends_with("ready") {
                    let _ = ready_tx.send(());
                } else if let Ok(k) = line.trim().parse::<u64>() {
                    a.lock().unwrap().push(k);
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child started");
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        reader.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "only {} keys acknowledged", acked.len());
    let store = open(d.path(), &opts(4, 64 * 1024));
    let all = store.read_log(&permit(), 0, usize::MAX).unwrap();
    let mut count: HashMap<u64, usize> = HashMap::new();
    for r in &all {
        *count.entry(key_of(&r.payload)).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 1), "a key stored twice");
    for k in &acked {
        assert_eq!(count.get(k), Some(&1), "acknowledged key {k} lost");
    }
    // Every acknowledged key is still a duplicate.
    let outs = store
        .append(acked.iter().take(50).map(|&k| rec(k, k, T0, 1)).collect())
        .unwrap();
    assert!(
        outs.iter()
            .all(|o| *o == iob_store::AppendOutcome::Duplicate)
    );
    eprintln!(
        "kill test: {} acknowledged, {} stored, report {:?}",
        acked.len(),
        all.len(),
        store.recovery_report()
    );
}
