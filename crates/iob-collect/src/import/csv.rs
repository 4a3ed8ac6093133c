//! CSV / TSV import through a [`CsvMapping`]: one event per data row, built directly (no JSON
//! round trip), then checked against the tracking plan like any other event.
//!
//! Rows where both id columns are empty, and cells that do not parse as their mapped type,
//! become rejections naming the column and line: never silently dropped. The raw bytes of
//! each row are captured for the quarantine and for the derived `messageId`.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::sync::Arc;

use iob_types::{Event, EventKind, Reading, Timestamp};
use serde_json::value::RawValue;
use time::format_description::OwnedFormatItem;

use crate::collector::{Collector, Received};
use crate::error::CollectError;
use crate::fields::{MAX_ID_BYTES, MAX_MESSAGE_ID_CHARS};
use crate::import::ImportItem;
use crate::import::mapping::{CsvEncoding, CsvKind, CsvMapping, PropertyType, TimeUnit};
use crate::reject::{RejectCode, Rejection};
use crate::segment::{IdSeed, derive_message_id};

/// Keeps a copy of the bytes the CSV parser reads so each row's raw bytes can be recovered.
struct Recording<R> {
    inner: R,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.buf.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

impl<R> Recording<R> {
    fn slice(&self, start: u64, end: u64) -> &[u8] {
        let s = (start.saturating_sub(self.base) as usize).min(self.buf.len());
        let e = (end.saturating_sub(self.base) as usize).clamp(s, self.buf.len());
        &self.buf[s..e]
    }
    /// Forgets bytes before `upto` once enough have accumulated (amortized).
    fn release(&mut self, upto: u64) {
        let n = upto.saturating_sub(self.base) as usize;
        if n >= 256 * 1024 {
            let n = n.min(self.buf.len());
            self.buf.drain(..n);
            self.base += n as u64;
        }
    }
}

enum EventName {
    Column(usize),
    Const(String),
}

struct Prop {
    col: usize,
    /// The JSON-encoded key followed by `:`.
    key: String,
    ty: PropertyType,
}

/// The mapping resolved against the header.
struct Plan {
    names: Vec<String>,
    user: Option<usize>,
    anon: Option<usize>,
    event: Option<EventName>,
    ts: Option<usize>,
    unit: TimeUnit,
    format: Option<OwnedFormatItem>,
    message_id: Option<usize>,
    /// Key columns of derived message ids (empty: derived from the line).
    key: Vec<usize>,
    props: Vec<Prop>,
    kind: CsvKind,
    encoding: CsvEncoding,
    /// `observe` only: how the reading is read.
    reading: Option<ReadingPlan>,
}

/// The reading columns of an `observe` mapping.
struct ReadingPlan {
    device: usize,
    device_prefix: String,
    metric: EventName,
    value: usize,
    unit: Option<String>,
}

/// Iterator over the events of a CSV stream.
pub struct CsvImport<'c, 'a, R: Read> {
    reader: csv::Reader<Recording<R>>,
    parser: CsvRowParser<'c, 'a>,
    record: csv::ByteRecord,
    done: bool,
}

/// One CSV row, read and split into cells but not yet mapped to an event (so that rows can be
/// mapped on several threads: see [`CsvImport::next_raw`] and [`CsvRowParser`]).
#[derive(Debug, Clone)]
pub struct RawRow {
    line: u64,
    raw: Vec<u8>,
    record: csv::ByteRecord,
}

/// Maps raw rows to events through the import's mapping. `Send + Sync` and cheap to clone.
#[derive(Clone)]
pub struct CsvRowParser<'c, 'a> {
    collector: &'c Collector,
    plan: Arc<Plan>,
    name: Arc<str>,
    rx: Received<'a>,
}

impl CsvRowParser<'_, '_> {
    /// The row as an import item: an event, or a rejection naming the column and line.
    pub fn parse(&self, row: RawRow) -> ImportItem {
        let result = self.row(&row.record, row.line, &row.raw);
        ImportItem {
            line: row.line,
            raw: row.raw,
            result,
        }
    }
}

impl Collector {
    /// Reads events from CSV through `mapping`. Reads the header (if any) immediately, so a
    /// mapping that names a missing column fails here. `name` seeds derived `messageId`s.
    pub fn import_csv<'a, R: BufRead>(
        &self,
        reader: R,
        mapping: &CsvMapping,
        name: &str,
        rx: Received<'a>,
    ) -> Result<CsvImport<'_, 'a, R>, CollectError> {
        mapping.check()?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(mapping.delimiter as u8)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(64 * 1024)
            .from_reader(Recording {
                inner: reader,
                buf: Vec::with_capacity(512 * 1024),
                base: 0,
            });
        let names = if mapping.has_header {
            let mut header = csv::ByteRecord::new();
            reader
                .read_byte_record(&mut header)
                .map_err(|e| read_error(name, 1, e))?;
            header
                .iter()
                .map(|c| {
                    decode(mapping.encoding, c)
                        .map_or_else(|| String::from_utf8_lossy(c).into_owned(), Cow::into_owned)
                })
                .map(|s| s.trim().to_string())
                .collect()
        } else {
            Vec::new()
        };
        let plan = resolve(mapping, names)?;
        Ok(CsvImport {
            reader,
            parser: CsvRowParser {
                collector: self,
                plan: Arc::new(plan),
                name: Arc::from(name),
                rx,
            },
            record: csv::ByteRecord::new(),
            done: false,
        })
    }
}

