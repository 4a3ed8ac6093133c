//! `[server]`: the HTTP listener, CORS, per-key rate limits and TLS files. Read by the server
//! and the engine (rate limits are taken when a key authenticates). Must never hold a secret:
//! TLS keys are named by path, not inlined.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::EngineError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    /// Largest request body after decompression.
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; `["*"]` allows any (browser SDKs on any site).
    pub cors_origins: Vec<String>,
    /// Requests per second each API key may make on average (token bucket per key id);
    /// 0 turns rate limiting off. A source's write key is shared by all its clients: keep it high.
    pub rate_limit_per_sec: f64,
    /// Requests a key may make at once before the average applies (0: `rate_limit_per_sec`).
    pub rate_limit_burst: f64,
    /// Per-scope overrides, e.g. `[server.rate_limit_scopes."read:personal"] per_sec = 50`.
    pub rate_limit_scopes: BTreeMap<String, RateLimitConfig>,
    /// Serve HTTPS with this PEM certificate chain (with `tls_key`; also `--tls-cert`).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert` (also `--tls-key`).
    pub tls_key: Option<PathBuf>,
}

/// One rate: `per_sec` on average, `burst` at once (0: `per_sec`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub per_sec: f64,
    #[serde(default)]
    pub burst: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8088".into(),
            max_body_bytes: 4 * 1024 * 1024,
            cors_origins: vec!["*".into()],
            rate_limit_per_sec: 10_000.0,
            rate_limit_burst: 20_000.0,
            rate_limit_scopes: BTreeMap::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        let bad = |key: String, reason: &str| EngineError::Config {
            key,
            reason: reason.into(),
        };
        let s = self;
        let rates = [(
            "server.rate_limit_per_sec".to_string(),
            s.rate_limit_per_sec,
        )]
        .into_iter()
        .chain([("server.rate_limit_burst".into(), s.rate_limit_burst)])
        .chain(s.rate_limit_scopes.iter().flat_map(|(k, l)| {
            [
                (format!("server.rate_limit_scopes.{k}.per_sec"), l.per_sec),
                (format!("server.rate_limit_scopes.{k}.burst"), l.burst),
            ]
        }));
        for (key, v) in rates {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(key, "must be a number >= 0 (0: no limit)"));
            }
        }
        if let Some(k) = s
            .rate_limit_scopes
            .keys()
            .find(|k| !iob_govern::SCOPE_NAMES.contains(&k.as_str()))
        {
            return Err(bad(
                format!("server.rate_limit_scopes.{k}"),
                &format!(
                    "not a scope; scopes: {}",
                    iob_govern::SCOPE_NAMES.join(", ")
                ),
            ));
        }
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            return Err(bad(
                "server.tls_cert".into(),
                "HTTPS needs both tls_cert and tls_key (PEM files)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rate_limits_and_tls_validate() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.rate_limit_per_sec, 10_000.0);
        let c = Config::load(
            None,
            env(&[
                ("IOB_SERVER__RATE_LIMIT_PER_SEC", "0"),
                (
                    "IOB_SERVER__RATE_LIMIT_SCOPES",
                    "{\"read:personal\" = {per_sec = 5}}",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.rate_limit_scopes["read:personal"].per_sec, 5.0);
        for (k, v, named) in [
            (
                "IOB_SERVER__RATE_LIMIT_PER_SEC",
                "-1",
                "server.rate_limit_per_sec",
            ),
            (
                "IOB_SERVER__RATE_LIMIT_SCOPES",
                "{reader = {per_sec = 5}}",
                "server.rate_limit_scopes.reader",
            ),
            ("IOB_SERVER__TLS_KEY", "k.pem", "tls_cert and tls_key"),
        ] {
            let e = Config::load(None, env(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains(named), "{k}={v}: {e}");
        }
    }
}
