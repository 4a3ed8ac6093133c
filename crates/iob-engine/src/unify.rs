//! The engine's unify stage: a follower that applies the durable log, in order, to the identity
//! graph and the profiles, and the purpose-bound reads of persons (profile, journey,
//! explanation) and `rebuild`.
//!
//! The follower runs on its own thread, woken after every append, so ingestion never waits for
//! profile updates; a read first applies whatever is durable but not applied yet, so an event
//! acknowledged before a read is always in the profile it returns. State is rebuilt from the log
//! when the engine opens. Must never read the log without a permit, and never let an event be
//! applied twice or skipped (the unifier's `applied` sequence number guards both).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use iob_govern::{Permit, Pseudonymizer};
use iob_store::Store;
use iob_types::Timestamp;
use iob_unify::{Explanation, PersonId, ProfileView, StoredEvent, Unifier};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::{Config, Engine, EngineError};

/// Log records applied per lock hold, so reads interleave with a long catch-up.
const PAGE: usize = 4096;

const SNAP_MAGIC: &[u8; 8] = b"IOBUNIFY";
/// The file framing's version (the state inside carries its own: `iob_unify::snapshot::VERSION`).
const SNAP_FILE_VERSION: u16 = 1;

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("unify").join("state.snap")
}

const SNAP_HEADER: usize = SNAP_MAGIC.len() + 2 + 8;

/// The unifier's state framed (magic, version, length, crc32c), encoded in one buffer.
fn frame_snapshot(u: &Unifier) -> Vec<u8> {
    let mut b = u.snapshot_into(vec![0u8; SNAP_HEADER]);
    let len = (b.len() - SNAP_HEADER) as u64;
    b[..8].copy_from_slice(SNAP_MAGIC);
    b[8..10].copy_from_slice(&SNAP_FILE_VERSION.to_le_bytes());
    b[10..SNAP_HEADER].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&b[SNAP_HEADER..]);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// A valid snapshot file and where its state lies in it, or why there is none to use.
fn read_snapshot(path: &Path) -> Result<(Vec<u8>, std::ops::Range<usize>), String> {
    let b = match iob_store::read_optional(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Err("no snapshot".into()),
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
    let len = u64::from_le_bytes(b[10..h].try_into().expect("8")) as usize;
    if b.len() != h + len + 4 {
        return Err("truncated snapshot".into());
    }
    let crc = u32::from_le_bytes(b[h + len..].try_into().expect("4"));
    if crc32c::crc32c(&b[h..h + len]) != crc {
        return Err("snapshot checksum mismatch".into());
    }
    Ok((b, h..h + len))
}

pub(crate) struct UnifyShared {
    store: Arc<Store>,
    pub(crate) unifier: Mutex<Unifier>,
    permit: Permit,
    wake: Mutex<bool>,
    cv: Condvar,
    stop: AtomicBool,
    /// Imports in progress: the follower waits for them (bulk history is applied after, in one
    /// pass, instead of competing with the import for the cores).
    paused: AtomicUsize,
    config: Config,
    pseudonyms: Pseudonymizer,
    snapshot: PathBuf,
    /// The applied seq of the last snapshot written or loaded.
    saved: Mutex<Option<u64>>,
    /// Whether the state at open came from the snapshot (else from replaying the log).
    restored: bool,
}

/// See [`UnifyShared::pause`].
pub(crate) struct PauseGuard(Arc<UnifyShared>);

impl Drop for PauseGuard {
    fn drop(&mut self) {
        self.0.paused.fetch_sub(1, Ordering::SeqCst);
        self.0.notify();
    }
}

/// The follower thread; stopped and joined on drop.
pub(crate) struct Follower {
    shared: Arc<UnifyShared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.notify();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Err(e) = self.shared.save_snapshot() {
            tracing::warn!(error = %e, "could not save the unify snapshot; the next start replays the log");
        }
    }
}

fn new_unifier(config: &Config, pseudonyms: &Pseudonymizer) -> Result<Unifier, EngineError> {
    Unifier::new(
        pseudonyms.clone(),
        &config.identity,
        config.profiles.clone(),
    )
    .map_err(|e| match e {
        iob_unify::UnifyError::Config { key, reason } => EngineError::Config { key, reason },
        other => EngineError::Config {
            key: "profiles".into(),
            reason: other.to_string(),
        },
    })
}

