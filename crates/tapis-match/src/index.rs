//! Exact matching indexes that take additions and tombstones in place.
//!
//! [`PdqIndex`] answers "every live hash within Hamming distance `t`" with
//! no approximation. It is multi-index hashing (Norouzi et al.) over the
//! hash's sixteen 16-bit words: if two hashes differ in at most `t` bits,
//! then by the pigeonhole principle at least one of the sixteen words
//! differs in at most `⌊t/16⌋` bits (were all sixteen to differ in more,
//! the distance would be at least `16(⌊t/16⌋+1) > t`). So probing, in each
//! word's table, the query word and every value within `⌊t/16⌋` bits of it
//! (for the default t = 31: the word and its 16 one-bit neighbours, 17
//! probes a table, 272 in all) finds every match; each candidate's full
//! distance is then checked. When the probed buckets together hold more
//! than a fixed share of the index (clustered data, or a query near a dense
//! cluster), a sequential scan is cheaper than chasing candidates, and the
//! query falls back to brute force; [`PdqIndex::search_batch`] answers all
//! fallback queries of a batch in one pass over the hashes.
//!
//! Removal is a tombstone: the entry stays in the tables and is skipped in
//! answers, so removing never reorganises anything. A long-lived index that
//! removes much can be rebuilt from its live entries at a quiet time.
//!
//! [`NameIndex`] is for URLs and domain names: exact keys, and keys that
//! cover everything under them (a domain with its subdomains), found by
//! walking a name's suffixes label by label.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::pdq::PdqHash;
use crate::{Error, Result};

/// Above one bucketed candidate per this many indexed hashes, scan
/// instead. Following a candidate costs a bit test and, the first time, a
/// random memory access (roughly 3-4 times a scanned hash's cost), so the
/// break-even is near one candidate in three; the benchmark in
/// bench/match/ shows where a query falls.
const FALLBACK_SHARE: usize = 3;

/// Thresholds at or above `16 * (MAX_PROBE_RADIUS + 1)` are answered by a
/// scan: probing radius 3 would be 697 probes a table.
const MAX_PROBE_RADIUS: u32 = 2;

/// Largest threshold accepted (half the bits: beyond that everything
/// "matches" its own complement's neighbours and the answer is meaningless).
pub const MAX_THRESHOLD: u32 = 128;

/// Position of an entry in a [`PdqIndex`].
pub type PdqId = u32;

/// Multi-index hashing over 16 × 16-bit words; see the module docs.
#[derive(Debug, Clone)]
pub struct PdqIndex {
    hashes: Vec<PdqHash>,
    live: Vec<bool>,
    live_count: usize,
    /// `tables[s][w]`: ids whose word `s` is `w`.
    tables: Vec<Vec<Vec<PdqId>>>,
}

impl Default for PdqIndex {
    fn default() -> Self {
        PdqIndex::new()
    }
}

/// One answer: the entry and its distance from the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PdqHit {
    pub id: PdqId,
    pub distance: u32,
}

impl PdqIndex {
    pub fn new() -> PdqIndex {
        PdqIndex {
            hashes: Vec::new(),
            live: Vec::new(),
            live_count: 0,
            tables: (0..16).map(|_| vec![Vec::new(); 1 << 16]).collect(),
        }
    }

    /// Build from many hashes at once (bucket sizes are counted first, so
    /// each bucket is allocated once). Ids are `0..hashes.len()`.
    pub fn from_hashes(hashes: Vec<PdqHash>) -> PdqIndex {
        let mut idx = PdqIndex::new();
        for (s, table) in idx.tables.iter_mut().enumerate() {
            let mut counts = vec![0u32; 1 << 16];
            for h in &hashes {
                counts[usize::from(h.word16(s))] += 1;
            }
            for (bucket, &c) in table.iter_mut().zip(&counts) {
                bucket.reserve_exact(c as usize);
            }
        }
        for h in hashes {
            idx.add(h);
        }
        idx
    }

    /// Add a hash; returns its id. Never reorganises existing entries.
    pub fn add(&mut self, hash: PdqHash) -> PdqId {
        // ids are u32: four billion hashes is far beyond one process's memory
        let id = PdqId::try_from(self.hashes.len()).unwrap_or(PdqId::MAX);
        for (s, table) in self.tables.iter_mut().enumerate() {
            table[usize::from(hash.word16(s))].push(id);
        }
        self.hashes.push(hash);
        self.live.push(true);
        self.live_count += 1;
        id
    }

    /// Tombstone an entry; `false` if it was unknown or already removed.
    pub fn remove(&mut self, id: PdqId) -> bool {
        match self.live.get_mut(id as usize) {
            Some(l) if *l => {
                *l = false;
                self.live_count -= 1;
                true
            }
            _ => false,
        }
    }

    /// The hash stored under `id`.
    pub fn get(&self, id: PdqId) -> Option<PdqHash> {
        self.hashes.get(id as usize).copied()
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live_count
    }

    pub fn is_empty(&self) -> bool {
        self.live_count == 0
    }

    fn check(threshold: u32) -> Result<()> {
        if threshold > MAX_THRESHOLD {
            return Err(Error::Threshold(threshold));
        }
        Ok(())
    }

