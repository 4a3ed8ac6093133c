//! Item-kNN: cosine similarity between items' interaction columns (with shrinkage, so that two
//! items seen together once do not look identical), keeping the `k` nearest neighbours of each
//! item. Trained on persons it is classic item-based collaborative filtering; trained on
//! sessions it is session co-occurrence, which serves anonymous visitors and "people who viewed
//! this also viewed". Scoring sums the neighbours of the history items, so it is instant and
//! each score splits exactly into what each history item contributed.
//!
//! This module must never do I/O.

use crate::matrix::Csr;

/// Training parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnParams {
    /// Neighbours kept per item.
    pub k: usize,
    /// Added to the cosine's denominator.
    pub shrink: f32,
    pub threads: usize,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: 100,
            shrink: 10.0,
            threads: 2,
        }
    }
}

/// The neighbour lists, one row per item, most similar first.
#[derive(Debug, Clone, PartialEq)]
pub struct Knn {
    pub neighbours: Csr,
}

impl Knn {
    pub fn train(x: &Csr, p: &KnnParams) -> Knn {
        let xt = x.transpose();
        let n = x.cols;
        let norms: Vec<f32> = (0..n)
            .map(|i| xt.row(i).1.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        let threads = p.threads.max(1);
        let per = n.div_ceil(threads).max(1);
        let parts: Vec<Vec<(u32, u32, f32)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (x, xt, norms) = (x, &xt, &norms);
                    s.spawn(move || {
                        let mut acc = vec![0f32; n];
                        let mut touched: Vec<u32> = Vec::new();
                        let mut out = Vec::new();
                        let mut cand: Vec<(u32, f32)> = Vec::new();
                        for i in t * per..((t + 1) * per).min(n) {
                            let (users, vals) = xt.row(i);
                            for (&u, &vu) in users.iter().zip(vals) {
                                let (items, w) = x.row(u as usize);
                                for (&j, &wj) in items.iter().zip(w) {
                                    if acc[j as usize] == 0.0 {
                                        touched.push(j);
                                    }
                                    acc[j as usize] += vu * wj;
                                }
                            }
                            cand.clear();
                            for &j in &touched {
                                let v = acc[j as usize];
                                acc[j as usize] = 0.0;
                                if j as usize != i && v > 0.0 {
                                    let s = v / (norms[i] * norms[j as usize] + p.shrink);
                                    cand.push((j, s));
                                }
                            }
                            touched.clear();
                            cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                            cand.truncate(p.k);
                            out.extend(cand.iter().map(|&(j, s)| (i as u32, j, s)));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("knn thread"))
                .collect()
        });
        let triplets: Vec<(u32, u32, f32)> = parts.into_iter().flatten().collect();
        let mut neighbours = Csr::from_triplets(n, n, &triplets);
        // from_triplets sorts by column; keep rows most-similar-first for "similar items".
        for r in 0..n {
            let (a, b) = (neighbours.indptr[r], neighbours.indptr[r + 1]);
            let mut row: Vec<(u32, f32)> = neighbours.indices[a..b]
                .iter()
                .copied()
                .zip(neighbours.data[a..b].iter().copied())
                .collect();
            row.sort_unstable_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            for (k, (j, s)) in row.into_iter().enumerate() {
                neighbours.indices[a + k] = j;
                neighbours.data[a + k] = s;
            }
        }
        Knn { neighbours }
    }

    pub fn n_items(&self) -> usize {
        self.neighbours.rows
    }

    /// Adds every item's score for `history` into `out`.
    pub fn score(&self, history: &[(u32, f32)], out: &mut [f32]) {
        for &(h, w) in history {
            if (h as usize) < self.neighbours.rows {
                let (js, ss) = self.neighbours.row(h as usize);
                for (&j, &s) in js.iter().zip(ss) {
                    out[j as usize] += w * s;
                }
            }
        }
    }

    /// What each history item contributed to `item`'s score.
    pub fn contributions(&self, history: &[(u32, f32)], item: u32) -> Vec<(u32, f32)> {
        history
            .iter()
            .filter(|(h, _)| (*h as usize) < self.neighbours.rows)
            .map(|&(h, w)| {
                let (js, ss) = self.neighbours.row(h as usize);
                let s = js.iter().position(|&j| j == item).map_or(0.0, |k| ss[k]);
                (h, w * s)
            })
            .collect()
    }

    /// The items most similar to `item` ("people who viewed this also viewed").
    pub fn similar(&self, item: u32) -> Vec<(u32, f32)> {
        if item as usize >= self.neighbours.rows {
            return Vec::new();
        }
        self.neighbours.row_pairs(item as usize)
    }

    pub fn memory_bytes(&self) -> usize {
        self.neighbours.nnz() * 8 + self.neighbours.indptr.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_by_hand() {
        // Items 0 and 1 seen together by two persons; item 2 with item 0 once.
        // Columns: x0 = (1,1,1), x1 = (1,1,0), x2 = (0,0,1).
        // cos(0,1) = 2/(√3·√2 + shrink 0) = 0.8165; cos(0,2) = 1/√3 = 0.5774.
        let x = Csr::from_triplets(
            3,
            3,
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 0, 1.0),
                (1, 1, 1.0),
                (2, 0, 1.0),
                (2, 2, 1.0),
            ],
        );
        let m = Knn::train(
            &x,
            &KnnParams {
                k: 10,
                shrink: 0.0,
                threads: 2,
            },
        );
        let s = m.similar(0);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, 1);
        assert!((s[0].1 - 0.8165).abs() < 1e-3 && (s[1].1 - 0.5774).abs() < 1e-3);
        // Items 1 and 2 never co-occur: not neighbours.
        assert!(m.similar(1).iter().all(|(j, _)| *j != 2));
        let mut out = vec![0.0; 3];
        m.score(&[(1, 2.0)], &mut out);
        assert!((out[0] - 2.0 * 0.8165).abs() < 1e-3 && out[2] == 0.0);
        assert_eq!(m.contributions(&[(1, 2.0), (2, 1.0)], 0).len(), 2);
    }

    #[test]
    fn keeps_only_k_neighbours() {
        let t: Vec<(u32, u32, f32)> = (0..5).map(|i| (0, i, 1.0)).collect();
        let x = Csr::from_triplets(1, 5, &t);
        let m = Knn::train(
            &x,
            &KnnParams {
                k: 2,
                shrink: 1.0,
                threads: 1,
            },
        );
        assert!((0..5).all(|i| m.similar(i).len() == 2));
    }
}
