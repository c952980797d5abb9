//! The audit chain's rules: what an event is, which bytes are hashed, and how
//! a chain is verified. Storage appends and reads; this module decides.
//!
//! `hash = SHA-256(prev_hash || canonical_json(event))`, where the event
//! object holds its sequence number, time, actor, action, subject and the
//! before/after of the change. The first event's `prev_hash` is 32 zero bytes.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Result, Timestamp};

/// The `prev_hash` of the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// `token` for an API credential, `system` for tapis itself (scheduler,
    /// bootstrap), `cli` for a local operator command.
    pub kind: &'static str,
    pub party_id: Option<String>,
    pub token_id: Option<String>,
    pub label: String,
    pub role: Option<String>,
    /// The person behind the token (normalised), absent for machine
    /// credentials and for tapis itself.
    pub person: Option<String>,
}

impl Actor {
    pub fn system(label: &str) -> Self {
        Actor {
            kind: "system",
            party_id: None,
            token_id: None,
            label: label.to_owned(),
            role: None,
            person: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": self.kind,
            "party_id": self.party_id,
            "token_id": self.token_id,
            "label": self.label,
            "role": self.role,
        });
        // only when there is one, so events written before people were
        // recorded keep the same shape
        if let Some(p) = &self.person {
            v["person"] = json!(p);
        }
        v
    }
}

/// An event as it is hashed. `actor`, `before` and `after` are JSON values;
/// they are stored as canonical text so the hash can be recomputed exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBody {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: Value,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub before: Value,
    pub after: Value,
}

impl EventBody {
    pub fn canonical(&self) -> Result<Vec<u8>> {
        crate::canonical::to_vec(&json!({
            "seq": self.seq,
            "at": self.at.to_string(),
            "actor": self.actor,
            "action": self.action,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "before": self.before,
            "after": self.after,
        }))
    }

    /// The hash that links this event after `prev`.
    pub fn chain_hash(&self, prev: &[u8; 32]) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(self.canonical()?);
        Ok(h.finalize().into())
    }
}

/// A point of the chain: an event's sequence number and hash. tapis puts
/// the head at the time into every signed receipt and decision, so anyone
/// who kept one can later check that the chain still holds that event with
/// that hash: a deleted tail or a rehashed past no longer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl Anchor {
    /// The anchor of an empty chain.
    pub fn genesis() -> Anchor {
        Anchor {
            seq: 0,
            hash: hex::encode(GENESIS),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"seq": self.seq, "hash": self.hash})
    }

    /// The anchor a signed payload carries in its `chain` field.
    pub fn from_payload(payload: &Value) -> Result<Anchor> {
        let chain = payload.get("chain").ok_or_else(|| {
            crate::Error::invalid(
                "chain",
                "the document carries no chain head (issued before receipts were anchored)",
            )
        })?;
        let seq = chain
            .get("seq")
            .and_then(Value::as_i64)
            .filter(|s| *s >= 0)
            .ok_or_else(|| crate::Error::invalid("chain.seq", "not a sequence number"))?;
        let hash = chain
            .get("hash")
            .and_then(Value::as_str)
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| crate::Error::invalid("chain.hash", "not a SHA-256 in hex"))?;
        Ok(Anchor {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }

    /// Whether the chain, as `stored` (the hash it holds at this anchor's
    /// sequence, if it still has that event), still contains this point.
    /// The chain's own links are checked by `Verifier`; given an intact
    /// chain, one matching hash vouches for every event before it.
    pub fn check(&self, stored: Option<&str>) -> std::result::Result<(), String> {
        if self.seq == 0 {
            return if self.hash == hex::encode(GENESIS) {
                Ok(())
            } else {
                Err("sequence 0 is the genesis and has no other hash".into())
            };
        }
        match stored {
            None => Err(format!(
                "the chain no longer has event {}: events were deleted",
                self.seq
            )),
            Some(h) if h.eq_ignore_ascii_case(&self.hash) => Ok(()),
            Some(h) => Err(format!(
                "event {} has hash {h} but the signed document anchors {}: the log was rewritten",
                self.seq, self.hash
            )),
        }
    }
}

/// One stored event with its link fields, as read back for verification.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub body: EventBody,
    pub prev_hash: String,
    pub hash: String,
}

/// Where a chain first stops being what it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub reason: String,
}

/// Verifies events in sequence order, one at a time, so a chain of any
/// length is checked in constant memory.
#[derive(Debug)]
pub struct Verifier {
    prev: [u8; 32],
    next_seq: i64,
    count: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            prev: GENESIS,
            next_seq: 1,
            count: 0,
        }
    }
}

impl Verifier {
    /// Check the next event; the first error is the first broken link.
    pub fn push(&mut self, ev: &StoredEvent) -> std::result::Result<(), Break> {
        let seq = ev.body.seq;
        let fail = |reason: String| Err(Break { seq, reason });
        if seq != self.next_seq {
            return fail(format!(
                "expected event {} but found {seq}: events are missing or were inserted",
                self.next_seq
            ));
        }
        if ev.prev_hash != hex::encode(self.prev) {
            return fail(format!(
                "prev_hash {} does not match the hash of event {} ({})",
                ev.prev_hash,
                seq - 1,
                hex::encode(self.prev)
            ));
        }
        let computed = match ev.body.chain_hash(&self.prev) {
            Ok(h) => h,
            Err(e) => return fail(format!("event cannot be canonicalised: {e}")),
        };
        if ev.hash != hex::encode(computed) {
            return fail(format!(
                "stored hash {} does not match the recomputed hash {}: the event was altered",
                ev.hash,
                hex::encode(computed)
            ));
        }
        self.prev = computed;
        self.next_seq += 1;
        self.count += 1;
        Ok(())
    }

