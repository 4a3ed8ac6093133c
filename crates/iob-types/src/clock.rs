//! Event time. iob keeps UTC milliseconds since the Unix epoch: enough resolution for behavior,
//! cheap to compare and to index, and what SDKs send.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::TypesError;

/// A point in time, UTC milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Earliest and latest instants iob accepts (years 1970..=2200): anything outside is a bug
/// upstream (seconds sent as milliseconds, or the reverse), not behavior.
const MIN_MS: i64 = 0;
const MAX_MS: i64 = 7_258_118_400_000;

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Parses ISO-8601 / RFC 3339 (`2024-05-01T12:00:00.123Z`, `...+02:00`, and the common
    /// variants without seconds' fraction or with a space instead of `T`). `field` names the
    /// value in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, TypesError> {
        let err = |reason: &str| TypesError::Timestamp {
            field: field.to_string(),
            reason: reason.to_string(),
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(err("empty string"));
        }
        let dt = match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(dt) => dt,
            Err(_) => parse_lenient(s).ok_or_else(|| err("not ISO-8601"))?,
        };
        let ms = (dt.unix_timestamp_nanos() / 1_000_000) as i64;
        Self::checked(field, ms)
    }

    /// Accepts epoch milliseconds, rejecting values outside the supported range.
    pub fn checked(field: &str, ms: i64) -> Result<Self, TypesError> {
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return Err(TypesError::Timestamp {
                field: field.to_string(),
                reason: format!("{ms} ms is outside 1970..2200"),
            });
        }
        Ok(Timestamp(ms))
    }

    /// RFC 3339 with milliseconds and `Z`, the form Segment emits.
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(24);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends the RFC 3339 form to `out` without allocating elsewhere.
    pub fn write_rfc3339(self, out: &mut String) {
        let mut b = [0u8; 24];
        match self.rfc3339_fast(&mut b) {
            // The fast form is ASCII digits and separators.
            Some(()) => out.push_str(std::str::from_utf8(&b).expect("ASCII")),
            None => self.write_rfc3339_general(out),
        }
    }

    /// Appends the RFC 3339 form to a byte buffer (the canonical JSON writer's hot path: four
    /// timestamps per event).
    pub fn write_rfc3339_bytes(self, out: &mut Vec<u8>) {
        let mut b = [0u8; 24];
        match self.rfc3339_fast(&mut b) {
            Some(()) => out.extend_from_slice(&b),
            None => {
                let mut s = String::with_capacity(24);
                self.write_rfc3339_general(&mut s);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` by hand for the supported range (years 1970..=2200, always
    /// four-digit years); `None` outside it, where the general path keeps its exact output.
    fn rfc3339_fast(self, b: &mut [u8; 24]) -> Option<()> {
        if !(MIN_MS..=MAX_MS).contains(&self.0) {
            return None;
        }
        let (days, rem) = (self.0 / 86_400_000, self.0 % 86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = rem / 1000;
        let put2 = |b: &mut [u8; 24], at: usize, v: i64| {
            b[at] = b'0' + (v / 10) as u8;
            b[at + 1] = b'0' + (v % 10) as u8;
        };
        put2(b, 0, y / 100);
        put2(b, 2, y % 100);
        b[4] = b'-';
        put2(b, 5, m);
        b[7] = b'-';
        put2(b, 8, d);
        b[10] = b'T';
        put2(b, 11, secs / 3600);
        b[13] = b':';
        put2(b, 14, secs / 60 % 60);
        b[16] = b':';
        put2(b, 17, secs % 60);
        b[19] = b'.';
        let ms = rem % 1000;
        b[20] = b'0' + (ms / 100) as u8;
        put2(b, 21, ms % 100);
        b[23] = b'Z';
        Some(())
    }

    /// Any instant, through the `time` crate (out-of-range values print as the epoch).
    fn write_rfc3339_general(self, out: &mut String) {
        use std::fmt::Write;
        let dt = OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            dt.month() as u8,
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        );
    }

    pub fn saturating_add_ms(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01, for `days >= 0` (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Variants seen from real SDKs and exports: `2024-05-01 12:00:00`, no offset (taken as UTC),
/// offsets written `+0000`.
fn parse_lenient(s: &str) -> Option<OffsetDateTime> {
    // Timestamps are ASCII; checking first makes the byte slicing below safe.
    if !s.is_ascii() {
        return None;
    }
    let fixed = s.replacen(' ', "T", 1);
    let b = fixed.as_bytes();
    // Split off an offset: Z, +hh:mm, +hhmm, -hh...
    let (body, offset) = if let Some(body) = fixed.strip_suffix('Z') {
        (body.to_string(), UtcOffset::UTC)
    } else if b.len() > 19 && (b[b.len() - 5] == b'+' || b[b.len() - 5] == b'-') {
        let sign = if b[b.len() - 5] == b'-' { -1 } else { 1 };
        let h: i8 = fixed[fixed.len() - 4..fixed.len() - 2].parse().ok()?;
        let m: i8 = fixed[fixed.len() - 2..].parse().ok()?;
        (
            fixed[..fixed.len() - 5].to_string(),
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?,
        )
    } else {
        (fixed.clone(), UtcOffset::UTC)
    };
    let with_secs = if body.len() == 16 {
        format!("{body}:00")
    } else {
        body
    };
    let rfc = format!("{with_secs}Z");
    let dt = OffsetDateTime::parse(&rfc, &Rfc3339).ok()?;
    Some(dt.replace_offset(offset))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse("timestamp", &s).map_err(serde::de::Error::custom)
    }
}

/// Where "now" comes from. Stage crates take a clock instead of reading the system time, so
/// their output is a function of their input.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        Timestamp(ms as i64)
    }
}

/// A clock that only moves when told to (tests, replay).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        FixedClock(AtomicI64::new(at.0))
    }
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segment_forms() {
        let a = Timestamp::parse("t", "2015-12-12T19:11:01.249Z").unwrap();
        assert_eq!(a.to_rfc3339(), "2015-12-12T19:11:01.249Z");
        let b = Timestamp::parse("t", "2015-12-12T21:11:01.249+02:00").unwrap();
        assert_eq!(a, b);
        let c = Timestamp::parse("t", "2015-12-12 19:11:01").unwrap();
        assert_eq!(c.millis(), a.millis() - 249);
        let d = Timestamp::parse("t", "2015-12-12T19:11:01.249+0000").unwrap();
        assert_eq!(a, d);
        let e = Timestamp::parse("t", "2015-12-12T19:11").unwrap();
        assert_eq!(e.millis(), a.millis() - 1_249);
    }

    #[test]
    fn rejects_garbage_naming_the_field() {
        let err = Timestamp::parse("sentAt", "yesterday").unwrap_err();
        assert!(err.to_string().contains("`sentAt`"), "{err}");
        assert!(Timestamp::parse("t", "").is_err());
        // Found by the property test: multi-byte characters where an offset would be.
        assert!(Timestamp::parse("t", "®𐀀AATἘ  0+𱍐").is_err());
        assert!(Timestamp::checked("t", -5).is_err());
        assert!(Timestamp::checked("t", i64::MAX).is_err());
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(Timestamp(10));
        assert_eq!(c.now(), Timestamp(10));
        c.advance_ms(5);
        assert_eq!(c.now(), Timestamp(15));
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_roundtrips(ms in 0i64..7_258_118_400_000) {
            let t = Timestamp(ms);
            proptest::prop_assert_eq!(Timestamp::parse("t", &t.to_rfc3339()).unwrap(), t);
        }

        #[test]
        fn fast_rfc3339_matches_the_time_crate(ms in proptest::prop_oneof![
            0i64..7_258_118_400_000,
            proptest::num::i64::ANY,
            proptest::prop_oneof![
                proptest::strategy::Just(0i64),
                proptest::strategy::Just(7_258_118_400_000i64),
                proptest::strategy::Just(951_782_400_000i64), // 2000-02-29
                proptest::strategy::Just(4_107_456_000_000i64), // 2100-03-01
            ],
        ]) {
            let t = Timestamp(ms);
            let mut general = String::new();
            t.write_rfc3339_general(&mut general);
            let mut bytes = Vec::new();
            t.write_rfc3339_bytes(&mut bytes);
            proptest::prop_assert_eq!(&t.to_rfc3339(), &general);
            proptest::prop_assert_eq!(bytes, general.into_bytes());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse("t", &s);
        }
    }
}
