//! Where the primary gets the zone from: the [`ZoneSource`] trait (current
//! serial, a full snapshot streamed in batches, the diffs since a serial),
//! which an adapter implements over the database, and [`MemoryZone`], an
//! in-memory source with a bounded journal of diffs, for tests and for
//! wiring that keeps the zone in memory.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tapis_core::order::OrderAction;
use tokio::sync::mpsc;

use crate::zonemd::ZoneDigest;

/// One policy record: an owner relative to the zone (`judi.example`,
/// `*.judi.example`), its action, and optionally the explanation published
/// beside it (see [`crate::explanation_text`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    pub owner: String,
    pub action: OrderAction,
    pub explanation: Option<Arc<str>>,
}

impl Record {
    pub fn new(owner: impl Into<String>, action: OrderAction) -> Record {
        Record {
            owner: owner.into(),
            action,
            explanation: None,
        }
    }

    pub fn explained(mut self, text: impl Into<Arc<str>>) -> Record {
        self.explanation = Some(text.into());
        self
    }
}

impl From<(String, OrderAction)> for Record {
    fn from((owner, action): (String, OrderAction)) -> Record {
        Record::new(owner, action)
    }
}

impl From<(&str, OrderAction)> for Record {
    fn from((owner, action): (&str, OrderAction)) -> Record {
        Record::new(owner, action)
    }
}

/// One version step of the zone: records removed and added going from
/// `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// A whole zone at one serial, its records coming in batches (so a zone of
/// tens of millions of names is never held in memory at once). An error
/// in the stream aborts the transfer.
#[derive(Debug)]
pub struct Snapshot {
    pub serial: u32,
    pub records: mpsc::Receiver<Result<Vec<Record>, String>>,
}

/// Records a snapshot batch holds.
pub const SNAPSHOT_BATCH: usize = 2048;

impl Snapshot {
    /// A snapshot of records already in memory.
    pub fn from_vec(serial: u32, records: Vec<Record>) -> Snapshot {
        let batches: Vec<Vec<Record>> = records
            .chunks(SNAPSHOT_BATCH)
            .map(<[Record]>::to_vec)
            .collect();
        let (tx, rx) = mpsc::channel(batches.len().max(1));
        for b in batches {
            // capacity is the number of batches: never full
            let _ = tx.try_send(Ok(b));
        }
        Snapshot {
            serial,
            records: rx,
        }
    }

    /// Every record, in memory (tests, small zones).
    pub async fn collect(mut self) -> Result<(u32, Vec<Record>), String> {
        let mut all = Vec::new();
        while let Some(batch) = self.records.recv().await {
            all.extend(batch?);
        }
        Ok((self.serial, all))
    }
}

/// The zone as the primary sees it. Errors are text for the log (the
/// client gets SERVFAIL).
pub trait ZoneSource: Send + Sync + 'static {
    /// The current serial (asked on every SOA query and IXFR; cache it if
    /// that is expensive).
    fn serial(&self) -> impl Future<Output = Result<u32, String>> + Send;

    /// The current serial and every record, in batches, all from one
    /// consistent version of the zone.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, String>> + Send;

    /// The steps from `serial` to the current serial, in order, or `None`
    /// if they cannot be given (the client then gets the whole zone).
    /// An empty list means `serial` is current.
    fn changes_since(
        &self,
        serial: u32,
    ) -> impl Future<Output = Result<Option<Vec<Diff>>, String>> + Send;

    /// The ZONEMD digest already known for `serial` (kept from an earlier
    /// computation, perhaps by another process), if any. The primary asks
    /// before computing one, and for the serial a secondary holds when it
    /// builds an IXFR. None by default.
    fn known_digest(
        &self,
        serial: u32,
    ) -> impl Future<Output = Result<Option<ZoneDigest>, String>> + Send {
        let _ = serial;
        async { Ok(None) }
    }

    /// A digest the primary computed (to keep, and to log): called once
    /// per serial the primary computes. Nothing by default.
    fn digest_computed(
        &self,
        digest: ZoneDigest,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = digest;
        async { Ok(()) }
    }
}

