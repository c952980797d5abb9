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

use crate::liveness::Liveness;
use crate::metrics::LockWaits;
use crate::secrets::SecretKey;
use crate::{Error, Result};

mod backend;
pub use backend::Backend;

pub(crate) mod migrations;
pub(crate) use migrations::MIGRATIONS;

/// A lock key for PostgreSQL advisory locks: every write transaction holds
/// it, so audit events get gap-free sequence numbers and each links to the
/// one before, even with several `tapis serve` processes on one database.
pub const AUDIT_CHAIN_LOCK: i64 = 0x7461_7069_735f_6175; // "tapis_au"

pub use tapis_core::delivery::RetryPolicy;

/// Bounds on every database session and on the pool, so that a stuck
/// session, a held lock or an outage turns into a prompt, retryable error
/// (HTTP 503) instead of a request that hangs. A zero PostgreSQL timeout
/// turns that timeout off (not recommended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// PostgreSQL `statement_timeout`: the longest one statement may run.
    pub statement: Duration,
    /// PostgreSQL `lock_timeout`: the longest a statement waits for a lock,
    /// the audit chain's advisory lock included.
    pub lock: Duration,
    /// PostgreSQL `idle_in_transaction_session_timeout`: a session that
    /// sits in an open transaction this long is ended by the server, which
    /// releases every lock it held (the chain lock of a client that
    /// vanished mid-transaction).
    pub idle_in_transaction: Duration,
    /// The longest a request waits for a pooled connection.
    pub acquire: Duration,
    /// SQLite `busy_timeout`: the longest a writer waits for the database
    /// write lock (SQLite's chain lock).
    pub sqlite_busy: Duration,
    /// PostgreSQL server-side TCP keepalives (`tcp_keepalives_idle`, then
    /// probes every `idle / 3` seconds, 3 probes; `tcp_user_timeout` is the
    /// same total): how soon the server notices a client that vanished.
    pub keepalive_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            statement: Duration::from_secs(30),
            lock: Duration::from_secs(10),
            idle_in_transaction: Duration::from_secs(5),
            acquire: Duration::from_secs(5),
            sqlite_busy: Duration::from_secs(10),
            keepalive_idle: Duration::from_secs(10),
        }
    }
}

impl Timeouts {
    /// The session settings tapis puts on every PostgreSQL connection: the
    /// timeouts (which must take) and the keepalives (best effort: a
    /// server on a platform without `TCP_USER_TIMEOUT` refuses that one).
    fn postgres_session_sql(&self, set_application_name: bool) -> (String, String) {
        let ms = |d: Duration| d.as_millis().min(i32::MAX as u128);
        let mut timeouts = format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; \
             SET idle_in_transaction_session_timeout = {};",
            ms(self.statement),
            ms(self.lock),
            ms(self.idle_in_transaction),
        );
        if set_application_name {
            timeouts.push_str(" SET application_name = 'tapis';");
        }
        let idle = self.keepalive_idle.as_secs().clamp(1, 7200);
        let interval = (idle / 3).max(1);
        let keepalives = format!(
            "SET tcp_keepalives_idle = {idle}; SET tcp_keepalives_interval = {interval}; \
             SET tcp_keepalives_count = 3; SET tcp_user_timeout = {};",
            (idle + 3 * interval) * 1000
        );
        (timeouts, keepalives)
    }

    /// How long `Store::write` may take to get the chain lock, pool wait
    /// included, before it gives up on its own: the server's lock timeout
    /// normally answers first; this bounds a connection whose server went
    /// silent (a cut network) too.
    fn write_deadline(&self, backend: Backend) -> Duration {
        let lock = match backend {
            Backend::Postgres if self.lock.is_zero() => self.statement,
            Backend::Postgres => self.lock,
            Backend::Sqlite => self.sqlite_busy,
        };
        self.acquire + lock + Duration::from_secs(2)
    }
}

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
    /// How long an ISP's previous TSIG key keeps verifying after it rotates
    /// (seconds; `rpz.tsig_grace_hours`).
    pub tsig_grace_secs: i64,
    /// Session and pool timeouts.
    pub timeouts: Timeouts,
    /// This process's stable identity (the data directory's `instance-id`):
    /// outbox leases are taken in its name, so a restarted process takes
    /// its own leases back at once. None: a fresh identity per open.
    pub instance_id: Option<String>,
    /// The transparency log's origin and accepted witnesses.
    pub log: crate::tlog::LogOptions,
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
            tsig_grace_secs: crate::isp::TSIG_GRACE_SECS,
            timeouts: Timeouts::default(),
            instance_id: None,
            log: Default::default(),
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
    pub(crate) tsig_grace_secs: i64,
    pub(crate) instance_id: String,
    /// Woken after a commit that put work in the outbox or on a stream.
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Bumped after a commit that appended platform events.
    pub(crate) events: tokio::sync::watch::Sender<u64>,
    pub(crate) timeouts: Timeouts,
    /// This process's loops' heartbeats (for readiness).
    pub(crate) liveness: Liveness,
    /// How long write transactions waited for the chain lock.
    pub(crate) lock_waits: LockWaits,
    /// Ownership lease and shared simulated clock (`lease.rs`).
    pub(crate) runtime: crate::lease::Runtime,
    /// The transparency log's origin and witnesses.
    pub(crate) log: crate::tlog::LogOptions,
    /// SQLite: the one connection every write transaction of this process
    /// goes through, whichever pool the store uses ([`Store::writer`]).
    pub(crate) sqlite_writer: Option<AnyPool>,
}

