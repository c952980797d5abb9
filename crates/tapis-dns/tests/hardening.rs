//! The primary's trust boundaries, tried as an attacker would:
//! - targets that are RPZ triggers rather than names never reach a zone
//!   file or a transfer (and what does reach one loads in BIND's
//!   `named-checkzone` with exactly the names accepted as policy owners);
//! - idle TCP connections from strangers cannot lock out a TSIG-signed or
//!   allow-listed transfer, and connections that send nothing, or send a
//!   message too slowly, are closed;
//! - a signed request is accepted once: its replay gets BADTIME;
//! - only TCP or TSIG-signed exchanges are evidence of what a secondary
//!   holds (an unsigned UDP IXFR is answered, not believed);
//! - NOTIFY is never sent to a private or special-purpose address (the
//!   cloud metadata service, loopback, …) unless that is allowed.
//!
//! On Linux all of 127/8 reaches the loopback interface, so "another
//! address" is 127.0.0.2, 127.0.0.3, ….

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tapis_core::order::{OrderAction, check_blockable};
use tapis_core::target::DomainName;

use tapis_dns::wire::{Rcode, TsigRcode, rtype};
use tapis_dns::{IpNet, MemoryZone, Observed, PrimaryConfig, Transport};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// What the API refuses (core's rule) and a row from elsewhere could still
/// hold: each a trigger on clients, answers or name servers, or a name in
/// the explanation subtree.
const HOSTILE: [&str; 6] = [
    "32.1.0.0.127.rpz-client-ip",
    "1.0.0.0.0.rpz-ip",
    "com.rpz-nsdname",
    "32.1.0.0.127.rpz-nsip",
    "victim.example._tapis",
    "rpz-drop.example",
];

#[test]
fn the_zone_writer_leaves_out_triggers() {
    // 240 octets: a name core accepts, too long beside `._tapis.rpz.tapis.`
    let long = format!(
        "{}.{}.example",
        vec!["a".repeat(60); 3].join("."),
        "b".repeat(49)
    );
    assert_eq!(long.len(), 240);
    let mut owners: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    owners.extend(HOSTILE.iter().map(|s| format!("*.{s}")));
    owners.push(long.clone());
    owners.push("Upper.Example".into());
    owners.push("x CNAME rpz-passthru.\nevil.example".into());
    owners.push("ok.example".into());
    owners.push("*.ok.example".into());
    let zone = tapis_dns::render_rpz(
        &zone_config(),
        3,
        owners.iter().map(|o| {
            (
                o.as_str(),
                OrderAction::Nxdomain,
                Some("ref=ORD-1 cat=censored"),
            )
        }),
    );
    let policy: Vec<&str> = zone
        .lines()
        .filter(|l| l.contains(" CNAME "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(policy, ["ok.example", "*.ok.example"], "{zone}");
    assert!(
        !zone.contains("rpz-client-ip") && !zone.contains("evil"),
        "{zone}"
    );
    assert!(
        zone.contains(&format!("; {} owner(s) left out", owners.len() - 2)),
        "{zone}"
    );
    for o in HOSTILE {
        assert!(tapis_dns::check_owner(o, "rpz.tapis.").is_err(), "{o}");
    }
    let err = tapis_dns::check_owner(&long, "rpz.tapis.").expect_err("too long");
    assert!(err.contains("255"), "{err}");
    tapis_dns::check_owner(&long, "z.").expect("fits under a short zone name");
}

#[tokio::test]
async fn transfers_leave_out_triggers() {
    let mut records: Vec<(String, OrderAction)> = HOSTILE
        .iter()
        .map(|s| (s.to_string(), OrderAction::Nxdomain))
        .collect();
    records.push(("ok.example".into(), OrderAction::Nxdomain));
    records.push(("*.ok.example".into(), OrderAction::Nxdomain));
    let zone = Arc::new(MemoryZone::new(5, records));
    let server = start(default_config(), zone).await;
    let (q, v) = signed(query(7, ZONE, rtype::AXFR, None), &key(), None);
    let messages = transfer(server.addr, &q, Some(v)).await;
    let owners: BTreeSet<String> = all_answers(&messages)
        .into_iter()
        .filter(|r| r.rtype == rtype::CNAME)
        .map(|r| r.owner)
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from([format!("ok.example.{ZONE}"), format!("*.ok.example.{ZONE}")])
    );
}

/// Labels an attacker (or an unlucky list) would put in a target.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,8}",
        1 => "[0-9]{1,3}",
        1 => "[a-z0-9]{1,4}-[a-z0-9]{1,4}",
        1 => "_[a-z]{1,6}",
        1 => Just("rpz-ip".to_owned()),
        1 => Just("rpz-client-ip".to_owned()),
        1 => Just("rpz-nsdname".to_owned()),
        1 => Just("rpz-nsip".to_owned()),
        1 => "rpz-[a-z]{0,6}",
        1 => Just("RPZ-IP".to_owned()),
        1 => Just("_tapis".to_owned()),
        1 => Just("_TAPIS".to_owned()),
        1 => Just("bücher".to_owned()),
        1 => Just("xn--bcher-kva".to_owned()),
        1 => Just("ünïcödé-rpz".to_owned()),
        1 => Just("a".repeat(63)),
        1 => "[a-z]{55,63}",
        1 => Just("-bad".to_owned()),
    ]
}

