//! Limits a stranger meets: `allow_query` (clients outside it are
//! REFUSED over UDP and TCP), the cap on upstream queries in flight with
//! identical questions coalesced (a slow upstream under a random-name
//! flood keeps the resolver's open files bounded, and policy and cache
//! answers keep coming), and response-rate limiting (a burst from one
//! address is dropped or slipped, another address is answered).
//!
//! Every client is on loopback: Linux answers on all of 127/8, so
//! 127.0.0.2 and 127.0.1.1 play other clients.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tapis_dns::wire::{Message, rtype};
use tapis_resolver::Config;

const ZONE: &str = "$TTL 60
@ SOA ns.rpz.local. admin.rpz.local. 7 60 60 600 45
blocked.test CNAME .
";

const REFUSED: u16 = 5;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

struct Setup {
    rt: tokio::runtime::Runtime,
    dns: SocketAddr,
    metrics: SocketAddr,
    running: Option<tapis_resolver::Running>,
    _dir: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

/// A resolver with the policy zone above, forwarding to `upstream` (the
/// `test.` upstream of `common` unless given), configured further by `f`.
fn setup(upstream: Option<SocketAddr>, f: impl FnOnce(&mut Config)) -> Setup {
    let rt = runtime(2);
    let dir = tempfile::tempdir().expect("tmp");
    let zfile = dir.path().join("policy.rpz");
    std::fs::write(&zfile, ZONE).expect("zone");
    let upstream = match upstream {
        Some(u) => u,
        None => rt.block_on(Upstream::start()).addr,
    };
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().join("data"),
        threads: 2,
        upstreams: vec![upstream],
        upstream_timeout_ms: 1500,
        zones: vec![file_zone("rpz.local", &zfile, 60)],
        ..Config::default()
    };
    f(&mut cfg);
    let (running, dns, metrics) = start_resolver(&rt, cfg);
    wait_for(Duration::from_secs(10), "the policy zone to load", || {
        running.policies().zone(0).is_some_and(|z| !z.is_empty())
    });
    Setup {
        rt,
        dns,
        metrics,
        running: Some(running),
        _dir: dir,
    }
}

#[test]
fn clients_outside_allow_query_are_refused_over_udp_and_tcp() {
    let s = setup(None, |c| {
        c.allow_query = vec!["127.0.0.1/32".parse().expect("cidr")];
    });
    let wait = Duration::from_secs(3);
    for name in ["www.test", "blocked.test"] {
        let q = query(name, rtype::A, true);
        // outside: REFUSED, no data, over UDP and TCP
        let a = summary(&udp_from(ip("127.0.0.2"), s.dns, &q, wait).expect("udp answer"));
        assert_eq!(a.rcode, REFUSED, "{name} over UDP from 127.0.0.2");
        assert!(a.answers.is_empty());
        let a = summary(&s.rt.block_on(tcp_from(ip("127.0.0.2"), s.dns, &q)));
        assert_eq!(a.rcode, REFUSED, "{name} over TCP from 127.0.0.2");
        assert!(a.answers.is_empty());
    }
    // inside: answered
    let q = query("www.test", rtype::A, true);
    let a = summary(&udp_from(ip("127.0.0.1"), s.dns, &q, wait).expect("udp answer"));
    assert_eq!((a.rcode, a.answers[0].3.clone()), (0, vec![192, 0, 2, 80]));
    let a = summary(&s.rt.block_on(tcp_from(ip("127.0.0.1"), s.dns, &q)));
    assert_eq!(a.rcode, 0);
    let q = query("blocked.test", rtype::A, true);
    let a = summary(&udp_from(ip("127.0.0.1"), s.dns, &q, wait).expect("udp answer"));
    assert_eq!(a.rcode, 3);
    let m = http_get(s.metrics, "/metrics");
    assert_eq!(metric(&m, "tapis_resolver_refused_clients_total"), 4.0);
}

