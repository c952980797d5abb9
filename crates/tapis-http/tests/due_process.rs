//! Due process on the blocking path, on every backend: an order touching a
//! registered platform's names is told to the platform before it takes
//! effect (lead time), the platform's response is recorded, and the RPZ
//! compiler keeps the order out of the zone until an authoriser signs —
//! whatever path the order came by. An emergency order goes in force
//! without the signature and lapses on its own.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_core::PartyId;
use tapis_core::sign::Signer;

fn order(targets: Value, effective: &str, emergency: bool) -> Value {
    json!({"targets": targets, "action": "nxdomain", "category": "terrorism",
           "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Preventing the spread of unlawful content."},
           "explanation": "55 public channels carried propaganda; six requests went unanswered.",
           "effective_at": effective, "expires_at": "2017-04-28T04:00:00Z",
           "review_at": "2017-04-20T04:00:00Z", "emergency": emergency})
}

async fn blocked(app: &App, name: &str) -> bool {
    let (_, l) = app
        .call("GET", &format!("/api/v1/lookup?name={name}"), None, None)
        .await;
    l["blocked"] == true
}

async fn zone_has(app: &App, owner: &str) -> bool {
    let (_, records) = app.store.rpz_records().await.expect("zone");
    records.iter().any(|r| r.owner == owner)
}

