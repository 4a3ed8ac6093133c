//! Alternating least squares for implicit feedback (Hu, Koren, Volinsky 2008) with the
//! conjugate-gradient solver of Takács, Pilászy, Tikk (2011), as `implicit` does it: each person's
//! (and item's) factors take `cg_steps` CG steps from their previous value on
//! `(YᵀY + λI + Yᵀ(Cᵤ − I)Y) x = YᵀCᵤp`, with confidence `c = α·weight`.
//!
//! Rows are split over `threads` std threads (each writes its own rows). A person not seen in
//! training, or whose history changed, is *folded in*: one exact solve against the fixed item
//! factors, so new events change recommendations without retraining. Explanations follow the
//! paper: item `j`'s score is `Σ_h c_h · y_jᵀ W y_h` with `W = (YᵀCY + λI)⁻¹`.
//! This module must never do I/O.

use rand::{Rng, SeedableRng};

use crate::matrix::Csr;
use crate::vecmath::{axpy, cholesky, dot, solve_factored, wide};

/// Training parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlsParams {
    pub factors: usize,
    pub regularization: f32,
    /// Confidence per unit of weight.
    pub alpha: f32,
    pub iterations: usize,
    pub cg_steps: usize,
    pub threads: usize,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: 0.05,
            alpha: 2.0,
            iterations: 15,
            cg_steps: 3,
            threads: 2,
            seed: 42,
        }
    }
}

/// A trained model: person factors (rows of the training matrix) and item factors.
#[derive(Debug, Clone, PartialEq)]
pub struct Als {
    pub factors: usize,
    pub regularization: f32,
    pub alpha: f32,
    /// Row-major `persons × factors`.
    pub user: Vec<f32>,
    /// Row-major `items × factors`.
    pub item: Vec<f32>,
    /// `YᵀY` of the item factors (row-major `factors²`, `f64`), kept for fold-in.
    pub yty: Vec<f64>,
}

impl Als {
    /// Trains on `x` (persons × items, weights as values).
    pub fn train(x: &Csr, p: &AlsParams) -> Als {
        Self::train_observed(x, p, |_, _| {})
    }

    /// Trains and calls `after(iteration, seconds)` after each iteration (benchmarks).
    pub fn train_observed(x: &Csr, p: &AlsParams, mut after: impl FnMut(usize, f64)) -> Als {
        let f = p.factors.max(1);
        let cui = x.map(|v| v * p.alpha);
        let ciu = cui.transpose();
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let mut user: Vec<f32> = (0..x.rows * f)
            .map(|_| rng.random::<f32>() * 0.01)
            .collect();
        let mut item: Vec<f32> = (0..x.cols * f)
            .map(|_| rng.random::<f32>() * 0.01)
            .collect();
        for it in 0..p.iterations {
            let t = std::time::Instant::now();
            solve_side(&cui, &mut user, &item, f, p);
            solve_side(&ciu, &mut item, &user, f, p);
            after(it, t.elapsed().as_secs_f64());
        }
        let yty = gram(&item, f, 0.0);
        Als {
            factors: f,
            regularization: p.regularization,
            alpha: p.alpha,
            user,
            item,
            yty,
        }
    }

    pub fn n_items(&self) -> usize {
        self.item.len() / self.factors
    }

    pub fn n_users(&self) -> usize {
        self.user.len() / self.factors
    }

    /// Factors of training row `r`.
    pub fn user_factors(&self, r: usize) -> Option<&[f32]> {
        self.user.get(r * self.factors..(r + 1) * self.factors)
    }

    /// The system `A = YᵀY + λI + Σ_h (c_h − 1) y_h y_hᵀ` for a history (row-major `f64`).
    fn system(&self, history: &[(u32, f32)]) -> Vec<f64> {
        let f = self.factors;
        let mut a = self.yty.clone();
        for i in 0..f {
            a[i * f + i] += self.regularization as f64;
        }
        for &(h, w) in history {
            let Some(y) = self.item.get(h as usize * f..(h as usize + 1) * f) else {
                continue;
            };
            let c1 = (self.alpha * w - 1.0) as f64;
            for i in 0..f {
                let yi = y[i] as f64 * c1;
                for j in 0..f {
                    a[i * f + j] += yi * y[j] as f64;
                }
            }
        }
        a
    }

