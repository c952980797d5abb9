//! Order jobs: activation at the effective time, expiry, the review date
//! and an emergency order's lapse, each fired with its effects in one
//! transaction.

use super::*;

pub(crate) async fn schedule_job(
    tx: &mut Tx,
    kind: &str,
    subject: &str,
    due: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, subject_id, due_at, state) VALUES ($1, $2, $3, $4, 'pending') \
         ON CONFLICT (kind, subject_id) DO UPDATE SET due_at = excluded.due_at, state = 'pending', fired_at = NULL",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(kind)
    .bind(subject)
    .bind(due.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn cancel_jobs(tx: &mut Tx, subject: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET state = 'cancelled' WHERE subject_id = $1 AND state = 'pending'")
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Fire due order jobs (activation, expiry, missed review). Like ladder
    /// timers, each job and its effects commit together.
    pub async fn fire_due_jobs(&self, limit: u32) -> Result<usize> {
        let mut tx = self.write().await?;
        let now = self.now();
        let rows = sqlx::query(&format!(
            "SELECT id, kind, subject_id FROM jobs WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT {}",
            limit.clamp(1, 5000)
        ))
        .bind(now.unix_millis())
        .fetch_all(&mut *tx)
        .await?;
        let actor = Actor::system("scheduler");
        let seen = rows.len();
        let mut changed = false;
        for row in rows {
            let job: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let subject: String = row.try_get("subject_id")?;
            let (mut o, _) = load_order(&mut tx, &subject).await?;
            let acted = match kind.as_str() {
                "order_activate"
                    if matches!(o.state, OrderState::Approved | OrderState::Scheduled) =>
                {
                    activate(&mut tx, &self.ctx.due_process, now, &actor, &mut o)
                        .await?
                        .is_some()
                }
                "order_emergency_lapse" if o.state == OrderState::InForce => {
                    // still published as an emergency (not authorised since)?
                    let basis: Option<String> =
                        sqlx::query("SELECT basis FROM order_publications WHERE order_id = $1")
                            .bind(&o.id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("basis"))
                            .transpose()?;
                    if basis.as_deref() == Some("emergency") {
                        let hours = self.ctx.due_process.emergency_max_secs / 3600;
                        end(
                            &mut tx,
                            now,
                            &actor,
                            &mut o,
                            OrderEvent::Expire,
                            &format!("lapsed: emergency order not authorised within {hours} h"),
                        )
                        .await?;
                        true
                    } else {
                        false
                    }
                }
                "order_review"
                    if !o.state.is_terminal()
                        && o.state != OrderState::Draft
                        && self.ctx.due_process.on_missed_review
                            == tapis_core::due_process::MissedReview::Escalate =>
                {
                    audit::append(
                        &mut tx,
                        now,
                        &actor,
                        "order.review_missed",
                        ("order", &o.id),
                        Value::Null,
                        json!({"review_at": o.review_at.to_string(), "escalated_to": "authoriser"}),
                    )
                    .await?;
                    crate::due_process::tell_authorisers(
                        &mut tx,
                        now,
                        "order.review_missed",
                        json!({"order_id": o.id, "review_at": o.review_at.to_string(), "state": o.state}),
                    )
                    .await?;
                    true
                }
                "order_expire" if !o.state.is_terminal() && o.state != OrderState::Draft => {
                    end(
                        &mut tx,
                        now,
                        &actor,
                        &mut o,
                        OrderEvent::Expire,
                        "expired at its end date",
                    )
                    .await?;
                    true
                }
                "order_review" if !o.state.is_terminal() && o.state != OrderState::Draft => {
                    end(
                        &mut tx,
                        now,
                        &actor,
                        &mut o,
                        OrderEvent::Expire,
                        "lapsed: its review date passed without a review",
                    )
                    .await?;
                    true
                }
                _ => false,
            };
            changed |= acted;
            sqlx::query(
                "UPDATE jobs SET state = $1, fired_at = $2 WHERE id = $3 AND state = 'pending'",
            )
            .bind(if acted { "fired" } else { "cancelled" })
            .bind(now.unix_millis())
            .bind(&job)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if changed {
            self.signal();
        }
        Ok(seen)
    }
}
