//! Opening the database, migrations and the write-transaction discipline.
//!
//! Both backends run through sqlx's `Any` driver with SQL written once:
//! `$n` placeholders (SQLite accepts them), integers for times and flags,
//! text for ids and JSON. What differs by dialect lives here: migration
//! files, how a write transaction takes the audit chain's lock, and
//! connection set-up.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tapis_core::policy::SlaPolicy;
use tapis_core::sign::Signer;
use tapis_core::{Clock, Timestamp};

use crate::secrets::SecretKey;
use crate::{Error, Result};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

/// Migrations in order. Never edit one that has landed: add a new one. Each
/// is recorded with a checksum, and a changed file is refused at start-up.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "channel",
        sqlite: include_str!("../migrations/sqlite/0002_channel.sql"),
        postgres: include_str!("../migrations/postgres/0002_channel.sql"),
    },
    Migration {
        version: 3,
        name: "runtime_state",
        sqlite: include_str!("../migrations/sqlite/0003_runtime_state.sql"),
        postgres: include_str!("../migrations/postgres/0003_runtime_state.sql"),
    },
    Migration {
        version: 4,
        name: "orders",
        sqlite: include_str!("../migrations/sqlite/0004_orders.sql"),
        postgres: include_str!("../migrations/postgres/0004_orders.sql"),
    },
    Migration {
        version: 5,
        name: "isp",
        sqlite: include_str!("../migrations/sqlite/0005_isp.sql"),
        postgres: include_str!("../migrations/postgres/0005_isp.sql"),
    },
    Migration {
        version: 6,
        name: "probes",
        sqlite: include_str!("../migrations/sqlite/0006_probes.sql"),
        postgres: include_str!("../migrations/postgres/0006_probes.sql"),
    },
    Migration {
        version: 7,
        name: "zone_sync",
        sqlite: include_str!("../migrations/sqlite/0007_zone_sync.sql"),
        postgres: include_str!("../migrations/postgres/0007_zone_sync.sql"),
    },
    Migration {
        version: 8,
        name: "explanations",
        sqlite: include_str!("../migrations/sqlite/0008_explanations.sql"),
        postgres: include_str!("../migrations/postgres/0008_explanations.sql"),
    },
    Migration {
        version: 9,
        name: "due_process",
        sqlite: include_str!("../migrations/sqlite/0009_due_process.sql"),
        postgres: include_str!("../migrations/postgres/0009_due_process.sql"),
    },
    Migration {
        version: 10,
        name: "one_scheduler",
        sqlite: include_str!("../migrations/sqlite/0010_one_scheduler.sql"),
        postgres: include_str!("../migrations/postgres/0010_one_scheduler.sql"),
    },
    Migration {
        version: 11,
        name: "separation_of_powers",
        sqlite: include_str!("../migrations/sqlite/0011_separation_of_powers.sql"),
        postgres: include_str!("../migrations/postgres/0011_separation_of_powers.sql"),
    },
    Migration {
        version: 15,
        name: "token_lifetimes",
        sqlite: include_str!("../migrations/sqlite/0015_token_lifetimes.sql"),
        postgres: include_str!("../migrations/postgres/0015_token_lifetimes.sql"),
    },
    Migration {
        version: 16,
        name: "accounts",
        sqlite: include_str!("../migrations/sqlite/0016_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0016_accounts.sql"),
    },
];

/// A lock key for PostgreSQL advisory locks: every write transaction holds
/// it, so audit events get gap-free sequence numbers and each links to the
/// one before, even with several `tapis serve` processes on one database.
const AUDIT_CHAIN_LOCK: i64 = 0x7461_7069_735f_6175; // "tapis_au"

pub use tapis_core::delivery::RetryPolicy;

/// What a store is opened with besides its URL.
pub struct Options {
    pub sla: SlaPolicy,
    /// tapis's signing key; an ephemeral one when absent (tests).
    pub signer: Option<Signer>,
    pub retry: RetryPolicy,
    /// Which orders need an independent authorisation, lead times, sunsets.
    pub due_process: tapis_core::due_process::DueProcessPolicy,
    /// The key that seals secrets at rest (webhook and TSIG secrets), kept
    /// outside the database; none means they are stored in clear.
    pub secrets: SecretKey,
    /// The bounds on ISPs' transfer, NOTIFY and probe addresses, applied
    /// again when stored settings are loaded.
    pub isp_rules: tapis_core::isp::IspRules,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sla: SlaPolicy::bundled(),
            signer: None,
            retry: RetryPolicy::default(),
            due_process: Default::default(),
            secrets: SecretKey::none(),
            isp_rules: Default::default(),
        }
    }
}

pub(crate) struct Ctx {
    pub(crate) sla: SlaPolicy,
    pub(crate) signer: Signer,
    pub(crate) retry: RetryPolicy,
    pub(crate) due_process: tapis_core::due_process::DueProcessPolicy,
    pub(crate) secrets: SecretKey,
    pub(crate) isp_rules: tapis_core::isp::IspRules,
    /// Woken after a commit that put work in the outbox or on a stream.
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Bumped after a commit that appended platform events.
    pub(crate) events: tokio::sync::watch::Sender<u64>,
}

