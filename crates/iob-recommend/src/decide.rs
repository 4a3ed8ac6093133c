//! The decide logic, pure: from a person's current history (or the reason there is none), a
//! placement and the trained models, the items to show with scores and explanations, and
//! whether the answer is personalized and, if not, why. The engine integration (`service.rs`)
//! supplies the history only for a subject the engine allowed.
//!
//! Explanations: each personalized item names the (up to two) history items that contributed
//! most to its score ("because you bought X and viewed Y"); a fallback item says it is popular
//! and why the answer is not personalized. This module must never do I/O.

use iob_engine::ModelChoice;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::model::ModelSet;
use crate::rules::Rules;
use crate::vecmath::top_k;

/// A person's history as the models see it, now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Person id (ALS keeps factors per person id).
    pub person: Option<u64>,
    /// `(catalog item, decayed summed weight)`, one per item, any item ever seen.
    pub items: Vec<(u32, f32)>,
    /// Items bought (catalog indices, sorted).
    pub purchased: Vec<u32>,
}

/// Why an answer is not personalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Fallback {
    /// The person has not consented to personalization (`basis`: withdrawn, default).
    NoConsent { basis: String },
    /// No person is known by the identifier.
    UnknownPerson,
    /// The person has no history the models know.
    ColdStart,
    /// The placement serves popularity by configuration.
    PopularityPlacement,
}

impl Fallback {
    pub fn code(&self) -> &'static str {
        match self {
            Fallback::NoConsent { .. } => "no_consent",
            Fallback::UnknownPerson => "unknown_person",
            Fallback::ColdStart => "cold_start",
            Fallback::PopularityPlacement => "popularity_placement",
        }
    }
}

/// A placement, resolved from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub name: String,
    pub model: ModelChoice,
    pub n: usize,
    pub max_n: usize,
    pub rules: Rules,
    /// ALS's weight against EASE's when `model` is `blend` (`recommend.blend_weight`).
    pub blend_weight: f32,
}

/// A history item behind a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Because {
    pub item: String,
    /// Its share of the item's score.
    pub contribution: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommended {
    pub item: String,
    pub score: f32,
    /// The history items that contributed most (empty for fallback items).
    pub because: Vec<Because>,
    /// In words: "because you viewed X and Y", or why it is a fallback.
    pub explanation: String,
}

/// The answer of a decide call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub placement: String,
    /// The model that scored the items (`popularity` for fallbacks).
    pub model: &'static str,
    /// Training sequence of the models used (0: none trained yet).
    pub model_version: u64,
    pub personalized: bool,
    /// Why not personalized (absent when personalized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    pub items: Vec<Recommended>,
}

/// Decides for a person with `history`, or falls back for `why`.
pub fn decide(
    models: &ModelSet,
    catalog: &Catalog,
    placement: &Placement,
    subject: Result<&History, Fallback>,
    n: usize,
) -> Decision {
    let history = match subject {
        Ok(h) => h,
        Err(why) => return fallback(models, catalog, placement, None, why, n),
    };
    let model = models.resolve(placement.model);
    if model == ModelChoice::Popularity {
        return fallback(
            models,
            catalog,
            placement,
            Some(history),
            Fallback::PopularityPlacement,
            n,
        );
    }
    let known: Vec<(u32, f32)> = history
        .items
        .iter()
        .copied()
        .filter(|&(i, w)| (i as usize) < models.n_items() && w > 0.0)
        .collect();
    if known.is_empty() {
        return fallback(
            models,
            catalog,
            placement,
            Some(history),
            Fallback::ColdStart,
            n,
        );
    }
    // A per-thread buffer: allocating (and faulting in) a fresh 400 KB vector per call over
    // 100k items showed as a few-ms p99.
    SCORES.with_borrow_mut(|scores| {
        scores.clear();
        scores.resize(models.n_items(), 0.0);
        personalized(
            models, catalog, placement, history, n, model, &known, scores,
        )
    })
}

