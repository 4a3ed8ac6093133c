//! MQTT messages → `observe` bodies for the collector: the topic pattern and the payload forms.
//!
//! Pure and synchronous. A payload is either a JSON object (an `observe` event as posted to
//! `/v1/observe`) or a bare value (`72`, `-1.5e3`, `true`) whose device and metric come from the
//! topic through `mqtt.topic_pattern`. Anything else becomes a [`Rejection`] naming the field, so
//! the caller quarantines it: nothing is dropped. Bodies are built with serde_json, never by
//! pasting untrusted bytes into a string.

use iob_engine::{RejectCode, Rejection};
use serde_json::{Map, Value};
use xxhash_rust::xxh3::xxh3_128;

/// A field of the event a topic level can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    DeviceId,
    Metric,
    UserId,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::DeviceId => "deviceId",
            Field::Metric => "metric",
            Field::UserId => "userId",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(String),
    Field(Field),
    /// `+`: any one level.
    Any,
    /// A final `#`: any rest (zero or more levels).
    Rest,
}

/// `devices/{deviceId}/{metric}`: how a topic names the event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    text: String,
    levels: Vec<Level>,
}

/// What a topic named, by the pattern.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named<'t> {
    fields: Vec<(Field, &'t str)>,
}

impl Named<'_> {
    fn get(&self, f: Field) -> Option<&str> {
        self.fields.iter().find(|(g, _)| *g == f).map(|(_, v)| *v)
    }
}

impl TopicPattern {
    /// Parses a pattern; the error says what is wrong (for `mqtt.topic_pattern`).
    pub fn parse(text: &str) -> Result<TopicPattern, String> {
        if text.is_empty() {
            return Err("is empty".into());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let level = match *p {
                "+" => Level::Any,
                "#" if i + 1 == parts.len() => Level::Rest,
                "#" => return Err("`#` may only be the last level".into()),
                "{deviceId}" => Level::Field(Field::DeviceId),
                "{metric}" => Level::Field(Field::Metric),
                "{userId}" => Level::Field(Field::UserId),
                p if p.contains(['{', '}', '+', '#']) => {
                    return Err(format!(
                        "level `{p}` is not a literal, `+`, `#`, {{deviceId}}, {{metric}} or {{userId}}"
                    ));
                }
                p => Level::Literal(p.to_string()),
            };
            if let Level::Field(f) = level
                && levels.contains(&level)
            {
                return Err(format!("{{{}}} appears twice", f.key()));
            }
            levels.push(level);
        }
        Ok(TopicPattern {
            text: text.to_string(),
            levels,
        })
    }

    /// The subscription filter that receives every topic the pattern can match.
    pub fn filter(&self) -> String {
        let levels: Vec<&str> = self
            .levels
            .iter()
            .map(|l| match l {
                Level::Literal(s) => s.as_str(),
                Level::Field(_) | Level::Any => "+",
                Level::Rest => "#",
            })
            .collect();
        levels.join("/")
    }

    /// The fields `topic` names, or `None` when it does not match.
    pub fn matches<'t>(&self, topic: &'t str) -> Option<Named<'t>> {
        let mut named = Named::default();
        let mut parts = topic.split('/');
        for level in &self.levels {
            if *level == Level::Rest {
                return Some(named);
            }
            let part = parts.next()?;
            match level {
                Level::Literal(s) if s != part => return None,
                Level::Field(_) if part.is_empty() => return None,
                Level::Field(f) => named.fields.push((*f, part)),
                _ => {}
            }
        }
        parts.next().is_none().then_some(named)
    }
}

