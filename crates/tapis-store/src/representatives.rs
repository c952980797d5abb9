//! Who answers for a platform: its legal representative in the country
//! and its technical and administrative contacts. The platform's own
//! people set them and verify each with a one-time code emailed through
//! the outbox; the authority reads them, never sets them; another party
//! gets a 404. The rules are core's (`tapis_core::representative`).
//!
//! Contacts are personal data: each is kept as JSON sealed under the
//! secrets key (bound to platform and role; in clear only when no key is
//! configured, as webhook secrets are), the code only as a SHA-256, and
//! audit events carry a digest of the contact, never the contact itself
//! (the chain cannot forget). The representative's emails (its code, and
//! notices copied to it) are outbox messages to the platform's party with
//! the address sealed in `outbox.recipient`, so they are never on the
//! platform's stream.
//!
//! When the channel dies (a message dead-lettered, a notice never
//! delivered) or a deadline is missed, [`copy_notice`] copies the notice
//! to the verified representative, once per cause, on the notice's
//! timeline; [`representative_named`] is what the ladder's last steps
//! and escalations carry.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::audit::Actor;
use tapis_core::representative::{
    CodeCheck, CodeFacts, CodePolicy, Contact, ContactEvent, ContactRole, ContactState, CopyCause,
    check_code, may_send_code, should_copy,
};
use tapis_core::role::Action;
use tapis_core::{EventType, PartyId, Timestamp, canonical};

use crate::audit::Event;
use crate::secrets::{Place, SecretKey};
use crate::{Claimed, Error, Principal, Result, Store};

type Tx = Transaction<'static, Any>;

/// One contact of a platform, as the platform and the authority see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformContact {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub platform_id: PartyId,
    /// `legal` (the representative), `technical` or `administrative`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: ContactRole,
    pub contact: Contact,
    pub state: ContactState,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub verified_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub code_sent_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A platform without a verified legal representative.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnrepresentedPlatform {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub platform_id: PartyId,
    pub name: String,
    /// Where its representative stands: none set, or not yet verified.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub state: Option<ContactState>,
}

/// Where an email goes: the party's own addresses, or the representative
/// with the code to tell it.
#[derive(Clone)]
pub struct EmailRoute {
    pub to: Vec<String>,
    pub code: Option<String>,
}

impl std::fmt::Debug for EmailRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailRoute")
            .field("to", &self.to.len())
            .field("code", &self.code.as_ref().map(|_| "***"))
            .finish()
    }
}

const COLUMNS: &str = "platform_id, role, details, state, code_sent_at, verified_at, updated_at";

fn details_place<'a>(row: &'a str) -> Place<'a> {
    Place {
        table: "platform_contacts",
        column: "details",
        row,
    }
}

fn recipient_place(event_id: &str) -> Place<'_> {
    Place {
        table: "outbox",
        column: "recipient",
        row: event_id,
    }
}

fn escalation_place(id: &str) -> Place<'_> {
    Place {
        table: "escalations",
        column: "representative",
        row: id,
    }
}

fn row_key(platform: PartyId, role: ContactRole) -> String {
    format!("{platform}/{role}")
}

fn contact_from_row(keys: &SecretKey, row: &AnyRow) -> Result<PlatformContact> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    let platform = PartyId::parse(&s("platform_id")?).map_err(Error::corrupt)?;
    let role = ContactRole::parse(&s("role")?).map_err(Error::corrupt)?;
    let details = keys.open(details_place(&row_key(platform, role)), &s("details")?)?;
    Ok(PlatformContact {
        platform_id: platform,
        role,
        contact: serde_json::from_str(&details).map_err(Error::corrupt)?,
        state: ContactState::parse(&s("state")?).map_err(Error::corrupt)?,
        verified_at: crate::notices::opt_ts(row, "verified_at")?,
        code_sent_at: crate::notices::opt_ts(row, "code_sent_at")?,
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
    })
}

