//! `[recommend]` and `[placements.NAME]`: how behavior becomes recommendation training data
//! (weights per event, rating threshold, time decay), which models are trained with which
//! parameters, and what each placement of the decide API serves (model, `n`, rules).
//! The models themselves live in `iob-recommend`; this module only types the configuration so a
//! typo in it is an error naming the key.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Which model answers a placement.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelChoice {
    /// EASE when the catalog has at most `recommend.ease.max_items` items, else ALS.
    #[default]
    Auto,
    Ease,
    Als,
    /// Item-kNN / co-occurrence: also for anonymous visitors and "similar items".
    Knn,
    /// Recency-weighted popularity only (never personalized).
    Popularity,
    /// EASE and ALS together: each one's scores standardized per person (over the items
    /// outside the person's history),
    /// then summed with ALS weighted by `recommend.blend_weight`. Needs both trained (else as
    /// `auto`).
    Blend,
}

impl ModelChoice {
    pub fn name(self) -> &'static str {
        match self {
            ModelChoice::Auto => "auto",
            ModelChoice::Ease => "ease",
            ModelChoice::Als => "als",
            ModelChoice::Knn => "knn",
            ModelChoice::Popularity => "popularity",
            ModelChoice::Blend => "ease+als",
        }
    }
}

/// `[recommend]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendConfig {
    /// The event property naming the item (`properties.item_id`; `properties.products[].item_id`
    /// for orders).
    pub item_property: String,
    /// Weight of each tracked event name (events not listed are not interactions).
    pub weights: BTreeMap<String, f32>,
    /// Ratings: an event whose `rating_property` is at least `rating_threshold` counts with
    /// `rating_weight`; below it, not at all.
    pub rating_event: String,
    pub rating_property: String,
    pub rating_threshold: f64,
    pub rating_weight: f32,
    /// Events that are purchases (for `exclude_purchased`).
    pub purchase_events: Vec<String>,
    /// Interaction weights halve every this many days (0: no decay).
    pub half_life_days: f64,
    /// Cap on one person's summed weight for one item.
    pub max_weight: f32,
    /// Item properties kept from events for include/exclude rules and diversity.
    pub item_properties: Vec<String>,
    /// Which model `auto` placements use and which are trained.
    pub ease: EaseConfig,
    pub als: AlsConfig,
    pub knn: KnnConfig,
    /// ALS's weight against EASE's in `blend` placements (both standardized first).
    pub blend_weight: f32,
    /// Train when the server starts and no model artifact exists yet.
    pub train_on_start: bool,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            item_property: "item_id".into(),
            weights: [
                ("Product Viewed", 1.0),
                ("Product Clicked", 1.0),
                ("Product Added", 3.0),
                ("Order Completed", 5.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            rating_event: "Product Rated".into(),
            rating_property: "rating".into(),
            rating_threshold: 4.0,
            rating_weight: 4.0,
            purchase_events: vec!["Order Completed".into()],
            half_life_days: 60.0,
            max_weight: 10.0,
            item_properties: vec!["category".into(), "in_stock".into()],
            ease: EaseConfig::default(),
            als: AlsConfig::default(),
            knn: KnnConfig::default(),
            blend_weight: 0.25,
            train_on_start: true,
        }
    }
}

/// `[recommend.ease]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EaseConfig {
    /// L2 regularization (500 was best on MovieLens 100K's validation split).
    pub lambda: f32,
    /// EASE is trained only up to this many items (its weights take 4·n² bytes).
    pub max_items: usize,
}

impl Default for EaseConfig {
    fn default() -> Self {
        EaseConfig {
            lambda: 500.0,
            max_items: 20_000,
        }
    }
}

/// `[recommend.als]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlsConfig {
    pub factors: usize,
    pub regularization: f32,
    /// Confidence per unit of interaction weight.
    pub alpha: f32,
    pub iterations: usize,
    /// Training threads.
    pub threads: usize,
}

impl Default for AlsConfig {
    fn default() -> Self {
        AlsConfig {
            factors: 64,
            regularization: 10.0,
            alpha: 1.0,
            iterations: 15,
            threads: 2,
        }
    }
}

/// `[recommend.knn]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KnnConfig {
    /// Neighbours kept per item.
    pub k: usize,
    /// Cosine shrinkage.
    pub shrink: f32,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            k: 50,
            shrink: 10.0,
        }
    }
}

/// `[placements.NAME]`: one place recommendations are shown.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlacementConfig {
    pub model: ModelChoice,
    /// Items returned when the call does not say.
    pub n: usize,
    /// The most a call may ask for.
    pub max_n: usize,
    /// Leave out items the person already bought.
    pub exclude_purchased: bool,
    /// Leave out every item the person interacted with (off: "view again" placements).
    pub exclude_seen: bool,
    /// Only items whose property has one of these values (`{ in_stock = ["true"] }`).
    pub include: BTreeMap<String, Vec<String>>,
    /// No item whose property has one of these values (`{ category = ["gift-cards"] }`).
    pub exclude: BTreeMap<String, Vec<String>>,
    /// Diversity re-ranking on this property (`category`): each earlier pick with the same
    /// value multiplies an item's score by `1 − diversity` (0: off).
    pub diversity_property: Option<String>,
    pub diversity: f32,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            model: ModelChoice::Auto,
            n: 10,
            max_n: 100,
            exclude_purchased: true,
            exclude_seen: true,
            include: BTreeMap::new(),
            exclude: BTreeMap::new(),
            diversity_property: None,
            diversity: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<RecommendConfig>("half_life = 3").unwrap_err();
        assert!(e.to_string().contains("half_life"), "{e}");
        let e = toml::from_str::<RecommendConfig>("[ease]\nlamda = 3").unwrap_err();
        assert!(e.to_string().contains("lamda"), "{e}");
        let e = toml::from_str::<PlacementConfig>("modle = \"ease\"").unwrap_err();
        assert!(e.to_string().contains("modle"), "{e}");
        assert!(toml::from_str::<PlacementConfig>("model = \"magic\"").is_err());
    }

    #[test]
    fn sections_parse_with_defaults() {
        let c: RecommendConfig = toml::from_str(
            "half_life_days = 7\n[weights]\n\"Product Viewed\" = 2\n[als]\nfactors = 32",
        )
        .unwrap();
        assert_eq!(c.half_life_days, 7.0);
        assert_eq!(c.weights["Product Viewed"], 2.0);
        assert_eq!(c.als.factors, 32);
        assert_eq!(c.als.iterations, 15);
        let p: PlacementConfig =
            toml::from_str("model = \"knn\"\nn = 4\n[include]\nin_stock = [\"true\"]").unwrap();
        assert_eq!(p.model, ModelChoice::Knn);
        assert_eq!(p.n, 4);
        assert!(p.exclude_purchased);
        assert_eq!(p.include["in_stock"], vec!["true".to_string()]);
    }
}