#[test]
fn the_default_allow_query_is_loopback_and_private_ranges_only() {
    let c = Config::default();
    let listed: Vec<String> = c.allow_query.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        listed,
        [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fe80::/10"
        ]
    );
    let toml = Config::from_toml(
        "upstreams = [\"127.0.0.1:53\"]\nallow_query = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n",
    )
    .expect("config");
    assert_eq!(toml.allow_query.len(), 2);
    assert!(
        Config::from_toml("allow_query = [\"192.0.2.1/24\"]\n").is_err(),
        "host bits set"
    );
    let empty =
        Config::from_toml("upstreams = [\"127.0.0.1:53\"]\nallow_query = []\n").expect("parses");
    assert!(
        empty.check().is_err(),
        "an empty allow_query answers no one"
    );
}

/// An upstream for the flood: `never-*` is never answered, `slow-*` after
/// a second, anything else at once (one A record); counts queries by name.
struct SlowUpstream {
    addr: SocketAddr,
    asked: Arc<Mutex<HashMap<String, u32>>>,
}

async fn slow_upstream() -> SlowUpstream {
    let sock = Arc::new(
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind"),
    );
    let addr = sock.local_addr().expect("addr");
    let asked = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let counts = asked.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, src)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(m) = Message::parse(&buf[..n]) else {
                continue;
            };
            let Some(question) = m.questions.first().cloned() else {
                continue;
            };
            let name = question.name.to_string().to_ascii_lowercase();
            *counts
                .lock()
                .expect("counts")
                .entry(name.clone())
                .or_default() += 1;
            if name.starts_with("never-") {
                continue;
            }
            let a = a_answer(m.header.id, &question, &[192, 0, 2, 1]);
            let sock = sock.clone();
            let delay = if name.starts_with("slow-") { 1000 } else { 0 };
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _ = sock.send_to(&a, src).await;
            });
        }
    });
    SlowUpstream { addr, asked }
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Asks until an answer comes (a burst may fill the resolver's receive
/// queue), at most `tries` times.
fn ask_during(dns: SocketAddr, name: &str, tries: usize) -> Summary {
    for _ in 0..tries {
        if let Some(a) = udp(
            dns,
            &query(name, rtype::A, false),
            Duration::from_millis(700),
        ) {
            return summary(&a);
        }
    }
    panic!("no answer for {name} in {tries} tries");
}

#[test]
fn a_slow_upstream_under_a_random_name_flood_keeps_files_bounded_and_answers_flowing() {
    const CAP: usize = 200;
    // the upstream on its own runtime, kept to the end of the test
    let upstream_rt = runtime(1);
    let up = upstream_rt.block_on(slow_upstream());
    let s = setup(Some(up.addr), |c| {
        c.max_upstream_queries = CAP;
        c.upstream_timeout_ms = 2000;
    });

    // a cached name
    let a = ask_during(s.dns, "cached.test", 1);
    assert_eq!((a.rcode, a.answers.len()), (0, 1));

    // 100 concurrent identical questions: one upstream query, 100 answers
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(4)))
        .expect("t");
    for i in 0..100u16 {
        let mut q = query("slow-same.test", rtype::A, false);
        q[..2].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&q, s.dns).expect("send");
    }
    let mut buf = [0u8; 4096];
    let mut ids = std::collections::HashSet::new();
    while ids.len() < 100 {
        let (n, _) = sock.recv_from(&mut buf).expect("all 100 answered");
        let a = summary(&buf[..n]);
        assert_eq!((a.rcode, a.answers.len()), (0, 1), "coalesced answer");
        assert_eq!(a.answers[0].0, "slow-same.test.");
        ids.insert(u16::from_be_bytes([buf[0], buf[1]]));
    }
    assert_eq!(up.asked.lock().expect("c")["slow-same.test."], 1);
    let m = http_get(s.metrics, "/metrics");
    assert!(
        metric(&m, "tapis_resolver_upstream_coalesced_total") >= 99.0,
        "{m}"
    );

    // the flood: 20,000 random names the upstream never answers
    let base = open_files();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            while !stop.load(Ordering::SeqCst) {
                max = max.max(open_files());
                std::thread::sleep(Duration::from_millis(5));
            }
            max
        })
    };
    let flood = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    for i in 0..20_000u32 {
        let name = format!("never-{i}-{}.test", rand::random::<u32>());
        let _ = flood.send_to(&query(&name, rtype::A, false), s.dns);
        if i == 10_000 {
            // during the flood, policy and cache answers keep coming
            assert_eq!(ask_during(s.dns, "blocked.test", 5).rcode, 3);
            let a = ask_during(s.dns, "cached.test", 5);
            assert_eq!((a.rcode, a.answers[0].3.clone()), (0, vec![192, 0, 2, 1]));
        }
    }
    assert_eq!(ask_during(s.dns, "blocked.test", 5).rcode, 3);
    let a = ask_during(s.dns, "cached.test", 5);
    assert_eq!((a.rcode, a.answers[0].3.clone()), (0, vec![192, 0, 2, 1]));
    // the flights time out after 2 s: watch the whole of it
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed()));
    stop.store(true, Ordering::SeqCst);
    let max = sampler.join().expect("sampler");
    eprintln!("open files: {base} before the flood, at most {max} during it");
    assert!(
        max <= base + CAP + 64,
        "{max} open files during the flood ({base} before, cap {CAP})"
    );
    let m = http_get(s.metrics, "/metrics");
    assert!(
        metric(&m, "tapis_resolver_upstream_over_cap_total") > 0.0,
        "{m}"
    );
    assert!(
        metric(&m, "tapis_resolver_upstream_in_flight") <= CAP as f64,
        "{m}"
    );
}

