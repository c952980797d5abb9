//! `/readyz` follows the loops' heartbeats (a loop that stops beating makes
//! the process not ready, with the loop named; a beat makes it ready
//! again), and `/metrics` carries what a plugged-in `MetricsSource` adds
//! (how the delivery workers' per-destination figures reach it).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tapis_core::SystemClock;
use tapis_http::metrics::prometheus_client::metrics::gauge::ConstGauge;
use tapis_http::metrics::prometheus_client::registry::Registry;
use tapis_http::{AppState, Limits};
use tapis_store::testing::{TestDb, backends};
use tapis_testkit::wait_until_async;

const WITHIN: Duration = Duration::from_secs(10);

async fn get(base: &str, path: &str) -> (StatusCode, String) {
    let r = reqwest::get(format!("{base}{path}")).await.expect("get");
    (r.status(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_heartbeats_and_sources_reach_metrics() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(SystemClock)).await;
        let mut state = AppState::new(store.clone(), Limits::default());
        state.readiness.loop_stale_after = Duration::from_millis(300);
        state.metrics.allow_from =
            vec![tapis_core::isp::IpNet::parse("allow_from", "127.0.0.1/32").expect("net")];
        state.metrics.sources.push(Arc::new(|reg: &mut Registry| {
            reg.register(
                "delivery_breaker_open",
                "Whether a destination's circuit breaker is open",
                ConstGauge::new(1i64),
            );
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tapis_http::serve(listener, state, async move {
            let _ = stopped.await;
        }));

        // no loop expected in this process: ready when it can write
        let (s, body) = get(&base, "/readyz").await;
        assert_eq!(s, StatusCode::OK, "{body}");
        // a loop that stops beating makes it not ready, named
        store.liveness().expect("delivery");
        let body = wait_until_async(WITHIN, "/readyz to name the silent loop", || async {
            let (s, body) = get(&base, "/readyz").await;
            (s == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
        })
        .await;
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["status"], "not_ready");
        assert!(
            v["reasons"][0]
                .as_str()
                .is_some_and(|r| r.contains("delivery loop")),
            "{v}"
        );
        assert!(v["chain_lock_ms"].is_u64(), "the lock itself was fine: {v}");
        // a beat makes it ready again (beats keep coming, as a loop's would)
        wait_until_async(WITHIN, "/readyz to say 200 after a beat", || async {
            store.liveness().beat("delivery");
            get(&base, "/readyz").await.0 == StatusCode::OK
        })
        .await;

        store.liveness().beat("delivery");
        let (s, text) = get(&base, "/metrics").await;
        assert_eq!(s, StatusCode::OK, "{text}");
        assert!(text.contains("\ntapis_delivery_breaker_open 1\n"), "{text}");
        assert!(text.contains("\ntapis_ready 1\n"), "{text}");

        let _ = stop.send(());
        server.await.expect("join").expect("serve");
        store.close().await;
        db.cleanup().await;
    }
}
