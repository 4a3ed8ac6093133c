//! A validating JSON scanner for the batch hot path: it finds where values begin and end
//! without decoding them, 16 bytes at a time inside strings (most of an event's bytes).
//!
//! It accepts a subset of what serde_json accepts (RFC 8259, at most [`MAX_DEPTH`] levels, no
//! escapes in the object keys the caller asks about) and answers `None` for everything else,
//! so that the caller can fall back to serde_json for the exact rejection. It must never accept
//! text that serde_json rejects: every single-character edit of sample documents (tests below)
//! and mutated batch bodies (`segment_tests`) hold it to that. It works on `&str`, so UTF-8 was
//! checked before.

use iob_types::string_stop;
use serde_json::value::RawValue;

/// Deepest nesting skipped here (serde_json's own limit is 128); deeper values go to serde_json.
pub(crate) const MAX_DEPTH: u32 = 100;

/// `text` as the raw JSON value it is.
///
/// Only for text this scanner accepted as exactly one JSON value.
pub(crate) fn raw(text: &str) -> &RawValue {
    // SAFETY: `RawValue` is `#[repr(transparent)]` over `str` (serde_json converts `&str` to
    // `&RawValue` the same way in `RawValue::from_borrowed`), so the cast keeps the pointer
    // and length; `text` is valid JSON, which is all a `RawValue` promises. A test checks that
    // the result reads back as the same bytes and as what serde_json borrows for the text.
    unsafe { &*(text as *const str as *const RawValue) }
}

/// What one member of an object is, as far as a scan of the object could tell (see
/// [`Scanner::object_noting`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Member<'a> {
    /// Not noted (no scan, or the value was not an object), or a key with escapes came first:
    /// only reading the object itself can tell.
    Unknown,
    /// The object has no such member.
    Absent,
    /// The raw value of its first occurrence.
    Found(&'a str),
}

impl<'a> Member<'a> {
    /// Takes in one member `(key, value)` of an object being scanned in order (`key` is `None`
    /// when it has escapes): the first plain occurrence of `name` decides, unless an escaped
    /// key came before it.
    pub fn note(&mut self, key: Option<&str>, value: &'a RawValue, name: &str) {
        if *self == Member::Absent {
            *self = match key {
                None => Member::Unknown,
                Some(k) if k == name => Member::Found(value.get()),
                Some(_) => Member::Absent,
            };
        }
    }
}

