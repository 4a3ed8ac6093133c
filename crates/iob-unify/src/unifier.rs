//! The unify stage: stored events in, identity graph and profiles out.
//!
//! [`Unifier::apply`] takes one stored event (log sequence number, kind, event time, canonical
//! JSON), resolves its identifiers to a person, folds merged persons' profiles together, and adds
//! the event to the person's profile. It is synchronous and deterministic: applying the same log
//! in the same order gives the same state, which is what `iob rebuild` relies on. It must never
//! keep a raw identifier: identifiers are hashed with the engine's pseudonymizer on the way in.

use std::borrow::Cow;

use iob_govern::Pseudonymizer;
use iob_types::EventKind;

use crate::UnifyError;
use crate::consent::{ConsentChoice, ConsentHistory, ConsentRules};
use crate::hash::FastMap;
use crate::identity::{IdKey, Identifier, IdentityGraph, PersonId, Provenance};
use crate::profile::{Contribution, Feature, Profile, ProfileConfig};
use crate::rules::{IdSource, IdentityConfig, IdentityRules};
use crate::signal::{ContextView, EventView, number, object_fields, scalar_text};
use crate::symbols::Symbols;

/// One stored event, as the log hands it out.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub seq: u64,
    pub kind: EventKind,
    /// Event time (ms since the epoch), corrected for clock skew by the collector.
    pub at: i64,
    pub payload: &'a [u8],
}

/// A 64-bit fingerprint of an order id (orders are counted, never listed).
fn order_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x10b0).build_hasher();
    h.write(id.as_bytes());
    h.finish()
}

/// What a property key means to profiles (lists: position = priority).
#[derive(Debug, Clone, Copy)]
enum Role {
    Item(u8),
    Category(u8),
    Order(u8),
    Revenue,
    Total,
    Price,
    Quantity,
}

fn roles(cfg: &ProfileConfig) -> FastMap<Box<str>, Role> {
    let mut m = FastMap::default();
    for (k, r) in [
        ("revenue", Role::Revenue),
        ("total", Role::Total),
        ("price", Role::Price),
        ("quantity", Role::Quantity),
    ] {
        m.insert(k.into(), r);
    }
    let position = |i: usize| i.min(255) as u8;
    for (i, k) in cfg.item_properties.iter().enumerate() {
        m.entry(k.as_str().into())
            .or_insert(Role::Item(position(i)));
    }
    for (i, k) in cfg.category_properties.iter().enumerate() {
        m.entry(k.as_str().into())
            .or_insert(Role::Category(position(i)));
    }
    for (i, k) in cfg.order_properties.iter().enumerate() {
        m.entry(k.as_str().into())
            .or_insert(Role::Order(position(i)));
    }
    m
}

