use super::*;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn write(source: &str) -> Scope {
    Scope::Write {
        source: source.into(),
    }
}

#[test]
fn generate_authenticate_and_reload_by_hash() {
    let mut ring = KeyRing::default();
    let (secret, stored) = ring.generate("web", write("web"), None, None).unwrap();
    assert!(secret.starts_with("iobw_") && secret.len() == 5 + 48);
    assert_eq!(ring.authenticate(&secret, NOW).unwrap().id, "web");
    assert!(matches!(
        ring.authenticate("iobw_forged", NOW),
        Err(GovernError::InvalidKey)
    ));
    assert!(!stored.sha256.contains(&secret[5..]));

    let mut reloaded = KeyRing::default();
    reloaded.add_stored(stored.clone()).unwrap();
    assert_eq!(
        reloaded.authenticate(&secret, NOW).unwrap().scope,
        write("web")
    );
    let bad = StoredKey {
        sha256: "zz".into(),
        ..stored
    };
    assert!(reloaded.add_stored(bad).unwrap_err().contains("`web`"));
}

#[test]
fn expired_keys_are_told_apart_from_invalid_ones() {
    let mut ring = KeyRing::default();
    let until = NOW.saturating_add_ms(1000);
    let (secret, _) = ring
        .generate("tmp", Scope::ReadPersonal, Some(NOW), Some(until))
        .unwrap();
    assert!(secret.starts_with("iobr_"));
    assert_eq!(ring.authenticate(&secret, NOW).unwrap().id, "tmp");
    assert!(matches!(
        ring.authenticate(&secret, until),
        Err(GovernError::ExpiredKey)
    ));
    assert!(matches!(
        ring.authenticate("iobr_nope", until),
        Err(GovernError::InvalidKey)
    ));
}

#[test]
fn ids_are_unique_and_only_file_keys_revoke() {
    let mut ring = KeyRing::default();
    ring.add_plain("admin", Scope::Admin, "configured-admin-key-123");
    let (secret, _) = ring
        .generate("reader", Scope::ReadAnalytics, None, None)
        .unwrap();
    assert!(matches!(
        ring.generate("reader", Scope::Admin, None, None),
        Err(GovernError::DuplicateKey(_))
    ));
    assert!(matches!(
        ring.generate("bad id", Scope::Admin, None, None),
        Err(GovernError::BadKeyId(_))
    ));
    assert_eq!(ring.stored().count(), 1, "config keys are not persisted");
    assert!(matches!(
        ring.revoke("admin"),
        Err(GovernError::ConfiguredKey(_))
    ));
    assert!(matches!(
        ring.revoke("ghost"),
        Err(GovernError::UnknownKey(_))
    ));
    ring.revoke("reader").unwrap();
    assert!(ring.authenticate(&secret, NOW).is_err());
    assert_eq!(ring.len(), 1);
}

/// The access table, spelled out: any change to who may do what must change this test.
#[test]
fn the_access_table() {
    let scopes = [
        write("web"),
        Scope::ReadAnalytics,
        Scope::ReadPersonal,
        Scope::Admin,
    ];
    let table = [
        (Need::Aggregates, [false, true, true, true]),
        (Need::Personal, [false, false, true, true]),
        (Need::Admin, [false, false, false, true]),
    ];
    for (need, expected) in table {
        for (scope, want) in scopes.iter().zip(expected) {
            assert_eq!(scope.allows(need), want, "{scope} for {need:?}");
        }
    }
}

#[test]
fn scope_names_parse_and_round_trip() {
    for name in SCOPE_NAMES {
        let source = (name == "write").then_some("web");
        let s = Scope::parse(name, source).unwrap();
        assert_eq!(s.name(), name);
    }
    assert!(Scope::parse("write", None).is_err());
    assert!(Scope::parse("admin", Some("web")).is_err());
    let e = Scope::parse("read", None).unwrap_err().to_string();
    assert!(e.contains("read:personal"), "{e}");
}

#[test]
fn stored_key_json_shape_is_stable() {
    let k = StoredKey {
        id: "a".into(),
        scope: Scope::ReadPersonal,
        sha256: "0".repeat(64),
        created_at: None,
        expires_at: Some(NOW),
    };
    let j = serde_json::to_string(&k).unwrap();
    assert!(j.contains("\"scope\":\"read:personal\""), "{j}");
    assert!(
        j.contains("\"expires_at\":\"2027-01-15T08:00:00.000Z\""),
        "{j}"
    );
    assert!(!j.contains("created_at"), "{j}");
    let back: StoredKey = serde_json::from_str(&j).unwrap();
    assert_eq!(back, k);
    // The format written before expiry and read scopes existed still reads.
    let old = r#"{"id":"web","scope":"write","source":"web","sha256":"00"}"#;
    let k: StoredKey = serde_json::from_str(old).unwrap();
    assert_eq!(k.scope, write("web"));
    assert_eq!(k.expires_at, None);
}
