//! Consent histories: reads refused without consent, withdrawal effective on the next read,
//! histories merged with identities, and erasure.

use iob_govern::{Actor, Governor};
use iob_types::{EventKind, Purpose};
use iob_unify::ReadRefused;
use serde_json::json;

use crate::util::*;

fn permit(purpose: &str) -> iob_govern::Permit {
    Governor::default()
        .permit(Actor::Operator, &Purpose::new(purpose).unwrap())
        .unwrap()
}

fn consent(
    user: Option<&str>,
    anon: Option<&str>,
    granted: &[&str],
    denied: &[&str],
    at: i64,
) -> Ev {
    let mut v = json!({"type": "consent", "granted": granted, "denied": denied,
        "policyVersion": "2026-01", "source": "banner", "iobSource": "web"});
    if let Some(u) = user {
        v["userId"] = json!(u);
    }
    if let Some(a) = anon {
        v["anonymousId"] = json!(a);
    }
    Ev(EventKind::Consent, at, v)
}

#[test]
fn reads_follow_the_latest_choice_by_event_time() {
    let mut u = unifier();
    apply_all(
        &mut u,
        &[
            track(Some("ada"), None, "Viewed", T0, json!({})),
            consent(Some("ada"), None, &["marketing"], &[], T0 + 10),
        ],
    );
    let p = u.lookup("ada").unwrap();
    // analytics is opt-out: allowed; marketing granted; health opt-in, never granted.
    assert!(u.view(&permit("analytics"), p, T0).is_ok());
    assert!(u.view(&permit("marketing"), p, T0).is_ok());
    let err = u.view(&permit("health"), p, T0).unwrap_err();
    assert!(matches!(err, ReadRefused::Consent { .. }), "{err:?}");
    assert!(u.journey(&permit("health"), p, None, 10).is_err());
    assert!(u.explain(&permit("health"), p).is_err());
    // Withdrawn: the next read is refused. A late, older grant does not undo it.
    apply_all(
        &mut u,
        &[
            consent(Some("ada"), None, &[], &["marketing", "analytics"], T0 + 20),
            consent(Some("ada"), None, &["marketing"], &[], T0 + 15),
        ],
    );
    assert!(u.view(&permit("marketing"), p, T0).is_err());
    assert!(u.view(&permit("analytics"), p, T0).is_err());
    // Operations (erasure, export, the engine's jobs) is not consent-based.
    assert!(u.view(&ops(), p, T0).is_ok());
    let h = u.consents(p).unwrap();
    assert_eq!(h.choices().len(), 4);
    assert_eq!(h.choices()[0].policy_version.as_deref(), Some("2026-01"));
}

#[test]
fn category_preferences_and_merges_carry_consent() {
    let mut u = unifier();
    let mut t = track(None, Some("anon-1"), "Viewed", T0, json!({}));
    t.2["context"] = json!({"consent": {"categoryPreferences": {"Health": true}}});
    apply_all(
        &mut u,
        &[
            t,
            // Unknown person so far: the consent founds them.
            consent(Some("bob"), None, &["personalization"], &[], T0 + 1),
        ],
    );
    let anon = u.lookup("anon:anon-1").unwrap();
    assert!(u.view(&permit("health"), anon, T0).is_ok());
    let bob = u.lookup("bob").unwrap();
    assert!(u.view(&permit("health"), bob, T0).is_err());
    // identify links the anonymous visitor to bob: one person, both choices.
    let mut id = track(Some("bob"), Some("anon-1"), "Signed In", T0 + 2, json!({}));
    id.0 = EventKind::Identify;
    id.2["type"] = json!("identify");
    apply_all(&mut u, &[id]);
    let bob = u.lookup("bob").unwrap();
    assert_eq!(u.lookup("anon:anon-1"), Some(bob));
    assert!(u.view(&permit("health"), bob, T0).is_ok());
    assert!(u.view(&permit("personalization"), bob, T0).is_ok());
}

