//! JSON Lines of Segment-format events: one event object per line, any type, parsed exactly
//! like a `/v1/import` call (`type` required). Blank lines are skipped; CRLF line ends and a
//! UTF-8 byte-order mark are tolerated. Never buffers more than one line of at most
//! `max_event_bytes` (longer lines are read through and rejected as `too_large`).

use std::io::{BufRead, Read};
use std::sync::Arc;

use crate::canonical::CanonicalEvents;
use crate::collector::{Collector, Received};
use crate::error::CollectError;
use crate::import::ImportItem;
use crate::reject::{RejectCode, Rejection};
use crate::segment::{Ctx, IdSeed};

/// Iterator over the events of a JSON Lines stream.
pub struct JsonLines<'c, 'a, R> {
    parser: JsonLineParser<'c, 'a>,
    reader: R,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

/// One non-blank line, read but not parsed (so that lines can be parsed on several threads:
/// see [`JsonLines::next_raw`] and [`JsonLineParser`]).
#[derive(Debug, Clone)]
pub struct RawLine {
    line: u64,
    bytes: Vec<u8>,
    too_long: bool,
}

/// Parses raw lines into import items. `Send + Sync` and cheap to clone.
#[derive(Clone)]
pub struct JsonLineParser<'c, 'a> {
    collector: &'c Collector,
    name: Arc<str>,
    rx: Received<'a>,
}

impl RawLine {
    /// 1-based line number.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The line's bytes (without its terminator).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl JsonLineParser<'_, '_> {
    fn too_long(&self, raw: &RawLine) -> Rejection {
        Rejection::new(
            RejectCode::TooLarge,
            "",
            format!(
                "line {} is longer than the {}-byte event limit (max_event_bytes)",
                raw.line, self.collector.opts.max_event_bytes
            ),
        )
    }

    fn ctx<'s>(&'s self, raw: &RawLine) -> Ctx<'s, 's> {
        Ctx {
            expected: None,
            defaults: None,
            seed: IdSeed::Import {
                name: &self.name,
                line: raw.line,
            },
        }
    }

    /// The line as an import item: an event, or a rejection naming the field.
    pub fn parse(&self, raw: RawLine) -> ImportItem {
        let result = if raw.too_long {
            Err(self.too_long(&raw))
        } else {
            self.collector
                .parse_one(&raw.bytes, &self.ctx(&raw), &self.rx)
                .map(|(e, _write_key)| e)
        };
        ImportItem {
            line: raw.line,
            raw: raw.bytes,
            result,
        }
    }

    /// [`JsonLineParser::parse`] written straight to canonical JSON in `out`, without building
    /// an `Event` (the path HTTP submissions take): the index of the event in `out`, or the
    /// rejection. The same validation, derived `messageId` and rejections as `parse`; the
    /// canonical JSON is byte for byte that of the event `parse` returns.
    pub fn parse_canonical(
        &self,
        raw: &RawLine,
        out: &mut CanonicalEvents,
    ) -> Result<usize, Rejection> {
        if raw.too_long {
            return Err(self.too_long(raw));
        }
        self.collector
            .parse_one_canonical(&raw.bytes, &self.ctx(raw), &self.rx, out)
    }
}

impl Collector {
    /// Reads Segment events from JSON Lines. `name` names the import (it seeds derived
    /// `messageId`s: use the same name to make a re-import deduplicate); `rx` supplies the
    /// source and receive time given to every event.
    pub fn import_json_lines<'a, R: BufRead>(
        &self,
        reader: R,
        name: &str,
        rx: Received<'a>,
    ) -> JsonLines<'_, 'a, R> {
        JsonLines {
            parser: JsonLineParser {
                collector: self,
                name: Arc::from(name),
                rx,
            },
            reader,
            line: 0,
            buf: Vec::with_capacity(1024),
            done: false,
        }
    }
}

impl<R: BufRead> JsonLines<'_, '_, R> {
    /// Reads the next line into `buf`; returns whether it was longer than `limit` (then only
    /// its first `limit + 1` bytes are kept).
    fn read_line(&mut self, limit: usize) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(limit as u64 + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            return Ok(Some(false));
        }
        if self.buf.len() <= limit {
            return Ok(Some(false)); // last line without a newline
        }
        // Too long: consume the rest of the line without keeping it.
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            if let Some(p) = chunk.iter().position(|&b| b == b'\n') {
                self.reader.consume(p + 1);
                break;
            }
            let len = chunk.len();
            self.reader.consume(len);
        }
        Ok(Some(true))
    }
}

impl<R: BufRead> Iterator for JsonLines<'_, '_, R> {
    type Item = Result<ImportItem, CollectError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.next_raw()?;
        Some(raw.map(|r| self.parser.parse(r)))
    }
}

impl<'c, 'a, R: BufRead> JsonLines<'c, 'a, R> {
    /// The line parser, to parse lines returned by [`next_raw`](Self::next_raw) elsewhere.
    pub fn parser(&self) -> JsonLineParser<'c, 'a> {
        self.parser.clone()
    }

