//! The appeal pages over HTTP, on every backend: the public form (from the
//! block explanation's link, prefilled, CSRF-checked, limited per
//! address) and its status page in both languages, hostile input escaped
//! everywhere, and the authority's queue where a second person reviews
//! and upholds the appeal, after which the lookup says the order was
//! lifted after appeal.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use tapis_core::dispute::Question;
use tapis_core::notice::{ItemInput, LegalBasisInput, NewNotice, NoticeInput};
use tapis_core::order::{NewOrder, OrderInput, OrderLimits, TargetInput};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_core::{Clock, Timestamp};
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, principal};
use tapis_store::{Backend, SignIn, Store};
use tapis_web::{WebConfig, WebState, router};
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    location: String,
    cookie: Option<String>,
    body: String,
}

/// One request through the router, from 192.0.2.7, with `lang` and
/// `cookie`; a form `body` makes it a POST.
async fn send(app: &Router, path: &str, lang: &str, cookie: &str, body: Option<String>) -> Page {
    let mut req = Request::builder()
        .uri(path)
        .header(header::ACCEPT_LANGUAGE, lang)
        .header(header::COOKIE, cookie);
    let body = match body {
        Some(b) => {
            req = req
                .method("POST")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(b)
        }
        None => Body::empty(),
    };
    let mut req = req.body(body).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40000))));
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let h = |n| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = h(header::LOCATION).unwrap_or_default();
    let cookie = h(header::SET_COOKIE).and_then(|c| c.split(';').next().map(str::to_owned));
    let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .expect("body");
    Page {
        status,
        location,
        cookie,
        body: String::from_utf8(bytes.to_vec()).expect("utf-8"),
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const HOSTILE: &str = "<img src=x onerror=alert(1)> \"><script>alert(2)</script>";

fn assert_escaped(page: &str) {
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "hostile input reached the page as markup: {page}"
    );
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store: Store = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    let (boot, admin) = bootstrap(&store).await;
    let authority = boot.authority.id;
    let person = |s: &str| Person::parse(s).expect("person");
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
                    Some(&person(who)),
                    None,
                    None,
                )
                .await
                .expect("token");
            principal(&store, &secret).await
        }
    };
    let officer = token(Role::Officer, "Officer One").await;
    let approver = token(Role::Approver, "Approver One").await;
    let now = clock.now();
    let input = OrderInput {
        targets: vec![TargetInput {
            name: "bakery-judi.example".into(),
            include_subdomains: false,
        }],
        action: "nxdomain".into(),
        category: "gambling".into(),
        legal_basis: LegalBasisInput {
            reference: "Law 11/2008 art. 27(2)".into(),
            text: "Online gambling is unlawful.".into(),
        },
        explanation: Some("Operators ignored notices.".into()),
        effective_at: now.to_string(),
        expires_at: Timestamp::from_unix_millis(now.unix_millis() + 20 * 86_400_000).to_string(),
        review_at: Timestamp::from_unix_millis(now.unix_millis() + 10 * 86_400_000).to_string(),
        notices: vec![],
        escalation_id: None,
        emergency: false,
    };
    let new =
        NewOrder::parse(input, &Taxonomy::bundled(), OrderLimits::default(), now).expect("order");
    let order = store.create_order(&officer, new).await.expect("create").id;
    store
        .approve_order(&approver, &order)
        .await
        .expect("approve");
    let app = router(WebState::new(store.clone(), WebConfig::default()));

    // the lookup explains the block and links to the appeal form
    let l = send(&app, "/lookup?name=bakery-judi.example", "en", "", None).await;
    assert_eq!(l.status, StatusCode::OK);
    let link = format!("/appeal?order={order}&amp;name=bakery-judi.example");
    assert!(l.body.contains(&link), "{}", l.body);
    assert!(l.body.contains("Appeal this block"));

    // the form, prefilled, in both languages; hostile query text escaped
    let path = format!("/appeal?order={order}&name={}", enc(HOSTILE));
    let en = send(&app, &path, "en", "", None).await;
    assert_eq!(en.status, StatusCode::OK);
    assert!(
        en.body.contains("Appeal a block or a takedown"),
        "{}",
        en.body
    );
    assert!(en.body.contains(&format!("value=\"{order}\"")));
    assert_escaped(&en.body);
    let form_cookie = en.cookie.clone().expect("the form's CSRF cookie");
    let csrf = form_cookie.split_once('=').expect("cookie").1.to_owned();
    let id = send(&app, &path, "id-ID,id;q=0.9", "", None).await;
    assert!(
        id.body
            .contains("Ajukan banding atas pemblokiran atau penurunan konten"),
        "{}",
        id.body
    );
    assert_escaped(&id.body);

    // no CSRF token, no appeal
    let body = format!("order={order}&reason={}", enc("please review this block"));
    let p = send(&app, "/appeal", "en", &form_cookie, Some(body.clone())).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // a refusal shows the form again with what was sent, escaped
    let missing = tapis_core::OrderId::new();
    let bad = format!("csrf={csrf}&order={missing}&reason={}", enc(HOSTILE));
    let p = send(&app, "/appeal", "en", &form_cookie, Some(bad)).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND, "{}", p.body);
    assert!(p.body.contains("&lt;img src=x"), "{}", p.body);
    assert_escaped(&p.body);
    let short = format!("csrf={csrf}&order={order}&reason=no");
    let p = send(&app, "/appeal", "id", &form_cookie, Some(short)).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Tindakan ini tidak diterima"), "{}", p.body);

    // received: the status page with the reference, nothing personal
    let reason = format!("My bakery, not a casino. {HOSTILE}");
    let good = format!(
        "csrf={csrf}&order={order}&appellant_kind=content_owner&reason={}",
        enc(&reason)
    );
    let p = send(&app, "/appeal", "en", &form_cookie, Some(good)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(p.location.starts_with("/appeal/") && p.location.ends_with("?received=1"));
    let reference = p.location["/appeal/".len()..p.location.len() - "?received=1".len()].to_owned();
    let s = send(&app, &p.location, "en", "", None).await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(s.body.contains(&reference) && s.body.contains("Your appeal was received"));
    assert!(
        !s.body.contains("bakery, not a casino"),
        "the reason is not public"
    );
    let s = send(&app, &format!("/appeal/{reference}"), "id", "", None).await;
    assert!(
        s.body.contains("Status banding") && s.body.contains("diterima"),
        "{}",
        s.body
    );
    let s = send(
        &app,
        &format!("/appeal/{}", enc("<script>")),
        "en",
        "",
        None,
    )
    .await;
    assert_eq!(s.status, StatusCode::NOT_FOUND);

    // the queue: a third person signs in, reviews and upholds
    store
        .create_account(
            &admin.actor(),
            authority,
            "third",
            &person("Third Person"),
            &[Role::Approver],
            Some("correct horse battery staple"),
        )
        .await
        .expect("account");
    let SignIn::Ok(secret, session) = store
        .sign_in("third", "correct horse battery staple", Default::default())
        .await
        .expect("sign in")
    else {
        panic!("signed in");
    };
    let cookie = format!("tapis_session={secret}");
    for lang in ["en", "id"] {
        let q = send(&app, "/appeals", lang, &cookie, None).await;
        assert_eq!(q.status, StatusCode::OK, "{}", q.body);
        assert!(
            q.body.contains(&reference) && q.body.contains("&lt;img src=x"),
            "{}",
            q.body
        );
        assert_escaped(&q.body);
    }
    let appeal = store
        .list_appeals(&session.principal, None, 10)
        .await
        .expect("queue")
        .remove(0);
    let csrf = &session.csrf;
    let r = send(
        &app,
        &format!("/appeals/{}/review", appeal.id),
        "en",
        &cookie,
        Some(format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let d = send(
        &app,
        &format!("/appeals/{}/decision", appeal.id),
        "en",
        &cookie,
        Some(format!(
            "csrf={csrf}&outcome=upheld&referred_to=&reasons={}",
            enc("A bakery, listed by mistake.")
        )),
    )
    .await;
    assert_eq!(d.status, StatusCode::SEE_OTHER, "{}", d.body);
    let s = send(&app, &format!("/appeal/{reference}"), "en", "", None).await;
    assert!(
        s.body.contains("upheld") && s.body.contains("listed by mistake"),
        "{}",
        s.body
    );
    let l = send(&app, "/lookup?name=bakery-judi.example", "en", "", None).await;
    assert!(
        l.body.contains("lifted after appeal") && l.body.contains(&reference),
        "{}",
        l.body
    );
    let l = send(&app, "/lookup?name=bakery-judi.example", "id", "", None).await;
    assert!(l.body.contains("dicabut setelah banding"), "{}", l.body);

    // a platform's question on a notice: shown to the authority with the
    // answer form, escaped; the answer recorded from the page
    let platform = tapis_store::testing::party(&store, &admin, "platform", "Messenger").await;
    let (_, agent) = store
        .create_token_with(
            &admin.actor(),
            platform.id,
            Role::PlatformAgent,
            "agent",
            Some(&person("Agent")),
            None,
            None,
        )
        .await
        .expect("agent token");
    let agent = principal(&store, &agent).await;
    let notice = NewNotice::parse(
        NoticeInput {
            platform_id: platform.id.to_string(),
            category: "terrorism".into(),
            urgency: "urgent".into(),
            legal_basis: LegalBasisInput {
                reference: "Law 11/2008 art. 40".into(),
                text: "Unlawful content.".into(),
            },
            explanation: "Propaganda".into(),
            items: vec![ItemInput {
                kind: "url".into(),
                value: "https://chat.example/c/1".into(),
                native_id: None,
                evidence: vec![],
            }],
            territorial_scope: vec![],
            may_notify_user: None,
            draft: false,
        },
        &Taxonomy::bundled(),
        Default::default(),
        clock.now(),
    )
    .expect("notice");
    let n = store
        .create_notice(&officer, notice, None)
        .await
        .expect("create")
        .notice;
    store.acknowledge(&agent, n.id, None).await.expect("ack");
    let q = Question::parse("question", HOSTILE).expect("question");
    let c = store
        .ask_clarification(&agent, n.id, n.items[0].id, &q)
        .await
        .expect("ask");
    for lang in ["en", "id"] {
        let page = send(&app, &format!("/notices/{}", n.id), lang, &cookie, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body
                .contains(&format!("/clarifications/{}/answer", c.id)),
            "{}",
            page.body
        );
        assert!(page.body.contains("&lt;img src=x"));
        assert_escaped(&page.body);
    }
    let a = send(
        &app,
        &format!("/clarifications/{}/answer", c.id),
        "en",
        &cookie,
        Some(format!(
            "csrf={csrf}&notice={}&text={}",
            n.id,
            enc("Message 4711.")
        )),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = send(&app, &format!("/notices/{}", n.id), "en", &cookie, None).await;
    assert!(
        page.body.contains("Message 4711.") && page.body.contains("answered"),
        "{}",
        page.body
    );

    // the public's appeals are limited per address
    let again = format!(
        "csrf={}&order={order}&reason={}",
        form_cookie.split_once('=').expect("c").1,
        enc("please review this again")
    );
    let mut limited = false;
    for _ in 0..6 {
        let p = send(&app, "/appeal", "en", &form_cookie, Some(again.clone())).await;
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
    assert!(limited, "a few appeals per address and window");
    store.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn appeal_pages_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
