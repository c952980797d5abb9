//! Ownership: exactly one process at a time owns the work that must not be
//! done twice or concurrently when several `tapis serve` share a database
//! — the scheduler (every job firing), NOTIFY and the compliance prober.
//!
//! A **lease row with a fencing token**, not a session advisory lock: a
//! process frozen by SIGSTOP keeps its TCP connection (and so a session
//! lock) alive for as long as the kernel answers for it, while a lease row
//! simply expires. The row (`leases`, migration 0012) names its holder and
//! an expiry in the *database's* clock (no two hosts' clocks compared);
//! the holder renews it every `renew` with one statement; another process
//! may take it only once it has expired, and every takeover increments
//! `token`. The owner's job-firing transactions check, under the chain
//! lock, that the row still carries its holder and token and has not
//! expired (`Store::check_fence`): a frozen owner that wakes up finds its
//! token gone and commits nothing, and a new owner's writes queue behind
//! any transaction the old one still has open on the chain lock, so owner
//! work is never interleaved. Actions outside the database (NOTIFY) ask
//! [`Lease::is_owner`], which trusts a renewal only for `ttl` measured on
//! this process's monotonic clock from *before* the renewal was sent: when
//! a frozen process wakes, its own clock tells it at once that it is no
//! longer sure, before any new renewal.
//!
//! Writes made by API requests in any process (a lifted order bumping the
//! zone serial, for one) need no lease: they take the audit chain's lock,
//! so they are serialised with each other and with the owner's.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Any, Row, Transaction};

use crate::{Backend, Result, Store};

/// The one lease tapis uses today.
pub const OWNER_LEASE: &str = "owner";

/// The database's clock in milliseconds since the epoch, in each dialect.
fn db_now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// How a lease is held.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// This process's name on the lease row (unique per process start).
    pub holder: String,
    /// How long a renewal holds the lease: a frozen or cut-off owner loses
    /// it at most this long after its last renewal.
    pub ttl: Duration,
    /// How often the holder renews and the others try to take over.
    pub renew: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            holder: default_holder(),
            ttl: Duration::from_secs(5),
            renew: Duration::from_secs(1),
        }
    }
}

/// `host:pid:random`: unique per process start, readable in logs.
pub fn default_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let mut tag = [0u8; 3];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut tag);
    format!("{host}:{}:{}", std::process::id(), hex::encode(tag))
}

/// Whether `holder` (`host:pid:tag`) names a process of this host
/// (`me`'s host) that no longer exists, by `/proc` (Linux; elsewhere it
/// never says so).
fn holder_is_dead_here(holder: &str, me: &str) -> bool {
    let host_pid = |h: &str| {
        let mut parts = h.rsplitn(3, ':');
        let _tag = parts.next()?;
        let pid: u32 = parts.next()?.parse().ok()?;
        Some((parts.next()?.to_owned(), pid))
    };
    match (host_pid(holder), host_pid(me)) {
        (Some((host, pid)), Some((my_host, my_pid))) => {
            host == my_host
                && pid != my_pid
                && std::path::Path::new("/proc/self").exists()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

/// The owner's proof, checked inside its write transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub token: i64,
}

/// What this process holds: the fencing token while it owns the lease.
#[derive(Debug, Clone, Copy, Default)]
pub struct Held {
    pub token: Option<i64>,
    /// Trust the lease until then (monotonic, measured from before the
    /// renewal was sent).
    until: Option<Instant>,
}

/// This process's view of the lease. Cheap to clone.
#[derive(Clone)]
pub struct Lease {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: LeaseConfig,
    held: tokio::sync::watch::Sender<Held>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("holder", &self.inner.config.holder)
            .field("owner", &self.is_owner())
            .finish()
    }
}

/// The lease as the database has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseRow {
    /// Which process holds it (`host:pid:random`).
    pub holder: String,
    /// The fencing token: incremented at every change of holder.
    pub token: i64,
    /// Milliseconds until it expires by the database's clock (negative:
    /// expired, and free to take).
    pub expires_in_ms: i64,
    /// When it expires, by the database's clock (moves at each renewal).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: tapis_core::Timestamp,
}

