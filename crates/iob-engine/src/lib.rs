//! The iob engine: the library API that wires the stages of the loop.
//!
//! ```text
//! bytes ─► iob-collect (parse, validate, enrich) ─► iob-govern (person key) ─► iob-store (append, fsync)
//!                     └─ rejections ─► quarantine (durable, replayable)
//! ```
//!
//! The engine owns the [`Store`](iob_store::Store), the collector, the key ring and the
//! pseudonymizer, and exposes ingestion (HTTP submissions, imports), quarantine replay and
//! purpose-bound reads. It is async only where it waits for a group commit; it has no HTTP and
//! no terminal output: the server and the CLI are thin layers over it.
//!
//! Invariants it keeps: an event is acknowledged only after its record is fsynced; a rejected
//! event is acknowledged only after it is in the quarantine; no read without a [`Permit`], and
//! no read of personal data without its durable audit record (`audit.rs`).

mod analytics_config;
mod audit;
mod config;
mod decide;
mod derived;
mod error;
mod health;
mod import;
mod ingest;
mod keys;
mod minimize;
mod person_reads;
mod persons;
mod privacy;
mod privacy_config;
mod reads;
mod recommend_config;
mod retention;
mod server_config;
pub mod simulate;
mod unify;
mod unify_snapshot;
mod vault;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use analytics_config::AnalyticsConfig;
pub use config::{
    AdminConfig, CollectConfig, Config, MqttConfig, PrivacyConfig, SourceConfig, StoreConfig,
    TrackingPlanConfig, Unplanned,
};
pub use decide::Subject;
pub use derived::{
    ConsentRow, DerivedData, DerivedPage, DerivedPayload, DerivedRecord, ErasedPerson, PayloadPage,
    PersonDirectory,
};
pub use error::EngineError;
pub use import::{ImportSummary, ReplaySummary};
pub use ingest::{Endpoint, Receipt, RejectedItem, Submission};
pub use iob_unify::{PersonId, ProfileView};
pub use keys::{ApiKey, KeyInfo, KeyRequest, NewKey, parse_lifetime};
pub use person_reads::{ConsentReport, IdentityReport, JourneyPage};
pub use persons::{ErasureReport, PersonExport};
pub use reads::EventRecord;
pub use recommend_config::{
    AlsConfig, EaseConfig, KnnConfig, ModelChoice, PlacementConfig, RecommendConfig,
};
pub use server_config::{RateLimitConfig, ServerConfig};
pub use unify::RebuildReport;

pub use iob_collect::{RejectCode, Rejection};
pub use iob_govern::audit::{
    Finding, FindingKind, ListFilter, VerifyReport, list as audit_list, verify as audit_verify,
};
pub use iob_govern::{
    Access, Actor, AuditEntry, AuditRecord, GovernError, MasterKey, Need, Permit, SCOPE_NAMES,
    Scope,
};
pub use iob_store::StoreStats;

use iob_collect::Collector;
use iob_govern::audit::AuditOptions;
use iob_govern::{AuditLog, Governor, KeyRing, Pseudonymizer, RateLimiter};
use iob_store::{Store, StoreOptions};
use iob_types::{Clock, Purpose, SystemClock};

/// The running engine over one data directory.
pub struct Engine {
    store: Arc<Store>,
    collector: Collector,
    /// API keys; written when keys are created or revoked through the engine.
    keys: parking_lot::RwLock<KeyRing>,
    limiter: RateLimiter,
    limits: keys::Limits,
    pseudonyms: Pseudonymizer,
    governor: Governor,
    clock: Arc<dyn Clock>,
    data_dir: PathBuf,
    sources: Vec<String>,
    privacy: Arc<privacy::Privacy>,
    unify: Arc<unify::UnifyShared>,
    /// Every read of personal data appends here before it returns (`audit.rs`).
    audit: AuditLog,
    /// Stores derived from the log (analytics, models) that erasure must reach.
    derived: parking_lot::RwLock<Vec<Arc<dyn DerivedData>>>,
    /// Destroys expired retention keys in the background (none without retention rules).
    _retention: Option<retention::RetentionWorker>,
    /// Stops the unify follower when the engine goes away (declared last: dropped last).
    _follower: unify::Follower,
}

