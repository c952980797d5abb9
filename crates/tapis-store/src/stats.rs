//! Read-only figures for the web interface: the authority's dashboard
//! counts and the public transparency report. Nothing here changes state.
//!
//! Counts are done by SQL; the report's per-month and per-platform
//! distributions are computed in Rust from one narrow scan of submitted
//! notices (three to five integer columns each), which is fine for the
//! report's scale today; a materialised table is the next step when
//! notices run into the millions.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use tapis_core::Timestamp;

use crate::{Result, Store};

/// The authority's dashboard counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DashboardCounts {
    /// Notices per state (drafts included).
    pub by_state: Vec<(String, i64)>,
    /// Open notices past their deadline.
    pub overdue: i64,
    /// Open notices due within the next hour.
    pub due_within_hour: i64,
    /// Escalations waiting for a decision.
    pub escalations_open: i64,
    /// Orders per state.
    pub orders_by_state: Vec<(String, i64)>,
    /// Orders in force whose expiry falls within seven days.
    pub orders_ending_soon: i64,
}

/// One platform's line in the transparency report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlatformFigures {
    pub platform_id: String,
    pub name: String,
    pub notices: i64,
    /// Milliseconds from delivery to acknowledgement, sorted.
    pub to_acknowledge_ms: Vec<i64>,
    /// Milliseconds from delivery to the first item decision, sorted.
    pub to_act_ms: Vec<i64>,
}

/// The public transparency report's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transparency {
    /// Submitted notices per category.
    pub by_category: BTreeMap<String, i64>,
    /// Submitted notices per month (`YYYY-MM`, UTC).
    pub by_month: BTreeMap<String, i64>,
    pub platforms: Vec<PlatformFigures>,
}

/// The value at quantile `q` (0..=1) of sorted values, by nearest rank.
pub fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

const OPEN: &str = "('submitted', 'delivered', 'acknowledged', 'escalated', 'disputed')";

impl Store {
    pub async fn dashboard_counts(&self) -> Result<DashboardCounts> {
        let now = self.now().unix_millis();
        let mut c = DashboardCounts::default();
        for r in
            sqlx::query("SELECT state, COUNT(*) AS n FROM notices GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?
        {
            c.by_state.push((r.try_get("state")?, r.try_get("n")?));
        }
        let one = |sql: String| async move {
            let r = sqlx::query(&sql).bind(now).fetch_one(&self.pool).await?;
            Ok::<i64, crate::Error>(r.try_get("n")?)
        };
        c.overdue = one(format!(
            "SELECT COUNT(*) AS n FROM notices WHERE state IN {OPEN} AND due_at < $1"
        ))
        .await?;
        c.due_within_hour = one(format!(
            "SELECT COUNT(*) AS n FROM notices WHERE state IN {OPEN} AND due_at >= $1 AND due_at < $1 + 3600000"
        ))
        .await?;
        c.escalations_open =
            sqlx::query("SELECT COUNT(*) AS n FROM escalations WHERE state = 'open'")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        c.orders_ending_soon = one(
            "SELECT COUNT(*) AS n FROM orders WHERE state = 'in_force' AND expires_at < $1 + 604800000"
                .to_owned(),
        )
        .await?;
        for r in
            sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?
        {
            c.orders_by_state
                .push((r.try_get("state")?, r.try_get("n")?));
        }
        Ok(c)
    }

    /// The transparency report's figures over every submitted notice.
    pub async fn transparency(&self) -> Result<Transparency> {
        let mut t = Transparency::default();
        let mut platforms: BTreeMap<String, PlatformFigures> = BTreeMap::new();
        let rows = sqlx::query(
            "SELECT n.category, n.platform_id, p.name, n.created_at, n.delivered_at, n.acknowledged_at, \
             (SELECT MIN(i.decided_at) FROM notice_items i WHERE i.notice_id = n.id) AS first_decision \
             FROM notices n JOIN parties p ON p.id = n.platform_id WHERE n.state <> 'draft'",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let category: String = r.try_get("category")?;
            *t.by_category.entry(category).or_default() += 1;
            let created = Timestamp::from_unix_millis(r.try_get("created_at")?);
            let month = created.to_string().get(..7).unwrap_or("?").to_owned();
            *t.by_month.entry(month).or_default() += 1;
            let id: String = r.try_get("platform_id")?;
            let f = platforms
                .entry(id.clone())
                .or_insert_with(|| PlatformFigures {
                    platform_id: id,
                    ..Default::default()
                });
            f.name = r.try_get("name")?;
            f.notices += 1;
            let delivered: Option<i64> = r.try_get("delivered_at")?;
            if let Some(d) = delivered {
                if let Some(a) = r.try_get::<Option<i64>, _>("acknowledged_at")? {
                    f.to_acknowledge_ms.push((a - d).max(0));
                }
                if let Some(a) = r.try_get::<Option<i64>, _>("first_decision")? {
                    f.to_act_ms.push((a - d).max(0));
                }
            }
        }
        for f in platforms.values_mut() {
            f.to_acknowledge_ms.sort_unstable();
            f.to_act_ms.sort_unstable();
        }
        t.platforms = platforms.into_values().collect();
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_by_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.9), Some(7));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(quantile(&v, 0.5), Some(5));
        assert_eq!(quantile(&v, 0.9), Some(9));
        assert_eq!(quantile(&v, 1.0), Some(10));
    }
}
