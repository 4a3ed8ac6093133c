//! The recommender inside an engine, through its library API: training from consenting persons,
//! real-time decide answers, rules, explanations, fallbacks with their reason, erasure, and the
//! model artifact on disk.

mod artifacts;
mod service;

use std::sync::Arc;

use iob_engine::{Config, Endpoint, Engine, SourceConfig, Submission};
use iob_types::{FixedClock, Timestamp};
use serde_json::json;

pub const KEY: &str = "recommend-test-write-key-01";
pub const NOW: i64 = 1_796_000_000_000;

pub fn config(dir: &std::path::Path, extra: &str) -> Config {
    let mut cfg: Config = toml::from_str(extra).unwrap();
    cfg.data_dir = Some(dir.to_path_buf());
    cfg.sources = vec![SourceConfig {
        name: "web".into(),
        write_key: Some(KEY.into()),
    }];
    cfg
}

pub fn engine(cfg: &Config) -> Arc<Engine> {
    let clock = Arc::new(FixedClock::new(Timestamp(NOW)));
    Arc::new(Engine::open_with_clock(cfg, clock).unwrap().0)
}

pub fn send(e: &Engine, events: serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = serde_json::to_vec(&json!({ "batch": events })).unwrap();
    let r = rt
        .block_on(e.submit(Submission {
            endpoint: Endpoint::Batch,
            body: &body,
            key: Some(KEY),
            ip: None,
        }))
        .unwrap();
    assert!(r.rejected.is_empty(), "{r:?}");
}
