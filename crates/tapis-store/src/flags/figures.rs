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
    /// The figures over the policy's window (the last `window_days`), on
    /// which `review_needed` is decided.
    pub window: WindowFigures,
    /// Below the accuracy policy over its window: the status should be
    /// reviewed.
    pub review_needed: bool,
    pub policy: tapis_core::flag::AccuracyPolicy,
    pub trusted_flagger_grants: Vec<crate::TrustedGrant>,
}

/// Figures over the accuracy policy's window.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowFigures {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub to: Timestamp,
    pub figures: tapis_core::flag::FlaggerFigures,
    pub acceptance_rate: Option<f64>,
}

/// The authority's own issuers' accuracy: per person who issued notices
/// (a machine credential: its label), what the platforms decided on the
/// items and how disputes and appeals ended.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuerFigures {
    pub issuer: String,
    pub notices: u64,
    /// Items removed, restricted or geo-blocked.
    pub items_actioned: u64,
    /// Items the platform rejected.
    pub items_rejected: u64,
    /// Items withdrawn by the authority (after a dispute or an appeal).
    pub items_withdrawn: u64,
    /// Items awaiting a decision (pending or disputed).
    pub items_pending: u64,
    /// Any other final decision.
    pub items_other: u64,
    /// Actioned share of actioned and rejected; `None` before any.
    pub platform_action_rate: Option<f64>,
    pub disputes: u64,
    /// Disputes the authority answered by withdrawing the item.
    pub disputes_withdrawn: u64,
    pub appeals: u64,
    /// Appeals upheld (decided against the notice).
    pub appeals_upheld: u64,
}

/// The most issuers one report lists.
const MAX_ISSUERS: usize = 1000;

fn count(r: &AnyRow) -> Result<u64> {
    Ok(r.try_get::<i64, _>("n")?.max(0) as u64)
}

impl Store {
    async fn flagger_figures(
        &self,
        flagger: PartyId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<tapis_core::flag::FlaggerFigures> {
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
            let n = count(&r)?;
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
            let n = count(&r)?;
            match ItemState::parse(&r.try_get::<String, _>("state")?).map_err(Error::corrupt)? {
                ItemState::Removed | ItemState::Restricted | ItemState::GeoBlocked => {
                    f.items_actioned += n;
                }
                ItemState::Rejected => f.items_rejected += n,
                ItemState::Pending | ItemState::Disputed => f.items_pending += n,
                _ => f.items_other += n,
            }
        }
        Ok(f)
    }

