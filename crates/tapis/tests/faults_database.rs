//! Database faults with the real binary: a session that holds the audit
//! chain's lock and goes idle in transaction, tapis's own session killed
//! mid-transaction, and the database going away. Each must answer 503 with
//! `Retry-After` promptly (never hang, never 500), `/healthz` stays 200
//! (alive) while `/readyz` says 503 and why, and tapis recovers by itself
//! once the fault ends, with its audit chain intact.
//!
//! On today's main (before `[database]` timeouts) the first test hangs:
//! the write waits on the held advisory lock with no `lock_timeout`, and
//! the client gives up after `PATIENCE` (the issue measured 70 s and more).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use tapis_store::Backend;
use tapis_store::testing::{TestDb, backends};

/// How long the test waits for any one answer: far beyond every timeout
/// configured here, so a hang shows as a failure, not a slow pass.
const PATIENCE: Duration = Duration::from_secs(20);

/// A platform whose webhook points at a closed port (delivery keeps
/// retrying; irrelevant here) and an officer who submits notices.
struct Setup {
    platform: String,
    officer: String,
}

async fn setup(server: &Server) -> Setup {
    let authority = server.authority().await;
    let platform = platform_with_dead_webhook(server, "Messenger", "messenger.example").await;
    Setup {
        officer: server.token(&authority, "officer").await,
        platform,
    }
}

fn notice(platform: &str) -> Value {
    json!({
        "platform_id": platform, "category": "terrorism", "urgency": "urgent",
        "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
        "explanation": "Channel distributes terrorist propaganda",
        "items": [{"kind": "platform_channel", "value": "@channel_1", "native_id": "-1001"}],
    })
}

/// What one request got: status, `Retry-After`, JSON body, time taken.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let started = Instant::now();
    let mut req = server
        .api
        .client
        .request(
            method.parse().expect("method"),
            format!("{}{path}", server.base()),
        )
        .timeout(PATIENCE);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} got no answer within {PATIENCE:?}: {e}"));
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.expect("body");
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        took: started.elapsed(),
    }
}

/// Submit a notice: a write through tapis.
async fn submit(server: &Server, s: &Setup) -> Answer {
    request(
        server,
        "POST",
        "/api/v1/notices",
        Some(&s.officer),
        Some(notice(&s.platform)),
    )
    .await
}

fn assert_unavailable(a: &Answer, what: &str) {
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        a.body
    );
    assert_eq!(a.body["error"]["code"], "unavailable", "{what}: {}", a.body);
    let secs: u64 = a
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: a 503 says when to retry: {:?}", a.retry_after));
    assert!(secs >= 1, "{what}");
}

fn audit_verifies(db_url: &str) {
    let mut child = Proc(
        Command::new(BIN)
            .args(["--database-url", db_url, "audit", "verify"])
            .env_remove("TAPIS_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tapis audit verify"),
    );
    // bounded: a verify that waits for a lock is a failure, not a hang
    let status = wait_until(PATIENCE, "tapis audit verify to finish", || {
        child.0.try_wait().expect("wait")
    });
    let mut said = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().expect("stdout"), &mut said)
        .expect("read");
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut err)
        .expect("read");
    assert!(
        status.success() && said.contains("audit chain intact"),
        "{said}{err}"
    );
}

/// Another client holds the audit chain's lock inside an open transaction
/// and does nothing more (PostgreSQL: the advisory lock every tapis write
/// takes; SQLite: the database write lock).
enum Holder {
    Postgres(sqlx::PgConnection, i32),
    Sqlite(sqlx::SqliteConnection),
}

