//! The hand-written writer must equal `serde_json` over the `Serialize` impl, byte for byte.

use proptest::prelude::*;
use serde_json::value::RawValue;

use crate::{
    ConsentChange, Device, Enrichment, Event, EventKind, Purpose, Reading, Timestamp, UserAgent,
};

fn text() -> impl Strategy<Value = String> {
    // Plain ASCII most of the time, plus quotes, backslashes, control characters and non-ASCII.
    prop_oneof![
        "[a-zA-Z0-9 _.-]{0,12}",
        "\\PC{0,12}",
        proptest::collection::vec(any::<char>(), 0..8).prop_map(|v| v.into_iter().collect()),
        Just("a\"b\\c\u{1}\n\t\u{7f}é😀".to_string()),
    ]
}

fn raw_object() -> impl Strategy<Value = Box<RawValue>> {
    proptest::collection::vec((text(), any::<i32>()), 0..4).prop_map(|kv| {
        let m: serde_json::Map<String, serde_json::Value> =
            kv.into_iter().map(|(k, v)| (k, v.into())).collect();
        RawValue::from_string(serde_json::to_string(&m).unwrap()).unwrap()
    })
}

fn ts() -> impl Strategy<Value = Timestamp> {
    prop_oneof![0i64..7_258_118_400_000, any::<i64>()].prop_map(Timestamp)
}

fn purposes() -> impl Strategy<Value = Vec<Purpose>> {
    proptest::collection::vec("[a-z_-]{1,10}", 0..3)
        .prop_map(|v| v.iter().map(|p| Purpose::new(p).unwrap()).collect())
}

fn device() -> impl Strategy<Value = Device> {
    proptest::sample::select(vec![
        Device::Desktop,
        Device::Mobile,
        Device::Tablet,
        Device::Featurephone,
        Device::Appliance,
        Device::Bot,
        Device::Other,
        Device::Unknown,
    ])
}

fn enrichment() -> impl Strategy<Value = Enrichment> {
    let ua = (
        proptest::collection::vec(proptest::option::of(text()), 4),
        device(),
    )
        .prop_map(|(v, device)| {
            let mut v = v.into_iter();
            UserAgent {
                browser: v.next().unwrap(),
                browser_version: v.next().unwrap(),
                os: v.next().unwrap(),
                os_version: v.next().unwrap(),
                device,
            }
        });
    let score = prop_oneof![
        -1.0f64..=1.0,
        Just(0.0),
        Just(-0.0),
        Just(0.6369),
        Just(1.0)
    ];
    (
        proptest::option::of(ua),
        proptest::collection::vec((text(), score), 0..3),
    )
        .prop_map(|(user_agent, sentiment)| Enrichment {
            user_agent,
            sentiment,
        })
}

prop_compose! {
    fn event()(
        kind in proptest::sample::select(EventKind::ALL.to_vec()),
        message_id in text(),
        ids in proptest::collection::vec(proptest::option::of(text()), 8),
        times in (ts(), proptest::option::of(ts()), proptest::option::of(ts()), ts()),
        nested in proptest::collection::vec(proptest::option::of(raw_object()), 5),
        value in prop_oneof![any::<f64>(), Just(1.0), Just(71.5), Just(f64::NAN), Just(1e21)],
        reading_text in (text(), text(), proptest::option::of(text())),
        consent in (purposes(), purposes(), proptest::option::of(text()), proptest::option::of(text())),
        extra in proptest::collection::vec((text(), raw_object()), 0..3),
        enrichment in proptest::option::of(enrichment()),
    ) -> Event {
        let mut e = Event::new(kind, message_id, times.0);
        let mut ids = ids.into_iter();
        e.source = ids.next().unwrap();
        e.user_id = ids.next().unwrap();
        e.anonymous_id = ids.next().unwrap();
        e.previous_id = ids.next().unwrap();
        e.group_id = ids.next().unwrap();
        e.event = ids.next().unwrap();
        e.name = ids.next().unwrap();
        e.category = ids.next().unwrap();
        e.original_timestamp = times.1;
        e.sent_at = times.2;
        e.received_at = times.3;
        let mut nested = nested.into_iter();
        e.properties = nested.next().unwrap();
        e.traits = nested.next().unwrap();
        e.context = nested.next().unwrap();
        e.integrations = nested.next().unwrap();
        if kind == EventKind::Observe {
            e.reading = Some(Reading {
                device_id: reading_text.0,
                metric: reading_text.1,
                value,
                unit: reading_text.2,
                tags: nested.next().unwrap(),
            });
        }
        if kind == EventKind::Consent {
            e.consent = Some(ConsentChange {
                granted: consent.0,
                denied: consent.1,
                policy_version: consent.2,
                source: consent.3,
            });
        }
        e.extra = extra;
        e.enrichment = enrichment;
        e
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hand_writer_equals_serde(e in event()) {
        let serde = serde_json::to_vec(&e).unwrap();
        let ours = e.to_json();
        prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
    }

    #[test]
    fn canonical_json_roundtrips(e in event()) {
        // What the collector stores survives JSON: distinct sentiment keys, no key
        // `iobEnrichment` among the unknown fields, a non-empty enrichment, valid times.
        let mut e = e;
        if let Some(en) = &mut e.enrichment {
            let mut seen = std::collections::HashSet::new();
            en.sentiment.retain(|(k, _)| seen.insert(k.clone()));
            // The collector stores scores rounded to 4 decimals, which JSON keeps exactly.
            for (_, v) in &mut en.sentiment {
                *v = (*v * 1e4).round() / 1e4;
            }
            if en.is_empty() {
                e.enrichment = None;
            }
        }
        e.extra.retain(|(k, _)| k != "iobEnrichment");
        let valid = |t: Timestamp| Timestamp(t.0.rem_euclid(7_258_118_400_000));
        e.timestamp = valid(e.timestamp);
        e.received_at = valid(e.received_at);
        e.original_timestamp = e.original_timestamp.map(valid);
        e.sent_at = e.sent_at.map(valid);
        if let Some(r) = &mut e.reading {
            r.value = 71.5; // arbitrary f64s do not survive serde_json's default float parser
        }
        let bytes = e.to_json();
        let back = Event::from_json(&bytes).unwrap();
        prop_assert_eq!(&back.enrichment, &e.enrichment);
        prop_assert_eq!(back.to_json(), bytes);
    }

    #[test]
    fn source_splice_point_is_after_the_message_id(e in event()) {
        let mut without = e.clone();
        without.source = None;
        let mut out = Vec::new();
        let at = crate::EventRef::of(&without).write_json(&mut out, without.extra.iter().map(|(k, v)| (k.as_str(), v.get())));
        if let Some(src) = &e.source {
            let mut spliced = out[..at].to_vec();
            spliced.extend_from_slice(b",\"iobSource\":");
            crate::write_json_str(&mut spliced, src);
            spliced.extend_from_slice(&out[at..]);
            prop_assert_eq!(spliced, e.to_json());
        } else {
            prop_assert_eq!(out, e.to_json());
        }
    }
}
