//! The public flag API's proof of work over real HTTP, on every backend:
//! a report without a proof, with a malformed, forged, unsolved or
//! expired one, or with a challenge already used is refused with its own
//! 4xx and stores nothing; one solved by the Python solver clients are
//! pointed at (`tools/pow-solve.py`) and one solved in Rust are accepted.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn body(domain: &str) -> Value {
    json!({
        "targets": [{"kind": "domain", "value": domain}],
        "category": "gambling",
        "reasons": "an online casino advertised to minors",
    })
}

async fn challenge(app: &App) -> String {
    let (s, c) = app
        .call("GET", "/api/v1/public/challenge", None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["difficulty"], 8, "the test server's difficulty: {c}");
    assert_eq!(c["expires_in"], 600);
    c["challenge"].as_str().expect("challenge").to_owned()
}

async fn post(app: &App, headers: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/api/v1/public/flags", app.base))
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.json().await.expect("json"))
}

fn python_solve(challenge: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/pow-solve.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(challenge)
        .output()
        .expect("python3 runs tools/pow-solve.py (Debian package: python3)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

async fn queued(app: &App) -> usize {
    let (s, v) = app.get("/api/v1/flags?limit=500", &app.admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["flags"].as_array().expect("flags").len()
}

async fn proofs(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;

    // none at all
    let (s, v) = post(&app, &[], body("nope.example")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "proof_required");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/api/v1/public/challenge")),
        "the error says where to get a challenge: {v}"
    );
    // a challenge without its counter, and the reverse
    let c = challenge(&app).await;
    let (s, v) = post(&app, &[("Tapis-Challenge", &c)], body("nope.example")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "proof_required");
    let (s, v) = post(&app, &[("Tapis-Proof", "1")], body("nope.example")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "proof_required");
    // malformed
    for (ch, counter) in [("garbage", "1"), (c.as_str(), "-5"), (c.as_str(), "0x10")] {
        let (s, v) = post(
            &app,
            &[("Tapis-Challenge", ch), ("Tapis-Proof", counter)],
            body("nope.example"),
        )
        .await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_proof");
    }
    // forged: the difficulty lowered, or a challenge of another server
    let n = tapis_core::pow::solve(&c).expect("solvable").to_string();
    let easier = c.replacen(".8.", ".0.", 1);
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &easier), ("Tapis-Proof", "0")],
        body("nope.example"),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof");
    let stranger = tapis_core::pow::issue(
        &tapis_core::pow::PowKey::new([9; 32]),
        tapis_core::pow::PowPolicy {
            difficulty: 8,
            max_age_secs: 600,
        },
        app.store.now(),
        [3; 16],
    );
    let sn = tapis_core::pow::solve(&stranger)
        .expect("solvable")
        .to_string();
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &stranger), ("Tapis-Proof", &sn)],
        body("nope.example"),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof");
    // unsolved: a counter whose hash does not start with 8 zero bits
    let wrong = (0..1000u64)
        .map(|x| x.to_string())
        .find(|x| {
            *x != n && {
                use sha2::Digest;
                let h = sha2::Sha256::digest(format!("{c}:{x}"));
                h[0] != 0
            }
        })
        .expect("a wrong counter");
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &c), ("Tapis-Proof", &wrong)],
        body("nope.example"),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof");
    assert_eq!(queued(&app).await, 0, "nothing refused was stored");

    // the Python solver's answer is accepted, once
    let py = python_solve(&c);
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &c), ("Tapis-Proof", &py)],
        body("casino.example"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["reference"].is_string(), "{v}");
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &c), ("Tapis-Proof", &py)],
        body("casino2.example"),
    )
    .await;
    assert_error(s, &v, StatusCode::CONFLICT, "challenge_used");
    assert_eq!(queued(&app).await, 1);

    // a challenge answered after ten minutes has expired
    let late = challenge(&app).await;
    let ln = tapis_core::pow::solve(&late).expect("solvable").to_string();
    app.clock.advance_millis(601_000);
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &late), ("Tapis-Proof", &ln)],
        body("late.example"),
    )
    .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "challenge_expired");
    // a fresh one, solved in Rust, is fine
    let fresh = challenge(&app).await;
    let fnn = tapis_core::pow::solve(&fresh)
        .expect("solvable")
        .to_string();
    let (s, v) = post(
        &app,
        &[("Tapis-Challenge", &fresh), ("Tapis-Proof", &fnn)],
        body("fresh.example"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(queued(&app).await, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_reports_need_a_fresh_unused_solved_challenge_on_every_backend() {
    for b in backends() {
        proofs(b).await;
    }
}

/// Two servers (two stores, as two `tapis serve` processes would have) on
/// one database, sharing the challenge key: a proof accepted by one is
/// refused by the other, both ways; spent challenges are pruned once
/// expired.
async fn one_database_two_servers(backend: tapis_store::Backend) {
    use std::sync::Arc;
    use tapis_core::pow::{PowKey, PowPolicy};
    use tapis_core::{Clock, ManualClock, Timestamp};
    let db = tapis_store::testing::TestDb::new(backend).await;
    let clock = ManualClock::new(Timestamp::parse("t", "2017-03-29T09:00:00+07:00").expect("t"));
    let first = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    first
        .bootstrap("Ministry", None)
        .await
        .expect("bootstrap")
        .expect("first start");
    let second = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    let policy = PowPolicy {
        difficulty: 8,
        max_age_secs: 600,
    };
    let mut servers = vec![];
    for store in [&first, &second] {
        let mut state = tapis_http::AppState::new(store.clone(), tapis_http::Limits::default());
        state.challenges = Arc::new(tapis_http::pow::Challenges::new(
            PowKey::new([4; 32]),
            policy,
        ));
        servers.push(serve_state(state).await);
    }
    let apis: Vec<Api> = servers.iter().map(|s| Api::new(s.base.clone())).collect();
    let send = |api: &Api, challenge: &str, counter: &str, domain: &str| {
        api.client
            .post(format!("{}/api/v1/public/flags", api.base))
            .header("Tapis-Challenge", challenge.to_owned())
            .header("Tapis-Proof", counter.to_owned())
            .json(&body(domain))
            .send()
    };
    for (a, b) in [(0, 1), (1, 0)] {
        let (s, c) = apis[a]
            .call("GET", "/api/v1/public/challenge", None, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        let c = c["challenge"].as_str().expect("challenge").to_owned();
        let n = tapis_core::pow::solve(&c).expect("solvable").to_string();
        let r = send(&apis[a], &c, &n, &format!("casino-{a}.example"))
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::CREATED, "{backend:?}: server {a}");
        for api in [&apis[b], &apis[a]] {
            let r = send(api, &c, &n, &format!("again-{a}.example"))
                .await
                .expect("send");
            let status = r.status();
            let v: Value = r.json().await.expect("json");
            assert_error(status, &v, StatusCode::CONFLICT, "challenge_used");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("challenge already used")),
                "{v}"
            );
        }
    }
    assert_eq!(first.spent_challenges().await.expect("count"), 2);
    // past their expiry, the next spend prunes both
    clock.advance_millis(601_000 + 61_000);
    let (_, c) = apis[1]
        .call("GET", "/api/v1/public/challenge", None, None)
        .await;
    let c = c["challenge"].as_str().expect("challenge").to_owned();
    let n = tapis_core::pow::solve(&c).expect("solvable").to_string();
    let r = send(&apis[1], &c, &n, "late.example").await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        second.spent_challenges().await.expect("count"),
        1,
        "{backend:?}: the expired challenges were pruned"
    );
    for s in servers {
        s.stop().await;
    }
    first.close().await;
    second.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_is_spent_once_across_servers_on_one_database() {
    for b in backends() {
        one_database_two_servers(b).await;
    }
}
