//! A notice's page shows its record, on both backends: the timeline of
//! its audit events, the platform's acknowledgement receipt with its
//! signature checked against the published keys, and its deliveries.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::role::Role;
use tapis_store::testing::{
    START, TestDb, backends, bootstrap, clock_at, domain_notice, officer, platform, signed_in,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_page_shows_its_timeline_verified_receipts_and_deliveries() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let chat = platform(&store, &admin, "Chat", "chat.example").await;
        tapis_store::testing::webhook(&store, &admin, chat.id).await;
        let by = officer(&store, &boot, &admin).await;
        let n = store
            .create_notice(&by, domain_notice(&store, chat.id, 1), None)
            .await
            .expect("notice")
            .notice;
        let (_, agent) = signed_in(
            &store,
            chat.id,
            "dewi@chat",
            "Dewi Lestari",
            &[Role::PlatformAgent],
        )
        .await;
        store
            .acknowledge(&agent.principal, n.id, None)
            .await
            .expect("acknowledged");

        let siti = person(
            &store,
            boot.authority.id,
            "siti",
            "Siti Rahma",
            &[Role::Officer],
        )
        .await;
        let (s, body) = send(&store, &siti, "GET", &format!("/notices/{}", n.id), None).await;
        assert_eq!(s, StatusCode::OK, "{backend:?}");
        for want in [
            "Timeline",
            "notice.submitted",
            "notice.acknowledged",
            "Receipts and signed answers",
            "signature verified",
            "Deliveries",
        ] {
            assert!(body.contains(want), "{backend:?}: no {want:?}");
        }
        assert!(!body.contains("signature does not verify"));
        db.cleanup().await;
    }
}
