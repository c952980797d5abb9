//! The in-memory matching index: one `tapis_match::Bank` per signal bank,
//! loaded whole the first time a bank is matched and from then on brought
//! up to date from its sequence (`bank_changes`) before each match: an
//! addition is added to the index, a tombstone marks its entry removed,
//! nothing is rebuilt. Since the sequence is in the database, several
//! `tapis serve` processes on one PostgreSQL each catch up with what the
//! others wrote, and a match always sees every change committed before it
//! began. Replaying a change is idempotent (keyed by signal id), so a load
//! racing a write cannot add a signal twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use tapis_core::bank::{BankAction, LOW_QUALITY};
use tapis_match::{Bank, EntryId, Labels, Provenance, Signal, SignalKind};

use super::{
    BankView, LegalBasis, SIGNAL_COLUMNS, SignalLabels, SourceRef, bank_from_row, require,
    signal_from_row,
};
use crate::{Error, Principal, Result, Store};

/// One match of one query.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchHit {
    pub bank_id: String,
    pub bank_name: String,
    pub signal_id: String,
    /// The signal's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The signal's normalised value.
    pub value: String,
    pub labels: SignalLabels,
    /// PDQ Hamming distance (0 for exact types).
    pub distance: u32,
    /// The signal's PDQ quality, when recorded.
    pub quality: Option<u8>,
    /// The signal's PDQ quality is below 50: weaker evidence.
    pub low_quality: bool,
    pub source: SourceRef,
    pub legal_basis: LegalBasis,
}

/// What a bank's entry carries beyond the matching library's entry.
#[derive(Debug)]
struct Meta {
    signal_id: String,
    source: SourceRef,
    legal_basis: LegalBasis,
}

#[derive(Debug)]
struct Cached {
    /// The last change applied.
    seq: i64,
    name: String,
    bank: Bank,
    /// By entry id.
    meta: Vec<Meta>,
    by_signal: HashMap<String, EntryId>,
}

impl Cached {
    fn add(&mut self, row: &AnyRow) -> Result<()> {
        let s = signal_from_row(row)?;
        if self.by_signal.contains_key(&s.id) {
            return Ok(());
        }
        let kind = SignalKind::parse(&s.kind).map_err(Error::corrupt)?;
        let signal = Signal::parse(kind, &s.value).map_err(Error::corrupt)?;
        let labels = Labels {
            category: s.labels.category.clone(),
            tier: s.labels.tier.clone(),
            group: s.labels.group.clone(),
        };
        let provenance = Provenance {
            source: Some(s.source.id.clone()),
            added_by: Some(s.added_by.clone()),
            added_at: None,
        };
        let id = self.bank.add(signal, s.quality, labels, provenance);
        self.by_signal.insert(s.id.clone(), id);
        self.meta.push(Meta {
            signal_id: s.id,
            source: s.source,
            legal_basis: s.legal_basis,
        });
        Ok(())
    }

    fn remove(&mut self, signal_id: &str) {
        if let Some(&id) = self.by_signal.get(signal_id) {
            self.bank.remove(id);
        }
    }
}

/// The per-bank indexes of one process. Share one per server (it lives in
/// the HTTP state); each bank is loaded on its first match.
#[derive(Debug, Default)]
pub struct Matcher {
    banks: RwLock<HashMap<String, Arc<RwLock<Cached>>>>,
    /// Held while a bank is loaded whole, so two loads never race.
    loading: tokio::sync::Mutex<()>,
    full_loads: AtomicU64,
    changes_applied: AtomicU64,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the index has been kept: whole loads (one per bank per process)
/// and changes applied one by one since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MatcherStats {
    pub banks: usize,
    pub full_loads: u64,
    pub changes_applied: u64,
}

impl Matcher {
    pub fn new() -> Matcher {
        Matcher::default()
    }

    pub fn stats(&self) -> MatcherStats {
        MatcherStats {
            banks: read(&self.banks).len(),
            full_loads: self.full_loads.load(Ordering::Relaxed),
            changes_applied: self.changes_applied.load(Ordering::Relaxed),
        }
    }

    /// Bring bank `b` (as just read) up to its sequence number.
    async fn refresh(&self, store: &Store, b: &BankView) -> Result<Arc<RwLock<Cached>>> {
        let mut existing = read(&self.banks).get(&b.id).cloned();
        let _loading = if existing.is_none() {
            let guard = self.loading.lock().await;
            existing = read(&self.banks).get(&b.id).cloned();
            Some(guard)
        } else {
            None
        };
        let cached = match existing {
            Some(c) => c,
            None => {
                // b.seq was read before these rows: anything later is
                // replayed below, idempotently
                let rows = sqlx::query(&format!(
                    "SELECT {SIGNAL_COLUMNS} FROM bank_signals s WHERE s.bank_id = $1 AND s.removed_at IS NULL ORDER BY s.added_seq"
                ))
                .bind(&b.id)
                .fetch_all(&store.pool)
                .await?;
                let mut c = Cached {
                    seq: b.seq,
                    name: b.name.clone(),
                    bank: Bank::new(b.name.clone()),
                    meta: Vec::with_capacity(rows.len()),
                    by_signal: HashMap::with_capacity(rows.len()),
                };
                for r in &rows {
                    c.add(r)?;
                }
                self.full_loads.fetch_add(1, Ordering::Relaxed);
                let c = Arc::new(RwLock::new(c));
                write(&self.banks).entry(b.id.clone()).or_insert(c).clone()
            }
        };
        let have = read(&cached).seq;
        if have < b.seq {
            let rows = sqlx::query(&format!(
                "SELECT c.seq AS change_seq, c.op, {SIGNAL_COLUMNS} FROM bank_changes c \
                 JOIN bank_signals s ON s.id = c.signal_id WHERE c.bank_id = $1 AND c.seq > $2 ORDER BY c.seq"
            ))
            .bind(&b.id)
            .bind(have)
            .fetch_all(&store.pool)
            .await?;
            let mut c = write(&cached);
            for r in &rows {
                let seq: i64 = r.try_get("change_seq")?;
                if seq <= c.seq {
                    continue;
                }
                let op: String = r.try_get("op")?;
                if op == "add" {
                    c.add(r)?;
                } else {
                    let id: String = r.try_get("id")?;
                    c.remove(&id);
                }
                c.seq = seq;
                self.changes_applied.fetch_add(1, Ordering::Relaxed);
            }
        }
        {
            let mut c = write(&cached);
            if c.bank.pdq_threshold() != b.pdq_threshold {
                c.bank
                    .set_pdq_threshold(b.pdq_threshold)
                    .map_err(Error::corrupt)?;
            }
            if c.name != b.name {
                c.name.clone_from(&b.name);
            }
        }
        Ok(cached)
    }
}

