//! Splitting a JSON object into its top-level `(key, raw value)` fields without parsing the
//! values: the one mechanism the canonical decoder, the collector and the unify stage use to
//! read objects. Keys and values are borrowed from the input; a key is copied only when it
//! contains escapes (serde's own `Cow<str>` always copies: it deserializes through `String`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Top-level `(key, raw value)` pairs of a JSON object, borrowed from its text.
pub type ObjectFields<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// An object key, borrowed from the text unless it has escapes.
pub struct ObjectKey<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for ObjectKey<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<ObjectKey<'de>, E> {
                Ok(ObjectKey(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<ObjectKey<'de>, E> {
                Ok(ObjectKey(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<ObjectKey<'de>, E> {
                Ok(ObjectKey(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A seed that appends an object's fields to a caller's buffer (so a batch reuses one
/// allocation, and a reader of a larger document can split objects as it meets them).
pub struct AppendFields<'v, 'a>(pub &'v mut ObjectFields<'a>);

impl<'de> DeserializeSeed<'de> for AppendFields<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AppendFields<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(ObjectKey(k)) = m.next_key::<ObjectKey<'de>>()? {
            let val: &'de RawValue = m.next_value()?;
            self.0.push((k, val));
        }
        Ok(())
    }
}

/// The fields of the object `s`, into `out` (cleared first). Like `serde_json::from_str`, the
/// object must be the whole text, up to whitespace.
pub fn split_object_into<'a>(
    s: &'a str,
    out: &mut ObjectFields<'a>,
) -> Result<(), serde_json::Error> {
    out.clear();
    let mut de = serde_json::Deserializer::from_str(s);
    AppendFields(out).deserialize(&mut de)?;
    de.end()
}

/// The fields of the object `s`.
pub fn split_object(s: &str) -> Result<ObjectFields<'_>, serde_json::Error> {
    let mut out = Vec::with_capacity(12);
    split_object_into(s, &mut out)?;
    Ok(out)
}

/// [`split_object`] of bytes (validated as UTF-8 while read).
pub fn split_top_level(bytes: &[u8]) -> Result<ObjectFields<'_>, serde_json::Error> {
    let mut out = Vec::with_capacity(16);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    AppendFields(&mut out).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_borrowed_unless_escaped() {
        let f = split_object(r#" {"a": 1, "b\u0031": {"c": [2]}} "#).unwrap();
        assert!(matches!(f[0].0, Cow::Borrowed("a")));
        assert!(matches!(&f[1].0, Cow::Owned(k) if k == "b1"));
        assert_eq!(f[1].1.get(), r#"{"c": [2]}"#);
        assert_eq!(
            split_top_level(br#"{"x":null}"#).unwrap()[0].1.get(),
            "null"
        );
        for bad in ["[1]", "{\"a\":1} x", "{\"a\":}", ""] {
            assert!(split_object(bad).is_err(), "{bad}");
        }
    }
}
