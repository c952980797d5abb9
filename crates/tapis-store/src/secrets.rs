//! Secrets at rest: webhook signing secrets and TSIG keys are kept
//! encrypted under a key that is not in the database.
//!
//! tapis must hold these secrets in a form it can use (HMAC needs the
//! secret itself, not a hash), so hashing is not an option. What it can do
//! is make a copy of the database — a backup, a dump, a replica, a stolen
//! disk — useless without the key file: each value is sealed with
//! XChaCha20-Poly1305 under a 256-bit key that the binary loads from a file
//! or an environment variable (never stored in the database), with the
//! value's place (table, column, row) as associated data, so a sealed value
//! copied into another row or column does not open. The stored form is
//! `tapis-sealed:v1:<key id>:<base64(nonce ‖ ciphertext)>`; a value without
//! the prefix is a plaintext written before a key was configured, and is
//! read as such until it is sealed again.
//!
//! Keys rotate: a store given the key it replaces as *retired*
//! ([`SecretKey::with_retired`]) still opens what that key sealed, and
//! [`Store::reseal_secrets`](crate::Store::reseal_secrets) seals every
//! sealed column ([`SEALED`]) again under the current key, so that the
//! retired key can then be destroyed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::audit::Event;
use crate::{Error, Result};

const PREFIX: &str = "tapis-sealed:v1:";

/// Where a sealed value lives: bound into its ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a str,
}

impl Place<'_> {
    fn aad(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.table, self.column, self.row).into_bytes()
    }
}

/// The key that seals secrets at rest, or none (secrets stay in clear and
/// `tapis serve` says so at start and on `/healthz`).
#[derive(Clone, Default)]
pub struct SecretKey {
    inner: Option<(XChaCha20Poly1305, String)>,
    /// Keys this one replaced: they open, never seal.
    retired: Vec<(XChaCha20Poly1305, String)>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some((_, kid)) => write!(
                f,
                "SecretKey({kid}, {} retired, redacted)",
                self.retired.len()
            ),
            None => f.write_str("SecretKey(none)"),
        }
    }
}

impl SecretKey {
    /// No key: secrets are stored in clear.
    pub fn none() -> SecretKey {
        SecretKey {
            inner: None,
            retired: vec![],
        }
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(key: [u8; 32]) -> SecretKey {
        let kid = hex::encode(&Sha256::digest(key)[..6]);
        SecretKey {
            inner: Some((XChaCha20Poly1305::new(&key.into()), kid)),
            retired: vec![],
        }
    }

    /// This key, also opening what `old` (the key it replaces, and any
    /// `old` itself retired) sealed. Sealing always uses this key.
    pub fn with_retired(mut self, old: SecretKey) -> SecretKey {
        let mine = self.kid().map(str::to_owned);
        for (cipher, kid) in old.inner.into_iter().chain(old.retired) {
            if Some(&kid) != mine.as_ref() && !self.retired.iter().any(|(_, k)| *k == kid) {
                self.retired.push((cipher, kid));
            }
        }
        self
    }

    /// The ids of the retired keys.
    pub fn retired_kids(&self) -> Vec<&str> {
        self.retired.iter().map(|(_, k)| k.as_str()).collect()
    }

    /// The key id a stored value is sealed under (`None` for a plaintext).
    pub fn sealed_kid(stored: &str) -> Option<&str> {
        stored.strip_prefix(PREFIX)?.split_once(':').map(|(k, _)| k)
    }

    /// A key as it is written in a key file or `TAPIS_SECRETS_KEY`: 32 bytes
    /// in base64 or hex, surrounding white space ignored.
    pub fn parse(text: &str) -> Result<SecretKey> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).ok()
        } else {
            STANDARD.decode(t).ok()
        };
        let key: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
            Error::Domain(tapis_core::Error::invalid(
                "secrets_key",
                "the secrets key is 32 bytes in base64 or hex (make one with `head -c 32 /dev/urandom | base64`)",
            ))
        })?;
        Ok(SecretKey::from_bytes(key))
    }

    /// Whether secrets are sealed.
    pub fn is_set(&self) -> bool {
        self.inner.is_some()
    }

    /// The key's id (the first 6 bytes of its SHA-256, hex): names the key
    /// in sealed values and on `/healthz`, never reveals it.
    pub fn kid(&self) -> Option<&str> {
        self.inner.as_ref().map(|(_, k)| k.as_str())
    }

    /// The stored form of `secret` at `place`.
    pub fn seal(&self, place: Place<'_>, secret: &str) -> Result<String> {
        let Some((cipher, kid)) = &self.inner else {
            return Ok(secret.to_owned());
        };
        let nonce: [u8; 24] = rand::random();
        let aad = place.aad();
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::corrupt("sealing a secret failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{kid}:{}", STANDARD.encode(blob)))
    }

    /// The secret stored at `place`. A sealed value needs this key; a plain
    /// one (written before a key was configured) is returned as it is.
    pub fn open(&self, place: Place<'_>, stored: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (kid, b64) = rest.split_once(':').ok_or_else(|| {
            Error::corrupt(format!(
                "{}.{}: malformed sealed value",
                place.table, place.column
            ))
        })?;
        let Some((_, mine)) = &self.inner else {
            return Err(Error::Open(format!(
                "{}.{} is sealed with key {kid} but no secrets key is configured (set secrets_key_file or TAPIS_SECRETS_KEY)",
                place.table, place.column
            )));
        };
        let Some((cipher, _)) = self
            .inner
            .iter()
            .chain(self.retired.iter())
            .find(|(_, k)| k == kid)
        else {
            return Err(Error::Open(format!(
                "{}.{} is sealed with key {kid}, not with the configured key {mine} (give the key it replaced as TAPIS_SECRETS_PREVIOUS_KEY)",
                place.table, place.column
            )));
        };
        let blob = STANDARD.decode(b64).map_err(|_| {
            Error::corrupt(format!(
                "{}.{}: sealed value is not base64",
                place.table, place.column
            ))
        })?;
        if blob.len() < 24 + 16 {
            return Err(Error::corrupt(format!(
                "{}.{}: sealed value is too short",
                place.table, place.column
            )));
        }
        let (nonce, ct) = blob.split_at(24);
        let aad = place.aad();
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| {
                Error::corrupt(format!(
                    "{}.{} of {} does not open: altered, or moved from another row",
                    place.table, place.column, place.row
                ))
            })?;
        String::from_utf8(plain).map_err(|_| Error::corrupt("a sealed secret is not UTF-8"))
    }

    /// Whether a stored value is sealed (as opposed to a legacy plaintext).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

