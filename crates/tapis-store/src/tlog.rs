//! The transparency log in the database: each audit event's leaf and the
//! complete subtrees it finishes, written in the event's own transaction
//! (`append_leaf`); signed checkpoints; witnesses' cosignatures; proofs.
//! The tree's rules, the leaf format and the note format are core's
//! (`tapis_core::tlog`); this module stores and fetches hashes.
//!
//! An append costs one salt row, the leaf, and the subtrees the leaf
//! completes (one on average, at most log2 n), after at most one read of
//! their left halves: O(log n) rows, usually two.
//!
//! Checkpoints and cosignatures are not audit events (an event per
//! checkpoint would make every checkpoint stale the moment it is signed):
//! they are derived from the tree and each one is checked against it.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};
use tapis_core::tlog::note::{self, Checkpoint, Note, Vkey};
use tapis_core::tlog::{self, Hash, NodeId, leaf::event_leaf_hash};

use crate::{Error, Result, Store};

/// The most leaf hashes one page of `GET /api/v1/log/leaves` returns.
pub const MAX_LEAVES_PAGE: u64 = 1000;

fn decode_hash(what: &str, hex_text: &str) -> Result<Hash> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| Hash::try_from(b).ok())
        .ok_or_else(|| Error::corrupt(format!("{what} is not a SHA-256 in hex")))
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Domain(tapis_core::Error::invalid(field, message))
}

/// Write event `seq`'s leaf and the subtrees it completes, inside the
/// caller's write transaction (which appended the event).
pub(crate) async fn append_leaf(
    tx: &mut Transaction<'static, Any>,
    seq: i64,
    event_hash: &Hash,
) -> Result<()> {
    let mut salt = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    sqlx::query("INSERT INTO tlog_salts (seq, salt) VALUES ($1, $2)")
        .bind(seq)
        .bind(hex::encode(salt))
        .execute(&mut **tx)
        .await?;
    insert_leaf(tx, seq, &salt, event_hash, "").await
}

/// The leaf of event `seq` under `salt` and the subtrees it completes.
/// `on_conflict` is empty for an append, where every row is new.
async fn insert_leaf(
    tx: &mut Transaction<'static, Any>,
    seq: i64,
    salt: &[u8; 32],
    event_hash: &Hash,
    on_conflict: &str,
) -> Result<()> {
    let index = tlog::leaf::index_of(seq);
    let leaf = event_leaf_hash(seq, salt, event_hash);
    let completed = NodeId::completed_by(index);
    let lefts: Vec<NodeId> = completed.iter().map(|(_, l, _)| *l).collect();
    let known = fetch_nodes(&mut **tx, &lefts).await?;
    let mut rows = vec![(NodeId::leaf(index), leaf)];
    let mut right = leaf;
    for (parent, left, _) in completed {
        let l = known.get(&left).ok_or_else(|| {
            Error::corrupt(format!(
                "the transparency log lacks the subtree at level {}, index {}: the log's tables were changed",
                left.level, left.index
            ))
        })?;
        right = tlog::node_hash(l, &right);
        rows.push((parent, right));
    }
    let mut sql = String::from("INSERT INTO tlog_nodes (level, idx, hash) VALUES ");
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
    }
    sql.push_str(on_conflict);
    let mut q = sqlx::query(&sql);
    for (id, h) in &rows {
        q = q
            .bind(i32::from(id.level))
            .bind(id.index as i64)
            .bind(hex::encode(h));
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// The stored hashes of the given subtrees (those it has).
pub(crate) async fn fetch_nodes<'e, E>(exec: E, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql = String::from("SELECT level, idx, hash FROM tlog_nodes WHERE ");
    for i in 0..ids.len() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str(&format!(
            "(level = ${} AND idx = ${})",
            2 * i + 1,
            2 * i + 2
        ));
    }
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(i32::from(id.level)).bind(id.index as i64);
    }
    for row in q.fetch_all(exec).await? {
        let level: i32 = row.try_get("level")?;
        let idx: i64 = row.try_get("idx")?;
        let hash: String = row.try_get("hash")?;
        let id = NodeId {
            level: u8::try_from(level).map_err(|_| Error::corrupt("a tlog node level"))?,
            index: idx as u64,
        };
        out.insert(id, decode_hash("a tlog node", &hash)?);
    }
    Ok(out)
}

