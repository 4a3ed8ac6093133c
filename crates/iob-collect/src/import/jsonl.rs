//! JSON Lines of Segment-format events: one event object per line, any type, parsed exactly
//! like a `/v1/import` call (`type` required). Blank lines are skipped; CRLF line ends and a
//! UTF-8 byte-order mark are tolerated. Never buffers more than one line of at most
//! `max_event_bytes` (longer lines are read through and rejected as `too_large`).

use std::io::{BufRead, Read};

use crate::collector::{Collector, Received};
use crate::error::CollectError;
use crate::import::ImportItem;
use crate::reject::{RejectCode, Rejection};
use crate::segment::{Ctx, IdSeed};

/// Iterator over the events of a JSON Lines stream.
pub struct JsonLines<'c, 'a, R> {
    collector: &'c Collector,
    reader: R,
    name: String,
    rx: Received<'a>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
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
            collector: self,
            reader,
            name: name.to_string(),
            rx,
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
        if self.done {
            return None;
        }
        let limit = self.collector.opts.max_event_bytes;
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
                        name: self.name.clone(),
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
            let result = if too_long {
                Err(Rejection::new(
                    RejectCode::TooLarge,
                    "",
                    format!(
                        "line {} is longer than the {limit}-byte event limit (max_event_bytes)",
                        self.line
                    ),
                ))
            } else {
                let ctx = Ctx {
                    expected: None,
                    defaults: None,
                    seed: IdSeed::Import {
                        name: &self.name,
                        line: self.line,
                    },
                };
                self.collector
                    .parse_one(line, &ctx, &self.rx)
                    .map(|(e, _write_key)| e)
            };
            return Some(Ok(ImportItem {
                line: self.line,
                raw: line.to_vec(),
                result,
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
