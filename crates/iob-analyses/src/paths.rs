//! Paths: the most common next and previous steps around an anchor event, as trees.
//!
//! # Semantics
//! * A person's sequence is their rows passing the request `filters`, in stream order (ts, seq).
//!   A row's label is its `event`, or its `type` when it has no event name (`identify`, …).
//! * With `collapse_repeats`, a row with the same label as the person's previous row is skipped
//!   (it neither extends a path nor anchors one).
//! * With `max_gap_ms`, a gap longer than that between two rows of a person ends the sequence
//!   there (like a session boundary): paths do not cross it.
//! * For every anchor occurrence (row matching `anchor`), the next `depth` rows form a *next
//!   path* and the previous `depth` rows (nearest first) a *previous path*; paths are shorter at
//!   the ends of a sequence. Each prefix of a path is a tree node: `transitions` = occurrences of
//!   the prefix, `persons` = distinct persons with at least one.
//! * Each node lists its `top` children by persons, then transitions, then label.
//! * Breakdown: the property's value on the anchor row; each value gets its own trees (a
//!   person's anchors may fall in several values).
//! * Disclosure: a node backed by fewer than k persons is suppressed — not listed; its parent's
//!   `suppressed_children` counts it, as does the report. Ranking uses true counts. Under ε
//!   counts are noised with Δ = number of released nodes and anchor counts (a person adds at most 1 to each node's
//!   `persons`; transitions are not bounded per person).
//!
//! State: per person `depth` trie positions of open next-paths and the last `depth` labels.

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use crate::columns::{Chunk, OrderCheck};
use crate::common::{EventMatch, Groups, Matcher, TimeRange, grow, person_index};
use crate::disclosure::{Disclosure, DisclosureReport, Releaser};
use crate::filter::Filters;
use crate::property::Property;
use crate::{AnalysisError, DayChunk, EventSource};

/// Which trees to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Next,
    Previous,
    #[default]
    Both,
}

/// A paths request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsRequest {
    pub anchor: EventMatch,
    #[serde(default)]
    pub direction: Direction,
    /// Steps away from the anchor, 1..=8.
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Children listed per node, 1..=100.
    #[serde(default = "default_top")]
    pub top: u32,
    #[serde(default)]
    pub filters: Vec<crate::Filter>,
    #[serde(default)]
    pub max_gap_ms: Option<i64>,
    #[serde(default)]
    pub collapse_repeats: bool,
    /// Property of the anchor event to split the trees by.
    #[serde(default)]
    pub breakdown: Option<String>,
    #[serde(default)]
    pub range: Option<TimeRange>,
}

fn default_depth() -> u32 {
    3
}
fn default_top() -> u32 {
    5
}

/// A node of a path tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathNode {
    pub event: String,
    pub persons: u64,
    pub transitions: u64,
    /// Children not listed because fewer than k persons back them.
    pub suppressed_children: u64,
    pub children: Vec<PathNode>,
}

/// The trees of one breakdown value of the anchor (the only group, `value: null`, without
/// breakdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsGroup {
    pub value: Option<String>,
    /// Anchor occurrences and distinct persons with one (`null` and empty trees when fewer
    /// than k persons had an anchor).
    pub anchors: Option<u64>,
    pub anchor_persons: Option<u64>,
    pub next: Vec<PathNode>,
    pub previous: Vec<PathNode>,
    pub suppressed_next: u64,
    pub suppressed_previous: u64,
}

/// A paths result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsResult {
    pub anchor: Option<String>,
    pub depth: u32,
    pub breakdown: Option<String>,
    /// By anchor persons, descending, then value.
    pub groups: Vec<PathsGroup>,
    pub disclosure: DisclosureReport,
}

const NONE: u32 = u32::MAX;

