//! The bank export in signed pages and feedback counted once per
//! platform, over real HTTP on every backend.
//!
//! Export: a bank bigger than one page, read in pages while a signal on a
//! later page is tombstoned and another added, gives exactly the
//! one-page export taken before (same checkpoint, same signals); each page
//! verifies against the published keys; the feed from the checkpoint then
//! brings the change made meanwhile; bad cursors and limits are a 422
//! naming the parameter.
//!
//! Feedback: one platform's repeated verdicts count once (its latest), so
//! it cannot put a signal up for review alone; false positives from enough
//! platforms do, once; concurrent repeats from one platform still count
//! once.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

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
    // a page with its checkpoint changed, or a signal dropped, does not verify
    let mut forged = envelope.clone();
    forged["payload"]["checkpoint"] = json!(1_000_000);
    assert!(tapis_core::sign::open_envelope(&forged, &keys).is_err());
    let mut forged = envelope.clone();
    if let Some(s) = forged["payload"]["signals"].as_array_mut()
        && s.pop().is_some()
    {
        assert!(tapis_core::sign::open_envelope(&forged, &keys).is_err());
    }
    payload.clone()
}

struct Setup {
    app: App,
    officer: String,
    platforms: Vec<String>,
    tokens: Vec<String>,
    bank: String,
    notice: String,
}