/// A target as a person or a hostile list writes it, and whether it
/// covers subdomains.
fn target() -> impl Strategy<Value = (String, bool)> {
    (
        prop::collection::vec(label(), 1..6),
        prop_oneof![Just("example"), Just("com"), Just("test"), Just("rpz-ip")],
        any::<bool>(),
    )
        .prop_map(|(labels, tld, sub)| (format!("{}.{tld}", labels.join(".")), sub))
}

/// The octets of `<owner>._tapis.<zone>` on the wire.
fn explained_len(owner: &str) -> usize {
    format!("{owner}._tapis.{ZONE}").len() + 1
}

/// Runs BIND's checker on `text` as zone `rpz.tapis.`: the owners of its
/// CNAMEs (relative, lowercase) as BIND loaded them.
fn bind_loads(text: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("rpz.zone");
    std::fs::write(&file, text).expect("write zone");
    let out = std::process::Command::new(tapis_testkit::tool("named-checkzone"))
        .args(["-D", "-o", "-", ZONE])
        .arg(&file)
        .output()
        .expect("run named-checkzone");
    assert!(
        out.status.success(),
        "named-checkzone refused the zone:\n{}{}\n--- zone ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let suffix = format!(".{ZONE}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[3] == "CNAME").then(|| {
                f[0].to_ascii_lowercase()
                    .strip_suffix(&suffix)
                    .unwrap_or("?outside the zone?")
                    .to_owned()
            })
        })
        .collect()
}

