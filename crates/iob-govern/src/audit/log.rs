//! The audit log's writer: opens (or starts) the chain under `DIR/audit/`, checks its tail
//! against `HEAD` on open, and appends one fsynced record per audited read.
//!
//! Must never acknowledge a record before both the record and `HEAD` are durable, never
//! extend a chain whose tail does not verify, and never record a raw identifier (subjects are
//! pseudonyms by type: [`PersonKey`](iob_types::PersonKey)).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use iob_types::Timestamp;

use super::chain::{AuditKey, GENESIS, same_mac, sync_dir};
use super::files::{self, HeadState};
use super::{AuditEntry, AuditRecord, actor_fields};
use crate::{Actor, GovernError, Permit};

/// Tuning of the audit log.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// A new segment file is started once the current one reaches this size.
    pub segment_bytes: u64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The audit directory of a data directory.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

/// The audit key of a data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("audit.key")
}

struct State {
    file: File,
    index: u32,
    len: u64,
    next_seq: u64,
    last_hash: String,
    /// Set when the files are in a state this process cannot vouch for (a failed rollback or
    /// `HEAD` update): every later append fails until a restart re-checks the tail.
    broken: Option<String>,
}

/// The appending side of the audit chain. One per data directory (the store's lock keeps a
/// second process out).
pub struct AuditLog {
    dir: PathBuf,
    key: AuditKey,
    options: AuditOptions,
    state: Mutex<State>,
    notes: Vec<String>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("dir", &self.dir).finish()
    }
}

