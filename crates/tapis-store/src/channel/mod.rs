//! The government channel's records. This file holds platform channels
//! and webhook secrets (where a party's messages go); the rest is split by
//! subject: `outbox` (messages and delivery attempts), `stream` (the
//! platform event stream), `timers` (the escalation ladder on notices),
//! `escalations`, and `keys` (signing keys and receipts).
//!
//! Outbound messages are rows written in the same transaction as the change
//! that causes them; workers (in `tapis-channel`) claim them with a lease,
//! deliver, and report back here, where the attempt is recorded on the
//! notice's timeline.

use crate::notices::{load_notice, mark_delivered_tx, set_state};
use crate::secrets::Place;
use crate::{
    Error, Principal, Result, Store,
    audit::{self, Event},
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::channel::NewChannel;
use tapis_core::delivery::{self, AttemptFacts, DeliveryOutcome, OutboxChannel};
use tapis_core::escalation::{EscalationDecision, EscalationReason, EscalationState};
use tapis_core::ladder::{self, NoticeTimer, StepOutcome};
use tapis_core::notice::{ItemState, NoticeEvent, NoticeState};
use tapis_core::{EscalationId, ItemId, NoticeId, PartyId, Timestamp, canonical};

mod escalations;
mod keys;
mod outbox;
mod stream;
mod timers;

pub use escalations::*;
pub use keys::*;
pub use outbox::*;
pub use stream::*;
pub(crate) use timers::*;

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

fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Where a channel's webhook secret is sealed: bound to its column and row,
/// so a sealed value copied elsewhere does not open.
pub(crate) fn secret_place<'a>(column: &'static str, party: &'a str) -> Place<'a> {
    Place {
        table: "channels",
        column,
        row: party,
    }
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

/// A platform's webhook URL and email addresses (its channel's, else its
/// contacts').
async fn routes(tx: &mut Tx, party: PartyId) -> Result<(Option<String>, Vec<String>)> {
    // the channel and, for want of its addresses, the party's contacts: one read
    let row = sqlx::query(
        "SELECT c.webhook_url, c.emails, p.contacts FROM parties p \
         LEFT JOIN channels c ON c.party_id = p.id WHERE p.id = $1",
    )
    .bind(party.to_string())
    .fetch_one(&mut **tx)
    .await?;
    let webhook = row.try_get::<Option<String>, _>("webhook_url")?;
    let mut emails: Vec<String> = match row.try_get::<Option<String>, _>("emails")? {
        Some(e) => serde_json::from_str(&e).map_err(Error::corrupt)?,
        None => vec![],
    };
    if emails.is_empty() {
        let contacts: Vec<tapis_core::party::Contact> =
            serde_json::from_str(&row.try_get::<String, _>("contacts")?).map_err(Error::corrupt)?;
        emails = contacts.into_iter().filter_map(|c| c.email).collect();
    }
    Ok((webhook, emails))
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

/// Commit a change to `party`'s channel; returns the channel as committed.
async fn commit_channel(mut tx: Tx, party: PartyId) -> Result<Channel> {
    let channel = load_channel(&mut tx, party)
        .await?
        .ok_or(Error::NotFound("channel"))?;
    tx.commit().await?;
    Ok(channel)
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
        let kind = crate::parties::kind_of(&mut tx, party).await?;
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
        let party_str = party.to_string();
        let stored_secret = new_secret
            .as_deref()
            .map(|s| self.ctx.secrets.seal(secret_place("secret", &party_str), s))
            .transpose()?;
        let now = self.now();
        let emails = canonical::to_string(&json!(ch.emails))?;
        if existing.is_some() {
            sqlx::query(
                "UPDATE channels SET webhook_url = $1, emails = $2, public_key = $3, secret = COALESCE($4, secret), updated_at = $5 WHERE party_id = $6",
            )
            .bind(ch.webhook_url.clone())
            .bind(&emails)
            .bind(ch.public_key.clone())
            .bind(stored_secret.clone())
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
            .bind(stored_secret)
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
        }
        let after = json!({"webhook_url": ch.webhook_url, "emails": ch.emails, "public_key": ch.public_key, "secret_created": new_secret.is_some()});
        Event::party(EventType::ChannelUpdated, party, after)
            .append(&mut tx, now, actor)
            .await?;
        Ok((commit_channel(tx, party).await?, new_secret))
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
        // the old secret moves column: open it where it was, seal it where
        // it goes
        let party_str = party.to_string();
        let keys = &self.ctx.secrets;
        let old = keys.open(secret_place("secret", &party_str), &old)?;
        sqlx::query(
            "UPDATE channels SET secret = $1, previous_secret = $2, previous_valid_until = $3, updated_at = $4 WHERE party_id = $5",
        )
        .bind(keys.seal(secret_place("secret", &party_str), &secret)?)
        .bind(keys.seal(secret_place("previous_secret", &party_str), &old)?)
        .bind(until.unix_millis())
        .bind(now.unix_millis())
        .bind(party.to_string())
        .execute(&mut *tx)
        .await?;
        Event::party(
            EventType::ChannelSecretRotated,
            party,
            json!({"previous_valid_until": until.to_string()}),
        )
        .append(&mut tx, now, actor)
        .await?;
        Ok((commit_channel(tx, party).await?, secret))
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
        let party_str = party.to_string();
        let keys = &self.ctx.secrets;
        let mut secrets = vec![keys.open(secret_place("secret", &party_str), &secret)?];
        let prev: Option<String> = row.try_get("previous_secret")?;
        let until: Option<i64> = row.try_get("previous_valid_until")?;
        if let (Some(p), Some(u)) = (prev, until)
            && u > self.now().unix_millis()
        {
            secrets.push(keys.open(secret_place("previous_secret", &party_str), &p)?);
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
}
