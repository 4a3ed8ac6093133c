//! The MQTT source: subscribes to a broker (e.g. Mosquitto) and submits each message as an
//! `observe` event, trusted by the broker connection (no write key), attributed to
//! `mqtt.source`.
//!
//! * QoS 1 with a persistent session (`clean_session = false`, a stable client id): readings
//!   published while iob is down are queued by the broker and arrive after a restart.
//! * A message is acknowledged (PUBACK, manual acks) only after its event is durable or
//!   quarantined, in the order the messages arrived; messages are processed concurrently so
//!   group commit gathers them into shared fsyncs.
//! * A store failure or a lost connection ends the session without acknowledging what is
//!   pending; the broker redelivers it after the reconnect (with backoff). Redeliveries are
//!   deduplicated for JSON payloads with a `messageId` or a `timestamp`; other readings get a
//!   fresh `messageId` each (equal readings are never merged), so one stored just before a
//!   crash and redelivered is stored twice (at least once).
//! * Logs name the broker and counts, never topics or payloads (they carry identifiers).

mod payload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iob_engine::{Endpoint, Engine, EngineError, MqttConfig, Submission};
use iob_types::EventKind;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use payload::{TopicPattern, decode};

/// Largest message accepted from the broker. Bigger than any event (they are quarantined as
/// too large); a message above it breaks the connection, so brokers should set
/// `message_size_limit` below it.
const MAX_PACKET_BYTES: usize = 16 * 1024 * 1024;
/// Capacity of the client's request channel (acknowledgements on their way out).
const REQUESTS: usize = 1024;

/// A configured, not yet connected MQTT source.
pub struct MqttSource {
    engine: Arc<Engine>,
    options: MqttOptions,
    /// `host:port`, for logs (never the credentials).
    broker: String,
    filters: Vec<String>,
    handler: Arc<Handler>,
}

/// What turns one message into a stored or quarantined event.
struct Handler {
    source: String,
    pattern: Option<TopicPattern>,
    max_event_bytes: usize,
    /// Fresh messageIds: `mqtt-` + this process's start time (ns) + a counter.
    started_ns: u128,
    next_id: AtomicU64,
}

impl Handler {
    fn fresh_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("mqtt-{:x}-{n:x}", self.started_ns)
    }
}

fn config_error(key: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Config {
        key: key.into(),
        reason: reason.into(),
    }
}

/// User name and password from the URL.
type Credentials = Option<(String, String)>;

/// `mqtt://[user:password@]host[:port]` → (host, port, credentials).
fn parse_url(url: &str) -> Result<(String, u16, Credentials), EngineError> {
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest,
        Some(("mqtts" | "ssl" | "tls", _)) => {
            return Err(config_error(
                "mqtt.url",
                "TLS brokers are not supported yet; use mqtt:// (plain TCP) on a trusted network",
            ));
        }
        _ => {
            return Err(config_error(
                "mqtt.url",
                "must look like mqtt://host:port (e.g. mqtt://127.0.0.1:1883)",
            ));
        }
    };
    let rest = rest.trim_end_matches('/');
    let (credentials, address) = match rest.rsplit_once('@') {
        Some((user, address)) => {
            let (u, p) = user.split_once(':').unwrap_or((user, ""));
            (Some((u.to_string(), p.to_string())), address)
        }
        None => (None, rest),
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u16>()
                .map_err(|_| config_error("mqtt.url", format!("port `{p}` is not a number")))?;
            (h, port)
        }
        None => (address, 1883),
    };
    if host.is_empty() || host.contains('/') {
        return Err(config_error("mqtt.url", "names no host (mqtt://host:port)"));
    }
    Ok((host.to_string(), port, credentials))
}

/// `iob-` and a hash of the data directory: the same client id, so the same broker session,
/// on every restart over that directory.
pub fn default_client_id(engine: &Engine) -> String {
    let dir = engine.data_dir();
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hash = xxhash_rust::xxh3::xxh3_64(dir.as_os_str().as_encoded_bytes());
    format!("iob-{hash:016x}")
}

