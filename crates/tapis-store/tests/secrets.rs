//! Secrets at rest, on every backend: webhook and TSIG secrets are written
//! sealed under a key kept outside the database, read back through `open`,
//! bound to their row, refused with the missing setting named when the key
//! is absent; plaintext written before a key was configured still reads and
//! `reseal_secrets` seals it once, audited.

use std::sync::Arc;

use tapis_core::isp::{Resolvers, ResolversInput};
use tapis_core::{ManualClock, PartyId};
use tapis_store::secrets::SecretKey;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party, webhook};
use tapis_store::{Backend, Options, Principal, Store};

fn clock() -> Arc<ManualClock> {
    Arc::new(clock_at(START))
}

async fn open(db: &TestDb, secrets: SecretKey) -> Store {
    Store::open_with(
        &db.url,
        clock(),
        Options {
            secrets,
            ..Default::default()
        },
    )
    .await
    .expect("open")
}

async fn tsig(store: &Store, by: &Principal, party: PartyId) -> String {
    let r = Resolvers::parse(ResolversInput::default(), &Default::default()).expect("resolvers");
    let (_, secret) = store
        .set_isp_resolvers(&by.actor(), party, r)
        .await
        .expect("set resolvers");
    secret.expect("the first registration creates a TSIG key")
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let key = SecretKey::from_bytes([5; 32]);

    // before a key is configured: plaintext, as on today's deployments
    let plain = open(&db, SecretKey::none()).await;
    let (_, boss) = bootstrap(&plain).await;
    let old_platform = party(&plain, &boss, "platform", "Old").await.id;
    let old_secret = webhook(&plain, &boss, old_platform).await;
    let stored = plain
        .raw_stored_secret("channels", "secret", &old_platform.to_string())
        .await
        .expect("raw")
        .expect("stored");
    assert_eq!(stored, old_secret, "without a key the secret is in clear");
    plain.close().await;

    // with the key
    let store = open(&db, key.clone()).await;
    let platform = party(&store, &boss, "platform", "Messenger").await.id;
    let other = party(&store, &boss, "platform", "Other").await.id;
    let isp = party(&store, &boss, "isp", "Net").await.id;
    let secret = webhook(&store, &boss, platform).await;
    let _ = webhook(&store, &boss, other).await;
    let tsig_secret = tsig(&store, &boss, isp).await;

    for (table, column, row, clear) in [
        ("channels", "secret", platform, &secret),
        ("isp_resolvers", "tsig_secret", isp, &tsig_secret),
    ] {
        let stored = store
            .raw_stored_secret(table, column, &row.to_string())
            .await
            .expect("raw")
            .expect("stored");
        assert!(SecretKey::is_sealed(&stored), "{table}.{column}: {stored}");
        assert!(
            !stored.contains(clear.as_str()),
            "{table}.{column} holds the secret"
        );
    }
    // read back through open
    let target = store
        .webhook_target(platform)
        .await
        .expect("target")
        .expect("webhook");
    assert_eq!(target.secrets, vec![secret.clone()]);
    let access = store.xfr_access().await.expect("access");
    assert!(access.keys.iter().any(|(_, s)| s == &tsig_secret));
    // legacy plaintext still reads
    let legacy = store
        .webhook_target(old_platform)
        .await
        .expect("legacy")
        .expect("webhook");
    assert_eq!(legacy.secrets, vec![old_secret.clone()]);

    // rotation: the previous secret moves column and stays sealed and valid
    let (_, rotated) = store
        .rotate_webhook_secret(&boss.actor(), platform)
        .await
        .expect("rotate");
    let prev = store
        .raw_stored_secret("channels", "previous_secret", &platform.to_string())
        .await
        .expect("raw")
        .expect("previous");
    assert!(SecretKey::is_sealed(&prev) && !prev.contains(secret.as_str()));
    let target = store
        .webhook_target(platform)
        .await
        .expect("target")
        .expect("webhook");
    assert_eq!(target.secrets, vec![rotated.clone(), secret.clone()]);

    // the sealed secret copied into another row does not open there
    let sealed = store
        .raw_stored_secret("channels", "secret", &platform.to_string())
        .await
        .expect("raw")
        .expect("stored");
    store
        .raw_execute(&format!(
            "UPDATE channels SET secret = '{sealed}' WHERE party_id = '{other}'"
        ))
        .await
        .expect("copy");
    let err = store.webhook_target(other).await.expect_err("moved secret");
    assert!(err.to_string().contains("moved from another row"), "{err}");

    // the old plaintext is sealed once, audited once
    assert_eq!(store.reseal_secrets().await.expect("reseal"), 1);
    let stored = store
        .raw_stored_secret("channels", "secret", &old_platform.to_string())
        .await
        .expect("raw")
        .expect("stored");
    assert!(SecretKey::is_sealed(&stored) && !stored.contains(old_secret.as_str()));
    let legacy = store
        .webhook_target(old_platform)
        .await
        .expect("legacy")
        .expect("webhook");
    assert_eq!(legacy.secrets, vec![old_secret]);
    assert_eq!(store.reseal_secrets().await.expect("again"), 0);
    let events = store
        .events_for("setting", "secrets_key")
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, "secrets.sealed");
    assert_eq!(events[0].after["sealed"], 1);
    assert!(store.verify_audit().await.expect("verify").ok());
    store.close().await;

    // without the key the store says which setting is missing
    let keyless = open(&db, SecretKey::none()).await;
    let err = keyless
        .webhook_target(platform)
        .await
        .expect_err("sealed, no key");
    assert!(err.to_string().contains("TAPIS_SECRETS_KEY"), "{err}");
    let err = keyless.xfr_access().await.expect_err("sealed tsig, no key");
    assert!(err.to_string().contains("secrets_key_file"), "{err}");
    keyless.close().await;

    // nothing in the SQLite files holds a secret in clear
    if backend == Backend::Sqlite {
        let path = db.url.trim_start_matches("sqlite://").to_owned();
        for file in [path.clone(), format!("{path}-wal")] {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            for s in [&secret, &rotated, &tsig_secret] {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{file} holds a secret in clear"
                );
            }
        }
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_at_rest_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
