//! The transparency log against an attacker with the database, on every
//! backend: the real binary, a witness (`tapis witness`) that co-signs a
//! checkpoint, a receipt checked by the standalone Python verifier with
//! public data only, then, with the append-only triggers dropped, (b) an
//! edited event, (c) the whole chain rehashed and the log's tables rebuilt
//! to match (so `tapis audit verify` and a fresh `tapis log verify` say
//! intact), and (a) a deleted tail: the saved checkpoint
//! (`tapis log verify --checkpoint`) and the witness catch each.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use serde_json::{Value, json};
use tapis_core::tlog::note::CosignerKey;
use tapis_store::Backend;
use tapis_store::testing::{TestDb, backends};

mod common;

use common::attacker::{acked_notice, call, rewrite_chain_sql, run, serve_on, text};

const WITNESS_NAME: &str = "witness.example/w1";
const WITNESS_SEED: [u8; 32] = [42; 32];

fn witness(data: &Path, base: &str) -> Output {
    let key = data.join("witness.key");
    if !key.exists() {
        std::fs::write(&key, hex::encode(WITNESS_SEED)).expect("key");
        #[cfg(unix)]
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
    }
    std::process::Command::new(common::BIN)
        .args(["witness", "--url", base, "--once", "--name", WITNESS_NAME])
        .arg("--state")
        .arg(data.join("witness"))
        .arg("--key")
        .arg(&key)
        .output()
        .expect("run tapis witness")
}

/// `POST /api/v1/log/checkpoint` as the admin: the new signed note.
async fn checkpoint_now(base: &str, admin: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/log/checkpoint"))
        .bearer_auth(admin)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.expect("text")
}

/// The command exited 1 saying each of `says`.
fn fails_saying(out: &Output, says: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    for s in says {
        assert!(text(out).contains(s), "{s:?} in: {}", text(out));
    }
}

async fn get_text(base: &str, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{base}{path}")).await.expect("get");
    let s = resp.status().as_u16();
    (s, resp.text().await.expect("text"))
}

/// `tools/tlog-verify.py` with `args`.
fn python(args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/tlog-verify.py");
    std::process::Command::new(common::tool("python3"))
        .arg(script)
        .args(args)
        .output()
        .expect("run python3")
}

fn log_verify(data: &Path, url: &str, vkey: &str, checkpoint: &Path) -> Output {
    let checkpoint = checkpoint.to_str().expect("path");
    run(
        data,
        url,
        &[
            "log",
            "verify",
            "--log-key",
            vkey,
            "--checkpoint",
            checkpoint,
        ],
    )
}

fn drop_triggers(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER tlog_nodes_no_update; DROP TRIGGER tlog_nodes_no_delete; \
             DROP TRIGGER tlog_checkpoints_no_update; DROP TRIGGER tlog_checkpoints_no_delete"
        }
        Backend::Postgres => {
            "DROP TRIGGER audit_events_no_change ON audit_events; \
             DROP TRIGGER tlog_nodes_no_change ON tlog_nodes; \
             DROP TRIGGER tlog_checkpoints_no_change ON tlog_checkpoints"
        }
    }
}

