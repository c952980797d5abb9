//! Rotating the secrets key, on every backend: every sealed column
//! (`secrets::SEALED`: webhook secrets current and previous, TSIG secrets
//! current and previous, platform contacts, the representative's outbox
//! recipient, the representative an escalation named, two-step secrets
//! confirmed and pending, a public reporter's contact) is filled through
//! the store's own methods under the old key; after `reseal_secrets` with
//! the new key (the old one retired) every value opens with the new key
//! alone, none is left under the old one, the store reads everything back
//! without the old key, and a second reseal has nothing to do. A value
//! under a key that is neither current nor retired stops the reseal with
//! nothing written.

use std::sync::Arc;

use tapis_core::flag::{FlagInput, FlagLimits, FlagTargetInput, NewFlag};
use tapis_core::isp::{Resolvers, ResolversInput};
use tapis_core::person::Person;
use tapis_core::representative::{Contact, ContactInput, ContactRole};
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_core::totp::step_of;
use tapis_core::{Clock, ManualClock};
use tapis_store::secrets::{SEALED, SecretKey};
use tapis_store::testing::{
    START, TestDb, backends, bootstrap, clock_at, domain_notice, officer, party, principal, webhook,
};
use tapis_store::{Attempt, Options, Principal, Store};

async fn open(db: &TestDb, clock: &ManualClock, secrets: SecretKey) -> Store {
    Store::open_with(
        &db.url,
        Arc::new(clock.clone()),
        Options {
            secrets,
            ..Default::default()
        },
    )
    .await
    .expect("open")
}

async fn token(
    store: &Store,
    admin: &Principal,
    party: tapis_core::PartyId,
    role: Role,
) -> Principal {
    let (_, secret) = store
        .create_token(&admin.actor(), party, role, "t", None)
        .await
        .expect("token");
    principal(store, &secret).await
}

/// Settle every due message as delivered; the representative's code.
async fn drain(store: &Store) -> Option<String> {
    let mut code = None;
    for m in store.claim_outbox("t", 500).await.expect("claim") {
        if m.channel == tapis_core::delivery::OutboxChannel::Email {
            code = code.or(store.email_route(&m).await.expect("route").code);
        }
        store
            .complete_delivery(
                &m,
                Attempt {
                    ok: true,
                    status: Some(200),
                    latency_ms: 1,
                    error: None,
                },
            )
            .await
            .expect("complete");
    }
    code
}

