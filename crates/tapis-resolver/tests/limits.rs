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

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use tapis_dns::wire::rtype;
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
    let running = rt
        .block_on(tapis_resolver::start(cfg))
        .expect("resolver starts");
    let dns = running.udp_addr;
    let metrics = running.metrics_addr.expect("metrics");
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
