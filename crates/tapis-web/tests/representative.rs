//! The platform's "Representative and contacts" page on both backends: the
//! platform's person sets its legal representative (a forged CSRF token
//! changes nothing, bad input is shown with the field at fault), has a
//! code emailed and enters it; the authority's dashboard lists the
//! platform until its representative is verified; an officer is sent
//! away from the platform's page.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::role::Role;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party};

fn form(fields: &[(&str, &str)]) -> Option<String> {
    Some(
        fields
            .iter()
            .map(|(k, v)| format!("{k}={}", tapis_web::session::url_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

fn legal<'a>(csrf: &'a str, time_zone: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", "PT Perwakilan Chat"),
        ("kind", "office"),
        ("address", "Jl. Sudirman 1, Jakarta"),
        ("email", "rep@chat.example"),
        ("phone", "+62 21 555 0100"),
        ("hours", "Mon-Fri 09:00-17:00"),
        ("time_zone", time_zone),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_sets_and_verifies_its_representative_through_its_page() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let chat = party(&store, &admin, "platform", "Chat Messenger").await;
        let dewi = person(
            &store,
            chat.id,
            "dewi",
            "Dewi Agent",
            &[Role::PlatformAgent],
        )
        .await;
        let siti = person(
            &store,
            boot.authority.id,
            "siti",
            "Siti Officer",
            &[Role::Officer],
        )
        .await;

        let (s, body) = send(&store, &siti, "GET", "/dashboard", None).await;
        assert_eq!(s, StatusCode::OK, "{backend:?}");
        assert!(body.contains("Platforms without a verified representative"));
        assert!(body.contains("Chat Messenger"), "listed while it has none");
        let (s, _) = send(&store, &siti, "GET", "/representative", None).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "an officer has no such page");

        let (s, body) = send(&store, &dewi, "GET", "/representative", None).await;
        assert_eq!(s, StatusCode::OK, "{backend:?}");
        assert!(body.contains("Legal representative") && body.contains("Technical contact"));
        assert!(body.contains(&format!("value=\"{}\"", dewi.csrf)));

        // a forged token changes nothing
        let (s, _) = send(
            &store,
            &dewi,
            "POST",
            "/representative/legal",
            form(&legal("forged", "Asia/Jakarta")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(
            store.unrepresented_platforms(&admin).await.expect("l")[0]
                .state
                .is_none()
        );
        // bad input: the page again, naming the field
        let (s, body) = send(
            &store,
            &dewi,
            "POST",
            "/representative/legal",
            form(&legal(&dewi.csrf, "Mars/Olympus Mons")),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("time_zone"), "{body}");
        let (s, _) = send(
            &store,
            &dewi,
            "POST",
            "/representative/ceo",
            form(&legal(&dewi.csrf, "Asia/Jakarta")),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let (s, _) = send(
            &store,
            &dewi,
            "POST",
            "/representative/legal",
            form(&legal(&dewi.csrf, "Asia/Jakarta")),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{backend:?}");
        let (_, body) = send(&store, &dewi, "GET", "/representative?done=saved", None).await;
        assert!(body.contains("not verified") && body.contains("rep@chat.example"));
        assert!(body.contains("/representative/legal/code"));

        let (s, _) = send(
            &store,
            &dewi,
            "POST",
            "/representative/legal/code",
            form(&[("csrf", &dewi.csrf)]),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let mail = store.claim_outbox("t", 10).await.expect("claim");
        assert_eq!(mail.len(), 1);
        let code = store
            .email_route(&mail[0])
            .await
            .expect("route")
            .code
            .expect("code");
        let (_, body) = send(&store, &dewi, "GET", "/representative?done=sent", None).await;
        assert!(body.contains("/representative/legal/verify"));
        let (s, body) = send(
            &store,
            &dewi,
            "POST",
            "/representative/legal/verify",
            form(&[("csrf", &dewi.csrf), ("code", "12")]),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (s, _) = send(
            &store,
            &dewi,
            "POST",
            "/representative/legal/verify",
            form(&[("csrf", &dewi.csrf), ("code", &code)]),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let (_, body) = send(&store, &dewi, "GET", "/representative", None).await;
        assert!(body.contains("badge green"), "verified");

        let (_, body) = send(&store, &siti, "GET", "/dashboard", None).await;
        assert!(!body.contains("Chat Messenger"), "no longer listed");
        store.close().await;
        db.cleanup().await;
    }
}
