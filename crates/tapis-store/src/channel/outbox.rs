//! The outbox: messages written in the same transaction as the change
//! that causes them (`enqueue`), claimed by delivery workers with a lease,
//! and settled here when a worker reports an attempt. What an attempt leads
//! to — delivered, retried with backoff, dead-lettered with an email
//! fallback — is core's decision (`tapis_core::delivery::outcome`); this
//! module records the attempt on the notice's timeline and applies it.
//!
//! Workers claim fairly (a bounded number per destination, skipping the
//! destinations that are already busy) and settle many attempts in one
//! write transaction (`complete_deliveries`: group commit), so the audit
//! chain's lock is taken once per batch, never across a network call.
//! Leases are in the name of a stable instance identity: a restarted
//! process takes its own back at once (`reclaim_leases`), a live one
//! renews those it is still sending (`renew_leases`).

use super::*;
use crate::Notice;
use std::collections::HashMap;

/// An outbox message claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub channel: OutboxChannel,
    pub party_id: PartyId,
    pub notice_id: Option<NoticeId>,
    /// The platform event id: the `webhook-id`, stable across retries.
    pub event_id: String,
    pub event_type: EventType,
    /// The JSON body, as sent.
    pub payload: String,
    pub attempts: u32,
    lease_owner: String,
}

/// What one delivery attempt did.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// One outbound message of a notice, as the delivery view shows it.
/// The fields are in alphabetical order so that the JSON is the same as
/// when this view was built as a map (whose keys sort).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub attempts: i64,
    pub channel: String,
    pub created_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub event_id: String,
    pub event_type: String,
    pub id: String,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub state: String,
}

/// A message that ran out of attempts. Fields in alphabetical order, as
/// the JSON has always had them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetter {
    pub attempts: i64,
    pub channel: String,
    pub event_id: String,
    pub event_type: String,
    pub id: String,
    pub last_error: Option<String>,
    pub notice_id: Option<String>,
    pub party_id: String,
}

