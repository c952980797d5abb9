//! A batch's audit events written at once, at the end of its transaction.
//!
//! Every audit event is a link of one hash chain and a leaf of the
//! transparency log, so appending one costs a read of the chain head, the
//! event, its salt, and the log's subtrees it completes: four or five
//! statements, each a round trip on PostgreSQL and a turn of SQLite's one
//! writer. A group-committed batch (`group_commit.rs`) or a batch of
//! delivery completions appends several events to one transaction while it
//! holds the chain lock, so nothing else can append in between: here the
//! head is read once, each event's sequence number, chain hash and salt are
//! computed in memory as it is appended (so the caller gets its `seq` at
//! once, exactly as before), and [`flush`] writes all of the batch's events,
//! salts and log nodes with one multi-row insert per table just before the
//! commit. The events and their hashes are byte for byte what one-by-one
//! appends would have written; only the number of statements changes.
//!
//! The deferral is bound to one transaction (by its address, see [`bind`]):
//! an append on any other transaction is immediate, as always. Readers of
//! the chain inside the batch's transaction see the pending events through
//! [`tip`], [`salt_of`] and [`latest_about`] (used by `audit::head`,
//! `tlog::entry_in` and `tlog::latest_entry_about`). **Invariant:** code
//! that runs inside a batch must not read `audit_events`, `tlog_salts` or
//! `tlog_nodes` directly; it goes through those three functions. A job that
//! fails inside its savepoint has its pending events dropped with it
//! ([`mark`] / [`rewind`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;

use sqlx::{Any, Transaction};
use tapis_core::tlog::{self, Hash, NodeId, leaf::event_leaf_hash};

use crate::{Error, Result};

type Tx = Transaction<'static, Any>;

tokio::task_local! {
    static BATCH: RefCell<Pending>;
}

/// Where the chain stands after the last pending event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tip {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// One event waiting to be written, with its columns already encoded.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub before: String,
    pub after: String,
    pub prev: [u8; 32],
    pub hash: [u8; 32],
    pub salt: [u8; 32],
}

#[derive(Default)]
struct Pending {
    /// The transaction the events belong to (its address while bound).
    tx: Option<usize>,
    /// The head after the last pending event, once it has been read.
    tip: Option<Tip>,
    rows: Vec<Row>,
}

/// How far the batch had got: to undo a failed job's events.
pub(crate) struct Mark {
    len: usize,
    tip: Option<Tip>,
}

fn address(tx: &Tx) -> usize {
    tx as *const Tx as usize
}

/// Run `fut` with a batch scope: appends on the transaction given to
/// [`bind`] inside it are deferred until [`flush`].
pub(crate) async fn scope<F: Future>(fut: F) -> F::Output {
    BATCH.scope(RefCell::new(Pending::default()), fut).await
}

/// Defer appends on `tx` (which must stay where it is until the batch
/// flushes: it is named by its address).
pub(crate) fn bind(tx: &Tx) {
    let _ = BATCH.try_with(|b| b.borrow_mut().tx = Some(address(tx)));
}

/// Whether appends on `tx` are deferred.
pub(crate) fn defers(tx: &Tx) -> bool {
    BATCH
        .try_with(|b| b.borrow().tx == Some(address(tx)))
        .unwrap_or(false)
}

/// The head after the pending events, if the batch has read it.
pub(crate) fn tip() -> Option<Tip> {
    BATCH.try_with(|b| b.borrow().tip).ok().flatten()
}

/// Queue one event (its hash computed by the caller from [`tip`]).
pub(crate) fn push(row: Row) {
    let _ = BATCH.try_with(|b| {
        let mut b = b.borrow_mut();
        b.tip = Some(Tip {
            seq: row.seq,
            hash: row.hash,
        });
        b.rows.push(row);
    });
}

/// The salt of a pending event.
pub(crate) fn salt_of(seq: i64) -> Option<[u8; 32]> {
    BATCH
        .try_with(|b| {
            b.borrow()
                .rows
                .iter()
                .find(|r| r.seq == seq)
                .map(|r| r.salt)
        })
        .ok()
        .flatten()
}