/// Every check a platform can make with public data only.
/// `answer` is what acknowledging or deciding returned: the signed
/// `receipt` and, attached, its `log_proof`; the proof is checked as
/// attached and as `GET /api/v1/log/proof/leaf/{leaf_index}` gives it.
async fn receipt_checks_out_in_python(data: &Path, base: &str, answer: &Value, vkey: &str) {
    let receipt = &answer["receipt"];
    let payload = &receipt["payload"];
    let index = payload["log"]["leaf_index"]
        .as_u64()
        .expect("the receipt names its leaf");
    assert_eq!(
        Some(index as i64 + 1),
        payload["chain"]["seq"].as_i64(),
        "the leaf is the anchored event's"
    );
    assert_eq!(answer["log_proof"]["leaf_index"], index, "{answer}");
    let (s, proof) = get_text(base, &format!("/api/v1/log/proof/leaf/{index}")).await;
    assert_eq!(s, 200, "{proof}");
    let (rf, pf) = (data.join("receipt.json"), data.join("leaf-proof.json"));
    std::fs::write(&rf, receipt.to_string()).expect("write");
    let args = [
        "receipt",
        "--vkey",
        vkey,
        "--receipt",
        rf.to_str().expect("p"),
        "--proof",
        pf.to_str().expect("p"),
    ];
    for proof in [answer["log_proof"].to_string(), proof] {
        std::fs::write(&pf, &proof).expect("write");
        let out = python(&args);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("is leaf {index}")),
            "{}",
            text(&out)
        );
    }
    // another salt is another leaf: the verifier refuses it
    let mut forged = receipt.clone();
    forged["payload"]["log"]["salt"] = json!("00".repeat(32));
    std::fs::write(&rf, forged.to_string()).expect("write");
    let out = python(&args);
    fails_saying(&out, &["not the leaf the log holds"]);
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let url = db.url.clone();
    let wkey = CosignerKey::from_seed(WITNESS_NAME, WITNESS_SEED)
        .expect("key")
        .vkey()
        .to_string();
    let env = [
        ("TAPIS_TRANSPARENCY_CHECKPOINT_INTERVAL_SECS", "0"),
        ("TAPIS_TRANSPARENCY_ORIGIN", "tapis.test/log"),
        ("TAPIS_TRANSPARENCY_WITNESSES", wkey.as_str()),
    ];
    let (server, base) = serve_on(data, &url, &env);
    let acked = acked_notice(data, &url, &base).await;
    let (admin, ack) = (&acked.admin, &acked.ack);
    let (_, vkey) = get_text(&base, "/api/v1/log/key").await;
    let vkey = vkey.trim().to_owned();
    assert!(vkey.starts_with("tapis.test/log+"), "{vkey}");

    // bad parameters are precise 4xx
    let (s, v) = call(
        &base,
        "/api/v1/log/proof/inclusion?leaf_index=9&tree_size=2",
        "",
        None,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not in a tree of size 2"),
        "{v}"
    );
    let (s, _) = call(
        &base,
        "/api/v1/log/proof/inclusion?leaf_index=x&tree_size=2",
        "",
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = call(&base, "/api/v1/log/proof/consistency?from=0&to=2", "", None).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = call(&base, "/api/v1/log/leaves?start=0&end=5000", "", None).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = call(
        &base,
        "/api/v1/log/proof/consistency?from=1&to=100000",
        "",
        None,
    )
    .await;
    assert_eq!(s, 422, "{v}");

    // the platform's receipt, checked with public data only
    receipt_checks_out_in_python(data, &base, ack, &vkey).await;

    // the witness pins the key, co-signs, and the log publishes it
    let out = witness(data, &base);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("cosigned"), "{}", text(&out));
    let (_, cp) = get_text(&base, "/api/v1/log/checkpoint").await;
    assert!(cp.contains(&format!("— {WITNESS_NAME} ")), "{cp}");
    let saved = data.join("saved.checkpoint");
    std::fs::write(&saved, &cp).expect("write");
    let out = python(&[
        "checkpoint",
        "--vkey",
        &vkey,
        "--witness",
        &wkey,
        saved.to_str().expect("p"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let saved_size: u64 = cp.lines().nth(1).expect("size").parse().expect("size");

    // the log grows: a decision, a new checkpoint, consistency both ways
    let dec = acked.decide_first_item(&base).await;
    receipt_checks_out_in_python(data, &base, &dec, &vkey).await;
    let newer = data.join("newer.checkpoint");
    std::fs::write(&newer, checkpoint_now(&base, admin).await).expect("write");
    let new_size: u64 = std::fs::read_to_string(&newer)
        .expect("read")
        .lines()
        .nth(1)
        .expect("size")
        .parse()
        .expect("size");
    assert!(new_size > saved_size);
    let (_, proof) = get_text(
        &base,
        &format!("/api/v1/log/proof/consistency?from={saved_size}&to={new_size}"),
    )
    .await;
    let pf = data.join("consistency.json");
    std::fs::write(&pf, proof).expect("write");
    let out = python(&[
        "consistency",
        "--vkey",
        &vkey,
        "--old",
        saved.to_str().expect("p"),
        "--new",
        newer.to_str().expect("p"),
        "--proof",
        pf.to_str().expect("p"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = witness(data, &base);
    assert!(out.status.success(), "{}", text(&out));
    // a stranger's cosignature is refused
    let stranger = CosignerKey::from_seed("stranger.example/w", [7; 32]).expect("key");
    let note = tapis_core::tlog::note::Note::parse(&cp).expect("note");
    let forged = tapis_core::tlog::note::Note {
        text: note.text.clone(),
        sigs: vec![stranger.cosign(&note.text, 1)],
    };
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/log/cosignatures"))
        .body(forged.format())
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
    drop(server);

    let out = log_verify(data, &url, &vkey, &saved);
    assert!(
        out.status.success() && text(&out).contains("consistent with the log"),
        "{}",
        text(&out)
    );

    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    store
        .raw_execute(drop_triggers(backend))
        .await
        .expect("drop");
    let events = store.all_audit_events().await.expect("events");
    let target = events
        .iter()
        .find(|e| e.action == "notice.submitted" || e.action == "notice.created")
        .expect("event");

    // (b) an edited event, hashes left alone
    let edit = |after: &Value| {
        format!(
            "UPDATE audit_events SET after = '{}' WHERE seq = {}",
            tapis_core::canonical::to_string(after)
                .expect("json")
                .replace('\'', "''"),
            target.seq
        )
    };
    store
        .raw_execute(&edit(&json!({"edited": true})))
        .await
        .expect("edit");
    let out = log_verify(data, &url, &vkey, &saved);
    fails_saying(
        &out,
        &[
            &format!(
                "leaf {} (event {}) as stored differs",
                target.seq - 1,
                target.seq
            ),
            "the log was rewritten",
        ],
    );
    store
        .raw_execute(&edit(&target.after))
        .await
        .expect("restore");
    let out = log_verify(data, &url, &vkey, &saved);
    assert!(out.status.success(), "restored: {}", text(&out));

    // (c) the chain rehashed end to end and the log's tables rebuilt from it
    store
        .raw_execute(&rewrite_chain_sql(
            &events,
            target.seq,
            &json!({"rewritten": true}),
        ))
        .await
        .expect("rehash");
    store
        .raw_execute("DELETE FROM tlog_nodes; DELETE FROM tlog_salts")
        .await
        .expect("clear");
    store.close().await;
    let out = run(data, &url, &["audit", "verify"]);
    assert!(
        out.status.success() && text(&out).contains("intact"),
        "the chain is fooled: {}",
        text(&out)
    );
    let out = run(data, &url, &["log", "verify"]);
    assert!(
        out.status.success() && text(&out).contains("intact"),
        "rebuilt leaves match the rewritten events: {}",
        text(&out)
    );
    let out = log_verify(data, &url, &vkey, &saved);
    fails_saying(
        &out,
        &[
            &format!("the log signed root {}", cp.lines().nth(2).expect("root")),
            "the log was rewritten",
        ],
    );
    let (server, base) = serve_on(data, &url, &env);
    checkpoint_now(&base, admin).await;
    let out = witness(data, &base);
    fails_saying(&out, &["the past was rewritten"]);
    let reports: Vec<_> = std::fs::read_dir(data.join("witness"))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("fork-"))
        .collect();
    let report =
        std::fs::read_to_string(reports.first().expect("a fork report").path()).expect("read");
    assert!(
        report.contains("checkpoint seen before") && report.contains(&format!("\n{new_size}\n")),
        "{report}"
    );
    drop(server);

    // (a) the tail deleted, and with it every checkpoint the log kept
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    let keep = saved_size as i64 - 2;
    store.raw_execute(&format!(
        "DELETE FROM audit_events WHERE seq > {keep}; DELETE FROM tlog_salts WHERE seq > {keep}; \
         DELETE FROM tlog_nodes; DELETE FROM tlog_cosignatures; DELETE FROM tlog_checkpoints"
    )).await.expect("delete");
    store.close().await;
    let out = log_verify(data, &url, &vkey, &saved);
    fails_saying(&out, &["the tail of the log was deleted"]);
    for e in std::fs::read_dir(data.join("witness"))
        .expect("dir")
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with("fork-") {
            std::fs::remove_file(e.path()).expect("rm");
        }
    }
    let (server, base) = serve_on(data, &url, &env);
    let out = witness(data, &base);
    fails_saying(&out, &["its tail was deleted"]);
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_and_saved_checkpoints_catch_a_rewritten_log_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}

#[test]
fn the_python_verifier_agrees_with_the_rfc_6962_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tapis-core/testdata/tlog");
    let out = python(&["vectors", dir.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("204 vectors agree"), "{}", text(&out));
}