fn read_error(name: &str, line: u64, e: csv::Error) -> CollectError {
    let source = match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    };
    CollectError::Read {
        name: name.to_string(),
        line,
        source,
    }
}

fn resolve(m: &CsvMapping, names: Vec<String>) -> Result<Plan, CollectError> {
    let find = |field: &str, col: &Option<String>| -> Result<Option<usize>, CollectError> {
        let Some(col) = col else { return Ok(None) };
        if !m.has_header {
            return Ok(Some(col.parse().expect("checked by CsvMapping::check")));
        }
        match names.iter().position(|n| n == col) {
            Some(i) => Ok(Some(i)),
            None => Err(CollectError::InvalidMapping {
                field: field.to_string(),
                reason: format!(
                    "names column `{col}`, which is not in the header (columns: {})",
                    names.join(", ")
                ),
            }),
        }
    };
    let event = match (&m.event, &m.event_name) {
        (Some(_), _) => find("event", &m.event)?.map(EventName::Column),
        (None, Some(n)) => Some(EventName::Const(n.clone())),
        (None, None) => None,
    };
    let mut props = Vec::with_capacity(m.properties.len());
    for p in &m.properties {
        let col = find("properties", &Some(p.column.clone()))?.expect("some");
        let mut key = serde_json::to_string(p.name()).expect("string serializes");
        key.push(':');
        props.push(Prop { col, key, ty: p.ty });
    }
    let format = match &m.time_unit {
        TimeUnit::Format(f) => Some(
            time::format_description::parse_strftime_owned(f)
                .expect("checked by CsvMapping::check"),
        ),
        _ => None,
    };
    let user = find("user_id", &m.user_id)?;
    let anon = find("anonymous_id", &m.anonymous_id)?;
    let ts = find("timestamp", &m.timestamp)?;
    let message_id = find("message_id", &m.message_id)?;
    let mut key = Vec::with_capacity(m.message_id_key.len());
    for k in &m.message_id_key {
        key.push(find("message_id_key", &Some(k.clone()))?.expect("some"));
    }
    let reading = if m.kind == CsvKind::Observe {
        Some(ReadingPlan {
            device: find("device_id", &m.device_id)?.expect("checked by CsvMapping::check"),
            device_prefix: m.device_id_prefix.clone().unwrap_or_default(),
            metric: match (&m.metric, &m.metric_name) {
                (Some(_), _) => EventName::Column(find("metric", &m.metric)?.expect("some")),
                (None, Some(n)) => EventName::Const(n.clone()),
                (None, None) => unreachable!("checked by CsvMapping::check"),
            },
            value: find("value", &m.value)?.expect("checked by CsvMapping::check"),
            unit: m.unit.clone(),
        })
    } else {
        None
    };
    let names = if m.has_header {
        names
    } else {
        let max = m
            .columns()
            .iter()
            .filter_map(|(_, c)| c.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        (0..=max).map(|i| i.to_string()).collect()
    };
    Ok(Plan {
        user,
        anon,
        event,
        ts,
        unit: m.time_unit.clone(),
        format,
        message_id,
        key,
        props,
        kind: m.kind,
        encoding: m.encoding,
        reading,
        names,
    })
}

/// Decodes a cell; `None` when it is not valid in the encoding.
fn decode(enc: CsvEncoding, b: &[u8]) -> Option<Cow<'_, str>> {
    match enc {
        CsvEncoding::Utf8 => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        CsvEncoding::Latin1 => Some(if b.is_ascii() {
            Cow::Borrowed(std::str::from_utf8(b).expect("ascii"))
        } else {
            Cow::Owned(b.iter().map(|&c| c as char).collect())
        }),
    }
}

