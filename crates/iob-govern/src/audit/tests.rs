//! The chain and its verification, tampered with in every way the threat model names.

use std::path::{Path, PathBuf};

use iob_types::{PersonKey, Purpose, Timestamp};
use sha2::{Digest, Sha256};

use super::files;
use super::*;
use crate::{Actor, GovernError, Governor};

fn subject(i: u8) -> PersonKey {
    PersonKey([i; 16])
}

fn open(dir: &Path) -> AuditLog {
    AuditLog::open(dir, AuditOptions::default()).unwrap()
}

/// Writes `n` records alternating an API key and the operator.
fn write(log: &AuditLog, n: u64) {
    let g = Governor::default();
    for i in 0..n {
        let actor = if i % 2 == 0 {
            Actor::ApiKey("admin".into())
        } else {
            Actor::Operator
        };
        let p = g.permit(actor, &Purpose::analytics()).unwrap();
        let e = AuditEntry::person(Access::ProfileRead, subject(i as u8), 1);
        log.record(&p, Timestamp(1_700_000_000_000 + i as i64), e)
            .unwrap();
    }
}

fn segment(dir: &Path) -> PathBuf {
    files::segment_path(&dir.join("audit"), 0)
}

/// The segment's bytes without the zeros written ahead of the records.
fn content(dir: &Path) -> Vec<u8> {
    let mut b = std::fs::read(segment(dir)).unwrap();
    while b.last() == Some(&0) {
        b.pop();
    }
    b
}

fn lines(dir: &Path) -> Vec<String> {
    String::from_utf8(content(dir))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn put_lines(dir: &Path, l: &[String]) {
    std::fs::write(segment(dir), l.join("\n") + "\n").unwrap();
}

/// A log of 6 records, closed.
fn six() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(&open(d.path()), 6);
    d
}

/// Up to `limit` records, newest first, unfiltered.
fn newest_first(dir: &Path, limit: usize) -> Vec<AuditRecord> {
    let f = ListFilter {
        limit,
        ..Default::default()
    };
    list(dir, &f).unwrap()
}

fn problem(dir: &Path) -> Finding {
    let r = verify(dir).unwrap();
    let p = r.problem.clone();
    p.unwrap_or_else(|| panic!("tampering not detected: {r:?}"))
}

#[test]
fn chain_verifies_and_resumes_on_reopen() {
    let d = tempfile::tempdir().unwrap();
    write(&open(d.path()), 3);
    let log = open(d.path());
    assert!(log.notes().is_empty(), "{:?}", log.notes());
    write(&log, 2);
    let recs: Vec<AuditRecord> = lines(d.path())
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(recs[0].prev, GENESIS);
    for w in recs.windows(2) {
        assert_eq!(w[1].prev, w[0].hash, "each record links to the one before");
    }
    assert_eq!(recs[0].actor, "api_key");
    assert_eq!(recs[0].key.as_deref(), Some("admin"));
    assert_eq!(recs[1].actor, "operator");
    assert_eq!(recs[1].key, None);
    assert_eq!(
        recs[2].subject.as_deref(),
        Some(subject(2).to_hex().as_str())
    );
    assert_eq!(recs[0].action, "profile.read");
    assert_eq!(recs[0].time, "2023-11-14T22:13:20.000Z");

    let r = verify(d.path()).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.records, 5);
    assert_eq!(r.head, Some((4, recs[4].hash.clone())));
    assert_eq!(log.head(), (5, recs[4].hash.clone()));
}

#[test]
fn system_reads_are_not_recorded_and_system_permits_are_reserved() {
    let d = tempfile::tempdir().unwrap();
    let log = open(d.path());
    let g = Governor::default();
    let sys = g.system("unify");
    let e = AuditEntry::bulk(Access::LogRead, "from_seq=0");
    assert_eq!(log.record(&sys, Timestamp(0), e.clone()).unwrap(), None);
    assert_eq!(log.head().0, 0);
    assert!(g.permit(Actor::System("x"), &Purpose::analytics()).is_err());
    let op = g.permit(Actor::Operator, &Purpose::operations()).unwrap();
    assert_eq!(log.record(&op, Timestamp(0), e).unwrap(), Some(0));
}

#[test]
fn a_changed_field_is_named() {
    let d = six();
    let mut l = lines(d.path());
    l[2] = l[2].replace("\"purpose\":\"analytics\"", "\"purpose\":\"security\"");
    put_lines(d.path(), &l);
    let f = problem(d.path());
    assert_eq!(
        (f.kind, f.line, f.seq),
        (FindingKind::Changed, Some(3), Some(2)),
        "{f}"
    );
    assert!(
        f.to_string()
            .starts_with("audit-0000.log line 3 (record 2): changed"),
        "{f}"
    );
}

