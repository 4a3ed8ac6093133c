//! A trained set of models over one catalog: popularity always, item-kNN always, EASE when the
//! catalog is small enough, ALS (with its persons' factors, which erasure removes). Training from
//! already extracted interactions, scoring and explanation dispatch per model. No I/O.

use std::time::Instant;

use iob_engine::{ModelChoice, RecommendConfig};
use serde::Serialize;

use crate::als::{Als, AlsParams};
use crate::catalog::Catalog;
use crate::ease::Ease;
use crate::knn::{Knn, KnnParams};
use crate::matrix::{Csr, Interaction};
use crate::popularity::Popularity;

/// ALS with the persons its rows belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct AlsState {
    pub model: Als,
    /// Row `r` of the person factors belongs to person id `persons[r]`.
    pub persons: Vec<u64>,
    /// How many distinct items the person had at training (a different count now: fold in).
    pub counts: Vec<u32>,
}

impl AlsState {
    pub fn row_of(&self, person: u64) -> Option<usize> {
        self.persons.iter().position(|&p| p == person)
    }

    /// Removes person `p`'s factors; returns whether there were any.
    pub fn remove(&mut self, person: u64) -> bool {
        let Some(r) = self.row_of(person) else {
            return false;
        };
        let f = self.model.factors;
        let last = self.persons.len() - 1;
        if r != last {
            let (a, b) = self.model.user.split_at_mut(last * f);
            a[r * f..(r + 1) * f].copy_from_slice(&b[..f]);
        }
        self.model.user.truncate(last * f);
        self.persons.swap_remove(r);
        self.counts.swap_remove(r);
        true
    }
}

/// Everything one training produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSet {
    /// Increases with every training of a data directory.
    pub seq: u64,
    /// Milliseconds since the epoch at training.
    pub trained_at: i64,
    /// Items known at training (the models' size), with their properties then.
    pub catalog: Catalog,
    pub popularity: Popularity,
    pub ease: Option<Ease>,
    pub als: Option<AlsState>,
    pub knn: Option<Knn>,
}

/// What a training took and made.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TrainReport {
    pub persons: usize,
    pub items: usize,
    pub interactions: usize,
    pub ease_secs: Option<f64>,
    pub als_secs: Option<f64>,
    pub knn_secs: f64,
    pub memory_bytes: Vec<(String, usize)>,
}

/// Interactions ready for training: row `r` is person `persons[r]`.
pub struct TrainData {
    pub persons: Vec<u64>,
    pub interactions: Vec<Interaction>,
    pub catalog: Catalog,
    pub now: i64,
}

impl ModelSet {
    /// Trains every applicable model on `data` with `cfg`'s parameters.
    pub fn train(seq: u64, data: TrainData, cfg: &RecommendConfig) -> (ModelSet, TrainReport) {
        let half_life = (cfg.half_life_days * 86_400_000.0) as i64;
        let n_items = data.catalog.len();
        let x = Csr::from_interactions(
            data.persons.len(),
            n_items,
            &data.interactions,
            data.now,
            half_life,
            cfg.max_weight,
        );
        let mut report = TrainReport {
            persons: data.persons.len(),
            items: n_items,
            interactions: data.interactions.len(),
            ..TrainReport::default()
        };
        let popularity = Popularity::train(n_items, &data.interactions, data.now, half_life);
        let ease = (n_items > 0 && n_items <= cfg.ease.max_items).then(|| {
            let t = Instant::now();
            let m = Ease::train(&x, cfg.ease.lambda.max(1e-3));
            report.ease_secs = Some(t.elapsed().as_secs_f64());
            m
        });
        let ease = match ease {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "EASE not trained");
                None
            }
            None => None,
        };
        let t = Instant::now();
        let als = (n_items > 0 && !data.persons.is_empty()).then(|| {
            let model = Als::train(
                &x,
                &AlsParams {
                    factors: cfg.als.factors.max(1),
                    regularization: cfg.als.regularization,
                    alpha: cfg.als.alpha,
                    iterations: cfg.als.iterations,
                    cg_steps: 3,
                    threads: cfg.als.threads.max(1),
                    seed: 42,
                },
            );
            AlsState {
                model,
                persons: data.persons.clone(),
                counts: (0..x.rows)
                    .map(|r| (x.indptr[r + 1] - x.indptr[r]) as u32)
                    .collect(),
            }
        });
        if als.is_some() {
            report.als_secs = Some(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        let knn = Knn::train(
            &x,
            &KnnParams {
                k: cfg.knn.k.max(1),
                shrink: cfg.knn.shrink,
                threads: 2,
            },
        );
        report.knn_secs = t.elapsed().as_secs_f64();
        let set = ModelSet {
            seq,
            trained_at: data.now,
            catalog: data.catalog,
            popularity,
            ease,
            als,
            knn: Some(knn),
        };
        report.memory_bytes = set.memory();
        (set, report)
    }

    pub fn n_items(&self) -> usize {
        self.popularity.n_items()
    }

    /// The model a placement's choice resolves to here (`auto`: EASE if trained, else ALS).
    pub fn resolve(&self, choice: ModelChoice) -> ModelChoice {
        let have = |c: ModelChoice| match c {
            ModelChoice::Ease => self.ease.is_some(),
            ModelChoice::Als => self.als.is_some(),
            ModelChoice::Knn => self.knn.is_some(),
            ModelChoice::Blend => self.ease.is_some() && self.als.is_some(),
            _ => true,
        };
        match choice {
            ModelChoice::Blend if !have(ModelChoice::Blend) => self.resolve(ModelChoice::Auto),
            ModelChoice::Auto => [ModelChoice::Ease, ModelChoice::Als, ModelChoice::Knn]
                .into_iter()
                .find(|&c| have(c))
                .unwrap_or(ModelChoice::Popularity),
            c if have(c) => c,
            _ => ModelChoice::Popularity,
        }
    }

    /// Bytes each model holds in memory.
    pub fn memory(&self) -> Vec<(String, usize)> {
        let mut m = vec![
            ("catalog".to_string(), self.catalog.memory_bytes()),
            ("popularity".to_string(), self.popularity.memory_bytes()),
        ];
        if let Some(e) = &self.ease {
            m.push(("ease".into(), e.memory_bytes()));
        }
        if let Some(a) = &self.als {
            m.push(("als".into(), a.model.memory_bytes() + a.persons.len() * 12));
        }
        if let Some(k) = &self.knn {
            m.push(("knn".into(), k.memory_bytes()));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn set(ease: bool, als: bool) -> ModelSet {
        let x = Csr::from_interactions(2, 2, &[], 0, 0, 10.0);
        ModelSet {
            seq: 1,
            trained_at: 0,
            catalog: Catalog::default(),
            popularity: Popularity::from_scores(vec![1.0, 2.0]),
            ease: ease.then(|| Ease::train(&x, 1.0).unwrap()),
            als: als.then(|| AlsState {
                model: Als::train(&x, &AlsParams::default()),
                persons: vec![7, 8],
                counts: vec![0, 0],
            }),
            knn: None,
        }
    }

    #[test]
    fn a_blend_needs_both_models_else_resolves_as_auto() {
        for (ease, als, want) in [
            (true, true, ModelChoice::Blend),
            (false, true, ModelChoice::Als),
            (true, false, ModelChoice::Ease),
            (false, false, ModelChoice::Popularity),
        ] {
            assert_eq!(
                set(ease, als).resolve(ModelChoice::Blend),
                want,
                "{ease} {als}"
            );
        }
    }
}