/// Who owns the scheduler, NOTIFY and probes, for health and metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ownership {
    /// This process's name on the lease.
    pub this_process: String,
    /// Whether this process owns the lease now.
    pub is_owner: bool,
    /// The lease row (absent before any process took it).
    pub lease: Option<LeaseRow>,
    /// The lease's time to live and renewal interval, in milliseconds.
    pub ttl_ms: u64,
    pub renew_ms: u64,
}

impl Lease {
    pub fn new(config: LeaseConfig) -> Lease {
        Lease {
            inner: Arc::new(Inner {
                name: OWNER_LEASE.into(),
                config,
                held: tokio::sync::watch::channel(Held::default()).0,
            }),
        }
    }

    pub fn holder(&self) -> &str {
        &self.inner.config.holder
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.inner.config
    }

    /// Whether this process may act as the owner now: it holds the lease
    /// and its last renewal is recent by its own monotonic clock.
    pub fn is_owner(&self) -> bool {
        let h = *self.inner.held.borrow();
        h.token.is_some() && h.until.is_some_and(|u| Instant::now() < u)
    }

    /// The fencing token to present, while this process is the owner.
    pub fn fence(&self) -> Option<Fence> {
        let h = *self.inner.held.borrow();
        match h.token {
            Some(token) if self.is_owner() => Some(Fence {
                holder: self.inner.config.holder.clone(),
                token,
            }),
            _ => None,
        }
    }

    /// Changes when ownership is gained or lost (by a renewal's answer;
    /// a lapse by time is seen by [`Lease::is_owner`]).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Held> {
        self.inner.held.subscribe()
    }

    fn set(&self, token: Option<i64>, until: Option<Instant>) {
        let was = self.inner.held.borrow().token;
        self.inner.held.send_if_modified(|h| {
            let changed = h.token != token;
            h.token = token;
            h.until = until;
            changed
        });
        match (was, token) {
            (None, Some(t)) => tracing::info!(
                holder = %self.inner.config.holder, token = t,
                "this process now owns the scheduler, NOTIFY and probes"
            ),
            (Some(_), None) => tracing::warn!(
                holder = %self.inner.config.holder,
                "this process no longer owns the scheduler, NOTIFY and probes"
            ),
            _ => {}
        }
    }

    /// At start-up: take the lease at once, without waiting for it to
    /// expire, if its holder is a process of this host that no longer
    /// exists (a crash, `kill -9`, then a restart). Returns whether it did.
    /// Only a hint of death is needed, not a proof: should the holder be
    /// alive after all (another PID namespace with our host name), it loses
    /// the lease as on any takeover, and its fencing token stops it.
    pub async fn reclaim_from_dead(&self, store: &Store) -> bool {
        let Ok(Some(row)) = store.lease_row(&self.inner.name).await else {
            return false;
        };
        if row.expires_in_ms <= 0 || !holder_is_dead_here(&row.holder, self.holder()) {
            return false;
        }
        let ttl_ms = i64::try_from(self.inner.config.ttl.as_millis()).unwrap_or(i64::MAX);
        let sent = Instant::now();
        match store
            .take_lease_from(&self.inner.name, &row.holder, self.holder(), ttl_ms)
            .await
        {
            Ok(Some(token)) => {
                tracing::info!(dead = %row.holder, "took over the lease of a process that no longer runs");
                self.set(Some(token), Some(sent + self.inner.config.ttl));
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take over a dead process's lease");
                false
            }
        }
    }

    /// One attempt to take or renew the lease; returns whether this
    /// process owns it now.
    pub async fn renew_once(&self, store: &Store) -> bool {
        let cfg = &self.inner.config;
        let ttl_ms = i64::try_from(cfg.ttl.as_millis()).unwrap_or(i64::MAX);
        let sent = Instant::now();
        // a renewal that takes longer than the interval is not trusted
        let attempt = tokio::time::timeout(
            cfg.renew.max(Duration::from_millis(100)),
            store.acquire_lease(&self.inner.name, &cfg.holder, ttl_ms),
        )
        .await;
        match attempt {
            Ok(Ok(Some(token))) => self.set(Some(token), Some(sent + cfg.ttl)),
            Ok(Ok(None)) => self.set(None, None),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot renew the ownership lease");
                // keep what we had: it lapses by time if this lasts
            }
            Err(_) => tracing::warn!("renewing the ownership lease timed out"),
        }
        self.is_owner()
    }

    /// Hold the lease (or wait to take it) until `shutdown` turns true,
    /// then give it up so another process takes over at once. `store`
    /// should have connections of its own ([`Store::with_own_pool`]), so
    /// that load elsewhere cannot delay a renewal.
    pub async fn run(self, store: Store, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let cfg = self.inner.config.clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.renew_once(&store).await;
            tokio::select! {
                _ = tokio::time::sleep(cfg.renew) => {}
                _ = shutdown.changed() => {}
            }
        }
        if self.is_owner() {
            self.set(None, None);
            match store.release_lease(&self.inner.name, &cfg.holder).await {
                Ok(()) => tracing::info!("ownership lease released"),
                Err(e) => tracing::warn!(error = %e, "cannot release the ownership lease"),
            }
        }
    }
}

