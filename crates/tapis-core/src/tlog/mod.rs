//! The transparency log's Merkle tree (RFC 6962 / RFC 9162 section 2.1):
//! leaf and node hashes, tree heads of any size, inclusion and consistency
//! proofs, and their verification. Pure: proofs are generated from a
//! [`HashSource`] (the hashes of complete, aligned subtrees, which the store
//! keeps as it appends), so the same code serves the database, the offline
//! `tapis log verify` and the tests.
//!
//! Proof generation is split in two so that the store can fetch everything a
//! proof needs in one query: [`inclusion_ranges`] and [`consistency_ranges`]
//! say which subtree ranges a proof is made of (RFC 9162's `PATH` and
//! `SUBPROOF`, as leaf ranges), [`nodes_for`] which stored nodes those ranges
//! are built from, and [`prove_inclusion`] / [`prove_consistency`] put the
//! hashes together.

pub mod leaf;
pub mod note;

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A complete, aligned subtree: the leaves
/// `[index << level, (index + 1) << level)`. Level 0 is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn leaf(index: u64) -> NodeId {
        NodeId { level: 0, index }
    }

    /// The nodes that become complete when leaf `index` is appended, lowest
    /// first, each with its two children: what an append stores (at most
    /// log2(size) of them; one on average).
    pub fn completed_by(index: u64) -> Vec<(NodeId, NodeId, NodeId)> {
        let mut out = Vec::new();
        let mut level = 0u8;
        let mut i = index;
        while i & 1 == 1 {
            let parent = NodeId {
                level: level + 1,
                index: i >> 1,
            };
            let left = NodeId {
                level,
                index: i - 1,
            };
            let right = NodeId { level, index: i };
            out.push((parent, left, right));
            level += 1;
            i >>= 1;
        }
        out
    }
}

/// Where the hashes of complete subtrees come from.
pub trait HashSource {
    /// The hash of a complete subtree, if the source has it.
    fn node(&self, id: NodeId) -> Option<Hash>;
}

