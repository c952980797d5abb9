//! The flag pages over the web router, on every backend: a member of the
//! public reports a channel through the "Report content" form (CSRF
//! checked, hostile text escaped, a few per address) and follows it by
//! reference in both languages; an agency flags the same channel through
//! its "Flag content" form; the officer sees one merged entry with both
//! sources and accepts it into a notice to the platform that registered
//! the domain; the agency's "My flags" shows the outcome and another
//! agency sees none of it; a rejected flag's reason reaches the reporter;
//! the admin grants trusted-flagger status, the platform confirms it, the
//! admin suspends it; the flagger report says the status needs review
//! under a configured accuracy threshold (and not under the default); the
//! issuers' report is the authority's only.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::person;
use tapis_core::Clock;
use tapis_core::flag::AccuracyPolicy;
use tapis_core::role::Role;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party, platform};
use tapis_store::{Backend, Store};
use tapis_web::{WebConfig, WebState, router};
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    location: String,
    cookie: Option<String>,
    body: String,
}

/// One request from `ip`, in `lang`, with `cookie`; a form `body` makes
/// it a POST.
async fn send(
    app: &Router,
    ip: [u8; 4],
    path: &str,
    lang: &str,
    cookie: &str,
    body: Option<String>,
) -> Page {
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
        .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
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
const ME: [u8; 4] = [192, 0, 2, 7];

fn assert_escaped(page: &str) {
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "hostile input reached the page as markup: {page}"
    );
}

fn session(secret: &str) -> String {
    format!("tapis_session={secret}")
}

