//! Small dense kernels on `f32` slices shared by the models: dot products written so the
//! compiler vectorizes them, `axpy`, a Cholesky solve for the `f × f` systems of ALS fold-in,
//! and top-k selection. Nothing here allocates more than its result; no I/O.

/// Runs `$body` (a block) compiled for AVX2 when the CPU has it (checked at run time; the
/// result is cached by the standard library), else as built for the baseline target (SSE2 on
/// x86-64). The kernels here are plain loops marked `#[inline(always)]`, so inside the block they
/// are vectorized 8 lanes wide instead of 4: the same code, the same sums in the same order,
/// twice the width. Use it around a whole pass (a training half-iteration, a scoring pass), not
/// per dot product: `wide!({ for ... { dot(a, b); } })`.
///
/// A macro, not a function taking a closure, because the closure must be `#[inline(always)]`:
/// it has two call sites (AVX2 and baseline), and LLVM otherwise left a large one out of line,
/// compiled for the baseline (ALS 1.5x slower per iteration with the crate as one codegen unit).
macro_rules! wide {
    ($body:block) => {
        $crate::vecmath::run_wide(
            #[inline(always)]
            || $body,
        )
    };
}
pub(crate) use wide;

/// [`wide!`]'s dispatch; call it through the macro, which inlines the closure.
#[inline(always)]
pub(crate) fn run_wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `avx2` is compiled for.
        return unsafe { avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `Σ a[i]·b[i]` with sixteen independent accumulators (vectorizes, two 8-lane chains with
/// AVX2; no `-ffast-math` needed).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let chunks = n / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = 0f32;
    for i in chunks * 16..n {
        s += a[i] * b[i];
    }
    s + acc.iter().sum::<f32>()
}

/// `y += alpha · x`.
#[inline(always)]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Solves `A x = b` for a symmetric positive definite `A` (row-major `n × n`, overwritten by
/// its Cholesky factor) in `f64`. Returns `None` when `A` is not positive definite.
pub fn cholesky_solve(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    cholesky(a, n).then(|| solve_factored(a, b, n))
}

/// Replaces the lower triangle of `a` by its Cholesky factor `L` (`A = L·Lᵀ`); `false` when
/// `A` is not positive definite.
pub fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    true
}

/// Solves `L·Lᵀ x = b` with the factor [`cholesky`] left in `l`.
pub fn solve_factored(l: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    y
}

/// Indices of the `k` largest finite scores among those `keep` accepts, best first (ties: the
/// lower index first, so answers are deterministic).
pub fn top_k(scores: &[f32], k: usize, keep: impl Fn(usize) -> bool) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    // A small sorted buffer beats a heap for k in the tens.
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let mut floor = f32::NEG_INFINITY;
    for (i, &s) in scores.iter().enumerate() {
        if !s.is_finite() || (best.len() == k && s <= floor) || !keep(i) {
            continue;
        }
        let pos = best.partition_point(|&(_, b)| b >= s);
        best.insert(pos, (i as u32, s));
        if best.len() > k {
            best.pop();
        }
        if best.len() == k {
            floor = best[k - 1].1;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| (i % 3) as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), naive);
    }

    #[test]
    fn cholesky_solves_a_2x2() {
        // [[4,2],[2,3]] x = [2,1] → x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        let mut bad = vec![0.0, 1.0, 1.0, 0.0];
        assert!(cholesky_solve(&mut bad, &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn top_k_orders_and_filters() {
        let s = [0.1, 0.9, 0.5, f32::NAN, 0.9, 0.7];
        assert_eq!(top_k(&s, 3, |_| true), vec![(1, 0.9), (4, 0.9), (5, 0.7)]);
        assert_eq!(top_k(&s, 2, |i| i != 1), vec![(4, 0.9), (5, 0.7)]);
        assert!(top_k(&s, 0, |_| true).is_empty());
    }
}
