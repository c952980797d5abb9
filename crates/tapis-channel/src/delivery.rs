//! Delivery: claim due outbox messages, send them, report the outcome.
//!
//! Each **destination** (a platform's webhook; a party's email route) has
//! its own bounded concurrency, its own queue of claimed messages and its
//! own circuit breaker (core's [`Breaker`]), so a slow or hanging receiver
//! only delays itself: the others' messages are claimed and sent beside it.
//! Connect and response timeouts are separate. Outcomes are recorded by
//! group commit: attempts that finish close together are settled in one
//! write transaction, after the network I/O, never during it.
//!
//! Webhooks are POSTed with the Standard Webhooks headers; a 2xx is
//! success, anything else (or a timeout) is retried by the store's backoff.
//! Redirects are not followed and, unless private targets are allowed,
//! names that resolve to loopback or private addresses are refused at
//! connect time (the resolver filters them, so a DNS answer cannot be
//! swapped between the check and the connection).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tapis_core::breaker::{Admit, Breaker, BreakerPolicy};
use tapis_core::channel::is_private_host;
use tapis_core::delivery::OutboxChannel;
use tapis_core::{EventType, PartyId};
use tapis_store::{Attempt, Claimed, Store};

use crate::Error;

mod message;
use message::{PublicOnly, code_text, describe, summary};

/// Messages claimed per pass, over all destinations.
const CLAIM: u32 = 256;
/// A destination's queue holds up to this many times its slots: claims
/// come in batches (one claim transaction feeds many sends) while the
/// queue stays bounded. Queued messages keep their leases renewed, and an
/// open breaker empties the queue at once (rejected, to the retry schedule).
const QUEUE_PER_SLOT: usize = 8;
/// Latencies kept per destination for the recent percentiles.
const RECENT: usize = 512;
/// Upper bounds (ms) of the latency histogram's buckets; one more bucket
/// counts everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000,
];
/// How often the due backlog per destination is counted (stats, push-back).
const BACKLOG_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@mail.example:465`,
    /// or `smtp://mail.example:587?tls=required` for STARTTLS.
    pub url: String,
    /// The From address, e.g. `tapis <tapis@ministry.example>`.
    pub from: String,
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Allow webhooks to loopback and private addresses (tests, closed
    /// networks). Off by default: a webhook must not reach into our network.
    pub allow_private_targets: bool,
    pub smtp: Option<SmtpConfig>,
    /// Base URL of this tapis, for links in emails.
    pub public_url: String,
    /// How long a webhook (or SMTP) connection may take to open.
    pub connect_timeout: Duration,
    /// How long the receiver may take to answer once connected.
    pub response_timeout: Duration,
    /// Messages in flight per destination; more wait in its queue.
    pub concurrency: usize,
    /// When a destination's breaker opens and for how long.
    pub breaker: BreakerPolicy,
    /// Push back on new notices (429) when this many messages to healthy
    /// destinations are due and unsent; 0 turns push-back off.
    pub max_backlog: u64,
    /// How long a group commit waits for more results when few are ready.
    pub group_commit_window: Duration,
    /// The most attempts settled in one transaction.
    pub group_commit_max: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            allow_private_targets: false,
            smtp: None,
            public_url: "http://127.0.0.1:8080".into(),
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(10),
            concurrency: 4,
            breaker: BreakerPolicy::default(),
            max_backlog: 1000,
            group_commit_window: Duration::from_millis(2),
            group_commit_max: 256,
        }
    }
}

/// Where a message goes: one platform's webhook, or one party's email
/// addresses. Each has its own slots, queue and breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    pub channel: OutboxChannel,
    pub party_id: PartyId,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.channel, self.party_id)
    }
}

impl Destination {
    fn of(msg: &Claimed) -> Destination {
        Destination {
            channel: msg.channel,
            party_id: msg.party_id,
        }
    }
}

