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

/// The DNS status BIND gives for `name` (NOERROR, NXDOMAIN, …).
fn status(bind_port: u16, name: &str) -> String {
    let out = Command::new(tool("dig"))
        .args([
            "@127.0.0.1",
            "-p",
            &bind_port.to_string(),
            name,
            "A",
            "+tries=1",
            "+time=2",
            "+noall",
            "+comments",
        ])
        .output()
        .expect("dig");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_owned()
}

fn wait_status(bind_port: u16, name: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = status(bind_port, name);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "BIND still says {got} for {name} after {within:?} (wanted {want})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_enforces_orders_at_their_time_and_drops_them_at_expiry() {
    // probe the ISP's resolver every second; fine.example must stay clear
    let server = Server::start(
        // the ISP's BIND runs on loopback: a lab, so private targets are allowed
        "[channel]\nallow_private_targets = true\n[compliance]\nprobe_interval_secs = 1\nsample = 10\ncanaries = [\"fine.example\"]\n",
        "2017-07-14T11:00:00+07:00",
    );
    let dns_port = server.dns_port;
    let bind_port = free_port();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;

    // parties and tokens
    let authority = server.authority().await;
    let isp = server.party("isp", "NetCo").await;
    let officer = server.token(&authority, "officer").await;
    let approver = server.token(&authority, "approver").await;
    let isp_token = server.token(&isp, "isp_operator").await;

    // the ISP registers its secondary and gets its TSIG key
    let (s, r) = server.call(put, &format!("/api/v1/parties/{isp}/resolvers"), &isp_token, Some(json!({"resolvers": [format!("127.0.0.1:{bind_port}")], "notify": [format!("127.0.0.1:{bind_port}")]}))).await;
    assert_eq!(s, 200, "{r}");
    let key_name = r["tsig_key_name"]
        .as_str()
        .expect("key")
        .trim_end_matches('.')
        .to_owned();
    let secret = r["tsig_secret"].as_str().expect("secret").to_owned();

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
    std::fs::write(bdir.path().join("example.db"), "$TTL 60\n@ SOA ns.example. host.example. 1 60 60 600 60\n@ NS ns.example.\nns A 192.0.2.53\n* A 192.0.2.1\n").expect("zone");
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
    let start = Instant::now();
    while !std::fs::read_to_string(bdir.path().join("named.log"))
        .unwrap_or_default()
        .contains("running")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "named did not start: {}",
            std::fs::read_to_string(bdir.path().join("named.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // nothing is blocked yet (BIND answers SERVFAIL until its first
    // transfer of the policy zone has landed)
    wait_status(
        bind_port,
        "judi.example",
        "NOERROR",
        Duration::from_secs(15),
    );

    // two orders from 11:30 (UTC+7); one expires a week later, one is lifted
    let order = |name: &str, expires: &str, review: &str| {
        json!({"targets": [{"name": name, "include_subdomains": true}], "action": "nxdomain", "category": "gambling",
               "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
               "effective_at": "2017-07-14T11:30:00+07:00", "expires_at": expires, "review_at": review})
    };
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
        let (s, o) = server
            .call(
                post.clone(),
                "/api/v1/orders",
                &officer,
                Some(order(name, expires, review)),
            )
            .await;
        assert_eq!(s, 201, "{o}");
        let id = o["id"].as_str().expect("id").to_owned();
        let (s, o) = server
            .call(
                post.clone(),
                &format!("/api/v1/orders/{id}/approve"),
                &approver,
                Some(json!({})),
            )
            .await;
        assert_eq!((s, o["state"].as_str()), (200, Some("scheduled")), "{o}");
        ids.push(id);
    }

    // 11:30 comes: both in force (a serial each), NOTIFY, and BIND enforces
    let (s, _) = server
        .call(
            post.clone(),
            "/api/v1/admin/clock/advance",
            ADMIN,
            Some(json!({"seconds": 30 * 60})),
        )
        .await;
    assert_eq!(s, 200);
    let enforced = wait_status(
        bind_port,
        "www.judi.example",
        "NXDOMAIN",
        Duration::from_secs(15),
    );
    assert_eq!(status(bind_port, "slot.example"), "NXDOMAIN");
    assert_eq!(
        status(bind_port, "fine.example"),
        "NOERROR",
        "no over-blocking"
    );
    println!("order effective -> BIND enforcing: {enforced:?} (NOTIFY, IXFR)");

    // the prober sees it too: every sampled name enforced, the canary clear
    let start = Instant::now();
    let probe = loop {
        let (_, c) = server
            .call(get.clone(), "/api/v1/compliance", &officer, None)
            .await;
        let p = c[0]["probes"][0].clone();
        if p["serial"].as_i64() == c[0]["current_serial"].as_i64()
            && p["enforced"].as_i64() == Some(5)
        {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no clean probe yet: {c}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    let start = Instant::now();
    let sync = loop {
        let (_, c) = server
            .call(get.clone(), "/api/v1/compliance", &officer, None)
            .await;
        let z = c[0]["zone_sync"].clone();
        if z["status"] == "in_sync" && z["last_notify"]["complete"] == true {
            assert_eq!(z["held_serial"], c[0]["current_serial"], "{z}");
            break z;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "BIND not seen in sync: {c}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    let (s, o) = server
        .call(
            post.clone(),
            &format!("/api/v1/orders/{}/lift", ids[1]),
            &officer,
            Some(json!({"reason": "content removed"})),
        )
        .await;
    assert_eq!((s, o["state"].as_str()), (200, Some("lifted")), "{o}");
    let lifted = wait_status(
        bind_port,
        "slot.example",
        "NOERROR",
        Duration::from_secs(15),
    );
    assert_eq!(status(bind_port, "judi.example"), "NXDOMAIN");
    println!("order lifted -> BIND no longer enforcing: {lifted:?}");

    // a week later the first expires on its own
    let (s, _) = server
        .call(
            post.clone(),
            "/api/v1/admin/clock/advance",
            ADMIN,
            Some(json!({"seconds": 7 * 86_400})),
        )
        .await;
    assert_eq!(s, 200);
    wait_status(
        bind_port,
        "judi.example",
        "NOERROR",
        Duration::from_secs(15),
    );
    let (_, o) = server
        .call(get, &format!("/api/v1/orders/{}", ids[0]), &officer, None)
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
