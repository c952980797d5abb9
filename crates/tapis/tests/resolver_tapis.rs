//! tapis end to end with its own resolver: `tapis serve` (the real binary,
//! on a simulated clock) is the RPZ primary; `tapis resolver` (the real
//! binary) follows it with the TSIG key tapis issued to the ISP, enforces
//! an order at its effective time after the NOTIFY and IXFR, and stops
//! when the order is lifted.

mod common;

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tapis_dns::wire::{MessageBuilder, Name, Question, class, flags, rtype};

/// How long any one change may take to reach the resolver.
const WITHIN: Duration = Duration::from_secs(15);

/// The RCODE the resolver gives for `name` (999: no answer).
fn rcode(port: u16, name: &str) -> u16 {
    let mut b = MessageBuilder::new(rand_id(), flags::RD);
    b.question(&Question {
        name: Name::from_ascii(name).expect("n"),
        qtype: rtype::A,
        qclass: class::IN,
    });
    let q = b.finish();
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(2))).expect("t");
    s.send_to(&q, ("127.0.0.1", port)).expect("send");
    let mut buf = [0u8; 4096];
    match s.recv_from(&mut buf) {
        Ok((n, _)) if n >= 12 && buf[..2] == q[..2] => u16::from(buf[3] & 0xF),
        _ => 999,
    }
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7)
        & 0xFFFF) as u16
}

fn wait_rcode(port: u16, name: &str, want: u16) -> Duration {
    let start = Instant::now();
    wait_until(WITHIN, &format!("rcode {want} for {name}"), || {
        let got = rcode(port, name);
        if got == want {
            Ok(())
        } else {
            Err(format!("rcode {got}"))
        }
    });
    start.elapsed()
}

fn metrics(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").expect("w");
    let mut b = String::new();
    s.read_to_string(&mut b).expect("r");
    b
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_follows_tapis_serve_and_enforces_orders() {
    // the resolver is on loopback: NOTIFY goes there only when allowed
    let server = serve(
        "[channel]\nallow_private_targets = true\n",
        "2017-07-14T11:00:00+07:00",
    );
    let dns_port = server.dns_port;
    let resolver_port = free_port();
    let p = Parties::new(&server).await;

    // the ISP registers its resolver (transfers and NOTIFY) and gets a key
    let resolver = format!("127.0.0.1:{resolver_port}");
    let (key_name, secret) = p
        .register(
            &server,
            json!({"resolvers": [resolver], "notify": [resolver]}),
        )
        .await;

    // the resolver, following rpz.tapis with that key; an upstream that
    // never answers (only policy answers matter here)
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let rdir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        rdir.path().join("resolver.toml"),
        format!(
            "listen = \"127.0.0.1:{resolver_port}\"\nupstreams = [\"{}\"]\nupstream_timeout_ms = 200\nmetrics_listen = \"127.0.0.1:0\"\nthreads = 1\nlookup_url = \"https://tapis.example/api/v1/lookup\"\n[[zone]]\nname = \"rpz.tapis\"\nprimary = \"127.0.0.1:{dns_port}\"\ntsig_key_name = \"{key_name}\"\ntsig_secret = \"{secret}\"\nmin_refresh_secs = 30\n",
            silent.local_addr().expect("a")
        ),
    )
    .expect("config");
    let (_resolver, maddr) = Proc::spawn_reading(
        Command::new(BIN)
            .arg("--config")
            .arg(rdir.path().join("resolver.toml"))
            .arg("--data-dir")
            .arg(rdir.path().join("data"))
            .arg("resolver")
            .env("TAPIS_LOG", "warn"),
        "tapis resolver",
        |line| {
            // the first line says where the metrics are
            Some(
                line.split("http://")
                    .nth(1)
                    .expect("metrics addr")
                    .split('/')
                    .next()
                    .expect("m")
                    .to_owned(),
            )
        },
    );
    // the empty zone is transferred (serial known) before anything is ordered
    wait_until(Duration::from_secs(20), "an AXFR from tapis serve", || {
        let m = metrics(&maddr);
        if m.contains("tapis_resolver_zone_updates_total{zone=\"rpz.tapis.\",kind=\"axfr\"} 1") {
            Ok(())
        } else {
            Err(m)
        }
    });
    assert_ne!(rcode(resolver_port, "judi.example"), 3);

    // an order effective at 11:30 (UTC+7), and one for a walled garden
    let mut ids = Vec::new();
    for (name, action) in [("judi.example", "nxdomain"), ("slot.example", "nxdomain")] {
        let order = gambling_order(
            name,
            action,
            "2017-07-14T11:30:00+07:00",
            "2017-08-14T11:30:00+07:00",
            "2017-08-10T11:30:00+07:00",
        );
        ids.push(p.approve(&server, order).await);
    }
    // approved but not yet in force: once tapis has nothing due and the
    // resolver holds the serial the primary serves, the name still resolves
    server.wait_quiet(WITHIN).await;
    let serial = dns::soa_serial(dns_port, "rpz.tapis").expect("the primary's SOA");
    wait_until(
        WITHIN,
        &format!("the resolver to hold serial {serial}"),
        || {
            let m = metrics(&maddr);
            if metric(&m, "tapis_resolver_zone_serial{zone=\"rpz.tapis.\"} ")
                == Some(u64::from(serial))
            {
                Ok(())
            } else {
                Err(m)
            }
        },
    );
    assert_ne!(rcode(resolver_port, "judi.example"), 3, "not before 11:30");
    server.advance(30 * 60).await;
    // min_refresh is 30 s: within 15 s only the NOTIFY can have done it
    let took = wait_rcode(resolver_port, "www.judi.example", 3);
    assert_eq!(rcode(resolver_port, "judi.example"), 3);
    assert_eq!(rcode(resolver_port, "slot.example"), 3);
    assert_ne!(rcode(resolver_port, "fine.example"), 3, "no over-blocking");
    println!("order effective -> tapis resolver enforcing: {took:?}");

    // the answer explains itself: tapis published the order beside the
    // record (`_tapis` TXT) and the resolver turns it into an Extended DNS
    // Error (RFC 8914) naming the order and the public lookup; dig prints it
    let dig = Command::new(tool("dig"))
        .args([
            "@127.0.0.1",
            "-p",
            &resolver_port.to_string(),
            "www.judi.example",
            "A",
            "+tries=1",
            "+time=3",
        ])
        .output()
        .expect("run dig");
    let text = String::from_utf8_lossy(&dig.stdout);
    assert!(text.contains("status: NXDOMAIN"), "{text}");
    assert!(text.contains("EDE: 16 (Censored)"), "{text}");
    assert!(
        text.contains(&ids[0])
            && text.contains("https://tapis.example/api/v1/lookup?name=www.judi.example"),
        "the EDE names the order and where to check: {text}"
    );

    // lifted: no longer enforced
    p.lift(&server, &ids[1]).await;
    wait_rcode(resolver_port, "slot.example", 2);
    assert_eq!(rcode(resolver_port, "judi.example"), 3);
    let m = metrics(&maddr);
    let ixfr = metric(
        &m,
        "tapis_resolver_zone_updates_total{zone=\"rpz.tapis.\",kind=\"ixfr\"} ",
    )
    .expect("ixfr counter");
    assert!(ixfr >= 2, "changes came by IXFR:\n{m}");
    assert!(
        m.contains("tapis_resolver_zone_updates_total{zone=\"rpz.tapis.\",kind=\"axfr\"} 1"),
        "{m}"
    );
}
