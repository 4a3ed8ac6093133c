//! The item catalog: item ids ↔ dense indices, and the latest value of each configured item
//! property (`category`, `in_stock`) seen on events, for rules and diversity. Items seen after
//! training get indices past the models' size: they are known to rules, not to models.
//! No I/O.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    ids: Vec<String>,
    index: HashMap<String, u32>,
    /// Per item, `(property, value)` pairs (few per item: a small vector beats a map).
    props: Vec<Vec<(String, String)>>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of `item`, adding it if new.
    pub fn intern(&mut self, item: &str) -> u32 {
        if let Some(&i) = self.index.get(item) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(item.to_string());
        self.index.insert(item.to_string(), i);
        self.props.push(Vec::new());
        i
    }

    pub fn get(&self, item: &str) -> Option<u32> {
        self.index.get(item).copied()
    }

    pub fn id(&self, i: u32) -> &str {
        self.ids.get(i as usize).map_or("", |s| s.as_str())
    }

    /// Sets item `i`'s property `name` to `value` (the latest event wins).
    pub fn set_prop(&mut self, i: u32, name: &str, value: &str) {
        let Some(p) = self.props.get_mut(i as usize) else {
            return;
        };
        match p.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => {
                if v != value {
                    *v = value.to_string();
                }
            }
            None => p.push((name.to_string(), value.to_string())),
        }
    }

    pub fn prop(&self, i: u32, name: &str) -> Option<&str> {
        self.props
            .get(i as usize)?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn props(&self, i: u32) -> &[(String, String)] {
        self.props.get(i as usize).map_or(&[], |p| p.as_slice())
    }

    pub fn memory_bytes(&self) -> usize {
        self.ids.iter().map(|s| 2 * s.len() + 64).sum::<usize>()
            + self
                .props
                .iter()
                .flatten()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_and_props() {
        let mut c = Catalog::default();
        assert_eq!(c.intern("a"), 0);
        assert_eq!(c.intern("b"), 1);
        assert_eq!(c.intern("a"), 0);
        c.set_prop(1, "category", "boots");
        c.set_prop(1, "category", "tents");
        assert_eq!(c.prop(1, "category"), Some("tents"));
        assert_eq!(c.prop(0, "category"), None);
        assert_eq!(c.id(1), "b");
        assert_eq!(c.get("zz"), None);
    }
}