/// A digest of a contact for the audit record: shows that it changed and
/// lets whoever holds the contact check it, without putting personal data
/// into a chain that cannot forget.
fn digest(c: &Contact) -> Result<String> {
    let text = canonical::to_string(&serde_json::to_value(c).map_err(Error::corrupt)?)?;
    Ok(hex::encode(Sha256::digest(text.as_bytes())))
}

fn code_hash(platform: PartyId, role: ContactRole, code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("tapis-contact-code/v1\0{platform}\0{role}\0{code}").as_bytes(),
    ))
}

/// The platform's record, if the caller may read it: authority staff any
/// platform's, a platform agent its own; anyone else, or a party that is
/// not a platform, gets a 404 (ids cannot be probed).
async fn readable(tx: &mut Tx, by: &Principal, platform: PartyId) -> Result<()> {
    by.role.require(Action::ReadContacts)?;
    if !by.role.reads_everything() && by.party_id != platform {
        return Err(Error::NotFound("platform"));
    }
    match crate::parties::kind_of(tx, platform).await {
        Ok(k) if k == "platform" => Ok(()),
        Ok(_) | Err(Error::NotFound(_)) => Err(Error::NotFound("platform")),
        Err(e) => Err(e),
    }
}

/// The platform's own people only: the authority may not set them (403),
/// another platform does not see this one (404).
async fn writable(tx: &mut Tx, by: &Principal, platform: PartyId) -> Result<()> {
    if by.role.reads_everything() {
        by.role.require(Action::ManageContacts)?;
    }
    readable(tx, by, platform).await?;
    by.role.require(Action::ManageContacts)?;
    Ok(())
}

async fn load(
    tx: &mut Tx,
    keys: &SecretKey,
    platform: PartyId,
    role: ContactRole,
) -> Result<Option<PlatformContact>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM platform_contacts WHERE platform_id = $1 AND role = $2"
    ))
    .bind(platform.to_string())
    .bind(role.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(|r| contact_from_row(keys, r)).transpose()
}

/// The platform's verified legal representative, as an escalation or the
/// ladder's last steps name it (`None` when it has none verified).
pub(crate) async fn representative_named(
    tx: &mut Tx,
    keys: &SecretKey,
    platform: PartyId,
) -> Result<Option<Value>> {
    let rep = load(tx, keys, platform, ContactRole::Legal).await?;
    Ok(rep.filter(|r| r.state == ContactState::Verified).map(|r| {
        let c = r.contact;
        json!({"name": c.name, "kind": c.kind, "email": c.email, "phone": c.phone,
                   "address": c.address, "hours": c.hours, "time_zone": c.time_zone})
    }))
}

