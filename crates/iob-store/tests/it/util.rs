//! Shared helpers.

use std::path::Path;
use std::time::Duration;

use iob_govern::{Governor, Permit};
use iob_store::{Codec, NewRecord, Store, StoreOptions};
use iob_types::{EventKind, PersonKey, Timestamp};

pub const T0: i64 = 1_700_000_000_000;

pub fn permit() -> Permit {
    Governor::default().system("test")
}

pub fn opts(partitions: u32, segment_bytes: u64) -> StoreOptions {
    StoreOptions {
        partitions,
        segment_bytes,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

pub fn open(dir: &Path, o: &StoreOptions) -> Store {
    Store::open(dir, o.clone()).unwrap()
}

/// A person whose partition among `n` is `i % n`.
pub fn person(i: u64) -> PersonKey {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b[8..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    PersonKey(b)
}

pub fn key(k: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&k.to_le_bytes());
    b[8..].copy_from_slice(&(!k).to_le_bytes());
    b
}

/// A record carrying key number `k` in its payload (`"k:<k>:<filler>"`).
pub fn rec(k: u64, p: u64, event_time: i64, filler: usize) -> NewRecord {
    let mut payload = format!("k:{k}:").into_bytes();
    payload.extend(std::iter::repeat_n(b'x', filler));
    NewRecord {
        person: person(p),
        kind: EventKind::ALL[(k % 8) as usize],
        event_time: Timestamp(event_time),
        received_at: Timestamp(T0 + k as i64),
        dedup_key: Some(key(k)),
        codec: if k.is_multiple_of(5) {
            Codec::Sealed
        } else {
            Codec::Json
        },
        payload,
    }
}

/// The key number a payload written by [`rec`] carries.
pub fn key_of(payload: &[u8]) -> u64 {
    let s = std::str::from_utf8(payload).unwrap();
    s.split(':').nth(1).unwrap().parse().unwrap()
}
