//! The audit log's writer: opens (or starts) the chain under `DIR/audit/`, checks its tail
//! against `HEAD` on open, and appends one record per audited read.
//!
//! Appends are group-committed, as the event store's are: a read queues its record; if no
//! commit is running it becomes the leader, takes every queued record, appends them,
//! `fdatasync`s once, points `HEAD` at the last one (one in-place `fdatasync`), hands each
//! waiter its sequence number and wakes them all; records queued meanwhile form the next
//! group. Concurrent reads share two flushes instead of paying three each.
//!
//! Must never acknowledge a record before both the record and `HEAD` are durable, never
//! extend a chain whose tail does not verify, and never record a raw identifier (subjects are
//! pseudonyms by type: [`PersonKey`](iob_types::PersonKey)).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use iob_types::Timestamp;

use super::chain::{AuditKey, sync_dir};
use super::files::{self, HeadState};
use super::tail::{check_tail, recent_records};
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
    /// Bytes of records in the current segment: where the next record is written.
    len: u64,
    /// The segment's size on disk: records, then zeros written ahead ([`files::PREALLOCATE`]).
    capacity: u64,
    next_seq: u64,
    last_hash: String,
    /// Set when the files are in a state this process cannot vouch for (a failed rollback or
    /// `HEAD` update): every later append fails until a restart re-checks the tail.
    broken: Option<String>,
    /// Group commits made by this process (records ÷ commits = the mean group size).
    commits: u64,
}

/// The leader's turn: ending it (also by unwinding) lets the next leader commit and wakes
/// the waiters, so a failed commit never leaves them waiting.
struct Leading<'a>(&'a AuditLog);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.lock_queue().committing = false;
        self.0.committed.notify_all();
    }
}

#[derive(Default)]
struct Queue {
    records: Vec<Queued>,
    committing: bool,
}

/// A record waiting for the next group commit, and where its outcome goes.
struct Queued {
    record: AuditRecord,
    outcome: Arc<OnceLock<Result<u64, GovernError>>>,
}

/// The appending side of the audit chain. One per data directory (the store's lock keeps a
/// second process out).
pub struct AuditLog {
    dir: PathBuf,
    key: AuditKey,
    options: AuditOptions,
    /// Records queued for the next group commit, and whether a commit is running (never
    /// held while writing).
    queue: Mutex<Queue>,
    /// Signalled after each group commit: waiters look at their outcome.
    committed: std::sync::Condvar,
    /// The writer's state (held by the leader while it commits).
    state: Mutex<State>,
    notes: Vec<String>,
}

