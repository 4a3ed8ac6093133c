//! Data minimization on the way out: what a read for a purpose may see.
//!
//! * **Consent filter** for reads of many persons' events (`read_log`, `tail`, `scan_time`,
//!   `for_each_event`, the base of queries and training sets): an event is returned only if
//!   its person consents to the permit's purpose now (a person not resolved yet: the purpose's
//!   default), and a health reading only to the `health` purpose.
//! * **Pseudonymized identifiers** for every purpose but `operations`: user, anonymous and
//!   device ids, identifier traits (e-mail, phone) and the IP address are replaced by their
//!   keyed pseudonyms (the hex the identity explanation shows). Re-identification is the
//!   `operations` purpose's alone (an admin key or the operator), through the sealed payloads.
//!
//! This module must never widen what a permit sees; `operations` is the only exemption.

use std::collections::HashMap;

use iob_govern::Permit;
use iob_types::{EventKind, PersonKey};
use serde_json::Value;

use crate::{Engine, EngineError};

fn exempt(permit: &Permit) -> bool {
    permit.purpose().is_operations()
}

/// Consent decisions of one bulk read, cached per stored person key.
pub(crate) struct ConsentFilter<'a> {
    engine: &'a Engine,
    permit: &'a Permit,
    decided: HashMap<PersonKey, bool>,
}

impl<'a> ConsentFilter<'a> {
    /// A filter for one read; applies the durable log first, so a withdrawal acknowledged
    /// before the read is in force for it.
    pub(crate) fn new(engine: &'a Engine, permit: &'a Permit) -> Result<Self, EngineError> {
        if !exempt(permit) {
            engine.unify.catch_up()?;
        }
        Ok(ConsentFilter {
            engine,
            permit,
            decided: HashMap::new(),
        })
    }

    /// Whether the event stored under `person` may be returned to this read.
    pub(crate) fn allows(
        &mut self,
        person: &PersonKey,
        kind: EventKind,
        metric: Option<&str>,
    ) -> bool {
        if exempt(self.permit) {
            return true;
        }
        let purpose = self.permit.purpose();
        if !purpose.is_health() && self.engine.privacy.is_health_reading(kind, metric) {
            return false;
        }
        *self.decided.entry(*person).or_insert_with(|| {
            let u = self.engine.unify.unifier.lock();
            match u.graph().person_of(person) {
                Some(p) => u.decide(p, purpose).allowed(),
                None => u.consent_rules().policy.decide(purpose, None).allowed(),
            }
        })
    }
}

impl Engine {
    /// Replaces the identifiers in a stored event's JSON by their pseudonyms, unless the permit
    /// is for `operations`.
    pub(crate) fn pseudonymize_event(&self, permit: &Permit, v: &mut Value) {
        if !exempt(permit) {
            self.pseudonymize_json(v);
        }
    }

    /// Replaces the identifiers in a stored event's JSON by their pseudonyms.
    pub(crate) fn pseudonymize_json(&self, v: &mut Value) {
        let u = self.unify.unifier.lock();
        let rules = u.graph().rules();
        let hide = |kind: &str, slot: &mut Value| {
            let Some(raw) = slot
                .as_str()
                .map(str::to_owned)
                .or_else(|| slot.as_number().map(|n| n.to_string()))
            else {
                return;
            };
            let key = rules
                .kind_index(kind)
                .and_then(|k| u.id_key(k, &raw))
                .unwrap_or_else(|| self.pseudonyms.person_key(kind, &raw));
            *slot = Value::String(key.to_hex());
        };
        for (field, kind) in [
            ("userId", "user"),
            ("anonymousId", "anon"),
            ("previousId", "user"),
            ("deviceId", "device"),
        ] {
            if let Some(slot) = v.get_mut(field) {
                hide(kind, slot);
            }
        }
        if let Some(ctx) = v.get_mut("context") {
            if let Some(slot) = ctx.pointer_mut("/device/id") {
                hide("device", slot);
            }
            if let Some(slot) = ctx.get_mut("ip") {
                hide("ip", slot);
            }
        }
        let traits: Vec<(u8, String)> = rules
            .trait_kinds()
            .map(|(k, name)| (k, name.to_string()))
            .collect();
        for ptr in ["/traits", "/context/traits"] {
            if let Some(obj) = v.pointer_mut(ptr).and_then(Value::as_object_mut) {
                for (k, name) in &traits {
                    if let Some(slot) = obj.get_mut(name) {
                        hide(rules.kind_name(*k), slot);
                    }
                }
            }
        }
    }

    /// Replaces identifier traits (e-mail, phone) in a profile's traits by their pseudonyms,
    /// unless the permit is for `operations`.
    pub(crate) fn pseudonymize_traits(
        &self,
        permit: &Permit,
        traits: &mut std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
    ) {
        if exempt(permit) {
            return;
        }
        let u = self.unify.unifier.lock();
        let rules = u.graph().rules();
        for (k, name) in rules.trait_kinds() {
            let Some(slot) = traits.get_mut(name) else {
                continue;
            };
            let raw: Option<String> = serde_json::from_str(slot.get()).ok();
            let hidden = raw
                .and_then(|r| u.id_key(k, &r))
                .map(|key| key.to_hex())
                .unwrap_or_default();
            if let Ok(v) = serde_json::value::to_raw_value(&hidden) {
                *slot = v;
            }
        }
    }
}
