//! The sync feed for platforms that match on their own side: a bank's
//! additions and tombstones in sequence order after a checkpoint, and a
//! full export of the live signals at a checkpoint. Both are signed like
//! notices (an Ed25519 envelope over RFC 8785 JSON with the store's
//! signing key, checkable against `GET /api/v1/keys`).

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use tapis_core::bank::BankAction;

use super::{SIGNAL_COLUMNS, SignalView, load_bank, require, signal_from_row};
use crate::{Error, Principal, Result, Store};

/// The most changes one feed page carries.
pub const MAX_FEED_PAGE: u32 = 10_000;

/// One change in a bank's feed.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// The bank's sequence number of this change.
    pub seq: i64,
    /// `add` or `remove` (a tombstone).
    pub op: String,
    pub signal: SignalView,
}

/// A feed page's payload (inside the signed envelope).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feed {
    pub bank_id: String,
    /// The checkpoint asked from.
    pub since: i64,
    /// Ask from here next time (the last change's sequence number, or
    /// `since` when there was none).
    pub next: i64,
    /// More changes wait after `next`.
    pub more: bool,
    pub changes: Vec<Change>,
}

impl Store {
    /// Changes to `bank` after checkpoint `since`, at most `limit`, signed.
    pub async fn bank_feed(
        &self,
        by: &Principal,
        bank: &str,
        since: i64,
        limit: u32,
    ) -> Result<Value> {
        if since < 0 {
            return Err(tapis_core::Error::invalid("since", "a checkpoint is 0 or more").into());
        }
        if !(1..=MAX_FEED_PAGE).contains(&limit) {
            return Err(
                tapis_core::Error::invalid("limit", format!("use 1 to {MAX_FEED_PAGE}")).into(),
            );
        }
        let b = load_bank(&self.pool, bank).await?;
        require(by, Some(&b), BankAction::Read)?;
        let rows = sqlx::query(&format!(
            "SELECT c.seq AS change_seq, c.op, {SIGNAL_COLUMNS} FROM bank_changes c \
             JOIN bank_signals s ON s.id = c.signal_id WHERE c.bank_id = $1 AND c.seq > $2 ORDER BY c.seq LIMIT $3"
        ))
        .bind(bank)
        .bind(since)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
        for r in rows.iter().take(limit as usize) {
            let op: String = r.try_get("op")?;
            let mut signal = signal_from_row(r)?;
            if op == "add" {
                // the addition as it was; its tombstone comes as its own change
                signal.removed_at = None;
                signal.removed_reason = None;
            }
            changes.push(Change {
                seq: r.try_get("change_seq")?,
                op,
                signal,
            });
        }
        let feed = Feed {
            bank_id: bank.to_owned(),
            since,
            next: changes.last().map_or(since, |c| c.seq),
            more,
            changes,
        };
        let payload = json!({"type": "tapis.bank_feed", "feed": feed, "at": self.now()});
        Ok(self.ctx.signer.seal(payload)?)
    }

    /// Every live signal of `bank` at its current checkpoint, signed. A
    /// platform loads this once, then follows the feed from `checkpoint`.
    pub async fn bank_export(&self, by: &Principal, bank: &str) -> Result<Value> {
        let b = load_bank(&self.pool, bank).await?;
        require(by, Some(&b), BankAction::Read)?;
        // live as of b.seq, whatever is written meanwhile
        let rows = sqlx::query(&format!(
            "SELECT {SIGNAL_COLUMNS} FROM bank_signals s WHERE s.bank_id = $1 AND s.added_seq <= $2 \
             AND (s.removed_seq IS NULL OR s.removed_seq > $2) ORDER BY s.added_seq"
        ))
        .bind(bank)
        .bind(b.seq)
        .fetch_all(&self.pool)
        .await?;
        let signals = rows
            .iter()
            .map(|r| {
                let mut s = signal_from_row(r)?;
                s.removed_at = None;
                s.removed_reason = None;
                Ok(s)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let payload = json!({
            "type": "tapis.bank_export",
            "bank_id": bank,
            "name": b.name,
            "pdq_threshold": b.pdq_threshold,
            "checkpoint": b.seq,
            "signals": signals,
            "at": self.now(),
        });
        Ok(self.ctx.signer.seal(payload)?)
    }
}
