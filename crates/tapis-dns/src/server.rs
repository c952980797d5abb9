//! The RPZ primary: answers SOA queries and serves the zone by AXFR and
//! IXFR (RFC 5936, RFC 1995) over UDP and TCP, from a [`ZoneSource`].
//!
//! What it answers:
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
//! BADTIME (signed), on any query. Answers to signed requests are signed,
//! each message of a transfer chained to the previous one.
//!
//! Sizes are bounded: UDP queries up to 4 KiB, TCP messages length-prefixed
//! and 12 octets to 16 KiB (else the connection is closed), idle TCP
//! connections closed after `tcp_idle_timeout`, at most
//! `tcp_max_connections` at once; transfer messages stay under
//! `transfer_message_size` (16 KiB by default).

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapis_core::isp::IpNet;
use tapis_core::order::OrderAction;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::serial::serial_lt;
use crate::source::{Diff, Record, Snapshot, ZoneSource};
use crate::tsig::{self, RequestAuth, Signer, TsigFailure, TsigKey, unix_now};
use crate::wire::{
    HEADER_LEN, Header, Message, MessageBuilder, Name, Question, Rcode, Rdata, Section, Soa, class,
    opcode, rtype,
};
use crate::{Error, ZoneConfig};

/// The EDNS payload size this server advertises.
pub const EDNS_UDP_SIZE: u16 = 1232;
/// Largest UDP query read.
const MAX_UDP_QUERY: usize = 4096;
/// Largest TCP message accepted.
const MAX_TCP_QUERY: usize = 16 * 1024;
/// Room kept in each transfer message for OPT and TSIG.
const TRAILER_RESERVE: usize = 400;
/// UDP queries handled at once.
const UDP_CONCURRENCY: usize = 64;

/// How the primary runs.
#[derive(Debug, Clone)]
pub struct PrimaryConfig {
    pub zone: ZoneConfig,
    /// Keys accepted on requests (transfers need one of them by default).
    pub keys: Vec<TsigKey>,
    /// Addresses allowed to transfer without TSIG (for resolvers that
    /// cannot sign, e.g. Unbound). Empty by default.
    pub allow_unsigned_transfer: Vec<IpNet>,
    pub tcp_idle_timeout: Duration,
    pub tcp_max_connections: usize,
    /// Upper bound on one transfer message (at most 65,535).
    pub transfer_message_size: usize,
}

impl PrimaryConfig {
    pub fn new(zone: ZoneConfig) -> PrimaryConfig {
        PrimaryConfig {
            zone,
            keys: Vec::new(),
            allow_unsigned_transfer: Vec::new(),
            tcp_idle_timeout: Duration::from_secs(30),
            tcp_max_connections: 256,
            transfer_message_size: 16 * 1024,
        }
    }
}

/// The zone's fixed names, parsed once.
#[derive(Debug)]
pub(crate) struct ZoneData {
    pub(crate) name: Name,
    mname: Name,
    rname: Name,
    refresh: u32,
    retry: u32,
    expire: u32,
    pub(crate) ttl: u32,
    targets: [Name; 5],
    /// `_tapis.<zone>`: explanations live under it.
    explain: Name,
}

impl ZoneData {
    pub(crate) fn new(c: &ZoneConfig) -> Result<ZoneData, Error> {
        let name = |what: &str, v: &str| {
            Name::from_ascii(v)
                .map(|n| n.to_lowercase())
                .map_err(|e| Error::Config(format!("{what} {v:?}: {e}")))
        };
        let target = |a: OrderAction| name("RPZ target", &a.rpz_target(&c.block_page_host));
        Ok(ZoneData {
            name: name("zone", &c.zone)?,
            mname: name("mname", &c.mname)?,
            rname: name("rname", &c.rname)?,
            refresh: c.refresh,
            retry: c.retry,
            expire: c.expire,
            ttl: c.ttl,
            targets: [
                target(OrderAction::Passthru)?,
                target(OrderAction::Drop)?,
                target(OrderAction::Nxdomain)?,
                target(OrderAction::Nodata)?,
                target(OrderAction::WalledGarden)?,
            ],
            explain: Name::relative_to(crate::EXPLANATION_LABEL, &name("zone", &c.zone)?)
                .map_err(|e| Error::Config(format!("zone {:?}: {e}", c.zone)))?,
        })
    }