/// A copy of an append error for each waiter of a failed group (errors are not `Clone`:
/// the I/O source is carried as its kind and message).
fn copy_error(e: &GovernError) -> GovernError {
    match e {
        GovernError::AuditIo { what, source } => GovernError::AuditIo {
            what: what.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        GovernError::AuditBroken(why) => GovernError::AuditBroken(why.clone()),
        other => GovernError::AuditBroken(other.to_string()),
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("dir", &self.dir).finish()
    }
}

/// Opens a segment for positioned writes (not `O_APPEND`: records overwrite the zeros written
/// ahead of them, see [`files::PREALLOCATE`]).
fn open_segment(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
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

        let back_to = match &head {
            HeadState::Valid(h) => Some(h.seq),
            _ => None,
        };
        let recent = recent_records(&segs, back_to)?;
        let tail = check_tail(&recent, &head, &key).map_err(broken)?;

        let mut notes = Vec::new();
        let (index, path) = segs
            .last()
            .cloned()
            .unwrap_or_else(|| (0, files::segment_path(&dir, 0)));
        let file = open_segment(&path).map_err(|e| io("opening a segment in", e))?;
        let lines = files::read_lines(&path)?;
        let mut capacity = file
            .metadata()
            .map_err(|e| io("reading the size of a segment in", e))?
            .len();
        if let Some(torn) = lines.torn {
            file.set_len(lines.whole_len)
                .and_then(|_| file.sync_data())
                .map_err(|e| io("cutting an incomplete line in", e))?;
            capacity = lines.whole_len;
            notes.push(format!(
                "cut an incomplete last line ({torn} bytes) from {}: an append interrupted by a crash, never acknowledged",
                path.display()
            ));
        }
        if fresh {
            sync_dir(&dir).map_err(|e| io("syncing", e))?;
        }
        if tail.behind > 0 {
            files::write_head(&dir, &key, tail.next_seq - 1, &tail.last_hash)?;
            notes.push(format!(
                "HEAD was {} record(s) behind the log (a crash between an append and its HEAD update); it now names record {}",
                tail.behind,
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
                capacity,
                next_seq: tail.next_seq,
                last_hash: tail.last_hash,
                broken: None,
                commits: 0,
            }),
            queue: Mutex::new(Queue::default()),
            committed: std::sync::Condvar::new(),
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
    /// proceed. Concurrent calls are committed together (see the module docs).
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
        let record = AuditRecord {
            seq: 0,
            time: at.to_rfc3339(),
            actor: actor.into(),
            key,
            purpose: permit.purpose().as_str().into(),
            subject: entry.subject.map(|k| k.to_hex()),
            action: entry.access.as_str().into(),
            items: entry.items,
            detail: entry.detail,
            prev: String::new(),
            hash: String::new(),
        };
        let outcome = Arc::new(OnceLock::new());
        let mut queue = self.lock_queue();
        queue.records.push(Queued {
            record,
            outcome: outcome.clone(),
        });
        loop {
            if let Some(done) = outcome.get() {
                return match done {
                    Ok(seq) => Ok(Some(*seq)),
                    Err(e) => Err(copy_error(e)),
                };
            }
            if queue.committing {
                queue = self
                    .committed
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: commit everything queued (ours included) without holding the queue.
            queue.committing = true;
            let group = std::mem::take(&mut queue.records);
            drop(queue);
            let lead = Leading(self);
            {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                self.commit(&mut st, group);
            }
            drop(lead);
            queue = self.lock_queue();
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Group commits made since open: with [`AuditLog::head`]'s count, how well concurrent
    /// reads shared their flushes.
    pub fn commits(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).commits
    }

    /// Appends `group` with one `fdatasync`, then points `HEAD` at its last record, and sets
    /// every member's outcome: all committed, or all failed with nothing of them left behind.
    fn commit(&self, st: &mut State, mut group: Vec<Queued>) {
        let result = self.append(st, &mut group);
        for q in group {
            let outcome = match &result {
                Ok(()) => Ok(q.record.seq),
                Err(e) => Err(copy_error(e)),
            };
            let _ = q.outcome.set(outcome);
        }
    }

    fn append(&self, st: &mut State, group: &mut [Queued]) -> Result<(), GovernError> {
        if let Some(why) = &st.broken {
            return Err(GovernError::AuditBroken(why.clone()));
        }
        if st.len > 0 && st.len >= self.options.segment_bytes {
            self.rotate(st)?;
        }
        let mut lines = Vec::new();
        let (mut seq, mut prev) = (st.next_seq, st.last_hash.clone());
        for q in group.iter_mut() {
            let r = &mut q.record;
            r.seq = seq;
            r.prev = std::mem::take(&mut prev);
            r.hash = self.key.record_hash(r);
            serde_json::to_writer(&mut lines, &*r).expect("serializable");
            lines.push(b'\n');
            seq += 1;
            prev = r.hash.clone();
        }
        let path = files::segment_path(&self.dir, st.index);
        if let Err(e) = write_records(st, &lines) {
            // Leave no half-written record behind.
            let zeros = vec![0u8; lines.len()];
            if write_at(&st.file, &zeros, st.len)
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
        st.len += lines.len() as u64;
        st.commits += 1;
        st.next_seq = seq;
        st.last_hash = prev;
        if let Err(e) = files::update_head(&self.dir, &self.key, seq - 1, &st.last_hash) {
            st.broken = Some(format!(
                "HEAD could not be updated after record {}: {e}",
                seq - 1
            ));
            return Err(e);
        }
        Ok(())
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
        st.capacity = 0;
        Ok(())
    }
}

/// Writes `lines` at the end of the records and syncs them. Grows the segment first when they
/// do not fit in the space written ahead: zeros up to the next [`files::PREALLOCATE`]
/// boundary, covered by the same `fdatasync` (that one also commits the new size).
fn write_records(st: &mut State, lines: &[u8]) -> std::io::Result<()> {
    let end = st.len + lines.len() as u64;
    if end > st.capacity {
        let grown = end.div_ceil(files::PREALLOCATE) * files::PREALLOCATE;
        let zeros = vec![0u8; (grown - st.capacity) as usize];
        write_at(&st.file, &zeros, st.capacity)?;
        st.capacity = grown;
    }
    write_at(&st.file, lines, st.len)?;
    st.file.sync_data()
}

fn write_at(file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(bytes, at)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = file;
        f.seek(SeekFrom::Start(at))?;
        f.write_all(bytes)
    }
}
