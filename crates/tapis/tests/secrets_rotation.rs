//! Rotating the secrets key with the real binary, on both backends: a
//! webhook secret sealed under the old key; `tapis serve` with only the
//! new key refuses to start and names `TAPIS_SECRETS_PREVIOUS_KEY`; with
//! the old key given there, it reseals at start (on the record), and
//! afterwards the new key alone opens the secret, unchanged.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use tapis_store::secrets::SecretKey;
use tapis_store::testing::{TestDb, backends};

const OLD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NEW: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

async fn rotate(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let start = |env: &[(&str, &str)]| {
        let mut b = server()
            .data_dir(dir.path())
            .database_url(&db.url)
            .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true");
        for (k, v) in env {
            b = b.env(k, v);
        }
        b
    };
    let old_kid = SecretKey::parse(OLD)
        .expect("old")
        .kid()
        .expect("kid")
        .to_owned();
    let new_kid = SecretKey::parse(NEW)
        .expect("new")
        .kid()
        .expect("kid")
        .to_owned();

    // a webhook secret sealed under the old key
    let s = start(&[("TAPIS_SECRETS_KEY", OLD)]).start();
    let platform = s
        .party_with(ADMIN, json!({"kind": "platform", "name": "Messenger"}))
        .await;
    let (st, ch) = s
        .put(
            &format!("/api/v1/parties/{platform}/channel"),
            ADMIN,
            json!({"webhook_url": format!("http://127.0.0.1:{}/hook", free_port())}),
        )
        .await;
    assert_eq!(st, 200, "{ch}");
    let secret = ch["webhook_secret"].as_str().expect("secret").to_owned();
    drop(s);

    // the new key alone: refused, saying what to set
    let (status, err) = start(&[("TAPIS_SECRETS_KEY", NEW)]).run_to_exit(Duration::from_secs(30));
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("TAPIS_SECRETS_PREVIOUS_KEY") && err.contains(&old_kid),
        "{backend:?}: {err}"
    );
    assert!(
        !err.contains(OLD) && !err.contains(NEW),
        "no key is echoed: {err}"
    );

    // with the old key retired beside it: resealed at start
    let s = start(&[
        ("TAPIS_SECRETS_KEY", NEW),
        ("TAPIS_SECRETS_PREVIOUS_KEY", OLD),
    ])
    .start();
    drop(s);
    // the new key alone now starts, and opens the secret unchanged
    let s = start(&[("TAPIS_SECRETS_KEY", NEW)]).start();
    drop(s);
    let store = tapis_store::Store::open_with(
        &db.url,
        Arc::new(tapis_core::SystemClock),
        tapis_store::Options {
            secrets: SecretKey::parse(NEW).expect("new"),
            ..Default::default()
        },
    )
    .await
    .expect("open");
    let raw = store
        .raw_stored_secret("channels", "secret", &platform)
        .await
        .expect("raw")
        .expect("stored");
    assert_eq!(SecretKey::sealed_kid(&raw), Some(new_kid.as_str()), "{raw}");
    let target = store
        .webhook_target(tapis_core::PartyId::parse(&platform).expect("party id"))
        .await
        .expect("opens with the new key")
        .expect("webhook");
    assert_eq!(target.secrets, vec![secret]);
    let sealed = store
        .events_for("setting", "secrets_key")
        .await
        .expect("events");
    assert!(
        sealed
            .iter()
            .any(|e| e.after["resealed"] == 1 && e.after["retired"][0] == old_kid.as_str()),
        "{backend:?}: {sealed:?}"
    );
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secrets_key_rotates_with_the_previous_key_retired_at_start() {
    for backend in backends() {
        rotate(backend).await;
    }
}