/// A snapshot of delivery, for metrics and health (see [`Delivery::stats`]).
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub destinations: Vec<DestinationStats>,
    /// Attempts finished and waiting for their group commit.
    pub pending_commits: usize,
    /// Group commits done, and the attempts they settled.
    pub commits: u64,
    pub committed: u64,
}

/// One destination's state and counters since this process started.
#[derive(Debug, Clone)]
pub struct DestinationStats {
    pub destination: Destination,
    /// Messages due in the outbox (claimed or not; counted every 0.5 s).
    pub queued: u64,
    /// Age (ms) of the oldest due message at the last count.
    pub oldest_due_age_ms: u64,
    /// Messages being sent now, and claimed ones waiting for a slot.
    pub in_flight: usize,
    pub waiting: usize,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub consecutive_failures: u32,
    pub last_latency_ms: Option<u64>,
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    pub timeouts: u64,
    /// Messages not attempted because the breaker was open.
    pub rejected: u64,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS_MS`], then the
    /// total (the `+Inf` bucket), for a Prometheus histogram.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_ms: u64,
    /// Over the last 512 attempts.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// A claimed message, and who waits for it to be settled.
struct Job {
    msg: Claimed,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
struct Dest {
    breaker: Breaker,
    in_flight: usize,
    queue: VecDeque<Job>,
    consecutive_failures: u32,
    last_latency_ms: Option<u64>,
    attempts: u64,
    successes: u64,
    failures: u64,
    timeouts: u64,
    rejected: u64,
    buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
    latency_sum_ms: u64,
    recent: VecDeque<u64>,
    due: u64,
    oldest_due_age_ms: u64,
}

impl Dest {
    fn observe(&mut self, ok: bool, timed_out: bool, latency_ms: u64) {
        self.attempts += 1;
        if ok {
            self.successes += 1;
            self.consecutive_failures = 0;
        } else {
            self.failures += 1;
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        if timed_out {
            self.timeouts += 1;
        }
        self.last_latency_ms = Some(latency_ms);
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| latency_ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[i] += 1;
        self.latency_sum_ms = self.latency_sum_ms.saturating_add(latency_ms);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(latency_ms);
    }

    fn stats(&self, destination: Destination) -> DestinationStats {
        let mut sorted: Vec<u64> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        let pct =
            |p: usize| (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) * p).div_ceil(100)]);
        let mut cumulative = 0;
        let latency_buckets = self
            .buckets
            .iter()
            .map(|n| {
                cumulative += n;
                cumulative
            })
            .collect();
        DestinationStats {
            destination,
            queued: self.due,
            oldest_due_age_ms: self.oldest_due_age_ms,
            in_flight: self.in_flight,
            waiting: self.queue.len(),
            breaker: self.breaker.name(),
            consecutive_failures: self.consecutive_failures,
            last_latency_ms: self.last_latency_ms,
            attempts: self.attempts,
            successes: self.successes,
            failures: self.failures,
            timeouts: self.timeouts,
            rejected: self.rejected,
            latency_buckets,
            latency_sum_ms: self.latency_sum_ms,
            p50_ms: pct(50),
            p99_ms: pct(99),
        }
    }
}

/// An attempt waiting for its group commit.
struct Settled {
    msg: Claimed,
    attempt: Attempt,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Inner {
    store: Store,
    http: reqwest::Client,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    config: DeliveryConfig,
    owner: String,
    dests: Mutex<HashMap<Destination, Dest>>,
    /// Messages leased in our name and not yet settled: their leases are
    /// renewed while they are sent.
    held: Mutex<HashSet<String>>,
    pending: Mutex<Vec<Settled>>,
    commit_lock: tokio::sync::Mutex<()>,
    commits: Mutex<(u64, u64)>,
    /// Told after each group commit.
    settled: tokio::sync::Notify,
    /// Set once this instance's old leases are taken back; every claim
    /// waits for it, so none is undone by the reclaim.
    reclaimed: tokio::sync::OnceCell<()>,
    /// Claims under way whose messages are not in `held` yet: `run_once`
    /// waits for them too.
    claiming: AtomicUsize,
    last_renew: Mutex<Instant>,
    last_backlog: Mutex<Option<Instant>>,
}

/// Lock a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a few assignments).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Delivery for one process. Cheap to share (`Arc`); its workers run as
/// tasks on the current runtime.
pub struct Delivery {
    inner: Arc<Inner>,
}

impl Delivery {
    pub fn new(store: Store, config: DeliveryConfig) -> crate::Result<Delivery> {
        let mut http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // a receiver that accepted the connection must answer within
            // the response timeout; the whole exchange is bounded too
            .read_timeout(config.response_timeout)
            .timeout(config.connect_timeout + config.response_timeout)
            .pool_max_idle_per_host(config.concurrency.max(1))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tapis/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_targets {
            http = http.dns_resolver(Arc::new(PublicOnly));
        }
        let http = http.build().map_err(|e| Error::HttpClient(e.to_string()))?;
        let smtp = match &config.smtp {
            None => None,
            Some(s) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.url)
                    .map_err(|e| Error::SmtpUrl(e.to_string()))?
                    .timeout(Some(config.connect_timeout + config.response_timeout))
                    .build();
                let from: Mailbox = s
                    .from
                    .parse::<Mailbox>()
                    .map_err(|e| Error::SmtpFrom(e.to_string()))?;
                Some((transport, from))
            }
        };
        let owner = store.instance_id().to_owned();
        Ok(Delivery {
            inner: Arc::new(Inner {
                store,
                http,
                smtp,
                config,
                owner,
                dests: Mutex::new(HashMap::new()),
                held: Mutex::new(HashSet::new()),
                pending: Mutex::new(Vec::new()),
                commit_lock: tokio::sync::Mutex::new(()),
                commits: Mutex::new((0, 0)),
                settled: tokio::sync::Notify::new(),
                reclaimed: tokio::sync::OnceCell::new(),
                claiming: AtomicUsize::new(0),
                last_renew: Mutex::new(Instant::now()),
                last_backlog: Mutex::new(None),
            }),
        })
    }

    /// Claim what is due for destinations with a free slot and start
    /// sending it; returns at once with how many messages were claimed.
    /// Sends finish in the background, and their group commit wakes the
    /// store's `wake()`, so a long-running task calls this again when woken
    /// (or on its poll), e.g. `loop { dispatch; wait for wake or poll }`.
    pub async fn dispatch(&self) -> crate::Result<usize> {
        Ok(self.inner.dispatch(false).await?.0)
    }

    /// Claim and deliver what is due now, and wait until those attempts
    /// (and any already in flight) are recorded. Returns how many messages
    /// were claimed. For the simulated clock: repeat until it returns 0 to
    /// run deliveries until nothing more is due. A hanging destination
    /// holds this up to its timeouts, never longer.
    pub async fn run_once(&self) -> crate::Result<usize> {
        let (n, waits) = self.inner.dispatch(true).await?;
        for w in waits {
            let _ = w.await;
        }
        // what other callers had in flight, bounded by the timeouts
        let bound = Instant::now()
            + self.inner.config.connect_timeout
            + self.inner.config.response_timeout
            + Duration::from_secs(1);
        while (!lock(&self.inner.held).is_empty() || self.inner.claiming.load(Ordering::SeqCst) > 0)
            && Instant::now() < bound
        {
            tokio::select! {
                _ = self.inner.settled.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        Ok(n)
    }

    /// A snapshot of every destination seen since start (cheap: no I/O).
    pub fn stats(&self) -> DeliveryStats {
        let dests = lock(&self.inner.dests);
        let mut destinations: Vec<DestinationStats> =
            dests.iter().map(|(k, d)| d.stats(*k)).collect();
        drop(dests);
        destinations.sort_by_key(|d| (d.destination.party_id, d.destination.channel.as_str()));
        let (commits, committed) = *lock(&self.inner.commits);
        DeliveryStats {
            destinations,
            pending_commits: lock(&self.inner.pending).len(),
            commits,
            committed,
        }
    }

    /// Should new notices be refused for now? `Some(retry_after)` when the
    /// due messages to healthy destinations (breaker closed, last attempt
    /// good) reach `max_backlog`, or attempts pile up waiting for their
    /// commit (the write path is saturated). Messages to a failing
    /// destination never count: one bad platform must not stop everyone.
    pub fn pushback(&self) -> Option<Duration> {
        let max = self.inner.config.max_backlog;
        if max == 0 {
            return None;
        }
        let backlog: u64 = lock(&self.inner.dests)
            .values()
            .filter(|d| matches!(d.breaker, Breaker::Closed { .. }) && d.consecutive_failures == 0)
            .map(|d| d.due)
            .sum();
        let pending = lock(&self.inner.pending).len() as u64;
        let commit_bound = (self.inner.config.group_commit_max as u64).saturating_mul(8);
        if backlog >= max || pending >= commit_bound {
            let secs = (backlog / max)
                .max(pending / commit_bound.max(1))
                .clamp(1, 30);
            Some(Duration::from_secs(secs))
        } else {
            None
        }
    }
}

impl Inner {
    /// The breaker's time: the store's clock, like the retry schedule it
    /// works with (on a simulated clock, an hour's outage is an hour).
    fn breaker_ms(&self) -> u64 {
        u64::try_from(self.store.now().unix_millis()).unwrap_or(0)
    }

    async fn dispatch(
        self: &Arc<Self>,
        track: bool,
    ) -> crate::Result<(usize, Vec<tokio::sync::oneshot::Receiver<()>>)> {
        // a restart under the same identity: what the dead process was
        // sending is due again now, not when its leases run out
        self.reclaimed
            .get_or_try_init(|| async {
                let n = self.store.reclaim_leases(&self.owner).await?;
                if n > 0 {
                    tracing::info!(
                        messages = n,
                        "took back the outbox leases this instance held before it stopped"
                    );
                }
                Ok::<(), tapis_store::Error>(())
            })
            .await?;
        self.maintain().await;
        let concurrency = self.config.concurrency.max(1);
        // a destination with every slot taken and work queued gets nothing
        // more until a slot frees
        let busy: Vec<(OutboxChannel, PartyId)> = lock(&self.dests)
            .iter()
            .filter(|(_, d)| d.in_flight >= concurrency && !d.queue.is_empty())
            .map(|(k, _)| (k.channel, k.party_id))
            .collect();
        let per_destination = u32::try_from(concurrency * QUEUE_PER_SLOT).unwrap_or(u32::MAX);
        self.claiming.fetch_add(1, Ordering::SeqCst);
        let claimed = self
            .store
            .claim_fair(&self.owner, per_destination, CLAIM, &busy)
            .await;
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                self.claiming.fetch_sub(1, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        lock(&self.held).extend(claimed.iter().map(|m| m.id.clone()));
        self.claiming.fetch_sub(1, Ordering::SeqCst);
        let n = claimed.len();
        let mut waits = Vec::new();
        for msg in claimed {
            let done = if track {
                let (tx, rx) = tokio::sync::oneshot::channel();
                waits.push(rx);
                Some(tx)
            } else {
                None
            };
            let dest = Destination::of(&msg);
            let job = Job { msg, done };
            let start = {
                let mut dests = lock(&self.dests);
                let d = dests.entry(dest).or_default();
                if d.in_flight < concurrency {
                    d.in_flight += 1;
                    Some(job)
                } else {
                    d.queue.push_back(job);
                    None
                }
            };
            if let Some(job) = start {
                tokio::spawn(self.clone().worker(dest, job));
            }
        }
        Ok((n, waits))
    }

    /// Renew the leases of what we are sending, and count the backlog, each
    /// when it is due. Failures are logged: the next pass tries again.
    async fn maintain(&self) {
        let every = Duration::from_millis(
            u64::try_from(self.store.retry().lease_secs.max(1) * 1000 / 3).unwrap_or(5000),
        );
        let renew = {
            let mut last = lock(&self.last_renew);
            if last.elapsed() >= every {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if renew {
            let ids: Vec<String> = lock(&self.held).iter().cloned().collect();
            if !ids.is_empty()
                && let Err(e) = self.store.renew_leases(&self.owner, &ids).await
            {
                tracing::warn!(error = %e, "cannot renew outbox leases");
            }
        }
        let count = {
            let mut last = lock(&self.last_backlog);
            if last.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
                *last = Some(Instant::now());
                true
            } else {
                false
            }
        };
        if count {
            match self.store.outbox_backlog().await {
                Ok(rows) => {
                    let now = self.store.now();
                    let mut dests = lock(&self.dests);
                    for d in dests.values_mut() {
                        d.due = 0;
                        d.oldest_due_age_ms = 0;
                    }
                    for r in rows {
                        let d = dests
                            .entry(Destination {
                                channel: r.channel,
                                party_id: r.party_id,
                            })
                            .or_default();
                        d.due = r.due;
                        d.oldest_due_age_ms = u64::try_from(
                            now.unix_millis().saturating_sub(r.oldest_due.unix_millis()),
                        )
                        .unwrap_or(0);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot count the outbox backlog"),
            }
        }
    }

    /// Send `job`, then whatever waits in the destination's queue, one at
    /// a time: a destination has at most `concurrency` of these.
    async fn worker(self: Arc<Self>, dest: Destination, mut job: Job) {
        loop {
            let admit = {
                let mut dests = lock(&self.dests);
                let d = dests.entry(dest).or_default();
                let (admit, next) = d.breaker.admit(self.breaker_ms());
                d.breaker = next;
                if admit == Admit::Reject {
                    d.rejected += 1;
                }
                admit
            };
            let attempt = match admit {
                Admit::Reject => {
                    let failures = lock(&self.dests)
                        .get(&dest)
                        .map_or(0, |d| d.consecutive_failures);
                    Attempt {
                        ok: false,
                        status: None,
                        latency_ms: 0,
                        error: Some(format!(
                            "not attempted: the circuit breaker of {dest} is open after {failures} failures in a row"
                        )),
                    }
                }
                Admit::Attempt | Admit::Probe => {
                    let (attempt, timed_out) = self.deliver(&job.msg).await;
                    let latency = u64::try_from(attempt.latency_ms).unwrap_or(0);
                    let mut dests = lock(&self.dests);
                    let d = dests.entry(dest).or_default();
                    d.observe(attempt.ok, timed_out, latency);
                    let before = d.breaker;
                    d.breaker = before.record(
                        &self.config.breaker,
                        attempt.ok,
                        admit == Admit::Probe,
                        self.breaker_ms(),
                    );
                    match (before, d.breaker) {
                        (Breaker::Open { .. }, Breaker::Open { .. }) => {}
                        (_, Breaker::Open { .. }) => {
                            tracing::warn!(
                                destination = %dest,
                                failures = d.consecutive_failures,
                                "circuit breaker opened: not attempting this destination for a while"
                            );
                            // the notices waiting on it go to the representative
                            let store = self.store.clone();
                            tokio::spawn(async move {
                                match store
                                    .destination_unreachable(dest.channel, dest.party_id)
                                    .await
                                {
                                    Ok(0) => {}
                                    Ok(n) => {
                                        tracing::info!(destination = %dest, notices = n, "copied to the representative: the destination is unreachable")
                                    }
                                    Err(e) => {
                                        tracing::warn!(destination = %dest, error = %e, "cannot copy the waiting notices to the representative")
                                    }
                                }
                            });
                        }
                        (Breaker::Closed { .. }, Breaker::Closed { .. }) => {}
                        (_, Breaker::Closed { .. }) => {
                            tracing::info!(destination = %dest, "circuit breaker closed")
                        }
                        _ => {}
                    }
                    drop(dests);
                    if !attempt.ok {
                        tracing::warn!(event = %job.msg.event_id, destination = %dest, error = ?attempt.error, status = ?attempt.status, "delivery failed");
                    }
                    attempt
                }
            };
            self.settle(job, attempt);
            let next = {
                let mut dests = lock(&self.dests);
                let d = dests.entry(dest).or_default();
                match d.queue.pop_front() {
                    Some(j) => Some(j),
                    None => {
                        d.in_flight = d.in_flight.saturating_sub(1);
                        None
                    }
                }
            };
            match next {
                Some(j) => job = j,
                None => break,
            }
        }
    }

    /// Hand an attempt to the group commit.
    fn settle(self: &Arc<Self>, job: Job, attempt: Attempt) {
        lock(&self.pending).push(Settled {
            msg: job.msg,
            attempt,
            done: job.done,
        });
        let me = self.clone();
        tokio::spawn(async move { me.commit().await });
    }

    /// Group commit: whoever holds the lock settles everything pending in
    /// one transaction (waiting a moment for more when only a few are
    /// ready); the others find their attempt already settled.
    async fn commit(&self) {
        let _guard = self.commit_lock.lock().await;
        loop {
            let ready = lock(&self.pending).len();
            if ready == 0 {
                return;
            }
            if ready < self.config.group_commit_max && !self.config.group_commit_window.is_zero() {
                tokio::time::sleep(self.config.group_commit_window).await;
            }
            let batch: Vec<Settled> = {
                let mut p = lock(&self.pending);
                let n = p.len().min(self.config.group_commit_max.max(1));
                p.drain(..n).collect()
            };
            let items: Vec<(Claimed, Attempt)> = batch
                .iter()
                .map(|s| (s.msg.clone(), s.attempt.clone()))
                .collect();
            if let Err(e) = self.store.complete_deliveries(&items).await {
                tracing::warn!(error = %e, attempts = items.len(), "cannot record delivery attempts together; recording them one by one");
                for (msg, attempt) in items {
                    if let Err(e) = self.store.complete_delivery(&msg, attempt).await {
                        tracing::error!(error = %e, event = %msg.event_id, "cannot record a delivery attempt; the message is tried again when its lease runs out");
                    }
                }
            }
            {
                let mut c = lock(&self.commits);
                c.0 += 1;
                c.1 += batch.len() as u64;
            }
            {
                let mut held = lock(&self.held);
                for s in &batch {
                    held.remove(&s.msg.id);
                }
            }
            for s in batch {
                if let Some(done) = s.done {
                    let _ = done.send(());
                }
            }
            self.settled.notify_waiters();
        }
    }

    /// One attempt; `true` beside it when it timed out.
    async fn deliver(&self, msg: &Claimed) -> (Attempt, bool) {
        let started = Instant::now();
        let result = match msg.channel {
            OutboxChannel::Webhook => self.webhook(msg).await,
            OutboxChannel::Email => {
                let limit = self.config.connect_timeout + self.config.response_timeout;
                match tokio::time::timeout(limit, self.email(msg)).await {
                    Ok(r) => r.map_err(|(s, e)| (s, e, false)),
                    Err(_) => Err((None, format!("SMTP: no answer within {limit:?}"), true)),
                }
            }
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match result {
            Ok(status) => (
                Attempt {
                    ok: true,
                    status,
                    latency_ms,
                    error: None,
                },
                false,
            ),
            Err((status, error, timed_out)) => (
                Attempt {
                    ok: false,
                    status,
                    latency_ms,
                    error: Some(error),
                },
                timed_out,
            ),
        }
    }

    async fn webhook(&self, msg: &Claimed) -> Result<Option<u16>, (Option<u16>, String, bool)> {
        let target = self
            .store
            .webhook_target(msg.party_id)
            .await
            .map_err(|e| (None, format!("cannot read the channel: {e}"), false))?
            .ok_or((
                None,
                "the platform has no webhook any more".to_owned(),
                false,
            ))?;
        let url = url::Url::parse(&target.url)
            .map_err(|e| (None, format!("bad webhook URL: {e}"), false))?;
        if !self.config.allow_private_targets && url.host_str().is_some_and(is_private_host) {
            return Err((
                None,
                "webhook host is loopback or private; refused".into(),
                false,
            ));
        }
        // the transport timestamp is real time: receivers check it against
        // their own clocks to refuse replays
        let ts = tapis_core::Clock::now(&tapis_core::SystemClock).unix_millis() / 1000;
        let body = msg.payload.as_bytes();
        let signature = crate::webhook::header(&target.secrets, &msg.event_id, ts, body)
            .map_err(|e| (None, e.to_string(), false))?;
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(msg.payload.clone())
            .send()
            .await
            .map_err(|e| (None, describe(&e), e.is_timeout()))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            Ok(Some(status))
        } else {
            Err((Some(status), format!("receiver answered {status}"), false))
        }
    }

    async fn email(&self, msg: &Claimed) -> Result<Option<u16>, (Option<u16>, String)> {
        let Some((transport, from)) = &self.smtp else {
            return Err((None, "no SMTP server is configured ([smtp] url)".into()));
        };
        // the party's own addresses, or the representative's (sealed on
        // the message, with its code when it is a verification)
        let route = self
            .store
            .email_route(msg)
            .await
            .map_err(|e| (None, format!("cannot read the contacts: {e}")))?;
        let to = route.to;
        if to.is_empty() {
            return Err((None, "the platform has no email address".into()));
        }
        let payload: Value =
            serde_json::from_str(&msg.payload).map_err(|e| (None, format!("bad payload: {e}")))?;
        if msg.event_type == EventType::ContactCodeSent {
            let (subject, text) = code_text(&payload, route.code.as_deref().unwrap_or(""));
            let mut builder = Message::builder()
                .from(from.clone())
                .subject(subject)
                .message_id(Some(format!("<{}@tapis>", msg.event_id)));
            for addr in &to {
                let mb: Mailbox = addr
                    .parse()
                    .map_err(|e| (None, format!("bad address: {e}")))?;
                builder = builder.to(mb);
            }
            let email = builder
                .singlepart(SinglePart::plain(text))
                .map_err(|e| (None, format!("cannot build the email: {e}")))?;
            return transport
                .send(email)
                .await
                .map(|r| Some(r.code().into()))
                .map_err(|e| (None, format!("SMTP: {e}")));
        }
        let (subject, text) = summary(&payload, msg.event_type, &self.config.public_url);
        let attachment_body = payload
            .pointer("/data/notice")
            .map(|n| serde_json::to_string_pretty(n).unwrap_or_default())
            .unwrap_or_else(|| msg.payload.clone());
        let notice_id = payload
            .pointer("/data/notice_id")
            .and_then(Value::as_str)
            .unwrap_or("event");
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@tapis>", msg.event_id)));
        for addr in &to {
            let mb: Mailbox = addr
                .parse()
                .map_err(|e| (None, format!("bad address {addr}: {e}")))?;
            builder = builder.to(mb);
        }
        let json_type =
            ContentType::parse("application/json").map_err(|e| (None, e.to_string()))?;
        let email = builder
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(
                        Attachment::new(format!("notice-{notice_id}.signed.json"))
                            .body(attachment_body, json_type),
                    ),
            )
            .map_err(|e| (None, format!("cannot build the email: {e}")))?;
        transport
            .send(email)
            .await
            .map(|r| Some(r.code().into()))
            .map_err(|e| (None, format!("SMTP: {e}")))
    }
}
