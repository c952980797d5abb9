//! A log its operator cannot rewrite alone: the real binary, a receipt and
//! a decision kept by the platform, then an attacker with database access
//! (the owner role on PostgreSQL) who rewrites the chain. `tapis audit
//! verify` alone is fooled by a consistent rewrite; `--against` the kept
//! documents is not.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use tapis_core::audit::{EventBody, GENESIS};
use tapis_store::Backend;
use tapis_store::testing::{TestDb, backends};

mod common;

use common::{Proc, cli as tapis};

fn serve(data: &Path, url: &str) -> (Proc, String) {
    let mut child = tapis(data, url)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TAPIS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tapis serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("address").expect("line");
        if let Some(rest) = line.strip_prefix("tapis listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), base)
}

fn run(data: &Path, url: &str, args: &[&str]) -> Output {
    tapis(data, url).args(args).output().expect("run tapis")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn token(data: &Path, url: &str, party: &str, role: &str) -> String {
    let out = common::token_create(tapis(data, url), party, role, Some(role));
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

async fn call(base: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let req = match body {
        Some(b) => http.post(format!("{base}{path}")).json(&b),
        None => http.get(format!("{base}{path}")),
    };
    let resp = req.bearer_auth(token).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// SQL text literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let url = db.url.clone();
    let (server, base) = serve(data, &url);
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .expect("admin token")
        .trim()
        .to_owned();
    let (_, me) = call(&base, "/api/v1/whoami", &admin, None).await;
    let authority = me["party_id"].as_str().expect("party").to_owned();
    let (s, p) = call(
        &base,
        "/api/v1/parties",
        &admin,
        Some(json!({"kind": "platform", "name": "Messenger", "domains": ["messenger.example"]})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let officer = token(data, &url, &authority, "officer");
    let agent = token(data, &url, "Messenger", "platform_agent");

    let (s, n) = call(
        &base,
        "/api/v1/notices",
        &officer,
        Some(json!({
            "platform_id": p["id"], "category": "terrorism", "urgency": "urgent",
            "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
            "explanation": "Channel distributes terrorist propaganda",
            "items": [{"kind": "platform_channel", "value": "@channel_1", "native_id": "-1001"},
                      {"kind": "platform_channel", "value": "@channel_2", "native_id": "-1002"}],
        })),
    )
    .await;
    assert_eq!(s, 201, "{n}");
    let id = n["id"].as_str().expect("id").to_owned();
    let (s, ack) = call(
        &base,
        &format!("/api/v1/notices/{id}/acknowledge"),
        &agent,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{ack}");
    let anchored = ack["receipt"]["payload"]["chain"]["seq"]
        .as_i64()
        .expect("the receipt carries the chain head");
    assert!(
        ack["receipt"]["payload"]["chain"]["hash"].is_string(),
        "{ack}"
    );
    let item = n["items"][0]["id"].as_str().expect("item");
    let (s, dec) = call(
        &base,
        &format!("/api/v1/notices/{id}/items/{item}/decision"),
        &agent,
        Some(json!({"decision": "removed"})),
    )
    .await;
    assert_eq!(s, 200, "{dec}");
    let decided = dec["receipt"]["payload"]["chain"]["seq"]
        .as_i64()
        .expect("the decision carries the chain head");
    assert!(decided > anchored);
    drop(server);
    let receipt = data.join("receipt.json");
    let decision = data.join("decision.json");
    std::fs::write(&receipt, ack.to_string()).expect("write");
    std::fs::write(&decision, dec["receipt"].to_string()).expect("write");

    // as issued, both check out
    let (r, d) = (
        receipt.to_str().expect("path"),
        decision.to_str().expect("path"),
    );
    let out = run(data, &url, &["audit", "verify", "--against", r, d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("still in the chain"), "{}", text(&out));

    // a document tapis did not sign is refused
    let mut forged = ack.clone();
    forged["receipt"]["payload"]["chain"]["seq"] = json!(1);
    let forged_file = data.join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).expect("write");
    let out = run(
        data,
        &url,
        &[
            "audit",
            "verify",
            "--against",
            forged_file.to_str().expect("p"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("forged.json: MISMATCH"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("signature"), "{}", text(&out));

    // the attacker: drop the append-only trigger(s) as the owner
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    let drop_triggers = match backend {
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete"
        }
        Backend::Postgres => "DROP TRIGGER audit_events_no_change ON audit_events",
    };
    store.raw_execute(drop_triggers).await.expect("drop");

    // 1. rewrite the past (the notice's creation) and recompute every hash
    let events = store.all_audit_events().await.expect("events");
    let created = events
        .iter()
        .find(|e| e.action == "notice.created" || e.action == "notice.submitted")
        .expect("a notice event")
        .seq;
    let mut prev = GENESIS;
    let mut sql = String::new();
    for e in &events {
        let mut after = e.after.clone();
        if e.seq == created {
            after = json!({"rewritten": true});
        }
        let body = EventBody {
            seq: e.seq,
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject_type: e.subject_type.clone(),
            subject_id: e.subject_id.clone(),
            before: e.before.clone(),
            after: after.clone(),
        };
        let hash = body.chain_hash(&prev).expect("hash");
        if e.seq >= created {
            sql.push_str(&format!(
                "UPDATE audit_events SET after = {}, prev_hash = {}, hash = {} WHERE seq = {};\n",
                lit(&tapis_core::canonical::to_string(&after).expect("json")),
                lit(&hex_of(&prev)),
                lit(&hex_of(&hash)),
                e.seq
            ));
        }
        prev = hash;
    }
    store.raw_execute(&sql).await.expect("rewrite");
    let out = run(data, &url, &["audit", "verify"]);
    assert!(
        out.status.success() && text(&out).contains("intact"),
        "the chain alone is fooled by a consistent rewrite: {}",
        text(&out)
    );
    let out = run(data, &url, &["audit", "verify", "--against", r]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("receipt.json: MISMATCH"), "{t}");
    assert!(t.contains(&format!("event {anchored} has hash")), "{t}");
    assert!(t.contains("rewritten"), "{t}");

    // 2. delete the tail from the receipt's event on, recompute nothing
    store
        .raw_execute(&format!("DELETE FROM audit_events WHERE seq >= {anchored}"))
        .await
        .expect("delete");
    store.close().await;
    let out = run(data, &url, &["audit", "verify"]);
    assert!(
        out.status.success() && text(&out).contains("intact"),
        "a deleted tail leaves a valid chain: {}",
        text(&out)
    );
    let out = run(data, &url, &["audit", "verify", "--against", r, d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("receipt.json: MISMATCH"), "{t}");
    assert!(t.contains("decision.json: MISMATCH"), "{t}");
    assert!(
        t.contains(&format!("no longer has event {anchored}")),
        "{t}"
    );
    db.cleanup().await;
}

fn hex_of(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_receipt_catches_a_rewritten_log_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