/// The store. Cheap to clone; clones share the pool, the clock, the policy
/// and the signing key.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ctx: Arc<Ctx>,
    /// Writes waiting to share a transaction (`group_commit.rs`); one
    /// queue per pool.
    pub(crate) group: Arc<crate::group_commit::GroupCommit>,
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
                let busy_ms = options
                    .timeouts
                    .sqlite_busy
                    .as_millis()
                    .min(i32::MAX as u128);
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(options.timeouts.acquire)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer;
                            // NORMAL sync is durable across application
                            // crashes, FULL also across power loss.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&format!("sqlite://{path}?mode=rwc"))
                    .await
            }
            Backend::Postgres => {
                // every session gets tapis's timeouts and keepalives, and
                // is named `tapis` in pg_stat_activity unless the URL names
                // it otherwise
                let (timeouts, keepalives) = options
                    .timeouts
                    .postgres_session_sql(!url.contains("application_name="));
                let session: Arc<(String, String)> = Arc::new((timeouts, keepalives));
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(options.timeouts.acquire)
                    .after_connect(move |conn, _| {
                        let session = session.clone();
                        Box::pin(async move {
                            // no arguments: the simple query protocol, which
                            // runs several statements in one round trip
                            conn.execute(session.0.as_str()).await?;
                            if let Err(e) = conn.execute(session.1.as_str()).await {
                                tracing::warn!(error = %e, "the database refused TCP keepalive settings; relying on idle_in_transaction_session_timeout");
                            }
                            Ok(())
                        })
                    })
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
        // SQLite has one writer at a time; writers that meet its lock wait
        // in its busy handler, which sleeps and retries and so can lose to
        // a busier writer for seconds. One connection for every write, in
        // a fair (first come, first served) queue, turns that into a plain
        // wait in line.
        let sqlite_writer = (backend == Backend::Sqlite).then(|| {
            pool.options()
                .clone()
                .max_connections(1)
                .min_connections(0)
                .connect_lazy_with((*pool.connect_options()).clone())
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
                tsig_grace_secs: options.tsig_grace_secs,
                instance_id: options
                    .instance_id
                    .unwrap_or_else(|| format!("worker-{}", uuid::Uuid::now_v7().simple())),
                wake: Arc::new(tokio::sync::Notify::new()),
                events: tokio::sync::watch::channel(0).0,
                timeouts: options.timeouts,
                liveness: Liveness::default(),
                lock_waits: LockWaits::default(),
                runtime: Default::default(),
                log: options.log,
                sqlite_writer,
            }),
            group: Default::default(),
        };
        store.migrate().await?;
        // a log that cannot be completed must not keep `tapis log verify`
        // (which says why) from opening the database; appends then fail
        if let Err(e) = store.backfill_log().await {
            tracing::error!(error = %e, "the transparency log's leaves cannot be completed from the audit events");
        }
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

    /// The identity outbox leases are taken in (see `Options::instance_id`).
    pub fn instance_id(&self) -> &str {
        &self.ctx.instance_id
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

    /// The session and pool timeouts this store was opened with.
    pub fn timeouts(&self) -> Timeouts {
        self.ctx.timeouts
    }

    /// This process's loops' heartbeats, shared by every clone.
    pub fn liveness(&self) -> &Liveness {
        &self.ctx.liveness
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.ctx.sqlite_writer {
            writer.close().await;
        }
        self.pool.close().await;
    }

    /// Whether every migration is applied as shipped, read without the
    /// chain lock (any error: not known to be, and `migrate` decides).
    async fn migrations_current(&self) -> bool {
        let Ok(rows) = sqlx::query("SELECT version, checksum FROM schema_migrations")
            .fetch_all(&self.pool)
            .await
        else {
            return false;
        };
        let mut done = std::collections::HashMap::new();
        for row in &rows {
            let (Ok(v), Ok(c)) = (
                row.try_get::<i64, _>("version"),
                row.try_get::<String, _>("checksum"),
            ) else {
                return false;
            };
            done.insert(v, c);
        }
        done.len() == MIGRATIONS.len()
            && MIGRATIONS.iter().all(|m| {
                let sql = match self.backend {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                };
                done.get(&m.version) == Some(&hex::encode(Sha256::digest(sql.as_bytes())))
            })
    }

    async fn migrate(&self) -> Result<()> {
        // An up-to-date database needs no chain lock: commands that only
        // read (`tapis audit verify`) then start even while a writer holds
        // the lock.
        if self.migrations_current().await {
            return Ok(());
        }
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            // a migration may rightly run longer than any request
            tx.execute("SET LOCAL statement_timeout = 0").await?;
        }
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
    ///
    /// The wait is bounded: by the pool's acquire timeout, the server's
    /// `lock_timeout` (SQLite: `busy_timeout`) and, should the server go
    /// silent, a deadline of our own; each ends in an error that
    /// `Error::is_unavailable` recognises. How long the lock took is
    /// recorded (`lock_waits`). Hold the transaction only for its own
    /// statements: no network calls, no waiting on other tasks.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Any>> {
        let started = std::time::Instant::now();
        let deadline = self.ctx.timeouts.write_deadline(self.backend);
        let locked = tokio::time::timeout(deadline, self.begin_locked()).await;
        let waited = started.elapsed();
        self.ctx
            .lock_waits
            .observe(waited, matches!(locked, Ok(Ok(_))));
        match locked {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable {
                why: crate::error::Unavailability::LockTimeout,
                detail: format!(
                    "the audit chain's lock was not obtained within {} ms",
                    deadline.as_millis()
                ),
            }),
        }
    }

    /// The pool a write transaction's connection comes from: on SQLite the
    /// process's one writer connection (fair queue), else the store's pool.
    pub(crate) fn writer(&self) -> &AnyPool {
        self.ctx.sqlite_writer.as_ref().unwrap_or(&self.pool)
    }

    async fn begin_locked(&self) -> Result<Transaction<'static, Any>> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.writer().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                    .bind(AUDIT_CHAIN_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                tx
            }
        };
        // a simulated clock shared by several processes: catch up under
        // the lock, so audit times never run backwards (shared_clock.rs)
        self.follow_shared_clock_in(&mut tx).await?;
        Ok(tx)
    }

    /// Whether this process can write now: take the audit chain's lock
    /// (SQLite: the write lock) and release it, within `deadline`. Returns
    /// how long it took; the error says why not.
    pub async fn check_writable(&self, deadline: Duration) -> Result<Duration> {
        let started = std::time::Instant::now();
        let ms = deadline.as_millis().clamp(1, i32::MAX as u128);
        let attempt = async {
            let mut conn = self.pool.acquire().await?;
            match self.backend {
                Backend::Sqlite => {
                    conn.execute(format!("PRAGMA busy_timeout = {ms}").as_str())
                        .await?;
                    let r = match sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await
                    {
                        Ok(tx) => tx.rollback().await,
                        Err(e) => Err(e),
                    };
                    let busy = self
                        .ctx
                        .timeouts
                        .sqlite_busy
                        .as_millis()
                        .min(i32::MAX as u128);
                    conn.execute(format!("PRAGMA busy_timeout = {busy}").as_str())
                        .await?;
                    r?;
                }
                Backend::Postgres => {
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    tx.execute(format!("SET LOCAL lock_timeout = {ms}").as_str())
                        .await?;
                    sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                        .bind(AUDIT_CHAIN_LOCK)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.rollback().await?;
                }
            }
            Ok::<_, Error>(())
        };
        match tokio::time::timeout(deadline + Duration::from_millis(500), attempt).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Unavailable {
                why: crate::error::Unavailability::LockTimeout,
                detail: format!(
                    "the audit chain's lock was not obtained within {} ms",
                    deadline.as_millis()
                ),
            }),
        }
    }

    /// The pool's connections now: (open, idle).
    pub fn pool_state(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// The pool's largest size.
    pub fn pool_max(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// Begin a write transaction (holding the audit chain's lock) and
    /// hand it over, for tests that play a writer that stalls.
    #[cfg(feature = "testing")]
    pub async fn begin_write_for_test(&self) -> Result<Transaction<'static, Any>> {
        self.write().await
    }

    /// A session setting as one of the pool's connections has it
    /// (`SHOW name` on PostgreSQL, `PRAGMA name` on SQLite). For tests.
    #[cfg(feature = "testing")]
    pub async fn session_setting(&self, name: &str) -> Result<String> {
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        let sql = match self.backend {
            Backend::Postgres => format!("SHOW {name}"),
            Backend::Sqlite => format!("PRAGMA {name}"),
        };
        let row = sqlx::query(&sql).fetch_one(&self.pool).await?;
        Ok(match self.backend {
            Backend::Postgres => row.try_get::<String, _>(0)?,
            Backend::Sqlite => row.try_get::<i64, _>(0)?.to_string(),
        })
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