/// The store. Cheap to clone; clones share the pool, the clock, the policy
/// and the signing key.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ctx: Arc<Ctx>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Open `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite
    /// file if it does not exist, and apply pending migrations.
    /// Open with the bundled SLA policy and a fresh signing key that is
    /// published (tests, tools).
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Store> {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
        let options = Options {
            signer: Some(Signer::from_seed(seed)),
            ..Options::default()
        };
        Self::open_with(url, clock, options).await
    }

    /// Open with an explicit SLA policy, signing key and retry policy. A
    /// given signing key's public half is published in `signing_keys`;
    /// without one, the store gets an ephemeral, unpublished key (for
    /// commands that read and never sign).
    pub async fn open_with(url: &str, clock: Arc<dyn Clock>, options: Options) -> Result<Store> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::Open(
                "the database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        let pool = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path == ":memory:" {
                    return Err(Error::Open(
                        "an in-memory SQLite database cannot be shared: give a file path".into(),
                    ));
                }
                if let Some(dir) = Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Open(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer;
                            // NORMAL sync is durable across application
                            // crashes, FULL also across power loss.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
                    .connect(&format!("sqlite://{path}?mode=rwc"))
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
            }
        }
        .map_err(|e| Error::Open(format!("{} ({})", e, redact_url(url))))?;
        let publish = options.signer.is_some();
        let signer = options.signer.unwrap_or_else(|| {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
            Signer::from_seed(seed)
        });
        let store = Store {
            pool,
            backend,
            clock,
            ctx: Arc::new(Ctx {
                sla: options.sla,
                signer,
                retry: options.retry,
                due_process: options.due_process,
                secrets: options.secrets,
                isp_rules: options.isp_rules,
                wake: Arc::new(tokio::sync::Notify::new()),
                events: tokio::sync::watch::channel(0).0,
            }),
        };
        store.migrate().await?;
        if publish {
            store.publish_key().await?;
        }
        Ok(store)
    }

    pub fn sla(&self) -> &SlaPolicy {
        &self.ctx.sla
    }

    pub fn signer(&self) -> &Signer {
        &self.ctx.signer
    }

    /// The key that seals secrets at rest (none: they are in clear).
    pub fn secrets(&self) -> &SecretKey {
        &self.ctx.secrets
    }

    /// The bounds on ISPs' transfer, NOTIFY and probe addresses.
    pub fn isp_rules(&self) -> tapis_core::isp::IspRules {
        self.ctx.isp_rules
    }

    pub fn retry(&self) -> RetryPolicy {
        self.ctx.retry
    }

    /// Notified when new outbound work was committed (in this process);
    /// workers also poll for work written by other processes.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.ctx.wake.clone()
    }

    /// Changes when platform events were appended (in this process).
    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ctx.events.subscribe()
    }

    /// Tell workers and streams that a commit added work.
    pub(crate) fn signal(&self) {
        self.ctx.wake.notify_one();
        self.ctx.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.write().await?;
        // Only create the table when it is missing: a least-privileged
        // application role (see `grants`) may not create anything, and
        // PostgreSQL checks that right even for CREATE … IF NOT EXISTS.
        let exists = match self.backend {
            Backend::Postgres => {
                sqlx::query("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'")
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some()
            }
            Backend::Sqlite => false,
        };
        if !exists {
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                    checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await?;
        }
        let applied =
            sqlx::query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        let mut done = std::collections::HashMap::new();
        for row in &applied {
            let version: i64 = row.try_get("version")?;
            let checksum: String = row.try_get("checksum")?;
            done.insert(version, checksum);
        }
        if let Some(max) = done.keys().max()
            && *max > MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
        {
            return Err(Error::Migration {
                version: *max,
                message: "the database was migrated by a newer tapis; upgrade this binary".into(),
            });
        }
        for m in MIGRATIONS {
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
            match done.get(&m.version) {
                Some(c) if *c == checksum => continue,
                Some(_) => {
                    return Err(Error::Migration {
                        version: m.version,
                        message: format!(
                            "migration {} ({}) differs from the one applied to this database; \
                             landed migrations must never be edited",
                            m.version, m.name
                        ),
                    });
                }
                None => {}
            }
            tracing::info!(
                version = m.version,
                name = m.name,
                backend = self.backend.name(),
                "applying migration"
            );
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::Migration {
                    version: m.version,
                    message: e.to_string(),
                })?;
            sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                .bind(m.version)
                .bind(m.name)
                .bind(checksum)
                .bind(self.now().unix_millis())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Begin a write transaction holding the audit chain's lock. On SQLite
    /// `BEGIN IMMEDIATE` takes the database write lock up front, so a
    /// transaction never fails half-way on a lock upgrade.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                    .bind(AUDIT_CHAIN_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Run raw SQL outside the application's rules. Only for tests that
    /// play an attacker with database access.
    #[cfg(feature = "testing")]
    pub async fn raw_execute(&self, sql: &str) -> Result<u64> {
        Ok(sqlx::raw_sql(sql)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

impl Store {
    /// A named runtime value (e.g. `simulated_now`).
    pub async fn runtime_value(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM runtime_state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    pub async fn set_runtime_value(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO runtime_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Check that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 AS one").fetch_one(&self.pool).await?;
        Ok(())
    }
}

/// A database URL with any password removed, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
