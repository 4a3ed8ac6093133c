//! Bulk paths into the store: imports (JSON Lines, CSV: parsed on two threads, stored with two
//! group commits in flight) and the replay of quarantined events after a tracking-plan fix or
//! a consent. Both go through the same validation, health gate and sealing as submissions.
//!
//! Must never report an imported row before it is durable, and never lose a row silently: each
//! is stored, a duplicate, or quarantined with its reason.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;

use iob_collect::import::{ImportItem, JsonLines, RawLine};
use iob_collect::{CanonicalEvents, CollectError, Received, Rejection, SourceField};
use iob_store::{AppendOutcome, Codec, NewQuarantined, NewRecord, RecordBatch, Resolution};
use iob_types::Event;
use serde::Serialize;

use crate::health::consent_rejection;
use crate::ingest::{Endpoint, PersonMemo, seal_quarantined};
use crate::{Engine, EngineError, Permit};

/// Totals of an import.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub read: u64,
    pub imported: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub bytes: u64,
}

/// A line or row ready for the store: its record, or its rejection (with the raw bytes the
/// quarantine keeps).
pub(crate) enum Prepared {
    Record(NewRecord),
    Rejected {
        line: u64,
        raw: Vec<u8>,
        rejection: Rejection,
    },
}

/// Parses and prepares `chunk` in order, its second half on a scoped thread; also returns the
/// bytes of input it covered.
fn prepare_on_two_threads<T: Send>(
    mut chunk: Vec<T>,
    prepare: &(impl Fn(Vec<T>) -> (Vec<Prepared>, u64) + Sync),
) -> (Vec<Prepared>, u64) {
    let second = chunk.split_off(chunk.len() / 2);
    std::thread::scope(|scope| {
        let tail = scope.spawn(|| prepare(second));
        let (mut items, mut bytes) = prepare(chunk);
        // A panic in a parser is a bug: surface it rather than lose the chunk.
        let (more, b) = tail.join().expect("import parser thread panicked");
        items.extend(more);
        bytes += b;
        (items, bytes)
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

impl Engine {
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
        progress: impl FnMut(&ImportSummary),
    ) -> Result<ImportSummary, EngineError> {
        let prepare = |items: Vec<T>| {
            let mut bytes = 0;
            let out = items
                .into_iter()
                .map(|t| {
                    let item = parse(t);
                    bytes += item.raw.len() as u64 + 1;
                    match item.result {
                        Ok(mut e) => {
                            e.source = Some(source.to_string());
                            Prepared::Record(self.record(&e))
                        }
                        Err(rejection) => Prepared::Rejected {
                            line: item.line,
                            raw: item.raw,
                            rejection,
                        },
                    }
                })
                .collect();
            (out, bytes)
        };
        self.run_import(raw, prepare, source, progress)
    }

    /// [`Engine::import`] of JSON Lines through the collector's canonical path: each line is
    /// validated straight into canonical JSON (no `Event` is built and serialized again), and
    /// its record is built on the parsing threads. Same validation, derived ids, rejections
    /// and stored bytes as `import` with `JsonLineParser::parse` (tested byte for byte).
    pub fn import_json_lines<R: std::io::BufRead>(
        &self,
        mut lines: JsonLines<'_, '_, R>,
        source: &str,
        progress: impl FnMut(&ImportSummary),
    ) -> Result<ImportSummary, EngineError> {
        let parser = lines.parser();
        let field = SourceField::new(Some(source));
        let prepare = |raws: Vec<RawLine>| {
            let bytes: usize = raws.iter().map(|r| r.bytes().len() + 1).sum();
            let mut canon = CanonicalEvents::for_body(bytes);
            let mut memo = PersonMemo::default();
            let out = raws
                .into_iter()
                .map(|raw| match parser.parse_canonical(&raw, &mut canon) {
                    Ok(i) => Prepared::Record(self.canonical_record(
                        canon.get(i),
                        source,
                        &field,
                        &mut memo,
                    )),
                    Err(rejection) => Prepared::Rejected {
                        line: raw.line(),
                        raw: raw.into_bytes(),
                        rejection,
                    },
                })
                .collect();
            (out, bytes as u64)
        };
        self.run_import(
            std::iter::from_fn(|| lines.next_raw()),
            prepare,
            source,
            progress,
        )
    }

    /// The import pipeline: chunks read here, parsed and prepared on two threads in file
    /// order, stored by a worker with two group commits in flight.
    fn run_import<T: Send>(
        &self,
        raw: impl Iterator<Item = Result<T, CollectError>>,
        prepare: impl Fn(Vec<T>) -> (Vec<Prepared>, u64) + Sync,
        source: &str,
        mut progress: impl FnMut(&ImportSummary),
    ) -> Result<ImportSummary, EngineError> {
        const CHUNK: usize = 8192;
        let _profiles_wait = self.unify.pause();
        let counts = ImportCounts::default();
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<Prepared>>(2);
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
                let (chunk, bytes) = prepare_on_two_threads(unparsed, &prepare);
                summary.read += chunk.len() as u64;
                summary.bytes += bytes;
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
        chunks: mpsc::Receiver<Vec<Prepared>>,
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
                match item {
                    Prepared::Record(r) => records.push(r),
                    Prepared::Rejected {
                        line,
                        raw,
                        rejection: mut r,
                    } => {
                        r.field = format!("line {line}: {}", r.field);
                        quarantine.push(NewQuarantined {
                            received_at,
                            source: Some(source.to_string()),
                            person: None,
                            reason: serde_json::json!({ "endpoint": "import", "line": line, "rejection": r }),
                            codec: Codec::Json,
                            payload: raw,
                        });
                    }
                }
            }
            let mut records = RecordBatch::from(records);
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
            self.store.append_batch_with(
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
            let mut these = RecordBatch::from(
                parsed
                    .into_iter()
                    .flatten()
                    .map(|mut e| {
                        e.source = entry.source.clone();
                        self.record(&e)
                    })
                    .collect::<Vec<_>>(),
            );
            if !self.gate_health(&mut these)?.is_empty() {
                summary
                    .still_rejected
                    .push((entry.id, consent_rejection(None)));
                continue;
            }
            records.extend(these.into_owned());
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
