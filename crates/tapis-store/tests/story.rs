//! One story, run against every backend: bootstrap, parties and tokens,
//! notices with idempotency and deduplication, delivery, decisions, the
//! timeline, and the audit chain catching a direct edit.

use std::sync::Arc;

use tapis_core::notice::{
    Decision, DecisionInput, EvidenceInput, ItemInput, ItemState, LegalBasisInput, Limits,
    NewNotice, NoticeInput, NoticeState,
};
use tapis_core::party::{NewParty, PartyInput};
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_core::{ManualClock, PartyId, Timestamp};
use tapis_store::testing::{TestDb, backends};
use tapis_store::{Backend, Created, Error, NoticeFilter, Principal, Store};

fn notice_input(platform: PartyId, values: &[&str]) -> NoticeInput {
    NoticeInput {
        platform_id: platform.to_string(),
        category: "terrorism".into(),
        urgency: "urgent".into(),
        legal_basis: LegalBasisInput {
            reference: "Law 11/2008 art. 40".into(),
            text: "The government prevents the dissemination of unlawful content.".into(),
        },
        explanation: "Public channels distributing propaganda".into(),
        items: values
            .iter()
            .map(|v| ItemInput {
                kind: "platform_channel".into(),
                value: (*v).into(),
                native_id: None,
                evidence: vec![EvidenceInput {
                    sha256: "ab".repeat(32),
                    description: "screenshot".into(),
                    captured_at: "2017-03-28T10:00:00+07:00".into(),
                }],
            })
            .collect(),
        territorial_scope: vec!["ID".into()],
        may_notify_user: Some(false),
        draft: false,
    }
}

fn parse(store: &Store, input: NoticeInput) -> NewNotice {
    NewNotice::parse(input, &Taxonomy::bundled(), Limits::default(), store.now())
        .expect("valid notice")
}

/// The signing keys the store publishes: (kid, public key).
async fn published_keys(store: &Store) -> Vec<(String, String)> {
    let keys = store.public_keys().await.expect("keys");
    keys.into_iter().map(|k| (k.kid, k.public_key)).collect()
}

/// Submits `input` as `officer` under the idempotency key and body
/// fingerprint `key`.
async fn submit(
    store: &Store,
    officer: &Principal,
    input: &NoticeInput,
    key: (&str, &str),
) -> tapis_store::Result<Created> {
    let new = parse(store, input.clone());
    store.create_notice(officer, new, Some(key)).await
}

async fn party(store: &Store, admin: &Principal, kind: &str, name: &str) -> PartyId {
    let p = NewParty::parse(PartyInput {
        kind: kind.into(),
        name: name.into(),
        contacts: vec![],
        domains: if kind == "platform" {
            vec![format!("{}.example", name.to_lowercase())]
        } else {
            vec![]
        },
        handles: vec![],
    })
    .expect("valid party");
    store
        .create_party(&admin.actor(), p)
        .await
        .expect("create party")
        .id
}