/// The latest pending event about a subject: its seq, hash and salt.
pub(crate) fn latest_about(
    subject_type: &str,
    subject_id: &str,
) -> Option<(i64, [u8; 32], [u8; 32])> {
    BATCH
        .try_with(|b| {
            b.borrow()
                .rows
                .iter()
                .rev()
                .find(|r| r.subject_type == subject_type && r.subject_id == subject_id)
                .map(|r| (r.seq, r.hash, r.salt))
        })
        .ok()
        .flatten()
}

/// Where the batch stands now.
pub(crate) fn mark() -> Mark {
    BATCH
        .try_with(|b| {
            let b = b.borrow();
            Mark {
                len: b.rows.len(),
                tip: b.tip,
            }
        })
        .unwrap_or(Mark { len: 0, tip: None })
}

/// Drop the events queued since `mark` (their job was rolled back).
pub(crate) fn rewind(mark: Mark) {
    let _ = BATCH.try_with(|b| {
        let mut b = b.borrow_mut();
        b.rows.truncate(mark.len);
        b.tip = mark.tip;
    });
}

/// The most rows one multi-row insert carries, per table (well under both
/// databases' limits on bound parameters).
const EVENTS_PER_INSERT: usize = 50;
const ROWS_PER_INSERT: usize = 200;
const NODES_PER_SELECT: usize = 100;

fn values(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// Write the pending events, their salts and the log's new nodes into the
/// batch's transaction. Call it once, just before the commit.
pub(crate) async fn flush(tx: &mut Tx) -> Result<()> {
    let rows = BATCH
        .try_with(|b| std::mem::take(&mut b.borrow_mut().rows))
        .unwrap_or_default();
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in rows.chunks(EVENTS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO audit_events (seq, at, actor, action, subject_type, subject_id, before, after, prev_hash, hash) VALUES {}",
            values(chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.seq)
                .bind(r.at)
                .bind(&r.actor)
                .bind(&r.action)
                .bind(&r.subject_type)
                .bind(&r.subject_id)
                .bind(&r.before)
                .bind(&r.after)
                .bind(hex::encode(r.prev))
                .bind(hex::encode(r.hash));
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO tlog_salts (seq, salt) VALUES {}",
            values(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(r.seq).bind(hex::encode(r.salt));
        }
        q.execute(&mut **tx).await?;
    }
    let nodes = tree_nodes(tx, &rows).await?;
    for chunk in nodes.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO tlog_nodes (level, idx, hash) VALUES {}",
            values(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (id, h) in chunk {
            q = q
                .bind(i32::from(id.level))
                .bind(id.index as i64)
                .bind(hex::encode(h));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The leaves of `rows` and every subtree they complete, in order: the
/// same nodes one-by-one appends write, with the left halves that lie
/// before the batch read in one query.
async fn tree_nodes(tx: &mut Tx, rows: &[Row]) -> Result<Vec<(NodeId, Hash)>> {
    let indices: Vec<u64> = rows.iter().map(|r| tlog::leaf::index_of(r.seq)).collect();
    let mut made: HashSet<NodeId> = HashSet::new();
    let mut wanted: Vec<NodeId> = Vec::new();
    for &i in &indices {
        made.insert(NodeId::leaf(i));
        for (parent, left, _) in NodeId::completed_by(i) {
            if !made.contains(&left) {
                wanted.push(left);
            }
            made.insert(parent);
        }
    }
    let mut known: HashMap<NodeId, Hash> = HashMap::new();
    for chunk in wanted.chunks(NODES_PER_SELECT) {
        known.extend(crate::tlog::fetch_nodes(&mut **tx, chunk).await?);
    }
    let mut out = Vec::with_capacity(rows.len() * 2);
    for (r, &i) in rows.iter().zip(&indices) {
        let leaf = event_leaf_hash(r.seq, &r.salt, &r.hash);
        known.insert(NodeId::leaf(i), leaf);
        out.push((NodeId::leaf(i), leaf));
        let mut right = leaf;
        for (parent, left, _) in NodeId::completed_by(i) {
            let l = known.get(&left).ok_or_else(|| {
                Error::corrupt(format!(
                    "the transparency log lacks the subtree at level {}, index {}: the log's tables were changed",
                    left.level, left.index
                ))
            })?;
            right = tlog::node_hash(l, &right);
            known.insert(parent, right);
            out.push((parent, right));
        }
    }
    Ok(out)
}
