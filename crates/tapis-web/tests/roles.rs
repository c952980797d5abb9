//! The role pages refuse what the role matrix refuses, over the web
//! router on a real store (both backends): an ISP's person cannot open
//! approvals, the authoriser desk or the audit log (403 pages); a
//! platform's person cannot open, or answer, an order told to another
//! platform (404 pages, as the API); and the person who proposed an order
//! is refused its approval by the store's four eyes, with the reason on
//! the page, even holding the approver role.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::Clock;
use tapis_core::notice::LegalBasisInput;
use tapis_core::order::{NewOrder, OrderInput, OrderLimits, TargetInput};
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_store::SessionPolicy;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party, platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_pages_refuse_what_the_roles_matrix_refuses() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let clock = clock_at(START);
        let store = db.open(Arc::new(clock.clone())).await;
        let (boot, admin) = bootstrap(&store).await;
        let isp = party(&store, &admin, "isp", "NetCo").await;
        let other = party(&store, &admin, "platform", "Chat B").await;
        let chat_a = platform(&store, &admin, "Chat A", "chat-a.example").await;
        let authority = boot.authority.id;
        let siti = person(
            &store,
            authority,
            "siti",
            "Siti Rahma",
            &[Role::Officer, Role::Approver],
        )
        .await;
        let eko = person(&store, isp.id, "eko", "Eko Prasetyo", &[Role::IspOperator]).await;
        let dewi = person(
            &store,
            other.id,
            "dewi",
            "Dewi Lestari",
            &[Role::PlatformAgent],
        )
        .await;

        // siti proposes an order touching Chat A's own domain (told to Chat A)
        let officer = store
            .session(&siti.secret, SessionPolicy::default())
            .await
            .expect("session")
            .expect("live");
        let now = clock.now();
        let order = store
            .create_order(
                &officer.principal,
                NewOrder::parse(
                    OrderInput {
                        targets: vec![TargetInput {
                            name: "chat-a.example".into(),
                            include_subdomains: false,
                        }],
                        action: "nxdomain".into(),
                        category: "terrorism".into(),
                        legal_basis: LegalBasisInput {
                            reference: "Law 11/2008 art. 40".into(),
                            text: "Unlawful content must be removed.".into(),
                        },
                        explanation: None,
                        effective_at: now.plus_secs(2 * 86_400).to_string(),
                        expires_at: now.plus_secs(30 * 86_400).to_string(),
                        review_at: now.plus_secs(14 * 86_400).to_string(),
                        notices: vec![],
                        escalation_id: None,
                        emergency: false,
                    },
                    &Taxonomy::bundled(),
                    OrderLimits::default(),
                    now,
                )
                .expect("order"),
            )
            .await
            .expect("propose");
        let order_page = format!("/orders/{}", order.id);

        // an ISP's person: no approvals, desk or log
        for path in [
            "/approvals",
            "/authorise",
            "/audit",
            "/escalations/0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a",
        ] {
            let (s, body) = send(&store, &eko, "GET", path, None).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{backend:?} {path}: {body}");
            assert!(body.contains("<html"), "an HTML page");
        }
        let (s, body) = send(&store, &eko, "GET", &order_page, None).await;
        assert_eq!(s, StatusCode::OK, "an ISP reads orders: {body}");
        assert!(
            !body.contains("/approve\""),
            "an ISP is offered no approval"
        );

        // another platform's person: the order does not exist for them
        let (s, _) = send(&store, &dewi, "GET", &order_page, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{backend:?}");
        let (s, _) = send(
            &store,
            &dewi,
            "POST",
            &format!("{order_page}/responses"),
            Some(format!("csrf={}&kind=dispute&text=not+ours", dewi.csrf)),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{backend:?}");
        let (s, body) = send(&store, &dewi, "GET", "/inbox", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !body.contains(&order_page),
            "not in another platform's inbox"
        );

        // the proposer, as approver: no button, and the store says no
        store
            .switch_role(&siti.secret, &officer, Role::Approver)
            .await
            .expect("switch");
        let (s, body) = send(&store, &siti, "GET", &order_page, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !body.contains(&format!("{order_page}/approve")),
            "no approve button for the proposer"
        );
        let (s, body) = send(
            &store,
            &siti,
            "POST",
            &format!("{order_page}/approve"),
            Some(format!("csrf={}", siti.csrf)),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{backend:?}: {body}");
        assert!(
            body.contains("Four eyes") && body.contains("role=\"alert\""),
            "{body}"
        );
        assert_eq!(
            store
                .get_order(&order.id)
                .await
                .expect("order")
                .state
                .as_str(),
            "draft"
        );
        // and a forged token changes nothing either
        let (s, _) = send(
            &store,
            &siti,
            "POST",
            &format!("{order_page}/approve"),
            Some("csrf=forged".into()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        assert_eq!(chat_a.domains, ["chat-a.example"]);
        drop(store);
        db.cleanup().await;
    }
}
