//! What the primary answers to one message (transfers themselves are
//! built in [`super::transfer`]):
//! - a name outside the zone, or a class other than IN/ANY: REFUSED;
//! - the apex: SOA and NS (ANY gives both); any other type NOERROR with no
//!   data (the SOA in the authority section); meta types (OPT, TKEY, TSIG,
//!   MAILA, MAILB, 128–248) NOTIMP;
//! - names below the apex: REFUSED. Policy records are handed out only by
//!   transfer, so the zone's contents stay with authorised resolvers;
//! - AXFR over UDP: FORMERR (as BIND answers); IXFR over UDP: the current
//!   SOA alone, which tells the client to use TCP (RFC 1995 §2);
//! - opcodes other than QUERY (NOTIFY, UPDATE, …): NOTIMP;
//! - a message whose header can be read but not the rest: FORMERR; fewer
//!   than 12 octets, or a response: dropped;
//! - EDNS: OPT is echoed (payload 1232); a version other than 0 gets BADVERS.
//!
//! Transfers (AXFR, IXFR on either transport) need a valid TSIG, or an
//! unsigned request from an address on the allow-list; otherwise REFUSED.
//! A TSIG that fails gets NOTAUTH with BADKEY/BADSIG/BADTRUNC (unsigned) or
//! BADTIME (signed), on any query; so does a signed request whose MAC was
//! already accepted (a replay: BADTIME, because a used signature is one
//! whose time is no longer acceptable, and the key holder re-signs on
//! seeing it). Answers to signed requests are signed, each message of a
//! transfer chained to the previous one.

use std::net::SocketAddr;

use tracing::{debug, warn};

use super::{EDNS_UDP_SIZE, Observed, Primary, Reply, TRAILER_RESERVE, Transport};
use crate::source::ZoneSource;
use crate::tsig::{self, RequestAuth, Signer, TsigFailure, unix_now};
use crate::wire::{
    Header, Message, MessageBuilder, Question, Rcode, Section, class, opcode, rtype,
};

/// Per-request state for building answers.
pub(super) struct Ctx {
    pub(super) header: Header,
    pub(super) question: Option<Question>,
    pub(super) signer: Option<Signer>,
    /// The client's EDNS payload size, if it sent OPT.
    pub(super) edns: Option<u16>,
    pub(super) transport: Transport,
}

impl Ctx {
    /// The TSIG key the request was signed with.
    pub(super) fn key_name(&self) -> Option<String> {
        self.signer
            .as_ref()
            .map(|s| super::transfer::key_text(s.key()))
    }

    pub(super) fn builder(&self, rcode: Rcode, authoritative: bool) -> MessageBuilder {
        let mut b = MessageBuilder::new(
            self.header.id,
            self.header.response_flags(rcode, authoritative),
        );
        if let Some(q) = &self.question {
            b.question(q);
        }
        b
    }

    pub(super) fn finish(&mut self, mut b: MessageBuilder, rcode: Rcode) -> Vec<u8> {
        if self.transport == Transport::Udp {
            let limit = usize::from(self.edns.unwrap_or(512).clamp(512, EDNS_UDP_SIZE));
            if b.len() + TRAILER_RESERVE / 2 > limit {
                let flags = self.header.response_flags(rcode, true) | crate::wire::flags::TC;
                b = MessageBuilder::new(self.header.id, flags);
                if let Some(q) = &self.question {
                    b.question(q);
                }
            }
        }
        if self.edns.is_some() {
            b.opt(EDNS_UDP_SIZE, rcode);
        }
        let mut m = b.finish();
        if let Some(s) = &mut self.signer {
            s.sign(&mut m, unix_now());
        }
        m
    }

    pub(super) fn simple(mut self, rcode: Rcode) -> Reply {
        let b = self.builder(rcode, false);
        Reply::Message(self.finish(b, rcode))
    }
}

impl<S: ZoneSource> Primary<S> {
    /// The answer to one message from `peer`. Never panics, whatever the
    /// bytes.
    pub async fn respond(&self, query: &[u8], peer: SocketAddr, transport: Transport) -> Reply {
        self.respond_classified(query, peer, transport).await.0
    }

    /// [`Primary::respond`], and whether the request carried a TSIG that
    /// verified (first use of its MAC): what makes a peer entitled.
    pub(super) async fn respond_classified(
        &self,
        query: &[u8],
        peer: SocketAddr,
        transport: Transport,
    ) -> (Reply, bool) {
        let Some(header) = Header::parse(query) else {
            return (Reply::Drop, false);
        };
        if header.is_response() {
            return (Reply::Drop, false);
        }
        let msg = match Message::parse(query) {
            Ok(m) => m,
            Err(e) => {
                debug!(%peer, error = %e, "malformed query");
                let b =
                    MessageBuilder::new(header.id, header.response_flags(Rcode::FORMERR, false));
                return (Reply::Message(b.finish()), false);
            }
        };
        let question = (msg.questions.len() == 1).then(|| msg.questions[0].clone());
        let verified = {
            let access = self
                .inner
                .access
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tsig::verify_request(&msg, &access.0, unix_now())
        };
        let now = unix_now();
        let signer = match verified {
            Ok(RequestAuth::Signed(s)) => {
                let fresh = s
                    .request_mac()
                    .is_none_or(|(mac, until)| self.inner.replay.first_use(mac, until, now));
                if !fresh {
                    let failure = s.replayed(&msg, now);
                    return (self.tsig_failed(header, question, failure, peer), false);
                }
                self.inner.signers.remember(peer.ip());
                Some(s)
            }
            Ok(RequestAuth::Unsigned) => None,
            Err(failure) => return (self.tsig_failed(header, question, failure, peer), false),
        };
        let signed = signer.is_some();
        (
            self.dispatch(header, question, signer, &msg, peer, transport)
                .await,
            signed,
        )
    }

