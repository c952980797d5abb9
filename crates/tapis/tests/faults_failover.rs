//! Faults around the scheduler and ownership, on the real binary: a
//! webhook receiver that accepts and never answers cannot delay an order's
//! activation (the scheduler has its own task and connections); two
//! `tapis serve` on one PostgreSQL database hand ownership over when the
//! owner is frozen by SIGSTOP, the frozen one fires nothing when it wakes,
//! serials never diverge and no webhook is lost; a simulated clock is one
//! time for every process; on SQLite a second process never owns.
//!
//! Times measured here (takeover, activation lateness) are printed with
//! `eprintln!` so a run with `--no-capture` shows them.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tapis_core::{SystemClock, Timestamp};
use tapis_store::Backend;
use tapis_store::testing::{TestDb, backends};

/// A webhook endpoint that accepts connections and never answers.
async fn hanging_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/hook")
}

/// A platform whose webhook goes to `url`; returns (platform id, webhook
/// secret, officer token).
async fn platform(server: &Server, url: &str) -> (String, String, String) {
    let authority = server.authority().await;
    let platform = server
        .party_with(
            ADMIN,
            json!({"kind": "platform", "name": "Messenger", "domains": ["messenger.example"]}),
        )
        .await;
    let (s, ch) = server
        .put(
            &format!("/api/v1/parties/{platform}/channel"),
            ADMIN,
            json!({"webhook_url": url}),
        )
        .await;
    assert_eq!(s, 200, "{ch}");
    let secret = ch["webhook_secret"].as_str().expect("secret").to_owned();
    let officer = server.token(&authority, "officer").await;
    (platform, secret, officer)
}

fn notice(platform: &str, i: usize) -> Value {
    json!({
        "platform_id": platform, "category": "terrorism", "urgency": "urgent",
        "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
        "explanation": "Channel distributes terrorist propaganda",
        "items": [{"kind": "platform_channel", "value": format!("@channel_{i}"), "native_id": format!("-100{i}")}],
    })
}

async fn submit(server: &Server, officer: &str, platform: &str, i: usize) -> String {
    let (s, n) = server
        .post("/api/v1/notices", officer, notice(platform, i))
        .await;
    assert_eq!(s, 201, "{n}");
    n["id"].as_str().expect("id").to_owned()
}

/// An order effective `in_ms` from now on the real clock.
fn order_at(name: &str, effective: Timestamp) -> Value {
    let at = |ms: i64| Timestamp::from_unix_millis(effective.unix_millis() + ms).to_string();
    gambling_order(
        name,
        "nxdomain",
        &effective.to_string(),
        &at(30 * 86_400_000),
        &at(7 * 86_400_000),
    )
}

fn now_plus(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(tapis_core::Clock::now(&SystemClock).unix_millis() + ms)
}

/// Waits until order `id` is in force; returns how late its activation
/// was (activated_at − effective_at), in milliseconds.
async fn activation_lateness(server: &Server, token: &str, id: &str, within: Duration) -> i64 {
    let o = wait_until_async(within, &format!("order {id} in force"), || async {
        let o = server.get_ok(&format!("/api/v1/orders/{id}"), token).await;
        if o["state"] == "in_force" {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    })
    .await;
    let t = |k: &str| {
        Timestamp::parse(k, o[k].as_str().expect("a time"))
            .expect("a timestamp")
            .unix_millis()
    };
    t("activated_at") - t("effective_at")
}

fn signal(server: &Server, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &server.pid().to_string()])
        .status()
        .expect("run kill (procps)")
        .success();
    assert!(ok, "kill -{sig} {}", server.pid());
}

async fn ownership(server: &Server) -> Value {
    server.get_ok("/api/v1/admin/ownership", ADMIN).await
}

/// A store on the test database for reading the audit log (publishes no
/// key).
async fn reader(url: &str) -> tapis_store::Store {
    tapis_store::Store::open_with(url, Arc::new(SystemClock), Default::default())
        .await
        .expect("open the database to read it")
}

