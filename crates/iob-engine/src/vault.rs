//! The vault: every person key's data key, wrapped by the master key, in `DIR/vault/keys.v1`.
//!
//! Payloads are sealed under the data key of the person key they are stored under
//! (`iob_govern::sealing`); this module owns the keys' life cycle:
//!
//! * **issue**: a person key seen for the first time gets a random data key, appended wrapped
//!   and fsynced *before* any record sealed under it is handed to the store, so an
//!   acknowledged record always has its key on disk;
//! * **erase**: the data keys of an erased person are dropped and the file is rewritten without
//!   them (atomic replace), leaving an erasure marker with the next key generation, so the old
//!   payloads can never be opened again, even if the same identifier returns;
//! * **rotate**: every data key is re-wrapped under a new master key; no event is rewritten.
//!
//! File: header `IOBVLT` v1 with the master key's fingerprint (8 bytes), then frames
//! (`len | crc32c | body`); body = `1 | person 16 | generation u32 | wrapped 60` (a key) or
//! `2 | person 16 | next generation u32` (an erasure marker). A torn last frame (a crash
//! during an append) is cut: its key sealed nothing that was acknowledged.
//!
//! This module must never write an unwrapped key, and never let a record be sealed under a key
//! that is not durable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iob_govern::{DataKey, MasterKey, PersonCipher, WRAPPED_LEN};
use iob_store::format::{FileHeader, Frame, decode_frame, encode_frame};
use iob_types::PersonKey;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;

use iob_types::UniformState;

/// Person keys are HMAC outputs: uniformly random, so their first bytes are the hash.
type KeyMap<V> = HashMap<PersonKey, V, UniformState>;

use crate::EngineError;

const MAGIC: [u8; 6] = *b"IOBVLT";
const VERSION: u16 = 1;
const KEY: u8 = 1;
const ERASED: u8 = 2;

/// The person key the unify snapshot is sealed under (no identifier hashes to it in practice,
/// and it is never erased).
pub(crate) const SNAPSHOT_PERSON: PersonKey = PersonKey([0xff; 16]);

enum Slot {
    Live(DataKey),
    /// Erased; the next key issued gets this generation.
    Erased(u32),
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("live_keys", &self.live_keys())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Vault {
    path: PathBuf,
    master: RwLock<MasterKey>,
    keys: RwLock<KeyMap<Slot>>,
    /// Expanded keys of persons seen recently (an AES key schedule costs about as much as
    /// sealing an event). Bounded: emptied when it reaches `cache_cap` entries (~600 bytes each).
    cache: Mutex<KeyMap<Arc<PersonCipher>>>,
    cache_cap: usize,
    /// How many keys were ever destroyed here (the sum of every key generation, which only an
    /// erasure raises): a snapshot of derived state taken under another epoch may hold data
    /// that has since been erased, and is not trusted (see `unify_snapshot.rs`).
    epoch: std::sync::atomic::AtomicU64,
    /// Serializes appends and rewrites.
    file: Mutex<File>,
}

fn id_bytes(master: &MasterKey) -> u64 {
    u64::from_str_radix(master.id(), 16).expect("16 hex digits")
}

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> EngineError {
    let what = format!("{what} {}", path.display());
    move |e| EngineError::io(what, e)
}

fn key_frame(out: &mut Vec<u8>, master: &MasterKey, person: &PersonKey, key: &DataKey) {
    let mut body = Vec::with_capacity(1 + 16 + 4 + WRAPPED_LEN);
    body.push(KEY);
    body.extend_from_slice(&person.0);
    body.extend_from_slice(&key.generation().to_le_bytes());
    body.extend_from_slice(&master.wrap(person, key));
    encode_frame(out, &body);
}

fn erased_frame(out: &mut Vec<u8>, person: &PersonKey, next: u32) {
    let mut body = Vec::with_capacity(21);
    body.push(ERASED);
    body.extend_from_slice(&person.0);
    body.extend_from_slice(&next.to_le_bytes());
    encode_frame(out, &body);
}

impl Vault {
    /// Opens (or creates) the vault under `dir`, unwrapping every key with `master`.
    pub(crate) fn open(
        dir: &Path,
        master: MasterKey,
        cache_cap: usize,
    ) -> Result<Vault, EngineError> {
        let vdir = dir.join("vault");
        std::fs::create_dir_all(&vdir).map_err(io(&vdir, "creating"))?;
        let path = vdir.join("keys.v1");
        let mut keys = KeyMap::default();
        let bytes = iob_store::read_optional(&path)?;
        let valid_end = match &bytes {
            None => {
                let mut b = Vec::new();
                b.extend_from_slice(&Self::header(&master));
                crate::keys::write_private(&path, &b)?;
                b.len()
            }
            Some(b) => Self::load(&path, b, &master, &mut keys)?,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path, "opening"))?;
        let epoch = keys
            .values()
            .map(|s| match s {
                Slot::Live(k) => u64::from(k.generation()),
                Slot::Erased(n) => u64::from(*n),
            })
            .sum();
        if bytes.as_ref().is_some_and(|b| b.len() > valid_end) {
            tracing::warn!("vault: cut a torn last entry (a crash during a key append)");
            file.set_len(valid_end as u64)
                .map_err(io(&path, "truncating"))?;
            file.sync_all().map_err(io(&path, "syncing"))?;
        }
        Ok(Vault {
            path,
            master: RwLock::new(master),
            keys: RwLock::new(keys),
            cache: Mutex::new(KeyMap::default()),
            cache_cap,
            epoch: std::sync::atomic::AtomicU64::new(epoch),
            file: Mutex::new(file),
        })
    }

