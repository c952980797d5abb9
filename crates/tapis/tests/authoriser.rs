//! The real binary enrols authorisers' keys on the host, on every backend:
//! `tapis authoriser enrol` creates the authoriser and records its key with
//! an audit event, a second key retires the first, weak keys are refused,
//! and `tapis authoriser list` prints the fingerprints people compare.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use tapis_core::sign::Signer;
use tapis_store::testing::{TestDb, backends};

const BIN: &str = env!("CARGO_BIN_EXE_tapis");

fn tapis(data: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .arg("--database-url")
        .arg(url)
        .env_remove("TAPIS_CONFIG")
        .env_remove("TAPIS_BOOTSTRAP_TOKEN")
        .current_dir(data)
        .output()
        .expect("run tapis")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn story(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let first = Signer::from_seed([9; 32]);
    let second = Signer::from_seed([10; 32]);
    let fp = |s: &Signer| {
        let k = tapis_core::sign::parse_public_key("k", &s.public_key_b64()).expect("key");
        tapis_store::fingerprint(k.as_bytes())
    };
    let enrol = |key: String| {
        tapis(
            dir.path(),
            &db.url,
            &[
                "authoriser",
                "enrol",
                "--name",
                "Administrative Court",
                "--public-key",
                &key,
            ],
        )
    };
    let out = enrol(first.public_key_b64());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&fp(&first)),
        "{}",
        text(&out.stdout)
    );
    // the same key again changes nothing; a new one retires it
    assert!(enrol(first.public_key_b64()).status.success());
    let out = enrol(second.public_key_b64());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // the identity point is a weak key
    let out = enrol("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("weak"), "{}", text(&out.stderr));

    let out = tapis(dir.path(), &db.url, &["authoriser", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with(&format!(
            "Administrative Court\t{}\tenrolled at ",
            fp(&first)
        )) && lines[0].contains("\tretired at "),
        "{list}"
    );
    assert!(
        lines[1].starts_with(&format!("Administrative Court\t{}", fp(&second)))
            && !lines[1].contains("retired"),
        "{list}"
    );

    // each change is on the audit log, by the command line
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    let keys = store.authoriser_keys().await.expect("keys");
    let events = store
        .events_for("party", &keys[0].party_id.to_string())
        .await
        .expect("events");
    let enrolled: Vec<_> = events
        .iter()
        .filter(|e| e.action == "authoriser.key_enrolled")
        .collect();
    assert_eq!(enrolled.len(), 2, "{events:?}");
    assert_eq!(enrolled[0].actor["kind"], "cli");
    assert_eq!(enrolled[1].before["fingerprints"][0], fp(&first).as_str());
    assert!(store.verify_audit().await.expect("verify").ok());
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authoriser_enrolment_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
