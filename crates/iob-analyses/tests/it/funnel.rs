use iob_analyses::funnel::{FunnelGroup, FunnelStep};
use iob_analyses::{
    AnalysisError, DayChunk, Disclosure, EventSource, Filter, FilterOp, FunnelMode, FunnelRequest,
    MemorySource, Row, funnel,
};
use serde_json::json;

use crate::{D, H, MIN, T0, all_encodings, src};

fn counts(g: &FunnelGroup) -> Vec<Option<u64>> {
    g.steps.iter().map(|s| s.persons).collect()
}

fn run(rows: Vec<Row>, req: &FunnelRequest) -> Vec<Option<u64>> {
    let r = funnel(&src(rows), req, &Disclosure::none()).unwrap();
    assert_eq!(r.groups.len(), 1);
    counts(&r.groups[0])
}

fn abc(mode: FunnelMode, window_ms: i64) -> FunnelRequest {
    FunnelRequest {
        mode,
        window_ms,
        ..FunnelRequest::new(&["A", "B", "C"])
    }
}

#[test]
fn window_edge_is_inclusive() {
    let w = 2 * H;
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::track(0, T0 + w, "B"),     // exactly at the edge: counts
        Row::track(0, T0 + w + 1, "C"), // 1 ms outside: does not
        Row::track(1, T0, "A"),
        Row::track(1, T0 + w + 1, "B"), // just outside
        Row::track(2, T0, "A"),
        Row::track(2, T0 + 1, "B"),
        Row::track(2, T0 + w, "C"),
    ];
    assert_eq!(
        run(rows, &abc(FunnelMode::Ordered, w)),
        vec![Some(3), Some(2), Some(1)]
    );
}

#[test]
fn ordered_strict_and_any_differ_as_defined() {
    let rows = vec![
        // p0: A X B C — ordered 3, strict 1 (X breaks), any 3.
        Row::track(0, T0, "A"),
        Row::track(0, T0 + MIN, "X"),
        Row::track(0, T0 + 2 * MIN, "B"),
        Row::track(0, T0 + 3 * MIN, "C"),
        // p1: B A C — ordered 1 (B before A; C needs B after A), strict 1, any 3.
        Row::track(1, T0, "B"),
        Row::track(1, T0 + MIN, "A"),
        Row::track(1, T0 + 2 * MIN, "C"),
        // p2: A B C consecutive — 3 in every mode.
        Row::track(2, T0, "A"),
        Row::track(2, T0 + MIN, "B"),
        Row::track(2, T0 + 2 * MIN, "C"),
        // p3: C B — no step 1: 0 everywhere except... any needs A: 0.
        Row::track(3, T0, "C"),
        Row::track(3, T0 + MIN, "B"),
    ];
    let w = H;
    assert_eq!(
        run(rows.clone(), &abc(FunnelMode::Ordered, w)),
        vec![Some(3), Some(2), Some(2)]
    );
    assert_eq!(
        run(rows.clone(), &abc(FunnelMode::Strict, w)),
        vec![Some(3), Some(1), Some(1)]
    );
    assert_eq!(
        run(rows, &abc(FunnelMode::Any, w)),
        vec![Some(3), Some(3), Some(3)]
    );
}

#[test]
fn strict_takes_a_later_attempt_when_the_first_is_broken() {
    // A X A B C: the first attempt breaks at X, the second completes.
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::page(0, T0 + 1, "X"),
        Row::track(0, T0 + 2, "A"),
        Row::track(0, T0 + 3, "B"),
        Row::track(0, T0 + 4, "C"),
    ];
    assert_eq!(
        run(rows, &abc(FunnelMode::Strict, H)),
        vec![Some(1), Some(1), Some(1)]
    );
}

