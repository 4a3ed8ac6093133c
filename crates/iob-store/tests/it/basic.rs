//! Append and read by partition offset, by log seq and by time range; segment rolls; reopen;
//! concurrency; write failure.

use std::collections::HashSet;
use std::sync::Arc;

use iob_store::{AppendOutcome, Codec, StoreError, StoredRecord};
use iob_types::{Partition, Timestamp};

use crate::util::*;

fn check_all_reads(store: &iob_store::Store, expected: &[StoredRecord]) {
    let pm = permit();
    // By log seq, in chunks.
    let mut got = Vec::new();
    loop {
        let chunk = store.read_log(&pm, got.len() as u64, 7).unwrap();
        if chunk.is_empty() {
            break;
        }
        got.extend(chunk);
    }
    assert_eq!(got, expected);
    // From the middle.
    if expected.len() > 10 {
        assert_eq!(store.read_log(&pm, 10, 3).unwrap(), expected[10..13]);
    }
    // By partition.
    for p in 0..store.partitions() {
        let want: Vec<_> = expected
            .iter()
            .filter(|r| r.pos.partition.0 == p)
            .cloned()
            .collect();
        let mut got = Vec::new();
        loop {
            let chunk = store
                .read_partition(&pm, Partition(p), got.len() as u64, 5)
                .unwrap();
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk);
        }
        assert_eq!(got, want, "partition {p}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.pos.offset, i as u64);
        }
    }
    // By time range (event times are out of order).
    for (from, to) in [
        (0, i64::MAX),
        (T0 - 5_000, T0 + 5_000),
        (T0 + 100, T0 + 101),
        (1, 2),
    ] {
        let got: Vec<_> = store
            .scan_time(&pm, Timestamp(from), Timestamp(to))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<_> = expected
            .iter()
            .filter(|r| r.event_time.0 >= from && r.event_time.0 < to)
            .cloned()
            .collect();
        assert_eq!(got, want, "range {from}..{to}");
    }
}

fn write_some(store: &iob_store::Store, first: u64, n: u64) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    for b in 0..n / 10 {
        let batch: Vec<_> = (0..10)
            .map(|j| {
                let k = first + b * 10 + j;
                // Late and out-of-order event times.
                let et = T0 + ((k * 7919) % 10_000) as i64 - 5_000;
                rec(k, k % 13, et, (k % 50) as usize)
            })
            .collect();
        let outs = store.append(batch.clone()).unwrap();
        for (r, o) in batch.into_iter().zip(outs) {
            let AppendOutcome::Stored(pos) = o else {
                panic!("{o:?}")
            };
            assert_eq!(pos.partition, r.person.partition(store.partitions()));
            out.push(StoredRecord {
                pos,
                person: r.person,
                kind: r.kind,
                event_time: r.event_time,
                received_at: r.received_at,
                codec: r.codec,
                payload: r.payload,
            });
        }
    }
    out
}

/// Direct I/O pads the active segment to a block boundary; a crash leaves that padding, and
/// recovery must take it for what it is (no torn tail, nothing lost), with or without direct I/O.
#[test]
fn direct_io_padding_is_not_a_torn_tail() {
    for direct_io in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let o = iob_store::StoreOptions {
            direct_io,
            ..opts(4, 1 << 20)
        };
        let store = open(d.path(), &o);
        let expected = write_some(&store, 0, 30);
        let logical = store.stats().log_bytes;
        store.crash_for_test();
        let seg = d.path().join("log/00000000000000000000.seg");
        let on_disk = std::fs::metadata(&seg).unwrap().len();
        if direct_io {
            // Either padded (direct I/O available) or exact (fell back to buffered).
            assert!(
                on_disk == logical || on_disk.is_multiple_of(4096),
                "{on_disk} vs {logical}"
            );
        } else {
            assert_eq!(on_disk, logical);
        }
        let store = open(d.path(), &o);
        assert_eq!(
            store.recovery_report().torn_tail,
            None,
            "direct_io {direct_io}"
        );
        check_all_reads(&store, &expected);
        let more = write_some(&store, 30, 10);
        assert_eq!(more[0].pos.seq, 30);
        store.close().unwrap();
        // A clean close cuts the padding.
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            open(d.path(), &o).stats().log_bytes
        );
    }
}

#[test]
fn append_read_roll_reopen() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(4, 1024);
    let store = open(d.path(), &o);
    let mut expected = write_some(&store, 0, 200);
    for (i, r) in expected.iter().enumerate() {
        assert_eq!(r.pos.seq, i as u64);
    }
    let stats = store.stats();
    assert!(stats.segments > 5, "{stats:?}");
    assert_eq!(stats.events, 200);
    assert_eq!(stats.partition_offsets.iter().sum::<u64>(), 200);
    assert_eq!(stats.dedup_entries, 200);
    check_all_reads(&store, &expected);
    store.close().unwrap();

    let store = open(d.path(), &o);
    assert_eq!(store.recovery_report().full_rebuild, None);
    assert_eq!(store.recovery_report().scanned_records, 0);
    assert_eq!(store.stats(), stats);
    check_all_reads(&store, &expected);
    expected.extend(write_some(&store, 200, 50));
    check_all_reads(&store, &expected);
    drop(store); // Drop checkpoints too.
    let store = open(d.path(), &o);
    assert_eq!(store.recovery_report().scanned_records, 0);
    check_all_reads(&store, &expected);
}