/// The reference in a `/report/{reference}?received=1` redirect.
fn reference_of(location: &str) -> String {
    location
        .strip_prefix("/report/")
        .and_then(|r| r.strip_suffix("?received=1"))
        .unwrap_or_else(|| panic!("not a report's status page: {location}"))
        .to_owned()
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store: Store = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    let (boot, admin) = bootstrap(&store).await;
    let authority = boot.authority.id;
    let telegram = platform(&store, &admin, "Telegram", "t.me").await;
    let agency = party(&store, &admin, "flagger", "Counter-terrorism agency").await;
    let other = party(&store, &admin, "flagger", "Another NGO").await;
    let officer = person(
        &store,
        authority,
        "officer",
        "Officer One",
        &[Role::Officer],
    )
    .await;
    let admin_p = person(&store, authority, "admin2", "Admin Two", &[Role::Admin]).await;
    let agent = person(&store, agency.id, "agent", "Agent Smith", &[Role::Flagger]).await;
    let stranger = person(&store, other.id, "ngo1", "Nia Go", &[Role::Flagger]).await;
    let tg = person(
        &store,
        telegram.id,
        "tgram",
        "Tele Gram",
        &[Role::PlatformAgent],
    )
    .await;
    let app = router(WebState::new(store.clone(), WebConfig::default()));

    // the landing page links to the form; the form sets its CSRF cookie
    let l = send(&app, ME, "/", "en", "", None).await;
    assert!(l.body.contains("href=\"/report\""), "{}", l.body);
    let f = send(&app, ME, "/report", "en", "", None).await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(f.body.contains("Report content"));
    let form_cookie = f.cookie.clone().expect("the form's CSRF cookie");
    let csrf = form_cookie.split_once('=').expect("cookie").1.to_owned();
    let id = send(&app, ME, "/report", "id", "", None).await;
    assert!(id.body.contains("Laporkan konten"), "{}", id.body);

    // no CSRF token: refused, nothing stored
    let report = |csrf: &str, value: &str, reasons: &str| {
        let kind = if value.starts_with("https://t.me/") {
            "platform_channel"
        } else {
            "url"
        };
        format!(
            "csrf={csrf}&target_kind_0={kind}&target_value_0={}&category=terrorism&reasons={}&contact={}",
            enc(value),
            enc(reasons),
            enc("parent@example.org")
        )
    };
    let channel = "https://t.me/s/jihad_channel";
    let p = send(
        &app,
        ME,
        "/report",
        "en",
        &form_cookie,
        Some(report("", channel, "recruitment")),
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // malformed: refused with what was sent, escaped
    let p = send(
        &app,
        ME,
        "/report",
        "en",
        &form_cookie,
        Some(report(&csrf, "not a url at all", HOSTILE)),
    )
    .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(p.body.contains("&lt;img src=x"), "{}", p.body);
    assert_escaped(&p.body);
    // received: the status page by reference, in both languages, no contact
    let reasons = format!("recruitment videos {HOSTILE}");
    let p = send(
        &app,
        ME,
        "/report",
        "en",
        &form_cookie,
        Some(report(&csrf, channel, &reasons)),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let public_ref = reference_of(&p.location);
    let s = send(&app, ME, &p.location, "en", "", None).await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(
        s.body.contains(&public_ref) && s.body.contains("received"),
        "{}",
        s.body
    );
    assert!(
        !s.body.contains("parent@example.org"),
        "the contact is never shown"
    );
    let s = send(
        &app,
        ME,
        &format!("/report/{}", public_ref.to_lowercase()),
        "id",
        "",
        None,
    )
    .await;
    assert!(s.body.contains("Laporan Anda"), "{}", s.body);
    let s = send(
        &app,
        ME,
        &format!("/report/status?reference={public_ref}"),
        "en",
        "",
        None,
    )
    .await;
    assert_eq!(s.status, StatusCode::SEE_OTHER);
    assert_eq!(s.location, format!("/report/{public_ref}"));
    for bad in ["/report/NOPE-0000", "/report/%3Cscript%3E"] {
        assert_eq!(
            send(&app, ME, bad, "en", "", None).await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    // an address sends a few through the form, then waits; another does not
    let mut refused_at = None;
    for i in 0..10 {
        let p = send(
            &app,
            ME,
            "/report",
            "en",
            &form_cookie,
            Some(report(
                &csrf,
                &format!("https://spam{i}.example/"),
                "spam spam",
            )),
        )
        .await;
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(p.body.contains("Too many reports"), "{}", p.body);
            refused_at = Some(i);
            break;
        }
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
    assert_eq!(
        refused_at,
        Some(2),
        "three in 15 minutes from one address, the first included"
    );
    let p = send(
        &app,
        [192, 0, 2, 8],
        "/report",
        "en",
        &form_cookie,
        Some(report(&csrf, "https://casino.example/", "gambling ads")),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let rejected_ref = reference_of(&p.location);

    // the agency flags the same channel, spelt differently
    let a = session(&agent.secret);
    let g = send(&app, ME, "/", "en", &a, None).await;
    assert!(
        g.body.contains("href=\"/flags\""),
        "the flagger's nav: {}",
        g.body
    );
    let nf = send(&app, ME, "/flags/new", "en", &a, None).await;
    assert_eq!(nf.status, StatusCode::OK, "{}", nf.body);
    let flag = format!(
        "csrf={}&idempotency_key=k1&target_kind_0=platform_channel&target_value_0={}&category=terrorism&reasons={}",
        agent.csrf,
        enc("HTTPS://T.ME/s/jihad_channel#top"),
        enc("execution videos")
    );
    let p = send(&app, ME, "/flags/new", "en", &a, Some(flag.clone())).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location, "/flags?sent=1");
    // pressed twice: the same flag, not a second one
    let p = send(&app, ME, "/flags/new", "en", &a, Some(flag)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let mine = send(&app, ME, "/flags", "en", &a, None).await;
    assert_eq!(
        mine.body.matches("execution videos").count(),
        0,
        "reasons are not listed"
    );
    assert_eq!(
        mine.body.matches("<tr>").count(),
        2,
        "header and one flag: {}",
        mine.body
    );
    // a stranger flagger sees none of it, nor the queue
    let st = session(&stranger.secret);
    let theirs = send(&app, ME, "/flags", "en", &st, None).await;
    assert!(theirs.body.contains("No flags yet"), "{}", theirs.body);
    assert_eq!(
        send(&app, ME, "/flags/queue", "en", &st, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &app,
            ME,
            "/flags/new",
            "en",
            &session(&officer.secret),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN,
        "officers do not flag"
    );

    // the officer's queue: one entry, both sources, the public unnamed
    let o = session(&officer.secret);
    let q = send(&app, ME, "/flags/queue", "en", &o, None).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.body);
    assert!(q.body.contains("2 independent sources"), "{}", q.body);
    assert!(
        q.body.contains("Counter-terrorism agency") && q.body.contains("a member of the public")
    );
    assert!(!q.body.contains("parent@example.org"));
    assert_escaped(&q.body);
    // its accept form carries both flags' ids
    let ids = q
        .body
        .split("name=\"flag_ids\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("an accept form")
        .to_owned();
    assert_eq!(ids.split(',').count(), 2, "{ids}");
    // without CSRF: refused
    let accept = |csrf: &str| {
        format!(
            "csrf={csrf}&flag_ids={}&platform_id=&urgency=urgent&legal_reference={}&legal_text={}&explanation={}",
            enc(&ids),
            enc("Law 11/2008 art. 27"),
            enc("Terrorist propaganda is unlawful."),
            enc("Flagged by an agency and the public")
        )
    };
    assert_eq!(
        send(&app, ME, "/flags/queue/accept", "en", &o, Some(accept("x")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let p = send(
        &app,
        ME,
        "/flags/queue/accept",
        "en",
        &o,
        Some(accept(&officer.csrf)),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(p.location.starts_with("/notices/"), "{}", p.location);
    // accepting again is a conflict shown on the queue page
    let p = send(
        &app,
        ME,
        "/flags/queue/accept",
        "en",
        &o,
        Some(accept(&officer.csrf)),
    )
    .await;
    assert_eq!(p.status, StatusCode::CONFLICT, "{}", p.body);
    // the agency sees the outcome; the public reporter by reference
    let mine = send(&app, ME, "/flags", "en", &a, None).await;
    assert!(
        mine.body.contains("accepted") && mine.body.contains("notice"),
        "{}",
        mine.body
    );
    let s = send(&app, ME, &format!("/report/{public_ref}"), "en", "", None).await;
    assert!(s.body.contains("accepted"), "{}", s.body);

    // the casino report is rejected with a reason its reporter reads
    let q = send(&app, ME, "/flags/queue", "en", &o, None).await;
    let casino_ids = q
        .body
        .split_once("casino.example")
        .map(|x| x.1)
        .and_then(|r| r.split("name=\"flag_ids\" value=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("the casino entry: {}", q.body))
        .to_owned();
    let reject = format!(
        "csrf={}&flag_ids={}&reason={}",
        officer.csrf,
        enc(&casino_ids),
        enc("advertising is not unlawful content")
    );
    let p = send(&app, ME, "/flags/queue/reject", "en", &o, Some(reject)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let s = send(&app, ME, &format!("/report/{rejected_ref}"), "en", "", None).await;
    assert!(
        s.body.contains("advertising is not unlawful content"),
        "{}",
        s.body
    );
    // a bad merge says why
    let merge = format!("csrf={}&flag_ids=nope&notice_id=nope", officer.csrf);
    let p = send(&app, ME, "/flags/queue/merge", "en", &o, Some(merge)).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);

    // trusted-flagger status: granted by the admin, confirmed by the
    // platform, suspended by the admin
    let ad = session(&admin_p.secret);
    let t = send(&app, ME, "/trusted-flaggers", "en", &ad, None).await;
    assert!(t.body.contains("Grant status"), "{}", t.body);
    let grant = format!(
        "csrf={}&flagger_id={}&platform_id={}&category=terrorism&item_kind=platform_channel",
        admin_p.csrf, agency.id, telegram.id
    );
    assert_eq!(
        send(
            &app,
            ME,
            "/trusted-flaggers",
            "en",
            &o,
            Some(grant.replace(&admin_p.csrf, &officer.csrf))
        )
        .await
        .status,
        StatusCode::FORBIDDEN,
        "only the admin grants"
    );
    let p = send(&app, ME, "/trusted-flaggers", "en", &ad, Some(grant)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let tp = session(&tg.secret);
    let t = send(&app, ME, "/trusted-flaggers", "en", &tp, None).await;
    let confirm = t
        .body
        .split("action=\"/trusted-flaggers/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a confirm form for the platform")
        .to_owned();
    assert!(confirm.ends_with("/confirm"), "{confirm}");
    let grant_id = confirm.trim_end_matches("/confirm").to_owned();
    let p = send(
        &app,
        ME,
        &format!("/trusted-flaggers/{confirm}"),
        "en",
        &tp,
        Some(format!("csrf={}", tg.csrf)),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = send(
        &app,
        ME,
        &format!("/trusted-flaggers/{grant_id}/status"),
        "en",
        &ad,
        Some(format!(
            "csrf={}&action=suspend&reason={}",
            admin_p.csrf,
            enc("accuracy under review")
        )),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let t = send(&app, ME, "/trusted-flaggers", "id", &ad, None).await;
    assert!(
        t.body.contains("ditangguhkan") && t.body.contains("accuracy under review"),
        "{}",
        t.body
    );
    // suspending twice is refused on the page
    let p = send(
        &app,
        ME,
        &format!("/trusted-flaggers/{grant_id}/status"),
        "en",
        &ad,
        Some(format!("csrf={}&action=suspend&reason=again", admin_p.csrf)),
    )
    .await;
    assert_eq!(p.status, StatusCode::CONFLICT, "{}", p.body);

    // the flagger report: its own, not another's
    let own = format!("/flaggers/{}/report", agency.id);
    let r = send(&app, ME, &own, "en", &a, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Counter-terrorism agency: report for 2026"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("should be reviewed"),
        "default policy: too few reviews"
    );
    assert_eq!(
        send(&app, ME, &own, "en", &st, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, ME, &format!("{own}?year=1999"), "en", &a, None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // the issuers' report: authority staff only
    let i = send(&app, ME, "/issuers/report", "en", &o, None).await;
    assert_eq!(i.status, StatusCode::OK, "{}", i.body);
    assert!(i.body.contains("Issuer"), "{}", i.body);
    assert_eq!(
        send(&app, ME, "/issuers/report", "en", &a, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // a stricter configured threshold flags the other NGO for review once
    // its one flag is rejected
    let mut strict = WebState::new(store.clone(), WebConfig::default());
    strict.accuracy = AccuracyPolicy::parse(0.9, 1, 30).expect("policy");
    let strict = router(strict);
    let ngo_flag = format!(
        "csrf={}&idempotency_key=n1&target_kind_0=domain&target_value_0=bad.example&category=terrorism&reasons=propaganda",
        stranger.csrf
    );
    assert_eq!(
        send(&strict, ME, "/flags/new", "en", &st, Some(ngo_flag))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let q = send(&strict, ME, "/flags/queue", "en", &o, None).await;
    let ngo_ids = q
        .body
        .split_once("bad.example")
        .map(|x| x.1)
        .and_then(|r| r.split("name=\"flag_ids\" value=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .expect("the NGO's entry")
        .to_owned();
    let reject = format!("csrf={}&flag_ids={}&reason=no", officer.csrf, enc(&ngo_ids));
    assert_eq!(
        send(&strict, ME, "/flags/queue/reject", "en", &o, Some(reject))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let theirs = format!("/flaggers/{}/report", other.id);
    let r = send(&strict, ME, &theirs, "en", &st, None).await;
    assert!(
        r.body.contains("should be reviewed") && r.body.contains("30 days"),
        "{}",
        r.body
    );
    let r = send(&app, ME, &theirs, "en", &st, None).await;
    assert!(
        !r.body.contains("should be reviewed"),
        "not under the default policy"
    );

    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_pages_walk_from_report_to_notice_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