    /// Whether the vault under `dir` is wrapped under `master` (no vault yet: false).
    pub(crate) fn wrapped_under(dir: &Path, master: &MasterKey) -> Result<bool, EngineError> {
        let path = dir.join("vault").join("keys.v1");
        Ok(iob_store::read_optional(&path)?
            .and_then(|b| FileHeader::decode(&b))
            .is_some_and(|h| h.base == id_bytes(master)))
    }

    fn header(master: &MasterKey) -> [u8; 16] {
        FileHeader {
            magic: MAGIC,
            version: VERSION,
            base: id_bytes(master),
        }
        .encode()
    }

    /// Reads a vault file into `keys`; returns the end of its last valid frame.
    fn load(
        path: &Path,
        b: &[u8],
        master: &MasterKey,
        keys: &mut KeyMap<Slot>,
    ) -> Result<usize, EngineError> {
        let bad = |reason: String| EngineError::Config {
            key: path.display().to_string(),
            reason,
        };
        let h = FileHeader::decode(b).ok_or_else(|| bad("not a vault file (too short)".into()))?;
        if h.magic != MAGIC || h.version != VERSION {
            return Err(bad(format!("not a version {VERSION} vault file")));
        }
        if h.base != id_bytes(master) {
            return Err(bad(format!(
                "the data keys are wrapped under master key {:016x}, but the configured master key is {}; set privacy.master_key_file or IOB_MASTER_KEY to the key this data directory was written with",
                h.base,
                master.id()
            )));
        }
        let mut at = 16;
        while at < b.len() {
            let Frame::Ok { body, total } = decode_frame(&b[at..], 21) else {
                // A crash during an append leaves a torn tail: cut it. A bad frame with valid
                // frames after it is damage in the middle: cutting there would destroy every
                // later key (shred people by accident), so refuse instead.
                if (at + 1..b.len()).any(|i| matches!(decode_frame(&b[i..], 21), Frame::Ok { .. }))
                {
                    return Err(bad(format!(
                        "damaged entry at byte {at} with valid entries after it; restore the vault from a backup (it is not cut, to keep the keys after the damage)"
                    )));
                }
                break;
            };
            let person = PersonKey(body[1..17].try_into().expect("16"));
            let generation = u32::from_le_bytes(body[17..21].try_into().expect("4"));
            match body[0] {
                KEY if body.len() == 21 + WRAPPED_LEN => {
                    let key = master
                        .unwrap(&person, generation, &body[21..])
                        .map_err(|e| bad(e.to_string()))?;
                    keys.insert(person, Slot::Live(key));
                }
                ERASED if body.len() == 21 => {
                    keys.insert(person, Slot::Erased(generation));
                }
                _ => return Err(bad(format!("unknown vault entry at byte {at}"))),
            }
            at += total;
        }
        Ok(at)
    }