impl HashSource for std::collections::HashMap<NodeId, Hash> {
    fn node(&self, id: NodeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

/// A range of leaves `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// Why a proof or head cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("{0}")]
    Invalid(String),
    #[error("the log has no hash for the subtree at level {level}, index {index}")]
    Missing { level: u8, index: u64 },
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ProofError> {
    Err(ProofError::Invalid(msg.into()))
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete aligned subtrees that make up `range`, left to right. For
/// the ranges Merkle trees are built from (a start aligned to the largest
/// power of two not above the length), folding their hashes from the right
/// gives the RFC's `MTH` of the range.
pub fn parts(range: Range) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let room = range.end - start;
        let mut level = if start == 0 {
            63
        } else {
            start.trailing_zeros().min(63)
        };
        while (1u64 << level) > room {
            level -= 1;
        }
        out.push(NodeId {
            level: level as u8,
            index: start >> level,
        });
        start += 1u64 << level;
    }
    out
}

/// The hash of a range (see [`parts`]); the empty range is the empty root.
pub fn range_hash(src: &impl HashSource, range: Range) -> Result<Hash, ProofError> {
    let ids = parts(range);
    let mut acc: Option<Hash> = None;
    for id in ids.iter().rev() {
        let h = src.node(*id).ok_or(ProofError::Missing {
            level: id.level,
            index: id.index,
        })?;
        acc = Some(match acc {
            None => h,
            Some(right) => node_hash(&h, &right),
        });
    }
    Ok(acc.unwrap_or_else(empty_root))
}

/// The root of the tree of the first `size` leaves.
pub fn root(src: &impl HashSource, size: u64) -> Result<Hash, ProofError> {
    range_hash(
        src,
        Range {
            start: 0,
            end: size,
        },
    )
}

/// The ranges an inclusion proof of leaf `index` in a tree of `size` is
/// made of, leaf to root (RFC 9162 2.1.3.1 `PATH`).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<Range>, ProofError> {
    if index >= size {
        return invalid(format!(
            "leaf_index {index} is not in a tree of size {size}: ask for a leaf below the tree size"
        ));
    }
    let mut out = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    // walk down from the root, then reverse to get leaf-to-root order
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            out.push(Range {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            out.push(Range {
                start,
                end: start + k,
            });
            start += k;
            m -= k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The ranges a consistency proof from `old` to `new` is made of (RFC 9162
/// 2.1.4.1 `SUBPROOF`). Empty when `old == new`.
pub fn consistency_ranges(old: u64, new: u64) -> Result<Vec<Range>, ProofError> {
    if old == 0 {
        return invalid(
            "a consistency proof from the empty tree is meaningless: from must be at least 1",
        );
    }
    if old > new {
        return invalid(format!(
            "from ({old}) is larger than to ({new}): a tree only grows"
        ));
    }
    let mut out = Vec::new();
    let (mut start, mut end, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(Range { start, end });
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push(Range {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            out.push(Range {
                start,
                end: start + k,
            });
            start += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Every stored node the given ranges are built from (to fetch in one go).
pub fn nodes_for(ranges: &[Range]) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = ranges.iter().flat_map(|r| parts(*r)).collect();
    ids.sort();
    ids.dedup();
    ids
}

fn hashes(src: &impl HashSource, ranges: &[Range]) -> Result<Vec<Hash>, ProofError> {
    ranges.iter().map(|r| range_hash(src, *r)).collect()
}

/// An inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn prove_inclusion(
    src: &impl HashSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    hashes(src, &inclusion_ranges(index, size)?)
}

/// A consistency proof from the tree of `old` leaves to that of `new`.
pub fn prove_consistency(
    src: &impl HashSource,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError> {
    hashes(src, &consistency_ranges(old, new)?)
}

/// Check that `leaf` is leaf `index` of the tree of `size` with `root`
/// (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return invalid(format!("leaf index {index} is not below tree size {size}"));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return invalid("the inclusion proof is longer than the tree is deep");
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return invalid("the inclusion proof is shorter than the tree is deep");
    }
    if r != *root {
        return invalid(
            "the inclusion proof leads to a different root: the leaf is not in this tree",
        );
    }
    Ok(())
}

/// Check that the tree of `new` leaves with `new_root` extends the tree of
/// `old` leaves with `old_root` (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old > new {
        return invalid(format!(
            "the old size {old} is larger than the new size {new}"
        ));
    }
    if old == 0 {
        return invalid("a consistency proof from the empty tree is meaningless");
    }
    if old == new {
        if !proof.is_empty() {
            return invalid("the sizes are equal but the proof is not empty");
        }
        if old_root != new_root {
            return invalid("two different roots for the same tree size: the log forked");
        }
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return invalid("the consistency proof is empty");
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return invalid("the consistency proof is longer than the tree is deep");
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return invalid("the consistency proof is shorter than the tree is deep");
    }
    if fr != *old_root {
        return invalid(
            "the consistency proof does not lead to the old root: the past was rewritten",
        );
    }
    if sr != *new_root {
        return invalid("the consistency proof does not lead to the new root");
    }
    Ok(())
}

/// A whole tree in memory, every complete subtree's hash kept: for
/// recomputing the log offline (`tapis log verify`) and for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a leaf by its hash.
    pub fn push(&mut self, leaf: Hash) {
        let index = self.size();
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        for (parent, left, right) in NodeId::completed_by(index) {
            let l = self.levels[left.level as usize][left.index as usize];
            let r = self.levels[right.level as usize][right.index as usize];
            let lvl = parent.level as usize;
            if self.levels.len() <= lvl {
                self.levels.push(Vec::new());
            }
            self.levels[lvl].push(node_hash(&l, &r));
        }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn root(&self) -> Hash {
        root(self, self.size()).expect("a memory tree has every complete subtree")
    }
}

impl HashSource for MemoryTree {
    fn node(&self, id: NodeId) -> Option<Hash> {
        self.levels
            .get(id.level as usize)?
            .get(id.index as usize)
            .copied()
    }
}

/// Decode a base64 SHA-256 hash.
pub fn hash_from_b64(field: &str, b64: &str) -> crate::Result<Hash> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| Hash::try_from(b).ok())
        .ok_or_else(|| crate::Error::invalid(field, "not a base64 SHA-256 hash (44 characters)"))
}

/// Encode a hash as base64.
pub fn hash_to_b64(h: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

#[cfg(test)]
mod tests;
