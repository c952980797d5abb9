//! The compact trigger table of one policy zone: every trigger name lives
//! once in a chunked byte arena, found through an open-addressing hash table
//! of `u32` arena offsets.
//!
//! An entry is `[key length][key: lowercase wire name][actions][exact ref:
//! u32][wildcard ref: u32]`, where the key is the trigger with the zone's
//! origin replaced by the root (so `judi.example.rpz.tapis.` and
//! `*.judi.example.rpz.tapis.` share the key `judi.example.`). The actions
//! byte holds the exact action in its low nibble and the wildcard action in
//! its high nibble. That is 10 bytes per entry plus 4–11 bytes of hash slot
//! (load factor between 3/8 and 3/4), against the name's own bytes.
//!
//! The arena grows by fixed chunks, so growing never copies what is there
//! (a reload or an IXFR does not briefly need two arenas). Removed entries
//! leave garbage behind, counted; a full reload builds a fresh table.

/// Arena chunk size: big enough to amortise, small enough to waste little.
const CHUNK: usize = 1 << 20;
/// Entry bytes after the key.
const TRAILER: usize = 9;

#[derive(Default)]
pub(crate) struct Table {
    chunks: Vec<Vec<u8>>,
    /// 0 = empty, else arena offset + 1.
    slots: Vec<u32>,
    len: usize,
    garbage: usize,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct EntryData {
    pub exact: u8,
    pub wild: u8,
    pub exact_ref: u32,
    pub wild_ref: u32,
}

impl EntryData {
    pub fn is_empty(&self) -> bool {
        self.exact == 0 && self.wild == 0 && self.exact_ref == 0 && self.wild_ref == 0
    }
}

/// A fast, non-cryptographic hash of a key (the zone comes from a trusted
/// primary, and queries cannot insert).
#[inline]
pub(crate) fn hash(key: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

impl Table {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held (arena capacity plus slots), for metrics and benchmarks.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum::<usize>() + self.slots.capacity() * 4
    }

    pub fn garbage(&self) -> usize {
        self.garbage
    }

    fn key_at(&self, off: u32) -> &[u8] {
        let (c, p) = split(off);
        let chunk = &self.chunks[c];
        let l = usize::from(chunk[p]);
        &chunk[p + 1..p + 1 + l]
    }

    fn data_at(&self, off: u32) -> EntryData {
        let (c, p) = split(off);
        let chunk = &self.chunks[c];
        let l = usize::from(chunk[p]);
        let t = &chunk[p + 1 + l..p + 1 + l + TRAILER];
        EntryData {
            exact: t[0] & 0xF,
            wild: t[0] >> 4,
            exact_ref: u32::from_le_bytes([t[1], t[2], t[3], t[4]]),
            wild_ref: u32::from_le_bytes([t[5], t[6], t[7], t[8]]),
        }
    }

    fn set_data(&mut self, off: u32, d: EntryData) {
        let (c, p) = split(off);
        let chunk = &mut self.chunks[c];
        let l = usize::from(chunk[p]);
        let t = &mut chunk[p + 1 + l..p + 1 + l + TRAILER];
        t[0] = (d.exact & 0xF) | (d.wild << 4);
        t[1..5].copy_from_slice(&d.exact_ref.to_le_bytes());
        t[5..9].copy_from_slice(&d.wild_ref.to_le_bytes());
    }

    /// The slot index holding `key`, if present.
    #[inline]
    fn find_slot(&self, key: &[u8]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = (hash(key) as usize) & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if self.key_at(s - 1) == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The entry for `key` (lowercase wire name): its offset and data.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<(u32, EntryData)> {
        let i = self.find_slot(key)?;
        let off = self.slots[i] - 1;
        Some((off, self.data_at(off)))
    }

    /// Changes the entry for `key` with `f`, creating it if needed and
    /// removing it when it ends up empty. Returns the entry's offset while
    /// it exists (so side data can be keyed by it), and whether it was
    /// removed.
    pub fn update(
        &mut self,
        key: &[u8],
        f: impl FnOnce(&mut EntryData),
    ) -> Result<(u32, bool), crate::Error> {
        if let Some(i) = self.find_slot(key) {
            let off = self.slots[i] - 1;
            let mut d = self.data_at(off);
            f(&mut d);
            if d.is_empty() {
                self.remove_slot(i);
                return Ok((off, true));
            }
            self.set_data(off, d);
            return Ok((off, false));
        }
        let mut d = EntryData::default();
        f(&mut d);
        if d.is_empty() {
            return Ok((0, true));
        }
        let off = self.push(key)?;
        self.set_data(off, d);
        self.grow_if_needed();
        let mask = self.slots.len() - 1;
        let mut i = (hash(key) as usize) & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = off + 1;
        self.len += 1;
        Ok((off, false))
    }

    fn push(&mut self, key: &[u8]) -> Result<u32, crate::Error> {
        let need = 1 + key.len() + TRAILER;
        let room = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= need);
        if !room {
            if self.chunks.len() >= (u32::MAX as usize) / CHUNK {
                return Err(crate::Error::Policy(
                    "policy zone too large for one table (4 GiB of names)".into(),
                ));
            }
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let c = self.chunks.len() - 1;
        let chunk = &mut self.chunks[c];
        let p = chunk.len();
        chunk.push(key.len() as u8);
        chunk.extend_from_slice(key);
        chunk.extend_from_slice(&[0; TRAILER]);
        Ok((c * CHUNK + p) as u32)
    }

    fn grow_if_needed(&mut self) {
        if (self.len + 1) * 4 <= self.slots.len() * 3 {
            return;
        }
        let new_len = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![0; new_len]);
        let mask = new_len - 1;
        for s in old.into_iter().filter(|&s| s != 0) {
            let mut i = (hash(self.key_at(s - 1)) as usize) & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// Linear-probing deletion by backward shift (no tombstones).
    fn remove_slot(&mut self, mut i: usize) {
        let off = self.slots[i] - 1;
        self.garbage += 1 + self.key_at(off).len() + TRAILER;
        self.slots[i] = 0;
        self.len -= 1;
        let mask = self.slots.len() - 1;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == 0 {
                return;
            }
            let k = (hash(self.key_at(s - 1)) as usize) & mask;
            // Leave the entry where it is if its home k lies cyclically in (i, j].
            let stays = if i <= j {
                i < k && k <= j
            } else {
                i < k || k <= j
            };
            if !stays {
                self.slots[i] = s;
                self.slots[j] = 0;
                i = j;
            }
        }
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The slot holding `key` (stable until the table next changes).
    pub fn slot_of(&self, key: &[u8]) -> Option<usize> {
        self.find_slot(key)
    }

    /// Every live entry with its slot index.
    pub fn slots_iter(&self) -> impl Iterator<Item = (usize, &[u8], EntryData)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != 0)
            .map(move |(i, &s)| (i, self.key_at(s - 1), self.data_at(s - 1)))
    }

    /// Every live entry: key and data.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8], EntryData)> + '_ {
        self.slots
            .iter()
            .filter(|&&s| s != 0)
            .map(move |&s| (s - 1, self.key_at(s - 1), self.data_at(s - 1)))
    }
}

fn split(off: u32) -> (usize, usize) {
    let off = off as usize;
    (off / CHUNK, off % CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_map_under_inserts_and_removals() {
        let mut t = Table::default();
        let mut model: HashMap<Vec<u8>, u8> = HashMap::new();
        let mut x: u64 = 12345;
        for step in 0..20_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = format!("\x05n{:04}\x00", (x >> 33) % 3000).into_bytes();
            let v = ((x >> 20) % 4) as u8; // 0 removes
            t.update(&k, |d| d.exact = v).expect("update");
            if v == 0 {
                model.remove(&k);
            } else {
                model.insert(k, v);
            }
            if step % 997 == 0 {
                assert_eq!(t.len(), model.len());
                for (k, v) in &model {
                    assert_eq!(t.get(k).map(|(_, d)| d.exact), Some(*v));
                }
            }
        }
        assert_eq!(t.iter().count(), model.len());
        for (_, k, d) in t.iter() {
            assert_eq!(model.get(k), Some(&d.exact));
        }
    }
}
