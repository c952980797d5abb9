//! The edge against a stranger, over real sockets: a client that sends its
//! request head slowly is cut off, one address cannot hold more than its
//! share of connections, and requests without credentials are rate limited
//! per address with a 429 that says when to come back — while a caller
//! with a token, and other addresses, are served.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tapis_core::Clock;
use tapis_http::edge::{Edge, EdgeLimits};
use tapis_http::{AppState, Limits};
use tapis_store::Backend;
use tapis_store::testing::{START, TestDb, clock_at, first_start};

struct Server {
    addr: std::net::SocketAddr,
    admin: String,
    _db: TestDb,
    _serving: common::Serving,
}

async fn start(limits: EdgeLimits) -> Server {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.open(Arc::new(clock_at(START)) as Arc<dyn Clock>).await;
    let boot = first_start(&store).await;
    let mut state = AppState::new(store, Limits::default());
    state.edge = Edge::new(limits);
    let serving = common::serve_state(state).await;
    Server {
        addr: serving.addr,
        admin: boot.admin_secret,
        _db: db,
        _serving: serving,
    }
}

/// Read until the server closes or `limit` passes; returns what was read
/// and whether the server closed.
fn read_until_closed(mut s: TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&out).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off() {
    let server = start(EdgeLimits {
        header_read_timeout: Duration::from_secs(1),
        ..EdgeLimits::default()
    })
    .await;
    let addr = server.addr;
    let (_, closed) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        // Half a request head, then silence: the slowloris pattern.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: tapis\r\n")
            .expect("write");
        // Without a header deadline this connection is held for ever; the
        // generous bound only keeps a broken build from hanging the suite.
        read_until_closed(s, Duration::from_secs(20))
    })
    .await
    .expect("join");
    assert!(
        closed,
        "the server must close a connection whose head never completes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let server = start(EdgeLimits {
        connections_per_address: 3,
        header_read_timeout: Duration::from_secs(60),
        ..EdgeLimits::default()
    })
    .await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        // The fourth is accepted by the kernel and closed by tapis at once.
        let extra = TcpStream::connect(addr).expect("connect");
        let (_, closed) = read_until_closed(extra, Duration::from_secs(20));
        assert!(closed, "a connection over the address's cap is closed");
        // Another loopback address has its own allowance.
        let client = get_from(addr, "127.0.0.2");
        assert!(client.starts_with("HTTP/1.1 200"), "{client}");
        // Once one is released, the address is served again.
        drop(held);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answer = request(addr, None, "/healthz");
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "slots never came back: {answer}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("join");
}

/// One GET from a chosen local address, read to the end.
fn get_from(addr: std::net::SocketAddr, from: &str) -> String {
    let local: std::net::SocketAddr = format!("{from}:0").parse().expect("local");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(local).expect("bind a second loopback address");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let stream = rt.block_on(socket.connect(addr)).expect("connect");
    let std_stream = stream.into_std().expect("std");
    std_stream.set_nonblocking(false).expect("blocking");
    exchange(std_stream, None, "/healthz")
}

fn request(addr: std::net::SocketAddr, token: Option<&str>, path: &str) -> String {
    match TcpStream::connect(addr) {
        Ok(s) => exchange(s, token, path),
        Err(e) => format!("connect failed: {e}"),
    }
}

fn exchange(mut s: TcpStream, token: Option<&str>, path: &str) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: tapis\r\n{auth}Connection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return "write failed".into();
    }
    read_until_closed(s, Duration::from_secs(20)).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_rate_limited_per_address() {
    let server = start(EdgeLimits {
        anonymous_per_minute: 1,
        anonymous_burst: 5,
        ..EdgeLimits::default()
    })
    .await;
    let addr = server.addr;
    let admin = server.admin.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..5 {
            let a = request(addr, None, "/healthz");
            assert!(a.starts_with("HTTP/1.1 200"), "request {i}: {a}");
        }
        let limited = request(addr, None, "/api/v1/lookup?name=judi.example");
        assert!(limited.starts_with("HTTP/1.1 429"), "{limited}");
        let head = limited.to_ascii_lowercase();
        assert!(head.contains("retry-after: "), "{limited}");
        assert!(limited.contains("\"rate_limited\""), "{limited}");
        // A caller with credentials is not spending the anonymous bucket.
        let me = request(addr, Some(&admin), "/api/v1/whoami");
        assert!(me.starts_with("HTTP/1.1 200"), "{me}");
        // Another address has its own bucket.
        let other = get_from(addr, "127.0.0.2");
        assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    })
    .await
    .expect("join");
}