impl UnifyShared {
    pub(crate) fn start(
        store: Arc<Store>,
        config: &Config,
        pseudonyms: &Pseudonymizer,
        permit: Permit,
    ) -> Result<(Arc<UnifyShared>, Follower), EngineError> {
        let snapshot = snapshot_path(&config.data_dir());
        let mut unifier = new_unifier(config, pseudonyms)?;
        let saved = match read_snapshot(&snapshot) {
            Ok((file, state)) => match unifier.restore(&file[state]) {
                // A snapshot ahead of the log (a log restored from an older backup) is stale.
                Ok(()) if unifier.applied().is_none_or(|a| a < store.stats().next_seq) => {
                    tracing::info!(applied_through = ?unifier.applied(), persons = unifier.persons(), "unify state restored from its snapshot");
                    unifier.applied()
                }
                Ok(()) => {
                    tracing::warn!("the unify snapshot is ahead of the log; replaying the log");
                    unifier = new_unifier(config, pseudonyms)?;
                    None
                }
                Err(e) => {
                    tracing::warn!(reason = %e, "replaying the log to rebuild identity and profiles");
                    None
                }
            },
            Err(why) => {
                tracing::debug!(reason = %why, "no usable unify snapshot");
                None
            }
        };
        let shared = Arc::new(UnifyShared {
            store,
            unifier: Mutex::new(unifier),
            permit,
            wake: Mutex::new(false),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            paused: AtomicUsize::new(0),
            config: config.clone(),
            pseudonyms: pseudonyms.clone(),
            snapshot,
            restored: saved.is_some(),
            saved: Mutex::new(saved),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("iob-unify".into())
            .spawn(move || s.follow())
            .map_err(|e| EngineError::io("starting the unify follower thread", e))?;
        Ok((
            Arc::clone(&shared),
            Follower {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Holds the follower back until the returned guard is dropped (an import).
    pub(crate) fn pause(self: &Arc<Self>) -> PauseGuard {
        self.paused.fetch_add(1, Ordering::SeqCst);
        PauseGuard(Arc::clone(self))
    }

    /// Wakes the follower (after an append).
    pub(crate) fn notify(&self) {
        *self.wake.lock() = true;
        self.cv.notify_one();
    }

    fn follow(&self) {
        if !self.config.profiles.live {
            return; // Reads catch up instead.
        }
        let every = Duration::from_secs(self.config.profiles.snapshot_secs);
        let mut last_save = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            if self.paused.load(Ordering::SeqCst) == 0
                && let Err(e) = self.apply_pending(true)
            {
                tracing::error!(error = %e, "unify follower: reading the log failed; retrying");
            }
            if !every.is_zero() && last_save.elapsed() >= every {
                last_save = Instant::now();
                if let Err(e) = self.save_snapshot() {
                    tracing::warn!(error = %e, "could not save the unify snapshot");
                }
            }
            let mut woken = self.wake.lock();
            if !*woken {
                self.cv.wait_for(&mut woken, Duration::from_millis(250));
            }
            *woken = false;
        }
    }

    /// Writes the state's snapshot if it changed since the last one.
    pub(crate) fn save_snapshot(&self) -> Result<(), EngineError> {
        let (applied, framed) = {
            let u = self.unifier.lock();
            if u.applied() == *self.saved.lock() {
                return Ok(());
            }
            (u.applied(), frame_snapshot(&u))
        };
        let dir = self.snapshot.parent().expect("unify/");
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        iob_store::write_atomic(&self.snapshot, &framed)?;
        *self.saved.lock() = applied;
        Ok(())
    }

    /// Applies every durable record not applied yet; returns how many were applied.
    pub(crate) fn catch_up(&self) -> Result<u64, EngineError> {
        self.apply_pending(false)
    }

    /// [`Self::catch_up`]; the follower (`background`) stops early when an import starts.
    fn apply_pending(&self, background: bool) -> Result<u64, EngineError> {
        let mut applied = 0;
        loop {
            if background && self.paused.load(Ordering::SeqCst) > 0 {
                return Ok(applied);
            }
            // The lock is held per page, so reads interleave with a long catch-up.
            match apply_page(&self.store, &self.permit, &mut self.unifier.lock())? {
                0 => return Ok(applied),
                n => applied += n,
            }
        }
    }
}

/// One page of a person's journey.
#[derive(Debug, Clone, Serialize)]
pub struct JourneyPage {
    pub person: PersonId,
    pub events: Vec<serde_json::Value>,
    /// Pass as `before` for the next (older) page; `None` at the start of the journey.
    pub next: Option<String>,
}

/// What `rebuild` did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub events: u64,
    pub persons: usize,
    pub identifiers: usize,
    pub seconds: f64,
    /// Whether the rebuilt state equals the state built online (profiles and persons).
    pub equal_to_online: bool,
}

/// An identity explanation with the linking events' own description.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityReport {
    #[serde(flatten)]
    pub explanation: Explanation,
    /// For each log sequence number named above: type, event name, source, event time.
    pub events: Vec<serde_json::Value>,
}

impl Engine {
    fn unify(&self) -> &UnifyShared {
        &self.unify
    }

    /// The person behind `id` (see [`Unifier::lookup`]), after applying the durable log.
    fn person(&self, id: &str) -> Result<Option<PersonId>, EngineError> {
        self.unify().catch_up()?;
        Ok(self.unify().unifier.lock().lookup(id))
    }

    /// The profile of the person behind any of their identifiers, with rolling windows,
    /// recency and decayed affinities evaluated at `at` (default: now; history imported from
    /// years ago reads best "as of" its own time).
    pub fn profile(
        &self,
        permit: &Permit,
        id: &str,
        at: Option<Timestamp>,
    ) -> Result<Option<ProfileView>, EngineError> {
        let Some(p) = self.person(id)? else {
            return Ok(None);
        };
        let now = at.unwrap_or_else(|| self.clock.now()).0;
        let view = self.unify().unifier.lock().view(p, now);
        if let (Some(at), Some(v)) = (at, &view)
            && at.0 < v.last_seen
        {
            // Profiles are kept current, not versioned: an earlier "as of" would silently mix
            // later events into it.
            return Err(EngineError::Invalid {
                field: "at".into(),
                reason: format!(
                    "is before this person's latest event ({}); a profile holds everything up to now, so evaluate it at or after that time",
                    Timestamp(v.last_seen).to_rfc3339()
                ),
            });
        }
        self.audit_person(permit, iob_govern::Access::ProfileRead, p, 1)?;
        Ok(view)
    }

    /// The person's journey across channels, newest first, `limit` events per page.
    pub fn journey(
        &self,
        permit: &Permit,
        id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Option<JourneyPage>, EngineError> {
        let before = match before {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| EngineError::Invalid {
                field: "before".into(),
                reason: format!(
                    "`{c}` is not a journey cursor (pass the `next` of the previous page)"
                ),
            })?),
        };
        let Some(person) = self.person(id)? else {
            return Ok(None);
        };
        let limit = limit.clamp(1, 1000);
        let entries = self
            .unify()
            .unifier
            .lock()
            .journey(person, before, limit + 1);
        let more = entries.len() > limit;
        let mut events = Vec::with_capacity(limit);
        for &(_, seq) in entries.iter().take(limit) {
            for r in self.store.read_log(permit, seq, 1)? {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.payload).map_err(|e| EngineError::Corrupt {
                        seq,
                        reason: e.to_string(),
                    })?;
                events.push(v);
            }
        }
        let next = more
            .then(|| entries.get(limit - 1))
            .flatten()
            .map(|(at, seq)| format!("{at}.{seq}"));
        self.audit_person(
            permit,
            iob_govern::Access::TimelineRead,
            person,
            events.len(),
        )?;
        Ok(Some(JourneyPage {
            person,
            events,
            next,
        }))
    }

    /// Why the person behind `id` is who they are: identifiers with the events that linked them,
    /// merges, refusals.
    pub fn explain_identity(
        &self,
        permit: &Permit,
        id: &str,
    ) -> Result<Option<IdentityReport>, EngineError> {
        let Some(p) = self.person(id)? else {
            return Ok(None);
        };
        let Some(explanation) = self.unify().unifier.lock().explain(p) else {
            return Ok(None);
        };
        let mut seqs: Vec<u64> = explanation
            .identifiers
            .iter()
            .map(|i| i.linked_by.seq)
            .chain(explanation.merges.iter().map(|m| m.by.seq))
            .chain(explanation.refusals.iter().map(|r| r.by.seq))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut events = Vec::new();
        for seq in seqs {
            for r in self.store.read_log(permit, seq, 1)? {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.payload).unwrap_or(serde_json::Value::Null);
                let at = Timestamp(r.event_time.0).to_rfc3339();
                events.push(serde_json::json!({
                    "seq": seq, "type": v["type"], "event": v["event"], "messageId": v["messageId"],
                    "source": v["iobSource"], "timestamp": at,
                }));
            }
        }
        self.audit_person(permit, iob_govern::Access::IdentityRead, p, events.len())?;
        Ok(Some(IdentityReport {
            explanation,
            events,
        }))
    }