impl<R: Read> Iterator for CsvImport<'_, '_, R> {
    type Item = Result<ImportItem, CollectError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.next_raw()?;
        Some(row.map(|r| self.parser.parse(r)))
    }
}

impl<'c, 'a, R: Read> CsvImport<'c, 'a, R> {
    /// The row mapper, to map rows returned by [`next_raw`](Self::next_raw) elsewhere.
    pub fn parser(&self) -> CsvRowParser<'c, 'a> {
        self.parser.clone()
    }

    /// The next row, split into cells but not mapped; `None` at the end. A read error ends the
    /// stream.
    pub fn next_raw(&mut self) -> Option<Result<RawRow, CollectError>> {
        if self.done {
            return None;
        }
        let start_line = self.reader.position().line();
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(read_error(&self.parser.name, start_line, e)));
            }
        }
        let pos = self.record.position().expect("set by read_byte_record");
        let (mut line, start) = (pos.line(), pos.byte());
        let end = self.reader.position().byte();
        let rec = self.reader.get_ref();
        let mut raw = rec.slice(start, end);
        // With CRLF ends the parser stops at '\r': the '\n' opens the next record's span.
        while let [first @ (b'\n' | b'\r'), rest @ ..] = raw {
            line += u64::from(*first == b'\n');
            raw = rest;
        }
        while let [rest @ .., b'\n' | b'\r'] = raw {
            raw = rest;
        }
        let raw = raw.to_vec();
        self.reader.get_mut().release(end);
        Some(Ok(RawRow {
            line,
            raw,
            record: self.record.clone(),
        }))
    }
}

impl CsvRowParser<'_, '_> {
    /// A rejection of the cell in column `i` of line `line`.
    fn bad(&self, code: RejectCode, i: usize, line: u64, what: String) -> Rejection {
        let col = self.plan.names.get(i).map_or("?", String::as_str);
        Rejection::new(code, col, format!("line {line}, column `{col}`: {what}"))
    }

