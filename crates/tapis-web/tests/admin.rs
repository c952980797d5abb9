//! The admin's page and invitations through the pages, on both backends:
//! only the admin opens `/admin`; a new party's hostile name is shown
//! escaped; there is one authority; an invitation link is shown once and
//! names the party and role; a role that does not fit the party, and a
//! second "first member" once the party has one, are refused with the
//! reason; after that the party's own member invites a colleague from
//! their account page; a forged CSRF token changes nothing.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at};

const HOSTILE: &str = "<script>alert(1)</script>Chat";

fn form(fields: &[(&str, &str)]) -> Option<String> {
    Some(
        fields
            .iter()
            .map(|(k, v)| format!("{k}={}", tapis_web::session::url_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

/// The invitation code in a page that shows one.
fn code_in(body: &str) -> String {
    let at = body.find("/invitations/").expect("an invitation link") + 13;
    body[at..]
        .split(['<', '"'])
        .next()
        .expect("code")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_makes_parties_and_invitations_and_members_invite_colleagues() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, _) = bootstrap(&store).await;
        let authority = boot.authority.id;
        let root = person(&store, authority, "root", "Rina Admin", &[Role::Admin]).await;
        let siti = person(&store, authority, "siti", "Siti Officer", &[Role::Officer]).await;

        let (s, body) = send(&store, &root, "GET", "/admin", None).await;
        assert_eq!(s, StatusCode::OK, "{backend:?}");
        assert!(body.contains("Ministry"));
        let (s, _) = send(&store, &siti, "GET", "/admin", None).await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "{backend:?}: an officer on /admin"
        );

        // a new platform; its hostile name is text, never markup
        let (s, _) = send(
            &store,
            &root,
            "POST",
            "/admin/parties",
            form(&[
                ("csrf", &root.csrf),
                ("kind", "platform"),
                ("name", HOSTILE),
                ("domains", "chat.example, chat-cdn.example"),
            ]),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{backend:?}");
        let chat = store
            .list_parties(None)
            .await
            .expect("parties")
            .into_iter()
            .find(|p| p.name == HOSTILE)
            .expect("created");
        assert_eq!(chat.domains, ["chat.example", "chat-cdn.example"]);
        let (_, body) = send(&store, &root, "GET", "/admin", None).await;
        assert!(!body.contains("<script>alert(1)") && body.contains("&lt;script&gt;"));
        // one authority; a forged token changes nothing
        let (s, _) = send(
            &store,
            &root,
            "POST",
            "/admin/parties",
            form(&[
                ("csrf", &root.csrf),
                ("kind", "authority"),
                ("name", "Another"),
            ]),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _) = send(
            &store,
            &root,
            "POST",
            "/admin/parties",
            form(&[("csrf", "forged"), ("kind", "isp"), ("name", "NetCo")]),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(store.list_parties(None).await.expect("parties").len(), 2);

        // the first member's invitation: shown once, naming party and role
        let invite = format!("/admin/parties/{}/invitations", chat.id);
        let (s, _) = send(
            &store,
            &root,
            "POST",
            &invite,
            form(&[("csrf", &root.csrf), ("role", "officer")]),
        )
        .await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "{backend:?}: an officer's role at a platform"
        );
        let (s, body) = send(
            &store,
            &root,
            "POST",
            &invite,
            form(&[("csrf", &root.csrf), ("role", "platform_agent")]),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{backend:?}");
        assert!(
            body.contains("platform agent")
                && body.contains("http://127.0.0.1:8080/invitations/tapis_inv_")
        );
        let code = code_in(&body);
        store
            .accept_invitation_as_account(
                &code,
                "dewi@chat",
                &Person::parse("Dewi Lestari").expect("person"),
                "a long enough passphrase",
            )
            .await
            .expect("redeemed by the platform's person");
        let (s, body) = send(
            &store,
            &root,
            "POST",
            &invite,
            form(&[("csrf", &root.csrf), ("role", "platform_agent")]),
        )
        .await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "{backend:?}: a second first member"
        );
        assert!(body.contains("already has members"));

        // the platform's own member invites a colleague
        let agus = person(
            &store,
            chat.id,
            "agus@chat",
            "Agus Santoso",
            &[Role::PlatformAgent],
        )
        .await;
        let (s, body) = send(&store, &agus, "GET", "/account", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("Invite a colleague"));
        let (s, body) = send(
            &store,
            &agus,
            "POST",
            "/account/invite",
            form(&[("csrf", &agus.csrf)]),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{backend:?}");
        let (_, _, role) = store
            .invitation_for(&code_in(&body))
            .await
            .expect("a live code");
        assert_eq!(role, Role::PlatformAgent);
        db.cleanup().await;
    }
}
