//! TSIG (RFC 8945): shared-secret signatures on DNS messages.
//!
//! The server side checks a request's signature in the RFC's order (key
//! and algorithm → BADKEY, MAC → BADSIG/BADTRUNC, then time → BADTIME) and
//! hands back a [`Signer`] that signs every answer message, chaining the
//! prior MAC through multi-message transfers (§5.3.1). The client side
//! signs requests and verifies answers ([`ResponseVerifier`]), which the
//! NOTIFY sender and the tests use.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac as _};
use sha2::{Sha256, Sha384, Sha512};

use crate::Error;
use crate::wire::{self, Message, Name, Rcode, TsigRcode, TsigRdata, class, rtype};

/// The fudge this server signs with, and the widest it accepts.
pub const FUDGE: u16 = 300;

/// The HMAC algorithms supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    /// From its name (`hmac-sha256`, with or without the final dot, any case).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        match n.as_str() {
            "hmac-sha256" => Some(Algorithm::HmacSha256),
            "hmac-sha384" => Some(Algorithm::HmacSha384),
            "hmac-sha512" => Some(Algorithm::HmacSha512),
            _ => None,
        }
    }

    fn from_wire(name: &Name) -> Option<Algorithm> {
        [
            Algorithm::HmacSha256,
            Algorithm::HmacSha384,
            Algorithm::HmacSha512,
        ]
        .into_iter()
        .find(|a| name.wire().eq_ignore_ascii_case(a.wire()))
    }

    /// The name as BIND writes it in `algorithm` (`hmac-sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    fn wire(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The full MAC length in octets.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }
}

/// A shared key: name, algorithm and secret. `Debug` does not show the
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    name: Name,
    algorithm: Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// A key as BIND configures one: name, algorithm name, base64 secret.
    pub fn new(name: &str, algorithm: &str, secret_base64: &str) -> Result<TsigKey, Error> {
        let algorithm = Algorithm::from_name(algorithm).ok_or_else(|| {
            Error::Config(format!(
                "TSIG algorithm {algorithm:?} is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512"
            ))
        })?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_base64.trim())
            .map_err(|e| Error::Config(format!("TSIG key {name:?}: secret is not base64: {e}")))?;
        TsigKey::from_secret(name, algorithm, secret)
    }

    /// A key from raw secret octets.
    pub fn from_secret(
        name: &str,
        algorithm: Algorithm,
        secret: Vec<u8>,
    ) -> Result<TsigKey, Error> {
        let name = Name::from_ascii(name)
            .map_err(|e| Error::Config(format!("TSIG key name {name:?}: {e}")))?
            .to_lowercase();
        if name.is_root() {
            return Err(Error::Config("a TSIG key needs a name".into()));
        }
        if secret.is_empty() {
            return Err(Error::Config(format!("TSIG key {name}: empty secret")));
        }
        Ok(TsigKey {
            name,
            algorithm,
            secret,
        })
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn mac(&self) -> MacState {
        MacState::new(self.algorithm, &self.secret)
    }
}

enum MacState {
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

impl MacState {
    fn new(alg: Algorithm, key: &[u8]) -> MacState {
        // HMAC accepts keys of any length.
        match alg {
            Algorithm::HmacSha256 => {
                MacState::S256(Hmac::new_from_slice(key).expect("HMAC takes any key length"))
            }
            Algorithm::HmacSha384 => {
                MacState::S384(Hmac::new_from_slice(key).expect("HMAC takes any key length"))
            }
            Algorithm::HmacSha512 => {
                MacState::S512(Hmac::new_from_slice(key).expect("HMAC takes any key length"))
            }
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            MacState::S256(m) => m.update(data),
            MacState::S384(m) => m.update(data),
            MacState::S512(m) => m.update(data),
        }
    }

    /// Feeds a MAC with its 2-octet length (request MAC, prior MAC).
    fn update_mac(&mut self, mac: &[u8]) {
        let len = u16::try_from(mac.len()).unwrap_or(u16::MAX);
        self.update(&len.to_be_bytes());
        self.update(mac);
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            MacState::S256(m) => m.finalize().into_bytes().to_vec(),
            MacState::S384(m) => m.finalize().into_bytes().to_vec(),
            MacState::S512(m) => m.finalize().into_bytes().to_vec(),
        }
    }

    /// Constant-time comparison with `mac`, which may be a truncation
    /// (leftmost octets).
    fn verify(self, mac: &[u8]) -> bool {
        match self {
            MacState::S256(m) => m.verify_truncated_left(mac).is_ok(),
            MacState::S384(m) => m.verify_truncated_left(mac).is_ok(),
            MacState::S512(m) => m.verify_truncated_left(mac).is_ok(),
        }
    }
}