/// Put a platform-facing event on the stream and in the outbox: by webhook
/// when the platform has one, else by email when it has addresses. Returns
/// the event id.
pub(crate) async fn enqueue(
    tx: &mut Tx,
    now: Timestamp,
    party: PartyId,
    notice: Option<NoticeId>,
    event_type: EventType,
    data: Value,
) -> Result<String> {
    let event_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    // where the log stood when the message was written: the leaf of the
    // latest audit event (the cause's own, when it was appended first) and
    // what the platform needs to recompute that leaf; checkpoint and
    // inclusion proof: `GET /api/v1/log/proof/leaf/{leaf_index}`
    let head = crate::audit::head(tx).await?;
    let log = if head.seq > 0 {
        let mut entry = crate::tlog::entry_in(&mut **tx, head.seq).await?;
        entry.event_hash = Some(head.hash);
        entry.to_json()
    } else {
        serde_json::Value::Null
    };
    let payload = canonical::to_string(&json!({
        "type": event_type,
        "timestamp": now.to_string(),
        "data": data,
        "log": log,
    }))?;
    sqlx::query(
        "INSERT INTO platform_events (id, party_id, notice_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&event_id)
    .bind(party.to_string())
    .bind(notice.map(|n| n.to_string()))
    .bind(event_type.as_str())
    .bind(&payload)
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    let (webhook, emails) = routes(tx, party).await?;
    let channel = if webhook.is_some() {
        Some("webhook")
    } else if !emails.is_empty() {
        Some("email")
    } else {
        None
    };
    if let Some(channel) = channel {
        insert_outbox(
            tx,
            now,
            channel,
            party,
            notice,
            &event_id,
            event_type.as_str(),
            &payload,
        )
        .await?;
    }
    Ok(event_id)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_outbox(
    tx: &mut Tx,
    now: Timestamp,
    channel: &str,
    party: PartyId,
    notice: Option<NoticeId>,
    event_id: &str,
    event_type: &str,
    payload: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, channel, party_id, notice_id, event_id, event_type, payload, state, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(channel)
    .bind(party.to_string())
    .bind(notice.map(|n| n.to_string()))
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Real wall-clock milliseconds: leases are about live processes, not about
/// the (possibly simulated) business clock.
pub(crate) fn wall_ms() -> i64 {
    tapis_core::Clock::now(&tapis_core::SystemClock).unix_millis()
}

impl Store {
    /// Claim up to `limit` due messages for `owner` with a lease. Safe with
    /// several processes: a claimed row is skipped by the others until its
    /// lease runs out.
    pub async fn claim_outbox(&self, owner: &str, limit: u32) -> Result<Vec<Claimed>> {
        let now = self.now().unix_millis();
        let wall = wall_ms();
        let lease_until = wall + self.ctx.retry.lease_secs * 1000;
        let skip_locked = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $3 \
                          AND (lease_until IS NULL OR lease_until < $4) ORDER BY next_attempt_at LIMIT {}{skip_locked}) \
             AND state = 'pending' AND (lease_until IS NULL OR lease_until < $4) \
             RETURNING id, channel, party_id, notice_id, event_id, event_type, payload, attempts",
            limit.clamp(1, 1000)
        );
        let rows = match self.backend {
            crate::Backend::Sqlite => {
                // one writer at a time on SQLite: take the write lock up front
                let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
                let rows = sqlx::query(&sql)
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(wall)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
            crate::Backend::Postgres => {
                sqlx::query(&sql)
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(wall)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(|row| claimed_row(row, owner)).collect()
    }

    /// Record an attempt: delivered, retried later with backoff, or
    /// dead-lettered (a dead webhook falls back to email). The attempt is on
    /// the notice's timeline; a 2xx webhook for a new notice is delivery.
    pub async fn complete_delivery(&self, msg: &Claimed, attempt: Attempt) -> Result<()> {
        self.complete_deliveries(&[(msg.clone(), attempt)]).await
    }

    /// Record many attempts in one write transaction (group commit): the
    /// chain lock and the durable commit are paid once for the batch. An
    /// attempt whose lease was lost (another worker took the message over)
    /// or that is already settled is skipped. All or nothing: on an error
    /// none is recorded (the caller may retry them one by one).
    pub async fn complete_deliveries(&self, batch: &[(Claimed, Attempt)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // the batch's audit events are written together at its end
        crate::audit_batch::scope(async {
            let mut tx = self.write().await?;
            crate::audit_batch::bind(&tx);
            let now = self.now();
            let mut known = BatchFacts::read(&mut tx, batch).await?;
            for (msg, attempt) in batch {
                apply_attempt(self, &mut tx, now, msg, attempt, &mut known).await?;
            }
            crate::audit_batch::flush(&mut tx).await?;
            tx.commit().await?;
            self.signal();
            Ok(())
        })
        .await
    }

    /// Give back every lease held in `owner`'s name (a restarted process,
    /// at start-up: whatever it was sending when it died is due again at
    /// once instead of when the lease runs out). Returns how many.
    pub async fn reclaim_leases(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND state = 'pending'",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Extend `owner`'s leases on `ids` (messages still being sent) by a
    /// lease's length from now. Returns how many were still held.
    pub async fn renew_leases(&self, owner: &str, ids: &[String]) -> Result<u64> {
        let until = wall_ms() + self.ctx.retry.lease_secs * 1000;
        let mut n = 0;
        for chunk in ids.chunks(200) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE outbox SET lease_until = $1 WHERE lease_owner = $2 AND state = 'pending' AND id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(until).bind(owner);
            for id in chunk {
                q = q.bind(id);
            }
            n += q.execute(&self.pool).await?.rows_affected();
        }
        Ok(n)
    }

    /// Claim due messages fairly: at most `per_destination` for each
    /// destination (channel and party), oldest first, `limit` in all,
    /// leaving out the destinations in `busy` (they have no free slot).
    /// Like [`Store::claim_outbox`], safe with several processes.
    pub async fn claim_fair(
        &self,
        owner: &str,
        per_destination: u32,
        limit: u32,
        busy: &[(OutboxChannel, PartyId)],
    ) -> Result<Vec<Claimed>> {
        let now = self.now().unix_millis();
        let wall = wall_ms();
        let lease_until = wall + self.ctx.retry.lease_secs * 1000;
        let exclude = if busy.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (0..busy.len()).map(|i| format!("${}", i + 5)).collect();
            format!(
                " AND (channel || '|' || party_id) NOT IN ({})",
                marks.join(", ")
            )
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM (SELECT id, next_attempt_at, ROW_NUMBER() OVER \
                 (PARTITION BY channel, party_id ORDER BY next_attempt_at, id) AS rn FROM outbox \
                 WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $4){exclude}) due \
               WHERE rn <= {} ORDER BY next_attempt_at, id LIMIT {}) \
             AND state = 'pending' AND (lease_until IS NULL OR lease_until < $4) \
             RETURNING id, channel, party_id, notice_id, event_id, event_type, payload, attempts, next_attempt_at",
            per_destination.clamp(1, 1000),
            limit.clamp(1, 5000)
        );
        let keys: Vec<String> = busy.iter().map(|(c, p)| format!("{c}|{p}")).collect();
        let query = || {
            let mut q = sqlx::query(&sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(wall);
            for k in &keys {
                q = q.bind(k.as_str());
            }
            q
        };
        let rows = match self.backend {
            crate::Backend::Sqlite => {
                let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
                let rows = query().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
            crate::Backend::Postgres => {
                // A lease needs no sync to disk: if the database loses it
                // in a crash, the message is merely due again (it is sent
                // at least once anyway, with the same webhook-id). So the
                // claim does not wait for a WAL flush, which under load was
                // one fsync per dispatch pass. Nothing here is on the
                // audit chain or the log, which always commit durably.
                let mut tx = self
                    .pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await?;
                let rows = query().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>("next_attempt_at")?,
                    claimed_row(row, owner)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(claimed.into_iter().map(|(_, c)| c).collect())
    }

    /// Due messages by destination: how many, and since when the oldest is
    /// due (messages being sent included). Cheap: the `outbox_due` index.
    pub async fn outbox_backlog(&self) -> Result<Vec<Backlog>> {
        let rows = sqlx::query(
            "SELECT channel, party_id, COUNT(*) AS n, MIN(next_attempt_at) AS oldest FROM outbox \
             WHERE state = 'pending' AND next_attempt_at <= $1 GROUP BY channel, party_id",
        )
        .bind(self.now().unix_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Backlog {
                    channel: OutboxChannel::parse(&r.try_get::<String, _>("channel")?)
                        .map_err(Error::corrupt)?,
                    party_id: PartyId::parse(&r.try_get::<String, _>("party_id")?)
                        .map_err(Error::corrupt)?,
                    due: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                    oldest_due: Timestamp::from_unix_millis(r.try_get::<i64, _>("oldest")?),
                })
            })
            .collect()
    }

    /// Outbox messages of a notice (for the API's delivery view).
    pub async fn deliveries(&self, notice: NoticeId) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, channel, event_id, event_type, state, attempts, next_attempt_at, last_error, created_at, delivered_at \
             FROM outbox WHERE notice_id = $1 ORDER BY created_at, id",
        )
        .bind(notice.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let ts = |c: &str| -> Result<Option<Timestamp>> {
                    Ok(r.try_get::<Option<i64>, _>(c)?
                        .map(Timestamp::from_unix_millis))
                };
                Ok(Delivery {
                    attempts: r.try_get("attempts")?,
                    channel: r.try_get("channel")?,
                    created_at: ts("created_at")?,
                    delivered_at: ts("delivered_at")?,
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    id: r.try_get("id")?,
                    last_error: r.try_get("last_error")?,
                    next_attempt_at: ts("next_attempt_at")?,
                    state: r.try_get("state")?,
                })
            })
            .collect()
    }

    /// Dead-lettered messages, newest first.
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        let rows = sqlx::query(&format!(
            "SELECT id, channel, party_id, notice_id, event_id, event_type, attempts, last_error FROM outbox \
             WHERE state = 'dead' ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 500)
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    attempts: r.try_get("attempts")?,
                    channel: r.try_get("channel")?,
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    id: r.try_get("id")?,
                    last_error: r.try_get("last_error")?,
                    notice_id: r.try_get("notice_id")?,
                    party_id: r.try_get("party_id")?,
                })
            })
            .collect()
    }
}

