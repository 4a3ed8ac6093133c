//! Crash recovery property: write batches, "crash" (no final checkpoint), damage the files the
//! way a crash (or an operator) can, reopen: everything before the damage point is intact,
//! nothing after it, offsets dense, stats consistent, dedup still works, appends continue.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use iob_store::format::{FILE_HEADER_LEN, Frame, RECORD_HEADER_LEN, RecordHeaderV1, decode_frame};
use iob_store::{AppendOutcome, StoredRecord};
use iob_types::{Partition, Timestamp};
use proptest::prelude::*;

use crate::util::*;

#[derive(Debug, Clone)]
enum Damage {
    /// Cut the last segment at this fraction of its unchecked region.
    Truncate(f64),
    /// Append bytes to the last segment.
    Garbage(Vec<u8>),
    /// Flip a bit at this fraction of the last segment's unchecked region.
    Flip(f64, u8),
    /// 0: delete index/, 1: halve p000.idx, 2: garbage CHECKPOINT, 3: delete dedup.snap,
    /// 4: delete CHECKPOINT and zero seq.idx.
    Derived(u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Damage::Truncate),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(Damage::Garbage),
        (0.0..1.0f64, 0..8u8).prop_map(|(f, b)| Damage::Flip(f, b)),
        (0..5u8).prop_map(Damage::Derived),
    ]
}

/// (position, end, seq) of every valid frame of a segment.
fn frames(path: &Path) -> Vec<(u64, u64, u64)> {
    let b = fs::read(path).unwrap();
    let mut pos = FILE_HEADER_LEN;
    let mut out = Vec::new();
    while let Frame::Ok { body, total } = decode_frame(&b[pos..], RECORD_HEADER_LEN) {
        let (h, _) = RecordHeaderV1::decode(body).unwrap();
        out.push((pos as u64, (pos + total) as u64, h.seq));
        pos += total;
    }
    // Direct I/O leaves zeros up to the end of the last block; nothing else may follow.
    let rest = &b[pos..];
    assert!(
        rest.is_empty()
            || (b.len().is_multiple_of(4096) && rest.len() < 4096 && rest.iter().all(|x| *x == 0)),
        "segment has trailing bytes before damage"
    );
    out
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut v: Vec<_> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.pop().unwrap()
}

