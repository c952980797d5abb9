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
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some((_, kid)) => write!(f, "SecretKey({kid}, redacted)"),
            None => f.write_str("SecretKey(none)"),
        }
    }
}

impl SecretKey {
    /// No key: secrets are stored in clear.
    pub fn none() -> SecretKey {
        SecretKey { inner: None }
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(key: [u8; 32]) -> SecretKey {
        let kid = hex::encode(&Sha256::digest(key)[..6]);
        SecretKey {
            inner: Some((XChaCha20Poly1305::new(&key.into()), kid)),
        }
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
        let Some((cipher, mine)) = &self.inner else {
            return Err(Error::Open(format!(
                "{}.{} is sealed with key {kid} but no secrets key is configured (set secrets_key_file or TAPIS_SECRETS_KEY)",
                place.table, place.column
            )));
        };
        if kid != mine {
            return Err(Error::Open(format!(
                "{}.{} is sealed with key {kid}, not with the configured key {mine}",
                place.table, place.column
            )));
        }
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

    /// Seal every secret still stored in clear (written before a key was
    /// configured): webhook secrets (current and previous) and TSIG
    /// secrets. One transaction, one `secrets.sealed` audit event naming
    /// how many were sealed and under which key id; nothing to seal, or no
    /// key configured, changes nothing and records nothing. Returns how
    /// many values were sealed. `tapis serve` may call it at start when a
    /// key is set.
    pub async fn reseal_secrets(&self) -> Result<u64> {
        use sqlx::Row as _;
        let keys = &self.ctx.secrets;
        let Some(kid) = keys.kid() else {
            return Ok(0);
        };
        let mut tx = self.write().await?;
        let mut sealed = 0u64;
        for column in ["secret", "previous_secret"] {
            let rows = sqlx::query(&format!(
                "SELECT party_id, {column} AS v FROM channels WHERE {column} IS NOT NULL"
            ))
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let party: String = r.try_get("party_id")?;
                let value: String = r.try_get("v")?;
                if SecretKey::is_sealed(&value) {
                    continue;
                }
                let place = crate::channel::secret_place(column, &party);
                sqlx::query(&format!(
                    "UPDATE channels SET {column} = $1 WHERE party_id = $2"
                ))
                .bind(keys.seal(place, &value)?)
                .bind(&party)
                .execute(&mut *tx)
                .await?;
                sealed += 1;
            }
        }
        for column in ["tsig_secret", "previous_tsig_secret"] {
            let rows = sqlx::query(&format!(
                "SELECT party_id, {column} AS v FROM isp_resolvers WHERE {column} IS NOT NULL"
            ))
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let party: String = r.try_get("party_id")?;
                let value: String = r.try_get("v")?;
                if SecretKey::is_sealed(&value) {
                    continue;
                }
                let place = if column == "tsig_secret" {
                    crate::isp::tsig_place(&party)
                } else {
                    crate::isp::previous_tsig_place(&party)
                };
                sqlx::query(&format!(
                    "UPDATE isp_resolvers SET {column} = $1 WHERE party_id = $2"
                ))
                .bind(keys.seal(place, &value)?)
                .bind(&party)
                .execute(&mut *tx)
                .await?;
                sealed += 1;
            }
        }
        if sealed == 0 {
            return Ok(0);
        }
        Event::about(
            tapis_core::EventType::SecretsSealed,
            "setting",
            "secrets_key",
            serde_json::json!({"sealed": sealed, "kid": kid}),
        )
        .append(
            &mut tx,
            self.now(),
            &tapis_core::audit::Actor::system("secrets"),
        )
        .await?;
        tx.commit().await?;
        Ok(sealed)
    }
}

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