impl Holder {
    async fn take(backend: Backend, url: &str) -> Holder {
        match backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
                sqlx::raw_sql(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({});",
                    tapis_store::AUDIT_CHAIN_LOCK
                ))
                .execute(&mut c)
                .await
                .expect("take the chain lock");
                let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut c)
                    .await
                    .expect("pid");
                Holder::Postgres(c, pid)
            }
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .expect("take the write lock");
                Holder::Sqlite(c)
            }
        }
    }

    /// End the holder as an operator would: `pg_terminate_backend` from
    /// another session (SQLite: the holder's process goes away).
    async fn terminate(self, url: &str) {
        match self {
            Holder::Postgres(c, pid) => {
                let mut admin = sqlx::PgConnection::connect(url).await.expect("connect");
                let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .fetch_one(&mut admin)
                    .await
                    .expect("terminate");
                assert!(done, "the holder's backend was terminated");
                drop(c);
            }
            Holder::Sqlite(c) => c.close().await.expect("close"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_chain_lock_fails_fast_with_503_and_recovers_at_once() {
    for b in backends() {
        held_chain_lock(b).await;
    }
}

async fn held_chain_lock(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server()
        .database_url(&db.url)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
        .env("TAPIS_DATABASE_LOCK_TIMEOUT_MS", "1500")
        .env("TAPIS_DATABASE_SQLITE_BUSY_TIMEOUT_MS", "1500")
        .start();
    let s = setup(&server).await;
    let ok = submit(&server, &s).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let ready = request(&server, "GET", "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);

    let holder = Holder::take(backend, &db.url).await;
    // writes fail fast: within the lock timeout and a margin, never hang
    for _ in 0..3 {
        let a = submit(&server, &s).await;
        assert_unavailable(&a, "a write while the chain lock is held");
        eprintln!(
            "{backend:?}: lock held: a write answered 503 after {:?}",
            a.took
        );
        assert!(
            a.took < Duration::from_secs(5),
            "{backend:?}: a write answered 503 after {:?}",
            a.took
        );
    }
    // alive, not ready, and saying why
    let health = request(&server, "GET", "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    let ready = wait_until_async(PATIENCE, "/readyz to say 503", || async {
        let r = request(&server, "GET", "/readyz", None, None).await;
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
    })
    .await;
    assert!(ready.retry_after.is_some());
    let reasons = ready.body["reasons"].to_string();
    assert!(reasons.contains("lock"), "{}", ready.body);
    assert_eq!(ready.body["status"], "not_ready");

    holder.terminate(&db.url).await;
    let ended = Instant::now();
    let recovered = wait_until_async(PATIENCE, "a write to succeed", || async {
        let a = submit(&server, &s).await;
        (a.status == StatusCode::CREATED).then_some(a)
    })
    .await;
    let took = ended.elapsed();
    eprintln!(
        "{backend:?}: writes succeed again {took:?} after the holder ended (last write {:?})",
        recovered.took
    );
    assert!(
        took < Duration::from_secs(1),
        "{backend:?}: recovery took {took:?}"
    );
    wait_until_async(PATIENCE, "/readyz to say 200", || async {
        request(&server, "GET", "/readyz", None, None).await.status == StatusCode::OK
    })
    .await;
    drop(server);
    audit_verifies(&db.url);
    db.cleanup().await;
}

/// tapis's own backends, by the application name it sets.
async fn tapis_backends_waiting_on_a_lock(url: &str) -> Vec<i32> {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE application_name = 'tapis' AND datname = current_database() \
           AND wait_event_type = 'Lock' AND state = 'active'",
    )
    .fetch_all(&mut c)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapis_session_killed_mid_transaction_is_503_then_writes_go_on() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let server = server()
        .database_url(&db.url)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
        .start();
    let s = setup(&server).await;
    // tapis names its sessions
    let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let named: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'tapis' AND datname = current_database()",
    )
    .fetch_one(&mut c)
    .await
    .expect("count");
    assert!(named > 0, "tapis's sessions carry application_name=tapis");

    // hold the lock so that tapis's write is caught inside its transaction
    let holder = Holder::take(Backend::Postgres, &db.url).await;
    let (request_done, mut answered) = tokio::sync::oneshot::channel();
    let api = server.api.clone();
    let body = notice(&s.platform);
    let officer = s.officer.clone();
    tokio::spawn(async move {
        let r = api
            .client
            .post(format!("{}/api/v1/notices", api.base))
            .bearer_auth(officer)
            .json(&body)
            .timeout(PATIENCE)
            .send()
            .await;
        let _ =
            request_done.send(r.map(|r| (r.status(), r.headers().get("retry-after").is_some())));
    });
    let pids = wait_until_async(
        PATIENCE,
        "tapis's write waiting on the chain lock",
        || async {
            let p = tapis_backends_waiting_on_a_lock(&db.url).await;
            (!p.is_empty()).then_some(p)
        },
    )
    .await;
    for pid in &pids {
        let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut c)
            .await
            .expect("terminate");
    }
    let (status, retry_after) = wait_until_async(PATIENCE, "the request to be answered", || {
        let got = answered.try_recv().ok();
        async move { got }
    })
    .await
    .expect("an answer");
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a terminated session is unavailability, not a bug"
    );
    assert!(retry_after);

    holder.terminate(&db.url).await;
    for _ in 0..3 {
        let a = submit(&server, &s).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }
    drop(server);
    audit_verifies(&db.url);
    db.cleanup().await;
}

