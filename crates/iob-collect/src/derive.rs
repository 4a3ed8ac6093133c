//! Enrichment derived from an event's content, stored as its `iobEnrichment`
//! ([`iob_types::Enrichment`]): `context.userAgent` parsed by woothee (browser, OS, device
//! class), and the VADER sentiment of configured free-text properties.
//!
//! Both run on the ingest hot path. User-agent strings repeat heavily (one per browser build),
//! so parses are memoized in a bounded [`UaCache`] per collector; a memo never changes a
//! result. Sentiment runs only for the configured property names, and only when the
//! `properties` text mentions one. Neither can reject an event: a value that is not a string,
//! a user agent nobody recognizes, or a panic inside a parser just yields less enrichment.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::panic::catch_unwind;
use std::sync::Arc;

use iob_types::{Device, UserAgent};
use parking_lot::Mutex;
use serde_json::value::RawValue;

use crate::json_scan::Member;
use xxhash_rust::xxh3::Xxh3Builder;

/// Only this many leading bytes of a user agent are parsed (real ones are under 300; longer
/// ones are junk or attacks, and the parser's regexes scan the whole string).
pub const MAX_USER_AGENT_BYTES: usize = 512;
/// Only this many leading bytes of a free-text property are scored.
pub const MAX_SENTIMENT_TEXT_BYTES: usize = 8 * 1024;
/// Distinct user agents remembered per collector; the memo is emptied when it fills.
pub const USER_AGENT_CACHE_ENTRIES: usize = 4096;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parses a user agent with woothee. Never panics; unrecognized strings give
/// [`Device::Unknown`] and no names.
pub fn parse_user_agent(ua: &str) -> UserAgent {
    let ua = prefix(ua, MAX_USER_AGENT_BYTES);
    catch_unwind(|| parse_woothee(ua)).unwrap_or_default()
}

fn parse_woothee(ua: &str) -> UserAgent {
    let Some(r) = woothee::parser::Parser::new().parse(ua) else {
        return UserAgent::default();
    };
    let known =
        |s: &str| (!s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN).then(|| s.to_owned());
    let device = match r.category {
        "pc" => Device::Desktop,
        // woothee files tablets under smartphones; iPads say so, and Android tablets are the
        // Android user agents without "Mobile" (Google's convention for its own browsers).
        "smartphone" if r.os == "iPad" || (r.os == "Android" && !ua.contains("Mobile")) => {
            Device::Tablet
        }
        "smartphone" => Device::Mobile,
        "mobilephone" => Device::Featurephone,
        "appliance" => Device::Appliance,
        "crawler" => Device::Bot,
        "misc" if r.name == "HTTP Library" => Device::Bot,
        "misc" => Device::Other,
        _ => Device::Unknown,
    };
    UserAgent {
        browser: known(r.name),
        browser_version: known(r.version),
        os: known(r.os),
        os_version: known(&r.os_version),
        device,
    }
}

/// The VADER compound score of `text`, rounded to 4 decimals (what VADER's reference
/// implementation reports); `None` when it cannot be computed.
pub fn sentiment(text: &str) -> Option<f64> {
    let text = prefix(text, MAX_SENTIMENT_TEXT_BYTES);
    let compound = catch_unwind(|| {
        let analyzer = vader_sentiment::SentimentIntensityAnalyzer::new();
        analyzer.polarity_scores(text).get("compound").copied()
    })
    .ok()
    .flatten()?;
    compound
        .is_finite()
        .then(|| ((compound * 1e4).round() / 1e4).clamp(-1.0, 1.0))
}

/// Parsed user agents by their (truncated) text.
pub(crate) struct UaCache {
    map: Mutex<HashMap<Box<str>, Arc<UserAgent>, Xxh3Builder>>,
}

impl Default for UaCache {
    fn default() -> Self {
        UaCache {
            map: Mutex::new(HashMap::with_hasher(Xxh3Builder::new())),
        }
    }
}

impl fmt::Debug for UaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UaCache")
            .field("entries", &self.map.lock().len())
            .finish()
    }
}

impl UaCache {
    /// The parse of `ua`, memoized. The lock is never held while parsing.
    pub fn get(&self, ua: &str) -> Arc<UserAgent> {
        let ua = prefix(ua, MAX_USER_AGENT_BYTES);
        if let Some(hit) = self.map.lock().get(ua) {
            return Arc::clone(hit);
        }
        let parsed = Arc::new(parse_user_agent(ua));
        let mut map = self.map.lock();
        if map.len() >= USER_AGENT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(ua.into(), Arc::clone(&parsed));
        parsed
    }
}