proptest! {
    // each case runs named-checkzone once: a few dozen cases of a few
    // dozen targets keep this to seconds
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever targets are proposed, the ones core accepts compile into a
    /// zone BIND loads, and its policy owners are exactly those names (and
    /// `*.name` for those with subdomains) that fit beside their
    /// explanation: no trigger, nothing under `_tapis`, nothing else.
    #[test]
    fn hostile_targets_never_become_triggers(targets in prop::collection::vec(target(), 1..40)) {
        // owner → action, as the store keeps them: what core accepts in
        // canonical form, and what it refuses as the raw text (a row that
        // reached the database some other way)
        let mut owners: BTreeMap<String, OrderAction> = BTreeMap::new();
        let mut expected: BTreeSet<String> = BTreeSet::new();
        for (i, (raw, sub)) in targets.iter().enumerate() {
            let action = OrderAction::ALL[i % OrderAction::ALL.len()];
            match DomainName::parse(raw).map(|d| (check_blockable(&d).is_ok(), d)) {
                Ok((true, d)) => {
                    let mut these = vec![d.as_str().to_owned()];
                    if *sub {
                        these.push(format!("*.{}", d.as_str()));
                    }
                    for o in these {
                        if explained_len(&o) <= 255 {
                            expected.insert(o.clone());
                        }
                        owners.insert(o, action);
                    }
                }
                _ => {
                    let raw = raw.to_lowercase();
                    prop_assert!(tapis_dns::check_owner(&raw, ZONE).is_err(), "{raw}");
                    owners.insert(raw.clone(), action);
                    owners.insert(format!("*.{raw}"), action);
                }
            }
        }
        // the name server outside the zone: BIND will not load a zone
        // whose in-zone NS has no address, which is beside the point here
        let config = tapis_dns::ZoneConfig { mname: "ns.tapis.example.".into(), ..zone_config() };
        let text = tapis_dns::render_rpz(
            &config,
            9,
            owners.iter().map(|(o, a)| (o.as_str(), *a, Some("ref=ORD-7 cat=censored"))),
        );
        let loaded = bind_loads(&text);
        prop_assert_eq!(&loaded, &expected, "zone:\n{}", text);
        for o in &loaded {
            let bare = o.strip_prefix("*.").unwrap_or(o);
            prop_assert!(
                !bare.split('.').any(|l| l.starts_with("rpz-") || l == "_tapis"),
                "{}", o
            );
        }
    }
}

