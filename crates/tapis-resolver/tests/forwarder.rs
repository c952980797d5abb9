//! The resolver end to end over real sockets: a policy zone from a file,
//! a small authoritative upstream for `test.` in this process, a DNS client
//! in the test. Every policy action on the wire, EDE, the cache (positive
//! and negative), TC and TCP, forged upstream answers, failover, metrics,
//! a zone file edited while serving, malformed input.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use tapis_dns::wire::rtype;
use tapis_resolver::Config;

const ZONE: &str = "$TTL 60
@ SOA ns.rpz.local. admin.rpz.local. 7 60 60 600 45
  NS ns.rpz.local.
blocked.test CNAME .
nodata.test CNAME *.
pass.test CNAME rpz-passthru.
*.pass.test CNAME .
drop.test CNAME rpz-drop.
tcp.test CNAME rpz-tcp-only.
garden-me.test CNAME garden.test.
local.test A 10.10.10.10
local.test TXT \"blocked by order ORD-1\"
*.wild.test CNAME .
blocked.test._tapis TXT \"ref=ORD-2026-0042 cat=censored\"
";

struct Setup {
    rt: tokio::runtime::Runtime,
    upstream: Upstream,
    dns: SocketAddr,
    metrics: SocketAddr,
    running: Option<tapis_resolver::Running>,
    dir: tempfile::TempDir,
}

