//! The store's sealing hook: records are sealed in the group buffer after the dedup check,
//! with the sealer's codec and exact overhead, from owned and shared payloads alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iob_store::{
    AppendOutcome, BatchSeal, Codec, NewRecord, Payload, RecordBatch, Sealer, StoreError,
};

use crate::util::*;

/// A stand-in for encryption: reverses the payload and appends `|<person byte>|SEALED`, so a
/// test can tell the stored form from the plaintext and check what the sealer was given.
struct Reverser {
    prepared: AtomicUsize,
    sealed: Arc<AtomicUsize>,
    /// `prepare` fails for batches holding a payload with this text.
    refuse: &'static [u8],
}

struct Plan {
    sealed: Arc<AtomicUsize>,
}

const TRAILER: &[u8] = b"|SEALED";

impl Sealer for Reverser {
    fn prepare<'s>(&'s self, batch: &mut RecordBatch) -> Result<Box<dyn BatchSeal + 's>, String> {
        self.prepared.fetch_add(1, Ordering::SeqCst);
        if (0..batch.len()).any(|i| {
            batch
                .payload(i)
                .windows(self.refuse.len())
                .any(|w| w == self.refuse)
        }) {
            return Err("no key for this batch".into());
        }
        Ok(Box::new(Plan {
            sealed: self.sealed.clone(),
        }))
    }
}

impl BatchSeal for Plan {
    fn overhead(&self, _: usize) -> usize {
        2 + TRAILER.len()
    }

    fn seal(&mut self, _: usize, r: &NewRecord<Payload>, buf: &mut Vec<u8>, at: usize) -> Codec {
        self.sealed.fetch_add(1, Ordering::SeqCst);
        buf[at..].reverse();
        buf.extend_from_slice(&[b'|', r.person.0[0]]);
        buf.extend_from_slice(TRAILER);
        Codec::Sealed
    }
}

fn unseal(stored: &[u8]) -> Vec<u8> {
    let mut p = stored[..stored.len() - 2 - TRAILER.len()].to_vec();
    p.reverse();
    p
}

fn sealer(refuse: &'static [u8]) -> (Arc<Reverser>, Arc<AtomicUsize>) {
    let sealed = Arc::new(AtomicUsize::new(0));
    let s = Arc::new(Reverser {
        prepared: AtomicUsize::new(0),
        sealed: sealed.clone(),
        refuse,
    });
    (s, sealed)
}

fn append_batch(
    store: &iob_store::Store,
    b: RecordBatch,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.append_batch_with(
        b,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv().unwrap()
}

#[test]
fn shared_and_owned_payloads_are_sealed_once_each_and_duplicates_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &opts(4, 1 << 20));
    let (s, sealed) = sealer(b"never");
    assert!(store.set_sealer(s.clone()));

    // Records 0..3 in one shared buffer, record 3 owned, record 4 a duplicate of record 1.
    let payloads: Vec<Vec<u8>> = (0..3).map(|k| rec(k, k, T0, 5).payload).collect();
    let mut shared = Vec::new();
    let mut spans = Vec::new();
    for p in &payloads {
        spans.push(shared.len()..shared.len() + p.len());
        shared.extend_from_slice(p);
    }
    let mut records: Vec<NewRecord<Payload>> = spans
        .into_iter()
        .enumerate()
        .map(|(k, span)| rec(k as u64, k as u64, T0, 5).with_payload(Payload::Shared(span)))
        .collect();
    records.push(rec(3, 3, T0, 7).map_payload(Payload::Owned));
    records.push(rec(1, 1, T0, 5).map_payload(Payload::Owned));
    let b = RecordBatch::new(shared, records);
    let out = append_batch(&store, b).unwrap();
    assert!(matches!(out[4], AppendOutcome::Duplicate), "{out:?}");
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, AppendOutcome::Stored(_)))
            .count(),
        4
    );
    assert_eq!(
        sealed.load(Ordering::SeqCst),
        4,
        "the duplicate is not sealed"
    );
    assert_eq!(s.prepared.load(Ordering::SeqCst), 1);

    let got = store.read_log(&permit(), 0, 100).unwrap();
    assert_eq!(got.len(), 4);
    for (k, r) in got.iter().enumerate() {
        assert_eq!(r.codec, Codec::Sealed);
        assert!(r.payload.ends_with(TRAILER));
        assert_eq!(
            r.payload[r.payload.len() - TRAILER.len() - 1],
            person(k as u64).0[0]
        );
        let plain = unseal(&r.payload);
        assert_eq!(key_of(&plain), k as u64);
        assert_eq!(
            plain,
            rec(k as u64, k as u64, T0, if k == 3 { 7 } else { 5 }).payload
        );
    }
    // The sealed frames survive a restart (their lengths and checksums include the trailer).
    drop(store);
    let store = open(dir.path(), &opts(4, 1 << 20));
    assert_eq!(store.read_log(&permit(), 0, 100).unwrap(), got);
}

#[test]
fn a_refused_batch_writes_nothing_and_the_next_one_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &opts(2, 1 << 20));
    let (s, sealed) = sealer(b"REFUSE");
    store.set_sealer(s);
    let mut bad = rec(1, 1, T0, 0);
    bad.payload.extend_from_slice(b"REFUSE");
    let err = store.append(vec![rec(0, 0, T0, 3), bad]).unwrap_err();
    assert!(err.to_string().contains("no key for this batch"), "{err}");
    assert_eq!(sealed.load(Ordering::SeqCst), 0);
    assert_eq!(store.read_log(&permit(), 0, 10).unwrap().len(), 0);
    // Its dedup keys were not taken: the same records (fixed) are stored.
    let out = store
        .append(vec![rec(0, 0, T0, 3), rec(1, 1, T0, 0)])
        .unwrap();
    assert!(
        out.iter().all(|o| matches!(o, AppendOutcome::Stored(_))),
        "{out:?}"
    );
}

#[test]
fn the_size_limit_counts_the_sealed_form() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &opts(2, 1 << 30));
    let (s, _) = sealer(b"never");
    store.set_sealer(s);
    // Exactly at the limit before sealing, over it after.
    let mut r = rec(0, 0, T0, 0);
    r.payload.resize(iob_store::MAX_PAYLOAD, b'y');
    let err = store.append(vec![r]).unwrap_err();
    assert!(
        matches!(err, StoreError::RecordTooLarge { size, .. } if size == iob_store::MAX_PAYLOAD + 2 + TRAILER.len()),
        "{err}"
    );
    assert_eq!(store.read_log(&permit(), 0, 10).unwrap().len(), 0);
}