fn local(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `addr` from `source` (any port); `None` if the
/// connection is refused.
async fn connect_from(source: IpAddr, addr: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind source");
    socket.connect(addr).await.ok()
}

/// Whether the server has closed `conn` (EOF or reset) within `wait`.
async fn closed(conn: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, conn.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// How many of `conns` the server keeps open.
async fn still_open(conns: &mut [TcpStream]) -> usize {
    // let the server accept (and refuse) what is queued
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut n = 0;
    for c in conns.iter_mut() {
        if !closed(c, Duration::from_millis(5)).await {
            n += 1;
        }
    }
    n
}

/// Opens `per` idle connections from each of `sources`.
async fn hold(
    sources: impl IntoIterator<Item = u8>,
    per: usize,
    addr: SocketAddr,
) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for s in sources {
        for _ in 0..per {
            if let Some(c) = connect_from(local(s), addr).await {
                v.push(c);
            }
        }
    }
    v
}

/// A signed AXFR from `source`: the number of CNAMEs received, `None` if
/// the connection was refused or closed without an answer.
async fn signed_axfr_from(source: IpAddr, addr: SocketAddr) -> Option<usize> {
    // a fresh id each time: the same bytes signed in the same second
    // would be a replay
    static ID: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(100);
    let id = ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (q, _) = signed(query(id, ZONE, rtype::AXFR, None), &key(), None);
    axfr_from(source, addr, &q).await
}

async fn axfr_from(source: IpAddr, addr: SocketAddr, q: &[u8]) -> Option<usize> {
    let mut conn = connect_from(source, addr).await?;
    tcp_send(&mut conn, q).await;
    let mut cnames = 0;
    let mut soas = 0;
    while soas < 2 {
        let m = tcp_recv(&mut conn).await?;
        if rcode(&m) != Rcode::NOERROR {
            return None;
        }
        for r in answers(&m) {
            match r.rtype {
                rtype::SOA => soas += 1,
                rtype::CNAME => cnames += 1,
                _ => {}
            }
        }
    }
    Some(cnames)
}

#[tokio::test]
async fn idle_strangers_do_not_lock_out_signed_or_allowed_transfers() {
    let zone = Arc::new(MemoryZone::new(5, zone_records(200)));
    let server = start(default_config(), zone).await;
    let addr = server.addr;

    // one stranger holding 256 idle connections gets 8
    let mut attack = hold([2], 256, addr).await;
    assert_eq!(still_open(&mut attack).await, 8);
    assert_eq!(
        signed_axfr_from(local(1), addr).await,
        Some(200),
        "a signed AXFR from another address goes through"
    );

    // strangers at 32 more addresses fill what strangers may share (256 −
    // 32 reserved) and no more
    attack.extend(hold(3..=34, 8, addr).await);
    assert_eq!(still_open(&mut attack).await, 224);
    let mut stranger = connect_from(local(99), addr).await.expect("connect");
    assert!(
        closed(&mut stranger, Duration::from_secs(2)).await,
        "an unsigned stranger finds no room"
    );
    // a peer that proved its key (127.0.0.1, above) uses the reserve
    assert_eq!(signed_axfr_from(local(1), addr).await, Some(200));
    // a new key holder: refused until it signs a request (a secondary
    // polls the SOA, signed, before it transfers), then let in
    let newcomer = local(77);
    assert_eq!(signed_axfr_from(newcomer, addr).await, None);
    let udp = UdpSocket::bind(SocketAddr::new(newcomer, 0))
        .await
        .expect("bind");
    let (q, _) = signed(query(12, ZONE, rtype::SOA, None), &key(), None);
    udp.send_to(&q, addr).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), udp.recv_from(&mut buf))
        .await
        .expect("answered")
        .expect("recv");
    assert_eq!(rcode(&buf[..n]), Rcode::NOERROR);
    assert_eq!(signed_axfr_from(newcomer, addr).await, Some(200));
    // an allow-listed address transfers unsigned
    server.primary.set_access(
        vec![key()],
        vec![IpNet::parse("allow", "127.0.0.88/32").expect("net")],
    );
    assert_eq!(
        axfr_from(local(88), addr, &query(13, ZONE, rtype::AXFR, None)).await,
        Some(200)
    );
    drop(attack);
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed() {
    let mut config: PrimaryConfig = default_config();
    config.tcp_idle_timeout = Duration::from_millis(800);
    config.tcp_message_timeout = Duration::from_millis(300);
    let server = start(config, Arc::new(MemoryZone::new(5, zone_records(5)))).await;

    // sends nothing: closed after the idle timeout
    let mut silent = connect_from(local(1), server.addr).await.expect("connect");
    let t = Instant::now();
    assert!(closed(&mut silent, Duration::from_secs(3)).await);
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(700), "{waited:?}");

    // a message dribbled an octet at a time, each within the idle timeout:
    // closed once the message deadline passes
    let mut slow = connect_from(local(1), server.addr).await.expect("connect");
    let msg = query(3, ZONE, rtype::SOA, None);
    let mut frame = (msg.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&msg);
    let t = Instant::now();
    let mut cut = None;
    for b in frame {
        use tokio::io::AsyncWriteExt;
        if slow.write_all(&[b]).await.is_err()
            || closed(&mut slow, Duration::from_millis(100)).await
        {
            cut = Some(t.elapsed());
            break;
        }
    }
    let cut = cut.expect("closed before the whole message arrived");
    assert!(
        cut >= Duration::from_millis(250) && cut < Duration::from_millis(800),
        "{cut:?}"
    );
}

#[tokio::test]
async fn a_signed_request_is_accepted_once() {
    let server = start(
        default_config(),
        Arc::new(MemoryZone::new(5, zone_records(20))),
    )
    .await;
    let (q, _) = signed(query(21, ZONE, rtype::SOA, None), &key(), None);
    let first = udp(server.addr, &q).await.expect("answer");
    assert_eq!(rcode(&first), Rcode::NOERROR);
    assert!(tsig_of(&first).is_some_and(|(e, _)| e == TsigRcode::NOERROR));
    let again = udp(server.addr, &q).await.expect("answer");
    assert_eq!(rcode(&again), Rcode::NOTAUTH);
    assert_eq!(tsig_of(&again).map(|(e, _)| e), Some(TsigRcode::BADTIME));

    // a captured AXFR request, replayed from elsewhere, transfers nothing
    let (q, _) = signed(query(22, ZONE, rtype::AXFR, None), &key(), None);
    assert_eq!(axfr_from(local(1), server.addr, &q).await, Some(20));
    assert_eq!(axfr_from(local(66), server.addr, &q).await, None);
    // signed afresh, it is a new request
    assert_eq!(signed_axfr_from(local(66), server.addr).await, Some(20));
}

