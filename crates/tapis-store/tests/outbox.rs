//! The outbox under several workers: a message claimed by one worker is not
//! claimed by another while its lease runs, every message is claimed once,
//! and retries follow the backoff on the store's clock.

use std::collections::HashSet;

use tapis_store::Attempt;
use tapis_store::testing::{backends, seeded_outbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_workers_never_claim_the_same_message() {
    for backend in backends() {
        let (db, store, _) = seeded_outbox(backend, 120).await;
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
        let (db, store, clock) = seeded_outbox(backend, 1).await;
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
