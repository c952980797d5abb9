//! The government channel's moving parts: the **scheduler**, which drives
//! the store's one job dispatcher (ladder steps, delivery timeouts, order
//! dates) as jobs fall due, and **delivery**, which
//! takes messages from the persistent outbox and sends them as Standard
//! Webhooks (HMAC-signed) or, as a fallback, by email.
//!
//! Both read and write only through `tapis-store`; what a step means and
//! when it falls due is decided by core's SLA policy. Neither keeps state of
//! its own: a crash loses nothing, and a restart resumes from the database.
#![forbid(unsafe_code)]

mod delivery;
mod error;
mod scheduler;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

pub use delivery::{
    Delivery, DeliveryConfig, DeliveryStats, Destination, DestinationStats, LATENCY_BUCKETS_MS,
    SmtpConfig,
};
pub use error::{Error, Result};
pub use scheduler::Scheduler;
use tapis_core::{ManualClock, Timestamp};
use tapis_store::Store;

/// Run the scheduler and the delivery worker until `shutdown` turns true.
/// They wake when the store signals new work, and poll every `poll` for
/// work written by other processes.
pub fn spawn(
    store: Store,
    delivery: Arc<Delivery>,
    poll: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let scheduler = Scheduler::new(store.clone());
    let wake = store.wake();
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = scheduler.run_once().await {
                tracing::error!(error = %e, "scheduler step failed");
            }
            // starts sends and returns: a slow destination cannot hold the
            // loop; their group commits wake it again
            match delivery.dispatch().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "delivery step failed"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("channel workers stopped");
    })
}

/// Where the simulated clock's time is kept across restarts.
pub const SIMULATED_NOW: &str = "simulated_now";

/// A simulated clock that can be moved forward, firing whatever falls due
/// (for demonstrations, training and acceptance tests).
pub struct SimulatedTime {
    pub clock: ManualClock,
    pub scheduler: Scheduler,
    pub delivery: Arc<Delivery>,
}

impl SimulatedTime {
    /// Move the clock forward by `secs`, then run the ladder and deliveries
    /// until nothing more is due. Returns the new time.
    pub async fn advance(&self, secs: i64) -> Result<Timestamp> {
        self.clock.advance_millis(secs.saturating_mul(1000));
        // persist first: a restart resumes from here, not from the start
        let now = tapis_core::Clock::now(&self.clock);
        self.scheduler
            .store()
            .set_runtime_value(SIMULATED_NOW, &now.to_string())
            .await?;
        // bounded: every pass either fires something or stops
        for _ in 0..1000 {
            let fired = self.scheduler.run_once().await?;
            let sent = self.delivery.run_once().await?;
            if fired == 0 && sent == 0 {
                break;
            }
        }
        Ok(tapis_core::Clock::now(&self.clock))
    }
}