impl MqttSource {
    /// Checks `cfg` (URL, filters, pattern) and prepares the connection options.
    pub fn new(
        engine: Arc<Engine>,
        cfg: &MqttConfig,
        max_event_bytes: usize,
    ) -> Result<MqttSource, EngineError> {
        let url = cfg
            .url
            .as_deref()
            .ok_or_else(|| config_error("mqtt.url", "is not set"))?;
        let (host, port, credentials) = parse_url(url)?;
        let pattern = cfg
            .topic_pattern
            .as_deref()
            .map(TopicPattern::parse)
            .transpose()
            .map_err(|e| config_error("mqtt.topic_pattern", e))?;
        let mut filters = cfg.topics.clone();
        if filters.is_empty()
            && let Some(p) = &pattern
        {
            filters.push(p.filter());
        }
        if filters.is_empty() {
            return Err(config_error(
                "mqtt.topics",
                "no topic to subscribe to: give --mqtt-topic FILTER (or mqtt.topics, or mqtt.topic_pattern)",
            ));
        }
        for f in &filters {
            if !rumqttc::valid_filter(f) {
                return Err(config_error(
                    "mqtt.topics",
                    format!("`{f}` is not a valid MQTT topic filter"),
                ));
            }
        }
        let client_id = cfg
            .client_id
            .clone()
            .unwrap_or_else(|| default_client_id(&engine));
        let mut options = MqttOptions::new(client_id, host.clone(), port);
        options
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
            .set_request_channel_capacity(REQUESTS);
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        Ok(MqttSource {
            engine,
            options,
            broker: format!("{host}:{port}"),
            filters,
            handler: Arc::new(Handler {
                source: cfg.source.clone(),
                pattern,
                max_event_bytes,
                started_ns: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
                next_id: AtomicU64::new(0),
            }),
        })
    }

    /// Consumes messages until `shutdown` turns true, reconnecting with backoff (0.1 s doubling
    /// to 30 s) whenever the broker goes away. On shutdown, messages already received are
    /// stored and acknowledged before the clean disconnect.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let why = match self.session(&mut shutdown).await {
                None => return,
                Some(why) => why,
            };
            if started.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(100);
            }
            tracing::warn!(broker = %self.broker, error = %why, retry_in_ms = backoff.as_millis() as u64, "MQTT session ended; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped(&mut shutdown) => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// One connection: returns why it ended, or `None` on shutdown.
    async fn session(&self, shutdown: &mut watch::Receiver<bool>) -> Option<String> {
        let (client, mut events) = AsyncClient::new(self.options.clone(), REQUESTS);
        // Unbounded on purpose: rumqttc sends our acks only while its event loop is polled, so
        // this loop must never wait for the acknowledger (a bounded queue deadlocks when the
        // broker resends a large in-flight window at once). The broker's in-flight window and
        // queue bound what can be pending.
        let (pending_tx, pending_rx) = mpsc::unbounded_channel();
        let (failed_tx, mut failed_rx) = mpsc::channel(1);
        let mut acker = tokio::spawn(ack_in_order(client.clone(), pending_rx, failed_tx));
        loop {
            tokio::select! {
                _ = stopped(shutdown) => {
                    drop(pending_tx);
                    finish(&client, &mut events, &mut acker).await;
                    tracing::info!(broker = %self.broker, "MQTT disconnected");
                    return None;
                }
                why = failed_rx.recv() => {
                    acker.abort();
                    return Some(why.unwrap_or_else(|| "the acknowledger stopped".into()));
                }
                event = events.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        tracing::info!(broker = %self.broker, session_present = ack.session_present, "MQTT connected");
                        let filters = self.filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                        if let Err(e) = client.try_subscribe_many(filters) {
                            acker.abort();
                            return Some(format!("subscribing: {e}"));
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let refused = ack.return_codes.iter().filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)).count();
                        if refused > 0 {
                            tracing::error!(broker = %self.broker, refused, "the broker refused topic filters");
                        } else {
                            tracing::info!(broker = %self.broker, filters = ack.return_codes.len(), "MQTT subscribed");
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let task = tokio::spawn(handle(self.engine.clone(), self.handler.clone(), publish.clone()));
                        if pending_tx.send((task, publish)).is_err() {
                            return Some("the acknowledger stopped".into());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Pending messages stay unacknowledged: the broker redelivers them.
                        acker.abort();
                        return Some(e.to_string());
                    }
                },
            }
        }
    }
}