/// `context.userAgent` when it is a non-empty string; `noted` is what the batch reader saw of
/// it while splitting the event (for the event's own `context` only).
pub(crate) fn user_agent_of<'a>(context: &'a RawValue, noted: Member<'a>) -> Option<Cow<'a, str>> {
    member_of(context.get(), "userAgent", noted)
        .and_then(string_at)
        .filter(|s| !s.is_empty())
}

/// The first top-level member `name` of the JSON object `obj`, as the text from its value to
/// the end of `obj`: what the batch reader noted ([`Member`]), else found by one pass over
/// `obj` (escaped keys decoded). The one place enrichment decides between the two.
pub(crate) fn member_of<'a>(obj: &'a str, name: &str, noted: Member<'a>) -> Option<&'a str> {
    match noted {
        Member::Found(value) => Some(value),
        Member::Absent => None,
        Member::Unknown => {
            let mut out = None;
            scan_members(obj, |k, value| {
                if k == name {
                    out = Some(value);
                }
                out.is_none()
            });
            out
        }
    }
}

/// The configured free-text property names, with a prebuilt substring search for each so
/// that the common event, which has none of them, is passed over without scanning it.
#[derive(Debug, Default)]
pub(crate) struct TextProperties {
    names: Vec<String>,
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl TextProperties {
    pub fn new(names: &[String]) -> Self {
        TextProperties {
            names: names.to_vec(),
            finders: names
                .iter()
                .map(|n| memchr::memmem::Finder::new(n.as_bytes()).into_owned())
                .collect(),
        }
    }

    /// The sentiment of each configured property that is a string in `properties`, in
    /// configuration order.
    pub fn sentiments(&self, properties: &RawValue) -> Vec<(String, f64)> {
        let text = properties.get().as_bytes();
        // A name can only match as itself, or spelled with escapes.
        let maybe = self.finders.iter().any(|f| f.find(text).is_some())
            || memchr::memchr(b'\\', text).is_some();
        if !maybe {
            return Vec::new();
        }
        sentiments(properties, &self.names)
    }
}

/// The sentiment of each of `names` that is a string in `properties`, in `names` order.
pub(crate) fn sentiments(properties: &RawValue, names: &[String]) -> Vec<(String, f64)> {
    let mut found: Vec<(usize, Option<Cow<str>>)> = Vec::new();
    scan_members(properties.get(), |key, value| {
        if let Some(i) = names.iter().position(|n| *n == key)
            && !found.iter().any(|(j, _)| *j == i)
        {
            // The first member of a name counts, as in the parser; a non-string is skipped.
            found.push((i, string_at(value)));
        }
        found.len() < names.len()
    });
    found.sort_by_key(|(i, _)| *i);
    found
        .into_iter()
        .filter_map(|(i, text)| Some((names[i].clone(), sentiment(&text?)?)))
        .collect()
}

/// Calls `visit(key, value…)` for each top-level member of the JSON object `obj`, in order,
/// with the text from the member's value to the end of `obj`, until `visit` returns false.
///
/// `obj` has been validated by the parser (it is a `RawValue` of an accepted body), so one pass
/// over its bytes that jumps over strings and counts brackets finds the members without
/// building anything: this runs for every event, and splitting `context` with serde cost
/// more than the rest of the enrichment. Tested against [`crate::fields::split_object`].
fn scan_members<'a>(obj: &'a str, mut visit: impl FnMut(&str, &'a str) -> bool) {
    let b = obj.as_bytes();
    let Some(open) = memchr::memchr(b'{', b) else {
        return;
    };
    let mut i = open + 1;
    let mut depth = 0usize; // below the top-level object
    let mut at_key = true;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let Some((end, escaped)) = string_end(b, i) else {
                    return;
                };
                if depth == 0 && at_key {
                    // `:` follows the key, perhaps after whitespace; then the value.
                    let mut j = end;
                    while j < b.len() && b[j] != b':' {
                        j += 1;
                    }
                    j += 1;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if j >= b.len() {
                        return;
                    }
                    if let Some(k) = string_text(&obj[i..end], escaped)
                        && !visit(&k, &obj[j..])
                    {
                        return;
                    }
                    at_key = false;
                    i = j;
                } else {
                    i = end;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                let Some(d) = depth.checked_sub(1) else {
                    return;
                };
                depth = d;
                i += 1;
            }
            b',' if depth == 0 => {
                at_key = true;
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// The text of the JSON string `value` starts with, if it starts with one.
fn string_at(value: &str) -> Option<Cow<'_, str>> {
    if !value.starts_with('"') {
        return None;
    }
    let (end, escaped) = string_end(value.as_bytes(), 0)?;
    string_text(&value[..end], escaped)
}

/// The index just past the string that opens at `b[open]` (a `"`), and whether it has
/// escapes. Jumps between quotes and backslashes (strings are most of the bytes).
fn string_end(b: &[u8], open: usize) -> Option<(usize, bool)> {
    let mut j = open + 1;
    let mut escaped = false;
    loop {
        j = iob_types::string_stop::<false>(b, j);
        if *b.get(j)? == b'"' {
            return Some((j + 1, escaped));
        }
        escaped = true;
        j += 2;
    }
}

/// The text of a JSON string literal (with its quotes), borrowed unless it has escapes.
fn string_text(lit: &str, escaped: bool) -> Option<Cow<'_, str>> {
    if escaped {
        serde_json::from_str::<String>(lit).ok().map(Cow::Owned)
    } else {
        lit.get(1..lit.len() - 1).map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ua(s: &str) -> UserAgent {
        parse_user_agent(s)
    }

    #[test]
    fn desktop_chrome() {
        let u = ua(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        );
        assert_eq!(u.device, Device::Desktop);
        assert_eq!(u.browser.as_deref(), Some("Chrome"));
        assert_eq!(u.browser_version.as_deref(), Some("124.0.0.0"));
        assert_eq!(u.os.as_deref(), Some("Windows 10"));
    }

    #[test]
    fn benchmark_safari_on_mac() {
        let text = crate::sample::analytics_js_track(0)["context"]["userAgent"]
            .as_str()
            .unwrap()
            .to_owned();
        let u = ua(&text);
        assert_eq!(u.device, Device::Desktop);
        assert_eq!(u.browser.as_deref(), Some("Safari"));
        assert_eq!(u.browser_version.as_deref(), Some("17.4"));
        assert_eq!(u.os.as_deref(), Some("Mac OSX"));
    }

    #[test]
    fn iphone_safari() {
        let u = ua(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(u.device, Device::Mobile);
        assert_eq!(u.browser.as_deref(), Some("Safari"));
        assert_eq!(u.os.as_deref(), Some("iPhone"));
        assert_eq!(u.os_version.as_deref(), Some("17.4"));
    }

    #[test]
    fn tablets() {
        let android = ua(
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        );
        assert_eq!(android.device, Device::Tablet);
        assert_eq!(android.os.as_deref(), Some("Android"));
        assert_eq!(android.os_version.as_deref(), Some("13"));
        let phone = ua(
            "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        );
        assert_eq!(phone.device, Device::Mobile);
        let ipad = ua(
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(ipad.device, Device::Tablet);
    }

    #[test]
    fn bots() {
        let g = ua("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(g.device, Device::Bot);
        assert_eq!(g.browser.as_deref(), Some("Googlebot"));
        assert_eq!(ua("curl/8.5.0").device, Device::Bot);
    }

    #[test]
    fn garbage_empty_and_huge_never_panic() {
        let g = ua("definitely not a browser ¯\\_(ツ)_/¯");
        assert_eq!(g, UserAgent::default());
        assert_eq!(g.device, Device::Unknown);
        assert_eq!(ua("").device, Device::Unknown);
        let huge = "Mozilla/5.0 (Windows NT 10.0) Chrome/1.0 é".repeat(250);
        assert!(huge.len() > 10_000);
        let u = ua(&huge);
        assert_eq!(u.device, Device::Desktop);
        let cache = UaCache::default();
        assert_eq!(*cache.get(&huge), u);
        assert_eq!(prefix("aé", 2), "a");
    }

    #[test]
    fn cache_is_bounded_and_returns_the_parse() {
        let cache = UaCache::default();
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0 Safari/537.36";
        let a = cache.get(chrome);
        assert!(Arc::ptr_eq(&a, &cache.get(chrome)));
        for i in 0..USER_AGENT_CACHE_ENTRIES + 10 {
            cache.get(&format!("agent-{i}"));
        }
        assert!(cache.map.lock().len() <= USER_AGENT_CACHE_ENTRIES);
        assert_eq!(*cache.get(chrome), parse_user_agent(chrome));
    }

    #[test]
    fn sentiment_of_positive_negative_neutral() {
        let pos = sentiment("I love these shoes, they are great and so comfortable!").unwrap();
        assert!(pos > 0.5, "{pos}");
        let neg = sentiment("Terrible quality. The sole broke after a week, awful.").unwrap();
        assert!(neg < -0.5, "{neg}");
        assert_eq!(sentiment("The package arrived on Tuesday."), Some(0.0));
        assert_eq!(sentiment(""), Some(0.0));
        let long = "good ".repeat(5000);
        assert!(sentiment(&long).unwrap() > 0.9);
    }

    #[test]
    fn sentiments_read_only_string_properties_by_name() {
        let names: Vec<String> = ["review", "comment", "rating"]
            .into_iter()
            .map(String::from)
            .collect();
        let props = RawValue::from_string(
            r#"{"rating":5,"review":"Great fit, love it","other":"awful","comment":null}"#.into(),
        )
        .unwrap();
        let s = sentiments(&props, &names);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, "review");
        assert!(s[0].1 > 0.5);
        let cached = TextProperties::new(&names);
        assert_eq!(cached.sentiments(&props), s);
        let escaped = RawValue::from_string(r#"{"\u0072eview":"awful"}"#.into()).unwrap();
        assert_eq!(cached.sentiments(&escaped), sentiments(&escaped, &names));
        assert!(sentiments(&escaped, &names)[0].1 < 0.0);
        let none = RawValue::from_string(r#"{"price":1}"#.into()).unwrap();
        assert!(sentiments(&none, &names).is_empty());
    }

    /// `context.userAgent` by scanning `context`, and from what the batch reader noted.
    fn both_ways(context: &str) -> (Option<String>, Option<String>) {
        let c = RawValue::from_string(context.into()).unwrap();
        let scanned = user_agent_of(&c, Member::Unknown).map(Cow::into_owned);
        let (raw, [noted]) = crate::json_scan::Scanner::new(context)
            .object_noting(["userAgent"])
            .unwrap();
        (scanned, user_agent_of(raw, noted).map(Cow::into_owned))
    }

    #[test]
    fn user_agent_is_read_from_the_top_level_of_context() {
        for (context, want) in [
            (
                r#"{"device":{"userAgent":"x"},"userAgent":"Mozilla/5.0"}"#,
                Some("Mozilla/5.0"),
            ),
            (r#"{"userAgent":"a\"b","userAgent":"c"}"#, Some("a\"b")),
            (r#"{"device":{"userAgent":"x"}}"#, None),
            (r#"{"userAgent":42}"#, None),
            (r#"{"userAgent":""}"#, None),
        ] {
            let (scanned, noted) = both_ways(context);
            assert_eq!(scanned.as_deref(), want, "{context}");
            assert_eq!(noted.as_deref(), want, "{context}");
        }
    }

    fn json_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z ]{0,6}",
            Just("userAgent".to_string()),
            Just("u\"{}[],:\\".to_string()),
            "\\PC{0,6}"
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            json_text().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::vec((json_text(), inner), 0..4)
                    .prop_map(|kv| { serde_json::Value::Object(kv.into_iter().collect()) }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn top_level_scan_agrees_with_serde(
            members in proptest::collection::vec((json_text(), json_value()), 0..6),
            pretty in any::<bool>(),
            escape_key in any::<bool>(),
        ) {
            let obj: serde_json::Map<String, serde_json::Value> = members.into_iter().collect();
            let mut text = if pretty {
                serde_json::to_string_pretty(&obj).unwrap()
            } else {
                serde_json::to_string(&obj).unwrap()
            };
            if escape_key {
                text = text.replace("\"userAgent\"", "\"user\\u0041gent\"");
            }
            let fields = crate::fields::split_object(&text).unwrap();
            let (scanned, noted) = both_ways(&text);
            prop_assert_eq!(scanned, noted, "userAgent of {}", text);
            for key in obj.keys().map(String::as_str).chain(["userAgent", "nope"]) {
                let want = fields
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| crate::fields::str_text(v));
                let got = member_of(&text, key, Member::Unknown).and_then(string_at);
                prop_assert_eq!(got, want, "{} in {}", key, text);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}", junk in proptest::collection::vec(any::<char>(), 0..64)) {
            let junk: String = junk.into_iter().collect();
            for t in [&s, &junk] {
                parse_user_agent(t);
                if let Some(v) = sentiment(t) {
                    prop_assert!((-1.0..=1.0).contains(&v));
                }
            }
        }
    }
}