async fn rotation(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let old = SecretKey::from_bytes([1; 32]);
    let new = SecretKey::from_bytes([2; 32]);
    let old_kid = old.kid().expect("kid").to_owned();
    let new_kid = new.kid().expect("kid").to_owned();

    // ---- everything sealed under the old key, through the store's methods
    let store = open(&db, &clock, old.clone()).await;
    let (boot, admin) = bootstrap(&store).await;
    let officer = officer(&store, &boot, &admin).await;
    // webhook secrets, current and previous
    let hooked = party(&store, &admin, "platform", "Hooked").await.id;
    let first_secret = webhook(&store, &admin, hooked).await;
    let (_, webhook_secret) = store
        .rotate_webhook_secret(&admin.actor(), hooked)
        .await
        .expect("rotate webhook");
    // TSIG secrets, current and previous
    let isp = party(&store, &admin, "isp", "Net").await.id;
    let operator = token(&store, &admin, isp, Role::IspOperator).await;
    let r = Resolvers::parse(ResolversInput::default(), &Default::default()).expect("resolvers");
    store
        .set_isp_resolvers(&operator.actor(), isp, r)
        .await
        .expect("resolvers");
    let (_, tsig) = store.rotate_tsig_key(&operator, isp).await.expect("tsig");
    // a platform without a channel, its representative verified (contact,
    // code in the outbox's recipient); its notice escalates as
    // undeliverable and the escalation names the representative
    let quiet = party(&store, &admin, "platform", "Quiet").await.id;
    let agent = token(&store, &admin, quiet, Role::PlatformAgent).await;
    let rep = Contact::parse(
        ContactRole::Legal,
        ContactInput {
            name: "PT Perwakilan Quiet".into(),
            kind: Some("office".into()),
            address: Some("Jl. Sudirman 1, Jakarta".into()),
            email: "rep@quiet.example".into(),
            phone: Some("+62 21 555 0100".into()),
            hours: Some("Mon-Fri 09:00-17:00".into()),
            time_zone: Some("Asia/Jakarta".into()),
        },
    )
    .expect("contact");
    store
        .set_platform_contact(&agent, quiet, ContactRole::Legal, rep)
        .await
        .expect("set");
    store
        .send_contact_code(&agent, quiet, ContactRole::Legal)
        .await
        .expect("code");
    let code = drain(&store).await.expect("the code's email");
    store
        .verify_platform_contact(&agent, quiet, ContactRole::Legal, &code)
        .await
        .expect("verify");
    store
        .create_notice(&officer, domain_notice(&store, quiet, 1), None)
        .await
        .expect("notice");
    clock.advance_millis(3_601_000);
    store.fire_due_jobs(100).await.expect("fire");
    // two-step secrets, one confirmed and one pending
    let person = Person::parse("Dewi Lestari").expect("person");
    let mut accounts = vec![];
    for login in ["dewi@hooked", "rina@hooked"] {
        let a = store
            .create_account(
                &admin.actor(),
                hooked,
                login,
                &person,
                &[Role::PlatformAgent],
                Some("a long enough secret"),
            )
            .await
            .expect("account");
        accounts.push(a);
    }
    let totp = store.begin_two_step(&accounts[0]).await.expect("begin");
    let now_code = format!("{:06}", totp.code_at_step(step_of(clock.now())));
    store
        .confirm_two_step(&accounts[0], &now_code)
        .await
        .expect("confirm");
    let pending = store.begin_two_step(&accounts[1]).await.expect("pending");
    // a public reporter's contact
    let flag = NewFlag::parse(
        FlagInput {
            targets: vec![FlagTargetInput {
                kind: "domain".into(),
                value: "casino.example".into(),
                native_id: None,
            }],
            category: "gambling".into(),
            reasons: "an online casino".into(),
            evidence: vec![],
            contact: Some("worried.parent@mail.example".into()),
        },
        &Taxonomy::bundled(),
        FlagLimits::PUBLIC,
        true,
        clock.now(),
    )
    .expect("flag");
    store.submit_public_flag(flag).await.expect("report");

    let before = store.raw_sealed_values().await.expect("raw");
    for col in SEALED {
        let under_old = before
            .iter()
            .filter(|(c, _, v)| c == col && SecretKey::sealed_kid(v) == Some(old_kid.as_str()))
            .count();
        assert!(
            under_old >= 1,
            "{backend:?}: {}.{} has a value sealed under the old key: {before:?}",
            col.table,
            col.column
        );
    }
    store.close().await;

    // ---- the new key alone cannot open them; with the old one retired,
    // the reseal moves every value
    let alone = open(&db, &clock, new.clone()).await;
    let e = alone.webhook_target(hooked).await.expect_err("old key");
    assert!(e.to_string().contains(&old_kid), "{e}");
    alone.close().await;
    let store = open(&db, &clock, new.clone().with_retired(old.clone())).await;
    let n = store.reseal_secrets().await.expect("reseal");
    assert_eq!(
        n as usize,
        before.len(),
        "{backend:?}: every value resealed"
    );
    assert_eq!(store.reseal_secrets().await.expect("again"), 0);
    let events = store
        .events_for("setting", "secrets_key")
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].after["resealed"], before.len());
    assert_eq!(events[0].after["kid"], new_kid.as_str());
    assert_eq!(events[0].after["retired"][0], old_kid.as_str());
    assert!(store.verify_audit().await.expect("verify").ok());
    store.close().await;

    // ---- every value opens with the new key alone; none with the old
    let store = open(&db, &clock, new.clone()).await;
    let after = store.raw_sealed_values().await.expect("raw");
    assert_eq!(after.len(), before.len());
    for (col, row, value) in &after {
        assert_eq!(
            SecretKey::sealed_kid(value),
            Some(new_kid.as_str()),
            "{backend:?}: {}.{} of {row} is not under the new key",
            col.table,
            col.column
        );
        let clear = new
            .open(col.place(row), value)
            .expect("opens with the new key");
        assert!(!clear.is_empty());
        assert!(old.open(col.place(row), value).is_err());
        let was = before
            .iter()
            .find(|(c, r, _)| c == col && r == row)
            .map(|(_, _, v)| old.open(col.place(row), v).expect("old opens old"));
        assert_eq!(Some(clear), was, "{}.{} of {row}", col.table, col.column);
    }
    // and the store reads them back
    let target = store
        .webhook_target(hooked)
        .await
        .expect("target")
        .expect("webhook");
    assert_eq!(target.secrets, vec![webhook_secret, first_secret]);
    let access = store.xfr_access().await.expect("access");
    assert!(access.keys.iter().any(|(_, s)| *s == tsig));
    let contacts = store
        .platform_contacts(&agent, quiet)
        .await
        .expect("contacts");
    assert_eq!(contacts[0].contact.email, "rep@quiet.example");
    let escalations = store.list_escalations(None).await.expect("escalations");
    let named = escalations
        .iter()
        .find(|e| e.representative.is_some())
        .expect("an escalation names the representative");
    assert_eq!(
        named.representative.as_ref().expect("rep")["email"],
        "rep@quiet.example"
    );
    assert_eq!(
        store.pending_two_step(&accounts[1]).await.expect("pending"),
        Some(pending)
    );
    store.close().await;

    // ---- a value under an unknown key stops the reseal, nothing written
    let stranger = open(&db, &clock, SecretKey::from_bytes([3; 32])).await;
    let e = stranger.reseal_secrets().await.expect_err("unknown key");
    assert!(e.to_string().contains(&new_kid), "{e}");
    assert_eq!(stranger.raw_sealed_values().await.expect("raw"), after);
    stranger.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_every_sealed_column_opens_with_the_new_key() {
    for backend in backends() {
        rotation(backend).await;
    }
}
