//! The identity graph: which identifiers (user ids, anonymous ids, device ids, hashed e-mails
//! and phones, …) belong to one person, why, and what was refused.
//!
//! Identifiers are held only as keyed pseudonyms ([`IdKey`], an HMAC of kind and value made by
//! `iob_govern::Pseudonymizer`); this module must never hold a raw identifier. Every link
//! records the log sequence number and event time of the event that made it, so a merge can be
//! explained event by event.
//!
//! Rules ([`IdentityRules`]): each identifier kind has a priority and an optional limit per
//! person (e.g. at most one user id, so two known users never merge through a shared device or
//! cookie). An event's *anchor* is its highest-priority identifier; its other identifiers join
//! the anchor's person, and persons they already belong to merge into it, unless a limit would be
//! exceeded. A refused link is recorded, never applied halfway.

use serde::{Deserialize, Serialize};

use crate::hash::PseudonymMap;
use crate::rules::IdentityRules;

/// A pseudonymous identifier: HMAC-SHA256 (truncated) of `kind \0 value`.
pub type IdKey = iob_types::PersonKey;

/// A unified person. Stable: when two persons merge, the older id survives and the other
/// redirects to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PersonId(pub u64);

/// One identifier seen on an event: its kind (index into the rules) and pseudonym.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identifier {
    pub kind: u8,
    pub key: IdKey,
}

/// Where a link came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Log sequence number of the event.
    pub seq: u64,
    /// Its event time (ms since the epoch).
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Node {
    kind: u8,
    key: IdKey,
    slot: u32,
    linked: Provenance,
    /// The identifier (node index) it was linked through; `None` for the one that founded
    /// its person.
    via: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Slot {
    nodes: Vec<u32>,
    counts: Vec<u32>,
    merged_into: Option<u32>,
    merges: Vec<Merge>,
    refusals: Vec<Refusal>,
}

/// Pseudonyms as hex in user-facing output (`PersonKey`'s own `Display`), not as 16 numbers.
mod hex {
    use serde::Serializer;

    use super::IdKey;

    pub fn key<S: Serializer>(k: &IdKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(k)
    }

    pub fn opt<S: Serializer>(k: &Option<IdKey>, s: S) -> Result<S::Ok, S::Error> {
        match k {
            Some(k) => s.collect_str(k),
            None => s.serialize_none(),
        }
    }

    pub fn pair<S: Serializer>(k: &(IdKey, IdKey), s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq([k.0.to_hex(), k.1.to_hex()])
    }
}

/// Two persons became one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merge {
    pub absorbed: PersonId,
    pub by: Provenance,
    /// The identifier of the surviving person and the one of the absorbed person that the
    /// event carried together.
    pub through: (IdKey, IdKey),
}

/// A [`Merge`] as shown to users (pseudonyms in hex).
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedMerge {
    pub absorbed: PersonId,
    pub by: Provenance,
    #[serde(serialize_with = "hex::pair")]
    pub through: (IdKey, IdKey),
}

/// A link the rules refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub by: Provenance,
    pub identifier_kind: String,
    pub reason: String,
}

/// What an event did to the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The person the event belongs to.
    pub person: PersonId,
    /// Whether that person was created by this event.
    pub created: bool,
    /// Persons merged into `person` by this event (their profiles must be folded in).
    pub absorbed: Vec<PersonId>,
}

/// The kind of a node whose person was erased: its pseudonym is zeroed and no lookup finds it.
const ERASED: u8 = u8::MAX;

/// Refusals kept per person for `explain` (the newest).
const MAX_REFUSALS: usize = 32;

/// The identity graph. Deterministic: the same events in the same order give the same graph.
#[derive(Debug, Clone)]
pub struct IdentityGraph {
    rules: IdentityRules,
    ids: PseudonymMap<u32>,
    nodes: Vec<Node>,
    slots: Vec<Slot>,
}

