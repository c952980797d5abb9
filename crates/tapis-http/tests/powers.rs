//! Separation of powers, on every backend, as an attacker holding the
//! authority's admin token would try it: no authority role can act as the
//! authoriser or as another party, four eyes compares people, and an
//! authoriser's refusal counts only where an authorisation is needed.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tapis_core::audit::Actor;
use tapis_core::sign::Signer;

fn order(targets: Value, effective: &str) -> Value {
    json!({"targets": targets, "action": "nxdomain", "category": "terrorism",
           "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Preventing the spread of unlawful content."},
           "explanation": "Public channels carried propaganda.",
           "effective_at": effective, "expires_at": "2017-04-28T04:00:00Z",
           "review_at": "2017-04-20T04:00:00Z"})
}

/// An authority token for `person` (admin-made, as the authority's own).
async fn staff(app: &App, role: &str, label: &str, person: Option<&str>) -> String {
    let mut body = json!({"role": role, "label": label});
    if let Some(p) = person {
        body["person"] = json!(p);
    }
    let (s, v) = app
        .post(
            &format!("/api/v1/parties/{}/tokens", app.authority_id),
            &app.admin,
            body,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

async fn put(app: &App, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call("PUT", path, Some(token), Some(body)).await
}

async fn sign(app: &App, id: &str, token: &str, key: &Signer, decision: &str) -> String {
    let (s, dp) = app
        .get(&format!("/api/v1/orders/{id}/due-process"), token)
        .await;
    assert_eq!(s, StatusCode::OK, "{dp}");
    let mut statement = dp["statement_to_sign"].clone();
    statement["decision"] = json!(decision);
    key.seal(statement).expect("seal")["signature"]
        .as_str()
        .expect("signature")
        .to_owned()
}

async fn authoriser_keys_are_enrolled_on_the_host(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let officer = staff(&app, "officer", "duty officer", Some("A. Putri")).await;
    let approver = staff(&app, "approver", "director", Some("B. Santoso")).await;
    let (s, chat) = app
        .post(
            "/api/v1/parties",
            &app.admin,
            json!({"kind": "platform", "name": "Chat", "domains": ["chat.example"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{chat}");

    // the real court's key, enrolled on the host
    let court_key = Signer::from_seed([9; 32]);
    let host = Actor::system("host operator");
    let enrolled = app
        .store
        .enrol_authoriser(&host, "Administrative Court", &court_key.public_key_b64())
        .await
        .expect("enrol");
    let court = enrolled.party_id.to_string();
    let judge = app.token(&court, "authoriser").await;

    // the admin invents an authoriser and tries to give it a key: refused,
    // naming the host step; so is replacing the real court's key, whoever asks
    let fake = app.party("authoriser", "Friendly Tribunal").await;
    let fake_judge = app.token(&fake, "authoriser").await;
    let admin_key = Signer::from_seed([66; 32]);
    for (party, token) in [
        (&fake, &app.admin),
        (&fake, &fake_judge),
        (&court, &app.admin),
        (&court, &judge),
    ] {
        let (s, v) = put(
            &app,
            &format!("/api/v1/parties/{party}/channel"),
            token,
            json!({"public_key": admin_key.public_key_b64()}),
        )
        .await;
        assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("tapis authoriser enrol")),
            "{v}"
        );
    }
    // nor can the admin hold an authoriser token directly
    let (s, v) = app
        .post(
            &format!("/api/v1/parties/{fake}/tokens"),
            &app.admin,
            json!({"role": "authoriser", "label": "me"}),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");

    // the public list: no token, each key with its fingerprint
    let (s, list) = app.call("GET", "/api/v1/authorisers", None, None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let raw = tapis_core::sign::parse_public_key("key", &court_key.public_key_b64()).expect("key");
    let fp = hex::encode(Sha256::digest(raw.as_bytes()));
    assert_eq!(
        list,
        json!([{"party_id": court, "name": "Administrative Court",
                "public_key": court_key.public_key_b64(), "fingerprint": fp,
                "enrolled_at": enrolled.enrolled_at.to_string(), "retired_at": null}])
    );

    // an order on the platform's own domain, approved, due
    let (s, o) = app
        .post(
            "/api/v1/orders",
            &officer,
            order(
                json!([{"name": "chat.example", "include_subdomains": true}]),
                "2017-03-31T04:00:00Z",
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().expect("id").to_owned();
    let (s, o) = app
        .post(
            &format!("/api/v1/orders/{id}/approve"),
            &approver,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    app.clock.advance_millis(3 * 24 * 3600 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");

    // the fake authoriser's signature, with the admin's key, counts for nothing
    let forged = sign(&app, &id, &fake_judge, &admin_key, "authorise").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &fake_judge,
            json!({"decision": "authorise", "reasons": "fine", "signature": forged}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    // nor does the real court's token signing with the admin's key
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &judge,
            json!({"decision": "authorise", "reasons": "fine", "signature": forged}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (_, dp) = app
        .get(&format!("/api/v1/orders/{id}/due-process"), &officer)
        .await;
    assert!(dp["publication"].is_null(), "{dp}");

    // the court signs with its enrolled key: published as authorised
    let signed = sign(&app, &id, &judge, &court_key, "authorise").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/authorisation"),
            &judge,
            json!({"decision": "authorise", "reasons": "proportionate", "signature": signed}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, dp) = app
        .get(&format!("/api/v1/orders/{id}/due-process"), &officer)
        .await;
    assert_eq!(dp["publication"]["basis"], "authorised", "{dp}");

    // a rotation on the host retires the old key, on the audit log
    let next = Signer::from_seed([10; 32]);
    app.store
        .enrol_authoriser(&host, "Administrative Court", &next.public_key_b64())
        .await
        .expect("rotate");
    let (_, list) = app.call("GET", "/api/v1/authorisers", None, None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert!(list[0]["retired_at"].is_string(), "{list}");
    let events = app.store.events_for("party", &court).await.expect("events");
    let enrolments: Vec<&Value> = events
        .iter()
        .filter(|e| e.action == "authoriser.key_enrolled")
        .map(|e| &e.after)
        .collect();
    assert_eq!(enrolments.len(), 2, "{events:?}");
    assert_eq!(enrolments[0]["fingerprint"], fp);
    // weak keys are refused at enrolment
    let identity = base64_identity();
    assert!(
        app.store
            .enrol_authoriser(&host, "Administrative Court", &identity)
            .await
            .is_err()
    );
    app.stop().await;
}

/// The Ed25519 identity point (0x01 then 31 zero bytes), a weak key.
fn base64_identity() -> String {
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()
}

async fn no_authority_role_holds_another_partys_credential(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "Chat").await;
    let other = app.party("platform", "Other").await;

    // the admin cannot mint a platform agent
    let (s, v) = app
        .post(
            &format!("/api/v1/parties/{platform}/tokens"),
            &app.admin,
            json!({"role": "platform_agent", "label": "impersonation"}),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invitations")),
        "{v}"
    );

    // it invites; the platform redeems the code without a token
    let code = app.invitation(&platform, "platform_agent").await;
    let accept = format!("/api/v1/invitations/{code}/accept");
    let (s, v) = app
        .call(
            "POST",
            &accept,
            None,
            Some(json!({"role": "isp_operator", "label": "desk"})),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, v) = app
        .call(
            "POST",
            &accept,
            None,
            Some(json!({"role": "platform_agent", "label": "trust & safety", "person": "C. Lee"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["person"], "c. lee", "{v}");
    let agent = v["token"].as_str().expect("token").to_owned();
    let (_, me) = app.get("/api/v1/whoami", &agent).await;
    assert_eq!(me["party_id"], json!(platform), "{me}");
    // a code works once
    let (s, v) = app
        .call("POST", &accept, None, Some(json!({"label": "again"})))
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, v) = app
        .call(
            "POST",
            "/api/v1/invitations/tapis_inv_nope/accept",
            None,
            Some(json!({"label": "x"})),
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    // and expires after seven days
    let late = app.invitation(&other, "platform_agent").await;
    app.clock
        .advance_millis(tapis_store::INVITATION_LIFETIME_MS + 1000);
    let (s, v) = app
        .call(
            "POST",
            &format!("/api/v1/invitations/{late}/accept"),
            None,
            Some(json!({"label": "late"})),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    // the invitation is on the party's audit trail, as is its redemption
    let events = app
        .store
        .events_for("party", &platform)
        .await
        .expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for a in ["invitation.created", "token.created", "invitation.accepted"] {
        assert!(actions.contains(&a), "{actions:?}");
    }

    // the platform's own agent makes more agents for itself, and nothing else
    let path = format!("/api/v1/parties/{platform}/tokens");
    let (s, v) = app
        .post(
            &path,
            &agent,
            json!({"role": "platform_agent", "label": "bot"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post(
            &format!("/api/v1/parties/{other}/tokens"),
            &agent,
            json!({"role": "platform_agent", "label": "bot"}),
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    // now that the platform has members, they invite the next ones, not
    // the authority
    let invite = format!("/api/v1/parties/{platform}/invitations");
    let (s, v) = app
        .post(&invite, &app.admin, json!({"role": "platform_agent"}))
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, v) = app
        .post(&invite, &agent, json!({"role": "platform_agent"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post(
            &format!("/api/v1/parties/{other}/invitations"),
            &agent,
            json!({"role": "platform_agent"}),
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");

    // only the platform rotates its channel key
    let channel = format!("/api/v1/parties/{platform}/channel");
    let own = Signer::from_seed([3; 32]).public_key_b64();
    let (s, v) = put(&app, &channel, &agent, json!({"public_key": own})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let admin_key = Signer::from_seed([66; 32]).public_key_b64();
    let (s, v) = put(&app, &channel, &app.admin, json!({"public_key": admin_key})).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    // the admin may still set its webhook addresses; the key stays
    let (s, v) = put(
        &app,
        &channel,
        &app.admin,
        json!({"emails": ["abuse@chat.example"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["public_key"], json!(own), "{v}");
    let (s, v) = put(&app, &channel, &agent, json!({"public_key": null})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["public_key"].is_null(), "{v}");
    app.stop().await;
}

async fn four_eyes_compares_people(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let officer = staff(&app, "officer", "duty officer", Some("J. Doe")).await;
    let same = staff(
        &app,
        "approver",
        "J. Doe (approver hat)",
        Some("  j.   DOE "),
    )
    .await;
    let other = staff(&app, "approver", "director", Some("R. Roe")).await;
    let bot = staff(&app, "officer", "ingest bot", None).await;
    let bot_approver = staff(&app, "approver", "approval bot", None).await;
    let body = order(
        json!([{"name": "judi.example", "include_subdomains": false}]),
        "2017-03-30T04:00:00Z",
    );
    // a machine credential does not propose
    let (s, v) = app.post("/api/v1/orders", &bot, body.clone()).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, o) = app.post("/api/v1/orders", &officer, body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().expect("id").to_owned();
    let approve = format!("/api/v1/orders/{id}/approve");
    // the same person under another label and token, and a machine: refused
    for token in [&same, &bot_approver] {
        let (s, v) = app.post(&approve, token, json!({})).await;
        assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    }
    let (s, o) = app.post(&approve, &other, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    // nor does a machine credential decide an escalation (a person gets
    // as far as finding there is none)
    let decide = "/api/v1/escalations/0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a/decision";
    let body = json!({"decision": "dismiss", "note": "no"});
    let (s, v) = app.post(decide, &bot_approver, body.clone()).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = app.post(decide, &other, body).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    // the audit actor records the people
    let events = app.store.events_for("order", &id).await.expect("events");
    let proposed = events
        .iter()
        .find(|e| e.action == "order.proposed")
        .expect("proposed");
    assert_eq!(proposed.actor["person"], "j. doe", "{:?}", proposed.actor);
    let approved = events
        .iter()
        .find(|e| e.action == "order.approved")
        .expect("approved");
    assert_eq!(approved.actor["person"], "r. roe", "{:?}", approved.actor);
    app.stop().await;
}

async fn a_refusal_counts_only_where_authorisation_is_needed(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let officer = staff(&app, "officer", "duty officer", Some("A. Putri")).await;
    let approver = staff(&app, "approver", "director", Some("B. Santoso")).await;
    let (s, chat) = app
        .post(
            "/api/v1/parties",
            &app.admin,
            json!({"kind": "platform", "name": "Chat", "domains": ["chat.example"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{chat}");
    let court_key = Signer::from_seed([9; 32]);
    let court = app
        .store
        .enrol_authoriser(
            &Actor::system("host operator"),
            "Administrative Court",
            &court_key.public_key_b64(),
        )
        .await
        .expect("enrol")
        .party_id
        .to_string();
    let judge = app.token(&court, "authoriser").await;
    let propose = |targets: Value| {
        let officer = officer.clone();
        let approver = approver.clone();
        let app = &app;
        async move {
            let (s, o) = app
                .post(
                    "/api/v1/orders",
                    &officer,
                    order(targets, "2017-03-31T04:00:00Z"),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{o}");
            let id = o["id"].as_str().expect("id").to_owned();
            let (s, o) = app
                .post(
                    &format!("/api/v1/orders/{id}/approve"),
                    &approver,
                    json!({}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{o}");
            id
        }
    };
    let plain = propose(json!([{"name": "judi.example", "include_subdomains": false}])).await;
    let sensitive = propose(json!([{"name": "chat.example", "include_subdomains": false}])).await;
    app.clock.advance_millis(3 * 24 * 3600 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let (_, o) = app.get(&format!("/api/v1/orders/{plain}"), &officer).await;
    assert_eq!(o["state"], "in_force", "{o}");

    // refusing an order that needs no authorisation: a conflict, and it stands
    let sig = sign(&app, &plain, &judge, &court_key, "refuse").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{plain}/authorisation"),
            &judge,
            json!({"decision": "refuse", "reasons": "disproportionate", "signature": sig}),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs no independent authorisation")),
        "{v}"
    );
    let (_, o) = app.get(&format!("/api/v1/orders/{plain}"), &officer).await;
    assert_eq!(o["state"], "in_force", "{o}");
    let (_, l) = app
        .call("GET", "/api/v1/lookup?name=judi.example", None, None)
        .await;
    assert_eq!(l["blocked"], true, "{l}");

    // refusing one that needs it: recorded, and it stays out of the zone
    let sig = sign(&app, &sensitive, &judge, &court_key, "refuse").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{sensitive}/authorisation"),
            &judge,
            json!({"decision": "refuse", "reasons": "disproportionate", "signature": sig}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, o) = app
        .get(&format!("/api/v1/orders/{sensitive}"), &officer)
        .await;
    assert_eq!(o["state"], "scheduled", "{o}");
    let (_, l) = app
        .call("GET", "/api/v1/lookup?name=chat.example", None, None)
        .await;
    assert_eq!(l["blocked"], false, "{l}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authoriser_keys_are_enrolled_on_the_host_on_every_backend() {
    for b in backends() {
        authoriser_keys_are_enrolled_on_the_host(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_authority_role_holds_another_partys_credential_on_every_backend() {
    for b in backends() {
        no_authority_role_holds_another_partys_credential(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_compares_people_on_every_backend() {
    for b in backends() {
        four_eyes_compares_people(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_counts_only_where_authorisation_is_needed_on_every_backend() {
    for b in backends() {
        a_refusal_counts_only_where_authorisation_is_needed(b).await;
    }
}
