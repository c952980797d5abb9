//! What an ISP may register is bounded, on every backend: unsigned
//! transfers only to a few single public hosts, NOTIFY and probe targets
//! only at public addresses and real ports (unless the server allows
//! private targets), each refusal a 422 naming the entry; and settings
//! stored before these rules stop counting when the primary loads them.

mod common;

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_core::Clock;
use tapis_core::role::Role;
use tapis_http::{AppState, Limits};
use tapis_store::Backend;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party};

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open(Arc::new(clock_at(START)) as Arc<dyn Clock>).await;
    let (_, admin) = bootstrap(&store).await;
    let isp = party(&store, &admin, "isp", "Net").await.id;
    let (_, token) = store
        .create_token(&admin.actor(), isp, Role::IspOperator, "noc", None)
        .await
        .expect("token");

    let state = AppState::new(store.clone(), Limits::default());
    assert!(!state.allow_private_targets, "the default refuses them");
    let serving = common::serve_state(state).await;
    let base = serving.base.clone();
    let client = reqwest::Client::new();
    let put = |body: Value| {
        client
            .put(format!("{base}/api/v1/parties/{isp}/resolvers"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let refused = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: Value = resp.json().await.expect("json");
        v["error"]["message"].as_str().expect("message").to_owned()
    };

    // the demonstration: 64 /8 networks, 127/8 among them
    let nets: Vec<String> = (64..128).map(|i| format!("{i}.0.0.0/8")).collect();
    let m = refused(
        put(json!({"allow_transfer_from": nets}))
            .await
            .expect("put"),
    )
    .await;
    assert!(
        m.contains("allow_transfer_from[0]") && m.contains("network"),
        "{m}"
    );
    // the cloud metadata service as a NOTIFY target
    let m = refused(
        put(json!({"notify": ["193.0.14.129", "169.254.169.254:80"]}))
            .await
            .expect("put"),
    )
    .await;
    assert!(
        m.contains("notify[1]") && m.contains("allow_private_targets"),
        "{m}"
    );
    let m = refused(
        put(json!({"resolvers": ["127.0.0.1:53"]}))
            .await
            .expect("put"),
    )
    .await;
    assert!(m.contains("resolvers[0]"), "{m}");
    let m = refused(
        put(json!({"resolvers": ["193.0.14.129:0"]}))
            .await
            .expect("put"),
    )
    .await;
    assert!(m.contains("resolvers[0]") && m.contains("port 0"), "{m}");
    let five: Vec<String> = (1..=5).map(|i| format!("193.0.14.{i}")).collect();
    let m = refused(
        put(json!({"allow_transfer_from": five}))
            .await
            .expect("put"),
    )
    .await;
    assert!(m.contains("at most 4"), "{m}");
    // a few public hosts are fine, and the change is on the record
    let r = put(json!({"resolvers": ["193.0.14.129"], "notify": ["193.0.14.129:53"], "allow_transfer_from": ["193.0.14.129", "2001:7fd::1"]}))
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::OK);
    let events = store
        .events_for("party", &isp.to_string())
        .await
        .expect("events");
    let set = events
        .iter()
        .rev()
        .find(|e| e.action == "isp.resolvers_set")
        .expect("audited");
    assert_eq!(
        set.after["allow_transfer_from"],
        json!(["193.0.14.129/32", "2001:7fd::1/128"])
    );

    // a wide network and a metadata target stored before the rules no
    // longer reach the primary or the NOTIFY sender
    store
        .raw_execute(&format!(
            "UPDATE isp_resolvers SET allow_transfer_from = '[\"0.0.0.0/8\",\"127.0.0.0/8\",\"193.0.14.129/32\"]', \
             notify = '[\"169.254.169.254:80\",\"193.0.14.129:53\"]', \
             resolvers = '[\"10.0.0.1:53\",\"193.0.14.129:53\"]' WHERE party_id = '{isp}'"
        ))
        .await
        .expect("legacy settings");
    let access = store.xfr_access().await.expect("access");
    let allow: Vec<String> = access.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, vec!["193.0.14.129/32"]);
    let notify: Vec<String> = access.notify.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(notify, vec!["193.0.14.129:53"]);
    let probes = store.probe_targets().await.expect("probes");
    assert_eq!(
        probes[0].resolvers,
        vec!["193.0.14.129:53".parse().expect("addr")]
    );

    serving.stop().await;
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isp_settings_are_bounded_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
