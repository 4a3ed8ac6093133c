//! Ingestion: submissions (HTTP bodies), imports and quarantine replay, all through the same
//! path: collector → person key → group-committed append; rejections → quarantine.
//!
//! Must never acknowledge an event before its record is durable, never drop an event without
//! either storing it, counting it as a duplicate, or quarantining it with its reason, and never
//! keep a write key in a stored event.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;

use iob_collect::import::ImportItem;
use iob_collect::{
    CanonicalEvent, CanonicalEvents, CollectError, CollectOptions, Collector, Received, Rejection,
    SourceField, TrackingPlan, Unplanned as PlanPolicy,
};
use iob_govern::Pseudonymizer;
use iob_store::{AppendOutcome, Codec, NewQuarantined, NewRecord, Resolution};
use iob_types::{Event, EventKind, PersonKey, Purpose};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::{Config, Engine, EngineError, Permit, Scope, Unplanned};

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

    fn parse(name: &str) -> Option<Endpoint> {
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

/// Totals of an import.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub read: u64,
    pub imported: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub bytes: u64,
}

/// Parses `chunk` in order, its second half on a scoped thread.
fn parse_on_two_threads<T: Send>(
    mut chunk: Vec<T>,
    parse: &(impl Fn(T) -> ImportItem + Sync),
) -> Vec<ImportItem> {
    let second = chunk.split_off(chunk.len() / 2);
    std::thread::scope(|scope| {
        let tail = scope.spawn(|| second.into_iter().map(parse).collect::<Vec<_>>());
        let mut items: Vec<ImportItem> = chunk.into_iter().map(parse).collect();
        // A panic in a parser is a bug: surface it rather than lose the chunk.
        items.extend(tail.join().expect("import parser thread panicked"));
        items
    })
}

/// The import's running totals, written by its worker and read for progress.
#[derive(Default)]
struct ImportCounts {
    imported: AtomicU64,
    duplicates: AtomicU64,
    quarantined: AtomicU64,
}

impl ImportCounts {
    fn fill(&self, s: &mut ImportSummary) {
        s.imported = self.imported.load(Relaxed);
        s.duplicates = self.duplicates.load(Relaxed);
        s.quarantined = self.quarantined.load(Relaxed);
    }
}

/// Totals of a quarantine replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub replayed: usize,
    pub duplicates: usize,
    /// Entries that still fail, with today's reason.
    pub still_rejected: Vec<(u64, Rejection)>,
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
struct PersonMemo {
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

/// The identifiers and metric of a stored `observe` payload, for the health gate.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadingIds {
    metric: Option<String>,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    device_id: Option<String>,
}

/// The rejection of a health reading without health consent.
fn consent_rejection(index: Option<usize>) -> Rejection {
    Rejection {
        code: iob_collect::RejectCode::ConsentRequired,
        field: "metric".into(),
        message: "is a health metric, and the person has not given health consent: the reading is kept sealed in the quarantine (replay it after a `consent` event grants `health`)".into(),
        index,
    }
}

