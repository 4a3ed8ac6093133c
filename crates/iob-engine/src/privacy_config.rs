//! `[privacy]`: consent defaults and categories, health metrics, encryption at rest and its
//! master key, IP truncation, retention.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Privacy settings. Consent is per purpose (`collect.purposes`); reads are refused for a
/// purpose the person has not consented to (opt-in) or has withdrawn (opt-out and opt-in).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Seal every stored payload with AES-256-GCM under a per-person data key (on by default;
    /// off only to measure its cost: erasure then cannot shred what it cannot decrypt).
    pub encrypt: bool,
    /// A file holding the master key (64 hex digits or base64 of 32 bytes) that wraps the data
    /// keys. Else `IOB_MASTER_KEY`; else `DIR/secrets/master.key`, generated on first start
    /// (keep a production master key away from the data it protects).
    pub master_key_file: Option<PathBuf>,
    /// The master key itself (`IOB_MASTER_KEY`); prefer `master_key_file`.
    pub master_key: Option<String>,
    /// `opt-in` or `opt-out` per purpose; unnamed purposes: analytics and security opt-out,
    /// the rest opt-in. Health is always opt-in (configuring it opt-out is an error).
    pub consent_defaults: BTreeMap<String, iob_govern::DefaultConsent>,
    /// Segment consent categories (`context.consent.categoryPreferences`) → purpose, e.g.
    /// `Advertising = "marketing"`. A category named like a purpose maps to it.
    pub consent_categories: BTreeMap<String, String>,
    /// `observe` metrics that are health data: accepted only from persons with health consent
    /// (else quarantined, sealed, with reason `consent_required`), and shown only to reads for
    /// the health purpose.
    pub health_metrics: Vec<String>,
    /// Store `context.ip` truncated (IPv4 /24, IPv6 /48) instead of whole.
    pub truncate_ip: bool,
    /// Days to keep events, by event name (`"Location Updated" = 30`) or type (`page = 90`):
    /// after that, the day's events are crypto-shredded (their retention key is destroyed).
    /// Counted from the event's day (UTC); profiles keep what they aggregated.
    pub retention_days: BTreeMap<String, u32>,
    /// How often the background job destroys expired retention keys.
    pub retention_check_secs: u64,
    /// Expanded data keys kept for persons seen recently (~600 bytes each): sealing for a
    /// person in the cache skips the AES key schedule.
    pub key_cache: usize,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            encrypt: true,
            master_key_file: None,
            master_key: None,
            consent_defaults: BTreeMap::new(),
            consent_categories: BTreeMap::new(),
            health_metrics: [
                "heart_rate",
                "resting_heart_rate",
                "heart_rate_variability",
                "blood_pressure",
                "blood_pressure_systolic",
                "blood_pressure_diastolic",
                "glucose",
                "blood_glucose",
                "spo2",
                "oxygen_saturation",
                "body_temperature",
                "respiratory_rate",
                "medication_taken",
            ]
            .map(String::from)
            .to_vec(),
            truncate_ip: false,
            retention_days: BTreeMap::new(),
            retention_check_secs: 3600,
            key_cache: 65_536,
        }
    }
}