    /// Every live entry within `threshold` bits of `query`, by id.
    pub fn search(&self, query: &PdqHash, threshold: u32) -> Result<Vec<PdqHit>> {
        Self::check(threshold)?;
        Ok(match self.plan(query, threshold) {
            Some(probes) => self.probe(query, threshold, &probes),
            None => {
                let mut out = vec![Vec::new()];
                self.scan(&[*query], threshold, &mut out);
                out.pop().unwrap_or_default()
            }
        })
    }

    /// [`PdqIndex::search`] for many queries: the ones that would fall
    /// back to a scan share one pass over the hashes.
    pub fn search_batch(&self, queries: &[PdqHash], threshold: u32) -> Result<Vec<Vec<PdqHit>>> {
        Self::check(threshold)?;
        let mut out = vec![Vec::new(); queries.len()];
        let mut scan_idx = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            match self.plan(q, threshold) {
                Some(probes) => out[i] = self.probe(q, threshold, &probes),
                None => scan_idx.push(i),
            }
        }
        if !scan_idx.is_empty() {
            let qs: Vec<PdqHash> = scan_idx.iter().map(|&i| queries[i]).collect();
            let mut res = vec![Vec::new(); qs.len()];
            self.scan(&qs, threshold, &mut res);
            for (i, r) in scan_idx.into_iter().zip(res) {
                out[i] = r;
            }
        }
        Ok(out)
    }

    /// Brute force over every live entry: the reference the index is
    /// tested against, and the fallback.
    pub fn brute_force(&self, query: &PdqHash, threshold: u32) -> Vec<PdqHit> {
        let mut out = vec![Vec::new()];
        self.scan(&[*query], threshold, &mut out);
        out.pop().unwrap_or_default()
    }

    /// The probes per table for `query`, or `None` when scanning is
    /// cheaper (or the radius is too large to probe).
    fn plan(&self, query: &PdqHash, threshold: u32) -> Option<Vec<u16>> {
        let radius = threshold / 16;
        if radius > MAX_PROBE_RADIUS {
            return None;
        }
        let masks = neighbour_masks(radius);
        let mut candidates = 0usize;
        let budget = self.hashes.len() / FALLBACK_SHARE;
        for s in 0..16 {
            let w = query.word16(s);
            for &m in &masks {
                candidates += self.tables[s][usize::from(w ^ m)].len();
            }
            if candidates > budget && self.hashes.len() > 4096 {
                return None;
            }
        }
        Some(masks)
    }

    fn probe(&self, query: &PdqHash, threshold: u32, masks: &[u16]) -> Vec<PdqHit> {
        thread_local! {
            // one bit per id: a near hash is found through several words,
            // and is checked (and reported) once
            static SEEN: RefCell<(Vec<u64>, Vec<PdqId>)> = const { RefCell::new((Vec::new(), Vec::new())) };
        }
        SEEN.with_borrow_mut(|(seen, visited)| {
            let words = self.hashes.len().div_ceil(64);
            if seen.len() < words {
                seen.resize(words, 0);
            }
            let mut hits = Vec::new();
            for s in 0..16 {
                let w = query.word16(s);
                for &m in masks {
                    for &id in &self.tables[s][usize::from(w ^ m)] {
                        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
                        if seen[word] & bit != 0 {
                            continue;
                        }
                        seen[word] |= bit;
                        visited.push(id);
                        let d = self.hashes[id as usize].distance(query);
                        if d <= threshold && self.live[id as usize] {
                            hits.push(PdqHit { id, distance: d });
                        }
                    }
                }
            }
            for id in visited.drain(..) {
                seen[id as usize / 64] = 0;
            }
            hits.sort_unstable();
            hits
        })
    }

    /// One pass over the hashes for up to all `queries` (in groups of 8,
    /// so each hash loaded from memory serves several queries).
    fn scan(&self, queries: &[PdqHash], threshold: u32, out: &mut [Vec<PdqHit>]) {
        for (qs, outs) in queries.chunks(8).zip(out.chunks_mut(8)) {
            for (id, h) in self.hashes.iter().enumerate() {
                for (q, o) in qs.iter().zip(outs.iter_mut()) {
                    let d = h.distance(q);
                    if d <= threshold && self.live[id] {
                        o.push(PdqHit {
                            // ids fit: see `add`
                            id: id as PdqId,
                            distance: d,
                        });
                    }
                }
            }
        }
    }
}

/// Every 16-bit mask with at most `radius` bits set (0, then one-bit, …).
fn neighbour_masks(radius: u32) -> Vec<u16> {
    let mut masks = vec![0u16];
    if radius >= 1 {
        masks.extend((0..16).map(|b| 1u16 << b));
    }
    if radius >= 2 {
        for a in 0..16 {
            for b in a + 1..16 {
                masks.push((1u16 << a) | (1u16 << b));
            }
        }
    }
    masks
}

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
    fn masks_cover_each_radius_once() {
        assert_eq!(neighbour_masks(0).len(), 1);
        assert_eq!(neighbour_masks(1).len(), 17);
        assert_eq!(neighbour_masks(2).len(), 137);
    }

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

    #[test]
    fn thresholds_beyond_half_the_bits_are_refused() {
        let idx = PdqIndex::new();
        assert_eq!(
            idx.search(&PdqHash::default(), 129),
            Err(Error::Threshold(129))
        );
    }
}
