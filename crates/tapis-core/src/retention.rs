//! Retention: how long each kind of record holding personal data is kept
//! after it stops being live, what is removed then and what stays, and the
//! tombstone that keeps the transparency log verifiable when an audit
//! event's payload is erased. The store carries it out (the scheduler runs
//! it in bounded batches); this module decides.
//!
//! An audit event whose payload is erased keeps its sequence number, time,
//! actor, action, subject, link hashes and salt: its chain hash and its
//! leaf stay what they were, so every checkpoint and proof still holds. The
//! erasure is on the record: the same transaction appends a
//! `retention.erased` event (the tombstone, itself a leaf) naming every
//! erased event with its chain hash, and each erased event points at it. A
//! verifier accepts an erased event's stored hash only when a tombstone
//! after it names that event with that hash; an erased payload without one
//! is tampering.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Error, EventType, Result, Timestamp};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The longest retention a setting may give, in days (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// The most records one retention transaction erases or deletes: bounds
/// the transaction, its tombstone and the time the chain lock is held.
pub const BATCH: usize = 200;

/// A kind of record that retention erases or deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A report from the public: its sealed contact, its reasons and
    /// evidence text, and the payload of its `flag.submitted` event.
    PublicFlag,
    /// An appeal by a member of the public or a content owner: its reason
    /// and evidence text, and the payload of its `appeal.received` event.
    PersonalAppeal,
    /// A web sign-in session that ended or went idle: the row is deleted.
    WebSession,
    /// A one-time sign-in or password-reset code: the row is deleted.
    AccountLink,
    /// An invitation never accepted: the row is deleted.
    Invitation,
}

/// How one kind is described to the public (README, the policy route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KindDoc {
    /// When the record stops being live: the clock starts there.
    pub live_until: &'static str,
    pub removed: &'static str,
    pub stays: &'static str,
    /// Why the default is what it is.
    pub why: &'static str,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::PublicFlag,
        RecordKind::PersonalAppeal,
        RecordKind::WebSession,
        RecordKind::AccountLink,
        RecordKind::Invitation,
    ];

    /// The name in settings (`[retention] <name>_days`) and in tombstones.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::PublicFlag => "public_flag",
            RecordKind::PersonalAppeal => "personal_appeal",
            RecordKind::WebSession => "web_session",
            RecordKind::AccountLink => "account_link",
            RecordKind::Invitation => "invitation",
        }
    }

    pub fn parse(s: &str) -> Result<RecordKind> {
        RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "retention",
                    format!(
                        "unknown record kind {:?} (known: {})",
                        crate::taxonomy::truncate(s, 48),
                        RecordKind::ALL.map(RecordKind::as_str).join(", ")
                    ),
                )
            })
    }

    /// The default: long enough for what the record is still needed for,
    /// no longer.
    pub fn default_keep(self) -> Keep {
        Keep::Days(match self {
            RecordKind::PublicFlag => 180,
            RecordKind::PersonalAppeal => 365,
            RecordKind::WebSession => 30,
            RecordKind::AccountLink => 7,
            RecordKind::Invitation => 30,
        })
    }

    /// The audit events that carry this kind's personal data (their
    /// payloads are erased with the record).
    pub fn erased_events(self) -> &'static [EventType] {
        match self {
            RecordKind::PublicFlag => &[EventType::FlagSubmitted],
            RecordKind::PersonalAppeal => &[EventType::AppealReceived],
            RecordKind::WebSession | RecordKind::AccountLink | RecordKind::Invitation => &[],
        }
    }

    pub fn doc(self) -> KindDoc {
        match self {
            RecordKind::PublicFlag => KindDoc {
                live_until: "the flag is decided (accepted, merged or rejected)",
                removed: "the reporter's sealed contact, the reasons and evidence text, and the payload of the flag.submitted audit event",
                stays: "the reference, category, state, reported targets, dates, and the audit event's hash and leaf",
                why: "six months lets the reporter read the outcome and a complaint about the decision be handled; the notice made from it carries the substance",
            },
            RecordKind::PersonalAppeal => KindDoc {
                live_until: "the appeal is decided",
                removed: "the appellant's reason and evidence text, and the payload of the appeal.received audit event",
                stays: "the reference, subject, state, outcome and the reviewer's reasons, dates, and the audit event's hash and leaf",
                why: "a year covers the time to take the outcome to the authoriser or a court",
            },
            RecordKind::WebSession => KindDoc {
                live_until: "the session ends or was last used",
                removed: "the session row (account, role, times)",
                stays: "the sign-in and sign-out audit events",
                why: "a month is enough to investigate a suspicious sign-in",
            },
            RecordKind::AccountLink => KindDoc {
                live_until: "the code expires",
                removed: "the code's hash and its times",
                stays: "the account.link_issued audit event",
                why: "a used or expired code has no further use",
            },
            RecordKind::Invitation => KindDoc {
                live_until: "the invitation expires unaccepted",
                removed: "the invitation row (its code's hash, party, role)",
                stays: "the invitation.created audit event; accepted invitations are kept (they name the token they made)",
                why: "an unaccepted invitation has no use once expired",
            },
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records retention never removes, and why (shown with the policy).
pub const NEVER_DELETED: &[(&str, &str)] = &[
    (
        "orders, their targets, authorisations and decisions",
        "the public register's floor lists every order",
    ),
    (
        "notices, their items and the platforms' decisions, receipts",
        "what was asked and answered is the record either side relies on",
    ),
    (
        "audit events' hashes, salts and leaves; checkpoints and cosignatures",
        "the transparency log must stay verifiable; only payloads named in a tombstone are erased",
    ),
    (
        "retention tombstones and the retention policy's audit events",
        "they are what makes an erasure lawful rather than tampering",
    ),
];

/// How long a kind is kept after it stops being live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Whole days, 1 to [`MAX_DAYS`].
    Days(u32),
    /// Never removed by retention.
    Forever,
}

impl Keep {
    /// `n` days, checked; `key` names the setting in the error.
    pub fn days(key: &str, n: i64) -> Result<Keep> {
        if n == 0 {
            return Err(Error::invalid(
                key,
                "0 would remove records the moment they stop being live; give 1 or more days, or \"forever\"",
            ));
        }
        if n < 0 || n > i64::from(MAX_DAYS) {
            return Err(Error::invalid(
                key,
                format!("{n} is not between 1 and {MAX_DAYS} days (or \"forever\")"),
            ));
        }
        Ok(Keep::Days(n as u32))
    }

    pub fn to_json(self) -> Value {
        match self {
            Keep::Days(d) => json!(d),
            Keep::Forever => json!("forever"),
        }
    }
}

/// The retention policy in force: one rule per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    rules: BTreeMap<RecordKind, Keep>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            rules: RecordKind::ALL
                .into_iter()
                .map(|k| (k, k.default_keep()))
                .collect(),
        }
    }
}

