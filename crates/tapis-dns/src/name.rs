//! Walking domain names in wire form without building them: skipping a
//! name in a message (with or without compression), iterating labels and
//! parent suffixes, and printing a name with unusual bytes escaped. The
//! resolver's hot path (query parsing, trigger lookup) and the zone-file
//! reader and writer all walk names through these functions, so a label
//! length is checked the same way everywhere.

use crate::wire::{MAX_LABEL_LEN, Name, read_name};

/// Offset just after an uncompressed name starting at `p` (`None` if it
/// runs past the end or has a compression pointer or extended label).
pub fn skip_name(b: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let l = usize::from(*b.get(p)?);
        if l == 0 {
            return Some(p + 1);
        }
        if l > MAX_LABEL_LEN {
            return None;
        }
        p += 1 + l;
    }
}

/// Offset just after a possibly compressed name at `p` in a message (the
/// pointer is not followed).
pub fn skip_compressed(b: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let l = *b.get(p)?;
        match l & 0xC0 {
            0 if l == 0 => return Some(p + 1),
            0 => p += 1 + usize::from(l),
            0xC0 => {
                b.get(p + 1)?;
                return Some(p + 2);
            }
            _ => return None,
        }
    }
}

/// The labels of uncompressed wire `wire`, left to right, stopping at the
/// root label (or where the bytes run out).
pub fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut p = 0;
    std::iter::from_fn(move || {
        let l = usize::from(*wire.get(p)?);
        if l == 0 {
            return None;
        }
        let label = wire.get(p + 1..p + 1 + l)?;
        p += 1 + l;
        Some(label)
    })
}

/// The proper suffixes of uncompressed wire `wire`, longest first (the
/// parent, the grandparent, … the root): where wildcard triggers live.
pub fn parents(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut p = 0;
    std::iter::from_fn(move || {
        let l = *wire.get(p)?;
        if l == 0 {
            return None;
        }
        p += 1 + usize::from(l);
        wire.get(p..)
    })
}

/// A `Name` from exactly one uncompressed wire name (checked by the
/// message reader, so it obeys the same limits as a name in a message).
pub fn from_wire(wire: &[u8]) -> Option<Name> {
    read_name(wire, 0)
        .ok()
        .filter(|(_, end)| *end == wire.len())
        .map(|(n, _)| n)
}

/// A name in zone-file presentation form, absolute, every byte other than
/// letters, digits, `-`, `_` and `*` escaped as `\DDD`.
pub fn to_text(wire: &[u8]) -> String {
    let mut s = String::with_capacity(wire.len() + 1);
    for label in labels(wire) {
        for &b in label {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*' {
                s.push(char::from(b));
            } else {
                s.push_str(&format!("\\{b:03}"));
            }
        }
        s.push('.');
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_names() {
        let w = b"\x01a\x03b.c\x07example\x00";
        assert_eq!(skip_name(w, 0), Some(w.len()));
        assert_eq!(skip_name(b"\x01a", 0), None);
        assert_eq!(skip_name(b"\xc0\x0c", 0), None);
        assert_eq!(skip_compressed(b"\x01a\xc0\x0c", 0), Some(4));
        assert_eq!(
            labels(w).collect::<Vec<_>>(),
            [&b"a"[..], b"b.c", b"example"]
        );
        assert_eq!(
            parents(w).collect::<Vec<_>>(),
            [&b"\x03b.c\x07example\x00"[..], b"\x07example\x00", b"\x00"]
        );
        assert_eq!(to_text(w), "a.b\\046c.example.");
        assert_eq!(to_text(b"\x00"), ".");
        assert_eq!(from_wire(w).map(|n| n.wire().to_vec()), Some(w.to_vec()));
        assert!(from_wire(b"\x01a\x00\x00").is_none());
    }
}