struct State {
    d: usize,
    anchor: Matcher,
    filters: Filters,
    next: bool,
    prev: bool,
    max_gap: Option<i64>,
    collapse: bool,
    breakdown: Option<Property>,
    groups: Groups,
    /// Per breakdown group: its (next, previous) tree roots. A next root's transitions count
    /// the group's anchors.
    roots: Vec<(u32, u32)>,
    order: OrderCheck,
    labels: HashMap<String, u32>,
    names: Vec<String>,
    /// Trie: (parent, label) → node; per node its label, parent and transitions.
    child: HashMap<(u32, u32), u32>,
    node_label: Vec<u32>,
    node_parent: Vec<u32>,
    transitions: Vec<u64>,
    /// (node << 32 | person) per transition, deduplicated at the end.
    pairs: Vec<u64>,
    /// Per person × d: trie node of the next-path whose anchor was j+1 rows ago.
    open: Vec<u32>,
    /// Per person × d: last labels, most recent first.
    recent: Vec<u32>,
    last_ts: Vec<i64>,
    /// Per person: the next-tree root of their previous row if it was an anchor, else NONE.
    was_anchor: Vec<u32>,
}

/// Runs a paths analysis over `source`.
pub fn paths(
    source: &dyn EventSource,
    req: &PathsRequest,
    disclosure: &Disclosure,
) -> Result<PathsResult, AnalysisError> {
    disclosure.validate("disclosure")?;
    if !(1..=8).contains(&req.depth) {
        return Err(AnalysisError::request(
            "depth",
            format!("must be 1..=8, got {}", req.depth),
        ));
    }
    if !(1..=100).contains(&req.top) {
        return Err(AnalysisError::request(
            "top",
            format!("must be 1..=100, got {}", req.top),
        ));
    }
    if let Some(g) = req.max_gap_ms
        && g <= 0
    {
        return Err(AnalysisError::request("max_gap_ms", "must be positive"));
    }
    TimeRange::validate(&req.range, "range")?;
    let mut st = State {
        d: req.depth as usize,
        anchor: req.anchor.compile("anchor")?,
        filters: Filters::compile("filters", &req.filters)?,
        next: req.direction != Direction::Previous,
        prev: req.direction != Direction::Next,
        max_gap: req.max_gap_ms,
        collapse: req.collapse_repeats,
        breakdown: req
            .breakdown
            .as_deref()
            .map(|b| Property::parse("breakdown", b))
            .transpose()?,
        groups: Groups::new(),
        roots: Vec::new(),
        order: OrderCheck::default(),
        labels: HashMap::default(),
        names: Vec::new(),
        child: HashMap::default(),
        node_label: Vec::new(),
        node_parent: Vec::new(),
        transitions: Vec::new(),
        pairs: Vec::new(),
        open: Vec::new(),
        recent: Vec::new(),
        last_ts: Vec::new(),
        was_anchor: Vec::new(),
    };
    let mut cols: Vec<String> = st.filters.columns().map(str::to_string).collect();
    cols.extend(st.anchor.filters.columns().map(str::to_string));
    cols.push("type".into()); // labels of unnamed rows
    cols.extend(st.breakdown.as_ref().map(|b| b.column().to_string()));
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    source.scan(&cols, TimeRange::pair(&req.range), &mut |c| st.chunk(&c))?;
    Ok(st.finish(req, disclosure))
}

