//! The proof-of-work challenge that stands in front of the public flag API
//! instead of a third-party captcha: nothing about the reporter leaves the
//! server, and a flood costs the flooder CPU time per report.
//!
//! A challenge is stateless: `issued.difficulty.nonce.mac`, where `mac` is
//! HMAC-SHA-256 under a server key over the other three parts, so the
//! server keeps nothing until a proof comes back. A client finds a decimal
//! `counter` such that `SHA-256(challenge ":" counter)` starts with
//! `difficulty` zero bits (about `2^difficulty` hashes on average) and sends
//! both. [`verify`] checks the MAC, freshness, that the difficulty is still
//! the one required, and the work; what it returns ([`Spent`]) is what the
//! caller must remember until the challenge expires, so that a proof is
//! used once (the store keeps that set, `spent_challenges`, shared by
//! every process on the database).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::Timestamp;

/// The server's key for challenges (32 bytes). Its `Debug` shows nothing.
#[derive(Clone)]
pub struct PowKey([u8; 32]);

impl std::fmt::Debug for PowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PowKey(redacted)")
    }
}

impl PowKey {
    pub fn new(bytes: [u8; 32]) -> PowKey {
        PowKey(bytes)
    }

    /// A key derived from another secret (the secrets key), so that every
    /// process sharing it accepts the others' challenges.
    pub fn derive(secret: &[u8]) -> PowKey {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(b"tapis proof-of-work challenge key v1");
        PowKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, body: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// How hard a challenge is and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowPolicy {
    /// Leading zero bits the proof's hash must have (1 to 32).
    pub difficulty: u8,
    /// Seconds a challenge may be answered after it was issued.
    pub max_age_secs: i64,
}

/// Most difficulty a policy may ask (about four billion hashes).
pub const MAX_DIFFICULTY: u8 = 32;
/// Clock skew between processes a challenge's issue time may show.
const SKEW_SECS: i64 = 60;

impl Default for PowPolicy {
    /// 20 bits: about a million SHA-256 hashes on average
    /// (`tools/pow-solve.py` measured a median of 10 s at ~70,000 hashes
    /// a second on a loaded 2-core machine; native code is faster, not
    /// measured here); ten minutes to answer.
    fn default() -> Self {
        PowPolicy {
            difficulty: 20,
            max_age_secs: 600,
        }
    }
}

/// Why a proof was refused. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    #[error(
        "the challenge is malformed ({0}): send the challenge exactly as GET /api/v1/public/challenge gave it"
    )]
    Malformed(&'static str),
    #[error("the proof counter must be a decimal number of at most 20 digits")]
    BadCounter,
    #[error("the challenge was not issued by this server: get a new one")]
    Forged,
    #[error("the challenge has expired: get a new one and answer it within {0} s")]
    Stale(i64),
    #[error("the challenge asks {got} bits but {want} are now required: get a new one")]
    TooEasy { got: u8, want: u8 },
    #[error(
        "the proof does not solve the challenge: SHA-256(challenge \":\" counter) must start with {0} zero bits"
    )]
    Unsolved(u8),
}

/// A verified challenge: what must be remembered, until `expires_secs`
/// (Unix seconds), to refuse its second use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Spent {
    pub nonce: [u8; 16],
    pub expires_secs: i64,
}

/// A new challenge issued at `now` with a fresh random `nonce` (the caller
/// brings the randomness: this crate does no I/O).
pub fn issue(key: &PowKey, policy: PowPolicy, now: Timestamp, nonce: [u8; 16]) -> String {
    let body = format!(
        "{}.{}.{}",
        now.unix_millis().div_euclid(1000),
        policy.difficulty,
        hex::encode(nonce)
    );
    let mac = hex::encode(key.mac(&body));
    format!("{body}.{mac}")
}

/// Leading zero bits of `hash`.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn work(challenge: &str, counter: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(challenge.as_bytes());
    h.update(b":");
    h.update(counter.to_string().as_bytes());
    h.finalize().into()
}

