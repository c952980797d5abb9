//! Delivery under faults, with the real binary on both backends: a
//! platform whose webhook accepts connections and never answers must not
//! delay another platform's webhooks, and its circuit breaker opens; a
//! `tapis serve` killed with SIGKILL in the middle of a burst resumes
//! delivery within seconds of its restart, every acknowledged notice
//! delivered at least once under one stable `webhook-id`; a backlog to a
//! slow but healthy platform makes new notices wait (429 with
//! `Retry-After`) until it drains.
//!
//! The receivers are in-process: a TCP listener that accepts and never
//! answers, and a small axum server that records each webhook's arrival.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};
use tapis_store::testing::{TestDb, backends};

/// One webhook as the healthy receiver saw it.
#[derive(Clone, Debug)]
struct Arrival {
    webhook_id: String,
    notice_id: String,
    event_type: String,
    at: Instant,
}

/// A platform's endpoint that answers 204 after a delay (that the test
/// may change), recording every webhook.
struct Healthy {
    url: String,
    got: Arc<Mutex<Vec<Arrival>>>,
    delay_ms: Arc<AtomicU64>,
}

impl Healthy {
    async fn start(delay: Duration) -> Healthy {
        let got: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let log = got.clone();
        let delay_ms = Arc::new(AtomicU64::new(
            u64::try_from(delay.as_millis()).expect("delay"),
        ));
        let wait = delay_ms.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let delay = Duration::from_millis(wait.load(Ordering::SeqCst));
                async move {
                    let at = Instant::now();
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    log.lock().expect("log").push(Arrival {
                        webhook_id: headers
                            .get("webhook-id")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                        notice_id: v["data"]["notice_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        event_type: v["type"].as_str().unwrap_or_default().to_owned(),
                        at,
                    });
                    tokio::time::sleep(delay).await;
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Healthy { url, got, delay_ms }
    }

    fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).expect("delay"),
            Ordering::SeqCst,
        );
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.got.lock().expect("log").clone()
    }
}

/// A platform's endpoint that accepts every connection and never answers.
struct Hanging {
    url: String,
    accepted: Arc<Mutex<usize>>,
}

impl Hanging {
    async fn start() -> Hanging {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let accepted = Arc::new(Mutex::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                *count.lock().expect("count") += 1;
                // hold the connection open; the request sits unread in the
                // socket buffer and no answer ever comes
                tokio::spawn(async move {
                    let _held = sock;
                    std::future::pending::<()>().await
                });
            }
        });
        Hanging { url, accepted }
    }

    fn accepted(&self) -> usize {
        *self.accepted.lock().expect("count")
    }
}

fn start(dir: &std::path::Path, db: &TestDb, env: &[(&str, &str)]) -> Server {
    let mut b = server()
        .data_dir(dir)
        .database_url(&db.url)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true");
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start()
}

