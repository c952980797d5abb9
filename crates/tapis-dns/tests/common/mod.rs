//! A small DNS client for the tests (over the crate's wire module), zone
//! generators and a helper that starts a primary on 127.0.0.1.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tapis_core::order::OrderAction;
use tapis_dns::tsig::{self, ResponseVerifier, TsigKey, unix_now};
use tapis_dns::wire::{Header, Message, Name, Rcode, Soa, flags, parse_name_rdata, rtype};
use tapis_dns::xfr::{Connection, Sequence};
use tapis_dns::{MemoryZone, Primary, PrimaryConfig, ZoneConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const ZONE: &str = "rpz.tapis.";
pub const SECRET: &str = "dGFwaXMtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==";

pub fn zone_config() -> ZoneConfig {
    ZoneConfig {
        block_page_host: "block.tapis.example".into(),
        ..ZoneConfig::default()
    }
}

pub fn key() -> TsigKey {
    TsigKey::new("tapis-xfr.", "hmac-sha256", SECRET).expect("key")
}

/// `n` owners with a mix of actions, wildcards and shared suffixes.
pub fn zone_records(n: usize) -> Vec<(String, OrderAction)> {
    (0..n)
        .map(|i| {
            let base = format!("site{i}.gambling{}.example", i % 97);
            match i % 10 {
                0 => (format!("*.{base}"), OrderAction::Nxdomain),
                1 => (base, OrderAction::WalledGarden),
                2 => (base, OrderAction::Nodata),
                3 => (base, OrderAction::Drop),
                4 => (base, OrderAction::Passthru),
                _ => (base, OrderAction::Nxdomain),
            }
        })
        .collect()
}

pub struct Running {
    pub addr: SocketAddr,
    pub zone: Arc<MemoryZone>,
    pub primary: Primary<Arc<MemoryZone>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a primary for `zone` on 127.0.0.1 (one port for UDP and TCP).
pub async fn start(config: PrimaryConfig, zone: Arc<MemoryZone>) -> Running {
    let (udp, tcp) = tapis_dns::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let primary = Primary::new(config, zone.clone()).expect("primary");
    let p = primary.clone();
    let task = tokio::spawn(async move {
        let _ = p.run(udp, tcp, std::future::pending()).await;
    });
    Running {
        addr,
        zone,
        primary,
        task,
    }
}

pub fn default_config() -> PrimaryConfig {
    let mut c = PrimaryConfig::new(zone_config());
    c.keys = vec![key()];
    c
}

/// A query message (the transfer client's). `ixfr_serial` adds the
/// client's SOA to the authority section.
pub fn query(id: u16, name: &str, qtype: u16, ixfr_serial: Option<u32>) -> Vec<u8> {
    tapis_dns::xfr::query(
        id,
        &Name::from_ascii(name).expect("name"),
        qtype,
        ixfr_serial,
    )
}

/// The zone's CNAMEs as a transfer should show them: (owner, target).
pub fn zone_cnames<C: FromIterator<(String, String)>>(zone: &MemoryZone) -> C {
    zone.records()
        .into_iter()
        .map(|r| {
            (
                format!("{}.{ZONE}", r.owner),
                r.action.rpz_target("block.tapis.example"),
            )
        })
        .collect()
}

/// Signs `msg` with `key` (time `now` unless given).
pub fn signed(mut msg: Vec<u8>, key: &TsigKey, time: Option<u64>) -> (Vec<u8>, ResponseVerifier) {
    let v = tsig::sign_request(&mut msg, key, time.unwrap_or_else(unix_now));
    (msg, v)
}

pub async fn udp(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    s.send_to(msg, addr).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn tcp_send(stream: &mut TcpStream, msg: &[u8]) {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    stream.write_all(&f).await.expect("write");
}

/// Reads one length-prefixed message; `None` at EOF or after 5 s.
pub async fn tcp_recv(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let fut = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut m).await.ok()?;
        Some(m)
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

pub async fn tcp(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    tcp_send(&mut s, msg).await;
    tcp_recv(&mut s).await
}

/// A record as the tests compare them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub owner: String,
    pub rtype: u16,
    pub ttl: u32,
    /// SOA: the serial; CNAME/NS: the target; else hex.
    pub data: String,
}

impl Rec {
    pub fn soa_serial(&self) -> Option<u32> {
        (self.rtype == rtype::SOA).then(|| self.data.parse().expect("serial"))
    }
}

pub fn answers(bytes: &[u8]) -> Vec<Rec> {
    let m = Message::parse(bytes).expect("answer parses");
    m.answers.iter().map(|r| rec(&m, r)).collect()
}

pub fn authority(bytes: &[u8]) -> Vec<Rec> {
    let m = Message::parse(bytes).expect("answer parses");
    m.authority.iter().map(|r| rec(&m, r)).collect()
}

fn rec(m: &Message<'_>, r: &tapis_dns::wire::Record) -> Rec {
    let data = match r.rtype {
        rtype::SOA => Soa::parse(m.bytes, r.rdata.clone())
            .expect("soa")
            .serial
            .to_string(),
        rtype::CNAME | rtype::NS => parse_name_rdata(m.bytes, r.rdata.clone())
            .expect("name")
            .to_string(),
        _ => format!("{:?}", m.rdata(r)),
    };
    Rec {
        owner: r.name.to_string().to_ascii_lowercase(),
        rtype: r.rtype,
        ttl: r.ttl,
        data,
    }
}

pub fn header(bytes: &[u8]) -> Header {
    Header::parse(bytes).expect("header")
}

pub fn rcode(bytes: &[u8]) -> Rcode {
    header(bytes).rcode()
}

pub fn is_authoritative(bytes: &[u8]) -> bool {
    header(bytes).flags & flags::AA != 0
}

/// The TSIG record's error and MAC length, if the message has one.
pub fn tsig_of(bytes: &[u8]) -> Option<(tapis_dns::wire::TsigRcode, usize)> {
    let m = Message::parse(bytes).expect("parse");
    tsig::find_tsig(&m)
        .expect("tsig well placed")
        .map(|t| (t.rdata.error, t.rdata.mac.len()))
}

/// Runs a transfer over TCP with the crate's transfer client; returns the
/// messages. Verifies every message with `verifier` when given (a message
/// that does not verify fails the test). Reading stops at an error RCODE,
/// at the end of the transfer as the client's [`Sequence`] sees it, when
/// the server closes, or after 5 s without a message.
pub async fn transfer(
    addr: SocketAddr,
    msg: &[u8],
    verifier: Option<ResponseVerifier>,
) -> Vec<Vec<u8>> {
    let mut sequence = match Message::parse(msg) {
        Ok(q) => {
            let ours = q
                .authority
                .iter()
                .find(|r| r.rtype == rtype::SOA)
                .and_then(|r| Soa::parse(q.bytes, r.rdata.clone()).ok())
                .map(|s| s.serial);
            let zone = q.questions.first().map_or(Name::root(), |q| q.name.clone());
            Sequence::new(&zone, ours)
        }
        Err(_) => Sequence::new(&Name::root(), None),
    };
    let mut conn = Connection::send(addr, msg, verifier)
        .await
        .expect("connect");
    let mut out = Vec::new();
    loop {
        let m = match tokio::time::timeout(Duration::from_secs(5), conn.next_message()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) | Err(_) => break,
            Ok(Err(e)) => panic!("each message's TSIG verifies: {e}"),
        };
        let single = rcode(&m) != Rcode::NOERROR;
        let parsed = Message::parse(&m).expect("answer parses");
        for r in &parsed.answers {
            let serial = Soa::parse(parsed.bytes, r.rdata.clone()).map_or(0, |s| s.serial);
            // a stream that does not start with the SOA is read to its end
            let _ = sequence.push(&r.name, r.rtype, serial);
        }
        out.push(m);
        if single || sequence.complete().is_some() {
            break;
        }
    }
    out
}

pub fn all_answers(messages: &[Vec<u8>]) -> Vec<Rec> {
    messages.iter().flat_map(|m| answers(m)).collect()
}

/// The CNAME records the zone should hold, as `Rec`s.
pub fn expected_cnames(records: &[(String, OrderAction)], ttl: u32) -> Vec<Rec> {
    let mut v: Vec<Rec> = records
        .iter()
        .map(|(o, a)| Rec {
            owner: format!("{o}.{ZONE}"),
            rtype: rtype::CNAME,
            ttl,
            data: a.rpz_target("block.tapis.example"),
        })
        .collect();
    v.sort();
    v
}
