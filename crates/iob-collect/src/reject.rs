//! Named rejections: why one event (or a whole request) was not accepted.
//!
//! A [`Rejection`] is data, not an error type: it is stored beside the raw bytes in the
//! quarantine, returned in HTTP problem bodies and listed by the CLI, so it is serializable and
//! its `field` is a stable path (`userId`, `properties.price`, `batch[3].timestamp`, `""` for
//! the whole body). This module must never decide what to do with a rejected event (keep,
//! drop, retry): that is the caller's policy.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The class of a rejection; the `snake_case` name is part of the HTTP and quarantine format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// Valid JSON, but not an object where an object is required.
    NotAnObject,
    /// A required field is absent, null or empty.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field has the right type but an unacceptable value.
    InvalidValue,
    /// The event (or body) exceeds a configured size limit.
    TooLarge,
    /// `type` names no known event type.
    UnknownType,
    /// The tracking plan's JSON Schema rejected the event.
    SchemaViolation,
    /// The tracking plan rejects events it does not list.
    UnplannedEvent,
    /// Reserved: the event needs a consent the person has not given.
    ConsentRequired,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::MalformedJson => "malformed_json",
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::MissingField => "missing_field",
            RejectCode::WrongType => "wrong_type",
            RejectCode::InvalidValue => "invalid_value",
            RejectCode::TooLarge => "too_large",
            RejectCode::UnknownType => "unknown_type",
            RejectCode::SchemaViolation => "schema_violation",
            RejectCode::UnplannedEvent => "unplanned_event",
            RejectCode::ConsentRequired => "consent_required",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event was not accepted, naming the field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub code: RejectCode,
    /// Path of the offending field (`userId`, `properties.price`, `batch[3].timestamp`), or
    /// `""` for the whole body.
    pub field: String,
    /// What was wrong and what was expected, for a human.
    pub message: String,
    /// Position of the event in its batch, when it came in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl Rejection {
    pub fn new(code: RejectCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection {
            code,
            field: field.into(),
            message: message.into(),
            index: None,
        }
    }

    pub(crate) fn missing(field: &str, message: impl Into<String>) -> Self {
        Self::new(RejectCode::MissingField, field, message)
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(RejectCode::InvalidValue, field, message)
    }

    /// "`field` must be EXPECTED, got an array".
    pub(crate) fn wrong_type(field: &str, expected: &str, got: &RawValue) -> Self {
        Self::new(
            RejectCode::WrongType,
            field,
            format!(
                "`{field}` must be {expected}, got {}",
                JsonType::of(got).described()
            ),
        )
    }

    /// Places this rejection inside a batch: sets `index` and prefixes `field` with `batch[i]`.
    pub fn in_batch(mut self, index: usize) -> Self {
        self.field = if self.field.is_empty() {
            format!("batch[{index}]")
        } else {
            format!("batch[{index}].{}", self.field)
        };
        self.index = Some(index);
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.code, self.message)
        } else {
            write!(f, "{} at `{}`: {}", self.code, self.field, self.message)
        }
    }
}

/// The JSON type of a raw value, read from its first byte (the value is already known to be
/// valid JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    pub(crate) fn of(raw: &RawValue) -> JsonType {
        Self::of_text(raw.get())
    }

    /// The type of a valid JSON value's text.
    pub(crate) fn of_text(raw: &str) -> JsonType {
        match raw.as_bytes().first() {
            Some(b'n') => JsonType::Null,
            Some(b't' | b'f') => JsonType::Bool,
            Some(b'"') => JsonType::String,
            Some(b'[') => JsonType::Array,
            Some(b'{') => JsonType::Object,
            _ => JsonType::Number,
        }
    }

    pub(crate) fn described(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "a boolean",
            JsonType::Number => "a number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_snake_case_and_roundtrips() {
        let r = Rejection::new(RejectCode::SchemaViolation, "properties.price", "bad").in_batch(3);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""code":"schema_violation""#), "{json}");
        assert!(
            json.contains(r#""field":"batch[3].properties.price""#),
            "{json}"
        );
        assert!(json.contains(r#""index":3"#), "{json}");
        let back: Rejection = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let whole = Rejection::new(RejectCode::NotAnObject, "", "x").in_batch(0);
        assert_eq!(whole.field, "batch[0]");
    }

    #[test]
    fn wrong_type_message_names_expected_and_actual() {
        let raw: Box<RawValue> = serde_json::from_str("[1]").unwrap();
        let r = Rejection::wrong_type("userId", "a string or number", &raw);
        assert_eq!(
            r.message,
            "`userId` must be a string or number, got an array"
        );
        assert_eq!(r.code, RejectCode::WrongType);
    }
}
