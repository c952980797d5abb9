//! Appending to and verifying the audit chain. The chain rules are core's
//! (`tapis_core::audit`); this module reads the head, writes the link and
//! walks the table.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::EventType;
use tapis_core::audit::{Actor, Anchor, Break, EventBody, GENESIS, StoredEvent, Verifier};
use tapis_core::{Timestamp, canonical};

use crate::{AuditEvent, Error, Result, Store};

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked (up to the first break).
    pub events: u64,
    /// Hash of the last good event.
    pub head: String,
    /// Events among them whose payloads retention erased, each named by a
    /// tombstone (on the record, not tampering).
    pub erased: u64,
    /// The first broken link, if any.
    pub first_break: Option<Break>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_break.is_none()
    }
}

/// The chain head inside the caller's write transaction (which holds the
/// chain lock, so nothing is appended between reading it and signing it).
pub(crate) async fn head(tx: &mut Transaction<'static, Any>) -> Result<Anchor> {
    // inside a batch, its pending events are the head (audit_batch.rs)
    if crate::audit_batch::defers(tx)
        && let Some(tip) = crate::audit_batch::tip()
    {
        return Ok(Anchor {
            seq: tip.seq,
            hash: hex::encode(tip.hash),
        });
    }
    let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        None => Anchor::genesis(),
        Some(r) => Anchor {
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
        },
    })
}

/// Append one event inside the caller's write transaction.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Any>,
    at: Timestamp,
    actor: &Actor,
    action: EventType,
    subject: (&str, &str),
    before: Value,
    after: Value,
) -> Result<i64> {
    // a batch's transaction reads the head once and keeps it in memory
    let deferred = crate::audit_batch::defers(tx);
    let (seq, prev) = match deferred.then(crate::audit_batch::tip).flatten() {
        Some(tip) => (tip.seq + 1, tip.hash),
        None => {
            let head = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut **tx)
                .await?;
            match head {
                None => (1, GENESIS),
                Some(row) => {
                    let seq: i64 = row.try_get("seq")?;
                    let hash: String = row.try_get("hash")?;
                    let prev: [u8; 32] = hex::decode(&hash)
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| {
                            Error::corrupt(format!("audit event {seq} has a malformed hash"))
                        })?;
                    (seq + 1, prev)
                }
            }
        }
    };
    let body = EventBody {
        seq,
        at,
        actor: actor.to_json(),
        action: action.as_str().to_owned(),
        subject_type: subject.0.to_owned(),
        subject_id: subject.1.to_owned(),
        before,
        after,
    };
    let hash = body.chain_hash(&prev)?;
    if deferred {
        let mut salt = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        crate::audit_batch::push(crate::audit_batch::Row {
            seq,
            at: at.unix_millis(),
            actor: canonical::to_string(&body.actor)?,
            action: body.action,
            subject_type: body.subject_type,
            subject_id: body.subject_id,
            before: canonical::to_string(&body.before)?,
            after: canonical::to_string(&body.after)?,
            prev,
            hash,
            salt,
        });
        return Ok(seq);
    }
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor, action, subject_type, subject_id, before, after, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(at.unix_millis())
    .bind(canonical::to_string(&body.actor)?)
    .bind(&body.action)
    .bind(&body.subject_type)
    .bind(&body.subject_id)
    .bind(canonical::to_string(&body.before)?)
    .bind(canonical::to_string(&body.after)?)
    .bind(hex::encode(prev))
    .bind(hex::encode(hash))
    .execute(&mut **tx)
    .await?;
    crate::tlog::append_leaf(tx, seq, &hash).await?;
    Ok(seq)
}

/// One audit event said once: what happened, to which subject, and the
/// state before (`null` unless given) and after. Call sites build it with
/// the subject's constructor and write it with [`Event::append`], which is
/// [`append`] with the arguments gathered, so the event's contents and hash
/// are exactly what the long form would have written.
#[must_use = "an event does nothing until appended"]
pub(crate) struct Event {
    action: EventType,
    subject_type: &'static str,
    subject_id: String,
    before: Value,
    after: Value,
}

impl Event {
    /// An event about any subject (`subject_type` is "setting", "key", …).
    pub(crate) fn about(
        action: EventType,
        subject_type: &'static str,
        subject_id: impl std::fmt::Display,
        after: Value,
    ) -> Self {
        Self {
            action,
            subject_type,
            subject_id: subject_id.to_string(),
            before: Value::Null,
            after,
        }
    }