    /// Check the next event when its payload was erased by retention: its
    /// hash cannot be recomputed, so it is taken as stored only when
    /// `tombstone` (the `retention.erased` event it points at, later in the
    /// chain, whose own content the walk checks when it gets there) names
    /// it with that hash. Otherwise it is tampering.
    pub fn push_erased(
        &mut self,
        seq: i64,
        prev_hash: &str,
        hash: &str,
        erased_by: i64,
        tombstone: Option<&crate::retention::Tombstone>,
    ) -> std::result::Result<(), Break> {
        let fail = |reason: String| Err(Break { seq, reason });
        if seq != self.next_seq {
            return fail(format!(
                "expected event {} but found {seq}: events are missing or were inserted",
                self.next_seq
            ));
        }
        if prev_hash != hex::encode(self.prev) {
            return fail(format!(
                "prev_hash {prev_hash} does not match the hash of event {} ({})",
                seq - 1,
                hex::encode(self.prev)
            ));
        }
        let named = erased_by > seq && tombstone.is_some_and(|t| t.names(seq, hash));
        if !named {
            return fail(format!(
                "the payload was erased but event {erased_by} is no retention tombstone naming this event with hash {hash}: tampering, not retention"
            ));
        }
        let Some(stored) = hex::decode(hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            return fail(format!("stored hash {hash} is not a SHA-256"));
        };
        self.prev = stored;
        self.next_seq += 1;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash of the last verified event (the chain head).
    pub fn head(&self) -> String {
        hex::encode(self.prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEvent> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let body = EventBody {
                    seq,
                    at: Timestamp::from_unix_millis(seq * 1000),
                    actor: Actor::system("test").to_json(),
                    action: "notice.created".into(),
                    subject_type: "notice".into(),
                    subject_id: format!("n{seq}"),
                    before: Value::Null,
                    after: json!({"state": "submitted"}),
                };
                let hash = body.chain_hash(&prev).expect("hashable");
                let ev = StoredEvent {
                    body,
                    prev_hash: hex::encode(prev),
                    hash: hex::encode(hash),
                };
                prev = hash;
                ev
            })
            .collect()
    }

    fn verify(events: &[StoredEvent]) -> std::result::Result<u64, Break> {
        let mut v = Verifier::default();
        for e in events {
            v.push(e)?;
        }
        Ok(v.count())
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn edited_event_is_caught_at_its_seq() {
        let mut c = chain(5);
        c[2].body.after = json!({"state": "closed"});
        assert_eq!(verify(&c).map_err(|b| b.seq), Err(3));
    }

    #[test]
    fn deleted_event_is_caught() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c).map_err(|b| b.seq), Err(3));
    }

    #[test]
    fn rehashed_event_breaks_the_next_link() {
        let mut c = chain(5);
        c[2].body.after = json!({"state": "closed"});
        let prev: [u8; 32] = hex::decode(&c[2].prev_hash)
            .expect("hex")
            .try_into()
            .expect("32");
        c[2].hash = hex::encode(c[2].body.chain_hash(&prev).expect("ok"));
        assert_eq!(verify(&c).map_err(|b| b.seq), Err(4));
    }

    #[test]
    fn anchors_catch_a_deleted_tail_and_a_rehashed_past() {
        let c = chain(5);
        let a =
            Anchor::from_payload(&json!({"chain": {"seq": 4, "hash": c[3].hash}})).expect("anchor");
        assert_eq!(a.check(Some(&c[3].hash)), Ok(()));
        assert!(a.check(None).expect_err("deleted").contains("deleted"));
        assert!(
            a.check(Some(&c[2].hash))
                .expect_err("rewritten")
                .contains("rewritten")
        );
        assert_eq!(Anchor::genesis().check(None), Ok(()));
        assert!(Anchor::from_payload(&json!({})).is_err());
        assert!(Anchor::from_payload(&json!({"chain": {"seq": 1, "hash": "zz"}})).is_err());
    }
    #[test]
    fn an_erased_event_passes_only_when_a_tombstone_names_it() {
        use crate::retention::{ErasedLeaf, RecordKind, Tombstone};
        let c = chain(5);
        let tomb = |seq: i64, hash: &str| Tombstone {
            rule: RecordKind::PublicFlag,
            keep_days: 180,
            policy_sha256: String::new(),
            cutoff: String::new(),
            count: 1,
            records: vec![],
            leaves: vec![ErasedLeaf {
                seq,
                leaf_index: (seq - 1) as u64,
                event_hash: hash.to_owned(),
            }],
        };
        let walk = |t: Option<&Tombstone>, erased_by: i64| {
            let mut v = Verifier::default();
            for e in &c {
                if e.body.seq == 2 {
                    v.push_erased(2, &e.prev_hash, &e.hash, erased_by, t)?;
                } else {
                    v.push(e)?;
                }
            }
            Ok::<u64, Break>(v.count())
        };
        assert_eq!(walk(Some(&tomb(2, &c[1].hash)), 5), Ok(5));
        for (t, by) in [
            (None, 5),
            (Some(tomb(3, &c[1].hash)), 5),
            (Some(tomb(2, &c[2].hash)), 5),
            (Some(tomb(2, &c[1].hash)), 2),
        ] {
            let b = walk(t.as_ref(), by).expect_err("not on the record");
            assert_eq!(b.seq, 2);
            assert!(b.reason.contains("tampering"), "{}", b.reason);
        }
    }
}
