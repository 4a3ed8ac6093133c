//! A person's consent history, from `consent` events and from Segment's
//! `context.consent.categoryPreferences` on any event.
//!
//! Each choice is kept (purpose, granted or withdrawn, event time, log position, policy version,
//! source), ordered by event time then log position, so the latest choice per purpose does not
//! depend on arrival order and merging two persons' histories is a sorted merge. What a choice
//! means for a read is `iob_govern::ConsentPolicy`'s business, not this module's.
//!
//! This module must never turn an unknown category or purpose into a grant.

use std::collections::BTreeMap;

use iob_govern::{ConsentPolicy, Decision};
use iob_types::Purpose;
use serde::{Deserialize, Serialize};

use crate::signal::{ContextView, EventView, object_fields};

/// One recorded choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentChoice {
    pub purpose: String,
    pub granted: bool,
    /// Event time of the choice (ms since the epoch).
    pub at: i64,
    /// Log sequence number of the event that carried it.
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// Where it was collected: the consent event's `source`, or `categoryPreferences`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl ConsentChoice {
    fn order(&self) -> (i64, u64, &str) {
        (self.at, self.seq, &self.purpose)
    }
}

/// A person's choices, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentHistory {
    choices: Vec<ConsentChoice>,
}

impl ConsentHistory {
    pub fn choices(&self) -> &[ConsentChoice] {
        &self.choices
    }

    pub fn is_empty(&self) -> bool {
        self.choices.is_empty()
    }

    pub fn insert(&mut self, c: ConsentChoice) {
        let at = self.choices.partition_point(|x| x.order() < c.order());
        if self.choices.get(at) != Some(&c) {
            self.choices.insert(at, c);
        }
    }

    pub fn merge(&mut self, other: ConsentHistory) {
        for c in other.choices {
            self.insert(c);
        }
    }

    /// The latest choice for `purpose` by event time (`None`: never said).
    pub fn latest(&self, purpose: &str) -> Option<&ConsentChoice> {
        self.choices.iter().rev().find(|c| c.purpose == purpose)
    }

    pub fn decide(&self, policy: &ConsentPolicy, purpose: &Purpose) -> Decision {
        policy.decide(purpose, self.latest(purpose.as_str()).map(|c| c.granted))
    }
}

/// How consent is read from events: the purposes that exist and how Segment consent
/// categories map to them (case-insensitive; a category with the name of a purpose maps to it).
#[derive(Debug, Clone)]
pub struct ConsentRules {
    pub policy: ConsentPolicy,
    categories: BTreeMap<String, String>,
}

impl Default for ConsentRules {
    fn default() -> Self {
        ConsentRules::new(ConsentPolicy::default(), &BTreeMap::new())
    }
}

impl ConsentRules {
    /// `categories`: Segment category name → purpose (e.g. `Advertising = "marketing"`).
    pub fn new(policy: ConsentPolicy, categories: &BTreeMap<String, String>) -> Self {
        let mut map: BTreeMap<String, String> = policy
            .purposes()
            .map(|(p, _)| (p.as_str().to_string(), p.as_str().to_string()))
            .collect();
        for (cat, purpose) in categories {
            map.insert(cat.to_lowercase(), purpose.clone());
        }
        ConsentRules {
            policy,
            categories: map,
        }
    }

    fn purpose_of(&self, category: &str) -> Option<&str> {
        self.categories
            .get(&category.to_lowercase())
            .map(String::as_str)
    }

    /// The choices an event carries (`seq`, `at`: its log position and event time).
    pub fn choices(
        &self,
        v: &EventView<'_>,
        ctx: &ContextView<'_>,
        consent_event: bool,
        seq: u64,
        at: i64,
        out: &mut Vec<ConsentChoice>,
    ) {
        if consent_event {
            let policy_version = EventView::text(v.policy_version).map(|s| s.into_owned());
            let source = EventView::text(v.consent_source).map(|s| s.into_owned());
            for (list, granted) in [(v.granted, true), (v.denied, false)] {
                let Some(list) = list else { continue };
                let Ok(names) = serde_json::from_str::<Vec<&str>>(list.get()) else {
                    continue;
                };
                for name in names {
                    if self.policy.knows(name) {
                        out.push(ConsentChoice {
                            purpose: name.to_string(),
                            granted,
                            at,
                            seq,
                            policy_version: policy_version.clone(),
                            source: source.clone(),
                        });
                    }
                }
            }
        }
        // Segment's consent object: {"categoryPreferences": {"Advertising": false, ...}}.
        let Some(consent) = ctx.consent else {
            return;
        };
        for (k, raw) in object_fields(Some(consent)) {
            if k != "categoryPreferences" {
                continue;
            }
            for (cat, val) in object_fields(Some(raw)) {
                let granted = match val.get() {
                    "true" => true,
                    "false" => false,
                    _ => continue,
                };
                if let Some(p) = self.purpose_of(&cat) {
                    out.push(ConsentChoice {
                        purpose: p.to_string(),
                        granted,
                        at,
                        seq,
                        policy_version: None,
                        source: Some("categoryPreferences".into()),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(p: &str, granted: bool, at: i64, seq: u64) -> ConsentChoice {
        ConsentChoice {
            purpose: p.into(),
            granted,
            at,
            seq,
            policy_version: None,
            source: None,
        }
    }

    #[test]
    fn latest_by_event_time_not_arrival() {
        let mut h = ConsentHistory::default();
        h.insert(choice("marketing", false, 200, 1));
        h.insert(choice("marketing", true, 100, 2)); // late, older choice
        assert!(!h.latest("marketing").unwrap().granted);
        let mut a = ConsentHistory::default();
        a.insert(choice("marketing", true, 100, 2));
        let mut b = ConsentHistory::default();
        b.insert(choice("marketing", false, 200, 1));
        a.merge(b);
        assert_eq!(a, h);
        assert!(h.latest("health").is_none());
    }

    #[test]
    fn reads_consent_events_and_category_preferences() {
        let rules = ConsentRules::new(
            ConsentPolicy::default(),
            &BTreeMap::from([("Advertising".to_string(), "marketing".to_string())]),
        );
        let json = br#"{"type":"consent","granted":["health","astrology"],"denied":["marketing"],"policyVersion":"v2","source":"app settings","context":{"consent":{"categoryPreferences":{"advertising":true,"Analytics":false,"Unknown":true,"health":"yes"}}}}"#;
        let v = EventView::parse(json).unwrap();
        let mut out = Vec::new();
        rules.choices(&v, &v.context(), true, 7, 1000, &mut out);
        let got: Vec<(&str, bool, Option<&str>)> = out
            .iter()
            .map(|c| (c.purpose.as_str(), c.granted, c.source.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("health", true, Some("app settings")),
                ("marketing", false, Some("app settings")),
                ("marketing", true, Some("categoryPreferences")),
                ("analytics", false, Some("categoryPreferences")),
            ]
        );
        assert_eq!(out[0].policy_version.as_deref(), Some("v2"));
        // A track event's own `granted` field is not a consent.
        let mut out = Vec::new();
        let v = EventView::parse(br#"{"type":"track","granted":["health"]}"#).unwrap();
        rules.choices(&v, &v.context(), false, 1, 1, &mut out);
        assert!(out.is_empty());
    }
}