async fn token(store: &Store, admin: &Principal, party: PartyId, role: Role) -> Principal {
    let (_, secret) = store
        .create_token(
            &admin.actor(),
            party,
            role,
            &format!("{} at {party}", role.as_str()),
            None,
        )
        .await
        .expect("create token");
    store
        .authenticate(&secret)
        .await
        .expect("auth")
        .expect("live token")
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(Timestamp::parse("t", "2017-03-29T09:00:00+07:00").expect("time"));
    let store = db.open(Arc::new(clock.clone())).await;

    // bootstrap happens once
    let boot = store
        .bootstrap("Ministry", None)
        .await
        .expect("bootstrap")
        .expect("first start");
    assert!(
        store
            .bootstrap("Ministry", None)
            .await
            .expect("bootstrap")
            .is_none()
    );
    let admin = store
        .authenticate(&boot.admin_secret)
        .await
        .expect("auth")
        .expect("admin");
    assert_eq!(admin.role, Role::Admin);
    assert!(
        store
            .authenticate("tapis_wrong")
            .await
            .expect("auth")
            .is_none()
    );

    let platform = party(&store, &admin, "platform", "Messenger").await;
    let other_platform = party(&store, &admin, "platform", "Other").await;
    let agency2 = party(&store, &admin, "authority", "Police").await;
    // a duplicate name is a conflict, not a second party
    let dup = NewParty::parse(PartyInput {
        kind: "platform".into(),
        name: "Messenger".into(),
        contacts: vec![],
        domains: vec![],
        handles: vec![],
    })
    .expect("valid");
    assert!(matches!(
        store.create_party(&admin.actor(), dup).await,
        Err(Error::Conflict(_))
    ));
    // a role must fit its party's kind
    assert!(matches!(
        store
            .create_token(&admin.actor(), platform, Role::Officer, "x", None)
            .await,
        Err(Error::Domain(_))
    ));

    let officer = token(&store, &admin, boot.authority.id, Role::Officer).await;
    let officer2 = token(&store, &admin, agency2, Role::Officer).await;
    let agent = token(&store, &admin, platform, Role::PlatformAgent).await;
    let other_agent = token(&store, &admin, other_platform, Role::PlatformAgent).await;

    // submission is idempotent per key
    let input = notice_input(
        platform,
        &["@Radical_One", "@radical_two", "https://t.me/radical_three"],
    );
    let first = submit(&store, &officer, &input, ("key-1", "fp-1"))
        .await
        .expect("create");
    assert!(first.created);
    let n = first.notice;
    assert_eq!(n.state, NoticeState::Submitted);
    assert_eq!(n.items.len(), 3);
    assert_eq!(n.due_at, None, "the deadline starts at delivery");
    assert!(
        n.signed_document.is_some() && n.document_sha256.is_some(),
        "submission signs the notice"
    );
    let again = submit(&store, &officer, &input, ("key-1", "fp-1"))
        .await
        .expect("repeat");
    assert!(!again.created);
    assert_eq!(again.notice.id, n.id);
    assert!(matches!(
        submit(&store, &officer, &input, ("key-1", "fp-2")).await,
        Err(Error::Conflict(_))
    ));
    // a notice to a party that is not a platform is refused
    let mut wrong = input.clone();
    wrong.platform_id = agency2.to_string();
    assert!(matches!(
        store
            .create_notice(&officer, parse(&store, wrong), None)
            .await,
        Err(Error::Domain(_))
    ));

    // a second agency flags one of the same channels: linked, not repeated
    let n2 = store
        .create_notice(
            &officer2,
            parse(&store, notice_input(platform, &["@RADICAL_ONE", "@fresh"])),
            None,
        )
        .await
        .expect("second notice")
        .notice;
    let dup_ref = n2.items[0]
        .duplicate_of
        .as_ref()
        .expect("linked to the first notice");
    assert_eq!(dup_ref.notice_id, n.id);
    assert_eq!(dup_ref.item_id, n.items[0].id);
    assert!(n2.items[1].duplicate_of.is_none());

    // the platform fetches its inbox: that is delivery; others see nothing
    let inbox = store.inbox(&agent, 50).await.expect("inbox");
    assert_eq!(inbox.len(), 2);
    assert!(inbox.iter().all(|x| x.state == NoticeState::Delivered));
    let delivered = inbox.iter().find(|x| x.id == n.id).expect("n");
    assert_eq!(
        delivered.due_at,
        delivered.delivered_at.map(|t| t.plus_secs(4 * 3600)),
        "terrorism is due 4 h after delivery"
    );
    assert!(
        store
            .inbox(&other_agent, 50)
            .await
            .expect("inbox")
            .is_empty()
    );
    assert!(matches!(
        store.fetch_as_platform(&other_agent, n.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.acknowledge(&other_agent, n.id, None).await,
        Err(Error::NotFound(_))
    ));

    clock.advance_millis(60_000);
    let (acked, receipt) = store.acknowledge(&agent, n.id, None).await.expect("ack");
    assert_eq!(receipt["payload"]["notice_id"], n.id.to_string());
    let keys = published_keys(&store).await;
    tapis_core::sign::open_envelope(&receipt, &keys)
        .expect("the receipt verifies with a published key");
    assert_eq!(acked.state, NoticeState::Acknowledged);
    assert!(
        matches!(
            store.acknowledge(&agent, n.id, None).await,
            Err(Error::Domain(_))
        ),
        "acknowledging twice is illegal"
    );

    // decisions; the first one also settles the duplicate in notice 2
    let decide = |d: &str, r: Option<&str>| {
        Decision::parse(DecisionInput {
            decision: d.into(),
            reason: r.map(Into::into),
        })
        .expect("decision")
    };
    // item `i` of the notice, decided by its platform's agent
    let (items, notice_id, by, st) = (&n.items, n.id, &agent, &store);
    let decide_item =
        move |i: usize, d, r| st.decide_item(by, notice_id, items[i].id, decide(d, r));
    decide_item(0, "removed", None).await.expect("decide 0");
    let n2_now = store.get_notice(n2.id).await.expect("n2");
    assert_eq!(
        n2_now.items[0].state,
        ItemState::Removed,
        "duplicate settled by the original's decision"
    );
    assert_eq!(n2_now.state, NoticeState::Delivered);
    assert!(
        matches!(
            decide_item(0, "rejected", Some("changed my mind")).await,
            Err(Error::Domain(_))
        ),
        "a final decision is final"
    );
    let after_dispute = decide_item(1, "disputed", Some("this is news reporting"))
        .await
        .expect("dispute");
    assert_eq!(after_dispute.0.state, NoticeState::Disputed);
    // a decision of `disputed` opens a dispute to review, as the dispute
    // route does: the clock stops and the item waits for the authority
    let (_, disputes) = store
        .notice_questions(&agent, n.id)
        .await
        .expect("questions");
    assert_eq!(disputes.len(), 1, "{disputes:?}");
    assert_eq!(disputes[0].item_id, n.items[1].id);
    assert_eq!(disputes[0].reason, "this is news reporting");
    assert!(
        matches!(
            decide_item(1, "geo_blocked", Some("blocked in ID")).await,
            Err(Error::Conflict(_))
        ),
        "the authority answers first"
    );
    let upheld = tapis_core::dispute::DisputeReview::parse("upheld", "the item stands", None, None)
        .expect("review");
    let rina = tapis_core::person::Person::parse("Rina Reviewer").expect("person");
    let (_, secret) = store
        .create_token_with(
            &admin.actor(),
            boot.authority.id,
            Role::Officer,
            "reviewer",
            Some(&rina),
            None,
            None,
        )
        .await
        .expect("reviewer");
    let reviewer = store
        .authenticate(&secret)
        .await
        .expect("auth")
        .expect("live");
    store
        .review_dispute(&reviewer, disputes[0].id, &upheld)
        .await
        .expect("reviewed by an officer who did not issue it");
    decide_item(1, "geo_blocked", Some("blocked in ID"))
        .await
        .expect("decide 1");
    let closed = decide_item(2, "not_found", None).await.expect("decide 2");
    let (closed, decision_receipt) = closed;
    assert_eq!(closed.state, NoticeState::Closed);
    assert_eq!(decision_receipt["payload"]["type"], "tapis.decision.v1");
    assert_eq!(decision_receipt["payload"]["decision"], "not_found");
    let keys = published_keys(&store).await;
    tapis_core::sign::open_envelope(&decision_receipt, &keys).expect("the decision is signed");
    assert!(closed.closed_at.is_some());

    // overdue: notice 2 is still open; two hours later it is past its hour
    let filter = |overdue| NoticeFilter {
        overdue,
        limit: 50,
        ..Default::default()
    };
    assert!(
        store
            .list_notices(&filter(true))
            .await
            .expect("list")
            .is_empty()
    );
    clock.advance_millis(5 * 3600 * 1000);
    let overdue = store.list_notices(&filter(true)).await.expect("list");
    assert_eq!(
        overdue.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![n2.id]
    );
    let by_platform = store
        .list_notices(&NoticeFilter {
            platform_id: Some(platform),
            state: Some(NoticeState::Closed),
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(by_platform.len(), 1);

    // withdrawal is the issuer's alone
    assert!(matches!(
        store.withdraw(&officer, n2.id, "wrong agency").await,
        Err(Error::NotFound(_))
    ));
    let w = store
        .withdraw(&officer2, n2.id, "handled by the first notice")
        .await
        .expect("withdraw");
    assert_eq!(w.state, NoticeState::Withdrawn);

    // the timeline tells the whole story
    let actions: Vec<String> = store
        .events_for("notice", &n.id.to_string())
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "notice.submitted",
            "notice.delivered",
            "notice.acknowledged",
            "receipt.issued",
            "item.decided",
            "item.decided",
            "dispute.opened",
            "notice.disputed",
            "notice.paused",
            "item.decided",
            "dispute.reviewed",
            "notice.acknowledged",
            "notice.resumed",
            "item.decided",
            "item.decided",
            "notice.closed",
        ]
    );

    // the chain verifies, cannot be edited through the triggers, and
    // catches an edit made by someone who drops them
    let report = store.verify_audit().await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert!(report.events > 20);
    let target_seq = 5;
    let tamper = format!(
        "UPDATE audit_events SET after = '{{\"state\":\"closed\"}}' WHERE seq = {target_seq}"
    );
    assert!(
        store.raw_execute(&tamper).await.is_err(),
        "the append-only trigger refuses edits"
    );
    match backend {
        Backend::Sqlite => {
            store
                .raw_execute("DROP TRIGGER audit_events_no_update")
                .await
        }
        Backend::Postgres => {
            store
                .raw_execute("DROP TRIGGER audit_events_no_change ON audit_events")
                .await
        }
    }
    .expect("drop trigger");
    assert_eq!(store.raw_execute(&tamper).await.expect("tamper"), 1);
    let report = store.verify_audit().await.expect("verify");
    let broken = report.first_break.expect("the edit is caught");
    assert_eq!(broken.seq, target_seq);
    assert_eq!(report.events, (target_seq - 1) as u64);

    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_every_backend() {
    let backends = backends();
    assert!(!backends.is_empty(), "no backend selected");
    for b in backends {
        story(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_one_chain() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(tapis_core::SystemClock)).await;
        let (_, admin) = tapis_store::testing::bootstrap(&store).await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                party(&store, &admin, "isp", &format!("ISP {i}")).await
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let report = store.verify_audit().await.expect("verify");
        assert!(report.ok(), "{backend:?}: {report:?}");
        assert_eq!(report.events, 3 + 16, "{backend:?}");
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_refuses_edited_migrations() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    store.bootstrap("Ministry", None).await.expect("boot");
    store.close().await;
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    assert_eq!(store.list_parties(None).await.expect("list").len(), 1);
    store
        .raw_execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        .await
        .expect("edit");
    store.close().await;
    let err = Store::open(&db.url, Arc::new(tapis_core::SystemClock))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("must never be edited"), "{err}");
}
