//! The ISP page rotates the ISP's TSIG key, over the web router on a real
//! store (both backends): the rotate form needs the CSRF token, the new
//! secret is shown once (never on the page again), the previous key's name
//! and the time it stops working are shown in the reader's zone, retiring
//! it ends it, the audit log names the keys and never a secret; and
//! nobody outside the ISP may rotate its key (the authority's admin gets
//! a 403 page, the store refuses another ISP's person).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::isp::{IspRules, Resolvers, ResolversInput};
use tapis_core::role::Role;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party};
use tapis_store::{AuditQuery, SessionPolicy};

/// The text inside `<code class="secret">…</code>`.
fn shown_secret(page: &str) -> Option<String> {
    let start = page.find("class=\"secret\">")? + "class=\"secret\">".len();
    let end = page[start..].find('<')?;
    Some(page[start..start + end].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_isp_page_rotates_and_retires_the_tsig_key() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let isp = party(&store, &admin, "isp", "NetCo").await;
        let other = party(&store, &admin, "isp", "OtherNet").await;
        let eko = person(&store, isp.id, "eko", "Eko Prasetyo", &[Role::IspOperator]).await;
        let ani = person(&store, other.id, "ani", "Ani", &[Role::IspOperator]).await;
        let root = person(&store, boot.authority.id, "root", "Root", &[Role::Admin]).await;

        // before any resolvers: no key, no rotate form
        let (s, page) = send(&store, &eko, "GET", "/isp", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!page.contains("/isp/tsig-key/rotate\""), "{page}");
        let refused = send(
            &store,
            &eko,
            "POST",
            "/isp/tsig-key/rotate",
            Some(format!("csrf={}", eko.csrf)),
        )
        .await;
        assert_eq!(refused.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.1);

        let r = Resolvers::parse(ResolversInput::default(), &IspRules::default()).expect("empty");
        let (first, _) = store
            .set_isp_resolvers(&admin.actor(), isp.id, r)
            .await
            .expect("resolvers");
        let (s, page) = send(&store, &eko, "GET", "/isp", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("action=\"/isp/tsig-key/rotate\""), "{page}");
        assert!(page.contains(&first.tsig_key_name));
        assert!(
            !page.contains("not offered yet"),
            "the page no longer says rotation does not exist"
        );
        assert!(
            !page.contains("/isp/tsig-key/retire\""),
            "no previous key, no retire form"
        );

        // without the CSRF token: refused, nothing changes
        let (s, _) = send(
            &store,
            &eko,
            "POST",
            "/isp/tsig-key/rotate",
            Some("csrf=wrong".into()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let same = store
            .get_isp_resolvers(isp.id)
            .await
            .expect("get")
            .expect("some");
        assert_eq!(same.tsig_key_name, first.tsig_key_name, "{backend:?}");

        // the admin has no ISP page and may not rotate (403), nor may
        // another ISP's person rotate this one's key (the store: 404)
        let (s, _) = send(
            &store,
            &root,
            "POST",
            "/isp/tsig-key/rotate",
            Some(format!("csrf={}", root.csrf)),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let ani_session = store
            .session(&ani.secret, SessionPolicy::default())
            .await
            .expect("s")
            .expect("live");
        let e = store
            .rotate_tsig_key(&ani_session.principal, isp.id)
            .await
            .expect_err("another ISP");
        assert!(matches!(e, tapis_store::Error::NotFound(_)), "{e:?}");
        let root_session = store
            .session(&root.secret, SessionPolicy::default())
            .await
            .expect("s")
            .expect("live");
        let e = store
            .rotate_tsig_key(&root_session.principal, isp.id)
            .await
            .expect_err("the admin");
        assert!(
            matches!(
                e,
                tapis_store::Error::Domain(tapis_core::Error::Forbidden { .. })
            ),
            "{e:?}"
        );

        // the ISP's person rotates: the new secret shown once
        let (s, page) = send(
            &store,
            &eko,
            "POST",
            "/isp/tsig-key/rotate",
            Some(format!("csrf={}", eko.csrf)),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let secret = shown_secret(&page).expect("the new secret on the page");
        assert_eq!(secret.len(), 44, "32 bytes in base64: {secret}");
        let now = store
            .get_isp_resolvers(isp.id)
            .await
            .expect("get")
            .expect("some");
        assert_ne!(now.tsig_key_name, first.tsig_key_name);
        assert!(page.contains(&now.tsig_key_name) && page.contains("algorithm hmac-sha256;"));
        assert_eq!(
            now.previous_tsig_key_name.as_deref(),
            Some(first.tsig_key_name.as_str())
        );
        // the old key works a week (the default grace), shown in WIB with
        // the UTC instant beside it
        assert_eq!(
            now.previous_valid_until.map(|t| t.to_string()).as_deref(),
            Some("2026-01-08T00:00:00.000Z")
        );
        let (_, page) = send(&store, &eko, "GET", "/isp", None).await;
        assert!(
            shown_secret(&page).is_none() && !page.contains(&secret),
            "never shown again"
        );
        assert!(
            page.contains(&first.tsig_key_name) && page.contains("works until"),
            "{page}"
        );
        assert!(
            page.contains("datetime=\"2026-01-08T00:00:00.000Z\""),
            "{page}"
        );
        assert!(page.contains("07:00 WIB"), "{page}");
        assert!(page.contains("action=\"/isp/tsig-key/retire\""));

        // retire the previous key now (CSRF needed here too)
        let (s, _) = send(
            &store,
            &eko,
            "POST",
            "/isp/tsig-key/retire",
            Some("csrf=".into()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = send(
            &store,
            &eko,
            "POST",
            "/isp/tsig-key/retire",
            Some(format!("csrf={}", eko.csrf)),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let after = store
            .get_isp_resolvers(isp.id)
            .await
            .expect("get")
            .expect("some");
        assert!(after.previous_tsig_key_name.is_none() && after.previous_valid_until.is_none());
        let (s, page) = send(
            &store,
            &eko,
            "POST",
            "/isp/tsig-key/retire",
            Some(format!("csrf={}", eko.csrf)),
        )
        .await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing left to retire: {page}"
        );

        // the audit log: who rotated and retired which key, never a secret
        for (action, key) in [
            ("isp.tsig_rotated", &now.tsig_key_name),
            ("isp.tsig_retired", &first.tsig_key_name),
        ] {
            let events = store
                .search_audit(&AuditQuery {
                    action: Some(action.into()),
                    limit: 10,
                    ..AuditQuery::default()
                })
                .await
                .expect("audit");
            assert_eq!(events.len(), 1, "{backend:?} {action}");
            let text = serde_json::to_string(&events[0]).expect("json");
            assert!(
                text.contains(key.as_str()) && !text.contains(&secret),
                "{text}"
            );
            assert_eq!(events[0].subject_id, isp.id.to_string());
            assert_eq!(events[0].actor["person"], "eko prasetyo", "{text}");
        }
        db.cleanup().await;
    }
}
