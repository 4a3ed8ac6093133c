use iob_analyses::{
    Disclosure, Period, RetentionMode, RetentionRequest, RetentionResult, Row, retention,
};

use crate::{D, H, T0, all_encodings, src};

fn req(start: Option<&str>, ret: Option<&str>, period: Period, periods: u32) -> RetentionRequest {
    serde_json::from_value(serde_json::json!({
        "start_event": {"event": start},
        "return_event": {"event": ret},
        "period": period,
        "periods": periods,
    }))
    .unwrap()
}

type Table = Vec<(String, Option<String>, Option<u64>, Vec<Option<u64>>)>;

fn table(r: &RetentionResult) -> Table {
    r.cohorts
        .iter()
        .map(|c| {
            (
                c.cohort.clone(),
                c.value.clone(),
                c.size,
                c.returning.clone(),
            )
        })
        .collect()
}

fn s(v: &[u64]) -> Vec<Option<u64>> {
    v.iter().map(|&x| Some(x)).collect()
}

#[test]
fn weekly_first_time_cohorts_with_any_return() {
    let rows = vec![
        // p0: first purchase Wed week 0; back in week 1 and week 3.
        Row::track(0, T0 + 2 * D, "Order Completed"),
        Row::page(0, T0 + 8 * D, "Home"),
        Row::track(0, T0 + 22 * D, "Order Completed"),
        // p1: page views before the first purchase do not count; purchase Sunday week 0
        // (last day of the ISO week), back Monday week 1.
        Row::page(1, T0, "Home"),
        Row::track(1, T0 + 6 * D + 23 * H, "Order Completed"),
        Row::page(1, T0 + 7 * D, "Home"),
        // p2: cohort week 1, nothing after.
        Row::track(2, T0 + 7 * D, "Order Completed"),
        // p3: never purchases.
        Row::page(3, T0, "Home"),
    ];
    let r = retention(
        &src(rows),
        &req(Some("Order Completed"), None, Period::Week, 4),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(
        table(&r),
        vec![
            ("2024-01-01".into(), None, Some(2), s(&[2, 2, 0, 1])),
            ("2024-01-08".into(), None, Some(1), s(&[1, 0, 0, 0])),
        ]
    );
}

#[test]
fn a_return_before_the_cohort_event_in_its_period_does_not_count() {
    let rows = vec![
        Row::track(0, T0, "Purchase"),
        Row::track(0, T0 + H, "Signup"),
        Row::track(0, T0 + 8 * D, "Purchase"),
        Row::track(1, T0, "Signup"),
        Row::track(1, T0 + H, "Purchase"),
    ];
    let r = retention(
        &src(rows),
        &req(Some("Signup"), Some("Purchase"), Period::Week, 2),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(
        table(&r),
        vec![("2024-01-01".into(), None, Some(2), s(&[1, 1]))]
    );
}

#[test]
fn daily_periods_split_at_utc_midnight() {
    let rows = vec![
        Row::track(0, T0 + D - 1, "A"), // last ms of day 0
        Row::track(0, T0 + D, "B"),     // first ms of day 1: offset 1
        Row::track(1, T0 + D, "A"),
        Row::track(1, T0 + 3 * D, "B"), // offset 2
    ];
    let r = retention(
        &src(rows),
        &req(Some("A"), Some("B"), Period::Day, 3),
        &Disclosure::none(),
    )
    .unwrap();
    assert_eq!(
        table(&r),
        vec![
            ("2024-01-01".into(), None, Some(1), s(&[0, 1, 0])),
            ("2024-01-02".into(), None, Some(1), s(&[0, 0, 1])),
        ]
    );
}

#[test]
fn recurring_cohorts_count_every_start_period() {
    let rows = vec![
        Row::track(0, T0, "A"),
        Row::track(0, T0 + 14 * D, "A"),
        Row::track(0, T0 + 15 * D, "B"),
        Row::track(1, T0 + 14 * D, "B"), // return before start in the same week
        Row::track(1, T0 + 14 * D + 1, "A"),
        Row::track(1, T0 + 14 * D + 2, "B"),
        Row::track(1, T0 + 14 * D + 3, "B"),
    ];
    let mut q = req(Some("A"), Some("B"), Period::Week, 3);
    q.mode = RetentionMode::Recurring;
    let r = retention(&src(rows.clone()), &q, &Disclosure::none()).unwrap();
    assert_eq!(
        table(&r),
        vec![
            ("2024-01-01".into(), None, Some(1), s(&[0, 0, 1])),
            ("2024-01-15".into(), None, Some(2), s(&[2, 0, 0])),
        ]
    );
    q.mode = RetentionMode::FirstTime;
    let r = retention(&src(rows), &q, &Disclosure::none()).unwrap();
    assert_eq!(
        table(&r),
        vec![
            ("2024-01-01".into(), None, Some(1), s(&[0, 0, 1])),
            ("2024-01-15".into(), None, Some(1), s(&[1, 0, 0])),
        ]
    );
}

#[test]
fn breakdown_by_the_cohort_event_and_months() {
    let rows = vec![
        Row::track(0, T0, "A").with("os_name", "iOS"),
        Row::track(0, T0 + 40 * D, "A").with("os_name", "Android"),
        Row::track(1, T0 + D, "A").with("os_name", "Android"),
        Row::track(2, T0 + 35 * D, "A"),
    ];
    let mut q = req(Some("A"), None, Period::Month, 2);
    q.breakdown = Some("os_name".into());
    for source in all_encodings(&rows) {
        let r = retention(&source, &q, &Disclosure::none()).unwrap();
        assert_eq!(
            table(&r),
            vec![
                (
                    "2024-01-01".into(),
                    Some("Android".into()),
                    Some(1),
                    s(&[1, 0])
                ),
                ("2024-01-01".into(), Some("iOS".into()), Some(1), s(&[1, 1])),
                ("2024-02-01".into(), None, Some(1), s(&[1, 0])),
            ]
        );
    }
    let mut q2 = q.clone();
    q2.mode = RetentionMode::Recurring;
    let r = retention(&src(rows), &q2, &Disclosure::none()).unwrap();
    assert_eq!(
        table(&r),
        vec![
            (
                "2024-01-01".into(),
                Some("Android".into()),
                Some(1),
                s(&[1, 0])
            ),
            ("2024-01-01".into(), Some("iOS".into()), Some(1), s(&[1, 1])),
            ("2024-02-01".into(), None, Some(1), s(&[1, 0])),
            (
                "2024-02-01".into(),
                Some("Android".into()),
                Some(1),
                s(&[1, 0])
            ),
        ]
    );
}

#[test]
fn small_cohorts_and_cells_are_suppressed() {
    let mut rows = Vec::new();
    for p in 0..3u64 {
        rows.push(Row::track(p, T0, "A"));
    }
    for p in 10..16u64 {
        rows.push(Row::track(p, T0 + 7 * D, "A"));
    }
    rows.push(Row::track(10, T0 + 14 * D, "A"));
    let r = retention(
        &src(rows),
        &req(Some("A"), None, Period::Week, 2),
        &Disclosure::k(3),
    )
    .unwrap();
    assert_eq!(r.cohorts[0].size, Some(3), "k persons: shown");
    assert!(!r.cohorts[0].suppressed);
    assert_eq!(
        r.cohorts[1].returning,
        vec![Some(6), None],
        "1 returning < k"
    );
    let r = retention(
        &src(vec![Row::track(0, T0, "A"), Row::track(1, T0, "A")]),
        &req(Some("A"), None, Period::Week, 2),
        &Disclosure::k(3),
    )
    .unwrap();
    assert!(r.cohorts[0].suppressed && r.cohorts[0].size.is_none());
    assert_eq!(r.disclosure.suppressed_groups, 1);
}

#[test]
fn bad_requests_name_the_field() {
    let e = retention(
        &src(vec![]),
        &req(None, None, Period::Week, 65),
        &Disclosure::none(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("`periods`"), "{e}");
    let bad: Result<RetentionRequest, _> =
        serde_json::from_value(serde_json::json!({"periods": 2, "period": "fortnight"}));
    assert!(bad.unwrap_err().to_string().contains("fortnight"));
}
