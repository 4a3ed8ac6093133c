//! Readers for single top-level values of a Segment event, each returning a [`Rejection`] that
//! names the field on bad input. They work on borrowed [`RawValue`]s and only decode what they
//! validate (a string's text, a number); they must never build a `serde_json::Value`.

use std::borrow::Cow;

use iob_types::Timestamp;
use serde_json::value::RawValue;

use crate::reject::{JsonType, Rejection};

/// Longest accepted identifier (`userId`, `anonymousId`, `groupId`, `previousId`, `deviceId`).
pub const MAX_ID_BYTES: usize = 512;
/// Longest accepted `messageId`, in characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 200;

/// Top-level `(key, raw value)` pairs of a JSON object, borrowed from the text (the shared
/// splitter of `iob-types`: keys borrowed unless escaped).
pub(crate) use iob_types::{ObjectFields as Fields, split_object, split_object_into};

/// `None` when the value is JSON `null`.
pub(crate) fn non_null(raw: &RawValue) -> Option<&RawValue> {
    if raw.get() == "null" { None } else { Some(raw) }
}

/// The text of a JSON string without allocating when it has no escapes.
pub(crate) fn str_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        let inner = &s[1..s.len() - 1];
        if !inner.as_bytes().contains(&b'\\') {
            return Some(Cow::Borrowed(inner));
        }
        return serde_json::from_str::<String>(s).ok().map(Cow::Owned);
    }
    None
}

/// An optional string field; `null` is absent. Borrowed from the body unless it has escapes.
pub(crate) fn opt_string<'a>(
    field: &str,
    raw: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(raw) = raw.and_then(non_null) else {
        return Ok(None);
    };
    match str_text(raw) {
        Some(s) => Ok(Some(s)),
        None => Err(Rejection::wrong_type(field, "a string", raw)),
    }
}

/// An identifier: a string or a number (numbers become their decimal text, as Segment does).
/// `null` and `""` are absent; longer than [`MAX_ID_BYTES`] is invalid.
pub(crate) fn opt_id<'a>(
    field: &str,
    raw: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(raw) = raw.and_then(non_null) else {
        return Ok(None);
    };
    let text = match JsonType::of(raw) {
        JsonType::String => str_text(raw).expect("string"),
        JsonType::Number => Cow::Borrowed(raw.get()),
        _ => return Err(Rejection::wrong_type(field, "a string or number", raw)),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_ID_BYTES {
        return Err(Rejection::invalid(
            field,
            format!(
                "`{field}` is {} bytes long; identifiers are limited to {MAX_ID_BYTES} bytes",
                text.len()
            ),
        ));
    }
    Ok(Some(text))
}

/// A nested object kept raw (`properties`, `traits`, `context`, `integrations`, `tags`);
/// `null` is absent.
pub(crate) fn opt_object<'a>(
    field: &str,
    raw: Option<&'a RawValue>,
) -> Result<Option<&'a RawValue>, Rejection> {
    let Some(raw) = raw.and_then(non_null) else {
        return Ok(None);
    };
    if JsonType::of(raw) == JsonType::Object {
        Ok(Some(raw))
    } else {
        Err(Rejection::wrong_type(field, "an object", raw))
    }
}

/// A timestamp: an ISO-8601 / RFC 3339 string or integer epoch milliseconds.
pub(crate) fn opt_timestamp(
    field: &str,
    raw: Option<&RawValue>,
) -> Result<Option<Timestamp>, Rejection> {
    let Some(raw) = raw.and_then(non_null) else {
        return Ok(None);
    };
    match JsonType::of(raw) {
        JsonType::String => {
            let s = str_text(raw).expect("string");
            if let Some(ts) = fast_rfc3339(&s) {
                return Ok(Some(ts));
            }
            Timestamp::parse(field, &s)
                .map(Some)
                .map_err(|e| Rejection::invalid(field, e.to_string()))
        }
        JsonType::Number => {
            let ms: i64 = raw.get().parse().map_err(|_| {
                Rejection::invalid(
                    field,
                    format!(
                        "`{field}` is the number {}; numeric timestamps must be integer epoch milliseconds",
                        raw.get()
                    ),
                )
            })?;
            Timestamp::checked(field, ms)
                .map(Some)
                .map_err(|e| Rejection::invalid(field, e.to_string()))
        }
        _ => Err(Rejection::wrong_type(
            field,
            "an ISO-8601 string or epoch milliseconds",
            raw,
        )),
    }
}

