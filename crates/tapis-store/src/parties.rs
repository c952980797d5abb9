//! Parties and the first-start bootstrap.

use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::party::{NewParty, PartyKind};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::{PartyId, Timestamp, TokenId, canonical};

use crate::tokens::{hash_secret, insert_token};
use crate::{Error, Party, Result, Store, audit::Event};

const COLUMNS: &str = "id, kind, name, contacts, domains, handles, created_at";

pub(crate) fn party_from_row(row: &AnyRow) -> Result<Party> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let json = |col: &str| -> Result<String> { Ok(row.try_get::<String, _>(col)?) };
    Ok(Party {
        id: PartyId::parse(&id).map_err(Error::corrupt)?,
        kind: PartyKind::parse(&kind).map_err(Error::corrupt)?,
        name: row.try_get("name")?,
        contacts: serde_json::from_str(&json("contacts")?).map_err(Error::corrupt)?,
        domains: serde_json::from_str(&json("domains")?).map_err(Error::corrupt)?,
        handles: serde_json::from_str(&json("handles")?).map_err(Error::corrupt)?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

/// The kind of party `party` (as stored), inside the caller's
/// transaction; a party that does not exist is `NotFound("party")`.
pub(crate) async fn kind_of(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    party: PartyId,
) -> Result<String> {
    Ok(sqlx::query("SELECT kind FROM parties WHERE id = $1")
        .bind(party.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("party"))?
        .try_get("kind")?)
}

pub(crate) fn party_json(p: &Party) -> Value {
    json!({
        "id": p.id.to_string(),
        "kind": p.kind.as_str(),
        "name": p.name,
        "contacts": p.contacts,
        "domains": p.domains,
        "handles": p.handles,
    })
}

/// What the first start created.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub authority: Party,
    /// The admin token's secret, to hand to the operator once.
    pub admin_secret: String,
}

impl Store {
    pub async fn create_party(&self, actor: &Actor, new: NewParty) -> Result<Party> {
        let mut tx = self.write().await?;
        let party = insert_party(&mut tx, self.now(), actor, new).await?;
        tx.commit().await?;
        Ok(party)
    }

    pub async fn get_party(&self, id: PartyId) -> Result<Party> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM parties WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("party"))?;
        party_from_row(&row)
    }

    pub async fn list_parties(&self, kind: Option<PartyKind>) -> Result<Vec<Party>> {
        let rows = match kind {
            Some(k) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM parties WHERE kind = $1 ORDER BY name"
                ))
                .bind(k.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM parties ORDER BY kind, name"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(party_from_row).collect()
    }

    /// On an empty database, create the authority party and an admin token
    /// (with `secret` if given, else a fresh one). Returns `None` when the
    /// database already has parties: bootstrap happens once.
    pub async fn bootstrap(
        &self,
        authority_name: &str,
        secret: Option<&str>,
    ) -> Result<Option<Bootstrapped>> {
        let mut tx = self.write().await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM parties")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count > 0 {
            return Ok(None);
        }
        let actor = Actor::system("bootstrap");
        let now = self.now();
        let authority = insert_party(
            &mut tx,
            now,
            &actor,
            NewParty {
                kind: PartyKind::Authority,
                name: authority_name.to_owned(),
                contacts: vec![],
                domains: vec![],
                handles: vec![],
            },
        )
        .await?;
        let admin_secret = secret.map(str::to_owned).unwrap_or_else(crate::new_secret);
        insert_token(
            &mut tx,
            now,
            &actor,
            TokenId::new(),
            &authority,
            Role::Admin,
            "bootstrap admin",
            Some(&Person::parse("operator")?),
            &hash_secret(&admin_secret),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Bootstrapped {
            authority,
            admin_secret,
        }))
    }
}

pub(crate) async fn insert_party(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: Timestamp,
    actor: &Actor,
    new: NewParty,
) -> Result<Party> {
    let exists = sqlx::query("SELECT id FROM parties WHERE kind = $1 AND name = $2")
        .bind(new.kind.as_str())
        .bind(&new.name)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_some() {
        return Err(Error::Conflict(format!(
            "a {} named {:?} already exists",
            new.kind.as_str(),
            new.name
        )));
    }
    let party = Party {
        id: PartyId::new(),
        kind: new.kind,
        name: new.name,
        contacts: new.contacts,
        domains: new.domains.iter().map(|d| d.as_str().to_owned()).collect(),
        handles: new.handles,
        created_at: now,
    };
    let as_text = |v: Value| canonical::to_string(&v).map_err(Error::from);
    sqlx::query(
        "INSERT INTO parties (id, kind, name, contacts, domains, handles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(party.id.to_string())
    .bind(party.kind.as_str())
    .bind(&party.name)
    .bind(as_text(json!(party.contacts))?)
    .bind(as_text(json!(party.domains))?)
    .bind(as_text(json!(party.handles))?)
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    Event::party(EventType::PartyCreated, party.id, party_json(&party))
        .append(tx, now, actor)
        .await?;
    Ok(party)
}