/// Per-store runtime state shared by clones (see `db.rs`'s `Ctx`).
#[derive(Default)]
pub(crate) struct Runtime {
    /// This process's lease, once ownership is in use.
    pub(crate) lease: OnceLock<Lease>,
    /// The simulated clock, when it is shared through the database.
    pub(crate) shared_clock: OnceLock<tapis_core::ManualClock>,
    /// When the scheduler's loop last went round (for health checks).
    pub(crate) scheduler_alive: std::sync::Mutex<Option<Instant>>,
}

impl Store {
    /// A store sharing everything with this one (clock, keys, policy,
    /// wake-ups) but with a pool of its own of at most `max` connections,
    /// set up like this one's: for work that HTTP or delivery load must
    /// not starve of connections (the scheduler, the lease).
    pub fn with_own_pool(&self, max: u32) -> Store {
        let options = self
            .pool
            .options()
            .clone()
            .max_connections(max.max(1))
            .min_connections(0);
        let pool = options.connect_lazy_with((*self.pool.connect_options()).clone());
        Store {
            pool,
            group: Default::default(),
            ..self.clone()
        }
    }

    /// Use `lease` for ownership from now on; [`Store::lease`] and
    /// [`Store::ownership`] report it. Only the first call counts.
    pub fn use_lease(&self, lease: Lease) -> Lease {
        self.ctx.runtime.lease.get_or_init(|| lease).clone()
    }

    /// Said by the scheduler's loop at every round, owner or not.
    pub fn note_scheduler_alive(&self) {
        if let Ok(mut t) = self.ctx.runtime.scheduler_alive.lock() {
            *t = Some(Instant::now());
        }
    }

    /// How long ago the scheduler's loop last went round in this process
    /// (`None` before its first round): a readiness check may call it
    /// stuck when this exceeds a few poll intervals.
    pub fn scheduler_last_alive(&self) -> Option<Duration> {
        self.ctx
            .runtime
            .scheduler_alive
            .lock()
            .ok()
            .and_then(|t| t.map(|t| t.elapsed()))
    }

    /// This process's lease, if ownership is in use.
    pub fn lease(&self) -> Option<Lease> {
        self.ctx.runtime.lease.get().cloned()
    }

    /// Whether this process owns the scheduler, NOTIFY and probes now
    /// (true when no lease is in use: a process alone with its database).
    pub fn is_owner(&self) -> bool {
        self.lease().is_none_or(|l| l.is_owner())
    }