/// What a batch of completions needs to know, read with two or three
/// queries for the whole batch instead of several per attempt: which
/// messages each worker still holds, and the notices they are about.
struct BatchFacts {
    /// Message id → (state, lease owner).
    outbox: HashMap<String, (String, Option<String>)>,
    /// The notices of the batch's messages, kept current as the batch
    /// changes them.
    notices: HashMap<NoticeId, Notice>,
}

impl BatchFacts {
    async fn read(tx: &mut Tx, batch: &[(Claimed, Attempt)]) -> Result<BatchFacts> {
        let mut outbox = HashMap::with_capacity(batch.len());
        for chunk in batch.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, state, lease_owner FROM outbox WHERE id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (msg, _) in chunk {
                q = q.bind(&msg.id);
            }
            for row in q.fetch_all(&mut **tx).await? {
                outbox.insert(
                    row.try_get::<String, _>("id")?,
                    (row.try_get("state")?, row.try_get("lease_owner")?),
                );
            }
        }
        let mut ids: Vec<NoticeId> = batch
            .iter()
            .filter_map(|(m, a)| m.notice_id.filter(|_| a.ok))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut notices = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            notices.extend(crate::notices::load_notices(tx, chunk).await?);
        }
        Ok(BatchFacts { outbox, notices })
    }
}