/// No job fired twice: the scheduler's events name each (action,
/// subject) once; and audit times never run backwards.
async fn assert_fired_once_and_times_forward(url: &str) {
    let events = reader(url).await.all_audit_events().await.expect("events");
    let mut seen = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.actor.to_string().contains("scheduler"))
    {
        *seen
            // the zone's events share one subject: a serial is theirs
            .entry((
                e.action.clone(),
                e.subject_id.clone(),
                e.after["serial"].clone(),
            ))
            .or_insert(0) += 1;
    }
    assert!(!seen.is_empty(), "the scheduler fired something");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fired more than once: {twice:?}");
    for w in events.windows(2) {
        assert!(
            w[1].at >= w[0].at,
            "audit time ran backwards: #{} at {} then #{} at {}",
            w[0].seq,
            w[0].at,
            w[1].seq,
            w[1].at
        );
    }
}

/// (b) An order falls due while 40 webhooks hang on a receiver that never
/// answers: it is activated on time all the same (under 1 s late).
#[tokio::test]
async fn activation_is_on_time_while_delivery_hangs() {
    for backend in backends() {
        activation_on_time_while_delivery_hangs(backend).await;
    }
}

async fn activation_on_time_while_delivery_hangs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server()
        .database_url(&db.url)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
        .start();
    let p = Parties::new(&server).await;
    let hook = hanging_receiver().await;
    let (platform, _, officer) = platform(&server, &hook).await;
    for i in 0..40 {
        submit(&server, &officer, &platform, i).await;
    }
    // the worker is now stuck on the hanging receiver
    let id = p
        .approve(&server, order_at("casino-hang.example", now_plus(3000)))
        .await;
    let late = activation_lateness(&server, &p.officer, &id, Duration::from_secs(20)).await;
    eprintln!("{backend:?}: activation {late} ms after its effective time, 40 webhooks hanging");
    assert!(
        (0..1000).contains(&late),
        "{backend:?}: activation was {late} ms late while delivery hung"
    );
    let serial = dns::soa_serial(server.dns_port, "rpz.tapis.");
    assert!(serial.is_some_and(|s| s >= 1), "{serial:?}");
    drop(server);
    db.cleanup().await;
}

/// A signing key file every process shares (mode 0600).
fn shared_key(dir: &Path) -> String {
    let path = dir.join("signing.key");
    std::fs::write(&path, hex_seed()).expect("write key");
    std::process::Command::new("chmod")
        .args(["600", &path.display().to_string()])
        .status()
        .expect("chmod");
    path.display().to_string()
}

fn hex_seed() -> String {
    (0..32).map(|i| format!("{:02x}", i * 7 + 3)).collect()
}

