//! Typed configuration: the TOML file, then `IOB_*` environment overrides, then flags.
//!
//! Every section rejects unknown keys, so a typo is an error that names the key instead of a
//! setting silently ignored. Environment overrides address any key by path with `__`
//! (`IOB_STORE__PARTITIONS=16`, `IOB_SERVER__LISTEN=0.0.0.0:8080`); the value is read as a TOML
//! literal when it parses as one, else as a string. `IOB_WRITE_KEY`, `IOB_ADMIN_KEY` and
//! `IOB_MASTER_KEY` are the conventional container variables for the keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::EngineError;
pub use crate::privacy_config::PrivacyConfig;
use crate::server_config::ServerConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the event log, indexes, quarantine and keys live (`--data-dir`, default `./iob-data`).
    pub data_dir: Option<PathBuf>,
    pub store: StoreConfig,
    pub collect: CollectConfig,
    pub tracking_plan: TrackingPlanConfig,
    /// Event sources (web, app, store, devices...), each with its write key.
    pub sources: Vec<SourceConfig>,
    pub admin: AdminConfig,
    pub server: ServerConfig,
    /// Identity resolution: identifier kinds, priorities, limits per person, blocked values.
    pub identity: iob_unify::IdentityConfig,
    /// Which profile features are computed, their windows and parameters.
    pub profiles: iob_unify::ProfileConfig,
    /// Readings from an MQTT broker (`iob serve --mqtt URL`); off unless `mqtt.url` is set.
    pub mqtt: MqttConfig,
    /// Consent defaults, health metrics, encryption at rest, IP truncation.
    pub privacy: PrivacyConfig,
    /// Recommendations: interaction weights, decay, model parameters (`iob-recommend`).
    pub recommend: crate::RecommendConfig,
    /// Decide API placements by name: model, `n`, rules. Empty: one placement, `default`.
    pub placements: BTreeMap<String, crate::PlacementConfig>,
    /// The columnar store, SQL limits and the disclosure rules of aggregates.
    pub analytics: crate::AnalyticsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Number of person-key partitions; fixed when the data directory is created.
    pub partitions: u32,
    /// Roll log segments at this size.
    pub segment_mb: u64,
    /// A messageId already accepted within this window is acknowledged and not stored again.
    pub dedup_window_secs: i64,
    /// At most this many recent messageIds are held for deduplication (~25-40 bytes each);
    /// raise it when more events than half of this arrive within the window.
    pub dedup_max_entries: usize,
    /// How often indexes and the dedup table are checkpointed (bounds recovery work).
    pub checkpoint_secs: u64,
    /// Write the log with direct I/O (bypassing the page cache) where the file system allows;
    /// buffered otherwise. Turn off to compare, or on file systems that misbehave with it.
    pub direct_io: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            partitions: 8,
            segment_mb: 128,
            dedup_window_secs: 24 * 3600,
            dedup_max_entries: 4_000_000,
            checkpoint_secs: 10,
            direct_io: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// Largest single event accepted (Segment's limit is 32 KiB).
    pub max_event_bytes: usize,
    /// The purposes consent can be given for.
    pub purposes: Vec<String>,
    /// Parse `context.userAgent` (browser, OS, device class) into the stored event's
    /// `iobEnrichment.userAgent`.
    pub parse_user_agent: bool,
    /// Properties holding free text (reviews, posts) whose VADER sentiment (−1..1) is stored in
    /// `iobEnrichment.sentiment` when they are strings; `[]` turns sentiment off.
    pub sentiment_properties: Vec<String>,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            max_event_bytes: 32 * 1024,
            purposes: iob_types::Purpose::defaults()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            parse_user_agent: true,
            sentiment_properties: iob_collect::DEFAULT_SENTIMENT_PROPERTIES
                .map(String::from)
                .to_vec(),
        }
    }
}

/// What happens to events whose name has no schema in the plan.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unplanned {
    #[default]
    Allow,
    Reject,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingPlanConfig {
    pub unplanned: Unplanned,
    /// Event name -> JSON Schema (written as TOML tables) validating its `properties`
    /// (`identify` validates `traits`).
    pub events: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Short name (`web`, `ios`, `pos`, `wearables`); stored on every event of the source.
    pub name: String,
    /// The source's write key. Optional: without one, the first start generates it.
    pub write_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The admin key (or `IOB_ADMIN_KEY`). Without one, the first start generates it.
    pub key: Option<String>,
}