/// Seals quarantined bodies that name a person under that person key's data key.
fn seal_quarantined(
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

    /// A body rejected as a whole: it is kept only if its sender authenticates (Basic auth or
    /// the body's `writeKey`), so unauthenticated junk never fills the quarantine.
    fn rejected_whole<T>(
        &self,
        trusted: Option<&str>,
        sub: &Submission<'_>,
        r: Rejection,
        items: &mut Vec<(Result<T, Rejection>, Vec<u8>)>,
    ) -> Result<String, EngineError> {
        let source = match trusted {
            Some(_) => self.sender(trusted, None)?,
            None => self.source_for(sub.key.or(body_write_key(sub.body).as_deref()))?,
        };
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
    fn canonical_record(
        &self,
        e: CanonicalEvent<'_>,
        source: &str,
        field: &SourceField,
        memo: &mut PersonMemo,
    ) -> NewRecord {
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
            payload: e.to_json(field),
        }
    }

    async fn append(&self, records: Vec<NewRecord>) -> Result<Vec<AppendOutcome>, EngineError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store.append_with(
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

    /// Takes out of `records` the `observe` readings of health metrics whose person has not
    /// given health consent (after applying the durable log), each with its rejection; `at`
    /// maps a record to its item index in the request. Health readings are never stored
    /// without consent, and never kept in plaintext when refused (the quarantine seals them).
    pub(crate) fn gate_health(
        &self,
        records: &mut Vec<NewRecord>,
    ) -> Result<Vec<(usize, NewRecord)>, EngineError> {
        let health = |r: &NewRecord| {
            r.kind == EventKind::Observe && {
                let v: ReadingIds = serde_json::from_slice(&r.payload).unwrap_or_default();
                v.metric.is_some_and(|m| self.privacy.is_health(&m))
            }
        };
        if !records.iter().any(health) {
            return Ok(Vec::new());
        }
        self.unify.catch_up()?;
        let u = self.unify.unifier.lock();
        let purpose = Purpose::new(Purpose::HEALTH).expect("valid");
        let mut refused = Vec::new();
        let mut kept = Vec::with_capacity(records.len());
        for (i, r) in std::mem::take(records).into_iter().enumerate() {
            if !health(&r) {
                kept.push(r);
                continue;
            }
            let v: ReadingIds = serde_json::from_slice(&r.payload).unwrap_or_default();
            let person = [
                ("user", v.user_id),
                ("anon", v.anonymous_id),
                ("device", v.device_id),
            ]
            .into_iter()
            .find_map(|(kind, id)| u.lookup(&format!("{kind}:{}", id?)));
            let allowed = person.is_some_and(|p| u.decide(p, &purpose).allowed());
            if allowed {
                kept.push(r);
            } else {
                refused.push((i, r));
            }
        }
        *records = kept;
        Ok(refused)
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
        // Accepted events go straight to canonical JSON in `canon`; items are (index into
        // `canon` or rejection, raw bytes for the quarantine).
        let mut canon = CanonicalEvents::for_body(sub.body.len());
        let mut items: Vec<(Result<usize, Rejection>, Vec<u8>)> = Vec::new();
        let source = match sub.endpoint {
            Endpoint::Single(kind) => {
                match self
                    .collector
                    .parse_event_canonical(sub.body, Some(kind), &rx, &mut canon)
                {
                    Ok(p) => {
                        let source = self.sender(trusted, sub.key.or(p.write_key.as_deref()))?;
                        items.push((Ok(p.event), Vec::new()));
                        source
                    }
                    Err(r) => self.rejected_whole(trusted, &sub, r, &mut items)?,
                }
            }
            Endpoint::Batch => match self
                .collector
                .parse_batch_canonical(sub.body, &rx, &mut canon)
            {
                Ok(b) => {
                    let source = self.sender(trusted, sub.key.or(b.write_key.as_deref()))?;
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
                Err(r) => self.rejected_whole(trusted, &sub, r, &mut items)?,
            },
        };

        let field = SourceField::new(Some(&source));
        let mut memo = PersonMemo::default();
        let mut records = Vec::with_capacity(canon.len());
        // Item index of each record (for naming a refused one in the batch).
        let mut index_of = Vec::new();
        let mut rejected = Vec::new();
        for (n, (result, raw)) in items.into_iter().enumerate() {
            match result {
                Ok(i) => {
                    records.push(self.canonical_record(canon.get(i), &source, &field, &mut memo));
                    index_of.push(n);
                }
                Err(r) => rejected.push((r, raw, None)),
            }
        }
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

    /// Imports from a reader that hands out raw lines or rows (`JsonLines::next_raw`,
    /// `CsvImport::next_raw`) and a `Sync` parser, as `source`. Each chunk is parsed on two
    /// threads in file order (parsing is the slowest stage); a worker builds records (canonical
    /// JSON, person key, dedup key), quarantines rejections and keeps two group commits in
    /// flight. `progress` is called on the calling thread after each chunk.
    pub fn import<T: Send>(
        &self,
        raw: impl Iterator<Item = Result<T, CollectError>>,
        parse: impl Fn(T) -> ImportItem + Sync,
        source: &str,
        mut progress: impl FnMut(&ImportSummary),
    ) -> Result<ImportSummary, EngineError> {
        const CHUNK: usize = 8192;
        let _profiles_wait = self.unify.pause();
        let counts = ImportCounts::default();
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<ImportItem>>(2);
        let mut summary = ImportSummary::default();
        let mut read_error = None;
        let stored = std::thread::scope(|scope| {
            let worker = scope.spawn(|| self.store_chunks(chunk_rx, source, &counts));
            let mut raw = raw.peekable();
            while raw.peek().is_some() && read_error.is_none() {
                let mut unparsed = Vec::with_capacity(CHUNK);
                for r in raw.by_ref().take(CHUNK) {
                    match r {
                        Ok(r) => unparsed.push(r),
                        Err(e) => {
                            read_error = Some(e);
                            break;
                        }
                    }
                }
                let chunk = parse_on_two_threads(unparsed, &parse);
                summary.read += chunk.len() as u64;
                summary.bytes += chunk.iter().map(|i| i.raw.len() as u64 + 1).sum::<u64>();
                // A send fails only when the worker stopped on an error: it is returned below.
                if chunk_tx.send(chunk).is_err() {
                    break;
                }
                counts.fill(&mut summary);
                progress(&summary);
            }
            drop(chunk_tx);
            worker.join().map_err(|_| EngineError::ShuttingDown)?
        });
        stored?;
        counts.fill(&mut summary);
        progress(&summary);
        // Everything read before the failure is stored; say where reading stopped.
        if let Some(e) = read_error {
            return Err(EngineError::Import {
                after_rows: summary.read,
                source: e,
            });
        }
        Ok(summary)
    }

    /// The import's second stage: chunks of parsed items → records and quarantine entries →
    /// durable appends (two in flight, so building the next chunk overlaps the fsync).
    fn store_chunks(
        &self,
        chunks: mpsc::Receiver<Vec<ImportItem>>,
        source: &str,
        counts: &ImportCounts,
    ) -> Result<(), EngineError> {
        const IN_FLIGHT: usize = 2;
        let (tx, rx) = mpsc::channel::<Result<Vec<AppendOutcome>, iob_store::StoreError>>();
        let mut in_flight = 0usize;
        let received_at = self.clock.now();
        let settle =
            |r: Result<Vec<AppendOutcome>, iob_store::StoreError>| -> Result<(), EngineError> {
                for o in r? {
                    match o {
                        AppendOutcome::Stored(_) => counts.imported.fetch_add(1, Relaxed),
                        AppendOutcome::Duplicate => counts.duplicates.fetch_add(1, Relaxed),
                    };
                }
                Ok(())
            };
        for chunk in chunks {
            let mut records = Vec::with_capacity(chunk.len());
            let mut quarantine = Vec::new();
            for item in chunk {
                match item.result {
                    Ok(mut e) => {
                        e.source = Some(source.to_string());
                        records.push(self.record(&e));
                    }
                    Err(mut r) => {
                        r.field = format!("line {}: {}", item.line, r.field);
                        quarantine.push(NewQuarantined {
                            received_at,
                            source: Some(source.to_string()),
                            person: None,
                            reason: serde_json::json!({ "endpoint": "import", "line": item.line, "rejection": r }),
                            codec: Codec::Json,
                            payload: item.raw,
                        });
                    }
                }
            }
            for (_, r) in self.gate_health(&mut records)? {
                quarantine.push(NewQuarantined {
                    received_at,
                    source: Some(source.to_string()),
                    person: Some(r.person),
                    reason: serde_json::json!({ "endpoint": "import", "rejection": consent_rejection(None) }),
                    codec: Codec::Json,
                    payload: r.payload,
                });
            }
            if !quarantine.is_empty() {
                let quarantine = seal_quarantined(&self.privacy, &self.pseudonyms, quarantine)?;
                let n = self.store.quarantine().append(quarantine)?.len();
                counts.quarantined.fetch_add(n as u64, Relaxed);
            }
            if in_flight == IN_FLIGHT {
                settle(rx.recv().map_err(|_| EngineError::ShuttingDown)?)?;
                in_flight -= 1;
            }
            let tx = tx.clone();
            self.store.append_with(
                records,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
            in_flight += 1;
        }
        while in_flight > 0 {
            settle(rx.recv().map_err(|_| EngineError::ShuttingDown)?)?;
            in_flight -= 1;
        }
        self.unify.notify();
        Ok(())
    }

    /// Re-validates quarantined events against today's tracking plan and stores those that now
    /// pass (`ids = None`: every open entry). Entries that still fail stay open.
    pub async fn replay_quarantine(
        &self,
        permit: &Permit,
        ids: Option<&[u64]>,
    ) -> Result<ReplaySummary, EngineError> {
        let open = self.store.quarantine().list(permit, false, usize::MAX)?;
        let mut summary = ReplaySummary::default();
        let mut records = Vec::new();
        let mut replayed_ids = Vec::new();
        for mut entry in open {
            if ids.is_some_and(|ids| !ids.contains(&entry.id)) {
                continue;
            }
            if let Some(person) = entry.person {
                match self.privacy.open(0, &person, entry.codec, &entry.payload)? {
                    Some(body) => entry.payload = body.into_owned(),
                    // The person was erased: nothing left to replay.
                    None => continue,
                }
            }
            let endpoint = entry.reason["endpoint"].as_str().unwrap_or("import");
            let rx = Received {
                source: entry.source.as_deref(),
                received_at: entry.received_at,
                ip: None,
            };
            let mut parsed: Vec<Result<Event, Rejection>> = Vec::new();
            match Endpoint::parse(endpoint) {
                Some(Endpoint::Batch) => match self.collector.parse_batch(&entry.payload, &rx) {
                    Ok(b) => parsed.extend(b.items.into_iter().map(|i| i.result)),
                    Err(r) => parsed.push(Err(r)),
                },
                Some(Endpoint::Single(kind)) => parsed.push(
                    self.collector
                        .parse_event(&entry.payload, Some(kind), &rx)
                        .map(|p| p.event),
                ),
                // Import lines and batch items carry their own `type`.
                None => parsed.push(
                    self.collector
                        .parse_event(&entry.payload, None, &rx)
                        .map(|p| p.event),
                ),
            }
            if let Some(Err(r)) = parsed.iter().find(|p| p.is_err()) {
                summary.still_rejected.push((entry.id, r.clone()));
                continue;
            }
            let mut these: Vec<NewRecord> = parsed
                .into_iter()
                .flatten()
                .map(|mut e| {
                    e.source = entry.source.clone();
                    self.record(&e)
                })
                .collect();
            if !self.gate_health(&mut these)?.is_empty() {
                summary
                    .still_rejected
                    .push((entry.id, consent_rejection(None)));
                continue;
            }
            records.extend(these);
            replayed_ids.push(entry.id);
        }
        for o in self.append(records).await? {
            match o {
                AppendOutcome::Stored(_) => summary.replayed += 1,
                AppendOutcome::Duplicate => summary.duplicates += 1,
            }
        }
        if !replayed_ids.is_empty() {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                store
                    .quarantine()
                    .resolve(&replayed_ids, Resolution::Replayed)
            })
            .await
            .map_err(|_| EngineError::ShuttingDown)??;
        }
        Ok(summary)
    }
}
