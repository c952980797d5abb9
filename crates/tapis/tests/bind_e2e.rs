//! End to end with a real resolver: `tapis serve` (the real binary, on a
//! simulated clock) is the RPZ primary; BIND 9 is an ISP's secondary with
//! the TSIG key tapis issued. An order going in force at its effective time
//! is enforced by BIND after the NOTIFY; at its expiry (and when another is
//! lifted) BIND stops enforcing it. Needs `named` and `dig` (.ci/run
//! installs bind9, bind9-utils and bind9-dnsutils).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// How long any one change may take to reach BIND.
const WITHIN: Duration = Duration::from_secs(15);

/// Polls until BIND gives `want` for `name`; returns how long that took.
fn wait_status(bind_port: u16, name: &str, want: &str) -> Duration {
    let start = Instant::now();
    wait_until(WITHIN, &format!("BIND to say {want} for {name}"), || {
        let got = dns::status(bind_port, name);
        if got == want { Ok(()) } else { Err(got) }
    });
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_enforces_orders_at_their_time_and_drops_them_at_expiry() {
    // probe the ISP's resolver every second; fine.example must stay clear
    let server = serve(
        // the secondary is on loopback: NOTIFY goes there only when allowed
        "[compliance]\nprobe_interval_secs = 1\nsample = 10\ncanaries = [\"fine.example\"]\n[channel]\nallow_private_targets = true\n",
        "2017-07-14T11:00:00+07:00",
    );
    let dns_port = server.dns_port;
    let bind_port = free_port();

    // parties and tokens
    let p = Parties::new(&server).await;
    let officer = &p.officer;

    // the ISP registers its secondary and gets its TSIG key
    let (key_name, secret) = p
        .register(
            &server,
            json!({"resolvers": [format!("127.0.0.1:{bind_port}")], "notify": [format!("127.0.0.1:{bind_port}")]}),
        )
        .await;
    let key_name = key_name.trim_end_matches('.').to_owned();

    // BIND 9 as that secondary, enforcing the zone
    let bdir = tempfile::tempdir().expect("tmp");
    let d = bdir.path().display().to_string();
    let conf = format!(
        r#"options {{
    directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key"; managed-keys-directory "{d}";
    listen-on {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
    recursion yes; allow-recursion {{ 127.0.0.1; }}; dnssec-validation no; notify no;
    response-policy {{ zone "rpz.tapis" min-update-interval 0; }} qname-wait-recurse no;
}};
controls {{ }};
key "{key_name}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "rpz.tapis" {{ type secondary; primaries {{ 127.0.0.1 port {dns_port} key "{key_name}"; }}; file "rpz.db"; allow-notify {{ 127.0.0.1; }}; }};
zone "example" {{ type primary; file "example.db"; }};
"#
    );
    std::fs::write(bdir.path().join("named.conf"), conf).expect("conf");
    std::fs::write(bdir.path().join("example.db"), EXAMPLE_ZONE).expect("zone");
    let log = std::fs::File::create(bdir.path().join("named.log")).expect("log");
    let _bind = Proc(
        Command::new(tool("named"))
            .args(["-g", "-4", "-c"])
            .arg(bdir.path().join("named.conf"))
            .args(["-p", &bind_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start named"),
    );
    wait_until(Duration::from_secs(20), "named to start", || {
        let log = std::fs::read_to_string(bdir.path().join("named.log")).unwrap_or_default();
        if log.contains("running") {
            Ok(())
        } else {
            Err(log)
        }
    });
    // nothing is blocked yet (BIND answers SERVFAIL until its first
    // transfer of the policy zone has landed)
    wait_status(bind_port, "judi.example", "NOERROR");

    // two orders from 11:30 (UTC+7); one expires a week later, one is lifted
    let mut ids = Vec::new();
    for (name, expires, review) in [
        (
            "judi.example",
            "2017-07-21T11:30:00+07:00",
            "2017-07-21T11:30:00+07:00",
        ),
        (
            "slot.example",
            "2017-08-14T11:30:00+07:00",
            "2017-08-10T11:30:00+07:00",
        ),
    ] {
        let order = gambling_order(
            name,
            "nxdomain",
            "2017-07-14T11:30:00+07:00",
            expires,
            review,
        );
        ids.push(p.approve(&server, order).await);
    }

    // 11:30 comes: both in force (a serial each), NOTIFY, and BIND enforces
    server.advance(30 * 60).await;
    let enforced = wait_status(bind_port, "www.judi.example", "NXDOMAIN");
    assert_eq!(dns::status(bind_port, "slot.example"), "NXDOMAIN");
    assert_eq!(
        dns::status(bind_port, "fine.example"),
        "NOERROR",
        "no over-blocking"
    );
    println!("order effective -> BIND enforcing: {enforced:?} (NOTIFY, IXFR)");

    // the prober sees it too: every sampled name enforced, the canary clear
    let probe = wait_until_async(WITHIN, "a clean probe", || async {
        let (_, c) = server.get("/api/v1/compliance", officer).await;
        let p = c[0]["probes"][0].clone();
        if p["serial"].as_i64() == c[0]["current_serial"].as_i64()
            && p["enforced"].as_i64() == Some(5)
        {
            Ok(p)
        } else {
            Err(c.to_string())
        }
    })
    .await;
    assert_eq!(
        (
            probe["not_enforced"].as_i64(),
            probe["overblocked"].as_i64()
        ),
        (Some(0), Some(0)),
        "{probe}"
    );

    // what the primary saw: BIND holds the current serial (it transferred
    // it after a NOTIFY it answered), and how long the pickup took
    let sync = wait_until_async(WITHIN, "BIND seen in sync", || async {
        let (_, c) = server.get("/api/v1/compliance", officer).await;
        let z = c[0]["zone_sync"].clone();
        if z["status"] == "in_sync" && z["last_notify"]["complete"] == true {
            assert_eq!(z["held_serial"], c[0]["current_serial"], "{z}");
            Ok(z)
        } else {
            Err(c.to_string())
        }
    })
    .await;
    assert!(
        sync["pickup_ms"].as_i64().is_some_and(|ms| ms < 15_000),
        "{sync}"
    );
    assert_eq!(sync["last_notify"]["detail"], "NOERROR", "{sync}");
    assert!(
        sync["last_transfer"]["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("IXFR") || k == "AXFR"),
        "{sync}"
    );
    println!("zone sync as the primary saw it: {sync}");

    // lifted: BIND stops enforcing it
    p.lift(&server, &ids[1]).await;
    let lifted = wait_status(bind_port, "slot.example", "NOERROR");
    assert_eq!(dns::status(bind_port, "judi.example"), "NXDOMAIN");
    println!("order lifted -> BIND no longer enforcing: {lifted:?}");

    // a week later the first expires on its own
    server.advance(7 * 86_400).await;
    wait_status(bind_port, "judi.example", "NOERROR");
    let (_, o) = server
        .get(&format!("/api/v1/orders/{}", ids[0]), officer)
        .await;
    assert_eq!(o["state"], "expired", "{o}");

    // a serial per activation, lift and expiry, each transferred after a NOTIFY
    let log = std::fs::read_to_string(bdir.path().join("named.log")).unwrap_or_default();
    assert!(
        log.contains("rpz.tapis") && log.contains("serial 3"),
        "BIND reached serial 3:\n{log}"
    );
    assert!(
        log.contains("notify from 127.0.0.1"),
        "BIND got NOTIFYs:\n{log}"
    );
}
