//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a closed-form
//! item-item model. With the Gram matrix `G = XᵀX + λI` and `P = G⁻¹`, the weights are
//! `B = I − P · diag(1/diag(P))`, i.e. `B[i][j] = −P[i][j] / P[j][j]` off the diagonal and 0 on it.
//! A person's score for item `j` is `Σ_h x_h · B[h][j]` over their history, so a new event
//! changes the scores at once without retraining.
//!
//! The inverse is computed with faer's Cholesky factorization in `f64`; `B` is kept in `f32`
//! (row-major, `n × n`: memory is `4n²` bytes, which is why EASE is for catalogs up to tens of
//! thousands of items). This module must never do I/O.

use faer::{Mat, Side};

use crate::error::{RecommendError, Result};
use crate::matrix::Csr;

/// A trained EASE model.
#[derive(Debug, Clone, PartialEq)]
pub struct Ease {
    pub n_items: usize,
    pub lambda: f32,
    /// Row-major `n_items × n_items`; row `h` holds what item `h` in a history adds to each item.
    pub b: Vec<f32>,
}

impl Ease {
    /// Trains on `x` (persons × items, weights as values) with L2 regularization `lambda`.
    pub fn train(x: &Csr, lambda: f32) -> Result<Ease> {
        // Written so NaN is refused too.
        if lambda.is_nan() || lambda <= 0.0 {
            return Err(RecommendError::invalid("lambda", "must be > 0"));
        }
        let n = x.cols;
        let mut g = Mat::<f64>::zeros(n, n);
        // G = XᵀX from the sparse rows: Σ over persons of h² work instead of a dense product.
        for r in 0..x.rows {
            let (cs, vs) = x.row(r);
            for (a, (&i, &vi)) in cs.iter().zip(vs).enumerate() {
                let vi = vi as f64;
                let col = g.col_mut(i as usize);
                let col = col
                    .try_as_col_major_mut()
                    .expect("faer Mat columns are contiguous");
                let col = col.as_slice_mut();
                for (&j, &vj) in cs[a..].iter().zip(&vs[a..]) {
                    col[j as usize] += vi * vj as f64;
                }
            }
        }
        // Only G[j][i] with j >= i was filled (lower triangle, column i): the Cholesky reads that.
        for i in 0..n {
            g[(i, i)] += lambda as f64;
        }
        let llt = g.llt(Side::Lower).map_err(|e| RecommendError::Training {
            model: "ease",
            reason: format!("the Gram matrix is not positive definite ({e:?}); raise lambda"),
        })?;
        let p = faer::linalg::solvers::DenseSolveCore::inverse(&llt);
        let mut b = vec![0f32; n * n];
        for j in 0..n {
            let pjj = p[(j, j)];
            for h in 0..n {
                if h != j {
                    b[h * n + j] = (-p[(h, j)] / pjj) as f32;
                }
            }
        }
        Ok(Ease {
            n_items: n,
            lambda,
            b,
        })
    }

    /// Adds every item's score for `history` (`(item, weight)`) into `out` (length `n_items`).
    pub fn score(&self, history: &[(u32, f32)], out: &mut [f32]) {
        let n = self.n_items;
        crate::vecmath::wide!({
            for &(h, w) in history {
                let Some(row) = self.b.get(h as usize * n..(h as usize + 1) * n) else {
                    continue;
                };
                for (o, &bv) in out.iter_mut().zip(row) {
                    *o += w * bv;
                }
            }
        })
    }

    /// What each history item contributed to `item`'s score.
    pub fn contributions(&self, history: &[(u32, f32)], item: u32) -> Vec<(u32, f32)> {
        let n = self.n_items;
        history
            .iter()
            .filter(|(h, _)| (*h as usize) < n && (item as usize) < n)
            .map(|&(h, w)| (h, w * self.b[h as usize * n + item as usize]))
            .collect()
    }

    pub fn memory_bytes(&self) -> usize {
        self.b.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three persons, three items: X = [[1,1,0],[0,1,1],[1,1,1]], λ = 1.
    /// G = XᵀX + I = [[3,2,1],[2,4,2],[1,2,3]]; det = 3(12−4) − 2(6−2) + 1(4−4) = 16.
    /// P = adj(G)/16 = [[8,−4,0],[−4,8,−4],[0,−4,8]]/16, so diag(P) = 1/2 and
    /// B[h][j] = −P[h][j]/P[j][j]: B = [[0,1/2,0],[1/2,0,1/2],[0,1/2,0]].
    #[test]
    fn three_by_three_by_hand() {
        let x = Csr::from_triplets(
            3,
            3,
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 1, 1.0),
                (1, 2, 1.0),
                (2, 0, 1.0),
                (2, 1, 1.0),
                (2, 2, 1.0),
            ],
        );
        let m = Ease::train(&x, 1.0).unwrap();
        let want = [0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0];
        for (got, want) in m.b.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{:?}", m.b);
        }
        // A person who saw item 0 only: item 1 scores 1/2, item 2 scores 0.
        let mut out = vec![0.0; 3];
        m.score(&[(0, 1.0)], &mut out);
        assert!((out[1] - 0.5).abs() < 1e-6 && out[2].abs() < 1e-6);
        // Item 1 scores 1 for history {0, 2}, half from each.
        let c = m.contributions(&[(0, 1.0), (2, 1.0)], 1);
        assert!((c[0].1 - 0.5).abs() < 1e-6 && (c[1].1 - 0.5).abs() < 1e-6);
    }

    #[test]
    fn lambda_must_be_positive() {
        let x = Csr::from_triplets(1, 1, &[(0, 0, 1.0)]);
        assert!(Ease::train(&x, 0.0).is_err());
    }
}