/// Record one attempt and apply its outcome inside `tx`.
async fn apply_attempt(
    store: &Store,
    tx: &mut Tx,
    now: Timestamp,
    msg: &Claimed,
    attempt: &Attempt,
    known: &mut BatchFacts,
) -> Result<()> {
    match known.outbox.get_mut(&msg.id) {
        Some((state, owner))
            if state.as_str() == "pending"
                && owner.as_deref() == Some(msg.lease_owner.as_str()) =>
        {
            // settled now, whatever the outcome (a retry gives the lease back)
            *state = "settled".into();
        }
        // another worker took over (our lease lapsed) or it is settled
        _ => return Ok(()),
    }
    let n = msg.attempts + 1;
    let actor = Actor::system("delivery");
    if let Some(notice) = msg.notice_id {
        audit::append(
            tx,
            now,
            &actor,
            EventType::DeliveryAttempt,
            ("notice", &notice.to_string()),
            Value::Null,
            json!({
                "event_id": msg.event_id, "event_type": msg.event_type, "channel": msg.channel,
                "attempt": n, "ok": attempt.ok, "status": attempt.status,
                "latency_ms": attempt.latency_ms, "error": attempt.error,
            }),
        )
        .await?;
    }
    let facts = AttemptFacts {
        channel: msg.channel,
        event_type: msg.event_type,
        ok: attempt.ok,
        attempt: n,
        jitter: rand::Rng::random_range(&mut rand::rng(), -1.0..=1.0),
    };
    match delivery::outcome(&store.ctx.retry, facts) {
        DeliveryOutcome::Delivered { notice_delivered } => {
            sqlx::query("UPDATE outbox SET state = 'delivered', attempts = $1, delivered_at = $2, lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id = $3")
                .bind(i64::from(n))
                .bind(now.unix_millis())
                .bind(&msg.id)
                .execute(&mut **tx)
                .await?;
            if notice_delivered
                && let Some(id) = msg.notice_id
                && let Some(notice) = known.notices.get_mut(&id)
                && notice.state == NoticeState::Submitted
            {
                mark_delivered_tx(tx, &store.ctx, now, &actor, notice, "webhook 2xx").await?;
            }
        }
        DeliveryOutcome::DeadLetter { email_fallback } => {
            sqlx::query("UPDATE outbox SET state = 'dead', attempts = $1, lease_owner = NULL, lease_until = NULL, last_error = $2 WHERE id = $3")
                .bind(i64::from(n))
                .bind(attempt.error.clone())
                .bind(&msg.id)
                .execute(&mut **tx)
                .await?;
            let mut fallback = None;
            if email_fallback {
                let (_, emails) = routes(tx, msg.party_id).await?;
                if !emails.is_empty() {
                    insert_outbox(
                        tx,
                        now,
                        OutboxChannel::Email.as_str(),
                        msg.party_id,
                        msg.notice_id,
                        &msg.event_id,
                        msg.event_type.as_str(),
                        &msg.payload,
                    )
                    .await?;
                    fallback = Some(OutboxChannel::Email.as_str());
                }
            }
            if let Some(notice) = msg.notice_id {
                audit::append(
                    tx,
                    now,
                    &actor,
                    EventType::DeliveryDeadLettered,
                    ("notice", &notice.to_string()),
                    Value::Null,
                    json!({"event_id": msg.event_id, "channel": msg.channel, "attempts": n, "fallback": fallback}),
                )
                .await?;
                // a dead channel: the notice goes to the representative
                if let Some(cause) =
                    tapis_core::representative::copy_cause_of_dead_letter(msg.event_type)
                {
                    let n = load_notice(tx, notice).await?;
                    crate::representatives::copy_notice(
                        tx,
                        &store.ctx.secrets,
                        now,
                        &actor,
                        &n,
                        cause,
                    )
                    .await?;
                }
            }
        }
        DeliveryOutcome::Retry { after_millis } => {
            sqlx::query("UPDATE outbox SET attempts = $1, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL, last_error = $3 WHERE id = $4")
                .bind(i64::from(n))
                .bind(now.plus_millis(after_millis).unix_millis())
                .bind(attempt.error.clone())
                .bind(&msg.id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

fn claimed_row(row: &AnyRow, owner: &str) -> Result<Claimed> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(Claimed {
        id: s("id")?,
        channel: OutboxChannel::parse(&s("channel")?).map_err(Error::corrupt)?,
        party_id: PartyId::parse(&s("party_id")?).map_err(Error::corrupt)?,
        notice_id: row
            .try_get::<Option<String>, _>("notice_id")?
            .map(|n| NoticeId::parse(&n).map_err(Error::corrupt))
            .transpose()?,
        event_id: s("event_id")?,
        event_type: s("event_type")?.parse().map_err(Error::corrupt)?,
        payload: s("payload")?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        lease_owner: owner.to_owned(),
    })
}

/// Due messages of one destination.
#[derive(Debug, Clone)]
pub struct Backlog {
    pub channel: OutboxChannel,
    pub party_id: PartyId,
    pub due: u64,
    pub oldest_due: Timestamp,
}