/// The variables digested after the message (RFC 8945 §4.3.3).
struct Variables<'a> {
    time_signed: u64,
    fudge: u16,
    error: TsigRcode,
    other: &'a [u8],
}

impl Variables<'_> {
    fn digest_full(&self, mac: &mut MacState, key: &TsigKey) {
        mac.update(key.name.wire());
        mac.update(&class::ANY.to_be_bytes());
        mac.update(&0u32.to_be_bytes());
        mac.update(key.algorithm.wire());
        self.digest_timers(mac);
        mac.update(&self.error.0.to_be_bytes());
        let other_len = u16::try_from(self.other.len()).unwrap_or(u16::MAX);
        mac.update(&other_len.to_be_bytes());
        mac.update(self.other);
    }

    fn digest_timers(&self, mac: &mut MacState) {
        mac.update(&time48(self.time_signed));
        mac.update(&self.fudge.to_be_bytes());
    }
}

fn time48(t: u64) -> [u8; 6] {
    let b = t.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Seconds since the epoch, as TSIG counts time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The TSIG record of a message, if it has one where RFC 8945 allows it.
#[derive(Debug, Clone)]
pub struct MessageTsig {
    pub key_name: Name,
    pub rdata: TsigRdata,
    /// Where the TSIG record starts in the message.
    pub start: usize,
}

/// A TSIG record in the wrong place, twice, or unreadable: FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsigFormErr;

/// Finds the TSIG record: it must be the last record of the additional
/// section, the only one, class ANY and TTL 0 (RFC 8945 §5.2).
pub fn find_tsig(msg: &Message<'_>) -> Result<Option<MessageTsig>, TsigFormErr> {
    let Some((last, rest)) = msg.additional.split_last() else {
        return if msg.records().any(|r| r.rtype == rtype::TSIG) {
            Err(TsigFormErr)
        } else {
            Ok(None)
        };
    };
    if msg
        .answers
        .iter()
        .chain(&msg.authority)
        .chain(rest)
        .any(|r| r.rtype == rtype::TSIG)
    {
        return Err(TsigFormErr);
    }
    if last.rtype != rtype::TSIG {
        return Ok(None);
    }
    if last.class != class::ANY || last.ttl != 0 {
        return Err(TsigFormErr);
    }
    let rdata = TsigRdata::parse(msg.bytes, last.rdata.clone()).map_err(|_| TsigFormErr)?;
    Ok(Some(MessageTsig {
        key_name: last.name.clone(),
        rdata,
        start: last.start,
    }))
}

/// Feeds the message as it was before the TSIG record was added: original
/// ID, ARCOUNT one less, bytes up to the TSIG record.
fn digest_unsigned(mac: &mut MacState, bytes: &[u8], tsig: &MessageTsig) {
    let mut header = [0u8; wire::HEADER_LEN];
    header.copy_from_slice(&bytes[..wire::HEADER_LEN]);
    header[0..2].copy_from_slice(&tsig.rdata.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[10..12].copy_from_slice(&ar.to_be_bytes());
    mac.update(&header);
    mac.update(&bytes[wire::HEADER_LEN..tsig.start]);
}

/// A request's signature checked: unsigned, or signed with a known key.
#[derive(Debug)]
pub enum RequestAuth {
    Unsigned,
    Signed(Signer),
}

/// Why a request's TSIG failed, and so what the answer must be.
#[derive(Debug)]
pub enum TsigFailure {
    /// Malformed, misplaced or repeated TSIG, or a MAC of impossible length:
    /// FORMERR without TSIG.
    FormErr,
    /// BADKEY, BADSIG or BADTRUNC: NOTAUTH with an unsigned TSIG record.
    Unsigned { tsig: MessageTsig, error: TsigRcode },
    /// BADTIME: NOTAUTH, signed, with the server's time in Other Data.
    BadTime {
        signer: Signer,
        request: MessageTsig,
        now: u64,
    },
}

impl TsigFailure {
    /// The TSIG error, for logs.
    pub fn error(&self) -> TsigRcode {
        match self {
            TsigFailure::FormErr => TsigRcode(Rcode::FORMERR.0),
            TsigFailure::Unsigned { error, .. } => *error,
            TsigFailure::BadTime { .. } => TsigRcode::BADTIME,
        }
    }

    /// The key name the request named, if it had a readable TSIG.
    pub fn key_name(&self) -> Option<&Name> {
        match self {
            TsigFailure::FormErr => None,
            TsigFailure::Unsigned { tsig, .. } => Some(&tsig.key_name),
            TsigFailure::BadTime { request, .. } => Some(&request.key_name),
        }
    }

    /// Completes an error response (header and question already built,
    /// RCODE NOTAUTH) by adding the TSIG record the RFC asks for.
    pub fn finish_response(self, mut msg: Vec<u8>) -> Vec<u8> {
        match self {
            TsigFailure::FormErr => msg,
            TsigFailure::Unsigned { tsig, error } => {
                let id = Header16::id(&msg);
                let rdata = tsig_rdata(
                    tsig.rdata.algorithm.wire(),
                    tsig.rdata.time_signed,
                    tsig.rdata.fudge,
                    &[],
                    id,
                    error,
                    &[],
                );
                wire::append_additional(
                    &mut msg,
                    &tsig.key_name,
                    rtype::TSIG,
                    class::ANY,
                    0,
                    &rdata,
                );
                msg
            }
            TsigFailure::BadTime {
                mut signer,
                request,
                now,
            } => {
                signer.sign_with(
                    &mut msg,
                    Variables {
                        time_signed: request.rdata.time_signed,
                        fudge: request.rdata.fudge,
                        error: TsigRcode::BADTIME,
                        other: &time48(now),
                    },
                );
                msg
            }
        }
    }
}

struct Header16;
impl Header16 {
    fn id(msg: &[u8]) -> u16 {
        match msg {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        }
    }
}

/// Checks a request's TSIG against `keys` at time `now` (RFC 8945 §5.2).
pub fn verify_request(
    msg: &Message<'_>,
    keys: &[TsigKey],
    now: u64,
) -> Result<RequestAuth, Box<TsigFailure>> {
    let tsig = match find_tsig(msg) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(RequestAuth::Unsigned),
        Err(TsigFormErr) => return Err(Box::new(TsigFailure::FormErr)),
    };
    let key = Algorithm::from_wire(&tsig.rdata.algorithm).and_then(|alg| {
        keys.iter()
            .find(|k| k.algorithm == alg && k.name.eq_ignore_case(&tsig.key_name))
    });
    let Some(key) = key else {
        return Err(Box::new(TsigFailure::Unsigned {
            tsig,
            error: TsigRcode::BADKEY,
        }));
    };
    let full = key.algorithm.mac_len();
    let got = tsig.rdata.mac.len();
    if got > full || got < full.div_ceil(2).max(10) {
        return Err(Box::new(TsigFailure::FormErr));
    }
    let mut mac = key.mac();
    digest_unsigned(&mut mac, msg.bytes, &tsig);
    Variables {
        time_signed: tsig.rdata.time_signed,
        fudge: tsig.rdata.fudge,
        error: tsig.rdata.error,
        other: &tsig.rdata.other,
    }
    .digest_full(&mut mac, key);
    if !mac.verify(&tsig.rdata.mac) {
        return Err(Box::new(TsigFailure::Unsigned {
            tsig,
            error: TsigRcode::BADSIG,
        }));
    }
    if got < full {
        // Local policy (RFC 8945 §5.2.2.1): only full-length MACs.
        return Err(Box::new(TsigFailure::Unsigned {
            tsig,
            error: TsigRcode::BADTRUNC,
        }));
    }
    let signer = Signer {
        key: key.clone(),
        prior: tsig.rdata.mac.clone(),
        first: true,
        request_valid_until: tsig.rdata.time_signed + u64::from(tsig.rdata.fudge.min(FUDGE)),
    };
    let fudge = u64::from(tsig.rdata.fudge.min(FUDGE));
    if now.abs_diff(tsig.rdata.time_signed) > fudge {
        return Err(Box::new(TsigFailure::BadTime {
            signer,
            request: tsig,
            now,
        }));
    }
    Ok(RequestAuth::Signed(signer))
}

/// Signs the answers to one signed request: the first with the request MAC
/// and all variables, each later one with the prior MAC and the timers only
/// (RFC 8945 §5.3.1).
pub struct Signer {
    key: TsigKey,
    prior: Vec<u8>,
    first: bool,
    /// The last second the request's time check accepts (its time signed
    /// plus the fudge): until then, a replay of its MAC would pass.
    request_valid_until: u64,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key.name)
            .field("first", &self.first)
            .finish()
    }
}

