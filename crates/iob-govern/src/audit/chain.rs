//! The chain's cryptography and key: the canonical encoding of a record, its keyed hash
//! (HMAC-SHA256 under `DIR/secrets/audit.key`), the head's MAC, and the key file itself.
//!
//! Must never print or log the key, and never let two different records encode to the same
//! bytes (every field is length-prefixed, options are tagged).

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::AuditRecord;
use crate::{GovernError, SecretKey};

/// The `prev` of the first record: the chain starts from this value.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const RECORD_DOMAIN: &[u8] = b"iob-audit-record/1\0";
const HEAD_DOMAIN: &[u8] = b"iob-audit-head/1\0";

/// The audit chain's MAC key. `Debug` never prints it.
#[derive(Clone)]
pub struct AuditKey(Hmac<Sha256>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    pub fn new(key: &SecretKey) -> Self {
        AuditKey(<Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("any key length"))
    }

    /// Reads `path` (32 bytes). With `create`, a missing key is generated and written with
    /// mode 0600 first.
    pub fn load(path: &Path, create: bool) -> Result<AuditKey, GovernError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(AuditKey::new(&SecretKey::from_bytes(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = SecretKey::generate();
                write_private(path, key.expose())?;
                Ok(AuditKey::new(&key))
            }
            Err(e) => Err(GovernError::audit_io(
                format!("reading {}", path.display()),
                e,
            )),
        }
    }

    /// The record's hash: HMAC-SHA256 of its canonical encoding (every field but `hash`,
    /// `prev` included), lower-case hex.
    pub fn record_hash(&self, r: &AuditRecord) -> String {
        let mut m = self.0.clone();
        m.update(RECORD_DOMAIN);
        m.update(&r.seq.to_be_bytes());
        for s in [&r.time, &r.actor] {
            put_str(&mut m, s);
        }
        put_opt(&mut m, r.key.as_deref());
        put_str(&mut m, &r.purpose);
        put_opt(&mut m, r.subject.as_deref());
        put_str(&mut m, &r.action);
        match r.items {
            None => m.update(&[0]),
            Some(n) => {
                m.update(&[1]);
                m.update(&n.to_be_bytes());
            }
        }
        put_opt(&mut m, r.detail.as_deref());
        put_str(&mut m, &r.prev);
        hex(&m.finalize().into_bytes())
    }

    /// The MAC of a head naming record `seq` with hash `hash`.
    pub fn head_mac(&self, seq: u64, hash: &str) -> String {
        let mut m = self.0.clone();
        m.update(HEAD_DOMAIN);
        m.update(&seq.to_be_bytes());
        put_str(&mut m, hash);
        hex(&m.finalize().into_bytes())
    }
}

fn put_str(m: &mut Hmac<Sha256>, s: &str) {
    m.update(&(s.len() as u64).to_be_bytes());
    m.update(s.as_bytes());
}

fn put_opt(m: &mut Hmac<Sha256>, s: Option<&str>) {
    match s {
        None => m.update(&[0]),
        Some(s) => {
            m.update(&[1]);
            put_str(m, s);
        }
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Constant-time comparison of two hex MACs.
pub fn same_mac(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// [`crate::private_file::write_private`], as an audit error.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), GovernError> {
    crate::private_file::write_private(path, bytes)
        .map_err(|e| GovernError::audit_io(format!("writing {}", path.display()), e))
}

pub use crate::private_file::sync_dir;
