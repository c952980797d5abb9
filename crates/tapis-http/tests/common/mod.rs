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
pub use tapis_testkit::Api;

#[allow(unused_imports)]
pub use tapis_store::testing::backends;

/// The server under test; its API (`call`, `get`, `post`, `text`, …) is
/// the test kit's [`Api`], reached through `Deref`.
pub struct App {
    pub api: Api,
    pub admin: String,
    pub authority_id: String,
    pub store: Store,
    pub clock: ManualClock,
    db: Option<TestDb>,
    serving: Option<Serving>,
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
    let mut state = AppState::new(store.clone(), limits);
    // public reports' proof of work: easy enough for a debug build
    state.challenges = Arc::new(tapis_http::pow::Challenges::random(
        tapis_core::pow::PowPolicy {
            difficulty: 8,
            max_age_secs: 600,
        },
    ));
    let serving = serve_state(state).await;
    App {
        api: Api::new(serving.base.clone()),
        admin: boot.admin_secret,
        authority_id: boot.authority.id.to_string(),
        store,
        clock,
        db: Some(db),
        serving: Some(serving),
    }
}

/// `tapis_http::serve` of `state` on a real socket (port 0) until stopped
/// (or dropped).
pub struct Serving {
    pub addr: std::net::SocketAddr,
    /// `http://` and the address.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub async fn serve_state(state: AppState) -> Serving {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        tapis_http::serve(listener, state, async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    Serving {
        addr,
        base: format!("http://{addr}"),
        stop: Some(tx),
        server: Some(server),
    }
}

impl Serving {
    /// Shut the server down and wait for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
    }
}

impl std::ops::Deref for App {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl App {
    /// Create a party as admin and return its id.
    pub async fn party(&self, kind: &str, name: &str) -> String {
        self.api.party(&self.admin, kind, name).await
    }

    /// A token for `role` at `party`, held by the person "`role` test":
    /// the admin creates the authority's own; any other party's is
    /// invited by the admin and redeemed by the party (the authority never
    /// holds another party's credential).
    pub async fn token(&self, party: &str, role: &str) -> String {
        self.api.token(&self.admin, party, role).await
    }

    /// `method path` as `token` (with `body`) must fail with `status` and
    /// the error `code`; returns the error body.
    pub async fn expect_error(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        status: StatusCode,
        code: &str,
    ) -> Value {
        let (s, v) = self.call(method, path, Some(token), body).await;
        assert_error(s, &v, status, code);
        v
    }

    /// `POST /api/v1/orders/{id}/approve` as `token`: the order must then
    /// be in `state`; returns it.
    pub async fn approve(&self, id: &str, token: &str, state: &str) -> Value {
        let (s, o) = self
            .post(&format!("/api/v1/orders/{id}/approve"), token, json!({}))
            .await;
        assert_eq!(
            (s, o["state"].as_str()),
            (StatusCode::OK, Some(state)),
            "{o}"
        );
        o
    }

    /// `POST /api/v1/notices/{id}/acknowledge` (no signature) as `token`.
    pub async fn acknowledge(&self, id: &str, token: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/notices/{id}/acknowledge"),
            token,
            json!({}),
        )
        .await
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
        if let Some(serving) = self.serving.take() {
            serving.stop().await;
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
