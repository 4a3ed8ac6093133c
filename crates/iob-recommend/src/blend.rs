//! Blending two models' scores: each is standardized over the catalog (mean 0, unit standard
//! deviation, per person), then `primary + weight · secondary`. Scales differ by orders of
//! magnitude between EASE (item-item weights) and ALS (factor dot products), so raw sums would
//! be one model. The moments leave out the person's history: EASE scores history items from
//! each other, far above any candidate, and they would set EASE's scale while never being
//! recommended. No I/O, no allocation.

/// Replaces `primary` by the blend of `primary` and `secondary` (same length).
pub fn blend(primary: &mut [f32], secondary: &[f32], weight: f32) {
    blend_over(primary, secondary, weight, &[]);
}

/// [`blend`], with the moments taken over the items not in `history` (the person's
/// `(item, weight)` pairs the models score from; the weights are unused here). History items
/// are never recommended: their scores would set the scale otherwise.
pub fn blend_over(primary: &mut [f32], secondary: &[f32], weight: f32, history: &[(u32, f32)]) {
    let (ma, sa) = moments_without(primary, history);
    let (mb, sb) = moments_without(secondary, history);
    let (ia, ib) = (inverse(sa), weight * inverse(sb));
    for (p, &s) in primary.iter_mut().zip(secondary) {
        *p = (*p - ma) * ia + (s - mb) * ib;
    }
}

/// Mean and standard deviation over `v` without the items of `left_out` (distinct;
/// positions past the end are ignored).
fn moments_without(v: &[f32], left_out: &[(u32, f32)]) -> (f32, f32) {
    if left_out.is_empty() {
        return moments(v);
    }
    let (mut sum, mut sq, mut n) = (0f64, 0f64, v.len());
    for &x in v {
        sum += x as f64;
        sq += (x as f64) * (x as f64);
    }
    for x in left_out.iter().filter_map(|&(i, _)| v.get(i as usize)) {
        let x = *x as f64;
        sum -= x;
        sq -= x * x;
        n -= 1;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let var = (sq / n as f64 - mean * mean).max(0.0);
    (mean as f32, var.sqrt() as f32)
}

/// Mean and standard deviation (f64 accumulation).
fn moments(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, var.sqrt() as f32)
}

fn inverse(sd: f32) -> f32 {
    if sd > 0.0 && sd.is_finite() {
        1.0 / sd
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardizes_each_side_before_weighting() {
        // Same ranking information at very different scales: each side counts equally.
        let mut a = vec![1000.0, 0.0, 500.0];
        let b = vec![0.0, 0.002, 0.001];
        blend(&mut a, &b, 1.0);
        assert!((a[0] - a[1]).abs() < 1e-5, "{a:?}");
        assert!(a[2].abs() < 1e-5, "{a:?}");
        // Weight 0: the primary's order, standardized.
        let mut a = vec![3.0, 1.0, 2.0];
        blend(&mut a, &[9.0, 9.0, 9.0], 0.0);
        assert!(a[0] > a[2] && a[2] > a[1]);
        // A constant side adds nothing.
        let mut a = vec![3.0, 1.0, 2.0];
        blend(&mut a, &[5.0, 5.0, 5.0], 2.0);
        assert!(a[0] > a[2] && a[2] > a[1]);
    }

    #[test]
    fn history_items_do_not_set_the_scale() {
        // Item 0 is history with a huge primary score: left out, the other three are
        // standardized among themselves (mean 2, sd sqrt(2/3)) and the secondary (constant over
        // them) adds nothing.
        let mut a = vec![1000.0, 1.0, 2.0, 3.0];
        let b = vec![-50.0, 4.0, 4.0, 4.0];
        blend_over(&mut a, &b, 1.0, &[(0, 1.0)]);
        let sd = (2.0f32 / 3.0).sqrt();
        for (got, want) in a[1..].iter().zip([-1.0 / sd, 0.0, 1.0 / sd]) {
            assert!((got - want).abs() < 1e-4, "{a:?}");
        }
        // Equal to the plain blend of the same items without the left-out one.
        let mut c = vec![1.0, 2.0, 3.0];
        blend(&mut c, &[4.0, 4.0, 4.0], 1.0);
        assert_eq!(&a[1..], &c[..]);
        // Everything left out, or positions past the end: no panic, no NaN.
        let mut d = vec![1.0, 2.0];
        blend_over(&mut d, &[3.0, 4.0], 1.0, &[(0, 1.0), (1, 1.0), (7, 1.0)]);
        assert!(d.iter().all(|x| x.is_finite()), "{d:?}");
    }
}
