use iob_analyses::trends::TrendsResult;
use iob_analyses::{Disclosure, Filter, FilterOp, Period, Row, TrendsRequest, trends};
use serde_json::json;

use crate::{D, H, T0, all_encodings, src};

fn req(events: &[&str], interval: Period) -> TrendsRequest {
    TrendsRequest {
        events: events
            .iter()
            .map(|e| iob_analyses::funnel::FunnelStep::event(e))
            .map(|s| serde_json::from_value(json!({"event": s.event})).unwrap())
            .collect(),
        interval,
        filters: vec![],
        breakdown: None,
        range: None,
    }
}

type Flat = Vec<(
    Option<String>,
    Option<String>,
    String,
    Option<u64>,
    Option<u64>,
)>;
fn flat(r: &TrendsResult) -> Flat {
    r.series
        .iter()
        .flat_map(|s| {
            s.points.iter().map(move |p| {
                (
                    s.event.clone(),
                    s.value.clone(),
                    p.interval.clone(),
                    p.events,
                    p.persons,
                )
            })
        })
        .collect()
}

fn p(
    e: &str,
    day: &str,
    events: u64,
    persons: u64,
) -> (
    Option<String>,
    Option<String>,
    String,
    Option<u64>,
    Option<u64>,
) {
    (
        Some(e.into()),
        None,
        day.into(),
        Some(events),
        Some(persons),
    )
}

#[test]
fn daily_counts_and_unique_persons_for_two_series() {
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::track(0, T0 + H, "A"),
        Row::track(1, T0 + D - 1, "A"),
        Row::track(1, T0 + D, "A"), // next day
        Row::track(1, T0 + D + 1, "B"),
        Row::track(2, T0 + 3 * D, "A"), // a gap day is not listed
    ];
    for s in all_encodings(&rows) {
        let r = trends(&s, &req(&["A", "B"], Period::Day), &Disclosure::none()).unwrap();
        assert_eq!(
            flat(&r),
            vec![
                p("A", "2024-01-01", 3, 2),
                p("A", "2024-01-02", 1, 1),
                p("A", "2024-01-04", 1, 1),
                p("B", "2024-01-02", 1, 1),
            ]
        );
    }
}

#[test]
fn hourly_weekly_breakdown_and_filters() {
    let rows = vec![
        Row::track(0, T0 + 5 * H, "A").with("browser", "Chrome"),
        Row::track(0, T0 + 5 * H + 1, "A").with("browser", "Firefox"),
        Row::track(1, T0 + 5 * H + 2, "A").with("browser", "Chrome"),
        Row::track(1, T0 + 6 * H, "A").with("browser", "Chrome"),
        Row::track(2, T0 + 6 * H, "A"),
    ];
    let mut q = req(&["A"], Period::Hour);
    q.breakdown = Some("browser".into());
    let r = trends(&src(rows.clone()), &q, &Disclosure::none()).unwrap();
    let got: Vec<_> = flat(&r)
        .into_iter()
        .map(|(_, v, i, e, p)| (v, i, e.unwrap(), p.unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, "2024-01-01T06:00:00Z".into(), 1, 1),
            (Some("Chrome".into()), "2024-01-01T05:00:00Z".into(), 2, 2),
            (Some("Chrome".into()), "2024-01-01T06:00:00Z".into(), 1, 1),
            (Some("Firefox".into()), "2024-01-01T05:00:00Z".into(), 1, 1),
        ]
    );
    let mut q = req(&["A"], Period::Week);
    q.filters = vec![Filter::new(
        "browser",
        FilterOp::In,
        Some(json!(["Chrome", "Safari"])),
    )];
    let r = trends(&src(rows), &q, &Disclosure::none()).unwrap();
    assert_eq!(flat(&r), vec![p("A", "2024-01-01", 3, 2)]);
}

#[test]
fn points_below_k_persons_are_suppressed() {
    let mut rows = Vec::new();
    for p in 0..4u64 {
        rows.push(Row::track(p, T0, "A"));
        rows.push(Row::track(p, T0 + 1, "A"));
    }
    rows.push(Row::track(0, T0 + D, "A"));
    rows.push(Row::track(0, T0 + D + 1, "A"));
    let r = trends(&src(rows), &req(&["A"], Period::Day), &Disclosure::k(4)).unwrap();
    let pts = &r.series[0].points;
    assert_eq!(
        (pts[0].events, pts[0].persons, pts[0].suppressed),
        (Some(8), Some(4), false)
    );
    assert_eq!(
        (pts[1].events, pts[1].persons, pts[1].suppressed),
        (None, None, true)
    );
    assert_eq!(r.disclosure.suppressed_groups, 1);
}

#[test]
fn many_breakdown_values_count_persons_once_per_interval() {
    // 12 values: the first 8 use dense per-person arrays, the rest a hash set.
    let mut rows = Vec::new();
    for round in 0..2i64 {
        for v in 0..12i64 {
            for person in 0..2u64 {
                let t = T0 + round * 100 + v * 5 + person as i64;
                rows.push(Row::track(person, t, "A").props(json!({"v": v})));
            }
        }
    }
    rows.push(Row::track(0, T0 + D, "A").props(json!({"v": 11})));
    let mut q = req(&["A"], Period::Day);
    q.breakdown = Some("properties.v".into());
    let r = trends(&src(rows), &q, &Disclosure::none()).unwrap();
    assert_eq!(r.series.len(), 12);
    for s in &r.series {
        let day0 = &s.points[0];
        assert_eq!(
            (day0.events, day0.persons),
            (Some(4), Some(2)),
            "value {:?}",
            s.value
        );
    }
    let eleven = r
        .series
        .iter()
        .find(|s| s.value.as_deref() == Some("11"))
        .unwrap();
    assert_eq!(eleven.points.len(), 2);
    assert_eq!(
        (eleven.points[1].events, eleven.points[1].persons),
        (Some(1), Some(1))
    );
}