#[test]
fn a_late_event_counts_at_its_event_time() {
    // Arrival order A, C, B, but B happened between A and C: sorted input gives 3 steps.
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::track(0, T0 + 2 * H, "C"),
        Row::track(0, T0 + H, "B"), // arrives last (larger seq), earlier time
    ];
    assert_eq!(
        run(rows, &abc(FunnelMode::Ordered, 3 * H)),
        vec![Some(1), Some(1), Some(1)]
    );
}

/// A source that hands rows over as they arrived (not sorted): the kernel must refuse it.
struct Unsorted(MemorySource);
impl EventSource for Unsorted {
    fn scan(
        &self,
        columns: &[&str],
        range: Option<(i64, i64)>,
        f: &mut dyn FnMut(DayChunk) -> Result<(), AnalysisError>,
    ) -> Result<(), AnalysisError> {
        let mut chunks = Vec::new();
        self.0.scan(columns, range, &mut |c| {
            chunks.push(c);
            Ok(())
        })?;
        chunks.reverse();
        for c in chunks {
            f(c)?;
        }
        Ok(())
    }
}

#[test]
fn unsorted_input_is_refused_not_miscounted() {
    let rows = vec![Row::track(0, T0, "A"), Row::track(0, T0 + 2 * D, "B")];
    let err = funnel(
        &Unsorted(src(rows)),
        &abc(FunnelMode::Ordered, H),
        &Disclosure::none(),
    )
    .unwrap_err();
    assert!(matches!(err, AnalysisError::Order(_)), "{err}");
}

#[test]
fn repeated_attempts_use_the_best_start_and_time_it() {
    let w = 7 * D;
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::track(0, T0 + 6 * D, "A"),
        Row::track(0, T0 + 8 * D, "B"), // 8 d after the first A, 2 d after the second
        Row::track(0, T0 + 12 * D, "C"), // 6 d after the second A
    ];
    let r = funnel(
        &src(rows),
        &abc(FunnelMode::Ordered, w),
        &Disclosure::none(),
    )
    .unwrap();
    let g = &r.groups[0];
    assert_eq!(counts(g), vec![Some(1), Some(1), Some(1)]);
    assert_eq!(
        g.steps[1].time_from_first.as_ref().unwrap().median_ms,
        2 * D
    );
    assert_eq!(
        g.steps[2].time_from_first.as_ref().unwrap().median_ms,
        6 * D
    );
    assert_eq!(
        g.steps[2].time_from_previous.as_ref().unwrap().median_ms,
        4 * D
    );
    assert_eq!(
        g.steps[2].time_from_previous.as_ref().unwrap().histogram[7],
        1,
        "3d..7d bucket"
    );
    assert_eq!(g.steps[2].conversion_from_first, Some(1.0));
}

#[test]
fn equal_timestamps_follow_seq_and_one_event_advances_one_step() {
    let req = FunnelRequest {
        window_ms: H,
        ..FunnelRequest::new(&["A", "B"])
    };
    // Same time, A arrived first: counts.
    let rows = vec![Row::track(0, T0, "A").seq(1), Row::track(0, T0, "B").seq(2)];
    assert_eq!(run(rows, &req), vec![Some(1), Some(1)]);
    // Same time, B arrived first: B precedes A in stream order.
    let rows = vec![Row::track(0, T0, "B").seq(1), Row::track(0, T0, "A").seq(2)];
    assert_eq!(run(rows, &req), vec![Some(1), Some(0)]);
    // Steps A → A: one A is step 1 only, two are both steps.
    let aa = FunnelRequest {
        window_ms: H,
        ..FunnelRequest::new(&["A", "A"])
    };
    assert_eq!(
        run(vec![Row::track(0, T0, "A")], &aa),
        vec![Some(1), Some(0)]
    );
    let rows = vec![Row::track(0, T0, "A"), Row::track(0, T0 + 1, "A")];
    assert_eq!(run(rows, &aa), vec![Some(1), Some(1)]);
}

