//! Exact matching indexes that take additions and tombstones in place.
//!
//! [`PdqIndex`] answers "every live hash within Hamming distance `t`" with
//! no approximation. It is multi-index hashing (Norouzi et al.): the hash's
//! first `m * b` bits are cut into `m` substrings of `b` bits; if two
//! hashes differ in at most `t` bits, then by the pigeonhole principle at
//! least one substring differs in at most `r = ⌊t/m⌋` bits (were all `m` to
//! differ in more, the distance would be at least `m(r+1) > t`). So probing,
//! in each substring's table, the query's substring and every value within
//! `r` bits of it finds every match; each candidate's full distance is then
//! checked, and a match is reported from the first table it is within `r`
//! in (so once, with no set of seen ids). The substring length follows the
//! number of hashes (about `log2 n` bits, the paper's advice): 12 × 21 bits
//! (radius 2 at t = 31, 2,784 probes) for 2 M hashes, 11 × 23 for 10 M, so
//! a probed bucket holds about one hash and a random query checks a few
//! thousand candidates. When the probed buckets together hold more than a
//! fixed share of a segment (a query near a dense cluster of near-blank
//! images at a high threshold), a sequential scan is cheaper than chasing
//! candidates and that segment is scanned; [`PdqIndex::search_batch`]
//! answers all scanning queries of a batch in one pass.
//!
//! The tables are compressed (one offsets array and one id array per
//! substring) and so immutable: hashes go into *segments* over contiguous
//! id ranges. Additions collect in a short tail that every query scans;
//! when the tail is full it becomes a segment, and a segment at least half
//! the size of the one before it is merged with it (so there are about
//! `log2(n / TAIL)` segments, each id is re-indexed `O(log n)` times, and
//! nothing is ever rebuilt from scratch for one addition).
//! [`PdqIndex::from_hashes`] builds one segment.
//!
//! Removal is a tombstone: the entry stays in the tables and is skipped in
//! answers, so removing never reorganises anything. A long-lived index that
//! removes much can be rebuilt from its live entries at a quiet time.
//!
//! [`NameIndex`] is for URLs and domain names: exact keys, and keys that
//! cover everything under them (a domain with its subdomains), found by
//! walking a name's suffixes label by label.

use std::cell::RefCell;

use crate::pdq::PdqHash;
use crate::{Error, Result};

mod mih;
mod names;

use mih::Segment;
pub use names::{NameId, NameIndex};

/// Additions are scanned until this many are pending, then indexed.
const TAIL: usize = 2048;

/// Largest threshold accepted (half the bits: beyond that everything
/// "matches" its own complement's neighbours and the answer is meaningless).
pub const MAX_THRESHOLD: u32 = 128;

/// Position of an entry in a [`PdqIndex`].
pub type PdqId = u32;

/// Multi-index hashing in segments; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct PdqIndex {
    hashes: Vec<PdqHash>,
    live: Vec<bool>,
    live_count: usize,
    /// Over consecutive id ranges from 0, largest first; ids from the last
    /// one's end are the tail.
    segments: Vec<Segment>,
}

/// One answer: the entry and its distance from the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PdqHit {
    pub id: PdqId,
    pub distance: u32,
}

thread_local! {
    /// Scratch space for a probe's bucket bounds.
    static RANGES: RefCell<Vec<(u32, u32, u32)>> = const { RefCell::new(Vec::new()) };
}

impl PdqIndex {
    pub fn new() -> PdqIndex {
        PdqIndex::default()
    }

    /// Build from many hashes at once, as one segment. Ids are
    /// `0..hashes.len()`.
    pub fn from_hashes(hashes: Vec<PdqHash>) -> PdqIndex {
        let n = hashes.len();
        let mut idx = PdqIndex {
            live: vec![true; n],
            live_count: n,
            hashes,
            segments: Vec::new(),
        };
        if n >= TAIL {
            // ids are u32: four billion hashes is far beyond one process's memory
            let hi = PdqId::try_from(n).unwrap_or(PdqId::MAX);
            idx.segments.push(Segment::build(&idx.hashes, 0, hi));
        }
        idx
    }

