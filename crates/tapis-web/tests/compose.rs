//! The composer takes each item's evidence (its SHA-256, what it shows,
//! when it was captured, in the authority's zone) into the signed notice,
//! on both backends; a malformed hash is refused with the field named and
//! nothing is stored.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::role::Role;
use tapis_store::NoticeFilter;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, platform};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn form(fields: &[(&str, &str)]) -> Option<String> {
    Some(
        fields
            .iter()
            .map(|(k, v)| format!("{k}={}", tapis_web::session::url_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_given_in_the_composer_reaches_the_notice() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let chat = platform(&store, &admin, "Chat", "chat.example").await;
        let siti = person(
            &store,
            boot.authority.id,
            "siti",
            "Siti Rahma",
            &[Role::Officer],
        )
        .await;
        let (s, page) = send(&store, &siti, "GET", "/notices/new", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("evidence_sha256_0") && page.contains("Captured at (WIB)"));

        let platform_id = chat.id.to_string();
        let fields = |key: &'static str, sha: &'static str| {
            let mut f = vec![
                ("csrf", siti.csrf.clone()),
                ("idempotency_key", key.to_owned()),
                ("platform_id", platform_id.clone()),
                ("category", "fraud".to_owned()),
                ("urgency", "normal".to_owned()),
                ("legal_reference", "Law 11/2008 art. 28".to_owned()),
                ("legal_text", "Fraud is unlawful.".to_owned()),
                ("explanation", "A fake shop.".to_owned()),
                ("item_kind_0", "url".to_owned()),
                ("item_value_0", "https://shop.chat.example/fake".to_owned()),
            ];
            f.push(("evidence_sha256_0", sha.to_owned()));
            f.push((
                "evidence_description_0",
                "screenshot of the shop".to_owned(),
            ));
            f.push(("evidence_captured_0", "2025-12-31T21:30".to_owned()));
            f
        };
        let body = |f: Vec<(&str, String)>| {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(&pairs)
        };

        // a malformed hash: the field is named, nothing is stored
        let (s, page) = send(
            &store,
            &siti,
            "POST",
            "/notices/new",
            body(fields("k1", "not-a-hash")),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert!(
            page.contains("items[0].evidence[0].sha256"),
            "{backend:?}: {page}"
        );
        let all = NoticeFilter {
            limit: 10,
            ..NoticeFilter::default()
        };
        assert!(store.list_notices(&all).await.expect("list").is_empty());

        // a good one lands in the notice, its capture time read in WIB
        let (s, _) = send(
            &store,
            &siti,
            "POST",
            "/notices/new",
            body(fields("k2", SHA)),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{backend:?}");
        let listed = store.list_notices(&all).await.expect("list");
        assert_eq!(listed.len(), 1);
        let n = store.get_notice(listed[0].id).await.expect("notice");
        let ev = &n.items[0].evidence;
        assert_eq!(ev.len(), 1, "{backend:?}");
        assert_eq!(ev[0].sha256, SHA);
        assert_eq!(ev[0].description, "screenshot of the shop");
        assert_eq!(ev[0].captured_at.to_string(), "2025-12-31T14:30:00.000Z");
        db.cleanup().await;
    }
}