    /// A flagger's figures for flags received in `[from, to)`, its
    /// figures over the policy's window ending now (which decide
    /// `review_needed`), and its grants. The caller checks who may read it.
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
        let f = self.flagger_figures(flagger, from, to).await?;
        let now = self.now();
        let since = Timestamp::from_unix_millis(
            now.unix_millis() - i64::from(policy.window_days) * 86_400_000,
        );
        // the window ends just after now: a flag received this millisecond counts
        let until = Timestamp::from_unix_millis(now.unix_millis() + 1);
        let w = self.flagger_figures(flagger, since, until).await?;
        let grants = self.trusted_flagger_grants(Some(flagger)).await?;
        Ok(FlaggerReport {
            flagger_id: flagger,
            name: party.name,
            year,
            acceptance_rate: f.acceptance_rate(),
            platform_action_rate: f.platform_action_rate(),
            figures: f,
            review_needed: policy.needs_review(&w),
            window: WindowFigures {
                from: since,
                to: now,
                acceptance_rate: w.acceptance_rate(),
                figures: w,
            },
            policy,
            trusted_flagger_grants: grants,
        })
    }

    /// Per issuer of notices submitted in `[from, to)`: the platforms'
    /// decisions on their items, disputes and appeals. Authority staff
    /// only (the caller checks).
    pub async fn issuer_figures(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<IssuerFigures>> {
        let mut conn = self.pool.acquire().await?;
        let who = "COALESCE(t.person, n.issuer_label)";
        let mut by: std::collections::BTreeMap<String, IssuerFigures> = Default::default();
        fn entry(
            by: &mut std::collections::BTreeMap<String, IssuerFigures>,
            name: String,
        ) -> Option<&mut IssuerFigures> {
            if by.len() >= MAX_ISSUERS && !by.contains_key(&name) {
                return None;
            }
            Some(by.entry(name.clone()).or_insert_with(|| IssuerFigures {
                issuer: name,
                notices: 0,
                items_actioned: 0,
                items_rejected: 0,
                items_withdrawn: 0,
                items_pending: 0,
                items_other: 0,
                platform_action_rate: None,
                disputes: 0,
                disputes_withdrawn: 0,
                appeals: 0,
                appeals_upheld: 0,
            }))
        }
        let base = "FROM notices n LEFT JOIN tokens t ON t.id = n.issuer_token_id \
             WHERE n.created_at >= $1 AND n.created_at < $2";
        let (f, t) = (from.unix_millis(), to.unix_millis());
        for r in sqlx::query(&format!(
            "SELECT {who} AS who, COUNT(*) AS n {base} GROUP BY {who}"
        ))
        .bind(f)
        .bind(t)
        .fetch_all(&mut *conn)
        .await?
        {
            if let Some(e) = entry(&mut by, r.try_get("who")?) {
                e.notices += count(&r)?;
            }
        }
        for r in sqlx::query(&format!(
            "SELECT {who} AS who, i.state AS state, COUNT(*) AS n \
             FROM notices n LEFT JOIN tokens t ON t.id = n.issuer_token_id \
             JOIN notice_items i ON i.notice_id = n.id \
             WHERE n.created_at >= $1 AND n.created_at < $2 GROUP BY {who}, i.state"
        ))
        .bind(f)
        .bind(t)
        .fetch_all(&mut *conn)
        .await?
        {
            let n = count(&r)?;
            let state =
                ItemState::parse(&r.try_get::<String, _>("state")?).map_err(Error::corrupt)?;
            if let Some(e) = entry(&mut by, r.try_get("who")?) {
                match state {
                    ItemState::Removed | ItemState::Restricted | ItemState::GeoBlocked => {
                        e.items_actioned += n;
                    }
                    ItemState::Rejected => e.items_rejected += n,
                    ItemState::Withdrawn => e.items_withdrawn += n,
                    ItemState::Pending | ItemState::Disputed => e.items_pending += n,
                    _ => e.items_other += n,
                }
            }
        }
        for (table, lost) in [("disputes", "withdrawn"), ("appeals", "upheld")] {
            for r in sqlx::query(&format!(
                "SELECT {who} AS who, x.state AS state, COUNT(*) AS n \
                 FROM notices n LEFT JOIN tokens t ON t.id = n.issuer_token_id \
                 JOIN {table} x ON x.notice_id = n.id \
                 WHERE n.created_at >= $1 AND n.created_at < $2 GROUP BY {who}, x.state"
            ))
            .bind(f)
            .bind(t)
            .fetch_all(&mut *conn)
            .await?
            {
                let n = count(&r)?;
                let state: String = r.try_get("state")?;
                if let Some(e) = entry(&mut by, r.try_get("who")?) {
                    let (all, against) = if table == "disputes" {
                        (&mut e.disputes, &mut e.disputes_withdrawn)
                    } else {
                        (&mut e.appeals, &mut e.appeals_upheld)
                    };
                    *all += n;
                    if state == lost {
                        *against += n;
                    }
                }
            }
        }
        Ok(by
            .into_values()
            .map(|mut e| {
                let d = e.items_actioned + e.items_rejected;
                e.platform_action_rate = (d > 0).then(|| e.items_actioned as f64 / d as f64);
                e
            })
            .collect())
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
