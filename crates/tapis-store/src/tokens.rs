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

use crate::{Error, Party, Principal, Result, Store, TokenInfo, TokenRecord, audit::Event};

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
    expires_at: Option<Timestamp>,
) -> Result<TokenInfo> {
    tapis_core::role::fits(party.kind, role)?;
    let expires_at = tapis_core::role::check_token_expiry(now, expires_at)?;
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
        "INSERT INTO tokens (id, party_id, role, label, secret_hash, created_at, person, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.to_string())
    .bind(party.id.to_string())
    .bind(role.as_str())
    .bind(label)
    .bind(secret_hash)
    .bind(now.unix_millis())
    .bind(person.map(|p| p.as_str().to_owned()))
    .bind(expires_at.map(Timestamp::unix_millis))
    .execute(&mut **tx)
    .await?;
    let mut after = json!({"token_id": id.to_string(), "role": role.as_str(), "label": label, "person": person});
    if let Some(at) = expires_at {
        after["expires_at"] = json!(at.to_string());
    }
    // The event names the token, never its secret or hash.
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
        expires_at,
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
        self.create_token_with(actor, party_id, role, label, None, None, secret)
            .await
    }

    /// [`Store::create_token`] for a named person, optionally expiring.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_token_with(
        &self,
        actor: &Actor,
        party_id: PartyId,
        role: Role,
        label: &str,
        person: Option<&Person>,
        expires_at: Option<Timestamp>,
        secret: Option<&str>,
    ) -> Result<(TokenInfo, String)> {
        let secret = secret.map(str::to_owned).unwrap_or_else(new_secret);
        let spec = (party_id, role, label, person, expires_at);
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
        expires_at: Option<Timestamp>,
    ) -> Result<(TokenInfo, String)> {
        let spec = (party_id, role, label, person, expires_at);
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

    /// A token (party, role, label, person, expiry) with `secret`, in one
    /// write transaction: the label is checked, the party loaded and `may`
    /// asked about it before anything is written. Returns the secret.
    async fn new_token(
        &self,
        actor: &Actor,
        (party_id, role, label, person, expires_at): TokenSpec<'_>,
        secret: String,
        may: impl FnOnce(&Party) -> Result<()>,
    ) -> Result<(TokenInfo, String)> {
        let label = bounded_text("label", label, 1, 200)?;
        let mut tx = self.write().await?;
        let party = load_party(&mut tx, party_id).await?;
        may(&party)?;
        let (now, id, hash) = (self.now(), TokenId::new(), hash_secret(&secret));
        let info = insert_token(
            &mut tx, now, actor, id, &party, role, &label, person, &hash, expires_at,
        )
        .await?;
        tx.commit().await?;
        Ok((info, secret))
    }

    /// The principal a secret authenticates, if it is a live token (not
    /// revoked, not expired). The first time a token authenticates, its
    /// first use is noted (see [`Store::token_used`]).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>> {
        let Some((principal, first_used)) = self.live_token(secret).await? else {
            return Ok(None);
        };
        if first_used.is_none() {
            // bookkeeping outside the chain lock: one row, once per token
            sqlx::query(
                "UPDATE tokens SET first_used_at = $1 WHERE id = $2 AND first_used_at IS NULL",
            )
            .bind(self.now().unix_millis())
            .bind(principal.token_id.to_string())
            .execute(&self.pool)
            .await?;
        }
        Ok(Some(principal))
    }

    /// A live token's principal and when it was first used, without noting
    /// a use.
    async fn live_token(&self, secret: &str) -> Result<Option<(Principal, Option<i64>)>> {
        let row = sqlx::query(
            "SELECT t.id, t.party_id, t.role, t.label, t.person, t.first_used_at, p.kind FROM tokens t \
             JOIN parties p ON p.id = t.party_id \
             WHERE t.secret_hash = $1 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(hash_secret(secret))
        .bind(self.now().unix_millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let principal = Principal {
            token_id: parsed(&row, "id", TokenId::parse)?,
            party_id: parsed(&row, "party_id", PartyId::parse)?,
            party_kind: parsed(&row, "kind", PartyKind::parse)?,
            role: parsed(&row, "role", Role::parse)?,
            label: row.try_get("label")?,
            person: person(&row)?,
        };
        Ok(Some((principal, row.try_get("first_used_at")?)))
    }

    /// Whether the token with this secret has authenticated a request (or
    /// is no longer live): the first admin token's file is removed then.
    pub async fn token_used(&self, secret: &str) -> Result<bool> {
        Ok(match self.live_token(secret).await? {
            None => true,
            Some((_, first_used)) => first_used.is_some(),
        })
    }

    /// Revoke a token: from the commit on it authenticates nothing. The
    /// revocation is audited (`token.revoked`) in the same transaction;
    /// revoking a revoked token is a conflict, so the log has one event
    /// per revocation. A host-side step (`tapis token revoke`); the API
    /// goes through [`Store::revoke_token_by`].
    pub async fn revoke_token(&self, actor: &Actor, id: TokenId) -> Result<TokenInfo> {
        self.revoke(actor, id, |_| Ok(())).await
    }

    /// Revoke a token through the API: a token may revoke itself; a
    /// party's own members revoke its tokens, and the authority's admin
    /// any (`tapis_core::role::may_manage_tokens`). Another party's token
    /// is a 404 to anyone else, so ids cannot be probed.
    pub async fn revoke_token_by(&self, by: &Principal, id: TokenId) -> Result<TokenInfo> {
        self.revoke(&by.actor(), id, |info| {
            if info.id == by.token_id {
                return Ok(());
            }
            if !by.role.reads_everything() && info.party_id != by.party_id {
                return Err(Error::NotFound("token"));
            }
            Ok(tapis_core::role::may_manage_tokens(
                by.role,
                by.party_id,
                info.party_id,
            )?)
        })
        .await
    }

    async fn revoke(
        &self,
        actor: &Actor,
        id: TokenId,
        allowed: impl FnOnce(&TokenInfo) -> Result<()>,
    ) -> Result<TokenInfo> {
        let mut tx = self.write().await?;
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("token"))?;
        let record = token_from_row(&row)?;
        allowed(&record.info)?;
        if let Some(at) = record.revoked_at {
            return Err(Error::Conflict(format!("token {id} was revoked at {at}")));
        }
        let now = self.now();
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now.unix_millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let info = record.info;
        let after =
            json!({"token_id": id.to_string(), "role": info.role.as_str(), "label": info.label});
        Event::party(EventType::TokenRevoked, info.party_id, after)
            .append(&mut tx, now, actor)
            .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// A party's tokens, oldest first, each with when it was first used
    /// and revoked (never a secret or its hash).
    pub async fn list_tokens(&self, party_id: PartyId) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE party_id = $1 ORDER BY created_at, id"
        ))
        .bind(party_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// [`Store::list_tokens`] through the API: a party's own members and
    /// the authority's admin (`tapis_core::role::may_manage_tokens`);
    /// another party's list is a 404 to anyone else.
    pub async fn list_tokens_by(
        &self,
        by: &Principal,
        party_id: PartyId,
    ) -> Result<Vec<TokenRecord>> {
        if !by.role.reads_everything() && party_id != by.party_id {
            return Err(Error::NotFound("party"));
        }
        tapis_core::role::may_manage_tokens(by.role, by.party_id, party_id)?;
        self.get_party(party_id).await?;
        self.list_tokens(party_id).await
    }

    /// Whether any live token has this secret (noting no use).
    pub async fn token_exists(&self, secret: &str) -> Result<bool> {
        Ok(self.live_token(secret).await?.is_some())
    }
}

const TOKEN_COLUMNS: &str =
    "id, party_id, role, label, person, created_at, expires_at, first_used_at, revoked_at";

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

/// What a new token is: its party, role, label, person and expiry.
type TokenSpec<'a> = (
    PartyId,
    Role,
    &'a str,
    Option<&'a Person>,
    Option<Timestamp>,
);

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    let at = |c: &str| -> Result<Option<Timestamp>> {
        Ok(row
            .try_get::<Option<i64>, _>(c)?
            .map(Timestamp::from_unix_millis))
    };
    Ok(TokenRecord {
        info: TokenInfo {
            id: parsed(row, "id", TokenId::parse)?,
            party_id: parsed(row, "party_id", PartyId::parse)?,
            role: parsed(row, "role", Role::parse)?,
            label: row.try_get("label")?,
            person: person(row)?,
            created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
            expires_at: at("expires_at")?,
        },
        first_used_at: at("first_used_at")?,
        revoked_at: at("revoked_at")?,
    })
}