/// Seal the representative an escalation names into its row.
pub(crate) async fn name_on_escalation(
    tx: &mut Tx,
    keys: &SecretKey,
    escalation_id: &str,
    rep: &Value,
) -> Result<()> {
    sqlx::query("UPDATE escalations SET representative = $1 WHERE id = $2")
        .bind(keys.seal(escalation_place(escalation_id), &canonical::to_string(rep)?)?)
        .bind(escalation_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The representative an escalation named, opened.
pub(crate) fn open_escalation_rep(
    keys: &SecretKey,
    escalation_id: &str,
    stored: Option<String>,
) -> Result<Option<Value>> {
    stored
        .map(|s| {
            let text = keys.open(escalation_place(escalation_id), &s)?;
            serde_json::from_str(&text).map_err(Error::corrupt)
        })
        .transpose()
}

/// Put an email to `to` in the outbox for `platform` (the address, and a
/// code if any, sealed in `recipient`). Returns the event id.
#[allow(clippy::too_many_arguments)]
async fn email_to(
    tx: &mut Tx,
    keys: &SecretKey,
    now: Timestamp,
    platform: PartyId,
    notice: Option<tapis_core::NoticeId>,
    event_type: EventType,
    data: Value,
    to: &str,
    code: Option<&str>,
) -> Result<String> {
    let event_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let payload = canonical::to_string(&json!({
        "type": event_type, "timestamp": now.to_string(), "data": data,
    }))?;
    crate::channel::insert_outbox(
        tx,
        now,
        "email",
        platform,
        notice,
        &event_id,
        event_type.as_str(),
        &payload,
    )
    .await?;
    let recipient = canonical::to_string(&json!({"to": to, "code": code}))?;
    sqlx::query("UPDATE outbox SET recipient = $1 WHERE event_id = $2 AND channel = 'email'")
        .bind(keys.seal(recipient_place(&event_id), &recipient)?)
        .bind(&event_id)
        .execute(&mut **tx)
        .await?;
    Ok(event_id)
}

/// Copy notice `n` to its platform's verified representative for `cause`,
/// once per notice and cause (or a cause that covers it), on the notice's timeline
/// (`representative.copied`). Nothing happens without a verified
/// representative. Returns whether it was copied.
pub(crate) async fn copy_notice(
    tx: &mut Tx,
    keys: &SecretKey,
    now: Timestamp,
    actor: &Actor,
    n: &crate::Notice,
    cause: CopyCause,
) -> Result<bool> {
    let rep = load(tx, keys, n.platform_id, ContactRole::Legal).await?;
    let mut already = false;
    for earlier in cause.covered_by() {
        already |= sqlx::query(
            "SELECT 1 AS one FROM representative_copies WHERE notice_id = $1 AND cause = $2",
        )
        .bind(n.id.to_string())
        .bind(earlier.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    }
    if !should_copy(rep.as_ref().map(|r| r.state), already) {
        return Ok(false);
    }
    let Some(rep) = rep else { return Ok(false) };
    sqlx::query(
        "INSERT INTO representative_copies (notice_id, cause, platform_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(n.id.to_string())
    .bind(cause.as_str())
    .bind(n.platform_id.to_string())
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    let data = json!({
        "notice_id": n.id.to_string(), "cause": cause.as_str(),
        "due_at": n.due_at.map(|t| t.to_string()),
        "document_sha256": n.document_sha256, "notice": n.signed_document,
    });
    let event_id = email_to(
        tx,
        keys,
        now,
        n.platform_id,
        Some(n.id),
        EventType::RepresentativeCopied,
        data,
        &rep.contact.email,
        None,
    )
    .await?;
    Event::notice(
        EventType::RepresentativeCopied,
        n.id,
        json!({"cause": cause.as_str(), "contact": "legal", "event_id": event_id,
               "contact_sha256": digest(&rep.contact)?}),
    )
    .append(tx, now, actor)
    .await?;
    Ok(true)
}

impl Store {
    /// A destination's delivery circuit breaker opened: copy each open
    /// notice still waiting in the outbox for that destination to the
    /// platform's verified representative, if core says so
    /// (`copy_cause_of_breaker_open`: a webhook, not an email route), once
    /// per notice (a breaker that opens again, or a later dead letter,
    /// copies nothing twice), each on the notice's timeline
    /// (`representative.copied`, cause `unreachable`). Returns how many
    /// notices were copied.
    pub async fn destination_unreachable(
        &self,
        channel: tapis_core::delivery::OutboxChannel,
        platform: PartyId,
    ) -> Result<usize> {
        if tapis_core::representative::copy_cause_of_breaker_open(channel, true).is_none() {
            return Ok(0);
        }
        let now = self.now();
        let actor = Actor::system("delivery");
        let mut tx = self.write().await?;
        let waiting: Vec<String> = sqlx::query(
            "SELECT DISTINCT notice_id FROM outbox WHERE channel = $1 AND party_id = $2 \
             AND state = 'pending' AND notice_id IS NOT NULL ORDER BY notice_id LIMIT 1000",
        )
        .bind(channel.as_str())
        .bind(platform.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("notice_id"))
        .collect::<std::result::Result<_, _>>()?;
        let mut copied = 0;
        for id in waiting {
            let id = tapis_core::NoticeId::parse(&id).map_err(Error::corrupt)?;
            let n = crate::notices::load_notice(&mut tx, id).await?;
            let Some(cause) =
                tapis_core::representative::copy_cause_of_breaker_open(channel, n.state.is_open())
            else {
                continue;
            };
            if copy_notice(&mut tx, &self.ctx.secrets, now, &actor, &n, cause).await? {
                copied += 1;
            }
        }
        tx.commit().await?;
        Ok(copied)
    }

    /// A platform's contacts (the authority any platform's, the platform
    /// its own; otherwise 404).
    pub async fn platform_contacts(
        &self,
        by: &Principal,
        platform: PartyId,
    ) -> Result<Vec<PlatformContact>> {
        let mut tx = self.pool.begin().await?;
        readable(&mut tx, by, platform).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM platform_contacts WHERE platform_id = $1"
        ))
        .bind(platform.to_string())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = rows
            .iter()
            .map(|r| contact_from_row(&self.ctx.secrets, r))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|c| ContactRole::ALL.iter().position(|r| *r == c.role));
        Ok(out)
    }

    /// Set one of the platform's contacts (its own people only). A new
    /// email, phone or address un-verifies it.
    pub async fn set_platform_contact(
        &self,
        by: &Principal,
        platform: PartyId,
        role: ContactRole,
        contact: Contact,
    ) -> Result<PlatformContact> {
        let mut tx = self.write().await?;
        writable(&mut tx, by, platform).await?;
        let keys = &self.ctx.secrets;
        let old = load(&mut tx, keys, platform, role).await?;
        let now = self.now();
        let changed = old
            .as_ref()
            .is_none_or(|o| o.contact.reachability_changed(&contact));
        let state = old
            .as_ref()
            .map_or(ContactState::Unverified, |o| o.state)
            .on(ContactEvent::Set {
                reachability_changed: changed,
            })?;
        let details = keys.seal(
            details_place(&row_key(platform, role)),
            &canonical::to_string(&serde_json::to_value(&contact).map_err(Error::corrupt)?)?,
        )?;
        let verified_at = (state == ContactState::Verified)
            .then(|| old.as_ref().and_then(|o| o.verified_at))
            .flatten();
        if old.is_some() {
            sqlx::query(
                "UPDATE platform_contacts SET details = $1, state = $2, code_hash = NULL, code_expires_at = NULL, \
                 code_attempts = 0, verified_at = $3, updated_at = $4, updated_by = $5 WHERE platform_id = $6 AND role = $7",
            )
            .bind(&details)
            .bind(state.as_str())
            .bind(verified_at.map(Timestamp::unix_millis))
            .bind(now.unix_millis())
            .bind(by.token_id.to_string())
            .bind(platform.to_string())
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO platform_contacts (platform_id, role, details, state, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(platform.to_string())
            .bind(role.as_str())
            .bind(&details)
            .bind(state.as_str())
            .bind(now.unix_millis())
            .bind(by.token_id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        Event::party(
            EventType::ContactSet,
            platform,
            json!({"role": role, "state": state, "contact_sha256": digest(&contact)?,
                   "reachability_changed": changed}),
        )
        .before(json!({"state": old.as_ref().map(|o| o.state)}))
        .append(&mut tx, now, &by.actor())
        .await?;
        let out = load(&mut tx, keys, platform, role)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        tx.commit().await?;
        Ok(out)
    }

    /// Email a one-time code to the contact's address (through the
    /// outbox); the platform confirms it with
    /// [`Store::verify_platform_contact`].
    pub async fn send_contact_code(
        &self,
        by: &Principal,
        platform: PartyId,
        role: ContactRole,
    ) -> Result<PlatformContact> {
        let policy = CodePolicy::default();
        let mut tx = self.write().await?;
        writable(&mut tx, by, platform).await?;
        let keys = &self.ctx.secrets;
        let c = load(&mut tx, keys, platform, role)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let now = self.now();
        may_send_code(&policy, c.state, c.code_sent_at, now)?;
        let next = c.state.on(ContactEvent::CodeSent)?;
        let code: String = {
            use rand::Rng as _;
            let mut rng = rand::rng();
            (0..policy.digits)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect()
        };
        let expires = now.plus_secs(policy.ttl_secs);
        sqlx::query(
            "UPDATE platform_contacts SET state = $1, code_hash = $2, code_sent_at = $3, code_expires_at = $4, \
             code_attempts = 0 WHERE platform_id = $5 AND role = $6",
        )
        .bind(next.as_str())
        .bind(code_hash(platform, role, &code))
        .bind(now.unix_millis())
        .bind(expires.unix_millis())
        .bind(platform.to_string())
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        let name: String = sqlx::query("SELECT name FROM parties WHERE id = $1")
            .bind(platform.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get("name")?;
        let event_id = email_to(
            &mut tx,
            keys,
            now,
            platform,
            None,
            EventType::ContactCodeSent,
            json!({"platform_id": platform.to_string(), "platform": name, "role": role,
                   "expires_at": expires.to_string()}),
            &c.contact.email,
            Some(&code),
        )
        .await?;
        Event::party(
            EventType::ContactCodeSent,
            platform,
            json!({"role": role, "state": next, "event_id": event_id,
                   "expires_at": expires.to_string(), "contact_sha256": digest(&c.contact)?}),
        )
        .before(json!({"state": c.state}))
        .append(&mut tx, now, &by.actor())
        .await?;
        let out = load(&mut tx, keys, platform, role)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        tx.commit().await?;
        self.signal();
        Ok(out)
    }

    /// Confirm the code emailed to a contact. A wrong code counts against
    /// the code's tries (on the record); after the last it is void.
    pub async fn verify_platform_contact(
        &self,
        by: &Principal,
        platform: PartyId,
        role: ContactRole,
        code: &str,
    ) -> Result<PlatformContact> {
        let policy = CodePolicy::default();
        let code = code.trim();
        if code.is_empty() || code.len() > 32 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                tapis_core::Error::invalid("code", "the code is the digits in the email").into(),
            );
        }
        let mut tx = self.write().await?;
        writable(&mut tx, by, platform).await?;
        let keys = &self.ctx.secrets;
        let row = sqlx::query(
            "SELECT state, code_hash, code_expires_at, code_attempts FROM platform_contacts WHERE platform_id = $1 AND role = $2",
        )
        .bind(platform.to_string())
        .bind(role.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("contact"))?;
        let state =
            ContactState::parse(&row.try_get::<String, _>("state")?).map_err(Error::corrupt)?;
        let stored: Option<String> = row.try_get("code_hash")?;
        let given = code_hash(platform, role, code);
        let matches = stored
            .as_deref()
            .is_some_and(|s| subtle_eq(s.as_bytes(), given.as_bytes()));
        let attempts = u32::try_from(row.try_get::<i64, _>("code_attempts")?).unwrap_or(u32::MAX);
        let facts = CodeFacts {
            state,
            expires_at: row
                .try_get::<Option<i64>, _>("code_expires_at")?
                .map(Timestamp::from_unix_millis),
            attempts,
            matches,
        };
        let now = self.now();
        match check_code(&policy, facts, now) {
            CodeCheck::Verified => {
                let next = state.on(ContactEvent::Confirmed)?;
                sqlx::query(
                    "UPDATE platform_contacts SET state = $1, verified_at = $2, code_hash = NULL, code_expires_at = NULL, \
                     code_attempts = 0 WHERE platform_id = $3 AND role = $4",
                )
                .bind(next.as_str())
                .bind(now.unix_millis())
                .bind(platform.to_string())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
                let c = load(&mut tx, keys, platform, role)
                    .await?
                    .ok_or(Error::NotFound("contact"))?;
                Event::party(
                    EventType::ContactVerified,
                    platform,
                    json!({"role": role, "state": next, "contact_sha256": digest(&c.contact)?}),
                )
                .before(json!({"state": state}))
                .append(&mut tx, now, &by.actor())
                .await?;
                tx.commit().await?;
                Ok(c)
            }
            CodeCheck::Wrong { attempts_left } => {
                sqlx::query(
                    "UPDATE platform_contacts SET code_attempts = code_attempts + 1 WHERE platform_id = $1 AND role = $2",
                )
                .bind(platform.to_string())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
                Event::party(
                    EventType::ContactCodeRefused,
                    platform,
                    json!({"role": role, "attempts_left": attempts_left}),
                )
                .append(&mut tx, now, &by.actor())
                .await?;
                tx.commit().await?;
                Err(tapis_core::Error::invalid(
                    "code",
                    if attempts_left == 0 {
                        "wrong code, and that was the last try: send a new code".to_owned()
                    } else {
                        format!("wrong code: {attempts_left} tries left")
                    },
                )
                .into())
            }
            CodeCheck::NoCode => Err(Error::Conflict(
                "no code is waiting for this contact: send one first".into(),
            )),
            CodeCheck::Expired => Err(Error::Conflict(
                "the code has expired: send a new one".into(),
            )),
            CodeCheck::Exhausted => Err(Error::Conflict(
                "too many wrong codes: send a new one".into(),
            )),
        }
    }

    /// Platforms without a verified legal representative (authority
    /// staff only).
    pub async fn unrepresented_platforms(
        &self,
        by: &Principal,
    ) -> Result<Vec<UnrepresentedPlatform>> {
        if !by.role.reads_everything() {
            return Err(tapis_core::Error::Forbidden {
                who: format!("role {}", by.role.as_str()),
                action: "list other platforms' representatives".into(),
            }
            .into());
        }
        let rows = sqlx::query(
            "SELECT p.id, p.name, c.state FROM parties p LEFT JOIN platform_contacts c \
             ON c.platform_id = p.id AND c.role = 'legal' \
             WHERE p.kind = 'platform' AND (c.state IS NULL OR c.state <> 'verified') ORDER BY p.name, p.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnrepresentedPlatform {
                    platform_id: PartyId::parse(&r.try_get::<String, _>("id")?)
                        .map_err(Error::corrupt)?,
                    name: r.try_get("name")?,
                    state: r
                        .try_get::<Option<String>, _>("state")?
                        .map(|s| ContactState::parse(&s).map_err(Error::corrupt))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Where an outbox email goes: the representative's sealed address
    /// (and code) when the message is one of theirs, else the party's own
    /// addresses.
    pub async fn email_route(&self, msg: &Claimed) -> Result<EmailRoute> {
        let row = sqlx::query("SELECT recipient FROM outbox WHERE id = $1")
            .bind(&msg.id)
            .fetch_optional(&self.pool)
            .await?;
        let recipient: Option<String> = match row {
            Some(r) => r.try_get("recipient")?,
            None => None,
        };
        let Some(sealed) = recipient else {
            return Ok(EmailRoute {
                to: self.email_targets(msg.party_id).await?,
                code: None,
            });
        };
        let text = self
            .ctx
            .secrets
            .open(recipient_place(&msg.event_id), &sealed)?;
        let v: Value = serde_json::from_str(&text).map_err(Error::corrupt)?;
        Ok(EmailRoute {
            to: v["to"].as_str().map(str::to_owned).into_iter().collect(),
            code: v["code"].as_str().map(str::to_owned),
        })
    }
}

/// Equality in time independent of where the bytes differ.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