thread_local! {
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The second model's scores of a blend.
    static SECOND: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The personalized path of [`decide`], scoring into `scores` (zeroed, one per model item).
#[allow(clippy::too_many_arguments)]
fn personalized(
    models: &ModelSet,
    catalog: &Catalog,
    placement: &Placement,
    history: &History,
    n: usize,
    model: ModelChoice,
    known: &[(u32, f32)],
    scores: &mut [f32],
) -> Decision {
    let mut als_explainer = None;
    // ALS's person factors: the trained row while the history is the one it was trained on,
    // else folded in. One factorization serves the fold-in and every explanation.
    let als_factors = |explain: bool| {
        let a = models.als.as_ref().expect("resolved");
        let stored = history
            .person
            .and_then(|p| a.row_of(p))
            .filter(|&r| a.counts[r] as usize == known.len());
        let folded = match (stored, explain) {
            (Some(_), false) => None,
            _ => a.model.fold_in_explained(known),
        };
        let u = match (stored, &folded) {
            (Some(r), _) => a.model.user_factors(r).expect("row").to_vec(),
            (None, Some((u, _))) => u.clone(),
            (None, None) => vec![0.0; a.model.factors],
        };
        (u, folded.map(|(_, ex)| ex))
    };
    match model {
        ModelChoice::Ease => models.ease.as_ref().expect("resolved").score(known, scores),
        ModelChoice::Knn => models.knn.as_ref().expect("resolved").score(known, scores),
        ModelChoice::Blend => {
            let a = models.als.as_ref().expect("resolved");
            let (u, _) = als_factors(false);
            SECOND.with_borrow_mut(|als| {
                als.clear();
                als.resize(scores.len(), 0.0);
                a.model.score(&u, als);
                models.ease.as_ref().expect("resolved").score(known, scores);
                crate::blend::blend_over(scores, als, placement.blend_weight, known);
            });
            // Standardized scores are centred on the mean over the items outside the history:
            // the pool below keeps the items scored above it.
        }
        _ => {
            let (u, ex) = als_factors(true);
            models
                .als
                .as_ref()
                .expect("resolved")
                .model
                .score(&u, scores);
            als_explainer = ex;
        }
    }
    let excluded = |i: usize| {
        let i = i as u32;
        (placement.rules.exclude_purchased && history.purchased.binary_search(&i).is_ok())
            || (placement.rules.exclude_seen && known.iter().any(|k| k.0 == i))
            || !placement.rules.passes(catalog, i)
    };
    // Items with no evidence (score 0) are not personalized picks.
    let pool = n.saturating_mul(4).max(n + 20);
    let mut cands = top_k(scores, pool, |i| scores[i] > 0.0 && !excluded(i));
    if model == ModelChoice::Knn {
        // kNN scores only neighbours; anything else is no evidence at all.
        cands.retain(|c| c.1 > 0.0);
    }
    let picks = placement.rules.diversify(catalog, &cands, n);
    if picks.is_empty() {
        return fallback(
            models,
            catalog,
            placement,
            Some(history),
            Fallback::ColdStart,
            n,
        );
    }
    let mut items: Vec<Recommended> = picks
        .iter()
        .map(|&(i, s)| {
            let mut contrib = match model {
                // A blend is explained by its EASE part (history items' weights).
                ModelChoice::Ease | ModelChoice::Blend => models
                    .ease
                    .as_ref()
                    .expect("resolved")
                    .contributions(known, i),
                ModelChoice::Knn => models
                    .knn
                    .as_ref()
                    .expect("resolved")
                    .contributions(known, i),
                _ => match &als_explainer {
                    Some(ex) => models
                        .als
                        .as_ref()
                        .expect("resolved")
                        .model
                        .contributions_with(ex, known, i),
                    None => Vec::new(),
                },
            };
            contrib.retain(|c| c.1 > 0.0);
            contrib.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            contrib.truncate(2);
            let because: Vec<Because> = contrib
                .iter()
                .map(|&(h, c)| Because {
                    item: catalog.id(h).to_string(),
                    contribution: c,
                })
                .collect();
            let explanation = explain(&contrib, catalog, &history.purchased);
            Recommended {
                item: catalog.id(i).to_string(),
                score: s,
                because,
                explanation,
            }
        })
        .collect();
    // Rules may leave fewer than n: top up with popular items, saying so.
    if items.len() < n {
        let have: Vec<String> = items.iter().map(|r| r.item.clone()).collect();
        let more = popular(
            models,
            catalog,
            placement,
            Some(history),
            n - items.len(),
            &have,
        );
        items.extend(more.into_iter().map(|(i, s)| Recommended {
            item: catalog.id(i).to_string(),
            score: s,
            because: Vec::new(),
            explanation: "popular now (not enough personalized items passed the rules)".into(),
        }));
    }
    Decision {
        placement: placement.name.clone(),
        model: model.name(),
        model_version: models.seq,
        personalized: true,
        fallback: None,
        items,
    }
}

fn explain(contrib: &[(u32, f32)], catalog: &Catalog, purchased: &[u32]) -> String {
    let part = |&(h, _): &(u32, f32)| {
        let verb = if purchased.binary_search(&h).is_ok() {
            "bought"
        } else {
            "viewed"
        };
        (verb, catalog.id(h).to_string())
    };
    match contrib {
        [] => "related to your history".into(),
        [a] => {
            let (v, x) = part(a);
            format!("because you {v} {x}")
        }
        [a, b, ..] => {
            let ((va, xa), (vb, xb)) = (part(a), part(b));
            if va == vb {
                format!("because you {va} {xa} and {xb}")
            } else {
                format!("because you {va} {xa} and {vb} {xb}")
            }
        }
    }
}

/// Popular items passing the rules (purchase exclusion only with a usable history).
fn popular(
    models: &ModelSet,
    catalog: &Catalog,
    placement: &Placement,
    history: Option<&History>,
    n: usize,
    skip: &[String],
) -> Vec<(u32, f32)> {
    models.popularity.top(n, |i| {
        let bought = history.is_some_and(|h| {
            (placement.rules.exclude_purchased && h.purchased.binary_search(&i).is_ok())
                || (placement.rules.exclude_seen
                    && h.items.binary_search_by_key(&i, |p| p.0).is_ok())
        });
        !bought && placement.rules.passes(catalog, i) && !skip.iter().any(|s| s == catalog.id(i))
    })
}

fn fallback(
    models: &ModelSet,
    catalog: &Catalog,
    placement: &Placement,
    history: Option<&History>,
    why: Fallback,
    n: usize,
) -> Decision {
    let text = match &why {
        Fallback::NoConsent { .. } => "popular now (no consent to personalization)",
        Fallback::UnknownPerson => "popular now (unknown person)",
        Fallback::ColdStart => "popular now (no history yet)",
        Fallback::PopularityPlacement => "popular now",
    };
    let items = popular(models, catalog, placement, history, n, &[])
        .into_iter()
        .map(|(i, s)| Recommended {
            item: catalog.id(i).to_string(),
            score: s,
            because: Vec::new(),
            explanation: text.into(),
        })
        .collect();
    Decision {
        placement: placement.name.clone(),
        model: "popularity",
        model_version: models.seq,
        personalized: false,
        fallback: Some(why),
        items,
    }
}