/// (a) Two processes on one PostgreSQL database, the owner frozen by
/// SIGSTOP: the other takes over within seconds, activates an order on
/// time, delivers every webhook; the frozen one, woken, fires nothing and
/// both answer the same serial.
#[tokio::test]
async fn owner_frozen_by_sigstop_hands_over() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!(
            "not run: TAPIS_TEST_BACKENDS excludes postgres (several processes need PostgreSQL)"
        );
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let keys = tempfile::tempdir().expect("tmp");
    let key = shared_key(keys.path());
    let start = || {
        server()
            .database_url(&db.url)
            .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
            .env("TAPIS_SIGNING_KEY_FILE", &key)
            .start()
    };
    let a = start();
    let b = start();
    assert_eq!(ownership(&a).await["is_owner"], true, "the first one owns");
    let ob = ownership(&b).await;
    assert_eq!(ob["is_owner"], false, "{ob}");
    assert_eq!(ob["lease"]["holder"], ownership(&a).await["this_process"]);
    // one shared key: one key published, whichever process answers
    let published = b.get_ok("/api/v1/keys", ADMIN).await;
    assert_eq!(published.as_array().map(Vec::len), Some(1), "{published}");

    let receiver = Receiver::start();
    let p = Parties::new(&a).await;
    let (platform, secret, officer) = platform(&a, &format!("{}/hook", receiver.url)).await;
    receiver.config(&secret, 204).await;
    let mut ids = vec![submit(&a, &officer, &platform, 0).await];
    receiver.wait_for(&ids).await;

    // an order falls due while the owner is frozen
    let effective = now_plus(9000);
    let order = p
        .approve(&a, order_at("casino-failover.example", effective))
        .await;
    let serial_before = dns::soa_serial(b.dns_port, "rpz.tapis.");

    signal(&a, "STOP");
    let frozen = Instant::now();
    wait_until_async(Duration::from_secs(15), "B to own the lease", || async {
        let o = ownership(&b).await;
        if o["is_owner"] == true {
            Ok(())
        } else {
            Err(o.to_string())
        }
    })
    .await;
    let takeover = frozen.elapsed();
    eprintln!(
        "takeover after SIGSTOP: {} ms (lease 5000 ms, renew 1000 ms)",
        takeover.as_millis()
    );
    assert!(
        takeover < Duration::from_secs(10),
        "takeover took {takeover:?}"
    );

    // the new owner delivers and activates on time
    for i in 1..4 {
        ids.push(submit(&b, &officer, &platform, i).await);
    }
    let late = activation_lateness(&b, &p.officer, &order, Duration::from_secs(20)).await;
    eprintln!("activation on the new owner: {late} ms after its effective time");
    assert!((0..1000).contains(&late), "activation {late} ms late");
    receiver.wait_for(&ids).await;
    let serial_b = wait_until_async(Duration::from_secs(5), "B's serial to move", || async {
        match dns::soa_serial(b.dns_port, "rpz.tapis.") {
            Some(s) if Some(s) != serial_before => Ok(s),
            s => Err(format!("{s:?}")),
        }
    })
    .await;

    // the frozen owner wakes: it knows at once it no longer owns
    signal(&a, "CONT");
    let oa = ownership(&a).await;
    assert_eq!(
        oa["is_owner"], false,
        "woken, A must not act as owner: {oa}"
    );
    assert_eq!(oa["lease"]["holder"], ownership(&b).await["this_process"]);
    // it serves and delivers as any process does, from the same serial;
    // an order it takes falls due on B, the owner, once
    ids.push(submit(&a, &officer, &platform, 9).await);
    let after = p
        .approve(&a, order_at("casino-after.example", now_plus(2000)))
        .await;
    let late_after = activation_lateness(&a, &p.officer, &after, Duration::from_secs(10)).await;
    assert!((0..1000).contains(&late_after), "{late_after} ms late");
    receiver.wait_for(&ids).await;
    let serial_b = wait_until_async(
        Duration::from_secs(5),
        "B's serial to move again",
        || async {
            match dns::soa_serial(b.dns_port, "rpz.tapis.") {
                Some(s) if s != serial_b => Ok(s),
                s => Err(format!("{s:?}")),
            }
        },
    )
    .await;
    let serial_a = dns::soa_serial(a.dns_port, "rpz.tapis.");
    assert_eq!(serial_a, Some(serial_b), "serials diverged");
    assert_eq!(ownership(&b).await["is_owner"], true);

    assert_fired_once_and_times_forward(&db.url).await;
    let events = reader(&db.url)
        .await
        .all_audit_events()
        .await
        .expect("events");
    for id in [&order, &after] {
        let in_force = events
            .iter()
            .filter(|e| e.action == "order.in_force" && &e.subject_id == id)
            .count();
        assert_eq!(in_force, 1, "order {id} was activated once");
    }
    drop((a, b));
    db.cleanup().await;
}

/// (c) A simulated clock is one time for all processes: moved in one, it
/// is the other's; moved in the process that does not own the scheduler,
/// the owner fires what fell due before the move answers; audit times
/// never run backwards.
#[tokio::test]
async fn one_simulated_clock_for_every_process() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!(
            "not run: TAPIS_TEST_BACKENDS excludes postgres (several processes need PostgreSQL)"
        );
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let start = || {
        server()
            .database_url(&db.url)
            .simulated_clock("2030-01-01T00:00:00Z")
            .start()
    };
    let a = start();
    let b = start();
    assert_eq!(ownership(&a).await["is_owner"], true);
    assert_eq!(ownership(&b).await["is_owner"], false);
    let p = Parties::new(&a).await;
    let order = p
        .approve(
            &a,
            gambling_order(
                "casino-sim.example",
                "nxdomain",
                "2030-01-01T02:00:00Z",
                "2030-02-01T00:00:00Z",
                "2030-01-15T00:00:00Z",
            ),
        )
        .await;
    a.advance(3600).await;
    let now_b = wait_until_async(Duration::from_secs(5), "B to see A's time", || async {
        let c = b.clock().await;
        if c["now"] == "2030-01-01T01:00:00.000Z" {
            Ok(c)
        } else {
            Err(c.to_string())
        }
    })
    .await;
    assert_eq!(now_b["now"], a.clock().await["now"]);
    // B writes at the shared time
    let authority = b.authority().await;
    b.token(&authority, "auditor").await;
    // moved by B (not the owner): A fires the activation before B answers
    b.advance(3600).await;
    let o = b
        .get_ok(&format!("/api/v1/orders/{order}"), &p.officer)
        .await;
    assert_eq!(o["state"], "in_force", "{o}");
    assert_eq!(o["activated_at"], "2030-01-01T02:00:00.000Z");
    assert_eq!(a.clock().await["now"], "2030-01-01T02:00:00.000Z");
    assert_fired_once_and_times_forward(&db.url).await;
    drop((a, b));
    db.cleanup().await;
}

