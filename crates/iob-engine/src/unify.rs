//! The engine's unify stage: a follower that applies the durable log, in order, to the identity
//! graph and the profiles, and the purpose-bound reads of persons (profile, journey,
//! explanation) and `rebuild`.
//!
//! The follower runs on its own thread, woken after every append, so ingestion never waits for
//! profile updates; a read first applies whatever is durable but not applied yet, so an event
//! acknowledged before a read is always in the profile it returns. State is rebuilt from the log
//! when the engine opens. Must never read the log without a permit, and never let an event be
//! applied twice or skipped (the unifier's `applied` sequence number guards both).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use iob_govern::{ConsentPolicy, Permit, Pseudonymizer};
use iob_store::Store;
use iob_unify::{ConsentRules, StoredEvent, Unifier};

use crate::privacy::Privacy;
use crate::unify_snapshot::{frame_snapshot, read_snapshot, snapshot_path};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::{Config, Engine, EngineError};

/// Log records applied per lock hold, so reads interleave with a long catch-up.
const PAGE: usize = 4096;

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
    privacy: Arc<Privacy>,
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

/// The consent policy of `config`: its purposes and their defaults.
pub(crate) fn consent_policy(config: &Config) -> Result<ConsentPolicy, EngineError> {
    let purposes = config.purposes()?;
    ConsentPolicy::new(&purposes, &config.privacy.consent_defaults).map_err(|e| {
        EngineError::Config {
            key: "privacy.consent_defaults".into(),
            reason: e.to_string(),
        }
    })
}

fn new_unifier(config: &Config, pseudonyms: &Pseudonymizer) -> Result<Unifier, EngineError> {
    let policy = consent_policy(config)?;
    for purpose in config.privacy.consent_categories.values() {
        if !policy.knows(purpose) {
            return Err(EngineError::Config {
                key: "privacy.consent_categories".into(),
                reason: format!("`{purpose}` is not a configured purpose"),
            });
        }
    }
    let rules = ConsentRules::new(policy, &config.privacy.consent_categories);
    Unifier::new(
        pseudonyms.clone(),
        &config.identity,
        config.profiles.clone(),
    )
    .map(|u| u.with_consent(rules))
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
        privacy: Arc<Privacy>,
        permit: Permit,
    ) -> Result<(Arc<UnifyShared>, Follower), EngineError> {
        let snapshot = snapshot_path(&config.data_dir());
        let mut unifier = new_unifier(config, pseudonyms)?;
        let saved = match read_snapshot(&snapshot, &privacy) {
            Ok(None) => None,
            Ok(Some(state)) => match unifier.restore(&state) {
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
                tracing::info!(reason = %why, "no usable unify snapshot: replaying the log");
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
            privacy,
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
            (u.applied(), frame_snapshot(&u, &self.privacy)?)
        };
        let dir = self.snapshot.parent().expect("unify/");
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        iob_store::write_atomic(&self.snapshot, &framed)?;
        *self.saved.lock() = applied;
        Ok(())
    }

    /// Writes the snapshot now, even if nothing was applied since the last one (after an
    /// erasure, the old snapshot must not survive).
    pub(crate) fn force_snapshot(&self) -> Result<(), EngineError> {
        *self.saved.lock() = Some(u64::MAX);
        self.save_snapshot()
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
            match apply_page(
                &self.store,
                &self.privacy,
                &self.permit,
                &mut self.unifier.lock(),
            )? {
                0 => return Ok(applied),
                n => applied += n,
            }
        }
    }
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

impl Engine {
    pub(crate) fn unify(&self) -> &UnifyShared {
        &self.unify
    }

    /// Recomputes identity and profiles from the whole log into a fresh state, checks it against
    /// the online state, and swaps it in.
    pub fn rebuild(&self, permit: &Permit) -> Result<RebuildReport, EngineError> {
        let shared = self.unify();
        shared.catch_up()?;
        let started = Instant::now();
        let mut fresh = new_unifier(&shared.config, &shared.pseudonyms)?;
        let p = &self.privacy;
        let mut events = apply_log(&self.store, p, permit, &mut fresh)?;
        let mut online = shared.unifier.lock();
        // Events appended meanwhile: bring both states to the same point before comparing.
        events += apply_log(&self.store, p, permit, &mut fresh)?;
        while online.applied() < fresh.applied() {
            apply_log(&self.store, p, permit, &mut online)?;
        }
        let equal_to_online = same_state(&online, &fresh, &shared.permit);
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
            "data_keys": self.privacy.vault.live_keys(),
        })
    }
}

/// Applies to `u` every durable record after the last one it applied; returns how many.
fn apply_log(
    store: &Store,
    privacy: &Privacy,
    permit: &Permit,
    u: &mut Unifier,
) -> Result<u64, EngineError> {
    let mut applied = 0;
    loop {
        match apply_page(store, privacy, permit, u)? {
            0 => return Ok(applied),
            n => applied += n,
        }
    }
}

/// Applies to `u` the next page of durable records after the last one it applied; returns how
/// many (0: `u` is up to date).
fn apply_page(
    store: &Store,
    privacy: &Privacy,
    permit: &Permit,
    u: &mut Unifier,
) -> Result<u64, EngineError> {
    let next = u.applied().map_or(0, |a| a + 1);
    let page = store.read_log(permit, next, PAGE)?;
    for r in &page {
        let Some(payload) = privacy.open(r.pos.seq, &r.person, r.codec, &r.payload)? else {
            // An erased person's event: its key is gone, and so is its place in any state.
            u.pass(r.pos.seq);
            continue;
        };
        let e = StoredEvent {
            seq: r.pos.seq,
            kind: r.kind,
            at: r.event_time.0,
            payload: &payload,
        };
        if let Err(err) = u.apply(e) {
            // Durable but unreadable: counted by the unifier (`skipped`), reported, never fatal.
            tracing::warn!(seq = r.pos.seq, error = %err, "unify skipped a record");
        }
    }
    Ok(page.len() as u64)
}

/// Profiles compared through their user-facing view at one instant (symbols are numbered in
/// log order, and an erased person's symbols stay interned online but never appear in a
/// replay), persons matched through an identifier (ids are assigned in log order too).
fn same_state(a: &Unifier, b: &Unifier, ops: &Permit) -> bool {
    if a.persons() != b.persons() || a.graph().identifiers() != b.graph().identifiers() {
        return false;
    }
    let at = a.applied().map_or(0, |s| s as i64);
    a.profiles().all(|(p, _)| {
        let twin = a
            .graph()
            .identifiers_of(p)
            .first()
            .and_then(|i| b.graph().person_of(&i.key));
        let view = |u: &Unifier, p| {
            u.view(ops, p, at).ok().map(|v| {
                let mut j = serde_json::to_value(v).unwrap_or_default();
                j["person"] = serde_json::Value::Null;
                j
            })
        };
        twin.is_some_and(|q| view(a, p) == view(b, q))
    })
}