    /// An event about a party.
    pub(crate) fn party(action: EventType, id: impl std::fmt::Display, after: Value) -> Self {
        Self::about(action, "party", id, after)
    }

    /// An event about a notice.
    pub(crate) fn notice(action: EventType, id: impl std::fmt::Display, after: Value) -> Self {
        Self::about(action, "notice", id, after)
    }

    /// An event about an order.
    pub(crate) fn order(action: EventType, id: impl std::fmt::Display, after: Value) -> Self {
        Self::about(action, "order", id, after)
    }

    /// The subject's state before the change.
    pub(crate) fn before(mut self, before: Value) -> Self {
        self.before = before;
        self
    }

    /// Append it inside the caller's write transaction (see [`append`]).
    pub(crate) async fn append(
        self,
        tx: &mut Transaction<'static, Any>,
        at: Timestamp,
        actor: &Actor,
    ) -> Result<i64> {
        let subject = (self.subject_type, self.subject_id.as_str());
        append(tx, at, actor, self.action, subject, self.before, self.after).await
    }
}

pub(crate) const COLUMNS: &str =
    "seq, at, actor, action, subject_type, subject_id, before, after, prev_hash, hash";

fn json_col(row: &AnyRow, col: &str) -> Result<Value> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| Error::corrupt(format!("audit column {col}: {e}")))
}

pub(crate) fn event_from_row(row: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        at: Timestamp::from_unix_millis(row.try_get("at")?),
        actor: json_col(row, "actor")?,
        action: row.try_get("action")?,
        subject_type: row.try_get("subject_type")?,
        subject_id: row.try_get("subject_id")?,
        before: json_col(row, "before")?,
        after: json_col(row, "after")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Record that the operator turned on logging of client addresses, and
    /// why (privacy by default: it is off unless a reason is on record).
    /// Recorded once per reason: restarts with the same reason add nothing.
    pub async fn record_client_address_logging(&self, reason: &str) -> Result<()> {
        let reason = tapis_core::party::bounded_text("reason", reason, 10, 2000)?;
        let last = self
            .events_for("setting", "privacy.log_client_addresses")
            .await?
            .pop();
        if last
            .is_some_and(|e| e.after.get("reason").and_then(Value::as_str) == Some(reason.as_str()))
        {
            return Ok(());
        }
        let mut tx = self.write().await?;
        append(
            &mut tx,
            self.now(),
            &tapis_core::audit::Actor::system("operator"),
            EventType::PrivacyClientAddressesLogged,
            ("setting", "privacy.log_client_addresses"),
            Value::Null,
            serde_json::json!({"enabled": true, "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events about one subject, oldest first.
    pub async fn events_for(
        &self,
        subject_type: &str,
        subject_id: &str,
    ) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE subject_type = $1 AND subject_id = $2 ORDER BY seq"
        ))
        .bind(subject_type)
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The hash the chain holds for event `seq`, if it still has that event:
    /// what a receipt's anchor is checked against.
    pub async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT hash FROM audit_events WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(r.try_get("hash")?),
        })
    }

    /// Every event, oldest first. Only for tests that play an attacker who
    /// rewrites the log and recomputes its hashes.
    #[cfg(feature = "testing")]
    pub async fn all_audit_events(&self) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Up to `limit` events after `after`, in order, as rows (with
    /// `erased_by`, see [`erased_by`]).
    pub(crate) async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AnyRow>> {
        Ok(sqlx::query(&format!(
            "SELECT {COLUMNS}, erased_by FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Walk the whole chain in pages and report the first broken link.
    /// Memory stays constant whatever the chain's length.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        const PAGE: i64 = 1000;
        let mut verifier = Verifier::default();
        let mut tombstones = Tombstones::default();
        let mut erased_count = 0u64;
        let mut after = 0i64;
        loop {
            let rows = self.audit_page(after, PAGE).await?;
            let n = rows.len();
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                if let Some(by) = erased_by(row)? {
                    let t = tombstones.get(self, by).await?;
                    let (prev, hash): (String, String) =
                        (row.try_get("prev_hash")?, row.try_get("hash")?);
                    if let Err(b) = verifier.push_erased(seq, &prev, &hash, by, t) {
                        return Ok(VerifyReport {
                            events: verifier.count(),
                            head: verifier.head(),
                            erased: erased_count,
                            first_break: Some(b),
                        });
                    }
                    erased_count += 1;
                    after = seq;
                    continue;
                }
                // An event whose JSON no longer parses is a broken link too.
                let stored = match event_from_row(row) {
                    Ok(ev) => StoredEvent {
                        prev_hash: ev.prev_hash.clone(),
                        hash: ev.hash.clone(),
                        body: ev.into_body(),
                    },
                    Err(e) => {
                        return Ok(VerifyReport {
                            events: verifier.count(),
                            head: verifier.head(),
                            erased: erased_count,
                            first_break: Some(Break {
                                seq,
                                reason: format!("event does not decode: {e}"),
                            }),
                        });
                    }
                };
                if let Err(b) = verifier.push(&stored) {
                    return Ok(VerifyReport {
                        events: verifier.count(),
                        head: verifier.head(),
                        erased: erased_count,
                        first_break: Some(b),
                    });
                }
                after = seq;
            }
            if (n as i64) < PAGE {
                break;
            }
        }
        Ok(VerifyReport {
            events: verifier.count(),
            head: verifier.head(),
            erased: erased_count,
            first_break: None,
        })
    }
}

/// What the auditor's page asks of the log: filters (each optional) and a
/// page. `actor` matches any part of the actor's record (label, person,
/// token or party id).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub subject_id: Option<String>,
    pub actor: Option<String>,
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
    pub ascending: bool,
    pub offset: u32,
    /// 1 to 500.
    pub limit: u32,
}

impl Store {
    /// Events matching `q`, by sequence number (newest first unless
    /// `ascending`). Read-only; `LIKE` wildcards in `actor` are matched
    /// literally.
    pub async fn search_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut clauses = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        if let Some(a) = &q.action {
            binds.push(Bind::Text(a.clone()));
            clauses.push(format!("action = ${}", binds.len()));
        }
        if let Some(s) = &q.subject_id {
            binds.push(Bind::Text(s.clone()));
            clauses.push(format!("subject_id = ${}", binds.len()));
        }
        if let Some(a) = &q.actor {
            let escaped = a
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            binds.push(Bind::Text(format!("%{escaped}%")));
            clauses.push(format!(
                "LOWER(actor) LIKE LOWER(${}) ESCAPE '\\'",
                binds.len()
            ));
        }
        if let Some(t) = q.from {
            binds.push(Bind::Int(t.unix_millis()));
            clauses.push(format!("at >= ${}", binds.len()));
        }
        if let Some(t) = q.to {
            binds.push(Bind::Int(t.unix_millis()));
            clauses.push(format!("at < ${}", binds.len()));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY seq {} LIMIT {} OFFSET {}",
            if q.ascending { "ASC" } else { "DESC" },
            q.limit.clamp(1, 500),
            q.offset
        ));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }
}

