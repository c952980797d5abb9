//! Blocking orders over HTTP, on every backend: proposal, blast radius,
//! four eyes, scheduled activation at the effective second, the public
//! lookup, the exports with ETags, lifting, expiry, and the serial and
//! journal that IXFR will serve.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_store::{SyncEvidence, SyncKind};

/// An order proposal running to 28 April with a review on 14 April.
fn order(targets: Value, action: &str, effective: &str) -> Value {
    json!({
        "targets": targets, "action": action, "category": "gambling",
        "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
        "explanation": "Operators ignored notices.",
        "effective_at": effective, "expires_at": "2017-04-28T04:00:00Z", "review_at": "2017-04-14T04:00:00Z",
    })
}

/// `officer` proposes `order(targets, action, effective)`.
async fn propose(
    app: &App,
    officer: &str,
    targets: Value,
    action: &str,
    effective: &str,
) -> (StatusCode, Value) {
    app.post("/api/v1/orders", officer, order(targets, action, effective))
        .await
}

async fn orders_story(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "Messenger").await;
    let (s, _) = app
        .call(
            "PUT",
            &format!("/api/v1/parties/{platform}/channel"),
            Some(&app.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // register the platform's domains
    let isp = app.party("isp", "NetCo").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let approver = app.token(&app.authority_id, "approver").await;
    let isp_token = app.token(&isp, "isp_operator").await;
    let agent = app.token(&platform, "platform_agent").await;

    // the clock is 2017-03-29T02:00Z; the order takes effect at 04:00Z
    let body = order(
        json!([{"name": "Judi-Online.example", "include_subdomains": true}, {"name": "slot88.example"}]),
        "nxdomain",
        "2017-03-29T04:00:00Z",
    );
    let (s, o) = app.post("/api/v1/orders", &officer, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["state"], "draft");
    assert_eq!(o["target_count"], 2);
    let id = o["id"].as_str().expect("id").to_owned();

    // only officers propose; an order without an end is refused
    let (s, _) = app.post("/api/v1/orders", &approver, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut endless = body.clone();
    endless.as_object_mut().expect("obj").remove("expires_at");
    let (s, v) = app.post("/api/v1/orders", &officer, endless).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

    // a second order covering a registered platform domain shows in the blast radius
    let (s, wide) = propose(
        &app,
        &officer,
        json!([{"name": "messenger.example", "include_subdomains": true}]),
        "walled_garden",
        "2017-03-29T04:00:00Z",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{wide}");
    let wide_id = wide["id"].as_str().expect("id");
    let _ = agent;
    let (s, br) = app
        .get(&format!("/api/v1/orders/{wide_id}/blast-radius"), &officer)
        .await;
    assert_eq!(s, StatusCode::OK, "{br}");
    assert_eq!(
        br["platform_domains_hit"], 0,
        "no domains registered yet: {br}"
    );
    let (s, chat) = app
        .post(
            "/api/v1/parties",
            &app.admin,
            json!({"kind": "platform", "name": "Chat", "domains": ["chat.example"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{chat}");
    // an order touching a platform's names must leave it the lead time (24 h)
    let (s, v) = propose(
        &app,
        &officer,
        json!([{"name": "cdn.chat.example"}, {"name": "example-judi.example"}]),
        "nxdomain",
        "2017-03-29T04:00:00Z",
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("24 h")),
        "{v}"
    );
    let (s, whole) = propose(
        &app,
        &officer,
        json!([{"name": "cdn.chat.example"}, {"name": "example-judi.example"}]),
        "nxdomain",
        "2017-03-31T04:00:00Z",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{whole}");
    let (s, br) = app
        .get(
            &format!(
                "/api/v1/orders/{}/blast-radius",
                whole["id"].as_str().expect("id")
            ),
            &officer,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{br}");
    assert_eq!(br["platform_domains_hit"], 1, "{br}");
    assert_eq!(br["targets"][0]["platforms"][0]["name"], "Chat", "{br}");

    // four eyes: the proposer's own approval is refused, even with an approver token of the same person
    let (s, v) = app
        .post(&format!("/api/v1/orders/{id}/approve"), &officer, json!({}))
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    app.approve(&id, &approver, "scheduled").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/approve"),
            &approver,
            json!({}),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "illegal_transition");

    // nothing is blocked before the effective time
    let (s, l) = app
        .call(
            "GET",
            "/api/v1/lookup?name=www.judi-online.example",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["blocked"], false);
    assert_eq!(app.store.rpz_serial().await.expect("serial"), 0);

    // at the effective second the scheduler puts it in force: a serial bump
    app.clock.advance_millis(2 * 3600 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let (_, o) = app.get(&format!("/api/v1/orders/{id}"), &officer).await;
    assert_eq!(o["state"], "in_force");
    assert_eq!(app.store.rpz_serial().await.expect("serial"), 1);
    for (name, matched) in [
        ("judi-online.example", "judi-online.example"),
        ("a.b.judi-online.example", "*.judi-online.example"),
        ("slot88.example", "slot88.example"),
    ] {
        let (_, l) = app
            .call("GET", &format!("/api/v1/lookup?name={name}"), None, None)
            .await;
        assert_eq!(
            (l["blocked"].as_bool(), l["matched"].as_str()),
            (Some(true), Some(matched)),
            "{name}: {l}"
        );
        assert_eq!(l["order"]["id"], id.as_str());
        assert_eq!(
            l["order"]["legal_basis"]["reference"],
            "Law 11/2008 art. 27(2)"
        );
    }
    let (_, l) = app
        .call("GET", "/api/v1/lookup?name=www.slot88.example", None, None)
        .await;
    assert_eq!(l["blocked"], false, "no subdomains for slot88: {l}");
    let (s, v) = app
        .call("GET", "/api/v1/lookup?name=not%20a%20name", None, None)
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    // a browser sent to the block page by a walled garden sees why
    let page = app
        .client
        .get(format!("{}/some/path?q=1", app.base))
        .header("Host", "www.judi-online.example")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("This site is blocked")
            && html.contains(&id)
            && html.contains("Law 11/2008 art. 27(2)"),
        "{html}"
    );
    assert!(
        html.contains("review"),
        "the page says how to appeal: {html}"
    );
    let page = app
        .client
        .get(format!("{}/block?name=slot88.example", app.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let page = app
        .client
        .get(format!("{}/block?name=fine.example", app.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("not blocked"));
    let (s, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK, "the API itself is unaffected");

    // exports, for ISPs, with ETags
    let (s, zone, tag) = app.text("/api/v1/blocklist.rpz", &isp_token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        zone.contains("*.judi-online.example CNAME .\n")
            && zone.contains("slot88.example CNAME .\n"),
        "{zone}"
    );
    assert!(
        zone.contains(" SOA ") && zone.contains("$ORIGIN rpz.tapis."),
        "{zone}"
    );
    // each record's explanation: the order, and a legal order is "censored"
    assert!(
        zone.contains(&format!(
            "*.judi-online.example._tapis TXT \"ref={id} cat=censored\"\n"
        )),
        "{zone}"
    );
    let (s, _, _) = app
        .text("/api/v1/blocklist.rpz", &isp_token, tag.as_deref())
        .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (_, domains, _) = app
        .text("/api/v1/blocklist/domains.txt", &isp_token, None)
        .await;
    assert_eq!(domains, "judi-online.example\nslot88.example\n");
    let (s, _, _) = app
        .text("/api/v1/blocklist/domains.txt", &agent, None)
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "platforms do not get the ISP list"
    );

    // the ISP registers its resolvers (and gets its TSIG key once), then
    // acknowledges the serial its resolvers enforce (public addresses: the
    // documentation ranges are special-purpose, refused unless the server
    // allows private targets; one host, not a network, may transfer
    // without TSIG)
    let (s, r) = app
        .call("PUT", &format!("/api/v1/parties/{isp}/resolvers"), Some(&isp_token), Some(json!({"resolvers": ["193.0.14.129"], "notify": ["193.0.14.129:5301"], "allow_transfer_from": ["193.0.14.129"]})))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(
        r["tsig_secret"].as_str().is_some_and(|k| k.len() >= 40),
        "{r}"
    );
    assert_eq!(r["tsig_algorithm"], "hmac-sha256");
    let (s, r2) = app
        .call(
            "PUT",
            &format!("/api/v1/parties/{isp}/resolvers"),
            Some(&isp_token),
            Some(json!({"resolvers": ["193.0.14.129"]})),
        )
        .await;
    assert_eq!(
        (s, r2["tsig_secret"].is_null()),
        (StatusCode::OK, true),
        "the secret is shown once: {r2}"
    );
    assert_eq!(r2["tsig_key_name"], r["tsig_key_name"]);
    let (s, v) = app
        .call(
            "PUT",
            &format!("/api/v1/parties/{isp}/resolvers"),
            Some(&isp_token),
            Some(json!({"allow_transfer_from": ["0.0.0.0/0"]})),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (_, c) = app.get("/api/v1/compliance", &officer).await;
    assert_eq!(c[0]["status"], "never", "{c}");
    let (s, v) = app
        .post("/api/v1/rpz/acknowledge", &isp_token, json!({"serial": 99}))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, c) = app
        .post("/api/v1/rpz/acknowledge", &isp_token, json!({"serial": 1}))
        .await;
    assert_eq!(
        (s, c["status"].as_str()),
        (StatusCode::OK, Some("current")),
        "{c}"
    );
    let (s, _) = app
        .post("/api/v1/rpz/acknowledge", &officer, json!({"serial": 1}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // an exception inside the blocked tree wins over the block
    let (s, ex) = propose(
        &app,
        &officer,
        json!([{"name": "help.judi-online.example"}]),
        "passthru",
        "2017-03-29T04:00:00Z",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ex}");
    let ex_id = ex["id"].as_str().expect("id");
    let (s, br) = app
        .get(&format!("/api/v1/orders/{ex_id}/blast-radius"), &officer)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(br["overlapping_orders"], 1, "{br}");
    app.approve(ex_id, &approver, "in_force").await;
    let (_, l) = app
        .call(
            "GET",
            "/api/v1/lookup?name=help.judi-online.example",
            None,
            None,
        )
        .await;
    assert_eq!(
        (l["blocked"].as_bool(), l["action"].as_str()),
        (Some(false), Some("passthru")),
        "{l}"
    );
    let (_, _, tag2) = app
        .text("/api/v1/blocklist.rpz", &isp_token, tag.as_deref())
        .await;
    assert_ne!(tag2, tag, "a new serial is a new ETag");

    // lifting needs a reason, takes the names out, and is journalled
    let (s, v) = app
        .post(
            &format!("/api/v1/orders/{id}/lift"),
            &officer,
            json!({"reason": " "}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, o) = app
        .post(
            &format!("/api/v1/orders/{id}/lift"),
            &officer,
            json!({"reason": "operators removed the content"}),
        )
        .await;
    assert_eq!(
        (s, o["state"].as_str()),
        (StatusCode::OK, Some("lifted")),
        "{o}"
    );
    let (_, l) = app
        .call("GET", "/api/v1/lookup?name=judi-online.example", None, None)
        .await;
    assert_eq!(l["blocked"], false);
    let serial = app.store.rpz_serial().await.expect("serial");
    assert_eq!(serial, 3);
    let journal = app
        .store
        .rpz_journal_since(2)
        .await
        .expect("journal")
        .expect("reachable");
    let dels: Vec<&str> = journal
        .iter()
        .filter(|(_, op, _)| op == "del")
        .map(|(_, _, r)| r.owner.as_str())
        .collect();
    assert_eq!(dels.len(), 3, "{journal:?}");
    assert!(dels.contains(&"*.judi-online.example"));

    // the ISP is now behind the current serial until it acknowledges it
    let (_, c) = app.get("/api/v1/compliance", &isp_token).await;
    assert_eq!(
        (c.as_array().map(Vec::len), c[0]["status"].as_str()),
        (Some(1), Some("behind")),
        "{c}"
    );

    // what the primary saw, matched to the ISP by its key or its addresses
    let key = r["tsig_key_name"].as_str().expect("key").to_owned();
    let ev = |peer: &str, key: Option<&str>, kind: SyncKind| SyncEvidence {
        peer: peer.parse().expect("ip"),
        key: key.map(str::to_owned),
        kind,
    };
    let transfer = |from: i64, serial: i64, complete: bool| SyncKind::Transfer {
        kind: "IXFR".into(),
        from: Some(from),
        serial,
        complete,
    };
    let n = app
        .store
        .record_sync(&[
            ev("192.0.2.99", Some(&key), transfer(1, 2, true)),
            ev("203.0.113.9", None, SyncKind::Poll { serial: 3 }),
        ])
        .await
        .expect("record");
    assert_eq!(n, 1, "an unknown address matches no ISP");
    let (_, c) = app.get("/api/v1/compliance", &officer).await;
    let z = &c[0]["zone_sync"];
    assert_eq!(
        (z["status"].as_str(), z["held_serial"].as_i64()),
        (Some("behind"), Some(2)),
        "{z}"
    );
    assert!(
        z["behind_since"].is_string() && z["last_poll"].is_null(),
        "{z}"
    );
    app.clock.advance_millis(1_500);
    let n = app
        .store
        .record_sync(&[
            ev("193.0.14.129", None, SyncKind::Poll { serial: 3 }),
            ev("193.0.14.129", None, transfer(2, 3, false)),
            ev(
                "192.0.2.1",
                Some(&format!("{key}.")),
                SyncKind::Notify {
                    serial: 3,
                    answered: true,
                    detail: "NOERROR".into(),
                },
            ),
        ])
        .await
        .expect("record");
    assert_eq!(n, 3);
    let (_, c) = app.get("/api/v1/compliance", &officer).await;
    let z = &c[0]["zone_sync"];
    assert_eq!(
        (z["status"].as_str(), z["held_serial"].as_i64()),
        (Some("behind"), Some(2)),
        "a cut-off transfer is not held: {z}"
    );
    assert_eq!(z["last_poll"]["peer"], "193.0.14.129", "{z}");
    assert_eq!(z["last_transfer"]["complete"], false, "{z}");
    assert_eq!(z["last_notify"]["detail"], "NOERROR", "{z}");
    app.store
        .record_sync(&[ev("193.0.14.129", None, transfer(2, 3, true))])
        .await
        .expect("record");
    let (_, c) = app.get("/api/v1/compliance", &officer).await;
    let z = &c[0]["zone_sync"];
    assert_eq!(
        (z["status"].as_str(), z["held_serial"].as_i64()),
        (Some("in_sync"), Some(3)),
        "{z}"
    );
    assert!(z["behind_since"].is_null(), "{z}");
    assert!(z["pickup_ms"].as_i64().is_some_and(|ms| ms >= 1_500), "{z}");

    // the exception expires on its own at its end date
    app.clock.advance_millis(31 * 86_400 * 1000);
    app.store.fire_due_jobs(100).await.expect("jobs");
    let (_, o) = app.get(&format!("/api/v1/orders/{ex_id}"), &officer).await;
    assert_eq!(o["state"], "expired", "{o}");
    let (_, o) = app
        .get(&format!("/api/v1/orders/{ex_id}"), &isp_token)
        .await;
    assert_eq!(
        o["end_reason"], "lapsed: its review date passed without a review",
        "no review was recorded, so it lapsed at its review date"
    );
    // the ISP is shown where the log holds the order's latest event, and
    // the leaf it recomputes is the one the log serves
    let index = o["log"]["leaf_index"]
        .as_u64()
        .expect("the order names its leaf");
    let (_, leaf) = app
        .get(
            &format!("/api/v1/log/leaves?start={index}&end={}", index + 1),
            &isp_token,
        )
        .await;
    let hex32 = |k: &str| -> [u8; 32] {
        hex::decode(o["log"][k].as_str().expect(k))
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    };
    let seq = o["log"]["seq"].as_i64().expect("seq");
    let mine = tapis_core::tlog::leaf::event_leaf_hash(seq, &hex32("salt"), &hex32("event_hash"));
    assert_eq!(
        leaf["leaf_hashes"][0],
        tapis_core::tlog::hash_to_b64(&mine),
        "{o}"
    );
    let (_, zone, _) = app.text("/api/v1/blocklist.rpz", &isp_token, None).await;
    assert!(!zone.contains("CNAME"), "{zone}");

    // the audit chain holds every step
    let auditor = app.token(&app.authority_id, "auditor").await;
    let (_, v) = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!(v["ok"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_on_every_backend() {
    for b in backends() {
        orders_story(b).await;
    }
}
