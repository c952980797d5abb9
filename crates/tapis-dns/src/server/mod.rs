//! The RPZ primary: answers SOA queries and serves the zone by AXFR and
//! IXFR (RFC 5936, RFC 1995) over UDP and TCP, from a [`ZoneSource`]. This
//! file holds the server itself (configuration, sockets, connections, the
//! observations it reports); `answer.rs` decides what each query gets,
//! `transfer.rs` builds transfers message by message, and `zone.rs` holds
//! the zone's fixed names and its SOA.
//!
//! Sizes are bounded: UDP queries up to 4 KiB, TCP messages length-prefixed
//! and 12 octets to 16 KiB (else the connection is closed); transfer
//! messages stay under `transfer_message_size` (16 KiB by default).
//!
//! What a stranger can hold is bounded too (`limits.rs`): at most
//! `tcp_max_connections` TCP connections (256), `tcp_connections_per_address`
//! from one address or IPv6 /64 (8), and `tcp_reserved_connections` (32)
//! of the total kept for entitled peers (allow-listed, or recently proved
//! a TSIG key); a connection that sends nothing for `tcp_idle_timeout`
//! (10 s) is closed, and so is one whose message does not arrive whole
//! within `tcp_message_timeout` (5 s) of its first octet. A TSIG MAC is
//! accepted once (a replay within the fudge window gets BADTIME), and
//! warnings about bad or refused packets are at most one per kind every
//! 10 s, with a count of those held back.

mod answer;
mod digest;
mod limits;
mod transfer;
mod zone;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapis_core::isp::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::source::ZoneSource;
use crate::tsig::TsigKey;
use crate::wire::HEADER_LEN;
use crate::{Error, ZoneConfig};

pub use transfer::Transfer;
pub(crate) use zone::ZoneData;

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
    /// A TCP connection that sends nothing for this long is closed (before
    /// its first message and between messages). Default 10 s.
    pub tcp_idle_timeout: Duration,
    /// Once a TCP message's first octet arrives, the rest must arrive
    /// within this (and within the idle timeout). Default 5 s.
    pub tcp_message_timeout: Duration,
    /// TCP connections open at once, all peers together. Default 256.
    pub tcp_max_connections: usize,
    /// Of `tcp_max_connections`, kept for entitled peers: addresses on the
    /// allow list, and those that sent a verified TSIG request in the last
    /// hour. Everyone else shares the rest. Default 32.
    pub tcp_reserved_connections: usize,
    /// TCP connections from one address (an IPv6 /64 counts as one).
    /// Default 8.
    pub tcp_connections_per_address: usize,
    /// Upper bound on one transfer message (at most 65,535).
    pub transfer_message_size: usize,
}

