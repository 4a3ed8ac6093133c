//! Tracking plans (C4): an optional JSON Schema per event name, compiled once, and a policy for
//! events the plan does not list.
//!
//! For a `track` event the schema named by the event validates its `properties`; a plan entry
//! named `identify` validates the `traits` of `identify` calls. Violations become
//! [`RejectCode::SchemaViolation`] rejections whose `field` is the instance path
//! (`properties.price`, `properties.items[0].sku`). This module must never fetch remote
//! schemas (`$ref` over HTTP is compiled out) nor parse an object no schema applies to.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::CollectError;
use crate::reject::{RejectCode, Rejection};

/// What to do with a `track` event whose name the plan does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unplanned {
    #[default]
    Allow,
    Reject,
}

/// The plan as written in configuration (`[plan]` with `unplanned = "reject"` and
/// `[plan.events."Order Completed"]` tables holding JSON Schemas).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingPlanConfig {
    #[serde(default)]
    pub unplanned: Unplanned,
    #[serde(default)]
    pub events: HashMap<String, Value>,
}

/// A compiled tracking plan.
#[derive(Default)]
pub struct TrackingPlan {
    schemas: HashMap<String, jsonschema::Validator>,
    unplanned: Unplanned,
}

impl fmt::Debug for TrackingPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.schemas.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("TrackingPlan")
            .field("events", &names)
            .field("unplanned", &self.unplanned)
            .finish()
    }
}

impl TrackingPlan {
    /// Compiles every schema; the first invalid one is an error naming its event.
    pub fn new(
        schemas: impl IntoIterator<Item = (String, Value)>,
        unplanned: Unplanned,
    ) -> Result<Self, CollectError> {
        let mut compiled = HashMap::new();
        for (event, schema) in schemas {
            if !schema.is_object() && !schema.is_boolean() {
                return Err(CollectError::InvalidSchema {
                    event,
                    reason: "a schema must be a JSON object (or true/false)".into(),
                });
            }
            let v =
                jsonschema::validator_for(&schema).map_err(|e| CollectError::InvalidSchema {
                    event: event.clone(),
                    reason: e.to_string(),
                })?;
            compiled.insert(event, v);
        }
        Ok(TrackingPlan {
            schemas: compiled,
            unplanned,
        })
    }

    pub fn from_config(config: TrackingPlanConfig) -> Result<Self, CollectError> {
        Self::new(config.events, config.unplanned)
    }

    /// A plan that checks nothing and allows everything.
    pub fn allow_all() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty() && self.unplanned == Unplanned::Allow
    }

    pub fn unplanned(&self) -> Unplanned {
        self.unplanned
    }

    pub fn contains(&self, event: &str) -> bool {
        self.schemas.contains_key(event)
    }

    /// Checks a `track` event's name and properties.
    pub(crate) fn check_track(
        &self,
        event: &str,
        properties: Option<&RawValue>,
    ) -> Result<(), Rejection> {
        match self.schemas.get(event) {
            Some(v) => validate(v, "properties", properties),
            None if self.unplanned == Unplanned::Reject => Err(Rejection::new(
                RejectCode::UnplannedEvent,
                "event",
                format!(
                    "event `{}` is not in the tracking plan, which rejects unplanned events; add it to the plan or fix the event name",
                    truncate(event, 80)
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checks an `identify` call's traits against the plan entry named `identify`, if any.
    pub(crate) fn check_identify(&self, traits: Option<&RawValue>) -> Result<(), Rejection> {
        match self.schemas.get("identify") {
            Some(v) => validate(v, "traits", traits),
            None => Ok(()),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn validate(
    v: &jsonschema::Validator,
    root: &str,
    raw: Option<&RawValue>,
) -> Result<(), Rejection> {
    let value: Value = match raw {
        Some(r) => serde_json::from_str(r.get())
            .map_err(|e| Rejection::invalid(root, format!("`{root}` cannot be decoded: {e}")))?,
        None => Value::Object(Default::default()),
    };
    if v.is_valid(&value) {
        return Ok(());
    }
    let mut errors = v.iter_errors(&value);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    let more = errors.count();
    let field = pointer_to_path(root, first.instance_path().as_str());
    let mut message = format!("`{field}`: {}", first);
    if more > 0 {
        message.push_str(&format!(
            " (and {more} more violation{})",
            if more == 1 { "" } else { "s" }
        ));
    }
    Err(Rejection::new(RejectCode::SchemaViolation, field, message))
}

/// `/items/0/sku` under `properties` → `properties.items[0].sku`.
fn pointer_to_path(root: &str, pointer: &str) -> String {
    let mut out = String::from(root);
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&seg);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(&seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn plan(unplanned: Unplanned) -> TrackingPlan {
        TrackingPlan::new(
            [(
                "Order Completed".to_string(),
                json!({"type":"object","required":["price"],"properties":{
                    "price":{"type":"number","minimum":0},
                    "items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"}}}}}}),
            )],
            unplanned,
        )
        .unwrap()
    }

    #[test]
    fn violation_names_the_property_path() {
        let p = plan(Unplanned::Allow);
        let e = p
            .check_track("Order Completed", Some(&raw(r#"{"price":"12"}"#)))
            .unwrap_err();
        assert_eq!(e.code, RejectCode::SchemaViolation);
        assert_eq!(e.field, "properties.price");
        assert!(e.message.contains("number"), "{}", e.message);
        let e = p
            .check_track(
                "Order Completed",
                Some(&raw(r#"{"price":1,"items":[{"sku":3}]}"#)),
            )
            .unwrap_err();
        assert_eq!(e.field, "properties.items[0].sku");
        let e = p.check_track("Order Completed", None).unwrap_err();
        assert_eq!(e.field, "properties");
        assert!(e.message.contains("price"), "{}", e.message);
        assert!(
            p.check_track("Order Completed", Some(&raw(r#"{"price":3}"#)))
                .is_ok()
        );
    }

    #[test]
    fn unplanned_policy() {
        assert!(plan(Unplanned::Allow).check_track("Other", None).is_ok());
        let e = plan(Unplanned::Reject)
            .check_track("Other", None)
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            (RejectCode::UnplannedEvent, "event")
        );
    }

    #[test]
    fn invalid_schema_names_the_event() {
        let err = TrackingPlan::new([("Bad".to_string(), json!({"type": 12}))], Unplanned::Allow)
            .unwrap_err();
        assert!(err.to_string().contains("`Bad`"), "{err}");
        let err =
            TrackingPlan::new([("Bad2".to_string(), json!([1]))], Unplanned::Allow).unwrap_err();
        assert!(err.to_string().contains("`Bad2`"), "{err}");
    }

    #[test]
    fn config_loads_from_toml_shaped_serde() {
        let cfg: TrackingPlanConfig = serde_json::from_value(json!({
            "unplanned": "reject",
            "events": {"identify": {"type":"object","properties":{"email":{"type":"string"}}}}
        }))
        .unwrap();
        let p = TrackingPlan::from_config(cfg).unwrap();
        assert_eq!(p.unplanned(), Unplanned::Reject);
        let e = p.check_identify(Some(&raw(r#"{"email":5}"#))).unwrap_err();
        assert_eq!(e.field, "traits.email");
    }

    #[test]
    fn pointer_paths() {
        assert_eq!(pointer_to_path("properties", ""), "properties");
        assert_eq!(
            pointer_to_path("properties", "/a~1b/2"),
            "properties.a/b[2]"
        );
    }
}
