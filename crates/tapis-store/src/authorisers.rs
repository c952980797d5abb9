//! Authorisers' signing keys, enrolled on the host.
//!
//! The key an authoriser signs with is what makes "an independent
//! authoriser signed this" true, so the authority's API cannot set or
//! change it: enrolment is a host-side step (`tapis authoriser enrol`),
//! each one an audit event in the same transaction, and every key is
//! listed publicly with its fingerprint (`GET /api/v1/authorisers`) for
//! the authoriser, platforms and the public to compare with what the
//! authoriser itself publishes. A new key retires the previous one;
//! signatures already made with a retired key still count.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tapis_core::audit::Actor;
use tapis_core::party::{NewParty, PartyInput, PartyKind};
use tapis_core::{EventType, PartyId, Timestamp};

use crate::{Error, Result, Store, audit::Event};

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// One enrolled key, as listed publicly.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthoriserKey {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub party_id: PartyId,
    pub name: String,
    /// The Ed25519 public key, base64.
    pub public_key: String,
    /// SHA-256 of the raw 32-byte key, hex.
    pub fingerprint: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub enrolled_at: Timestamp,
    /// Set when a newer key replaced it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub retired_at: Option<Timestamp>,
}

/// SHA-256 of a raw key, hex: what people compare.
pub fn fingerprint(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// The authoriser party's current key (base64), if one is enrolled.
pub(crate) async fn current_key(tx: &mut Tx, party: PartyId) -> Result<Option<String>> {
    Ok(sqlx::query(
        "SELECT public_key FROM authoriser_keys WHERE party_id = $1 AND retired_at IS NULL",
    )
    .bind(party.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| r.try_get("public_key"))
    .transpose()?)
}

fn key_from_row(r: &sqlx::any::AnyRow) -> Result<AuthoriserKey> {
    Ok(AuthoriserKey {
        party_id: PartyId::parse(&r.try_get::<String, _>("party_id")?).map_err(Error::corrupt)?,
        name: r.try_get("name")?,
        public_key: r.try_get("public_key")?,
        fingerprint: r.try_get("fingerprint")?,
        enrolled_at: Timestamp::from_unix_millis(r.try_get("enrolled_at")?),
        retired_at: r
            .try_get::<Option<i64>, _>("retired_at")?
            .map(Timestamp::from_unix_millis),
    })
}

const KEY_COLUMNS: &str =
    "k.party_id, p.name, k.public_key, k.fingerprint, k.enrolled_at, k.retired_at";

impl Store {
    /// Enrol `public_key` (base64 Ed25519, weak keys refused) as the
    /// signing key of the authoriser named `name`, creating the party if
    /// there is none. The previous key is retired. Enrolling the current
    /// key again changes nothing.
    pub async fn enrol_authoriser(
        &self,
        actor: &Actor,
        name: &str,
        public_key: &str,
    ) -> Result<AuthoriserKey> {
        let vk = tapis_core::sign::parse_public_key("public_key", public_key)?;
        let key = STANDARD.encode(vk.as_bytes());
        let fp = fingerprint(vk.as_bytes());
        let new = NewParty::parse(PartyInput {
            kind: PartyKind::Authoriser.as_str().into(),
            name: name.into(),
            contacts: vec![],
            domains: vec![],
            handles: vec![],
        })?;
        let mut tx = self.write().await?;
        let now = self.now();
        let existing =
            sqlx::query("SELECT id FROM parties WHERE kind = 'authoriser' AND name = $1")
                .bind(&new.name)
                .fetch_optional(&mut *tx)
                .await?;
        let party = match existing {
            Some(r) => PartyId::parse(&r.try_get::<String, _>("id")?).map_err(Error::corrupt)?,
            None => {
                crate::parties::insert_party(&mut tx, now, actor, new)
                    .await?
                    .id
            }
        };
        let owner =
            sqlx::query("SELECT party_id, retired_at FROM authoriser_keys WHERE public_key = $1")
                .bind(&key)
                .fetch_all(&mut *tx)
                .await?;
        if let Some(r) = owner.first() {
            let same_party = r.try_get::<String, _>("party_id")? == party.to_string();
            let retired = r.try_get::<Option<i64>, _>("retired_at")?.is_some();
            if same_party && !retired {
                let k = self.authoriser_key_in(&mut tx, party, &key).await?;
                tx.commit().await?;
                return Ok(k);
            }
            return Err(Error::Conflict(if same_party {
                "this key was enrolled before and retired: enrol a new key".into()
            } else {
                "this key is another authoriser's: each authoriser signs with its own key".into()
            }));
        }
        let retired: Vec<String> = sqlx::query(
            "SELECT fingerprint FROM authoriser_keys WHERE party_id = $1 AND retired_at IS NULL",
        )
        .bind(party.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("fingerprint"))
        .collect::<std::result::Result<_, _>>()?;
        sqlx::query(
            "UPDATE authoriser_keys SET retired_at = $1 WHERE party_id = $2 AND retired_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(party.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO authoriser_keys (party_id, public_key, fingerprint, enrolled_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(party.to_string())
        .bind(&key)
        .bind(&fp)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        Event::party(
            EventType::AuthoriserKeyEnrolled,
            party,
            json!({"public_key": key, "fingerprint": fp}),
        )
        .before(if retired.is_empty() {
            Value::Null
        } else {
            json!({"fingerprints": retired})
        })
        .append(&mut tx, now, actor)
        .await?;
        let k = self.authoriser_key_in(&mut tx, party, &key).await?;
        tx.commit().await?;
        Ok(k)
    }

    async fn authoriser_key_in(
        &self,
        tx: &mut Tx,
        party: PartyId,
        key: &str,
    ) -> Result<AuthoriserKey> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM authoriser_keys k JOIN parties p ON p.id = k.party_id \
             WHERE k.party_id = $1 AND k.public_key = $2"
        ))
        .bind(party.to_string())
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
        key_from_row(&row)
    }

    /// Every enrolled authoriser key, current and retired, by authoriser
    /// name then enrolment time.
    pub async fn authoriser_keys(&self) -> Result<Vec<AuthoriserKey>> {
        sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM authoriser_keys k JOIN parties p ON p.id = k.party_id \
             ORDER BY p.name, k.enrolled_at, k.fingerprint"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }
}
