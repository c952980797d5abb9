//! tapis end to end with its own resolver: `tapis serve` (the real binary,
//! on a simulated clock) is the RPZ primary; `tapis resolver` (the real
//! binary) follows it with the TSIG key tapis issued to the ISP, enforces
//! an order at its effective time after the NOTIFY and IXFR, and stops
//! when the order is lifted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapis_dns::wire::{MessageBuilder, Name, Question, class, flags, rtype};

const BIN: &str = env!("CARGO_BIN_EXE_tapis");
const ADMIN: &str = "resolver-e2e-admin-token-0123456789";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let port = t.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

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

fn wait_rcode(port: u16, name: &str, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = rcode(port, name);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{name}: still rcode {got} after {within:?}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metrics(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").expect("w");
    let mut b = String::new();
    s.read_to_string(&mut b).expect("r");
    b
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_follows_tapis_serve_and_enforces_orders() {
    let dir = tempfile::tempdir().expect("tmp");
    let dns_port = free_port();
    let resolver_port = free_port();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dns-listen",
            &format!("127.0.0.1:{dns_port}"),
            "--simulated-clock",
            "2017-07-14T11:00:00+07:00",
        ])
        .env("TAPIS_BOOTSTRAP_TOKEN", ADMIN)
        .env("TAPIS_LOG", "warn")
        .env_remove("TAPIS_CONFIG")
        .env_remove("TAPIS_RPZ_DNS_LISTEN")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tapis");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("tapis printed its address")
            .expect("line");
        if let Some(rest) = line.strip_prefix("tapis listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let _tapis = Proc(child);
    let (get, post, put) = (
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
    );

    let (_, me) = call(&base, get.clone(), "/api/v1/whoami", ADMIN, None).await;
    let authority = me["party_id"].as_str().expect("id").to_owned();
    let (_, isp) = call(
        &base,
        post.clone(),
        "/api/v1/parties",
        ADMIN,
        Some(json!({"kind": "isp", "name": "NetCo"})),
    )
    .await;
    let isp = isp["id"].as_str().expect("id").to_owned();
    let mut tokens = Vec::new();
    for (party, role) in [
        (&authority, "officer"),
        (&authority, "approver"),
        (&isp, "isp_operator"),
    ] {
        let body = json!({"role": role, "label": format!("{role} resolver e2e"), "person": role});
        // the authority's own tokens by the admin, the ISP's by invitation
        let path = if party == &authority {
            format!("/api/v1/parties/{party}/tokens")
        } else {
            let (s, inv) = call(
                &base,
                post.clone(),
                &format!("/api/v1/parties/{party}/invitations"),
                ADMIN,
                Some(json!({"role": role})),
            )
            .await;
            assert_eq!(s, 201, "{inv}");
            format!(
                "/api/v1/invitations/{}/accept",
                inv["code"].as_str().expect("code")
            )
        };
        let (s, v) = call(&base, post.clone(), &path, ADMIN, Some(body)).await;
        assert_eq!(s, 201, "{v}");
        tokens.push(v["token"].as_str().expect("token").to_owned());
    }
    let (officer, approver, isp_token) = (&tokens[0], &tokens[1], &tokens[2]);

    // the ISP registers its resolver (transfers and NOTIFY) and gets a key
    let resolver = format!("127.0.0.1:{resolver_port}");
    let (s, r) = call(
        &base,
        put,
        &format!("/api/v1/parties/{isp}/resolvers"),
        isp_token,
        Some(json!({"resolvers": [resolver], "notify": [resolver]})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let key_name = r["tsig_key_name"].as_str().expect("key").to_owned();
    let secret = r["tsig_secret"].as_str().expect("secret").to_owned();

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
    let mut rchild = Command::new(BIN)
        .arg("--config")
        .arg(rdir.path().join("resolver.toml"))
        .arg("--data-dir")
        .arg(rdir.path().join("data"))
        .arg("resolver")
        .env("TAPIS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start resolver");
    let mut rout = BufReader::new(rchild.stdout.take().expect("stdout"));
    let mut line = String::new();
    rout.read_line(&mut line).expect("line");
    let maddr = line
        .split("http://")
        .nth(1)
        .expect("metrics addr")
        .split('/')
        .next()
        .expect("m")
        .to_owned();
    let _resolver = Proc(rchild);
    // the empty zone is transferred (serial known) before anything is ordered
    let start = Instant::now();
    while !metrics(&maddr)
        .contains("tapis_resolver_zone_updates_total{zone=\"rpz.tapis.\",kind=\"axfr\"} 1")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no AXFR from tapis serve:\n{}",
            metrics(&maddr)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(rcode(resolver_port, "judi.example"), 3);

    // an order effective at 11:30 (UTC+7), and one for a walled garden
    let mut ids = Vec::new();
    for (name, action) in [("judi.example", "nxdomain"), ("slot.example", "nxdomain")] {
        let (s, o) = call(&base, post.clone(), "/api/v1/orders", officer, Some(json!({
            "targets": [{"name": name, "include_subdomains": true}], "action": action, "category": "gambling",
            "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
            "effective_at": "2017-07-14T11:30:00+07:00", "expires_at": "2017-08-14T11:30:00+07:00", "review_at": "2017-08-10T11:30:00+07:00"}))).await;
        assert_eq!(s, 201, "{o}");
        let id = o["id"].as_str().expect("id").to_owned();
        let (s, o) = call(
            &base,
            post.clone(),
            &format!("/api/v1/orders/{id}/approve"),
            approver,
            Some(json!({})),
        )
        .await;
        assert_eq!((s, o["state"].as_str()), (200, Some("scheduled")), "{o}");
        ids.push(id);
    }
    // approved but not yet in force
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(rcode(resolver_port, "judi.example"), 3, "not before 11:30");
    let (s, _) = call(
        &base,
        post.clone(),
        "/api/v1/admin/clock/advance",
        ADMIN,
        Some(json!({"seconds": 30 * 60})),
    )
    .await;
    assert_eq!(s, 200);
    // min_refresh is 30 s: within 15 s only the NOTIFY can have done it
    let took = wait_rcode(
        resolver_port,
        "www.judi.example",
        3,
        Duration::from_secs(15),
    );
    assert_eq!(rcode(resolver_port, "judi.example"), 3);
    assert_eq!(rcode(resolver_port, "slot.example"), 3);
    assert_ne!(rcode(resolver_port, "fine.example"), 3, "no over-blocking");
    println!("order effective -> tapis resolver enforcing: {took:?}");

    // the answer explains itself: tapis published the order beside the
    // record (`_tapis` TXT) and the resolver turns it into an Extended DNS
    // Error (RFC 8914) naming the order and the public lookup; dig prints it
    let dig = std::process::Command::new("dig")
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
        .expect("dig (bind9-dnsutils, installed by .ci/run)");
    let text = String::from_utf8_lossy(&dig.stdout);
    assert!(text.contains("status: NXDOMAIN"), "{text}");
    assert!(text.contains("EDE: 16 (Censored)"), "{text}");
    assert!(
        text.contains(&ids[0])
            && text.contains("https://tapis.example/api/v1/lookup?name=www.judi.example"),
        "the EDE names the order and where to check: {text}"
    );

    // lifted: no longer enforced
    let (s, o) = call(
        &base,
        post.clone(),
        &format!("/api/v1/orders/{}/lift", ids[1]),
        officer,
        Some(json!({"reason": "content removed"})),
    )
    .await;
    assert_eq!((s, o["state"].as_str()), (200, Some("lifted")), "{o}");
    wait_rcode(resolver_port, "slot.example", 2, Duration::from_secs(15));
    assert_eq!(rcode(resolver_port, "judi.example"), 3);
    let m = metrics(&maddr);
    let ixfr = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("tapis_resolver_zone_updates_total{zone=\"rpz.tapis.\",kind=\"ixfr\"} ")
        })
        .and_then(|v| v.trim().parse::<u32>().ok())
        .expect("ixfr counter");
    assert!(ixfr >= 2, "changes came by IXFR:\n{m}");
    assert!(
        m.contains("tapis_resolver_zone_updates_total{zone=\"rpz.tapis.\",kind=\"axfr\"} 1"),
        "{m}"
    );
}