/// Check a proof: the MAC, freshness at `now`, the difficulty still
/// required by `policy`, and the work. The caller then spends the result
/// (once).
pub fn verify(
    key: &PowKey,
    policy: PowPolicy,
    challenge: &str,
    counter: &str,
    now: Timestamp,
) -> Result<Spent, PowError> {
    if challenge.len() > 200 {
        return Err(PowError::Malformed("too long"));
    }
    let parts: Vec<&str> = challenge.trim().split('.').collect();
    let [issued, difficulty, nonce, mac] = parts[..] else {
        return Err(PowError::Malformed("four parts separated by dots"));
    };
    let body_len = issued.len() + difficulty.len() + nonce.len() + 2;
    let issued: i64 = issued
        .parse()
        .map_err(|_| PowError::Malformed("issue time"))?;
    let difficulty: u8 = difficulty
        .parse()
        .map_err(|_| PowError::Malformed("difficulty"))?;
    let nonce_bytes: [u8; 16] = hex::decode(nonce)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(PowError::Malformed("nonce"))?;
    let mac: [u8; 32] = hex::decode(mac)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(PowError::Malformed("mac"))?;
    let challenge = challenge.trim();
    let body = &challenge[..body_len];
    // constant-time comparison through the MAC's own verifier
    let mut check =
        <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes a key of any length");
    check.update(body.as_bytes());
    check.verify_slice(&mac).map_err(|_| PowError::Forged)?;
    let now_secs = now.unix_millis().div_euclid(1000);
    if issued > now_secs + SKEW_SECS || now_secs - issued > policy.max_age_secs {
        return Err(PowError::Stale(policy.max_age_secs));
    }
    if difficulty < policy.difficulty {
        return Err(PowError::TooEasy {
            got: difficulty,
            want: policy.difficulty,
        });
    }
    let counter = counter.trim();
    if counter.is_empty() || counter.len() > 20 || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PowError::BadCounter);
    }
    let counter: u64 = counter.parse().map_err(|_| PowError::BadCounter)?;
    if leading_zero_bits(&work(challenge, counter)) < u32::from(difficulty) {
        return Err(PowError::Unsolved(difficulty));
    }
    Ok(Spent {
        nonce: nonce_bytes,
        expires_secs: issued + policy.max_age_secs,
    })
}

/// The difficulty a challenge states (after [`verify`], trusted; before,
/// only a hint for a solver).
pub fn stated_difficulty(challenge: &str) -> Option<u8> {
    challenge.split('.').nth(1)?.parse().ok()
}

/// Find the first counter that solves `challenge` (what a client does;
/// tests and `tools/pow-solve.py` do the same).
pub fn solve(challenge: &str) -> Option<u64> {
    let want = u32::from(stated_difficulty(challenge)?);
    (0..u64::MAX).find(|c| leading_zero_bits(&work(challenge, *c)) >= want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    const EASY: PowPolicy = PowPolicy {
        difficulty: 8,
        max_age_secs: 600,
    };

    #[test]
    fn a_solved_challenge_verifies_once_per_nonce() {
        let key = PowKey::new([7; 32]);
        let c = issue(&key, EASY, at(1_000_000), [1; 16]);
        let n = solve(&c).expect("solvable");
        let spent = verify(&key, EASY, &c, &n.to_string(), at(1_000_100)).expect("valid");
        assert_eq!(spent.nonce, [1; 16]);
        assert_eq!(spent.expires_secs, 1_000_600);
    }

    #[test]
    fn every_kind_of_bad_proof_is_refused() {
        let key = PowKey::new([7; 32]);
        let c = issue(&key, EASY, at(1_000_000), [2; 16]);
        let n = solve(&c).expect("solvable").to_string();
        let now = at(1_000_010);
        // another key
        let other = PowKey::new([8; 32]);
        assert_eq!(verify(&other, EASY, &c, &n, now), Err(PowError::Forged));
        // a tampered difficulty
        let easier = c.replacen(".8.", ".1.", 1);
        assert_eq!(verify(&key, EASY, &easier, &n, now), Err(PowError::Forged));
        // stale, and from the future
        assert_eq!(
            verify(&key, EASY, &c, &n, at(1_000_601)),
            Err(PowError::Stale(600))
        );
        assert_eq!(
            verify(&key, EASY, &c, &n, at(999_000)),
            Err(PowError::Stale(600))
        );
        // the policy was raised meanwhile
        let harder = PowPolicy {
            difficulty: 12,
            ..EASY
        };
        assert_eq!(
            verify(&key, harder, &c, &n, now),
            Err(PowError::TooEasy { got: 8, want: 12 })
        );
        // malformed pieces
        for bad in ["", "a.b.c", "x.8.00.00", &"9".repeat(300)] {
            assert!(
                matches!(
                    verify(&key, EASY, bad, &n, now),
                    Err(PowError::Malformed(_))
                ),
                "{bad}"
            );
        }
        for bad in ["", "-1", "1e3", "123456789012345678901"] {
            assert_eq!(verify(&key, EASY, &c, bad, now), Err(PowError::BadCounter));
        }
        // a counter that does not solve it
        let wrong = (0..u64::MAX)
            .find(|x| leading_zero_bits(&work(&c, *x)) < 8)
            .expect("some counter fails");
        assert_eq!(
            verify(&key, EASY, &c, &wrong.to_string(), now),
            Err(PowError::Unsolved(8))
        );
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x0f, 0xff]), 4);
        assert_eq!(leading_zero_bits(&[0, 0, 0x01]), 23);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_derived_key_is_stable_and_redacted() {
        let a = PowKey::derive(b"secret");
        let b = PowKey::derive(b"secret");
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, PowKey::derive(b"other").0);
        assert_eq!(format!("{a:?}"), "PowKey(redacted)");
    }
}
