//! Trusted-flagger grants: the authority's admin grants a flagger party
//! status with a platform for a scope; the platform's own agent confirms;
//! the admin suspends, reinstates or revokes. Core's `GrantState::on`
//! decides each step; every step is an audit event in its transaction.
//! `covered` tells the flags' review whether a notice is a trusted one.

use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::party::PartyKind;
use tapis_core::target::ItemKind;
use tapis_core::trusted::{GrantEvent, GrantState, NewGrant, covers};
use tapis_core::{EventType, PartyId, Timestamp, canonical};

use crate::audit::Event;
use crate::{Error, Principal, Result, Store};

type Tx = Transaction<'static, Any>;

/// A trusted-flagger grant as recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrustedGrant {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub flagger_id: PartyId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub platform_id: PartyId,
    pub categories: Vec<String>,
    /// Empty: every item kind.
    pub item_kinds: Vec<ItemKind>,
    pub state: GrantState,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub granted_at: Timestamp,
    /// The token that granted it.
    pub granted_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub confirmed_at: Option<Timestamp>,
    /// The platform's token that confirmed it.
    pub confirmed_by: Option<String>,
    /// Why it was last suspended, reinstated or revoked.
    pub reason: Option<String>,
}

const COLUMNS: &str = "id, flagger_id, platform_id, categories, item_kinds, state, granted_at, granted_by, \
    confirmed_at, confirmed_by, reason";

fn grant_from_row(row: &AnyRow) -> Result<TrustedGrant> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(TrustedGrant {
        id: s("id")?,
        flagger_id: PartyId::parse(&s("flagger_id")?).map_err(Error::corrupt)?,
        platform_id: PartyId::parse(&s("platform_id")?).map_err(Error::corrupt)?,
        categories: serde_json::from_str(&s("categories")?).map_err(Error::corrupt)?,
        item_kinds: serde_json::from_str(&s("item_kinds")?).map_err(Error::corrupt)?,
        state: GrantState::parse(&s("state")?).map_err(Error::corrupt)?,
        granted_at: Timestamp::from_unix_millis(row.try_get("granted_at")?),
        granted_by: s("granted_by")?,
        confirmed_at: crate::notices::opt_ts(row, "confirmed_at")?,
        confirmed_by: row.try_get("confirmed_by")?,
        reason: row.try_get("reason")?,
    })
}

async fn load(tx: &mut Tx, id: &str) -> Result<TrustedGrant> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM trusted_flagger_grants WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("trusted-flagger grant"))?;
    grant_from_row(&row)
}

fn grant_json(g: &TrustedGrant) -> Result<serde_json::Value> {
    serde_json::to_value(g).map_err(|e| Error::corrupt(format!("grant does not serialise: {e}")))
}

