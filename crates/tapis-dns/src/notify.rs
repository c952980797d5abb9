//! The NOTIFY sender (RFC 1996): tells a secondary that the zone changed so
//! it asks for the new version at once instead of at its next refresh.
//!
//! The message carries the zone's SOA with the new serial, is signed when a
//! TSIG key is given, and is retried over UDP with a doubling timeout until
//! an answer comes (a bounded number of tries). The answer's RCODE is
//! reported; a signed answer is verified.
//!
//! A target on a private or special-purpose address (core's
//! `is_private_ip`: loopback, RFC 1918, link-local such as the cloud
//! metadata service 169.254.169.254, and the rest of the IANA registries)
//! is refused at send time unless `allow_private_targets` is set, whatever
//! the database holds: registration checks the same rule, this is the
//! last line.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tracing::{debug, warn};

use crate::server::ZoneData;
use crate::tsig::{self, ResponseTsigError, TsigKey, unix_now};
use crate::wire::{
    Header, MessageBuilder, Question, Rcode, Section, TsigRcode, class, flags, opcode, rtype,
};
use crate::{Error, ZoneConfig};

/// How hard to try.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// Sends at most this many times.
    pub tries: u32,
    /// Wait for the first answer this long, doubling after each try…
    pub first_timeout: Duration,
    /// …up to this.
    pub max_timeout: Duration,
    /// Send from this address (a secondary accepts NOTIFY from its
    /// primary's address). Default: any address, any port.
    pub source: Option<SocketAddr>,
    /// Send to private and special-purpose addresses too (a test, or
    /// secondaries on the operator's own network). Default: no.
    pub allow_private_targets: bool,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            tries: 5,
            first_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            source: None,
            allow_private_targets: false,
        }
    }
}

/// The secondary's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOutcome {
    /// NOERROR when the secondary accepted the NOTIFY.
    pub rcode: Rcode,
    /// When the secondary rejected our TSIG: BADKEY, BADSIG, BADTIME, ….
    pub tsig_error: Option<TsigRcode>,
    /// Whether the answer's TSIG verified (false when no key was given, or
    /// the answer was unsigned or did not verify).
    pub verified: bool,
    /// Messages sent.
    pub attempts: u32,
    /// From the first send to the answer.
    pub elapsed: Duration,
}

impl NotifyOutcome {
    /// The secondary accepted the NOTIFY (and, with a key, its answer was
    /// signed with it).
    pub fn accepted(&self, signed: bool) -> bool {
        self.rcode == Rcode::NOERROR && self.tsig_error.is_none() && (!signed || self.verified)
    }
}

/// Sends a NOTIFY for the zone at `serial` to `target` with the default
/// options (so never to a private or special-purpose address).
pub async fn send_notify(
    target: SocketAddr,
    config: &ZoneConfig,
    serial: u32,
    key: Option<&TsigKey>,
) -> Result<NotifyOutcome, Error> {
    send_notify_with(target, config, serial, key, &NotifyOptions::default()).await
}

/// Sends a NOTIFY for the zone at `serial` to `target`.
pub async fn send_notify_with(
    target: SocketAddr,
    config: &ZoneConfig,
    serial: u32,
    key: Option<&TsigKey>,
    options: &NotifyOptions,
) -> Result<NotifyOutcome, Error> {
    if !options.allow_private_targets && tapis_core::channel::is_private_ip(target.ip()) {
        return Err(Error::PrivateTarget(target));
    }
    let zone = ZoneData::new(config)?;
    let source = options
        .source
        .unwrap_or_else(|| crate::xfr::any_local(target));
    let socket = UdpSocket::bind(source).await?;
    let id: u16 = rand::random();
    let unsigned = {
        let mut b = MessageBuilder::new(id, (u16::from(opcode::NOTIFY) << 11) | flags::AA);
        b.question(&Question {
            name: zone.name.clone(),
            qtype: rtype::SOA,
            qclass: class::IN,
        });
        zone.put_soa(&mut b, Section::Answer, serial);
        b.finish()
    };
    let started = Instant::now();
    let mut timeout = options.first_timeout;
    let mut buf = vec![0u8; 4096];
    for attempt in 1..=options.tries.max(1) {
        let mut msg = unsigned.clone();
        let mut verifier = key.map(|k| tsig::sign_request(&mut msg, k, unix_now()));
        socket.send_to(&msg, target).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (n, from) =
                match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => {
                        // ICMP unreachable and the like: wait for the next try.
                        debug!(%target, error = %e, "NOTIFY receive error");
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Ok(x)) => x,
                };
            let answer = &buf[..n];
            let Some(h) = Header::parse(answer) else {
                continue;
            };
            // Matched by address and id. Some secondaries answer a NOTIFY
            // they cannot parse (e.g. a TSIG-signed one to a resolver without
            // TSIG) with FORMERR under opcode QUERY: that is still their
            // answer, and the caller needs its rcode to fall back.
            if from != target || h.id != id || !h.is_response() {
                continue;
            }
            let mut outcome = NotifyOutcome {
                rcode: h.rcode(),
                tsig_error: None,
                verified: false,
                attempts: attempt,
                elapsed: started.elapsed(),
            };
            if let Some(v) = verifier.as_mut() {
                match v.verify(answer, unix_now()) {
                    Ok(()) => outcome.verified = true,
                    Err(ResponseTsigError::Rejected(e)) => outcome.tsig_error = Some(e),
                    Err(ResponseTsigError::ServerBadTime { .. }) => {
                        outcome.tsig_error = Some(TsigRcode::BADTIME)
                    }
                    Err(e) => warn!(%target, error = %e, "NOTIFY answer's TSIG does not verify"),
                }
            }
            return Ok(outcome);
        }
        timeout = (timeout * 2).min(options.max_timeout);
    }
    Err(Error::NoAnswer {
        target,
        tries: options.tries.max(1),
    })
}
