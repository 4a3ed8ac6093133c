//! Quarantine: append, list, resolve, reopen, torn tail.

use std::io::Write;

use iob_store::{Codec, NewQuarantined, Resolution};
use iob_types::Timestamp;

use crate::util::*;

fn item(i: u64) -> NewQuarantined {
    NewQuarantined {
        received_at: Timestamp(T0 + i as i64),
        source: i.is_multiple_of(2).then(|| format!("web-{i}")),
        person: i.is_multiple_of(3).then(|| person(i)),
        reason: serde_json::json!({"field": "timestamp", "code": "invalid", "message": format!("bad {i}")}),
        codec: Codec::Json,
        payload: format!("{{\"raw\":{i}}}").into_bytes(),
    }
}

#[test]
fn append_list_resolve_reopen_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(2, 4096);
    let store = open(d.path(), &o);
    let q = store.quarantine();
    let ids = q.append((0..5).map(item).collect()).unwrap();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let list = q.list(&permit(), false, 100).unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(list[2].id, 3);
    assert_eq!(list[2].payload, b"{\"raw\":2}");
    assert_eq!(list[2].source.as_deref(), Some("web-2"));
    assert_eq!(list[3].person, Some(person(3)));
    assert_eq!(list[3].reason["message"], "bad 3");
    assert_eq!(q.resolve(&[2, 4, 4, 99], Resolution::Replayed).unwrap(), 2);
    assert_eq!(q.resolve(&[2], Resolution::Discarded).unwrap(), 0);
    assert_eq!(
        q.list(&permit(), false, 100)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![1, 3, 5]
    );
    let all = q.list(&permit(), true, 100).unwrap();
    assert_eq!(all[1].resolution, Some(Resolution::Replayed));
    assert_eq!(q.list(&permit(), true, 2).unwrap().len(), 2);
    let st = store.stats();
    assert_eq!((st.quarantine_open, st.quarantine_resolved), (3, 2));
    store.close().unwrap();

    // Torn tail: a half-written frame at the end.
    let qpath = d.path().join("quarantine/quarantine.log");
    let good_len = std::fs::metadata(&qpath).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&qpath)
        .unwrap()
        .write_all(&[200, 0, 0, 0, 1, 2, 3])
        .unwrap();
    let store = open(d.path(), &o);
    let q = store.quarantine();
    assert_eq!(std::fs::metadata(&qpath).unwrap().len(), good_len);
    assert_eq!(q.counts().open, 3);
    assert_eq!(
        q.get(&permit(), 4).unwrap().unwrap().resolution,
        Some(Resolution::Replayed)
    );
    assert_eq!(q.append(vec![item(9)]).unwrap(), vec![6]);
    store.close().unwrap();

    // Truncated in the middle of the last entry: that entry is gone, the rest stays.
    let len = std::fs::metadata(&qpath).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&qpath)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let store = open(d.path(), &o);
    let q = store.quarantine();
    assert!(q.get(&permit(), 6).unwrap().is_none());
    assert_eq!(q.counts().open, 3);
    assert_eq!(q.append(vec![item(10)]).unwrap(), vec![6]);
}