enum Bind {
    Text(String),
    Int(i64),
}
impl AuditEvent {
    /// The event as it is hashed.
    pub(crate) fn into_body(self) -> EventBody {
        EventBody {
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            subject_type: self.subject_type,
            subject_id: self.subject_id,
            before: self.before,
            after: self.after,
        }
    }
}

/// The tombstone an erased event points at, if the row says it was erased.
pub(crate) fn erased_by(row: &AnyRow) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>("erased_by")?)
}

/// The tombstones a walk has read (erased events come in runs that share
/// one, so the last is kept), by their event's sequence number.
#[derive(Default)]
pub(crate) struct Tombstones {
    last: Option<(i64, Option<tapis_core::retention::Tombstone>)>,
}

impl Tombstones {
    /// The tombstone event `seq` records, or None if it records none.
    pub(crate) async fn get(
        &mut self,
        store: &Store,
        seq: i64,
    ) -> Result<Option<&tapis_core::retention::Tombstone>> {
        if self.last.as_ref().is_none_or(|(s, _)| *s != seq) {
            let row = sqlx::query("SELECT action, after FROM audit_events WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&store.pool)
                .await?;
            let t = match row {
                None => None,
                Some(r) => {
                    let action: String = r.try_get("action")?;
                    let after: String = r.try_get("after")?;
                    serde_json::from_str(&after)
                        .ok()
                        .and_then(|v| tapis_core::retention::Tombstone::from_event(&action, &v))
                }
            };
            self.last = Some((seq, t));
        }
        Ok(self.last.as_ref().and_then(|(_, t)| t.as_ref()))
    }
}