    /// The zone's SOA record at `serial`, into `section` of `b`: the one
    /// way the primary writes its SOA (answers, negative answers, the
    /// frames of every transfer).
    pub(crate) fn put_soa(&self, b: &mut MessageBuilder, section: Section, serial: u32) {
        b.record(
            section,
            &self.name,
            rtype::SOA,
            class::IN,
            self.ttl,
            Rdata::Soa(&self.soa(serial)),
        );
    }

    pub(crate) fn soa(&self, serial: u32) -> Soa {
        Soa {
            mname: self.mname.clone(),
            rname: self.rname.clone(),
            serial,
            refresh: self.refresh,
            retry: self.retry,
            expire: self.expire,
            minimum: self.ttl,
        }
    }

    fn target(&self, a: OrderAction) -> &Name {
        &self.targets[match a {
            OrderAction::Passthru => 0,
            OrderAction::Drop => 1,
            OrderAction::Nxdomain => 2,
            OrderAction::Nodata => 3,
            OrderAction::WalledGarden => 4,
        }]
    }
}

/// Which transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to send back.
#[derive(Debug)]
pub enum Reply {
    /// Nothing (not a query, or too short to answer).
    Drop,
    /// One message.
    Message(Vec<u8>),
    /// A zone transfer: the messages, built as they are taken.
    Transfer(Box<Transfer>),
}

/// What a secondary did, as the primary saw it: the evidence ISP compliance
/// starts from (an SOA poll, the serial a secondary says it holds, a
/// transfer sent to the end or cut off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub peer: IpAddr,
    /// The TSIG key that signed the request (without the trailing dot).
    pub key: Option<String>,
    pub event: Observed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// An SOA query, answered with `serial`.
    SoaPoll { serial: u32 },
    /// A transfer of `serial`: `AXFR`, `IXFR` or `IXFR(AXFR)`; `from` is
    /// the serial the secondary said it held (IXFR). `complete` is false
    /// when the connection failed before the last message. An IXFR from a
    /// secondary that is already current is a complete transfer with
    /// `from == Some(serial)`; one over UDP from a secondary behind (or
    /// ahead) is an incomplete one (it will come back over TCP).
    Transfer {
        kind: &'static str,
        from: Option<u32>,
        serial: u32,
        complete: bool,
    },
}

/// Observations waiting to be read; beyond this, new ones are dropped
/// (answering DNS never waits for the reader).
const OBSERVATION_QUEUE: usize = 4096;

