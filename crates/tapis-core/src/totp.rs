//! Time-based one-time codes (TOTP, RFC 6238 over HOTP, RFC 4226): the
//! optional second step of a person's sign-in.
//!
//! The parameters are the ones every authenticator app assumes when it is
//! given only a secret: HMAC-SHA-1, six digits, 30-second steps. A code is
//! accepted for the current step and one step either side (clock drift
//! between a phone and the server), and never for a step at or before the
//! last one accepted, so a code seen over someone's shoulder cannot be
//! used again.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::{Error, Result, Timestamp};

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps either side of now that are still accepted.
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret: the raw key bytes, shown to people in base32.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    /// A secret from random bytes (the caller draws them).
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> TotpSecret {
        TotpSecret(bytes.to_vec())
    }

    /// Parse the base32 form (RFC 4648, case and spaces ignored, padding
    /// optional), as stored and as an app shows it.
    pub fn parse(text: &str) -> Result<TotpSecret> {
        let bytes = base32_decode(text)
            .ok_or_else(|| Error::invalid("secret", "not base32 (letters A-Z and digits 2-7)"))?;
        if bytes.len() < 10 || bytes.len() > 64 {
            return Err(Error::invalid(
                "secret",
                "a TOTP secret is 10 to 64 bytes (16 to 103 base32 characters)",
            ));
        }
        Ok(TotpSecret(bytes))
    }

    /// Base32 without padding, as authenticator apps take it.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://` URI an app can import: `issuer` and `account`
    /// label it in the app.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer),
            enc(account),
            self.to_base32(),
            enc(issuer)
        )
    }

    /// The code for one step (RFC 4226's HOTP with the step as counter).
    pub fn code_at_step(&self, step: i64) -> u32 {
        let mut mac =
            <Hmac<Sha1> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(&step.to_be_bytes());
        let h = mac.finalize().into_bytes();
        let offset = usize::from(h[h.len() - 1] & 0x0f);
        let bin = (u32::from(h[offset]) & 0x7f) << 24
            | u32::from(h[offset + 1]) << 16
            | u32::from(h[offset + 2]) << 8
            | u32::from(h[offset + 3]);
        bin % 10u32.pow(DIGITS)
    }

    /// Check `code` at `now`: the step it matched, if it is within the
    /// drift and later than `last_used` (the step of the last accepted
    /// code).
    pub fn verify(&self, code: &str, now: Timestamp, last_used: Option<i64>) -> Option<i64> {
        let code = parse_code(code)?;
        let current = step_of(now);
        (current - DRIFT_STEPS..=current + DRIFT_STEPS)
            .filter(|s| last_used.is_none_or(|l| *s > l))
            // compare every candidate, so timing does not say which matched
            .fold(None, |found, s| {
                let hit = constant_eq(self.code_at_step(s), code);
                found.or(hit.then_some(s))
            })
    }
}

/// The step a moment falls in.
pub fn step_of(now: Timestamp) -> i64 {
    now.unix_millis().div_euclid(1000 * STEP_SECS)
}

/// Six digits, spaces allowed between them (apps show `123 456`).
fn parse_code(code: &str) -> Option<u32> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != DIGITS as usize || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn constant_eq(a: u32, b: u32) -> bool {
    (a ^ b) == 0
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        if c == '=' {
            continue;
        }
        let v = ALPHABET
            .iter()
            .position(|a| *a as char == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        // RFC 6238 appendix B's SHA-1 key: the ASCII "12345678901234567890"
        TotpSecret(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc_6238_vectors() {
        // the RFC's eight-digit values; six digits are their last six
        let vectors = [
            (59i64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        for (t, eight) in vectors {
            let step = t / STEP_SECS;
            assert_eq!(rfc_secret().code_at_step(step), eight % 1_000_000, "T={t}");
        }
    }

    #[test]
    fn rfc_4226_vectors() {
        // RFC 4226 appendix D: counters 0..9, six digits
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(rfc_secret().code_at_step(counter as i64), *code);
        }
    }

    #[test]
    fn verify_accepts_drift_and_refuses_replay_and_junk() {
        let s = rfc_secret();
        let now = Timestamp::from_unix_millis(1_111_111_111_000);
        let step = step_of(now);
        let code = |st: i64| format!("{:06}", s.code_at_step(st));
        assert_eq!(s.verify(&code(step), now, None), Some(step));
        assert_eq!(s.verify(&code(step - 1), now, None), Some(step - 1));
        assert_eq!(s.verify(&code(step + 1), now, None), Some(step + 1));
        assert_eq!(s.verify(&code(step - 2), now, None), None, "too old");
        assert_eq!(s.verify(&code(step), now, Some(step)), None, "replayed");
        assert_eq!(s.verify(&code(step + 1), now, Some(step)), Some(step + 1));
        let spaced = format!("{} {}", &code(step)[..3], &code(step)[3..]);
        assert_eq!(s.verify(&spaced, now, None), Some(step));
        for junk in ["", "12345", "1234567", "abcdef", "12345x", "１２３４５６"] {
            assert_eq!(s.verify(junk, now, None), None, "{junk:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        // RFC 4648 section 10 (without padding)
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).expect("decodes"), plain.as_bytes());
        }
        let s = TotpSecret::from_bytes([7; SECRET_BYTES]);
        assert_eq!(
            TotpSecret::parse(&s.to_base32().to_lowercase()).expect("parse"),
            s
        );
        assert!(TotpSecret::parse("not base32!").is_err());
        assert!(TotpSecret::parse("MZXW6").is_err(), "too short");
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let s = TotpSecret::from_bytes([1; SECRET_BYTES]);
        let uri = s.uri("tapis Ministry", "siti@ministry");
        assert!(uri.starts_with("otpauth://totp/tapis%20Ministry:siti%40ministry?secret="));
        assert!(uri.contains("&digits=6&period=30"));
        assert!(format!("{s:?}").contains("redacted"));
    }
}
