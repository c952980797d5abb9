//! The foundation walk over real HTTP, on every backend: an admin registers
//! a platform and its agent; an officer submits a notice with three items;
//! the platform sees it in its inbox, acknowledges and decides each item;
//! a second platform cannot see it; the timeline shows every step; the
//! audit chain verifies.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

async fn walk(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "Messenger").await;
    let other = app.party("platform", "Other Platform").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let agent = app.token(&platform, "platform_agent").await;
    let other_agent = app.token(&other, "platform_agent").await;
    let auditor = app.token(&app.authority_id, "auditor").await;

    // officer submits a notice with three items
    let (s, n) = app
        .post("/api/v1/notices", &officer, notice_body(&platform, 3))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    assert_eq!(n["state"], "submitted");
    let id = n["id"].as_str().expect("id").to_owned();
    let items: Vec<String> = n["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(items.len(), 3);
    assert_eq!(n["items"][0]["normalized"], "channel_0");

    // the platform's inbox has it; fetching delivers it
    let (s, inbox) = app.get("/api/v1/inbox", &agent).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(inbox.as_array().map(Vec::len), Some(1));
    assert_eq!(inbox[0]["id"], id.as_str());
    assert_eq!(inbox[0]["state"], "delivered");

    // a second platform cannot see it, in any way
    let nf = (StatusCode::NOT_FOUND, "not_found");
    for path in [
        format!("/api/v1/notices/{id}"),
        format!("/api/v1/notices/{id}/timeline"),
        format!("/api/v1/parties/{platform}"),
    ] {
        app.expect_error("GET", &path, &other_agent, None, nf.0, nf.1)
            .await;
    }
    let (s, v) = app.get("/api/v1/inbox", &other_agent).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (s, v) = app.get("/api/v1/notices", &other_agent).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (s, v) = app
        .get(
            &format!("/api/v1/notices?platform={platform}"),
            &other_agent,
        )
        .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (s, v) = app.acknowledge(&id, &other_agent).await;
    assert_error(s, &v, nf.0, nf.1);

    // acknowledge, then decide each item
    let (s, v) = app.acknowledge(&id, &agent).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("acknowledged")),
        "{v}"
    );
    let (s, v) = app.acknowledge(&id, &agent).await;
    assert_error(s, &v, StatusCode::CONFLICT, "illegal_transition");
    let decisions = [
        ("removed", None),
        ("geo_blocked", Some("unlawful in ID only")),
        ("rejected", Some("news reporting, not propaganda")),
    ];
    for (item, (decision, reason)) in items.iter().zip(decisions) {
        let (s, v) = app
            .post(
                &format!("/api/v1/notices/{id}/items/{item}/decision"),
                &agent,
                json!({"decision": decision, "reason": reason}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, n) = app.get(&format!("/api/v1/notices/{id}"), &agent).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(n["state"], "closed");
    assert_eq!(n["items"][2]["state"], "rejected");
    assert_eq!(n["items"][2]["reason"], "news reporting, not propaganda");

    // the timeline shows every step, with who did it
    let (s, t) = app
        .get(&format!("/api/v1/notices/{id}/timeline"), &officer)
        .await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = t
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "notice.submitted",
            "notice.delivered",
            "notice.acknowledged",
            "receipt.issued",
            "item.decided",
            "item.decided",
            "item.decided",
            "notice.closed"
        ]
    );
    assert_eq!(t[2]["actor"]["role"], "platform_agent");
    assert_eq!(t[2]["actor"]["party_id"], platform.as_str());
    assert_eq!(t[0]["actor"]["role"], "officer");
    // chained: each event's prev_hash is the previous event's hash (for this subject, seq increases)
    let seqs: Vec<i64> = t
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // the audit log verifies over the API (auditor) and officers may not ask
    let (s, v) = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (s, v) = app.get("/api/v1/audit/verify", &officer).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_on_every_backend() {
    for b in backends() {
        walk(b).await;
    }
}
