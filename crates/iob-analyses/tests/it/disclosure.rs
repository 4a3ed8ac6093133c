use iob_analyses::{Disclosure, FunnelRequest, Row, funnel};

use crate::{T0, src};

#[test]
fn funnel_noise_is_seeded_reported_and_scaled_by_steps() {
    let mut rows = Vec::new();
    for p in 0..100u64 {
        rows.push(Row::track(p, T0, "A"));
        if p % 2 == 0 {
            rows.push(Row::track(p, T0 + 1, "B"));
        }
    }
    let s = src(rows);
    let req = FunnelRequest::new(&["A", "B"]);
    let d = Disclosure {
        k: Some(5),
        epsilon: Some(1.0),
        seed: 3,
    };
    let a = funnel(&s, &req, &d).unwrap();
    let b = funnel(&s, &req, &d).unwrap();
    assert_eq!(a, b, "same seed, same release");
    assert_eq!(a.disclosure.sensitivity, Some(2.0));
    assert_eq!(a.disclosure.noise_scale, Some(2.0));
    assert!(
        a.groups[0].steps[1].time_from_first.is_none(),
        "times withheld under epsilon"
    );
    // Over many seeds the released count centres on the true one with mean |error| ≈ scale.
    let (mut sum, mut abs) = (0.0, 0.0);
    let n = 400;
    for seed in 0..n {
        let r = funnel(&s, &req, &Disclosure { seed, ..d.clone() }).unwrap();
        let x = r.groups[0].steps[0].persons.unwrap() as f64 - 100.0;
        sum += x;
        abs += x.abs();
    }
    let (mean, mad) = (sum / n as f64, abs / n as f64);
    assert!(mean.abs() < 0.5, "mean error {mean}");
    assert!((mad - 2.0).abs() < 0.45, "mean |error| {mad} vs scale 2");
}
