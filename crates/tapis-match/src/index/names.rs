//! [`NameIndex`]: URLs and domain names, exact keys and keys that cover
//! everything under them (a domain with its subdomains), found by walking a
//! name's suffixes label by label.
//!
//! Built for tens of millions of names: one open-addressing table (linear
//! probing) kept as a byte array of tags (8 bits of the key's hash; 16 MiB
//! for 10 M names, so it stays in the larger caches) beside 32-byte slots
//! (the key's length, the exact and covering ids, and the key itself when
//! it is at most 20 bytes, as most domain names are; longer keys live in an
//! arena). A lookup that misses (most suffixes of most names) reads only
//! tags; a hit reads one slot. A name's suffixes are hashed and their tags
//! (and, on a tag match, slots) read before any is compared, so the
//! processor fetches them from memory together rather than one after the
//! other.

use std::hash::BuildHasher;

/// An id in a [`NameIndex`] (the caller's entry id).
pub type NameId = u32;

/// Ids stored under one key: the common single id inline, several in an
/// overflow list (high bit set: index into `overflow`).
const MANY: u32 = 1 << 31;

/// No id under this key (of this kind).
const NONE: u32 = u32::MAX;

/// The table is grown past this many keys per 8 slots.
const LOAD_EIGHTHS: usize = 5;

/// A name longer than this is never a domain (253 characters); its
/// suffixes beyond the first 32 are still walked, one at a time.
const SUFFIXES: usize = 32;

/// Keys up to this long are kept in their slot.
const INLINE: usize = 20;

/// One key: its length, its exact and covering ids, and its bytes (or, for
/// a key over [`INLINE`] bytes, its arena offset in the first four).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    len: u32,
    ids: [u32; 2],
    key: [u8; INLINE],
}

/// Exact keys and covering keys (a name and everything under it), each
/// mapping to the ids of the entries that hold them.
#[derive(Debug, Clone)]
pub struct NameIndex {
    /// 0: empty slot; else 8 bits of the key's hash (never 0).
    tags: Vec<u8>,
    slots: Vec<Slot>,
    /// Keys over [`INLINE`] bytes, one after the other.
    arena: Vec<u8>,
    overflow: Vec<Vec<NameId>>,
    /// Slots in use (keys ever added: a key whose ids are all removed keeps
    /// its slot, to be reused if added again).
    used: usize,
    /// (key, kind) pairs holding at least one id.
    held: usize,
    /// Per-index hash seed.
    seed: u64,
}

impl Default for NameIndex {
    fn default() -> Self {
        NameIndex {
            tags: Vec::new(),
            slots: Vec::new(),
            arena: Vec::new(),
            overflow: Vec::new(),
            used: 0,
            held: 0,
            seed: std::collections::hash_map::RandomState::new().hash_one(0x7a91u64),
        }
    }
}

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    // the high and low halves folded: truncation is the point
    (p as u64) ^ ((p >> 64) as u64)
}

/// A fast 64-bit hash of `key`, eight bytes a step (not meant to resist
/// chosen collisions beyond the per-index seed; keys come from banks).
#[inline]
fn hash(seed: u64, key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = fold_mul(h ^ u64::from_le_bytes(w), K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ u64::from_le_bytes(w), K);
    }
    fold_mul(h, 0x2d35_8dcc_aa6c_78a5)
}

