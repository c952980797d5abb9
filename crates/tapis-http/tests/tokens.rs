//! Token lifetimes and who sees and revokes which credentials, on every
//! backend: a token may be made to expire (and then authenticates
//! nothing); a party lists every credential acting for it, with when each
//! was first used, and revokes them; another party's tokens are a 404; an
//! authority officer manages none; revocation happens once.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn tokens_expire_and_parties_manage_their_own(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let authority = app.authority_id.clone();
    let tokens = format!("/api/v1/parties/{authority}/tokens");

    // an expiry in the past, or too far ahead, or not a time: 422 naming it
    for bad in [
        json!("2017-03-29T08:59:59+07:00"),
        json!("2030-01-01T00:00:00Z"),
        json!("next tuesday"),
    ] {
        let v = app
            .expect_error(
                "POST",
                &tokens,
                &app.admin,
                Some(json!({"role": "officer", "label": "temp", "person": "Temp", "expires_at": bad})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            )
            .await;
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("expires_at")),
            "{v}"
        );
    }

    // a contractor's token for one day
    let (s, made) = app
        .post(
            &tokens,
            &app.admin,
            json!({"role": "officer", "label": "contractor", "person": "C. Temp",
                   "expires_at": "2017-03-30T09:00:00+07:00"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["expires_at"], "2017-03-30T02:00:00.000Z", "{made}");
    let temp = made["token"].as_str().expect("token").to_owned();
    let (s, me) = app.get("/api/v1/whoami", &temp).await;
    assert_eq!(s, StatusCode::OK, "{me}");

    // the list shows it, first used, expiring, never its secret
    let (s, list) = app.get(&tokens, &app.admin).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let row = list
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["id"] == made["id"])
        .expect("listed")
        .clone();
    assert_eq!(row["expires_at"], made["expires_at"]);
    assert!(row["first_used_at"].is_string(), "{row}");
    assert!(row["revoked_at"].is_null(), "{row}");
    assert!(
        !list.to_string().contains(&temp),
        "secrets are never listed"
    );

    // a day and a second later it authenticates nothing
    app.clock.advance_millis(24 * 3600 * 1000 + 1000);
    let v = app
        .expect_error(
            "GET",
            "/api/v1/whoami",
            &temp,
            None,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    assert!(v.to_string().contains("expired"), "{v}");

    // a platform sees and revokes the credentials acting for it
    let chat = app.party("platform", "Chat").await;
    let agent = app.token(&chat, "platform_agent").await;
    let chat_tokens = format!("/api/v1/parties/{chat}/tokens");
    let (s, v) = app
        .post(
            &chat_tokens,
            &agent,
            json!({"role": "platform_agent", "label": "ingest bot"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let bot_id = v["id"].as_str().expect("id").to_owned();
    let bot = v["token"].as_str().expect("token").to_owned();
    let (s, list) = app.get(&chat_tokens, &agent).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let never_used = list
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["id"] == bot_id.as_str())
        .expect("bot listed");
    assert!(never_used["first_used_at"].is_null(), "{never_used}");

    // another platform's list and tokens are a 404; an officer manages none
    let other = app.party("platform", "Other").await;
    let other_agent = app.token(&other, "platform_agent").await;
    app.expect_error(
        "GET",
        &chat_tokens,
        &other_agent,
        None,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.expect_error(
        "POST",
        &format!("/api/v1/tokens/{bot_id}/revoke"),
        &other_agent,
        Some(json!({})),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let officer = app.token(&authority, "officer").await;
    app.expect_error(
        "GET",
        &chat_tokens,
        &officer,
        None,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // the platform revokes its bot: once, audited, and it stops working
    let (s, v) = app
        .post(
            &format!("/api/v1/tokens/{bot_id}/revoke"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.expect_error(
        "GET",
        "/api/v1/whoami",
        &bot,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    app.expect_error(
        "POST",
        &format!("/api/v1/tokens/{bot_id}/revoke"),
        &agent,
        Some(json!({})),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    // a token may revoke itself
    let other_id = app.get_ok("/api/v1/whoami", &other_agent).await["token_id"].clone();
    let (s, v) = app
        .post(
            &format!("/api/v1/tokens/{}/revoke", other_id.as_str().expect("id")),
            &other_agent,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let report = app.store.verify_audit().await.expect("verify");
    assert!(report.first_break.is_none(), "{report:?}");
    let revoked: Vec<Value> = app
        .store
        .list_tokens(tapis_core::PartyId::parse(&chat).expect("id"))
        .await
        .expect("list")
        .into_iter()
        .filter(|t| t.revoked_at.is_some())
        .map(|t| json!(t.info.id.to_string()))
        .collect();
    assert_eq!(revoked, vec![json!(bot_id)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_parties_manage_their_own_on_every_backend() {
    for b in backends() {
        tokens_expire_and_parties_manage_their_own(b).await;
    }
}