#[test]
fn an_added_field_or_garbage_line_is_a_change() {
    let d = six();
    let mut l = lines(d.path());
    l[1] = l[1].replacen('{', "{\"note\":\"ok\",", 1);
    put_lines(d.path(), &l);
    assert_eq!(problem(d.path()).kind, FindingKind::Changed);
    let mut l = lines(d.path());
    l[1] = "not json".into();
    put_lines(d.path(), &l);
    let f = problem(d.path());
    assert_eq!((f.kind, f.line), (FindingKind::Changed, Some(2)));
}

#[test]
fn a_removed_middle_record_is_named() {
    let d = six();
    let mut l = lines(d.path());
    l.remove(3);
    put_lines(d.path(), &l);
    let f = problem(d.path());
    assert_eq!(
        (f.kind, f.line, f.seq),
        (FindingKind::Removed, Some(4), Some(4)),
        "{f}"
    );
    assert!(f.reason.contains("records 3..=3 are missing"), "{f}");
}

#[test]
fn swapped_records_are_named() {
    let d = six();
    let mut l = lines(d.path());
    l.swap(2, 3);
    put_lines(d.path(), &l);
    let f = problem(d.path());
    assert_eq!(
        (f.kind, f.line, f.seq),
        (FindingKind::Reordered, Some(3), Some(3)),
        "{f}"
    );
}

#[test]
fn a_removed_last_record_contradicts_head() {
    let d = six();
    let mut l = lines(d.path());
    l.pop();
    put_lines(d.path(), &l);
    let f = problem(d.path());
    assert_eq!((f.kind, f.seq), (FindingKind::Truncated, Some(5)), "{f}");
    assert!(f.reason.contains("HEAD names record 5"), "{f}");
    // And the engine refuses to extend such a chain.
    let err = AuditLog::open(d.path(), AuditOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("the last records were removed"),
        "{err}"
    );
}

#[test]
fn a_file_truncated_mid_line_is_named_torn() {
    let d = six();
    let path = segment(d.path());
    let len = content(d.path()).len() as u64;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 40).unwrap();
    let f = problem(d.path());
    assert_eq!(
        (f.kind, f.line, f.seq),
        (FindingKind::Torn, Some(6), Some(5)),
        "{f}"
    );
    assert!(AuditLog::open(d.path(), AuditOptions::default()).is_err());
}

#[test]
fn a_forged_record_with_a_plain_hash_is_named() {
    let d = six();
    let mut l = lines(d.path());
    let mut r: AuditRecord = serde_json::from_str(l.last().unwrap()).unwrap();
    r.seq += 1;
    r.prev = r.hash.clone();
    r.subject = Some(subject(99).to_hex());
    r.hash = String::new();
    // The best an attacker without the key can do: a plain SHA-256 over the record.
    r.hash = chain::hex(&Sha256::digest(serde_json::to_vec(&r).unwrap()));
    l.push(serde_json::to_string(&r).unwrap());
    put_lines(d.path(), &l);
    let f = problem(d.path());
    assert_eq!(
        (f.kind, f.line, f.seq),
        (FindingKind::Changed, Some(7), Some(6)),
        "{f}"
    );
}

#[test]
fn a_removed_or_forged_head_is_named() {
    let d = six();
    std::fs::remove_file(d.path().join("audit/HEAD")).unwrap();
    assert_eq!(problem(d.path()).kind, FindingKind::Head);
    let d = six();
    let head = d.path().join("audit/HEAD");
    let text = std::fs::read_to_string(&head).unwrap();
    std::fs::write(&head, text.replace("\"seq\":5", "\"seq\":4")).unwrap();
    let f = problem(d.path());
    assert_eq!(f.kind, FindingKind::Head);
    assert!(f.reason.contains("MAC"), "{f}");
}

#[test]
fn a_crash_mid_append_is_a_note_and_is_cut_on_reopen() {
    let d = six();
    let path = segment(d.path());
    // The first bytes of a record written over the zeros ahead, then the crash.
    let at = content(d.path()).len() as u64;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"{\"seq\":6,\"time\":\"20", at).unwrap();
    }
    let r = verify(d.path()).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.records, 6);
    assert!(r.notes[0].contains("incomplete last line"), "{:?}", r.notes);
    let log = open(d.path());
    assert!(
        log.notes()[0].contains("cut an incomplete last line"),
        "{:?}",
        log.notes()
    );
    write(&log, 1);
    let r = verify(d.path()).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
    assert_eq!(r.records, 7);
}

