//! What an operator watches, as numbers: instruments recorded as things
//! happen (how long writes waited for the audit chain's lock) and gauges
//! read from the database at scrape time with cheap, indexed queries
//! (outbox depth and age per destination, dead letters, due timers and
//! scheduler lag, notices by state, the zone serial and each ISP's sync
//! lag). No wire format here: `tapis-http` renders them for Prometheus.
//!
//! Series are bounded: per-party rows are capped at `MAX_PARTIES` (parties
//! are few, but a bound is a bound).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use sqlx::Row;

use crate::{Result, Store};

/// Most per-party rows one snapshot carries, per family.
pub const MAX_PARTIES: i64 = 1000;

/// Upper bounds of the chain-lock wait histogram, in seconds.
pub const LOCK_WAIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// How long write transactions waited for the audit chain's lock (pool
/// wait included), as a histogram, and how many gave up.
#[derive(Default)]
pub struct LockWaits {
    /// Per bucket (not cumulative); the last is above every bound.
    counts: [AtomicU64; LOCK_WAIT_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    failed: AtomicU64,
}

/// A copy of `LockWaits`.
#[derive(Debug, Clone, PartialEq)]
pub struct LockWaitSnapshot {
    /// (upper bound in seconds, observations in this bucket), not
    /// cumulative; the last bound is `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    pub sum_secs: f64,
    pub count: u64,
    /// Waits that ended without the lock (timeout, database gone).
    pub failed: u64,
}

impl LockWaits {
    pub(crate) fn observe(&self, waited: Duration, locked: bool) {
        let secs = waited.as_secs_f64();
        let i = LOCK_WAIT_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LOCK_WAIT_BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(waited.as_micros().min(u64::MAX as u128) as u64, Relaxed);
        if !locked {
            self.failed.fetch_add(1, Relaxed);
        }
    }

    fn snapshot(&self) -> LockWaitSnapshot {
        let buckets: Vec<(f64, u64)> = LOCK_WAIT_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().map(|c| c.load(Relaxed)))
            .collect();
        LockWaitSnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum_secs: self.sum_micros.load(Relaxed) as f64 / 1e6,
            failed: self.failed.load(Relaxed),
        }
    }
}

/// Pending outbound messages to one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDepth {
    pub party_id: String,
    pub party_name: String,
    /// Pending messages (due now or retrying later).
    pub pending: i64,
    /// Age of the oldest pending message, in seconds.
    pub oldest_age_secs: f64,
    /// Dead letters (gave up after every attempt) for this destination.
    pub dead: i64,
}

/// One ISP's view of the zone.
#[derive(Debug, Clone, PartialEq)]
pub struct IspSync {
    pub party_id: String,
    pub party_name: String,
    /// The newest serial the ISP's secondaries were seen to hold (polled,
    /// transferred); 0 when never seen.
    pub serial: i64,
    /// Seconds since the first zone serial newer than `serial` was made;
    /// 0 when the ISP is current.
    pub lag_secs: f64,
}

/// Everything `/metrics` reads from the database, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsSnapshot {
    pub outbox: Vec<OutboxDepth>,
    pub dead_letters: i64,
    /// Pending jobs due now or earlier.
    pub due_jobs: i64,
    /// Now minus the oldest due job's due time, in seconds (0: none due).
    pub scheduler_lag_secs: f64,
    /// Notices not closed or withdrawn, by state.
    pub notices: Vec<(String, i64)>,
    /// Open notices past their deadline.
    pub overdue_notices: i64,
    /// The current RPZ serial (0 before the first).
    pub zone_serial: i64,
    pub isps: Vec<IspSync>,
    /// Questions, disputes and appeals by kind and state, and appeals
    /// open past their deadline (`appeal`, `overdue`).
    pub answers: Vec<(String, String, i64)>,
}

fn age_secs(now_ms: i64, then_ms: Option<i64>) -> f64 {
    then_ms.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0)
}

impl Store {
    /// How long writes waited for the audit chain's lock, so far.
    pub fn lock_waits(&self) -> LockWaitSnapshot {
        self.ctx.lock_waits.snapshot()
    }