async fn due_process_story(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let officer = app.token(&app.authority_id, "officer").await;
    let approver = app.token(&app.authority_id, "approver").await;
    let auditor = app.token(&app.authority_id, "auditor").await;
    let (s, chat) = app
        .post(
            "/api/v1/parties",
            &app.admin,
            json!({"kind": "platform", "name": "Chat", "domains": ["chat.example", "t.example"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{chat}");
    let chat = chat["id"].as_str().expect("id").to_owned();
    let agent = app.token(&chat, "platform_agent").await;
    let other = app.party("platform", "Other").await;
    let other_agent = app.token(&other, "platform_agent").await;
    // the court's key is enrolled on the host (`tapis authoriser enrol`)
    let court_key = Signer::from_seed([9; 32]);
    let enrolled = app
        .store
        .enrol_authoriser(
            &tapis_core::audit::Actor::system("test host"),
            "Administrative Court",
            &court_key.public_key_b64(),
        )
        .await
        .expect("enrol");
    let court = enrolled.party_id.to_string();
    let judge = app.token(&court, "authoriser").await;
    // an authoriser token cannot be held by the authority
    let (s, _) = app
        .post(
            &format!("/api/v1/parties/{}/tokens", app.authority_id),
            &app.admin,
            json!({"role": "authoriser", "label": "self-authorising"}),
        )
        .await;
    assert!(s.is_client_error(), "{s}");

    // the clock is 2017-03-29T02:00Z. An order on the platform's own
    // domain must leave it the lead time; proposed for 31 March, it is
    // told to the platform at once
    let whole = order(
        json!([{"name": "chat.example", "include_subdomains": true}]),
        "2017-03-29T06:00:00Z",
        false,
    );
    let (s, v) = app.post("/api/v1/orders", &officer, whole).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, o) = app
        .post(
            "/api/v1/orders",
            &officer,
            order(
                json!([{"name": "chat.example", "include_subdomains": true}]),
                "2017-03-31T04:00:00Z",
                false,
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().expect("id").to_owned();
    let (s, dp) = app
        .get(&format!("/api/v1/orders/{id}/due-process"), &officer)
        .await;
    assert_eq!(s, StatusCode::OK, "{dp}");
    assert_eq!(
        dp["needs_authorisation"][0]["kind"], "platform_domain",
        "{dp}"
    );
    assert_eq!(dp["platforms"], json!([chat]), "{dp}");
    assert!(dp["platforms_notified_at"].is_string(), "{dp}");
    assert!(dp["publication"].is_null(), "{dp}");

    // the platform got the draft, its legal basis and its blast radius
    let events = app
        .store
        .platform_events(PartyId::parse(&chat).expect("id"), 0, 100)
        .await
        .expect("events");
    let told = events
        .iter()
        .find(|e| e.event_type == "order.proposed")
        .expect("the platform was told");
    let data = &told.payload["data"];
    assert_eq!(data["order_id"], id.as_str(), "{data}");
    assert_eq!(data["legal_basis"]["reference"], "Law 11/2008 art. 40");
    assert_eq!(
        data["blast_radius"]["targets_touching_you"][0]["touches"][0], "chat.example",
        "{data}"
    );
    assert!(
        app.store
            .platform_events(PartyId::parse(&other).expect("id"), 0, 100)
            .await
            .expect("events")
            .iter()
            .all(|e| e.event_type != "order.proposed"),
        "a platform not affected is not told"
    );

    // the platform reads it and answers; another platform cannot see it
    let (s, _) = app.get(&format!("/api/v1/orders/{id}"), &agent).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.get(&format!("/api/v1/orders/{id}"), &other_agent).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/api/v1/orders", &agent).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "no list of every order for a platform"
    );
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/responses"),
            &other_agent,
            json!({"kind": "dispute", "text": "not ours"}),
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/responses"),
            &agent,
            json!({"kind": "shrug", "text": "?"}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, r) = app
        .post(
            &format!("/api/v1/orders/{id}/responses"),
            &agent,
            json!({"kind": "comply", "text": "We removed the 55 channels and appointed a contact for the government channel."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (_, dp) = app
        .get(&format!("/api/v1/orders/{id}/due-process"), &judge)
        .await;
    assert_eq!(dp["responses"][0]["kind"], "comply", "{dp}");

    // approved; at its time the compiler withholds it: no authorisation
    app.approve(&id, &approver, "scheduled").await;
    app.clock
        .advance_millis(2 * 86_400 * 1000 + 2 * 3600 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let (_, o) = app.get(&format!("/api/v1/orders/{id}"), &officer).await;
    assert_eq!(o["state"], "scheduled", "withheld, waiting: {o}");
    assert!(!blocked(&app, "chat.example").await);
    assert!(!zone_has(&app, "chat.example").await);
    assert_eq!(app.store.rpz_serial().await.expect("serial"), 0);

    // a signature by another key, or over another statement, is refused
    let statement = dp["statement_to_sign"].clone();
    assert_eq!(statement["order_id"], id.as_str());
    let forged = Signer::from_seed([8; 32])
        .seal(statement.clone())
        .expect("seal");
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &judge,
            json!({"decision": "authorise", "reasons": "ok", "signature": forged["signature"]}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let mut other_stmt = statement.clone();
    other_stmt["order_sha256"] = json!("00".repeat(32));
    let wrong = court_key.seal(other_stmt).expect("seal");
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &judge,
            json!({"decision": "authorise", "reasons": "ok", "signature": wrong["signature"]}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    // only the authoriser signs
    let signed = court_key.seal(statement).expect("seal");
    let (s, _) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &approver,
            json!({"decision": "authorise", "reasons": "ok", "signature": signed["signature"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // the court authorises: the order, due since yesterday, goes in force
    let (s, a) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &judge,
            json!({"decision": "authorise", "reasons": "Proportionate for two weeks after six unanswered requests.", "signature": signed["signature"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["order"]["state"], "in_force", "{a}");
    assert_eq!(
        a["receipt"]["payload"]["statement"]["decision"],
        "authorise"
    );
    assert!(blocked(&app, "www.chat.example").await);
    assert!(zone_has(&app, "*.chat.example").await);
    let (_, dp) = app
        .get(&format!("/api/v1/orders/{id}/due-process"), &auditor)
        .await;
    assert_eq!(dp["publication"]["basis"], "authorised", "{dp}");

    // an emergency order on the platform's other domain goes in force
    // without a signature, and lapses 48 h later unless authorised
    let now = app.store.now();
    let (s, e) = app
        .post(
            "/api/v1/orders",
            &officer,
            order(
                json!([{"name": "t.example", "include_subdomains": false}]),
                &now.to_string(),
                true,
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let eid = e["id"].as_str().expect("id").to_owned();
    app.approve(&eid, &approver, "in_force").await;
    assert!(blocked(&app, "t.example").await);
    let (_, dp) = app
        .get(&format!("/api/v1/orders/{eid}/due-process"), &officer)
        .await;
    assert_eq!(dp["publication"]["basis"], "emergency", "{dp}");
    app.clock.advance_millis(47 * 3600 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    assert!(blocked(&app, "t.example").await, "still within 48 h");
    app.clock.advance_millis(3600 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let (_, e) = app.get(&format!("/api/v1/orders/{eid}"), &officer).await;
    assert_eq!(e["state"], "expired", "{e}");
    assert_eq!(
        e["end_reason"], "lapsed: emergency order not authorised within 48 h",
        "{e}"
    );
    assert!(!blocked(&app, "t.example").await);
    assert!(!zone_has(&app, "t.example").await);
    assert!(
        blocked(&app, "chat.example").await,
        "the authorised one stays"
    );

    // an order that reaches the compiler by another path (written into the
    // database directly, scheduled and due) is held to the same rule
    let sneaky = "0193aaaa-0000-7000-8000-000000000001";
    let t = app.store.now().unix_millis();
    app.store
        .raw_execute(&format!(
            "INSERT INTO orders (id, state, action, category, legal_basis_reference, legal_basis_text, explanation, effective_at, \
             expires_at, review_at, notices, escalation_id, target_count, proposer_party_id, proposer_token_id, proposer_label, created_at, updated_at) \
             VALUES ('{sneaky}', 'scheduled', 'nxdomain', 'terrorism', 'none', 'none', NULL, {t}, {e}, {e}, '[]', NULL, 1, '{p}', 'no-token', 'side door', {t}, {t}); \
             INSERT INTO order_targets (order_id, name, include_subdomains) VALUES ('{sneaky}', 't.example', 1); \
             INSERT INTO jobs (id, kind, subject_id, due_at, state) VALUES ('0193aaaa-0000-7000-8000-0000000000j1', 'order_activate', '{sneaky}', {t}, 'pending');",
            e = t + 86_400_000,
            p = app.authority_id,
        ))
        .await
        .expect("direct insert");
    app.store.fire_due_jobs(100).await.expect("jobs");
    assert!(
        !zone_has(&app, "t.example").await,
        "the compiler refused it"
    );
    assert!(!zone_has(&app, "*.t.example").await);
    let (_, o) = app.get(&format!("/api/v1/orders/{sneaky}"), &officer).await;
    assert_eq!(o["state"], "scheduled", "{o}");

    // the chain records every step
    let (_, v) = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(v["ok"], true, "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_process_on_every_backend() {
    for b in backends() {
        due_process_story(b).await;
    }
}
