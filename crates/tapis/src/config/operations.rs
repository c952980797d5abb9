//! Operations settings: database session and pool timeouts, what
//! `/readyz` demands, who may read `/metrics`, and the ownership lease that
//! picks the one process running the scheduler, NOTIFY and probes.

use anyhow::bail;
use serde::Deserialize;

/// Timeouts on every database session and on the connection pool: a stuck
/// session or an outage becomes a prompt 503, never a hang.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// PostgreSQL `statement_timeout` (0: none).
    pub statement_timeout_ms: u64,
    /// PostgreSQL `lock_timeout`, the audit chain's lock included (0: none).
    pub lock_timeout_ms: u64,
    /// PostgreSQL `idle_in_transaction_session_timeout`: the server ends a
    /// session left idle in a transaction, releasing its locks (0: none).
    pub idle_in_transaction_timeout_ms: u64,
    /// Longest wait for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// SQLite `busy_timeout`: longest wait for the write lock.
    pub sqlite_busy_timeout_ms: u64,
    /// PostgreSQL server-side TCP keepalive idle time (seconds).
    pub keepalive_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        let t = tapis_store::Timeouts::default();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        DatabaseSettings {
            statement_timeout_ms: ms(t.statement),
            lock_timeout_ms: ms(t.lock),
            idle_in_transaction_timeout_ms: ms(t.idle_in_transaction),
            acquire_timeout_ms: ms(t.acquire),
            sqlite_busy_timeout_ms: ms(t.sqlite_busy),
            keepalive_secs: t.keepalive_idle.as_secs(),
        }
    }
}

impl DatabaseSettings {
    pub fn timeouts(&self) -> tapis_store::Timeouts {
        use std::time::Duration;
        tapis_store::Timeouts {
            statement: Duration::from_millis(self.statement_timeout_ms),
            lock: Duration::from_millis(self.lock_timeout_ms),
            idle_in_transaction: Duration::from_millis(self.idle_in_transaction_timeout_ms),
            acquire: Duration::from_millis(self.acquire_timeout_ms),
            sqlite_busy: Duration::from_millis(self.sqlite_busy_timeout_ms),
            keepalive_idle: Duration::from_secs(self.keepalive_secs),
        }
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        const DAY_MS: u64 = 86_400_000;
        for (name, v) in [
            ("statement_timeout_ms", self.statement_timeout_ms),
            ("lock_timeout_ms", self.lock_timeout_ms),
            (
                "idle_in_transaction_timeout_ms",
                self.idle_in_transaction_timeout_ms,
            ),
        ] {
            if v > DAY_MS {
                bail!("database.{name} must be at most {DAY_MS} (a day); 0 turns it off");
            }
        }
        if !(100..=600_000).contains(&self.acquire_timeout_ms) {
            bail!("database.acquire_timeout_ms must be between 100 and 600000");
        }
        if !(1..=600_000).contains(&self.sqlite_busy_timeout_ms) {
            bail!("database.sqlite_busy_timeout_ms must be between 1 and 600000");
        }
        if !(1..=7200).contains(&self.keepalive_secs) {
            bail!("database.keepalive_secs must be between 1 and 7200");
        }
        Ok(())
    }
}

/// What `/readyz` demands.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// The audit chain's lock must be taken and released within this.
    pub ready_lock_timeout_ms: u64,
    /// The scheduler and delivery loops must have run within this.
    pub ready_loop_stale_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            ready_lock_timeout_ms: 2000,
            ready_loop_stale_secs: 30,
        }
    }
}

impl HealthSettings {
    pub fn readiness(&self) -> tapis_http::health::Readiness {
        tapis_http::health::Readiness {
            lock_deadline: std::time::Duration::from_millis(self.ready_lock_timeout_ms),
            loop_stale_after: std::time::Duration::from_secs(self.ready_loop_stale_secs),
        }
    }
}

/// Who may read `GET /metrics` without a token.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Networks (CIDR, e.g. `127.0.0.1/32`, `10.0.5.0/24`) whose callers
    /// may read metrics without a token. Empty by default: only admin and
    /// auditor tokens may. Behind a reverse proxy on this host, do not
    /// list loopback (every request would come from it).
    pub allow_from: Vec<String>,
}

impl MetricsSettings {
    pub fn allow_from(&self) -> anyhow::Result<Vec<tapis_core::isp::IpNet>> {
        self.allow_from
            .iter()
            .map(|n| {
                tapis_core::isp::IpNet::parse("metrics.allow_from", n.trim())
                    .map_err(|e| anyhow::anyhow!("{e} (e.g. 127.0.0.1/32 or 10.0.5.0/24)"))
            })
            .collect()
    }
}

/// Which process owns the scheduler, NOTIFY and probes when several share
/// one database: a lease in the database that the owner renews.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OwnershipSettings {
    /// How long a renewal holds the lease (ms): a frozen, crashed or cut
    /// off owner loses it at most this long after its last renewal.
    pub lease_ms: u64,
    /// How often the owner renews and the others try to take over (ms).
    pub renew_ms: u64,
    /// Database connections of the scheduler's own (besides the shared
    /// pool), so that HTTP and delivery load cannot starve it.
    pub scheduler_connections: u32,
}

impl Default for OwnershipSettings {
    fn default() -> Self {
        OwnershipSettings {
            lease_ms: 5000,
            renew_ms: 1000,
            scheduler_connections: 2,
        }
    }
}