impl State {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.labels.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.labels.insert(s.to_string(), id);
        id
    }

    fn node(&mut self, parent: u32, label: u32) -> u32 {
        self.node_label.push(label);
        self.node_parent.push(parent);
        self.transitions.push(0);
        self.node_label.len() as u32 - 1
    }

    /// The (next, previous) roots of group `g`.
    fn root(&mut self, g: u32) -> (u32, u32) {
        while self.roots.len() <= g as usize {
            let r = (self.node(NONE, NONE), self.node(NONE, NONE));
            self.roots.push(r);
        }
        self.roots[g as usize]
    }

    fn step(&mut self, parent: u32, label: u32, person: usize) -> u32 {
        let next_id = self.node_label.len() as u32;
        let node = *self.child.entry((parent, label)).or_insert(next_id);
        if node == next_id {
            self.node(parent, label);
        }
        self.transitions[node as usize] += 1;
        self.pairs.push((node as u64) << 32 | person as u64);
        node
    }

    fn chunk(&mut self, day: &DayChunk) -> Result<(), AnalysisError> {
        let chunk = Chunk::new(&day.batch)?;
        self.order.check(day.day, chunk.ts)?;
        // Owned copies (small) so the bound filters do not borrow `self`.
        let (filters, anchor) = (self.filters.clone(), self.anchor.clone());
        let breakdown = self.breakdown.clone();
        let bd = breakdown.as_ref().map(|b| b.bind(&chunk)).transpose()?;
        let global = filters.bind(&chunk)?;
        let anchor_f = anchor.filters.bind(&chunk)?;
        let mut codes = Vec::new();
        let mut batch_labels: Vec<String> = Vec::new();
        chunk.event.codes(&mut codes, &mut |s| match s {
            Some(s) => {
                batch_labels.push(s.to_string());
                batch_labels.len() as u32 - 1
            }
            None => NONE,
        });
        let ids: Vec<u32> = batch_labels.iter().map(|s| self.intern(s)).collect();
        let anchor_name: Vec<bool> = batch_labels
            .iter()
            .map(|s| anchor.name_matches(Some(s)))
            .collect();
        let d = self.d;
        for (i, &code) in codes.iter().enumerate() {
            if !filters.is_empty() && !global.matches(i) {
                continue;
            }
            let (label, named_anchor) = if code == NONE {
                (self.intern(chunk.label(i)), anchor.name_matches(None))
            } else {
                (ids[code as usize], anchor_name[code as usize])
            };
            let p = person_index(chunk.person[i])?;
            if p >= self.last_ts.len() {
                grow(&mut self.last_ts, p, i64::MIN);
                grow(&mut self.was_anchor, p, NONE);
                self.open.resize(self.last_ts.len() * d, NONE);
                self.recent.resize(self.last_ts.len() * d, NONE);
            }
            let t = chunk.ts[i];
            let base = p * d;
            if let Some(g) = self.max_gap
                && self.last_ts[p] != i64::MIN
                && t - self.last_ts[p] > g
            {
                self.open[base..base + d].fill(NONE);
                self.recent[base..base + d].fill(NONE);
                self.was_anchor[p] = NONE;
            }
            self.last_ts[p] = t;
            if self.collapse && self.recent[base] == label {
                continue;
            }
            let is_anchor = named_anchor && (anchor.filters.is_empty() || anchor_f.matches(i));
            if self.next {
                // Extend open paths: the one anchored j+1 rows ago moves to depth j+2.
                for j in (0..d).rev() {
                    let from = if j == 0 {
                        NONE
                    } else {
                        self.open[base + j - 1]
                    };
                    self.open[base + j] = if from == NONE {
                        NONE
                    } else {
                        self.step(from, label, p)
                    };
                }
                // `open[0]` now holds nothing; an anchor before this row starts a path here.
                if self.was_anchor[p] != NONE {
                    self.open[base] = self.step(self.was_anchor[p], label, p);
                }
            }
            let mut anchor_root = NONE;
            if is_anchor {
                let g = self.groups.of(bd.as_ref(), i);
                let (root_next, root_prev) = self.root(g);
                anchor_root = root_next;
                self.transitions[root_next as usize] += 1;
                self.pairs.push((root_next as u64) << 32 | p as u64);
                if self.prev {
                    let mut node = root_prev;
                    for j in 0..d {
                        let l = self.recent[base + j];
                        if l == NONE {
                            break;
                        }
                        node = self.step(node, l, p);
                    }
                }
            }
            self.recent.copy_within(base..base + d - 1, base + 1);
            self.recent[base] = label;
            self.was_anchor[p] = anchor_root;
        }
        Ok(())
    }

    fn finish(mut self, req: &PathsRequest, disclosure: &Disclosure) -> PathsResult {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        let mut persons = vec![0u64; self.node_label.len()];
        for &pair in &self.pairs {
            persons[(pair >> 32) as usize] += 1;
        }
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); self.node_label.len()];
        for node in 0..self.node_label.len() {
            if self.node_parent[node] != NONE {
                children[self.node_parent[node] as usize].push(node as u32);
            }
        }
        for c in &mut children {
            c.sort_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                persons[b]
                    .cmp(&persons[a])
                    .then(self.transitions[b].cmp(&self.transitions[a]))
                    .then_with(|| {
                        self.names[self.node_label[a] as usize]
                            .cmp(&self.names[self.node_label[b] as usize])
                    })
            });
        }
        let top = req.top as usize;
        let k = disclosure.k.unwrap_or(0) as u64;
        let mut order: Vec<u32> = (0..self.roots.len() as u32).collect();
        let values: Vec<Option<String>> = order.iter().map(|&g| self.groups.value(g)).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (
                self.roots[a as usize].0 as usize,
                self.roots[b as usize].0 as usize,
            );
            persons[rb]
                .cmp(&persons[ra])
                .then_with(|| values[a as usize].cmp(&values[b as usize]))
        });
        // Δ: released nodes, counted as listed (+ each group's anchor counts).
        let listed: usize = self
            .roots
            .iter()
            .map(|&(n, p)| {
                1 + count_listed(&children, &persons, k, top, n)
                    + count_listed(&children, &persons, k, top, p)
            })
            .sum();
        let mut rel = disclosure.releaser(listed.max(1) as f64);
        let ctx = Tree {
            children: &children,
            persons: &persons,
            transitions: &self.transitions,
            labels: &self.node_label,
            names: &self.names,
            top,
        };
        let mut groups = Vec::new();
        for g in order {
            let (root_next, root_prev) = self.roots[g as usize];
            if self.transitions[root_next as usize] == 0 {
                continue; // a value with no anchor (roots are made in id order)
            }
            let anchor_persons = persons[root_next as usize];
            let anchors = rel.cell(anchor_persons, self.transitions[root_next as usize]);
            let anchor_persons = anchors.map(|_| rel.count(anchor_persons));
            let ((next, suppressed_next), (previous, suppressed_previous)) = if anchors.is_some() {
                (
                    ctx.build(root_next, &mut rel),
                    ctx.build(root_prev, &mut rel),
                )
            } else {
                ((Vec::new(), 0), (Vec::new(), 0))
            };
            groups.push(PathsGroup {
                value: values[g as usize].clone(),
                anchors,
                anchor_persons,
                next,
                previous,
                suppressed_next,
                suppressed_previous,
            });
        }
        if groups.is_empty() {
            groups.push(PathsGroup {
                value: None,
                anchors: Some(rel.count(0)),
                anchor_persons: Some(rel.count(0)),
                next: Vec::new(),
                previous: Vec::new(),
                suppressed_next: 0,
                suppressed_previous: 0,
            });
        }
        PathsResult {
            anchor: req.anchor.event.clone(),
            depth: req.depth,
            breakdown: req.breakdown.clone(),
            groups,
            disclosure: rel.finish(),
        }
    }
}