    /// Keys destroyed so far (see the field).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn master_id(&self) -> String {
        self.master.read().id().to_string()
    }

    /// Live data keys.
    pub(crate) fn live_keys(&self) -> usize {
        self.keys
            .read()
            .values()
            .filter(|s| matches!(s, Slot::Live(_)))
            .count()
    }

    /// The expanded live key of `person`, from the cache or the vault.
    fn cached(&self, person: &PersonKey) -> Option<Arc<PersonCipher>> {
        self.ciphers(std::iter::once(person)).pop().flatten()
    }

    /// The expanded live keys of `persons` (`None` where there is none), with one lock of the
    /// cache for the whole batch.
    ///
    /// Cached keys are looked up once each, and only asked of the CPU before any is cloned:
    /// cloning an `Arc` is a locked increment, which waits for its cache line and lets no other
    /// miss overlap it, so cloning as they were found paid a thousand persons' misses one after
    /// another. Keys not cached yet are then read from the vault (`None` if it has none).
    pub(crate) fn ciphers<'a>(
        &self,
        persons: impl Iterator<Item = &'a PersonKey> + Clone,
    ) -> Vec<Option<Arc<PersonCipher>>> {
        let mut cache = self.cache.lock();
        let mut out: Vec<Option<Arc<PersonCipher>>> = {
            let found: Vec<Option<&Arc<PersonCipher>>> =
                persons.clone().map(|p| cache.get(p)).collect();
            for c in found.iter().flatten() {
                c.prefetch();
            }
            found.into_iter().map(|c| c.cloned()).collect()
        };
        if out.iter().all(Option::is_some) {
            return out;
        }
        let keys = self.keys.read();
        for (slot, p) in out.iter_mut().zip(persons) {
            if slot.is_some() {
                continue;
            }
            // An earlier miss of the same batch may have cached it.
            if let Some(c) = cache.get(p) {
                *slot = Some(c.clone());
                continue;
            }
            if let Some(Slot::Live(k)) = keys.get(p) {
                let c = Arc::new(k.cipher());
                if cache.len() >= self.cache_cap {
                    cache.clear();
                }
                cache.insert(*p, c.clone());
                *slot = Some(c);
            }
        }
        out
    }

    /// The cipher for `person`, issuing (durably) a key if they have none.
    pub(crate) fn cipher(&self, person: &PersonKey) -> Result<Arc<PersonCipher>, EngineError> {
        if let Some(c) = self.cached(person) {
            return Ok(c);
        }
        self.issue(std::slice::from_ref(person))?;
        self.cached(person).ok_or_else(|| EngineError::Config {
            key: self.path.display().to_string(),
            reason: "a data key just issued is missing".into(),
        })
    }

    /// Issues keys for those of `persons` without a live one: appended and fsynced once.
    pub(crate) fn issue(&self, persons: &[PersonKey]) -> Result<(), EngineError> {
        let mut file = self.file.lock();
        let master = self.master.read();
        let mut fresh = Vec::new();
        let mut buf = Vec::new();
        {
            let keys = self.keys.read();
            for p in persons {
                let generation = match keys.get(p) {
                    Some(Slot::Live(_)) => continue,
                    Some(Slot::Erased(next)) => *next,
                    None => 0,
                };
                if fresh.iter().any(|(q, _)| q == p) {
                    continue;
                }
                let key = DataKey::generate(generation);
                key_frame(&mut buf, &master, p, &key);
                fresh.push((*p, key));
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        use std::io::Seek;
        let end = file
            .seek(std::io::SeekFrom::End(0))
            .map_err(io(&self.path, "seeking"))?;
        let write = file.write_all(&buf).and_then(|()| file.sync_data());
        if let Err(e) = write {
            // Leave no half-written entry behind.
            let _ = file.set_len(end);
            return Err(io(&self.path, "appending to")(e));
        }
        let mut keys = self.keys.write();
        for (p, k) in fresh {
            keys.insert(p, Slot::Live(k));
        }
        Ok(())
    }

    /// The cipher that opens payloads of `person` sealed under `generation`; `None` if that
    /// key was destroyed (the person was erased).
    pub(crate) fn opener(&self, person: &PersonKey, generation: u32) -> Option<Arc<PersonCipher>> {
        self.cached(person).filter(|c| c.generation() == generation)
    }

    /// Destroys the data keys of `persons` and rewrites the vault without them.
    pub(crate) fn erase(&self, persons: &[PersonKey]) -> Result<usize, EngineError> {
        // Lock order everywhere: file, then cache, then keys (`ciphers` takes cache then keys).
        let mut file = self.file.lock();
        let mut cache = self.cache.lock();
        let mut keys = self.keys.write();
        let mut previous = Vec::with_capacity(persons.len());
        let mut destroyed = 0;
        for p in persons {
            let next = match keys.get(p) {
                Some(Slot::Live(k)) => {
                    destroyed += 1;
                    k.generation() + 1
                }
                Some(Slot::Erased(n)) => *n,
                None => 0,
            };
            previous.push((*p, keys.insert(*p, Slot::Erased(next))));
            cache.remove(p);
        }
        if let Err(e) = self.rewrite(&mut file, &self.master.read(), &keys) {
            // Not on disk: the keys are not destroyed, and memory must not say they are.
            for (p, slot) in previous.into_iter().rev() {
                match slot {
                    Some(s) => keys.insert(p, s),
                    None => keys.remove(&p),
                };
            }
            return Err(e);
        }
        self.epoch
            .fetch_add(destroyed as u64, std::sync::atomic::Ordering::SeqCst);
        Ok(destroyed)
    }

    /// Re-wraps every key under `new` and makes it the master key. Returns the keys re-wrapped.
    pub(crate) fn rotate(&self, new: MasterKey) -> Result<usize, EngineError> {
        let mut file = self.file.lock();
        let keys = self.keys.read();
        self.rewrite(&mut file, &new, &keys)?;
        *self.master.write() = new;
        Ok(keys.values().filter(|s| matches!(s, Slot::Live(_))).count())
    }

    /// Replaces the file with `keys` wrapped under `master` (temp file, fsync, rename), then
    /// points `file` at the new inode.
    fn rewrite(
        &self,
        file: &mut File,
        master: &MasterKey,
        keys: &KeyMap<Slot>,
    ) -> Result<(), EngineError> {
        let mut b = Vec::with_capacity(16 + keys.len() * (8 + 21 + WRAPPED_LEN));
        b.extend_from_slice(&Self::header(master));
        let mut sorted: Vec<(&PersonKey, &Slot)> = keys.iter().collect();
        sorted.sort_by_key(|(p, _)| **p);
        for (p, s) in sorted {
            match s {
                Slot::Live(k) => key_frame(&mut b, master, p, k),
                Slot::Erased(n) => erased_frame(&mut b, p, *n),
            }
        }
        crate::keys::write_private(&self.path, &b)?;
        // The held handle still names the old (unlinked) inode: reopen for later appends.
        let fresh = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io(&self.path, "reopening"))?;
        // Callers hold the file mutex, so no append is in flight during the swap.
        *file = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_text(&"11".repeat(32)).unwrap()
    }

    fn pk(i: u8) -> PersonKey {
        PersonKey([i; 16])
    }

    #[test]
    fn torn_tail_is_cut_and_damage_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path(), master(), 16).unwrap();
        v.issue(&[pk(1), pk(2), pk(3)]).unwrap();
        let sealed = v.cipher(&pk(1)).unwrap().seal(&pk(1), b"hello");
        drop(v);
        let path = dir.path().join("vault/keys.v1");
        let good = std::fs::read(&path).unwrap();

        // A torn append: half a frame at the end. Cut; every whole key is kept.
        let mut torn = good.clone();
        torn.extend_from_slice(&good[16..16 + 40]);
        std::fs::write(&path, &torn).unwrap();
        let v = Vault::open(dir.path(), master(), 16).unwrap();
        assert_eq!(v.live_keys(), 3);
        assert_eq!(
            v.opener(&pk(1), 0).unwrap().open(&pk(1), &sealed).unwrap(),
            b"hello"
        );
        drop(v);
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            good.len(),
            "the tail was cut"
        );

        // A flipped byte in the first entry, with good entries after it: refused, file kept.
        let mut damaged = good.clone();
        damaged[16 + 20] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let err = Vault::open(dir.path(), master(), 16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged entry at byte 16"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), damaged);

        // Wrong master key: named, not garbage.
        std::fs::write(&path, &good).unwrap();
        let other = MasterKey::from_text(&"22".repeat(32)).unwrap();
        let err = Vault::open(dir.path(), other, 16).unwrap_err().to_string();
        assert!(err.contains("master key"), "{err}");
    }

    #[test]
    fn erase_destroys_keys_durably_and_raises_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path(), master(), 16).unwrap();
        v.issue(&[pk(1), pk(2)]).unwrap();
        assert_eq!(v.epoch(), 0);
        assert_eq!(v.erase(&[pk(1), pk(9)]).unwrap(), 1);
        assert_eq!(v.epoch(), 1);
        assert!(v.opener(&pk(1), 0).is_none());
        // Re-issued after erasure: the next generation, the epoch unchanged.
        v.issue(&[pk(1)]).unwrap();
        assert_eq!(v.cipher(&pk(1)).unwrap().generation(), 1);
        drop(v);
        let v = Vault::open(dir.path(), master(), 16).unwrap();
        assert_eq!((v.epoch(), v.live_keys()), (1, 2));
        assert!(
            v.opener(&pk(1), 0).is_none(),
            "the old generation stays destroyed"
        );
        assert!(v.opener(&pk(1), 1).is_some());
    }

    #[test]
    fn batch_lookup_serves_hits_misses_repeats_and_unknown_persons_past_the_cache_bound() {
        let dir = tempfile::tempdir().unwrap();
        // A cache of 3 ciphers for 5 persons: it is emptied while the batch is served.
        let v = Vault::open(dir.path(), master(), 3).unwrap();
        v.issue(&[pk(1), pk(2), pk(3), pk(4), pk(5)]).unwrap();
        let _ = v.cached(&pk(2));
        let persons = [pk(1), pk(2), pk(1), pk(9), pk(3), pk(4), pk(5), pk(2)];
        let got = v.ciphers(persons.iter());
        assert_eq!(got.len(), persons.len());
        assert!(got[3].is_none(), "no key for an unknown person");
        for (p, c) in persons.iter().zip(&got) {
            if p == &pk(9) {
                continue;
            }
            // Each is that person's cipher: it opens what the vault's own cipher sealed.
            let sealed = v.cipher(p).unwrap().seal(p, b"x");
            assert_eq!(c.as_ref().unwrap().open(p, &sealed).unwrap(), b"x");
        }
        // Twice in a row: the same answers, from the cache where it still holds them.
        let again = v.ciphers(persons.iter());
        assert_eq!(
            again.iter().map(Option::is_some).collect::<Vec<_>>(),
            got.iter().map(Option::is_some).collect::<Vec<_>>()
        );
    }

    /// Sealing (cache, then keys) and erasing (file, cache, keys) take their locks in one order:
    /// running both at once finishes.
    #[test]
    fn erasing_while_sealing_does_not_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let v = std::sync::Arc::new(Vault::open(dir.path(), master(), 4).unwrap());
        let persons: Vec<PersonKey> = (0..32).map(pk).collect();
        v.issue(&persons).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let sealer = {
            let (v, persons) = (v.clone(), persons.clone());
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let _ = v.ciphers(persons.iter());
                }
                tx.send(()).unwrap();
            })
        };
        for round in 0..20u8 {
            v.erase(&[pk(round)]).unwrap();
            v.issue(&[pk(round)]).unwrap();
        }
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("sealing finished while erasures ran");
        sealer.join().unwrap();
        assert_eq!(v.epoch(), 20);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any truncation or byte flip of a vault file: open fails with an error or succeeds;
        /// never a panic, and a key it still holds opens what was sealed under it.
        #[test]
        fn damaged_vault_files_never_panic(cut in 0usize..400, flip in proptest::option::of((0usize..400, 1u8..=255))) {
            let dir = tempfile::tempdir().unwrap();
            let v = Vault::open(dir.path(), master(), 16).unwrap();
            v.issue(&[pk(1), pk(2), pk(3), pk(4)]).unwrap();
            let sealed: Vec<Vec<u8>> = (1..=4).map(|i| v.cipher(&pk(i)).unwrap().seal(&pk(i), b"x")).collect();
            drop(v);
            let path = dir.path().join("vault/keys.v1");
            let mut b = std::fs::read(&path).unwrap();
            b.truncate(b.len().saturating_sub(cut));
            if let Some((at, x)) = flip && at < b.len() {
                b[at] ^= x;
            }
            std::fs::write(&path, &b).unwrap();
            if let Ok(v) = Vault::open(dir.path(), master(), 16) {
                for (i, s) in (1..=4u8).zip(&sealed) {
                    if let Some(c) = v.opener(&pk(i), 0) {
                        proptest::prop_assert_eq!(c.open(&pk(i), s).unwrap(), b"x");
                    }
                }
            }
        }
    }
}