fn setup(upstreams_before: Vec<SocketAddr>) -> Setup {
    let rt = runtime(2);
    let dir = tempfile::tempdir().expect("tmp");
    let zfile = dir.path().join("policy.rpz");
    std::fs::write(&zfile, ZONE).expect("zone");
    let upstream = rt.block_on(Upstream::start());
    let mut upstreams = upstreams_before;
    upstreams.push(upstream.addr);
    let cfg = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().join("data"),
        threads: 2,
        upstreams,
        upstream_timeout_ms: 400,
        lookup_url: Some("https://tapis.example/lookup".into()),
        zones: vec![file_zone("rpz.local", &zfile, 60)],
        ..Config::default()
    };
    let (running, dns, metrics) = start_resolver(&rt, cfg);
    wait_for(Duration::from_secs(10), "the policy zone to load", || {
        udp(
            dns,
            &query("blocked.test", rtype::A, false),
            Duration::from_millis(500),
        )
        .is_some_and(|a| summary(&a).rcode == 3)
    });
    Setup {
        rt,
        upstream,
        dns,
        metrics,
        running: Some(running),
        dir,
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

fn ask(dns: SocketAddr, name: &str, qtype: u16, edns: bool) -> Summary {
    let a = udp(dns, &query(name, qtype, edns), Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no answer for {name}"));
    summary(&a)
}

#[test]
fn policy_actions_on_the_wire() {
    let s = setup(vec![]);
    let dns = s.dns;

    // NXDOMAIN with the policy zone's SOA; EDE with the order reference
    // (only for EDNS clients)
    let a = ask(dns, "blocked.test", rtype::A, true);
    assert_eq!(a.rcode, 3);
    assert!(a.answers.is_empty());
    assert_eq!(a.authority_types, vec![rtype::SOA]);
    assert_eq!(
        a.ede,
        Some((
            16,
            "ORD-2026-0042; see https://tapis.example/lookup?name=blocked.test".into()
        ))
    );
    let a = ask(dns, "BLOCKED.test", rtype::AAAA, false);
    assert_eq!(a.rcode, 3);
    assert!(!a.has_opt);

    // NODATA; EDE 15 (Blocked) without text when the zone has no reference
    let a = ask(dns, "nodata.test", rtype::A, true);
    assert_eq!((a.rcode, a.answers.len()), (0, 0));
    assert_eq!(a.authority_types, vec![rtype::SOA]);
    assert_eq!(a.ede, Some((15, String::new())));

    // PASSTHRU: the real answer, exact beats the wildcard under it
    let a = ask(dns, "pass.test", rtype::A, true);
    assert_eq!(a.answers[0].3, vec![192, 0, 2, 81]);
    assert_eq!(a.ede, None);
    assert_eq!(ask(dns, "x.pass.test", rtype::A, false).rcode, 3);

    // DROP: no answer at all
    assert!(
        udp(
            dns,
            &query("drop.test", rtype::A, true),
            Duration::from_millis(700)
        )
        .is_none()
    );

    // TCP-only: TC over UDP, the real answer over TCP
    let a = ask(dns, "tcp.test", rtype::A, true);
    assert!(a.tc);
    assert!(a.answers.is_empty());
    let a = summary(&tcp(dns, &query("tcp.test", rtype::A, true)));
    assert_eq!(a.answers[0].3, vec![192, 0, 2, 82]);

    // local data, by type; a type it lacks is NODATA
    let a = ask(dns, "local.test", rtype::A, true);
    assert_eq!(
        a.answers,
        vec![("local.test.".into(), rtype::A, 60, vec![10, 10, 10, 10])]
    );
    assert_eq!(a.ede.map(|e| e.0), Some(15));
    let a = ask(dns, "local.test", rtype::TXT, false);
    assert_eq!(a.answers[0].1, rtype::TXT);
    let a = ask(dns, "local.test", rtype::AAAA, false);
    assert_eq!((a.rcode, a.answers.len()), (0, 0));

    // CNAME to a walled garden, followed to the garden's address
    let a = ask(dns, "garden-me.test", rtype::A, true);
    assert_eq!(a.rcode, 0);
    assert_eq!(a.answers[0].1, rtype::CNAME);
    assert_eq!(a.answers[0].3, b"\x06garden\x04test\x00".to_vec());
    assert_eq!(
        a.answers[1],
        ("garden.test.".into(), rtype::A, 300, vec![192, 0, 2, 250])
    );
    assert_eq!(a.ede.map(|e| e.0), Some(15));

    // wildcard
    assert_eq!(ask(dns, "a.b.wild.test", rtype::A, false).rcode, 3);
    assert_eq!(ask(dns, "x.wild.test", rtype::A, false).rcode, 3);

    // metrics count the hits by zone and action
    let m = http_get(s.metrics, "/metrics");
    assert!(
        m.contains("tapis_resolver_policy_hits_total{zone=\"rpz.local.\",action=\"nxdomain\"} "),
        "{m}"
    );
    let hits = metric(
        &m,
        "tapis_resolver_policy_hits_total{zone=\"rpz.local.\",action=\"nxdomain\"}",
    );
    assert!(hits >= 5.0, "{hits}");
    assert_eq!(
        metric(&m, "tapis_resolver_zone_serial{zone=\"rpz.local.\"}"),
        7.0
    );
    assert!(http_get(s.metrics, "/other").starts_with("HTTP/1.1 404"));
}

#[test]
fn cache_edns_truncation_and_forged_answers() {
    let s = setup(vec![]);
    let dns = s.dns;
    let before = s.upstream.queries.load(Ordering::SeqCst);
    let a = ask(dns, "www.test", rtype::A, true);
    assert_eq!(a.answers[0].3, vec![192, 0, 2, 80]);
    assert_eq!(a.answers[0].2, 300);
    assert!(a.has_opt);
    assert_eq!(s.upstream.queries.load(Ordering::SeqCst), before + 1);
    // time passes for the cache (its own clock: no sleeping on the real one)
    s.running
        .as_ref()
        .expect("running")
        .handler
        .cache
        .clock()
        .advance(Duration::from_millis(1100));
    // from the cache: no upstream query, the TTL counts down, the client's
    // case and id come back
    let q = query("WwW.TeSt", rtype::A, false);
    let raw = udp(dns, &q, Duration::from_secs(2)).expect("answer");
    assert_eq!(&raw[..2], &q[..2]);
    assert_eq!(
        &raw[12..12 + 10],
        &q[12..12 + 10],
        "question as the client wrote it"
    );
    let a = summary(&raw);
    assert!(a.answers[0].2 < 300, "ttl {}", a.answers[0].2);
    assert!(!a.has_opt);
    assert_eq!(s.upstream.queries.load(Ordering::SeqCst), before + 1);

    // negative caching (RFC 2308): NXDOMAIN once upstream, then cached
    assert_eq!(ask(dns, "nothing.test", rtype::A, false).rcode, 3);
    let n = s.upstream.queries.load(Ordering::SeqCst);
    let a = ask(dns, "nothing.test", rtype::A, false);
    assert_eq!(a.rcode, 3);
    assert_eq!(a.authority_types, vec![rtype::SOA]);
    assert_eq!(s.upstream.queries.load(Ordering::SeqCst), n);

    // a large answer: TC to a client without EDNS (512) and with EDNS
    // (1232 here), complete over TCP (the resolver itself went to TCP when
    // the upstream truncated)
    let a = ask(dns, "big.test", rtype::TXT, false);
    assert!(a.tc && a.answers.is_empty());
    let a = ask(dns, "big.test", rtype::TXT, true);
    assert!(a.tc && a.has_opt);
    let a = summary(&tcp(dns, &query("big.test", rtype::TXT, true)));
    assert!(!a.tc);
    assert_eq!(a.answers.len(), 40);

    // forged answers (wrong id, wrong question) are ignored
    let a = ask(dns, "spoof.test", rtype::A, false);
    assert_eq!(a.rcode, 3, "{a:?}");
    assert!(a.answers.is_empty());

    // names the upstream refuses: SERVFAIL (every upstream refused)
    let a = ask(dns, "example.org", rtype::A, false);
    assert_eq!(a.rcode, 2);

    let m = http_get(s.metrics, "/metrics");
    assert!(metric(&m, "tapis_resolver_cache_hits_total") >= 2.0);
    assert!(m.contains("tapis_resolver_upstream_latency_seconds_count"));
}

#[test]
fn fails_over_to_a_live_upstream() {
    // the first upstream never answers
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let s = setup(vec![dead.local_addr().expect("addr")]);
    let dead_up = format!(
        "tapis_resolver_upstream_up{{upstream=\"{}\"}}",
        dead.local_addr().expect("a")
    );
    // upstream-bound questions until the dead one has failed three times
    // and is marked down (each is still answered, by the live one)
    for i in 0..10 {
        let a = udp(
            s.dns,
            &query(&format!("n{i}.test"), rtype::A, false),
            Duration::from_secs(3),
        );
        assert!(a.is_some(), "answered through the live upstream");
        if metric(&http_get(s.metrics, "/metrics"), &dead_up) == 0.0 {
            break;
        }
    }
    assert_eq!(metric(&http_get(s.metrics, "/metrics"), &dead_up), 0.0);
    // from now on the dead one is not asked first: drain what it got, ask,
    // and check that it did not see the question (a health probe for
    // `. NS` may reach it; the query may not)
    let mut buf = [0u8; 1500];
    dead.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while dead.recv_from(&mut buf).is_ok() {}
    let a = ask(s.dns, "garden.test", rtype::A, false);
    assert_eq!(a.answers[0].3, vec![192, 0, 2, 250]);
    dead.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut seen = Vec::new();
    while let Ok((n, _)) = dead.recv_from(&mut buf) {
        seen.push(buf[..n].to_vec());
    }
    assert!(
        seen.iter().all(|m| !m.windows(6).any(|w| w == b"garden")),
        "the upstream marked down was asked first: {seen:?}"
    );
}

#[test]
fn a_changed_zone_file_is_picked_up() {
    let s = setup(vec![]);
    let zfile = s.dir.path().join("policy.rpz");
    assert_eq!(ask(s.dns, "www.test", rtype::A, false).rcode, 0);
    let changed = ZONE
        .replace("7 60 60", "8 60 60")
        .replace("blocked.test CNAME .", "www.test CNAME .");
    std::fs::write(&zfile, changed).expect("write");
    wait_for(Duration::from_secs(10), "the new policy", || {
        ask(s.dns, "www.test", rtype::A, false).rcode == 3
    });
    // removed from the zone: answered normally again
    assert_eq!(ask(s.dns, "blocked.test", rtype::A, false).rcode, 0);
    // a broken file keeps the last good policy
    std::fs::write(&zfile, "$TTL 60\n@ SOA broken\n").expect("write");
    // the fact that the broken file was read and refused: its failure is
    // counted; only then is "the policy stays" worth asserting
    wait_for(
        Duration::from_secs(10),
        "the broken file to be refused",
        || {
            let m = http_get(s.metrics, "/metrics");
            metric(
                &m,
                "tapis_resolver_zone_transfers_total{zone=\"rpz.local.\",result=\"failed\"}",
            ) >= 1.0
        },
    );
    assert_eq!(ask(s.dns, "www.test", rtype::A, false).rcode, 3);
}

#[test]
fn malformed_messages_get_formerr_or_nothing() {
    let s = setup(vec![]);
    let dns = s.dns;
    // a response is never answered
    let mut r = query("www.test", rtype::A, false);
    r[2] |= 0x80;
    assert!(udp(dns, &r, Duration::from_millis(300)).is_none());
    // too short
    assert!(udp(dns, &[1, 2, 3], Duration::from_millis(300)).is_none());
    // trailing garbage: FORMERR with the question
    let mut t = query("www.test", rtype::A, false);
    t.extend_from_slice(b"junk");
    let a = udp(dns, &t, Duration::from_secs(1)).expect("formerr");
    assert_eq!(a[3] & 0xF, 1);
    assert_eq!(&a[..2], &t[..2]);
    // unknown opcode: NOTIMP
    let mut u = query("www.test", rtype::A, false);
    u[2] = (u[2] & 0x87) | (2 << 3);
    let a = udp(dns, &u, Duration::from_secs(1)).expect("notimp");
    assert_eq!(a[3] & 0xF, 4);
    // EDNS version 1: BADVERS
    let mut v = query("www.test", rtype::A, true);
    let n = v.len();
    v[n - 5] = 1;
    let a = udp(dns, &v, Duration::from_secs(1)).expect("badvers");
    let opt_ttl_hi = a[a.len() - 6];
    assert_eq!(opt_ttl_hi, 1, "extended rcode 16 >> 4");
    // AXFR from a resolver: REFUSED
    let a = summary(&tcp(dns, &query("rpz.local", rtype::AXFR, false)));
    assert_eq!(a.rcode, 5);
    // still alive
    assert_eq!(ask(dns, "blocked.test", rtype::A, false).rcode, 3);
}
