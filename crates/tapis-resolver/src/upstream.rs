//! Forwarding to upstream resolvers: each query goes out from a fresh UDP
//! socket (a random source port chosen by the kernel) with a random id,
//! connected to the upstream so the kernel drops datagrams from anyone
//! else, and an answer is taken only if its id and question match ours
//! exactly; anything else is ignored while we keep waiting. A truncated
//! answer is asked again over TCP.
//!
//! Upstreams are tried in configured order, healthy ones first; three
//! failures in a row mark one down, and a background check brings it back
//! when it answers again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tapis_dns::wire::{HEADER_LEN, Rcode, flags, rtype};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::metrics::Metrics;

pub struct Upstream {
    pub addr: SocketAddr,
    healthy: AtomicBool,
    failures: AtomicU32,
}

pub struct Upstreams {
    list: Vec<Upstream>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no upstream answered")]
    NoAnswer,
}

impl Upstreams {
    pub fn new(addrs: &[SocketAddr], timeout: Duration, metrics: Arc<Metrics>) -> Upstreams {
        Upstreams {
            list: addrs
                .iter()
                .map(|&addr| Upstream {
                    addr,
                    healthy: AtomicBool::new(true),
                    failures: AtomicU32::new(0),
                })
                .collect(),
            timeout,
            metrics,
        }
    }

    pub fn list(&self) -> &[Upstream] {
        &self.list
    }

    pub fn is_healthy(&self, i: usize) -> bool {
        self.list
            .get(i)
            .is_some_and(|u| u.healthy.load(Ordering::Relaxed))
    }

    /// Asks the upstreams (healthy first, in order) for `qname` (wire,
    /// uncompressed) and returns the first matching answer that is not
    /// REFUSED or SERVFAIL-by-every-upstream.
    pub async fn query(
        &self,
        qname: &[u8],
        qtype: u16,
        qclass: u16,
    ) -> Result<Vec<u8>, UpstreamError> {
        let healthy = (0..self.list.len()).filter(|&i| self.is_healthy(i));
        let down = (0..self.list.len()).filter(|&i| !self.is_healthy(i));
        let order: Vec<usize> = healthy.chain(down).collect();
        let mut fallback = None;
        for i in order {
            let u = &self.list[i];
            let start = Instant::now();
            match exchange(u.addr, qname, qtype, qclass, self.timeout).await {
                Ok(answer) => {
                    self.metrics.upstream_latency(i, start.elapsed());
                    u.failures.store(0, Ordering::Relaxed);
                    u.healthy.store(true, Ordering::Relaxed);
                    let rcode = answer[3] & 0xF;
                    if rcode == Rcode::REFUSED.0 as u8 || rcode == Rcode::SERVFAIL.0 as u8 {
                        fallback.get_or_insert(answer);
                        continue;
                    }
                    return Ok(answer);
                }
                Err(e) => {
                    self.metrics.upstream_failure(i);
                    tracing::debug!(upstream = %u.addr, error = %e, "upstream did not answer");
                    let f = u.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if f >= 3 && u.healthy.swap(false, Ordering::Relaxed) {
                        tracing::warn!(upstream = %u.addr, "upstream marked down after {f} failures");
                    }
                }
            }
        }
        fallback.ok_or(UpstreamError::NoAnswer)
    }

    /// Probes upstreams marked down (`. NS`); one that answers is up again.
    pub async fn check_down(&self) {
        for u in &self.list {
            if u.healthy.load(Ordering::Relaxed) {
                continue;
            }
            if exchange(u.addr, b"\x00", rtype::NS, 1, self.timeout)
                .await
                .is_ok()
            {
                u.failures.store(0, Ordering::Relaxed);
                u.healthy.store(true, Ordering::Relaxed);
                tracing::info!(upstream = %u.addr, "upstream answers again");
            }
        }
    }
}

fn build_query(id: u16, qname: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(qname.len() + 32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&flags::RD.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    // OPT: 1232 bytes (the DNS flag day 2020 size), no DO
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
    q
}

/// Whether `answer` answers our query: a response, same id, opcode QUERY,
/// one question equal to ours (name compared without case, written plainly
/// at offset 12 so the question can be swapped for the client's).
pub fn matches(answer: &[u8], id: u16, qname: &[u8], qtype: u16, qclass: u16) -> bool {
    if answer.len() < HEADER_LEN + qname.len() + 4 {
        return false;
    }
    let u = |i: usize| u16::from_be_bytes([answer[i], answer[i + 1]]);
    if u(0) != id || u(2) & flags::QR == 0 || (u(2) >> 11) & 0xF != 0 || u(4) != 1 {
        return false;
    }
    let end = HEADER_LEN + qname.len();
    answer[HEADER_LEN..end].eq_ignore_ascii_case(qname) && u(end) == qtype && u(end + 2) == qclass
}

/// The question an exchange asks and expects answered.
#[derive(Clone, Copy)]
struct Asked<'a> {
    qname: &'a [u8],
    qtype: u16,
    qclass: u16,
}

impl Asked<'_> {
    /// A fresh id and the query carrying it.
    fn query(&self) -> (u16, Vec<u8>) {
        let id: u16 = rand::random();
        (id, build_query(id, self.qname, self.qtype, self.qclass))
    }

    fn answered_by(&self, answer: &[u8], id: u16) -> bool {
        matches(answer, id, self.qname, self.qtype, self.qclass)
    }
}

async fn exchange(
    addr: SocketAddr,
    qname: &[u8],
    qtype: u16,
    qclass: u16,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let asked = Asked {
        qname,
        qtype,
        qclass,
    };
    let (id, query) = asked.query();
    let sock = UdpSocket::bind(tapis_dns::xfr::any_local(addr)).await?;
    sock.connect(addr).await?;
    sock.send(&query).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    // we advertise 1232 bytes; a server that sends more than 4096 over UDP
    // gets a parse failure, not a 64 KiB buffer on every query
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out",
                ));
            }
        };
        let answer = &buf[..n];
        if !asked.answered_by(answer, id) {
            continue;
        }
        if answer[2] & (flags::TC >> 8) as u8 != 0 {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            return tcp_exchange(addr, asked, left.max(Duration::from_millis(500))).await;
        }
        buf.truncate(n);
        return Ok(buf);
    }
}

async fn tcp_exchange(
    addr: SocketAddr,
    asked: Asked<'_>,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let (id, query) = asked.query();
    let work = async {
        let mut s = TcpStream::connect(addr).await?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        s.write_all(&framed).await?;
        loop {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut answer).await?;
            if asked.answered_by(&answer, id) {
                return Ok(answer);
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out over TCP",
        )),
    }
}
