//! A platform's representative and contacts on every backend: set by the
//! platform's own agent only (the authority 403, another platform 404),
//! verified with the code emailed through the outbox, un-verified by a new
//! address; a missed deadline copies the notice to a verified
//! representative (on the notice's record, named on the escalation) and
//! never to an unverified one.

use std::sync::Arc;

use tapis_core::EventType;
use tapis_core::representative::{Contact, ContactInput, ContactRole, ContactState};
use tapis_core::role::Role;
use tapis_store::testing::{
    START, TestDb, backends, bootstrap, clock_at, domain_notice, officer, party, principal, webhook,
};
use tapis_store::{Attempt, Error, Principal, Store};

fn legal(email: &str, hours: &str) -> Contact {
    Contact::parse(
        ContactRole::Legal,
        ContactInput {
            name: "PT Perwakilan Chat".into(),
            kind: Some("office".into()),
            address: Some("Jl. Sudirman 1, Jakarta".into()),
            email: email.into(),
            phone: Some("+62 21 555 0100".into()),
            hours: Some(hours.into()),
            time_zone: Some("Asia/Jakarta".into()),
        },
    )
    .expect("contact")
}

async fn agent(store: &Store, admin: &Principal, party: tapis_core::PartyId) -> Principal {
    let (_, secret) = store
        .create_token(&admin.actor(), party, Role::PlatformAgent, "agent", None)
        .await
        .expect("token");
    principal(store, &secret).await
}

