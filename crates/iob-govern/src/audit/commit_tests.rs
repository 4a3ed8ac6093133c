//! The appender: group commit (each caller gets its own record), `HEAD` overwritten in
//! place, segments grown by zeros written ahead, a failed `HEAD` update failing its group.

use iob_types::{Purpose, Timestamp};

use super::tests::*;
use super::*;
use crate::{Actor, GovernError, Governor};

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
    appends_cleanly(&log, d.path(), 9);
    // Growing past the space written ahead.
    write(&log, (files::PREALLOCATE / 200) + 10);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        2 * files::PREALLOCATE
    );
    let r = verify(d.path()).unwrap();
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
}
