//! Purpose-bound read permits.
//!
//! A [`Permit`] says "this actor may read personal data for this purpose". Store and engine
//! read APIs take one, so a read that does not name its purpose does not compile. Only a
//! [`Governor`] issues permits; it is where consent filtering and the audit chain attach.

use iob_types::Purpose;

use crate::GovernError;

/// Who reads: an API key's id, a CLI operator, or an internal job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A request authenticated by the API key with this (non-secret) id.
    ApiKey(String),
    /// A person at the command line with access to the data directory.
    Operator,
    /// The engine itself (recovery, dedup index, compaction, replay).
    System(&'static str),
}

/// Permission to read personal data for one purpose. Not constructible outside this crate.
#[derive(Debug, Clone)]
pub struct Permit {
    purpose: Purpose,
    actor: Actor,
}

impl Permit {
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Issues permits for the configured purposes.
#[derive(Debug, Clone)]
pub struct Governor {
    purposes: Vec<Purpose>,
}

impl Default for Governor {
    fn default() -> Self {
        Governor::new(Purpose::defaults())
    }
}

impl Governor {
    pub fn new(mut purposes: Vec<Purpose>) -> Self {
        if !purposes.iter().any(Purpose::is_operations) {
            purposes.push(Purpose::operations());
        }
        Governor { purposes }
    }

    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }

    /// A permit for `actor` to read for `purpose`, which must be configured. Not for
    /// [`Actor::System`]: system permits skip the audit log, so only [`Governor::system`]
    /// issues them.
    pub fn permit(&self, actor: Actor, purpose: &Purpose) -> Result<Permit, GovernError> {
        if matches!(actor, Actor::System(_)) {
            return Err(GovernError::ReservedActor);
        }
        if !self.purposes.contains(purpose) {
            return Err(GovernError::UnknownPurpose {
                purpose: purpose.to_string(),
                known: self
                    .purposes
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(Permit {
            purpose: purpose.clone(),
            actor,
        })
    }

    /// A permit for the engine's own maintenance work (recovery, indexing, compaction).
    pub fn system(&self, job: &'static str) -> Permit {
        Permit {
            purpose: Purpose::operations(),
            actor: Actor::System(job),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_only_for_configured_purposes() {
        let g = Governor::default();
        let p = g.permit(Actor::Operator, &Purpose::analytics()).unwrap();
        assert_eq!(p.purpose().as_str(), "analytics");
        let err = g
            .permit(Actor::Operator, &Purpose::new("astrology").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("astrology"));
        assert_eq!(g.system("recovery").purpose().as_str(), "operations");
        assert!(matches!(
            g.permit(Actor::System("sneaky"), &Purpose::analytics()),
            Err(GovernError::ReservedActor)
        ));
    }
}
