//! The unify snapshot file (`DIR/unify/state.snap`): the unifier's state sealed under the
//! vault's snapshot key and framed (magic, file version, length, crc32c), so a restart
//! continues from it instead of replaying the whole log. A snapshot is a cache of the log: one
//! that is missing, damaged, of another version or sealed under a key the vault no longer has
//! is ignored and the log is replayed.
//!
//! Must never write the state in plaintext.

use std::path::{Path, PathBuf};

use iob_unify::Unifier;

use crate::EngineError;
use crate::privacy::Privacy;
use crate::vault::SNAPSHOT_PERSON;

const SNAP_MAGIC: &[u8; 8] = b"IOBUNIFY";
/// The file framing's version (the state inside carries its own: `iob_unify::snapshot::VERSION`).
/// Version 2 seals the state (it holds traits and consent histories) under the vault's
/// snapshot key; version 3 adds the vault's erasure epoch. Older files are not read: the log is
/// replayed instead.
const SNAP_FILE_VERSION: u16 = 3;

pub(crate) fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("unify").join("state.snap")
}

/// magic | version u16 | erasure epoch u64 | length u64
const SNAP_HEADER: usize = SNAP_MAGIC.len() + 2 + 8 + 8;

/// The unifier's state sealed and framed (magic, version, the vault's erasure epoch, length,
/// crc32c). Call it with the unifier locked: erasures change the state and the epoch under that
/// lock, so the two written together always match.
pub(crate) fn frame_snapshot(u: &Unifier, privacy: &Privacy) -> Result<Vec<u8>, EngineError> {
    let mut state = u.snapshot_into(vec![0u8; SNAP_HEADER]);
    // Sealed in place after the header (the header is written below, over the zeros).
    let mut sealed = state.split_off(SNAP_HEADER);
    privacy
        .vault
        .cipher(&SNAPSHOT_PERSON)?
        .seal_in_place(&SNAPSHOT_PERSON, &mut sealed);
    let mut b = state;
    b.append(&mut sealed);
    let len = (b.len() - SNAP_HEADER) as u64;
    b[..8].copy_from_slice(SNAP_MAGIC);
    b[8..10].copy_from_slice(&SNAP_FILE_VERSION.to_le_bytes());
    b[10..18].copy_from_slice(&privacy.vault.epoch().to_le_bytes());
    b[18..SNAP_HEADER].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&b[SNAP_HEADER..]);
    b.extend_from_slice(&crc.to_le_bytes());
    Ok(b)
}

/// The state of a valid snapshot file (`None`: there is none yet), or why it cannot be used. A snapshot written before
/// a key was destroyed (an erasure finished but the process died before rewriting the
/// snapshot, or a retention day expired since) is not used: it may hold what was erased.
pub(crate) fn read_snapshot(path: &Path, privacy: &Privacy) -> Result<Option<Vec<u8>>, String> {
    let b = match iob_store::read_optional(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let h = SNAP_HEADER;
    if b.len() < h + 4 || &b[..8] != SNAP_MAGIC {
        return Err("not a unify snapshot".into());
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != SNAP_FILE_VERSION {
        return Err(format!("snapshot file version {version}"));
    }
    let epoch = u64::from_le_bytes(b[10..18].try_into().expect("8"));
    if epoch != privacy.vault.epoch() {
        return Err(format!(
            "taken before the latest key destruction (erasure epoch {epoch}, now {})",
            privacy.vault.epoch()
        ));
    }
    let len = u64::from_le_bytes(b[18..h].try_into().expect("8")) as usize;
    if b.len() != h + len + 4 {
        return Err("truncated snapshot".into());
    }
    let crc = u32::from_le_bytes(b[h + len..].try_into().expect("4"));
    if crc32c::crc32c(&b[h..h + len]) != crc {
        return Err("snapshot checksum mismatch".into());
    }
    let sealed = &b[h..h + len];
    let generation = iob_govern::sealed_generation(sealed).ok_or("truncated snapshot")?;
    let cipher = privacy
        .vault
        .opener(&SNAPSHOT_PERSON, generation)
        .ok_or("the snapshot key is not in the vault")?;
    cipher
        .open(&SNAPSHOT_PERSON, sealed)
        .map(Some)
        .map_err(|e| e.to_string())
}