/// Fast path for the form every SDK sends, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`; anything else
/// (offsets, spaces, missing seconds) returns `None` and goes to [`Timestamp::parse`].
pub(crate) fn fast_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &b[19..b.len() - 1];
    let millis = match frac.len() {
        0 => 0,
        n if (2..=10).contains(&n) && frac[0] == b'.' => {
            let mut ms = 0i64;
            for i in 1..4 {
                let d = match frac.get(i) {
                    Some(c) if c.is_ascii_digit() => (c - b'0') as i64,
                    Some(_) => return None,
                    None => 0,
                };
                ms = ms * 10 + d;
            }
            if !frac[1..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            ms
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > dim[(month - 1) as usize] {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let ms = ((days * 24 + hour) * 60 + min) * 60_000 + sec * 1000 + millis;
    Timestamp::checked("", ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn ids_accept_strings_and_numbers() {
        assert_eq!(
            opt_id("userId", Some(&raw("\"u1\""))).unwrap().as_deref(),
            Some("u1")
        );
        assert_eq!(
            opt_id("userId", Some(&raw("42"))).unwrap().as_deref(),
            Some("42")
        );
        assert_eq!(
            opt_id("userId", Some(&raw("\"a\\\"b\"")))
                .unwrap()
                .as_deref(),
            Some("a\"b")
        );
        assert_eq!(opt_id("userId", Some(&raw("\"\""))).unwrap(), None);
        assert_eq!(opt_id("userId", Some(&raw("null"))).unwrap(), None);
        let long = format!("\"{}\"", "x".repeat(513));
        let e = opt_id("userId", Some(&raw(&long))).unwrap_err();
        assert_eq!(e.code, crate::RejectCode::InvalidValue);
        let e = opt_id("userId", Some(&raw("[1]"))).unwrap_err();
        assert_eq!(
            e.message,
            "`userId` must be a string or number, got an array"
        );
    }

    #[test]
    fn fast_timestamp_agrees_with_the_general_parser() {
        for s in [
            "2015-12-12T19:11:01.249Z",
            "2015-12-12T19:11:01Z",
            "2000-02-29T23:59:59.9Z",
            "1970-01-01T00:00:00.000000001Z",
            "2024-05-01T12:00:00.123456Z",
        ] {
            assert_eq!(
                fast_rfc3339(s),
                Some(Timestamp::parse("t", s).unwrap()),
                "{s}"
            );
        }
        for s in [
            "2015-02-29T00:00:00Z",
            "2015-12-12T19:11:01.249+02:00",
            "2015-12-12 19:11:01Z",
            "2015-13-01T00:00:00Z",
            "2015-12-12T19:11:01.Z",
        ] {
            assert_eq!(fast_rfc3339(s), None, "{s}");
        }
    }

    #[test]
    fn timestamps_from_strings_and_millis() {
        let t = opt_timestamp("sentAt", Some(&raw("1700000000123")))
            .unwrap()
            .unwrap();
        assert_eq!(t.millis(), 1_700_000_000_123);
        let e = opt_timestamp("sentAt", Some(&raw("1.5"))).unwrap_err();
        assert!(
            e.message.contains("integer epoch milliseconds"),
            "{}",
            e.message
        );
        let e = opt_timestamp("sentAt", Some(&raw("\"yesterday\""))).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            (crate::RejectCode::InvalidValue, "sentAt")
        );
        let e = opt_timestamp("sentAt", Some(&raw("true"))).unwrap_err();
        assert_eq!(e.code, crate::RejectCode::WrongType);
        let e = opt_timestamp("sentAt", Some(&raw("-5"))).unwrap_err();
        assert_eq!(e.code, crate::RejectCode::InvalidValue);
    }
}