impl RetentionPolicy {
    /// The defaults with `overrides` (by kind name) applied; an unknown
    /// kind is refused.
    pub fn new(overrides: &BTreeMap<String, Keep>) -> Result<RetentionPolicy> {
        let mut p = RetentionPolicy::default();
        for (name, keep) in overrides {
            if let Keep::Days(d) = keep {
                Keep::days(name, i64::from(*d))?;
            }
            p.rules.insert(RecordKind::parse(name)?, *keep);
        }
        Ok(p)
    }

    pub fn keep(&self, kind: RecordKind) -> Keep {
        self.rules
            .get(&kind)
            .copied()
            .unwrap_or_else(|| kind.default_keep())
    }

    /// Records of `kind` that stopped being live strictly before this time
    /// are due at `now`; `None` when the kind is kept forever.
    pub fn cutoff(&self, kind: RecordKind, now: Timestamp) -> Option<Timestamp> {
        match self.keep(kind) {
            Keep::Forever => None,
            Keep::Days(d) => Some(now.plus_millis(-(i64::from(d) * DAY_MS))),
        }
    }

    /// Whether a record of `kind` that stopped being live at `ended` is
    /// due for removal at `now`.
    pub fn is_due(&self, kind: RecordKind, ended: Timestamp, now: Timestamp) -> bool {
        self.cutoff(kind, now).is_some_and(|c| ended < c)
    }

