//! Interop with BIND 9 as the RPZ primary: `named` serves a copy of
//! HaGeZi's Pro mini RPZ (a zone file nobody here wrote; the test kit's
//! excerpt, `tapis_testkit::data("blocklists/hagezi-pro-mini.rpz")`) with TSIG; the resolver loads it by AXFR, enforces it, takes BIND's
//! NOTIFY after an edit and applies the change by IXFR
//! (`ixfr-from-differences`), keeps a snapshot that a restart serves from
//! while the primary is down, and refuses a transfer signed with a wrong
//! key. Needs `named` (.ci/run installs bind9); the test fails, it does not
//! skip, when it is missing.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tapis_dns::wire::rtype;
use tapis_resolver::{Config, ZoneConfig};

const SECRET: &str = "aW50ZXJvcC10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI=";
/// A third-party policy zone: the test kit's excerpt (its source and
/// licence are in the kit's `data/blocklists/README.md`).
fn hagezi() -> String {
    let path = tapis_testkit::data("blocklists/hagezi-pro-mini.rpz");
    std::fs::read_to_string(&path).expect("the kit's hagezi-pro-mini.rpz")
}

fn start_named(dir: &Path, port: u16, notify_port: u16) -> Proc {
    let d = dir.display();
    let conf = format!(
        r#"options {{
    directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key"; managed-keys-directory "{d}";
    listen-on {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
    recursion no; dnssec-validation no;
    notify explicit; also-notify {{ 127.0.0.1 port {notify_port}; }}; notify-delay 0;
    ixfr-from-differences yes;
}};
controls {{ }};
key "resolver-key" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "rpz.hagezi" {{ type primary; file "hagezi.rpz"; allow-transfer {{ key "resolver-key"; }}; }};
"#
    );
    std::fs::write(dir.join("named.conf"), conf).expect("conf");
    let log = std::fs::File::create(dir.join("named.log")).expect("log");
    let child = Command::new(tool("named"))
        .args(["-g", "-4", "-c"])
        .arg(dir.join("named.conf"))
        .args(["-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start named");
    let named = Proc(child);
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
        if log.contains("running") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "named did not start:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    named
}

fn zone(primary: SocketAddr, secret: &str) -> ZoneConfig {
    ZoneConfig {
        name: "rpz.hagezi".into(),
        primary: Some(primary),
        file: None,
        tsig_key_name: Some("resolver-key".into()),
        tsig_algorithm: "hmac-sha256".into(),
        tsig_secret: Some(secret.into()),
        min_refresh_secs: 1,
        max_refresh_secs: 30,
        file_poll_secs: 1,
    }
}

/// Starts the resolver on `listen`, following BIND at `primary` with the
/// key secret `secret`, keeping its snapshot in `data`.
fn start_resolver(
    rt: &tokio::runtime::Runtime,
    listen: SocketAddr,
    data: &Path,
    upstream: SocketAddr,
    primary: SocketAddr,
    secret: &str,
) -> tapis_resolver::Running {
    let config = Config {
        listen,
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: data.to_path_buf(),
        threads: 2,
        upstreams: vec![upstream],
        upstream_timeout_ms: 500,
        zones: vec![zone(primary, secret)],
        ..Config::default()
    };
    rt.block_on(tapis_resolver::start(config))
        .expect("resolver starts")
}

fn rcode(dns: SocketAddr, name: &str) -> u16 {
    udp(dns, &query(name, rtype::A, false), Duration::from_secs(3))
        .map(|a| summary(&a).rcode)
        .unwrap_or(999)
}

fn metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics")
}

/// What both tests start from: a runtime, the upstream for `test.`, BIND
/// serving `zone_text` as its primary, the address the resolver will
/// listen on and its data directory.
struct Env {
    rt: tokio::runtime::Runtime,
    upstream: Upstream,
    bdir: tempfile::TempDir,
    named: Proc,
    primary: SocketAddr,
    listen: SocketAddr,
    data: tempfile::TempDir,
}

fn env(zone_text: &str) -> Env {
    let rt = runtime(2);
    let upstream = rt.block_on(Upstream::start());
    let bdir = tempfile::tempdir().expect("tmp");
    std::fs::write(bdir.path().join("hagezi.rpz"), zone_text).expect("copy zone");
    let (bind_port, dns_port) = (free_port(), free_port());
    let named = start_named(bdir.path(), bind_port, dns_port);
    Env {
        rt,
        upstream,
        bdir,
        named,
        primary: ([127, 0, 0, 1], bind_port).into(),
        listen: ([127, 0, 0, 1], dns_port).into(),
        data: tempfile::tempdir().expect("tmp"),
    }
}

