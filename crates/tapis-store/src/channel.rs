//! The government channel's records: platform channels and webhook secrets,
//! the outbox, the platform event stream, the escalation ladder's timers,
//! escalations, signing keys and receipts.
//!
//! Outbound messages are rows written in the same transaction as the change
//! that causes them; workers (in `tapis-channel`) claim them with a lease,
//! deliver, and report back here, where the attempt is recorded on the
//! notice's timeline.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::audit::Actor;
use tapis_core::channel::NewChannel;
use tapis_core::delivery::{self, AttemptFacts, DeliveryOutcome, OutboxChannel};
use tapis_core::escalation::{EscalationDecision, EscalationReason, EscalationState};
use tapis_core::ladder::{self, NoticeTimer, StepOutcome};
use tapis_core::notice::{ItemState, NoticeEvent, NoticeState};
use tapis_core::{EscalationId, ItemId, NoticeId, PartyId, Timestamp, canonical};

use crate::notices::{load_notice, mark_delivered_tx, set_state};
use crate::{Error, Principal, Result, Store, audit};

type Tx = Transaction<'static, Any>;

/// A platform's channel settings as shown (never the secret).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub party_id: PartyId,
    pub webhook_url: Option<String>,
    pub emails: Vec<String>,
    pub public_key: Option<String>,
    /// Whether a webhook secret exists (it is shown only when created).
    pub has_secret: bool,
    /// Until when the previous secret is still accepted after a rotation.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub previous_secret_valid_until: Option<Timestamp>,
}

/// Where and how to deliver a webhook.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    /// Current secret first, then the previous one while its grace lasts.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secrets", &"***")
            .finish()
    }
}

/// An outbox message claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    /// `webhook` or `email`.
    pub channel: String,
    pub party_id: PartyId,
    pub notice_id: Option<NoticeId>,
    /// The platform event id: the `webhook-id`, stable across retries.
    pub event_id: String,
    pub event_type: String,
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

/// An event on a platform's stream (and in its webhooks).
#[derive(Debug, Clone, Serialize)]
pub struct PlatformEvent {
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub notice_id: Option<String>,
    pub payload: Value,
}

/// An open or decided escalation: a notice whose ladder ran out.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: EscalationId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notice_id: NoticeId,
    /// `deadline_missed` or `undeliverable`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: EscalationReason,
    /// Items still awaiting a decision when the ladder ran out.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub items: Vec<ItemId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: EscalationState,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub decision: Option<EscalationDecision>,
    pub note: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicKey {
    pub kid: String,
    pub alg: &'static str,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
}

/// A ladder step that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub notice_id: NoticeId,
    pub step: NoticeTimer,
}

fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

fn channel_from_row(row: &AnyRow) -> Result<Channel> {
    let party: String = row.try_get("party_id")?;
    let emails: String = row.try_get("emails")?;
    Ok(Channel {
        party_id: PartyId::parse(&party).map_err(Error::corrupt)?,
        webhook_url: row.try_get("webhook_url")?,
        emails: serde_json::from_str(&emails).map_err(Error::corrupt)?,
        public_key: row.try_get("public_key")?,
        has_secret: row.try_get::<Option<String>, _>("secret")?.is_some(),
        previous_secret_valid_until: row
            .try_get::<Option<i64>, _>("previous_valid_until")?
            .map(Timestamp::from_unix_millis),
    })
}

const CHANNEL_COLUMNS: &str =
    "party_id, webhook_url, emails, public_key, secret, previous_valid_until";

/// Put a platform-facing event on the stream and in the outbox: by webhook
/// when the platform has one, else by email when it has addresses. Returns
/// the event id.
pub(crate) async fn enqueue(
    tx: &mut Tx,
    now: Timestamp,
    party: PartyId,
    notice: Option<NoticeId>,
    event_type: &str,
    data: Value,
) -> Result<String> {
    let event_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let payload = canonical::to_string(&json!({
        "type": event_type,
        "timestamp": now.to_string(),
        "data": data,
    }))?;
    sqlx::query(
        "INSERT INTO platform_events (id, party_id, notice_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&event_id)
    .bind(party.to_string())
    .bind(notice.map(|n| n.to_string()))
    .bind(event_type)
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
            tx, now, channel, party, notice, &event_id, event_type, &payload,
        )
        .await?;
    }
    Ok(event_id)
}