/// A proof's hashes as the API shows them.
pub fn proof_json(proof: &[Hash]) -> Value {
    Value::Array(
        proof
            .iter()
            .map(|h| Value::String(tlog::hash_to_b64(h)))
            .collect(),
    )
}

/// Where an event sits in the log, for the platform that may see it: its
/// leaf index and the salt its leaf commits under.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeafEntry {
    /// The event's sequence number.
    pub seq: i64,
    /// Its leaf: `seq - 1`.
    pub leaf_index: u64,
    /// The salt its leaf commits under, hex.
    pub salt: String,
    /// The event's chain hash, hex, when the document does not carry it
    /// elsewhere (receipts carry it as `chain.hash`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_hash: Option<String>,
}

impl LeafEntry {
    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

/// The leaf of the latest audit event about a subject, with its hash.
pub(crate) async fn latest_entry_about<'e, E>(
    exec: E,
    subject_type: &str,
    subject_id: &str,
) -> Result<Option<LeafEntry>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    if let Some((seq, hash, salt)) = crate::audit_batch::latest_about(subject_type, subject_id) {
        return Ok(Some(LeafEntry {
            seq,
            leaf_index: tlog::leaf::index_of(seq),
            salt: hex::encode(salt),
            event_hash: Some(hex::encode(hash)),
        }));
    }
    let row = sqlx::query(
        "SELECT e.seq, e.hash, s.salt FROM audit_events e JOIN tlog_salts s ON s.seq = e.seq \
         WHERE e.subject_type = $1 AND e.subject_id = $2 ORDER BY e.seq DESC LIMIT 1",
    )
    .bind(subject_type)
    .bind(subject_id)
    .fetch_optional(exec)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let seq: i64 = r.try_get("seq")?;
    Ok(Some(LeafEntry {
        seq,
        leaf_index: tlog::leaf::index_of(seq),
        salt: r.try_get("salt")?,
        event_hash: Some(r.try_get("hash")?),
    }))
}

/// The leaf of event `seq` (inside a write transaction for receipts).
pub(crate) async fn entry_in<'e, E>(exec: E, seq: i64) -> Result<LeafEntry>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    if let Some(salt) = crate::audit_batch::salt_of(seq) {
        return Ok(LeafEntry {
            seq,
            leaf_index: tlog::leaf::index_of(seq),
            salt: hex::encode(salt),
            event_hash: None,
        });
    }
    let row = sqlx::query("SELECT salt FROM tlog_salts WHERE seq = $1")
        .bind(seq)
        .fetch_optional(exec)
        .await?
        .ok_or(Error::NotFound("log leaf"))?;
    Ok(LeafEntry {
        seq,
        leaf_index: tlog::leaf::index_of(seq),
        salt: row.try_get("salt")?,
        event_hash: None,
    })
}

impl Store {
    /// The log's origin (the first line of its checkpoints).
    pub fn log_origin(&self) -> &str {
        &self.ctx.log.origin
    }

    /// The log's verifier key (`<origin>+<key id>+<base64 key>`).
    pub fn log_vkey(&self) -> Vkey {
        note::log_vkey(&self.ctx.log.origin, &self.ctx.signer)
    }

    /// The number of leaves (one per audit event).
    pub async fn log_size(&self) -> Result<u64> {
        let row = sqlx::query("SELECT MAX(idx) AS m FROM tlog_nodes WHERE level = 0")
            .fetch_one(&self.pool)
            .await?;
        let m: Option<i64> = row.try_get("m")?;
        Ok(m.map_or(0, |m| m as u64 + 1))
    }

    async fn checked_size(&self, field: &str, size: u64) -> Result<u64> {
        let have = self.log_size().await?;
        if size > have {
            return Err(invalid(
                field,
                format!("the log has {have} leaves; ask for a tree size of at most {have}"),
            ));
        }
        Ok(have)
    }

    /// The root of the tree of the first `size` leaves.
    pub async fn log_root(&self, size: u64) -> Result<Hash> {
        self.checked_size("tree_size", size).await?;
        let ids = tlog::parts(tlog::Range {
            start: 0,
            end: size,
        });
        let nodes = fetch_nodes(&self.pool, &ids).await?;
        tlog::root(&nodes, size).map_err(|e| Error::corrupt(e.to_string()))
    }

