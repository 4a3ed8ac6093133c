//! The [`Collector`]: configuration (size limits, purposes, tracking plan) plus the entry points
//! that turn request bytes into events: [`Collector::parse_event`] for `/v1/track`-style calls
//! and [`Collector::parse_batch`] for `/v1/batch`.
//!
//! The collector is immutable and `Send + Sync`: one instance is shared by every request
//! handler. It must never read the clock, touch files or the network, or keep state between
//! calls that could change a result: the server time, source and client address arrive in
//! [`Received`]. (It memoizes user-agent parses in a bounded cache, which changes only speed.)

use std::net::IpAddr;

use iob_types::{Event, EventKind, Purpose, Timestamp};

use crate::derive::{TextProperties, UaCache};
use crate::plan::TrackingPlan;
use crate::reject::Rejection;

/// Segment's limit for one event.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's limit for one `/v1/batch` body.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 500 * 1024;

/// Collector configuration.
#[derive(Debug)]
pub struct CollectOptions {
    /// Largest accepted event, in bytes of its JSON (default 32 KiB).
    pub max_event_bytes: usize,
    /// Largest accepted `/v1/batch` body (default 500 KiB).
    pub max_batch_bytes: usize,
    /// Purposes a `consent` event may name (default [`Purpose::defaults`]).
    pub purposes: Vec<Purpose>,
    /// The tracking plan (default: allow everything).
    pub plan: TrackingPlan,
    /// Parse `context.userAgent` into `iobEnrichment.userAgent` (default true).
    pub parse_user_agent: bool,
    /// Properties holding free text (reviews, posts) whose sentiment is stored in
    /// `iobEnrichment.sentiment` when they are strings (default
    /// [`DEFAULT_SENTIMENT_PROPERTIES`]; empty turns sentiment off).
    pub sentiment_properties: Vec<String>,
}

/// Free-text properties scored by default: `review_body` is the Segment e-commerce spec's
/// "Product Reviewed" text; the others are common names for reviews and posts.
pub const DEFAULT_SENTIMENT_PROPERTIES: [&str; 4] =
    ["review_body", "review", "comment", "feedback"];

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            purposes: Purpose::defaults(),
            plan: TrackingPlan::allow_all(),
            parse_user_agent: true,
            sentiment_properties: DEFAULT_SENTIMENT_PROPERTIES.map(String::from).to_vec(),
        }
    }
}

/// What the server knows about a request: which source's write key authenticated it, when it
/// arrived (server clock) and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    pub source: Option<&'a str>,
    pub received_at: Timestamp,
    pub ip: Option<IpAddr>,
}

impl<'a> Received<'a> {
    pub fn new(received_at: Timestamp) -> Self {
        Received {
            source: None,
            received_at,
            ip: None,
        }
    }
}

/// A single accepted event and the write key its body carried (never kept in the event).
/// `T` is an [`Event`], or with the `_canonical` entry points an index into
/// [`crate::CanonicalEvents`].
#[derive(Debug, Clone)]
pub struct Parsed<T = Event> {
    pub event: T,
    pub write_key: Option<String>,
}

/// One element of a batch: its raw JSON (for the quarantine) and its outcome.
#[derive(Debug)]
pub struct BatchItem<'a, T = Event> {
    /// The element's JSON text, as sent.
    pub raw: &'a str,
    pub result: Result<T, Rejection>,
}

/// A parsed `/v1/batch` body: per-item outcomes, in order, and the body's write key.
#[derive(Debug)]
pub struct ParsedBatch<'a, T = Event> {
    pub items: Vec<BatchItem<'a, T>>,
    pub write_key: Option<String>,
}

impl<T> ParsedBatch<'_, T> {
    pub fn accepted(&self) -> impl Iterator<Item = &T> {
        self.items.iter().filter_map(|i| i.result.as_ref().ok())
    }
    pub fn rejected(&self) -> impl Iterator<Item = (&str, &Rejection)> {
        self.items
            .iter()
            .filter_map(|i| i.result.as_ref().err().map(|r| (i.raw, r)))
    }
}

/// Validates and enriches incoming events. Build once, share everywhere.
#[derive(Debug)]
pub struct Collector {
    pub(crate) opts: CollectOptions,
    pub(crate) user_agents: UaCache,
    pub(crate) text_properties: TextProperties,
}

impl Default for Collector {
    fn default() -> Self {
        Collector::new(CollectOptions::default())
    }
}

impl Collector {
    pub fn new(opts: CollectOptions) -> Self {
        Collector {
            text_properties: TextProperties::new(&opts.sentiment_properties),
            opts,
            user_agents: UaCache::default(),
        }
    }

    pub fn options(&self) -> &CollectOptions {
        &self.opts
    }

    /// Parses one Segment call (`/v1/track`, `/v1/identify`, ... or `/v1/observe`).
    ///
    /// `expected` is the endpoint's type: a body `type` that differs is rejected, a missing one
    /// is taken from the endpoint. Without `expected` (`/v1/import`, JSON Lines) `type` is
    /// required.
    pub fn parse_event(
        &self,
        bytes: &[u8],
        expected: Option<EventKind>,
        rx: &Received,
    ) -> Result<Parsed, Rejection> {
        let ctx = crate::segment::Ctx {
            expected,
            defaults: None,
            seed: crate::segment::IdSeed::Received,
        };
        let (event, write_key) = self.parse_one(bytes, &ctx, rx)?;
        Ok(Parsed { event, write_key })
    }

    /// Checks an already-built event against the tracking plan (used by importers that build
    /// events directly).
    pub fn check_plan(&self, event: &Event) -> Result<(), Rejection> {
        match event.kind {
            EventKind::Track => self.opts.plan.check_track(
                event.event.as_deref().unwrap_or(""),
                event.properties.as_deref(),
            ),
            EventKind::Identify => self.opts.plan.check_identify(event.traits.as_deref()),
            _ => Ok(()),
        }
    }
}