impl crate::Store {
    /// A secret column as stored (sealed or not), for tests that look at
    /// the database as a thief would.
    #[cfg(feature = "testing")]
    pub async fn raw_stored_secret(
        &self,
        table: &str,
        column: &str,
        party: &str,
    ) -> Result<Option<String>> {
        use sqlx::Row as _;
        let row = sqlx::query(&format!(
            "SELECT {column} AS v FROM {table} WHERE party_id = $1"
        ))
        .bind(party)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get("v")?,
            None => None,
        })
    }

    /// Seal every sealed column ([`SEALED`]) under the current key: values
    /// still stored in clear (written before a key was configured) are
    /// sealed, values sealed under a retired key (after a rotation) are
    /// opened with it and sealed again. One transaction, one
    /// `secrets.sealed` audit event naming how many were sealed and
    /// resealed, under which key id and from which retired ones; nothing
    /// to do, or no key configured, changes nothing and records nothing. A
    /// value sealed under a key that is neither current nor retired stops
    /// it (nothing is written) with an error naming the column. Returns
    /// how many values were written. `tapis serve` calls it at start when
    /// a key is set.
    pub async fn reseal_secrets(&self) -> Result<u64> {
        use sqlx::Row as _;
        let keys = &self.ctx.secrets;
        let Some(kid) = keys.kid() else {
            return Ok(0);
        };
        let mut tx = self.write().await?;
        let (mut sealed, mut resealed) = (0u64, 0u64);
        for col in SEALED {
            let rows = sqlx::query(&format!(
                "SELECT {} AS r, {} AS v FROM {} WHERE {} IS NOT NULL",
                col.row, col.column, col.table, col.column
            ))
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let row: String = r.try_get("r")?;
                let value: String = r.try_get("v")?;
                let place = col.place(&row);
                let clear = match SecretKey::sealed_kid(&value) {
                    Some(k) if k == kid => continue,
                    Some(_) => {
                        resealed += 1;
                        keys.open(place, &value)?
                    }
                    // a hash kept when no key was set is not a secret
                    None if col.hashed_prefix.is_some_and(|p| value.starts_with(p)) => continue,
                    None => {
                        sealed += 1;
                        value.clone()
                    }
                };
                sqlx::query(&format!(
                    "UPDATE {} SET {} = $1 WHERE {} = $2 AND {} = $3",
                    col.table, col.column, col.row, col.column
                ))
                .bind(keys.seal(place, &clear)?)
                .bind(&row)
                .bind(&value)
                .execute(&mut *tx)
                .await?;
            }
        }
        if sealed + resealed == 0 {
            return Ok(0);
        }
        Event::about(
            tapis_core::EventType::SecretsSealed,
            "setting",
            "secrets_key",
            serde_json::json!({"sealed": sealed, "resealed": resealed, "kid": kid,
                               "retired": keys.retired_kids()}),
        )
        .append(
            &mut tx,
            self.now(),
            &tapis_core::audit::Actor::system("secrets"),
        )
        .await?;
        tx.commit().await?;
        Ok(sealed + resealed)
    }

    /// Every sealed value as stored, with its place, for tests that check
    /// that a rotation left nothing under the old key.
    #[cfg(feature = "testing")]
    pub async fn raw_sealed_values(&self) -> Result<Vec<(SealedColumn, String, String)>> {
        use sqlx::Row as _;
        let mut out = vec![];
        for col in SEALED {
            let rows = sqlx::query(&format!(
                "SELECT {} AS r, {} AS v FROM {} WHERE {} IS NOT NULL",
                col.row, col.column, col.table, col.column
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                out.push((*col, r.try_get("r")?, r.try_get("v")?));
            }
        }
        Ok(out)
    }
}

