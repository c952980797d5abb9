//! What the scheduler and the delivery worker still have to do, for a
//! driver of the simulated clock (the scenario replay) that must know when
//! tapis has caught up and when the next piece of work falls due.

use sqlx::Row;
use tapis_core::Timestamp;

use crate::{Result, Store};

/// Work that is due now and when the next falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueWork {
    /// Jobs (ladder steps, order dates) and outbound messages due at or before
    /// now (including messages a worker is sending right now).
    pub due_now: i64,
    /// The earliest job or retry after now.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_due: Option<Timestamp>,
}

impl Store {
    /// Pending jobs and outbox messages: how many are due now,
    /// and when the next one after now falls due. Read-only.
    pub async fn due_work(&self) -> Result<DueWork> {
        let now = self.now().unix_millis();
        let mut due_now = 0;
        let mut next: Option<i64> = None;
        for (table, column) in [("jobs", "due_at"), ("outbox", "next_attempt_at")] {
            let row = sqlx::query(&format!(
                "SELECT \
                   (SELECT COUNT(*) FROM {table} WHERE state = 'pending' AND {column} <= $1) AS due, \
                   (SELECT MIN({column}) FROM {table} WHERE state = 'pending' AND {column} > $1) AS next"
            ))
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
            due_now += row.try_get::<i64, _>("due")?;
            if let Some(t) = row.try_get::<Option<i64>, _>("next")? {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        Ok(DueWork {
            due_now,
            next_due: next.map(Timestamp::from_unix_millis),
        })
    }
}