impl PrimaryConfig {
    pub fn new(zone: ZoneConfig) -> PrimaryConfig {
        PrimaryConfig {
            zone,
            keys: Vec::new(),
            allow_unsigned_transfer: Vec::new(),
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_message_timeout: Duration::from_secs(5),
            tcp_max_connections: 256,
            tcp_reserved_connections: 32,
            tcp_connections_per_address: 8,
            transfer_message_size: 16 * 1024,
        }
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
    /// How the request came.
    pub transport: Transport,
    /// Whether its TSIG verified (`key` is then set).
    pub signed: bool,
    pub event: Observed,
}

impl Observation {
    /// Whether this can count as evidence of what a secondary holds: the
    /// request came over TCP (whose handshake proves the peer's address)
    /// or carried a TSIG that verified (which proves the key). One
    /// unsigned UDP datagram can carry any source address, so it is
    /// answered but proves nothing: an unsigned UDP IXFR is not a
    /// transfer to record, and an unsigned UDP SOA poll is only the latest
    /// poll.
    pub fn is_evidence(&self) -> bool {
        self.signed || self.transport == Transport::Tcp
    }
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
    slots: limits::Slots,
    signers: limits::Signers,
    replay: limits::ReplayCache,
    quiet: limits::Quiet,
    /// Digests of recent serials (see `digest.rs`).
    digests: digest::Digests,
}

impl<S: ZoneSource> Primary<S> {
    pub fn new(config: PrimaryConfig, source: S) -> Result<Primary<S>, Error> {
        let zone = Arc::new(ZoneData::new(&config.zone)?);
        if !(1024..=65_535).contains(&config.transfer_message_size) {
            return Err(Error::Config(
                "transfer_message_size must be between 1024 and 65535".into(),
            ));
        }
        if config.tcp_max_connections == 0
            || config.tcp_connections_per_address == 0
            || config.tcp_reserved_connections >= config.tcp_max_connections
        {
            return Err(Error::Config(
                "TCP limits: tcp_max_connections and tcp_connections_per_address must be at least 1, \
                 and tcp_reserved_connections less than tcp_max_connections"
                    .into(),
            ));
        }
        if config.tcp_idle_timeout.is_zero() || config.tcp_message_timeout.is_zero() {
            return Err(Error::Config(
                "TCP timeouts must be longer than zero".into(),
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
                slots: Default::default(),
                signers: Default::default(),
                replay: Default::default(),
                quiet: Default::default(),
                digests: Default::default(),
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
    /// `OBSERVATION_QUEUE` (4,096) observations, new ones are dropped. A second
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

    fn emit(&self, peer: IpAddr, key: Option<String>, transport: Transport, event: Observed) {
        let guard = self
            .inner
            .observer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = guard.as_ref() {
            let observation = Observation {
                peer: peer.to_canonical(),
                signed: key.is_some(),
                key,
                transport,
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

    /// Whether `ip` is on the unsigned-transfer allow list.
    pub(super) fn allow_listed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let access = self
            .inner
            .access
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        access.1.iter().any(|n| n.contains(ip))
    }

    /// Whether a warning of `kind` may be logged now (at most one every
    /// 10 s per kind): `Some(n)` with the number held back since the last.
    pub(super) fn quiet(&self, kind: &'static str) -> Option<u64> {
        self.inner.quiet.allow(kind)
    }

    /// Accepts TCP connections on `listener`, forever, within the limits.
    pub async fn serve_tcp(&self, listener: TcpListener) -> Result<(), Error> {
        let c = &self.inner.config;
        let limits = limits::SlotLimits {
            max: c.tcp_max_connections,
            reserved: c.tcp_reserved_connections,
            per_address: c.tcp_connections_per_address,
        };
        let mut tasks = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    if let Some(held) = self.quiet("accept") {
                        warn!(error = %e, held, "TCP accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let ip = peer.ip();
            let entitled = self.allow_listed(ip) || self.inner.signers.knows(ip);
            let slot = match self.inner.slots.admit(ip, entitled, limits) {
                Ok(s) => s,
                Err(why) => {
                    if let Some(held) = self.quiet("tcp-refused") {
                        warn!(%peer, held, "{}; closing", why.as_str());
                    }
                    drop(stream);
                    continue;
                }
            };
            let this = self.clone();
            tasks.spawn(async move {
                this.connection(stream, peer, slot).await;
            });
            while tasks.try_join_next().is_some() {}
        }
    }

    async fn connection(&self, mut stream: TcpStream, peer: SocketAddr, mut slot: limits::Slot) {
        let _ = stream.set_nodelay(true);
        let idle = self.inner.config.tcp_idle_timeout;
        let whole = self.inner.config.tcp_message_timeout.min(idle);
        let mut first = true;
        loop {
            // nothing sent for `idle`: closed
            let mut len = [0u8; 2];
            match tokio::time::timeout(idle, stream.read_exact(&mut len[..1])).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    debug!(%peer, "idle TCP connection closed");
                    return;
                }
            }
            // the rest of the message within `whole` of its first octet
            let deadline = tokio::time::Instant::now() + whole;
            match tokio::time::timeout_at(deadline, stream.read_exact(&mut len[1..])).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let len = usize::from(u16::from_be_bytes(len));
            if !(HEADER_LEN..=MAX_TCP_QUERY).contains(&len) {
                debug!(%peer, len, "TCP message length out of bounds; closing");
                return;
            }
            let mut query = vec![0u8; len];
            match tokio::time::timeout_at(deadline, stream.read_exact(&mut query)).await {
                Ok(Ok(_)) => {}
                _ => {
                    debug!(%peer, "TCP message not received in time; closing");
                    return;
                }
            }
            let (reply, signed) = self.respond_classified(&query, peer, Transport::Tcp).await;
            // the first message decides the connection's class
            if first && signed {
                slot.entitle();
            }
            first = false;
            match reply {
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
                            self.emit(peer.ip(), t.key_name(), Transport::Tcp, t.observed(false));
                            return;
                        }
                        // Building messages is CPU work: let other tasks run.
                        tokio::task::yield_now().await;
                    }
                    if let Some(e) = &t.failed {
                        warn!(%peer, error = %e, "zone source failed during a transfer; aborted");
                        self.emit(peer.ip(), t.key_name(), Transport::Tcp, t.observed(false));
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
                    self.emit(peer.ip(), t.key_name(), Transport::Tcp, t.observed(true));
                }
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
