//! Invitations: one-time enrolment codes through which a party gets its
//! credentials without the authority ever holding them.
//!
//! The authority's admin creates an invitation for a role at a party with
//! no member yet and hands the code over out of band; the party redeems
//! it, without a token, for a token of its own, and its members invite the
//! next ones. Only the code's SHA-256 is kept, a code
//! works once, and it expires (after seven days). Creation and redemption
//! are audit events, so a code the authority redeemed itself shows on the
//! log as a second credential the party never asked for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::party::bounded_text;
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::{PartyId, Timestamp, TokenId};

use crate::tokens::{hash_secret, insert_token, load_party, new_secret};
use crate::{Error, Principal, Result, Store, TokenInfo, audit::Event};

/// How long an invitation code can be redeemed.
pub const INVITATION_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// An invitation as created (its code is returned beside it, once).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationInfo {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub party_id: PartyId,
    pub role: Role,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

fn new_code() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("tapis_inv_{}", URL_SAFE_NO_PAD.encode(bytes))
}

impl Store {
    /// Create an invitation for `role` at `party_id`: by the admin for the
    /// authority's people and for a party's first member, by a party's
    /// own member for its own party and role. Returns it and its code,
    /// shown this once.
    pub async fn create_invitation(
        &self,
        by: &Principal,
        party_id: PartyId,
        role: Role,
    ) -> Result<(InvitationInfo, String)> {
        let mut tx = self.write().await?;
        let party = load_party(&mut tx, party_id).await?;
        tapis_core::role::may_invite(by.role, by.party_id, party.id, party.kind, role)?;
        let live = sqlx::query(
            // a member is a live token or an account (migration 0016)
            "SELECT 1 AS x FROM tokens WHERE party_id = $1 AND revoked_at IS NULL \
             UNION ALL SELECT 1 AS x FROM accounts WHERE party_id = $2 AND disabled_at IS NULL",
        )
        .bind(party_id.to_string())
        .bind(party_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !tapis_core::role::authority_may_invite(by.role, party.kind, live) {
            return Err(Error::Conflict(format!(
                "this {} already has members: its own members invite the next ones \
                 (POST /api/v1/parties/{{id}}/invitations with their token)",
                party.kind.as_str()
            )));
        }
        let now = self.now();
        let code = new_code();
        let info = InvitationInfo {
            id: uuid::Uuid::now_v7().to_string(),
            party_id,
            role,
            expires_at: now.plus_millis(INVITATION_LIFETIME_MS),
        };
        sqlx::query(
            "INSERT INTO invitations (id, code_hash, party_id, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.id)
        .bind(hash_secret(&code))
        .bind(party_id.to_string())
        .bind(role.as_str())
        .bind(now.unix_millis())
        .bind(info.expires_at.unix_millis())
        .execute(&mut *tx)
        .await?;
        let after = json!({"invitation_id": info.id, "role": role.as_str(), "expires_at": info.expires_at.to_string()});
        Event::party(EventType::InvitationCreated, party_id, after)
            .append(&mut tx, now, &by.actor())
            .await?;
        tx.commit().await?;
        Ok((info, code))
    }

    /// Redeem an invitation code for a token of the invited party and
    /// role (given `role` must match it). Returns the token and its
    /// secret. The code is spent in the same transaction.
    pub async fn accept_invitation(
        &self,
        code: &str,
        role: Option<Role>,
        label: &str,
        person: Option<&Person>,
    ) -> Result<(TokenInfo, String)> {
        let label = bounded_text("label", label, 1, 200)?;
        let mut tx = self.write().await?;
        let now = self.now();
        let row = sqlx::query(
            "SELECT id, party_id, role, expires_at, accepted_at FROM invitations WHERE code_hash = $1",
        )
        .bind(hash_secret(code.trim()))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("invitation"))?;
        let id: String = row.try_get("id")?;
        if row.try_get::<Option<i64>, _>("accepted_at")?.is_some() {
            return Err(Error::Conflict(
                "this invitation was already used: ask the authority for a new one".into(),
            ));
        }
        if Timestamp::from_unix_millis(row.try_get("expires_at")?) <= now {
            return Err(Error::Conflict(
                "this invitation has expired: ask the authority for a new one".into(),
            ));
        }
        let invited = Role::parse(&row.try_get::<String, _>("role")?).map_err(Error::corrupt)?;
        if role.is_some_and(|r| r != invited) {
            return Err(tapis_core::Error::invalid(
                "role",
                format!("this invitation is for the {} role", invited.as_str()),
            )
            .into());
        }
        let party_id =
            PartyId::parse(&row.try_get::<String, _>("party_id")?).map_err(Error::corrupt)?;
        let party = load_party(&mut tx, party_id).await?;
        let token_id = TokenId::new();
        // the new token acts for itself from its first event
        let actor = Actor {
            kind: "invitation",
            party_id: Some(party_id.to_string()),
            token_id: Some(token_id.to_string()),
            label: label.clone(),
            role: Some(invited.as_str().to_owned()),
            person: person.map(|p| p.as_str().to_owned()),
        };
        let secret = new_secret();
        let info = insert_token(
            &mut tx,
            now,
            &actor,
            token_id,
            &party,
            invited,
            &label,
            person,
            &hash_secret(&secret),
            None,
        )
        .await?;
        let spent = sqlx::query(
            "UPDATE invitations SET accepted_at = $1, token_id = $2 WHERE id = $3 AND accepted_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(token_id.to_string())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Err(Error::Conflict(
                "this invitation was already used: ask the authority for a new one".into(),
            ));
        }
        Event::party(
            EventType::InvitationAccepted,
            party_id,
            json!({"invitation_id": id, "token_id": token_id.to_string()}),
        )
        .append(&mut tx, now, &actor)
        .await?;
        tx.commit().await?;
        Ok((info, secret))
    }
}
