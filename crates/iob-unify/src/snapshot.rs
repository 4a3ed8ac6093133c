//! The unify state as bytes, so a restart continues from a snapshot instead of replaying the
//! whole log. The engine writes it (atomically, checksummed) and decides when; this module only
//! encodes and decodes (no I/O).
//!
//! Versioned from the first format (`VERSION`); a snapshot of another version, or taken under
//! other identity or profile settings, is refused and the caller replays the log instead — a
//! snapshot is a cache of the log, never the source of truth. It holds pseudonyms, never raw
//! identifiers; profiles hold traits (personal data, to be sealed like the log).

use serde::{Deserialize, Serialize};

use crate::UnifyError;
use crate::consent::ConsentHistory;
use crate::identity::{IdentityGraph, Node, PersonId, Slot};
use crate::profile::Profile;
use crate::rules::IdentityRules;
use crate::symbols::Symbols;
use crate::unifier::Unifier;

/// Format version of [`Unifier::snapshot`]. Any change to the layout of what is encoded
/// (the graph's nodes and persons, `Profile` and its features, consent histories) bumps it; the
/// fixture tests (`tests/fixtures/unify-snapshot-v*.bin`) fail until that is done. Version 1
/// (before consent histories) is refused by name, so the engine replays the log once.
pub const VERSION: u16 = 2;

/// What is written: borrowed from the live state (no copy of the profiles), laid out exactly
/// like [`State`], which is what is read.
#[derive(Serialize)]
struct StateRef<'a> {
    version: u16,
    settings: String,
    applied: Option<u64>,
    skipped: u64,
    symbols: &'a [Box<str>],
    nodes: &'a [Node],
    slots: &'a [Slot],
    profiles: Vec<(PersonId, &'a Profile)>,
    journeys: Vec<(PersonId, &'a [(i64, u64)])>,
    consents: Vec<(PersonId, &'a ConsentHistory)>,
}

#[derive(Deserialize)]
struct State {
    version: u16,
    /// The settings the state was computed under (their `Debug` text).
    settings: String,
    applied: Option<u64>,
    skipped: u64,
    symbols: Vec<Box<str>>,
    nodes: Vec<Node>,
    slots: Vec<Slot>,
    profiles: Vec<(PersonId, Profile)>,
    journeys: Vec<(PersonId, Vec<(i64, u64)>)>,
    consents: Vec<(PersonId, ConsentHistory)>,
}

fn bad(reason: impl Into<String>) -> UnifyError {
    UnifyError::Snapshot(reason.into())
}

impl Unifier {
    /// The settings that shape the state (not the operational ones: `live`, snapshot timing).
    fn settings(&self) -> String {
        let mut profile = self.config().clone();
        profile.live = true;
        profile.snapshot_secs = 0;
        format!("{:?} {profile:?}", self.graph().rules())
    }

    /// The whole state, encoded.
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_into(Vec::new())
    }

    /// [`Unifier::snapshot`] appended to `out` (a caller's file header, say), without a copy.
    pub fn snapshot_into(&self, out: Vec<u8>) -> Vec<u8> {
        let (nodes, slots) = self.graph().parts();
        let mut profiles: Vec<(PersonId, &Profile)> = self.profiles().collect();
        profiles.sort_by_key(|p| p.0);
        let mut journeys: Vec<(PersonId, &[(i64, u64)])> = self.journeys().collect();
        journeys.sort_by_key(|j| j.0);
        let mut consents: Vec<(PersonId, &ConsentHistory)> = self.consent_histories().collect();
        consents.sort_by_key(|c| c.0);
        let state = StateRef {
            version: VERSION,
            settings: self.settings(),
            applied: self.applied(),
            skipped: self.skipped(),
            symbols: self.symbols().names(),
            nodes,
            slots,
            profiles,
            journeys,
            consents,
        };
        postcard::to_extend(&state, out).expect("in-memory state serializes")
    }

    /// Restores a snapshot into this (fresh) unifier, whose settings must be those the
    /// snapshot was taken under. On `Err` the unifier is unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), UnifyError> {
        // The version leads the encoding (postcard: a varint); check it before the layout.
        let version = postcard::take_from_bytes::<u16>(bytes)
            .map_err(|e| bad(format!("unreadable: {e}")))?
            .0;
        if version != VERSION {
            return Err(bad(format!(
                "version {version} (this build reads {VERSION})"
            )));
        }
        let state: State =
            postcard::from_bytes(bytes).map_err(|e| bad(format!("unreadable: {e}")))?;
        if state.version != VERSION {
            return Err(bad(format!(
                "version {} (this build reads {VERSION})",
                state.version
            )));
        }
        if state.settings != self.settings() {
            return Err(bad("taken under other identity or profile settings"));
        }
        let rules: IdentityRules = self.graph().rules().clone();
        let graph = IdentityGraph::from_parts(rules, state.nodes, state.slots)
            .ok_or_else(|| bad("inconsistent identity graph"))?;
        let symbols = Symbols::from_names(state.symbols).ok_or_else(|| bad("repeated symbol"))?;
        let n = symbols.len() as u32;
        if state.profiles.iter().any(|(_, p)| !p.symbols_below(n)) {
            return Err(bad("a profile names an unknown symbol"));
        }
        self.replace_state(
            graph,
            symbols,
            state.profiles,
            state.journeys,
            state.consents,
            (state.applied, state.skipped),
        );
        Ok(())
    }
}
