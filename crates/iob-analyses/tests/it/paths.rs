use iob_analyses::paths::{Direction, PathNode};
use iob_analyses::{Disclosure, PathsRequest, Row, paths};
use serde_json::json;

use crate::{H, MIN, T0, src};

fn seq(person: u64, events: &[&str]) -> Vec<Row> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Row::track(person, T0 + i as i64 * MIN, e))
        .collect()
}

fn req(v: serde_json::Value) -> PathsRequest {
    serde_json::from_value(v).unwrap()
}

fn show(nodes: &[PathNode]) -> String {
    nodes
        .iter()
        .map(|n| {
            let kids = if n.children.is_empty() {
                String::new()
            } else {
                format!("[{}]", show(&n.children))
            };
            format!("{}:{}/{}{}", n.event, n.persons, n.transitions, kids)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn data() -> Vec<Row> {
    let mut rows = seq(0, &["A", "B", "C", "D"]);
    rows.extend(seq(1, &["A", "B", "D", "A", "B"]));
    rows.extend(seq(2, &["X", "A", "C"]));
    rows
}

#[test]
fn next_and_previous_trees() {
    let r = paths(
        &src(data()),
        &req(json!({"anchor": {"event": "A"}, "depth": 2})),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(
        (r.groups[0].anchors, r.groups[0].anchor_persons),
        (Some(4), Some(3))
    );
    assert_eq!(show(&r.groups[0].next), "B:2/3[C:1/1 D:1/1] C:1/1");
    assert_eq!(show(&r.groups[0].previous), "D:1/1[B:1/1] X:1/1");
}

#[test]
fn depth_top_and_direction() {
    let r = paths(
        &src(data()),
        &req(json!({"anchor": {"event": "B"}, "depth": 1, "top": 1, "direction": "next"})),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(
        show(&r.groups[0].next),
        "C:1/1",
        "C and D tie at 1 person; C sorts first; top 1"
    );
    assert!(r.groups[0].previous.is_empty());
    assert_eq!(r.disclosure.suppressed_groups, 0);
}

#[test]
fn collapse_repeats_and_gaps_end_sequences() {
    let mut rows = seq(0, &["A", "A", "B"]);
    rows.push(Row::track(0, T0 + 5 * H, "C")); // after a long gap
    let r = paths(
        &src(rows.clone()),
        &req(json!({"anchor": {"event": "A"}, "depth": 3, "direction": "next"})),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(show(&r.groups[0].next), "A:1/1[B:1/1[C:1/1]] B:1/1[C:1/1]");
    let r = paths(
        &src(rows),
        &req(json!({"anchor": {"event": "A"}, "depth": 3, "direction": "next", "collapse_repeats": true, "max_gap_ms": 3_600_000})),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(show(&r.groups[0].next), "B:1/1");
    assert_eq!(r.groups[0].anchors, Some(1));
}

#[test]
fn unnamed_rows_are_labelled_by_type_and_small_nodes_suppressed() {
    let mut rows = Vec::new();
    for p in 0..3u64 {
        rows.push(Row::track(p, T0, "A"));
        rows.push(Row::other(p, T0 + 1, "identify"));
    }
    rows.push(Row::track(9, T0, "A"));
    rows.push(Row::track(9, T0 + 1, "Rare"));
    let r = paths(
        &src(rows),
        &req(json!({"anchor": {"event": "A"}, "depth": 1, "direction": "next"})),
        &Disclosure::k(2),
    )
    .unwrap();
    assert_eq!(show(&r.groups[0].next), "identify:3/3");
    assert_eq!(r.groups[0].suppressed_next, 1);
    assert_eq!(r.disclosure.suppressed_groups, 1);
    let r = paths(
        &src(rows_of_one()),
        &req(json!({"anchor": {"event": "A"}})),
        &Disclosure::k(2),
    )
    .unwrap();
    assert_eq!(
        (r.groups[0].anchors, r.groups[0].anchor_persons),
        (None, None),
        "1 anchor person < k"
    );
    assert!(r.groups[0].next.is_empty() && r.groups[0].previous.is_empty());
    let e = paths(
        &src(vec![]),
        &req(json!({"anchor": {}, "depth": 9})),
        &Disclosure::none(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("`depth`"));
    let _ = Direction::Both;
}

fn rows_of_one() -> Vec<Row> {
    seq(0, &["X", "A", "B"])
}

#[test]
fn breakdown_splits_trees_by_the_anchor_value() {
    let mut rows = Vec::new();
    for (p, os) in [(0u64, "iOS"), (1, "iOS"), (2, "Android")] {
        rows.push(Row::track(p, T0, "A").with("os_name", os));
        rows.push(Row::track(p, T0 + MIN, if p == 2 { "C" } else { "B" }));
    }
    // A later anchor of person 0 on another value counts there.
    rows.push(Row::track(0, T0 + 2 * MIN, "A").with("os_name", "Android"));
    rows.push(Row::track(0, T0 + 3 * MIN, "D"));
    let r = paths(
        &src(rows),
        &req(json!({"anchor": {"event": "A"}, "depth": 1, "direction": "next", "breakdown": "os_name"})),
        &Disclosure::none(),
    )
    .unwrap();
    let got: Vec<(Option<String>, Option<u64>, String)> = r
        .groups
        .iter()
        .map(|g| (g.value.clone(), g.anchor_persons, show(&g.next)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("Android".into()), Some(2), "C:1/1 D:1/1".into()),
            (Some("iOS".into()), Some(2), "B:2/2".into()),
        ]
    );
}
