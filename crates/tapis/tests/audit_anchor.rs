//! A log its operator cannot rewrite alone: the real binary, a receipt and
//! a decision kept by the platform, then an attacker with database access
//! (the owner role on PostgreSQL) who rewrites the chain. `tapis audit
//! verify` alone is fooled by a consistent rewrite; `--against` the kept
//! documents is not.

use std::sync::Arc;

use serde_json::json;
use tapis_store::Backend;
use tapis_store::testing::{TestDb, backends};

mod common;

use common::attacker::{acked_notice, rewrite_chain_sql, run, serve_on, text};

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let url = db.url.clone();
    let (server, base) = serve_on(data, &url, &[]);
    let acked = acked_notice(data, &url, &base).await;
    let ack = acked.ack.clone();
    let anchored = ack["receipt"]["payload"]["chain"]["seq"]
        .as_i64()
        .expect("the receipt carries the chain head");
    assert!(
        ack["receipt"]["payload"]["chain"]["hash"].is_string(),
        "{ack}"
    );
    let dec = acked.decide_first_item(&base).await;
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
    let sql = rewrite_chain_sql(&events, created, &json!({"rewritten": true}));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_receipt_catches_a_rewritten_log_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