/// `[mqtt]`: subscribe to a broker (e.g. Mosquitto) for IoT and wearable readings. Messages are
/// trusted by their broker connection (no write key) and attributed to `source`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker address: `mqtt://host[:port]` (plain TCP, port 1883 by default), optionally
    /// `mqtt://user:password@host:port`. Unset: no MQTT subscription.
    pub url: Option<String>,
    /// Topic filters to subscribe to (`devices/+/+`, `wearables/#`). Default: `topic_pattern`
    /// with each `{field}` written as `+`.
    pub topics: Vec<String>,
    /// How a bare-value payload (`72`, `true`) names its device and metric, from the topic:
    /// `devices/{deviceId}/{metric}`; `{userId}` is also known, `+` matches any one level and a
    /// final `#` any rest. JSON payloads take missing `deviceId`/`metric`/`userId` from it too.
    pub topic_pattern: Option<String>,
    /// The MQTT client id the broker keeps our persistent session under. Default: `iob-` and a
    /// hash of the data directory's path, so it is the same on every restart.
    pub client_id: Option<String>,
    /// Source name stored on MQTT events (`iobSource`) and part of their dedup key.
    pub source: String,
    /// Subscription quality of service: only 1 (at least once; acknowledged after storing).
    pub qos: u8,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            topics: Vec::new(),
            topic_pattern: None,
            client_id: None,
            source: "mqtt".into(),
            qos: 1,
        }
    }
}

