//! Bulk import of history (C3): readers that turn files' bytes into events, one
//! [`ImportItem`] per line or row, each with its line number, raw bytes (for the quarantine)
//! and outcome.
//!
//! * [`maybe_gunzip`] detects gzip by its magic bytes.
//! * [`JsonLines`] reads Segment-format events, one per line.
//! * [`CsvImport`] reads CSV/TSV through a [`CsvMapping`] (loadable from an `[import.csv]`
//!   TOML table; ready-made ones live in the crate's `mappings/` folder).
//!
//! Events without a `messageId` get one derived from the import name and the line's bytes, so
//! re-importing the same file is deduplicated downstream. Readers work on `impl BufRead` and
//! must never open files, read the clock or drop a line silently: every non-blank line yields
//! an item (an event or a rejection) and a read failure ends the stream with an error.

mod csv;
mod jsonl;
mod mapping;
mod presets;

use std::io::{self, BufRead};

use flate2::bufread::MultiGzDecoder;
use iob_types::Event;

use crate::reject::Rejection;

pub use self::csv::{CsvImport, CsvRowParser, RawRow};
pub use self::jsonl::{JsonLineParser, JsonLines, RawLine};
pub use self::mapping::{
    CsvEncoding, CsvKind, CsvMapping, PropertyMapping, PropertyType, TimeUnit,
};
pub use self::presets::{PRESETS, preset};

/// One line (JSON Lines) or row (CSV) of an import and its outcome.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// 1-based line number where the line or row starts.
    pub line: u64,
    /// The line's bytes without its line terminator.
    pub raw: Vec<u8>,
    pub result: Result<Event, Rejection>,
}

/// Wraps `reader` in a (multi-member) gzip decoder when it starts with the gzip magic bytes
/// `1f 8b`; otherwise returns it unchanged.
pub fn maybe_gunzip<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn BufRead + 'a>> {
    let head = reader.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(io::BufReader::with_capacity(
            64 * 1024,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn gunzips_only_gzip() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello\n").unwrap();
        let mut bytes = gz.finish().unwrap();
        // a second member, as `cat a.gz b.gz` produces
        let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz2.write_all(b"world\n").unwrap();
        bytes.extend(gz2.finish().unwrap());
        let mut out = String::new();
        maybe_gunzip(&bytes[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello\nworld\n");
        let mut out = String::new();
        maybe_gunzip(&b"plain"[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "plain");
        let mut out = String::new();
        maybe_gunzip(&b""[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "");
    }
}
