//! The streaming funnel: one pass, O(steps) work per matching row, per-person state in flat
//! `Vec`s indexed by person id (see the module docs of [`super`] for the semantics).
//!
//! Per person, one contiguous record of `1 + 2·steps` i64 (one cache line for 3 steps, so a row
//! costs one cache miss): `meta` (level reached in the low 8 bits, breakdown group + 1 above),
//! then per step k `start[k]`, the start time t₀ of the latest attempt that has reached step k
//! (or [`NONE`]), and `at[k]`, the time of step k in that attempt. Because rows arrive in
//! time order, start times only grow, so propagating `start[k-1]` to `start[k]` keeps the
//! attempt with the most window left: the level is exact without remembering every attempt.

use crate::AnalysisError;
use crate::DayChunk;
use crate::columns::{Chunk, OrderCheck};
use crate::common::{Groups, PREFETCH_AHEAD, max_person, prefetch};

use super::{FunnelMode, Plan};

const NONE: i64 = i64::MIN;

pub(crate) struct State {
    n: usize,
    stride: usize,
    /// Per person: `[meta, start0, at0, start1, at1, …]`.
    st: Vec<i64>,
    groups: Groups,
    /// Per (group, step): durations from the first step and from the previous step.
    from_first: Vec<Vec<i64>>,
    from_previous: Vec<Vec<i64>>,
    order: OrderCheck,
    codes: Vec<u32>,
    /// Candidate rows of the current batch.
    rows: Vec<u32>,
}

pub(crate) struct GroupOut {
    pub value: Option<String>,
    pub persons: Vec<u64>,
    pub from_first: Vec<Vec<i64>>,
    pub from_previous: Vec<Vec<i64>>,
}

pub(crate) struct Output {
    pub groups: Vec<GroupOut>,
}