/// Source names: 1-64 of a-z, A-Z, 0-9, '-', '_'.
fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Config {
    /// `collect.purposes`, validated.
    pub fn purposes(&self) -> Result<Vec<iob_types::Purpose>, EngineError> {
        self.collect
            .purposes
            .iter()
            .map(|p| iob_types::Purpose::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Config {
                key: "collect.purposes".into(),
                reason: e.to_string(),
            })
    }

    /// Reads `path` (if given), applies `IOB_*` overrides from `env`, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, EngineError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| EngineError::Config {
                    key: p.display().to_string(),
                    reason: format!("cannot read the config file: {e}"),
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| EngineError::Config {
                    key: p.display().to_string(),
                    reason: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        let mut write_key = None;
        for (name, value) in env {
            match name.as_str() {
                "IOB_WRITE_KEY" => write_key = Some(value),
                "IOB_ADMIN_KEY" => {
                    set_path(&mut table, &["admin", "key"], toml::Value::String(value))
                }
                "IOB_MASTER_KEY" => set_path(
                    &mut table,
                    &["privacy", "master_key"],
                    toml::Value::String(value),
                ),
                "IOB_DATA_DIR" => set_path(&mut table, &["data_dir"], toml::Value::String(value)),
                _ => {
                    if let Some(rest) = name.strip_prefix("IOB_").filter(|r| r.contains("__")) {
                        let path: Vec<String> =
                            rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
                        let refs: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
                        set_path(&mut table, &refs, literal(&value));
                    }
                }
            }
        }
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| EngineError::Config {
                    key: "config".into(),
                    reason: e.to_string(),
                })?;
        if let Some(key) = write_key {
            // The container convention: one write key for the first (or a `default`) source.
            match config.sources.first_mut() {
                Some(s) => s.write_key = Some(key),
                None => config.sources.push(SourceConfig {
                    name: "default".into(),
                    write_key: Some(key),
                }),
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), EngineError> {
        let bad = |key: &str, reason: String| EngineError::Config {
            key: key.into(),
            reason,
        };
        if !(1..=1024).contains(&self.store.partitions) {
            return Err(bad(
                "store.partitions",
                format!("{} is not in 1..=1024", self.store.partitions),
            ));
        }
        if !(1..=4096).contains(&self.store.segment_mb) {
            return Err(bad(
                "store.segment_mb",
                format!("{} is not in 1..=4096", self.store.segment_mb),
            ));
        }
        if self.store.dedup_window_secs < 0 {
            return Err(bad(
                "store.dedup_window_secs",
                "must not be negative".into(),
            ));
        }
        if self.collect.max_event_bytes < 256 {
            return Err(bad(
                "collect.max_event_bytes",
                "must be at least 256".into(),
            ));
        }
        if let Some(p) = self
            .collect
            .sentiment_properties
            .iter()
            .find(|p| p.is_empty())
        {
            return Err(bad(
                "collect.sentiment_properties",
                format!("`{p}`: property names must not be empty"),
            ));
        }
        for p in &self.collect.purposes {
            iob_types::Purpose::new(p).map_err(|e| bad("collect.purposes", e.to_string()))?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            if !valid_source_name(&s.name) {
                return Err(bad(
                    &format!("sources[{i}].name"),
                    format!("`{}` must be 1-64 of a-z, A-Z, 0-9, '-', '_'", s.name),
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(bad(
                    &format!("sources[{i}].name"),
                    format!("`{}` is configured twice", s.name),
                ));
            }
            if let Some(k) = &s.write_key
                && k.len() < 16
            {
                return Err(bad(
                    &format!("sources[{i}].write_key"),
                    "must be at least 16 characters".into(),
                ));
            }
        }
        if let Some(k) = &self.admin.key
            && k.len() < 16
        {
            return Err(bad("admin.key", "must be at least 16 characters".into()));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(bad("server.max_body_bytes", "must be at least 1024".into()));
        }
        self.server.validate()?;
        if !valid_source_name(&self.mqtt.source) {
            return Err(bad(
                "mqtt.source",
                format!(
                    "`{}` must be 1-64 of a-z, A-Z, 0-9, '-', '_'",
                    self.mqtt.source
                ),
            ));
        }
        if self.mqtt.qos != 1 {
            return Err(bad(
                "mqtt.qos",
                format!(
                    "{} is not supported: readings are subscribed with QoS 1 (at least once, acknowledged after storing)",
                    self.mqtt.qos
                ),
            ));
        }
        if let Some(id) = &self.mqtt.client_id
            && (id.is_empty() || id.len() > 64)
        {
            return Err(bad("mqtt.client_id", "must be 1-64 characters".into()));
        }
        let w = self.recommend.blend_weight;
        if !(w.is_finite() && w >= 0.0) {
            return Err(bad(
                "recommend.blend_weight",
                format!("{w} must be a finite number of at least 0 (ALS's weight against EASE's)"),
            ));
        }
        Ok(())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("iob-data"))
    }
}

fn literal(v: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {v}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        t = entry.as_table_mut().expect("just made a table");
    }
    t.insert(last.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's example config is a valid config (with its `…` placeholders filled).
    #[test]
    fn readme_config_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("## Configuration").expect("section");
        let block = &readme[start..];
        let from = block.find("```toml\n").expect("toml block") + 8;
        let to = from + block[from..].find("```").expect("end of block");
        let text = block[from..to].replace('…', "a-long-enough-secret-value-1234");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            c.identity,
            iob_unify::IdentityConfig::default(),
            "the README shows the defaults"
        );
        assert_eq!(c.profiles.event_weights["Order Completed"], 5.0);
        assert_eq!(c.privacy.retention_days["Location Updated"], 30);
        assert!(c.privacy.encrypt);
        // The policy it describes is a valid one (health is not made opt-out there).
        crate::unify::consent_policy(&c).unwrap();
    }

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env_layers_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("iob.toml");
        std::fs::write(
            &f,
            r#"
            [store]
            partitions = 4
            [[sources]]
            name = "web"
            [tracking_plan.events."Order Completed"]
            type = "object"
            required = ["revenue"]
            "#,
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("IOB_STORE__PARTITIONS", "16"),
                ("IOB_SERVER__LISTEN", "0.0.0.0:9"),
                ("IOB_WRITE_KEY", "0123456789abcdef"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.partitions, 16);
        assert_eq!(c.server.listen, "0.0.0.0:9");
        assert_eq!(c.sources[0].write_key.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            c.tracking_plan.events["Order Completed"]["required"][0],
            "revenue"
        );

        std::fs::write(&f, "[store]\npartitionz = 4\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("partitionz"), "{e}");
        let e = Config::load(None, env(&[("IOB_STORE__BOGUS", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn enrichment_settings_default_and_parse() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.collect.parse_user_agent);
        assert_eq!(
            c.collect.sentiment_properties,
            ["review_body", "review", "comment", "feedback"]
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("iob.toml");
        std::fs::write(
            &f,
            "[collect]\nparse_user_agent = false\nsentiment_properties = [\"post\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), env(&[])).unwrap();
        assert!(!c.collect.parse_user_agent);
        assert_eq!(c.collect.sentiment_properties, ["post"]);
        std::fs::write(&f, "[collect]\nparse_useragent = false\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("parse_useragent"), "{e}");
        std::fs::write(&f, "[collect]\nsentiment_properties = [\"\"]\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("collect.sentiment_properties"), "{e}");
    }

    #[test]
    fn validation_names_the_key() {
        let e = Config::load(None, env(&[("IOB_STORE__PARTITIONS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.partitions"), "{e}");
        let e = Config::load(None, env(&[("IOB_ADMIN_KEY", "short")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin.key"), "{e}");
        let e = Config::load(None, env(&[("IOB_COLLECT__PURPOSES", "[\"Bad Purpose\"]")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("collect.purposes"), "{e}");
        let e = Config::load(None, env(&[("IOB_MQTT__QOS", "2")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt.qos"), "{e}");
        let e = Config::load(None, env(&[("IOB_MQTT__SOURCE", "bad name")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt.source"), "{e}");
        let e = Config::load(None, env(&[("IOB_RECOMMEND__BLEND_WEIGHT", "-1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("recommend.blend_weight"), "{e}");
    }

    #[test]
    fn mqtt_section_from_env() {
        let c = Config::load(
            None,
            env(&[
                ("IOB_MQTT__URL", "mqtt://127.0.0.1:1883"),
                ("IOB_MQTT__TOPICS", "[\"devices/#\"]"),
            ]),
        )
        .unwrap();
        assert_eq!(c.mqtt.url.as_deref(), Some("mqtt://127.0.0.1:1883"));
        assert_eq!(c.mqtt.topics, ["devices/#"]);
        assert_eq!(c.mqtt.source, "mqtt");
        assert_eq!(c.mqtt.qos, 1);
        let e = Config::load(None, env(&[("IOB_MQTT__TOPIC", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("topic"), "{e}");
    }
}
