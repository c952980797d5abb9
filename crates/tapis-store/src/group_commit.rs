//! Group commit: small writes that arrive together share one transaction,
//! one turn of the audit chain's lock and one sync to disk.
//!
//! Every write takes the chain lock (the audit log is one hash chain), so
//! under load the writes queue for it and each pays its own commit, which
//! on a database that syncs to disk is most of its cost. Here a write is
//! queued as a *job*; whichever caller finds no batch running spawns a
//! *leader* task that takes up to [`MAX_BATCH`] queued jobs, runs each
//! inside its own savepoint of one locked transaction, commits once, and
//! only then answers every caller. A job that fails is rolled back to its
//! savepoint and answered with its own error alone; if the commit fails,
//! every job of the batch gets that error and none of them happened. So a
//! caller's answer means exactly what it meant before: acknowledged means
//! committed.
//!
//! The leader runs in its own task, so a caller that goes away (a client
//! that hangs up) never cancels a batch half-way, and it exits when the
//! queue is empty: nothing holds the store alive between busy periods.
//! When nothing else is queued a job runs at once, alone: batching costs
//! no latency when the system is quiet.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{Any, Transaction};
use tokio::sync::oneshot;

use crate::{Error, Result, Store};

type Tx = Transaction<'static, Any>;

/// At most this many jobs share one transaction. A notice submission is
/// about a dozen statements, so a full batch holds the lock for tens of
/// milliseconds at most.
pub const MAX_BATCH: usize = 32;

type Finish = Box<dyn FnOnce(Option<&Error>) + Send>;
type JobFuture<'c> = Pin<Box<dyn Future<Output = (bool, Finish)> + Send + 'c>>;

/// A queued write, its type erased: run it on the batch's transaction
/// (telling whether it succeeded, and how to answer its caller once the
/// batch's fate is known), or answer it with an error without running it.
trait Pending: Send {
    fn run<'c>(self: Box<Self>, tx: &'c mut Tx) -> JobFuture<'c>;
    fn abandon(self: Box<Self>, why: &Error);
}

struct Write<T, F> {
    body: F,
    answer: oneshot::Sender<Result<T>>,
}

impl<T, F> Pending for Write<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut Tx) -> Body<'c, T> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, tx: &'c mut Tx) -> JobFuture<'c> {
        let Write { body, answer } = *self;
        Box::pin(async move {
            let outcome = body(tx).await;
            let ok = outcome.is_ok();
            let finish: Finish = Box::new(move |failed: Option<&Error>| {
                let outcome = match failed {
                    Some(e) if ok => Err(batch_failure(e)),
                    _ => outcome,
                };
                // the caller may have gone away: its write stands
                let _ = answer.send(outcome);
            });
            (ok, finish)
        })
    }

    fn abandon(self: Box<Self>, why: &Error) {
        let _ = self.answer.send(Err(batch_failure(why)));
    }
}

/// A write's body: it runs on the batch's transaction and must do nothing
/// else (no network, no waiting on other tasks), like any write.
pub(crate) type Body<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

struct Queued {
    job: Box<dyn Pending>,
    since: Instant,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    leader: bool,
}

/// One store pool's queue of writes waiting for a batch.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    stats: Mutex<Stats>,
}

/// What batching has done so far (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Transactions committed by batches.
    pub batches: u64,
    /// Jobs those batches carried.
    pub jobs: u64,
    /// The largest batch so far.
    pub largest: usize,
}

