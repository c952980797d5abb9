//! The scheduler: drives the store's one job dispatcher
//! (`Store::fire_due_jobs`) until nothing more is due. Every timed thing —
//! a notice's delivery timeout and ladder steps, an order's activation,
//! expiry, review and emergency lapse — is a job there; what each does is
//! decided in core (`tapis_core::ladder`, `tapis_core::job`). See
//! `tapis-store`'s `jobs` module for the exactly-once argument.

use tapis_core::job::JobKind;
use tapis_store::Store;

/// Jobs looked at per pass: large enough that 10,000 deadlines falling due
/// at once fire in a few seconds (the store commits them in small
/// transactions), small enough to bound one pass.
const BATCH: u32 = 500;

#[derive(Clone)]
pub struct Scheduler {
    store: Store,
}

impl Scheduler {
    pub fn new(store: Store) -> Self {
        Scheduler { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fire everything due now; returns how many jobs were looked at
    /// (fired, or found moot and cancelled).
    pub async fn run_once(&self) -> crate::Result<usize> {
        let mut total = 0;
        loop {
            let pass = self.store.fire_due_jobs(BATCH).await?;
            total += pass.seen;
            for f in &pass.fired {
                match f.kind {
                    JobKind::Notice(step) => {
                        tracing::info!(notice = %f.subject_id, %step, "ladder step fired")
                    }
                    kind => tracing::info!(order = %f.subject_id, %kind, "order job fired"),
                }
            }
            if pass.seen < BATCH as usize {
                return Ok(total);
            }
        }
    }
}