    /// Folds a person in from their history: the exact least-squares factors against the
    /// fixed item factors (what an ALS user step would give them).
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        self.fold_in_explained(history)
            .map(|(u, _)| u)
            .unwrap_or_else(|| vec![0.0; self.factors])
    }

    /// [`Als::fold_in`], and the factorized system to explain scores with (one factorization
    /// serves the fold-in and every explanation).
    pub fn fold_in_explained(&self, history: &[(u32, f32)]) -> Option<(Vec<f32>, AlsExplainer)> {
        let f = self.factors;
        let mut a = self.system(history);
        if !cholesky(&mut a, f) {
            return None;
        }
        let mut b = vec![0f64; f];
        for &(h, w) in history {
            if let Some(y) = self.item.get(h as usize * f..(h as usize + 1) * f) {
                let c = (self.alpha * w) as f64;
                for (bi, &yi) in b.iter_mut().zip(y) {
                    *bi += c * yi as f64;
                }
            }
        }
        let u = solve_factored(&a, &b, f)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        Some((u, AlsExplainer { l: a }))
    }

    /// Adds every item's score for person factors `u` into `out`.
    pub fn score(&self, u: &[f32], out: &mut [f32]) {
        let f = self.factors;
        wide!({
            for (o, y) in out.iter_mut().zip(self.item.chunks_exact(f)) {
                *o += dot(u, y);
            }
        })
    }

    /// What each history item contributed to `item`'s score: `c_h · y_itemᵀ W y_h`.
    pub fn contributions(&self, history: &[(u32, f32)], item: u32) -> Vec<(u32, f32)> {
        match self.fold_in_explained(history) {
            Some((_, ex)) => self.contributions_with(&ex, history, item),
            None => Vec::new(),
        }
    }

    /// [`Als::contributions`] with the system already factorized.
    pub fn contributions_with(
        &self,
        ex: &AlsExplainer,
        history: &[(u32, f32)],
        item: u32,
    ) -> Vec<(u32, f32)> {
        let f = self.factors;
        let Some(yj) = self.item.get(item as usize * f..(item as usize + 1) * f) else {
            return Vec::new();
        };
        let rhs: Vec<f64> = yj.iter().map(|&v| v as f64).collect();
        let z: Vec<f32> = solve_factored(&ex.l, &rhs, f)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        history
            .iter()
            .filter_map(|&(h, w)| {
                let y = self.item.get(h as usize * f..(h as usize + 1) * f)?;
                Some((h, self.alpha * w * dot(&z, y)))
            })
            .collect()
    }

    pub fn memory_bytes(&self) -> usize {
        (self.user.len() + self.item.len()) * 4 + self.yty.len() * 8
    }
}

/// A person's factorized ALS system `(YᵀCY + λI) = L·Lᵀ`, for explanations.
#[derive(Debug, Clone)]
pub struct AlsExplainer {
    l: Vec<f64>,
}

/// `YᵀY + reg·I` (row-major `f × f`, `f64`), with the rows of `y` split over two threads.
fn gram(y: &[f32], f: usize, reg: f64) -> Vec<f64> {
    let n = y.len() / f;
    let half = n / 2;
    let part = |rows: &[f32]| {
        wide!({
            let mut g = vec![0f64; f * f];
            let mut acc = vec![0f32; f * f];
            for (k, r) in rows.chunks_exact(f).enumerate() {
                for i in 0..f {
                    let ri = r[i];
                    axpy(ri, r, &mut acc[i * f..(i + 1) * f]);
                }
                // Flush to f64 now and then to keep f32 round-off bounded.
                if k % 256 == 255 {
                    for (gi, ai) in g.iter_mut().zip(acc.iter_mut()) {
                        *gi += *ai as f64;
                        *ai = 0.0;
                    }
                }
            }
            for (gi, ai) in g.iter_mut().zip(&acc) {
                *gi += *ai as f64;
            }
            g
        })
    };
    let (a, b) = y.split_at(half * f);
    let (ga, gb) = std::thread::scope(|s| {
        let h = s.spawn(|| part(a));
        let gb = part(b);
        (h.join().expect("gram thread"), gb)
    });
    let mut g: Vec<f64> = ga.iter().zip(&gb).map(|(x, y)| x + y).collect();
    for i in 0..f {
        g[i * f + i] += reg;
    }
    g
}

