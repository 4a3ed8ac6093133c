use iob_types::EventKind;
use serde_json::json;

use crate::util::*;

#[test]
fn identify_links_anonymous_history_to_the_user() {
    let mut u = unifier();
    let p = apply_all(
        &mut u,
        &[
            track(None, Some("a1"), "Product Viewed", T0, json!({})),
            Ev(
                EventKind::Identify,
                T0 + 1000,
                json!({"type":"identify","userId":"u1","anonymousId":"a1","traits":{"email":"Ada@Example.com","name":"Ada"}}),
            ),
            track(
                Some("u1"),
                None,
                "Order Completed",
                T0 + 2000,
                json!({"total": 30}),
            ),
        ],
    );
    assert_eq!(p[0], p[1]);
    assert_eq!(p[1], p[2]);
    assert_eq!(u.persons(), 1);
    // Any identifier finds the person, e-mail normalized.
    for id in [
        "a1",
        "u1",
        "ada@example.com",
        " ADA@example.COM ",
        "email:ada@example.com",
        "user:u1",
        "person:0",
    ] {
        assert_eq!(u.lookup(id), p[0], "{id}");
    }
    for id in ["email:u1", "user:a1", "person:7", "person:x", "nobody"] {
        assert_eq!(u.lookup(id), None, "{id}");
    }
    let view = u.view(&ops(), p[0].unwrap(), T0 + 3000).unwrap();
    assert_eq!(view.events, 3);
    assert_eq!(view.rfm.monetary, 30.0);
    assert_eq!(view.traits["name"].get(), "\"Ada\"");
    let ex = u.explain(&ops(), p[0].unwrap()).unwrap();
    let kinds: Vec<_> = ex
        .identifiers
        .iter()
        .map(|i| (i.kind.as_str(), i.linked_by.seq))
        .collect();
    assert_eq!(kinds, vec![("anon", 0), ("user", 1), ("email", 1)]);
}

#[test]
fn two_known_users_never_merge_through_a_shared_device_or_cookie() {
    let mut u = unifier();
    let p = apply_all(
        &mut u,
        &[
            track(Some("alice"), Some("shared-cookie"), "Login", T0, json!({})),
            track(
                Some("bob"),
                Some("shared-cookie"),
                "Login",
                T0 + 1000,
                json!({}),
            ),
            track(
                None,
                Some("shared-cookie"),
                "Product Viewed",
                T0 + 2000,
                json!({}),
            ),
        ],
    );
    assert_ne!(p[0], p[1], "one user id per person");
    assert_eq!(u.persons(), 2);
    // The cookie stays with its first person; bob's event is bob's.
    assert_eq!(p[2], p[0]);
    let ex = u.explain(&ops(), p[1].unwrap()).unwrap();
    assert_eq!(ex.identifiers.len(), 1);
    let refusals = &u.explain(&ops(), p[0].unwrap()).unwrap().refusals;
    assert!(refusals.is_empty());
    let bob_refusals = &ex.refusals;
    assert_eq!(bob_refusals.len(), 1, "{ex:?}");
    assert!(
        bob_refusals[0].reason.contains("more than 1 `user`"),
        "{bob_refusals:?}"
    );
}

#[test]
fn merges_fold_two_persons_and_are_explained() {
    let mut u = unifier();
    let p = apply_all(
        &mut u,
        &[
            track(
                None,
                Some("phone-app"),
                "Product Viewed",
                T0,
                json!({"product_id": "p1"}),
            ),
            track(
                None,
                Some("laptop"),
                "Product Viewed",
                T0 + 1,
                json!({"product_id": "p2"}),
            ),
            track(Some("carol"), Some("laptop"), "Login", T0 + 2, json!({})),
            Ev(
                EventKind::Alias,
                T0 + 3,
                json!({"type":"alias","userId":"carol","previousId":"phone-app"}),
            ),
        ],
    );
    assert_ne!(p[0], p[1]);
    assert_eq!(p[2], p[1]);
    let carol = p[3].unwrap();
    assert_eq!(u.persons(), 1);
    assert_eq!(u.lookup("phone-app"), Some(carol));
    // The older person id survives a merge.
    assert_eq!(carol, p[0].unwrap().min(p[1].unwrap()));
    let view = u.view(&ops(), carol, T0 + 10).unwrap();
    assert_eq!(view.events, 4);
    assert_eq!(view.top_items.len(), 2);
    let ex = u.explain(&ops(), carol).unwrap();
    assert_eq!(ex.merges.len(), 1);
    assert_eq!(ex.merges[0].by.seq, 3);
    // The merged-away id redirects.
    assert_eq!(u.graph().current(p[1].unwrap()), Some(carol));
    // The journey holds both persons' events, newest first, paged.
    let seqs: Vec<u64> = u
        .journey(&ops(), carol, None, 10)
        .unwrap()
        .iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(seqs, vec![3, 2, 1, 0]);
    let page2 = u.journey(&ops(), carol, Some((T0 + 2, 2)), 2).unwrap();
    assert_eq!(page2, vec![(T0 + 1, 1), (T0, 0)]);
}

#[test]
fn blocked_values_are_not_identifiers() {
    let mut u = unifier();
    let p = apply_all(
        &mut u,
        &[
            track(Some("null"), Some("a1"), "X", T0, json!({})),
            track(Some("undefined"), Some("a2"), "X", T0, json!({})),
            track(Some("0"), Some("a3"), "X", T0, json!({})),
            track(Some(""), Some("a4"), "X", T0, json!({})),
            track(Some("null"), None, "X", T0, json!({})),
        ],
    );
    assert_eq!(u.persons(), 4, "no merge through blocked user ids");
    assert_eq!(
        p[4], None,
        "an event with only blocked ids belongs to nobody"
    );
    assert_eq!(u.skipped(), 1);
    assert_eq!(u.lookup("null"), None);
}

#[test]
fn devices_registered_by_their_owner_link_readings() {
    let mut u = unifier();
    let p = apply_all(
        &mut u,
        &[
            Ev(
                EventKind::Identify,
                T0,
                json!({"type":"identify","userId":"dan","context":{"device":{"id":"watch-9","type":"watch"}}}),
            ),
            Ev(
                EventKind::Observe,
                T0 + 60_000,
                json!({"type":"observe","deviceId":"watch-9","metric":"heart_rate","value":62}),
            ),
            Ev(
                EventKind::Observe,
                T0 + 120_000,
                json!({"type":"observe","deviceId":"watch-9","metric":"heart_rate","value":"n/a"}),
            ),
            Ev(
                EventKind::Observe,
                T0 + 180_000,
                json!({"type":"observe","deviceId":"watch-9","metric":"heart_rate","value":70}),
            ),
        ],
    );
    assert!(p.iter().all(|x| *x == p[0]));
    let v = u.view(&ops(), p[0].unwrap(), T0 + 200_000).unwrap();
    let hr = &v.metrics["heart_rate"];
    assert_eq!(hr.n, 2, "a non-numeric value is not a reading");
    assert_eq!((hr.mean, hr.min, hr.max, hr.last), (66.0, 62.0, 70.0, 70.0));
    assert_eq!(v.devices["watch"], 1);
}