    /// The policy as published and hashed: every kind with its rule and
    /// description, and what is never deleted.
    pub fn to_json(&self) -> Value {
        let kinds: Vec<Value> = RecordKind::ALL
            .into_iter()
            .map(|k| {
                let d = k.doc();
                json!({
                    "kind": k.as_str(), "keep_days": self.keep(k).to_json(),
                    "live_until": d.live_until, "removed": d.removed, "stays": d.stays,
                    "why": d.why,
                    "erased_events": k.erased_events().iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let never: Vec<Value> = NEVER_DELETED
            .iter()
            .map(|(what, why)| json!({"records": what, "why": why}))
            .collect();
        json!({"version": 1, "kinds": kinds, "never_deleted": never})
    }

    /// SHA-256 (hex) of the canonical JSON of [`Self::to_json`]: what the
    /// `retention.policy_logged` event and every tombstone name.
    pub fn sha256(&self) -> String {
        let bytes = crate::canonical::to_vec(&self.to_json()).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// One erased audit event, as a tombstone names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedLeaf {
    pub seq: i64,
    /// Its leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// Its chain hash (hex), which the log keeps.
    pub event_hash: String,
}

/// What one retention transaction removed, as its `retention.erased`
/// event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub rule: RecordKind,
    /// The rule's retention in days when it ran.
    pub keep_days: u32,
    /// The policy's hash ([`RetentionPolicy::sha256`]).
    pub policy_sha256: String,
    /// Records that stopped being live before this were due.
    pub cutoff: String,
    /// How many records were erased or deleted.
    pub count: u64,
    /// Their ids, for kinds whose ids name nothing secret (sessions and
    /// sign-in codes are counted, not listed).
    pub records: Vec<String>,
    /// The audit events whose payloads were erased.
    pub leaves: Vec<ErasedLeaf>,
}

impl Tombstone {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The tombstone an event records, if it is one.
    pub fn from_event(action: &str, after: &Value) -> Option<Tombstone> {
        if action != EventType::RetentionErased.as_str() {
            return None;
        }
        serde_json::from_value(after.clone()).ok()
    }

    /// Whether it names event `seq` with chain hash `hash`.
    pub fn names(&self, seq: i64, hash: &str) -> bool {
        self.leaves
            .iter()
            .any(|l| l.seq == seq && l.event_hash.eq_ignore_ascii_case(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000 + n * DAY_MS)
    }

    #[test]
    fn due_strictly_after_the_retention() {
        let p = RetentionPolicy::default();
        let now = day(400);
        assert!(p.is_due(RecordKind::PersonalAppeal, day(34), now));
        assert!(!p.is_due(RecordKind::PersonalAppeal, day(35), now));
        assert!(p.is_due(RecordKind::PublicFlag, day(219), now));
        assert!(!p.is_due(RecordKind::PublicFlag, day(220), now));
    }

    #[test]
    fn forever_is_never_due_and_changes_the_hash() {
        let mut o = BTreeMap::new();
        o.insert("public_flag".to_owned(), Keep::Forever);
        let p = RetentionPolicy::new(&o).expect("valid");
        assert!(!p.is_due(RecordKind::PublicFlag, day(0), day(100_000)));
        assert_ne!(p.sha256(), RetentionPolicy::default().sha256());
        assert_eq!(p.to_json()["kinds"][0]["keep_days"], "forever");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = Keep::days("retention.public_flag_days", 0).expect_err("zero");
        assert!(e.to_string().contains("retention.public_flag_days"), "{e}");
        let e = Keep::days("retention.web_session_days", 36_501).expect_err("too long");
        assert!(e.to_string().contains("36500"), "{e}");
        let mut o = BTreeMap::new();
        o.insert("orders".to_owned(), Keep::Days(3));
        let e = RetentionPolicy::new(&o).expect_err("unknown");
        assert!(e.to_string().contains("\"orders\""), "{e}");
    }

    #[test]
    fn a_tombstone_round_trips_and_names_exactly_its_leaves() {
        let t = Tombstone {
            rule: RecordKind::PublicFlag,
            keep_days: 180,
            policy_sha256: RetentionPolicy::default().sha256(),
            cutoff: day(0).to_string(),
            count: 1,
            records: vec!["f1".into()],
            leaves: vec![ErasedLeaf {
                seq: 7,
                leaf_index: 6,
                event_hash: "ab".repeat(32),
            }],
        };
        let back = Tombstone::from_event("retention.erased", &t.to_json()).expect("parses");
        assert_eq!(back, t);
        assert!(back.names(7, &"AB".repeat(32)));
        assert!(!back.names(8, &"ab".repeat(32)));
        assert!(!back.names(7, &"cd".repeat(32)));
        assert!(Tombstone::from_event("flag.submitted", &t.to_json()).is_none());
    }
}