impl Signer {
    /// The key the request was signed with.
    pub fn key(&self) -> &TsigKey {
        &self.key
    }

    /// The request's MAC (before any answer is signed) and the last second
    /// its time check accepts: what a replay cache remembers.
    pub fn request_mac(&self) -> Option<(&[u8], u64)> {
        self.first
            .then_some((self.prior.as_slice(), self.request_valid_until))
    }

    /// The request was a replay: refuse it as a time failure (NOTAUTH,
    /// BADTIME, signed, with the server's time), since a MAC already used
    /// is a signature whose time is no longer acceptable.
    pub fn replayed(self, msg: &Message<'_>, now: u64) -> Box<TsigFailure> {
        match find_tsig(msg) {
            Ok(Some(request)) => Box::new(TsigFailure::BadTime {
                signer: self,
                request,
                now,
            }),
            _ => Box::new(TsigFailure::FormErr),
        }
    }

    /// Signs a finished message (no TSIG in it yet) at time `now` and
    /// appends the TSIG record.
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64) {
        self.sign_with(
            msg,
            Variables {
                time_signed: now,
                fudge: FUDGE,
                error: TsigRcode::NOERROR,
                other: &[],
            },
        );
    }

    fn sign_with(&mut self, msg: &mut Vec<u8>, vars: Variables<'_>) {
        let mut mac = self.key.mac();
        mac.update_mac(&self.prior);
        mac.update(msg);
        if self.first {
            vars.digest_full(&mut mac, &self.key);
        } else {
            vars.digest_timers(&mut mac);
        }
        let out = mac.finalize();
        let id = Header16::id(msg);
        let rdata = tsig_rdata(
            self.key.algorithm.wire(),
            vars.time_signed,
            vars.fudge,
            &out,
            id,
            vars.error,
            vars.other,
        );
        wire::append_additional(msg, &self.key.name, rtype::TSIG, class::ANY, 0, &rdata);
        self.prior = out;
        self.first = false;
    }
}

