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

/// Run the scheduler and the delivery worker, each in its own task, until
/// `shutdown` turns true (the returned task ends when both have stopped).
/// The scheduler runs on `store` itself: give it a store with connections
/// of its own ([`Store::with_own_pool`]) when other load could starve it.
pub fn spawn(
    store: Store,
    delivery: Arc<Delivery>,
    poll: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let scheduler = spawn_scheduler(Scheduler::new(store.clone()), poll, shutdown.clone());
    let delivery = spawn_delivery(store, delivery, poll, shutdown);
    tokio::spawn(async move {
        let _ = scheduler.await;
        let _ = delivery.await;
        tracing::info!("channel workers stopped");
    })
}

/// The scheduler's task: fires due jobs while this process owns the lease
/// (or always, without one). Sleeps until the next job falls due, a commit
/// in this process, a change of ownership or `poll` (work scheduled by
/// other processes), whichever comes first. Nothing else runs in it: a
/// hanging delivery or a busy HTTP pool cannot delay a timer.
pub fn spawn_scheduler(
    scheduler: Scheduler,
    poll: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let store = scheduler.store().clone();
    let mut events = store.subscribe_events();
    let mut ownership = store.lease().map(|l| l.subscribe());
    tokio::spawn(async move {
        let mut pass_started = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            store.note_scheduler_alive();
            store.liveness().beat("scheduler");
            // every process reads the shared simulated time (the owner
            // also does in each pass), so its answers follow the others'
            if store.clock_is_shared()
                && let Err(e) = store.follow_shared_clock().await
            {
                tracing::warn!(error = %e, "cannot read the shared simulated clock");
            }
            let owner = scheduler.is_owner();
            let mut failed = false;
            if owner && let Err(e) = scheduler.run_once().await {
                tracing::error!(error = %e, "scheduler step failed");
                failed = true;
            }
            let mut wait = poll;
            // on the real clock, wake exactly when the next job falls due
            // (after a failure, at the poll: a job that cannot fire must
            // not spin the loop)
            if owner && !failed && !store.clock_is_shared() {
                match store.next_job_due().await {
                    Ok(Some(due)) => {
                        let ms = due.unix_millis().saturating_sub(store.now().unix_millis());
                        wait = wait.min(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read when the next job is due"),
                }
            }
            let ownership_changed = async {
                let changed = match ownership.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => false,
                };
                if !changed {
                    std::future::pending::<()>().await
                }
            };
            let by_commit = tokio::select! {
                _ = events.changed() => true,
                _ = ownership_changed => false,
                _ = tokio::time::sleep(wait) => false,
                _ = shutdown.changed() => false,
            };
            if by_commit {
                coalesce(pass_started, &mut shutdown).await;
            }
            pass_started = tokio::time::Instant::now();
        }
        tracing::info!("scheduler stopped");
    })
}

/// The shortest gap between two passes that commits (rather than a timer)
/// set off. Under load every group commit signals; without a gap each one
/// would cost the scheduler two reads, so a burst of commits is one pass
/// per gap, and a job a commit made due fires at most this much later.
pub const COMMIT_WAKE_GAP: Duration = Duration::from_millis(50);

/// Wait until [`COMMIT_WAKE_GAP`] has passed since `since` (or shutdown).
pub async fn coalesce(
    since: tokio::time::Instant,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tokio::time::sleep_until(since + COMMIT_WAKE_GAP) => {}
        _ = shutdown.changed() => {}
    }
}

/// The delivery worker's task: drives [`Delivery::run_once`] while it
/// finds work, then waits for a commit in this process or `poll`. Every
/// process delivers (claims are leased in the outbox), owner or not.
pub fn spawn_delivery(
    store: Store,
    delivery: Arc<Delivery>,
    poll: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let wake = store.wake();
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            store.liveness().beat("delivery");
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
        tracing::info!("delivery worker stopped");
    })
}

/// Where the simulated clock's time is kept across restarts.
pub use tapis_store::SIMULATED_NOW;

/// How long [`SimulatedTime::advance`] waits for work it did not do itself
/// (the owner's jobs, the delivery task's sends) to be done.
const SETTLE: Duration = Duration::from_secs(30);

/// A simulated clock that can be moved forward, firing whatever falls due
/// (for demonstrations, training and acceptance tests). When the store
/// shares the clock through the database (`Store::share_simulated_clock`),
/// moving it moves it for every process.
pub struct SimulatedTime {
    pub clock: ManualClock,
    pub scheduler: Scheduler,
    pub delivery: Arc<Delivery>,
}

impl SimulatedTime {
    /// Move the clock forward by `secs`, then run the ladder and deliveries
    /// until nothing more is due or being sent. Returns the new time. In a
    /// process that does not own the scheduler, the owner fires the jobs:
    /// this waits (up to 30 s) until it has.
    pub async fn advance(&self, secs: i64) -> Result<Timestamp> {
        let ms = secs.saturating_mul(1000);
        let store = self.scheduler.store();
        if store.advance_shared_clock(ms).await?.is_none() {
            self.clock.advance_millis(ms);
            // persist first: a restart resumes from here, not from the start
            let now = tapis_core::Clock::now(&self.clock);
            store
                .set_runtime_value(SIMULATED_NOW, &now.to_string())
                .await?;
        }
        let started = std::time::Instant::now();
        // bounded: every pass either fires something or stops
        for _ in 0..100_000 {
            let fired = self.scheduler.run_once().await?;
            let sent = self.delivery.run_once().await?;
            if fired > 0 || sent > 0 {
                continue;
            }
            // quiet only when nothing is due or being sent: the delivery
            // task (or, in a process that does not own the scheduler, the
            // owner) may hold what this pass did not find
            if store.due_work().await?.due_now == 0 {
                break;
            }
            if started.elapsed() > SETTLE {
                tracing::warn!("work due after a clock advance was not done within 30 s");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(tapis_core::Clock::now(&self.clock))
    }
}
