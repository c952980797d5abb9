//! ISPs: their resolvers, NOTIFY targets, transfer keys and allow lists,
//! and their acknowledgements of zone serials (an ISP acknowledges a
//! serial — "we enforce the zone as of N" — not order by order).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::isp::{IpNet, Resolvers};
use tapis_core::{PartyId, Timestamp, canonical};

use crate::secrets::Place;
use crate::{Error, Principal, Result, Store, audit::Event};

mod compliance;
pub use compliance::*;

/// Where an ISP's TSIG secret is sealed: bound to its row.
pub(crate) fn tsig_place(party: &str) -> Place<'_> {
    Place {
        table: "isp_resolvers",
        column: "tsig_secret",
        row: party,
    }
}

/// Where an ISP's previous TSIG secret (during the grace after a
/// rotation) is sealed.
pub(crate) fn previous_tsig_place(party: &str) -> Place<'_> {
    Place {
        table: "isp_resolvers",
        column: "previous_tsig_secret",
        row: party,
    }
}

/// How long a replaced TSIG key keeps verifying by default: a week, time
/// for an ISP to move every secondary to the new key.
pub const TSIG_GRACE_SECS: i64 = 7 * 86_400;

/// An ISP's resolver settings as shown (never a TSIG secret: a new one is
/// returned beside it, once).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IspResolvers {
    pub party_id: String,
    pub resolvers: Vec<String>,
    pub notify: Vec<String>,
    pub allow_transfer_from: Vec<String>,
    pub tsig_key_name: String,
    pub tsig_algorithm: &'static str,
    /// Which key this is (the first is 1; each rotation adds one).
    pub key_generation: i64,
    /// When the current key was made (unknown for keys made before
    /// rotation existed).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tsig_created_at: Option<Timestamp>,
    /// The key the current one replaced, while it still verifies.
    pub previous_tsig_key_name: Option<String>,
    /// When the previous key stops verifying.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub previous_valid_until: Option<Timestamp>,
}

/// Who may transfer the zone, and whom to NOTIFY: read by the XFR server.
#[derive(Clone, Default)]
pub struct XfrAccess {
    /// (key name, base64 secret) per ISP.
    pub keys: Vec<(String, String)>,
    pub allow: Vec<IpNet>,
    /// (secondary address, key name) to NOTIFY.
    pub notify: Vec<(std::net::SocketAddr, String)>,
}

impl std::fmt::Debug for XfrAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XfrAccess")
            .field("keys", &self.keys.len())
            .field("allow", &self.allow)
            .field("notify", &self.notify)
            .finish()
    }
}

pub const TSIG_ALGORITHM: &str = "hmac-sha256";

/// A TSIG key's name: the party's id (its random tail) and, after the
/// first, the key's generation, so old and new keys differ by name and a
/// secondary can hold both while it moves.
fn key_name(party: PartyId, generation: i64) -> String {
    let simple = uuid::Uuid::parse_str(&party.to_string())
        .map(|u| u.simple().to_string())
        .unwrap_or_default();
    let tail = &simple[simple.len().saturating_sub(12)..];
    if generation <= 1 {
        format!("isp-{tail}.tapis-xfr.")
    } else {
        format!("isp-{tail}-k{generation}.tapis-xfr.")
    }
}

/// 32 random bytes in base64: a new HMAC-SHA256 key.
fn new_tsig_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    STANDARD.encode(bytes)
}

/// Only the ISP's own people and tokens manage its keys: anyone outside an
/// ISP (the authority's admin included) is refused, another ISP finds no
/// such party.
fn own_isp(by: &Principal, party: PartyId, action: &str) -> Result<()> {
    if by.party_kind != tapis_core::party::PartyKind::Isp
        || !by.role.may(tapis_core::role::Action::ManageResolvers)
    {
        return Err(tapis_core::Error::Forbidden {
            who: format!("a {} credential", by.role.as_str()),
            action: action.to_owned(),
        }
        .into());
    }
    if by.party_id != party {
        return Err(Error::NotFound("party"));
    }
    Ok(())
}

