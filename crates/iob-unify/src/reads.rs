//! Reads of one person from the unify state, each under a [`Permit`]: the profile view, the
//! journey, the identity explanation, the consent history, and erasure.
//!
//! Consent is decided here, at the moment of the read, from the person's history and the
//! configured policy: a read for a purpose the person has not consented to (or withdrew) is
//! refused with [`ReadRefused::Consent`]. Only `operations` is exempt. This module must never
//! return a person's data without that check.

use iob_govern::{Decision, Permit};
use iob_types::Purpose;

use crate::consent::ConsentHistory;
use crate::identity::{Explanation, Identifier, PersonId};
use crate::unifier::Unifier;
use crate::view::ProfileView;

impl Unifier {
    /// What the person's consent means for `purpose` now (a person never seen: the defaults).
    pub fn decide(&self, p: PersonId, purpose: &Purpose) -> Decision {
        let history = self.graph.current(p).and_then(|p| self.consents.get(&p));
        match history {
            Some(h) => h.decide(&self.consent_rules.policy, purpose),
            None => self.consent_rules.policy.decide(purpose, None),
        }
    }

    /// For every person id ever handed out, the live person it now is if `purpose` may read
    /// them (`u32::MAX`: erased, or no consent). `operations` sees every live person.
    pub fn directory(&self, purpose: &Purpose) -> Vec<u32> {
        let n = self.graph.slots();
        let policy = &self.consent_rules.policy;
        let everyone = purpose.is_operations();
        let by_default = everyone || policy.decide(purpose, None).allowed();
        // Live persons are the roots that hold a profile: each decided once, walking the
        // profiles (sequential) rather than looking every slot up in them (a miss per slot).
        let mut live = vec![false; n];
        for &p in self.profiles.keys() {
            let slot = p.0 as usize;
            if slot >= n || self.graph.current(p) != Some(p) {
                continue;
            }
            live[slot] = everyone
                || match self.consents.get(&p) {
                    Some(h) => h.decide(policy, purpose).allowed(),
                    None => by_default,
                };
        }
        (0..n)
            .map(|slot| match self.graph.current(PersonId(slot as u64)) {
                Some(root) if live[root.0 as usize] => root.0 as u32,
                _ => u32::MAX,
            })
            .collect()
    }

    /// The live person `p` is, if the permit's purpose may read them now.
    fn admit(&self, permit: &Permit, p: PersonId) -> Result<PersonId, ReadRefused> {
        let person = self.graph.current(p).ok_or(ReadRefused::UnknownPerson)?;
        if !self.profiles.contains_key(&person) {
            return Err(ReadRefused::UnknownPerson);
        }
        match self.decide(person, permit.purpose()) {
            Decision::Denied(basis) => Err(ReadRefused::Consent {
                purpose: permit.purpose().clone(),
                basis,
            }),
            _ => Ok(person),
        }
    }

    /// The profile as shown to users, with rolling windows evaluated at `now_ms`, if the
    /// permit's purpose has the person's consent at this moment.
    pub fn view(
        &self,
        permit: &Permit,
        p: PersonId,
        now_ms: i64,
    ) -> Result<ProfileView, ReadRefused> {
        let person = self.admit(permit, p)?;
        let profile = self
            .profiles
            .get(&person)
            .ok_or(ReadRefused::UnknownPerson)?;
        Ok(ProfileView::new(
            person,
            profile,
            &self.symbols,
            &self.config,
            now_ms,
        ))
    }

    /// A page of the person's journey, newest first: `(event time, seq)` strictly before
    /// `before` (or from the newest), at most `limit`; under the same consent check as
    /// [`Unifier::view`].
    pub fn journey(
        &self,
        permit: &Permit,
        p: PersonId,
        before: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>, ReadRefused> {
        let person = self.admit(permit, p)?;
        let Some(j) = self.journeys.get(&person) else {
            return Ok(Vec::new());
        };
        let end = before.map_or(j.len(), |b| j.partition_point(|x| *x < b));
        Ok(j[..end].iter().rev().take(limit).copied().collect())
    }

    /// The person's consent history (for export and for explaining a refusal); readable under
    /// any configured purpose, since it is what every other read is judged by.
    pub fn consents(&self, p: PersonId) -> Option<&ConsentHistory> {
        self.graph.current(p).and_then(|p| self.consents.get(&p))
    }

    pub fn explain(&self, permit: &Permit, p: PersonId) -> Result<Explanation, ReadRefused> {
        let person = self.admit(permit, p)?;
        self.graph.explain(person).ok_or(ReadRefused::UnknownPerson)
    }

    /// Erases a person from the unify state: their identifiers leave the graph (so the same
    /// identifiers start a new person afterwards), and their profile, journey and consent
    /// history are dropped. Returns the log positions of their events, so the caller can find
    /// and destroy the keys those events are sealed under.
    pub fn erase(&mut self, permit: &Permit, p: PersonId) -> Result<Erased, ReadRefused> {
        if !permit.purpose().is_operations() {
            return Err(ReadRefused::Consent {
                purpose: permit.purpose().clone(),
                basis: iob_govern::Basis::UnknownPurpose,
            });
        }
        let person = self.graph.current(p).ok_or(ReadRefused::UnknownPerson)?;
        let identifiers = self.graph.erase(person);
        self.profiles.remove(&person);
        self.consents.remove(&person);
        let events = self.journeys.remove(&person).unwrap_or_default();
        Ok(Erased {
            person,
            identifiers,
            events: events.into_iter().map(|(_, seq)| seq).collect(),
        })
    }
}

/// Why a read of a person was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadRefused {
    #[error("no such person")]
    UnknownPerson,
    #[error("the person has not consented to `{purpose}` ({basis:?})")]
    Consent {
        purpose: Purpose,
        basis: iob_govern::Basis,
    },
}

/// What [`Unifier::erase`] removed.
#[derive(Debug, Clone)]
pub struct Erased {
    pub person: PersonId,
    /// The person's identifiers (pseudonyms), now gone from the graph.
    pub identifiers: Vec<Identifier>,
    /// Log sequence numbers of the person's events.
    pub events: Vec<u64>,
}