#[test]
fn breakdown_uses_the_first_step_one_event() {
    let rows = vec![
        Row::track(0, T0, "A").with("campaign_source", "google"),
        Row::track(0, T0 + 1, "A").with("campaign_source", "facebook"),
        Row::track(0, T0 + 2, "B"),
        Row::track(1, T0, "A").with("campaign_source", "facebook"),
        Row::track(2, T0, "A"),
        Row::track(2, T0 + 1, "B"),
        Row::track(3, T0, "B").with("campaign_source", "tv"), // never enters
    ];
    let req = FunnelRequest {
        breakdown: Some("campaign_source".into()),
        window_ms: H,
        ..FunnelRequest::new(&["A", "B"])
    };
    for s in all_encodings(&rows) {
        let r = funnel(&s, &req, &Disclosure::none()).unwrap();
        let got: Vec<(Option<String>, Vec<Option<u64>>)> = r
            .groups
            .iter()
            .map(|g| (g.value.clone(), counts(g)))
            .collect();
        assert_eq!(
            got,
            vec![
                (None, vec![Some(1), Some(1)]),
                (Some("facebook".into()), vec![Some(1), Some(0)]),
                (Some("google".into()), vec![Some(1), Some(1)]),
            ]
        );
    }
}

#[test]
fn step_filters_compare_numbers_typed() {
    let rows = vec![
        Row::track(0, T0, "A").props(json!({"price": "12.5"})), // numeric string: 12.5 > 10
        Row::track(1, T0, "A").props(json!({"price": 5})),
        Row::track(2, T0, "A").props(json!({"price": "cheap"})), // not a number: no match
        Row::track(3, T0, "A").props(json!({"price": 11, "tier": {"name": "gold"}})),
        Row::track(4, T0, "A"),
    ];
    let mut req = FunnelRequest::new(&["A"]);
    req.steps[0].filters = vec![Filter::new(
        "properties.price",
        FilterOp::Gt,
        Some(json!(10)),
    )];
    assert_eq!(run(rows.clone(), &req), vec![Some(2)]);
    req.steps[0].filters = vec![Filter::new(
        "properties.price",
        FilterOp::Eq,
        Some(json!("5")),
    )];
    assert_eq!(
        run(rows.clone(), &req),
        vec![Some(1)],
        "string literal equals number 5"
    );
    req.steps[0].filters = vec![Filter::new(
        "properties.tier.name",
        FilterOp::Eq,
        Some(json!("gold")),
    )];
    assert_eq!(run(rows.clone(), &req), vec![Some(1)], "dotted path");
    req.steps[0].filters = vec![Filter::new(
        "properties.price",
        FilterOp::Ne,
        Some(json!(5)),
    )];
    assert_eq!(
        run(rows.clone(), &req),
        vec![Some(4)],
        "ne includes missing"
    );
    req.steps[0].filters = vec![Filter::new("properties.price", FilterOp::IsNotSet, None)];
    assert_eq!(run(rows, &req), vec![Some(1)]);
}

#[test]
fn wrong_filter_types_are_request_errors_naming_the_field() {
    let mut req = FunnelRequest::new(&["A", "B"]);
    req.steps[1].filters = vec![Filter::new("value", FilterOp::Eq, Some(json!("abc")))];
    let e = funnel(&src(vec![]), &req, &Disclosure::none())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("steps[1].filters[0].value") && e.contains("number"),
        "{e}"
    );
    req.steps[1].filters = vec![Filter::new(
        "properties.price",
        FilterOp::Gt,
        Some(json!("ten")),
    )];
    let e = funnel(&src(vec![]), &req, &Disclosure::none())
        .unwrap_err()
        .to_string();
    assert!(e.contains("steps[1].filters[0].value"), "{e}");
    req.steps[1].filters = vec![Filter::new("colour", FilterOp::IsSet, None)];
    let e = funnel(&src(vec![]), &req, &Disclosure::none())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("steps[1].filters[0].property") && e.contains("colour"),
        "{e}"
    );
    let bad: Result<FunnelRequest, _> =
        serde_json::from_value(json!({"steps": [{"event": "A"}], "windw": 5}));
    assert!(bad.unwrap_err().to_string().contains("windw"));
    let bad: Result<FunnelStep, _> = serde_json::from_value(json!({"event": "A", "filter": []}));
    assert!(bad.unwrap_err().to_string().contains("filter"));
}