#[test]
fn a_burst_from_one_prefix_is_dropped_or_slipped_and_others_are_answered() {
    const RATE: usize = 10;
    let s = setup(None, |c| {
        c.rate_limit = RATE as u32;
        c.rate_limit_slip = 2;
        c.rate_limit_exempt = vec![];
    });
    // 200 queries at once from 127.0.0.2
    let sock = UdpSocket::bind("127.0.0.2:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(800)))
        .expect("t");
    for i in 0..200u16 {
        let mut q = query("blocked.test", rtype::A, true);
        q[..2].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&q, s.dns).expect("send");
    }
    let (mut answered, mut slipped) = (0, 0);
    let mut buf = [0u8; 4096];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        let a = summary(&buf[..n]);
        if a.tc {
            assert!(a.answers.is_empty() && a.authority_types.is_empty());
            slipped += 1;
        } else {
            assert_eq!(a.rcode, 3);
            answered += 1;
        }
    }
    eprintln!("of 200: {answered} answered, {slipped} slipped with TC");
    // a second boundary may fall inside the burst: at most two budgets
    assert!((RATE..=2 * RATE).contains(&answered), "{answered} answered");
    assert!(slipped >= 50, "{slipped} slipped");
    assert!(answered + slipped < 150, "most of the excess is dropped");
    // TCP is not limited
    let q = query("blocked.test", rtype::A, true);
    let a = summary(&s.rt.block_on(tcp_from(ip("127.0.0.2"), s.dns, &q)));
    assert_eq!((a.rcode, a.tc), (3, false));
    // another prefix is answered normally
    for _ in 0..RATE {
        let a = udp_from(ip("127.0.1.1"), s.dns, &q, Duration::from_secs(2)).expect("answer");
        let a = summary(&a);
        assert_eq!((a.rcode, a.tc), (3, false));
    }
    let m = http_get(s.metrics, "/metrics");
    assert!(
        metric(&m, "tapis_resolver_rate_limited_dropped_total") >= 50.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "tapis_resolver_rate_limited_slipped_total"),
        slipped as f64
    );
}