#[allow(clippy::too_many_arguments)]
async fn insert_outbox(
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

/// A platform's webhook URL and email addresses (its channel's, else its
/// contacts').
async fn routes(tx: &mut Tx, party: PartyId) -> Result<(Option<String>, Vec<String>)> {
    let ch = sqlx::query("SELECT webhook_url, emails FROM channels WHERE party_id = $1")
        .bind(party.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let (webhook, mut emails) = match ch {
        Some(row) => {
            let e: String = row.try_get("emails")?;
            (
                row.try_get::<Option<String>, _>("webhook_url")?,
                serde_json::from_str::<Vec<String>>(&e).map_err(Error::corrupt)?,
            )
        }
        None => (None, vec![]),
    };
    if emails.is_empty() {
        let row = sqlx::query("SELECT contacts FROM parties WHERE id = $1")
            .bind(party.to_string())
            .fetch_one(&mut **tx)
            .await?;
        let contacts: Vec<tapis_core::party::Contact> =
            serde_json::from_str(&row.try_get::<String, _>("contacts")?).map_err(Error::corrupt)?;
        emails = contacts.into_iter().filter_map(|c| c.email).collect();
    }
    Ok((webhook, emails))
}

/// Schedule a timer (idempotent per notice and step).
pub(crate) async fn schedule(
    tx: &mut Tx,
    notice: NoticeId,
    step: &str,
    due: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO timers (id, notice_id, step, due_at, state) VALUES ($1, $2, $3, $4, 'pending') \
         ON CONFLICT (notice_id, step) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(notice.to_string())
    .bind(step)
    .bind(due.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Cancel a notice's pending timers (all, or one step).
pub(crate) async fn cancel_timers(tx: &mut Tx, notice: NoticeId, step: Option<&str>) -> Result<()> {
    let mut sql =
        "UPDATE timers SET state = 'cancelled' WHERE notice_id = $1 AND state = 'pending'"
            .to_owned();
    if step.is_some() {
        sql.push_str(" AND step = $2");
    }
    let mut q = sqlx::query(&sql).bind(notice.to_string());
    if let Some(s) = step {
        q = q.bind(s);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Real wall-clock milliseconds: leases are about live processes, not about
/// the (possibly simulated) business clock.
fn wall_ms() -> i64 {
    tapis_core::Clock::now(&tapis_core::SystemClock).unix_millis()
}

impl Store {
    /// Set a platform's channel. Creates its webhook secret when a webhook
    /// is first set and returns it (the only time it is shown).
    pub async fn set_channel(
        &self,
        actor: &Actor,
        party: PartyId,
        ch: NewChannel,
    ) -> Result<(Channel, Option<String>)> {
        let mut tx = self.write().await?;
        let kind: String = sqlx::query("SELECT kind FROM parties WHERE id = $1")
            .bind(party.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("party"))?
            .try_get("kind")?;
        if kind != "platform" && kind != "isp" && kind != "authoriser" {
            return Err(tapis_core::Error::invalid(
                "party",
                "only platforms, ISPs and authorisers have a delivery channel",
            )
            .into());
        }
        let existing = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE party_id = $1"
        ))
        .bind(party.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let had_secret = match &existing {
            Some(row) => row.try_get::<Option<String>, _>("secret")?.is_some(),
            None => false,
        };
        let new_secret = (ch.webhook_url.is_some() && !had_secret).then(new_webhook_secret);
        let now = self.now();
        let emails = canonical::to_string(&json!(ch.emails))?;
        if existing.is_some() {
            sqlx::query(
                "UPDATE channels SET webhook_url = $1, emails = $2, public_key = $3, secret = COALESCE($4, secret), updated_at = $5 WHERE party_id = $6",
            )
            .bind(ch.webhook_url.clone())
            .bind(&emails)
            .bind(ch.public_key.clone())
            .bind(new_secret.clone())
            .bind(now.unix_millis())
            .bind(party.to_string())
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO channels (party_id, webhook_url, emails, public_key, secret, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(party.to_string())
            .bind(ch.webhook_url.clone())
            .bind(&emails)
            .bind(ch.public_key.clone())
            .bind(new_secret.clone())
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
        }
        audit::append(
            &mut tx,
            now,
            actor,
            "channel.updated",
            ("party", &party.to_string()),
            Value::Null,
            json!({"webhook_url": ch.webhook_url, "emails": ch.emails, "public_key": ch.public_key, "secret_created": new_secret.is_some()}),
        )
        .await?;
        let channel = load_channel(&mut tx, party)
            .await?
            .ok_or(Error::NotFound("channel"))?;
        tx.commit().await?;
        Ok((channel, new_secret))
    }

    /// Replace the webhook secret; the old one stays valid for the grace
    /// period so the platform can switch without losing deliveries.
    pub async fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        party: PartyId,
    ) -> Result<(Channel, String)> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT secret FROM channels WHERE party_id = $1")
            .bind(party.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("channel"))?;
        let old: Option<String> = row.try_get("secret")?;
        let Some(old) = old else {
            return Err(tapis_core::Error::invalid(
                "webhook_url",
                "set a webhook first: there is no secret to rotate",
            )
            .into());
        };
        let now = self.now();
        let until = now.plus_secs(self.ctx.retry.secret_grace_secs);
        let secret = new_webhook_secret();
        sqlx::query(
            "UPDATE channels SET secret = $1, previous_secret = $2, previous_valid_until = $3, updated_at = $4 WHERE party_id = $5",
        )
        .bind(&secret)
        .bind(old)
        .bind(until.unix_millis())
        .bind(now.unix_millis())
        .bind(party.to_string())
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            actor,
            "channel.secret_rotated",
            ("party", &party.to_string()),
            Value::Null,
            json!({"previous_valid_until": until.to_string()}),
        )
        .await?;
        let channel = load_channel(&mut tx, party)
            .await?
            .ok_or(Error::NotFound("channel"))?;
        tx.commit().await?;
        Ok((channel, secret))
    }

    pub async fn get_channel(&self, party: PartyId) -> Result<Option<Channel>> {
        let row = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE party_id = $1"
        ))
        .bind(party.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    /// The webhook URL and valid secrets for a platform, for a worker.
    pub async fn webhook_target(&self, party: PartyId) -> Result<Option<WebhookTarget>> {
        let row = sqlx::query("SELECT webhook_url, secret, previous_secret, previous_valid_until FROM channels WHERE party_id = $1")
            .bind(party.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let url: Option<String> = row.try_get("webhook_url")?;
        let secret: Option<String> = row.try_get("secret")?;
        let (Some(url), Some(secret)) = (url, secret) else {
            return Ok(None);
        };
        let mut secrets = vec![secret];
        let prev: Option<String> = row.try_get("previous_secret")?;
        let until: Option<i64> = row.try_get("previous_valid_until")?;
        if let (Some(p), Some(u)) = (prev, until)
            && u > self.now().unix_millis()
        {
            secrets.push(p);
        }
        Ok(Some(WebhookTarget { url, secrets }))
    }

    /// Email addresses for a platform (channel's, else contacts').
    pub async fn email_targets(&self, party: PartyId) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let (_, emails) = routes(&mut tx, party).await?;
        tx.commit().await?;
        Ok(emails)
    }

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
                let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        rows.iter()
            .map(|row| {
                let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
                Ok(Claimed {
                    id: s("id")?,
                    channel: s("channel")?,
                    party_id: PartyId::parse(&s("party_id")?).map_err(Error::corrupt)?,
                    notice_id: row
                        .try_get::<Option<String>, _>("notice_id")?
                        .map(|n| NoticeId::parse(&n).map_err(Error::corrupt))
                        .transpose()?,
                    event_id: s("event_id")?,
                    event_type: s("event_type")?,
                    payload: s("payload")?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                    lease_owner: owner.to_owned(),
                })
            })
            .collect()
    }

    /// Record an attempt: delivered, retried later with backoff, or
    /// dead-lettered (a dead webhook falls back to email). The attempt is on
    /// the notice's timeline; a 2xx webhook for a new notice is delivery.
    pub async fn complete_delivery(&self, msg: &Claimed, attempt: Attempt) -> Result<()> {
        let mut tx = self.write().await?;
        let owned = sqlx::query("SELECT state FROM outbox WHERE id = $1 AND lease_owner = $2")
            .bind(&msg.id)
            .bind(&msg.lease_owner)
            .fetch_optional(&mut *tx)
            .await?;
        match owned {
            Some(row) if row.try_get::<String, _>("state")? == "pending" => {}
            // another worker took over (our lease lapsed) or it is settled
            _ => return Ok(()),
        }
        let now = self.now();
        let n = msg.attempts + 1;
        let actor = Actor::system("delivery");
        if let Some(notice) = msg.notice_id {
            audit::append(
                &mut tx,
                now,
                &actor,
                "delivery.attempt",
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
        let channel = OutboxChannel::parse(&msg.channel).map_err(Error::corrupt)?;
        let facts = AttemptFacts {
            channel,
            event_type: &msg.event_type,
            ok: attempt.ok,
            attempt: n,
            jitter: rand::Rng::random_range(&mut rand::rng(), -1.0..=1.0),
        };
        match delivery::outcome(&self.ctx.retry, facts) {
            DeliveryOutcome::Delivered { notice_delivered } => {
                sqlx::query("UPDATE outbox SET state = 'delivered', attempts = $1, delivered_at = $2, lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id = $3")
                    .bind(i64::from(n))
                    .bind(now.unix_millis())
                    .bind(&msg.id)
                    .execute(&mut *tx)
                    .await?;
                if notice_delivered && let Some(id) = msg.notice_id {
                    let mut notice = load_notice(&mut tx, id).await?;
                    if notice.state == NoticeState::Submitted {
                        mark_delivered_tx(
                            &mut tx,
                            &self.ctx,
                            now,
                            &actor,
                            &mut notice,
                            "webhook 2xx",
                        )
                        .await?;
                    }
                }
            }
            DeliveryOutcome::DeadLetter { email_fallback } => {
                sqlx::query("UPDATE outbox SET state = 'dead', attempts = $1, lease_owner = NULL, lease_until = NULL, last_error = $2 WHERE id = $3")
                    .bind(i64::from(n))
                    .bind(attempt.error.clone())
                    .bind(&msg.id)
                    .execute(&mut *tx)
                    .await?;
                let mut fallback = None;
                if email_fallback {
                    let (_, emails) = routes(&mut tx, msg.party_id).await?;
                    if !emails.is_empty() {
                        insert_outbox(
                            &mut tx,
                            now,
                            OutboxChannel::Email.as_str(),
                            msg.party_id,
                            msg.notice_id,
                            &msg.event_id,
                            &msg.event_type,
                            &msg.payload,
                        )
                        .await?;
                        fallback = Some(OutboxChannel::Email.as_str());
                    }
                }
                if let Some(notice) = msg.notice_id {
                    audit::append(
                        &mut tx,
                        now,
                        &actor,
                        "delivery.dead_lettered",
                        ("notice", &notice.to_string()),
                        Value::Null,
                        json!({"event_id": msg.event_id, "channel": msg.channel, "attempts": n, "fallback": fallback}),
                    )
                    .await?;
                }
            }
            DeliveryOutcome::Retry { after_millis } => {
                sqlx::query("UPDATE outbox SET attempts = $1, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL, last_error = $3 WHERE id = $4")
                    .bind(i64::from(n))
                    .bind(now.plus_millis(after_millis).unix_millis())
                    .bind(attempt.error.clone())
                    .bind(&msg.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        self.signal();
        Ok(())
    }

    /// Outbox messages of a notice (for the API's delivery view).
    pub async fn deliveries(&self, notice: NoticeId) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT id, channel, event_id, event_type, state, attempts, next_attempt_at, last_error, created_at, delivered_at \
             FROM outbox WHERE notice_id = $1 ORDER BY created_at, id",
        )
        .bind(notice.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let ts = |c: &str| -> Result<Option<String>> {
                    Ok(r.try_get::<Option<i64>, _>(c)?
                        .map(|v| Timestamp::from_unix_millis(v).to_string()))
                };
                Ok(json!({
                    "id": r.try_get::<String, _>("id")?,
                    "channel": r.try_get::<String, _>("channel")?,
                    "event_id": r.try_get::<String, _>("event_id")?,
                    "event_type": r.try_get::<String, _>("event_type")?,
                    "state": r.try_get::<String, _>("state")?,
                    "attempts": r.try_get::<i64, _>("attempts")?,
                    "next_attempt_at": ts("next_attempt_at")?,
                    "last_error": r.try_get::<Option<String>, _>("last_error")?,
                    "created_at": ts("created_at")?,
                    "delivered_at": ts("delivered_at")?,
                }))
            })
            .collect()
    }

    /// Dead-lettered messages, newest first.
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<Value>> {
        let rows = sqlx::query(&format!(
            "SELECT id, channel, party_id, notice_id, event_id, event_type, attempts, last_error FROM outbox \
             WHERE state = 'dead' ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 500)
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(json!({
                    "id": r.try_get::<String, _>("id")?,
                    "channel": r.try_get::<String, _>("channel")?,
                    "party_id": r.try_get::<String, _>("party_id")?,
                    "notice_id": r.try_get::<Option<String>, _>("notice_id")?,
                    "event_id": r.try_get::<String, _>("event_id")?,
                    "event_type": r.try_get::<String, _>("event_type")?,
                    "attempts": r.try_get::<i64, _>("attempts")?,
                    "last_error": r.try_get::<Option<String>, _>("last_error")?,
                }))
            })
            .collect()
    }

    /// A platform's stream events after `after` (exclusive), oldest first.
    pub async fn platform_events(
        &self,
        party: PartyId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PlatformEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT seq, id, event_type, notice_id, payload FROM platform_events WHERE party_id = $1 AND seq > $2 ORDER BY seq LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(party.to_string())
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PlatformEvent {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    notice_id: r.try_get("notice_id")?,
                    payload: serde_json::from_str(&r.try_get::<String, _>("payload")?)
                        .map_err(Error::corrupt)?,
                })
            })
            .collect()
    }

    /// The client confirmed every event up to `seq` (by resuming after it):
    /// the notices those events carried are delivered.
    pub async fn confirm_stream(&self, by: &Principal, seq: i64) -> Result<u32> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT e.notice_id FROM platform_events e JOIN notices n ON n.id = e.notice_id \
             WHERE e.party_id = $1 AND e.seq <= $2 AND e.event_type = 'notice.submitted' AND n.state = 'submitted'",
        )
        .bind(by.party_id.to_string())
        .bind(seq)
        .fetch_all(&mut *tx)
        .await?;
        let now = self.now();
        let mut n = 0;
        for row in rows {
            let id =
                NoticeId::parse(&row.try_get::<String, _>("notice_id")?).map_err(Error::corrupt)?;
            let mut notice = load_notice(&mut tx, id).await?;
            mark_delivered_tx(
                &mut tx,
                &self.ctx,
                now,
                &by.actor(),
                &mut notice,
                "event stream (client confirmed)",
            )
            .await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Fire up to `limit` ladder steps that are due. Each step, its event,
    /// its outbound messages and the timer's `fired` mark commit together,
    /// so a crash fires it either entirely or not at all, and a restart
    /// fires what is left exactly once.
    /// Returns the steps that acted and how many timers were looked at.
    pub async fn fire_due_timers(&self, limit: u32) -> Result<(Vec<Fired>, usize)> {
        let mut tx = self.write().await?;
        let now = self.now();
        let rows = sqlx::query(&format!(
            "SELECT id, notice_id, step FROM timers WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT {}",
            limit.clamp(1, 5000)
        ))
        .bind(now.unix_millis())
        .fetch_all(&mut *tx)
        .await?;
        let actor = Actor::system("scheduler");
        let mut fired = Vec::new();
        let seen = rows.len();
        for row in rows {
            let timer: String = row.try_get("id")?;
            let step: String = row.try_get("step")?;
            let notice_id =
                NoticeId::parse(&row.try_get::<String, _>("notice_id")?).map_err(Error::corrupt)?;
            let step = NoticeTimer::parse(&step).map_err(Error::corrupt)?;
            let mut n = load_notice(&mut tx, notice_id).await?;
            let acted = fire_step(&mut tx, now, &actor, &mut n, step).await?;
            sqlx::query("UPDATE timers SET state = $1, fired_at = $2 WHERE id = $3")
                .bind(if acted { "fired" } else { "cancelled" })
                .bind(now.unix_millis())
                .bind(&timer)
                .execute(&mut *tx)
                .await?;
            if acted {
                fired.push(Fired { notice_id, step });
            }
        }
        tx.commit().await?;
        if !fired.is_empty() {
            self.signal();
        }
        Ok((fired, seen))
    }

    /// When the next pending timer falls due, if any.
    pub async fn next_timer_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(due_at) AS due FROM timers WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row
            .try_get::<Option<i64>, _>("due")?
            .map(Timestamp::from_unix_millis))
    }

    pub async fn list_escalations(
        &self,
        state: Option<EscalationState>,
    ) -> Result<Vec<Escalation>> {
        let mut sql = "SELECT id, notice_id, reason, items, state, decision, note, created_at FROM escalations".to_owned();
        if state.is_some() {
            sql.push_str(" WHERE state = $1");
        }
        sql.push_str(" ORDER BY created_at, id");
        let mut q = sqlx::query(&sql);
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(escalation_from_row).collect()
    }

    pub async fn get_escalation(&self, id: EscalationId) -> Result<Escalation> {
        let row = sqlx::query("SELECT id, notice_id, reason, items, state, decision, note, created_at FROM escalations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("escalation"))?;
        escalation_from_row(&row)
    }

    /// An approver decides an escalation: `propose_order` (the blocking
    /// order work picks it up) or `dismiss`, with a note for the record.
    pub async fn decide_escalation(
        &self,
        by: &Principal,
        id: EscalationId,
        decision: EscalationDecision,
        note: &str,
    ) -> Result<Escalation> {
        let note = tapis_core::party::bounded_text("note", note, 1, 4000)?;
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT id, notice_id, reason, items, state, decision, note, created_at FROM escalations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("escalation"))?;
        let esc = escalation_from_row(&row)?;
        let next = esc.state.decide()?;
        let now = self.now();
        sqlx::query("UPDATE escalations SET state = $1, decision = $2, note = $3, decided_by = $4, decided_at = $5 WHERE id = $6")
            .bind(next.as_str())
            .bind(decision.as_str())
            .bind(&note)
            .bind(by.token_id.to_string())
            .bind(now.unix_millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            now,
            &by.actor(),
            "escalation.decided",
            ("notice", &esc.notice_id.to_string()),
            json!({"escalation_id": id, "state": esc.state}),
            json!({"escalation_id": id, "state": next, "decision": decision, "note": note}),
        )
        .await?;
        let row = sqlx::query("SELECT id, notice_id, reason, items, state, decision, note, created_at FROM escalations WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        escalation_from_row(&row)
    }

    /// Publish this store's signing key (idempotent).
    pub(crate) async fn publish_key(&self) -> Result<()> {
        let signer = &self.ctx.signer;
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT kid FROM signing_keys WHERE kid = $1")
            .bind(signer.kid())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            let now = self.now();
            sqlx::query(
                "INSERT INTO signing_keys (kid, public_key, created_at) VALUES ($1, $2, $3)",
            )
            .bind(signer.kid())
            .bind(signer.public_key_b64())
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
            audit::append(
                &mut tx,
                now,
                &Actor::system("signing"),
                "key.published",
                ("key", signer.kid()),
                Value::Null,
                json!({"kid": signer.kid(), "alg": tapis_core::sign::ALG, "public_key": signer.public_key_b64()}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every public key tapis has signed with; old keys stay listed.
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>> {
        let rows = sqlx::query(
            "SELECT kid, public_key, created_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PublicKey {
                    kid: r.try_get("kid")?,
                    alg: tapis_core::sign::ALG,
                    public_key: r.try_get("public_key")?,
                    created_at: Timestamp::from_unix_millis(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Receipts issued for a notice, oldest first.
    pub async fn receipts(&self, notice: NoticeId) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT receipt FROM receipts WHERE notice_id = $1 ORDER BY created_at, id",
        )
        .bind(notice.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.try_get::<String, _>("receipt")?).map_err(Error::corrupt)
            })
            .collect()
    }
}

fn escalation_from_row(row: &AnyRow) -> Result<Escalation> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(Escalation {
        id: EscalationId::parse(&s("id")?).map_err(Error::corrupt)?,
        notice_id: NoticeId::parse(&s("notice_id")?).map_err(Error::corrupt)?,
        reason: EscalationReason::parse(&s("reason")?).map_err(Error::corrupt)?,
        items: serde_json::from_str(&s("items")?).map_err(Error::corrupt)?,
        state: EscalationState::parse(&s("state")?).map_err(Error::corrupt)?,
        decision: row
            .try_get::<Option<String>, _>("decision")?
            .map(|d| EscalationDecision::parse(&d).map_err(Error::corrupt))
            .transpose()?,
        note: row.try_get("note")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

pub(crate) async fn load_channel(tx: &mut Tx, party: PartyId) -> Result<Option<Channel>> {
    let row = sqlx::query(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM channels WHERE party_id = $1"
    ))
    .bind(party.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(channel_from_row).transpose()
}

/// Apply one notice timer: core decides what it does, this applies it.
/// Returns whether it acted.
async fn fire_step(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut crate::Notice,
    timer: NoticeTimer,
) -> Result<bool> {
    let pending: Vec<String> = n
        .items
        .iter()
        .filter(|i| i.state == ItemState::Pending)
        .map(|i| i.id.to_string())
        .collect();
    match ladder::decide(timer, n.state, pending.len()) {
        StepOutcome::Nothing => Ok(false),
        StepOutcome::Escalate(reason) => {
            escalate(tx, now, actor, n, reason, &pending).await?;
            Ok(true)
        }
        StepOutcome::Notify { step, level } => {
            let id = n.id.to_string();
            let data = json!({
                "notice_id": id, "step": step.as_str(), "level": level,
                "due_at": n.due_at.map(|t| t.to_string()), "pending_items": pending,
            });
            audit::append(
                tx,
                now,
                actor,
                step.event_type().as_str(),
                ("notice", &id),
                Value::Null,
                data.clone(),
            )
            .await?;
            enqueue(
                tx,
                now,
                n.platform_id,
                Some(n.id),
                step.event_type().as_str(),
                data,
            )
            .await?;
            Ok(true)
        }
    }
}

async fn escalate(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut crate::Notice,
    reason: EscalationReason,
    pending: &[String],
) -> Result<()> {
    let reason = reason.as_str();
    let id = n.id.to_string();
    let next = n.state.on(NoticeEvent::Escalate)?;
    set_state(tx, now, n, next, None).await?;
    let esc_id = EscalationId::new().to_string();
    sqlx::query("INSERT INTO escalations (id, notice_id, reason, items, state, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&esc_id)
        .bind(&id)
        .bind(reason)
        .bind(canonical::to_string(&json!(pending))?)
        .bind(EscalationState::Open.as_str())
        .bind(now.unix_millis())
        .execute(&mut **tx)
        .await?;
    let data = json!({"notice_id": id, "escalation_id": esc_id, "reason": reason, "pending_items": pending});
    audit::append(
        tx,
        now,
        actor,
        "notice.escalated",
        ("notice", &id),
        json!({"state": n.state}),
        json!({"state": next, "escalation_id": esc_id, "reason": reason, "pending_items": pending}),
    )
    .await?;
    enqueue(tx, now, n.platform_id, Some(n.id), "notice.escalated", data).await?;
    n.state = next;
    Ok(())
}