    /// Recomputes identity and profiles from the whole log into a fresh state, checks it against
    /// the online state, and swaps it in.
    pub fn rebuild(&self, permit: &Permit) -> Result<RebuildReport, EngineError> {
        let shared = self.unify();
        shared.catch_up()?;
        let started = Instant::now();
        let mut fresh = new_unifier(&shared.config, &shared.pseudonyms)?;
        let mut events = apply_log(&self.store, permit, &mut fresh)?;
        let mut online = shared.unifier.lock();
        // Events appended meanwhile: bring both states to the same point before comparing.
        events += apply_log(&self.store, permit, &mut fresh)?;
        while online.applied() < fresh.applied() {
            apply_log(&self.store, permit, &mut online)?;
        }
        let equal_to_online = same_state(&online, &fresh);
        let report = RebuildReport {
            events,
            persons: fresh.persons(),
            identifiers: fresh.graph().identifiers(),
            seconds: started.elapsed().as_secs_f64(),
            equal_to_online,
        };
        *online = fresh;
        *shared.saved.lock() = None;
        Ok(report)
    }

    /// Applies every durable event to identity and profiles now; returns how many it applied.
    /// (Reads do this anyway; an import calls it to leave profiles current when it ends.)
    pub fn update_profiles(&self) -> Result<u64, EngineError> {
        // Counted by sequence numbers: the follower, woken too, may apply some of the pages.
        let next = |u: &Unifier| u.applied().map_or(0, |a| a + 1);
        let before = next(&self.unify().unifier.lock());
        self.unify().catch_up()?;
        Ok(next(&self.unify().unifier.lock()) - before)
    }

