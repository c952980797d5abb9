//! Signatures: Ed25519 over RFC 8785 canonical JSON, naming a key id.
//!
//! A signed document travels as an envelope
//! `{"payload": {...}, "kid": "tapis-…", "alg": "Ed25519", "signature": "<base64>"}`;
//! the signature is over `JCS(payload)`. Anyone with the public key (from
//! `GET /api/v1/keys`) can check it in any language: canonicalise the
//! payload per RFC 8785, then verify Ed25519.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Error, Result, canonical};

pub const ALG: &str = "Ed25519";

/// The id of a public key: `tapis-` and the first 16 hex digits of its SHA-256.
pub fn key_id(public: &[u8; 32]) -> String {
    format!("tapis-{}", &hex::encode(Sha256::digest(public))[..16])
}

/// A signing key and its id.
pub struct Signer {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        let kid = key_id(key.verifying_key().as_bytes());
        Signer { key, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn public_key_b64(&self) -> String {
        STANDARD.encode(self.public_key())
    }

    /// Sign a signed note's text (the transparency log's checkpoints) with
    /// the same key. A note's text never starts with `{` (its first line is
    /// the log's origin, checked by `tlog::note`) while every envelope
    /// signs a JSON object, so no signature can pass for the other kind.
    pub(crate) fn sign_note_text(&self, text: &str) -> [u8; 64] {
        debug_assert!(!text.starts_with('{'));
        self.key.sign(text.as_bytes()).to_bytes()
    }

    /// Sign `JCS(payload)` and wrap it in an envelope.
    pub fn seal(&self, payload: Value) -> Result<Value> {
        let bytes = canonical::to_vec(&payload)?;
        let sig = self.key.sign(&bytes);
        Ok(json!({
            "payload": payload,
            "kid": self.kid,
            "alg": ALG,
            "signature": STANDARD.encode(sig.to_bytes()),
        }))
    }
}

/// Decode a base64 Ed25519 public key, refusing weak keys.
///
/// A key of small order (the identity point among them) verifies forged
/// signatures under the lenient check: with the identity as the key, the
/// signature `R = identity, s = 0` "signs" every statement. Such a key is no
/// one's key, so it is refused wherever a key enters tapis.
pub fn parse_public_key(field: &str, b64: &str) -> Result<VerifyingKey> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| Error::invalid(field, "not base64"))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::invalid(field, "an Ed25519 public key is 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&arr)
        .map_err(|_| Error::invalid(field, "not a valid Ed25519 public key"))?;
    if key.is_weak() {
        return Err(Error::invalid(
            field,
            "a weak Ed25519 key (a point of small order): generate a real key pair",
        ));
    }
    Ok(key)
}

/// Verify a detached base64 signature over `JCS(payload)`.
///
/// Strict verification (RFC 8032 with the checks of `verify_strict`):
/// non-canonical and small-order `R` are refused, so no signature is
/// accepted that the signer's key did not make, whatever the key.
pub fn verify_detached(key: &VerifyingKey, payload: &Value, signature_b64: &str) -> Result<()> {
    let sig_bytes = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| Error::invalid("signature", "not base64"))?;
    let sig = Signature::from_slice(&sig_bytes)
        .map_err(|_| Error::invalid("signature", "an Ed25519 signature is 64 bytes"))?;
    let bytes = canonical::to_vec(payload)?;
    key.verify_strict(&bytes, &sig)
        .map_err(|_| Error::invalid("signature", "the signature does not match the document"))
}

/// Verify an envelope against the public key named by its `kid`.
/// `keys` maps key ids to base64 public keys.
pub fn open_envelope<'a>(envelope: &'a Value, keys: &[(String, String)]) -> Result<&'a Value> {
    let field = |name: &str| {
        envelope
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(name, "missing from the signed document"))
    };
    if field("alg")? != ALG {
        return Err(Error::invalid("alg", "only Ed25519 is used"));
    }
    let kid = field("kid")?;
    let payload = envelope
        .get("payload")
        .ok_or_else(|| Error::invalid("payload", "missing from the signed document"))?;
    let (_, b64) = keys
        .iter()
        .find(|(k, _)| k == kid)
        .ok_or_else(|| Error::invalid("kid", format!("no public key with id {kid}")))?;
    let key = parse_public_key("public_key", b64)?;
    verify_detached(&key, payload, field("signature")?)?;
    Ok(payload)
}

/// SHA-256 of `JCS(value)`, hex.
pub fn content_hash(value: &Value) -> Result<String> {
    Ok(hex::encode(Sha256::digest(canonical::to_vec(value)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let s = Signer::from_seed([7; 32]);
        let env = s.seal(json!({"b": 1, "a": "x"})).expect("seal");
        let keys = vec![(s.kid().to_owned(), s.public_key_b64())];
        assert_eq!(
            open_envelope(&env, &keys).expect("valid"),
            &json!({"a": "x", "b": 1})
        );
        let mut tampered = env.clone();
        tampered["payload"]["b"] = json!(2);
        assert!(open_envelope(&tampered, &keys).is_err());
        let other = Signer::from_seed([8; 32]);
        assert!(open_envelope(&env, &[(s.kid().to_owned(), other.public_key_b64())]).is_err());
        assert!(open_envelope(&env, &[]).is_err());
        assert!(s.kid().starts_with("tapis-") && s.kid().len() == 22);
    }

    /// The identity point, encoded: y = 1, sign bit 0.
    fn identity_b64() -> String {
        let mut p = [0u8; 32];
        p[0] = 1;
        STANDARD.encode(p)
    }

    #[test]
    fn weak_keys_are_refused() {
        let err = parse_public_key("public_key", &identity_b64()).expect_err("identity refused");
        assert!(err.to_string().contains("weak"), "{err}");
        // Every small-order point is weak, not only the identity.
        let mut minus_one = [0u8; 32];
        minus_one[0] = 0xec;
        minus_one[1..31].fill(0xff);
        minus_one[31] = 0x7f;
        assert!(parse_public_key("public_key", &STANDARD.encode(minus_one)).is_err());
        let real = Signer::from_seed([9; 32]);
        assert!(parse_public_key("public_key", &real.public_key_b64()).is_ok());
    }

    #[test]
    fn the_identity_forgery_does_not_verify() {
        // Lenient Ed25519 accepts R = identity, s = 0 for the identity key
        // over any message; strict verification must not.
        let mut p = [0u8; 32];
        p[0] = 1;
        let key = VerifyingKey::from_bytes(&p).expect("the identity decodes");
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let forged = STANDARD.encode(sig);
        assert!(verify_detached(&key, &json!({"order": "any"}), &forged).is_err());
        let zero = STANDARD.encode([0u8; 64]);
        assert!(verify_detached(&key, &json!({"order": "any"}), &zero).is_err());
    }
}