fn tsig_rdata(
    algorithm: &[u8],
    time_signed: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: TsigRcode,
    other: &[u8],
) -> Vec<u8> {
    let mut r = Vec::with_capacity(algorithm.len() + 16 + mac.len() + other.len());
    r.extend_from_slice(algorithm);
    r.extend_from_slice(&time48(time_signed));
    r.extend_from_slice(&fudge.to_be_bytes());
    r.extend_from_slice(&u16::try_from(mac.len()).unwrap_or(0).to_be_bytes());
    r.extend_from_slice(mac);
    r.extend_from_slice(&original_id.to_be_bytes());
    r.extend_from_slice(&error.0.to_be_bytes());
    r.extend_from_slice(&u16::try_from(other.len()).unwrap_or(0).to_be_bytes());
    r.extend_from_slice(other);
    r
}

/// Signs a request (a finished message without TSIG) at `now`; returns the
/// verifier for its answers.
pub fn sign_request(msg: &mut Vec<u8>, key: &TsigKey, now: u64) -> ResponseVerifier {
    let mut mac = key.mac();
    mac.update(msg);
    let vars = Variables {
        time_signed: now,
        fudge: FUDGE,
        error: TsigRcode::NOERROR,
        other: &[],
    };
    vars.digest_full(&mut mac, key);
    let out = mac.finalize();
    let id = Header16::id(msg);
    let rdata = tsig_rdata(
        key.algorithm.wire(),
        now,
        FUDGE,
        &out,
        id,
        TsigRcode::NOERROR,
        &[],
    );
    wire::append_additional(msg, &key.name, rtype::TSIG, class::ANY, 0, &rdata);
    ResponseVerifier {
        key: key.clone(),
        prior: out,
        first: true,
    }
}

/// Why an answer's TSIG did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseTsigError {
    #[error("the answer is not a DNS message")]
    Malformed,
    #[error("the answer is not signed")]
    Unsigned,
    #[error("the server rejected our signature: {0}")]
    Rejected(TsigRcode),
    #[error("the server says our clock is off (its time: {server})")]
    ServerBadTime { server: u64 },
    #[error("the answer is signed with another key or algorithm")]
    WrongKey,
    #[error("the answer's MAC does not verify")]
    BadSig,
    #[error("the answer's time is outside the fudge")]
    BadTime,
}

/// Verifies the answer, or each message of a multi-message answer, to a
/// request signed with [`sign_request`]. Every message must be signed
/// (this server signs them all; RFC 8945 lets a server skip up to 99).
pub struct ResponseVerifier {
    key: TsigKey,
    prior: Vec<u8>,
    first: bool,
}