/// One half-iteration: recomputes every row of `x` (rows of `c`) against fixed `y`.
fn solve_side(c: &Csr, x: &mut [f32], y: &[f32], f: usize, p: &AlsParams) {
    let yty64 = gram(y, f, p.regularization as f64);
    let yty: Vec<f32> = yty64.iter().map(|&v| v as f32).collect();
    let threads = p.threads.max(1);
    let rows = c.rows;
    let per = rows.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, chunk) in x.chunks_mut(per * f).enumerate() {
            let yty = &yty;
            s.spawn(move || {
                wide!({
                    let mut r = vec![0f32; f];
                    let mut pv = vec![0f32; f];
                    let mut ap = vec![0f32; f];
                    for (k, xu) in chunk.chunks_exact_mut(f).enumerate() {
                        let u = t * per + k;
                        cg_row(c, u, xu, y, yty, f, p.cg_steps, &mut r, &mut pv, &mut ap);
                    }
                })
            });
        }
    });
}

/// `implicit`'s `least_squares_cg` for one row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cg_row(
    c: &Csr,
    u: usize,
    x: &mut [f32],
    y: &[f32],
    yty: &[f32],
    f: usize,
    steps: usize,
    r: &mut [f32],
    p: &mut [f32],
    ap: &mut [f32],
) {
    let (items, conf) = c.row(u);
    // r = YᵀCp − (YᵀCY + λI)x
    for i in 0..f {
        r[i] = -dot(&yty[i * f..(i + 1) * f], x);
    }
    for (&it, &cv) in items.iter().zip(conf) {
        let yi = &y[it as usize * f..(it as usize + 1) * f];
        let coef = cv - (cv - 1.0) * dot(yi, x);
        axpy(coef, yi, r);
    }
    p.copy_from_slice(r);
    let mut rsold = dot(r, r);
    if rsold < 1e-20 {
        return;
    }
    for _ in 0..steps {
        for i in 0..f {
            ap[i] = dot(&yty[i * f..(i + 1) * f], p);
        }
        for (&it, &cv) in items.iter().zip(conf) {
            let yi = &y[it as usize * f..(it as usize + 1) * f];
            axpy((cv - 1.0) * dot(yi, p), yi, ap);
        }
        let pap = dot(p, ap);
        if pap <= 0.0 || !pap.is_finite() {
            return;
        }
        let alpha = rsold / pap;
        axpy(alpha, p, x);
        axpy(-alpha, ap, r);
        let rsnew = dot(r, r);
        if rsnew < 1e-20 {
            return;
        }
        let beta = rsnew / rsold;
        for (pi, &ri) in p.iter_mut().zip(r.iter()) {
            *pi = ri + beta * *pi;
        }
        rsold = rsnew;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_blocks() -> Csr {
        // Persons 0-2 like items 0-2, persons 3-5 like items 3-5.
        let mut t = Vec::new();
        for u in 0..6u32 {
            for i in 0..3u32 {
                let item = if u < 3 { i } else { 3 + i };
                if !(u == 0 && item == 2) {
                    t.push((u, item, 1.0));
                }
            }
        }
        Csr::from_triplets(6, 6, &t)
    }

    #[test]
    fn learns_blocks_and_folds_in() {
        let x = two_blocks();
        let p = AlsParams {
            // Rank 2 for two blocks: too many factors would memorize each person's row.
            factors: 2,
            regularization: 0.1,
            alpha: 10.0,
            iterations: 20,
            ..AlsParams::default()
        };
        let m = Als::train(&x, &p);
        // Person 0 never saw item 2, but their block did: it outscores the other block.
        let mut s = vec![0.0; 6];
        m.score(m.user_factors(0).unwrap(), &mut s);
        assert!(s[2] > s[3] + 0.1 && s[2] > s[4] + 0.1, "{s:?}");
        // A newcomer who saw item 3 is folded into the second block.
        let u = m.fold_in(&[(3, 1.0)]);
        let mut s = vec![0.0; 6];
        m.score(&u, &mut s);
        assert!(s[4] > s[0] && s[5] > s[1], "{s:?}");
        // The explanation of item 4 names item 3 as its only contribution, summing to the score.
        let c = m.contributions(&[(3, 1.0)], 4);
        assert_eq!(c.len(), 1);
        assert!((c[0].1 - s[4]).abs() < 1e-3, "{c:?} vs {}", s[4]);
    }
}