    /// Cell `i` of the row, decoded.
    fn cell<'r>(
        &self,
        rec: &'r csv::ByteRecord,
        i: usize,
        line: u64,
    ) -> Result<Cow<'r, str>, Rejection> {
        let b = rec.get(i).ok_or_else(|| {
            self.bad(
                RejectCode::MissingField,
                i,
                line,
                format!(
                    "the row has only {} fields, the mapping reads field {}",
                    rec.len(),
                    i + 1
                ),
            )
        })?;
        decode(self.plan.encoding, b).ok_or_else(|| {
            self.bad(
                RejectCode::InvalidValue,
                i,
                line,
                "not valid UTF-8; set encoding = \"latin-1\" in the mapping".into(),
            )
        })
    }

    fn row(&self, rec: &csv::ByteRecord, line: u64, raw: &[u8]) -> Result<Event, Rejection> {
        let p = &self.plan;
        let col_name = |i: usize| p.names.get(i).map_or("?", String::as_str);
        let bad = |code: RejectCode, i: usize, what: String| self.bad(code, i, line, what);
        let cell = |i: usize| self.cell(rec, i, line);
        let id = |i: Option<usize>| -> Result<Option<String>, Rejection> {
            let Some(i) = i else { return Ok(None) };
            let c = cell(i)?;
            let t = c.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if t.len() > MAX_ID_BYTES {
                return Err(bad(
                    RejectCode::InvalidValue,
                    i,
                    format!("the id is {} bytes; the limit is {MAX_ID_BYTES}", t.len()),
                ));
            }
            Ok(Some(t.to_string()))
        };

        let user_id = id(p.user)?;
        let anonymous_id = if user_id.is_none() { id(p.anon)? } else { None };
        let reading = match &p.reading {
            Some(r) => Some(self.reading(r, rec, line)?),
            None => None,
        };
        // a reading is routed by its device when the row names no person
        if user_id.is_none() && anonymous_id.is_none() && reading.is_none() {
            let i = p.user.or(p.anon).expect("checked");
            let cols: Vec<&str> = [p.user, p.anon]
                .into_iter()
                .flatten()
                .map(col_name)
                .collect();
            return Err(bad(
                RejectCode::MissingField,
                i,
                format!("no identity: `{}` is empty", cols.join("` and `")),
            ));
        }

        let name = match &p.event {
            Some(EventName::Const(n)) => Some(n.clone()),
            Some(EventName::Column(i)) => {
                let c = cell(*i)?;
                if c.trim().is_empty() {
                    return Err(bad(
                        RejectCode::MissingField,
                        *i,
                        "the event name is empty".into(),
                    ));
                }
                Some(c.into_owned())
            }
            None => None,
        };

        let timestamp = match p.ts {
            Some(i) => {
                let c = cell(i)?;
                Some(
                    parse_time(&p.unit, p.format.as_ref(), c.trim()).map_err(|why| {
                        bad(
                            RejectCode::InvalidValue,
                            i,
                            format!("`{}` {why}", c.chars().take(60).collect::<String>()),
                        )
                    })?,
                )
            }
            None => None,
        };

        let mut props = String::new();
        // `observe`: the properties are the reading's tags
        for prop in &p.props {
            let c = cell(prop.col)?;
            if c.is_empty() {
                continue;
            }
            props.push(if props.is_empty() { '{' } else { ',' });
            props.push_str(&prop.key);
            write_value(&mut props, prop.ty, &c)
                .map_err(|why| bad(RejectCode::InvalidValue, prop.col, why))?;
        }
        let props = if props.is_empty() {
            None
        } else {
            props.push('}');
            Some(RawValue::from_string(props).expect("built as valid JSON"))
        };

        let message_id = match p.message_id {
            Some(i) => {
                let c = cell(i)?;
                let t = c.trim();
                if t.chars().count() > MAX_MESSAGE_ID_CHARS {
                    return Err(bad(
                        RejectCode::InvalidValue,
                        i,
                        format!("the message id is longer than {MAX_MESSAGE_ID_CHARS} characters"),
                    ));
                }
                (!t.is_empty()).then(|| t.to_string())
            }
            None => None,
        }
        .map_or_else(
            || {
                if p.key.is_empty() {
                    return Ok(derive_message_id(
                        IdSeed::Import {
                            name: &self.name,
                            line,
                        },
                        &self.rx,
                        raw,
                    ));
                }
                // length-prefixed trimmed cells, so ("a,b", "c") and ("a", "b,c") differ
                let mut bytes = Vec::with_capacity(64);
                for &i in &p.key {
                    let c = cell(i)?;
                    let t = c.trim().as_bytes();
                    bytes.extend_from_slice(&(t.len() as u64).to_le_bytes());
                    bytes.extend_from_slice(t);
                }
                Ok(derive_message_id(
                    IdSeed::Key { name: &self.name },
                    &self.rx,
                    &bytes,
                ))
            },
            Ok,
        )?;

        let rx = &self.rx;
        let kind = match p.kind {
            CsvKind::Track => EventKind::Track,
            CsvKind::Identify => EventKind::Identify,
            CsvKind::Page => EventKind::Page,
            CsvKind::Screen => EventKind::Screen,
            CsvKind::Observe => EventKind::Observe,
        };
        let mut e = Event::new(kind, message_id, timestamp.unwrap_or(rx.received_at));
        e.original_timestamp = timestamp;
        e.received_at = rx.received_at;
        e.source = rx.source.map(str::to_owned);
        e.user_id = user_id;
        e.anonymous_id = anonymous_id;
        match kind {
            EventKind::Track => {
                e.event = name;
                e.properties = props;
            }
            EventKind::Identify => e.traits = props,
            EventKind::Observe => {
                let mut r = reading.expect("observe mappings have a reading plan");
                r.tags = props;
                e.reading = Some(r);
            }
            _ => {
                e.name = name;
                e.properties = props;
            }
        }
        self.collector.check_plan(&e)?;
        Ok(e)
    }
}

impl CsvRowParser<'_, '_> {
    /// The reading of an `observe` row (tags are added by the caller): a device, a valid metric
    /// and a finite number, or a rejection naming the column and line.
    fn reading(
        &self,
        r: &ReadingPlan,
        rec: &csv::ByteRecord,
        line: u64,
    ) -> Result<Reading, Rejection> {
        let bad = |code: RejectCode, i: usize, what: String| self.bad(code, i, line, what);
        let cell = |i: usize| self.cell(rec, i, line);

        let c = cell(r.device)?;
        let dev = c.trim();
        if dev.is_empty() {
            return Err(bad(
                RejectCode::MissingField,
                r.device,
                "the device id is empty (observe rows need a device)".into(),
            ));
        }
        let device_id = format!("{}{dev}", r.device_prefix);
        if device_id.len() > MAX_ID_BYTES {
            return Err(bad(
                RejectCode::InvalidValue,
                r.device,
                format!(
                    "the device id is {} bytes; the limit is {MAX_ID_BYTES}",
                    device_id.len()
                ),
            ));
        }

        let metric = match &r.metric {
            EventName::Const(n) => n.clone(),
            EventName::Column(i) => {
                let c = cell(*i)?;
                let m = c.trim();
                if m.is_empty() {
                    return Err(bad(
                        RejectCode::MissingField,
                        *i,
                        "the metric is empty".into(),
                    ));
                }
                if !crate::segment::metric_ok(m) {
                    return Err(bad(
                        RejectCode::InvalidValue,
                        *i,
                        crate::segment::metric_rule(m),
                    ));
                }
                m.to_string()
            }
        };

        let c = cell(r.value)?;
        let v = c.trim();
        if v.is_empty() {
            return Err(bad(
                RejectCode::MissingField,
                r.value,
                "the value is empty (observe rows need a number)".into(),
            ));
        }
        let value = match v.parse::<f64>() {
            Ok(x) if x.is_finite() => x,
            _ => {
                return Err(bad(
                    RejectCode::InvalidValue,
                    r.value,
                    format!("`{}` is not a finite number", shown(v)),
                ));
            }
        };
        Ok(Reading {
            device_id,
            metric,
            value,
            unit: r.unit.clone(),
            tags: None,
        })
    }
}

