//! Offline evaluation (`iob eval recommend`): every algorithm of the crate on the same split,
//! hyper-parameters chosen on the validation part only, the chosen configuration's test
//! metrics reported (full ranking over all items; items in the person's training and, for the
//! test, validation parts are not candidates, as in RecBole).
//!
//! * [`data`]: the datasets; [`split`]: the two protocols and their files; [`metrics`]: the
//!   metrics; [`peer`]: running `implicit` (PyPI) on the same split files.
//!
//! Models train on the training part only and score from it, like RecBole's test phase.

pub mod data;
pub mod metrics;
pub mod peer;
pub mod split;

use std::time::Instant;

use serde::Serialize;

use crate::als::{Als, AlsParams};
use crate::ease::Ease;
use crate::knn::{Knn, KnnParams};
use crate::matrix::Csr;
use crate::popularity::Popularity;
use crate::vecmath::top_k;
pub use metrics::Metrics;
pub use split::{Protocol, Split};

/// One algorithm's result on one split.
#[derive(Debug, Clone, Serialize)]
pub struct AlgoResult {
    pub algorithm: String,
    /// The configuration chosen on validation.
    pub params: String,
    pub valid: Metrics,
    pub test: Metrics,
    /// Training time of the chosen configuration, seconds.
    pub train_secs: f64,
}

/// Results of every algorithm on one dataset under one protocol.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dataset: String,
    pub protocol: Protocol,
    pub users: usize,
    pub items: usize,
    pub train_interactions: usize,
    pub results: Vec<AlgoResult>,
}

#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    pub k: usize,
    pub seed: u64,
    pub threads: usize,
    /// Smaller grids (for tests and quick looks).
    pub quick: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            k: 10,
            seed: 2020,
            threads: 2,
            quick: false,
        }
    }
}

/// The training part as a persons × items matrix of ones.
pub fn train_matrix(s: &Split) -> Csr {
    let t: Vec<(u32, u32, f32)> = s.train.iter().map(|&(u, i, _)| (u, i, 1.0)).collect();
    let mut m = Csr::from_triplets(s.n_users, s.n_items, &t);
    // Duplicates were removed when loading; keep the matrix binary anyway.
    for v in &mut m.data {
        *v = 1.0;
    }
    m
}

/// Scores every item for person `u` with history `h` into `out` (added to zeros).
pub type Scorer = dyn Fn(usize, &[(u32, f32)], &mut [f32]) + Sync;

