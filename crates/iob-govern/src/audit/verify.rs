//! Checking and listing the audit log from its files alone (no engine, no lock: it runs next
//! to a live server). [`verify`] walks the whole chain and names the first bad record and why;
//! [`list`] filters records for an operator.
//!
//! Must never modify a file, and never call a chain good when any record, link or `HEAD` does
//! not check out.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::AuditRecord;
use super::chain::{AuditKey, GENESIS, same_mac};
use super::files::{self, HeadState};
use super::log::{audit_dir, key_path};
use crate::GovernError;

/// Why a record (or the chain's end) is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The record's contents do not match its keyed hash (edited, forged, or not a record).
    Changed,
    /// A sequence gap: records before it were removed.
    Removed,
    /// Records out of sequence order (moved, swapped or duplicated).
    Reordered,
    /// The record's `prev` is not the previous record's hash (a record from another chain).
    BrokenLink,
    /// The last acknowledged record is cut mid-line.
    Torn,
    /// The log ends before the record `HEAD` names: the last records were removed.
    Truncated,
    /// `HEAD` is missing, changed, or names a record that is not in this chain.
    Head,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Changed => "changed",
            FindingKind::Removed => "removed",
            FindingKind::Reordered => "reordered",
            FindingKind::BrokenLink => "broken link",
            FindingKind::Torn => "torn",
            FindingKind::Truncated => "truncated",
            FindingKind::Head => "head",
        }
    }
}

/// The first bad record: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The segment file's name (`audit-0000.log`, or `HEAD`).
    pub file: String,
    /// 1-based line in that file.
    pub line: Option<u64>,
    /// The record's sequence number, when it could be read.
    pub seq: Option<u64>,
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(l) = self.line {
            write!(f, " line {l}")?;
        }
        if let Some(s) = self.seq {
            write!(f, " (record {s})")?;
        }
        write!(f, ": {}: {}", self.kind.as_str(), self.reason)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Records that verified (up to the first problem).
    pub records: u64,
    pub segments: usize,
    /// The last good record's sequence number and hash: the value to anchor elsewhere.
    pub head: Option<(u64, String)>,
    /// The first problem; `None` when the whole chain verifies.
    pub problem: Option<Finding>,
    /// Benign observations (an append interrupted by a crash, records appended meanwhile).
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Walks the chain of `data_dir`'s audit log (every record's MAC, sequence and link, then the
/// end against `HEAD`) and reports the first problem.
pub fn verify(data_dir: &Path) -> Result<VerifyReport, GovernError> {
    let dir = audit_dir(data_dir);
    let segs = files::segments(&dir)?;
    let mut report = VerifyReport {
        records: 0,
        segments: segs.len(),
        head: None,
        problem: None,
        notes: Vec::new(),
    };
    if segs.is_empty() && !dir.join(files::HEAD_FILE).exists() {
        report.notes.push("no audit log yet".into());
        return Ok(report);
    }
    let key = AuditKey::load(&key_path(data_dir), false)?;
    // HEAD first: appends racing with this walk can only add records after it.
    let head = files::read_head(&dir, &key)?;
    let mut all = Vec::with_capacity(segs.len());
    for (_, path) in &segs {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        all.push((name, files::read_lines(path)?));
    }
    let seen: HashSet<u64> = all
        .iter()
        .flat_map(|(_, l)| l.complete.iter())
        .filter_map(|(_, t)| serde_json::from_str::<AuditRecord>(t).ok().map(|r| r.seq))
        .collect();
    let head_seq = match &head {
        HeadState::Valid(h) => Some(h.seq),
        _ => None,
    };
    let mut prev = GENESIS.to_string();
    let mut hash_at_head = None;
    let mut torn = None;
    let last_file = all.len().saturating_sub(1);
    for (i, (name, lines)) in all.iter().enumerate() {
        for (ln, text) in &lines.complete {
            let expected = report.records;
            let finding = |kind, seq, reason: String| Finding {
                kind,
                file: name.clone(),
                line: Some(*ln),
                seq,
                reason,
            };
            let r: AuditRecord = match serde_json::from_str(text) {
                Ok(r) => r,
                Err(e) => {
                    report.problem = Some(finding(
                        FindingKind::Changed,
                        None,
                        format!("not a valid audit record ({e})"),
                    ));
                    return Ok(report);
                }
            };
            let bad = if !same_mac(&key.record_hash(&r), &r.hash) {
                Some((
                    FindingKind::Changed,
                    "its hash does not match its contents: the record was changed, or written without the audit key".to_string(),
                ))
            } else if r.seq > expected && seen.contains(&expected) {
                Some((
                    FindingKind::Reordered,
                    format!("record {expected} should come here but comes later in the log"),
                ))
            } else if r.seq > expected {
                Some((
                    FindingKind::Removed,
                    format!("records {expected}..={} are missing before it", r.seq - 1),
                ))
            } else if r.seq < expected {
                Some((
                    FindingKind::Reordered,
                    format!(
                        "it comes after record {}: records were moved or duplicated",
                        expected - 1
                    ),
                ))
            } else if r.prev != prev {
                Some((
                    FindingKind::BrokenLink,
                    "its prev is not the previous record's hash".to_string(),
                ))
            } else {
                None
            };
            if let Some((kind, reason)) = bad {
                report.problem = Some(finding(kind, Some(r.seq), reason));
                return Ok(report);
            }
            if Some(r.seq) == head_seq {
                hash_at_head = Some(r.hash.clone());
            }
            report.records += 1;
            report.head = Some((r.seq, r.hash.clone()));
            prev = r.hash;
        }
        if let Some(bytes) = lines.torn {
            let line = lines.complete.len() as u64 + 1;
            if i != last_file {
                report.problem = Some(Finding {
                    kind: FindingKind::Changed,
                    file: name.clone(),
                    line: Some(line),
                    seq: None,
                    reason: "an incomplete line inside the chain (later segments follow)".into(),
                });
                return Ok(report);
            }
            torn = Some((name.clone(), line, bytes));
        }
    }
    check_end(&mut report, &head, hash_at_head, torn, &all);
    Ok(report)
}

