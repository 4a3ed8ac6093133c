//! Blending two models' scores: each is standardized over the catalog (mean 0, unit standard
//! deviation, per person), then `primary + weight · secondary`. Scales differ by orders of
//! magnitude between EASE (item-item weights) and ALS (factor dot products), so raw sums would
//! be one model. No I/O, no allocation.

/// Replaces `primary` by the blend of `primary` and `secondary` (same length).
pub fn blend(primary: &mut [f32], secondary: &[f32], weight: f32) {
    let (ma, sa) = moments(primary);
    let (mb, sb) = moments(secondary);
    let (ia, ib) = (inverse(sa), weight * inverse(sb));
    for (p, &s) in primary.iter_mut().zip(secondary) {
        *p = (*p - ma) * ia + (s - mb) * ib;
    }
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
}
