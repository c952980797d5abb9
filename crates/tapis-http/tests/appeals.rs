//! Questions, disputes and appeals over HTTP, on every backend: a
//! question pauses the notice's clock (no step fires while it stands
//! still; the answer moves the deadline by the time paused); a dispute is
//! reviewed by a second person; the public appeals an order, a second
//! person upholds it, the order is lifted and its names leave the zone;
//! the public status shows nothing personal; bad appeals are 4xx; another
//! platform's item is a 404.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_core::{Clock, Timestamp};

const HOUR: i64 = 3600 * 1000;

fn at(v: &Value) -> i64 {
    Timestamp::parse("t", v.as_str().expect("a time"))
        .expect("RFC 3339")
        .unix_millis()
}

/// `POST path` as `token` must succeed leaving what it answers in
/// `state`; returns the body.
async fn answered(app: &App, path: &str, token: &str, body: Value, state: &str) -> Value {
    let (s, v) = app.post(path, token, body).await;
    assert!(s.is_success(), "{path}: {s} {v}");
    assert_eq!(v["state"], state, "{path}: {v}");
    v
}

/// An authority token for a person other than the test kit's "officer
/// test" and "approver test".
async fn second_person(app: &App, role: &str, person: &str) -> String {
    let (s, v) = app
        .post(
            &format!("/api/v1/parties/{}/tokens", app.authority_id),
            &app.admin,
            json!({"role": role, "label": person, "person": person}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

/// A notice of `n` items from `officer` to `platform`, acknowledged by
/// `agent` (so its deadline runs).
async fn delivered_notice(
    app: &App,
    officer: &str,
    agent: &str,
    platform: &str,
    n: usize,
) -> Value {
    let (s, v) = app
        .post("/api/v1/notices", officer, notice_body(platform, n))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let (s, v) = app.acknowledge(&id, agent).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn questions_story(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "Messenger").await;
    let other = app.party("platform", "Other").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let second = second_person(&app, "officer", "Second Officer").await;
    let agent = app.token(&platform, "platform_agent").await;
    let stranger = app.token(&other, "platform_agent").await;

    let n = delivered_notice(&app, &officer, &agent, &platform, 3).await;
    let id = n["id"].as_str().expect("id").to_owned();
    let item = |i: usize| n["items"][i]["id"].as_str().expect("item").to_owned();
    let due = at(&n["due_at"]);

    // another platform's item looks like nothing at all
    for what in ["clarification", "dispute"] {
        let body = json!({"question": "which message?", "reason": "not ours"});
        let mut b = body.clone();
        let key = if what == "dispute" {
            "question"
        } else {
            "reason"
        };
        b.as_object_mut().expect("obj").remove(key);
        app.expect_error(
            "POST",
            &format!("/api/v1/notices/{id}/items/{}/{what}", item(0)),
            &stranger,
            Some(b),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // the authority does not ask itself
    app.expect_error(
        "POST",
        &format!("/api/v1/notices/{id}/items/{}/clarification", item(0)),
        &officer,
        Some(json!({"question": "?"})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // a question an hour in: the clock stops
    app.clock.advance_millis(HOUR);
    let (s, c) = app
        .post(
            &format!("/api/v1/notices/{id}/items/{}/clarification", item(0)),
            &agent,
            json!({"question": "Which message id do you mean in <b>channel_0</b>?"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["state"], "open");
    let cid = c["id"].as_str().expect("id").to_owned();

    // four days pass, far past the deadline and the escalation step:
    // nothing fires while the clock stands still
    app.clock.advance_millis(96 * HOUR);
    let fired = app.store.fire_due_jobs(100).await.expect("jobs");
    assert!(
        fired.fired.is_empty(),
        "nothing fires while paused: {fired:?}"
    );
    let now = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(now["state"], "acknowledged", "{now}");
    assert_eq!(at(&now["due_at"]), due, "the deadline waits for the answer");

    // the answer: signed, delivered, and the deadline moves by the pause
    let answer = json!({"answer": "Message 4711 in the channel with native id -1000."});
    answered(
        &app,
        &format!("/api/v1/clarifications/{cid}/answer"),
        &officer,
        answer,
        "answered",
    )
    .await;
    let (s, v) = app
        .post(
            &format!("/api/v1/clarifications/{cid}/answer"),
            &officer,
            json!({"answer": "again"}),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "illegal_transition");
    let after = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(at(&after["due_at"]), due + 96 * HOUR, "{after}");
    let timeline = app
        .get_ok(&format!("/api/v1/notices/{id}/timeline"), &agent)
        .await
        .to_string();
    for e in [
        "notice.paused",
        "clarification.asked",
        "clarification.answered",
        "notice.resumed",
    ] {
        assert!(timeline.contains(e), "{e} on the timeline: {timeline}");
    }
    let receipts = json!(
        app.store
            .receipts(tapis_core::NoticeId::parse(&id).expect("id"))
            .await
            .expect("receipts")
    )
    .to_string();
    assert!(
        receipts.contains("tapis.clarification.v1"),
        "the answer is signed: {receipts}"
    );

    // a dispute: reviewed by a second person only
    let (s, d) = app
        .post(
            &format!("/api/v1/notices/{id}/items/{}/dispute", item(1)),
            &agent,
            json!({"reason": "This channel is a news outlet reporting on the attack."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let did = d["id"].as_str().expect("id").to_owned();
    // the platform cannot decide it meanwhile: the authority answers first
    app.expect_error(
        "POST",
        &format!("/api/v1/notices/{id}/items/{}/decision", item(1)),
        &agent,
        Some(json!({"decision": "removed"})),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let n2 = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(n2["state"], "disputed");
    assert_eq!(n2["items"][1]["state"], "disputed");
    let review =
        json!({"outcome": "upheld", "reason": "The channel republishes the propaganda verbatim."});
    let v = app
        .expect_error(
            "POST",
            &format!("/api/v1/disputes/{did}/review"),
            &officer,
            Some(review.clone()),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("second person")),
        "{v}"
    );
    answered(
        &app,
        &format!("/api/v1/disputes/{did}/review"),
        &second,
        review,
        "upheld",
    )
    .await;
    let n3 = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(
        n3["items"][1]["state"], "pending",
        "upheld: decide it again"
    );
    assert_eq!(n3["state"], "acknowledged", "no dispute left: {n3}");

    // a second dispute, withdrawn; an amended answer must amend something
    let (s, d) = app
        .post(
            &format!("/api/v1/notices/{id}/items/{}/dispute", item(2)),
            &agent,
            json!({"reason": "Wrong channel: this handle was renamed."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let did = d["id"].as_str().expect("id");
    app.expect_error(
        "POST",
        &format!("/api/v1/disputes/{did}/review"),
        &second,
        Some(json!({"outcome": "amended", "reason": "x"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    let review = json!({"outcome": "withdrawn", "reason": "Our mistake: renamed handle."});
    answered(
        &app,
        &format!("/api/v1/disputes/{did}/review"),
        &second,
        review,
        "withdrawn",
    )
    .await;
    let n4 = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(n4["items"][2]["state"], "withdrawn", "{n4}");
    // the platform cannot decide "withdrawn" itself
    app.expect_error(
        "POST",
        &format!("/api/v1/notices/{id}/items/{}/decision", item(0)),
        &agent,
        Some(json!({"decision": "withdrawn"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    let q = app
        .get_ok(&format!("/api/v1/notices/{id}/questions"), &agent)
        .await;
    assert_eq!(q["clarifications"].as_array().map(Vec::len), Some(1));
    assert_eq!(q["disputes"].as_array().map(Vec::len), Some(2));
    app.expect_error(
        "GET",
        &format!("/api/v1/notices/{id}/questions"),
        &stranger,
        None,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // after the disputes the clock runs on: the escalation comes at the
    // deadline moved by every pause, not before
    let n5 = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    let escalation_at = at(&n5["due_at"]) + 48 * HOUR;
    let now_ms = app.clock.now().unix_millis();
    app.clock.advance_millis(escalation_at - now_ms - 60_000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let before = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(before["state"], "acknowledged", "{before}");
    app.clock.advance_millis(120_000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let escalated = app.get_ok(&format!("/api/v1/notices/{id}"), &officer).await;
    assert_eq!(escalated["state"], "escalated", "{escalated}");
    app.stop().await;
}

#[tokio::test]
async fn questions_and_disputes_on_every_backend() {
    for b in backends() {
        questions_story(b).await;
    }
}

async fn appeal_story(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let officer = app.token(&app.authority_id, "officer").await;
    let approver = app.token(&app.authority_id, "approver").await;
    let reviewer = second_person(&app, "approver", "Third Person").await;
    let isp = app.party("isp", "NetCo").await;
    let isp_token = app.token(&isp, "isp_operator").await;

    let (s, o) = app
        .post(
            "/api/v1/orders",
            &officer,
            json!({
                "targets": [{"name": "bakery-judi.example"}, {"name": "slot77.example"}],
                "action": "nxdomain", "category": "gambling",
                "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
                "explanation": "Operators ignored notices.",
                "effective_at": "2017-03-29T02:00:00Z", "expires_at": "2017-04-28T04:00:00Z", "review_at": "2017-04-14T04:00:00Z",
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let order = o["id"].as_str().expect("id").to_owned();
    app.approve(&order, &approver, "in_force").await;
    let l = app
        .call("GET", "/api/v1/lookup?name=bakery-judi.example", None, None)
        .await
        .1;
    assert_eq!(l["blocked"], true, "{l}");

    // bad appeals are 4xx, never stored
    let bad = [
        (
            json!({"reason": "too short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"order_id": order, "reason": "x".repeat(4001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"order_id": "not-an-order", "reason": "my bakery is not a casino"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"order_id": order, "reason": "my bakery is not a casino", "name": "Jane"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"order_id": order, "reason": "my bakery is not a casino", "appellant_kind": "isp"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"order_id": tapis_core::OrderId::new().to_string(), "reason": "my bakery is not a casino"}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (body, want) in bad {
        let (s, v) = app
            .call("POST", "/api/v1/appeals", None, Some(body.clone()))
            .await;
        assert_eq!(s, want, "{body}: {v}");
    }
    let huge = app
        .client
        .post(format!("{}/api/v1/appeals", app.base))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"reason\": \"{}\"}}",
            "a".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // the public appeals, without an account
    let reason = "I am Jane Doe, jane@example.org: bakery-judi.example is my bakery, not a casino.";
    let (s, a) = app
        .call(
            "POST",
            "/api/v1/appeals",
            None,
            Some(json!({"order_id": order, "reason": reason, "evidence": ["https://bakery.example/menu"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let reference = a["reference"].as_str().expect("reference").to_owned();
    assert_eq!(reference.len(), 11);
    assert_eq!(a["state"], "received");
    let status = app
        .call("GET", &format!("/api/v1/appeals/{reference}"), None, None)
        .await;
    assert_eq!(status.0, StatusCode::OK, "{}", status.1);
    let public = status.1.to_string();
    for personal in [
        "Jane",
        "jane@example.org",
        "bakery.example/menu",
        "reason\"",
        "appellant",
    ] {
        assert!(!public.contains(personal), "{personal} in {public}");
    }
    // a mistyped reference is caught; an unknown one is a 404
    let mut typo: Vec<char> = reference.chars().collect();
    typo[0] = if typo[0] == '1' { '2' } else { '1' };
    let typo: String = typo.into_iter().collect();
    let (s, _) = app
        .call("GET", &format!("/api/v1/appeals/{typo}"), None, None)
        .await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::NOT_FOUND,
        "{s}"
    );
    let (s, _) = app
        .call("GET", "/api/v1/appeals/%3Cscript%3E", None, None)
        .await;
    assert!(s.is_client_error(), "{s}");

    // the queue: the authority only; the appeal with its reason
    let q = app.get_ok("/api/v1/appeals", &reviewer).await;
    let id = q["appeals"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(q["appeals"][0]["reason"], reason);
    assert_eq!(q["counts"]["received"], 1, "{q}");
    app.expect_error(
        "GET",
        "/api/v1/appeals",
        &isp_token,
        None,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // who proposed or approved the order may not review it
    for involved in [&officer, &approver] {
        app.expect_error(
            "POST",
            &format!("/api/v1/appeals/{id}/review"),
            involved,
            Some(json!({})),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    answered(
        &app,
        &format!("/api/v1/appeals/{id}/review"),
        &reviewer,
        json!({}),
        "under_review",
    )
    .await;
    app.expect_error(
        "POST",
        &format!("/api/v1/appeals/{id}/decision"),
        &approver,
        Some(json!({"outcome": "rejected", "reasons": "stands"})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let decision = json!({"outcome": "upheld", "reasons": "The site is a bakery; the name was listed by mistake."});
    answered(
        &app,
        &format!("/api/v1/appeals/{id}/decision"),
        &reviewer,
        decision,
        "upheld",
    )
    .await;

    // the order is lifted and its names leave the zone
    let o = app
        .get_ok(&format!("/api/v1/orders/{order}"), &officer)
        .await;
    assert_eq!(o["state"], "lifted", "{o}");
    assert!(
        o["end_reason"]
            .as_str()
            .is_some_and(|r| r.contains(&reference)),
        "{o}"
    );
    let (s, zone, _) = app.text("/api/v1/blocklist.rpz", &isp_token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !zone.contains("bakery-judi.example") && !zone.contains("slot77.example"),
        "{zone}"
    );
    let l = app
        .call("GET", "/api/v1/lookup?name=bakery-judi.example", None, None)
        .await
        .1;
    assert_eq!(l["blocked"], false, "{l}");
    assert_eq!(
        l["lifted_after_appeal"]["reference"],
        reference.as_str(),
        "{l}"
    );
    let page = app
        .client
        .get(format!("{}/block?name=bakery-judi.example", app.base))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("after appeal") && page.contains(&reference),
        "{page}"
    );
    let status = app
        .call("GET", &format!("/api/v1/appeals/{reference}"), None, None)
        .await
        .1;
    assert_eq!(status["outcome"], "upheld");
    assert!(
        status["reasons"]
            .as_str()
            .is_some_and(|r| r.contains("bakery"))
    );

    // a party's appeal: its kind comes from its token; decided twice is a 409
    let (s, b) = app
        .post(
            "/api/v1/appeals",
            &isp_token,
            json!({"order_id": order, "reason": "our customers report the bakery unreachable"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, v) = app
        .post(
            &format!("/api/v1/appeals/{id}/review"),
            &reviewer,
            json!({}),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "illegal_transition");

    // an appeal not decided in time is overdue (7 days by default)
    let q = app
        .get_ok("/api/v1/appeals?state=received", &reviewer)
        .await;
    assert_eq!(q["appeals"][0]["overdue"], false, "{q}");
    app.clock.advance_millis(7 * 24 * HOUR + 1000);
    let fired = app.store.fire_due_jobs(100).await.expect("jobs");
    assert!(
        fired
            .fired
            .iter()
            .any(|f| f.kind == tapis_core::job::JobKind::AppealDeadline),
        "{fired:?}"
    );
    let q = app
        .get_ok("/api/v1/appeals?state=received", &reviewer)
        .await;
    assert_eq!(q["appeals"][0]["overdue"], true, "{q}");
    assert_eq!(q["counts"]["overdue"], 1, "{q}");

    // a platform appeals an item of its own notice; upheld, the item is
    // withdrawn and the platform gets the signed withdrawal
    let platform = app.party("platform", "Messenger").await;
    let other = app.party("platform", "Other").await;
    let agent = app.token(&platform, "platform_agent").await;
    let stranger = app.token(&other, "platform_agent").await;
    let n = delivered_notice(&app, &officer, &agent, &platform, 2).await;
    let nid = n["id"].as_str().expect("id").to_owned();
    let item = n["items"][0]["id"].as_str().expect("item").to_owned();
    let (s, d) = app
        .post(
            &format!("/api/v1/notices/{nid}/items/{item}/dispute"),
            &agent,
            json!({"reason": "news reporting"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let body = json!({"notice_id": nid, "item_id": item, "reason": "the channel is a news outlet, not propaganda"});
    app.expect_error(
        "POST",
        "/api/v1/appeals",
        &stranger,
        Some(body.clone()),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (s, a) = app.post("/api/v1/appeals", &agent, body).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let q = app
        .get_ok("/api/v1/appeals?state=received", &reviewer)
        .await;
    let item_appeal = q["appeals"]
        .as_array()
        .and_then(|all| all.iter().find(|x| x["item_id"] == item.as_str()))
        .expect("the item's appeal")
        .clone();
    assert_eq!(item_appeal["appellant_kind"], "platform");
    let aid = item_appeal["id"].as_str().expect("id");
    app.expect_error(
        "POST",
        &format!("/api/v1/appeals/{aid}/review"),
        &officer,
        Some(json!({})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    answered(
        &app,
        &format!("/api/v1/appeals/{aid}/review"),
        &reviewer,
        json!({}),
        "under_review",
    )
    .await;
    let decision = json!({"outcome": "upheld", "reasons": "News reporting is protected."});
    answered(
        &app,
        &format!("/api/v1/appeals/{aid}/decision"),
        &reviewer,
        decision,
        "upheld",
    )
    .await;
    let after = app.get_ok(&format!("/api/v1/notices/{nid}"), &agent).await;
    assert_eq!(after["items"][0]["state"], "withdrawn", "{after}");
    assert_eq!(
        after["state"], "acknowledged",
        "no dispute left open: {after}"
    );
    let q = app
        .get_ok(&format!("/api/v1/notices/{nid}/questions"), &agent)
        .await;
    assert_eq!(q["disputes"][0]["state"], "withdrawn", "{q}");
    let timeline = app
        .get_ok(&format!("/api/v1/notices/{nid}/timeline"), &agent)
        .await
        .to_string();
    assert!(
        timeline.contains("notice.resumed"),
        "the pause ended: {timeline}"
    );
    let receipts = json!(
        app.store
            .receipts(tapis_core::NoticeId::parse(&nid).expect("id"))
            .await
            .expect("receipts")
    )
    .to_string();
    assert!(receipts.contains("tapis.withdrawal.v1"), "{receipts}");
    // counted: by kind and state, for the operator
    let (s, metrics, _) = app.text("/metrics", &app.admin, None).await;
    assert_eq!(s, StatusCode::OK);
    for series in [
        "{kind=\"appeal\",state=\"upheld\"} 2",
        "{kind=\"appeal\",state=\"overdue\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }

    // the public's appeals are limited per address
    let mut limited = false;
    for _ in 0..10 {
        let (s, _) = app
            .call(
                "POST",
                "/api/v1/appeals",
                None,
                Some(json!({"order_id": order, "reason": "again and again and again"})),
            )
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(s, StatusCode::CREATED);
    }
    assert!(limited, "a few appeals an hour per address");
    app.stop().await;
}

#[tokio::test]
async fn appeals_on_every_backend() {
    for b in backends() {
        appeal_story(b).await;
    }
}
