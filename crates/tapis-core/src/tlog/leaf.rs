//! What one audit event looks like as a leaf of the transparency log.
//!
//! Event `seq` (1, 2, …) is leaf `seq - 1`. Its leaf data is
//!
//! ```text
//! "tapis-audit-leaf/v1" 0x00 || u64be(seq) || commitment
//! commitment = SHA-256("tapis-audit-commit/v1" 0x00 || salt || event_hash)
//! ```
//!
//! where `event_hash` is the event's 32-byte chain hash (which covers its
//! canonical JSON — time, actor, type, subject, before and after — and
//! every event before it) and `salt` is 32 random bytes drawn when the event
//! is appended and kept beside it in the database. The leaf hash is the
//! RFC 6962 `SHA-256(0x00 || leaf data)`.
//!
//! Why a salted commitment and not the event hash itself: many events are
//! guessable (an order about a domain from a public list, a setting turned
//! on), and an unsalted hash is checked against guesses at no cost. With the
//! salt, a published leaf hash says nothing about its event; whoever is shown
//! the event and its salt (a platform its receipt, an auditor everything) can
//! recompute the leaf and check it against a checkpoint.

use sha2::{Digest, Sha256};

use super::{Hash, leaf_hash};

/// The domain separator of the leaf data.
pub const LEAF_DOMAIN: &[u8] = b"tapis-audit-leaf/v1\0";
/// The domain separator of the commitment.
pub const COMMIT_DOMAIN: &[u8] = b"tapis-audit-commit/v1\0";

/// The commitment to an event under its salt.
pub fn commitment(salt: &[u8; 32], event_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(COMMIT_DOMAIN);
    h.update(salt);
    h.update(event_hash);
    h.finalize().into()
}

/// The leaf data of event `seq`.
pub fn leaf_data(seq: i64, salt: &[u8; 32], event_hash: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEAF_DOMAIN.len() + 8 + 32);
    out.extend_from_slice(LEAF_DOMAIN);
    out.extend_from_slice(&(seq as u64).to_be_bytes());
    out.extend_from_slice(&commitment(salt, event_hash));
    out
}

/// The leaf hash of event `seq` (leaf index `seq - 1`).
pub fn event_leaf_hash(seq: i64, salt: &[u8; 32], event_hash: &Hash) -> Hash {
    leaf_hash(&leaf_data(seq, salt, event_hash))
}

/// The leaf index of event `seq`.
pub fn index_of(seq: i64) -> u64 {
    (seq - 1).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_is_pinned() {
        // a fixed example, so the format cannot drift without this failing
        // (tools/tlog-verify.py computes the same value in its self-test)
        let salt = [7u8; 32];
        let event = [9u8; 32];
        let data = leaf_data(42, &salt, &event);
        assert_eq!(&data[..LEAF_DOMAIN.len()], LEAF_DOMAIN);
        assert_eq!(data.len(), 20 + 8 + 32);
        assert_eq!(
            hex::encode(event_leaf_hash(42, &salt, &event)),
            "b19e1da3b418be04ec568bba4c8527e827d148c9fdf10aba9890b869bd9e3468"
        );
        assert_eq!(event_leaf_hash(42, &salt, &event), leaf_hash(&data));
        // a different salt is a different leaf: the hash hides the event
        assert_ne!(
            event_leaf_hash(42, &[8u8; 32], &event),
            event_leaf_hash(42, &salt, &event)
        );
        assert_eq!(index_of(1), 0);
    }
}
