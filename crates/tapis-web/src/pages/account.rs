//! A person's own account: who they are, for which party, in which roles,
//! and two-step sign-in (a code from an authenticator app after the
//! password), which only they can turn on or off.
//!
//! Setting it up shows the new secret as text and as an `otpauth://` link
//! (apps take either; no QR code, so no script and no image of a secret)
//! and asks for the app's current code before it takes effect.

use axum::body::Bytes;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::totp::TotpSecret;

use super::checked_form;
use crate::error::WebError;
use crate::layout::{page, role_key};
use crate::session::{Ctx, query};

fn setup_box(cx: &Ctx, csrf: &str, secret: &TotpSecret, login: &str) -> Markup {
    let uri = secret.uri(&format!("tapis {}", cx.state.config.zone_label), login);
    html! {
        section aria-labelledby="setup-title" {
            h2 id="setup-title" { (cx.t("account-2fa-setup-title")) }
            ol {
                li { (cx.t("account-2fa-step-app")) }
                li {
                    (cx.t("account-2fa-step-secret")) br;
                    code.secret { (secret.to_base32()) }
                    br;
                    a href=(uri) { (cx.t("account-2fa-open-app")) }
                }
                li { (cx.t("account-2fa-step-code")) }
            }
            form.stack method="post" action="/account/two-step/confirm" {
                input type="hidden" name="csrf" value=(csrf);
                div {
                    label for="code" { (cx.t("signin-code")) }
                    input type="text" id="code" name="code" inputmode="numeric"
                        autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required;
                }
                div { button type="submit" { (cx.t("account-2fa-confirm")) } }
            }
        }
    }
}

/// Invite a colleague to one's own party, in one's own role: the link is
/// shown once (the store and core decide whether this person may).
pub async fn invite_colleague(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    let (party, role) = (s.principal.party_id, s.principal.role);
    let (status, shown) = match super::admin::invite(&cx, party, role.as_str()).await? {
        Ok((code, name, role)) => (
            axum::http::StatusCode::CREATED,
            super::admin::invitation_box(&cx, &code, &name, role),
        ),
        Err(m) => (axum::http::StatusCode::FORBIDDEN, m),
    };
    let mut resp = render(&cx, Some(shown)).await?;
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

async fn render(cx: &Ctx, message: Option<Markup>) -> Result<Response, WebError> {
    let s = cx.require()?;
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let account = store.get_account(&s.account.login).await.map_err(err)?;
    let pending = if account.two_step {
        None
    } else {
        store.pending_two_step(&account).await.map_err(err)?
    };
    let body = html! {
        h1 { (cx.t("account-title")) }
        @if let Some(m) = message { (m) }
        dl.facts {
            dt { (cx.t("account-person")) } dd { (account.person.as_str()) }
            dt { (cx.t("signin-login")) } dd { (account.login) }
            dt { (cx.t("account-party")) } dd { (account.party_name) }
            dt { (cx.t("account-roles")) }
            dd { @for (i, r) in account.roles.iter().enumerate() {
                @if i > 0 { ", " } (cx.t(role_key(*r)))
            } }
        }
        h2 { (cx.t("account-2fa-title")) }
        @if account.two_step {
            p { span.badge.green { (cx.t("account-2fa-on")) } " " (cx.t("account-2fa-on-help")) }
            form.stack method="post" action="/account/two-step/disable" {
                input type="hidden" name="csrf" value=(s.csrf);
                div {
                    label for="off-code" { (cx.t("signin-code")) }
                    input type="text" id="off-code" name="code" inputmode="numeric"
                        autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required;
                }
                div { button type="submit" { (cx.t("account-2fa-disable")) } }
            }
        } @else {
            p { span.badge.grey { (cx.t("account-2fa-off")) } " " (cx.t("account-2fa-off-help")) }
            @if let Some(secret) = &pending {
                (setup_box(cx, &s.csrf, secret, &account.login))
            } @else {
                form method="post" action="/account/two-step/start" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    button type="submit" { (cx.t("account-2fa-start")) }
                }
            }
        }
        p.muted { (cx.t("account-2fa-lost")) }
        @if s.principal.role != tapis_core::role::Role::Admin {
            h2 { (cx.t("account-invite-title")) }
            p { (cx.tf("account-invite-help", &[("role", cx.t(role_key(s.principal.role)))])) }
            form method="post" action="/account/invite" {
                input type="hidden" name="csrf" value=(s.csrf);
                button type="submit" { (cx.t("account-invite-go")) }
            }
        }
    };
    Ok(page(cx, cx.t("account-title"), body).into_response())
}

pub async fn show(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let q = query(&uri);
    let message = match q.get("done") {
        "on" => Some(html! { p.notice-box role="status" { (cx.t("account-2fa-now-on")) } }),
        "off" => Some(html! { p.notice-box role="status" { (cx.t("account-2fa-now-off")) } }),
        _ => None,
    };
    render(&cx, message).await
}

pub async fn start(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    let err = |e| WebError::from_store(cx.lang, e);
    let account = cx
        .state
        .store
        .get_account(&s.account.login)
        .await
        .map_err(err)?;
    if !account.two_step {
        cx.state.store.begin_two_step(&account).await.map_err(err)?;
    }
    Ok(Redirect::to("/account").into_response())
}

/// Confirm or turn off: both take a code; a wrong one shows the page
/// again with the reason.
async fn with_code(cx: Ctx, body: Bytes, confirm: bool) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    let store = &cx.state.store;
    let account = store
        .get_account(&s.account.login)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let outcome = if confirm {
        store.confirm_two_step(&account, form.get("code")).await
    } else {
        store.disable_two_step(&account, form.get("code")).await
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(if confirm {
            "/account?done=on"
        } else {
            "/account?done=off"
        })
        .into_response()),
        Err(tapis_store::Error::Domain(_)) => {
            let m = html! { p.error role="alert" { (cx.t("account-2fa-wrong-code")) } };
            let mut resp = render(&cx, Some(m)).await?;
            *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

pub async fn confirm(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    with_code(cx, body, true).await
}

pub async fn disable(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    with_code(cx, body, false).await
}