/// A TCP relay between tapis and PostgreSQL that the test can cut (close
/// every connection and refuse new ones) and restore on the same port.
struct Relay {
    port: u16,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    target: u16,
}

impl Relay {
    async fn start(port: u16, target: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind relay");
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let mut cut = rx.clone();
                let (mut inbound, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = cut.changed() => return,
                };
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay {
            port,
            stop: Some(tx),
            target,
        }
    }

    /// Drop every relayed connection and stop listening.
    fn cut(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
    }

    async fn restore(&mut self) {
        *self = Relay::start(self.port, self.target).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_quickly_and_tapis_comes_back() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let pg_port: u16 = db
        .url
        .split("@")
        .nth(1)
        .and_then(|h| h.split('/').next())
        .and_then(|h| h.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432);
    let mut relay = Relay::start(free_port(), pg_port).await;
    let relayed = db
        .url
        .replace(&format!(":{pg_port}/"), &format!(":{}/", relay.port));
    assert_ne!(relayed, db.url, "the URL goes through the relay");
    let server = server()
        .database_url(&relayed)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
        .start();
    let s = setup(&server).await;

    relay.cut();
    {
        let a = submit(&server, &s).await;
        eprintln!(
            "database cut: a write answered {} after {:?}",
            a.status, a.took
        );
        assert_unavailable(&a, "a write with the database unreachable");
        // the pool gives up after acquire_timeout_ms (5 s by default)
        assert!(
            a.took < Duration::from_secs(8),
            "answered after {:?}",
            a.took
        );
        let r = request(
            &server,
            "GET",
            &format!("/api/v1/parties/{}", s.platform),
            Some(&s.officer),
            None,
        )
        .await;
        assert_unavailable(&r, "a read with the database unreachable");
        // a browser gets a page saying so, not a 500
        let page = request(&server, "GET", "/register", None, None).await;
        assert_eq!(
            page.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "a page with the database unreachable: {}",
            page.body
        );
        assert_eq!(page.retry_after.as_deref(), Some("1"), "the page says when");
        let html = page.body.as_str().unwrap_or_default();
        assert!(
            html.contains("<html") && html.contains("database cannot answer"),
            "an HTML page that says why: {html}"
        );
    }
    let health = request(&server, "GET", "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK, "alive without a database");
    let ready = request(&server, "GET", "/readyz", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert!(
        ready.body["reasons"].to_string().contains("cannot write"),
        "{}",
        ready.body
    );

    relay.restore().await;
    wait_until_async(
        PATIENCE,
        "a write to succeed once the database is back",
        || async { submit(&server, &s).await.status == StatusCode::CREATED },
    )
    .await;
    wait_until_async(PATIENCE, "/readyz to say 200", || async {
        request(&server, "GET", "/readyz", None, None).await.status == StatusCode::OK
    })
    .await;
    drop(server);
    audit_verifies(&db.url);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_does_not_wait_for_a_held_chain_lock() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        // a database tapis has made, then a writer that never lets go
        let store = db.open(std::sync::Arc::new(tapis_core::SystemClock)).await;
        store.close().await;
        let holder = Holder::take(backend, &db.url).await;
        let started = Instant::now();
        audit_verifies(&db.url);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{backend:?}: verify took {:?}",
            started.elapsed()
        );
        holder.terminate(&db.url).await;
        db.cleanup().await;
    }
}
