//! What the page tests share: a person signed in on a real store, and a
//! request through the web router as that person.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tapis_core::PartyId;
use tapis_core::role::Role;
use tapis_store::Store;
use tapis_store::testing::signed_in;
use tapis_web::{WebConfig, WebState, router};
use tower::ServiceExt;

/// A person's signed-in session: its cookie secret and CSRF token.
pub struct Signed {
    pub secret: String,
    pub csrf: String,
}

pub async fn person(
    store: &Store,
    party: PartyId,
    login: &str,
    name: &str,
    roles: &[Role],
) -> Signed {
    let (secret, session) = signed_in(store, party, login, name, roles).await;
    Signed {
        secret,
        csrf: session.csrf,
    }
}

pub async fn send(
    store: &Store,
    who: &Signed,
    method: &str,
    path: &str,
    form: Option<String>,
) -> (StatusCode, String) {
    let app = router(WebState::new(store.clone(), WebConfig::default()));
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, format!("tapis_session={}", who.secret));
    if form.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let resp = app
        .oneshot(
            req.body(Body::from(form.unwrap_or_default()))
                .expect("request"),
        )
        .await
        .expect("response");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}
