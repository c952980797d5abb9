//! The Server-Sent Events stream: a platform sees its own events, live;
//! resuming with Last-Event-ID confirms them, and a confirmed
//! `notice.submitted` counts as delivery (a socket write alone does not).

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

/// Read the stream until an event with `id:` arrives; return (id, event, data).
async fn next_event(
    resp: &mut reqwest::Response,
    buf: &mut String,
) -> (i64, String, serde_json::Value) {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf[..end].to_owned();
            buf.drain(..end + 2);
            let mut id = None;
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if let Some(id) = id {
                return (id, event, serde_json::from_str(&data).expect("json data"));
            }
            continue; // a keep-alive comment
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .expect("an event within 10 s")
            .expect("read")
            .expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).expect("utf8"));
    }
}

async fn stream_story(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "Messenger").await;
    let other = app.party("platform", "Other").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let agent = app.token(&platform, "platform_agent").await;
    let other_agent = app.token(&other, "platform_agent").await;

    let open = |token: String, last: Option<i64>| {
        let mut req = app
            .client
            .get(format!("{}/api/v1/stream", app.base))
            .bearer_auth(token);
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l.to_string());
        }
        req.send()
    };
    let mut stream = open(agent.clone(), None).await.expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/event-stream")
    );
    let mut other_stream = open(other_agent.clone(), None).await.expect("stream");

    let (s, n) = app
        .post("/api/v1/notices", &officer, notice_body(&platform, 1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let id = n["id"].as_str().expect("id");
    let mut buf = String::new();
    let (seq, event, data) = next_event(&mut stream, &mut buf).await;
    assert_eq!(event, "notice.submitted");
    assert_eq!(data["data"]["notice_id"], id);
    assert!(
        data["data"]["notice"]["signature"].is_string(),
        "the stream carries the signed notice"
    );

    // sent on a socket is not delivered
    let (_, n) = app.get(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(n["state"], "submitted");

    // resuming after the event confirms it: now it is delivered
    drop(stream);
    let resumed = open(agent.clone(), Some(seq)).await.expect("resume");
    assert_eq!(resumed.status(), StatusCode::OK);
    let (_, n) = app.get(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(n["state"], "delivered");
    let (_, t) = app
        .get(&format!("/api/v1/notices/{id}/timeline"), &officer)
        .await;
    let via = t
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["action"] == "notice.delivered")
        .expect("delivered")["after"]["via"]
        .clone();
    assert_eq!(via, "event stream (client confirmed)");

    // the other platform's stream stays silent; a withdrawal reaches ours
    let (s, _) = app
        .post(
            &format!("/api/v1/notices/{id}/withdraw"),
            &officer,
            serde_json::json!({"reason": "sent in error"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut resumed = resumed;
    let mut buf = String::new();
    let (seq2, event, _) = next_event(&mut resumed, &mut buf).await;
    assert!(seq2 > seq);
    assert_eq!(event, "notice.withdrawn");
    // the stream is in order: the other platform's first event is then its
    // own notice, submitted after our withdrawal, and anything of ours that
    // leaked would have come before it (a fact, not a quiet second)
    let (s, own) = app
        .post("/api/v1/notices", &officer, notice_body(&other, 1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{own}");
    let mut other_buf = String::new();
    let (seq3, event, data) = next_event(&mut other_stream, &mut other_buf).await;
    assert_eq!(
        (event.as_str(), &data["data"]["notice_id"]),
        ("notice.submitted", &own["id"]),
        "another platform's event leaked: {data}"
    );
    assert!(seq3 > seq2);

    // bad resumption ids and wrong roles are 4xx
    let bad = app
        .client
        .get(format!("{}/api/v1/stream", app.base))
        .bearer_auth(&agent)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = app
        .client
        .get(format!("{}/api/v1/stream", app.base))
        .bearer_auth(&officer)
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    drop(resumed);
    drop(other_stream);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_on_every_backend() {
    for b in backends() {
        stream_story(b).await;
    }
}