fn run_case(batches: Vec<Vec<(u8, u16, i16)>>, ckpt_after: usize, dmg: Damage) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let o = opts(4, 1024);
    let store = open(dir, &o);
    let mut k = 0u64;
    let mut keys_written = Vec::new();
    for (bi, b) in batches.iter().enumerate() {
        let batch: Vec<_> = b
            .iter()
            .map(|&(p, len, et)| {
                k += 1;
                keys_written.push(k);
                rec(k, p as u64, T0 + et as i64, len as usize)
            })
            .collect();
        store.append(batch).unwrap();
        if bi == ckpt_after {
            store.checkpoint().unwrap();
        }
    }
    let before: Vec<StoredRecord> = store.read_log(&permit(), 0, usize::MAX).unwrap();
    store.crash_for_test();

    // The region a crash could have damaged: after the checkpointed position.
    let ckpt: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("CHECKPOINT")).unwrap()).unwrap();
    let cseg = ckpt["segments"].as_array().unwrap().last().unwrap().clone();
    let last = last_segment(dir);
    let last_base: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let lo = if cseg["base"].as_u64().unwrap() == last_base {
        cseg["bytes"].as_u64().unwrap()
    } else {
        0
    };
    let fr = frames(&last);
    // Survivors: every record not in the last segment, plus those ending before `cut`.
    let survivors_until = |cut: u64| -> Vec<StoredRecord> {
        let lost_from = if cut < FILE_HEADER_LEN as u64 {
            last_base
        } else {
            fr.iter().find(|f| f.1 > cut).map_or(u64::MAX, |f| f.2)
        };
        before
            .iter()
            .filter(|r| r.pos.seq < lost_from)
            .cloned()
            .collect()
    };
    let expected = match &dmg {
        Damage::Truncate(f) => {
            let cut = lo + ((len - lo) as f64 * f) as u64;
            fs::OpenOptions::new()
                .write(true)
                .open(&last)
                .unwrap()
                .set_len(cut)
                .unwrap();
            survivors_until(cut)
        }
        Damage::Garbage(g) => {
            fs::OpenOptions::new()
                .append(true)
                .open(&last)
                .unwrap()
                .write_all(g)
                .unwrap();
            before.clone()
        }
        Damage::Flip(f, bit) => {
            let lo = lo.max(FILE_HEADER_LEN as u64);
            if lo < len {
                let at = lo + ((len - lo) as f64 * f) as u64;
                let mut b = fs::read(&last).unwrap();
                b[at as usize] ^= 1 << bit;
                fs::write(&last, b).unwrap();
                survivors_until(at)
            } else {
                before.clone()
            }
        }
        Damage::Derived(m) => {
            match m {
                0 => fs::remove_dir_all(dir.join("index")).unwrap(),
                1 => {
                    let p = dir.join("index/p000.idx");
                    let l = fs::metadata(&p).unwrap().len();
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&p)
                        .unwrap()
                        .set_len(l / 2)
                        .unwrap();
                }
                2 => fs::write(dir.join("CHECKPOINT"), b"\x00garbage{").unwrap(),
                3 => fs::remove_file(dir.join("dedup.snap")).unwrap(),
                _ => {
                    fs::remove_file(dir.join("CHECKPOINT")).unwrap();
                    let p = dir.join("index/seq.idx");
                    let l = fs::metadata(&p).unwrap().len();
                    fs::write(&p, vec![0u8; l as usize]).unwrap();
                }
            }
            before.clone()
        }
    };

    let store = open(dir, &o);
    let pm = permit();
    let got = store.read_log(&pm, 0, usize::MAX).unwrap();
    assert_eq!(got, expected, "report {:?}", store.recovery_report());
    let st = store.stats();
    assert_eq!(st.events, expected.len() as u64);
    assert_eq!(st.next_seq, expected.len() as u64);
    for p in 0..4u32 {
        let want: Vec<_> = expected
            .iter()
            .filter(|r| r.pos.partition.0 == p)
            .cloned()
            .collect();
        let got = store
            .read_partition(&pm, Partition(p), 0, usize::MAX)
            .unwrap();
        assert_eq!(got, want);
        assert_eq!(st.partition_offsets[p as usize], want.len() as u64);
    }
    let by_time = store
        .scan_time(&pm, Timestamp(0), Timestamp(i64::MAX))
        .unwrap()
        .count();
    assert_eq!(by_time, expected.len());

    // Dedup: survivors are duplicates, lost keys are stored anew; appends continue.
    let surviving: std::collections::HashSet<u64> =
        expected.iter().map(|r| key_of(&r.payload)).collect();
    let again: Vec<_> = keys_written.iter().map(|&k| rec(k, k, T0, 3)).collect();
    let outs = store.append(again).unwrap();
    for (k, o) in keys_written.iter().zip(&outs) {
        assert_eq!(
            *o == AppendOutcome::Duplicate,
            surviving.contains(k),
            "key {k}"
        );
    }
    let total = expected.len() + keys_written.len() - surviving.len();
    assert_eq!(store.stats().events, total as u64);
    // Recovery is idempotent: crash again and reopen.
    store.crash_for_test();
    let store = open(dir, &o);
    assert_eq!(store.read_log(&pm, 0, usize::MAX).unwrap().len(), total);
    assert_eq!(store.recovery_report().torn_tail, None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn crash_recovery_keeps_exactly_the_intact_prefix(
        batches in proptest::collection::vec(
            proptest::collection::vec((0..16u8, 0..300u16, -5000..5000i16), 1..12), 1..8),
        ckpt_after in 0..10usize,
        dmg in damage(),
    ) {
        run_case(batches, ckpt_after, dmg);
    }
}
