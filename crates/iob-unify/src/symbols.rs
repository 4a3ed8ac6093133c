//! Interned strings (event names, channels, metrics, item and category ids, trait keys), so a
//! profile holds 4-byte symbols instead of its own copies of the same few strings.
//!
//! Symbols are never removed: the table grows with the catalogue, not with traffic. It must
//! never hold an identifier of a person (identifiers live only as pseudonyms in the graph).

use crate::hash::FastMap;

/// An interned string.
pub type Sym = u32;

#[derive(Debug, Clone, Default)]
pub struct Symbols {
    ids: FastMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
}

impl Symbols {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = Sym::try_from(self.names.len()).expect("fewer than 2^32 symbols");
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// Every symbol's string, by symbol (for a snapshot).
    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// The table holding `names` as symbols `0..`; `None` if a name repeats.
    pub fn from_names(names: Vec<Box<str>>) -> Option<Self> {
        let mut t = Symbols::default();
        for (i, n) in names.iter().enumerate() {
            if t.ids.insert(n.clone(), i as Sym).is_some() {
                return None;
            }
        }
        t.names = names;
        Some(t)
    }

    pub fn get(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    pub fn name(&self, id: Sym) -> &str {
        &self.names[id as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.names.iter().map(|n| 2 * n.len() + 48).sum()
    }
}
