//! Group commit of submissions, on both backends: notices submitted at
//! once share transactions; a submission that fails in a batch fails alone
//! and leaves nothing behind; every acknowledged one is stored, with one
//! audit event each, and the chain verifies.

use std::collections::HashSet;
use std::sync::Arc;

use tapis_store::testing::{
    START, TestDb, backends, bootstrap, clock_at, domain_notice, officer, party, webhook,
};
use tapis_store::{Error, NoticeFilter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_share_transactions_and_fail_alone() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let platform = party(&store, &admin, "platform", "P").await;
        webhook(&store, &admin, platform.id).await;
        let officer = officer(&store, &boot, &admin).await;
        let before = store.verify_audit().await.expect("verify").events;

        // the first use of an idempotency key
        let first = store
            .create_notice(
                &officer,
                domain_notice(&store, platform.id, 0),
                Some(("k", "a")),
            )
            .await
            .expect("first");
        assert!(first.created);

        // 100 new notices, 10 repeats of the first (answered with it) and
        // 10 reuses of its key for another request (refused), all at once
        let start = Arc::new(tokio::sync::Barrier::new(120));
        let mut tasks = Vec::new();
        for i in 0..120usize {
            let (store, officer, start) = (store.clone(), officer.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                let key = match i % 12 {
                    10 => Some(("k", "a")),
                    11 => Some(("k", "b")),
                    _ => None,
                };
                let notice =
                    domain_notice(&store, platform.id, if key.is_some() { 0 } else { i + 1 });
                start.wait().await;
                (i, store.create_notice(&officer, notice, key).await)
            }));
        }
        let (mut created, mut repeats, mut refused) = (HashSet::new(), 0, 0);
        for t in tasks {
            let (i, outcome) = t.await.expect("task");
            match (i % 12, outcome) {
                (10, Ok(c)) => {
                    assert!(!c.created, "{backend:?}: a repeat made a new notice");
                    assert_eq!(c.notice.id, first.notice.id);
                    repeats += 1;
                }
                (11, Err(Error::Conflict(m))) => {
                    assert!(m.contains("Idempotency-Key"), "{m}");
                    refused += 1;
                }
                (_, Ok(c)) if i % 12 < 10 => {
                    assert!(c.created);
                    created.insert(c.notice.id);
                }
                (k, other) => panic!("{backend:?}: submission {i} (kind {k}): {other:?}"),
            }
        }
        assert_eq!(
            (created.len(), repeats, refused),
            (100, 10, 10),
            "{backend:?}"
        );

        let stats = store.group_commit_stats();
        assert!(
            stats.largest > 1,
            "{backend:?}: 120 submissions at once never shared a transaction: {stats:?}"
        );
        assert!(stats.batches < stats.jobs, "{backend:?}: {stats:?}");
        assert_eq!(store.write_backlog().queued, 0);

        // exactly what was acknowledged is stored, once each, on the record
        let listed = store
            .list_notices(&NoticeFilter {
                limit: 500,
                ..NoticeFilter::default()
            })
            .await
            .expect("list");
        let ids: HashSet<_> = listed.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 101, "{backend:?}");
        assert!(created.is_subset(&ids) && ids.contains(&first.notice.id));
        let report = store.verify_audit().await.expect("verify");
        assert!(report.ok(), "{backend:?}: {report:?}");
        assert_eq!(
            report.events - before,
            101,
            "{backend:?}: one event per notice"
        );
        db.cleanup().await;
    }
}
