//! One immutable multi-index hashing segment over a contiguous range of
//! ids (see the [`super`] module docs for the layout and why it is exact).
//!
//! A segment splits the 256 bits into `m` substrings of `b` bits (the first
//! `m * b` bits; the rest are only checked in the full distance). Its
//! tables are compressed: for table `s`, `offsets[s]` has `2^b + 1` entries
//! and the ids whose substring `s` is `k` are
//! `ids[s][offsets[s][k]..offsets[s][k + 1]]`, in id order. A lookup is two
//! adjacent reads, and a bucket is read sequentially.

use std::cell::RefCell;

use crate::pdq::PdqHash;

use super::PdqId;

/// From this many bucketed candidates on (a query near a dense cluster,
/// whose members turn up in most tables), each id is checked once, marked
/// in a stamp array, rather than checked in every table it turns up in:
/// the stamps cost a random access per candidate, which only pays off when
/// most candidates repeat.
const DENSE: usize = 16 * 1024;

thread_local! {
    /// (generation, stamp per id): an id whose stamp is the current
    /// generation was already checked by this query.
    static STAMPS: RefCell<(u32, Vec<u32>)> = const { RefCell::new((0, Vec::new())) };
}

/// The threshold the layout is tuned for (Meta's default).
const DESIGN_THRESHOLD: u32 = 31;

/// Largest probing radius a segment keeps masks for; beyond it the segment
/// is scanned (radius 4 would be tens of thousands of probes a table).
pub(super) const MAX_RADIUS: u32 = 3;

/// Substrings are at most this long: the offsets of a table are `2^b`
/// 32-bit entries (32 MiB at 23 bits).
const MAX_BITS: u32 = 23;

#[derive(Debug, Clone)]
pub(super) struct Segment {
    /// Ids `lo..hi` are in this segment.
    pub lo: PdqId,
    pub hi: PdqId,
    /// Number of substrings.
    m: u32,
    /// Bits per substring.
    b: u32,
    /// `m` tables of `2^b + 1` offsets, one after the other.
    offsets: Vec<u32>,
    /// `m` tables of `hi - lo` ids, one after the other.
    ids: Vec<PdqId>,
    /// Every `b`-bit mask with at most [`MAX_RADIUS`] bits set, by number
    /// of bits (so the masks within radius `r` are a prefix).
    masks: Vec<u32>,
    /// `within[r]`: how many masks have at most `r` bits.
    within: [usize; MAX_RADIUS as usize + 1],
}

/// Substring `s` of `b` bits: bits `s*b .. s*b + b` of the hash.
#[inline]
pub(super) fn substring(h: &PdqHash, s: u32, b: u32) -> u32 {
    let start = s * b;
    let (w, off) = ((start / 64) as usize, start % 64);
    let mut v = h.0[w % 4] >> off;
    if off + b > 64 {
        v |= h.0[(w + 1) % 4] << (64 - off);
    }
    // truncation to the low b bits is the point
    (v & ((1u64 << b) - 1)) as u32
}