#[test]
fn concurrent_appends_get_unique_seqs_and_dense_offsets() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(8, 64 * 1024);
    let store = Arc::new(open(d.path(), &o));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let s = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut outs = Vec::new();
                for b in 0..40u64 {
                    let batch: Vec<_> = (0..5u64)
                        .map(|j| {
                            let k = t * 1000 + b * 5 + j;
                            rec(k, k, T0, 20)
                        })
                        .collect();
                    if b.is_multiple_of(2) {
                        outs.extend(s.append(batch).unwrap());
                    } else {
                        let (tx, rx) = crossbeam_channel::bounded(1);
                        s.append_with(batch, Box::new(move |r| tx.send(r).unwrap()));
                        outs.extend(rx.recv().unwrap().unwrap());
                    }
                }
                outs
            })
        })
        .collect();
    let mut seqs = HashSet::new();
    let mut per_part: Vec<Vec<u64>> = vec![Vec::new(); 8];
    for t in threads {
        for o in t.join().unwrap() {
            let AppendOutcome::Stored(p) = o else {
                panic!()
            };
            assert!(seqs.insert(p.seq));
            per_part[p.partition.0 as usize].push(p.offset);
        }
    }
    assert_eq!(seqs.len(), 1600);
    assert_eq!(*seqs.iter().max().unwrap(), 1599);
    for (p, mut offs) in per_part.into_iter().enumerate() {
        offs.sort();
        assert_eq!(offs, (0..offs.len() as u64).collect::<Vec<_>>());
        assert_eq!(store.stats().partition_offsets[p], offs.len() as u64);
    }
    let all = store.read_log(&permit(), 0, 10_000).unwrap();
    assert_eq!(all.len(), 1600);
}

#[test]
fn readers_see_only_published_records_while_writing() {
    let d = tempfile::tempdir().unwrap();
    let store = Arc::new(open(d.path(), &opts(2, 4096)));
    let w = {
        let s = Arc::clone(&store);
        std::thread::spawn(move || {
            for b in 0..100u64 {
                s.append((0..10).map(|j| rec(b * 10 + j, j, T0, 30)).collect())
                    .unwrap();
            }
        })
    };
    let pm = permit();
    let mut last = 0;
    while last < 1000 {
        let n = store.stats().next_seq;
        let recs = store.read_log(&pm, 0, n as usize).unwrap();
        assert!(recs.len() as u64 >= n);
        assert!(recs.len() >= last);
        last = recs.len();
        for p in 0..2 {
            store.read_partition(&pm, Partition(p), 0, 100_000).unwrap();
        }
    }
    w.join().unwrap();
}

#[test]
fn bad_requests_are_named_errors() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path(), &opts(4, 4096));
    let e = store
        .read_partition(&permit(), Partition(4), 0, 1)
        .unwrap_err();
    assert!(e.to_string().contains("partitions 0..4"), "{e}");
    assert!(
        store
            .read_partition(&permit(), Partition(1), 99, 1)
            .unwrap()
            .is_empty()
    );
    assert!(store.read_log(&permit(), 99, 1).unwrap().is_empty());
    let mut big = rec(1, 1, T0, 0);
    big.payload = vec![0; iob_store::MAX_PAYLOAD + 1];
    let e = store.append(vec![big]).unwrap_err();
    assert!(matches!(e, StoreError::RecordTooLarge { .. }), "{e}");
    assert!(store.append(vec![]).unwrap().is_empty());
    // Codecs round-trip.
    let mut r = rec(2, 1, T0, 3);
    r.codec = Codec::Sealed;
    store.append(vec![r.clone()]).unwrap();
    assert_eq!(
        store.read_log(&permit(), 0, 1).unwrap()[0].codec,
        Codec::Sealed
    );
    let e = iob_store::Store::open(
        d.path(),
        iob_store::StoreOptions {
            partitions: 0,
            ..opts(4, 4096)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("partitions"), "{e}");
}

#[test]
fn failed_fsync_leaves_no_half_written_state() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(2, 2048);
    let store = open(d.path(), &o);
    let before: Vec<_> = (0..5).map(|k| rec(k, k, T0, 100)).collect();
    store.append(before).unwrap();
    let stats = store.stats();
    let log_dir = d.path().join("log");
    let files = |dir: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    };
    let files_before = files(&log_dir);
    // A group big enough to roll segments, whose fsync fails.
    store.fail_next_fsync_for_test();
    let e = store
        .append((100..140).map(|k| rec(k, k, T0, 100)).collect())
        .unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
    assert_eq!(store.stats(), stats);
    // No new segment survives, and the active one is cut back: to its logical length, which
    // may be shorter than before when direct I/O had padded it to a block boundary.
    let after = files(&log_dir);
    assert_eq!(after.len(), files_before.len());
    for ((name, len), (name0, len0)) in after.iter().zip(&files_before) {
        assert_eq!(name, name0);
        assert!(len <= len0, "{name:?} grew from {len0} to {len}");
    }
    // The keys were not taken, and seqs continue where they were.
    let outs = store.append(vec![rec(100, 1, T0, 1)]).unwrap();
    assert_eq!(
        outs[0],
        AppendOutcome::Stored(iob_store::RecordPos {
            partition: person(1).partition(2),
            offset: store.stats().partition_offsets[person(1).partition(2).0 as usize] - 1,
            seq: 5
        })
    );
    store.crash_for_test();
    let store = open(d.path(), &o);
    assert_eq!(store.stats().events, 6);
    assert_eq!(store.recovery_report().torn_tail, None);
}