    /// Persons, identifiers and profile bytes, for stats.
    pub fn unify_stats(&self) -> serde_json::Value {
        let u = self.unify().unifier.lock();
        serde_json::json!({
            "persons": u.persons(),
            "identifiers": u.graph().identifiers(),
            "applied_through_seq": u.applied(),
            "skipped_events": u.skipped(),
            "profile_bytes": u.profile_bytes(),
            "journey_index_bytes": u.journey_bytes(),
            "restored_from_snapshot": self.unify().restored,
        })
    }
}

/// Applies to `u` every durable record after the last one it applied; returns how many.
fn apply_log(store: &Store, permit: &Permit, u: &mut Unifier) -> Result<u64, EngineError> {
    let mut applied = 0;
    loop {
        match apply_page(store, permit, u)? {
            0 => return Ok(applied),
            n => applied += n,
        }
    }
}

/// Applies to `u` the next page of durable records after the last one it applied; returns how
/// many (0: `u` is up to date).
fn apply_page(store: &Store, permit: &Permit, u: &mut Unifier) -> Result<u64, EngineError> {
    let next = u.applied().map_or(0, |a| a + 1);
    let page = store.read_log(permit, next, PAGE)?;
    for r in &page {
        let e = StoredEvent {
            seq: r.pos.seq,
            kind: r.kind,
            at: r.event_time.0,
            payload: &r.payload,
        };
        if let Err(err) = u.apply(e) {
            // Durable but unreadable: counted by the unifier (`skipped`), reported, never fatal.
            tracing::warn!(seq = r.pos.seq, error = %err, "unify skipped a record");
        }
    }
    Ok(page.len() as u64)
}

/// Profiles compared through their user-facing view at one instant, keyed by person id.
fn same_state(a: &Unifier, b: &Unifier) -> bool {
    if a.persons() != b.persons() || a.graph().identifiers() != b.graph().identifiers() {
        return false;
    }
    a.profiles().all(|(p, x)| b.profile(p) == Some(x))
}

fn parse_cursor(c: &str) -> Option<(i64, u64)> {
    let (at, seq) = c.split_once('.')?;
    Some((at.parse().ok()?, seq.parse().ok()?))
}
