//! The simulated clock as one value in the database, for every process
//! that shares it (demonstrations, the replay, tests).
//!
//! Each process keeps a `ManualClock` (so `Clock::now` stays a cheap,
//! synchronous read) that only ever moves forward, to the time stored under
//! `simulated_now`. Moving time is a write under the audit chain's lock
//! ([`Store::advance_shared_clock`]), and every write transaction first
//! catches its process's clock up to the stored time under that same lock
//! (`Store::write` calls [`Store::follow_shared_clock_in`]): so whatever a
//! transaction stamps is at or after the time any earlier transaction, in
//! any process, saw — audit times never run backwards. Readers outside a
//! transaction catch up with [`Store::follow_shared_clock`].

use sqlx::{Any, Row, Transaction};
use tapis_core::{Clock, ManualClock, Timestamp};

use crate::{Result, Store};

/// Where the simulated clock's time is kept (also across restarts).
pub const SIMULATED_NOW: &str = "simulated_now";

async fn stored<'e, E>(conn: E) -> Result<Option<Timestamp>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row = sqlx::query("SELECT value FROM runtime_state WHERE key = $1")
        .bind(SIMULATED_NOW)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let value: String = row.try_get("value")?;
    // an unreadable value is ignored: the clock keeps its own time
    Ok(Timestamp::parse(SIMULATED_NOW, &value).ok())
}

async fn store_time(tx: &mut Transaction<'static, Any>, t: Timestamp) -> Result<()> {
    sqlx::query(
        "INSERT INTO runtime_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(SIMULATED_NOW)
    .bind(t.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Share `clock` (this store's clock) with every process on the
    /// database: it moves up to the stored time if that is later, and the
    /// stored time up to it otherwise. Returns the shared time.
    pub async fn share_simulated_clock(&self, clock: ManualClock) -> Result<Timestamp> {
        let _ = self.ctx.runtime.shared_clock.set(clock.clone());
        let mut tx = self.write().await?;
        let now = clock.now();
        store_time(&mut tx, now).await?;
        tx.commit().await?;
        Ok(now)
    }

    /// Whether the clock is a shared simulated one.
    pub fn clock_is_shared(&self) -> bool {
        self.ctx.runtime.shared_clock.get().is_some()
    }

    /// Move the shared simulated clock forward by `millis` for every
    /// process. Returns the new time; `None` if the clock is not shared.
    pub async fn advance_shared_clock(&self, millis: i64) -> Result<Option<Timestamp>> {
        let Some(clock) = self.ctx.runtime.shared_clock.get() else {
            return Ok(None);
        };
        // the write catches this process up first: time moves from the
        // latest any process has seen
        let mut tx = self.write().await?;
        let to = Timestamp::from_unix_millis(clock.now().unix_millis().saturating_add(millis));
        store_time(&mut tx, to).await?;
        tx.commit().await?;
        clock.advance_to(to);
        Ok(Some(to))
    }

    /// Catch this process's simulated clock up with the shared time (for
    /// readers; writers do it under the lock). Returns the time.
    pub async fn follow_shared_clock(&self) -> Result<Option<Timestamp>> {
        let Some(clock) = self.ctx.runtime.shared_clock.get() else {
            return Ok(None);
        };
        if let Some(t) = stored(&self.pool).await? {
            clock.advance_to(t);
        }
        Ok(Some(clock.now()))
    }

    /// Inside a write transaction holding the chain lock.
    pub(crate) async fn follow_shared_clock_in(
        &self,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<()> {
        if let Some(clock) = self.ctx.runtime.shared_clock.get()
            && let Some(t) = stored(&mut **tx).await?
        {
            clock.advance_to(t);
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use std::sync::Arc;

    use tapis_core::{Clock, ManualClock, Timestamp};

    use crate::Store;
    use crate::testing::{TestDb, backends};

    /// Two stores (two processes) on one database: time moved by one is
    /// the other's time at its next write, and never goes back.
    #[tokio::test]
    async fn two_processes_share_one_simulated_time() {
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let t0 = Timestamp::parse("t", "2030-01-01T00:00:00Z").expect("t");
            let (ca, cb) = (ManualClock::new(t0), ManualClock::new(t0));
            let a = Store::open(&db.url, Arc::new(ca.clone())).await.expect("a");
            let b = Store::open(&db.url, Arc::new(cb.clone())).await.expect("b");
            a.share_simulated_clock(ca.clone()).await.expect("share a");
            b.share_simulated_clock(cb.clone()).await.expect("share b");
            let t1 = a
                .advance_shared_clock(3_600_000)
                .await
                .expect("advance")
                .expect("shared");
            assert_eq!(t1.unix_millis(), t0.unix_millis() + 3_600_000);
            assert_eq!(cb.now(), t0, "b has not looked yet");
            b.follow_shared_clock().await.expect("follow");
            assert_eq!(cb.now(), t1, "{backend:?}: b sees a's time");
            // b moves on from there; a's next write catches up
            let t2 = b.advance_shared_clock(1000).await.expect("b").expect("s");
            assert_eq!(t2.unix_millis(), t1.unix_millis() + 1000);
            let tx = a.write().await.expect("write");
            drop(tx);
            assert_eq!(ca.now(), t2, "{backend:?}: a write catches up first");
            // a process started earlier in time never drags it back
            let cc = ManualClock::new(t0);
            let c = Store::open(&db.url, Arc::new(cc.clone())).await.expect("c");
            assert_eq!(c.share_simulated_clock(cc.clone()).await.expect("c"), t2);
            db.cleanup().await;
        }
    }
}
