//! Purposes: the reasons for which personal data may be processed. Consent is granted and
//! withdrawn per purpose, and every read of personal data names one.
//!
//! Purposes are configurable, so this is a validated name rather than a closed enum; the five
//! defaults of the product brief are constants.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TypesError;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purpose(Arc<str>);

impl Purpose {
    pub const ANALYTICS: &'static str = "analytics";
    pub const PERSONALIZATION: &'static str = "personalization";
    pub const MARKETING: &'static str = "marketing";
    pub const HEALTH: &'static str = "health";
    pub const SECURITY: &'static str = "security";
    /// Running the system itself (recovery, compaction, replay, operator export): never granted
    /// by a person, only by an admin key.
    pub const OPERATIONS: &'static str = "operations";

    pub fn new(name: &str) -> Result<Self, TypesError> {
        let ok = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Purpose(Arc::from(name)))
        } else {
            Err(TypesError::Purpose {
                value: name.chars().take(60).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn defaults() -> Vec<Purpose> {
        [
            Self::ANALYTICS,
            Self::PERSONALIZATION,
            Self::MARKETING,
            Self::HEALTH,
            Self::SECURITY,
        ]
        .into_iter()
        .map(|p| Purpose(Arc::from(p)))
        .collect()
    }

    /// `operations`: the engine's own work and data-subject requests; not consent-based.
    pub fn is_operations(&self) -> bool {
        self.as_str() == Self::OPERATIONS
    }

    /// `health`: the only purpose that sees health readings.
    pub fn is_health(&self) -> bool {
        self.as_str() == Self::HEALTH
    }

    pub fn health() -> Self {
        Purpose(Arc::from(Self::HEALTH))
    }
    pub fn analytics() -> Self {
        Purpose(Arc::from(Self::ANALYTICS))
    }
    pub fn operations() -> Self {
        Purpose(Arc::from(Self::OPERATIONS))
    }
}

impl fmt::Debug for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Purpose({})", self.0)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Purpose {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Purpose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Purpose::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert!(Purpose::new("analytics").is_ok());
        assert!(Purpose::new("fraud-prevention_2").is_ok());
        for bad in ["", "Analytics", "a b", "x".repeat(41).as_str(), "ümlaut"] {
            let e = Purpose::new(bad).unwrap_err();
            assert!(e.to_string().contains("purpose"), "{e}");
        }
        assert_eq!(Purpose::defaults().len(), 5);
    }
}
