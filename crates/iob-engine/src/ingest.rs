//! Ingestion: submissions (HTTP bodies), imports and quarantine replay, all through the same
//! path: collector → person key → group-committed append; rejections → quarantine.
//!
//! Must never acknowledge an event before its record is durable, never drop an event without
//! either storing it, counting it as a duplicate, or quarantining it with its reason, and never
//! keep a write key in a stored event.

use std::net::IpAddr;

use iob_collect::{
    CanonicalEvent, CanonicalEvents, CollectOptions, Collector, Received, Rejection, SourceField,
    TrackingPlan, Unplanned as PlanPolicy,
};
use iob_govern::Pseudonymizer;
use iob_store::{AppendOutcome, Codec, NewQuarantined, NewRecord, Payload, RecordBatch};
use iob_types::{Event, EventKind, PersonKey, Purpose};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::health::consent_rejection;
use crate::{Config, Engine, EngineError, Scope, Unplanned};

/// Which collector endpoint a body arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/track`, `/v1/identify`, ...: one event of this type.
    Single(EventKind),
    /// `/v1/batch` (and `/v1/import`): `{"batch": [...]}`.
    Batch,
}

impl Endpoint {
    fn name(self) -> String {
        match self {
            Endpoint::Single(k) => k.as_str().to_string(),
            Endpoint::Batch => "batch".into(),
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Endpoint> {
        if name == "batch" {
            Some(Endpoint::Batch)
        } else {
            EventKind::parse(name).ok().map(Endpoint::Single)
        }
    }
}

/// One request to the collector.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub endpoint: Endpoint,
    pub body: &'a [u8],
    /// The write key from HTTP Basic auth, if any (else `writeKey` in the body is used).
    pub key: Option<&'a str>,
    pub ip: Option<IpAddr>,
}

/// What happened to a submission. Every event is in exactly one of the three counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Receipt {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<RejectedItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RejectedItem {
    #[serde(flatten)]
    pub rejection: Rejection,
    /// Where to find it: `iob quarantine list`.
    pub quarantine_id: u64,
}

pub(crate) fn build_collector(
    config: &Config,
    purposes: &[Purpose],
) -> Result<Collector, EngineError> {
    let plan = TrackingPlan::new(
        config.tracking_plan.events.clone(),
        match config.tracking_plan.unplanned {
            Unplanned::Allow => PlanPolicy::Allow,
            Unplanned::Reject => PlanPolicy::Reject,
        },
    )
    .map_err(|e| EngineError::Config {
        key: "tracking_plan".into(),
        reason: e.to_string(),
    })?;
    Ok(Collector::new(CollectOptions {
        max_event_bytes: config.collect.max_event_bytes,
        // The server's body limit already bounds a batch; don't reject below it.
        max_batch_bytes: config.server.max_body_bytes,
        purposes: purposes.to_vec(),
        plan,
        parse_user_agent: config.collect.parse_user_agent,
        sentiment_properties: config.collect.sentiment_properties.clone(),
    }))
}

/// The reason stored with a quarantined event: enough to list it and to replay it.
/// A rejected batch item is kept as its own bytes, so it is replayed as a single event with its
/// own `type` (`batch_item`), not as a batch body.
fn reason(endpoint: Endpoint, r: &Rejection) -> serde_json::Value {
    let endpoint = match (endpoint, r.index) {
        (Endpoint::Batch, Some(_)) => "batch_item".to_string(),
        _ => endpoint.name(),
    };
    serde_json::json!({ "endpoint": endpoint, "rejection": r })
}