    /// The answer to a message whose TSIG (if any) has been checked.
    async fn dispatch(
        &self,
        header: Header,
        question: Option<Question>,
        signer: Option<Signer>,
        msg: &Message<'_>,
        peer: SocketAddr,
        transport: Transport,
    ) -> Reply {
        let mut ctx = Ctx {
            header,
            question,
            signer,
            edns: None,
            transport,
        };
        match edns(msg) {
            Err(()) => return ctx.simple(Rcode::FORMERR),
            Ok(Some((version, size))) => {
                ctx.edns = Some(size);
                if version != 0 {
                    return ctx.simple(Rcode::BADVERS);
                }
            }
            Ok(None) => {}
        }
        if header.opcode() != opcode::QUERY {
            return ctx.simple(Rcode::NOTIMP);
        }
        let Some(q) = ctx.question.clone() else {
            return ctx.simple(Rcode::FORMERR);
        };
        let zone = &self.inner.zone;
        if !(q.qclass == class::IN || q.qclass == class::ANY) || !q.name.eq_ignore_case(&zone.name)
        {
            // Outside the zone, or below the apex (records only by transfer).
            return ctx.simple(Rcode::REFUSED);
        }
        match q.qtype {
            rtype::AXFR => self.axfr(ctx, peer).await,
            rtype::IXFR => self.ixfr(ctx, msg, peer).await,
            rtype::SOA | rtype::NS | rtype::ANY => {
                let Some(serial) = self.serial().await else {
                    return ctx.simple(Rcode::SERVFAIL);
                };
                let mut b = ctx.builder(Rcode::NOERROR, true);
                if q.qtype == rtype::SOA {
                    let key = ctx.key_name();
                    self.emit(peer.ip(), key, ctx.transport, Observed::SoaPoll { serial });
                }
                if q.qtype != rtype::NS {
                    zone.put_soa(&mut b, Section::Answer, serial);
                }
                if q.qtype != rtype::SOA {
                    zone.put_ns(&mut b);
                }
                Reply::Message(ctx.finish(b, Rcode::NOERROR))
            }
            rtype::OPT | rtype::TKEY | rtype::TSIG | rtype::MAILA | rtype::MAILB | 128..=248 => {
                ctx.simple(Rcode::NOTIMP)
            }
            _ => {
                let Some(serial) = self.serial().await else {
                    return ctx.simple(Rcode::SERVFAIL);
                };
                let mut b = ctx.builder(Rcode::NOERROR, true);
                zone.put_soa(&mut b, Section::Authority, serial);
                Reply::Message(ctx.finish(b, Rcode::NOERROR))
            }
        }
    }

    fn tsig_failed(
        &self,
        header: Header,
        question: Option<Question>,
        failure: Box<TsigFailure>,
        peer: SocketAddr,
    ) -> Reply {
        // a stranger can send these as fast as it likes: one line per 10 s
        if let Some(held) = self.quiet("tsig") {
            warn!(
                %peer,
                error = %failure.error(),
                key = ?failure.key_name().map(|k| k.to_string()),
                held,
                "TSIG check failed (held: like warnings not logged in the last 10 s)"
            );
        }
        let rcode = if matches!(*failure, TsigFailure::FormErr) {
            Rcode::FORMERR
        } else {
            Rcode::NOTAUTH
        };
        let mut b = MessageBuilder::new(header.id, header.response_flags(rcode, false));
        if let Some(q) = &question {
            b.question(q);
        }
        Reply::Message((*failure).finish_response(b.finish()))
    }

    pub(super) async fn serial(&self) -> Option<u32> {
        match self.inner.source.serial().await {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "zone source failed (serial)");
                None
            }
        }
    }
}

/// The client's EDNS (version, payload size): `Err` if OPT is misplaced,
/// repeated or not owned by the root.
fn edns(msg: &Message<'_>) -> Result<Option<(u8, u16)>, ()> {
    if msg
        .answers
        .iter()
        .chain(&msg.authority)
        .any(|r| r.rtype == rtype::OPT)
    {
        return Err(());
    }
    let mut opts = msg.additional.iter().filter(|r| r.rtype == rtype::OPT);
    let Some(opt) = opts.next() else {
        return Ok(None);
    };
    if opts.next().is_some() || !opt.name.is_root() {
        return Err(());
    }
    Ok(Some(((opt.ttl >> 16) as u8, opt.class)))
}
