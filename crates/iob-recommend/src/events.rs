//! Which events are interactions, with which item and weight: a `track` event whose name has a
//! weight in `[recommend.weights]` (view, add to cart, purchase…), or the rating event when its
//! rating reaches the threshold. The item is `properties.<item_property>`, or each of
//! `properties.products[].<item_property>` for orders. The configured item properties
//! (`category`, `in_stock`) travel along, for rules.
//!
//! Pure: one event in, its interactions out. Never reads identifiers (it needs none).

use iob_engine::RecommendConfig;
use serde_json::Value;

/// One interaction read from an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub item: String,
    pub weight: f32,
    pub purchase: bool,
    /// Item properties seen on the event (`(name, value as text)`).
    pub props: Vec<(String, String)>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.len() <= 200 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The interactions in `event` (canonical event JSON).
pub fn touches(event: &Value, cfg: &RecommendConfig) -> Vec<Touch> {
    if event["type"].as_str() != Some("track") {
        return Vec::new();
    }
    let Some(name) = event["event"].as_str() else {
        return Vec::new();
    };
    let props = &event["properties"];
    let weight = if name == cfg.rating_event {
        match props[&cfg.rating_property].as_f64() {
            Some(r) if r >= cfg.rating_threshold => cfg.rating_weight,
            _ => return Vec::new(),
        }
    } else {
        match cfg.weights.get(name) {
            Some(&w) if w > 0.0 => w,
            _ => return Vec::new(),
        }
    };
    let purchase = cfg.purchase_events.iter().any(|p| p == name);
    let one = |obj: &Value| -> Option<Touch> {
        let item = text(&obj[&cfg.item_property])?;
        let props = cfg
            .item_properties
            .iter()
            .filter_map(|k| text(&obj[k]).map(|v| (k.clone(), v)))
            .collect();
        Some(Touch {
            item,
            weight,
            purchase,
            props,
        })
    };
    let mut out: Vec<Touch> = one(props).into_iter().collect();
    if let Some(products) = props["products"].as_array() {
        out.extend(products.iter().filter_map(one));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_orders_and_ratings() {
        let cfg = RecommendConfig::default();
        let v = json!({"type":"track","event":"Product Viewed","properties":{"item_id":"sku-1","category":"boots"}});
        let t = touches(&v, &cfg);
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].item.as_str(), t[0].weight, t[0].purchase),
            ("sku-1", 1.0, false)
        );
        assert_eq!(t[0].props, vec![("category".into(), "boots".into())]);
        let o = json!({"type":"track","event":"Order Completed","properties":{"products":[{"item_id":"a","in_stock":true},{"item_id":7}]}});
        let t = touches(&o, &cfg);
        assert_eq!(
            t.iter().map(|t| t.item.as_str()).collect::<Vec<_>>(),
            ["a", "7"]
        );
        assert!(t.iter().all(|t| t.purchase && t.weight == 5.0));
        assert_eq!(t[0].props, vec![("in_stock".into(), "true".into())]);
        let low =
            json!({"type":"track","event":"Product Rated","properties":{"item_id":"a","rating":3}});
        assert!(touches(&low, &cfg).is_empty());
        let high =
            json!({"type":"track","event":"Product Rated","properties":{"item_id":"a","rating":5}});
        assert_eq!(touches(&high, &cfg)[0].weight, 4.0);
        let other = json!({"type":"track","event":"Signed Up","properties":{"item_id":"a"}});
        assert!(touches(&other, &cfg).is_empty());
        let page = json!({"type":"page","properties":{"item_id":"a"}});
        assert!(touches(&page, &cfg).is_empty());
    }
}
