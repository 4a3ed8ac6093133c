use iob_analyses::generator::{JourneyConfig, for_each_event, journey_source, journeys};
use iob_analyses::{Disclosure, questions};

#[test]
fn journeys_are_deterministic_valid_json_with_drop_off() {
    let cfg = JourneyConfig::new(7, 2_000, 90);
    let mut a = Vec::new();
    journeys(&cfg, |l| a.extend_from_slice(l));
    let mut b = Vec::new();
    journeys(&cfg, |l| b.extend_from_slice(l));
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    let mut names = std::collections::HashMap::new();
    let mut anonymous = 0;
    let mut lines = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["messageId"].is_string()
                && v["timestamp"].is_string()
                && v["context"]["userAgent"].is_string()
        );
        if v["userId"].is_null() {
            anonymous += 1;
        }
        let name = v["event"]
            .as_str()
            .or(v["name"].as_str())
            .unwrap()
            .to_string();
        *names.entry(name).or_insert(0u64) += 1;
        lines += 1;
    }
    let (views, adds, orders) = (
        names["Product Viewed"],
        names["Product Added"],
        names["Order Completed"],
    );
    assert!(lines > 10 * 2_000, "{lines} events");
    assert!(
        (0.04..0.08).contains(&(adds as f64 / views as f64)),
        "{adds}/{views}"
    );
    assert!(orders > 0 && orders < adds);
    assert!(anonymous > lines / 10 && anonymous < lines / 2);
}

#[test]
fn late_events_are_emitted_after_later_ones() {
    let cfg = JourneyConfig::new(1, 500, 30);
    let mut last_ts = std::collections::HashMap::new();
    let mut late = 0;
    for_each_event(&cfg, |e| {
        let prev = last_ts.insert(e.person, e.ts).unwrap_or(i64::MIN);
        if e.ts < prev {
            late += 1;
            assert!(e.received_at > e.ts + 3_599_999);
        }
    });
    assert!(late > 0);
}

#[test]
fn generated_funnel_has_the_planted_shape() {
    let s = journey_source(&JourneyConfig::new(3, 3_000, 60), false, 4096);
    let r = iob_analyses::funnel(&s, &questions::funnel_request(), &Disclosure::none()).unwrap();
    let c: Vec<u64> = r.groups[0]
        .steps
        .iter()
        .map(|s| s.persons.unwrap())
        .collect();
    assert!(c[0] > 2_900 && c[1] < c[0] && c[2] < c[1], "{c:?}");
    assert!(c[2] as f64 / c[1] as f64 > 0.25, "{c:?}");
    // Some purchases come more than 7 days after the view that started the journey.
    let mut wide = questions::funnel_request();
    wide.window_ms = 30 * 86_400_000;
    let r = iob_analyses::funnel(&s, &wide, &Disclosure::none()).unwrap();
    let w: Vec<u64> = r.groups[0]
        .steps
        .iter()
        .map(|s| s.persons.unwrap())
        .collect();
    assert!(w[2] > c[2], "30-day window {w:?} vs 7-day {c:?}");
    let hist = &r.groups[0].steps[2]
        .time_from_first
        .as_ref()
        .unwrap()
        .histogram;
    assert!(hist[8] > 0, "conversions after 7 days: {hist:?}");
}

#[test]
fn json_timestamps_and_ids_match_the_events() {
    let cfg = JourneyConfig::new(9, 300, 20);
    let mut events = Vec::new();
    for_each_event(&cfg, |e| events.push(e.clone()));
    let mut i = 0;
    journeys(&cfg, |line| {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let e = &events[i];
        let ts = time::OffsetDateTime::parse(
            v["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!((ts.unix_timestamp_nanos() / 1_000_000) as i64, e.ts);
        assert_eq!(v["messageId"], format!("m-9-{}", e.n));
        if !e.anonymous {
            assert_eq!(v["userId"], format!("user-{}", e.person));
        }
        i += 1;
    });
    assert_eq!(i, events.len());
}