/// The RPZ primary. Cheap to clone (shared inside).
pub struct Primary<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Primary<S> {
    fn clone(&self) -> Self {
        Primary {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    config: PrimaryConfig,
    /// Keys and allow list in force: they change while the server runs
    /// (an ISP registers), so they live apart from the fixed config.
    access: std::sync::RwLock<(Vec<TsigKey>, Vec<IpNet>)>,
    zone: Arc<ZoneData>,
    source: S,
    observer: std::sync::Mutex<Option<mpsc::Sender<Observation>>>,
}

/// Per-request state for building answers.
struct Ctx {
    header: Header,
    question: Option<Question>,
    signer: Option<Signer>,
    /// The client's EDNS payload size, if it sent OPT.
    edns: Option<u16>,
    transport: Transport,
}

impl Ctx {
    /// The TSIG key the request was signed with.
    fn key_name(&self) -> Option<String> {
        self.signer.as_ref().map(|s| key_text(s.key()))
    }

    fn builder(&self, rcode: Rcode, authoritative: bool) -> MessageBuilder {
        let mut b = MessageBuilder::new(
            self.header.id,
            self.header.response_flags(rcode, authoritative),
        );
        if let Some(q) = &self.question {
            b.question(q);
        }
        b
    }

    fn finish(&mut self, mut b: MessageBuilder, rcode: Rcode) -> Vec<u8> {
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

    fn simple(mut self, rcode: Rcode) -> Reply {
        let b = self.builder(rcode, false);
        Reply::Message(self.finish(b, rcode))
    }
}

impl<S: ZoneSource> Primary<S> {
    pub fn new(config: PrimaryConfig, source: S) -> Result<Primary<S>, Error> {
        let zone = Arc::new(ZoneData::new(&config.zone)?);
        if !(1024..=65_535).contains(&config.transfer_message_size) {
            return Err(Error::Config(
                "transfer_message_size must be between 1024 and 65535".into(),
            ));
        }
        let access =
            std::sync::RwLock::new((config.keys.clone(), config.allow_unsigned_transfer.clone()));
        Ok(Primary {
            inner: Arc::new(Inner {
                config,
                access,
                zone,
                source,
                observer: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Replace the accepted keys and the unsigned-transfer allow list
    /// (e.g. when an ISP registers); takes effect for the next request.
    pub fn set_access(&self, keys: Vec<TsigKey>, allow: Vec<IpNet>) {
        let mut guard = self
            .inner
            .access
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = (keys, allow);
    }

    /// Start reporting what secondaries do (SOA polls, transfers); the
    /// receiver should be read promptly: when it falls behind by
    /// [`OBSERVATION_QUEUE`] observations, new ones are dropped. A second
    /// call replaces the first receiver.
    pub fn observe(&self) -> mpsc::Receiver<Observation> {
        let (tx, rx) = mpsc::channel(OBSERVATION_QUEUE);
        *self
            .inner
            .observer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
        rx
    }

    fn emit(&self, peer: IpAddr, key: Option<String>, event: Observed) {
        let guard = self
            .inner
            .observer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = guard.as_ref() {
            let observation = Observation {
                peer: peer.to_canonical(),
                key,
                event,
            };
            if tx.try_send(observation).is_err() {
                debug!(%peer, "observation dropped (reader behind or gone)");
            }
        }
    }

    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// Serves UDP and TCP until `shutdown` completes (then stops accepting
    /// and aborts transfers in progress).
    pub async fn run(
        &self,
        udp: UdpSocket,
        tcp: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::select! {
            r = self.serve_udp(udp) => r,
            r = self.serve_tcp(tcp) => r,
            () = shutdown => Ok(()),
        }
    }

    /// Answers UDP queries on `socket`, forever.
    pub async fn serve_udp(&self, socket: UdpSocket) -> Result<(), Error> {
        let socket = Arc::new(socket);
        let permits = Arc::new(Semaphore::new(UDP_CONCURRENCY));
        let mut tasks = JoinSet::new();
        let mut buf = vec![0u8; MAX_UDP_QUERY];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    // e.g. ICMP port unreachable reported on the socket
                    debug!(error = %e, "UDP receive error");
                    continue;
                }
            };
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Config("UDP semaphore closed".into()))?;
            let query = buf[..n].to_vec();
            let this = self.clone();
            let socket = socket.clone();
            tasks.spawn(async move {
                if let Reply::Message(m) = this.respond(&query, peer, Transport::Udp).await
                    && let Err(e) = socket.send_to(&m, peer).await
                {
                    debug!(%peer, error = %e, "UDP send failed");
                }
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
    }

    /// Accepts TCP connections on `listener`, forever.
    pub async fn serve_tcp(&self, listener: TcpListener) -> Result<(), Error> {
        let permits = Arc::new(Semaphore::new(self.inner.config.tcp_max_connections));
        let mut tasks = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                warn!(%peer, "too many TCP connections; closing");
                drop(stream);
                continue;
            };
            let this = self.clone();
            tasks.spawn(async move {
                this.connection(stream, peer).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
    }

    async fn connection(&self, mut stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let idle = self.inner.config.tcp_idle_timeout;
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    debug!(%peer, "idle TCP connection closed");
                    return;
                }
            }
            let len = usize::from(u16::from_be_bytes(len));
            if !(HEADER_LEN..=MAX_TCP_QUERY).contains(&len) {
                debug!(%peer, len, "TCP message length out of bounds; closing");
                return;
            }
            let mut query = vec![0u8; len];
            match tokio::time::timeout(idle, stream.read_exact(&mut query)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            match self.respond(&query, peer, Transport::Tcp).await {
                Reply::Drop => {}
                Reply::Message(m) => {
                    if write_frame(&mut stream, &m, idle).await.is_err() {
                        return;
                    }
                }
                Reply::Transfer(mut t) => {
                    let started = Instant::now();
                    while let Some(m) = t.next_message().await {
                        if let Err(e) = write_frame(&mut stream, &m, idle).await {
                            warn!(%peer, error = %e, "transfer aborted");
                            self.emit(peer.ip(), t.key_name(), t.observed(false));
                            return;
                        }
                        // Building messages is CPU work: let other tasks run.
                        tokio::task::yield_now().await;
                    }
                    if let Some(e) = &t.failed {
                        warn!(%peer, error = %e, "zone source failed during a transfer; aborted");
                        self.emit(peer.ip(), t.key_name(), t.observed(false));
                        return;
                    }
                    info!(
                        %peer,
                        kind = t.kind,
                        serial = t.serial,
                        messages = t.messages,
                        records = t.records,
                        skipped = t.skipped,
                        ms = started.elapsed().as_millis() as u64,
                        "zone transfer sent"
                    );
                    self.emit(peer.ip(), t.key_name(), t.observed(true));
                }
            }
        }
    }

    /// The answer to one message from `peer`. Never panics, whatever the
    /// bytes.
    pub async fn respond(&self, query: &[u8], peer: SocketAddr, transport: Transport) -> Reply {
        let Some(header) = Header::parse(query) else {
            return Reply::Drop;
        };
        if header.is_response() {
            return Reply::Drop;
        }
        let msg = match Message::parse(query) {
            Ok(m) => m,
            Err(e) => {
                debug!(%peer, error = %e, "malformed query");
                let b =
                    MessageBuilder::new(header.id, header.response_flags(Rcode::FORMERR, false));
                return Reply::Message(b.finish());
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
        let signer = match verified {
            Ok(RequestAuth::Signed(s)) => Some(s),
            Ok(RequestAuth::Unsigned) => None,
            Err(failure) => return self.tsig_failed(header, question, failure, peer),
        };
        let mut ctx = Ctx {
            header,
            question,
            signer,
            edns: None,
            transport,
        };
        match edns(&msg) {
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
            rtype::IXFR => self.ixfr(ctx, &msg, peer).await,
            rtype::SOA | rtype::NS | rtype::ANY => {
                let Some(serial) = self.serial().await else {
                    return ctx.simple(Rcode::SERVFAIL);
                };
                let mut b = ctx.builder(Rcode::NOERROR, true);
                if q.qtype == rtype::SOA {
                    let key = ctx.key_name();
                    self.emit(peer.ip(), key, Observed::SoaPoll { serial });
                }
                if q.qtype != rtype::NS {
                    zone.put_soa(&mut b, Section::Answer, serial);
                }
                if q.qtype != rtype::SOA {
                    b.record(
                        Section::Answer,
                        &zone.name,
                        rtype::NS,
                        class::IN,
                        zone.ttl,
                        Rdata::Ns(&zone.mname),
                    );
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
        warn!(
            %peer,
            error = %failure.error(),
            key = ?failure.key_name().map(|k| k.to_string()),
            "TSIG check failed"
        );
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

    async fn serial(&self) -> Option<u32> {
        match self.inner.source.serial().await {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "zone source failed (serial)");
                None
            }
        }
    }

    fn transfer_allowed(&self, ctx: &Ctx, peer: SocketAddr, kind: &str) -> bool {
        if ctx.signer.is_some() {
            return true;
        }
        let ip = peer.ip().to_canonical();
        let allowed = {
            let access = self
                .inner
                .access
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            access.1.iter().any(|n| n.contains(ip))
        };
        if allowed {
            return true;
        }
        warn!(%peer, kind, "unsigned transfer request from an address not allowed; refused");
        false
    }

    fn transfer(
        &self,
        ctx: Ctx,
        kind: &'static str,
        from: Option<u32>,
        serial: u32,
        parts: Vec<Part>,
    ) -> Transfer {
        let q = ctx.question.clone().unwrap_or(Question {
            name: self.inner.zone.name.clone(),
            qtype: rtype::AXFR,
            qclass: class::IN,
        });
        Transfer {
            zone: self.inner.zone.clone(),
            id: ctx.header.id,
            flags: ctx.header.response_flags(Rcode::NOERROR, true),
            question: q,
            edns: ctx.edns.is_some(),
            signer: ctx.signer,
            parts,
            part: 0,
            index: 0,
            budget: self.inner.config.transfer_message_size - TRAILER_RESERVE,
            kind,
            from,
            serial,
            messages: 0,
            records: 0,
            skipped: 0,
            failed: None,
        }
    }

    async fn axfr(&self, ctx: Ctx, peer: SocketAddr) -> Reply {
        if ctx.transport == Transport::Udp {
            return ctx.simple(Rcode::FORMERR);
        }
        if !self.transfer_allowed(&ctx, peer, "AXFR") {
            return ctx.simple(Rcode::REFUSED);
        }
        self.full_transfer(ctx, "AXFR", None).await
    }

    async fn full_transfer(&self, ctx: Ctx, kind: &'static str, from: Option<u32>) -> Reply {
        match self.inner.source.snapshot().await {
            Ok(Snapshot { serial, records }) => Reply::Transfer(Box::new(self.transfer(
                ctx,
                kind,
                from,
                serial,
                vec![
                    Part::Soa(serial),
                    Part::Ns,
                    Part::Records(Vec::new(), Some(records)),
                    Part::Soa(serial),
                ],
            ))),
            Err(e) => {
                warn!(error = %e, "zone source failed (snapshot)");
                ctx.simple(Rcode::SERVFAIL)
            }
        }
    }

    async fn ixfr(&self, mut ctx: Ctx, msg: &Message<'_>, peer: SocketAddr) -> Reply {
        let zone = &self.inner.zone;
        let client = msg
            .authority
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.name.eq_ignore_case(&zone.name))
            .and_then(|r| Soa::parse(msg.bytes, r.rdata.clone()).ok());
        let Some(client) = client else {
            return ctx.simple(Rcode::FORMERR);
        };
        if !self.transfer_allowed(&ctx, peer, "IXFR") {
            return ctx.simple(Rcode::REFUSED);
        }
        let Some(current) = self.serial().await else {
            return ctx.simple(Rcode::SERVFAIL);
        };
        if ctx.transport == Transport::Udp || !serial_lt(client.serial, current) {
            // Up to date (or newer), or UDP: the current SOA alone. Either
            // way the secondary told us the serial it holds.
            let key = ctx.key_name();
            self.emit(
                peer.ip(),
                key,
                Observed::Transfer {
                    kind: "IXFR",
                    from: Some(client.serial),
                    serial: current,
                    complete: client.serial == current,
                },
            );
            let mut b = ctx.builder(Rcode::NOERROR, true);
            zone.put_soa(&mut b, Section::Answer, current);
            return Reply::Message(ctx.finish(b, Rcode::NOERROR));
        }
        let diffs = match self.inner.source.changes_since(client.serial).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "zone source failed (changes)");
                return ctx.simple(Rcode::SERVFAIL);
            }
        };
        match diffs.map(|d| condense(client.serial, d)) {
            Some(Ok(None)) => {
                let mut b = ctx.builder(Rcode::NOERROR, true);
                zone.put_soa(&mut b, Section::Answer, current);
                Reply::Message(ctx.finish(b, Rcode::NOERROR))
            }
            Some(Ok(Some((to, removed, added)))) => Reply::Transfer(Box::new(self.transfer(
                ctx,
                "IXFR",
                Some(client.serial),
                to,
                vec![
                    Part::Soa(to),
                    Part::Soa(client.serial),
                    Part::Records(removed, None),
                    Part::Soa(to),
                    Part::Records(added, None),
                    Part::Soa(to),
                ],
            ))),
            Some(Err(e)) => {
                warn!(error = %e, "zone source gave a broken chain of diffs; sending the whole zone");
                self.full_transfer(ctx, "IXFR(AXFR)", Some(client.serial))
                    .await
            }
            None => {
                self.full_transfer(ctx, "IXFR(AXFR)", Some(client.serial))
                    .await
            }
        }
    }
}

/// Binds UDP and TCP on the same address (the same port when `addr` has
/// port 0), as secondaries expect one port for both.
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let mut last = None;
    for _ in 0..20 {
        let tcp = TcpListener::bind(addr).await?;
        let bound = tcp.local_addr()?;
        match UdpSocket::bind(bound).await {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .map(Error::from)
        .unwrap_or_else(|| Error::Config("could not bind".into())))
}

async fn write_frame(stream: &mut TcpStream, m: &[u8], timeout: Duration) -> std::io::Result<()> {
    let len = u16::try_from(m.len())
        .map_err(|_| std::io::Error::other("message longer than 65535 octets"))?;
    let mut frame = Vec::with_capacity(m.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(m);
    tokio::time::timeout(timeout, stream.write_all(&frame))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))?
}

type Records = Vec<Record>;

/// Folds a chain of diffs starting at `from` into one: `None` if it is
/// empty, else (last serial, removed, added). A chain that does not start
/// at `from` or has a gap is an error.
fn condense(from: u32, diffs: Vec<Diff>) -> Result<Option<(u32, Records, Records)>, String> {
    if diffs.is_empty() {
        return Ok(None);
    }
    let mut at = from;
    let mut removed = BTreeSet::new();
    let mut added = BTreeSet::new();
    for d in diffs {
        if d.from != at {
            return Err(format!(
                "a diff starts at {} where {at} was expected",
                d.from
            ));
        }
        at = d.to;
        for r in d.removed {
            if !added.remove(&r) {
                removed.insert(r);
            }
        }
        for a in d.added {
            if !removed.remove(&a) {
                added.insert(a);
            }
        }
    }
    Ok(Some((
        at,
        removed.into_iter().collect(),
        added.into_iter().collect(),
    )))
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

#[derive(Debug)]
enum Part {
    Soa(u32),
    Ns,
    /// Records, and where more come from (a snapshot's later batches).
    Records(
        Records,
        Option<tokio::sync::mpsc::Receiver<Result<Records, String>>>,
    ),
}

/// A zone transfer being sent: each call to [`Transfer::next_message`]
/// builds (and signs) the next message.
pub struct Transfer {
    zone: Arc<ZoneData>,
    id: u16,
    flags: u16,
    question: Question,
    edns: bool,
    signer: Option<Signer>,
    parts: Vec<Part>,
    part: usize,
    index: usize,
    budget: usize,
    /// AXFR, IXFR or IXFR(AXFR) (an IXFR answered with the whole zone).
    pub kind: &'static str,
    /// The serial the secondary said it held (IXFR).
    pub from: Option<u32>,
    /// The serial being sent.
    pub serial: u32,
    /// Messages built so far.
    pub messages: usize,
    /// Records sent so far.
    pub records: usize,
    /// Records left out because their owner is not a valid name.
    pub skipped: usize,
    /// Why the transfer stopped early (the zone source failed mid-way).
    pub failed: Option<String>,
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("kind", &self.kind)
            .field("serial", &self.serial)
            .field("messages", &self.messages)
            .finish()
    }
}

/// A key's name as text, without the trailing dot.
fn key_text(key: &TsigKey) -> String {
    key.name().to_string().trim_end_matches('.').to_string()
}

impl Transfer {
    /// The TSIG key the transfer is signed with.
    pub fn key_name(&self) -> Option<String> {
        self.signer.as_ref().map(|s| key_text(s.key()))
    }

    /// This transfer as an observation.
    pub fn observed(&self, complete: bool) -> Observed {
        Observed::Transfer {
            kind: self.kind,
            from: self.from,
            serial: self.serial,
            complete,
        }
    }

    /// The next message of the transfer, or `None` at the end (or when
    /// the zone source failed: see [`Transfer::failed`]).
    pub async fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.part >= self.parts.len() || self.failed.is_some() {
            return None;
        }
        let zone = self.zone.clone();
        let mut b = MessageBuilder::new(self.id, self.flags);
        if self.messages == 0 {
            b.question(&self.question);
        }
        let mut wrote = 0usize;
        // SOA with uncompressed names: an upper bound on its size.
        let soa_max =
            zone.name.wire().len() + 10 + zone.mname.wire().len() + zone.rname.wire().len() + 20;
        while self.part < self.parts.len() {
            let at_index = self.index;
            match &mut self.parts[self.part] {
                Part::Soa(serial) => {
                    if wrote > 0 && b.len() + soa_max > self.budget {
                        break;
                    }
                    zone.put_soa(&mut b, Section::Answer, *serial);
                    self.part += 1;
                    wrote += 1;
                }
                Part::Ns => {
                    if wrote > 0 && b.len() + soa_max > self.budget {
                        break;
                    }
                    b.record(
                        Section::Answer,
                        &zone.name,
                        rtype::NS,
                        class::IN,
                        zone.ttl,
                        Rdata::Ns(&zone.mname),
                    );
                    self.part += 1;
                    wrote += 1;
                }
                Part::Records(records, more) => {
                    let Some(r) = records.get(at_index) else {
                        // this batch is done: the next one, or the next part
                        let next = match more {
                            Some(rx) => rx.recv().await,
                            None => None,
                        };
                        match next {
                            Some(Ok(batch)) => *records = batch,
                            Some(Err(e)) => {
                                self.failed = Some(e);
                                return None;
                            }
                            None => {
                                records.clear();
                                self.part += 1;
                            }
                        }
                        self.index = 0;
                        continue;
                    };
                    let name = match Name::relative_to(&r.owner, &zone.name) {
                        Ok(n) => n,
                        Err(e) => {
                            warn!(owner = %r.owner.escape_debug(), error = %e, "record left out of the transfer");
                            self.skipped += 1;
                            self.index += 1;
                            continue;
                        }
                    };
                    let target = zone.target(r.action);
                    // the explanation (a TXT under _tapis) goes with its record
                    let txt = r.explanation.as_deref().and_then(|t| {
                        Some((
                            Name::relative_to(&r.owner, &zone.explain).ok()?,
                            txt_rdata(t),
                        ))
                    });
                    let need = name.wire().len()
                        + 10
                        + target.wire().len()
                        + txt
                            .as_ref()
                            .map_or(0, |(n, d)| n.wire().len() + 10 + d.len());
                    if wrote > 0 && b.len() + need > self.budget {
                        break;
                    }
                    b.record(
                        Section::Answer,
                        &name,
                        rtype::CNAME,
                        class::IN,
                        zone.ttl,
                        Rdata::Cname(target),
                    );
                    wrote += 1;
                    if let Some((n, d)) = &txt {
                        b.record(
                            Section::Answer,
                            n,
                            rtype::TXT,
                            class::IN,
                            zone.ttl,
                            Rdata::Raw(d),
                        );
                        wrote += 1;
                    }
                    self.index += 1;
                }
            }
        }
        if wrote == 0 && self.messages > 0 {
            return None;
        }
        self.records += wrote;
        self.messages += 1;
        if self.edns {
            b.opt(EDNS_UDP_SIZE, Rcode::NOERROR);
        }
        let mut m = b.finish();
        if let Some(s) = &mut self.signer {
            s.sign(&mut m, unix_now());
        }
        Some(m)
    }
}

/// TXT record data: one character-string, cut at 255 bytes.
fn txt_rdata(text: &str) -> Vec<u8> {
    let bytes = &text.as_bytes()[..text.len().min(255)];
    let mut d = Vec::with_capacity(bytes.len() + 1);
    d.push(bytes.len() as u8);
    d.extend_from_slice(bytes);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_condense() {
        use OrderAction::*;
        let r = |o: &str, a| Record::new(o, a);
        let diffs = vec![
            Diff {
                from: 1,
                to: 2,
                removed: vec![r("a", Nxdomain)],
                added: vec![r("b", Nxdomain), r("c", Drop)],
            },
            Diff {
                from: 2,
                to: 3,
                removed: vec![r("b", Nxdomain)],
                added: vec![r("a", Nxdomain), r("d", Passthru)],
            },
        ];
        let (to, removed, added) = condense(1, diffs.clone())
            .expect("chain")
            .expect("non-empty");
        assert_eq!(to, 3);
        assert!(removed.is_empty());
        assert_eq!(added, vec![r("c", Drop), r("d", Passthru)]);
        assert!(condense(2, diffs).is_err());
        assert_eq!(condense(2, vec![]), Ok(None));
    }
}