/// How full the queue is now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Writes waiting for a batch (not counting the one running).
    pub queued: usize,
    /// How long the oldest of them has waited.
    pub oldest: Duration,
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // a panic while holding this lock left only a queue behind
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn backlog(&self) -> Backlog {
        let s = self.lock();
        Backlog {
            queued: s.queue.len(),
            oldest: s
                .queue
                .front()
                .map(|q| q.since.elapsed())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_batch(&self, jobs: usize) {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.batches += 1;
        s.jobs += jobs as u64;
        s.largest = s.largest.max(jobs);
    }
}

/// The error a job gets when the batch it was in could not commit: the same
/// class of failure (so a retryable one stays a 503), worded for it.
fn batch_failure(e: &Error) -> Error {
    match e.unavailability() {
        Some(why) => Error::Unavailable {
            why,
            detail: format!("the write was not committed: {e}"),
        },
        None => Error::Database(sqlx::Error::Protocol(format!(
            "the write was not committed: {e}"
        ))),
    }
}

impl Store {
    /// Run `body` as one write, batched with others that arrive together
    /// (see the module's comment). `body` runs under the audit chain's lock
    /// on a transaction it shares with other writes, inside its own
    /// savepoint; its error undoes only its own statements.
    pub(crate) async fn grouped<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Tx) -> Body<'c, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T>>();
        let job: Box<dyn Pending> = Box::new(Write { body, answer });
        let lead = {
            let mut s = self.group.lock();
            s.queue.push_back(Queued {
                job,
                since: Instant::now(),
            });
            !std::mem::replace(&mut s.leader, true)
        };
        if lead {
            let store = self.clone();
            tokio::spawn(async move { store.lead_batches().await });
        }
        answered.await.unwrap_or_else(|_| {
            Err(Error::Unavailable {
                why: crate::Unavailability::Unreachable,
                detail: "the write's batch was abandoned (the server is stopping)".into(),
            })
        })
    }

    /// Writes waiting for a batch now.
    pub fn write_backlog(&self) -> Backlog {
        self.group.backlog()
    }

    /// What batching has done so far.
    pub fn group_commit_stats(&self) -> Stats {
        self.group.stats()
    }

    /// Take batches from the queue until it is empty.
    async fn lead_batches(self) {
        // should this task end early (a panic, the runtime stopping), the
        // next caller must be able to lead again; the jobs it held are
        // dropped, and their callers told
        struct Resign<'a> {
            group: &'a GroupCommit,
            armed: bool,
        }
        impl Drop for Resign<'_> {
            fn drop(&mut self) {
                if self.armed {
                    self.group.lock().leader = false;
                }
            }
        }
        let group = self.group.clone();
        let mut resign = Resign {
            group: &group,
            armed: true,
        };
        loop {
            let batch: Vec<Queued> = {
                let mut s = group.lock();
                let n = s.queue.len().min(MAX_BATCH);
                if n == 0 {
                    s.leader = false;
                    resign.armed = false;
                    return;
                }
                s.queue.drain(..n).collect()
            };
            // the batch's audit events are written together at its end
            crate::audit_batch::scope(self.run_batch(batch)).await;
        }
    }

    async fn run_batch(&self, batch: Vec<Queued>) {
        let jobs = batch.len();
        let mut tx = match self.write().await {
            Ok(tx) => tx,
            Err(e) => {
                for q in batch {
                    q.job.abandon(&e);
                }
                return;
            }
        };
        crate::audit_batch::bind(&tx);
        // alone, a job needs no savepoint: its failure drops the transaction
        let alone = jobs == 1;
        let mut done: Vec<Finish> = Vec::with_capacity(jobs);
        let mut broken: Option<Error> = None;
        for q in batch {
            if let Some(e) = &broken {
                q.job.abandon(e);
                continue;
            }
            if !alone && let Err(e) = statement(&mut tx, "SAVEPOINT tapis_job").await {
                q.job.abandon(&e);
                broken = Some(e);
                continue;
            }
            let mark = crate::audit_batch::mark();
            let (ok, finish) = q.job.run(&mut tx).await;
            if !ok {
                // its events go with its savepoint
                crate::audit_batch::rewind(mark);
            }
            if ok {
                done.push(finish);
            } else {
                // its own error, whatever becomes of the batch
                finish(None);
                if alone {
                    return;
                }
            }
            if alone {
                continue;
            }
            let step = if ok {
                statement(&mut tx, "RELEASE SAVEPOINT tapis_job").await
            } else {
                match statement(&mut tx, "ROLLBACK TO SAVEPOINT tapis_job").await {
                    Ok(()) => statement(&mut tx, "RELEASE SAVEPOINT tapis_job").await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = step {
                broken = Some(e);
            }
        }
        let committed = match broken {
            Some(e) => Err(e),
            None => match crate::audit_batch::flush(&mut tx).await {
                Ok(()) => tx.commit().await.map_err(Error::from),
                Err(e) => Err(e),
            },
        };
        match committed {
            Ok(()) => {
                self.group.note_batch(jobs);
                for finish in done {
                    finish(None);
                }
                self.signal();
            }
            Err(e) => {
                tracing::warn!(jobs, error = %e, "a batch of writes was not committed");
                for finish in done {
                    finish(Some(&e));
                }
            }
        }
    }
}

async fn statement(tx: &mut Tx, sql: &str) -> Result<()> {
    sqlx::query(sql).execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tapis_core::EventType;
    use tapis_core::audit::Actor;
    use tapis_core::tlog;

    use crate::audit::Event;
    use crate::testing::{TestDb, backends};
    use crate::{Error, Store};

    /// A job that appends `events` audit events and then fails or not.
    async fn job(store: &Store, n: usize, events: usize, fail: bool) -> Result<i64, Error> {
        let at = store.now();
        store
            .grouped(move |tx| {
                Box::pin(async move {
                    let mut last = 0;
                    for e in 0..events {
                        last = Event::about(
                            EventType::PrivacyClientAddressesLogged,
                            "setting",
                            format!("batch.test.{n}.{e}"),
                            json!({"job": n, "event": e}),
                        )
                        .append(tx, at, &Actor::system("test"))
                        .await?;
                    }
                    if fail {
                        return Err(Error::Conflict(format!("job {n} fails on purpose")));
                    }
                    Ok(last)
                })
            })
            .await
    }

    /// Events appended in batches (deferred, written at the batch's end)
    /// make the same chain and the same log as one-by-one appends: the
    /// chain verifies, every leaf and every stored subtree agrees with the
    /// tree recomputed from the events, and a failed job's events vanish
    /// with its savepoint while the jobs around it keep theirs.
    #[tokio::test]
    async fn batched_events_keep_the_chain_and_the_log() {
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = db.open(Arc::new(tapis_core::SystemClock)).await;
            let before = store.verify_audit().await.expect("verify").events;
            let mut tasks = Vec::new();
            for n in 0..60usize {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let events = 1 + n % 3;
                    let fail = n % 5 == 2;
                    (n, events, fail, job(&store, n, events, fail).await)
                }));
            }
            let mut kept = 0u64;
            let mut seqs = std::collections::HashSet::new();
            for t in tasks {
                let (n, events, fail, out) = t.await.expect("join");
                match (fail, out) {
                    (true, Err(Error::Conflict(m))) => assert!(m.contains(&n.to_string())),
                    (false, Ok(seq)) => {
                        kept += events as u64;
                        assert!(seqs.insert(seq), "{backend:?}: seq {seq} given twice");
                    }
                    (f, o) => panic!("{backend:?}: job {n} (fail={f}) answered {o:?}"),
                }
            }
            let stats = store.group_commit_stats();
            assert!(
                stats.batches < stats.jobs,
                "{backend:?}: no batch formed: {stats:?}"
            );
            let report = store.verify_audit().await.expect("verify");
            assert!(report.ok(), "{backend:?}: {report:?}");
            assert_eq!(report.events - before, kept, "{backend:?}");
            // the jobs that failed left nothing behind
            for n in (0..60usize).filter(|n| n % 5 == 2) {
                let left = store
                    .events_for("setting", &format!("batch.test.{n}.0"))
                    .await
                    .expect("events");
                assert!(left.is_empty(), "{backend:?}: job {n}'s event survived");
            }
            let truth = store.recompute_log().await.expect("recompute");
            assert!(
                truth.problems.is_empty(),
                "{backend:?}: {:?}",
                truth.problems
            );
            let size = store.log_size().await.expect("size");
            assert_eq!(size, report.events, "{backend:?}: one leaf per event");
            for n in [1, size / 3, size / 2 + 1, size - 1, size] {
                let root = store.log_root(n).await.expect("root");
                assert_eq!(
                    Ok(root),
                    tlog::root(&truth.tree, n),
                    "{backend:?}: root of {n}"
                );
            }
            // and an append after the batches continues the same chain
            job(&store, 1000, 1, false).await.expect("after");
            assert!(store.verify_audit().await.expect("verify").ok());
            assert!(
                store
                    .recompute_log()
                    .await
                    .expect("recompute")
                    .problems
                    .is_empty()
            );
            store.close().await;
            db.cleanup().await;
        }
    }
}
