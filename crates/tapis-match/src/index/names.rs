//! [`NameIndex`]: URLs and domain names, exact keys and keys that cover
//! everything under them (a domain with its subdomains), found by walking a
//! name's suffixes label by label.

use std::collections::HashMap;

/// An id in a [`NameIndex`] (the caller's entry id).
pub type NameId = u32;

/// Ids stored under one key: the common single id inline, several in an
/// overflow list (high bit set: index into `overflow`).
const MANY: u32 = 1 << 31;

/// Exact keys and covering keys (a name and everything under it), each
/// mapping to the ids of the entries that hold them.
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    exact: HashMap<Box<str>, u32>,
    covering: HashMap<Box<str>, u32>,
    overflow: Vec<Vec<NameId>>,
}

impl NameIndex {
    pub fn new() -> NameIndex {
        NameIndex::default()
    }

    /// Index `key` for `id`; with `covering`, it also answers every name
    /// that ends in `.key`.
    pub fn add(&mut self, key: &str, covering: bool, id: NameId) {
        let map = if covering {
            &mut self.covering
        } else {
            &mut self.exact
        };
        match map.get_mut(key) {
            None => {
                map.insert(key.into(), id);
            }
            Some(v) if *v & MANY != 0 => {
                if let Some(list) = self.overflow.get_mut((*v & !MANY) as usize) {
                    list.push(id);
                }
            }
            Some(v) => {
                let slot = u32::try_from(self.overflow.len()).unwrap_or(MANY - 1) | MANY;
                self.overflow.push(vec![*v, id]);
                *v = slot;
            }
        }
    }

    /// Stop answering `id` under `key`; `false` if it was not there.
    pub fn remove(&mut self, key: &str, covering: bool, id: NameId) -> bool {
        let map = if covering {
            &mut self.covering
        } else {
            &mut self.exact
        };
        match map.get(key).copied() {
            Some(v) if v & MANY != 0 => {
                let Some(list) = self.overflow.get_mut((v & !MANY) as usize) else {
                    return false;
                };
                let before = list.len();
                list.retain(|&x| x != id);
                let removed = list.len() != before;
                if list.is_empty() {
                    map.remove(key);
                }
                removed
            }
            Some(v) if v == id => {
                map.remove(key);
                true
            }
            _ => false,
        }
    }

    fn ids<'a>(&'a self, v: Option<&'a u32>) -> &'a [NameId] {
        match v {
            None => &[],
            Some(v) if *v & MANY != 0 => self
                .overflow
                .get((*v & !MANY) as usize)
                .map_or(&[], Vec::as_slice),
            Some(v) => std::slice::from_ref(v),
        }
    }

    /// Ids of entries holding exactly `key`.
    pub fn exact(&self, key: &str) -> &[NameId] {
        self.ids(self.exact.get(key))
    }

    /// Ids of entries matching the domain `name`: an exact entry for
    /// `name`, and covering entries for `name` or any parent of it.
    pub fn domain(&self, name: &str, out: &mut Vec<NameId>) {
        out.extend_from_slice(self.exact(name));
        let mut cur = name;
        loop {
            out.extend_from_slice(self.ids(self.covering.get(cur)));
            match cur.split_once('.') {
                Some((_, parent)) => cur = parent,
                None => break,
            }
        }
    }

    /// Number of distinct keys held.
    pub fn len(&self) -> usize {
        self.exact.len() + self.covering.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_walk_their_suffixes() {
        let mut n = NameIndex::new();
        n.add("example.com", true, 1);
        n.add("exact.example.org", false, 2);
        n.add("exact.example.org", false, 3);
        let mut out = Vec::new();
        n.domain("a.b.example.com", &mut out);
        assert_eq!(out, [1]);
        out.clear();
        n.domain("example.com", &mut out);
        assert_eq!(out, [1]);
        out.clear();
        n.domain("notexample.com", &mut out);
        assert!(out.is_empty());
        n.domain("sub.exact.example.org", &mut out);
        assert!(out.is_empty());
        n.domain("exact.example.org", &mut out);
        assert_eq!(out, [2, 3]);
        assert!(n.remove("exact.example.org", false, 2));
        assert!(!n.remove("exact.example.org", false, 2));
        assert_eq!(n.exact("exact.example.org"), [3]);
        assert!(n.remove("example.com", true, 1));
        out.clear();
        n.domain("a.example.com", &mut out);
        assert!(out.is_empty());
    }

}
