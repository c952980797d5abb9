//! The platform event stream: every platform-facing event, numbered per
//! party, read by clients that poll or listen (SSE). A client that resumes
//! after an event confirms it, and a confirmed `notice.submitted` is
//! delivery.

use super::*;

/// An event on a platform's stream (and in its webhooks).
#[derive(Debug, Clone, Serialize)]
pub struct PlatformEvent {
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub notice_id: Option<String>,
    pub payload: Value,
}

impl Store {
    /// A platform's stream events after `after` (exclusive), oldest first.
    pub async fn platform_events(
        &self,
        party: PartyId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PlatformEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT seq, id, event_type, notice_id, payload FROM platform_events WHERE party_id = $1 AND seq > $2 ORDER BY seq LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(party.to_string())
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PlatformEvent {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    notice_id: r.try_get("notice_id")?,
                    payload: serde_json::from_str(&r.try_get::<String, _>("payload")?)
                        .map_err(Error::corrupt)?,
                })
            })
            .collect()
    }

    /// The client confirmed every event up to `seq` (by resuming after it):
    /// the notices those events carried are delivered.
    pub async fn confirm_stream(&self, by: &Principal, seq: i64) -> Result<u32> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT e.notice_id FROM platform_events e JOIN notices n ON n.id = e.notice_id \
             WHERE e.party_id = $1 AND e.seq <= $2 AND e.event_type = 'notice.submitted' AND n.state = 'submitted'",
        )
        .bind(by.party_id.to_string())
        .bind(seq)
        .fetch_all(&mut *tx)
        .await?;
        let now = self.now();
        let mut n = 0;
        for row in rows {
            let id =
                NoticeId::parse(&row.try_get::<String, _>("notice_id")?).map_err(Error::corrupt)?;
            let mut notice = load_notice(&mut tx, id).await?;
            mark_delivered_tx(
                &mut tx,
                &self.ctx,
                now,
                &by.actor(),
                &mut notice,
                "event stream (client confirmed)",
            )
            .await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }
}