/// Load every enabled bank's index (at start, so the first match does not
/// wait for it). Failures are logged; a bank not loaded here loads on its
/// first match.
pub async fn warm(store: Store, matcher: Arc<Matcher>) {
    let rows = match sqlx::query(&format!(
        "SELECT {LIGHT_COLUMNS} FROM banks b WHERE b.enabled = 1"
    ))
    .fetch_all(&store.pool)
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "signal banks not loaded at start");
            return;
        }
    };
    for r in &rows {
        let loaded = match bank_from_row(r) {
            Ok(b) => matcher.refresh(&store, &b).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = loaded {
            tracing::warn!(error = %e, "a signal bank was not loaded at start");
        }
    }
}

const LIGHT_COLUMNS: &str = "b.id, b.name, b.description, b.enabled, b.pdq_threshold, b.shared_with, \
    b.contributors, b.review_after, b.seq, b.created_at, b.changed_at, 0 AS live";

impl Store {
    /// Match `queries` against the banks `by` may match (or only `only`,
    /// each of which it must be allowed to match: another's is a 404).
    /// Disabled banks match nothing. Answers are in query order, each
    /// nearest first, then by bank name.
    pub async fn match_signals(
        &self,
        matcher: &Matcher,
        by: &Principal,
        only: Option<&[String]>,
        queries: &[Signal],
    ) -> Result<Vec<Vec<MatchHit>>> {
        require(by, None, BankAction::Match)?;
        let rows = sqlx::query(&format!(
            "SELECT {LIGHT_COLUMNS} FROM banks b ORDER BY b.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        let all = rows.iter().map(bank_from_row).collect::<Result<Vec<_>>>()?;
        let mut chosen = Vec::new();
        match only {
            Some(ids) => {
                for id in ids {
                    let b = all
                        .iter()
                        .find(|b| &b.id == id)
                        .ok_or(Error::NotFound("bank"))?;
                    require(by, Some(b), BankAction::Match)?;
                    if b.enabled && !chosen.iter().any(|c: &&BankView| c.id == b.id) {
                        chosen.push(b);
                    }
                }
            }
            None => chosen.extend(
                all.iter()
                    .filter(|b| b.enabled && require(by, Some(b), BankAction::Match).is_ok()),
            ),
        }
        let mut answers: Vec<Vec<MatchHit>> = vec![Vec::new(); queries.len()];
        let pdq: Vec<(usize, tapis_match::PdqHash)> = queries
            .iter()
            .enumerate()
            .filter_map(|(i, q)| match q {
                Signal::Pdq(h) => Some((i, *h)),
                _ => None,
            })
            .collect();
        let hashes: Vec<_> = pdq.iter().map(|(_, h)| *h).collect();
        for b in chosen {
            let cached = matcher.refresh(self, b).await?;
            let c = read(&cached);
            let hit = |m: &tapis_match::Match<'_>| -> Option<MatchHit> {
                let meta = c.meta.get(m.entry.id as usize)?;
                Some(MatchHit {
                    bank_id: b.id.clone(),
                    bank_name: c.name.clone(),
                    signal_id: meta.signal_id.clone(),
                    kind: m.entry.signal.kind().as_str().to_owned(),
                    value: m.entry.signal.to_string(),
                    labels: SignalLabels {
                        category: m.entry.labels.category.clone(),
                        tier: m.entry.labels.tier.clone(),
                        group: m.entry.labels.group.clone(),
                    },
                    distance: m.distance,
                    quality: m.entry.quality,
                    low_quality: m.entry.quality.is_some_and(|q| q < LOW_QUALITY),
                    source: meta.source.clone(),
                    legal_basis: meta.legal_basis.clone(),
                })
            };
            if !hashes.is_empty() {
                for ((i, _), ms) in pdq.iter().zip(c.bank.lookup_pdq(&hashes)) {
                    answers[*i].extend(ms.iter().filter_map(&hit));
                }
            }
            for (i, q) in queries.iter().enumerate() {
                if !matches!(q, Signal::Pdq(_)) {
                    answers[i].extend(c.bank.lookup(q).iter().filter_map(&hit));
                }
            }
        }
        for a in &mut answers {
            a.sort_by(|x, y| (x.distance, &x.bank_name).cmp(&(y.distance, &y.bank_name)));
        }
        Ok(answers)
    }
}