/// The last person key derived in a request: a client's batch is usually one person's events,
/// and the HMAC is the costliest step per event after parsing.
#[derive(Default)]
pub(crate) struct PersonMemo {
    last: Option<(&'static str, String, PersonKey)>,
}

impl PersonMemo {
    fn person_key(&mut self, p: &Pseudonymizer, kind: &'static str, id: &str) -> PersonKey {
        match &mut self.last {
            Some((k, i, key)) if *k == kind && i == id => *key,
            last => {
                let key = p.person_key(kind, id);
                match last {
                    Some((k, i, old)) => {
                        *k = kind;
                        i.clear();
                        i.push_str(id);
                        *old = key;
                    }
                    None => *last = Some((kind, id.to_owned(), key)),
                }
                key
            }
        }
    }
}

/// Seals quarantined bodies that name a person under that person key's data key.
pub(crate) fn seal_quarantined(
    privacy: &crate::privacy::Privacy,
    pseudonyms: &Pseudonymizer,
    mut items: Vec<NewQuarantined>,
) -> Result<Vec<NewQuarantined>, EngineError> {
    for q in &mut items {
        if q.person.is_none() {
            q.person = crate::privacy::raw_person(pseudonyms, &q.payload);
        }
        privacy.seal_quarantined(q)?;
    }
    Ok(items)
}

/// `xxh3_128(source, NUL, messageId)`: the store's dedup key. Hashed from a stack buffer (ids
/// are short) to keep an allocation off the per-event path.
fn dedup_key(source: &str, message_id: &str) -> [u8; 16] {
    let n = source.len() + 1 + message_id.len();
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap[..]
    };
    buf[..source.len()].copy_from_slice(source.as_bytes());
    buf[source.len()] = 0;
    buf[source.len() + 1..].copy_from_slice(message_id.as_bytes());
    xxh3_128(buf).to_le_bytes()
}

/// `writeKey` from the body, for the rare case where the body fails validation and there was
/// no Basic auth: we must know who sent it before keeping it.
fn body_write_key(body: &[u8]) -> Option<String> {
    let fields = iob_types::split_top_level(body).ok()?;
    let (_, raw) = fields.into_iter().find(|(k, _)| k == "writeKey")?;
    serde_json::from_str::<String>(raw.get()).ok()
}

impl Engine {
    /// The source a submission is attributed to: `trusted` (a connection the server vouches
    /// for, e.g. its MQTT subscription), else the source of the presented write key.
    fn sender(&self, trusted: Option<&str>, key: Option<&str>) -> Result<String, EngineError> {
        match trusted {
            Some(source) => Ok(source.to_string()),
            None => self.source_for(key),
        }
    }

    fn source_for(&self, key: Option<&str>) -> Result<String, EngineError> {
        let key = key.ok_or(EngineError::MissingKey)?;
        match self.authenticate(key)? {
            Scope::Write { source } => Ok(source),
            _ => Err(EngineError::Forbidden {
                action: "send events (use a source's write key)",
            }),
        }
    }

    /// The source of a submission: `known` (a trusted sender or a Basic-auth key, settled
    /// before parsing), else the source of the write key the body names (`body_key` is only
    /// asked then: for a rejected body it reads the body again).
    fn source_of<K: AsRef<str>>(
        &self,
        known: Option<String>,
        body_key: impl FnOnce() -> Option<K>,
    ) -> Result<String, EngineError> {
        match known {
            Some(source) => Ok(source),
            None => self.source_for(body_key().as_ref().map(AsRef::as_ref)),
        }
    }

    /// A body rejected as a whole: it is kept only if its sender authenticates (Basic auth or
    /// the body's `writeKey`), so unauthenticated junk never fills the quarantine.
    fn rejected_whole<T>(
        &self,
        known: Option<String>,
        sub: &Submission<'_>,
        r: Rejection,
        items: &mut Vec<(Result<T, Rejection>, Vec<u8>)>,
    ) -> Result<String, EngineError> {
        let source = self.source_of(known, || body_write_key(sub.body))?;
        items.push((Err(r), sub.body.to_vec()));
        Ok(source)
    }

    pub(crate) fn record(&self, e: &Event) -> NewRecord {
        let (kind, id) = e
            .routing_id()
            .expect("the collector rejects events without an identifier");
        NewRecord {
            person: self.pseudonyms.person_key(kind, id),
            kind: e.kind,
            event_time: e.timestamp,
            received_at: e.received_at,
            dedup_key: Some(dedup_key(e.source.as_deref().unwrap_or(""), &e.message_id)),
            codec: Codec::Json,
            payload: e.to_json(),
        }
    }

