//! Consent by purpose: the policy (which purposes exist, opt-in or opt-out by default) and the
//! decision for one person and one purpose at the moment of a read.
//!
//! A person's consent history (granted or withdrawn, when, under which policy version, from
//! which source) is kept by the unify stage, per person, from `consent` events and Segment's
//! `context.consent.categoryPreferences`; this module decides what that history means. Health
//! is always opt-in, whatever the configuration says. `operations` (the engine's own work and
//! an administrator's data-subject requests) is not consent-based: it is never granted or
//! withdrawn by a person, and reads under it are for erasure, export and maintenance only.
//!
//! This module must never treat an unknown purpose as allowed.

use std::collections::BTreeMap;

use iob_types::Purpose;
use serde::{Deserialize, Serialize};

use crate::GovernError;

/// What applies to a purpose when the person has said nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultConsent {
    /// Allowed until withdrawn.
    OptOut,
    /// Not allowed until granted.
    OptIn,
}

/// The consent policy: the configured purposes and their defaults.
#[derive(Debug, Clone)]
pub struct ConsentPolicy {
    defaults: BTreeMap<Purpose, DefaultConsent>,
}

/// The default of a purpose the configuration does not mention.
fn builtin_default(p: &str) -> DefaultConsent {
    match p {
        Purpose::ANALYTICS | Purpose::SECURITY => DefaultConsent::OptOut,
        _ => DefaultConsent::OptIn,
    }
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        ConsentPolicy::new(&Purpose::defaults(), &BTreeMap::new()).expect("defaults are valid")
    }
}

impl ConsentPolicy {
    /// `purposes` with `defaults` by name (purposes not named: analytics and security opt-out,
    /// everything else opt-in). Health configured opt-out is an error, not silently changed.
    pub fn new(
        purposes: &[Purpose],
        defaults: &BTreeMap<String, DefaultConsent>,
    ) -> Result<Self, GovernError> {
        for name in defaults.keys() {
            if !purposes.iter().any(|p| p.as_str() == name) {
                return Err(GovernError::Policy(format!(
                    "privacy.consent_defaults names `{name}`, which is not a configured purpose"
                )));
            }
        }
        let mut map = BTreeMap::new();
        for p in purposes {
            if p.is_operations() {
                continue;
            }
            let d = defaults
                .get(p.as_str())
                .copied()
                .unwrap_or_else(|| builtin_default(p.as_str()));
            if p.is_health() && d != DefaultConsent::OptIn {
                return Err(GovernError::Policy(
                    "health is always opt-in: remove `health` from privacy.consent_defaults".into(),
                ));
            }
            map.insert(p.clone(), d);
        }
        Ok(ConsentPolicy { defaults: map })
    }

    /// The purposes a person can grant or withdraw.
    pub fn purposes(&self) -> impl Iterator<Item = (&Purpose, DefaultConsent)> {
        self.defaults.iter().map(|(p, d)| (p, *d))
    }

    pub fn knows(&self, purpose: &str) -> bool {
        self.defaults.keys().any(|p| p.as_str() == purpose)
    }

    /// Whether reads for `purpose` depend on the person's consent (every purpose but
    /// `operations`).
    pub fn is_consent_based(&self, purpose: &Purpose) -> bool {
        !purpose.is_operations()
    }

    /// The decision for `purpose`, given the person's latest choice for it (`Some(true)`
    /// granted, `Some(false)` withdrawn, `None` never said).
    pub fn decide(&self, purpose: &Purpose, latest: Option<bool>) -> Decision {
        if !self.is_consent_based(purpose) {
            return Decision::Exempt;
        }
        match (latest, self.defaults.get(purpose)) {
            (_, None) => Decision::Denied(Basis::UnknownPurpose),
            (Some(true), _) => Decision::Allowed(Basis::Granted),
            (Some(false), _) => Decision::Denied(Basis::Withdrawn),
            (None, Some(DefaultConsent::OptOut)) => Decision::Allowed(Basis::Default),
            (None, Some(DefaultConsent::OptIn)) => Decision::Denied(Basis::Default),
        }
    }
}

/// Why a decision came out the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The person granted it.
    Granted,
    /// The person withdrew (or denied) it.
    Withdrawn,
    /// The person said nothing; the purpose's default applies.
    Default,
    /// The purpose is not configured.
    UnknownPurpose,
}

/// The answer for one person, one purpose, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed(Basis),
    Denied(Basis),
    /// Not consent-based (`operations`).
    Exempt,
}

impl Decision {
    pub fn allowed(self) -> bool {
        !matches!(self, Decision::Denied(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Purpose {
        Purpose::new(s).unwrap()
    }

    #[test]
    fn defaults_and_decisions() {
        let pol = ConsentPolicy::default();
        assert!(pol.decide(&p("analytics"), None).allowed());
        assert!(!pol.decide(&p("marketing"), None).allowed());
        assert!(!pol.decide(&p("health"), None).allowed());
        assert!(pol.decide(&p("health"), Some(true)).allowed());
        assert_eq!(
            pol.decide(&p("analytics"), Some(false)),
            Decision::Denied(Basis::Withdrawn)
        );
        assert_eq!(pol.decide(&Purpose::operations(), None), Decision::Exempt);
        assert_eq!(
            pol.decide(&p("astrology"), Some(true)),
            Decision::Denied(Basis::UnknownPurpose)
        );
    }

    #[test]
    fn health_is_always_opt_in_and_unknown_names_are_errors() {
        let mut d = BTreeMap::new();
        d.insert("health".to_string(), DefaultConsent::OptOut);
        let err = ConsentPolicy::new(&Purpose::defaults(), &d).unwrap_err();
        assert!(err.to_string().contains("health is always opt-in"));
        let mut d = BTreeMap::new();
        d.insert("astrology".to_string(), DefaultConsent::OptOut);
        let err = ConsentPolicy::new(&Purpose::defaults(), &d).unwrap_err();
        assert!(err.to_string().contains("astrology"));
        let mut d = BTreeMap::new();
        d.insert("marketing".to_string(), DefaultConsent::OptOut);
        let pol = ConsentPolicy::new(&Purpose::defaults(), &d).unwrap();
        assert!(pol.decide(&p("marketing"), None).allowed());
    }
}