/// On SQLite one process is the rule: a second one on the same file
/// serves, but never owns the scheduler while the first renews.
#[tokio::test]
async fn sqlite_has_one_owner() {
    if !backends().contains(&Backend::Sqlite) {
        eprintln!("not run: TAPIS_TEST_BACKENDS excludes sqlite");
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await;
    let a = server().database_url(&db.url).start();
    let b = server().database_url(&db.url).start();
    let (oa, ob) = (ownership(&a).await, ownership(&b).await);
    assert_eq!(oa["is_owner"], true, "{oa}");
    assert_eq!(ob["is_owner"], false, "{ob}");
    assert_eq!(ob["lease"]["holder"], oa["this_process"]);
    // two renewals later (the expiry moved on by 2 s) it is still so
    let token = oa["lease"]["token"].clone();
    let expiry = |o: &Value| {
        Timestamp::parse(
            "expires_at",
            o["lease"]["expires_at"].as_str().unwrap_or(""),
        )
        .map(|t| t.unix_millis())
        .unwrap_or(0)
    };
    let first = expiry(&oa);
    wait_until_async(Duration::from_secs(10), "two renewals", || async {
        let o = ownership(&b).await;
        if expiry(&o) >= first + 2000 {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    })
    .await;
    let (oa, ob) = (ownership(&a).await, ownership(&b).await);
    assert_eq!(oa["is_owner"], true, "{oa}");
    assert_eq!(ob["is_owner"], false, "{ob}");
    assert_eq!(ob["lease"]["token"], token, "the lease never changed hands");
    drop((a, b));
    db.cleanup().await;
}

/// Python's reference Standard Webhooks receiver (the channel tests' one).
struct Receiver {
    _proc: Proc,
    url: String,
}

impl Receiver {
    fn start() -> Receiver {
        let (proc, port) = Proc::spawn_reading(
            Command::new("python3").arg(fixture("webhook_receiver.py")),
            "python3 with standardwebhooks (scripts/setup installs it)",
            |line| {
                line.trim()
                    .strip_prefix("listening ")
                    .and_then(|p| p.parse::<u16>().ok())
            },
        );
        Receiver {
            _proc: proc,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn config(&self, secret: &str, status: u16) {
        let r = reqwest::Client::new()
            .post(format!("{}/_config", self.url))
            .json(&json!({"secret": secret, "status": status}))
            .send()
            .await
            .expect("config receiver");
        assert!(r.status().is_success());
    }

    /// Waits until every notice in `ids` arrived, verified.
    async fn wait_for(&self, ids: &[String]) {
        wait_until_async(
            Duration::from_secs(20),
            "every notice delivered",
            || async {
                let got: Vec<Value> = reqwest::get(format!("{}/_received", self.url))
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let missing: Vec<&String> = ids
                    .iter()
                    .filter(|id| {
                        !got.iter().any(|r| {
                            r["verified"] == true
                                && r["body"]["type"] == "notice.submitted"
                                && r["body"]["data"]["notice_id"] == id.as_str()
                        })
                    })
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?}"))
                }
            },
        )
        .await
    }
}

/// A shared signing key that does not exist stops the start (each process
/// would otherwise make its own), and so does a lease shorter than three
/// renewals; both say what to do.
#[test]
fn ownership_and_shared_key_settings_are_checked() {
    let (status, err) = server()
        .env("TAPIS_SIGNING_KEY_FILE", "/nonexistent/signing.key")
        .run_to_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("signing_key_file /nonexistent/signing.key does not exist")
            && err.contains("openssl rand -hex 32"),
        "{err}"
    );
    let (status, err) = server()
        .env("TAPIS_OWNERSHIP_LEASE_MS", "1000")
        .env("TAPIS_OWNERSHIP_RENEW_MS", "500")
        .run_to_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("lease_ms at least 3 × renew_ms"), "{err}");
}
