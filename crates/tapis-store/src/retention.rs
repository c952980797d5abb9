//! Carrying out the retention policy (`tapis_core::retention`): finding
//! the records that are due, and erasing or deleting them in bounded
//! batches, each batch in one write transaction that also appends its
//! `retention.erased` tombstone and points every erased audit event at it.
//! The policy itself is logged (`retention.policy_logged`) when it changes.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::Row;
use tapis_core::audit::Actor;
use tapis_core::retention::{BATCH, ErasedLeaf, Keep, RecordKind, RetentionPolicy, Tombstone};
use tapis_core::{EventType, Timestamp, tlog};

use crate::audit::Event;
use crate::{Result, Store};

const POLICY_SUBJECT: (&str, &str) = ("setting", "retention.policy");

/// What one run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionRun {
    /// Records erased or deleted, by kind.
    pub records: BTreeMap<RecordKind, u64>,
    /// Audit events whose payloads were erased.
    pub events_erased: u64,
    /// Tombstones appended (one per batch).
    pub tombstones: u64,
    /// Whether the run stopped at its batch limit with more due.
    pub more: bool,
}

/// Where a kind lives: the rows that are due and how they are removed.
struct Table {
    /// Selects the key of due rows: `$1` the cutoff (ms), `$2` the limit.
    due: &'static str,
    /// The removal, `{ids}` the key list; `$1` is now (ms) where used.
    remove: &'static str,
    /// The audit subject type of the kind's events (erasure kinds).
    subject_type: &'static str,
    /// Whether tombstones list the keys (not for secrets' hashes).
    list_ids: bool,
}

fn table(kind: RecordKind) -> Table {
    match kind {
        RecordKind::PublicFlag => Table {
            due: "SELECT id AS k FROM flags WHERE source_kind = 'public' AND erased_at IS NULL \
                  AND decided_at IS NOT NULL AND decided_at < $1 ORDER BY decided_at, id LIMIT $2",
            remove: "UPDATE flags SET contact = NULL, reasons = '', evidence = '[]', erased_at = $1 \
                     WHERE id IN ({ids})",
            subject_type: "flag",
            list_ids: true,
        },
        RecordKind::PersonalAppeal => Table {
            due: "SELECT id AS k FROM appeals WHERE appellant_kind IN ('public', 'content_owner') \
                  AND erased_at IS NULL AND decided_at IS NOT NULL AND decided_at < $1 \
                  ORDER BY decided_at, id LIMIT $2",
            remove: "UPDATE appeals SET reason = '', evidence = '[]', erased_at = $1 WHERE id IN ({ids})",
            subject_type: "appeal",
            list_ids: true,
        },
        RecordKind::WebSession => Table {
            due: "SELECT id_hash AS k FROM web_sessions WHERE COALESCE(ended_at, last_seen_at) < $1 \
                  ORDER BY id_hash LIMIT $2",
            remove: "DELETE FROM web_sessions WHERE id_hash IN ({ids})",
            subject_type: "",
            list_ids: false,
        },
        RecordKind::AccountLink => Table {
            due: "SELECT code_hash AS k FROM account_links WHERE expires_at < $1 ORDER BY code_hash LIMIT $2",
            remove: "DELETE FROM account_links WHERE code_hash IN ({ids})",
            subject_type: "",
            list_ids: false,
        },
        RecordKind::Invitation => Table {
            due: "SELECT id AS k FROM invitations WHERE accepted_at IS NULL AND expires_at < $1 \
                  ORDER BY id LIMIT $2",
            remove: "DELETE FROM invitations WHERE id IN ({ids})",
            subject_type: "",
            list_ids: true,
        },
    }
}