impl State {
    pub fn new(plan: &Plan) -> Self {
        let n = plan.names.len();
        State {
            n,
            stride: 1 + 2 * n,
            st: Vec::new(),
            groups: Groups::new(),
            from_first: vec![Vec::new(); n],
            from_previous: vec![Vec::new(); n],
            order: OrderCheck::default(),
            codes: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Step mask per row from the event name alone.
    fn step_codes(&mut self, plan: &Plan, chunk: &Chunk) {
        let mut any = 0u32;
        for (k, name) in plan.names.iter().enumerate() {
            if name.is_none() {
                any |= 1 << k;
            }
        }
        let names = &plan.names;
        chunk.event.codes(&mut self.codes, &mut |s| {
            let mut m = any;
            if let Some(s) = s {
                for (k, name) in names.iter().enumerate() {
                    if name.as_deref() == Some(s) {
                        m |= 1 << k;
                    }
                }
            }
            m
        });
    }

    pub fn chunk(&mut self, plan: &Plan, day: &DayChunk) -> Result<(), AnalysisError> {
        let chunk = Chunk::new(&day.batch)?;
        self.order.check(day.day, chunk.ts)?;
        self.step_codes(plan, &chunk);
        let global = plan.filters.bind(&chunk)?;
        let step_filters = plan
            .step_filters
            .iter()
            .map(|f| f.bind(&chunk))
            .collect::<Result<Vec<_>, _>>()?;
        let has_step_filters = plan.step_filters.iter().any(|f| !f.is_empty());
        let breakdown = plan
            .breakdown
            .as_ref()
            .map(|b| b.bind(&chunk))
            .transpose()?;
        let strict = plan.mode == FunnelMode::Strict;
        let codes = std::mem::take(&mut self.codes);
        let mut rows = std::mem::take(&mut self.rows);
        rows.clear();
        if strict {
            rows.extend(0..codes.len() as u32);
        } else {
            rows.extend((0..codes.len() as u32).filter(|&i| codes[i as usize] != 0));
        }
        if let Some(max) = max_person(chunk.person)? {
            self.ensure(max);
        }
        for (j, &row) in rows.iter().enumerate() {
            if let Some(&ahead) = rows.get(j + PREFETCH_AHEAD) {
                prefetch(
                    &self.st,
                    chunk.person[ahead as usize] as usize * self.stride,
                );
            }
            let i = row as usize;
            let mut m = codes[i];
            if !plan.filters.is_empty() && !global.matches(i) {
                continue;
            }
            if has_step_filters {
                for (k, f) in step_filters.iter().enumerate() {
                    if m & (1 << k) != 0 && !plan.step_filters[k].is_empty() && !f.matches(i) {
                        m &= !(1 << k);
                    }
                }
                if m == 0 && !strict {
                    continue;
                }
            }
            let p = chunk.person[i] as usize;
            let b = p * self.stride;
            if m & 1 != 0 && self.st[b] >> 8 == 0 {
                let g = self.groups.of(breakdown.as_ref(), i) as i64;
                self.st[b] |= (g + 1) << 8;
            }
            let t = chunk.ts[i];
            match plan.mode {
                FunnelMode::Ordered => self.ordered(p, m, t, plan.window, false),
                FunnelMode::Strict => self.ordered(p, m, t, plan.window, true),
                FunnelMode::Any => self.any(p, m, t, plan.window),
            }
        }
        self.codes = codes;
        self.rows = rows;
        Ok(())
    }

    #[inline]
    fn ensure(&mut self, p: usize) {
        if (p + 1) * self.stride > self.st.len() {
            let persons = (p + 1).max(self.st.len() / self.stride * 2).max(1024);
            let old = self.st.len();
            self.st.resize(persons * self.stride, NONE);
            for b in (old..self.st.len()).step_by(self.stride) {
                self.st[b] = 0;
            }
        }
    }

    #[inline]
    fn start(&self, p: usize, k: usize) -> i64 {
        self.st[p * self.stride + 1 + 2 * k]
    }

    #[inline]
    fn reach(&mut self, p: usize, k: usize, from_first: i64, from_previous: Option<i64>) {
        let b = p * self.stride;
        if (self.st[b] & 0xff) as usize != k {
            return;
        }
        self.st[b] += 1;
        if k > 0 {
            let g = (self.st[b] >> 8) as usize - 1;
            let idx = g * self.n + k;
            if idx >= self.from_first.len() {
                self.from_first.resize_with((g + 1) * self.n, Vec::new);
                self.from_previous.resize_with((g + 1) * self.n, Vec::new);
            }
            self.from_first[idx].push(from_first);
            if let Some(d) = from_previous {
                self.from_previous[idx].push(d);
            }
        }
    }

    #[inline]
    fn ordered(&mut self, p: usize, m: u32, t: i64, window: i64, strict: bool) {
        let base = p * self.stride + 1;
        for k in (1..self.n).rev() {
            let s = self.st[base + 2 * (k - 1)];
            if m & (1 << k) != 0 && s != NONE && t - s <= window {
                let prev = self.st[base + 2 * (k - 1) + 1];
                self.st[base + 2 * k] = s;
                self.st[base + 2 * k + 1] = t;
                self.reach(p, k, t - s, Some(t - prev));
            } else if strict {
                self.st[base + 2 * k] = NONE;
            }
        }
        if m & 1 != 0 {
            self.st[base] = t;
            self.st[base + 1] = t;
            self.reach(p, 0, 0, None);
        } else if strict {
            self.st[base] = NONE;
        }
    }

    /// `any` mode: `start[k]` is the last time step k was seen.
    #[inline]
    fn any(&mut self, p: usize, m: u32, t: i64, window: i64) {
        let base = p * self.stride + 1;
        for k in 0..self.n {
            if m & (1 << k) != 0 {
                self.st[base + 2 * k] = t;
            }
        }
        let mut earliest = t;
        let reached = (self.st[base - 1] & 0xff) as usize;
        for k in reached..self.n {
            // Levels below `reached` are already counted; check the next ones in order.
            let all_in = (0..=k).all(|j| {
                let s = self.start(p, j);
                s != NONE && t - s <= window
            });
            if !all_in {
                break;
            }
            for j in 0..=k {
                earliest = earliest.min(self.start(p, j));
            }
            self.reach(p, k, t - earliest, None);
        }
    }

    pub fn finish(self) -> Output {
        let n = self.n;
        let mut groups: Vec<GroupOut> = (0..self.groups.len())
            .map(|g| GroupOut {
                value: self.groups.value(g as u32),
                persons: vec![0; n],
                from_first: vec![Vec::new(); n],
                from_previous: vec![Vec::new(); n],
            })
            .collect();
        for meta in self.st.iter().step_by(self.stride) {
            let r = (meta & 0xff) as usize;
            if r == 0 {
                continue;
            }
            let g = (meta >> 8) as usize - 1;
            for k in 0..r {
                groups[g].persons[k] += 1;
            }
        }
        let mut from_first = self.from_first;
        let mut from_previous = self.from_previous;
        for (g, out) in groups.iter_mut().enumerate() {
            for k in 0..n {
                if let Some(v) = from_first.get_mut(g * n + k) {
                    out.from_first[k] = std::mem::take(v);
                }
                if let Some(v) = from_previous.get_mut(g * n + k) {
                    out.from_previous[k] = std::mem::take(v);
                }
            }
        }
        Output { groups }
    }
}
