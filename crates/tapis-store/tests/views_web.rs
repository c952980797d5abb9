//! The read-only queries behind the web's role pages, on every backend:
//! orders sorted, filtered and paged without overlap; the orders told to
//! one platform and only those; the orders waiting for an authoriser
//! (only those that need one); who proposed an order; the audit search
//! by type, subject, actor (wildcards taken literally) and dates; and
//! notice lists sorted by column and paged by offset.

use std::sync::Arc;

use tapis_core::notice::LegalBasisInput;
use tapis_core::order::{NewOrder, OrderInput, OrderLimits, OrderState, TargetInput};
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_core::{Clock, PartyId};
use tapis_store::testing::{
    START, TestDb, backends, bootstrap, clock_at, party, platform, signed_in,
};
use tapis_store::{AuditQuery, OrderQuery, Principal, Store};

/// An officer's principal (a person, from a signed-in account).
async fn officer(store: &Store, authority: PartyId) -> Principal {
    signed_in(store, authority, "budi", "Budi Santoso", &[Role::Officer])
        .await
        .1
        .principal
}

async fn propose(store: &Store, by: &Principal, names: &[&str], days: i64) -> String {
    let now = store.now();
    let input = OrderInput {
        targets: names
            .iter()
            .map(|n| TargetInput {
                name: (*n).into(),
                include_subdomains: false,
            })
            .collect(),
        action: "nxdomain".into(),
        category: "gambling".into(),
        legal_basis: LegalBasisInput {
            reference: "Law 11/2008 art. 27(2)".into(),
            text: "Online gambling is unlawful.".into(),
        },
        explanation: None,
        effective_at: now.plus_secs(days * 86_400).to_string(),
        expires_at: now.plus_secs((days + 30) * 86_400).to_string(),
        review_at: now.plus_secs((days + 7) * 86_400).to_string(),
        notices: vec![],
        escalation_id: None,
        emergency: false,
    };
    let new =
        NewOrder::parse(input, &Taxonomy::bundled(), OrderLimits::default(), now).expect("order");
    store.create_order(by, new).await.expect("propose").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_queries_sort_scope_and_search() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let clock = clock_at(START);
        let store = db.open(Arc::new(clock.clone())).await;
        let (boot, admin) = bootstrap(&store).await;
        let chat_a = platform(&store, &admin, "Chat A", "chat-a.example")
            .await
            .id;
        let chat_b = party(&store, &admin, "platform", "Chat B").await.id;
        let court = party(&store, &admin, "authoriser", "Administrative Court")
            .await
            .id;
        let budi = officer(&store, boot.authority.id).await;

        // three orders: one name in 5 days, three names in 3 days, and
        // Chat A's own domain in 2 days (which needs an authoriser)
        let small = propose(&store, &budi, &["judi-a.example"], 5).await;
        let big = propose(
            &store,
            &budi,
            &["judi-b.example", "judi-c.example", "judi-d.example"],
            3,
        )
        .await;
        let sensitive = propose(&store, &budi, &["chat-a.example"], 2).await;

        let ids =
            |orders: Vec<tapis_store::Order>| orders.into_iter().map(|o| o.id).collect::<Vec<_>>();
        let q = |sort: &str, ascending: bool, offset: u32, limit: u32| OrderQuery {
            states: vec![OrderState::Draft],
            sort: sort.into(),
            ascending,
            offset,
            limit,
        };
        assert_eq!(
            ids(store
                .query_orders(&q("effective", true, 0, 50))
                .await
                .expect("q")),
            [sensitive.clone(), big.clone(), small.clone()],
            "{backend:?}: by effective time"
        );
        assert_eq!(
            ids(store
                .query_orders(&q("names", false, 0, 1))
                .await
                .expect("q")),
            [big.as_str()],
            "{backend:?}: most names first"
        );
        let page2 = ids(store
            .query_orders(&q("names", false, 1, 2))
            .await
            .expect("q"));
        assert_eq!(page2.len(), 2, "{backend:?}: the second page");
        assert!(!page2.contains(&big), "{backend:?}: pages do not overlap");
        let none = OrderQuery {
            states: vec![OrderState::InForce, OrderState::Lifted],
            ..q("created", false, 0, 50)
        };
        assert!(store.query_orders(&none).await.expect("q").is_empty());

        // told to Chat A only; waiting for the authoriser only when needed
        assert_eq!(
            ids(store.orders_affecting(chat_a, 50).await.expect("a")),
            [sensitive.as_str()]
        );
        assert!(
            store
                .orders_affecting(chat_b, 50)
                .await
                .expect("b")
                .is_empty()
        );
        assert_eq!(
            ids(store
                .orders_awaiting_authorisation(court, 50)
                .await
                .expect("w")),
            [sensitive.as_str()],
            "{backend:?}"
        );
        let p = store.order_proposer(&small).await.expect("proposer");
        assert_eq!(p.person, budi.person);
        assert_eq!(p.token_id, budi.token_id.to_string());

        // the audit search
        let search = |q: AuditQuery| {
            let store = store.clone();
            async move {
                store
                    .search_audit(&AuditQuery { limit: 50, ..q })
                    .await
                    .expect("search")
            }
        };
        let proposed = search(AuditQuery {
            action: Some("order.proposed".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(proposed.len(), 3, "{backend:?}");
        assert!(
            proposed.windows(2).all(|w| w[0].seq > w[1].seq),
            "newest first"
        );
        let of_small = search(AuditQuery {
            subject_id: Some(small.clone()),
            ascending: true,
            ..Default::default()
        })
        .await;
        assert_eq!(
            of_small.first().map(|e| e.action.as_str()),
            Some("order.proposed")
        );
        assert!(of_small.iter().all(|e| e.subject_id == small));
        let by_budi = search(AuditQuery {
            action: Some("order.proposed".into()),
            actor: Some("BUDI".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(
            by_budi.len(),
            3,
            "{backend:?}: the actor, whatever its case"
        );
        for literal in ["budi%", "b_di"] {
            let none = search(AuditQuery {
                actor: Some(literal.into()),
                ..Default::default()
            })
            .await;
            assert!(none.is_empty(), "{backend:?}: {literal} is taken literally");
        }
        let now = clock.now();
        let later = search(AuditQuery {
            from: Some(now.plus_secs(1)),
            ..Default::default()
        })
        .await;
        assert!(later.is_empty(), "{backend:?}: nothing after now");
        let before = search(AuditQuery {
            to: Some(now.plus_secs(1)),
            action: Some("order.proposed".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(before.len(), 3);
        drop(store);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notice_lists_sort_by_column_and_page_by_offset() {
    for backend in backends() {
        let (db, store, _clock) = tapis_store::testing::seeded_outbox(backend, 5).await;
        let list = |sort: Option<(&'static str, bool)>, offset: u32, limit: u32| {
            let store = store.clone();
            async move {
                store
                    .list_notices(&tapis_store::NoticeFilter {
                        sort,
                        offset,
                        limit,
                        ..Default::default()
                    })
                    .await
                    .expect("list")
                    .into_iter()
                    .map(|n| n.id.to_string())
                    .collect::<Vec<_>>()
            }
        };
        let newest_first = list(None, 0, 50).await;
        assert_eq!(newest_first.len(), 5);
        assert_eq!(
            list(Some(("created", false)), 0, 50).await,
            newest_first,
            "{backend:?}"
        );
        let mut oldest_first = newest_first.clone();
        oldest_first.reverse();
        assert_eq!(
            list(Some(("created", true)), 0, 50).await,
            oldest_first,
            "{backend:?}"
        );
        let (a, b) = (
            list(Some(("created", true)), 0, 2).await,
            list(Some(("created", true)), 2, 2).await,
        );
        assert_eq!(
            [a, b].concat(),
            oldest_first[..4],
            "{backend:?}: pages follow on"
        );
        // every sortable column is valid SQL on this backend
        for (col, _) in tapis_store::NOTICE_SORTS {
            for asc in [true, false] {
                assert_eq!(
                    list(Some((col, asc)), 0, 50).await.len(),
                    5,
                    "{backend:?} {col}"
                );
            }
        }
        drop(store);
        db.cleanup().await;
    }
}