async fn setup(backend: tapis_store::Backend, platforms: usize) -> Setup {
    let app = spawn_app(backend).await;
    let officer = app.token(&app.authority_id, "officer").await;
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..platforms {
        let p = app.party("platform", &format!("Platform {i}")).await;
        tokens.push(app.token(&p, "platform_agent").await);
        ids.push(p);
    }
    let (s, notice) = app
        .post("/api/v1/notices", &officer, notice_body(&ids[0], 1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{notice}");
    let (s, bank) = app
        .post(
            "/api/v1/banks",
            &officer,
            json!({"name": "paged", "shared_with": ids, "review_after": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bank}");
    Setup {
        bank: bank["id"].as_str().expect("id").to_owned(),
        notice: notice["id"].as_str().expect("id").to_owned(),
        app,
        officer,
        platforms: ids,
        tokens,
    }
}

/// Add domain signals `names`; their ids.
async fn add(t: &Setup, names: &[String]) -> Vec<String> {
    let signals: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "domain", "value": n, "source": {"notice_id": t.notice}}))
        .collect();
    let (s, v) = t
        .app
        .post(
            &format!("/api/v1/banks/{}/signals", t.bank),
            &t.officer,
            json!({"signals": signals}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["signals"]
        .as_array()
        .expect("signals")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn remove(t: &Setup, id: &str) {
    let (s, v) = t
        .app
        .post(
            &format!("/api/v1/banks/{}/signals/{id}/remove", t.bank),
            &t.officer,
            json!({"reason": "taken out in the test"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn export_pages(backend: tapis_store::Backend) {
    let t = setup(backend, 1).await;
    let app = &t.app;
    let plat = &t.tokens[0];
    let export = format!("/api/v1/banks/{}/export", t.bank);
    let names: Vec<String> = (0..25).map(|i| format!("d{i}.example")).collect();
    let ids = add(&t, &names[..20]).await;
    let more_ids = add(&t, &names[20..]).await;
    remove(&t, &ids[3]).await;
    // the whole, in one page: 24 live at checkpoint 26 (25 additions, a tombstone)
    let whole = verified(
        app,
        &app.get_ok(&format!("{export}?limit=10000"), plat).await,
    )
    .await;
    assert_eq!(
        (
            whole["checkpoint"].as_i64(),
            whole["total"].as_i64(),
            whole["more"].as_bool(),
            &whole["next"]
        ),
        (Some(26), Some(24), Some(false), &Value::Null),
        "{whole}"
    );
    let all = whole["signals"].as_array().expect("signals").clone();
    assert_eq!(all.len(), 24);
    assert!(all.iter().all(|s| s["id"] != ids[3].as_str()));
    // in pages of 7, with a tombstone (of a signal on the last page) and
    // an addition between the first page and the rest
    let first = verified(app, &app.get_ok(&format!("{export}?limit=7"), plat).await).await;
    assert_eq!(
        (
            first["checkpoint"].as_i64(),
            first["total"].as_i64(),
            first["more"].as_bool()
        ),
        (Some(26), Some(24), Some(true)),
        "{first}"
    );
    remove(&t, &more_ids[4]).await;
    let late = add(&t, &["late.example".to_owned()]).await;
    let mut got: Vec<Value> = first["signals"].as_array().expect("signals").clone();
    let mut next = first["next"].as_str().expect("next").to_owned();
    let mut pages = 1;
    loop {
        let page = verified(
            app,
            &app.get_ok(&format!("{export}?limit=7&cursor={next}"), plat)
                .await,
        )
        .await;
        pages += 1;
        assert_eq!(
            page["checkpoint"], 26,
            "every page reads the first page's snapshot: {page}"
        );
        assert_eq!(page["cursor"].as_str(), Some(next.as_str()));
        assert!(page.get("total").is_none(), "{page}");
        got.extend(page["signals"].as_array().expect("signals").iter().cloned());
        match page["next"].as_str() {
            Some(n) => {
                assert_eq!(page["more"], true);
                next = n.to_owned();
            }
            None => {
                assert_eq!(page["more"], false);
                break;
            }
        }
        assert!(pages < 10, "the pages end");
    }
    assert_eq!(pages, 4);
    assert_eq!(got, all, "the pages together are the whole, in order");
    assert!(
        got.iter().any(|s| s["id"] == more_ids[4].as_str()),
        "removed after the checkpoint: still in its snapshot"
    );
    assert!(got.iter().all(|s| s["id"] != late[0].as_str()));
    // the feed from the checkpoint brings what changed meanwhile
    let feed = verified(
        app,
        &app.get_ok(&format!("/api/v1/banks/{}/signals?since=26", t.bank), plat)
            .await,
    )
    .await;
    let changes: Vec<(String, String)> = feed["feed"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap_or("").to_owned(),
                c["signal"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("remove".to_owned(), more_ids[4].clone()),
            ("add".to_owned(), late[0].clone())
        ]
    );
    // a fresh export is at the new head, without the tombstoned signal
    let now = verified(app, &app.get_ok(&export, plat).await).await;
    assert_eq!(
        (now["checkpoint"].as_i64(), now["total"].as_i64()),
        (Some(28), Some(24)),
        "{now}"
    );
    // an empty bank: one page, nothing in it
    let (_, empty) = app
        .post(
            "/api/v1/banks",
            &t.officer,
            json!({"name": "empty", "shared_with": [t.platforms[0]]}),
        )
        .await;
    let e = verified(
        app,
        &app.get_ok(
            &format!("/api/v1/banks/{}/export", empty["id"].as_str().expect("id")),
            plat,
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            e["checkpoint"].as_i64(),
            e["total"].as_i64(),
            e["more"].as_bool(),
            e["signals"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0), Some(false), Some(0)),
        "{e}"
    );
    // bad cursors and limits: 422 naming the parameter
    for cursor in [
        "abc",
        "5",
        "1.2.3",
        "3.9",
        "99.0",
        "-1.0",
        "1.-1",
        "99999999999999999999.0",
        ".",
        "26.",
        "%20",
    ] {
        let e = app
            .expect_error(
                "GET",
                &format!("{export}?cursor={cursor}"),
                plat,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            )
            .await;
        assert_eq!(e["error"]["field"], "cursor", "{cursor}: {e}");
    }
    for limit in ["0", "10001"] {
        let e = app
            .expect_error(
                "GET",
                &format!("{export}?limit={limit}"),
                plat,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            )
            .await;
        assert_eq!(e["error"]["field"], "limit", "{e}");
    }
    app.expect_error(
        "GET",
        &format!("{export}?limit=x"),
        plat,
        None,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    app.expect_error(
        "GET",
        &format!("{export}?since=3"),
        plat,
        None,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    t.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_pages_read_one_snapshot_on_every_backend() {
    for b in backends() {
        export_pages(b).await;
    }
}

async fn feedback(backend: tapis_store::Backend) {
    let t = setup(backend, 4).await;
    let app = &t.app;
    let ids = add(&t, &["a.example".to_owned(), "b.example".to_owned()]).await;
    let fb = |signal: &str, verdict: &str| json!({"signal_id": signal, "verdict": verdict});
    let post = |token: &str, body: Value| {
        let token = token.to_owned();
        async move { app.post("/api/v1/match/feedback", &token, body).await }
    };
    let tally = |v: &Value| {
        (
            v["tally"]["confirmed"].as_u64(),
            v["tally"]["false_positives"].as_u64(),
        )
    };
    // one platform says false positive five times: once
    for n in 0..5 {
        let (s, v) = post(&t.tokens[0], fb(&ids[0], "false_positive")).await;
        assert_eq!(
            s,
            if n == 0 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            "{v}"
        );
        assert_eq!(
            (tally(&v), v["flagged_for_review"].as_bool()),
            ((Some(0), Some(1)), Some(false)),
            "{v}"
        );
        assert_eq!(v["replaces"].is_null(), n == 0, "{v}");
    }
    // it changes its mind: its confirmation replaces the false positive
    let (s, v) = post(&t.tokens[0], fb(&ids[0], "confirmed")).await;
    assert_eq!((s, tally(&v)), (StatusCode::OK, (Some(1), Some(0))), "{v}");
    assert_eq!(v["replaces"]["verdict"], "false_positive", "{v}");
    // two more platforms disagree: two false positives, under review_after 3
    for p in 1..3 {
        let (s, v) = post(&t.tokens[p], fb(&ids[0], "false_positive")).await;
        assert_eq!(
            (s, v["flagged_for_review"].as_bool()),
            (StatusCode::CREATED, Some(false)),
            "{v}"
        );
    }
    // the fourth platform's false positive is the third: up for review
    let (s, v) = post(&t.tokens[3], fb(&ids[0], "false_positive")).await;
    assert_eq!(
        (s, tally(&v), v["flagged_for_review"].as_bool()),
        (StatusCode::CREATED, (Some(1), Some(3)), Some(true)),
        "{v}"
    );
    // it repeats itself: still three, still flagged, flagged once
    let (s, v) = post(&t.tokens[3], fb(&ids[0], "false_positive")).await;
    assert_eq!(
        (s, tally(&v), v["flagged_for_review"].as_bool()),
        (StatusCode::OK, (Some(1), Some(3)), Some(true)),
        "{v}"
    );
    let events = app
        .store
        .events_for("signal", &ids[0])
        .await
        .expect("events");
    let count = |a: &str| events.iter().filter(|e| e.action == a).count();
    assert_eq!(
        (count("signal.feedback"), count("signal.flagged_for_review")),
        (10, 1)
    );
    let replaced = events
        .iter()
        .filter(|e| e.action == "signal.feedback" && !e.after["replaces"].is_null())
        .count();
    assert_eq!(replaced, 6, "every repeat names the verdict it replaced");
    // concurrent repeats from one platform on the other signal count once
    let answers = futures_util::future::join_all(
        (0..8).map(|_| post(&t.tokens[1], fb(&ids[1], "confirmed"))),
    )
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert!(answers.iter().all(|(s, _)| s.is_success()), "{answers:?}");
    assert_eq!(created, 1, "{answers:?}");
    let (s, v) = post(&t.tokens[2], fb(&ids[1], "confirmed")).await;
    assert_eq!(
        (s, tally(&v)),
        (StatusCode::CREATED, (Some(2), Some(0))),
        "{v}"
    );
    // the precision counts each platform's latest verdict once
    let p = app
        .get_ok(&format!("/api/v1/banks/{}/precision", t.bank), &t.officer)
        .await;
    assert_eq!(tally(&p), (Some(3), Some(3)), "{p}");
    assert_eq!(p["precision"].as_f64(), Some(0.5), "{p}");
    assert_eq!(p["flagged_signals"], json!([ids[0]]), "{p}");
    t.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_counts_once_per_platform_on_every_backend() {
    for b in backends() {
        feedback(b).await;
    }
}
