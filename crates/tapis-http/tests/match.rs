//! The filtering management service over real HTTP, on every backend: an
//! officer makes a bank shared with one platform and adds signals citing a
//! notice; the platform matches a batch (URL normalisation, a domain with
//! its subdomains, a PDQ near-duplicate within the threshold found and one
//! beyond it not, an uploaded image hashed, a digest); a tombstone stops a
//! match; the signed sync feed gives additions then the tombstone after a
//! checkpoint; a second server on the same database catches up from the
//! bank's sequence; one platform's repeated feedback counts once and shows
//! in the precision; a platform without the share gets 404. Bad input:
//! `match_input.rs`; multipart uploads: `match_multipart.rs`; export pages
//! and feedback from several platforms: `match_export_feedback.rs`.

mod common;

use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_http::{AppState, Limits};
use tapis_match::PdqHash;

const IMAGE: &[u8] = include_bytes!("../../tapis-match/testdata/bridge-256-rgb.png");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `h` with its first `n` bits flipped (Hamming distance `n`).
fn flipped(h: PdqHash, n: usize) -> PdqHash {
    (0..n).fold(h, |h, k| h.flip(k * 7 % 256))
}

/// Check a signed envelope against the server's published keys; its payload.
async fn verified(app: &App, envelope: &Value) -> Value {
    let keys = app.get_ok("/api/v1/keys", &app.admin).await;
    let keys: Vec<(String, String)> = keys
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().expect("kid").to_owned(),
                k["public_key"].as_str().expect("key").to_owned(),
            )
        })
        .collect();
    let payload = tapis_core::sign::open_envelope(envelope, &keys).expect("signature verifies");
    // a changed payload does not verify
    let mut forged = envelope.clone();
    forged["payload"]["at"] = json!("2000-01-01T00:00:00Z");
    assert!(tapis_core::sign::open_envelope(&forged, &keys).is_err());
    payload.clone()
}

fn matches_of(results: &Value, i: usize) -> Vec<Value> {
    results["results"][i]["matches"]
        .as_array()
        .expect("matches")
        .clone()
}

