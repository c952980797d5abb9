//! The outbox under several workers: a message claimed by one worker is not
//! claimed by another while its lease runs, every message is claimed once,
//! and retries follow the backoff on the store's clock.

use std::collections::HashSet;
use std::sync::Arc;

use tapis_core::ManualClock;
use tapis_core::notice::{ItemInput, LegalBasisInput, Limits, NewNotice, NoticeInput};
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_store::testing::{
    START, TestDb, backends, bootstrap, clock_at, party, principal, webhook,
};
use tapis_store::{Attempt, Backend, Store};

async fn seeded(backend: Backend, notices: usize) -> (TestDb, Store, ManualClock) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store = db.open(Arc::new(clock.clone())).await;
    let (boot, admin) = bootstrap(&store).await;
    let platform = party(&store, &admin, "platform", "P").await;
    webhook(&store, &admin, platform.id).await;
    let (_, officer) = store
        .create_token(&admin.actor(), boot.authority.id, Role::Officer, "o", None)
        .await
        .expect("token");
    let officer = principal(&store, &officer).await;
    for i in 0..notices {
        let input = NoticeInput {
            platform_id: platform.id.to_string(),
            category: "fraud".into(),
            urgency: "normal".into(),
            legal_basis: LegalBasisInput {
                reference: "r".into(),
                text: "t".into(),
            },
            explanation: "e".into(),
            items: vec![ItemInput {
                kind: "domain".into(),
                value: format!("n{i}.example"),
                native_id: None,
                evidence: vec![],
            }],
            territorial_scope: vec![],
            may_notify_user: None,
            draft: false,
        };
        let new = NewNotice::parse(input, &Taxonomy::bundled(), Limits::default(), store.now())
            .expect("notice");
        store
            .create_notice(&officer, new, None)
            .await
            .expect("create");
    }
    (db, store, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_never_claim_the_same_message() {
    for backend in backends() {
        let (db, store, _) = seeded(backend, 120).await;
        let mut tasks = Vec::new();
        for w in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_outbox(&format!("w{w}"), 7)
                        .await
                        .expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|m| m.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "{backend:?}: a message was claimed twice"
        );
        assert_eq!(all.len(), 120, "{backend:?}: every message claimed once");
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_then_dead_letter() {
    for backend in backends() {
        let (db, store, clock) = seeded(backend, 1).await;
        let max = store.retry().max_attempts;
        for attempt in 1..=max {
            let claimed = store.claim_outbox("w", 10).await.expect("claim");
            assert_eq!(claimed.len(), 1, "{backend:?}: attempt {attempt} is due");
            assert!(
                store
                    .claim_outbox("w2", 10)
                    .await
                    .expect("claim")
                    .is_empty(),
                "leased"
            );
            store
                .complete_delivery(
                    &claimed[0],
                    Attempt {
                        ok: false,
                        status: Some(503),
                        latency_ms: 3,
                        error: Some("503".into()),
                    },
                )
                .await
                .expect("complete");
            // not due again until the backoff passes on the store's clock
            assert!(store.claim_outbox("w", 10).await.expect("claim").is_empty());
            clock.advance_millis(2 * 3600 * 1000);
        }
        assert!(
            store.claim_outbox("w", 10).await.expect("claim").is_empty(),
            "dead letters are not retried"
        );
        let dead = store.dead_letters(10).await.expect("dead");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts, i64::from(max));
        store.close().await;
        db.cleanup().await;
    }
}