fn strings<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

impl Store {
    /// Set an ISP's resolvers. The first call creates its TSIG key and
    /// returns the secret (shown once).
    pub async fn set_isp_resolvers(
        &self,
        actor: &Actor,
        party: PartyId,
        r: Resolvers,
    ) -> Result<(IspResolvers, Option<String>)> {
        let mut tx = self.write().await?;
        let kind = crate::parties::kind_of(&mut tx, party).await?;
        if kind != "isp" {
            return Err(
                tapis_core::Error::invalid("party", "only an ISP registers resolvers").into(),
            );
        }
        let existing = sqlx::query("SELECT tsig_key_name FROM isp_resolvers WHERE party_id = $1")
            .bind(party.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let now = self.now();
        let (resolvers, notify, allow) = (
            canonical::to_string(&json!(strings(&r.resolvers)))?,
            canonical::to_string(&json!(strings(&r.notify)))?,
            canonical::to_string(&json!(strings(&r.allow_transfer_from)))?,
        );
        let secret = if existing.is_some() {
            sqlx::query("UPDATE isp_resolvers SET resolvers = $1, notify = $2, allow_transfer_from = $3, updated_at = $4 WHERE party_id = $5")
                .bind(&resolvers)
                .bind(&notify)
                .bind(&allow)
                .bind(now.unix_millis())
                .bind(party.to_string())
                .execute(&mut *tx)
                .await?;
            None
        } else {
            let secret = new_tsig_secret();
            let key_name = key_name(party, 1);
            sqlx::query(
                "INSERT INTO isp_resolvers (party_id, resolvers, notify, allow_transfer_from, tsig_key_name, tsig_secret, updated_at, key_generation, tsig_created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $7)",
            )
            .bind(party.to_string())
            .bind(&resolvers)
            .bind(&notify)
            .bind(&allow)
            .bind(&key_name)
            .bind(
                self.ctx
                    .secrets
                    .seal(tsig_place(&party.to_string()), &secret)?,
            )
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
            Some(secret)
        };
        let after = json!({"resolvers": strings(&r.resolvers), "notify": strings(&r.notify), "allow_transfer_from": strings(&r.allow_transfer_from), "key_created": secret.is_some()});
        Event::party(EventType::IspResolversSet, party, after)
            .append(&mut tx, now, actor)
            .await?;
        let view = load(&mut tx, party, now)
            .await?
            .ok_or(Error::NotFound("resolvers"))?;
        tx.commit().await?;
        self.signal();
        Ok((view, secret))
    }

    /// How long a replaced TSIG key keeps verifying (seconds).
    pub fn tsig_grace_secs(&self) -> i64 {
        self.ctx.tsig_grace_secs
    }

    pub async fn get_isp_resolvers(&self, party: PartyId) -> Result<Option<IspResolvers>> {
        let mut tx = self.pool.begin().await?;
        let v = load(&mut tx, party, self.now()).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// The ISP makes itself a new TSIG key (a new name and secret; the
    /// secret is returned once). The key it replaces keeps verifying for
    /// the grace period (`rpz.tsig_grace_hours`), so secondaries move one
    /// by one; a key replaced earlier and still in its grace stops at once
    /// (one previous key at a time). NOTIFY is signed with the new key from
    /// now on. Only the ISP's own people and tokens may rotate.
    pub async fn rotate_tsig_key(
        &self,
        by: &Principal,
        party: PartyId,
    ) -> Result<(IspResolvers, String)> {
        own_isp(by, party, "rotate an ISP's TSIG key")?;
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT tsig_key_name, tsig_secret, key_generation FROM isp_resolvers WHERE party_id = $1",
        )
        .bind(party.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            Error::from(tapis_core::Error::invalid(
                "resolvers",
                "register resolvers first: the first registration makes the key",
            ))
        })?;
        let old_name: String = row.try_get("tsig_key_name")?;
        let generation = row.try_get::<i64, _>("key_generation")? + 1;
        let party_str = party.to_string();
        let keys = &self.ctx.secrets;
        // the old secret moves column: open it where it was, seal it where
        // it goes
        let old = keys.open(
            tsig_place(&party_str),
            &row.try_get::<String, _>("tsig_secret")?,
        )?;
        let now = self.now();
        let until = now.plus_secs(self.ctx.tsig_grace_secs);
        let secret = new_tsig_secret();
        let name = key_name(party, generation);
        sqlx::query(
            "UPDATE isp_resolvers SET tsig_key_name = $1, tsig_secret = $2, key_generation = $3, tsig_created_at = $4, \
             previous_tsig_key_name = $5, previous_tsig_secret = $6, previous_tsig_valid_until = $7, updated_at = $4 WHERE party_id = $8",
        )
        .bind(&name)
        .bind(keys.seal(tsig_place(&party_str), &secret)?)
        .bind(generation)
        .bind(now.unix_millis())
        .bind(&old_name)
        .bind(keys.seal(previous_tsig_place(&party_str), &old)?)
        .bind(until.unix_millis())
        .bind(&party_str)
        .execute(&mut *tx)
        .await?;
        let after = json!({"key_name": name, "key_generation": generation, "previous_key_name": old_name, "previous_valid_until": until.to_string()});
        Event::party(EventType::IspTsigRotated, party, after)
            .append(&mut tx, now, &by.actor())
            .await?;
        let view = load(&mut tx, party, now)
            .await?
            .ok_or(Error::NotFound("resolvers"))?;
        tx.commit().await?;
        self.signal();
        Ok((view, secret))
    }

