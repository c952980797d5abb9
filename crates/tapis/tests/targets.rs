//! Targets are names, never triggers, and only what cannot be spoofed is
//! compliance evidence — tried against the real `tapis serve`:
//! - an order whose target is an RPZ trigger (`…rpz-client-ip`,
//!   `…rpz-ip`, `…rpz-nsdname`) or sits in the `_tapis` explanation
//!   subtree is refused with 422 naming the target, and the zone file an
//!   ordinary order exports loads in Unbound, blocking that name and
//!   nothing else;
//! - one unsigned UDP IXFR datagram (whose source address anyone can
//!   forge) does not make an ISP `in_sync`;
//! - a burst of forged TSIG packets makes one log line, not one each.
//!
//! Needs `unbound` and `dig` (scripts/setup installs them).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

const CLOCK: &str = "2017-07-14T11:00:00+07:00";

fn order(targets: &[&str]) -> serde_json::Value {
    let mut o = gambling_order(
        "placeholder.example",
        "nxdomain",
        "2017-07-14T11:30:00+07:00",
        "2017-08-14T11:30:00+07:00",
        "2017-08-10T11:30:00+07:00",
    );
    o["targets"] = targets
        .iter()
        .map(|t| json!({"name": t, "include_subdomains": true}))
        .collect();
    o
}

