//! Two-step sign-in through the pages, on both backends: a person signs
//! in, sets up an authenticator from their account page (a wrong code is
//! refused with the reason, the right one turns it on), and from then on
//! the sign-in form refuses the password alone and takes password and
//! code; the account page speaks Bahasa Indonesia too.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::totp::{TotpSecret, step_of};
use tapis_core::{Clock, ManualClock};
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party};
use tapis_web::{WebConfig, WebState};
use tower::ServiceExt;

const PASSWORD: &str = "a long enough secret";

struct Answer {
    status: StatusCode,
    location: String,
    cookies: Vec<(String, String)>,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.expect("answer");
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| {
            let text = v.to_str().ok()?;
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    Answer {
        status,
        location,
        cookies,
        body: String::from_utf8(bytes.to_vec()).expect("utf-8"),
    }
}

fn get(path: &str, cookie: &str, lang: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT_LANGUAGE, lang)
        .body(Body::empty())
        .expect("request")
}

fn post(path: &str, cookie: &str, form: &[(&str, &str)]) -> Request<Body> {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+").replace('@', "%40")))
        .collect::<Vec<_>>()
        .join("&");
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request")
}

/// The value of the first `name="csrf"` hidden field.
fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[at..].split('"').next().expect("value").to_owned()
}

/// Sign in; the session cookie, or the refusal.
async fn sign_in(app: &Router, code: Option<&str>) -> Result<String, Answer> {
    let form = send(app, get("/signin", "", "en")).await;
    let (k, v) = form
        .cookies
        .iter()
        .find(|(k, _)| k == "tapis_form")
        .expect("a form cookie");
    let token = csrf(&form.body);
    let mut fields = vec![
        ("csrf", token.as_str()),
        ("login", "dewi@chat"),
        ("password", PASSWORD),
    ];
    if let Some(c) = code {
        fields.push(("code", c));
    }
    let done = send(app, post("/signin", &format!("{k}={v}"), &fields)).await;
    match done.cookies.iter().find(|(k, _)| k.contains("session")) {
        Some((k, v)) if done.status == StatusCode::SEE_OTHER => Ok(format!("{k}={v}")),
        _ => Err(done),
    }
}

fn code_now(secret: &TotpSecret, clock: &ManualClock) -> String {
    format!("{:06}", secret.code_at_step(step_of(clock.now())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_and_use_two_step_sign_in_through_the_pages() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let clock = clock_at(START);
        let store = db.open(Arc::new(clock.clone())).await;
        let (_, admin) = bootstrap(&store).await;
        let platform = party(&store, &admin, "platform", "Chat").await;
        store
            .create_account(
                &admin.actor(),
                platform.id,
                "dewi@chat",
                &Person::parse("Dewi Lestari").expect("person"),
                &[Role::PlatformAgent],
                Some(PASSWORD),
            )
            .await
            .expect("account");
        let app = tapis_web::router(WebState::new(store.clone(), WebConfig::default()));

        let session = sign_in(&app, None)
            .await
            .map_err(|a| a.status)
            .expect("signed in");
        let page = send(&app, get("/account", &session, "en")).await;
        assert_eq!(page.status, StatusCode::OK, "{backend:?}");
        assert!(page.body.contains("Two-step sign-in") && page.body.contains(">Off<"));
        let id_page = send(&app, get("/account", &session, "id")).await;
        assert!(id_page.body.contains("Masuk dua langkah"), "{backend:?}");
        let token = csrf(&page.body);

        // start: the page shows the key, not yet in force
        let started = send(
            &app,
            post("/account/two-step/start", &session, &[("csrf", &token)]),
        )
        .await;
        assert_eq!(started.status, StatusCode::SEE_OTHER);
        let page = send(&app, get("/account", &session, "en")).await;
        let at = page
            .body
            .find("class=\"secret\">")
            .expect("the key is shown")
            + 15;
        let key = page.body[at..].split('<').next().expect("key");
        let secret = TotpSecret::parse(key).expect("a base32 key");
        assert!(page.body.contains("otpauth://totp/"));
        assert!(
            sign_in(&app, None).await.is_ok(),
            "not in force before confirming"
        );

        // a wrong code is refused with the reason; the right one turns it on
        let right = code_now(&secret, &clock);
        let wrong = format!(
            "{:06}",
            (right.parse::<u32>().expect("digits") + 1) % 1_000_000
        );
        let refused = send(
            &app,
            post(
                "/account/two-step/confirm",
                &session,
                &[("csrf", &token), ("code", &wrong)],
            ),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{backend:?}"
        );
        assert!(refused.body.contains("That code is not right"));
        let on = send(
            &app,
            post(
                "/account/two-step/confirm",
                &session,
                &[("csrf", &token), ("code", &right)],
            ),
        )
        .await;
        assert_eq!(
            (on.status, on.location.as_str()),
            (StatusCode::SEE_OTHER, "/account?done=on")
        );

        // a forged CSRF token changes nothing
        let forged = send(
            &app,
            post(
                "/account/two-step/disable",
                &session,
                &[("csrf", "forged"), ("code", &right)],
            ),
        )
        .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // the password alone no longer signs in; password and code do
        let alone = sign_in(&app, None)
            .await
            .expect_err("refused without a code");
        assert_eq!(alone.status, StatusCode::UNAUTHORIZED);
        assert!(alone.body.contains("the password or the code is wrong"));
        clock.advance_millis(30_000);
        let code = code_now(&secret, &clock);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(sign_in(&app, Some(&spaced)).await.is_ok(), "{backend:?}");
        assert!(
            sign_in(&app, Some(&code)).await.is_err(),
            "a code works once"
        );
        db.cleanup().await;
    }
}