    /// The ISP ends its previous TSIG key now, before its grace runs out
    /// (every secondary has moved). Refused when no previous key still
    /// verifies.
    pub async fn retire_previous_tsig_key(
        &self,
        by: &Principal,
        party: PartyId,
    ) -> Result<IspResolvers> {
        own_isp(by, party, "retire an ISP's TSIG key")?;
        let mut tx = self.write().await?;
        let now = self.now();
        let row = sqlx::query(
            "SELECT previous_tsig_key_name, previous_tsig_valid_until FROM isp_resolvers WHERE party_id = $1",
        )
        .bind(party.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("resolvers"))?;
        let name: Option<String> = row.try_get("previous_tsig_key_name")?;
        let until: Option<i64> = row.try_get("previous_tsig_valid_until")?;
        let (Some(name), Some(until)) = (name, until) else {
            return Err(tapis_core::Error::invalid(
                "previous_key",
                "there is no previous key: nothing to retire",
            )
            .into());
        };
        if until <= now.unix_millis() {
            return Err(tapis_core::Error::invalid(
                "previous_key",
                "the previous key has already stopped working",
            )
            .into());
        }
        sqlx::query(
            "UPDATE isp_resolvers SET previous_tsig_key_name = NULL, previous_tsig_secret = NULL, previous_tsig_valid_until = NULL, updated_at = $1 WHERE party_id = $2",
        )
        .bind(now.unix_millis())
        .bind(party.to_string())
        .execute(&mut *tx)
        .await?;
        let after = json!({"key_name": name, "was_valid_until": Timestamp::from_unix_millis(until).to_string()});
        Event::party(EventType::IspTsigRetired, party, after)
            .append(&mut tx, now, &by.actor())
            .await?;
        let view = load(&mut tx, party, now)
            .await?
            .ok_or(Error::NotFound("resolvers"))?;
        tx.commit().await?;
        self.signal();
        Ok(view)
    }