/// A cursor over JSON text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Nesting of the containers being skipped: one bit per level, set for objects.
struct Stack {
    bits: u128,
    depth: u32,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Scanner {
            text,
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// The cursor's offset in the text.
    pub fn pos(&self) -> usize {
        self.i
    }

    /// The text from offset `from` to the cursor.
    pub fn text(&self, from: usize) -> &'a str {
        &self.text[from..self.i]
    }

    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Bytes after the cursor.
    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.i)
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    pub fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Consumes `c` after optional whitespace.
    pub fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// After a member or element: `,` (consumed; `Some(true)`: another follows) or `close`
    /// (consumed; `Some(false)`: the container ends), after optional whitespace.
    pub fn more(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        if c != b',' && c != close {
            return None;
        }
        self.i += 1;
        Some(c == b',')
    }

    /// A string at the cursor; returns its contents and whether they hold escapes.
    pub fn string(&mut self) -> Option<(&'a str, bool)> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        loop {
            j = string_stop::<true>(self.b, j);
            match *self.b.get(j)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    j += 1;
                    match *self.b.get(j)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 1,
                        b'u' => {
                            let hex = self.b.get(j + 1..j + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            j += 5;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a control byte
            }
        }
        self.i = j + 1;
        Some((&self.text[start..j], escaped))
    }

    /// An object key and the `:` after it (whitespace around skipped); returns the key's
    /// contents and whether they hold escapes.
    pub fn key(&mut self) -> Option<(&'a str, bool)> {
        self.ws();
        let key = self.string()?;
        self.eat(b':')?;
        self.ws();
        Some(key)
    }

    /// [`Scanner::key`], for a key without escapes.
    pub fn plain_key(&mut self) -> Option<&'a str> {
        self.key()
            .and_then(|(key, escaped)| (!escaped).then_some(key))
    }

    /// One value at the cursor (after whitespace), validated and skipped; returns its text.
    pub fn value(&mut self) -> Option<&'a RawValue> {
        self.ws();
        let start = self.i;
        let mut stack = Stack { bits: 0, depth: 0 };
        'value: loop {
            match self.peek()? {
                c @ (b'{' | b'[') => {
                    self.i += 1;
                    let close = if c == b'{' { b'}' } else { b']' };
                    self.ws();
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        if stack.depth == MAX_DEPTH {
                            return None;
                        }
                        stack.bits = (stack.bits << 1) | u128::from(c == b'{');
                        stack.depth += 1;
                        if c == b'{' {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return None,
            }
            // After a value: close what ends here, or go on to the next member or element.
            loop {
                if stack.depth == 0 {
                    return Some(raw(self.text(start)));
                }
                self.ws();
                let in_object = stack.bits & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        if in_object {
                            self.key()?;
                        }
                        self.ws();
                        continue 'value;
                    }
                    b'}' if in_object => {}
                    b']' if !in_object => {}
                    _ => return None,
                }
                self.i += 1;
                stack.bits >>= 1;
                stack.depth -= 1;
            }
        }
    }

    /// [`Scanner::value`], calling `visit(key, value)` for each top-level member if the value
    /// is an object (`key` is `None` when it has escapes). Returns the value and whether it is
    /// an object. The batch reader notes what enrichment needs (see `batch_body::Noted`) as it
    /// passes, instead of enrichment scanning the object again for every event.
    pub fn members(
        &mut self,
        mut visit: impl FnMut(Option<&'a str>, &'a RawValue),
    ) -> Option<(&'a RawValue, bool)> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Some((self.value()?, false));
        }
        let start = self.i;
        self.i += 1;
        self.ws();
        if self.peek() != Some(b'}') {
            loop {
                let (key, escaped) = self.key()?;
                let value = self.value()?;
                visit((!escaped).then_some(key), value);
                if !self.more(b'}')? {
                    break;
                }
            }
        } else {
            self.i += 1;
        }
        Some((raw(self.text(start)), true))
    }

    /// [`Scanner::members`], noting what each member in `names` is (all
    /// [`Member::Unknown`] if the value is not an object).
    pub fn object_noting<const N: usize>(
        &mut self,
        names: [&str; N],
    ) -> Option<(&'a RawValue, [Member<'a>; N])> {
        let mut noted = [Member::Absent; N];
        let (value, is_object) = self.members(|key, value| {
            for (member, name) in noted.iter_mut().zip(names) {
                member.note(key, value, name);
            }
        })?;
        Some((
            value,
            if is_object {
                noted
            } else {
                [Member::Unknown; N]
            },
        ))
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + lit.len())? != lit {
            return None;
        }
        self.i += lit.len();
        Some(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        // Whatever follows (`01`, `1.5.2`, `2x`) is the caller's to refuse: only whitespace,
        // `,`, `]`, `}` or the end may follow a value.
        Some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let from = self.i;
        self.digits();
        (self.i > from).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Option<&str> {
        let mut s = Scanner::new(text);
        let v = s.value()?;
        s.ws();
        s.at_end().then_some(v.get())
    }

    #[test]
    fn raw_reads_back_as_serde_json_borrows_it() {
        for text in [r#"{"a":[1,{"b":"é\n"}]}"#, "null", r#""x""#, "-0.5e+3"] {
            let ours = raw(text);
            let theirs: &RawValue = serde_json::from_str(text).unwrap();
            assert_eq!(ours.get(), theirs.get());
            assert_eq!(ours.get().as_ptr(), text.as_ptr());
            assert_eq!(ours.get().len(), text.len());
        }
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for text in [
            r#" { "a" : [ 1 , -2.5e10 , "x\"y\\z\u00e9" , true , false , null , { } , [ ] ] } "#,
            r#"{"k":{"n":{"m":[[[]]]}}}"#,
            "0",
            "-0",
            "1E+2",
            "3.25e-7",
            "\"héllo wörld, a string longer than sixteen bytes\"",
            "{\"\\u0041\":1}",
        ] {
            serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap();
            assert_eq!(skip(text), Some(text.trim()), "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in [
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "1e+",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"abc",
            "[",
            "{",
            "}",
            "[}",
            "{]",
            "[1}",
            "{\"a\":1]",
            "[[1]}",
            "'a'",
            "NaN",
            "2x",
        ] {
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(),
                "serde_json takes {text}"
            );
            assert_eq!(skip(text), None, "{text}");
        }
    }

    /// Every single-character edit of these documents (replace, insert, delete, with JSON's
    /// own alphabet): the scanner takes the result only if serde_json does, and then agrees
    /// with it on where the value ends.
    #[test]
    fn single_edits_never_make_it_accept_invalid_json() {
        let docs = [
            r#"{"a":[1,-2.5e3,"s\"t",{"b":null}],"c":{"d":true,"e":[]},"f":false,"g":0}"#,
            r#"[{"k":"\u00e9x"},[[0.5]],"é",{}]"#,
        ];
        let alphabet = "{}[],:\"\\ 0123456789-+.eEtrufalsn\u{1}\u{7f}é";
        let mut accepted = 0;
        for doc in docs {
            let chars: Vec<char> = doc.chars().collect();
            for at in 0..=chars.len() {
                let mut variants: Vec<Vec<char>> = Vec::new();
                if at < chars.len() {
                    let mut v = chars.clone();
                    v.remove(at);
                    variants.push(v);
                }
                for c in alphabet.chars() {
                    let mut v = chars.clone();
                    v.insert(at, c);
                    variants.push(v);
                    if at < chars.len() {
                        let mut v = chars.clone();
                        v[at] = c;
                        variants.push(v);
                    }
                }
                for v in variants {
                    let text: String = v.into_iter().collect();
                    if let Some(got) = skip(&text) {
                        accepted += 1;
                        let theirs = serde_json::from_str::<&RawValue>(&text);
                        assert!(theirs.is_ok(), "took invalid JSON {text}");
                        assert_eq!(got, text.trim());
                    }
                }
            }
        }
        // The edits that keep the documents valid (a digit for a digit...) are taken.
        assert!(accepted > 100, "{accepted}");
    }

    #[test]
    fn object_noting_finds_the_first_plain_occurrence() {
        fn note(text: &str) -> Member<'_> {
            let mut s = Scanner::new(text);
            let (v, [m]) = s.object_noting(["ua"]).unwrap();
            assert_eq!(v.get(), text.trim());
            m
        }
        assert_eq!(
            note(r#"{"a":{"ua":1},"ua":"x","ua":"y"}"#),
            Member::Found(r#""x""#)
        );
        assert_eq!(note(r#" { "ua" : [1, 2] } "#), Member::Found("[1, 2]"));
        assert_eq!(note(r#"{"a":1}"#), Member::Absent);
        assert_eq!(note("{}"), Member::Absent);
        assert_eq!(note(r#"{"\u0075a":1,"ua":2}"#), Member::Unknown);
        assert_eq!(note(r#"{"ua":2,"\u0075a":1}"#), Member::Found("2"));
        assert_eq!(note(r#""not an object""#), Member::Unknown);
        assert!(Scanner::new(r#"{"ua":}"#).object_noting(["ua"]).is_none());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(skip(&deep(MAX_DEPTH as usize)).is_some());
        assert!(skip(&deep(MAX_DEPTH as usize + 1)).is_none());
    }
}