/// Resolves when shutdown is asked for (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, not across an await.
    let _ = shutdown.wait_for(|s| *s).await.is_ok();
}

/// Stores or quarantines one message. `Ok` means it may be acknowledged.
async fn handle(
    engine: Arc<Engine>,
    handler: Arc<Handler>,
    publish: Publish,
) -> Result<(), EngineError> {
    let decoded = decode(
        &publish.topic,
        &publish.payload,
        handler.pattern.as_ref(),
        handler.max_event_bytes,
        &handler.fresh_id(),
    );
    let rejection = match decoded {
        Ok(body) => {
            let sub = Submission {
                endpoint: Endpoint::Single(EventKind::Observe),
                body: &body,
                key: None,
                ip: None,
            };
            match engine.submit_from(&handler.source, sub).await {
                Ok(_) => return Ok(()),
                Err(EngineError::Rejected(item)) => item.rejection,
                Err(e) => return Err(e),
            }
        }
        Err(rejection) => {
            engine
                .quarantine_from(
                    &handler.source,
                    "mqtt",
                    rejection.clone(),
                    publish.payload.to_vec(),
                )
                .await?;
            rejection
        }
    };
    tracing::debug!(code = %rejection.code, field = %rejection.field, "MQTT message quarantined");
    Ok(())
}

/// Acknowledges messages in arrival order once each is stored or quarantined. On a store
/// failure it stops acknowledging and reports, so the session ends and the broker redelivers.
async fn ack_in_order(
    client: AsyncClient,
    mut pending: mpsc::UnboundedReceiver<(JoinHandle<Result<(), EngineError>>, Publish)>,
    failed: mpsc::Sender<String>,
) {
    while let Some((task, publish)) = pending.recv().await {
        let outcome = match task.await {
            Ok(Ok(())) => client.ack(&publish).await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(format!("storing a message failed: {e}")),
            Err(e) => Err(format!("a message task failed: {e}")),
        };
        if let Err(why) = outcome {
            let _ = failed.send(why).await;
            return;
        }
    }
}

/// Shutdown: lets the acknowledger store and acknowledge what was received, keeps the
/// connection polled so the acks go out, then disconnects cleanly (the session stays).
async fn finish(client: &AsyncClient, events: &mut EventLoop, acker: &mut JoinHandle<()>) {
    let drain = async {
        loop {
            tokio::select! {
                _ = &mut *acker => break,
                e = events.poll() => if e.is_err() { return },
            }
        }
        if client.disconnect().await.is_err() {
            return;
        }
        while let Ok(e) = events.poll().await {
            if matches!(e, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("MQTT shutdown timed out; unacknowledged messages will be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".into(), 1884, None)
        );
        assert_eq!(
            parse_url("tcp://broker/").unwrap(),
            ("broker".into(), 1883, None)
        );
        assert_eq!(
            parse_url("mqtt://iob:s3cret@broker:1883").unwrap().2,
            Some(("iob".into(), "s3cret".into()))
        );
        for bad in [
            "broker:1883",
            "mqtts://b:8883",
            "mqtt://:1883",
            "mqtt://b:x",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains("mqtt.url"), "{bad}: {e}");
        }
    }
}