impl Engine {
    /// Opens (or creates) the data directory described by `config`. Returns the engine and the
    /// keys generated on this first start (empty afterwards), to be shown once.
    pub fn open(config: &Config) -> Result<(Engine, Vec<NewKey>), EngineError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<(Engine, Vec<NewKey>), EngineError> {
        let dir = config.data_dir();
        std::fs::create_dir_all(&dir).map_err(|e| {
            EngineError::io(format!("creating data directory {}", dir.display()), e)
        })?;
        // The store takes the directory lock first, so a second process fails before touching keys.
        let store = Store::open(
            &dir,
            StoreOptions {
                partitions: config.store.partitions,
                segment_bytes: config.store.segment_mb * 1024 * 1024,
                dedup_window_ms: config.store.dedup_window_secs * 1000,
                dedup_max_entries: config.store.dedup_max_entries,
                checkpoint_interval: Duration::from_secs(config.store.checkpoint_secs.max(1)),
                direct_io: config.store.direct_io,
                ..StoreOptions::default()
            },
        )?;
        // Say what recovery did: an operator must see a cut tail or a full rebuild.
        let report = store.recovery_report();
        if let Some(t) = &report.torn_tail {
            tracing::warn!(tail = ?t, removed_segments = report.removed_segments.len(), "recovered from an unclean stop: cut a torn tail");
        }
        if let Some(why) = &report.full_rebuild {
            tracing::warn!(reason = %why, records = report.scanned_records, "rebuilt indexes and the dedup table from the log");
        } else if report.scanned_records > 0 {
            tracing::info!(
                records = report.scanned_records,
                "re-indexed records written after the last checkpoint"
            );
        }
        let mut keys = keys::load_key_ring(&dir, config)?;
        let fresh = keys::bootstrap(&dir, &mut keys, config, clock.now())?;
        let pseudonyms = Pseudonymizer::new(&keys::load_pseudonym_key(&dir)?);
        let audit = AuditLog::open(&dir, AuditOptions::default()).map_err(EngineError::Audit)?;
        for note in audit.notes() {
            tracing::warn!(%note, "audit log recovered from an unclean stop");
        }
        let purposes = config.purposes()?;
        let collector = ingest::build_collector(config, &purposes)?;
        let mut sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        for (k, _) in keys.keys() {
            if let Scope::Write { source } = &k.scope
                && !sources.contains(source)
            {
                sources.push(source.clone());
            }
        }
        let store = Arc::new(store);
        let governor = Governor::new(purposes);
        let privacy = Arc::new(privacy::Privacy::load(&dir, config)?);
        store.set_sealer(Arc::new(privacy::StoreSealer(Arc::clone(&privacy))));
        let (unify, follower) = unify::UnifyShared::start(
            Arc::clone(&store),
            config,
            &pseudonyms,
            Arc::clone(&privacy),
            governor.system("unify"),
        )?;
        let retention = retention::RetentionWorker::start(
            Arc::clone(&privacy),
            Arc::clone(&clock),
            Duration::from_secs(config.privacy.retention_check_secs),
        )?;
        Ok((
            Engine {
                store,
                collector,
                keys: parking_lot::RwLock::new(keys),
                limiter: RateLimiter::default(),
                limits: keys::Limits::from_config(&config.server),
                pseudonyms,
                governor,
                clock,
                data_dir: dir,
                sources,
                privacy,
                unify,
                audit,
                derived: parking_lot::RwLock::new(Vec::new()),
                _retention: retention,
                _follower: follower,
            },
            fresh,
        ))
    }

    /// The collector, for import readers (`iob_collect::Collector::import_json_lines`, ...).
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The configured sources (from the config and from generated keys).
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// A permit to read personal data for `purpose`.
    pub fn permit(&self, actor: Actor, purpose: &Purpose) -> Result<Permit, EngineError> {
        Ok(self.governor.permit(actor, purpose)?)
    }

    pub fn stats(&self) -> StoreStats {
        self.store.stats()
    }

    pub fn now(&self) -> iob_types::Timestamp {
        self.clock.now()
    }

    /// Writes a checkpoint and releases the data directory.
    pub fn close(self) -> Result<(), EngineError> {
        let Engine {
            store,
            unify,
            _follower,
            ..
        } = self;
        // Stop the follower first: it holds the store.
        drop(_follower);
        drop(unify);
        match Arc::try_unwrap(store) {
            Ok(store) => Ok(store.close()?),
            // Someone still holds the store (a blocking task in flight): checkpoint and let
            // the last owner's Drop release the lock.
            Err(shared) => Ok(shared.checkpoint()?),
        }
    }
}