/// The properties of one event that profiles read, by role.
#[derive(Default)]
struct PropsFound<'a> {
    item: Option<(u8, &'a serde_json::value::RawValue)>,
    category: Option<(u8, &'a serde_json::value::RawValue)>,
    order: Option<(u8, &'a serde_json::value::RawValue)>,
    revenue: Option<&'a serde_json::value::RawValue>,
    total: Option<&'a serde_json::value::RawValue>,
    price: Option<&'a serde_json::value::RawValue>,
    quantity: Option<&'a serde_json::value::RawValue>,
}

impl<'a> PropsFound<'a> {
    fn take(&mut self, role: Role, raw: &'a serde_json::value::RawValue) {
        // The configured key listed first wins; for the fixed names, the first occurrence.
        let better = |slot: &Option<(u8, _)>, i: u8| slot.is_none_or(|(j, _)| i < j);
        match role {
            Role::Item(i) if better(&self.item, i) => self.item = Some((i, raw)),
            Role::Category(i) if better(&self.category, i) => self.category = Some((i, raw)),
            Role::Order(i) if better(&self.order, i) => self.order = Some((i, raw)),
            Role::Revenue => _ = self.revenue.get_or_insert(raw),
            Role::Total => _ = self.total.get_or_insert(raw),
            Role::Price => _ = self.price.get_or_insert(raw),
            Role::Quantity => _ = self.quantity.get_or_insert(raw),
            _ => {}
        }
    }
}

/// A person's events as `(event time, seq)`, ascending.
pub(crate) type Journey = Vec<(i64, u64)>;

/// Identity graph, profiles and the symbols they share.
pub struct Unifier {
    pseudonyms: Pseudonymizer,
    pub(crate) graph: IdentityGraph,
    /// Boxed: the map's entries stay small, so growing it never moves the profiles.
    pub(crate) profiles: FastMap<PersonId, Box<Profile>>,
    /// Per person, `(event time, seq)` of their events, ascending: the journey index.
    pub(crate) journeys: FastMap<PersonId, Journey>,
    /// Per person who ever said anything about consent, their choices.
    pub(crate) consents: FastMap<PersonId, ConsentHistory>,
    pub(crate) consent_rules: ConsentRules,
    /// Reused for each event's consent choices.
    choice_buf: Vec<ConsentChoice>,
    pub(crate) symbols: Symbols,
    /// Reused for each event's identifiers.
    id_buf: Vec<Identifier>,
    /// Affinity weight per event-name symbol (from `config.event_weights`), filled lazily.
    weights: FastMap<u32, f64>,
    /// Whether an event name means a purchase, per symbol, filled lazily.
    bought: FastMap<u32, bool>,
    /// Property keys profiles read, and for what.
    roles: FastMap<Box<str>, Role>,
    pub(crate) config: ProfileConfig,
    /// The last applied log sequence number.
    applied: Option<u64>,
    skipped: u64,
}

impl Unifier {
    pub fn new(
        pseudonyms: Pseudonymizer,
        identity: &IdentityConfig,
        profiles: ProfileConfig,
    ) -> Result<Self, UnifyError> {
        if profiles.session_gap_minutes == 0 || profiles.affinity_half_life_days <= 0.0 {
            return Err(UnifyError::Config {
                key: "profiles".into(),
                reason: "session_gap_minutes and affinity_half_life_days must be positive".into(),
            });
        }
        Ok(Unifier {
            pseudonyms,
            graph: IdentityGraph::new(IdentityRules::new(identity)?),
            profiles: FastMap::default(),
            journeys: FastMap::default(),
            consents: FastMap::default(),
            consent_rules: ConsentRules::default(),
            choice_buf: Vec::new(),
            symbols: Symbols::default(),
            id_buf: Vec::new(),
            weights: FastMap::default(),
            bought: FastMap::default(),
            roles: roles(&profiles),
            config: profiles,
            applied: None,
            skipped: 0,
        })
    }

    /// The consent rules (purposes, defaults, Segment categories) this unifier reads and
    /// enforces; [`ConsentRules::default`] unless set here, before the first event.
    pub fn with_consent(mut self, rules: ConsentRules) -> Self {
        self.consent_rules = rules;
        self
    }

    pub fn consent_rules(&self) -> &ConsentRules {
        &self.consent_rules
    }

    /// The pseudonym of identifier `value` of kind `kind` (e.g. `user`, `email`), normalized
    /// the way the rules say; `None` if blocked or malformed.
    pub fn id_key(&self, kind: u8, value: &str) -> Option<IdKey> {
        let rules = self.graph.rules();
        let v = rules.normalize(kind, value)?;
        Some(self.pseudonyms.person_key(rules.kind_name(kind), &v))
    }

    /// The person behind any identifier: `person:N` (a person id), `kind:value` (e.g.
    /// `email:ada@example.com`), or a bare value tried as each kind in priority order.
    pub fn lookup(&self, value: &str) -> Option<PersonId> {
        let rules = self.graph.rules();
        if let Some((prefix, rest)) = value.split_once(':') {
            if prefix == "person" {
                return self.graph.current(PersonId(rest.parse().ok()?));
            }
            if let Some(k) = rules.kind_index(prefix) {
                return self.graph.person_of(&self.id_key(k, rest)?);
            }
        }
        let mut kinds: Vec<u8> = (0..rules.kinds() as u8).collect();
        kinds.sort_by_key(|&k| rules.priority(k));
        kinds
            .into_iter()
            .find_map(|k| self.graph.person_of(&self.id_key(k, value)?))
    }

    /// Records that log position `seq` was seen but holds nothing to apply (an erased person's
    /// event, which can no longer be read).
    pub fn pass(&mut self, seq: u64) {
        if self.applied.is_none_or(|a| seq > a) {
            self.applied = Some(seq);
        }
    }

    /// Applies one stored event. Events must come in log order; one already applied is ignored.
    pub fn apply(&mut self, e: StoredEvent<'_>) -> Result<Option<PersonId>, UnifyError> {
        if self.applied.is_some_and(|a| e.seq <= a) {
            return Ok(None);
        }
        self.applied = Some(e.seq);
        let view = match EventView::parse(e.payload) {
            Ok(v) => v,
            Err(err) => {
                // Durable but unreadable (cannot happen for collector output): counted, not fatal.
                self.skipped += 1;
                return Err(err);
            }
        };
        let ctx = view.context();
        // One identifier buffer for every event (no allocation per event).
        let mut ids = std::mem::take(&mut self.id_buf);
        ids.clear();
        self.identifiers(e.kind, &view, &ctx, &mut ids);
        let by = Provenance {
            seq: e.seq,
            at: e.at,
        };
        let res = self.graph.resolve(&mut ids, by);
        self.id_buf = ids;
        let Some(res) = res else {
            self.skipped += 1;
            return Ok(None);
        };
        let absorbed: Vec<(Option<Box<Profile>>, Option<Journey>)> = res
            .absorbed
            .iter()
            .map(|gone| {
                if let Some(h) = self.consents.remove(gone) {
                    self.consents.entry(res.person).or_default().merge(h);
                }
                (self.profiles.remove(gone), self.journeys.remove(gone))
            })
            .collect();
        let mut choices = std::mem::take(&mut self.choice_buf);
        choices.clear();
        self.consent_rules.choices(
            &view,
            &ctx,
            e.kind == EventKind::Consent,
            e.seq,
            e.at,
            &mut choices,
        );
        if !choices.is_empty() {
            let h = self.consents.entry(res.person).or_default();
            for c in choices.drain(..) {
                h.insert(c);
            }
        }
        self.choice_buf = choices;
        let c = self.contribution(e, &view, &ctx);
        let profile = self.profiles.entry(res.person).or_default();
        let journey = self.journeys.entry(res.person).or_default();
        for (p, j) in absorbed {
            if let Some(p) = p {
                profile.merge(&p, &self.config);
            }
            if let Some(j) = j {
                journey.extend(j);
                journey.sort_unstable();
            }
        }
        // Late events land in the middle; most land at the end.
        let entry = (e.at, e.seq);
        let at = journey.partition_point(|x| *x < entry);
        journey.insert(at, entry);
        profile.apply(&c, &self.config);
        Ok(Some(res.person))
    }

    fn identifiers(
        &self,
        kind: EventKind,
        v: &EventView<'_>,
        ctx: &ContextView<'_>,
        out: &mut Vec<Identifier>,
    ) {
        let rules = self.graph.rules();
        let mut push = |k: Option<u8>, raw: Option<Cow<'_, str>>| {
            if let (Some(k), Some(raw)) = (k, raw)
                && let Some(key) = self.id_key(k, &raw)
            {
                out.push(Identifier { kind: k, key });
            }
        };
        push(rules.kind_for(&IdSource::User), EventView::text(v.user_id));
        push(
            rules.kind_for(&IdSource::Anon),
            EventView::text(v.anonymous_id),
        );
        let device = rules.kind_for(&IdSource::Device);
        if kind == EventKind::Observe {
            push(device, EventView::text(v.device_id));
        }
        push(device, ctx.device.as_ref().and_then(|d| d.id.clone()));
        if kind == EventKind::Alias
            && let Some(prev) = EventView::text(v.previous_id)
        {
            // `previousId` is an earlier user id when one is known, else an anonymous id.
            let user = rules.kind_for(&IdSource::User);
            let known_user = user
                .and_then(|k| self.id_key(k, &prev))
                .is_some_and(|key| self.graph.person_of(&key).is_some());
            let kind = if known_user {
                user
            } else {
                rules.kind_for(&IdSource::Anon)
            };
            push(kind, Some(prev));
        }
        let trait_kinds: Vec<(u8, &str)> = rules.trait_kinds().collect();
        if !trait_kinds.is_empty() {
            for source in [v.traits, ctx.traits] {
                for (k, raw) in object_fields(source) {
                    for &(kind, name) in &trait_kinds {
                        if k == name {
                            push(Some(kind), scalar_text(raw));
                        }
                    }
                }
            }
        }
    }

    fn contribution(
        &mut self,
        e: StoredEvent<'_>,
        v: &EventView<'_>,
        ctx: &ContextView<'_>,
    ) -> Contribution {
        let cfg = &self.config;
        let sym = &mut self.symbols;
        let mut c = Contribution {
            at: e.at,
            weight: 1.0,
            activity: e.kind != EventKind::Observe,
            ..Contribution::default()
        };
        let name: Option<Cow<'_, str>> = match e.kind {
            EventKind::Track => EventView::text(v.event),
            EventKind::Page | EventKind::Screen => Some(match EventView::text(v.name) {
                Some(n) => Cow::Owned(format!("{}: {n}", e.kind.as_str())),
                None => Cow::Borrowed(e.kind.as_str()),
            }),
            other => Some(Cow::Borrowed(other.as_str())),
        };
        if let Some(n) = &name {
            let s = sym.intern(n);
            c.weight = *self
                .weights
                .entry(s)
                .or_insert_with(|| cfg.event_weights.get(n.as_ref()).copied().unwrap_or(1.0));
            c.name = Some(s);
        }
        let channel = ctx
            .channel
            .clone()
            .or_else(|| EventView::text(v.iob_source));
        c.channel = Some(sym.intern(channel.as_deref().unwrap_or("unknown")));
        let enrichment = v.enrichment();
        let device = enrichment
            .user_agent
            .as_ref()
            .and_then(|u| u.device.clone())
            .or_else(|| ctx.device.as_ref().and_then(|d| d.kind.clone()));
        c.device = device.map(|d| sym.intern(&d));
        if cfg.has(Feature::Traits) && matches!(e.kind, EventKind::Identify | EventKind::Group) {
            // Identifier traits (e-mail, phone) are in the graph as pseudonyms; they are kept
            // here too only because profiles are personal data read under a purpose.
            for (k, raw) in object_fields(v.traits) {
                c.traits.push((sym.intern(&k), raw.get().to_string()));
            }
        }
        // One pass over the properties, each key looked up in the configured roles.
        let mut found = PropsFound::default();
        for (k, raw) in object_fields(v.properties) {
            if let Some(&role) = self.roles.get(k.as_ref()) {
                found.take(role, raw);
            }
        }
        fn text<'r>(r: Option<(u8, &'r serde_json::value::RawValue)>) -> Option<Cow<'r, str>> {
            r.and_then(|(_, raw)| scalar_text(raw))
        }
        c.item = text(found.item).map(|i| sym.intern(&i));
        c.category = text(found.category).map(|i| sym.intern(&i));
        let num = |r: Option<&serde_json::value::RawValue>| r.and_then(number);
        let bought = c.name.is_some_and(|n| {
            *self.bought.entry(n).or_insert_with(|| {
                let n = sym.name(n).to_ascii_lowercase();
                n.contains("order") || n.contains("purchase") || n.contains("checkout")
            })
        });
        let quantity = num(found.quantity);
        c.monetary = num(found.revenue).or_else(|| num(found.total)).or_else(|| {
            // A price alone is a view, not a purchase, unless the event says it was bought.
            let price = num(found.price)?;
            bought.then(|| price * quantity.unwrap_or(1.0))
        });
        // Lines of one order (an invoice) count as one order.
        c.order = text(found.order).map(|o| order_hash(&o));
        if bought || c.monetary.is_some() {
            match quantity {
                // A return or cancellation: no affinity for what was given back.
                Some(q) if q <= 0.0 => c.weight = 0.0,
                // More units bought, more affinity (bounded: a bulk order is not 1000 views).
                Some(q) => c.weight *= q.min(100.0),
                None => {}
            }
        }
        if e.kind == EventKind::Observe
            && let (Some(m), Some(val)) = (EventView::text(v.metric), v.value.and_then(number))
        {
            c.reading = Some((sym.intern(&m), val));
        }
        if let Some(s) = enrichment.sentiment {
            c.sentiment = s.into_iter().map(|(k, v)| (sym.intern(&k), v)).collect();
        }
        c
    }

    pub fn profile(&self, p: PersonId) -> Option<&Profile> {
        self.profiles.get(&self.graph.current(p)?).map(|b| &**b)
    }

    /// Bytes held by the journey index.
    pub fn journey_bytes(&self) -> usize {
        self.journeys.values().map(|j| j.capacity() * 16 + 48).sum()
    }

    pub fn graph(&self) -> &IdentityGraph {
        &self.graph
    }

    pub fn persons(&self) -> usize {
        self.profiles.len()
    }

    pub fn applied(&self) -> Option<u64> {
        self.applied
    }

    /// Events that carried no usable identifier or could not be read.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Approximate bytes held by profiles (not the graph or symbols).
    pub fn profile_bytes(&self) -> usize {
        self.profiles.values().map(|p| p.memory_bytes() + 8).sum()
    }

    /// Every profile, for comparisons (rebuild equivalence) and snapshots: not consent-filtered,
    /// so only the engine's own jobs use it.
    pub fn profiles(&self) -> impl Iterator<Item = (PersonId, &Profile)> {
        self.profiles.iter().map(|(p, pr)| (*p, &**pr))
    }

    pub fn config(&self) -> &ProfileConfig {
        &self.config
    }

    pub(crate) fn consent_histories(&self) -> impl Iterator<Item = (PersonId, &ConsentHistory)> {
        self.consents.iter().map(|(p, h)| (*p, h))
    }

    pub(crate) fn journeys(&self) -> impl Iterator<Item = (PersonId, &[(i64, u64)])> {
        self.journeys.iter().map(|(p, j)| (*p, j.as_slice()))
    }

    pub(crate) fn replace_state(
        &mut self,
        graph: IdentityGraph,
        symbols: Symbols,
        profiles: Vec<(PersonId, Profile)>,
        journeys: Vec<(PersonId, Journey)>,
        consents: Vec<(PersonId, ConsentHistory)>,
        (applied, skipped): (Option<u64>, u64),
    ) {
        self.graph = graph;
        self.symbols = symbols;
        self.weights.clear();
        self.bought.clear();
        self.profiles = profiles
            .into_iter()
            .map(|(p, x)| (p, Box::new(x)))
            .collect();
        self.journeys = journeys.into_iter().collect();
        self.consents = consents.into_iter().collect();
        self.applied = applied;
        self.skipped = skipped;
    }

    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }
}