#[test]
fn erase_forgets_identifiers_profile_journey_and_consent() {
    let mut u = unifier();
    apply_all(
        &mut u,
        &[
            track(
                Some("carol"),
                Some("a-9"),
                "Viewed",
                T0,
                json!({"sku": "x"}),
            ),
            consent(Some("carol"), None, &["marketing"], &[], T0 + 1),
            track(Some("dave"), None, "Viewed", T0 + 2, json!({})),
        ],
    );
    let carol = u.lookup("carol").unwrap();
    let persons = u.graph().persons();
    assert!(
        u.erase(&permit("analytics"), carol).is_err(),
        "erasure needs operations"
    );
    let gone = u.erase(&ops(), carol).unwrap();
    assert_eq!(gone.events, vec![0, 1]);
    assert_eq!(gone.identifiers.len(), 2);
    assert_eq!(u.lookup("carol"), None);
    assert_eq!(u.lookup("anon:a-9"), None);
    assert_eq!(
        u.view(&ops(), carol, T0).unwrap_err(),
        ReadRefused::UnknownPerson
    );
    assert!(u.consents(carol).is_none());
    assert_eq!(u.graph().persons(), persons - 1);
    assert!(u.lookup("dave").is_some());
    // The snapshot no longer holds carol, and restores.
    let snap = u.snapshot();
    let mut r = unifier();
    r.restore(&snap).unwrap();
    assert_eq!(r.lookup("carol"), None);
    assert_eq!(r.graph().persons(), persons - 1);
    // The same identifier coming back founds a new person.
    apply_all(
        &mut u,
        &[track(Some("carol"), None, "Viewed", T0 + 5, json!({}))],
    );
    let again = u.lookup("carol").unwrap();
    assert_ne!(again, carol);
    assert_eq!(u.view(&ops(), again, T0 + 5).unwrap().events, 1);
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Consent choices applied in any arrival order give the same decisions and the same
    /// history (by event time), also when the choices are split across two identities that
    /// merge later.
    #[test]
    fn consent_does_not_depend_on_arrival_order(
        choices in proptest::collection::vec((0usize..4, any::<bool>(), any::<bool>()), 1..12),
        order in any::<u64>(),
    ) {
        const PURPOSES: [&str; 4] = ["analytics", "personalization", "marketing", "health"];
        // Distinct event times (a tie is broken by log position, which is arrival order).
        let evs: Vec<Ev> = choices
            .iter()
            .enumerate()
            .map(|(i, &(p, granted, anon))| {
                let (g, d): (Vec<&str>, Vec<&str>) = if granted {
                    (vec![PURPOSES[p]], vec![])
                } else {
                    (vec![], vec![PURPOSES[p]])
                };
                if anon {
                    consent(None, Some("a-1"), &g, &d, T0 + i as i64 * 1000)
                } else {
                    consent(Some("u-1"), None, &g, &d, T0 + i as i64 * 1000)
                }
            })
            .collect();
        let mut link = track(Some("u-1"), Some("a-1"), "Signed In", T0 - 1, json!({}));
        link.0 = EventKind::Identify;
        link.2["type"] = json!("identify");

        let mut shuffled = evs.clone();
        let mut state = order;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let mut a = unifier();
        let mut in_order = vec![link.clone()];
        in_order.extend(evs);
        apply_all(&mut a, &in_order);
        let mut b = unifier();
        shuffled.push(link);
        apply_all(&mut b, &shuffled);

        let (pa, pb) = (a.lookup("u-1").unwrap(), b.lookup("u-1").unwrap());
        prop_assert_eq!(b.lookup("anon:a-1"), Some(pb));
        for p in PURPOSES {
            let purpose = Purpose::new(p).unwrap();
            prop_assert_eq!(a.decide(pa, &purpose), b.decide(pb, &purpose), "{}", p);
        }
        let strip = |u: &iob_unify::Unifier, p| -> Vec<(String, bool, i64)> {
            u.consents(p)
                .map(|h| h.choices().iter().map(|c| (c.purpose.clone(), c.granted, c.at)).collect())
                .unwrap_or_default()
        };
        prop_assert_eq!(strip(&a, pa), strip(&b, pb));
    }
}
