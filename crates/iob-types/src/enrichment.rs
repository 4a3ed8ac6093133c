//! Server-side enrichment of an event: what the collector derived from it (the parsed user
//! agent, the sentiment of configured free-text properties). Stored on the event as the
//! server-owned `iobEnrichment` field, which a client can never set; downstream stages
//! (profiles: device mix, channel mix, review sentiment) read [`crate::Event::enrichment`]
//! instead of parsing `context.userAgent` or free text again.
//!
//! Canonical JSON, every member optional (absent when unknown or not computed):
//!
//! ```json
//! "iobEnrichment": {
//!   "userAgent": {"browser": "Safari", "browserVersion": "17.4", "os": "Mac OSX",
//!                 "osVersion": "10.14.4", "device": "desktop"},
//!   "sentiment": {"review": 0.6369}
//! }
//! ```

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Derived facts about an event (`iobEnrichment` in JSON).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Enrichment {
    /// `context.userAgent`, parsed; `None` when the event had no user agent (or parsing is
    /// switched off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<UserAgent>,
    /// VADER compound score (−1 very negative … +1 very positive, rounded to 4 decimals) of
    /// each configured free-text property that was a string, in configuration order.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser_scores",
        deserialize_with = "de_scores"
    )]
    pub sentiment: Vec<(String, f64)>,
}

impl Enrichment {
    /// Nothing derived: such an enrichment is not stored.
    pub fn is_empty(&self) -> bool {
        self.user_agent.is_none() && self.sentiment.is_empty()
    }

    /// The sentiment score of `property`, if computed.
    pub fn sentiment_of(&self, property: &str) -> Option<f64> {
        self.sentiment
            .iter()
            .find(|(k, _)| k == property)
            .map(|(_, v)| *v)
    }
}

/// A parsed user agent. Names and versions are the parser's (woothee's) spelling; fields the
/// parser could not tell are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserAgent {
    /// Browser, app or crawler name: `Chrome`, `Safari`, `Firefox`, `Googlebot`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    /// `Windows 10`, `Mac OSX`, `iPhone`, `Android`, `Linux`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub device: Device,
}

/// The class of device an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// A desktop or laptop browser.
    Desktop,
    /// A smartphone.
    Mobile,
    /// A tablet (iPad, Android without "Mobile").
    Tablet,
    /// A feature phone (i-mode, EZweb...).
    Featurephone,
    /// A game console, TV or other appliance.
    Appliance,
    /// A crawler, bot or HTTP library.
    Bot,
    /// Recognized, but none of the above (feed readers, desktop tools).
    Other,
    /// Could not tell.
    #[default]
    Unknown,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Featurephone => "featurephone",
            Device::Appliance => "appliance",
            Device::Bot => "bot",
            Device::Other => "other",
            Device::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn ser_scores<S: Serializer>(scores: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(scores.len()))?;
    for (k, v) in scores {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

fn de_scores<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, f64)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of property name to score")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some((k, s)) = m.next_entry::<String, f64>()? {
                if v.iter().any(|(o, _)| *o == k) {
                    return Err(de::Error::custom(format!("`{k}` appears twice")));
                }
                v.push((k, s));
            }
            Ok(v)
        }
    }
    d.deserialize_map(V)
}
