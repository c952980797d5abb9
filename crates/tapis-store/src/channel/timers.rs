//! The escalation ladder's timers on notices: scheduling and cancelling
//! them, and firing the due ones. What a step does is core's decision
//! (`tapis_core::ladder::decide`); this module loads the notice, asks, and
//! writes the step's events and messages with the timer's fired mark in one
//! transaction.

use super::*;

/// A ladder step that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub notice_id: NoticeId,
    pub step: NoticeTimer,
}

/// Schedule a timer (idempotent per notice and step).
pub(crate) async fn schedule(
    tx: &mut Tx,
    notice: NoticeId,
    step: &str,
    due: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO timers (id, notice_id, step, due_at, state) VALUES ($1, $2, $3, $4, 'pending') \
         ON CONFLICT (notice_id, step) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(notice.to_string())
    .bind(step)
    .bind(due.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Cancel a notice's pending timers (all, or one step).
pub(crate) async fn cancel_timers(tx: &mut Tx, notice: NoticeId, step: Option<&str>) -> Result<()> {
    let mut sql =
        "UPDATE timers SET state = 'cancelled' WHERE notice_id = $1 AND state = 'pending'"
            .to_owned();
    if step.is_some() {
        sql.push_str(" AND step = $2");
    }
    let mut q = sqlx::query(&sql).bind(notice.to_string());
    if let Some(s) = step {
        q = q.bind(s);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Apply one notice timer: core decides what it does, this applies it.
/// Returns whether it acted.
pub(crate) async fn fire_step(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut crate::Notice,
    timer: NoticeTimer,
) -> Result<bool> {
    let pending: Vec<String> = n
        .items
        .iter()
        .filter(|i| i.state == ItemState::Pending)
        .map(|i| i.id.to_string())
        .collect();
    match ladder::decide(timer, n.state, pending.len()) {
        StepOutcome::Nothing => Ok(false),
        StepOutcome::Escalate(reason) => {
            escalate(tx, now, actor, n, reason, &pending).await?;
            Ok(true)
        }
        StepOutcome::Notify { step, level } => {
            let id = n.id.to_string();
            let data = json!({
                "notice_id": id, "step": step.as_str(), "level": level,
                "due_at": n.due_at.map(|t| t.to_string()), "pending_items": pending,
            });
            audit::append(
                tx,
                now,
                actor,
                step.event_type().as_str(),
                ("notice", &id),
                Value::Null,
                data.clone(),
            )
            .await?;
            enqueue(
                tx,
                now,
                n.platform_id,
                Some(n.id),
                step.event_type().as_str(),
                data,
            )
            .await?;
            Ok(true)
        }
    }
}

impl Store {
    /// Fire up to `limit` ladder steps that are due. Each step, its event,
    /// its outbound messages and the timer's `fired` mark commit together,
    /// so a crash fires it either entirely or not at all, and a restart
    /// fires what is left exactly once.
    /// Returns the steps that acted and how many timers were looked at.
    pub async fn fire_due_timers(&self, limit: u32) -> Result<(Vec<Fired>, usize)> {
        let mut tx = self.write().await?;
        let now = self.now();
        let rows = sqlx::query(&format!(
            "SELECT id, notice_id, step FROM timers WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT {}",
            limit.clamp(1, 5000)
        ))
        .bind(now.unix_millis())
        .fetch_all(&mut *tx)
        .await?;
        let actor = Actor::system("scheduler");
        let mut fired = Vec::new();
        let seen = rows.len();
        for row in rows {
            let timer: String = row.try_get("id")?;
            let step: String = row.try_get("step")?;
            let notice_id =
                NoticeId::parse(&row.try_get::<String, _>("notice_id")?).map_err(Error::corrupt)?;
            let step = NoticeTimer::parse(&step).map_err(Error::corrupt)?;
            let mut n = load_notice(&mut tx, notice_id).await?;
            let acted = fire_step(&mut tx, now, &actor, &mut n, step).await?;
            sqlx::query("UPDATE timers SET state = $1, fired_at = $2 WHERE id = $3")
                .bind(if acted { "fired" } else { "cancelled" })
                .bind(now.unix_millis())
                .bind(&timer)
                .execute(&mut *tx)
                .await?;
            if acted {
                fired.push(Fired { notice_id, step });
            }
        }
        tx.commit().await?;
        if !fired.is_empty() {
            self.signal();
        }
        Ok((fired, seen))
    }

    /// When the next pending timer falls due, if any.
    pub async fn next_timer_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(due_at) AS due FROM timers WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row
            .try_get::<Option<i64>, _>("due")?
            .map(Timestamp::from_unix_millis))
    }
}