impl<T: ZoneSource> ZoneSource for Arc<T> {
    fn serial(&self) -> impl Future<Output = Result<u32, String>> + Send {
        (**self).serial()
    }

    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, String>> + Send {
        (**self).snapshot()
    }

    fn changes_since(
        &self,
        serial: u32,
    ) -> impl Future<Output = Result<Option<Vec<Diff>>, String>> + Send {
        (**self).changes_since(serial)
    }

    fn known_digest(
        &self,
        serial: u32,
    ) -> impl Future<Output = Result<Option<ZoneDigest>, String>> + Send {
        (**self).known_digest(serial)
    }

    fn digest_computed(
        &self,
        digest: ZoneDigest,
    ) -> impl Future<Output = Result<(), String>> + Send {
        (**self).digest_computed(digest)
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
    records: BTreeMap<String, (OrderAction, Option<Arc<str>>)>,
    journal: VecDeque<Diff>,
    journal_limit: usize,
}

impl MemoryZone {
    /// A zone at `serial` with these records (a later record for the same
    /// owner replaces an earlier one). Keeps 1,000 diffs.
    pub fn new<R: Into<Record>>(serial: u32, records: impl IntoIterator<Item = R>) -> MemoryZone {
        MemoryZone {
            state: Mutex::new(State {
                serial,
                records: records.into_iter().map(|r| split(r.into())).collect(),
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

    /// Every record, in owner order.
    pub fn records(&self) -> Vec<Record> {
        self.lock()
            .records
            .iter()
            .map(|(o, v)| join(o.clone(), v.clone()))
            .collect()
    }

    /// Removes owners and adds (or changes) records as one step; returns
    /// the new serial (unchanged if nothing changed).
    pub fn apply<R: Into<Record>>(
        &self,
        remove: impl IntoIterator<Item = String>,
        add: impl IntoIterator<Item = R>,
    ) -> u32 {
        let mut s = self.lock();
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for owner in remove {
            if let Some(v) = s.records.remove(&owner) {
                removed.push(join(owner, v));
            }
        }
        for r in add {
            let (owner, v) = split(r.into());
            match s.records.insert(owner.clone(), v.clone()) {
                Some(old) if old == v => continue,
                Some(old) => removed.push(join(owner.clone(), old)),
                None => {}
            }
            added.push(join(owner, v));
        }
        s.commit(removed, added)
    }

    /// Replaces the whole zone; returns the new serial (unchanged if the
    /// records are the same).
    pub fn replace<R: Into<Record>>(&self, records: impl IntoIterator<Item = R>) -> u32 {
        let new: BTreeMap<String, (OrderAction, Option<Arc<str>>)> =
            records.into_iter().map(|r| split(r.into())).collect();
        let mut s = self.lock();
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for (owner, v) in &s.records {
            if new.get(owner) != Some(v) {
                removed.push(join(owner.clone(), v.clone()));
            }
        }
        for (owner, v) in &new {
            if s.records.get(owner) != Some(v) {
                added.push(join(owner.clone(), v.clone()));
            }
        }
        s.records = new;
        s.commit(removed, added)
    }
}

fn split(r: Record) -> (String, (OrderAction, Option<Arc<str>>)) {
    (r.owner, (r.action, r.explanation))
}

fn join(owner: String, (action, explanation): (OrderAction, Option<Arc<str>>)) -> Record {
    Record {
        owner,
        action,
        explanation,
    }
}

impl State {
    fn commit(&mut self, removed: Vec<Record>, added: Vec<Record>) -> u32 {
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

    async fn snapshot(&self) -> Result<Snapshot, String> {
        let s = self.lock();
        let records = s
            .records
            .iter()
            .map(|(o, v)| join(o.clone(), v.clone()))
            .collect();
        Ok(Snapshot::from_vec(s.serial, records))
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