fn count_listed(children: &[Vec<u32>], persons: &[u64], k: u64, top: usize, node: u32) -> usize {
    children[node as usize]
        .iter()
        .filter(|&&c| persons[c as usize] >= k)
        .take(top)
        .map(|&c| 1 + count_listed(children, persons, k, top, c))
        .sum()
}

struct Tree<'a> {
    children: &'a [Vec<u32>],
    persons: &'a [u64],
    transitions: &'a [u64],
    labels: &'a [u32],
    names: &'a [String],
    top: usize,
}

impl Tree<'_> {
    fn build(&self, node: u32, rel: &mut Releaser) -> (Vec<PathNode>, u64) {
        let mut out = Vec::new();
        let mut suppressed = 0;
        for &c in &self.children[node as usize] {
            let c = c as usize;
            if !rel.visible(self.persons[c]) {
                rel.suppressed();
                suppressed += 1;
                continue;
            }
            if out.len() == self.top {
                continue;
            }
            let (children, suppressed_children) = self.build(c as u32, rel);
            out.push(PathNode {
                event: self.names[self.labels[c] as usize].clone(),
                persons: rel.count(self.persons[c]),
                transitions: rel.count(self.transitions[c]),
                suppressed_children,
                children,
            });
        }
        (out, suppressed)
    }
}