/// Evaluates a scorer on the validation (`test = false`) or test part.
pub fn evaluate(s: &Split, x: &Csr, opts: &EvalOptions, test: bool, score: &Scorer) -> Metrics {
    let users: Vec<usize> = (0..s.n_users)
        .filter(|&u| !(if test { &s.test[u] } else { &s.valid[u] }).is_empty())
        .collect();
    let threads = opts.threads.max(1);
    let per = users.len().div_ceil(threads).max(1);
    let parts: Vec<Metrics> = std::thread::scope(|sc| {
        let hs: Vec<_> = users
            .chunks(per)
            .map(|chunk| {
                sc.spawn(move || {
                    let mut m = Metrics::default();
                    let mut out = vec![0f32; s.n_items];
                    let mut masked = vec![false; s.n_items];
                    for &u in chunk {
                        out.iter_mut().for_each(|v| *v = 0.0);
                        let history = x.row_pairs(u);
                        score(u, &history, &mut out);
                        let mut seen: Vec<u32> = history.iter().map(|h| h.0).collect();
                        if test {
                            seen.extend(&s.valid[u]);
                        }
                        for &i in &seen {
                            masked[i as usize] = true;
                        }
                        let ranked: Vec<u32> = top_k(&out, opts.k, |i| !masked[i])
                            .into_iter()
                            .map(|p| p.0)
                            .collect();
                        for &i in &seen {
                            masked[i as usize] = false;
                        }
                        let target = if test { &s.test[u] } else { &s.valid[u] };
                        m.add(&ranked, target, opts.k);
                    }
                    m
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("eval thread"))
            .collect()
    });
    let mut total = Metrics::default();
    for p in &parts {
        total.merge(p);
    }
    total.mean()
}

/// A blend's configuration: EASE's λ and ALS's weight.
#[derive(Debug, Clone, Copy)]
struct Blend {
    lambda: f32,
    weight: f32,
}

/// Tries each configuration, keeps the one with the best validation NDCG@k: its result and
/// the configuration itself.
fn tune<P: std::fmt::Debug>(
    name: &str,
    grid: Vec<P>,
    s: &Split,
    x: &Csr,
    opts: &EvalOptions,
    progress: &mut dyn FnMut(&str),
    mut run: impl FnMut(&P) -> Option<(f64, Box<Scorer>)>,
) -> Option<(AlgoResult, P)> {
    let mut best: Option<(AlgoResult, usize)> = None;
    for (at, p) in grid.iter().enumerate() {
        let Some((secs, scorer)) = run(p) else {
            continue;
        };
        let valid = evaluate(s, x, opts, false, scorer.as_ref());
        progress(&format!(
            "{name} {p:?}: valid NDCG@{} {:.4} ({secs:.2} s)",
            opts.k, valid.ndcg
        ));
        if best.as_ref().is_none_or(|b| valid.ndcg > b.0.valid.ndcg) {
            let test = evaluate(s, x, opts, true, scorer.as_ref());
            let r = AlgoResult {
                algorithm: name.into(),
                params: format!("{p:?}"),
                valid,
                test,
                train_secs: secs,
            };
            best = Some((r, at));
        }
    }
    let (r, at) = best?;
    Some((r, grid.into_iter().nth(at).expect("in the grid")))
}

/// Runs popularity, EASE, ALS and item-kNN on `s`.
pub fn run_all(s: &Split, opts: &EvalOptions, progress: &mut dyn FnMut(&str)) -> Vec<AlgoResult> {
    let x = train_matrix(s);
    let mut out = Vec::new();
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    // Popularity (training counts).
    let pop = {
        let mut counts = vec![0f32; s.n_items];
        for &(_, i, _) in &s.train {
            counts[i as usize] += 1.0;
        }
        Popularity::from_scores(counts)
    };
    out.extend(
        tune("popularity", vec!["counts"], s, &x, opts, progress, |_| {
            let p = pop.clone();
            Some((0.0, Box::new(move |_, _, o: &mut [f32]| p.score(o))))
        })
        .map(|t| t.0),
    );
    // EASE: λ grid; larger catalogs get fewer points (each is an n³ inversion).
    let lambdas: Vec<f32> = if opts.quick {
        vec![100.0, 500.0]
    } else if s.n_items > 5000 {
        vec![100.0, 300.0, 1000.0]
    } else {
        vec![50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0]
    };
    let ease = tune("ease", lambdas, s, &x, opts, progress, |&l| {
        let mut m = None;
        let secs = timed(&mut || m = Ease::train(&x, l).ok());
        let m = m?;
        Some((
            secs,
            Box::new(move |_, h: &[(u32, f32)], o: &mut [f32]| m.score(h, o)),
        ))
    });
    let best_lambda = ease.as_ref().map(|e| e.1);
    out.extend(ease.map(|e| e.0));
    // ALS.
    let mut grid = Vec::new();
    let (fs, regs, alphas): (&[usize], &[f32], &[f32]) = if opts.quick {
        (&[32], &[0.1], &[5.0])
    } else {
        (&[64, 128], &[0.1, 1.0, 10.0, 50.0], &[1.0, 5.0, 20.0])
    };
    for &factors in fs {
        for &regularization in regs {
            for &alpha in alphas {
                grid.push(AlsParams {
                    factors,
                    regularization,
                    alpha,
                    iterations: 15,
                    cg_steps: 3,
                    threads: opts.threads,
                    seed: opts.seed,
                });
            }
        }
    }
    let als = tune("als", grid, s, &x, opts, progress, |p| {
        let mut m = None;
        let secs = timed(&mut || m = Some(Als::train(&x, p)));
        let m = m?;
        Some((
            secs,
            Box::new(move |u, _: &[(u32, f32)], o: &mut [f32]| {
                if let Some(f) = m.user_factors(u) {
                    m.score(f, o)
                }
            }),
        ))
    });
    let best_als = als.as_ref().map(|a| a.1);
    out.extend(als.map(|a| a.0));
    // EASE and ALS blended: ALS as chosen above; EASE's λ and the blend weight chosen jointly on
    // validation (EASE's best λ alone need not be the best partner).
    if let (Some(lambda), Some(p)) = (best_lambda, best_als) {
        let t = Instant::now();
        let als = std::sync::Arc::new(Als::train(&x, &p));
        let als_secs = t.elapsed().as_secs_f64();
        let (lambdas, weights): (Vec<f32>, Vec<f32>) = if opts.quick {
            (vec![lambda], vec![1.0])
        } else if s.n_items > 5000 {
            (vec![lambda], vec![0.1, 0.25, 0.5, 1.0, 2.0])
        } else {
            (
                vec![lambda / 2.0, lambda, lambda * 2.0],
                vec![0.1, 0.25, 0.5, 1.0, 2.0],
            )
        };
        let mut eases: Vec<(f32, std::sync::Arc<Ease>, f64)> = Vec::new();
        for &l in &lambdas {
            let t = Instant::now();
            if let Ok(e) = Ease::train(&x, l) {
                eases.push((l, std::sync::Arc::new(e), t.elapsed().as_secs_f64()));
            }
        }
        let grid: Vec<Blend> = eases
            .iter()
            .flat_map(|(l, _, _)| {
                weights.iter().map(|&w| Blend {
                    lambda: *l,
                    weight: w,
                })
            })
            .collect();
        out.extend(
            tune("ease+als", grid, s, &x, opts, progress, |b: &Blend| {
                let (_, ease, ease_secs) = eases.iter().find(|e| e.0 == b.lambda)?;
                let (ease, als, w) = (ease.clone(), als.clone(), b.weight);
                Some((
                    ease_secs + als_secs,
                    Box::new(move |u, h: &[(u32, f32)], o: &mut [f32]| {
                        let Some(f) = als.user_factors(u) else {
                            return ease.score(h, o);
                        };
                        let mut a = vec![0f32; o.len()];
                        als.score(f, &mut a);
                        ease.score(h, o);
                        crate::blend::blend_over(o, &a, w, h);
                    }),
                ))
            })
            .map(|t| t.0),
        );
    }
    // Item-kNN.
    let mut grid = Vec::new();
    let (ks, shrinks): (&[usize], &[f32]) = if opts.quick {
        (&[50], &[10.0])
    } else {
        (&[20, 50, 100, 200], &[0.0, 10.0, 50.0])
    };
    for &k in ks {
        for &shrink in shrinks {
            grid.push(KnnParams {
                k,
                shrink,
                threads: opts.threads,
            });
        }
    }
    out.extend(
        tune("item-knn", grid, s, &x, opts, progress, |p| {
            let mut m = None;
            let secs = timed(&mut || m = Some(Knn::train(&x, p)));
            let m = m?;
            Some((
                secs,
                Box::new(move |_, h: &[(u32, f32)], o: &mut [f32]| m.score(h, o)),
            ))
        })
        .map(|t| t.0),
    );
    out
}

/// The reports as one plain-text table.
pub fn table(reports: &[Report]) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "{:<18} {:<16} {:<12} {:>9} {:>8} {:>8} {:>8} {:>8}  {}\n",
        "dataset",
        "protocol",
        "algorithm",
        "Recall@10",
        "NDCG@10",
        "MRR@10",
        "Hit@10",
        "train s",
        "chosen on validation"
    ));
    for r in reports {
        for a in &r.results {
            t.push_str(&format!(
                "{:<18} {:<16} {:<12} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>8.2}  {}\n",
                r.dataset,
                r.protocol.name(),
                a.algorithm,
                a.test.recall,
                a.test.ndcg,
                a.test.mrr,
                a.test.hit,
                a.train_secs,
                a.params
            ));
        }
    }
    t
}
