//! The scheduler: drives the store's one job dispatcher
//! (`Store::fire_due_jobs_fenced`) until nothing more is due. Every timed
//! thing — a notice's delivery timeout and ladder steps, an order's
//! activation, expiry, review and emergency lapse — is a job there; what
//! each does is decided in core (`tapis_core::ladder`, `tapis_core::job`).
//! See `tapis-store`'s `jobs` module for the exactly-once argument.
//!
//! When the store has an ownership lease (`tapis_store::lease`), only its
//! owner fires jobs, and every firing transaction carries the owner's
//! fencing token: a process that lost the lease fires nothing.
//!
//! With a retention policy (`with_retention`), each pass also removes what
//! the policy says is due, once per interval on the store's clock, in
//! bounded batches (`Store::apply_retention`), under the same fence.

use std::sync::{Arc, Mutex};

use tapis_core::Timestamp;
use tapis_core::job::JobKind;
use tapis_core::retention::RetentionPolicy;
use tapis_store::Store;

/// Jobs looked at per pass: large enough that 10,000 deadlines falling due
/// at once fire in a few seconds (the store commits them in small
/// transactions), small enough to bound one pass.
const BATCH: u32 = 500;

/// Retention batches per pass: a pass stays short; a backlog is worked
/// off over the following passes.
const RETENTION_BATCHES: usize = 10;

#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    retention: Option<Retention>,
}

#[derive(Clone)]
struct Retention {
    policy: Arc<RetentionPolicy>,
    interval_ms: i64,
    /// When the next run is due (now, at start).
    next: Arc<Mutex<Option<Timestamp>>>,
}

impl Scheduler {
    /// A scheduler over `store` (give it a store with connections of its
    /// own, `Store::with_own_pool`, so other load cannot starve it).
    pub fn new(store: Store) -> Self {
        Scheduler {
            store,
            retention: None,
        }
    }

    /// Also apply `policy` every `interval` (on the store's clock).
    pub fn with_retention(
        mut self,
        policy: RetentionPolicy,
        interval: std::time::Duration,
    ) -> Self {
        self.retention = Some(Retention {
            policy: Arc::new(policy),
            interval_ms: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
            next: Arc::new(Mutex::new(None)),
        });
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether this process fires jobs now (it owns the lease, or there
    /// is no lease).
    pub fn is_owner(&self) -> bool {
        self.store.is_owner()
    }

    /// Fire everything due now; returns how many jobs were looked at
    /// (fired, or found moot and cancelled). Fires nothing, and returns 0,
    /// in a process that does not own the lease.
    pub async fn run_once(&self) -> crate::Result<usize> {
        let fence = match self.store.lease() {
            Some(lease) => match lease.fence() {
                Some(f) => Some(f),
                None => return Ok(0),
            },
            None => None,
        };
        let mut total = 0;
        loop {
            let pass = self
                .store
                .fire_due_jobs_fenced(BATCH, fence.as_ref())
                .await?;
            total += pass.fired.len();
            for f in &pass.fired {
                match f.kind {
                    JobKind::Notice(step) => {
                        tracing::info!(notice = %f.subject_id, %step, "ladder step fired")
                    }
                    kind => tracing::info!(order = %f.subject_id, %kind, "order job fired"),
                }
            }
            if pass.lost_lease {
                tracing::warn!("the ownership lease passed to another process: no job fired");
                return Ok(total);
            }
            total += pass.seen - pass.fired.len();
            if pass.seen < BATCH as usize {
                self.retention_pass(fence.as_ref()).await?;
                return Ok(total);
            }
        }
    }

    /// Apply the retention policy if its interval has passed.
    async fn retention_pass(&self, fence: Option<&tapis_store::Fence>) -> crate::Result<()> {
        let Some(r) = &self.retention else {
            return Ok(());
        };
        let now = self.store.now();
        let due = r
            .next
            .lock()
            .map(|n| n.is_none_or(|t| now >= t))
            .unwrap_or(true);
        if !due {
            return Ok(());
        }
        let run = self
            .store
            .apply_retention(&r.policy, fence, RETENTION_BATCHES)
            .await?;
        for (kind, n) in &run.records {
            tracing::info!(%kind, records = n, events_erased = run.events_erased, "retention removed records");
        }
        // a backlog goes on at the next pass, else after the interval
        let next = if run.more {
            now
        } else {
            now.plus_millis(r.interval_ms)
        };
        if let Ok(mut n) = r.next.lock() {
            *n = Some(next);
        }
        Ok(())
    }
}
