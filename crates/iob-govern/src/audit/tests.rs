//! The chain and its verification, tampered with in every way the threat model names; the
//! helpers the appender's tests (`commit_tests.rs`) share.

use std::path::{Path, PathBuf};

use iob_types::{PersonKey, Purpose, Timestamp};
use sha2::{Digest, Sha256};

use super::files;
use super::*;
use crate::{Actor, Governor};

pub(super) fn subject(i: u8) -> PersonKey {
    PersonKey([i; 16])
}

pub(super) fn open(dir: &Path) -> AuditLog {
    AuditLog::open(dir, AuditOptions::default()).unwrap()
}

/// Writes `n` records alternating an API key and the operator.
pub(super) fn write(log: &AuditLog, n: u64) {
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

pub(super) fn segment(dir: &Path) -> PathBuf {
    files::segment_path(&dir.join("audit"), 0)
}

/// The segment's bytes without the zeros written ahead of the records.
pub(super) fn content(dir: &Path) -> Vec<u8> {
    let mut b = std::fs::read(segment(dir)).unwrap();
    while b.last() == Some(&0) {
        b.pop();
    }
    b
}

pub(super) fn lines(dir: &Path) -> Vec<String> {
    String::from_utf8(content(dir))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub(super) fn put_lines(dir: &Path, l: &[String]) {
    std::fs::write(segment(dir), l.join("\n") + "\n").unwrap();
}

/// A log of 6 records, closed.
pub(super) fn six() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(&open(d.path()), 6);
    d
}

/// Up to `limit` records, newest first, unfiltered.
pub(super) fn newest_first(dir: &Path, limit: usize) -> Vec<AuditRecord> {
    let f = ListFilter {
        limit,
        ..Default::default()
    };
    list(dir, &f).unwrap()
}

/// One more record on `log`, then the chain verifies without notes and holds `records`.
pub(super) fn appends_cleanly(log: &AuditLog, dir: &Path, records: u64) {
    write(log, 1);
    let r = verify(dir).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
    assert_eq!(r.records, records);
}

pub(super) fn problem(dir: &Path) -> Finding {
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
    appends_cleanly(&log, d.path(), 7);
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
    appends_cleanly(&log, d.path(), 7);

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
pub(super) fn head_at(dir: &Path, seq: usize) {
    let hash = rec_hash(dir, seq);
    files::write_head(&dir.join("audit"), &key_of(dir), seq as u64, &hash).unwrap();
}

pub(super) fn key_of(dir: &Path) -> AuditKey {
    AuditKey::load(&super::log::key_path(dir), false).unwrap()
}

pub(super) fn rec_hash(dir: &Path, seq: usize) -> String {
    serde_json::from_str::<AuditRecord>(&lines(dir)[seq])
        .unwrap()
        .hash
}
