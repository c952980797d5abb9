//! The scheduler: fires due ladder steps in batches. All the work is one
//! store call per batch; see `Store::fire_due_timers` for the exactly-once
//! argument.

use tapis_store::Store;

/// Steps fired per transaction: large enough that 10,000 deadlines falling
/// due at once fire in a few seconds, small enough to keep transactions short.
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

    /// Fire everything due now (ladder steps, order jobs); returns how many
    /// fired or lapsed.
    pub async fn run_once(&self) -> Result<usize, tapis_store::Error> {
        let mut total = 0;
        loop {
            let (fired, seen) = self.store.fire_due_timers(BATCH).await?;
            total += fired.len();
            for f in &fired {
                tracing::info!(notice = %f.notice_id, step = %f.step, "ladder step fired");
            }
            if seen < BATCH as usize {
                break;
            }
        }
        // order activation, expiry and missed reviews
        loop {
            let seen = self.store.fire_due_jobs(BATCH).await?;
            total += seen;
            if seen < BATCH as usize {
                return Ok(total);
            }
        }
    }
}
