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

    /// One page of the live signals of `bank` at a fixed checkpoint,
    /// signed. The first page (no `cursor`) fixes the checkpoint at the
    /// bank's head and counts the signals live there (`total`); each page
    /// names the `next` cursor, which carries the checkpoint, so every page
    /// reads the same snapshot however the bank changes meanwhile
    /// (tombstones are never deletes: a signal live at the checkpoint is
    /// one added at or before it and not removed by then). A platform
    /// loads every page, then follows the feed from `checkpoint`.
    pub async fn bank_export(
        &self,
        by: &Principal,
        bank: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Value> {
        if !(1..=MAX_FEED_PAGE).contains(&limit) {
            return Err(
                tapis_core::Error::invalid("limit", format!("use 1 to {MAX_FEED_PAGE}")).into(),
            );
        }
        let cursor = cursor.map(ExportCursor::parse).transpose()?;
        let b = load_bank(&self.pool, bank).await?;
        require(by, Some(&b), BankAction::Read)?;
        let at = match cursor {
            Some(c) if c.checkpoint > b.seq => {
                return Err(tapis_core::Error::invalid(
                    "cursor",
                    "names a checkpoint this bank has not reached: use a cursor from this bank's export",
                )
                .into());
            }
            Some(c) => c,
            None => ExportCursor {
                checkpoint: b.seq,
                after: 0,
            },
        };
        const LIVE: &str = "s.bank_id = $1 AND s.added_seq <= $2 \
             AND (s.removed_seq IS NULL OR s.removed_seq > $2)";
        let total = if cursor.is_none() {
            let n: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM bank_signals s WHERE {LIVE}"
            ))
            .bind(bank)
            .bind(at.checkpoint)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
            Some(n)
        } else {
            None
        };
        let rows = sqlx::query(&format!(
            "SELECT s.added_seq AS export_seq, {SIGNAL_COLUMNS} FROM bank_signals s WHERE {LIVE} AND s.added_seq > $3 \
             ORDER BY s.added_seq LIMIT $4"
        ))
        .bind(bank)
        .bind(at.checkpoint)
        .bind(at.after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let mut last = at.after;
        let signals = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                last = r.try_get("export_seq")?;
                let mut s = signal_from_row(r)?;
                // as it was at the checkpoint
                s.removed_at = None;
                s.removed_reason = None;
                Ok(s)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let next = more.then(|| {
            ExportCursor {
                checkpoint: at.checkpoint,
                after: last,
            }
            .to_string()
        });
        let page = ExportPage {
            bank_id: bank.to_owned(),
            name: b.name,
            pdq_threshold: b.pdq_threshold,
            checkpoint: at.checkpoint,
            cursor: cursor.map(|c| c.to_string()),
            next,
            more,
            total,
            signals,
        };
        let mut payload = serde_json::to_value(page).map_err(Error::corrupt)?;
        payload["type"] = json!("tapis.bank_export");
        payload["at"] = json!(self.now());
        Ok(self.ctx.signer.seal(payload)?)
    }
}

/// Where an export page starts: the snapshot's checkpoint and the last
/// sequence number already given. Written `<checkpoint>.<after>`; clients
/// pass it back as they got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExportCursor {
    checkpoint: i64,
    after: i64,
}

impl ExportCursor {
    fn parse(raw: &str) -> Result<ExportCursor> {
        let bad = || {
            Error::from(tapis_core::Error::invalid(
                "cursor",
                "not a cursor: pass back a previous page's `next` as it was",
            ))
        };
        if raw.len() > 41 {
            return Err(bad());
        }
        let (c, a) = raw.split_once('.').ok_or_else(bad)?;
        let num = |s: &str| -> Result<i64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse::<i64>().map_err(|_| bad())
        };
        let (checkpoint, after) = (num(c)?, num(a)?);
        if after > checkpoint {
            return Err(bad());
        }
        Ok(ExportCursor { checkpoint, after })
    }
}

impl std::fmt::Display for ExportCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.checkpoint, self.after)
    }
}

/// An export page's payload (inside the signed envelope, with `type`
/// `tapis.bank_export` and `at`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportPage {
    pub bank_id: String,
    pub name: String,
    pub pdq_threshold: u32,
    /// The snapshot every page of this export reads: follow the feed from
    /// here once the last page is in.
    pub checkpoint: i64,
    /// The cursor this page was asked from (absent on the first page).
    pub cursor: Option<String>,
    /// Ask for the next page with this cursor; absent on the last page.
    pub next: Option<String>,
    /// More pages follow.
    pub more: bool,
    /// Signals live at the checkpoint (first page only): a client checks
    /// it has them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    pub signals: Vec<SignalView>,
}
