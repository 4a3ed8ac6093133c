//! messageId dedup: within a batch, across batches, across threads, across reopen (snapshot
//! and log-tail replay), and expiry.

use std::sync::Arc;

use iob_store::{AppendOutcome, StoreOptions};
use iob_types::Timestamp;

use crate::util::*;

fn stored(o: &AppendOutcome) -> bool {
    matches!(o, AppendOutcome::Stored(_))
}

#[test]
fn duplicates_in_batch_and_across_batches() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path(), &opts(4, 4096));
    let outs = store
        .append(vec![rec(1, 1, T0, 0), rec(1, 2, T0, 0), rec(2, 1, T0, 0)])
        .unwrap();
    assert!(
        stored(&outs[0]) && outs[1] == AppendOutcome::Duplicate && stored(&outs[2]),
        "{outs:?}"
    );
    let outs = store
        .append(vec![rec(2, 3, T0, 0), rec(3, 3, T0, 0)])
        .unwrap();
    assert_eq!(outs[0], AppendOutcome::Duplicate);
    assert!(stored(&outs[1]));
    // No key: never a duplicate.
    let mut a = rec(9, 1, T0, 0);
    a.dedup_key = None;
    let outs = store.append(vec![a.clone(), a]).unwrap();
    assert!(outs.iter().all(stored));
    assert_eq!(store.stats().events, 5);
}

#[test]
fn duplicates_across_reopen_from_snapshot_and_from_log_tail() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(4, 1024);
    let store = open(d.path(), &o);
    store
        .append((0..20).map(|k| rec(k, k, T0, 10)).collect())
        .unwrap();
    store.close().unwrap(); // snapshot holds 0..20
    let store = open(d.path(), &o);
    store
        .append((20..40).map(|k| rec(k, k, T0, 10)).collect())
        .unwrap();
    store.crash_for_test(); // 20..40 only in the log tail
    let store = open(d.path(), &o);
    assert_eq!(store.recovery_report().scanned_records, 20);
    let outs = store
        .append((0..45).map(|k| rec(k, k, T0, 10)).collect())
        .unwrap();
    for (k, o) in outs.iter().enumerate() {
        assert_eq!(stored(o), k >= 40, "key {k}");
    }
    // Lost dedup snapshot: rebuilt from the whole log.
    store.crash_for_test();
    std::fs::remove_file(d.path().join("dedup.snap")).unwrap();
    let store = open(d.path(), &o);
    assert!(store.recovery_report().full_rebuild.is_some());
    let outs = store
        .append((0..46).map(|k| rec(k, k, T0, 10)).collect())
        .unwrap();
    for (k, o) in outs.iter().enumerate() {
        assert_eq!(stored(o), k >= 45, "key {k}");
    }
}

#[test]
fn expired_keys_are_stored_again() {
    let d = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        dedup_window_ms: 1_000,
        ..opts(2, 4096)
    };
    let store = open(d.path(), &o);
    let at = |ms: i64| {
        let mut r = rec(7, 1, T0, 0);
        r.received_at = Timestamp(T0 + ms);
        r
    };
    assert!(stored(&store.append(vec![at(0)]).unwrap()[0]));
    assert_eq!(
        store.append(vec![at(999)]).unwrap()[0],
        AppendOutcome::Duplicate
    );
    assert!(stored(&store.append(vec![at(1_000)]).unwrap()[0]));
    assert_eq!(
        store.append(vec![at(1_500)]).unwrap()[0],
        AppendOutcome::Duplicate
    );
    // Pruning at checkpoint drops what can no longer match.
    let mut other = rec(8, 1, T0, 0);
    other.received_at = Timestamp(T0 + 10_000);
    store.append(vec![other]).unwrap();
    store.checkpoint().unwrap();
    assert_eq!(store.stats().dedup_entries, 1);
    store.close().unwrap();
    let store = open(d.path(), &o);
    assert!(stored(&store.append(vec![at(10_000)]).unwrap()[0]));
}

#[test]
fn concurrent_duplicates_are_stored_once() {
    let d = tempfile::tempdir().unwrap();
    let store = Arc::new(open(d.path(), &opts(4, 1 << 20)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut n = 0;
                for b in 0..25u64 {
                    let outs = s
                        .append((0..4).map(|j| rec(b * 4 + j, j, T0, 5)).collect())
                        .unwrap();
                    n += outs.iter().filter(|o| stored(o)).count();
                }
                n
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 100);
    assert_eq!(store.stats().events, 100);
}