/// A platform with a webhook to `url`; returns its id.
async fn platform(server: &Server, name: &str, url: &str) -> String {
    let id = server
        .party_with(ADMIN, json!({"kind": "platform", "name": name}))
        .await;
    let (s, v) = server
        .put(
            &format!("/api/v1/parties/{id}/channel"),
            ADMIN,
            json!({"webhook_url": url}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    id
}

fn notice(platform: &str, i: usize) -> Value {
    json!({
        "platform_id": platform, "category": "terrorism", "urgency": "urgent",
        "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
        "explanation": "Channel distributes terrorist propaganda",
        "items": [{"kind": "url", "value": format!("https://{platform}.example/p/{i}")}],
    })
}

async fn submit(server: &Server, officer: &str, platform: &str, i: usize) -> String {
    let (s, n) = server
        .post("/api/v1/notices", officer, notice(platform, i))
        .await;
    assert_eq!(s, 201, "{n}");
    n["id"].as_str().expect("id").to_owned()
}

async fn hanging_beside_healthy(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let hanging = Hanging::start().await;
    let healthy = Healthy::start(Duration::ZERO).await;
    // short timeouts so that the breaker opens within the test
    let server = start(
        dir.path(),
        &db,
        &[
            ("TAPIS_CHANNEL_RESPONSE_TIMEOUT_MS", "3000"),
            ("TAPIS_CHANNEL_BREAKER_FAILURES", "4"),
            ("TAPIS_CHANNEL_BREAKER_OPEN_SECS", "60"),
        ],
    );
    let authority = server.authority().await;
    let officer = server.token(&authority, "officer").await;
    let stuck = platform(&server, "Stuck", &hanging.url).await;
    let good = platform(&server, "Good", &healthy.url).await;

    // 40 notices to the platform that never answers
    let mut stuck_notices = Vec::new();
    for i in 0..40 {
        stuck_notices.push(submit(&server, &officer, &stuck, i).await);
    }
    wait_until_async(
        Duration::from_secs(10),
        "the hanging receiver to hold connections",
        || async { (hanging.accepted() >= 2).then_some(()) },
    )
    .await;

    // meanwhile the healthy platform's notices arrive promptly
    let mut sent: HashMap<String, Instant> = HashMap::new();
    for i in 0..20 {
        let at = Instant::now();
        let id = submit(&server, &officer, &good, i).await;
        sent.insert(id, at);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arrived = wait_until_async(
        Duration::from_secs(20),
        "the healthy platform's 20 webhooks",
        || async {
            let a: HashMap<String, Instant> = healthy
                .arrivals()
                .into_iter()
                .filter(|a| a.event_type == "notice.submitted")
                .map(|a| (a.notice_id, a.at))
                .collect();
            if sent.keys().all(|k| a.contains_key(k)) {
                Ok(a)
            } else {
                Err(format!("{} of 20 arrived", a.len()))
            }
        },
    )
    .await;
    let worst = sent
        .iter()
        .map(|(id, at)| arrived[id].duration_since(*at))
        .max()
        .expect("some");
    assert!(
        worst < Duration::from_secs(2),
        "{backend:?}: a healthy webhook took {worst:?} beside a hanging platform"
    );
    eprintln!("{backend:?}: slowest healthy delivery beside 40 hanging: {worst:?}");

    // the hanging platform's breaker opens: its messages are then not
    // attempted and take the retry schedule
    wait_until_async(
        Duration::from_secs(30),
        "the hanging platform's circuit breaker to open",
        || async {
            for id in &stuck_notices {
                let d = server
                    .get_ok(&format!("/api/v1/notices/{id}/deliveries"), ADMIN)
                    .await;
                let opened = d.as_array().into_iter().flatten().any(|m| {
                    m["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("circuit breaker"))
                });
                if opened {
                    return Ok(());
                }
            }
            Err(format!("{} connections accepted", hanging.accepted()))
        },
    )
    .await;
    // at most `concurrency` (4) connections at a time, plus the retries
    // before the breaker opened: far fewer than the 40 messages
    assert!(
        hanging.accepted() < 20,
        "the breaker should stop the attempts: {} connections",
        hanging.accepted()
    );
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_platform_delays_only_itself_and_its_breaker_opens() {
    for b in backends() {
        hanging_beside_healthy(b).await;
    }
}

async fn kill_mid_burst(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    // a slow receiver (4 webhooks/s), so that the kill lands while most
    // of the burst is still to be sent, with messages in flight
    let receiver = Healthy::start(Duration::from_secs(1)).await;
    let server = start(dir.path(), &db, &[]);
    let authority = server.authority().await;
    let officer = server.token(&authority, "officer").await;
    let p = platform(&server, "Messenger", &receiver.url).await;

    // the burst: 80 notices, 8 submitted at a time
    let mut acknowledged = Vec::new();
    for chunk in (0..80).collect::<Vec<usize>>().chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (api, officer, p) = (server.api.clone(), officer.clone(), p.clone());
            set.spawn(async move {
                let (s, n) = api.post("/api/v1/notices", &officer, notice(&p, i)).await;
                assert_eq!(s, 201, "{n}");
                n["id"].as_str().expect("id").to_owned()
            });
        }
        while let Some(id) = set.join_next().await {
            acknowledged.push(id.expect("submit"));
        }
    }
    wait_until_async(
        Duration::from_secs(20),
        "some webhooks before the kill",
        || async { (receiver.arrivals().len() >= 8).then_some(()) },
    )
    .await;
    server.kill9();
    let before = receiver.arrivals().len();
    assert!(
        before + 10 <= acknowledged.len(),
        "the kill should land mid-burst ({before} delivered)"
    );

    receiver.set_delay(Duration::from_millis(20));
    let restarted_at = Instant::now();
    let server = start(dir.path(), &db, &[]);
    let all: HashSet<String> = acknowledged.iter().cloned().collect();
    wait_until_async(
        Duration::from_secs(30),
        "every acknowledged notice delivered",
        || async {
            let got: HashSet<String> = receiver
                .arrivals()
                .into_iter()
                .map(|a| a.notice_id)
                .collect();
            let missing = all.difference(&got).count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!("{missing} not delivered"))
            }
        },
    )
    .await;
    let resumed = restarted_at.elapsed();
    // with the data directory's instance id the restarted process takes
    // its own leases back at once (they used to wait out 60 s)
    assert!(
        resumed < Duration::from_secs(8),
        "{backend:?}: delivery took {resumed:?} after the restart to finish"
    );
    let first_after = receiver
        .arrivals()
        .iter()
        .filter(|a| a.at > restarted_at)
        .map(|a| a.at.duration_since(restarted_at))
        .min();
    eprintln!(
        "{backend:?}: {before} delivered before the kill; first webhook {first_after:?} after the restart began, all {resumed:?}"
    );
    assert!(
        first_after.is_some_and(|d| d < Duration::from_secs(5)),
        "{backend:?}: delivery resumed {first_after:?} after the restart"
    );

    // at least once, under one stable webhook-id per notice, the one the
    // outbox holds
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for a in receiver.arrivals() {
        ids.entry(a.notice_id).or_default().insert(a.webhook_id);
    }
    for n in &acknowledged {
        let got = &ids[n];
        assert_eq!(got.len(), 1, "notice {n} came under several ids: {got:?}");
        let d = server
            .get_ok(&format!("/api/v1/notices/{n}/deliveries"), ADMIN)
            .await;
        let outbox_id = d[0]["event_id"].as_str().expect("event id");
        assert!(got.contains(outbox_id), "{got:?} vs {outbox_id}");
    }
    let dupes = receiver.arrivals().len() - acknowledged.len();
    eprintln!("{backend:?}: {dupes} duplicate deliveries (same webhook-id) across the kill");
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_resumes_within_seconds_with_stable_webhook_ids() {
    for b in backends() {
        kill_mid_burst(b).await;
    }
}

async fn push_back(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    // a slow but healthy platform, one message at a time: the backlog grows
    let receiver = Healthy::start(Duration::from_millis(500)).await;
    let server = start(
        dir.path(),
        &db,
        &[
            ("TAPIS_CHANNEL_MAX_BACKLOG", "10"),
            ("TAPIS_CHANNEL_CONCURRENCY_PER_DESTINATION", "1"),
        ],
    );
    let authority = server.authority().await;
    let officer = server.token(&authority, "officer").await;
    let p = platform(&server, "Slow", &receiver.url).await;
    let post = |i: usize| {
        server
            .api
            .client
            .post(format!("{}/api/v1/notices", server.base()))
            .bearer_auth(&officer)
            .json(&notice(&p, i))
            .send()
    };
    let mut accepted = 0;
    let refused = wait_until_async(
        Duration::from_secs(20),
        "a 429 once the backlog passes 10",
        || {
            accepted += 1;
            let r = post(accepted);
            async move {
                let r = r.await.expect("post");
                match r.status().as_u16() {
                    201 => Err("201".to_owned()),
                    429 => Ok(r),
                    other => panic!("unexpected {other}: {:?}", r.text().await),
                }
            }
        },
    )
    .await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(accepted > 10, "{backend:?}: refused after only {accepted}");

    // once the platform keeps up again, submissions are accepted
    receiver.set_delay(Duration::ZERO);
    wait_until_async(
        Duration::from_secs(20),
        "submissions accepted again",
        || {
            let r = post(1000);
            async move { (r.await.expect("post").status().as_u16() == 201).then_some(()) }
        },
    )
    .await;
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_backlog_pushes_back_with_429_and_retry_after() {
    for b in backends() {
        push_back(b).await;
    }
}
