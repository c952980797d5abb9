//! Event streams are capped per token: a token holds at most
//! `streams_per_token` open streams, one more is answered 429 with what to
//! do, and a stream that closes frees its slot. On every backend.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tapis_core::Clock;
use tapis_core::role::Role;
use tapis_http::edge::{Edge, EdgeLimits};
use tapis_http::{AppState, Limits};
use tapis_store::Backend;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party};

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open(Arc::new(clock_at(START)) as Arc<dyn Clock>).await;
    let (_, admin) = bootstrap(&store).await;
    let platform = party(&store, &admin, "platform", "Messenger").await;
    let agent = |label: &'static str| {
        let store = store.clone();
        let actor = admin.actor();
        async move {
            store
                .create_token(&actor, platform.id, Role::PlatformAgent, label, None)
                .await
                .expect("token")
                .1
        }
    };
    let (one, two) = (agent("first").await, agent("second").await);

    let mut state = AppState::new(store.clone(), Limits::default());
    state.edge = Edge::new(EdgeLimits {
        streams_per_token: 2,
        ..EdgeLimits::default()
    });
    let serving = common::serve_state(state).await;
    let base = serving.base.clone();

    let client = reqwest::Client::new();
    let open = |token: String| {
        client
            .get(format!("{base}/api/v1/stream"))
            .bearer_auth(token)
            .send()
    };
    let a = open(one.clone()).await.expect("stream 1");
    let b = open(one.clone()).await.expect("stream 2");
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let c = open(one.clone()).await.expect("stream 3");
    assert_eq!(c.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = c.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(msg.contains("2 open event streams"), "{msg}");
    // another token is counted on its own
    let d = open(two.clone()).await.expect("other token");
    assert_eq!(d.status(), StatusCode::OK);

    // closing a stream frees its slot (the server sees the close and drops
    // the stream): wait for that fact, not for a guessed time
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        let r = open(one.clone()).await.expect("retry");
        if r.status() == StatusCode::OK {
            break r;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            Instant::now() < deadline,
            "a closed stream's slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop((again, b, d));
    serving.stop().await;
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_capped_per_token_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
