//! The streaming funnel against a brute-force search over all attempts.

use iob_analyses::{Disclosure, FunnelMode, FunnelRequest, Row, funnel};
use proptest::prelude::*;

use crate::{H, T0, src};

const NAMES: [&str; 4] = ["A", "B", "C", "X"];

/// Level of one person's rows (sorted by stream order) by exhaustive search.
fn brute(rows: &[(i64, usize)], steps: &[usize], w: i64, mode: FunnelMode) -> usize {
    let n = steps.len();
    let mut best = 0;
    match mode {
        FunnelMode::Ordered => {
            fn go(
                rows: &[(i64, usize)],
                steps: &[usize],
                w: i64,
                from: usize,
                k: usize,
                t0: i64,
            ) -> usize {
                if k == steps.len() {
                    return k;
                }
                let mut best = k;
                for j in from..rows.len() {
                    if rows[j].1 == steps[k] && rows[j].0 - t0 <= w {
                        best = best.max(go(rows, steps, w, j + 1, k + 1, t0));
                    }
                }
                best
            }
            for i in 0..rows.len() {
                if rows[i].1 == steps[0] {
                    best = best.max(go(rows, steps, w, i + 1, 1, rows[i].0));
                }
            }
        }
        FunnelMode::Strict => {
            for i in 0..rows.len() {
                if rows[i].1 != steps[0] {
                    continue;
                }
                let mut k = 1;
                while k < n
                    && i + k < rows.len()
                    && rows[i + k].1 == steps[k]
                    && rows[i + k].0 - rows[i].0 <= w
                {
                    k += 1;
                }
                best = best.max(k);
            }
        }
        FunnelMode::Any => {
            for &(t, _) in rows {
                let mut k = 0;
                while k < n
                    && rows
                        .iter()
                        .any(|&(u, e)| e == steps[k] && u >= t && u - t <= w)
                {
                    k += 1;
                }
                best = best.max(k);
            }
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn streaming_funnel_equals_brute_force(
        events in prop::collection::vec((0u64..4, 0i64..30, 0usize..4), 0..40),
        steps in prop::collection::vec(0usize..3, 1..4),
        w in 1i64..12,
        mode in prop_oneof![Just(FunnelMode::Ordered), Just(FunnelMode::Strict), Just(FunnelMode::Any)],
    ) {
        // Times in hours, with many ties.
        let rows: Vec<Row> = events.iter().map(|&(p, t, e)| Row::track(p, T0 + t * H, NAMES[e])).collect();
        let names: Vec<&str> = steps.iter().map(|&s| NAMES[s]).collect();
        let req = FunnelRequest { mode, window_ms: w * H, ..FunnelRequest::new(&names) };
        let r = funnel(&src(rows), &req, &Disclosure::none()).unwrap();
        let got: Vec<u64> = r.groups[0].steps.iter().map(|s| s.persons.unwrap()).collect();
        let mut want = vec![0u64; steps.len()];
        for p in 0..4u64 {
            // Stream order: (ts, arrival index).
            let mut mine: Vec<(i64, usize, usize)> = events.iter().enumerate()
                .filter(|(_, e)| e.0 == p).map(|(i, e)| (e.1 * H, i, e.2)).collect();
            mine.sort();
            let seq: Vec<(i64, usize)> = mine.iter().map(|&(t, _, e)| (t, e)).collect();
            // Duplicate step names are allowed; `any` may then let one event fill two steps,
            // which the brute force models the same way.
            let level = brute(&seq, &steps, w * H, mode);
            for c in want.iter_mut().take(level) {
                *c += 1;
            }
        }
        prop_assert_eq!(got, want);
    }
}