#[tokio::test]
async fn trigger_targets_are_refused_and_the_exported_zone_loads_in_unbound() {
    let server = serve("", CLOCK);
    let p = Parties::new(&server).await;
    for hostile in [
        "32.1.0.0.127.rpz-client-ip",
        "1.0.0.0.0.rpz-ip",
        "com.rpz-nsdname",
        "victim.example._tapis",
    ] {
        let (s, body) = server
            .post(
                "/api/v1/orders",
                &p.officer,
                order(&["fine.example", hostile]),
            )
            .await;
        assert_eq!(s.as_u16(), 422, "{hostile}: {body}");
        let text = body.to_string();
        assert!(text.contains("targets[1]"), "{hostile}: {text}");
    }
    let (s, list) = server.get("/api/v1/orders", &p.officer).await;
    assert_eq!(s.as_u16(), 200, "{list}");
    assert!(
        !list.to_string().contains("rpz-"),
        "nothing was stored: {list}"
    );

    // an ordinary order, in force, exported and loaded by Unbound
    p.approve(&server, order(&["judi.example"])).await;
    server.advance(30 * 60).await;
    let rpz = wait_until_async(
        Duration::from_secs(20),
        "the exported zone to hold the order",
        || async {
            let (_, text, _) = server
                .text("/api/v1/blocklist.rpz", &p.isp_token, None)
                .await;
            if text.contains("judi.example CNAME") {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("rpz.zone"), &rpz).expect("zone");
    std::fs::write(dir.path().join("example.zone"), EXAMPLE_ZONE).expect("zone");
    let port = free_port();
    let conf = dir.path().join("unbound.conf");
    let rpz = format!("    zonefile: \"{d}/rpz.zone\"\n");
    std::fs::write(&conf, unbound_conf(&d, port, "", &rpz)).expect("conf");
    let check = Command::new(tool("unbound-checkconf"))
        .arg(&conf)
        .output()
        .expect("unbound-checkconf");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = dir.path().join("unbound.log");
    let file = std::fs::File::create(&log).expect("log");
    let child = Command::new(tool("unbound"))
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("log")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("start unbound");
    let _unbound = Proc(child);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        Duration::from_secs(20),
        "Unbound to answer from the exported zone",
        || {
            let blocked = dns::status(port, "www.judi.example");
            let open = dns::addresses(port, "canary.example");
            if blocked == "NXDOMAIN" && open == "192.0.2.1" {
                Ok(())
            } else {
                Err(format!("{blocked} / {open:?}\n{}", log_text()))
            }
        },
    );
    assert_eq!(dns::status(port, "judi.example"), "NXDOMAIN");
    assert!(!log_text().contains("error"), "{}", log_text());
}

/// An IXFR request from a secondary that holds `serial`.
fn ixfr(id: u16, serial: u32) -> Vec<u8> {
    let zone = tapis_dns::wire::Name::from_ascii("rpz.tapis.").expect("name");
    tapis_dns::xfr::query(id, &zone, tapis_dns::wire::rtype::IXFR, Some(serial))
}

#[tokio::test]
async fn one_unsigned_udp_ixfr_is_not_compliance_evidence() {
    // the secondary is on loopback and transfers unsigned by the allow list
    let server = serve("[channel]\nallow_private_targets = true\n", CLOCK);
    let p = Parties::new(&server).await;
    p.register(
        &server,
        json!({"resolvers": [], "notify": [], "allow_transfer_from": ["127.0.0.1"]}),
    )
    .await;
    p.approve(&server, order(&["judi.example"])).await;
    server.advance(30 * 60).await;
    let port = server.dns_port;
    let serial = wait_until(Duration::from_secs(20), "the order in the zone", || {
        dns::soa_serial(port, "rpz.tapis.").filter(|s| *s >= 1)
    });
    let zone_sync = || async {
        let (s, c) = server.get("/api/v1/compliance", &p.officer).await;
        assert_eq!(s.as_u16(), 200, "{c}");
        c[0]["zone_sync"].clone()
    };
    // the poll count, as the API says it ("3 polls")
    let polls = |z: &serde_json::Value| -> i64 {
        z["last_poll"]["detail"]
            .as_str()
            .and_then(|d| d.split(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = wait_until_async(Duration::from_secs(20), "the poll recorded", || async {
        let z = zone_sync().await;
        if polls(&z) > 0 {
            Ok(z)
        } else {
            Err(z.to_string())
        }
    })
    .await;

    // "I hold the current serial", in one unsigned datagram whose source
    // anyone can forge: answered, but not evidence
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    udp.send_to(&ixfr(41, serial), ("127.0.0.1", port))
        .expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = udp.recv_from(&mut buf).expect("answered");
    assert!(n > 12);
    // a poll after it: once it is recorded, the IXFR before it was seen
    dns::soa_serial(port, "rpz.tapis.").expect("SOA");
    let after = wait_until_async(
        Duration::from_secs(20),
        "the next poll recorded",
        || async {
            let z = zone_sync().await;
            if polls(&z) > polls(&before) {
                Ok(z)
            } else {
                Err(z.to_string())
            }
        },
    )
    .await;
    assert_eq!(after["status"], "never", "{after}");
    assert!(after["last_transfer"].is_null(), "{after}");

    // the same over TCP (the handshake proves the address): in sync
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let q = ixfr(42, serial);
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&q);
    tcp.write_all(&frame).expect("send");
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).expect("answer");
    let z = wait_until_async(Duration::from_secs(20), "in sync by TCP", || async {
        let z = zone_sync().await;
        if z["status"] == "in_sync" {
            Ok(z)
        } else {
            Err(z.to_string())
        }
    })
    .await;
    assert_eq!(z["held_serial"].as_i64(), Some(i64::from(serial)), "{z}");
}

#[test]
fn a_burst_of_forged_packets_logs_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let dns_port = free_port();
    let mut child = server()
        .command(dir.path(), dns_port)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tapis serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let proc = Proc(child);
    wait_until(Duration::from_secs(20), "the primary to answer", || {
        dns::soa_serial(dns_port, "rpz.tapis.")
    });

    // 300 requests signed with a key the primary does not know (BADKEY),
    // as fast as they go
    let stranger =
        tapis_dns::TsigKey::new("nobody.", "hmac-sha256", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=")
            .expect("key");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let zone = tapis_dns::wire::Name::from_ascii("rpz.tapis.").expect("name");
    let mut buf = [0u8; 4096];
    for id in 0..300u16 {
        let mut q = tapis_dns::xfr::query(id, &zone, tapis_dns::wire::rtype::SOA, None);
        tapis_dns::tsig::sign_request(&mut q, &stranger, tapis_dns::tsig::unix_now());
        udp.send_to(&q, ("127.0.0.1", dns_port)).expect("send");
        // each answered NOTAUTH (BADKEY)
        let (n, _) = udp.recv_from(&mut buf).expect("answered");
        assert_eq!(buf[3] & 0x0f, 9, "NOTAUTH");
        assert!(n > 12);
    }
    drop(proc);
    let mut log = String::new();
    stderr.read_to_string(&mut log).expect("read stderr");
    let lines = log
        .lines()
        .filter(|l| l.contains("TSIG check failed"))
        .count();
    assert_eq!(lines, 1, "{log}");
}