    /// Add a hash; returns its id. Never reorganises existing entries
    /// beyond merging recent segments (see the module docs).
    pub fn add(&mut self, hash: PdqHash) -> PdqId {
        let id = PdqId::try_from(self.hashes.len()).unwrap_or(PdqId::MAX);
        self.hashes.push(hash);
        self.live.push(true);
        self.live_count += 1;
        let indexed = self.segments.last().map_or(0, |s| s.hi);
        if self.hashes.len() - indexed as usize >= TAIL {
            let hi = id + 1;
            self.segments
                .push(Segment::build(&self.hashes, indexed, hi));
            while let [.., prev, last] = self.segments.as_slice() {
                if last.len() * 2 < prev.len() {
                    break;
                }
                let merged = Segment::build(&self.hashes, prev.lo, last.hi);
                self.segments.pop();
                self.segments.pop();
                self.segments.push(merged);
            }
        }
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

    fn tail(&self) -> std::ops::Range<usize> {
        self.segments.last().map_or(0, |s| s.hi as usize)..self.hashes.len()
    }

    /// Every live entry within `threshold` bits of `query`, by id.
    pub fn search(&self, query: &PdqHash, threshold: u32) -> Result<Vec<PdqHit>> {
        Ok(self
            .search_batch(std::slice::from_ref(query), threshold)?
            .pop()
            .unwrap_or_default())
    }

    /// [`PdqIndex::search`] for many queries: the ones that would scan a
    /// segment share one pass over it.
    pub fn search_batch(&self, queries: &[PdqHash], threshold: u32) -> Result<Vec<Vec<PdqHit>>> {
        Self::check(threshold)?;
        let mut out = vec![Vec::new(); queries.len()];
        // (segment range, query) pairs to scan
        let mut scans: Vec<(std::ops::Range<usize>, usize)> = Vec::new();
        RANGES.with_borrow_mut(|ranges| {
            for (i, q) in queries.iter().enumerate() {
                let o = &mut out[i];
                for seg in &self.segments {
                    let probed = seg.probe(&self.hashes, q, threshold, ranges, |id, d| {
                        if self.live[id as usize] {
                            o.push(PdqHit { id, distance: d });
                        }
                    });
                    if !probed {
                        scans.push((seg.lo as usize..seg.hi as usize, i));
                    }
                }
                scans.push((self.tail(), i));
            }
        });
        // group the scans by range, then eight queries a pass
        scans.sort_by_key(|(r, i)| (r.start, *i));
        for group in scans.chunk_by(|a, b| a.0 == b.0) {
            let range = group[0].0.clone();
            for chunk in group.chunks(8) {
                let qs: Vec<PdqHash> = chunk.iter().map(|&(_, i)| queries[i]).collect();
                let mut res = vec![Vec::new(); qs.len()];
                self.scan(range.clone(), &qs, threshold, &mut res);
                for (&(_, i), r) in chunk.iter().zip(res) {
                    out[i].extend(r);
                }
            }
        }
        for o in &mut out {
            o.sort_unstable();
        }
        Ok(out)
    }

    /// Brute force over every live entry: the reference the index is
    /// tested against, and the fallback.
    pub fn brute_force(&self, query: &PdqHash, threshold: u32) -> Vec<PdqHit> {
        let mut out = vec![Vec::new()];
        self.scan(0..self.hashes.len(), &[*query], threshold, &mut out);
        out.pop().unwrap_or_default()
    }

    /// One pass over `range` for up to eight `queries` (so each hash loaded
    /// from memory serves several queries).
    fn scan(
        &self,
        range: std::ops::Range<usize>,
        queries: &[PdqHash],
        threshold: u32,
        out: &mut [Vec<PdqHit>],
    ) {
        for (qs, outs) in queries.chunks(8).zip(out.chunks_mut(8)) {
            let start = range.start;
            for (off, h) in self.hashes[range.clone()].iter().enumerate() {
                for (q, o) in qs.iter().zip(outs.iter_mut()) {
                    let d = h.distance(q);
                    let id = start + off;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_beyond_half_the_bits_are_refused() {
        let idx = PdqIndex::new();
        assert_eq!(
            idx.search(&PdqHash::default(), 129),
            Err(Error::Threshold(129))
        );
    }
}
