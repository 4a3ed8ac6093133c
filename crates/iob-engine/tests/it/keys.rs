//! Key management through the engine: create, authenticate at once, list without secrets,
//! expire by the engine's clock, revoke, survive a reopen, and per-key rate limits.

use std::sync::Arc;
use std::time::Duration;

use iob_engine::{
    Config, Engine, EngineError, KeyRequest, RateLimitConfig, Scope, ServerConfig, SourceConfig,
};
use iob_types::{FixedClock, Timestamp};

const T0: Timestamp = Timestamp(1_796_000_000_000);

fn config(dir: &std::path::Path, server: ServerConfig) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some("engine-test-write-key-01".into()),
        }],
        server,
        ..Config::default()
    }
}

fn open(dir: &std::path::Path, clock: Arc<FixedClock>, server: ServerConfig) -> Engine {
    Engine::open_with_clock(&config(dir, server), clock)
        .unwrap()
        .0
}

#[test]
fn create_list_expire_revoke_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(T0));
    let e = open(dir.path(), clock.clone(), ServerConfig::default());
    let reader = e
        .create_key(KeyRequest {
            scope: Scope::ReadPersonal,
            id: Some("crm".into()),
            expires_in: Some(Duration::from_secs(3600)),
        })
        .unwrap();
    let analyst = e
        .create_key(KeyRequest {
            scope: Scope::ReadAnalytics,
            id: None,
            expires_in: None,
        })
        .unwrap();
    assert!(analyst.id.starts_with("read-analytics-"), "{}", analyst.id);
    let k = e.api_key(&reader.secret).unwrap();
    assert_eq!((k.id.as_str(), k.scope), ("crm", Scope::ReadPersonal));
    assert!(matches!(
        e.create_key(KeyRequest {
            scope: Scope::Admin,
            id: Some("crm".into()),
            expires_in: None
        }),
        Err(EngineError::Govern(_))
    ));

    let list = serde_json::to_string(&e.list_keys()).unwrap();
    assert!(list.contains("\"id\":\"crm\"") && list.contains("\"scope\":\"read:personal\""));
    assert!(list.contains("\"origin\":\"config\""), "{list}");
    assert!(
        !list.contains(&reader.secret) && !list.contains("sha256"),
        "{list}"
    );

    // Expiry follows the engine's clock: an hour later the key is expired, not unknown.
    clock.advance_ms(3_600_000);
    assert!(matches!(
        e.api_key(&reader.secret),
        Err(EngineError::ExpiredKey)
    ));
    assert!(matches!(
        e.api_key("iobr_forged"),
        Err(EngineError::InvalidKey)
    ));
    let crm = e.list_keys().into_iter().find(|k| k.id == "crm").unwrap();
    assert!(crm.expired);

    e.revoke_key(&analyst.id).unwrap();
    assert!(matches!(
        e.api_key(&analyst.secret),
        Err(EngineError::InvalidKey)
    ));
    assert!(
        e.revoke_key("web").is_err(),
        "config keys are revoked in the config"
    );
    e.close().unwrap();

    // Persisted: the expired key is still listed, the revoked one is gone.
    let e = open(dir.path(), clock, ServerConfig::default());
    let ids: Vec<String> = e.list_keys().into_iter().map(|k| k.id).collect();
    assert!(
        ids.contains(&"crm".to_string()) && !ids.contains(&analyst.id),
        "{ids:?}"
    );
    e.close().unwrap();
}

#[test]
fn rate_limits_per_key_and_per_scope() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(T0));
    let mut server = ServerConfig {
        rate_limit_per_sec: 0.001,
        rate_limit_burst: 3.0,
        ..ServerConfig::default()
    };
    server.rate_limit_scopes.insert(
        "admin".into(),
        RateLimitConfig {
            per_sec: 0.0,
            burst: 0.0,
        },
    );
    let e = open(dir.path(), clock, server);
    let mk = |id: &str, scope: Scope| {
        e.create_key(KeyRequest {
            scope,
            id: Some(id.into()),
            expires_in: None,
        })
        .unwrap()
        .secret
    };
    let a = mk("a", Scope::ReadAnalytics);
    let b = mk("b", Scope::ReadAnalytics);
    let admin = mk("boss", Scope::Admin);
    for _ in 0..3 {
        e.api_key(&a).unwrap();
    }
    match e.api_key(&a) {
        Err(EngineError::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::from_secs(100), "{retry_after:?}")
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert!(e.api_key(&b).is_ok(), "another key has its own bucket");
    for _ in 0..50 {
        e.api_key(&admin).unwrap();
    }
    e.close().unwrap();
}