fn open_segment(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Where the chain stands after checking its tail against `HEAD`.
struct Tail {
    next_seq: u64,
    last_hash: String,
    rewrite_head: bool,
}

fn check_tail(
    last: Option<&AuditRecord>,
    head: &HeadState,
    key: &AuditKey,
) -> Result<Tail, String> {
    let Some(r) = last else {
        return match head {
            HeadState::Absent => Ok(Tail {
                next_seq: 0,
                last_hash: GENESIS.into(),
                rewrite_head: false,
            }),
            HeadState::Valid(h) => Err(format!(
                "HEAD names record {} but the log holds no records: records were removed",
                h.seq
            )),
            HeadState::Invalid(why) => Err(why.clone()),
        };
    };
    if !same_mac(&key.record_hash(r), &r.hash) {
        return Err(format!(
            "the last record (seq {}) fails its MAC: it was changed or forged",
            r.seq
        ));
    }
    let h = match head {
        HeadState::Valid(h) => h,
        HeadState::Absent => return Err("the log holds records but HEAD is missing".into()),
        HeadState::Invalid(why) => return Err(why.clone()),
    };
    let ok = |rewrite_head| Tail {
        next_seq: r.seq + 1,
        last_hash: r.hash.clone(),
        rewrite_head,
    };
    if h.seq == r.seq && same_mac(&h.hash, &r.hash) {
        Ok(ok(false))
    } else if h.seq + 1 == r.seq && same_mac(&h.hash, &r.prev) {
        // A crash between the record's fsync and HEAD's replacement.
        Ok(ok(true))
    } else if h.seq > r.seq {
        Err(format!(
            "HEAD names record {} but the log ends at record {}: the last records were removed",
            h.seq, r.seq
        ))
    } else {
        Err(format!(
            "HEAD (record {}) does not match the log's last record ({})",
            h.seq, r.seq
        ))
    }
}

impl AuditLog {
    /// Opens the audit log of `data_dir`, creating it (and its key) on first use. Refuses a
    /// log whose last record, `HEAD` or key does not check out; cuts an incomplete last line
    /// that `HEAD` shows was never acknowledged (a crash mid-append), and says so in
    /// [`AuditLog::notes`].
    pub fn open(data_dir: &Path, options: AuditOptions) -> Result<AuditLog, GovernError> {
        let dir = audit_dir(data_dir);
        let io = |what: &str, e| GovernError::audit_io(format!("{what} {}", dir.display()), e);
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&dir).map_err(|e| io("creating", e))?;
        let segs = files::segments(&dir)?;
        let fresh = segs.is_empty() && !dir.join(files::HEAD_FILE).exists();
        let key = AuditKey::load(&key_path(data_dir), fresh)?;
        let head = files::read_head(&dir, &key)?;
        let broken = |why: String| GovernError::AuditBroken(why);

        // The last complete record, searching back over empty segments.
        let mut last = None;
        for (_, path) in segs.iter().rev() {
            let lines = files::read_lines(path)?;
            if let Some((n, text)) = lines.complete.last() {
                let r: AuditRecord = serde_json::from_str(text).map_err(|e| {
                    broken(format!(
                        "{} line {n}: the last record is not a valid audit record: {e}",
                        path.display()
                    ))
                })?;
                last = Some(r);
                break;
            }
        }
        let tail = check_tail(last.as_ref(), &head, &key).map_err(broken)?;

        let mut notes = Vec::new();
        let (index, path) = segs
            .last()
            .cloned()
            .unwrap_or_else(|| (0, files::segment_path(&dir, 0)));
        let file = open_segment(&path).map_err(|e| io("opening a segment in", e))?;
        let lines = files::read_lines(&path)?;
        if let Some(torn) = lines.torn {
            file.set_len(lines.whole_len)
                .and_then(|_| file.sync_data())
                .map_err(|e| io("cutting an incomplete line in", e))?;
            notes.push(format!(
                "cut an incomplete last line ({torn} bytes) from {}: an append interrupted by a crash, never acknowledged",
                path.display()
            ));
        }
        if fresh {
            sync_dir(&dir).map_err(|e| io("syncing", e))?;
        }
        if tail.rewrite_head {
            files::write_head(&dir, &key, tail.next_seq - 1, &tail.last_hash)?;
            notes.push(format!(
                "HEAD was one record behind the log (a crash between an append and its HEAD update); it now names record {}",
                tail.next_seq - 1
            ));
        }
        Ok(AuditLog {
            dir,
            key,
            options,
            state: Mutex::new(State {
                file,
                index,
                len: lines.whole_len,
                next_seq: tail.next_seq,
                last_hash: tail.last_hash,
                broken: None,
            }),
            notes,
        })
    }

    /// What opening repaired (an interrupted append), for the operator's log.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number of records and the hash of the last one ([`GENESIS`] when empty).
    pub fn head(&self) -> (u64, String) {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.next_seq, st.last_hash.clone())
    }

    /// Appends the record of one read by `permit`'s actor at `at`, durably (record and `HEAD`
    /// fsynced) before returning its sequence number. Reads by internal jobs
    /// ([`Actor::System`]) are not recorded (`Ok(None)`). An error means the read must not
    /// proceed.
    pub fn record(
        &self,
        permit: &Permit,
        at: Timestamp,
        entry: AuditEntry,
    ) -> Result<Option<u64>, GovernError> {
        if matches!(permit.actor(), Actor::System(_)) {
            return Ok(None);
        }
        let (actor, key) = actor_fields(permit.actor());
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &st.broken {
            return Err(GovernError::AuditBroken(why.clone()));
        }
        if st.len > 0 && st.len >= self.options.segment_bytes {
            self.rotate(&mut st)?;
        }
        let mut r = AuditRecord {
            seq: st.next_seq,
            time: at.to_rfc3339(),
            actor: actor.into(),
            key,
            purpose: permit.purpose().as_str().into(),
            subject: entry.subject.map(|k| k.to_hex()),
            action: entry.access.as_str().into(),
            items: entry.items,
            detail: entry.detail,
            prev: st.last_hash.clone(),
            hash: String::new(),
        };
        r.hash = self.key.record_hash(&r);
        let mut line = serde_json::to_vec(&r).expect("serializable");
        line.push(b'\n');
        let path = files::segment_path(&self.dir, st.index);
        if let Err(e) = st.file.write_all(&line).and_then(|_| st.file.sync_data()) {
            // Leave no half-written record behind.
            let len = st.len;
            if st
                .file
                .set_len(len)
                .and_then(|_| st.file.sync_data())
                .is_err()
            {
                st.broken = Some(format!(
                    "a failed append could not be rolled back in {}",
                    path.display()
                ));
            }
            return Err(GovernError::audit_io(
                format!("appending to {}", path.display()),
                e,
            ));
        }
        st.len += line.len() as u64;
        st.next_seq += 1;
        st.last_hash = r.hash.clone();
        if let Err(e) = files::write_head(&self.dir, &self.key, r.seq, &r.hash) {
            st.broken = Some(format!(
                "HEAD could not be updated after record {}: {e}",
                r.seq
            ));
            return Err(e);
        }
        Ok(Some(r.seq))
    }

    fn rotate(&self, st: &mut State) -> Result<(), GovernError> {
        let next = st.index + 1;
        let path = files::segment_path(&self.dir, next);
        let file = open_segment(&path)
            .map_err(|e| GovernError::audit_io(format!("creating {}", path.display()), e))?;
        sync_dir(&self.dir)
            .map_err(|e| GovernError::audit_io(format!("syncing {}", self.dir.display()), e))?;
        st.file = file;
        st.index = next;
        st.len = 0;
        Ok(())
    }
}
