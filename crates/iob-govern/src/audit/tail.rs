//! The chain's end against `HEAD`, checked when the audit log opens: the last record must
//! verify, and `HEAD` must name it, or an earlier record that the later ones follow link by
//! link under their MACs (a crash between a group's append and its `HEAD` update).
//!
//! Reads only; must never accept a chain whose last records were removed or changed.

use std::path::PathBuf;

use super::AuditRecord;
use super::chain::{AuditKey, GENESIS, same_mac};
use super::files::{self, HeadState};
use crate::GovernError;

/// Where the chain stands after checking its tail against `HEAD`.
pub(super) struct Tail {
    pub next_seq: u64,
    pub last_hash: String,
    /// How many records the log holds after the one `HEAD` names (a crash between a group's
    /// append and its `HEAD` update); `HEAD` is rewritten when this is not 0.
    pub behind: u64,
}

/// Checks the chain's end against `HEAD`. `recent` holds the log's last records, oldest
/// first: back to the one `HEAD` names when it names an earlier one, else just the last.
pub(super) fn check_tail(
    recent: &[AuditRecord],
    head: &HeadState,
    key: &AuditKey,
) -> Result<Tail, String> {
    let Some(r) = recent.last() else {
        return match head {
            HeadState::Absent => Ok(Tail {
                next_seq: 0,
                last_hash: GENESIS.into(),
                behind: 0,
            }),
            HeadState::Valid(h) => Err(format!(
                "HEAD names record {} but the log holds no records: records were removed",
                h.seq
            )),
            HeadState::Invalid(why) => Err(why.clone()),
        };
    };
    if !same_mac(&key.record_hash(r), &r.hash) {
        return Err(format!(
            "the last record (seq {}) fails its MAC: it was changed or forged",
            r.seq
        ));
    }
    let h = match head {
        HeadState::Valid(h) => h,
        HeadState::Absent => return Err("the log holds records but HEAD is missing".into()),
        HeadState::Invalid(why) => return Err(why.clone()),
    };
    let ok = |behind| Tail {
        next_seq: r.seq + 1,
        last_hash: r.hash.clone(),
        behind,
    };
    if h.seq == r.seq && same_mac(&h.hash, &r.hash) {
        return Ok(ok(0));
    }
    if h.seq > r.seq {
        return Err(format!(
            "HEAD names record {} but the log ends at record {}: the last records were removed",
            h.seq, r.seq
        ));
    }
    // A crash between a group's append and its HEAD update: the records after HEAD's must
    // follow it link by link, each under its MAC.
    let mismatch = || {
        format!(
            "HEAD (record {}) does not match the log's last record ({})",
            h.seq, r.seq
        )
    };
    let first = recent.first().ok_or_else(mismatch)?;
    if first.seq != h.seq || !same_mac(&first.hash, &h.hash) {
        return Err(mismatch());
    }
    for w in recent.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.seq != a.seq + 1 || !same_mac(&b.prev, &a.hash) {
            return Err(mismatch());
        }
        if !same_mac(&key.record_hash(b), &b.hash) {
            return Err(format!(
                "record {} after HEAD fails its MAC: it was changed or forged",
                b.seq
            ));
        }
    }
    Ok(ok(r.seq - h.seq))
}

/// The log's last records, oldest first, back to the one numbered `back_to` (or just the last
/// record when none is earlier), searching back over segments.
pub(super) fn recent_records(
    segs: &[(u32, PathBuf)],
    back_to: Option<u64>,
) -> Result<Vec<AuditRecord>, GovernError> {
    let mut out = Vec::new();
    for (_, path) in segs.iter().rev() {
        let lines = files::read_lines(path)?;
        for (n, text) in lines.complete.iter().rev() {
            let r: AuditRecord = serde_json::from_str(text).map_err(|e| {
                GovernError::AuditBroken(format!(
                    "{} line {n}: the record is not a valid audit record: {e}",
                    path.display()
                ))
            })?;
            let done = back_to.is_none_or(|b| r.seq <= b);
            out.push(r);
            if done {
                out.reverse();
                return Ok(out);
            }
        }
    }
    out.reverse();
    Ok(out)
}