#[test]
fn follows_bind_by_axfr_then_ixfr_and_restarts_from_its_snapshot() {
    let original = hagezi();
    // the triggers the zone holds: one entry per name (`x` and `*.x` share)
    let names: HashSet<String> = original
        .lines()
        .filter(|l| l.contains(" CNAME "))
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_start_matches("*.")
                .to_ascii_lowercase()
        })
        .collect();
    let Env {
        rt,
        upstream,
        bdir,
        named,
        primary,
        listen,
        data,
    } = env(&original);

    let running = start_resolver(&rt, listen, data.path(), upstream.addr, primary, SECRET);
    let maddr = running.metrics_addr.expect("metrics");
    wait_for(Duration::from_secs(60), "the AXFR from BIND", || {
        rcode(listen, "smetrics.abbott") == 3
    });
    // exact and wildcard triggers of the third-party zone
    assert_eq!(rcode(listen, "www.smetrics.abbott"), 3);
    assert_eq!(rcode(listen, "commissionkings.ag"), 3);
    assert_eq!(rcode(listen, "a.b.commissionkings.ag"), 3);
    // not in the zone: forwarded (the upstream serves test.)
    assert_eq!(rcode(listen, "www.test"), 0);
    let m = metrics(maddr);
    assert_eq!(
        metric(&m, "tapis_resolver_zone_entries{zone=\"rpz.hagezi.\"}") as usize,
        names.len()
    );
    assert_eq!(
        metric(&m, "tapis_resolver_zone_serial{zone=\"rpz.hagezi.\"}"),
        1787386260.0
    );
    assert_eq!(
        metric(
            &m,
            "tapis_resolver_zone_updates_total{zone=\"rpz.hagezi.\",kind=\"axfr\"}"
        ),
        1.0
    );

    // edit the zone: a name removed, two added, serial bumped; BIND makes
    // the IXFR from the difference and NOTIFYs us
    let edited = original
        .replace("1787386260", "1787386261")
        .replace("smetrics.abbott CNAME .\n*.smetrics.abbott CNAME .\n", "")
        + "www.test CNAME .\n*.pass.test CNAME *.\n";
    std::fs::write(bdir.path().join("hagezi.rpz"), edited).expect("edit");
    let status = Command::new("kill")
        .args(["-HUP", &named.0.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let start = Instant::now();
    wait_for(Duration::from_secs(30), "the IXFR after NOTIFY", || {
        rcode(listen, "www.test") == 3
    });
    let took = start.elapsed();
    assert_ne!(
        rcode(listen, "smetrics.abbott"),
        3,
        "a deleted trigger must stop"
    );
    assert_ne!(rcode(listen, "x.smetrics.abbott"), 3);
    let a = summary(
        &udp(
            listen,
            &query("x.pass.test", rtype::A, false),
            Duration::from_secs(3),
        )
        .expect("answer"),
    );
    assert_eq!((a.rcode, a.answers.len()), (0, 0), "NODATA");
    assert_eq!(
        rcode(listen, "commissionkings.ag"),
        3,
        "untouched triggers stay"
    );
    let m = metrics(maddr);
    assert_eq!(
        metric(&m, "tapis_resolver_zone_serial{zone=\"rpz.hagezi.\"}"),
        1787386261.0
    );
    assert_eq!(
        metric(
            &m,
            "tapis_resolver_zone_updates_total{zone=\"rpz.hagezi.\",kind=\"ixfr\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tapis_resolver_zone_updates_total{zone=\"rpz.hagezi.\",kind=\"axfr\"}"
        ),
        1.0
    );
    eprintln!("BIND edit to enforcement: {took:?}");

    // stop, stop the primary, restart from the snapshot alone
    rt.block_on(running.shutdown());
    drop(named);
    assert!(
        data.path().join("rpz.hagezi.rpz").exists(),
        "snapshot written"
    );
    let running = start_resolver(&rt, listen, data.path(), upstream.addr, primary, SECRET);
    wait_for(Duration::from_secs(30), "the snapshot to load", || {
        rcode(listen, "www.test") == 3
    });
    assert_eq!(rcode(listen, "commissionkings.ag"), 3);
    assert_ne!(rcode(listen, "smetrics.abbott"), 3);
    rt.block_on(running.shutdown());
}

#[test]
fn a_wrong_tsig_secret_gets_no_zone() {
    let original = hagezi();
    // BIND and its directory live to the end of the test
    let Env {
        rt,
        upstream,
        bdir: _bdir,
        named: _named,
        primary,
        listen,
        data,
    } = env(&original);
    let wrong = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=";
    let running = start_resolver(&rt, listen, data.path(), upstream.addr, primary, wrong);
    let maddr = running.metrics_addr.expect("metrics");
    wait_for(Duration::from_secs(20), "a failed transfer", || {
        metric(
            &metrics(maddr),
            "tapis_resolver_zone_transfers_total{zone=\"rpz.hagezi.\",result=\"failed\"}",
        ) >= 1.0
    });
    assert_ne!(rcode(listen, "smetrics.abbott"), 3);
    assert_eq!(rcode(listen, "www.test"), 0, "still forwarding");
    rt.block_on(running.shutdown());
}