async fn match_ok(app: &App, token: &str, body: Value) -> Value {
    let (s, v) = app.post("/api/v1/match", token, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn scenario(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "VideoShare").await;
    let other = app.party("platform", "OtherTube").await;
    let flagger = app.party("flagger", "Counter-terrorism agency").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let auditor = app.token(&app.authority_id, "auditor").await;
    let plat_t = app.token(&platform, "platform_agent").await;
    let other_t = app.token(&other, "platform_agent").await;
    let flag_t = app.token(&flagger, "flagger").await;

    let (s, notice) = app
        .post("/api/v1/notices", &officer, notice_body(&platform, 1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{notice}");
    let notice_id = notice["id"].as_str().expect("notice id").to_owned();

    // a bank: only authority staff make one; the threshold is at most 31
    app.expect_error(
        "POST",
        "/api/v1/banks",
        &plat_t,
        Some(json!({"name": "x"})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let e = app
        .expect_error(
            "POST",
            "/api/v1/banks",
            &officer,
            Some(json!({"name": "x", "pdq_threshold": 40})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(e["error"]["field"], "pdq_threshold", "{e}");
    let e = app
        .expect_error(
            "POST",
            "/api/v1/banks",
            &officer,
            Some(json!({"name": "x", "shared_with": [flagger]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(e["error"]["field"], "shared_with[0]", "{e}");
    let (s, bank) = app
        .post(
            "/api/v1/banks",
            &officer,
            json!({"name": "terrorism", "description": "propaganda re-uploads", "shared_with": [platform], "contributors": [flagger]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bank}");
    assert_eq!(bank["pdq_threshold"], 31);
    let bank_id = bank["id"].as_str().expect("bank id").to_owned();
    let signals_path = format!("/api/v1/banks/{bank_id}/signals");

    // a second server on the same database, matched before any signal so its index is loaded empty and must catch up
    let second_state = AppState::new(app.store.clone(), Limits::default());
    let second_matcher = second_state.matcher.clone();
    let second = serve_state(second_state).await;
    let second_api = Api::new(second.base.clone());
    let (s, v) = second_api
        .post(
            "/api/v1/match",
            &plat_t,
            json!({"queries": [{"type": "domain", "value": "new.example"}]}),
        )
        .await;
    assert_eq!((s, matches_of(&v, 0).len()), (StatusCode::OK, 0), "{v}");

    // signals, citing the notice: its legal basis comes with them
    let image_hash = tapis_match::pdq::hash_image(IMAGE, &Default::default())
        .expect("hash")
        .hash;
    let near = flipped(image_hash, 10);
    let far = flipped(image_hash, 40);
    let src = json!({"notice_id": notice_id});
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let (s, added) = app
        .post(
            &signals_path,
            &officer,
            json!({"signals": [
                {"type": "url", "value": "https://Example.com/v/../v/1?utm_source=x#t", "labels": {"category": "terrorism", "tier": "1"}, "source": src},
                {"type": "domain", "value": "*.bad.example", "source": src},
                {"type": "pdq", "value": near.to_string(), "quality": 90, "labels": {"group": "video-7"}, "source": src},
                {"type": "pdq", "value": far.to_string(), "quality": 40, "source": src},
                {"type": "sha256", "value": sha, "source": src},
                {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "source": src},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    let added = added["signals"].as_array().expect("signals").clone();
    assert_eq!(added[0]["value"], "https://example.com/v/1", "{}", added[0]);
    assert_eq!(added[0]["legal_basis"]["reference"], "Law 11/2008 art. 40");
    let id_of = |i: usize| added[i]["id"].as_str().expect("id").to_owned();
    // the same value again is a conflict naming the signal
    let (s, v) = app
        .post(&signals_path, &officer, json!({"signals": [{"type": "url", "value": "https://EXAMPLE.com/v/1", "source": src}]}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // the batch
    let r = match_ok(
        &app,
        &plat_t,
        json!({"queries": [
            {"type": "url", "value": "HTTP://EXAMPLE.com:80/v/1?utm_medium=y"},
            {"type": "domain", "value": "cdn.x.bad.example"},
            {"type": "url", "value": "https://a.bad.example/watch?v=1"},
            {"type": "domain", "value": "notbad.example"},
            {"type": "pdq", "value": image_hash.to_string()},
            {"type": "image", "data": b64(IMAGE)},
            {"type": "sha256", "value": sha.to_uppercase()},
            {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
            {"type": "url", "value": "https://example.com/v/2"},
        ]}),
    )
    .await;
    let m = matches_of(&r, 0);
    assert_eq!(m.len(), 1, "{r}");
    assert_eq!(m[0]["signal_id"], id_of(0));
    assert_eq!(m[0]["bank_id"], bank_id.as_str());
    assert_eq!(m[0]["bank_name"], "terrorism");
    assert_eq!(m[0]["labels"]["category"], "terrorism");
    assert_eq!(m[0]["legal_basis"]["reference"], "Law 11/2008 art. 40");
    assert_eq!(m[0]["source"], json!({"type": "notice", "id": notice_id}));
    assert_eq!(r["results"][0]["value"], "http://example.com/v/1");
    assert_eq!(matches_of(&r, 1)[0]["signal_id"], id_of(1));
    assert_eq!(matches_of(&r, 2)[0]["signal_id"], id_of(1));
    assert!(matches_of(&r, 3).is_empty(), "{r}");
    for i in [4, 5] {
        let m = matches_of(&r, i);
        // within 31: found at distance 10; at 40: not
        assert_eq!(m.len(), 1, "{r}");
        assert_eq!(
            (m[0]["signal_id"].as_str(), m[0]["distance"].as_u64()),
            (Some(id_of(2).as_str()), Some(10))
        );
        assert_eq!(m[0]["low_quality"], false);
    }
    assert_eq!(r["results"][5]["type"], "pdq");
    assert_eq!(r["results"][5]["value"], image_hash.to_string());
    assert!(r["results"][5]["quality"].as_u64().is_some(), "{r}");
    assert_eq!(matches_of(&r, 6)[0]["signal_id"], id_of(4));
    assert_eq!(matches_of(&r, 7)[0]["signal_id"], id_of(5));
    assert!(matches_of(&r, 8).is_empty());
    // the far hash matches itself, flagged as low quality
    let r = match_ok(
        &app,
        &plat_t,
        json!({"queries": [{"type": "pdq", "value": flipped(far, 0).to_string()}]}),
    )
    .await;
    let m = matches_of(&r, 0);
    assert_eq!(
        (m[0]["signal_id"].as_str(), m[0]["low_quality"].as_bool()),
        (Some(id_of(3).as_str()), Some(true))
    );

    // the second server sees the additions it did not make (no restart)
    let (s, v) = second_api
        .post(
            "/api/v1/match",
            &plat_t,
            json!({"queries": [{"type": "domain", "value": "www.bad.example"}]}),
        )
        .await;
    assert_eq!((s, matches_of(&v, 0).len()), (StatusCode::OK, 1), "{v}");

    // a platform without the share: nothing matches, the bank is a 404
    let r = match_ok(
        &app,
        &other_t,
        json!({"queries": [{"type": "domain", "value": "x.bad.example"}]}),
    )
    .await;
    assert!(matches_of(&r, 0).is_empty(), "{r}");
    for path in [
        format!("/api/v1/banks/{bank_id}"),
        format!("/api/v1/banks/{bank_id}/signals?since=0"),
        format!("/api/v1/banks/{bank_id}/export"),
        format!("/api/v1/banks/{bank_id}/precision"),
    ] {
        app.expect_error(
            "GET",
            &path,
            &other_t,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    app.expect_error(
        "POST",
        "/api/v1/match",
        &other_t,
        Some(
            json!({"queries": [{"type": "domain", "value": "x.bad.example"}], "banks": [bank_id]}),
        ),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (_, list) = app.get("/api/v1/banks", &other_t).await;
    assert_eq!(list["banks"], json!([]));
    let (_, list) = app.get("/api/v1/banks", &plat_t).await;
    assert_eq!(list["banks"][0]["id"], bank_id.as_str());
    assert_eq!(
        list["banks"][0]["shared_with"],
        json!([]),
        "other parties are not shown to a platform"
    );

    // the flagger contributes only citing a notice made from its own flags;
    // a platform does not add
    let e = app
        .expect_error(
            "POST",
            &signals_path,
            &flag_t,
            Some(json!({"signals": [{"type": "domain", "value": "evil.example", "source": src}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(e["error"]["field"], "signals[0].source.notice_id", "{e}");
    app.expect_error(
        "POST",
        &signals_path,
        &plat_t,
        Some(json!({"signals": [{"type": "domain", "value": "evil.example", "source": src}]})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // the feed: six additions in order, signed
    let (s, env) = app.get(&format!("{signals_path}?since=0"), &plat_t).await;
    assert_eq!(s, StatusCode::OK, "{env}");
    let feed = verified(&app, &env).await["feed"].clone();
    let seqs: Vec<i64> = feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        (feed["next"].as_i64(), feed["more"].as_bool()),
        (Some(6), Some(false))
    );
    assert!(
        feed["changes"]
            .as_array()
            .expect("c")
            .iter()
            .all(|c| c["op"] == "add")
    );
    let (_, page) = app
        .get(&format!("{signals_path}?since=0&limit=2"), &plat_t)
        .await;
    let page = &page["payload"]["feed"];
    assert_eq!(
        (page["next"].as_i64(), page["more"].as_bool()),
        (Some(2), Some(true)),
        "{page}"
    );

    // a tombstone: only staff; then no match, and the feed carries it
    app.expect_error(
        "POST",
        &format!("{signals_path}/{}/remove", id_of(0)),
        &flag_t,
        Some(json!({"reason": "content restored after appeal"})),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let (s, removed) = app
        .post(
            &format!("{signals_path}/{}/remove", id_of(0)),
            &officer,
            json!({"reason": "content restored after appeal"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{removed}");
    assert!(removed["removed_at"].is_string());
    let (s, v) = app
        .post(
            &format!("{signals_path}/{}/remove", id_of(0)),
            &officer,
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let r = match_ok(
        &app,
        &plat_t,
        json!({"queries": [{"type": "url", "value": "https://example.com/v/1"}]}),
    )
    .await;
    assert!(matches_of(&r, 0).is_empty(), "{r}");
    let (s, v) = second_api
        .post(
            "/api/v1/match",
            &plat_t,
            json!({"queries": [{"type": "url", "value": "https://example.com/v/1"}]}),
        )
        .await;
    assert_eq!(
        (s, matches_of(&v, 0).len()),
        (StatusCode::OK, 0),
        "the other server saw the tombstone: {v}"
    );
    // it loaded the bank once (empty) and applied the seven changes one by one
    let stats = second_matcher.stats();
    assert_eq!(
        (stats.banks, stats.full_loads, stats.changes_applied),
        (1, 1, 7),
        "{stats:?}"
    );
    let (_, env) = app.get(&format!("{signals_path}?since=6"), &plat_t).await;
    let feed = verified(&app, &env).await["feed"].clone();
    let changes = feed["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{feed}");
    assert_eq!(
        (changes[0]["seq"].as_i64(), changes[0]["op"].as_str()),
        (Some(7), Some("remove"))
    );
    assert_eq!(changes[0]["signal"]["id"], id_of(0));
    assert_eq!(feed["next"], 7);
    // the export: five live signals at checkpoint 7
    let (_, env) = app
        .get(&format!("/api/v1/banks/{bank_id}/export"), &plat_t)
        .await;
    let export = verified(&app, &env).await;
    assert_eq!(
        (
            export["checkpoint"].as_i64(),
            export["signals"].as_array().map(Vec::len)
        ),
        (Some(7), Some(5))
    );

    // feedback counts once per platform: its repeated false positives
    // replace its confirmation and each other, and never put the signal up
    // for review on their own (several platforms: `match_feedback.rs`)
    let fb = |verdict: &str| json!({"signal_id": id_of(1), "verdict": verdict});
    let (s, v) = app
        .post("/api/v1/match/feedback", &plat_t, fb("confirmed"))
        .await;
    assert_eq!(
        (s, v["flagged_for_review"].as_bool(), &v["replaces"]),
        (StatusCode::CREATED, Some(false), &Value::Null),
        "{v}"
    );
    let mut previous = (v["id"].clone(), "confirmed");
    for _ in 1..=4 {
        let (s, v) = app
            .post("/api/v1/match/feedback", &plat_t, fb("false_positive"))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["flagged_for_review"].as_bool(), Some(false), "{v}");
        assert_eq!(
            v["replaces"],
            json!({"id": previous.0, "verdict": previous.1}),
            "{v}"
        );
        assert_eq!(v["tally"], json!({"confirmed": 0, "false_positives": 1}));
        previous = (v["id"].clone(), "false_positive");
    }
    app.expect_error(
        "POST",
        "/api/v1/match/feedback",
        &other_t,
        Some(fb("confirmed")),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.expect_error(
        "POST",
        "/api/v1/match/feedback",
        &officer,
        Some(fb("confirmed")),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    app.expect_error(
        "POST",
        "/api/v1/match/feedback",
        &plat_t,
        Some(json!({"signal_id": id_of(1), "verdict": "maybe"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    let events = app
        .store
        .events_for("signal", &id_of(1))
        .await
        .expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "signal.flagged_for_review")
            .count(),
        0,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "signal.feedback").count(),
        5,
        "{actions:?}"
    );
    let bank_events = app
        .store
        .events_for("bank", &bank_id)
        .await
        .expect("events");
    let batch = bank_events
        .iter()
        .find(|e| e.action == "signal.added")
        .expect("the batch's event");
    assert_eq!(
        batch.after["signals"].as_array().map(Vec::len),
        Some(6),
        "{:?}",
        batch.after
    );
    assert_eq!(
        (
            batch.after["first_seq"].as_i64(),
            batch.after["last_seq"].as_i64()
        ),
        (Some(1), Some(6))
    );
    let p = app
        .get_ok(&format!("/api/v1/banks/{bank_id}/precision"), &auditor)
        .await;
    assert_eq!(
        (
            p["tally"]["confirmed"].as_u64(),
            p["tally"]["false_positives"].as_u64()
        ),
        (Some(0), Some(1)),
        "{p}"
    );
    assert_eq!(p["precision"].as_f64(), Some(0.0), "{p}");
    assert_eq!(p["contributors"][0]["party_id"], app.authority_id.as_str());
    assert_eq!(p["flagged_signals"], json!([]));
    let p = app
        .get_ok(&format!("/api/v1/banks/{bank_id}/precision"), &plat_t)
        .await;
    assert_eq!(
        p["contributors"],
        json!([]),
        "a platform sees the bank's figure only"
    );

    // a contributing flagger adds a signal citing a notice made from its
    // own flag; its precision is its own to read
    let (s, f) = app
        .post(
            "/api/v1/flags",
            &flag_t,
            json!({"flags": [{
                "targets": [{"kind": "url", "value": "https://videoshare.example/v/9"}],
                "category": "terrorism",
                "reasons": "recruitment video re-uploaded",
                "evidence": [{"sha256": "ab".repeat(32), "description": "screenshot"}],
            }]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    let (s, flag_notice) = app
        .post(
            "/api/v1/flags/accept",
            &officer,
            json!({
                "flag_ids": [f["flags"][0]["id"]],
                "platform_id": platform,
                "urgency": "urgent",
                "legal_basis": {"reference": "Law 5/2018 art. 13", "text": "Terrorist propaganda is removed."},
                "explanation": "flagged re-upload",
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{flag_notice}");
    let (s, v) = app
        .post(
            &signals_path,
            &flag_t,
            json!({"signals": [{"type": "url", "value": "https://videoshare.example/v/9", "source": {"notice_id": flag_notice["id"]}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let flagged_signal = v["signals"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(v["signals"][0]["added_by"], flagger.as_str());
    assert_eq!(
        v["signals"][0]["legal_basis"]["reference"],
        "Law 5/2018 art. 13"
    );
    let r = match_ok(
        &app,
        &plat_t,
        json!({"queries": [{"type": "url", "value": "https://videoshare.example/v/9"}]}),
    )
    .await;
    assert_eq!(
        matches_of(&r, 0)[0]["signal_id"],
        flagged_signal.as_str(),
        "{r}"
    );
    let (s, _) = app
        .post(
            "/api/v1/match/feedback",
            &plat_t,
            json!({"signal_id": flagged_signal, "verdict": "confirmed"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let p = app
        .get_ok(&format!("/api/v1/banks/{bank_id}/precision"), &flag_t)
        .await;
    assert_eq!(p["contributors"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(
        (
            p["contributors"][0]["party_id"].as_str(),
            p["contributors"][0]["precision"].as_f64()
        ),
        (Some(flagger.as_str()), Some(1.0))
    );
    let p = app
        .get_ok(&format!("/api/v1/banks/{bank_id}/precision"), &auditor)
        .await;
    assert_eq!(p["contributors"].as_array().map(Vec::len), Some(2), "{p}");

    // disabling the bank hides it from the platform
    let (s, v) = app
        .call(
            "PATCH",
            &format!("/api/v1/banks/{bank_id}"),
            Some(&officer),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(
        (s, v["enabled"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    let r = match_ok(
        &app,
        &plat_t,
        json!({"queries": [{"type": "domain", "value": "x.bad.example"}]}),
    )
    .await;
    assert!(matches_of(&r, 0).is_empty(), "{r}");
    app.expect_error(
        "GET",
        &format!("/api/v1/banks/{bank_id}"),
        &plat_t,
        None,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    second.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banks_match_sync_and_feedback_on_every_backend() {
    for b in backends() {
        scenario(b).await;
    }
}