/// The end of the chain against `HEAD`.
fn check_end(
    report: &mut VerifyReport,
    head: &HeadState,
    hash_at_head: Option<String>,
    torn: Option<(String, u64, usize)>,
    all: &[(String, files::Lines)],
) {
    let head_finding = |kind, seq, reason: String| Finding {
        kind,
        file: files::HEAD_FILE.into(),
        line: None,
        seq,
        reason,
    };
    let last = report.head.as_ref().map(|(s, _)| *s);
    match head {
        HeadState::Absent if report.records > 0 => {
            report.problem = Some(head_finding(
                FindingKind::Head,
                None,
                format!(
                    "HEAD is missing but the log holds {} records",
                    report.records
                ),
            ));
            return;
        }
        HeadState::Absent => {}
        HeadState::Invalid(why) => {
            report.problem = Some(head_finding(FindingKind::Head, None, why.clone()));
            return;
        }
        HeadState::Valid(h) if last.is_none_or(|l| h.seq > l) => {
            let expected = report.records;
            report.problem = Some(match &torn {
                Some((file, line, _)) if h.seq == expected => Finding {
                    kind: FindingKind::Torn,
                    file: file.clone(),
                    line: Some(*line),
                    seq: Some(h.seq),
                    reason: "this record was acknowledged (HEAD names it) but is cut mid-line: the file was truncated".into(),
                },
                _ => Finding {
                    kind: FindingKind::Truncated,
                    file: all.last().map_or_else(String::new, |(n, _)| n.clone()),
                    line: all.last().map(|(_, l)| l.complete.len() as u64 + 1),
                    seq: Some(expected),
                    reason: format!(
                        "HEAD names record {} but the log ends {}: records {expected}..={} were removed",
                        h.seq,
                        last.map_or("before any record".to_string(), |l| format!("at record {l}")),
                        h.seq
                    ),
                },
            });
            return;
        }
        HeadState::Valid(h) => {
            if !hash_at_head.is_some_and(|x| same_mac(&x, &h.hash)) {
                report.problem = Some(head_finding(
                    FindingKind::Head,
                    Some(h.seq),
                    format!(
                        "HEAD's hash is not record {}'s: it belongs to another chain",
                        h.seq
                    ),
                ));
                return;
            }
            if let Some(l) = last
                && l > h.seq
            {
                report.notes.push(format!(
                    "{} record(s) after HEAD (record {}): appended while verifying, or a crash between an append and its HEAD update",
                    l - h.seq,
                    h.seq
                ));
            }
        }
    }
    if let Some((file, line, bytes)) = torn {
        report.notes.push(format!(
            "{file} line {line}: an incomplete last line ({bytes} bytes), never acknowledged: an append interrupted by a crash (cut when the engine next opens the log)"
        ));
    }
}

/// Which records [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// The subject's pseudonym (hex).
    pub subject: Option<String>,
    /// An API key id, or an actor kind (`operator`, `api_key`).
    pub actor: Option<String>,
    /// An action (`profile.read`, ...).
    pub action: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// The newest records matching `filter`, newest first. Does not verify the chain (run
/// [`verify`] for that); lines that are not records are skipped.
pub fn list(data_dir: &Path, filter: &ListFilter) -> Result<Vec<AuditRecord>, GovernError> {
    let mut out = VecDeque::with_capacity(filter.limit.min(10_000));
    for (_, path) in files::segments(&audit_dir(data_dir))? {
        for (_, text) in files::read_lines(&path)?.complete {
            let Ok(r) = serde_json::from_str::<AuditRecord>(&text) else {
                continue;
            };
            let wanted = filter
                .subject
                .as_ref()
                .is_none_or(|s| r.subject.as_deref() == Some(s.to_ascii_lowercase().as_str()))
                && filter
                    .actor
                    .as_ref()
                    .is_none_or(|a| r.key.as_ref() == Some(a) || &r.actor == a)
                && filter.action.as_ref().is_none_or(|a| &r.action == a);
            if wanted {
                if out.len() == filter.limit {
                    out.pop_front();
                }
                if filter.limit > 0 {
                    out.push_back(r);
                }
            }
        }
    }
    Ok(out.into_iter().rev().collect())
}