    /// Who owns the lease, as this process sees it and as the database
    /// has it. `None` when no lease is in use.
    pub async fn ownership(&self) -> Result<Option<Ownership>> {
        let Some(lease) = self.lease() else {
            return Ok(None);
        };
        let row = self.lease_row(OWNER_LEASE).await?;
        Ok(Some(Ownership {
            this_process: lease.holder().to_owned(),
            is_owner: lease.is_owner(),
            lease: row,
            ttl_ms: u64::try_from(lease.config().ttl.as_millis()).unwrap_or(u64::MAX),
            renew_ms: u64::try_from(lease.config().renew.as_millis()).unwrap_or(u64::MAX),
        }))
    }

    /// The lease row named `name`.
    pub async fn lease_row(&self, name: &str) -> Result<Option<LeaseRow>> {
        let row = sqlx::query(&format!(
            "SELECT holder, token, expires_at, expires_at - {} AS left_ms FROM leases WHERE name = $1",
            db_now_ms(self.backend)
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LeaseRow {
                holder: r.try_get("holder")?,
                token: r.try_get("token")?,
                expires_in_ms: r.try_get("left_ms")?,
                expires_at: tapis_core::Timestamp::from_unix_millis(r.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    /// Take or renew the lease `name` for `holder` for `ttl_ms` (database
    /// clock) in one statement: renewed if `holder` has it, taken (token
    /// incremented) if it has expired. Returns the fencing token, or
    /// `None` while another holder's lease runs.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let now = db_now_ms(self.backend);
        let row = sqlx::query(&format!(
            "INSERT INTO leases (name, holder, token, acquired_at, expires_at) \
             VALUES ($1, $2, 1, {now}, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET \
               token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, \
               expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= {now} \
             RETURNING token"
        ))
        .bind(name)
        .bind(holder)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("token")).transpose()?)
    }

    /// Take the lease from `from` (whatever its expiry), incrementing the
    /// token; `None` if `from` no longer holds it.
    pub async fn take_lease_from(
        &self,
        name: &str,
        from: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let now = db_now_ms(self.backend);
        let row = sqlx::query(&format!(
            "UPDATE leases SET holder = $3, token = token + 1, acquired_at = {now}, expires_at = {now} + $4 \
             WHERE name = $1 AND holder = $2 RETURNING token"
        ))
        .bind(name)
        .bind(from)
        .bind(holder)
        .bind(ttl_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("token")).transpose()?)
    }

    /// Give the lease up (a clean stop), so another process takes it at
    /// its next attempt instead of waiting for the expiry.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query(&format!(
            "UPDATE leases SET expires_at = {} WHERE name = $1 AND holder = $2",
            db_now_ms(self.backend)
        ))
        .bind(name)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Inside a write transaction (holding the chain lock): whether
    /// `fence` is still the lease's current, unexpired holder and token.
    /// A plain read, not a row lock: a takeover need not wait for the
    /// owner's transaction (nor a renewal queue behind a long one), because
    /// whatever the new owner fires takes the chain lock and so comes after
    /// the old owner's last, checked transaction has ended.
    pub(crate) async fn check_fence(
        &self,
        tx: &mut Transaction<'static, Any>,
        fence: &Fence,
    ) -> Result<bool> {
        let row = sqlx::query(&format!(
            "SELECT 1 AS ok FROM leases WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > {}",
            db_now_ms(self.backend)
        ))
        .bind(OWNER_LEASE)
        .bind(&fence.holder)
        .bind(fence.token)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.is_some())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use std::sync::Arc;

    use tapis_core::SystemClock;

    use sqlx::Row;

    use super::{Fence, OWNER_LEASE};
    use crate::Store;
    use crate::testing::{TestDb, backends};

    /// The lease passes only on expiry, every change of holder increments
    /// the token, and a fence whose token was taken over no longer checks.
    #[tokio::test]
    async fn lease_changes_hands_only_on_expiry_with_a_new_token() {
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = Store::open(&db.url, Arc::new(SystemClock))
                .await
                .expect("open");
            let a = store.acquire_lease("t", "a", 60_000).await.expect("a");
            assert_eq!(a, Some(1), "{backend:?}: first holder");
            assert_eq!(
                store.acquire_lease("t", "b", 60_000).await.expect("b"),
                None
            );
            assert_eq!(
                store.acquire_lease("t", "a", 60_000).await.expect("renew"),
                Some(1),
                "a renewal keeps the token"
            );
            // a's lease runs out (a renewal with no time left)
            store.acquire_lease("t", "a", -1).await.expect("expire");
            let b = store.acquire_lease("t", "b", 60_000).await.expect("b");
            assert_eq!(b, Some(2), "{backend:?}: a takeover increments the token");
            assert_eq!(
                store.acquire_lease("t", "a", 60_000).await.expect("a"),
                None
            );
            let row = store.lease_row("t").await.expect("row").expect("some");
            assert_eq!((row.holder.as_str(), row.token), ("b", 2));
            assert!(row.expires_in_ms > 50_000, "{row:?}");
            store.release_lease("t", "b").await.expect("release");
            assert_eq!(
                store.acquire_lease("t", "a", 60_000).await.expect("a"),
                Some(3)
            );
            db.cleanup().await;
        }
    }

    #[test]
    fn a_holder_is_dead_only_on_this_host_and_without_its_process() {
        let me = format!("h:{}:aa", std::process::id());
        assert!(
            super::holder_is_dead_here("h:4194999:bb", &me),
            "no such pid"
        );
        assert!(
            !super::holder_is_dead_here("other:4194999:bb", &me),
            "another host"
        );
        assert!(!super::holder_is_dead_here(&me, &me), "itself");
        assert!(!super::holder_is_dead_here("h:1:bb", &me), "pid 1 runs");
        assert!(!super::holder_is_dead_here("garbage", &me));
        let h = super::default_holder();
        assert_eq!(h.rsplitn(3, ':').count(), 3, "{h}");
    }

    /// An owner frozen past its lease wakes up with a stale fence: its
    /// dispatcher fires nothing and the due job stays pending for the new
    /// owner; the new owner's fence checks.
    #[tokio::test]
    async fn a_stale_fence_fires_nothing() {
        use tapis_core::job::JobKind;
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = Store::open(&db.url, Arc::new(SystemClock))
                .await
                .expect("open");
            let old = store
                .acquire_lease(OWNER_LEASE, "frozen", 60_000)
                .await
                .expect("a")
                .expect("taken");
            let mut tx = store.write().await.expect("tx");
            crate::jobs::schedule(&mut tx, JobKind::OrderExpire, "o1", store.now())
                .await
                .expect("schedule");
            tx.commit().await.expect("commit");
            // the lease runs out while "frozen" sleeps; another takes it
            store
                .acquire_lease(OWNER_LEASE, "frozen", -1)
                .await
                .expect("lapse");
            let new = store
                .acquire_lease(OWNER_LEASE, "awake", 60_000)
                .await
                .expect("b")
                .expect("taken over");
            assert_eq!(new, old + 1);
            let stale = Fence {
                holder: "frozen".into(),
                token: old,
            };
            let pass = store
                .fire_due_jobs_fenced(10, Some(&stale))
                .await
                .expect("fenced pass");
            assert!(pass.lost_lease, "{backend:?}: {pass:?}");
            assert!(pass.fired.is_empty());
            let pending: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE state = 'pending'")
                    .fetch_one(&store.pool)
                    .await
                    .expect("count")
                    .get("n");
            assert_eq!(pending, 1, "{backend:?}: the job waits for the new owner");
            let mut tx = store.write().await.expect("tx");
            let current = Fence {
                holder: "awake".into(),
                token: new,
            };
            assert!(store.check_fence(&mut tx, &current).await.expect("check"));
            assert!(!store.check_fence(&mut tx, &stale).await.expect("check"));
            drop(tx);
            db.cleanup().await;
        }
    }
}