/// Claim what is due; settle everything as delivered and return the
/// emails (with their route); webhook payloads go to `hooks`.
async fn drain_into(
    store: &Store,
    hooks: &mut Vec<(tapis_core::PartyId, serde_json::Value)>,
) -> Vec<(EventType, tapis_store::EmailRoute)> {
    let mut emails = Vec::new();
    for m in store.claim_outbox("t", 500).await.expect("claim") {
        if m.channel == tapis_core::delivery::OutboxChannel::Email {
            emails.push((m.event_type, store.email_route(&m).await.expect("route")));
        } else {
            hooks.push((
                m.party_id,
                serde_json::from_str(&m.payload).expect("payload"),
            ));
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
    emails
}

async fn drain(store: &Store) -> Vec<(EventType, tapis_store::EmailRoute)> {
    drain_into(store, &mut Vec::new()).await
}

fn is_forbidden(e: &Error) -> bool {
    matches!(e, Error::Domain(tapis_core::Error::Forbidden { .. }))
}

async fn set_and_verify(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store = db.open(Arc::new(clock.clone())).await;
    let (boot, admin) = bootstrap(&store).await;
    let p = party(&store, &admin, "platform", "Chat").await;
    let q = party(&store, &admin, "platform", "Other").await;
    let officer = officer(&store, &boot, &admin).await;
    let ap = agent(&store, &admin, p.id).await;
    let aq = agent(&store, &admin, q.id).await;
    let rep = legal("rep@chat.example", "Mon-Fri 09:00-17:00");

    // the authority sees but cannot set (403); another platform: 404
    for by in [&admin, &officer] {
        let e = store
            .set_platform_contact(by, p.id, ContactRole::Legal, rep.clone())
            .await
            .expect_err("authority");
        assert!(is_forbidden(&e), "{backend:?}: {e}");
    }
    let e = store
        .set_platform_contact(&aq, p.id, ContactRole::Legal, rep.clone())
        .await
        .expect_err("other platform");
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    let e = store.platform_contacts(&aq, p.id).await.expect_err("404");
    assert!(matches!(e, Error::NotFound(_)), "{e}");

    let c = store
        .set_platform_contact(&ap, p.id, ContactRole::Legal, rep.clone())
        .await
        .expect("set");
    assert_eq!(c.state, ContactState::Unverified);
    let seen = store.platform_contacts(&admin, p.id).await.expect("read");
    assert_eq!(seen[0].contact, rep, "{backend:?}");
    let missing = store.unrepresented_platforms(&officer).await.expect("list");
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(is_forbidden(
        &store.unrepresented_platforms(&ap).await.expect_err("agent")
    ));

    // verify: the code goes by email to the contact's address only
    let c = store
        .send_contact_code(&ap, p.id, ContactRole::Legal)
        .await
        .expect("code");
    assert_eq!(c.state, ContactState::CodeSent);
    let again = store.send_contact_code(&ap, p.id, ContactRole::Legal).await;
    assert!(again.is_err(), "a second code within the minute is refused");
    let mails = drain(&store).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (ty, route) = &mails[0];
    assert_eq!(*ty, EventType::ContactCodeSent);
    assert_eq!(route.to, vec!["rep@chat.example".to_owned()]);
    let code = route.code.clone().expect("a code");
    assert_eq!(code.len(), 8);
    // the code is not on the platform's stream nor in the outbox payload
    let events = store
        .events_for("party", &p.id.to_string())
        .await
        .expect("events");
    assert!(
        !serde_json::to_string(&events)
            .expect("json")
            .contains(&code),
        "the code is not on the record"
    );
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let e = store
        .verify_platform_contact(&ap, p.id, ContactRole::Legal, wrong)
        .await
        .expect_err("wrong");
    assert!(e.to_string().contains("4 tries left"), "{e}");
    let e = store
        .verify_platform_contact(&aq, p.id, ContactRole::Legal, &code)
        .await
        .expect_err("not theirs");
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    let c = store
        .verify_platform_contact(&ap, p.id, ContactRole::Legal, &code)
        .await
        .expect("verify");
    assert_eq!(c.state, ContactState::Verified);
    assert!(c.verified_at.is_some());
    let missing = store.unrepresented_platforms(&admin).await.expect("list");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].platform_id, q.id);
    // the code is spent
    assert!(
        store
            .verify_platform_contact(&ap, p.id, ContactRole::Legal, &code)
            .await
            .is_err()
    );

    // new hours keep it verified; a new address does not
    let c = store
        .set_platform_contact(
            &ap,
            p.id,
            ContactRole::Legal,
            legal("rep@chat.example", "24/7"),
        )
        .await
        .expect("hours");
    assert_eq!(c.state, ContactState::Verified);
    let c = store
        .set_platform_contact(
            &ap,
            p.id,
            ContactRole::Legal,
            legal("new@chat.example", "24/7"),
        )
        .await
        .expect("address");
    assert_eq!(c.state, ContactState::Unverified);
    let actions: Vec<EventType> = store
        .events_for("party", &p.id.to_string())
        .await
        .expect("events")
        .iter()
        .map(|e| e.action.parse().expect("type"))
        .collect();
    for want in [
        EventType::ContactSet,
        EventType::ContactCodeSent,
        EventType::ContactCodeRefused,
        EventType::ContactVerified,
    ] {
        assert!(
            actions.contains(&want),
            "{backend:?}: {want} in {actions:?}"
        );
    }
    assert!(store.verify_audit().await.expect("verify").ok());
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_verify_a_representative_only_as_the_platform() {
    for backend in backends() {
        set_and_verify(backend).await;
    }
}

async fn missed_deadline(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store = db.open(Arc::new(clock.clone())).await;
    let (boot, admin) = bootstrap(&store).await;
    let officer = officer(&store, &boot, &admin).await;
    // P's representative is verified, Q's is set but not verified
    let p = party(&store, &admin, "platform", "Verified").await;
    let q = party(&store, &admin, "platform", "Unverified").await;
    for x in [p.id, q.id] {
        webhook(&store, &admin, x).await;
    }
    let ap = agent(&store, &admin, p.id).await;
    let aq = agent(&store, &admin, q.id).await;
    store
        .set_platform_contact(&ap, p.id, ContactRole::Legal, legal("rep@p.example", "9-5"))
        .await
        .expect("set p");
    store
        .set_platform_contact(&aq, q.id, ContactRole::Legal, legal("rep@q.example", "9-5"))
        .await
        .expect("set q");
    store
        .send_contact_code(&ap, p.id, ContactRole::Legal)
        .await
        .expect("code");
    let code = drain(&store).await[0].1.code.clone().expect("code");
    store
        .verify_platform_contact(&ap, p.id, ContactRole::Legal, &code)
        .await
        .expect("verified");

    let np = store
        .create_notice(&officer, domain_notice(&store, p.id, 1), None)
        .await
        .expect("notice p");
    let nq = store
        .create_notice(&officer, domain_notice(&store, q.id, 2), None)
        .await
        .expect("notice q");
    // delivered by webhook (2xx): the deadlines start
    assert!(drain(&store).await.is_empty());
    let mut copies = Vec::new();
    let mut hooks = Vec::new();
    for _ in 0..40 {
        clock.advance_millis(6 * 3600 * 1000);
        store.fire_due_jobs(500).await.expect("fire");
        copies.extend(drain_into(&store, &mut hooks).await);
    }
    // the ladder's last steps name P's representative in P's messages;
    // the first warning does not, and Q's never do
    let named = |party, ty: &str, level: Option<i64>| {
        hooks
            .iter()
            .filter(|(p, v)| {
                *p == party && v["type"] == ty && level.is_none_or(|l| v["data"]["level"] == l)
            })
            .map(|(_, v)| {
                v["data"]["representative"]["email"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        named(p.id, "notice.warning", Some(2)),
        vec![Some("rep@p.example".to_owned())],
        "{backend:?}: the second warning names the representative"
    );
    assert_eq!(named(p.id, "notice.warning", Some(1)), vec![None]);
    assert_eq!(
        named(p.id, "notice.escalated", None),
        vec![Some("rep@p.example".to_owned())]
    );
    assert_eq!(named(q.id, "notice.escalated", None), vec![None]);
    assert_eq!(copies.len(), 1, "{backend:?}: one copy, to P's: {copies:?}");
    assert_eq!(copies[0].0, EventType::RepresentativeCopied);
    assert_eq!(copies[0].1.to, vec!["rep@p.example".to_owned()]);

    let on_record = |id: tapis_core::NoticeId| {
        let store = store.clone();
        async move {
            store
                .events_for("notice", &id.to_string())
                .await
                .expect("events")
                .into_iter()
                .filter(|e| e.action == "representative.copied")
                .collect::<Vec<_>>()
        }
    };
    let pe = on_record(np.notice.id).await;
    assert_eq!(pe.len(), 1, "{backend:?}");
    assert_eq!(pe[0].after["cause"], "deadline_missed");
    assert!(
        !pe[0].after.to_string().contains("rep@p.example"),
        "the record holds a digest, not the address"
    );
    assert!(
        on_record(nq.notice.id).await.is_empty(),
        "an unverified one is not used"
    );

    // the escalation names P's representative, not Q's
    let escalations = store.list_escalations(None).await.expect("escalations");
    assert_eq!(escalations.len(), 2, "{backend:?}");
    for e in &escalations {
        if e.notice_id == np.notice.id {
            let rep = e.representative.as_ref().expect("named");
            assert_eq!(rep["email"], "rep@p.example");
            assert_eq!(rep["name"], "PT Perwakilan Chat");
        } else {
            assert!(e.representative.is_none(), "{e:?}");
        }
    }
    assert!(store.verify_audit().await.expect("verify").ok());
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_copies_the_notice_to_the_verified_representative_only() {
    for backend in backends() {
        missed_deadline(backend).await;
    }
}