#[test]
fn a_crash_before_the_head_update_is_repaired() {
    let d = six();
    head_at(d.path(), 4);
    let r = verify(d.path()).unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(r.notes[0].contains("after HEAD"), "{:?}", r.notes);
    let log = open(d.path());
    assert!(
        log.notes()[0].contains("1 record(s) behind"),
        "{:?}",
        log.notes()
    );
    assert_eq!(log.head().0, 6);
    assert!(verify(d.path()).unwrap().notes.is_empty());
}

#[test]
fn segments_rotate_and_a_removed_segment_is_named() {
    let d = tempfile::tempdir().unwrap();
    let log = AuditLog::open(d.path(), AuditOptions { segment_bytes: 700 }).unwrap();
    write(&log, 12);
    drop(log);
    let segs = files::segments(&d.path().join("audit")).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    let r = verify(d.path()).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!((r.records, r.segments), (12, segs.len()));
    // Reopening continues the last segment's chain.
    write(
        &AuditLog::open(d.path(), AuditOptions { segment_bytes: 700 }).unwrap(),
        1,
    );
    assert_eq!(verify(d.path()).unwrap().records, 13);
    std::fs::remove_file(&segs[1].1).unwrap();
    let f = problem(d.path());
    assert_eq!(f.kind, FindingKind::Removed, "{f}");
    assert_eq!(f.file, segs[2].1.file_name().unwrap().to_str().unwrap());
}

#[test]
fn the_key_is_private_and_required() {
    let d = six();
    let key = d.path().join("secrets/audit.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o600);
    }
    std::fs::remove_file(&key).unwrap();
    assert!(verify(d.path()).is_err());
    let err = AuditLog::open(d.path(), AuditOptions::default()).unwrap_err();
    assert!(err.to_string().contains("audit.key"), "{err}");
}

