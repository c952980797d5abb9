//! Figures about flags: a flagger's yearly report (flags, acceptance at
//! review, the platforms' decisions on its items, its grants, whether its
//! accuracy calls its status into review) and the authority's own queue
//! health (flags waiting, the oldest's age, reviews per person per day).

use super::*;

/// A flagger's yearly report (in the spirit of DSA Art. 22(3)).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggerReport {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub flagger_id: PartyId,
    pub name: String,
    pub year: i32,
    pub figures: tapis_core::flag::FlaggerFigures,
    pub acceptance_rate: Option<f64>,
    pub platform_action_rate: Option<f64>,
    /// Below the accuracy policy: the status should be reviewed.
    pub review_needed: bool,
    pub policy: tapis_core::flag::AccuracyPolicy,
    pub trusted_flagger_grants: Vec<crate::TrustedGrant>,
}

impl Store {
    /// A flagger's figures for flags received in `[from, to)`, and its
    /// grants. The caller checks who may read it.
    pub async fn flagger_report(
        &self,
        flagger: PartyId,
        year: i32,
        from: Timestamp,
        to: Timestamp,
        policy: tapis_core::flag::AccuracyPolicy,
    ) -> Result<FlaggerReport> {
        let party = self.get_party(flagger).await?;
        if party.kind != PartyKind::Flagger {
            return Err(Error::NotFound("flagger"));
        }
        let mut conn = self.pool.acquire().await?;
        let mut f = tapis_core::flag::FlaggerFigures::default();
        for r in sqlx::query(
            "SELECT state, COUNT(*) AS n FROM flags WHERE party_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY state",
        )
        .bind(flagger.to_string())
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .fetch_all(&mut *conn)
        .await?
        {
            let n = r.try_get::<i64, _>("n")?.max(0) as u64;
            f.flags += n;
            match FlagState::parse(&r.try_get::<String, _>("state")?).map_err(Error::corrupt)? {
                FlagState::Received => f.received += n,
                FlagState::Accepted => f.accepted += n,
                FlagState::Merged => f.merged += n,
                FlagState::Rejected => f.rejected += n,
            }
        }
        for r in sqlx::query(
            "SELECT i.state, COUNT(*) AS n FROM flags f JOIN flag_targets t ON t.flag_id = f.id \
             JOIN notice_items i ON i.notice_id = f.notice_id AND i.kind = t.kind AND i.normalized = t.normalized \
             WHERE f.party_id = $1 AND f.created_at >= $2 AND f.created_at < $3 GROUP BY i.state",
        )
        .bind(flagger.to_string())
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .fetch_all(&mut *conn)
        .await?
        {
            let n = r.try_get::<i64, _>("n")?.max(0) as u64;
            match ItemState::parse(&r.try_get::<String, _>("state")?).map_err(Error::corrupt)? {
                ItemState::Removed | ItemState::Restricted | ItemState::GeoBlocked => {
                    f.items_actioned += n;
                }
                ItemState::Rejected => f.items_rejected += n,
                ItemState::Pending | ItemState::Disputed => f.items_pending += n,
                _ => f.items_other += n,
            }
        }
        drop(conn);
        let grants = self.trusted_flagger_grants(Some(flagger)).await?;
        Ok(FlaggerReport {
            flagger_id: flagger,
            name: party.name,
            year,
            acceptance_rate: f.acceptance_rate(),
            platform_action_rate: f.platform_action_rate(),
            review_needed: policy.needs_review(&f),
            figures: f,
            policy,
            trusted_flagger_grants: grants,
        })
    }
}

/// One person's reviews of flags over the window.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewerLoad {
    /// The person on the officer's token (a machine credential: its label).
    pub person: String,
    pub reviews: u64,
    pub per_day: f64,
}

/// The authority's own queue health.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueHealth {
    /// Flags waiting for review.
    pub waiting: u64,
    /// Seconds the oldest waiting flag has waited.
    pub oldest_waiting_secs: Option<i64>,
    /// The window the reviews are counted over, in days.
    pub window_days: u32,
    pub reviewers: Vec<ReviewerLoad>,
}

impl Store {
    /// Flags waiting, the oldest's age, and reviews per person per day
    /// over the last `window_days`.
    pub async fn flag_queue_health(&self, window_days: u32) -> Result<QueueHealth> {
        let now = self.now();
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM flags WHERE state = 'received'",
        )
        .fetch_one(&mut *conn)
        .await?;
        let waiting = row.try_get::<i64, _>("n")?.max(0) as u64;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let since = now.unix_millis() - i64::from(window_days) * 86_400_000;
        let rows = sqlx::query(
            "SELECT COALESCE(t.person, t.label, f.decided_by) AS who, COUNT(*) AS n FROM flags f \
             LEFT JOIN tokens t ON t.id = f.decided_by \
             WHERE f.decided_at IS NOT NULL AND f.decided_at >= $1 \
             GROUP BY COALESCE(t.person, t.label, f.decided_by) ORDER BY COUNT(*) DESC, 1",
        )
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        let reviewers = rows
            .iter()
            .map(|r| {
                let reviews = r.try_get::<i64, _>("n")?.max(0) as u64;
                Ok(ReviewerLoad {
                    person: r.try_get("who")?,
                    reviews,
                    per_day: reviews as f64 / f64::from(window_days.max(1)),
                })
            })
            .collect::<Result<_>>()?;
        Ok(QueueHealth {
            waiting,
            oldest_waiting_secs: oldest.map(|o| (now.unix_millis() - o) / 1000),
            window_days,
            reviewers,
        })
    }
}