    /// Keys, allow list and NOTIFY targets of every ISP. An ISP's
    /// previous key is among the keys until its grace ends (the primary
    /// reloads this about every second, so an expired or retired key stops
    /// verifying within one); NOTIFY is signed with the current key.
    pub async fn xfr_access(&self) -> Result<XfrAccess> {
        let rows = sqlx::query("SELECT party_id, notify, allow_transfer_from, tsig_key_name, tsig_secret, previous_tsig_key_name, previous_tsig_secret, previous_tsig_valid_until FROM isp_resolvers ORDER BY party_id")
            .fetch_all(&self.pool)
            .await?;
        let mut access = XfrAccess::default();
        let now = self.now().unix_millis();
        for r in rows {
            let key: String = r.try_get("tsig_key_name")?;
            let party: String = r.try_get("party_id")?;
            let secret = self
                .ctx
                .secrets
                .open(tsig_place(&party), &r.try_get::<String, _>("tsig_secret")?)?;
            access.keys.push((key.clone(), secret));
            if let (Some(name), Some(sealed), Some(until)) = (
                r.try_get::<Option<String>, _>("previous_tsig_key_name")?,
                r.try_get::<Option<String>, _>("previous_tsig_secret")?,
                r.try_get::<Option<i64>, _>("previous_tsig_valid_until")?,
            ) && until > now
            {
                let old = self
                    .ctx
                    .secrets
                    .open(previous_tsig_place(&party), &sealed)?;
                access.keys.push((name, old));
            }
            let allow: Vec<String> =
                serde_json::from_str(&r.try_get::<String, _>("allow_transfer_from")?)
                    .map_err(Error::corrupt)?;
            // settings stored before the rules (or under looser ones) stop
            // counting: a wide network no longer gets unsigned transfers
            let rules = self.ctx.isp_rules;
            for (i, a) in allow.iter().enumerate() {
                let net = IpNet::parse("allow_transfer_from", a).map_err(Error::corrupt)?;
                let checked = if i < rules.max_transfer_hosts {
                    rules.check_transfer_host("allow_transfer_from", &net)
                } else {
                    Err(tapis_core::Error::invalid(
                        "allow_transfer_from",
                        format!("beyond the first {}", rules.max_transfer_hosts),
                    ))
                };
                match checked {
                    Ok(()) => access.allow.push(net),
                    Err(e) => {
                        tracing::warn!(isp = %party, entry = %a, reason = %e, "ignoring a stored allow_transfer_from entry that the rules refuse")
                    }
                }
            }
            let notify: Vec<String> =
                serde_json::from_str(&r.try_get::<String, _>("notify")?).map_err(Error::corrupt)?;
            for n in notify {
                let addr: std::net::SocketAddr = n
                    .parse()
                    .map_err(|_| Error::corrupt(format!("notify target {n}")))?;
                match rules.check_target("notify", &addr) {
                    Ok(()) => access.notify.push((addr, key.clone())),
                    Err(e) => {
                        tracing::warn!(isp = %party, target = %n, reason = %e, "ignoring a stored NOTIFY target that the rules refuse")
                    }
                }
            }
        }
        Ok(access)
    }
}

async fn load(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    party: PartyId,
    now: Timestamp,
) -> Result<Option<IspResolvers>> {
    let row = sqlx::query("SELECT resolvers, notify, allow_transfer_from, tsig_key_name, key_generation, tsig_created_at, previous_tsig_key_name, previous_tsig_valid_until FROM isp_resolvers WHERE party_id = $1")
        .bind(party.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let list = |c: &str| -> Result<Vec<String>> {
        serde_json::from_str(&r.try_get::<String, _>(c)?).map_err(Error::corrupt)
    };
    // a previous key past its grace is shown no more: it verifies nothing
    let until: Option<i64> = r.try_get("previous_tsig_valid_until")?;
    let previous = r
        .try_get::<Option<String>, _>("previous_tsig_key_name")?
        .zip(until.filter(|u| *u > now.unix_millis()));
    Ok(Some(IspResolvers {
        party_id: party.to_string(),
        resolvers: list("resolvers")?,
        notify: list("notify")?,
        allow_transfer_from: list("allow_transfer_from")?,
        tsig_key_name: r.try_get("tsig_key_name")?,
        tsig_algorithm: TSIG_ALGORITHM,
        key_generation: r.try_get("key_generation")?,
        tsig_created_at: r
            .try_get::<Option<i64>, _>("tsig_created_at")?
            .map(Timestamp::from_unix_millis),
        previous_tsig_key_name: previous.as_ref().map(|(n, _)| n.clone()),
        previous_valid_until: previous.map(|(_, u)| Timestamp::from_unix_millis(u)),
    }))
}
