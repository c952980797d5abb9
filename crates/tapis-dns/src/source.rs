//! Where the primary gets the zone from: the [`ZoneSource`] trait (current
//! serial, a full snapshot, the diffs since a serial), which an adapter
//! implements over the database, and [`MemoryZone`], an in-memory source
//! with a bounded journal of diffs, for tests and for wiring that keeps
//! the zone in memory.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tapis_core::order::OrderAction;

/// One version step of the zone: records removed and added going from
/// `from` to `to`. Owners are relative to the zone (`judi.example`,
/// `*.judi.example`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<(String, OrderAction)>,
    pub added: Vec<(String, OrderAction)>,
}

/// The zone as the primary sees it. Errors are text for the log (the
/// client gets SERVFAIL).
pub trait ZoneSource: Send + Sync + 'static {
    /// The current serial (asked on every SOA query and IXFR; cache it if
    /// that is expensive).
    fn serial(&self) -> impl Future<Output = Result<u32, String>> + Send;

    /// The current serial and every record: (owner relative to the zone,
    /// e.g. `judi.example` or `*.judi.example`, action).
    fn snapshot(
        &self,
    ) -> impl Future<Output = Result<(u32, Vec<(String, OrderAction)>), String>> + Send;

    /// The steps from `serial` to the current serial, in order, or `None`
    /// if they cannot be given (the client then gets the whole zone).
    /// An empty list means `serial` is current.
    fn changes_since(
        &self,
        serial: u32,
    ) -> impl Future<Output = Result<Option<Vec<Diff>>, String>> + Send;
}

impl<T: ZoneSource> ZoneSource for Arc<T> {
    fn serial(&self) -> impl Future<Output = Result<u32, String>> + Send {
        (**self).serial()
    }

    fn snapshot(
        &self,
    ) -> impl Future<Output = Result<(u32, Vec<(String, OrderAction)>), String>> + Send {
        (**self).snapshot()
    }

    fn changes_since(
        &self,
        serial: u32,
    ) -> impl Future<Output = Result<Option<Vec<Diff>>, String>> + Send {
        (**self).changes_since(serial)
    }
}

/// A zone kept in memory with the last `journal_limit` diffs.
#[derive(Debug)]
pub struct MemoryZone {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    serial: u32,
    records: BTreeMap<String, OrderAction>,
    journal: VecDeque<Diff>,
    journal_limit: usize,
}

impl MemoryZone {
    /// A zone at `serial` with these records (a later record for the same
    /// owner replaces an earlier one). Keeps 1,000 diffs.
    pub fn new(
        serial: u32,
        records: impl IntoIterator<Item = (String, OrderAction)>,
    ) -> MemoryZone {
        MemoryZone {
            state: Mutex::new(State {
                serial,
                records: records.into_iter().collect(),
                journal: VecDeque::new(),
                journal_limit: 1000,
            }),
        }
    }

    /// Keep at most `limit` diffs (older clients get the whole zone).
    pub fn with_journal_limit(self, limit: usize) -> MemoryZone {
        self.lock().journal_limit = limit;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_serial(&self) -> u32 {
        self.lock().serial
    }

    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().records.is_empty()
    }

    /// Removes owners and adds (or changes) records as one step; returns
    /// the new serial (unchanged if nothing changed).
    pub fn apply(
        &self,
        remove: impl IntoIterator<Item = String>,
        add: impl IntoIterator<Item = (String, OrderAction)>,
    ) -> u32 {
        let mut s = self.lock();
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for owner in remove {
            if let Some(action) = s.records.remove(&owner) {
                removed.push((owner, action));
            }
        }
        for (owner, action) in add {
            match s.records.insert(owner.clone(), action) {
                Some(old) if old == action => continue,
                Some(old) => removed.push((owner.clone(), old)),
                None => {}
            }
            added.push((owner, action));
        }
        s.commit(removed, added)
    }

    /// Replaces the whole zone; returns the new serial (unchanged if the
    /// records are the same).
    pub fn replace(&self, records: impl IntoIterator<Item = (String, OrderAction)>) -> u32 {
        let new: BTreeMap<String, OrderAction> = records.into_iter().collect();
        let mut s = self.lock();
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for (owner, action) in &s.records {
            if new.get(owner) != Some(action) {
                removed.push((owner.clone(), *action));
            }
        }
        for (owner, action) in &new {
            if s.records.get(owner) != Some(action) {
                added.push((owner.clone(), *action));
            }
        }
        s.records = new;
        s.commit(removed, added)
    }
}

impl State {
    fn commit(
        &mut self,
        removed: Vec<(String, OrderAction)>,
        added: Vec<(String, OrderAction)>,
    ) -> u32 {
        if removed.is_empty() && added.is_empty() {
            return self.serial;
        }
        let from = self.serial;
        let to = from.wrapping_add(1);
        self.serial = to;
        self.journal.push_back(Diff {
            from,
            to,
            removed,
            added,
        });
        while self.journal.len() > self.journal_limit {
            self.journal.pop_front();
        }
        to
    }
}

impl ZoneSource for MemoryZone {
    async fn serial(&self) -> Result<u32, String> {
        Ok(self.current_serial())
    }

    async fn snapshot(&self) -> Result<(u32, Vec<(String, OrderAction)>), String> {
        let s = self.lock();
        Ok((
            s.serial,
            s.records.iter().map(|(o, a)| (o.clone(), *a)).collect(),
        ))
    }

    async fn changes_since(&self, serial: u32) -> Result<Option<Vec<Diff>>, String> {
        let s = self.lock();
        if serial == s.serial {
            return Ok(Some(Vec::new()));
        }
        let Some(start) = s.journal.iter().position(|d| d.from == serial) else {
            return Ok(None);
        };
        Ok(Some(s.journal.iter().skip(start).cloned().collect()))
    }
}