#[test]
fn list_filters_newest_first() {
    let d = six();
    let all = newest_first(d.path(), 100);
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1, 0]
    );
    let f = ListFilter {
        actor: Some("admin".into()),
        limit: 2,
        ..Default::default()
    };
    let admin = list(d.path(), &f).unwrap();
    assert_eq!(admin.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 2]);
    let f = ListFilter {
        subject: Some(subject(3).to_hex().to_uppercase()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(d.path(), &f).unwrap()[0].seq, 3);
    let empty = tempfile::tempdir().unwrap();
    assert!(verify(empty.path()).unwrap().ok());
    assert!(
        list(
            empty.path(),
            &ListFilter {
                limit: 5,
                ..Default::default()
            }
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn a_head_several_records_behind_is_repaired_when_the_records_link() {
    // A crash after a group of three records was appended, before HEAD named its last.
    let d = six();
    head_at(d.path(), 2);
    let log = open(d.path());
    assert!(
        log.notes()[0].contains("3 record(s) behind") && log.notes()[0].contains("record 5"),
        "{:?}",
        log.notes()
    );
    write(&log, 1);
    let r = verify(d.path()).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
    assert_eq!(r.records, 7);

    // The same HEAD, with a record between it and the end removed: refused, not repaired.
    let d = six();
    let mut l = lines(d.path());
    l.remove(4);
    put_lines(d.path(), &l);
    head_at(d.path(), 2);
    let err = AuditLog::open(d.path(), AuditOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // And a HEAD naming a record of another chain.
    let d = six();
    files::write_head(&d.path().join("audit"), &key_of(d.path()), 2, GENESIS).unwrap();
    let err = AuditLog::open(d.path(), AuditOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

/// Points HEAD at record `seq` of the first segment, as a crash before later HEAD updates
/// leaves it.
fn head_at(dir: &Path, seq: usize) {
    let hash = rec_hash(dir, seq);
    files::write_head(&dir.join("audit"), &key_of(dir), seq as u64, &hash).unwrap();
}

fn key_of(dir: &Path) -> AuditKey {
    AuditKey::load(&super::log::key_path(dir), false).unwrap()
}

fn rec_hash(dir: &Path, seq: usize) -> String {
    serde_json::from_str::<AuditRecord>(&lines(dir)[seq])
        .unwrap()
        .hash
}

#[test]
fn head_is_overwritten_in_place_at_a_fixed_size() {
    let d = six();
    let head = d.path().join("audit/HEAD");
    assert_eq!(
        std::fs::metadata(&head).unwrap().len(),
        files::HEAD_BYTES as u64
    );
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&head).unwrap().ino()
    };
    let log = open(d.path());
    write(&log, 3);
    assert_eq!(
        std::fs::metadata(&head).unwrap().len(),
        files::HEAD_BYTES as u64
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&head).unwrap().ino(),
            inode,
            "HEAD was replaced"
        );
    }
    // An unpadded HEAD (written before padding) still reads, and is padded by the next update.
    drop(log);
    let text = std::fs::read_to_string(&head).unwrap();
    std::fs::write(&head, text.trim_end().to_string() + "\n").unwrap();
    let log = open(d.path());
    write(&log, 1);
    assert_eq!(
        std::fs::metadata(&head).unwrap().len(),
        files::HEAD_BYTES as u64
    );
    assert!(verify(d.path()).unwrap().ok());
}

#[test]
fn concurrent_records_are_committed_in_groups_each_caller_getting_its_own_seq() {
    let d = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(open(d.path()));
    let g = Governor::default();
    let threads: Vec<_> = (0..6u8)
        .map(|t| {
            let log = log.clone();
            let p = g
                .permit(Actor::ApiKey(format!("reader-{t}")), &Purpose::analytics())
                .unwrap();
            std::thread::spawn(move || {
                (0..40u8)
                    .map(|i| {
                        let e = AuditEntry::person(Access::Decide, subject(t * 40 + i), 1);
                        let seq = log.record(&p, Timestamp(1_700_000_000_000), e).unwrap();
                        (seq.unwrap(), t * 40 + i)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut got: Vec<(u64, u8)> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    got.sort();
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (0..240).collect::<Vec<u64>>(),
        "every caller got a distinct sequence number"
    );
    let r = verify(d.path()).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
    assert_eq!(r.records, 240);
    // Each caller's sequence number is the record of its own read.
    let all = newest_first(d.path(), 1000);
    for (seq, i) in got {
        let rec = all.iter().find(|r| r.seq == seq).unwrap();
        assert_eq!(rec.subject.as_deref(), Some(subject(i).to_hex().as_str()));
        assert_eq!(
            rec.key.as_deref(),
            Some(format!("reader-{}", i / 40).as_str())
        );
    }
    assert_eq!(log.head().0, 240);
}

#[test]
fn a_failed_head_update_fails_the_whole_group_and_later_records_until_reopened() {
    let d = six();
    let head = d.path().join("audit/HEAD");
    let saved = std::fs::read(&head).unwrap();
    let log = open(d.path());
    std::fs::remove_file(&head).unwrap();
    std::fs::create_dir(&head).unwrap();
    let g = Governor::default();
    let p = g.permit(Actor::Operator, &Purpose::analytics()).unwrap();
    let e = || AuditEntry::person(Access::ProfileRead, subject(1), 1);
    let err = log.record(&p, Timestamp(1), e()).unwrap_err();
    assert!(err.to_string().contains("HEAD"), "{err}");
    std::fs::remove_dir(&head).unwrap();
    std::fs::write(&head, &saved).unwrap();
    // This process no longer vouches for the tail.
    assert!(matches!(
        log.record(&p, Timestamp(2), e()),
        Err(GovernError::AuditBroken(_))
    ));
    drop(log);
    let log = open(d.path());
    assert!(
        log.notes()[0].contains("1 record(s) behind"),
        "{:?}",
        log.notes()
    );
    write(&log, 1);
    assert_eq!(verify(d.path()).unwrap().records, 8);
}

#[test]
fn segments_grow_by_zeros_written_ahead_and_records_overwrite_them() {
    let d = six();
    let path = segment(d.path());
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size, files::PREALLOCATE);
    let used = content(d.path()).len();
    assert!(used > 0 && (used as u64) < size);
    // Reopening writes after the records, not after the zeros.
    let log = open(d.path());
    write(&log, 2);
    assert_eq!(lines(d.path()).len(), 8);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), files::PREALLOCATE);
    // A segment written before preallocation (no zeros) is continued the same way.
    drop(log);
    let l = lines(d.path());
    put_lines(d.path(), &l);
    let log = open(d.path());
    write(&log, 1);
    let r = verify(d.path()).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
    assert_eq!(r.records, 9);
    // Growing past the space written ahead.
    write(&log, (files::PREALLOCATE / 200) + 10);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        2 * files::PREALLOCATE
    );
    let r = verify(d.path()).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
}