/// A collector body (`observe`) for the message, or why there can be none. `fresh_id` is a
/// `messageId` never used before, for a reading that has no identity of its own (a bare value,
/// a JSON reading with neither `messageId` nor `timestamp`): the collector's default id (from
/// the receive time and the bytes) would merge equal readings the broker delivers within one
/// millisecond, as it does with a backlog after a restart.
pub fn decode(
    topic: &str,
    payload: &[u8],
    pattern: Option<&TopicPattern>,
    max_event_bytes: usize,
    fresh_id: &str,
) -> Result<Vec<u8>, Rejection> {
    if payload.len() > max_event_bytes {
        return Err(Rejection::new(
            RejectCode::TooLarge,
            "",
            format!(
                "the payload is {} bytes; the limit is {max_event_bytes} (collect.max_event_bytes)",
                payload.len()
            ),
        ));
    }
    let named = pattern.and_then(|p| p.matches(topic));
    let text = payload.trim_ascii();
    if text.first() == Some(&b'{') {
        return Ok(json_object(topic, payload, named.as_ref(), fresh_id));
    }
    if text.is_empty() {
        return Err(Rejection::new(
            RejectCode::MissingField,
            "value",
            "the payload is empty; send a number, true/false, or a JSON observe object",
        ));
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return Err(Rejection::new(
            RejectCode::InvalidValue,
            "value",
            "the payload is not UTF-8 text; send a number, true/false, or a JSON observe object",
        ));
    };
    let value = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Bool(_)) => v,
        Ok(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Value::Number(n),
            _ => return Err(not_a_number(text)),
        },
        Ok(other) => {
            let what = match other {
                Value::Null => "null",
                Value::String(_) => "a string",
                _ => "an array",
            };
            return Err(Rejection::new(
                RejectCode::WrongType,
                "value",
                format!(
                    "the payload is JSON {what}; send a number, true/false, or a JSON observe object"
                ),
            ));
        }
        Err(_) => return Err(not_a_number(text)),
    };
    let Some(named) = named else {
        return Err(topic_unnamed(topic, pattern));
    };
    let (Some(device), Some(metric)) = (named.get(Field::DeviceId), named.get(Field::Metric))
    else {
        return Err(topic_unnamed(topic, pattern));
    };
    let mut event = Map::new();
    event.insert("type".into(), "observe".into());
    event.insert("deviceId".into(), device.into());
    event.insert("metric".into(), metric.into());
    event.insert("value".into(), value);
    event.insert("messageId".into(), fresh_id.into());
    if let Some(user) = named.get(Field::UserId) {
        event.insert("userId".into(), user.into());
    }
    Ok(serde_json::to_vec(&Value::Object(event)).expect("a JSON map serializes"))
}

fn not_a_number(text: &str) -> Rejection {
    let shown: String = text.chars().take(40).collect();
    Rejection::new(
        RejectCode::InvalidValue,
        "value",
        format!(
            "the payload {shown:?} is not a finite number, true/false, or a JSON observe object"
        ),
    )
}

fn topic_unnamed(topic: &str, pattern: Option<&TopicPattern>) -> Rejection {
    let shown: String = topic.chars().take(120).collect();
    let message = match pattern {
        None => format!(
            "a bare-value payload on topic `{shown}` needs mqtt.topic_pattern (e.g. devices/{{deviceId}}/{{metric}}) to name its device and metric"
        ),
        Some(p) => format!(
            "topic `{shown}` does not match mqtt.topic_pattern `{}` with a {{deviceId}} and a {{metric}}",
            p.text
        ),
    };
    Rejection::new(RejectCode::InvalidValue, "topic", message)
}

/// A JSON object payload: passed to the collector as it is (it names any problem precisely),
/// except that fields the topic names fill missing ones, and a reading without `messageId`
/// gets one: derived from topic and payload when it has a `timestamp` (so a broker redelivery
/// of it is deduplicated), else `fresh_id`. Bytes that don't parse as an object go through
/// unchanged to be rejected.
fn json_object(topic: &str, payload: &[u8], named: Option<&Named<'_>>, fresh_id: &str) -> Vec<u8> {
    let Ok(mut event) = serde_json::from_slice::<Map<String, Value>>(payload) else {
        return payload.to_vec();
    };
    let mut changed = false;
    for (field, value) in named.map(|n| n.fields.as_slice()).unwrap_or_default() {
        if !event.contains_key(field.key()) {
            event.insert(field.key().into(), (*value).into());
            changed = true;
        }
    }
    if !event.contains_key("messageId") && !event.contains_key("timestamp") {
        event.insert("messageId".into(), fresh_id.into());
        changed = true;
    } else if !event.contains_key("messageId") {
        let mut seed = Vec::with_capacity(topic.len() + 1 + payload.len());
        seed.extend_from_slice(topic.as_bytes());
        seed.push(0);
        seed.extend_from_slice(payload);
        event.insert(
            "messageId".into(),
            format!("mqtt-{:032x}", xxh3_128(&seed)).into(),
        );
        changed = true;
    }
    if changed {
        serde_json::to_vec(&Value::Object(event)).expect("a JSON map serializes")
    } else {
        payload.to_vec()
    }
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
