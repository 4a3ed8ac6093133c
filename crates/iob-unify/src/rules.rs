//! Identity rules from configuration: which identifiers exist, where they are read from, how
//! they are normalized, their priority, their limit per person, and which values are blocked.
//!
//! This module decides what counts as an identifier; it must never hash, store or log one.

use std::borrow::Cow;

use serde::Deserialize;

use crate::UnifyError;

/// `[identity]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Identifier kinds, highest priority first (unless `priority` says otherwise).
    pub identifiers: Vec<IdentifierConfig>,
    /// Values never used as identifiers (compared after normalization, case-insensitively).
    pub blocked_values: Vec<String>,
}

/// One identifier kind.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentifierConfig {
    /// `user` (`userId`), `anon` (`anonymousId`), `device` (`deviceId` of readings and
    /// `context.device.id`), or any other name, read from the trait of that name (`traits` of
    /// `identify`, `context.traits` of any event).
    pub kind: String,
    /// The trait to read for a trait kind (default: the kind's name).
    #[serde(default)]
    pub from_trait: Option<String>,
    /// Lower is stronger; default: the position in the list.
    #[serde(default)]
    pub priority: Option<u8>,
    /// At most this many identifiers of this kind per person (e.g. 1 for `user`).
    #[serde(default)]
    pub max_per_person: Option<u32>,
    #[serde(default)]
    pub normalize: Normalize,
}

/// How a value is normalized before it is compared and hashed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// Trimmed only.
    #[default]
    None,
    /// Trimmed, lowercased.
    Lowercase,
    /// Trimmed, lowercased; must contain `@` with text on both sides.
    Email,
    /// Digits only, with a leading `+` kept; at least 6 digits.
    Phone,
}

fn id(kind: &str, max: Option<u32>, normalize: Normalize) -> IdentifierConfig {
    IdentifierConfig {
        kind: kind.into(),
        from_trait: None,
        priority: None,
        max_per_person: max,
        normalize,
    }
}