    /// [`Engine::record`] of an event the collector wrote in canonical form: the same record,
    /// without building an `Event` or serializing it again.
    pub(crate) fn canonical_record(
        &self,
        e: CanonicalEvent<'_>,
        source: &str,
        field: &SourceField,
        memo: &mut PersonMemo,
    ) -> NewRecord {
        self.canonical_head(&e, source, memo)
            .with_payload(e.to_json(field))
    }

    /// [`Engine::canonical_record`] without its payload.
    fn canonical_head(
        &self,
        e: &CanonicalEvent<'_>,
        source: &str,
        memo: &mut PersonMemo,
    ) -> NewRecord<()> {
        let (kind, id) = e
            .routing_id
            .expect("the collector rejects events without an identifier");
        NewRecord {
            person: memo.person_key(&self.pseudonyms, kind, id),
            kind: e.kind,
            event_time: e.timestamp,
            received_at: e.received_at,
            dedup_key: Some(dedup_key(source, e.message_id)),
            codec: Codec::Json,
            payload: (),
        }
    }

    pub(crate) async fn append(
        &self,
        records: impl Into<RecordBatch>,
    ) -> Result<Vec<AppendOutcome>, EngineError> {
        let records = records.into();
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store.append_batch_with(
            records,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let outcomes = rx.await.map_err(|_| EngineError::ShuttingDown)??;
        self.unify.notify();
        Ok(outcomes)
    }

    async fn quarantine(&self, items: Vec<NewQuarantined>) -> Result<Vec<u64>, EngineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.store.clone();
        let privacy = self.privacy.clone();
        let pseudonyms = self.pseudonyms.clone();
        tokio::task::spawn_blocking(move || {
            let items = seal_quarantined(&privacy, &pseudonyms, items)?;
            Ok(store.quarantine().append(items)?)
        })
        .await
        .map_err(|_| EngineError::ShuttingDown)?
    }

    /// Validates, authenticates and durably stores one collector request.
    ///
    /// Returns `Err(Rejected)` when nothing in the request was usable (the rejection is in the
    /// quarantine); a batch with some valid events returns a receipt listing the rejected ones.
    pub async fn submit(&self, sub: Submission<'_>) -> Result<Receipt, EngineError> {
        self.submit_as(None, sub).await
    }

    /// [`Engine::submit`] for a sender the caller has already authenticated by other means
    /// than a write key (the server's MQTT subscription: messages are trusted by their broker
    /// connection). `sub.key` and a body `writeKey` are ignored; events are attributed to
    /// `source`. Validation, quarantine, deduplication and durability are those of `submit`.
    pub async fn submit_from(
        &self,
        source: &str,
        sub: Submission<'_>,
    ) -> Result<Receipt, EngineError> {
        self.submit_as(Some(source), sub).await
    }

    /// Quarantines bytes that a trusted sender (see [`Engine::submit_from`]) could not even
    /// turn into a submission (an MQTT payload that is neither a number nor JSON, a topic that
    /// names no device), with the rejection naming the field. Returns once it is durable.
    pub async fn quarantine_from(
        &self,
        source: &str,
        endpoint: &str,
        rejection: Rejection,
        raw: Vec<u8>,
    ) -> Result<RejectedItem, EngineError> {
        let ids = self
            .quarantine(vec![NewQuarantined {
                received_at: self.clock.now(),
                source: Some(source.to_string()),
                person: None,
                reason: serde_json::json!({ "endpoint": endpoint, "rejection": &rejection }),
                codec: Codec::Json,
                payload: raw,
            }])
            .await?;
        let quarantine_id = ids.first().copied().ok_or(EngineError::ShuttingDown)?;
        Ok(RejectedItem {
            rejection,
            quarantine_id,
        })
    }

