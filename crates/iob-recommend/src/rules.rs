//! Business rules applied to candidates: leave out what the person bought (or everything they
//! saw), keep only items whose property has an allowed value (`in_stock = ["true"]`), drop items
//! with an excluded value (`category = ["gift-cards"]`), and diversity re-ranking (each earlier
//! pick sharing the item's property value multiplies its score by `1 − diversity`).
//! Pure functions over the catalog; no I/O.

use std::collections::BTreeMap;

use iob_engine::PlacementConfig;

use crate::catalog::Catalog;

/// The rules of one placement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub exclude_purchased: bool,
    pub exclude_seen: bool,
    pub include: BTreeMap<String, Vec<String>>,
    pub exclude: BTreeMap<String, Vec<String>>,
    pub diversity_property: Option<String>,
    pub diversity: f32,
}

impl From<&PlacementConfig> for Rules {
    fn from(p: &PlacementConfig) -> Rules {
        Rules {
            exclude_purchased: p.exclude_purchased,
            exclude_seen: p.exclude_seen,
            include: p.include.clone(),
            exclude: p.exclude.clone(),
            diversity_property: p.diversity_property.clone(),
            diversity: p.diversity.clamp(0.0, 1.0),
        }
    }
}

impl Rules {
    /// Whether the item's properties pass the include and exclude rules.
    pub fn passes(&self, catalog: &Catalog, item: u32) -> bool {
        let included = self.include.iter().all(|(prop, values)| {
            catalog
                .prop(item, prop)
                .is_some_and(|v| values.iter().any(|w| w == v))
        });
        included
            && !self.exclude.iter().any(|(prop, values)| {
                catalog
                    .prop(item, prop)
                    .is_some_and(|v| values.iter().any(|w| w == v))
            })
    }

    /// Greedy diversity re-ranking of `candidates` (best first) down to `n`.
    pub fn diversify(
        &self,
        catalog: &Catalog,
        candidates: &[(u32, f32)],
        n: usize,
    ) -> Vec<(u32, f32)> {
        let Some(prop) = self
            .diversity_property
            .as_deref()
            .filter(|_| self.diversity > 0.0)
        else {
            return candidates.iter().take(n).copied().collect();
        };
        let keep = 1.0 - self.diversity;
        let mut left: Vec<(u32, f32)> = candidates.to_vec();
        let mut used: Vec<(&str, i32)> = Vec::new();
        let mut out = Vec::with_capacity(n);
        while out.len() < n && !left.is_empty() {
            let adjusted = |&(i, s): &(u32, f32)| {
                let seen = catalog
                    .prop(i, prop)
                    .and_then(|v| used.iter().find(|(u, _)| *u == v))
                    .map_or(0, |(_, c)| *c);
                // Scores may be negative: penalize by moving toward −∞ rather than toward 0.
                if s >= 0.0 {
                    s * keep.powi(seen)
                } else {
                    s / keep.max(1e-6).powi(seen)
                }
            };
            let (best, _) = left
                .iter()
                .enumerate()
                .map(|(k, c)| (k, adjusted(c)))
                .fold((0, f32::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
            let pick = left.remove(best);
            if let Some(v) = catalog.prop(pick.0, prop) {
                match used.iter_mut().find(|(u, _)| *u == v) {
                    Some((_, c)) => *c += 1,
                    None => used.push((v, 1)),
                }
            }
            out.push(pick);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        for (id, cat, stock) in [
            ("a", "boots", "true"),
            ("b", "boots", "true"),
            ("c", "tents", "false"),
            ("d", "tents", "true"),
        ] {
            let i = c.intern(id);
            c.set_prop(i, "category", cat);
            c.set_prop(i, "in_stock", stock);
        }
        c
    }

    #[test]
    fn include_and_exclude_by_property() {
        let c = catalog();
        let mut r = Rules::default();
        r.include.insert("in_stock".into(), vec!["true".into()]);
        assert_eq!(
            (0..4).filter(|&i| r.passes(&c, i)).collect::<Vec<_>>(),
            [0, 1, 3]
        );
        r.exclude.insert("category".into(), vec!["boots".into()]);
        assert_eq!((0..4).filter(|&i| r.passes(&c, i)).collect::<Vec<_>>(), [3]);
        // An item without the included property is left out.
        let mut c2 = c.clone();
        c2.intern("e");
        assert!(!r.passes(&c2, 4));
    }

    #[test]
    fn diversity_interleaves_categories() {
        let c = catalog();
        let cands = [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)];
        let plain = Rules::default().diversify(&c, &cands, 3);
        assert_eq!(plain.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
        let r = Rules {
            diversity_property: Some("category".into()),
            diversity: 0.5,
            ..Rules::default()
        };
        // After boots `a`, `b` is worth 0.45 < tents `c` 0.8; then `b` 0.45 vs `d` 0.35.
        let div = r.diversify(&c, &cands, 3);
        assert_eq!(div.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 2, 1]);
    }
}
