//! Fair claims, group commit and lease hand-over in the outbox, on both
//! backends: a claim takes at most so many per destination and skips busy
//! ones, one transaction settles many attempts (skipping one whose lease
//! was lost), a restarted instance takes its own leases back, and a live
//! one renews those it still sends.

use std::collections::HashSet;

use tapis_store::Attempt;
use tapis_store::testing::{backends, seeded_outbox};

fn ok() -> Attempt {
    Attempt {
        ok: true,
        status: Some(204),
        latency_ms: 3,
        error: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_claims_group_commit_and_lease_hand_over() {
    for backend in backends() {
        let (db, store, _clock) = seeded_outbox(backend, 10).await;
        let backlog = store.outbox_backlog().await.expect("backlog");
        assert_eq!(backlog.len(), 1, "{backend:?}");
        assert_eq!(backlog[0].due, 10);

        // at most 3 for the one destination; none while it is busy
        let first = store.claim_fair("w", 3, 100, &[]).await.expect("claim");
        assert_eq!(first.len(), 3, "{backend:?}");
        let dest = (first[0].channel, first[0].party_id);
        assert!(
            store
                .claim_fair("w", 3, 100, &[dest])
                .await
                .expect("claim")
                .is_empty()
        );
        let second = store.claim_fair("w2", 3, 100, &[]).await.expect("claim");
        let ids =
            |c: &[tapis_store::Claimed]| c.iter().map(|m| m.id.clone()).collect::<HashSet<_>>();
        assert!(
            ids(&first).is_disjoint(&ids(&second)),
            "{backend:?}: claimed twice"
        );

        // w restarts: its leases are free again at once
        assert_eq!(store.reclaim_leases("w").await.expect("reclaim"), 3);
        let third = store.claim_fair("w3", 100, 100, &[]).await.expect("claim");
        assert_eq!(third.len(), 7, "{backend:?}: the 7 not held by w2");
        assert!(ids(&first).is_subset(&ids(&third)));

        // w2 renews what it still sends; w holds nothing any more
        let held: Vec<String> = second.iter().map(|m| m.id.clone()).collect();
        assert_eq!(store.renew_leases("w2", &held).await.expect("renew"), 3);
        assert_eq!(store.renew_leases("w", &held).await.expect("renew"), 0);

        // one transaction settles w2's three; w's stale attempt is skipped
        let mut batch: Vec<(tapis_store::Claimed, Attempt)> =
            second.iter().map(|m| (m.clone(), ok())).collect();
        batch.push((first[0].clone(), ok()));
        store
            .complete_deliveries(&batch)
            .await
            .expect("group commit");
        for m in &second {
            let d = store
                .deliveries(m.notice_id.expect("notice"))
                .await
                .expect("view");
            assert_eq!(d[0].state, "delivered", "{backend:?}");
        }
        let d = store
            .deliveries(first[0].notice_id.expect("notice"))
            .await
            .expect("view");
        assert_eq!(d[0].state, "pending", "{backend:?}: w lost its lease to w3");
        assert_eq!(d[0].attempts, 0);
        let due: u64 = store
            .outbox_backlog()
            .await
            .expect("backlog")
            .iter()
            .map(|b| b.due)
            .sum();
        assert_eq!(due, 7);
        assert!(
            store.verify_audit().await.expect("verify").ok(),
            "{backend:?}"
        );
        db.cleanup().await;
    }
}
