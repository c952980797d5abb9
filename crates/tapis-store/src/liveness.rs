//! In-memory heartbeats of this process's background loops (the scheduler,
//! delivery), for `/readyz`: a loop calls `beat(name)` on every pass, and
//! readiness asks whether each expected loop beat recently.
//!
//! Per process and never persisted: another process's loops say nothing
//! about whether this one works. Times are monotonic (`Instant`), not the
//! store's clock, so a simulated clock does not make a loop look dead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Heartbeats shared by every clone of a store.
#[derive(Clone, Default)]
pub struct Liveness {
    beats: Arc<Mutex<BTreeMap<&'static str, Instant>>>,
}

/// A loop that has not beaten within the allowed time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub name: &'static str,
    /// Time since its last beat.
    pub silent_for: Duration,
}

impl Liveness {
    /// Record that the loop `name` completed a pass now.
    pub fn beat(&self, name: &'static str) {
        if let Ok(mut beats) = self.beats.lock() {
            beats.insert(name, Instant::now());
        }
    }

    /// Declare that the loop `name` runs in this process: readiness fails
    /// if it stops beating. Counts as a first beat (a grace period from
    /// start) unless it has beaten already.
    pub fn expect(&self, name: &'static str) {
        if let Ok(mut beats) = self.beats.lock() {
            beats.entry(name).or_insert_with(Instant::now);
        }
    }

    /// Time since each known loop last beat, by name.
    pub fn ages(&self) -> Vec<(&'static str, Duration)> {
        let now = Instant::now();
        self.beats
            .lock()
            .map(|b| {
                b.iter()
                    .map(|(name, at)| (*name, now.saturating_duration_since(*at)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The loops silent for longer than `within`.
    pub fn stale(&self, within: Duration) -> Vec<Stale> {
        self.ages()
            .into_iter()
            .filter(|(_, age)| *age > within)
            .map(|(name, silent_for)| Stale { name, silent_for })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_beats_and_silence_is_reported() {
        let l = Liveness::default();
        let other = l.clone();
        assert!(l.ages().is_empty());
        other.expect("scheduler");
        l.beat("delivery");
        let names: Vec<_> = l.ages().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["delivery", "scheduler"]);
        assert!(l.stale(Duration::from_secs(60)).is_empty());
        std::thread::sleep(Duration::from_millis(5));
        let stale = l.stale(Duration::from_millis(1));
        assert_eq!(stale.len(), 2);
        l.beat("scheduler");
        let stale = l.stale(Duration::from_millis(1));
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].name, "delivery");
    }
}