impl ResponseVerifier {
    pub fn verify(&mut self, bytes: &[u8], now: u64) -> Result<(), ResponseTsigError> {
        let msg = Message::parse(bytes).map_err(|_| ResponseTsigError::Malformed)?;
        let tsig = find_tsig(&msg)
            .map_err(|_| ResponseTsigError::Malformed)?
            .ok_or(ResponseTsigError::Unsigned)?;
        let error = tsig.rdata.error;
        if msg.header.rcode() == Rcode::NOTAUTH
            && tsig.rdata.mac.is_empty()
            && matches!(
                error,
                TsigRcode::BADKEY | TsigRcode::BADSIG | TsigRcode::BADTRUNC
            )
        {
            return Err(ResponseTsigError::Rejected(error));
        }
        if !tsig.key_name.eq_ignore_case(&self.key.name)
            || Algorithm::from_wire(&tsig.rdata.algorithm) != Some(self.key.algorithm)
        {
            return Err(ResponseTsigError::WrongKey);
        }
        if tsig.rdata.mac.len() != self.key.algorithm.mac_len() {
            return Err(ResponseTsigError::BadSig);
        }
        let mut mac = self.key.mac();
        mac.update_mac(&self.prior);
        digest_unsigned(&mut mac, bytes, &tsig);
        let vars = Variables {
            time_signed: tsig.rdata.time_signed,
            fudge: tsig.rdata.fudge,
            error,
            other: &tsig.rdata.other,
        };
        if self.first {
            vars.digest_full(&mut mac, &self.key);
        } else {
            vars.digest_timers(&mut mac);
        }
        if !mac.verify(&tsig.rdata.mac) {
            return Err(ResponseTsigError::BadSig);
        }
        self.prior = tsig.rdata.mac.clone();
        self.first = false;
        if error == TsigRcode::BADTIME {
            let server = tsig
                .rdata
                .other
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            return Err(ResponseTsigError::ServerBadTime { server });
        }
        if now.abs_diff(tsig.rdata.time_signed) > u64::from(tsig.rdata.fudge) {
            return Err(ResponseTsigError::BadTime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MessageBuilder, Question, flags};

    fn key() -> TsigKey {
        TsigKey::new("k.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0").expect("key")
    }

    fn query() -> Vec<u8> {
        let mut b = MessageBuilder::new(0x1234, 0);
        b.question(&Question {
            name: Name::from_ascii("rpz.tapis").expect("n"),
            qtype: rtype::SOA,
            qclass: class::IN,
        });
        b.finish()
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = key();
        let now = 1_700_000_000;
        let mut q = query();
        let mut client = sign_request(&mut q, &k, now);
        let msg = Message::parse(&q).expect("parse");
        let RequestAuth::Signed(mut signer) =
            verify_request(&msg, std::slice::from_ref(&k), now + 5).expect("valid")
        else {
            panic!("expected signed");
        };
        for i in 0..3u16 {
            let mut a = MessageBuilder::new(0x1234, flags::QR | i).finish();
            signer.sign(&mut a, now + 6);
            client.verify(&a, now + 6).expect("answer verifies");
        }
        // Tampering breaks it.
        let mut a = MessageBuilder::new(0x1234, flags::QR).finish();
        signer.sign(&mut a, now + 6);
        a[3] ^= 1;
        assert_eq!(client.verify(&a, now + 6), Err(ResponseTsigError::BadSig));
    }

    #[test]
    fn failures_follow_the_rfc_order() {
        let k = key();
        let now = 1_700_000_000;
        let mut q = query();
        sign_request(&mut q, &k, now);
        let msg = Message::parse(&q).expect("parse");
        let other = TsigKey::new("k.", "hmac-sha256", "b3RoZXJzZWNyZXQ=").expect("key");
        match verify_request(&msg, &[other], now).map_err(|e| *e) {
            Err(TsigFailure::Unsigned { error, .. }) => assert_eq!(error, TsigRcode::BADSIG),
            other => panic!("{other:?}"),
        }
        let unknown = TsigKey::new("j.", "hmac-sha256", "b3RoZXJzZWNyZXQ=").expect("key");
        match verify_request(&msg, &[unknown], now).map_err(|e| *e) {
            Err(TsigFailure::Unsigned { error, .. }) => assert_eq!(error, TsigRcode::BADKEY),
            other => panic!("{other:?}"),
        }
        match verify_request(&msg, std::slice::from_ref(&k), now + 301).map_err(|e| *e) {
            Err(TsigFailure::BadTime { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