impl NameIndex {
    pub fn new() -> NameIndex {
        NameIndex::default()
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The tag (never 0) and home slot of a hash.
    #[inline]
    fn place(&self, h: u64) -> (u8, usize) {
        // the top 8 bits are the tag, the low ones the slot: truncation is
        // the point
        (((h >> 56) as u8).max(1), (h as usize) & self.mask())
    }

    fn key_at<'a>(&'a self, slot: &'a Slot) -> &'a [u8] {
        let len = slot.len as usize;
        if len <= INLINE {
            &slot.key[..len]
        } else {
            let mut off = [0u8; 4];
            off.copy_from_slice(&slot.key[..4]);
            let off = u32::from_le_bytes(off) as usize * 4;
            &self.arena[off..off + len]
        }
    }

    /// The slot holding `key` whose home is `i` and tag `tag`, if any.
    #[inline]
    fn find_from(&self, key: &[u8], tag: u8, mut i: usize) -> Option<usize> {
        if self.tags.is_empty() {
            return None;
        }
        loop {
            let t = self.tags[i];
            if t == 0 {
                return None;
            }
            if t == tag && self.key_at(&self.slots[i]) == key {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let (tag, i) = self.place(hash(self.seed, key));
        self.find_from(key, tag, i)
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let old_tags = std::mem::replace(&mut self.tags, vec![0; cap]);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        for (t, s) in old_tags.into_iter().zip(old) {
            if t == 0 {
                continue;
            }
            let (tag, mut i) = self.place(hash(self.seed, self.key_at(&s)));
            while self.tags[i] != 0 {
                i = (i + 1) & self.mask();
            }
            self.tags[i] = tag;
            self.slots[i] = s;
        }
    }

    /// The slot for `key`, added if new.
    fn slot_for(&mut self, key: &[u8]) -> usize {
        if let Some(i) = self.find(key) {
            return i;
        }
        if (self.used + 1) * 8 > self.slots.len() * LOAD_EIGHTHS {
            self.grow();
        }
        let (tag, mut i) = self.place(hash(self.seed, key));
        while self.tags[i] != 0 {
            i = (i + 1) & self.mask();
        }
        let mut slot = Slot {
            len: u32::try_from(key.len()).unwrap_or(u32::MAX),
            ids: [NONE, NONE],
            key: [0; INLINE],
        };
        if key.len() <= INLINE {
            slot.key[..key.len()].copy_from_slice(key);
        } else {
            // the arena is addressed in 4-byte units: 16 GiB of keys
            let off = u32::try_from(self.arena.len() / 4).unwrap_or(u32::MAX);
            slot.key[..4].copy_from_slice(&off.to_le_bytes());
            self.arena.extend_from_slice(key);
            self.arena.resize(self.arena.len().next_multiple_of(4), 0);
        }
        self.tags[i] = tag;
        self.slots[i] = slot;
        self.used += 1;
        i
    }

    /// Index `key` for `id`; with `covering`, it also answers every name
    /// that ends in `.key`.
    pub fn add(&mut self, key: &str, covering: bool, id: NameId) {
        let i = self.slot_for(key.as_bytes());
        let v = &mut self.slots[i].ids[usize::from(covering)];
        if *v == NONE {
            *v = id;
            self.held += 1;
        } else if *v & MANY != 0 {
            if let Some(list) = self.overflow.get_mut((*v & !MANY) as usize) {
                list.push(id);
            }
        } else {
            let slot = u32::try_from(self.overflow.len()).unwrap_or(MANY - 1) | MANY;
            self.overflow.push(vec![*v, id]);
            *v = slot;
        }
    }

    /// Stop answering `id` under `key`; `false` if it was not there.
    pub fn remove(&mut self, key: &str, covering: bool, id: NameId) -> bool {
        let Some(i) = self.find(key.as_bytes()) else {
            return false;
        };
        let v = &mut self.slots[i].ids[usize::from(covering)];
        if *v == NONE {
            false
        } else if *v & MANY != 0 {
            let Some(list) = self.overflow.get_mut((*v & !MANY) as usize) else {
                return false;
            };
            let before = list.len();
            list.retain(|&x| x != id);
            let removed = list.len() != before;
            if list.is_empty() {
                *v = NONE;
                self.held -= 1;
            }
            removed
        } else if *v == id {
            *v = NONE;
            self.held -= 1;
            true
        } else {
            false
        }
    }

    /// The ids under one of a slot's values (a single id is the value
    /// itself).
    fn ids<'a>(&'a self, v: &'a u32) -> &'a [NameId] {
        if *v == NONE {
            &[]
        } else if *v & MANY != 0 {
            self.overflow
                .get((*v & !MANY) as usize)
                .map_or(&[], Vec::as_slice)
        } else {
            std::slice::from_ref(v)
        }
    }

    /// Ids of entries holding exactly `key`.
    pub fn exact(&self, key: &str) -> &[NameId] {
        match self.find(key.as_bytes()) {
            Some(i) => self.ids(&self.slots[i].ids[0]),
            None => &[],
        }
    }

    /// Ids of entries matching the domain `name`: an exact entry for
    /// `name`, and covering entries for `name` or any parent of it.
    pub fn domain(&self, name: &str, out: &mut Vec<NameId>) {
        if self.tags.is_empty() {
            return;
        }
        let bytes = name.as_bytes();
        // suffix starts: 0, then after each dot
        let mut starts = [0usize; SUFFIXES];
        let mut count = 1;
        for (i, &c) in bytes.iter().enumerate() {
            if c == b'.' && count < SUFFIXES {
                starts[count] = i + 1;
                count += 1;
            }
        }
        // hash every suffix and read its home tag (and on a match its
        // slot's length) first, independent reads, then compare
        let mut homes = [(0u8, 0usize, 0u8); SUFFIXES];
        let mut lens = 0u32;
        for (k, &st) in starts[..count].iter().enumerate() {
            let (tag, i) = self.place(hash(self.seed, &bytes[st..]));
            let t = self.tags[i];
            if t == tag {
                lens = lens.wrapping_add(self.slots[i].len);
            }
            homes[k] = (tag, i, t);
        }
        std::hint::black_box(lens);
        for (k, &st) in starts[..count].iter().enumerate() {
            let (tag, i, first) = homes[k];
            if first == 0 {
                continue;
            }
            let Some(i) = self.find_from(&bytes[st..], tag, i) else {
                continue;
            };
            let s = &self.slots[i];
            if k == 0 {
                out.extend_from_slice(self.ids(&s.ids[0]));
            }
            out.extend_from_slice(self.ids(&s.ids[1]));
        }
        if count == SUFFIXES {
            // a name of more than 32 labels: the rest one by one
            let mut cur = &name[starts[SUFFIXES - 1]..];
            while let Some((_, parent)) = cur.split_once('.') {
                if let Some(i) = self.find(parent.as_bytes()) {
                    out.extend_from_slice(self.ids(&self.slots[i].ids[1]));
                }
                cur = parent;
            }
        }
    }

    /// Number of distinct keys held (a key held both exactly and covering
    /// counts twice).
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
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

    /// The table against a plain model, through growth, shared keys and
    /// removals, on names of one to forty labels.
    #[test]
    fn answers_equal_a_plain_model() {
        use std::collections::HashMap;
        let mut idx = NameIndex::new();
        let mut model: HashMap<(String, bool), Vec<NameId>> = HashMap::new();
        let mut x: u64 = 15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let labels = ["a", "bb", "com", "co", "id", "x-y", "go", "ccc"];
        let name = |r: &mut dyn FnMut() -> u64| {
            let k = 1 + (r() % 5) as usize + if r().is_multiple_of(50) { 35 } else { 0 };
            (0..k)
                .map(|_| labels[(r() % labels.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(".")
        };
        let mut added = Vec::new();
        for id in 0..20_000u32 {
            let key = name(&mut next);
            let covering = next() % 3 == 0;
            idx.add(&key, covering, id);
            model.entry((key.clone(), covering)).or_default().push(id);
            added.push((key, covering, id));
        }
        for (key, covering, id) in added.iter().step_by(3) {
            assert!(idx.remove(key, *covering, *id));
            if let Some(v) = model.get_mut(&(key.clone(), *covering)) {
                v.retain(|x| x != id);
            }
        }
        model.retain(|_, v| !v.is_empty());
        assert_eq!(idx.len(), model.len());
        for _ in 0..5_000 {
            let q = name(&mut next);
            let mut got = Vec::new();
            idx.domain(&q, &mut got);
            let mut want: Vec<NameId> = model.get(&(q.clone(), false)).cloned().unwrap_or_default();
            let mut cur = q.as_str();
            loop {
                want.extend(model.get(&(cur.to_owned(), true)).into_iter().flatten());
                match cur.split_once('.') {
                    Some((_, p)) => cur = p,
                    None => break,
                }
            }
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{q}");
            let mut exact = idx.exact(&q).to_vec();
            exact.sort_unstable();
            let mut want = model.get(&(q.clone(), false)).cloned().unwrap_or_default();
            want.sort_unstable();
            assert_eq!(exact, want, "{q}");
        }
    }
}
