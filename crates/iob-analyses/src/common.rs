//! Pieces shared by the analyses: the time range of a request, breakdown value interning and
//! per-person state indexing.

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use crate::AnalysisError;
use crate::property::Reader;

/// Event time range [from_ms, to_ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    pub fn validate(range: &Option<TimeRange>, field: &str) -> Result<(), AnalysisError> {
        match range {
            Some(r) if r.from_ms >= r.to_ms => Err(AnalysisError::request(
                field,
                format!("from_ms ({}) must be before to_ms ({})", r.from_ms, r.to_ms),
            )),
            _ => Ok(()),
        }
    }

    pub fn pair(range: &Option<TimeRange>) -> Option<(i64, i64)> {
        range.map(|r| (r.from_ms, r.to_ms))
    }
}

/// Breakdown values interned to small integers (0 is "not set").
#[derive(Default)]
pub struct Groups {
    ids: HashMap<String, u32>,
    values: Vec<Option<String>>,
}

impl Groups {
    pub fn new() -> Self {
        Groups {
            ids: HashMap::default(),
            values: vec![None],
        }
    }

    /// The group of row `i` under `reader` (0 when there is no breakdown).
    pub fn of(&mut self, reader: Option<&Reader>, i: usize) -> u32 {
        let Some(r) = reader else { return 0 };
        match r.get(i) {
            crate::property::Val::Str(s) => self.intern(&s),
            v => match v.label() {
                None => 0,
                Some(label) => self.intern(&label),
            },
        }
    }

    fn intern(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.ids.get(label) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(Some(label.to_string()));
        self.ids.insert(label.to_string(), id);
        id
    }

    /// Groups of every row of a batch into `out` when that is cheap: string columns (one
    /// lookup per dictionary value), or no breakdown (all 0). Returns false, leaving `out`
    /// empty, for other properties (JSON, numbers), which callers read per matching row.
    pub fn codes(&mut self, reader: Option<&Reader>, len: usize, out: &mut Vec<u32>) -> bool {
        out.clear();
        match reader {
            None => out.resize(len, 0),
            Some(Reader::Str(col)) => col.codes(out, &mut |s| s.map_or(0, |s| self.intern(s))),
            Some(_) => return false,
        }
        true
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn value(&self, id: u32) -> Option<String> {
        self.values[id as usize].clone()
    }
}

/// Largest person id the dense per-person state accepts (ids are handed out from 0).
pub const MAX_PERSON: u64 = 1 << 32;

/// The index of `person`, growing `len` (and the caller's vectors) as needed.
#[inline]
pub fn person_index(person: u64) -> Result<usize, AnalysisError> {
    if person >= MAX_PERSON {
        return Err(AnalysisError::Source(format!(
            "person id {person} exceeds {MAX_PERSON}: per-person state is dense, ids must be small"
        )));
    }
    Ok(person as usize)
}

/// Grows `v` to hold index `i` (doubling, so growth is amortized O(1)).
#[inline]
pub fn grow<T: Clone>(v: &mut Vec<T>, i: usize, fill: T) {
    if i >= v.len() {
        let n = (i + 1).max(v.len() * 2).max(1024);
        v.resize(n, fill);
    }
}

/// An event to match: a name (absent: any event) and filters on the row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub filters: Vec<crate::Filter>,
}

impl EventMatch {
    /// Rows whose `event` is `name`.
    pub fn named(name: &str) -> Self {
        EventMatch {
            event: Some(name.into()),
            filters: vec![],
        }
    }

    /// Every row.
    pub fn any() -> Self {
        EventMatch::default()
    }

    pub(crate) fn compile(&self, field: &str) -> Result<Matcher, AnalysisError> {
        Ok(Matcher {
            name: self.event.clone(),
            filters: crate::filter::Filters::compile(&format!("{field}.filters"), &self.filters)?,
        })
    }
}

/// A compiled [`EventMatch`].
#[derive(Clone)]
pub(crate) struct Matcher {
    pub name: Option<String>,
    pub filters: crate::filter::Filters,
}

impl Matcher {
    /// Whether the name test passes for an event value.
    #[inline]
    pub fn name_matches(&self, event: Option<&str>) -> bool {
        match &self.name {
            None => true,
            Some(n) => event == Some(n.as_str()),
        }
    }
}

/// How many candidate rows ahead the kernels prefetch per-person state.
pub const PREFETCH_AHEAD: usize = 16;

/// Hints the CPU to load `v[i]` into cache (no effect when out of bounds or off x86-64).
///
/// Rows arrive in time order, so consecutive rows belong to unrelated persons and every row's
/// state is a cache miss on large data; prefetching a few rows ahead overlaps those misses.
#[inline(always)]
pub fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if i < v.len() {
        let p = v[i..].as_ptr() as *const i8;
        // SAFETY: a prefetch is only a hint: it has no architectural effect and cannot fault;
        // the address is in bounds anyway.
        unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) }
    }
}

/// The largest person id in `persons` as an index (validated), for growing state once per batch.
pub fn max_person(persons: &[u64]) -> Result<Option<usize>, AnalysisError> {
    persons.iter().copied().max().map(person_index).transpose()
}
