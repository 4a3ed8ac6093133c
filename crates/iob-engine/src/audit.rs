//! The engine's side of the audit log: the one call every read of personal data makes before
//! it returns ([`Engine::record_access`], and the person and bulk shorthands the engine's own
//! reads use), and access to the records for the operator.
//!
//! A read whose record cannot be made durable fails with [`EngineError::Audit`]: there is no
//! read without its record. Reads under system permits (the engine's own jobs) are not
//! recorded (see `iob_govern::audit`). This module must never put a raw identifier into a
//! record: subjects are person keys (pseudonyms), details are ranges and counts.

use iob_govern::audit::ListFilter;
use iob_govern::{Access, Actor, AuditEntry, AuditLog, AuditRecord};
use iob_unify::PersonId;

use crate::{Engine, EngineError, Permit};

impl Engine {
    /// Records one read of personal data by `permit`'s actor, durably, now. Every read API
    /// calls this before returning data (export, decide and query rows included): one call.
    pub fn record_access(&self, permit: &Permit, entry: AuditEntry) -> Result<(), EngineError> {
        self.audit
            .record(permit, self.clock.now(), entry)
            .map(|_| ())
            .map_err(EngineError::Audit)
    }

    /// Records a read of person `p`'s data that returned `items` items. The subject is the
    /// pseudonym of the person's first identifier.
    pub(crate) fn audit_person(
        &self,
        permit: &Permit,
        access: Access,
        p: PersonId,
        items: usize,
    ) -> Result<(), EngineError> {
        if matches!(permit.actor(), Actor::System(_)) {
            return Ok(());
        }
        let subject = self
            .unify
            .unifier
            .lock()
            .graph()
            .identifiers_of(p)
            .first()
            .map(|i| i.key);
        self.record_access(
            permit,
            AuditEntry {
                access,
                subject,
                items: Some(items as u64),
                // A person without identifiers left is named by its (pseudonymous) number.
                detail: subject.is_none().then(|| format!("person:{}", p.0)),
            },
        )
    }

    /// Records a read spanning many persons, described by `detail` (a range, never an
    /// identifier), before it runs.
    pub(crate) fn audit_bulk(
        &self,
        permit: &Permit,
        access: Access,
        detail: String,
    ) -> Result<(), EngineError> {
        self.record_access(permit, AuditEntry::bulk(access, detail))
    }

    /// The audit log (its head, its directory).
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// The newest audit records matching `filter`, newest first (not verified: see
    /// `iob_govern::audit::verify`).
    pub fn audit_records(&self, filter: &ListFilter) -> Result<Vec<AuditRecord>, EngineError> {
        iob_govern::audit::list(&self.data_dir, filter).map_err(EngineError::Audit)
    }
}
