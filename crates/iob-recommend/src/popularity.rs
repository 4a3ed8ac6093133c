//! Recency-weighted popularity: each item's score is the sum of its interactions' weights,
//! each halved every half-life before the training time. The cold-start fallback (an unknown
//! person, no consent, an empty history) and the baseline every model must beat.
//!
//! This module must never do I/O.

use crate::matrix::{Interaction, decayed};

#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    /// Score per item.
    pub scores: Vec<f32>,
    /// Items by descending score (ties: lower index first).
    pub ranked: Vec<u32>,
}

impl Popularity {
    /// From raw interactions: Σ weight · 2^(−age / half-life) per item (`half_life_ms = 0`:
    /// plain weighted counts).
    pub fn train(
        n_items: usize,
        interactions: &[Interaction],
        now: i64,
        half_life_ms: i64,
    ) -> Self {
        let mut scores = vec![0f32; n_items];
        for i in interactions {
            if let Some(s) = scores.get_mut(i.item as usize) {
                *s += decayed(i.weight, i.at, now, half_life_ms);
            }
        }
        Self::from_scores(scores)
    }

    pub fn from_scores(scores: Vec<f32>) -> Self {
        let mut ranked: Vec<u32> = (0..scores.len() as u32).collect();
        ranked.sort_by(|&a, &b| {
            scores[b as usize]
                .total_cmp(&scores[a as usize])
                .then(a.cmp(&b))
        });
        Popularity { scores, ranked }
    }

    pub fn n_items(&self) -> usize {
        self.scores.len()
    }

    /// Adds every item's popularity into `out`.
    pub fn score(&self, out: &mut [f32]) {
        for (o, s) in out.iter_mut().zip(&self.scores) {
            *o += s;
        }
    }

    /// The `n` most popular items that `keep` accepts, in order, with their scores.
    pub fn top(&self, n: usize, keep: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        self.ranked
            .iter()
            .copied()
            .filter(|&i| keep(i))
            .take(n)
            .map(|i| (i, self.scores[i as usize]))
            .collect()
    }

    pub fn memory_bytes(&self) -> usize {
        self.scores.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_beats_old_at_equal_counts() {
        let day = 86_400_000;
        let at = |item, at| Interaction {
            row: 0,
            item,
            weight: 1.0,
            at,
        };
        // Item 0: two interactions 2 days ago (2 · 1/4 = 0.5); item 1: one today (1.0).
        let p = Popularity::train(3, &[at(0, 0), at(0, 0), at(1, 2 * day)], 2 * day, day);
        assert!((p.scores[0] - 0.5).abs() < 1e-6 && (p.scores[1] - 1.0).abs() < 1e-6);
        assert_eq!(p.ranked, vec![1, 0, 2]);
        assert_eq!(p.top(1, |i| i != 1), vec![(0, 0.5)]);
        // Without decay, counts decide.
        let p = Popularity::train(3, &[at(0, 0), at(0, 0), at(1, 2 * day)], 2 * day, 0);
        assert_eq!(p.ranked[0], 0);
    }
}
