//! The public register's pages, on every backend, without a sign-in: an
//! order whose explanation holds an e-mail address and a phone number and
//! whose proposer is a person shows them withheld and counted, in both
//! languages; a notice of a withheld category shows "withheld" for its
//! locators; a category's delay keeps an order off the list and its page a
//! 404 until the simulated clock passes it; searches run on what is shown;
//! bad searches are a 422 page; hostile text is escaped.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tapis_core::notice::{ItemInput, LegalBasisInput, NewNotice, NoticeInput};
use tapis_core::order::{NewOrder, OrderInput, OrderLimits, TargetInput};
use tapis_core::person::Person;
use tapis_core::register::{DAY_MS, PolicyInput, RedactionPolicy};
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_core::{Clock, Timestamp};
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, platform, principal};
use tapis_store::{Backend, Principal, Store};
use tapis_web::{WebConfig, WebState, router};
use tower::ServiceExt;

async fn get(app: &Router, path: &str, lang: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri(path)
        .header(header::ACCEPT_LANGUAGE, lang)
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .expect("body");
    (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
}

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

async fn order(
    store: &Store,
    officer: &Principal,
    approver: &Principal,
    category: &str,
    name: &str,
    explanation: &str,
) -> String {
    let now = store.now();
    let input = OrderInput {
        targets: vec![TargetInput {
            name: name.into(),
            include_subdomains: false,
        }],
        action: "nxdomain".into(),
        category: category.into(),
        legal_basis: LegalBasisInput {
            reference: "Law 11/2008 art. 27(2)".into(),
            text: "Online gambling is unlawful.".into(),
        },
        explanation: Some(explanation.into()),
        effective_at: now.to_string(),
        expires_at: Timestamp::from_unix_millis(now.unix_millis() + 20 * DAY_MS).to_string(),
        review_at: Timestamp::from_unix_millis(now.unix_millis() + 10 * DAY_MS).to_string(),
        notices: vec![],
        escalation_id: None,
        emergency: false,
    };
    let new =
        NewOrder::parse(input, &Taxonomy::bundled(), OrderLimits::default(), now).expect("order");
    let id = store.create_order(officer, new).await.expect("create").id;
    store.approve_order(approver, &id).await.expect("approve");
    id.to_string()
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store: Store = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    let (boot, admin) = bootstrap(&store).await;
    let authority = boot.authority.id;
    let token = |role, who: &'static str| {
        let store = store.clone();
        let admin = admin.clone();
        async move {
            let (_, secret) = store
                .create_token_with(
                    &admin.actor(),
                    authority,
                    role,
                    who,
                    Some(&Person::parse(who).expect("person")),
                    None,
                    None,
                )
                .await
                .expect("token");
            principal(&store, &secret).await
        }
    };
    let officer = token(Role::Officer, "Budi Santoso").await;
    let approver = token(Role::Approver, "Siti Rahma").await;
    let messenger = platform(&store, &admin, "Messenger", "messenger.example").await;

    let gambling = order(
        &store,
        &officer,
        &approver,
        "gambling",
        "slot77.example",
        &format!("Reported by rina@mail.example, call 0812-3456-7890. {HOSTILE}"),
    )
    .await;
    let fraud = order(
        &store,
        &officer,
        &approver,
        "fraud",
        "fake-bank.example",
        "Phishing.",
    )
    .await;
    let notice = NewNotice::parse(
        NoticeInput {
            platform_id: messenger.id.to_string(),
            category: "child_sexual_abuse".into(),
            urgency: "urgent".into(),
            legal_basis: LegalBasisInput {
                reference: "Law 44/2008".into(),
                text: "Child sexual abuse material is unlawful.".into(),
            },
            explanation: "Reported through the hotline.".into(),
            items: vec![ItemInput {
                kind: "url".into(),
                value: "https://messenger.example/m/abuse-1".into(),
                native_id: None,
                evidence: vec![],
            }],
            territorial_scope: vec!["ID".into()],
            may_notify_user: None,
            draft: false,
        },
        &Taxonomy::bundled(),
        tapis_core::notice::Limits::default(),
        store.now(),
    )
    .expect("notice");
    let notice = store
        .create_notice(&officer, notice, None)
        .await
        .expect("notice")
        .notice
        .id
        .to_string();

    let mut delay = BTreeMap::new();
    delay.insert("fraud".to_owned(), 2);
    let mut state = WebState::new(store.clone(), WebConfig::default());
    state.register = Arc::new(
        RedactionPolicy::new(
            PolicyInput {
                delay_days: delay,
                ..PolicyInput::default()
            },
            &[],
        )
        .expect("policy"),
    );
    let app = router(state);

    let leaks = |page: &str| {
        for s in [
            "rina@mail.example",
            "3456-7890",
            "Budi Santoso",
            "Siti Rahma",
            "abuse-1",
            "<img src=x",
        ] {
            assert!(
                !page.to_lowercase().contains(&s.to_lowercase()),
                "the page leaks {s:?}: {page}"
            );
        }
    };

    // the list, no sign-in, both languages; the landing page links to it
    let (s, landing) = get(&app, "/", "en").await;
    assert_eq!(s, StatusCode::OK);
    assert!(landing.contains("href=\"/register\""), "{landing}");
    let (s, en) = get(&app, "/register", "en").await;
    assert_eq!(s, StatusCode::OK, "{en}");
    leaks(&en);
    assert!(en.contains("Public register"), "{en}");
    assert!(en.contains(&format!("/register/orders/{gambling}")), "{en}");
    assert!(!en.contains(&fraud), "the fraud order waits two days: {en}");
    let (s, id) = get(&app, "/register", "id-ID,id;q=0.9").await;
    assert_eq!(s, StatusCode::OK);
    assert!(id.contains("Register publik"), "{id}");
    leaks(&id);

    // the order's page: personal data withheld, counted, hostile text escaped
    let (s, page) = get(&app, &format!("/register/orders/{gambling}"), "en").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    leaks(&page);
    assert!(
        page.contains("[email withheld]") && page.contains("[phone withheld]"),
        "{page}"
    );
    assert!(page.contains("&lt;img src=x"), "{page}");
    assert!(
        page.contains("1 e-mail addresses withheld, pattern policy"),
        "{page}"
    );
    assert!(
        page.contains("1 phone numbers withheld, pattern policy"),
        "{page}"
    );
    assert!(
        page.contains("2 person names withheld, field policy"),
        "{page}"
    );
    assert!(page.contains("slot77.example"), "{page}");
    assert!(page.contains("Law 11/2008 art. 27(2)"), "{page}");
    let (s, page_id) = get(&app, &format!("/register/orders/{gambling}"), "id").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page_id.contains("Dirahasiakan"), "{page_id}");
    leaks(&page_id);

    // the notice: a withheld category's locator is "withheld" and counted
    let (s, n) = get(&app, &format!("/register/notices/{notice}"), "en").await;
    assert_eq!(s, StatusCode::OK, "{n}");
    leaks(&n);
    assert!(n.contains("1 locators withheld, category policy"), "{n}");
    assert!(n.contains("Messenger"), "{n}");
    let (s, list) = get(&app, "/register?kind=notices", "en").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        list.contains(&format!("/register/notices/{notice}")),
        "{list}"
    );
    leaks(&list);

    // searches run on what is shown
    let (_, hit) = get(&app, "/register?q=slot77", "en").await;
    assert!(hit.contains(&gambling), "{hit}");
    let (_, miss) = get(&app, "/register?q=rina%40mail", "en").await;
    assert!(!miss.contains(&gambling), "{miss}");
    let (_, miss) = get(&app, "/register?kind=notices&q=abuse-1", "en").await;
    assert!(!miss.contains(&notice), "{miss}");
    let (s, bad) = get(&app, "/register?category=nope", "en").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (s, _) = get(&app, "/register?limit=1000", "en").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // the delay: a 404 until two days have passed, then listed
    let (s, _) = get(&app, &format!("/register/orders/{fraud}"), "en").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    clock.advance_millis(2 * DAY_MS);
    let (s, f) = get(&app, &format!("/register/orders/{fraud}"), "en").await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert!(f.contains("fake-bank.example"), "{f}");
    let (_, en) = get(&app, "/register", "en").await;
    assert!(en.contains(&fraud), "{en}");
    let (s, _) = get(&app, "/register/orders/not-an-order", "en").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_pages_on_every_backend() {
    for backend in backends() {
        story(backend).await;
    }
}
