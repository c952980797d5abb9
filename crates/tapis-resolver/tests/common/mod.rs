//! Test helpers: a small authoritative upstream for `test.`, a DNS client,
//! free ports.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tapis_dns::wire::{
    Message, MessageBuilder, Name, Question, Rcode, Rdata, Section, Soa, class, flags, rtype,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[allow(unused_imports)]
pub use tapis_testkit::{Proc, free_port, tool};

/// The test zone's records: name → (type, rdata).
pub struct Upstream {
    pub addr: SocketAddr,
    pub queries: Arc<AtomicU64>,
}

fn soa() -> Soa {
    Soa {
        mname: Name::from_ascii("ns.test").expect("n"),
        rname: Name::from_ascii("admin.test").expect("n"),
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 30,
    }
}

/// The authoritative answer for one question.
fn answer(q: &[u8]) -> Option<Vec<u8>> {
    let m = Message::parse(q).ok()?;
    let question = m.questions.first()?.clone();
    let name = question.name.to_string().to_ascii_lowercase();
    let records: HashMap<&str, Vec<(u16, Vec<u8>)>> = HashMap::from([
        ("www.test.", vec![(rtype::A, vec![192, 0, 2, 80])]),
        ("pass.test.", vec![(rtype::A, vec![192, 0, 2, 81])]),
        ("tcp.test.", vec![(rtype::A, vec![192, 0, 2, 82])]),
        ("drop.test.", vec![(rtype::A, vec![192, 0, 2, 83])]),
        ("blocked.test.", vec![(rtype::A, vec![192, 0, 2, 84])]),
        ("garden.test.", vec![(rtype::A, vec![192, 0, 2, 250])]),
        ("x.wild.test.", vec![(rtype::A, vec![192, 0, 2, 85])]),
        (
            "big.test.",
            (0..40u8)
                .map(|i| {
                    let mut t = vec![60u8];
                    t.extend(std::iter::repeat_n(b'a' + (i % 26), 60));
                    (rtype::TXT, t)
                })
                .collect(),
        ),
    ]);
    let known = name.ends_with(".test.") || name == "test.";
    let rrs = records.get(name.as_str());
    let rcode = if rrs.is_some() || name == "test." || !known {
        Rcode::NOERROR
    } else {
        Rcode::NXDOMAIN
    };
    let rcode = if known { rcode } else { Rcode::REFUSED };
    let mut b = MessageBuilder::new(m.header.id, flags::QR | flags::AA | rcode.0);
    b.question(&question);
    let mut any = false;
    for (t, d) in rrs.into_iter().flatten() {
        if *t == question.qtype {
            b.record(
                Section::Answer,
                &question.name,
                *t,
                class::IN,
                300,
                Rdata::Raw(d),
            );
            any = true;
        }
    }
    if !any && known {
        b.record(
            Section::Authority,
            &Name::from_ascii("test").expect("n"),
            rtype::SOA,
            class::IN,
            30,
            Rdata::Soa(&soa()),
        );
    }
    Some(b.finish())
}

impl Upstream {
    /// Serves `test.` on a free port (UDP and TCP). `spoof.test` first gets
    /// two forged answers (wrong id, wrong question) before the real one.
    pub async fn start() -> Upstream {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let udp = tokio::net::UdpSocket::bind(addr).await.expect("udp");
        let tcp = tokio::net::TcpListener::bind(addr).await.expect("tcp");
        let queries = Arc::new(AtomicU64::new(0));
        let qc = queries.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let Ok((n, src)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                qc.fetch_add(1, Ordering::SeqCst);
                let q = &buf[..n];
                let Some(mut a) = answer(q) else { continue };
                let is_spoof = Message::parse(q)
                    .ok()
                    .and_then(|m| m.questions.first().map(|q| q.name.to_string()))
                    .is_some_and(|n| n.eq_ignore_ascii_case("spoof.test."));
                if is_spoof {
                    // forged: wrong id
                    let mut f = forged(q, "spoof.test");
                    f[0] ^= 0x55;
                    let _ = udp.send_to(&f, src).await;
                    // forged: right id, other question
                    let f = forged(q, "other.test");
                    let _ = udp.send_to(&f, src).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // UDP answers are cut at 512 (the resolver asks with EDNS
                // 1232; honour it).
                if a.len() > 1232 {
                    a.truncate(12);
                    let q = Message::parse(&buf[..n]).expect("query");
                    let mut b = MessageBuilder::new(q.header.id, flags::QR | flags::AA | flags::TC);
                    b.question(&q.questions[0]);
                    a = b.finish();
                }
                let _ = udp.send_to(&a, src).await;
            }
        });
        let qc = queries.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    continue;
                };
                let qc = qc.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        qc.fetch_add(1, Ordering::SeqCst);
                        let Some(a) = answer(&q) else { return };
                        let mut f = (a.len() as u16).to_be_bytes().to_vec();
                        f.extend_from_slice(&a);
                        if s.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Upstream { addr, queries }
    }
}

fn forged(q: &[u8], name: &str) -> Vec<u8> {
    let m = Message::parse(q).expect("query");
    let question = Question {
        name: Name::from_ascii(name).expect("n"),
        qtype: m.questions[0].qtype,
        qclass: class::IN,
    };
    a_answer(m.header.id, &question, &[6, 6, 6, 6])
}