/// Whether `flagger` holds a confirmed grant with `platform` covering a
/// notice of `category` with items of `kinds`.
pub(crate) async fn covered(
    tx: &mut Tx,
    flagger: PartyId,
    platform: PartyId,
    category: &str,
    kinds: &[ItemKind],
) -> Result<bool> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM trusted_flagger_grants WHERE flagger_id = $1 AND platform_id = $2 AND state = 'confirmed'"
    ))
    .bind(flagger.to_string())
    .bind(platform.to_string())
    .fetch_all(&mut **tx)
    .await?;
    for r in &rows {
        let g = grant_from_row(r)?;
        if g.state.is_effective() && covers(&g.categories, &g.item_kinds, category, kinds) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Store {
    /// Grant trusted-flagger status (the authority's admin). It counts
    /// once the platform confirms.
    pub async fn grant_trusted_flagger(
        &self,
        by: &Principal,
        new: NewGrant,
    ) -> Result<TrustedGrant> {
        let mut tx = self.write().await?;
        let kind = |k: &str, want: PartyKind, field: &str| -> Result<()> {
            if PartyKind::parse(k).map_err(Error::corrupt)? == want {
                Ok(())
            } else {
                Err(tapis_core::Error::invalid(
                    field,
                    format!("this party is not a {}", want.as_str()),
                )
                .into())
            }
        };
        for (id, want, field) in [
            (new.flagger_id, PartyKind::Flagger, "flagger_id"),
            (new.platform_id, PartyKind::Platform, "platform_id"),
        ] {
            let k = crate::parties::kind_of(&mut tx, id)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => {
                        tapis_core::Error::invalid(field, "no party has this id").into()
                    }
                    other => other,
                })?;
            kind(&k, want, field)?;
        }
        let open = sqlx::query(
            "SELECT id FROM trusted_flagger_grants WHERE flagger_id = $1 AND platform_id = $2 AND state <> 'revoked'",
        )
        .bind(new.flagger_id.to_string())
        .bind(new.platform_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = open {
            return Err(Error::Conflict(format!(
                "grant {} already stands for this flagger and platform: revoke it first",
                row.try_get::<String, _>("id")?
            )));
        }
        let now = self.now();
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO trusted_flagger_grants (id, flagger_id, platform_id, categories, item_kinds, state, \
             granted_at, granted_by, changed_at) VALUES ($1, $2, $3, $4, $5, 'granted', $6, $7, $6)",
        )
        .bind(&id)
        .bind(new.flagger_id.to_string())
        .bind(new.platform_id.to_string())
        .bind(canonical::to_string(&json!(new.categories))?)
        .bind(canonical::to_string(&json!(new.item_kinds))?)
        .bind(now.unix_millis())
        .bind(by.token_id.to_string())
        .execute(&mut *tx)
        .await?;
        let g = load(&mut tx, &id).await?;
        Event::about(
            EventType::TrustedFlaggerGranted,
            "trusted_flagger_grant",
            &id,
            grant_json(&g)?,
        )
        .append(&mut tx, now, &by.actor())
        .await?;
        tx.commit().await?;
        self.signal();
        Ok(g)
    }

    /// Grants the caller may read: authority staff all, a platform those
    /// with it, a flagger its own.
    pub async fn list_trusted_flaggers(&self, by: &Principal) -> Result<Vec<TrustedGrant>> {
        let party = (!by.role.reads_everything()).then_some(by.party_id);
        self.trusted_flagger_grants(party).await
    }

    /// Every grant, or those naming `party` (as flagger or platform).
    pub(crate) async fn trusted_flagger_grants(
        &self,
        party: Option<PartyId>,
    ) -> Result<Vec<TrustedGrant>> {
        let mut conn = self.pool.acquire().await?;
        let rows = if let Some(party) = party {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM trusted_flagger_grants WHERE flagger_id = $1 OR platform_id = $1 ORDER BY granted_at, id"
            ))
            .bind(party.to_string())
            .fetch_all(&mut *conn)
            .await?
        } else {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM trusted_flagger_grants ORDER BY granted_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        };
        rows.iter().map(grant_from_row).collect()
    }

    /// A step in a grant's life: the platform's agent confirms a grant
    /// with its own platform (anyone else's is a 404); the admin suspends,
    /// reinstates or revokes, with a reason.
    pub async fn change_trusted_flagger(
        &self,
        by: &Principal,
        id: &str,
        event: GrantEvent,
        reason: Option<&str>,
    ) -> Result<TrustedGrant> {
        let mut tx = self.write().await?;
        let g = load(&mut tx, id).await?;
        if event == GrantEvent::Confirm
            && (by.party_kind != PartyKind::Platform || by.party_id != g.platform_id)
        {
            return Err(Error::NotFound("trusted-flagger grant"));
        }
        let next = g.state.on(event)?;
        let now = self.now();
        let confirm = event == GrantEvent::Confirm;
        sqlx::query(
            "UPDATE trusted_flagger_grants SET state = $1, changed_at = $2, reason = $3, \
             confirmed_at = CASE WHEN $4 = 1 THEN $2 ELSE confirmed_at END, \
             confirmed_by = CASE WHEN $4 = 1 THEN $5 ELSE confirmed_by END WHERE id = $6 AND state = $7",
        )
        .bind(next.as_str())
        .bind(now.unix_millis())
        .bind(reason.map(str::to_owned))
        .bind(i64::from(confirm))
        .bind(by.token_id.to_string())
        .bind(id)
        .bind(g.state.as_str())
        .execute(&mut *tx)
        .await?;
        let action = match event {
            GrantEvent::Confirm => EventType::TrustedFlaggerConfirmed,
            GrantEvent::Suspend => EventType::TrustedFlaggerSuspended,
            GrantEvent::Reinstate => EventType::TrustedFlaggerReinstated,
            GrantEvent::Revoke => EventType::TrustedFlaggerRevoked,
        };
        let after = load(&mut tx, id).await?;
        Event::about(
            action,
            "trusted_flagger_grant",
            id,
            json!({"state": next, "reason": reason}),
        )
        .before(json!({"state": g.state}))
        .append(&mut tx, now, &by.actor())
        .await?;
        tx.commit().await?;
        self.signal();
        Ok(after)
    }
}
