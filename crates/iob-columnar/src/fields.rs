//! The columns of one stored event, read straight from its JSON without building a tree:
//! borrowed strings, the properties object copied as raw text, unknown members skipped.
//!
//! Only non-identifying fields are read (the identifiers the payload holds are never
//! looked at). A payload whose fields have unexpected types (a `context.page` that is a
//! string) is not an error: the caller falls back to the tree reader, which skips such values.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_json::value::RawValue;

/// A JSON scalar as text: strings as they are, numbers and booleans written out (a campaign
/// named `2024` is still a name).
#[derive(Debug)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                )))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct Page<'a> {
    #[serde(borrow, default)]
    pub path: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub title: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub referrer: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Campaign<'a> {
    #[serde(borrow, default)]
    pub source: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub medium: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
pub(crate) struct App<'a> {
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Context<'a> {
    #[serde(borrow, default)]
    pub page: Option<Page<'a>>,
    #[serde(borrow, default)]
    pub campaign: Option<Campaign<'a>>,
    #[serde(borrow, default)]
    pub app: Option<App<'a>>,
    #[serde(borrow, default)]
    pub locale: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
pub(crate) struct UserAgent<'a> {
    #[serde(borrow, default)]
    pub device: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub os: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub browser: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Enrichment<'a> {
    #[serde(borrow, default, rename = "userAgent")]
    pub user_agent: Option<UserAgent<'a>>,
}

/// The fields the columnar schema takes from an event.
#[derive(Deserialize, Default)]
pub(crate) struct Fields<'a> {
    #[serde(borrow, default)]
    pub event: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
    #[serde(borrow, default, rename = "iobSource")]
    pub source: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub context: Option<Context<'a>>,
    #[serde(borrow, default, rename = "iobEnrichment")]
    pub enrichment: Option<Enrichment<'a>>,
    #[serde(borrow, default)]
    pub metric: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub unit: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub properties: Option<&'a RawValue>,
}

impl<'a> Fields<'a> {
    /// The event's fields, or `None` if some field has an unexpected type.
    pub(crate) fn read(payload: &'a [u8]) -> Option<Fields<'a>> {
        serde_json::from_slice(payload).ok()
    }

    /// The text columns in [`crate::schema::TEXT_FIELDS`] order.
    pub(crate) fn texts(&self) -> [Option<&str>; 13] {
        fn t<'s>(x: Option<&'s Text<'_>>) -> Option<&'s str> {
            x.map(|t| t.0.as_ref())
        }
        let ctx = self.context.as_ref();
        let page = ctx.and_then(|c| c.page.as_ref());
        let campaign = ctx.and_then(|c| c.campaign.as_ref());
        let ua = self.enrichment.as_ref().and_then(|e| e.user_agent.as_ref());
        [
            t(self.source.as_ref()),
            t(page.and_then(|p| p.path.as_ref())),
            t(page.and_then(|p| p.title.as_ref())),
            t(page.and_then(|p| p.referrer.as_ref())),
            t(campaign.and_then(|c| c.source.as_ref())),
            t(campaign.and_then(|c| c.medium.as_ref())),
            t(campaign.and_then(|c| c.name.as_ref())),
            t(ua.and_then(|u| u.device.as_ref())),
            t(ua.and_then(|u| u.os.as_ref())),
            t(ua.and_then(|u| u.browser.as_ref())),
            t(ctx
                .and_then(|c| c.app.as_ref())
                .and_then(|a| a.name.as_ref())),
            t(ctx.and_then(|c| c.locale.as_ref())),
            t(self.unit.as_ref()),
        ]
    }

    /// `value` if it is a number.
    pub(crate) fn value(&self) -> Option<f64> {
        self.value.and_then(|v| v.get().parse::<f64>().ok())
    }

    /// The properties object as compact JSON text, if it has members.
    pub(crate) fn properties(&self) -> Option<&'a str> {
        let raw = self.properties?.get().trim();
        (raw.starts_with('{')
            && raw != "{}"
            && !raw.trim_start_matches('{').trim_start().starts_with('}'))
        .then_some(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_needs_and_tolerates_the_rest() {
        let j = br#"{"type":"track","userId":"ada","event":"Order","iobSource":"web","context":{"page":{"path":"/a","title":"T"},"campaign":{"name":2024},"locale":"fr","ip":"1.2.3.4"},"iobEnrichment":{"userAgent":{"device":"mobile","os":"iOS"}},"properties":{"sku":"A\"1","n":[1,2]},"value":3.5,"unknown":{"deep":[1,{"x":2}]}}"#;
        let f = Fields::read(j).unwrap();
        let t = f.texts();
        assert_eq!(t[0], Some("web"));
        assert_eq!(t[1], Some("/a"));
        assert_eq!(t[6], Some("2024"));
        assert_eq!(t[7], Some("mobile"));
        assert_eq!(t[11], Some("fr"));
        assert_eq!(f.event.as_ref().unwrap().0, "Order");
        assert_eq!(f.value(), Some(3.5));
        assert_eq!(f.properties(), Some(r#"{"sku":"A\"1","n":[1,2]}"#));
        // Unexpected types make the fast reader give up (the caller falls back), never panic.
        assert!(Fields::read(br#"{"context":{"page":"home"}}"#).is_none());
        assert!(
            Fields::read(br#"{"properties":{}}"#)
                .unwrap()
                .properties()
                .is_none()
        );
        assert!(
            Fields::read(br#"{"properties":{ }}"#)
                .unwrap()
                .properties()
                .is_none()
        );
        assert_eq!(Fields::read(br#"{"value":"high"}"#).unwrap().value(), None);
    }
}
