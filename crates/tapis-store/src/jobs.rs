//! The one scheduler: every timed thing (a notice's delivery timeout and
//! ladder steps, an order's activation, expiry, review and emergency lapse)
//! is a row in `jobs` — kind, subject, due time — fired by one dispatcher,
//! [`Store::fire_due_jobs`], which `tapis-channel`'s scheduler drives.
//! What a job does is core's decision (`tapis_core::ladder::decide`,
//! `tapis_core::job::decide_order_job`); this module loads the subject,
//! asks, and applies the outcome.
//!
//! Exactly once: a job is claimed (`pending → fired`, only if still pending
//! and due) in the same transaction as its effects, its audit events and
//! its outbound messages; a crash fires it entirely or not at all, a
//! restart fires what is left, and two dispatchers never both fire one.
//! Jobs are fired in small transactions (`CHUNK`) with their notices loaded
//! in one query per chunk, so a burst of deadlines never holds the write
//! lock for long.

use std::collections::HashMap;
use tapis_core::EventType;

use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};
use tapis_core::audit::Actor;
use tapis_core::job::{JobKind, OrderJobOutcome, decide_order_job};
use tapis_core::order::OrderEvent;
use tapis_core::publication::PublicationBasis;
use tapis_core::{NoticeId, Timestamp};

use crate::{Error, Result, Store, audit};

type Tx = Transaction<'static, Any>;

/// Jobs fired per write transaction.
const CHUNK: usize = 50;

/// A job that acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub kind: JobKind,
    /// The notice or order it acted on.
    pub subject_id: String,
}

/// What one dispatcher pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsFired {
    /// Jobs that acted.
    pub fired: Vec<Fired>,
    /// Jobs looked at (acted, found moot and cancelled, or taken by
    /// another dispatcher): fewer than the limit means none are left due.
    pub seen: usize,
    /// The pass stopped because this process's fencing token is no longer
    /// the lease's: another process owns the scheduler now.
    pub lost_lease: bool,
}