#[test]
fn global_filters_remove_rows_and_value_column_is_numeric() {
    let rows = vec![
        Row::track(0, T0, "A").value(3.0),
        Row::track(0, T0 + 1, "B").value(1.0),
        Row::track(1, T0, "A").value(3.0),
        Row::track(1, T0 + 1, "B").value(3.0),
    ];
    let req = FunnelRequest {
        filters: vec![Filter::new("value", FilterOp::Gte, Some(json!(2)))],
        window_ms: H,
        ..FunnelRequest::new(&["A", "B"])
    };
    assert_eq!(run(rows, &req), vec![Some(2), Some(1)]);
}

#[test]
fn time_to_convert_median_p90_over_persons() {
    let mut rows = Vec::new();
    for p in 0..10u64 {
        rows.push(Row::track(p, T0, "A"));
        rows.push(Row::track(p, T0 + (p as i64 + 1) * MIN, "B"));
    }
    let req = FunnelRequest {
        window_ms: H,
        ..FunnelRequest::new(&["A", "B"])
    };
    let r = funnel(&src(rows), &req, &Disclosure::none()).unwrap();
    let t = r.groups[0].steps[1].time_from_first.clone().unwrap();
    assert_eq!((t.median_ms, t.p90_ms), (5 * MIN, 9 * MIN));
    assert_eq!(
        t.histogram[..3],
        [0, 4, 6],
        "1m..5m: 1-4 min; 5m..15m: 5-10 min"
    );
    assert!(r.groups[0].steps[0].time_from_first.is_none());
}

#[test]
fn k_suppression_hides_small_groups_and_steps() {
    let mut rows = Vec::new();
    for p in 0..5u64 {
        rows.push(Row::track(p, T0, "A").with("campaign_source", "big"));
    }
    rows.push(Row::track(5, T0 + 1, "B")); // not in the funnel
    for p in 10..14u64 {
        rows.push(Row::track(p, T0, "A").with("campaign_source", "small"));
        rows.push(Row::track(p, T0 + 1, "B"));
    }
    rows.push(Row::track(0, T0 + 2, "B"));
    let req = FunnelRequest {
        breakdown: Some("campaign_source".into()),
        window_ms: H,
        ..FunnelRequest::new(&["A", "B"])
    };
    let r = funnel(&src(rows), &req, &Disclosure::k(5)).unwrap();
    assert_eq!(r.groups.len(), 2);
    let big = &r.groups[0];
    assert_eq!(big.value.as_deref(), Some("big"));
    assert!(!big.suppressed);
    assert_eq!(
        counts(big),
        vec![Some(5), None],
        "1 person converted: step suppressed"
    );
    assert!(big.steps[1].suppressed && big.steps[1].time_from_first.is_none());
    let small = &r.groups[1];
    assert!(small.suppressed, "4 persons < k = 5");
    assert_eq!(counts(small), vec![None, None]);
    assert_eq!(r.disclosure.suppressed_groups, 2);
    assert_eq!(r.disclosure.k, Some(5));
}

#[test]
fn range_limits_the_scan() {
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::track(0, T0 + D, "B"),
        Row::track(1, T0 + D, "A"),
    ];
    let req = FunnelRequest {
        range: Some(iob_analyses::TimeRange {
            from_ms: T0 + 1,
            to_ms: T0 + 2 * D,
        }),
        ..FunnelRequest::new(&["A", "B"])
    };
    assert_eq!(run(rows, &req), vec![Some(1), Some(0)]);
}