impl Default for IdentityConfig {
    /// Limits like the best CDPs ship: one user id per person; a few e-mails and phones; many
    /// devices and cookies.
    fn default() -> Self {
        IdentityConfig {
            identifiers: vec![
                id("user", Some(1), Normalize::None),
                id("email", Some(5), Normalize::Email),
                id("phone", Some(5), Normalize::Phone),
                id("device", Some(100), Normalize::None),
                id("anon", Some(1000), Normalize::None),
            ],
            blocked_values: [
                "",
                "null",
                "undefined",
                "none",
                "nil",
                "nan",
                "0",
                "-1",
                "anonymous",
                "unknown",
                "n/a",
                "test",
                "[object object]",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// Where a kind's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    User,
    Anon,
    Device,
    Trait(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Kind {
    name: String,
    source: IdSource,
    priority: u8,
    max: Option<u32>,
    normalize: Normalize,
}

/// Validated identity rules. Kind indexes are positions in the configured list.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRules {
    kinds: Vec<Kind>,
    blocked: Vec<String>,
}

/// At most this many kinds (per-person counters are kept for each).
pub const MAX_KINDS: usize = 16;

impl IdentityRules {
    pub fn new(config: &IdentityConfig) -> Result<Self, UnifyError> {
        let bad = |reason: String| UnifyError::Config {
            key: "identity.identifiers".into(),
            reason,
        };
        if config.identifiers.is_empty() || config.identifiers.len() > MAX_KINDS {
            return Err(bad(format!(
                "list between 1 and {MAX_KINDS} identifier kinds (got {})",
                config.identifiers.len()
            )));
        }
        let mut kinds: Vec<Kind> = Vec::new();
        for (i, c) in config.identifiers.iter().enumerate() {
            let name = c.kind.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                return Err(bad(format!(
                    "identifier kind `{name}`: use letters, digits and `_`"
                )));
            }
            if kinds.iter().any(|k| k.name == name) {
                return Err(bad(format!("identifier kind `{name}` is listed twice")));
            }
            if c.max_per_person == Some(0) {
                return Err(bad(format!(
                    "identifier kind `{name}`: max_per_person must be at least 1 (remove the kind to ignore it)"
                )));
            }
            let source = match name {
                "user" => IdSource::User,
                "anon" => IdSource::Anon,
                "device" => IdSource::Device,
                _ => IdSource::Trait(c.from_trait.clone().unwrap_or_else(|| name.to_string())),
            };
            if c.from_trait.is_some() && !matches!(source, IdSource::Trait(_)) {
                return Err(bad(format!(
                    "identifier kind `{name}` is built in; `from_trait` only applies to trait kinds"
                )));
            }
            kinds.push(Kind {
                name: name.to_string(),
                source,
                priority: c.priority.unwrap_or(i as u8),
                max: c.max_per_person,
                normalize: c.normalize,
            });
        }
        Ok(IdentityRules {
            kinds,
            blocked: config
                .blocked_values
                .iter()
                .map(|v| v.trim().to_lowercase())
                .collect(),
        })
    }

    pub fn kinds(&self) -> usize {
        self.kinds.len()
    }

    pub fn kind_name(&self, kind: u8) -> &str {
        &self.kinds[kind as usize].name
    }

    pub fn kind_index(&self, name: &str) -> Option<u8> {
        self.kinds
            .iter()
            .position(|k| k.name == name)
            .map(|i| i as u8)
    }

    pub fn priority(&self, kind: u8) -> u8 {
        self.kinds[kind as usize].priority
    }

    pub fn max_per_person(&self, kind: u8) -> Option<u32> {
        self.kinds[kind as usize].max
    }

    pub fn source(&self, kind: u8) -> &IdSource {
        &self.kinds[kind as usize].source
    }

    /// The kind reading `source`, if configured.
    pub fn kind_for(&self, source: &IdSource) -> Option<u8> {
        self.kinds
            .iter()
            .position(|k| &k.source == source)
            .map(|i| i as u8)
    }

    /// Trait kinds: `(kind, trait name)`.
    pub fn trait_kinds(&self) -> impl Iterator<Item = (u8, &str)> {
        self.kinds
            .iter()
            .enumerate()
            .filter_map(|(i, k)| match &k.source {
                IdSource::Trait(t) => Some((i as u8, t.as_str())),
                _ => None,
            })
    }

    /// The normalized value, or `None` when it is blocked or malformed for its kind.
    pub fn normalize<'a>(&self, kind: u8, raw: &'a str) -> Option<Cow<'a, str>> {
        let v = raw.trim();
        let v: Cow<'a, str> = match self.kinds[kind as usize].normalize {
            Normalize::None => Cow::Borrowed(v),
            Normalize::Lowercase => lower(v),
            Normalize::Email => {
                let v = lower(v);
                let (local, domain) = v.split_once('@')?;
                if local.is_empty() || domain.is_empty() || domain.contains('@') {
                    return None;
                }
                v
            }
            Normalize::Phone => {
                let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
                if digits.len() < 6 {
                    return None;
                }
                Cow::Owned(if v.starts_with('+') {
                    format!("+{digits}")
                } else {
                    digits
                })
            }
        };
        // Blocked values are compared case-insensitively without allocating (they are short
        // ASCII words; a non-ASCII value is never one of them).
        if v.is_empty() || self.blocked.iter().any(|b| b.eq_ignore_ascii_case(&v)) {
            return None;
        }
        Some(v)
    }
}

/// `s` lowercased, borrowed when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_normalization() {
        let r = IdentityRules::new(&IdentityConfig::default()).unwrap();
        let email = r.kind_index("email").unwrap();
        let phone = r.kind_index("phone").unwrap();
        let user = r.kind_index("user").unwrap();
        assert_eq!(r.max_per_person(user), Some(1));
        assert_eq!(
            r.normalize(email, "  Ada@Example.COM "),
            Some("ada@example.com".into())
        );
        assert_eq!(r.normalize(email, "not-an-email"), None);
        assert_eq!(
            r.normalize(phone, "+49 (30) 1234-567"),
            Some("+49301234567".into())
        );
        assert_eq!(r.normalize(phone, "12"), None);
        for blocked in ["null", "undefined", "0", "", "  ", "NULL", "Undefined"] {
            assert_eq!(r.normalize(user, blocked), None, "{blocked:?}");
        }
        assert_eq!(r.normalize(user, "u-42").as_deref(), Some("u-42"));
    }

    #[test]
    fn bad_rules_are_named() {
        let mut c = IdentityConfig::default();
        c.identifiers.push(id("user", None, Normalize::None));
        let e = IdentityRules::new(&c).unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        let mut c = IdentityConfig::default();
        c.identifiers[0].max_per_person = Some(0);
        assert!(
            IdentityRules::new(&c)
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
        let c = IdentityConfig {
            identifiers: vec![],
            ..IdentityConfig::default()
        };
        assert!(IdentityRules::new(&c).is_err());
        let c: Result<IdentityConfig, _> =
            serde_json::from_str(r#"{"identifiers":[{"kind":"user","maxPerPerson":1}]}"#);
        assert!(c.unwrap_err().to_string().contains("unknown field"));
    }
}