#[tokio::test]
async fn notify_is_not_sent_to_private_addresses_unless_allowed() {
    let listener = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let target = listener.local_addr().expect("addr");
    let metadata: SocketAddr = "169.254.169.254:80".parse().expect("addr");
    for to in [
        target,
        metadata,
        "[::ffff:10.0.0.1]:53".parse().expect("addr"),
    ] {
        let t = Instant::now();
        let r = tapis_dns::send_notify(to, &zone_config(), 3, Some(&key())).await;
        assert!(
            matches!(r, Err(tapis_dns::Error::PrivateTarget(a)) if a == to),
            "{to}: {r:?}"
        );
        assert!(t.elapsed() < Duration::from_millis(100), "no tries: {to}");
    }
    let mut buf = [0u8; 512];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.recv_from(&mut buf))
            .await
            .is_err(),
        "nothing reached the loopback target"
    );
    // allowed (a test, or secondaries on the operator's own network): sent
    let options = tapis_dns::NotifyOptions {
        tries: 1,
        first_timeout: Duration::from_millis(100),
        allow_private_targets: true,
        ..Default::default()
    };
    let r = tapis_dns::send_notify_with(target, &zone_config(), 3, None, &options).await;
    assert!(matches!(r, Err(tapis_dns::Error::NoAnswer { .. })), "{r:?}");
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), listener.recv_from(&mut buf))
        .await
        .expect("the NOTIFY arrived")
        .expect("recv");
    assert!(n > 12);
}

#[tokio::test]
async fn only_tcp_or_signed_exchanges_are_evidence() {
    let mut config = default_config();
    config.allow_unsigned_transfer = vec![IpNet::parse("allow", "127.0.0.1/32").expect("net")];
    let server = start(config, Arc::new(MemoryZone::new(4, zone_records(20)))).await;
    let mut seen = server.primary.observe();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .expect("an observation in time")
            .expect("open")
    };
    let up_to_date = Observed::Transfer {
        kind: "IXFR",
        from: Some(4),
        serial: 4,
        complete: true,
    };

    // one unsigned UDP datagram (its source could be forged): answered,
    // reported as what it is, and not evidence
    let a = udp(server.addr, &query(31, ZONE, rtype::IXFR, Some(4)))
        .await
        .expect("answer");
    assert_eq!(rcode(&a), Rcode::NOERROR);
    let o = next().await;
    assert_eq!(
        (o.transport, o.signed, &o.event),
        (Transport::Udp, false, &up_to_date)
    );
    assert!(!o.is_evidence());
    // an unsigned UDP SOA poll: not evidence either (only the latest poll)
    udp(server.addr, &query(32, ZONE, rtype::SOA, None))
        .await
        .expect("answer");
    let o = next().await;
    assert!(matches!(o.event, Observed::SoaPoll { serial: 4 }) && !o.is_evidence());

    // signed over UDP: evidence (the key proves who asked)
    let (q, _) = signed(query(33, ZONE, rtype::IXFR, Some(4)), &key(), None);
    udp(server.addr, &q).await.expect("answer");
    let o = next().await;
    assert_eq!(
        (o.transport, o.signed, &o.event),
        (Transport::Udp, true, &up_to_date)
    );
    assert!(o.is_evidence());

    // unsigned over TCP from the allow list: evidence (the handshake
    // proves the address)
    let messages = transfer(server.addr, &query(34, ZONE, rtype::IXFR, Some(4)), None).await;
    assert_eq!(messages.len(), 1);
    let o = next().await;
    assert_eq!(
        (o.transport, o.signed, &o.event),
        (Transport::Tcp, false, &up_to_date)
    );
    assert!(o.is_evidence());
}