    async fn submit_as(
        &self,
        trusted: Option<&str>,
        sub: Submission<'_>,
    ) -> Result<Receipt, EngineError> {
        let rx = Received {
            source: None,
            received_at: self.clock.now(),
            ip: sub.ip,
        };
        // The source, when known before parsing (a trusted sender, Basic auth: the body's
        // `writeKey` does not override it), is written into each event as it is parsed, and
        // the parsed buffer goes to the store whole.
        let known = (trusted.is_some() || sub.key.is_some())
            .then(|| self.sender(trusted, sub.key))
            .transpose()?;
        // Accepted events go straight to canonical JSON in `canon`; items are (index into
        // `canon` or rejection, raw bytes for the quarantine).
        let inline = known.is_some();
        let mut canon = match &known {
            Some(source) => CanonicalEvents::for_source(sub.body.len(), source),
            None => CanonicalEvents::for_body(sub.body.len()),
        };
        let mut items: Vec<(Result<usize, Rejection>, Vec<u8>)> = Vec::new();
        let source = match sub.endpoint {
            Endpoint::Single(kind) => {
                match self
                    .collector
                    .parse_event_canonical(sub.body, Some(kind), &rx, &mut canon)
                {
                    Ok(p) => {
                        let source = self.source_of(known, || p.write_key.as_deref())?;
                        items.push((Ok(p.event), Vec::new()));
                        source
                    }
                    Err(r) => self.rejected_whole(known, &sub, r, &mut items)?,
                }
            }
            Endpoint::Batch => match self
                .collector
                .parse_batch_canonical(sub.body, &rx, &mut canon)
            {
                Ok(b) => {
                    let source = self.source_of(known, || b.write_key.as_deref())?;
                    items.reserve(b.items.len());
                    for it in b.items {
                        let raw = if it.result.is_err() {
                            it.raw.as_bytes().to_vec()
                        } else {
                            Vec::new()
                        };
                        items.push((it.result, raw));
                    }
                    source
                }
                Err(r) => self.rejected_whole(known, &sub, r, &mut items)?,
            },
        };

        let field = SourceField::new(Some(&source));
        let mut memo = PersonMemo::default();
        // Each record's payload is a span of `canon`'s buffer when the source was written in
        // place, else its JSON with the source spliced in.
        let mut records = Vec::with_capacity(canon.len());
        // Item index of each record (for naming a refused one in the batch).
        let mut index_of = Vec::new();
        let mut rejected = Vec::new();
        for (n, (result, raw)) in items.into_iter().enumerate() {
            match result {
                Ok(i) => {
                    let e = canon.get(i);
                    let payload = match e.span.clone() {
                        Some(span) => Payload::Shared(span),
                        None => Payload::Owned(e.to_json(&field)),
                    };
                    records.push(
                        self.canonical_head(&e, &source, &mut memo)
                            .with_payload(payload),
                    );
                    index_of.push(n);
                }
                Err(r) => rejected.push((r, raw, None)),
            }
        }
        let shared = if inline {
            canon.into_json()
        } else {
            Vec::new()
        };
        let mut records = RecordBatch::new(shared, records);
        let batch = sub.endpoint == Endpoint::Batch;
        for (i, r) in self.gate_health(&mut records)? {
            let index = batch.then_some(index_of[i]);
            rejected.push((consent_rejection(index), r.payload, Some(r.person)));
        }
        let quarantined: Vec<NewQuarantined> = rejected
            .iter()
            .map(|(r, raw, person)| NewQuarantined {
                received_at: rx.received_at,
                source: Some(source.clone()),
                person: *person,
                reason: reason(sub.endpoint, r),
                codec: Codec::Json,
                payload: raw.clone(),
            })
            .collect();
        let (outcomes, ids) = tokio::try_join!(self.append(records), self.quarantine(quarantined))?;
        let mut receipt = Receipt::default();
        for o in outcomes {
            match o {
                AppendOutcome::Stored(_) => receipt.accepted += 1,
                AppendOutcome::Duplicate => receipt.duplicates += 1,
            }
        }
        receipt.rejected = rejected
            .into_iter()
            .zip(ids)
            .map(|((rejection, _, _), quarantine_id)| RejectedItem {
                rejection,
                quarantine_id,
            })
            .collect();
        // A single event, or a batch body that failed as a whole, is answered with the
        // rejection itself; a batch reports each rejected item in the receipt.
        let whole = sub.endpoint != Endpoint::Batch
            || receipt
                .rejected
                .first()
                .is_some_and(|r| r.rejection.index.is_none());
        if whole && let Some(item) = receipt.rejected.pop() {
            return Err(EngineError::Rejected(item));
        }
        Ok(receipt)
    }
}
