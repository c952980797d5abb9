//! The transparency log recomputed from the audit events alone, for
//! `tapis log verify`: every event's chain hash is recomputed from its
//! content (not read from its `hash` column), its leaf from that hash and
//! its salt, and the tree from the leaves; every stored leaf that differs
//! is reported. Checkpoints saved earlier are then checked against this
//! tree, so a rewrite of the events, of the chain or of the tree's own
//! tables cannot hide.

use sqlx::Row;
use tapis_core::audit::GENESIS;
use tapis_core::tlog::{MemoryTree, leaf::event_leaf_hash};

use crate::audit::event_from_row;
use crate::{Result, Store};

/// The tree as the events say it is, and what disagrees with it.
#[derive(Debug, Default)]
pub struct LogRecompute {
    pub tree: MemoryTree,
    /// Leaves stored in `tlog_nodes`.
    pub stored_leaves: u64,
    /// Events whose payloads retention erased, each named by a tombstone.
    pub erased: u64,
    /// The first disagreements (at most 20), each one sentence.
    pub problems: Vec<String>,
}

const PAGE: i64 = 1000;
const MAX_PROBLEMS: usize = 20;

impl Store {
    /// Recompute the log from the events (see the module's doc).
    pub async fn recompute_log(&self) -> Result<LogRecompute> {
        let mut out = LogRecompute {
            stored_leaves: self.log_size().await?,
            ..Default::default()
        };
        let mut prev = GENESIS;
        let mut tombstones = crate::audit::Tombstones::default();
        let mut after = 0i64;
        let mut expect = 1i64;
        loop {
            let rows = self.audit_page(after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            let last: i64 = last.try_get("seq")?;
            let salts: std::collections::HashMap<i64, [u8; 32]> = self
                .log_salts(after, last - after)
                .await?
                .into_iter()
                .collect();
            let stored = self.stored_leaves(after, last).await?;
            for row in &rows {
                let by = crate::audit::erased_by(row)?;
                let ev = event_from_row(row)?;
                if ev.seq != expect {
                    out.problem(format!(
                        "expected event {expect} but found {}: events are missing",
                        ev.seq
                    ));
                    expect = ev.seq;
                }
                expect += 1;
                let seq = ev.seq;
                let hash = match by {
                    // erased by retention: the stored hash, if a tombstone
                    // names the event with it (else a problem, and the
                    // stored hash, so the rest still checks)
                    Some(by) => {
                        let t = tombstones.get(self, by).await?;
                        let named = by > seq && t.is_some_and(|t| t.names(seq, &ev.hash));
                        if named {
                            out.erased += 1;
                        } else {
                            out.problem(format!(
                                "event {seq}'s payload was erased but event {by} is no retention tombstone naming it with its hash: tampering, not retention"
                            ));
                        }
                        let stored = hex::decode(&ev.hash)
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok());
                        match stored {
                            Some(h) => h,
                            None => {
                                out.problem(format!("event {seq}'s stored hash is not a SHA-256"));
                                [0; 32]
                            }
                        }
                    }
                    None => ev.into_body().chain_hash(&prev)?,
                };
                prev = hash;
                let Some(salt) = salts.get(&seq) else {
                    out.problem(format!(
                        "event {} has no salt: its leaf cannot be recomputed",
                        seq
                    ));
                    continue;
                };
                let leaf = event_leaf_hash(seq, salt, &hash);
                if stored.get(&seq) != Some(&leaf) {
                    out.problem(format!(
                        "leaf {} (event {}) as stored differs from the one its event gives: the event or the log's tables were changed",
                        seq - 1,
                        seq
                    ));
                }
                out.tree.push(leaf);
            }
            after = last;
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        if out.stored_leaves != out.tree.size() {
            out.problem(format!(
                "the log stores {} leaves but there are {} events",
                out.stored_leaves,
                out.tree.size()
            ));
        }
        Ok(out)
    }

    /// Stored leaves of events `(after, last]`, by event sequence.
    async fn stored_leaves(
        &self,
        after: i64,
        last: i64,
    ) -> Result<std::collections::HashMap<i64, [u8; 32]>> {
        let rows = sqlx::query(
            "SELECT idx, hash FROM tlog_nodes WHERE level = 0 AND idx >= $1 AND idx < $2",
        )
        .bind(after)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        let mut out = std::collections::HashMap::new();
        for r in rows {
            let idx: i64 = r.try_get("idx")?;
            let hash: String = r.try_get("hash")?;
            if let Some(h) = hex::decode(&hash)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                out.insert(idx + 1, h);
            }
        }
        Ok(out)
    }
}

impl LogRecompute {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}