impl IdentityGraph {
    pub fn new(rules: IdentityRules) -> Self {
        IdentityGraph {
            rules,
            ids: PseudonymMap::default(),
            nodes: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// The graph's nodes and persons, for a snapshot.
    pub(crate) fn parts(&self) -> (&[Node], &[Slot]) {
        (&self.nodes, &self.slots)
    }

    /// A graph from a snapshot's parts; `None` if they are inconsistent with each other or
    /// with the rules.
    pub(crate) fn from_parts(
        rules: IdentityRules,
        nodes: Vec<Node>,
        slots: Vec<Slot>,
    ) -> Option<Self> {
        let mut ids = PseudonymMap::default();
        for (i, n) in nodes.iter().enumerate() {
            if n.kind == ERASED {
                continue;
            }
            let ok = (n.slot as usize) < slots.len()
                && (n.kind as usize) < rules.kinds()
                && n.via.is_none_or(|v| (v as usize) < nodes.len());
            if !ok || ids.insert(n.key, i as u32).is_some() {
                return None;
            }
        }
        let consistent = slots.iter().all(|s| {
            s.nodes.iter().all(|&n| (n as usize) < nodes.len())
                && s.merged_into.is_none_or(|m| (m as usize) < slots.len())
                && (s.merged_into.is_some() || s.counts.len() == rules.kinds())
        });
        consistent.then_some(IdentityGraph {
            rules,
            ids,
            nodes,
            slots,
        })
    }

    pub fn rules(&self) -> &IdentityRules {
        &self.rules
    }

    /// Number of live persons.
    pub fn persons(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.merged_into.is_none() && !s.nodes.is_empty())
            .count()
    }

    /// Number of person ids ever handed out (live, merged away or erased).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Number of identifiers known.
    pub fn identifiers(&self) -> usize {
        self.ids.len()
    }

    /// Removes a (live) person's identifiers: their pseudonyms are zeroed and forgotten, so
    /// no lookup finds them and the same identifiers found a new person if they come back.
    /// The person's merges and refusals go too. Returns the identifiers removed.
    pub(crate) fn erase(&mut self, p: PersonId) -> Vec<Identifier> {
        let Some(slot) = self.current(p) else {
            return Vec::new();
        };
        let s = std::mem::take(&mut self.slots[slot.0 as usize]);
        self.slots[slot.0 as usize].counts = vec![0; self.rules.kinds()];
        let mut removed = Vec::with_capacity(s.nodes.len());
        for n in s.nodes {
            let node = &mut self.nodes[n as usize];
            removed.push(Identifier {
                kind: node.kind,
                key: node.key,
            });
            self.ids.remove(&node.key);
            node.kind = ERASED;
            node.key = IdKey::default();
            node.linked = Provenance { seq: 0, at: 0 };
            node.via = None;
        }
        removed
    }

    /// The person an identifier belongs to.
    pub fn person_of(&self, key: &IdKey) -> Option<PersonId> {
        self.ids
            .get(key)
            .map(|&n| PersonId(self.root(self.nodes[n as usize].slot) as u64))
    }

    /// The live person a (possibly merged-away) person id now is.
    pub fn current(&self, p: PersonId) -> Option<PersonId> {
        let slot = u32::try_from(p.0)
            .ok()
            .filter(|&s| (s as usize) < self.slots.len())?;
        Some(PersonId(self.root(slot) as u64))
    }

    fn root(&self, mut slot: u32) -> u32 {
        while let Some(next) = self.slots[slot as usize].merged_into {
            slot = next;
        }
        slot
    }

    /// Applies one event's identifiers (any order; duplicates allowed; `ids` is sorted and
    /// deduplicated in place). `None` if it has none.
    pub fn resolve(&mut self, ids: &mut Vec<Identifier>, by: Provenance) -> Option<Resolution> {
        ids.sort_by_key(|i| (self.rules.priority(i.kind), i.kind, i.key));
        ids.dedup();
        let anchor = *ids.first()?;
        let mut absorbed = Vec::new();
        let mut created = false;

        // The anchor's person: its own, else the first person of another identifier (in
        // priority order) that may take it, else a new one.
        let mut target = match self.ids.get(&anchor.key) {
            Some(&n) => self.root(self.nodes[n as usize].slot),
            None => {
                let host = ids[1..].iter().find_map(|i| {
                    let n = *self.ids.get(&i.key)?;
                    let slot = self.root(self.nodes[n as usize].slot);
                    self.may_add(slot, anchor.kind).then_some((slot, n))
                });
                match host {
                    Some((slot, via)) => {
                        self.attach(anchor, slot, by, Some(via));
                        slot
                    }
                    None => {
                        created = true;
                        let slot = self.new_slot();
                        self.attach(anchor, slot, by, None);
                        slot
                    }
                }
            }
        };
        let anchor_node = self.ids[&anchor.key];

        for id in &ids[1..] {
            match self.ids.get(&id.key).copied() {
                Some(n) => {
                    let other = self.root(self.nodes[n as usize].slot);
                    if other == target {
                        continue;
                    }
                    match self.merge_conflict(target, other) {
                        None => {
                            let (keep, gone) = self.merge(target, other, by, (anchor.key, id.key));
                            target = keep;
                            absorbed.push(PersonId(gone as u64));
                        }
                        Some(kind) => {
                            let reason = format!(
                                "merging would give one person more than {} `{}` identifier(s)",
                                self.rules.max_per_person(kind).unwrap_or(u32::MAX),
                                self.rules.kind_name(kind)
                            );
                            self.refuse(target, id.kind, by, reason);
                        }
                    }
                }
                None => {
                    if self.may_add(target, id.kind) {
                        self.attach(*id, target, by, Some(anchor_node));
                    } else {
                        let max = self.rules.max_per_person(id.kind).unwrap_or(u32::MAX);
                        let reason = format!("the person already has {max} (the limit)");
                        self.refuse(target, id.kind, by, reason);
                    }
                }
            }
        }
        Some(Resolution {
            person: PersonId(target as u64),
            created,
            absorbed,
        })
    }

    fn new_slot(&mut self) -> u32 {
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 persons");
        self.slots.push(Slot {
            counts: vec![0; self.rules.kinds()],
            ..Slot::default()
        });
        slot
    }

    fn may_add(&self, slot: u32, kind: u8) -> bool {
        self.rules
            .max_per_person(kind)
            .is_none_or(|max| self.slots[slot as usize].counts[kind as usize] < max)
    }

    /// The first kind whose limit merging `b` into `a` would exceed.
    fn merge_conflict(&self, a: u32, b: u32) -> Option<u8> {
        let (ca, cb) = (
            &self.slots[a as usize].counts,
            &self.slots[b as usize].counts,
        );
        (0..self.rules.kinds() as u8).find(|&k| {
            self.rules
                .max_per_person(k)
                .is_some_and(|max| ca[k as usize] + cb[k as usize] > max)
        })
    }

    fn attach(&mut self, id: Identifier, slot: u32, by: Provenance, via: Option<u32>) {
        let n = u32::try_from(self.nodes.len()).expect("fewer than 2^32 identifiers");
        self.nodes.push(Node {
            kind: id.kind,
            key: id.key,
            slot,
            linked: by,
            via,
        });
        self.ids.insert(id.key, n);
        let s = &mut self.slots[slot as usize];
        s.nodes.push(n);
        s.counts[id.kind as usize] += 1;
    }

    /// Folds person `b` into `a`: the older id survives, so `a < b` is kept by swapping.
    fn merge(&mut self, a: u32, b: u32, by: Provenance, through: (IdKey, IdKey)) -> (u32, u32) {
        let (keep, gone) = (a.min(b), a.max(b));
        let moved = std::mem::take(&mut self.slots[gone as usize]);
        for &n in &moved.nodes {
            self.nodes[n as usize].slot = keep;
        }
        self.slots[gone as usize].merged_into = Some(keep);
        let k = &mut self.slots[keep as usize];
        k.nodes.extend(moved.nodes);
        for (c, m) in k.counts.iter_mut().zip(moved.counts) {
            *c += m;
        }
        k.merges.extend(moved.merges);
        k.refusals.extend(moved.refusals);
        k.merges.push(Merge {
            absorbed: PersonId(gone as u64),
            by,
            through,
        });
        (keep, gone)
    }

    fn refuse(&mut self, slot: u32, kind: u8, by: Provenance, reason: String) {
        let r = &mut self.slots[slot as usize].refusals;
        if r.len() == MAX_REFUSALS {
            r.remove(0);
        }
        r.push(Refusal {
            by,
            identifier_kind: self.rules.kind_name(kind).to_string(),
            reason,
        });
    }

    /// Why this person is who they are: each identifier with the event that linked it, the
    /// merges, and the refused links.
    pub fn explain(&self, p: PersonId) -> Option<Explanation> {
        let slot = self.current(p)?.0 as u32;
        let s = &self.slots[slot as usize];
        let identifiers = s
            .nodes
            .iter()
            .map(|&n| {
                let node = &self.nodes[n as usize];
                ExplainedId {
                    kind: self.rules.kind_name(node.kind).to_string(),
                    key: node.key,
                    linked_by: node.linked,
                    via: node.via.map(|v| self.nodes[v as usize].key),
                }
            })
            .collect();
        Some(Explanation {
            person: PersonId(slot as u64),
            identifiers,
            merges: s
                .merges
                .iter()
                .map(|m| ExplainedMerge {
                    absorbed: m.absorbed,
                    by: m.by,
                    through: m.through,
                })
                .collect(),
            refusals: s.refusals.clone(),
        })
    }

    /// The identifiers of a person (pseudonyms), e.g. to find their events in the log.
    pub fn identifiers_of(&self, p: PersonId) -> Vec<Identifier> {
        let Some(slot) = self.current(p) else {
            return Vec::new();
        };
        self.slots[slot.0 as usize]
            .nodes
            .iter()
            .map(|&n| Identifier {
                kind: self.nodes[n as usize].kind,
                key: self.nodes[n as usize].key,
            })
            .collect()
    }
}

/// See [`IdentityGraph::explain`].
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub person: PersonId,
    pub identifiers: Vec<ExplainedId>,
    pub merges: Vec<ExplainedMerge>,
    pub refusals: Vec<Refusal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExplainedId {
    pub kind: String,
    /// The identifier's pseudonym (hex).
    #[serde(serialize_with = "hex::key")]
    pub key: IdKey,
    pub linked_by: Provenance,
    /// The identifier it was linked through.
    #[serde(serialize_with = "hex::opt")]
    pub via: Option<IdKey>,
}