/// An authoritative answer (id `id`) to `question`: one A record, `addr`,
/// with a TTL of 300.
pub fn a_answer(id: u16, question: &Question, addr: &[u8; 4]) -> Vec<u8> {
    let mut b = MessageBuilder::new(id, flags::QR | flags::AA);
    b.question(question);
    let data = Rdata::Raw(addr);
    b.record(
        Section::Answer,
        &question.name,
        rtype::A,
        class::IN,
        300,
        data,
    );
    b.finish()
}

/// Starts the resolver with `cfg` on `rt`; returns it with its DNS (UDP)
/// and metrics addresses.
pub fn start_resolver(
    rt: &tokio::runtime::Runtime,
    cfg: tapis_resolver::Config,
) -> (tapis_resolver::Running, SocketAddr, SocketAddr) {
    let running = rt
        .block_on(tapis_resolver::start(cfg))
        .expect("resolver starts");
    let dns = running.udp_addr;
    let metrics = running.metrics_addr.expect("metrics");
    (running, dns, metrics)
}

/// A query message.
pub fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut b = MessageBuilder::new(rand::random(), flags::RD);
    b.question(&Question {
        name: Name::from_ascii(name).expect("name"),
        qtype,
        qclass: class::IN,
    });
    if edns {
        b.opt(1232, Rcode::NOERROR);
    }
    b.finish()
}

/// Sends over UDP; the answer, or None after `wait`.
pub fn udp(server: SocketAddr, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.send_to(msg, server).expect("send");
    let mut buf = vec![0u8; 65535];
    let id = &msg[..2];
    loop {
        let (n, _) = s.recv_from(&mut buf).ok()?;
        if &buf[..2] == id {
            return Some(buf[..n].to_vec());
        }
    }
}

pub fn tcp(server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    s.write_all(&f).expect("write");
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("len");
    let mut a = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut a).expect("answer");
    a
}

/// The parts of an answer tests look at.
#[derive(Debug, Clone)]
pub struct Summary {
    pub rcode: u16,
    pub tc: bool,
    /// (owner, type, ttl, rdata) of the answer section
    pub answers: Vec<(String, u16, u32, Vec<u8>)>,
    pub authority_types: Vec<u16>,
    /// EDE info code and text
    pub ede: Option<(u16, String)>,
    pub has_opt: bool,
}

pub fn summary(bytes: &[u8]) -> Summary {
    let m = Message::parse(bytes).expect("answer parses");
    let mut ede = None;
    let mut has_opt = false;
    for r in &m.additional {
        if r.rtype == rtype::OPT {
            has_opt = true;
            let d = m.rdata(r);
            let mut p = 0;
            while p + 4 <= d.len() {
                let code = u16::from_be_bytes([d[p], d[p + 1]]);
                let len = usize::from(u16::from_be_bytes([d[p + 2], d[p + 3]]));
                let v = &d[p + 4..p + 4 + len];
                if code == 15 {
                    ede = Some((
                        u16::from_be_bytes([v[0], v[1]]),
                        String::from_utf8_lossy(&v[2..]).into_owned(),
                    ));
                }
                p += 4 + len;
            }
        }
    }
    Summary {
        rcode: m.header.flags & 0xF,
        tc: m.header.flags & flags::TC != 0,
        answers: m
            .answers
            .iter()
            .map(|r| {
                let d = if r.rtype == rtype::CNAME {
                    tapis_dns::wire::parse_name_rdata(bytes, r.rdata.clone())
                        .expect("cname")
                        .wire()
                        .to_vec()
                } else {
                    m.rdata(r).to_vec()
                };
                (r.name.to_string().to_ascii_lowercase(), r.rtype, r.ttl, d)
            })
            .collect(),
        authority_types: m.authority.iter().map(|r| r.rtype).collect(),
        ede,
        has_opt,
    }
}

/// Polls `f` until it returns true or `within` passes.
pub fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A multi-threaded runtime for a test that drives the resolver from
/// plain threads.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A policy zone read from `file` (polled every second).
pub fn file_zone(name: &str, file: &Path, max_refresh_secs: u32) -> tapis_resolver::ZoneConfig {
    tapis_resolver::ZoneConfig {
        name: name.into(),
        primary: None,
        file: Some(file.to_path_buf()),
        tsig_key_name: None,
        tsig_algorithm: "hmac-sha256".into(),
        tsig_secret: None,
        min_refresh_secs: 1,
        max_refresh_secs,
        file_poll_secs: 1,
    }
}

/// `GET path` on the metrics port; the whole response, head included.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    body
}

/// The value of the sample `name` (with its labels) in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

/// Sends over UDP from a socket bound to `local` (any 127/8 address works
/// on Linux loopback, so a test can play several clients); the answer, or
/// None after `wait`.
pub fn udp_from(
    local: std::net::IpAddr,
    server: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let s = UdpSocket::bind((local, 0)).expect("bind");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.send_to(msg, server).expect("send");
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = s.recv_from(&mut buf).ok()?;
        if buf[..2] == msg[..2] {
            return Some(buf[..n].to_vec());
        }
    }
}

/// One query over TCP from a socket bound to `local`; the answer.
pub async fn tcp_from(local: std::net::IpAddr, server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let s = tokio::net::TcpSocket::new_v4().expect("socket");
    s.bind((local, 0).into()).expect("bind");
    let mut s = s.connect(server).await.expect("connect");
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    s.write_all(&f).await.expect("write");
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
        .await
        .expect("answer in time")
        .expect("len");
    let mut a = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut a).await.expect("answer");
    a
}
