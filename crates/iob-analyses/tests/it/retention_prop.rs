//! Retention (both modes) against a direct computation from each person's event list.

use std::collections::BTreeMap;

use iob_analyses::{Disclosure, Period, RetentionMode, RetentionRequest, Row, retention};
use proptest::prelude::*;

use crate::{H, T0, src};

const NAMES: [&str; 3] = ["A", "B", "X"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn retention_equals_direct_computation(
        events in prop::collection::vec((0u64..4, 0i64..240, 0usize..3), 0..50),
        any_return in any::<bool>(),
        recurring in any::<bool>(),
        periods in 1u32..5,
    ) {
        let rows: Vec<Row> = events.iter().map(|&(p, t, e)| Row::track(p, T0 + t * H, NAMES[e])).collect();
        let req: RetentionRequest = serde_json::from_value(serde_json::json!({
            "start_event": {"event": "A"},
            "return_event": {"event": if any_return { None } else { Some("B") }},
            "period": Period::Day,
            "periods": periods,
            "mode": if recurring { RetentionMode::Recurring } else { RetentionMode::FirstTime },
        })).unwrap();
        let r = retention(&src(rows), &req, &Disclosure::none()).unwrap();
        let got: BTreeMap<String, (u64, Vec<u64>)> = r.cohorts.iter()
            .map(|c| (c.cohort.clone(), (c.size.unwrap(), c.returning.iter().map(|x| x.unwrap()).collect())))
            .collect();

        let mut want: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
        for p in 0..4u64 {
            // Stream order: (ts, arrival index).
            let mut mine: Vec<(i64, usize, usize)> = events.iter().enumerate()
                .filter(|(_, e)| e.0 == p).map(|(i, e)| (T0 + e.1 * H, i, e.2)).collect();
            mine.sort();
            let day = |t: i64| t.div_euclid(86_400_000);
            let is_ret = |e: usize| any_return || e == 1;
            // Cohort events: (position, day).
            let mut cohorts: Vec<(usize, i64)> = Vec::new();
            for (pos, &(t, _, e)) in mine.iter().enumerate() {
                if e == 0 && (recurring || cohorts.is_empty()) && !cohorts.iter().any(|c| c.1 == day(t)) {
                    cohorts.push((pos, day(t)));
                }
            }
            for (pos, c) in cohorts {
                let label = Period::Day.label(c);
                let entry = want.entry(label).or_insert((0, vec![0; periods as usize]));
                entry.0 += 1;
                for off in 0..periods as i64 {
                    if mine.iter().enumerate().any(|(q, &(t, _, e))| q >= pos && is_ret(e) && day(t) == c + off) {
                        entry.1[off as usize] += 1;
                    }
                }
            }
        }
        prop_assert_eq!(got, want);
    }
}