fn binomial(n: u64, k: u64) -> u64 {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// Probes and expected candidates for `m` substrings of `b` bits over `n`
/// random hashes at the design threshold: the layout with the fewest
/// (both are one random memory access each) is chosen.
fn cost(n: usize, m: u32, b: u32) -> f64 {
    let r = u64::from(DESIGN_THRESHOLD / m);
    let probes = f64::from(m) * (0..=r).map(|i| binomial(u64::from(b), i)).sum::<u64>() as f64;
    probes + probes * n as f64 / (1u64 << b) as f64
}

/// The substring length for `n` hashes: the cheapest layout whose offset
/// tables stay within about 16 entries a hash (so a small segment does not
/// carry megabytes of empty buckets).
pub(super) fn layout(n: usize) -> (u32, u32) {
    let mut best = (16, 16);
    let mut best_cost = f64::INFINITY;
    for b in 8..=MAX_BITS {
        let m = 256 / b;
        let r = DESIGN_THRESHOLD / m;
        if r > MAX_RADIUS {
            continue;
        }
        let table_entries = u64::from(m) << b;
        if table_entries > 16 * n as u64 + (1 << 16) {
            continue;
        }
        let c = cost(n, m, b);
        if c < best_cost {
            best_cost = c;
            best = (m, b);
        }
    }
    best
}

fn masks(b: u32) -> (Vec<u32>, [usize; MAX_RADIUS as usize + 1]) {
    let mut masks = vec![0u32];
    let mut within = [1usize; MAX_RADIUS as usize + 1];
    masks.extend((0..b).map(|i| 1u32 << i));
    within[1] = masks.len();
    for i in 0..b {
        for j in i + 1..b {
            masks.push((1 << i) | (1 << j));
        }
    }
    within[2] = masks.len();
    for i in 0..b {
        for j in i + 1..b {
            for k in j + 1..b {
                masks.push((1 << i) | (1 << j) | (1 << k));
            }
        }
    }
    within[3] = masks.len();
    (masks, within)
}

impl Segment {
    /// Index `hashes[lo..hi]` (ids `lo..hi`).
    pub fn build(hashes: &[PdqHash], lo: PdqId, hi: PdqId) -> Segment {
        let part = &hashes[lo as usize..hi as usize];
        let n = part.len();
        let (m, b) = layout(n);
        let stride = (1usize << b) + 1;
        let mut offsets = vec![0u32; m as usize * stride];
        let mut ids = vec![0 as PdqId; m as usize * n];
        let mut subs = vec![0u32; n];
        for s in 0..m {
            let offs = &mut offsets[s as usize * stride..][..stride];
            for (k, h) in subs.iter_mut().zip(part) {
                *k = substring(h, s, b);
                offs[*k as usize + 1] += 1;
            }
            for i in 1..stride {
                offs[i] += offs[i - 1];
            }
            // fill with a moving cursor per bucket (borrowing the next
            // bucket's start, restored by the shift below)
            let out = &mut ids[s as usize * n..][..n];
            for (i, &k) in subs.iter().enumerate() {
                let slot = &mut offs[k as usize];
                out[*slot as usize] = lo + i as PdqId;
                *slot += 1;
            }
            for i in (1..stride).rev() {
                offs[i] = offs[i - 1];
            }
            offs[0] = 0;
        }
        let (masks, within) = masks(b);
        Segment {
            lo,
            hi,
            m,
            b,
            offsets,
            ids,
            masks,
            within,
        }
    }

    pub fn len(&self) -> usize {
        (self.hi - self.lo) as usize
    }

    /// Every id in this segment within `threshold` of `query` (live or
    /// not: the caller filters tombstones), or `false` when probing would
    /// cost more than scanning the segment (`ranges` is scratch space).
    pub fn probe(
        &self,
        hashes: &[PdqHash],
        query: &PdqHash,
        threshold: u32,
        ranges: &mut Vec<(u32, u32, u32)>,
        mut found: impl FnMut(PdqId, u32),
    ) -> bool {
        let r = threshold / self.m;
        if r > MAX_RADIUS {
            return false;
        }
        let n = self.len();
        let masks = &self.masks[..self.within[r as usize]];
        let stride = (1usize << self.b) + 1;
        let mut subs = [0u32; 32];
        for s in 0..self.m {
            subs[s as usize] = substring(query, s, self.b);
        }
        // first every bucket's bounds (independent reads the processor
        // overlaps), with the total, to decide whether to scan instead
        ranges.clear();
        let mut total = masks.len() * self.m as usize;
        for s in 0..self.m {
            let offs = &self.offsets[s as usize * stride..][..stride];
            let q = subs[s as usize];
            for &mask in masks {
                let k = (q ^ mask) as usize;
                let (a, e) = (offs[k], offs[k + 1]);
                if e > a {
                    ranges.push((s, a, e));
                    total += (e - a) as usize;
                }
            }
        }
        // a probed candidate costs about three scanned hashes
        if total > n / 3 && n > 4096 {
            return false;
        }
        if total >= DENSE {
            self.probe_dense(hashes, query, threshold, ranges, found);
            return true;
        }
        for &(s, a, e) in ranges.iter() {
            let table = &self.ids[s as usize * n..][..n];
            for &id in &table[a as usize..e as usize] {
                let h = &hashes[id as usize];
                let d = h.distance(query);
                if d <= threshold && self.first_table(h, s, r, &subs) {
                    found(id, d);
                }
            }
        }
        true
    }

    /// The candidates in `ranges`, each checked once.
    fn probe_dense(
        &self,
        hashes: &[PdqHash],
        query: &PdqHash,
        threshold: u32,
        ranges: &[(u32, u32, u32)],
        mut found: impl FnMut(PdqId, u32),
    ) {
        let n = self.len();
        STAMPS.with_borrow_mut(|(generation, stamps)| {
            if stamps.len() < hashes.len() {
                stamps.resize(hashes.len(), 0);
            }
            *generation = generation.wrapping_add(1);
            if *generation == 0 {
                stamps.fill(0);
                *generation = 1;
            }
            let g = *generation;
            for &(s, a, e) in ranges {
                let table = &self.ids[s as usize * n..][..n];
                for &id in &table[a as usize..e as usize] {
                    let stamp = &mut stamps[id as usize];
                    if *stamp == g {
                        continue;
                    }
                    *stamp = g;
                    let d = hashes[id as usize].distance(query);
                    if d <= threshold {
                        found(id, d);
                    }
                }
            }
        });
    }

    /// Whether `s` is the first table in which `h` is within `r` of the
    /// query: a match is found through every such table and reported once.
    #[inline]
    fn first_table(&self, h: &PdqHash, s: u32, r: u32, subs: &[u32; 32]) -> bool {
        (0..s).all(|p| (substring(h, p, self.b) ^ subs[p as usize]).count_ones() > r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_cover_the_bits_in_order() {
        let mut h = PdqHash::default();
        for k in [0, 20, 21, 63, 64, 127, 200, 251, 252] {
            h = h.flip(k);
        }
        // 12 × 21 bits: bit 20 is the top of substring 0, 21 the bottom of 1,
        // 63 is bit 0 of substring 3 (63 = 3*21), 64 bit 1 of it
        assert_eq!(substring(&h, 0, 21), 1 | (1 << 20));
        assert_eq!(substring(&h, 1, 21), 1);
        assert_eq!(substring(&h, 3, 21), 0b11);
        assert_eq!(substring(&h, 6, 21), 1 << 1); // 126..147 holds 127
        assert_eq!(substring(&h, 9, 21), 1 << 11); // 189..210 holds 200
        assert_eq!(substring(&h, 11, 21), 1 << 20); // 231..252 holds 251, not 252
        assert_eq!(substring(&h, 0, 16), 1);
    }

    #[test]
    fn masks_count_each_radius() {
        let (m, within) = masks(21);
        assert_eq!(within, [1, 22, 232, 1562]);
        assert_eq!(m.len(), 1562);
        for r in 0..=3 {
            assert!(m[..within[r]].iter().all(|x| x.count_ones() as usize <= r));
            assert!(m[within[r]..].iter().all(|x| x.count_ones() as usize > r));
        }
    }

    /// Queries near a dense cluster take the stamped path and still answer
    /// exactly what brute force does, through a segment that starts past
    /// id 0 (ids are absolute).
    #[test]
    fn dense_cluster_queries_match_brute_force() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(31);
        let random =
            |rng: &mut StdRng| PdqHash([rng.random(), rng.random(), rng.random(), rng.random()]);
        let flip = |rng: &mut StdRng, h: PdqHash, k: u32| {
            let mut out = h;
            while out.distance(&h) < k {
                out = out.flip(rng.random_range(0..256));
            }
            out
        };
        let hot = random(&mut rng);
        let mut hashes: Vec<PdqHash> = (0..1000).map(|_| random(&mut rng)).collect();
        for _ in 0..5000 {
            let k = rng.random_range(0..=30);
            hashes.push(flip(&mut rng, hot, k));
        }
        while hashes.len() < 200_000 {
            hashes.push(random(&mut rng));
        }
        let seg = Segment::build(&hashes, 1000, 200_000);
        let mut ranges = Vec::new();
        for i in 0..6 {
            let q = flip(&mut rng, hot, i * 2);
            for t in [31, 24] {
                let mut got = Vec::new();
                let probed = seg.probe(&hashes, &q, t, &mut ranges, |id, d| got.push((id, d)));
                let total: u32 = ranges.iter().map(|&(_, a, e)| e - a).sum();
                assert!(probed, "{total} candidates: scanned");
                if t == 31 {
                    assert!(
                        total as usize >= DENSE,
                        "{total} candidates: not the dense path"
                    );
                }
                got.sort_unstable();
                let want: Vec<(PdqId, u32)> = (1000..200_000u32)
                    .map(|id| (id, hashes[id as usize].distance(&q)))
                    .filter(|&(_, d)| d <= t)
                    .collect();
                assert_eq!(got, want, "t={t}");
            }
        }
    }

    #[test]
    fn layouts_grow_with_the_segment() {
        assert_eq!(layout(2_000_000), (12, 21));
        let (m, b) = layout(10_000_000);
        assert!(b >= 22 && m * b <= 256, "{m} x {b}");
        let (m, b) = layout(2048);
        assert!(u64::from(m) << b <= 16 * 2048 + 65536, "{m} x {b}");
    }
}
