//! API tokens. A token is 32 random bytes shown once as `tapis_<base64url>`;
//! only its SHA-256 is stored. A slow password hash would add nothing here:
//! the secret has 256 bits of entropy, so there is nothing to brute-force,
//! and every request must check one quickly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::party::{PartyKind, bounded_text};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::{PartyId, Timestamp, TokenId};

use crate::{Error, Party, Principal, Result, Store, TokenInfo, audit::Event};

/// A fresh token secret.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("tapis_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored for a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: Timestamp,
    actor: &Actor,
    id: TokenId,
    party: &Party,
    role: Role,
    label: &str,
    person: Option<&Person>,
    secret_hash: &str,
) -> Result<TokenInfo> {
    tapis_core::role::fits(party.kind, role)?;
    let dup = sqlx::query("SELECT id FROM tokens WHERE secret_hash = $1")
        .bind(secret_hash)
        .fetch_optional(&mut **tx)
        .await?;
    if dup.is_some() {
        return Err(Error::Conflict(
            "that token secret is already in use".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO tokens (id, party_id, role, label, secret_hash, created_at, person) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(party.id.to_string())
    .bind(role.as_str())
    .bind(label)
    .bind(secret_hash)
    .bind(now.unix_millis())
    .bind(person.map(|p| p.as_str().to_owned()))
    .execute(&mut **tx)
    .await?;
    // The event names the token, never its secret or hash.
    let after = json!({"token_id": id.to_string(), "role": role.as_str(), "label": label, "person": person});
    Event::party(EventType::TokenCreated, party.id, after)
        .append(tx, now, actor)
        .await?;
    Ok(TokenInfo {
        id,
        party_id: party.id,
        role,
        label: label.to_owned(),
        person: person.cloned(),
        created_at: now,
    })
}

pub(crate) async fn load_party(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    party_id: PartyId,
) -> Result<Party> {
    let row = sqlx::query(
        "SELECT id, kind, name, contacts, domains, handles, created_at FROM parties WHERE id = $1",
    )
    .bind(party_id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("party"))?;
    crate::parties::party_from_row(&row)
}

impl Store {
    /// Create a machine token (no person) for `party_id` and return its
    /// secret (shown once). A host-side step (`tapis token create`): the
    /// API goes through [`Store::issue_token`], which keeps the rule of who
    /// may issue what.
    pub async fn create_token(
        &self,
        actor: &Actor,
        party_id: PartyId,
        role: Role,
        label: &str,
        secret: Option<&str>,
    ) -> Result<(TokenInfo, String)> {
        self.create_token_with(actor, party_id, role, label, None, secret)
            .await
    }

    /// [`Store::create_token`] for a named person.
    pub async fn create_token_with(
        &self,
        actor: &Actor,
        party_id: PartyId,
        role: Role,
        label: &str,
        person: Option<&Person>,
        secret: Option<&str>,
    ) -> Result<(TokenInfo, String)> {
        let secret = secret.map(str::to_owned).unwrap_or_else(new_secret);
        let spec = (party_id, role, label, person);
        self.new_token(actor, spec, secret, |_| Ok(())).await
    }

    /// A token created through the API by `by`: the authority's admin
    /// for the authority's own people, or a party's own member for its
    /// own party (`tapis_core::role::may_issue_token`). Returns the
    /// secret (shown once).
    pub async fn issue_token(
        &self,
        by: &Principal,
        party_id: PartyId,
        role: Role,
        label: &str,
        person: Option<&Person>,
    ) -> Result<(TokenInfo, String)> {
        let spec = (party_id, role, label, person);
        self.new_token(&by.actor(), spec, new_secret(), |party| {
            // another party's record is a 404 to a non-authority caller
            if !by.role.reads_everything() && party.id != by.party_id {
                return Err(Error::NotFound("party"));
            }
            tapis_core::role::may_issue_token(by.role, by.party_id, party.id, party.kind, role)?;
            Ok(())
        })
        .await
    }

    /// A token (party, role, label, person) with `secret`, in one write
    /// transaction: the label is checked, the party loaded and `may`
    /// asked about it before anything is written. Returns the secret.
    async fn new_token(
        &self,
        actor: &Actor,
        (party_id, role, label, person): (PartyId, Role, &str, Option<&Person>),
        secret: String,
        may: impl FnOnce(&Party) -> Result<()>,
    ) -> Result<(TokenInfo, String)> {
        let label = bounded_text("label", label, 1, 200)?;
        let mut tx = self.write().await?;
        let party = load_party(&mut tx, party_id).await?;
        may(&party)?;
        let hash = hash_secret(&secret);
        let id = TokenId::new();
        let info = insert_token(
            &mut tx,
            self.now(),
            actor,
            id,
            &party,
            role,
            &label,
            person,
            &hash,
        )
        .await?;
        tx.commit().await?;
        Ok((info, secret))
    }

    /// The principal a secret authenticates, if it is a live token.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT t.id, t.party_id, t.role, t.label, t.person, p.kind FROM tokens t \
             JOIN parties p ON p.id = t.party_id \
             WHERE t.secret_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(hash_secret(secret))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Principal {
            token_id: parsed(&row, "id", TokenId::parse)?,
            party_id: parsed(&row, "party_id", PartyId::parse)?,
            party_kind: parsed(&row, "kind", PartyKind::parse)?,
            role: parsed(&row, "role", Role::parse)?,
            label: row.try_get("label")?,
            person: person(&row)?,
        }))
    }

    /// Revoke a token: from the commit on it authenticates nothing. The
    /// revocation is audited (`token.revoked`) in the same transaction;
    /// revoking a revoked token is a conflict, so the log has one event
    /// per revocation.
    pub async fn revoke_token(&self, actor: &Actor, id: TokenId) -> Result<TokenInfo> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT id, party_id, role, label, person, created_at, revoked_at FROM tokens WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("token"))?;
        let (info, revoked_at) = token_from_row(&row)?;
        if let Some(at) = revoked_at {
            return Err(Error::Conflict(format!("token {id} was revoked at {at}")));
        }
        let now = self.now();
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now.unix_millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        Event::party(
            EventType::TokenRevoked,
            info.party_id,
            json!({"token_id": id.to_string(), "role": info.role.as_str(), "label": info.label}),
        )
        .append(&mut tx, now, actor)
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// A party's tokens, oldest first, each with when it was revoked (never
    /// a secret or its hash).
    pub async fn list_tokens(
        &self,
        party_id: PartyId,
    ) -> Result<Vec<(TokenInfo, Option<Timestamp>)>> {
        let rows = sqlx::query(
            "SELECT id, party_id, role, label, person, created_at, revoked_at FROM tokens \
             WHERE party_id = $1 ORDER BY created_at, id",
        )
        .bind(party_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Whether any live token has this secret.
    pub async fn token_exists(&self, secret: &str) -> Result<bool> {
        Ok(self.authenticate(secret).await?.is_some())
    }
}

/// Column `col` read by one of core's parsers: text that does not parse
/// is a corrupt row.
fn parsed<T, E: std::fmt::Display>(
    row: &AnyRow,
    col: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    parse(&row.try_get::<String, _>(col)?).map_err(Error::corrupt)
}

/// The token's `person` column, if it names one.
fn person(row: &AnyRow) -> Result<Option<Person>> {
    row.try_get::<Option<String>, _>("person")?
        .map(|p| Person::from_stored(&p))
        .transpose()
        .map_err(Error::corrupt)
}

fn token_from_row(row: &AnyRow) -> Result<(TokenInfo, Option<Timestamp>)> {
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    Ok((
        TokenInfo {
            id: parsed(row, "id", TokenId::parse)?,
            party_id: parsed(row, "party_id", PartyId::parse)?,
            role: parsed(row, "role", Role::parse)?,
            label: row.try_get("label")?,
            person: person(row)?,
            created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        },
        revoked_at.map(Timestamp::from_unix_millis),
    ))
}