/// Schedule a job. Whether an existing one moves is the kind's rule
/// ([`JobKind::reschedules`]).
pub(crate) async fn schedule(
    tx: &mut Tx,
    kind: JobKind,
    subject: &str,
    due: Timestamp,
) -> Result<()> {
    let on_conflict = if kind.reschedules() {
        "DO UPDATE SET due_at = excluded.due_at, state = 'pending', fired_at = NULL"
    } else {
        "DO NOTHING"
    };
    sqlx::query(&format!(
        "INSERT INTO jobs (id, kind, subject_id, due_at, state) VALUES ($1, $2, $3, $4, 'pending') \
         ON CONFLICT (kind, subject_id) {on_conflict}"
    ))
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(kind.as_str())
    .bind(subject)
    .bind(due.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Schedule several jobs of one subject with one statement (what
/// [`schedule`] does for each, in order).
pub(crate) async fn schedule_many(
    tx: &mut Tx,
    subject: &str,
    jobs: &[(JobKind, Timestamp)],
) -> Result<()> {
    // one statement per conflict rule, in the order given
    for reschedules in [false, true] {
        let these: Vec<&(JobKind, Timestamp)> = jobs
            .iter()
            .filter(|(k, _)| k.reschedules() == reschedules)
            .collect();
        if these.is_empty() {
            continue;
        }
        let on_conflict = if reschedules {
            "DO UPDATE SET due_at = excluded.due_at, state = 'pending', fired_at = NULL"
        } else {
            "DO NOTHING"
        };
        let rows: Vec<String> = (0..these.len())
            .map(|i| {
                format!(
                    "(${}, ${}, ${}, ${}, 'pending')",
                    4 * i + 1,
                    4 * i + 2,
                    4 * i + 3,
                    4 * i + 4
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO jobs (id, kind, subject_id, due_at, state) VALUES {} ON CONFLICT (kind, subject_id) {on_conflict}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (kind, due) in these {
            q = q
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(kind.as_str())
                .bind(subject)
                .bind(due.unix_millis());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Cancel a subject's pending jobs: all, or those of one kind.
pub(crate) async fn cancel(tx: &mut Tx, subject: &str, kind: Option<JobKind>) -> Result<()> {
    let mut sql = "UPDATE jobs SET state = 'cancelled' WHERE subject_id = $1 AND state = 'pending'"
        .to_owned();
    if kind.is_some() {
        sql.push_str(" AND kind = $2");
    }
    let mut q = sqlx::query(&sql).bind(subject);
    if let Some(k) = kind {
        q = q.bind(k.as_str());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

struct Due {
    id: String,
    kind: JobKind,
    subject: String,
}

impl Store {
    /// Fire up to `limit` due jobs, oldest due first, in transactions of a
    /// few jobs each (see the module's exactly-once argument).
    pub async fn fire_due_jobs(&self, limit: u32) -> Result<JobsFired> {
        self.fire_due_jobs_fenced(limit, None).await
    }

    /// [`Store::fire_due_jobs`] as the owner holding `fence`: every
    /// transaction checks, under the chain lock and before it claims a job,
    /// that the fence is still the lease's (`lease.rs`), and commits
    /// nothing otherwise. A process frozen while it owned the lease that
    /// wakes up after another took over fires nothing.
    pub async fn fire_due_jobs_fenced(
        &self,
        limit: u32,
        fence: Option<&crate::lease::Fence>,
    ) -> Result<JobsFired> {
        // a shared simulated clock: see the time other processes set
        self.follow_shared_clock().await?;
        let now = self.now();
        let rows = sqlx::query(&format!(
            "SELECT id, kind, subject_id FROM jobs WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT {}",
            limit.clamp(1, 5000)
        ))
        .bind(now.unix_millis())
        .fetch_all(&self.pool)
        .await?;
        let due = rows
            .iter()
            .map(|r| {
                Ok(Due {
                    id: r.try_get("id")?,
                    kind: JobKind::parse(&r.try_get::<String, _>("kind")?)
                        .map_err(Error::corrupt)?,
                    subject: r.try_get("subject_id")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = JobsFired {
            fired: Vec::new(),
            seen: due.len(),
            lost_lease: false,
        };
        for chunk in due.chunks(CHUNK) {
            if !self.fire_chunk(now, chunk, fence, &mut out.fired).await? {
                out.lost_lease = true;
                break;
            }
        }
        if !out.fired.is_empty() {
            self.signal();
        }
        Ok(out)
    }

    /// Fire one chunk in one transaction; false (and nothing committed)
    /// if `fence` no longer holds.
    async fn fire_chunk(
        &self,
        now: Timestamp,
        chunk: &[Due],
        fence: Option<&crate::lease::Fence>,
        fired: &mut Vec<Fired>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        if let Some(fence) = fence
            && !self.check_fence(&mut tx, fence).await?
        {
            tx.rollback().await?;
            return Ok(false);
        }
        let actor = Actor::system("scheduler");
        // the chunk's notices in one query (loaded under the write lock,
        // so they are current; each job sees the previous one's changes)
        let mut ids: Vec<NoticeId> = Vec::new();
        for job in chunk
            .iter()
            .filter(|j| matches!(j.kind, JobKind::Notice(_)))
        {
            let id = NoticeId::parse(&job.subject).map_err(Error::corrupt)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut notices: HashMap<NoticeId, crate::Notice> =
            crate::notices::load_notices(&mut tx, &ids).await?;
        for job in chunk {
            let claimed = sqlx::query(
                "UPDATE jobs SET state = 'fired', fired_at = $1 WHERE id = $2 AND state = 'pending' AND due_at <= $1",
            )
            .bind(now.unix_millis())
            .bind(&job.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                // cancelled, moved or fired meanwhile
                continue;
            }
            let acted = match job.kind {
                JobKind::Notice(timer) => {
                    let id = NoticeId::parse(&job.subject).map_err(Error::corrupt)?;
                    let n = notices.get_mut(&id).ok_or(Error::NotFound("notice"))?;
                    crate::channel::fire_step(&mut tx, &self.ctx.secrets, now, &actor, n, timer)
                        .await?
                }
                JobKind::AppealDeadline => {
                    crate::appeals::fire_deadline(&mut tx, now, &actor, &job.subject).await?
                }
                kind => {
                    self.fire_order_job(&mut tx, now, &actor, kind, &job.subject)
                        .await?
                }
            };
            if acted {
                fired.push(Fired {
                    kind: job.kind,
                    subject_id: job.subject.clone(),
                });
            } else {
                sqlx::query("UPDATE jobs SET state = 'cancelled' WHERE id = $1")
                    .bind(&job.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// When the earliest pending job falls due (for a scheduler that
    /// sleeps until then).
    pub async fn next_job_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(due_at) AS due FROM jobs WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row
            .try_get::<Option<i64>, _>("due")?
            .map(Timestamp::from_unix_millis))
    }

    /// Apply one order job. Returns whether it acted.
    async fn fire_order_job(
        &self,
        tx: &mut Tx,
        now: Timestamp,
        actor: &Actor,
        kind: JobKind,
        subject: &str,
    ) -> Result<bool> {
        let policy = &self.ctx.due_process;
        let mut o = crate::orders::load_order_in(tx, subject).await?;
        let emergency = kind == JobKind::OrderEmergencyLapse && {
            let basis: Option<String> =
                sqlx::query("SELECT basis FROM order_publications WHERE order_id = $1")
                    .bind(&o.id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(|r| r.try_get("basis"))
                    .transpose()?;
            basis.as_deref() == Some(PublicationBasis::Emergency.as_str())
        };
        Ok(match decide_order_job(kind, o.state, emergency, policy) {
            OrderJobOutcome::Nothing => false,
            OrderJobOutcome::Activate => crate::orders::activate_in(self, tx, now, actor, &mut o)
                .await?
                .is_some(),
            OrderJobOutcome::End(reason) => {
                crate::orders::end_in(tx, now, actor, &mut o, OrderEvent::Expire, &reason).await?;
                true
            }
            OrderJobOutcome::ReviewMissed => {
                audit::append(
                    tx,
                    now,
                    actor,
                    EventType::OrderReviewMissed,
                    ("order", &o.id),
                    Value::Null,
                    json!({"review_at": o.review_at.to_string(), "escalated_to": "authoriser"}),
                )
                .await?;
                crate::due_process::tell_authorisers(
                    tx,
                    now,
                    EventType::OrderReviewMissed,
                    json!({"order_id": o.id, "review_at": o.review_at.to_string(), "state": o.state}),
                )
                .await?;
                true
            }
        })
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use sqlx::Row;
    use sqlx::any::AnyPoolOptions;

    use crate::Backend;
    use crate::db::MIGRATIONS;
    use crate::testing::{TestDb, backends};

    /// Migration 10 moves the ladder's timers into `jobs`: pending ones
    /// stay pending (and due when they were), history stays history.
    #[tokio::test]
    async fn timers_move_into_jobs_keeping_pending_ones() {
        sqlx::any::install_default_drivers();
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let url = match backend {
                Backend::Sqlite => format!("{}?mode=rwc", db.url),
                Backend::Postgres => db.url.clone(),
            };
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .expect("connect");
            let sql = |m: &crate::db::migrations::Migration| match backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            for m in MIGRATIONS.iter().filter(|m| m.version < 10) {
                sqlx::raw_sql(sql(m)).execute(&pool).await.expect(m.name);
            }
            // timers name notices; the test has none, so no foreign keys
            let off = match backend {
                Backend::Sqlite => "PRAGMA foreign_keys = OFF",
                Backend::Postgres => "SET session_replication_role = replica",
            };
            sqlx::raw_sql(off).execute(&pool).await.expect("fk off");
            sqlx::raw_sql(
                "INSERT INTO timers (id, notice_id, step, due_at, state, fired_at) VALUES \
                 ('t1', 'n1', 'reminder', 100, 'pending', NULL), \
                 ('t2', 'n1', 'delivery_timeout', 50, 'fired', 60), \
                 ('t3', 'n2', 'escalation', 200, 'cancelled', NULL); \
                 INSERT INTO jobs (id, kind, subject_id, due_at, state) VALUES ('j1', 'order_expire', 'o1', 300, 'pending')",
            )
            .execute(&pool)
            .await
            .expect("timers");
            let ten = MIGRATIONS.iter().find(|m| m.version == 10).expect("10");
            assert_eq!(ten.name, "one_scheduler");
            sqlx::raw_sql(sql(ten))
                .execute(&pool)
                .await
                .expect("migrate");
            let rows = sqlx::query(
                "SELECT id, kind, subject_id, due_at, state, fired_at FROM jobs ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .expect("jobs");
            let got: Vec<(String, String, String, i64, String, Option<i64>)> = rows
                .iter()
                .map(|r| {
                    (
                        r.get("id"),
                        r.get("kind"),
                        r.get("subject_id"),
                        r.get("due_at"),
                        r.get("state"),
                        r.get("fired_at"),
                    )
                })
                .collect();
            let row = |id: &str, k: &str, s: &str, d: i64, st: &str, f: Option<i64>| {
                (id.into(), k.into(), s.into(), d, st.into(), f)
            };
            assert_eq!(
                got,
                vec![
                    row("j1", "order_expire", "o1", 300, "pending", None),
                    row("t1", "notice_reminder", "n1", 100, "pending", None),
                    row("t2", "notice_delivery_timeout", "n1", 50, "fired", Some(60)),
                    row("t3", "notice_escalation", "n2", 200, "cancelled", None),
                ]
            );
            for (_, kind, ..) in &got {
                tapis_core::job::JobKind::parse(kind).expect("a kind core knows");
            }
            let gone = sqlx::raw_sql("SELECT 1 FROM timers").execute(&pool).await;
            assert!(gone.is_err(), "the timers table is dropped");
            pool.close().await;
            db.cleanup().await;
        }
    }
}