    /// The next non-blank line, unparsed; `None` at the end. A read error ends the stream.
    pub fn next_raw(&mut self) -> Option<Result<RawLine, CollectError>> {
        if self.done {
            return None;
        }
        let limit = self.parser.collector.opts.max_event_bytes;
        loop {
            let too_long = match self.read_line(limit) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(CollectError::Read {
                        name: self.parser.name.to_string(),
                        line: self.line + 1,
                        source,
                    }));
                }
            };
            self.line += 1;
            let mut line: &[u8] = &self.buf;
            if self.line == 1 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(RawLine {
                line: self.line,
                bytes: line.to_vec(),
                too_long,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CollectOptions;
    use iob_types::Timestamp;

    fn rx() -> Received<'static> {
        Received {
            source: Some("import"),
            received_at: Timestamp(1_700_000_000_000),
            ip: None,
        }
    }

    /// The canonical path gives the owned path's JSON byte for byte, and the same rejections.
    #[test]
    fn canonical_lines_equal_the_owned_path() {
        let c = Collector::default();
        let input = [
            r#"{"type":"track","event":"A","userId":"u1","properties":{"price":"12.5","sku":"x"},"context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148"}}"#,
            r#"{"type":"identify","anonymousId":7,"traits":{"email":"A@B.org"},"timestamp":"2026-01-02T03:04:05Z","sentAt":"2026-01-02T03:04:06Z"}"#,
            r#"{"type":"observe","deviceId":"band","metric":"steps","value":"12","messageId":"m-9","extra":{"k":[1,2]}}"#,
            r#"{"type":"page","userId":"u2","name":"Home","integrations":{"All":false}}"#,
            r#"{"type":"track","userId":"u3"}"#,
            r#"{"type":"bogus"}"#,
            r#"{"type":"track","event":"B""#,
        ]
        .join("\n");
        let mut lines = c.import_json_lines(input.as_bytes(), "f.jsonl", rx());
        let parser = lines.parser();
        let source = crate::SourceField::new(Some("import"));
        let mut canon = CanonicalEvents::new();
        let mut n = 0;
        while let Some(raw) = lines.next_raw() {
            let raw = raw.unwrap();
            let fast = parser.parse_canonical(&raw, &mut canon);
            let owned = parser.parse(raw).result;
            match (fast, owned) {
                (Ok(i), Ok(mut e)) => {
                    e.source = Some("import".into());
                    let ce = canon.get(i);
                    assert_eq!(
                        String::from_utf8(ce.to_json(&source)).unwrap(),
                        String::from_utf8(e.to_json()).unwrap()
                    );
                    assert_eq!(ce.message_id, e.message_id);
                    assert_eq!(ce.routing_id, e.routing_id());
                    assert_eq!((ce.kind, ce.timestamp), (e.kind, e.timestamp));
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("paths disagree: {a:?} vs {b:?}"),
            }
            n += 1;
        }
        assert_eq!(n, 7);
    }

    #[test]
    fn reads_lines_with_bom_crlf_and_blanks() {
        let c = Collector::default();
        let input = "\u{feff}{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u1\"}\r\n\r\n  \n{\"type\":\"identify\",\"anonymousId\":7}\n{\"type\":\"bogus\"}";
        let items: Vec<ImportItem> = c
            .import_json_lines(input.as_bytes(), "f.jsonl", rx())
            .map(Result::unwrap)
            .collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].line, 1);
        assert_eq!(
            items[0].result.as_ref().unwrap().event.as_deref(),
            Some("A")
        );
        assert!(items[0].raw.starts_with(b"{"));
        assert_eq!(items[1].line, 4);
        assert_eq!(
            items[1].result.as_ref().unwrap().anonymous_id.as_deref(),
            Some("7")
        );
        assert_eq!(items[2].line, 5);
        assert_eq!(
            items[2].result.as_ref().unwrap_err().code,
            RejectCode::UnknownType
        );
    }

    #[test]
    fn reimport_derives_the_same_message_ids() {
        let c = Collector::default();
        let input = b"{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u1\"}\n";
        let id = |name: &str, at: i64| {
            let rx = Received {
                received_at: Timestamp(at),
                ..rx()
            };
            let item = c
                .import_json_lines(&input[..], name, rx)
                .next()
                .unwrap()
                .unwrap();
            item.result.unwrap().message_id
        };
        assert_eq!(
            id("a", 1),
            id("a", 2),
            "receive time must not change import ids"
        );
        assert_ne!(id("a", 1), id("b", 1));
    }

    #[test]
    fn overlong_lines_are_rejected_and_skipped() {
        let c = Collector::new(CollectOptions {
            max_event_bytes: 64,
            ..Default::default()
        });
        let long = format!(
            "{{\"type\":\"track\",\"event\":\"{}\",\"userId\":1}}",
            "x".repeat(200)
        );
        let input = format!("{long}\n{{\"type\":\"track\",\"event\":\"B\",\"userId\":1}}\n");
        let items: Vec<ImportItem> = c
            .import_json_lines(input.as_bytes(), "f", rx())
            .map(Result::unwrap)
            .collect();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].result.as_ref().unwrap_err().code,
            RejectCode::TooLarge
        );
        assert_eq!(items[1].line, 2);
        assert!(items[1].result.is_ok());
    }
}