    /// Read the operational gauges (each query uses an index on a state
    /// column, or reads tables with one row per party).
    pub async fn ops_snapshot(&self) -> Result<OpsSnapshot> {
        let now = self.now().unix_millis();
        let mut conn = self.pool.acquire().await?;

        let rows = sqlx::query(
            "SELECT o.party_id AS party_id, p.name AS name, \
                    SUM(CASE WHEN o.state = 'pending' THEN 1 ELSE 0 END) AS pending, \
                    MIN(CASE WHEN o.state = 'pending' THEN o.created_at END) AS oldest, \
                    SUM(CASE WHEN o.state = 'dead' THEN 1 ELSE 0 END) AS dead \
             FROM outbox o JOIN parties p ON p.id = o.party_id \
             WHERE o.state IN ('pending', 'dead') \
             GROUP BY o.party_id, p.name ORDER BY o.party_id LIMIT $1",
        )
        .bind(MAX_PARTIES)
        .fetch_all(&mut *conn)
        .await?;
        let mut outbox = Vec::with_capacity(rows.len());
        for r in &rows {
            outbox.push(OutboxDepth {
                party_id: r.try_get("party_id")?,
                party_name: r.try_get("name")?,
                pending: r.try_get::<Option<i64>, _>("pending")?.unwrap_or(0),
                oldest_age_secs: age_secs(now, r.try_get("oldest")?),
                dead: r.try_get::<Option<i64>, _>("dead")?.unwrap_or(0),
            });
        }
        let dead_letters: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'dead'")
                .fetch_one(&mut *conn)
                .await?
                .try_get("n")?;

        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(due_at) AS oldest FROM jobs \
             WHERE state = 'pending' AND due_at <= $1",
        )
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let due_jobs: i64 = r.try_get("n")?;
        let scheduler_lag_secs = age_secs(now, r.try_get("oldest")?);

        // open notices and drafts only: closed ones only ever accumulate,
        // and counting them would scan the whole history on every scrape
        let live = tapis_core::notice::NoticeState::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT state, COUNT(*) AS n FROM notices WHERE state IN ({live}) GROUP BY state"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let mut notices = Vec::with_capacity(rows.len());
        for r in &rows {
            notices.push((r.try_get("state")?, r.try_get("n")?));
        }
        let open = tapis_core::notice::NoticeState::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let overdue_notices: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM notices WHERE state IN ({open}) AND due_at < $1"
        ))
        .bind(now)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;

        let mut answers = Vec::new();
        for (kind, table) in [
            ("clarification", "clarifications"),
            ("dispute", "disputes"),
            ("appeal", "appeals"),
        ] {
            for r in sqlx::query(&format!(
                "SELECT state, COUNT(*) AS n FROM {table} GROUP BY state ORDER BY state"
            ))
            .fetch_all(&mut *conn)
            .await?
            {
                answers.push((kind.to_owned(), r.try_get("state")?, r.try_get("n")?));
            }
        }
        let overdue_appeals: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM appeals WHERE state IN ('received', 'under_review') AND due_at <= $1",
        )
        .bind(now)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
        answers.push(("appeal".into(), "overdue".into(), overdue_appeals));

        let zone_serial: i64 = sqlx::query("SELECT MAX(serial) AS s FROM rpz_serials")
            .fetch_one(&mut *conn)
            .await?
            .try_get::<Option<i64>, _>("s")?
            .unwrap_or(0);

        // what each ISP's secondaries hold: the newest serial seen in an
        // SOA poll or a completed transfer
        let rows = sqlx::query(
            "SELECT i.party_id AS party_id, p.name AS name, \
                    (SELECT MAX(serial) FROM rpz_polls WHERE party_id = i.party_id) AS polled, \
                    (SELECT MAX(serial) FROM rpz_sync_log \
                      WHERE party_id = i.party_id AND complete = 1 AND kind <> 'NOTIFY') AS transferred \
             FROM isp_resolvers i JOIN parties p ON p.id = i.party_id \
             ORDER BY i.party_id LIMIT $1",
        )
        .bind(MAX_PARTIES)
        .fetch_all(&mut *conn)
        .await?;
        let mut isps = Vec::with_capacity(rows.len());
        for r in &rows {
            let polled: Option<i64> = r.try_get("polled")?;
            let transferred: Option<i64> = r.try_get("transferred")?;
            let serial = polled.max(transferred).unwrap_or(0);
            let lag_secs = if serial >= zone_serial {
                0.0
            } else {
                let first_newer: Option<i64> =
                    sqlx::query("SELECT MIN(created_at) AS t FROM rpz_serials WHERE serial > $1")
                        .bind(serial)
                        .fetch_one(&mut *conn)
                        .await?
                        .try_get("t")?;
                age_secs(now, first_newer)
            };
            isps.push(IspSync {
                party_id: r.try_get("party_id")?,
                party_name: r.try_get("name")?,
                serial,
                lag_secs,
            });
        }

        Ok(OpsSnapshot {
            outbox,
            dead_letters,
            due_jobs,
            scheduler_lag_secs,
            notices,
            overdue_notices,
            zone_serial,
            isps,
            answers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_waits_fall_in_their_buckets() {
        let w = LockWaits::default();
        w.observe(Duration::from_micros(300), true);
        w.observe(Duration::from_millis(30), true);
        w.observe(Duration::from_secs(20), false);
        let s = w.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.failed, 1);
        assert_eq!(s.buckets[0], (0.0005, 1));
        assert_eq!(s.buckets[6], (0.05, 1));
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((s.sum_secs - 20.0303).abs() < 1e-6, "{}", s.sum_secs);
    }
}
