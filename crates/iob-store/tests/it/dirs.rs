//! The data directory: lock, format version, partition count.

use iob_store::{Store, StoreError};

use crate::util::*;

#[test]
fn second_open_is_locked_with_pid() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path(), &opts(4, 4096));
    let e = Store::open(d.path(), opts(4, 4096)).unwrap_err();
    assert!(matches!(e, StoreError::Locked { pid: Some(p), .. } if p == std::process::id()));
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("stop `iob serve` first"), "{msg}");
    s.close().unwrap();
    open(d.path(), &opts(4, 4096)).close().unwrap();
}

#[test]
fn unknown_format_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    open(d.path(), &opts(4, 4096)).close().unwrap();
    std::fs::write(
        d.path().join("FORMAT"),
        r#"{"format":"iob-store","version":2,"partitions":4}"#,
    )
    .unwrap();
    let e = Store::open(d.path(), opts(4, 4096)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::FormatVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("version 2"), "{e}");
}

#[test]
fn partition_count_is_fixed() {
    let d = tempfile::tempdir().unwrap();
    open(d.path(), &opts(4, 4096)).close().unwrap();
    let e = Store::open(d.path(), opts(8, 4096)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("4 partitions") && msg.contains("8 were requested"),
        "{msg}"
    );
}

#[test]
fn foreign_directory_is_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("important.txt"), "x").unwrap();
    let e = Store::open(d.path(), opts(4, 4096)).unwrap_err();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    assert!(std::fs::read_dir(d.path()).unwrap().count() <= 2); // important.txt + LOCK
}