/// `$from, $from+1, …` for `n` binds.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Log `policy` if it is not the last one logged: an audit event with
    /// its canonical hash and its text. Returns whether it logged one.
    pub async fn log_retention_policy(&self, policy: &RetentionPolicy) -> Result<bool> {
        let last = self
            .events_for(POLICY_SUBJECT.0, POLICY_SUBJECT.1)
            .await?
            .pop();
        let last_hash = last.as_ref().and_then(|e| {
            e.after
                .get("sha256")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let hash = policy.sha256();
        if last_hash.as_deref() == Some(hash.as_str()) {
            return Ok(false);
        }
        let mut tx = self.write().await?;
        Event::about(
            EventType::RetentionPolicyLogged,
            POLICY_SUBJECT.0,
            POLICY_SUBJECT.1,
            json!({"sha256": hash, "policy": policy.to_json()}),
        )
        .before(last_hash.map_or(Value::Null, |h| json!({ "sha256": h })))
        .append(&mut tx, self.now(), &Actor::system("operator"))
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Remove what `policy` says is due now, at most `max_batches` batches
    /// of [`BATCH`] records (the next run goes on; `more` may then be set
    /// when nothing is left, which costs the next run only reads). As the owner holding
    /// `fence`, a batch whose fence no longer holds commits nothing and the
    /// run stops.
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        fence: Option<&crate::lease::Fence>,
        max_batches: usize,
    ) -> Result<RetentionRun> {
        let mut run = RetentionRun::default();
        let mut batches = 0;
        for kind in RecordKind::ALL {
            let Some(cutoff) = policy.cutoff(kind, self.now()) else {
                continue;
            };
            loop {
                if batches == max_batches {
                    run.more = true;
                    return Ok(run);
                }
                match self.retention_batch(policy, kind, cutoff, fence).await? {
                    None => return Ok(run),
                    // nothing (more) due: no transaction, no budget spent
                    Some((0, _)) => break,
                    Some((records, events)) => {
                        batches += 1;
                        *run.records.entry(kind).or_default() += records;
                        run.events_erased += events;
                        run.tombstones += 1;
                        if records < BATCH as u64 {
                            break;
                        }
                    }
                }
            }
        }
        Ok(run)
    }

    /// One batch of `kind`: (records, events erased), or None when the
    /// fence no longer holds.
    async fn retention_batch(
        &self,
        policy: &RetentionPolicy,
        kind: RecordKind,
        cutoff: Timestamp,
        fence: Option<&crate::lease::Fence>,
    ) -> Result<Option<(u64, u64)>> {
        let t = table(kind);
        // nothing due (the usual case): no write transaction, no chain lock
        let any = sqlx::query(t.due)
            .bind(cutoff.unix_millis())
            .bind(1i64)
            .fetch_optional(&self.pool)
            .await?;
        if any.is_none() {
            return Ok(Some((0, 0)));
        }
        // read again under the lock: what is due is what this batch removes
        let mut tx = self.write().await?;
        if let Some(fence) = fence
            && !self.check_fence(&mut tx, fence).await?
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let keys: Vec<String> = sqlx::query(t.due)
            .bind(cutoff.unix_millis())
            .bind(BATCH as i64)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("k"))
            .collect::<std::result::Result<_, _>>()?;
        if keys.is_empty() {
            tx.rollback().await?;
            return Ok(Some((0, 0)));
        }
        let now = self.now();
        // the events carrying the records' personal data
        let mut leaves = Vec::new();
        let actions = kind.erased_events();
        if !actions.is_empty() {
            let sql = format!(
                "SELECT seq, hash FROM audit_events WHERE subject_type = $1 AND erased_by IS NULL \
                 AND action IN ({}) AND subject_id IN ({}) ORDER BY seq",
                placeholders(2, actions.len()),
                placeholders(2 + actions.len(), keys.len())
            );
            let mut q = sqlx::query(&sql).bind(t.subject_type);
            for a in actions {
                q = q.bind(a.as_str());
            }
            for k in &keys {
                q = q.bind(k);
            }
            for r in q.fetch_all(&mut *tx).await? {
                let seq: i64 = r.try_get("seq")?;
                leaves.push(ErasedLeaf {
                    seq,
                    leaf_index: tlog::leaf::index_of(seq),
                    event_hash: r.try_get("hash")?,
                });
            }
        }
        let keep_days = match policy.keep(kind) {
            Keep::Days(d) => d,
            Keep::Forever => 0,
        };
        let tombstone = Tombstone {
            rule: kind,
            keep_days,
            policy_sha256: policy.sha256(),
            cutoff: cutoff.to_string(),
            count: keys.len() as u64,
            records: if t.list_ids { keys.clone() } else { Vec::new() },
            leaves,
        };
        let at = Event::about(
            EventType::RetentionErased,
            "retention",
            kind.as_str(),
            tombstone.to_json(),
        )
        .append(&mut tx, now, &Actor::system("retention"))
        .await?;
        if !tombstone.leaves.is_empty() {
            let sql = format!(
                "UPDATE audit_events SET before = 'null', after = 'null', erased_by = $1 WHERE seq IN ({})",
                placeholders(2, tombstone.leaves.len())
            );
            let mut q = sqlx::query(&sql).bind(at);
            for l in &tombstone.leaves {
                q = q.bind(l.seq);
            }
            q.execute(&mut *tx).await?;
        }
        let uses_now = t.remove.contains("$1");
        let sql = t.remove.replace(
            "{ids}",
            &placeholders(1 + usize::from(uses_now), keys.len()),
        );
        let mut q = sqlx::query(&sql);
        if uses_now {
            q = q.bind(now.unix_millis());
        }
        for k in &keys {
            q = q.bind(k);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some((keys.len() as u64, tombstone.leaves.len() as u64)))
    }
}
