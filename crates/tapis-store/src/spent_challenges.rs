//! Spent proof-of-work challenges (migration 0028): a public report's
//! challenge is good once across every `tapis serve` sharing the database,
//! not once per process. The insert is the check: the primary key on the
//! challenge's nonce refuses a second use, whichever process saw the
//! first. A row matters only until its challenge expires; expired rows are
//! pruned by the same transaction, so the table holds at most the
//! challenges of the last few minutes.

use sqlx::Row as _;

use crate::{Result, Store};

/// Rows the table may hold at once (unexpired spent challenges): past it,
/// new proofs wait (the caller answers 429) rather than the table growing.
pub const MAX_SPENT_CHALLENGES: i64 = 100_000;

/// What spending a challenge came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// First use: recorded.
    Spent,
    /// Already used, here or by another process.
    AlreadyUsed,
    /// Too many unexpired challenges remembered: try later.
    Full,
}

impl Store {
    /// Spend the challenge `nonce` (its 16 bytes) that expires at
    /// `expires_secs` (Unix seconds): prune expired rows, then insert; a
    /// row already there means the challenge was used.
    pub async fn spend_challenge(&self, nonce: &[u8; 16], expires_secs: i64) -> Result<Spend> {
        let now_secs = self.now().unix_millis().div_euclid(1000);
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM spent_challenges WHERE expires_at < $1")
            .bind(now_secs)
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query("SELECT COUNT(*) AS n FROM spent_challenges")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let inserted = sqlx::query(
            "INSERT INTO spent_challenges (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(hex::encode(nonce))
        .bind(expires_secs)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if inserted == 0 {
            Spend::AlreadyUsed
        } else if held >= MAX_SPENT_CHALLENGES {
            // a full table refuses (and forgets) the new one
            tx.rollback().await?;
            return Ok(Spend::Full);
        } else {
            Spend::Spent
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Spent challenges remembered now (expired ones not yet pruned
    /// included).
    pub async fn spent_challenges(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM spent_challenges")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}
