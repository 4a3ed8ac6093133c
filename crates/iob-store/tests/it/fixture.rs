//! The checked-in v1 segment must stay readable by every later release.
//! Regenerate (only when deliberately creating a new version's fixture) with
//! `IOB_REGEN_FIXTURES=1 cargo test -p iob-store --test it fixture`.

use std::path::PathBuf;

use iob_store::format::{
    FILE_HEADER_LEN, FileHeader, Frame, LOG_MAGIC, RECORD_HEADER_LEN, RecordHeaderV1, decode_frame,
};
use iob_store::{Codec, NewRecord, Store};
use iob_types::{EventKind, PersonKey, Timestamp};

use crate::util::*;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-segment.seg")
}

fn records() -> Vec<NewRecord> {
    vec![
        NewRecord {
            person: PersonKey([1; 16]),
            kind: EventKind::Track,
            event_time: Timestamp(1_714_564_800_000),
            received_at: Timestamp(1_714_564_801_000),
            dedup_key: Some([0xAB; 16]),
            codec: Codec::Json,
            payload: br#"{"type":"track","event":"Order Completed"}"#.to_vec(),
        },
        NewRecord {
            person: PersonKey([2; 16]),
            kind: EventKind::Observe,
            event_time: Timestamp(1_714_564_700_000),
            received_at: Timestamp(1_714_564_802_000),
            dedup_key: None,
            codec: Codec::Sealed,
            payload: vec![0, 1, 2, 3, 255],
        },
    ]
}

#[test]
fn v1_segment_fixture_reads() {
    if std::env::var_os("IOB_REGEN_FIXTURES").is_some() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), opts(2, 4096)).unwrap();
        s.append(records()).unwrap();
        s.close().unwrap();
        std::fs::create_dir_all(fixture_path().parent().unwrap()).unwrap();
        std::fs::copy(
            d.path().join("log/00000000000000000000.seg"),
            fixture_path(),
        )
        .unwrap();
    }
    let bytes = std::fs::read(fixture_path()).unwrap();
    // Raw decoding with the versioned format types.
    let h = FileHeader::decode(&bytes).unwrap();
    assert_eq!((h.magic, h.version, h.base), (LOG_MAGIC, 1, 0));
    let mut pos = FILE_HEADER_LEN;
    let mut headers = Vec::new();
    while pos < bytes.len() {
        let Frame::Ok { body, total } = decode_frame(&bytes[pos..], RECORD_HEADER_LEN) else {
            panic!("bad frame at {pos}")
        };
        let (h, payload) = RecordHeaderV1::decode(body).unwrap();
        headers.push((h, payload.to_vec()));
        pos += total;
    }
    assert_eq!(headers.len(), 2);
    let (h0, p0) = &headers[0];
    assert_eq!(
        (h0.codec, h0.kind, h0.seq, h0.offset, h0.dedup_key),
        (0, 1, 0, 0, [0xAB; 16])
    );
    assert_eq!(h0.event_time_ms, 1_714_564_800_000);
    assert_eq!(p0, &records()[0].payload);
    assert_eq!(
        (headers[1].0.codec, headers[1].0.kind, headers[1].0.seq),
        (1, 7, 1)
    );
    assert_eq!(headers[1].0.dedup_key, [0; 16]);

    // And through the store: a directory holding only FORMAT and this segment.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("FORMAT"),
        r#"{"format":"iob-store","version":1,"partitions":2}"#,
    )
    .unwrap();
    std::fs::create_dir(d.path().join("log")).unwrap();
    std::fs::copy(
        fixture_path(),
        d.path().join("log/00000000000000000000.seg"),
    )
    .unwrap();
    let s = Store::open(d.path(), opts(2, 4096)).unwrap();
    let got = s.read_log(&permit(), 0, 10).unwrap();
    assert_eq!(got.len(), 2);
    for (g, r) in got.iter().zip(records()) {
        assert_eq!(
            (
                g.person,
                g.kind,
                g.event_time,
                g.received_at,
                g.codec,
                &g.payload
            ),
            (
                r.person,
                r.kind,
                r.event_time,
                r.received_at,
                r.codec,
                &r.payload
            )
        );
    }
    assert_eq!(
        s.append(records()).unwrap()[0],
        iob_store::AppendOutcome::Duplicate
    );
}
