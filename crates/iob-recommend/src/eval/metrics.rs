//! Top-k ranking metrics as RecBole defines them (full ranking): Recall@K, NDCG@K, MRR@K,
//! Hit@K, Precision@K, averaged over persons with at least one held-out item. Pure functions.

use serde::Serialize;

/// Sums (then means) of the metrics over persons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub recall: f64,
    pub ndcg: f64,
    pub mrr: f64,
    pub hit: f64,
    pub precision: f64,
    /// Persons evaluated.
    pub persons: usize,
}

impl Metrics {
    /// Adds one person: `ranked` is the top-K list, `relevant` their held-out items (sorted).
    pub fn add(&mut self, ranked: &[u32], relevant: &[u32], k: usize) {
        if relevant.is_empty() {
            return;
        }
        let mut hits = 0usize;
        let mut dcg = 0f64;
        let mut first: Option<usize> = None;
        for (r, item) in ranked.iter().take(k).enumerate() {
            if relevant.binary_search(item).is_ok() {
                hits += 1;
                dcg += 1.0 / ((r + 2) as f64).log2();
                first.get_or_insert(r);
            }
        }
        let idcg: f64 = (0..relevant.len().min(k))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        self.recall += hits as f64 / relevant.len() as f64;
        self.ndcg += dcg / idcg;
        self.mrr += first.map_or(0.0, |r| 1.0 / (r + 1) as f64);
        self.hit += f64::from(u8::from(hits > 0));
        self.precision += hits as f64 / k as f64;
        self.persons += 1;
    }

    pub fn merge(&mut self, o: &Metrics) {
        self.recall += o.recall;
        self.ndcg += o.ndcg;
        self.mrr += o.mrr;
        self.hit += o.hit;
        self.precision += o.precision;
        self.persons += o.persons;
    }

    /// The means.
    pub fn mean(&self) -> Metrics {
        let n = self.persons.max(1) as f64;
        Metrics {
            recall: self.recall / n,
            ndcg: self.ndcg / n,
            mrr: self.mrr / n,
            hit: self.hit / n,
            precision: self.precision / n,
            persons: self.persons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // Relevant {2, 7}; ranked [5, 2, 9, 7]: hits at ranks 2 and 4.
        let mut m = Metrics::default();
        m.add(&[5, 2, 9, 7], &[2, 7], 10);
        let idcg = 1.0 + 1.0 / 3f64.log2();
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        assert!((m.ndcg - dcg / idcg).abs() < 1e-12);
        assert_eq!(m.recall, 1.0);
        assert_eq!(m.mrr, 0.5);
        assert_eq!(m.hit, 1.0);
        assert!((m.precision - 0.2).abs() < 1e-12);
        // A miss counts as zero; the mean halves.
        m.add(&[1], &[3], 10);
        let mean = m.mean();
        assert_eq!(mean.persons, 2);
        assert_eq!(mean.hit, 0.5);
        assert_eq!(mean.mrr, 0.25);
    }
}
