use iob_govern::{Governor, Permit, Pseudonymizer, SecretKey};
use iob_types::EventKind;
use iob_unify::{IdentityConfig, PersonId, ProfileConfig, StoredEvent, Unifier};
use serde_json::{Value, json};

pub const T0: i64 = 1_763_600_000_000; // 2025-11-20

/// A permit for the engine's own work (not consent-based), for tests of what is computed.
pub fn ops() -> Permit {
    Governor::default().system("test")
}

pub fn unifier() -> Unifier {
    let key = SecretKey::from_bytes(&[7u8; 32]).unwrap();
    Unifier::new(
        Pseudonymizer::new(&key),
        &IdentityConfig::default(),
        ProfileConfig::default(),
    )
    .unwrap()
}

/// A stored event: `(kind, event time, JSON)`.
#[derive(Clone, Debug)]
pub struct Ev(pub EventKind, pub i64, pub Value);

pub fn track(user: Option<&str>, anon: Option<&str>, name: &str, at: i64, props: Value) -> Ev {
    let mut v = json!({"type": "track", "event": name, "properties": props, "iobSource": "web"});
    if let Some(u) = user {
        v["userId"] = json!(u);
    }
    if let Some(a) = anon {
        v["anonymousId"] = json!(a);
    }
    Ev(EventKind::Track, at, v)
}

pub fn apply_all(u: &mut Unifier, evs: &[Ev]) -> Vec<Option<PersonId>> {
    evs.iter()
        .enumerate()
        .map(|(i, e)| {
            let payload = serde_json::to_vec(&e.2).unwrap();
            let seq = u.applied().map_or(0, |a| a + 1).max(i as u64);
            u.apply(StoredEvent {
                seq,
                kind: e.0,
                at: e.1,
                payload: &payload,
            })
            .unwrap()
        })
        .collect()
}