    async fn proof(&self, ranges: &[tlog::Range]) -> Result<Vec<Hash>> {
        let nodes = fetch_nodes(&self.pool, &tlog::nodes_for(ranges)).await?;
        ranges
            .iter()
            .map(|r| tlog::range_hash(&nodes, *r).map_err(|e| Error::corrupt(e.to_string())))
            .collect()
    }

    /// An inclusion proof of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.checked_size("tree_size", size).await?;
        let ranges = tlog::inclusion_ranges(index, size)
            .map_err(|e| invalid("leaf_index", e.to_string()))?;
        self.proof(&ranges).await
    }

    /// A consistency proof from the tree of `from` leaves to that of `to`.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>> {
        self.checked_size("to", to).await?;
        let ranges =
            tlog::consistency_ranges(from, to).map_err(|e| invalid("from", e.to_string()))?;
        self.proof(&ranges).await
    }

    /// The leaf hashes `[start, end)`, at most [`MAX_LEAVES_PAGE`].
    pub async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>> {
        if end <= start || end - start > MAX_LEAVES_PAGE {
            return Err(invalid(
                "end",
                format!(
                    "ask for 1 to {MAX_LEAVES_PAGE} leaves: start < end <= start + {MAX_LEAVES_PAGE}"
                ),
            ));
        }
        self.checked_size("end", end).await?;
        let rows = sqlx::query(
            "SELECT hash FROM tlog_nodes WHERE level = 0 AND idx >= $1 AND idx < $2 ORDER BY idx",
        )
        .bind(start as i64)
        .bind(end as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| decode_hash("a leaf", &r.try_get::<String, _>("hash")?))
            .collect()
    }

    /// Sign and keep a checkpoint of the tree as it is now, unless the
    /// latest already has this size. Returns the note (with cosignatures).
    pub async fn make_checkpoint(&self) -> Result<String> {
        let size = self.log_size().await?;
        if let Some(latest) = self.latest_checkpoint_size().await?
            && latest == size
        {
            return self.checkpoint_note(size).await;
        }
        let root = self.log_root(size).await?;
        let cp = Checkpoint {
            origin: self.ctx.log.origin.clone(),
            size,
            root,
        };
        let signed = note::sign_checkpoint(&cp, &self.ctx.signer)?;
        // several processes may race to sign the same size: one row wins
        sqlx::query(
            "INSERT INTO tlog_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(size as i64)
        .bind(hex::encode(root))
        .bind(signed.format())
        .bind(self.now().unix_millis())
        .execute(&self.pool)
        .await?;
        self.checkpoint_note(size).await
    }

    async fn latest_checkpoint_size(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT MAX(size) AS m FROM tlog_checkpoints")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("m")?.map(|m| m as u64))
    }

    /// The latest checkpoint, made now if there is none yet.
    pub async fn latest_checkpoint(&self) -> Result<String> {
        match self.latest_checkpoint_size().await? {
            Some(size) => self.checkpoint_note(size).await,
            None => self.make_checkpoint().await,
        }
    }

    /// A checkpoint that covers leaf `index`: the latest if it does, else
    /// one made now.
    pub async fn checkpoint_covering(&self, index: u64) -> Result<String> {
        match self.latest_checkpoint_size().await? {
            Some(size) if size > index => self.checkpoint_note(size).await,
            _ => self.make_checkpoint().await,
        }
    }

    /// The stored checkpoint of `size`, its cosignatures appended.
    pub async fn checkpoint_note(&self, size: u64) -> Result<String> {
        let row = sqlx::query("SELECT note FROM tlog_checkpoints WHERE size = $1")
            .bind(size as i64)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("checkpoint"))?;
        let mut text: String = row.try_get("note")?;
        let cosigs = sqlx::query(
            "SELECT line FROM tlog_cosignatures WHERE size = $1 ORDER BY witness, key_id",
        )
        .bind(size as i64)
        .fetch_all(&self.pool)
        .await?;
        for r in cosigs {
            text.push_str(&r.try_get::<String, _>("line")?);
        }
        Ok(text)
    }

    /// Keep a witness's cosignature: `note` is a checkpoint this log signed
    /// with the witness's cosignature line(s). Only witnesses configured by
    /// their verifier keys are accepted; returns how many lines were kept.
    pub async fn add_cosignatures(&self, note_text: &str) -> Result<usize> {
        let n = Note::parse(note_text)?;
        let cp = Checkpoint::parse_body(&n.text)?;
        if cp.origin != self.ctx.log.origin {
            return Err(Error::NotFound("log with this origin"));
        }
        let ours = self.checkpoint_note(cp.size).await?;
        let ours = Note::parse(&ours)?;
        if ours.text != n.text {
            return Err(Error::Conflict(format!(
                "this log's checkpoint of size {} has another root: cosign the checkpoint it published",
                cp.size
            )));
        }
        let mut kept = 0;
        let now = self.now().unix_millis();
        for w in &self.ctx.log.witnesses {
            let id = w.key_id();
            let Some(line) = n.sigs.iter().find(|l| l.name == w.name && l.key_id == id) else {
                continue;
            };
            let time = n.verify(w)?.unwrap_or(0);
            sqlx::query(
                "INSERT INTO tlog_cosignatures (size, witness, key_id, line, signed_at, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (size, witness, key_id) DO NOTHING",
            )
            .bind(cp.size as i64)
            .bind(&w.name)
            .bind(hex::encode(id))
            .bind(line.line())
            .bind(time as i64)
            .bind(now)
            .execute(&self.pool)
            .await?;
            kept += 1;
        }
        if kept == 0 {
            return Err(Error::Domain(tapis_core::Error::Forbidden {
                who: "an unknown witness".into(),
                action:
                    "cosign this log's checkpoints (add its verifier key to transparency.witnesses)"
                        .into(),
            }));
        }
        Ok(kept)
    }

    /// Give every event written before the log existed (migration 0018) its
    /// salt and leaf, in order. Nothing to do, and no lock taken, when the
    /// leaves are complete.
    pub(crate) async fn backfill_log(&self) -> Result<()> {
        let events: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM audit_events")
            .fetch_one(&self.pool)
            .await?
            .try_get("m")?;
        // in transactions of a bounded size, so the chain lock is never
        // held for the whole of a long history
        while (self.log_size().await? as i64) < events {
            self.backfill_page().await?;
        }
        Ok(())
    }

    async fn backfill_page(&self) -> Result<()> {
        const PAGE: i64 = 5000;
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "SELECT seq, hash FROM audit_events WHERE seq > \
             (SELECT COALESCE(MAX(idx) + 1, 0) FROM tlog_nodes WHERE level = 0) ORDER BY seq LIMIT $1",
        )
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Err(Error::corrupt(
                "the audit events have gaps the transparency log cannot be completed over",
            ));
        }
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let hash = decode_hash("an audit event's hash", &r.try_get::<String, _>("hash")?)?;
            // a salt already drawn is kept: the leaf is the one published
            let kept = sqlx::query("SELECT salt FROM tlog_salts WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await?;
            match kept {
                Some(row) => {
                    let salt = hex::decode(row.try_get::<String, _>("salt")?)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| Error::corrupt(format!("the salt of event {seq}")))?;
                    insert_leaf(
                        &mut tx,
                        seq,
                        &salt,
                        &hash,
                        " ON CONFLICT (level, idx) DO NOTHING",
                    )
                    .await?;
                }
                None => append_leaf(&mut tx, seq, &hash).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every event's salt, by sequence (offline verification).
    pub async fn log_salts(&self, after: i64, limit: i64) -> Result<Vec<(i64, [u8; 32])>> {
        let rows =
            sqlx::query("SELECT seq, salt FROM tlog_salts WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                let salt: String = r.try_get("salt")?;
                let salt = hex::decode(&salt)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| Error::corrupt(format!("the salt of event {seq}")))?;
                Ok((seq, salt))
            })
            .collect()
    }
}

/// The log's settings: its origin and the witnesses whose cosignatures it
/// accepts.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub origin: String,
    pub witnesses: Vec<Vkey>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            origin: "tapis.example/log".into(),
            witnesses: Vec::new(),
        }
    }
}
