//! Test harness: a real server on a real socket (port 0) over a fresh
//! database per test, on SQLite or PostgreSQL.
#![allow(dead_code)]

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_core::{Clock, ManualClock, Timestamp};
use tapis_http::{AppState, Limits};
use tapis_store::testing::TestDb;
use tapis_store::{Backend, Store};

pub use tapis_store::testing::backends;

pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub authority_id: String,
    pub store: Store,
    pub clock: ManualClock,
    db: Option<TestDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn_app(backend: Backend) -> App {
    spawn_app_with(backend, Limits::default()).await
}

pub async fn spawn_app_with(backend: Backend, limits: Limits) -> App {
    // quiet unless TEST_LOG is set
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    }
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(Timestamp::parse("t", "2017-03-29T09:00:00+07:00").expect("time"));
    let store = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    let boot = store
        .bootstrap("Ministry", None)
        .await
        .expect("bootstrap")
        .expect("first start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(store.clone(), limits);
    let server = tokio::spawn(async move {
        tapis_http::serve(listener, state, async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    App {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        admin: boot.admin_secret,
        authority_id: boot.authority.id.to_string(),
        store,
        clock,
        db: Some(db),
        stop: Some(tx),
        server: Some(server),
    }
}

impl App {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON response {status}: {text}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    /// Create a party as admin and return its id.
    pub async fn party(&self, kind: &str, name: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/parties",
                &self.admin,
                json!({"kind": kind, "name": name}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// A token for `role` at `party`, held by the person "`role` test":
    /// the admin creates the authority's own; any other party's is
    /// invited by the admin and redeemed by the party (the authority never
    /// holds another party's credential).
    pub async fn token(&self, party: &str, role: &str) -> String {
        let person = format!("{role} test");
        if party == self.authority_id {
            let (s, v) = self
                .post(
                    &format!("/api/v1/parties/{party}/tokens"),
                    &self.admin,
                    json!({"role": role, "label": format!("{role} test"), "person": person}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            return v["token"].as_str().expect("token").to_owned();
        }
        let code = self.invitation(party, role).await;
        let (s, v) = self
            .call(
                "POST",
                &format!("/api/v1/invitations/{code}/accept"),
                None,
                Some(json!({"label": format!("{role} test"), "person": person})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().expect("token").to_owned()
    }

    /// An invitation code for `role` at `party`, created by the admin.
    pub async fn invitation(&self, party: &str, role: &str) -> String {
        let (s, v) = self
            .post(
                &format!("/api/v1/parties/{party}/invitations"),
                &self.admin,
                json!({"role": role}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["code"].as_str().expect("code").to_owned()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.store.close().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

/// A valid notice body with `n` channel items.
pub fn notice_body(platform: &str, n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "kind": "platform_channel",
                "value": format!("@channel_{i}"),
                "native_id": format!("-100{i}"),
                "evidence": [{"sha256": "ab".repeat(32), "description": "screenshot", "captured_at": "2017-03-28T10:00:00+07:00"}]
            })
        })
        .collect();
    json!({
        "platform_id": platform,
        "category": "terrorism",
        "urgency": "urgent",
        "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "The government prevents dissemination of unlawful content."},
        "explanation": "Public channels distributing terrorist propaganda",
        "items": items
    })
}

/// Assert the error shape and code.
pub fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
