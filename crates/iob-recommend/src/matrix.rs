//! The interaction matrix: persons × items in compressed sparse rows, and how raw interactions
//! (an event type, a time) become its weights (per-type weight × exponential time decay).
//!
//! Every model trains from a [`Csr`]; nothing here knows about events, files or persons' ids
//! (rows and columns are dense indices handed out by the caller). This module must never do I/O.

/// One interaction before aggregation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub row: u32,
    pub item: u32,
    /// Weight of the interaction's type (view 1, purchase 4, ...), before decay.
    pub weight: f32,
    /// Event time, milliseconds since the Unix epoch.
    pub at: i64,
}

/// Exponential time decay: `weight` halves every `half_life_ms` before `now` (no decay when
/// `half_life_ms` is 0; events from the future count fully).
#[inline]
pub fn decayed(weight: f32, at: i64, now: i64, half_life_ms: i64) -> f32 {
    if half_life_ms <= 0 || at >= now {
        return weight;
    }
    let age = (now - at) as f64 / half_life_ms as f64;
    (weight as f64 * (-age * std::f64::consts::LN_2).exp()) as f32
}

/// A sparse matrix in compressed sparse row form (`f32` values, `u32` column indices).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    /// Row `r` holds entries `indptr[r]..indptr[r + 1]`.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f32>,
}

impl Csr {
    /// Builds the matrix from `(row, col, value)` triplets; duplicates are summed and each row's
    /// columns sorted. Entries outside `rows × cols` are dropped (callers size the matrix).
    pub fn from_triplets(rows: usize, cols: usize, triplets: &[(u32, u32, f32)]) -> Csr {
        let mut counts = vec![0usize; rows + 1];
        for &(r, c, _) in triplets {
            if (r as usize) < rows && (c as usize) < cols {
                counts[r as usize + 1] += 1;
            }
        }
        for i in 0..rows {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let nnz = counts[rows];
        let mut indices = vec![0u32; nnz];
        let mut data = vec![0f32; nnz];
        for &(r, c, v) in triplets {
            if (r as usize) < rows && (c as usize) < cols {
                let at = next[r as usize];
                indices[at] = c;
                data[at] = v;
                next[r as usize] += 1;
            }
        }
        // Sort each row by column and sum duplicates in place.
        let mut out_ptr = vec![0usize; rows + 1];
        let mut w = 0usize;
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for r in 0..rows {
            pairs.clear();
            pairs.extend((counts[r]..counts[r + 1]).map(|k| (indices[k], data[k])));
            pairs.sort_unstable_by_key(|p| p.0);
            let mut last: Option<u32> = None;
            for &(c, v) in &pairs {
                if last == Some(c) {
                    data[w - 1] += v;
                } else {
                    indices[w] = c;
                    data[w] = v;
                    w += 1;
                    last = Some(c);
                }
            }
            out_ptr[r + 1] = w;
        }
        indices.truncate(w);
        data.truncate(w);
        Csr {
            rows,
            cols,
            indptr: out_ptr,
            indices,
            data,
        }
    }

    /// Aggregates interactions into a matrix: each `(row, item)` cell is the sum of its
    /// decayed weights, capped at `cap` (a person who viewed an item 50 times is not 50 times
    /// as interested; `cap <= 0` means no cap).
    pub fn from_interactions(
        rows: usize,
        cols: usize,
        interactions: &[Interaction],
        now: i64,
        half_life_ms: i64,
        cap: f32,
    ) -> Csr {
        let triplets: Vec<(u32, u32, f32)> = interactions
            .iter()
            .map(|i| (i.row, i.item, decayed(i.weight, i.at, now, half_life_ms)))
            .collect();
        let mut m = Csr::from_triplets(rows, cols, &triplets);
        if cap > 0.0 {
            for v in &mut m.data {
                *v = v.min(cap);
            }
        }
        m
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Columns and values of row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// Row `r` as `(column, value)` pairs.
    pub fn row_pairs(&self, r: usize) -> Vec<(u32, f32)> {
        let (c, v) = self.row(r);
        c.iter().copied().zip(v.iter().copied()).collect()
    }

    /// The transpose (items × persons), also in CSR form.
    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.cols {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        for r in 0..self.rows {
            let (cs, vs) = self.row(r);
            for (&c, &v) in cs.iter().zip(vs) {
                let at = next[c as usize];
                indices[at] = r as u32;
                data[at] = v;
                next[c as usize] += 1;
            }
        }
        Csr {
            rows: self.cols,
            cols: self.rows,
            indptr: counts,
            indices,
            data,
        }
    }

    /// The same pattern with every value replaced by `f(value)`.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Csr {
        let mut m = self.clone();
        for v in &mut m.data {
            *v = f(*v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_sum_and_rows_sort() {
        let m = Csr::from_triplets(2, 3, &[(0, 2, 1.0), (0, 0, 2.0), (0, 2, 0.5), (1, 1, 3.0)]);
        assert_eq!(m.row_pairs(0), vec![(0, 2.0), (2, 1.5)]);
        assert_eq!(m.row_pairs(1), vec![(1, 3.0)]);
        let t = m.transpose();
        assert_eq!(t.rows, 3);
        assert_eq!(t.row_pairs(2), vec![(0, 1.5)]);
        assert_eq!(t.row_pairs(1), vec![(1, 3.0)]);
    }

    #[test]
    fn decay_halves_per_half_life() {
        let day = 86_400_000;
        assert!((decayed(4.0, 0, day, day) - 2.0).abs() < 1e-6);
        assert!((decayed(4.0, 0, 2 * day, day) - 1.0).abs() < 1e-6);
        assert_eq!(decayed(4.0, 5, 0, day), 4.0);
        assert_eq!(decayed(4.0, 0, day, 0), 4.0);
    }

    #[test]
    fn interactions_aggregate_with_cap() {
        let i = |item, w| Interaction {
            row: 0,
            item,
            weight: w,
            at: 0,
        };
        let m = Csr::from_interactions(1, 2, &[i(0, 1.0), i(0, 1.0), i(1, 9.0)], 0, 0, 5.0);
        assert_eq!(m.row_pairs(0), vec![(0, 2.0), (1, 5.0)]);
    }
}
