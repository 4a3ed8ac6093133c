//! The engine's side of a decision (`GET /v1/decide`): who the subject is for the permit's
//! purpose, decided and audited here so the decide logic in `iob-recommend` never sees a person
//! it may not use. A refused or unknown subject is not an error: the caller answers with a
//! non-personalized fallback that says why.
//!
//! This module must never hand out a raw identifier: only the person id and the pseudonymous
//! routing keys their events are stored under.

use iob_govern::{Access, Decision, Permit};
use iob_types::PersonKey;
use iob_unify::PersonId;

use crate::{Engine, EngineError};

/// The subject of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// No person is known by the identifier (or they were erased).
    Unknown,
    /// The person has not consented to the permit's purpose (`withdrawn`, `default`).
    Refused { basis: String },
    /// The person may be decided for: their live id and the keys their events are under.
    Person {
        person: PersonId,
        keys: Vec<PersonKey>,
    },
}

impl Engine {
    /// Resolves `id` for a decision under `permit`: the durable log is applied first (an
    /// acknowledged event or consent change is in force), then consent is decided for the
    /// permit's purpose. A usable subject is recorded in the audit log (`decide`) before this
    /// returns; unknown and refused subjects read nothing personal and are not.
    pub fn decide_subject(&self, permit: &Permit, id: &str) -> Result<Subject, EngineError> {
        self.unify().catch_up()?;
        let (person, keys) = {
            let u = self.unify().unifier.lock();
            let Some(p) = u.lookup(id) else {
                return Ok(Subject::Unknown);
            };
            let Some(person) = u.graph().current(p) else {
                return Ok(Subject::Unknown);
            };
            if u.profile(person).is_none() {
                return Ok(Subject::Unknown);
            }
            if let Decision::Denied(b) = u.decide(person, permit.purpose()) {
                return Ok(Subject::Refused {
                    basis: format!("{b:?}").to_lowercase(),
                });
            }
            let keys: Vec<PersonKey> = u
                .graph()
                .identifiers_of(person)
                .iter()
                .map(|i| i.key)
                .collect();
            (person, keys)
        };
        self.audit_person(permit, Access::Decide, person, 1)?;
        Ok(Subject::Person { person, keys })
    }
}