/// A column whose values are sealed, and the SQL expression of the row
/// name its values are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// The row as [`Place::row`] names it (an SQL expression).
    pub row: &'static str,
    /// A prefix of values that are a hash kept instead (never sealed).
    pub hashed_prefix: Option<&'static str>,
}

impl SealedColumn {
    pub fn place<'a>(&self, row: &'a str) -> Place<'a> {
        Place {
            table: self.table,
            column: self.column,
            row,
        }
    }
}

const fn col(table: &'static str, column: &'static str, row: &'static str) -> SealedColumn {
    SealedColumn {
        table,
        column,
        row,
        hashed_prefix: None,
    }
}

/// Every column sealed under the secrets key. A new sealed column is
/// added here, or `reseal_secrets` leaves it under a retired key.
pub const SEALED: &[SealedColumn] = &[
    col("channels", "secret", "party_id"),
    col("channels", "previous_secret", "party_id"),
    col("isp_resolvers", "tsig_secret", "party_id"),
    col("isp_resolvers", "previous_tsig_secret", "party_id"),
    col("platform_contacts", "details", "platform_id || '/' || role"),
    col("outbox", "recipient", "event_id"),
    col("escalations", "representative", "id"),
    col("accounts", "totp_secret", "id"),
    col("accounts", "totp_pending", "id"),
    SealedColumn {
        hashed_prefix: Some("sha256:"),
        ..col("flags", "contact", "id")
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn place(row: &str) -> Place<'_> {
        Place {
            table: "tsig_keys",
            column: "secret",
            row,
        }
    }

    #[test]
    fn seal_open_and_refuse_what_was_moved_or_altered() {
        let key = SecretKey::from_bytes([7; 32]);
        let sealed = key.seal(place("isp-1"), "c2VjcmV0").expect("seal");
        assert!(SecretKey::is_sealed(&sealed));
        assert!(!sealed.contains("c2VjcmV0"));
        assert_eq!(key.open(place("isp-1"), &sealed).expect("open"), "c2VjcmV0");
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, key.seal(place("isp-1"), "c2VjcmV0").expect("seal"));
        // Copied into another row, it does not open.
        assert!(key.open(place("isp-2"), &sealed).is_err());
        // Altered, it does not open.
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(
            key.open(place("isp-1"), &String::from_utf8(bytes).expect("utf8"))
                .is_err()
        );
        // Another key, or none, cannot open it, and says why.
        let other = SecretKey::from_bytes([8; 32]);
        let e = other.open(place("isp-1"), &sealed).expect_err("other key");
        assert!(e.to_string().contains("not with the configured key"), "{e}");
        let e = SecretKey::none()
            .open(place("isp-1"), &sealed)
            .expect_err("no key");
        assert!(e.to_string().contains("TAPIS_SECRETS_KEY"), "{e}");
        // Legacy plaintext still reads.
        assert_eq!(key.open(place("isp-1"), "plain").expect("plain"), "plain");
        assert_eq!(SecretKey::none().seal(place("x"), "p").expect("p"), "p");
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_are_redacted() {
        let b64 = STANDARD.encode([3u8; 32]);
        let hexed = hex::encode([3u8; 32]);
        let a = SecretKey::parse(&format!(" {b64}\n")).expect("b64");
        let b = SecretKey::parse(&hexed).expect("hex");
        assert_eq!(a.kid(), b.kid());
        assert!(!format!("{a:?}").contains(&b64));
        assert!(SecretKey::parse("short").is_err());
        assert!(SecretKey::parse(&STANDARD.encode([1u8; 31])).is_err());
    }
}
