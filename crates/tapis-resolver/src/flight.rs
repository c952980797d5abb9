//! Upstream queries in flight: at most `max_upstream_queries` exchanges at
//! once, and one exchange per question. Each exchange holds a socket (a
//! file descriptor) until its upstream answers or times out, so with a slow
//! upstream an unbounded resolver opens a socket per random-name query until
//! the process runs out of files and then fails everyone. Here a cache miss
//! joins the flight already asking its (name, type, class) and waits for
//! that answer; a miss for a new question starts a flight only while fewer
//! than the cap are up, and is otherwise answered SERVFAIL at once. Policy
//! and cache answers never come here, so they keep flowing.
//!
//! Waiting clients hold no socket, only a task and their query; they are
//! bounded too (`WAITERS_PER_SLOT` × the cap, all flights together), so a
//! flood of one name cannot queue without end either.
//!
//! The leader stores the answer in the cache before it wakes the others,
//! so each waiter answers from the cache with its own id and question case.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::metrics::Metrics;

/// Clients that may wait on flights, per slot of the cap.
pub const WAITERS_PER_SLOT: usize = 8;

/// What a flight brought back.
#[derive(Clone, Debug)]
pub enum Outcome {
    Pending,
    /// The upstream's answer, as received.
    Answer(Arc<[u8]>),
    /// No upstream answered.
    Failed,
}

struct Entry {
    tx: watch::Sender<Outcome>,
}

struct Inner {
    /// Flights by question key (lowercase name, type, class).
    map: Mutex<HashMap<Box<[u8]>, Entry>>,
    max: usize,
    max_waiting: usize,
    metrics: Arc<Metrics>,
}

/// The flights of one resolver.
#[derive(Clone)]
pub struct Flights {
    inner: Arc<Inner>,
}

/// A place in a flight: ask the upstream ([`Lead`]) or wait for who does.
pub enum Ticket {
    Lead(Lead),
    Wait(Wait),
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ticket::Lead(_) => "Lead",
            Ticket::Wait(_) => "Wait",
        })
    }
}

/// The one exchange for a question; ends the flight when dropped.
pub struct Lead {
    inner: Arc<Inner>,
    key: Box<[u8]>,
}

/// A client waiting on another's exchange.
pub struct Wait {
    inner: Arc<Inner>,
    rx: watch::Receiver<Outcome>,
}

fn gauge(a: &AtomicU64) -> usize {
    usize::try_from(a.load(Relaxed)).unwrap_or(usize::MAX)
}

impl Flights {
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Flights {
        Flights {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                max,
                max_waiting: max.saturating_mul(WAITERS_PER_SLOT),
                metrics,
            }),
        }
    }

    /// Joins the flight for `key`, or starts one; `None` when the cap (of
    /// exchanges, or of waiting clients) is reached.
    pub fn join(&self, key: &[u8]) -> Option<Ticket> {
        let i = &self.inner;
        let m = &i.metrics;
        let mut map = i.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get(key) {
            if gauge(&m.upstream_waiting) >= i.max_waiting {
                m.upstream_over_cap.fetch_add(1, Relaxed);
                return None;
            }
            m.upstream_waiting.fetch_add(1, Relaxed);
            m.upstream_coalesced.fetch_add(1, Relaxed);
            return Some(Ticket::Wait(Wait {
                inner: i.clone(),
                rx: e.tx.subscribe(),
            }));
        }
        if gauge(&m.upstream_in_flight) >= i.max {
            m.upstream_over_cap.fetch_add(1, Relaxed);
            return None;
        }
        m.upstream_in_flight.fetch_add(1, Relaxed);
        let key: Box<[u8]> = key.into();
        map.insert(
            key.clone(),
            Entry {
                tx: watch::channel(Outcome::Pending).0,
            },
        );
        Some(Ticket::Lead(Lead {
            inner: i.clone(),
            key,
        }))
    }

    /// Exchanges in flight now.
    pub fn in_flight(&self) -> usize {
        gauge(&self.inner.metrics.upstream_in_flight)
    }
}

impl Lead {
    /// Gives the outcome to every waiter and ends the flight.
    pub fn finish(self, outcome: Outcome) {
        let map = self
            .inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get(&self.key) {
            e.tx.send_replace(outcome);
        }
        // Drop removes the entry
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        // A leader cancelled before finishing drops the sender with the
        // entry: its waiters see the channel close and answer SERVFAIL.
        self.inner
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        self.inner.metrics.upstream_in_flight.fetch_sub(1, Relaxed);
    }
}

impl Wait {
    /// The leader's outcome ([`Outcome::Failed`] if it gave none).
    pub async fn outcome(mut self) -> Outcome {
        match self.rx.wait_for(|o| !matches!(o, Outcome::Pending)).await {
            Ok(o) => o.clone(),
            Err(_) => Outcome::Failed,
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.inner.metrics.upstream_waiting.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_exchange_per_question_and_a_cap() {
        let m = Arc::new(Metrics::new(vec![], vec![]));
        let f = Flights::new(2, m.clone());
        let Some(Ticket::Lead(a)) = f.join(b"a") else {
            panic!("the first asker leads")
        };
        let Some(Ticket::Wait(w)) = f.join(b"a") else {
            panic!("the second waits")
        };
        let Some(Ticket::Lead(b)) = f.join(b"b") else {
            panic!("another question leads")
        };
        assert!(f.join(b"c").is_none(), "a third exchange is over the cap");
        assert_eq!(f.in_flight(), 2);
        let waiter = tokio::spawn(w.outcome());
        a.finish(Outcome::Answer(Arc::from(&b"x"[..])));
        assert!(matches!(waiter.await, Ok(Outcome::Answer(x)) if &*x == b"x"));
        drop(b);
        assert_eq!(f.in_flight(), 0);
        let Some(Ticket::Lead(c)) = f.join(b"c") else {
            panic!("room again")
        };
        let Some(Ticket::Wait(w)) = f.join(b"c") else {
            panic!("waits")
        };
        drop(c);
        assert!(matches!(w.outcome().await, Outcome::Failed), "leader gone");
        assert_eq!(m.upstream_waiting.load(Relaxed), 0);
        assert_eq!(m.upstream_coalesced.load(Relaxed), 2);
        assert_eq!(m.upstream_over_cap.load(Relaxed), 1);
    }
}