/// Parses a time cell per the mapping's unit.
pub(crate) fn parse_time(
    unit: &TimeUnit,
    format: Option<&OwnedFormatItem>,
    s: &str,
) -> Result<Timestamp, String> {
    let ms = match unit {
        TimeUnit::Iso => {
            return Timestamp::parse("timestamp", s)
                .map_err(|_| "is not an ISO-8601 time (time_unit = \"iso\")".to_string());
        }
        TimeUnit::Seconds => scaled(s, 3),
        TimeUnit::Millis => scaled(s, 0),
        TimeUnit::Micros => scaled(s, -3),
        TimeUnit::Format(f) => {
            let fd = format.expect("compiled with the mapping");
            let dt = time::PrimitiveDateTime::parse(s, fd)
                .or_else(|_| time::Date::parse(s, fd).map(|d| d.midnight()))
                .map_err(|e| format!("does not match time_unit = \"format:{f}\" ({e})"))?;
            Some((dt.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
        }
    };
    let ms = ms.ok_or_else(|| format!("is not a number of {} since 1970", unit_name(unit)))?;
    Timestamp::checked("timestamp", ms)
        .map_err(|_| format!("is outside 1970..2200 when read as {}", unit_name(unit)))
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Seconds => "seconds",
        TimeUnit::Millis => "milliseconds",
        TimeUnit::Micros => "microseconds",
        _ => "time units",
    }
}

/// A decimal `digits[.digits]` scaled by 10^`shift` into integer milliseconds (truncating),
/// exactly (no float rounding).
fn scaled(s: &str, shift: i32) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 18
    {
        return None;
    }
    let mut v: i64 = int.parse().ok()?;
    if shift >= 0 {
        for k in 0..shift as usize {
            let d = frac.as_bytes().get(k).map_or(0, |c| (c - b'0') as i64);
            v = v.checked_mul(10)?.checked_add(d)?;
        }
    } else {
        v /= 10i64.pow((-shift) as u32);
    }
    Some(if neg { -v } else { v })
}

/// Appends a cell as a JSON value of type `ty`.
fn write_value(out: &mut String, ty: PropertyType, c: &str) -> Result<(), String> {
    let t = c.trim();
    match ty {
        PropertyType::String => push_json_str(out, c),
        PropertyType::Number => {
            if is_json_number(t) && t.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(t);
            } else {
                match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => {
                        out.push_str(&serde_json::to_string(&v).expect("finite"))
                    }
                    _ => return Err(format!("`{}` is not a number", shown(c))),
                }
            }
        }
        PropertyType::Integer => match t.parse::<i64>() {
            Ok(v) => out.push_str(itoa(v).as_str()),
            Err(_) => return Err(format!("`{}` is not an integer", shown(c))),
        },
        PropertyType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => out.push_str("true"),
            "false" | "f" | "no" | "n" | "0" => out.push_str("false"),
            _ => {
                return Err(format!(
                    "`{}` is not a boolean (true/false, yes/no, 1/0)",
                    shown(c)
                ));
            }
        },
        PropertyType::Auto => {
            if is_json_number(t) && t.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(t);
            } else {
                push_json_str(out, c);
            }
        }
    }
    Ok(())
}

fn itoa(v: i64) -> String {
    v.to_string()
}

fn shown(c: &str) -> String {
    c.chars().take(60).collect()
}

fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("string serializes"));
    }
}

/// JSON number grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?` (so `007` is not a number).
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(&b[i..]),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let n = digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

/// Length of the run of ASCII digits at the start of `b`.
fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
