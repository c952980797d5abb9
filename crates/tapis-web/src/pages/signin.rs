//! Signing in and out, switching role, creating an account from an
//! invitation, and setting a password from a one-time link.
//!
//! Forms shown before sign-in carry a double-submit CSRF token (a
//! `SameSite=Strict` cookie and a hidden field that must match); a new
//! session secret is made at every sign-in, so a session id planted
//! before sign-in is worthless.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_store::SignIn;

use super::checked_form;
use crate::error::WebError;
use crate::layout::{page, role_key};
use crate::session::{Ctx, form_token, local_path, query, session_cookie_name, set_cookie};

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// Where a role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::PlatformAgent => "/inbox",
        Role::Approver => "/approvals",
        Role::Authoriser => "/authorise",
        Role::IspOperator => "/isp",
        Role::Auditor => "/audit",
        Role::Flagger => "/flags",
        r if r.reads_everything() => "/dashboard",
        _ => "/notices",
    }
}

fn signin_page(cx: &Ctx, token: &str, next: &str, login: &str, message: Option<Markup>) -> Markup {
    html! {
        h1 { (cx.t("signin-title")) }
        @if let Some(m) = message { (m) }
        form.stack method="post" action="/signin" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            div {
                label for="login" { (cx.t("signin-login")) }
                input type="text" id="login" name="login" value=(login) autocomplete="username" required autofocus;
            }
            div {
                label for="password" { (cx.t("signin-password")) }
                input type="password" id="password" name="password" autocomplete="current-password" required;
            }
            div {
                label for="code" { (cx.t("signin-code")) }
                input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code"
                    pattern="[0-9 ]{6,7}" aria-describedby="code-help";
                small.muted id="code-help" { (cx.t("signin-code-help")) }
            }
            div { button type="submit" { (cx.t("signin-go")) } }
        }
        p.muted { (cx.t("signin-help")) }
    }
}

pub async fn form(cx: Ctx, uri: axum::http::Uri) -> Response {
    let q = query(&uri);
    if let Some(s) = &cx.session {
        return Redirect::to(home_of(s.principal.role)).into_response();
    }
    let (token, cookie) = form_token(&cx);
    let message = if q.get("expired") == "1" {
        Some(html! { p.notice-box role="status" { (cx.t("signin-expired")) } })
    } else if q.get("welcome") == "1" {
        Some(html! { p.notice-box role="status" { (cx.t("signin-welcome")) } })
    } else {
        None
    };
    let body = signin_page(&cx, &token, &local_path(q.get("next")), "", message);
    with_cookie(
        page(&cx, cx.t("signin-title"), body).into_response(),
        cookie,
    )
}

pub async fn submit(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let form = checked_form(&cx, &body)?;
    let login = form.get("login").trim().to_owned();
    let next = local_path(form.get("next"));
    let token = cx.csrf();
    let refuse = |status: StatusCode, msg: String| {
        let m = html! { p.error role="alert" { (msg) } };
        (
            status,
            page(
                &cx,
                cx.t("signin-title"),
                signin_page(&cx, &token, &next, &login, Some(m)),
            ),
        )
            .into_response()
    };
    let limit = cx.state.config.failures_per_address;
    if let Some(ip) = cx.peer
        && cx.state.throttle.blocked(ip, limit)
    {
        return Ok(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            cx.t("signin-throttled").to_owned(),
        ));
    }
    let outcome = cx
        .state
        .store
        .sign_in_with_code(
            &login,
            form.get("password"),
            Some(form.get("code")).filter(|c| !c.trim().is_empty()),
            cx.state.config.session,
        )
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    match outcome {
        SignIn::Ok(secret, session) => {
            let to = if next == "/" || next.starts_with("/signin") {
                home_of(session.principal.role).to_owned()
            } else {
                next
            };
            let secure = cx.state.config.secure_cookies;
            let mut resp = Redirect::to(&to).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(session_cookie_name(secure), &secret, secure, None),
            );
            Ok(resp)
        }
        SignIn::Refused => {
            if let Some(ip) = cx.peer {
                cx.state.throttle.fail(ip);
            }
            Ok(refuse(
                StatusCode::UNAUTHORIZED,
                cx.t("signin-failed").to_owned(),
            ))
        }
        SignIn::Locked(until) => {
            if let Some(ip) = cx.peer {
                cx.state.throttle.fail(ip);
            }
            let when = cx.lang.datetime(until, cx.state.config.time_zone);
            Ok(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                cx.tf(
                    "signin-locked",
                    &[("until", &format!("{when} {}", cx.state.config.zone_label))],
                ),
            ))
        }
    }
}

pub async fn sign_out(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let Some(s) = &cx.session else {
        return Ok(Redirect::to("/").into_response());
    };
    checked_form(&cx, &body)?;
    let secret = cx.secret.clone().unwrap_or_default();
    cx.state
        .store
        .sign_out(&secret, s)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let secure = cx.state.config.secure_cookies;
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(session_cookie_name(secure), "", secure, Some(0)),
    );
    Ok(resp)
}

pub async fn switch_role(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    let role =
        Role::parse(form.get("role")).map_err(|e| WebError::from_store(cx.lang, e.into()))?;
    cx.state
        .store
        .switch_role(cx.secret.as_deref().unwrap_or(""), s, role)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    Ok(Redirect::to(home_of(role)).into_response())
}

fn account_fields(cx: &Ctx, token: &str, person: &str, login: &str, with_identity: bool) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(token);
        @if with_identity {
            div {
                label for="person" { (cx.t("account-person")) }
                input type="text" id="person" name="person" value=(person) autocomplete="name" required;
                small.muted { (cx.t("account-person-help")) }
            }
            div {
                label for="login" { (cx.t("signin-login")) }
                input type="text" id="login" name="login" value=(login) autocomplete="username" required;
                small.muted { (cx.t("account-login-help")) }
            }
        }
        div {
            label for="password" { (cx.t("signin-password")) }
            input type="password" id="password" name="password" autocomplete="new-password" required minlength="12";
            small.muted { (cx.t("account-password-help")) }
        }
        div {
            label for="password2" { (cx.t("account-password-again")) }
            input type="password" id="password2" name="password2" autocomplete="new-password" required minlength="12";
        }
    }
}

async fn invitation_page(
    cx: &Ctx,
    code: &str,
    token: &str,
    person: &str,
    login: &str,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let (party, _, role) = cx
        .state
        .store
        .invitation_for(code)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    Ok(html! {
        h1 { (cx.t("invitation-title")) }
        p.lead { (cx.tf("invitation-lead", &[("party", &party), ("role", cx.t(role_key(role)))])) }
        p { (cx.t("invitation-own")) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stack method="post" action={ "/invitations/" (code) } {
            (account_fields(cx, token, person, login, true))
            div { button type="submit" { (cx.t("invitation-go")) } }
        }
    })
}

pub async fn invitation_form(cx: Ctx, Path(code): Path<String>) -> Result<Response, WebError> {
    let (token, cookie) = form_token(&cx);
    let body = invitation_page(&cx, &code, &token, "", "", None).await?;
    Ok(with_cookie(
        page(&cx, cx.t("invitation-title"), body).into_response(),
        cookie,
    ))
}

pub async fn invitation_submit(
    cx: Ctx,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = checked_form(&cx, &body)?;
    let token = cx.csrf();
    let (person_raw, login) = (form.get("person"), form.get("login"));
    let again = |msg: String| async {
        let body = invitation_page(&cx, &code, &token, person_raw, login, Some(msg)).await?;
        Ok::<_, WebError>(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&cx, cx.t("invitation-title"), body),
            )
                .into_response(),
        )
    };
    if form.get("password") != form.get("password2") {
        return again(cx.t("account-password-mismatch").to_owned()).await;
    }
    let person = match Person::parse(person_raw) {
        Ok(p) => p,
        Err(e) => return again(e.to_string()).await,
    };
    match cx
        .state
        .store
        .accept_invitation_as_account(&code, login, &person, form.get("password"))
        .await
    {
        Ok(_) => Ok(Redirect::to("/signin?welcome=1").into_response()),
        Err(tapis_store::Error::NotFound(_)) => Err(WebError::not_found(cx.lang)),
        Err(e @ (tapis_store::Error::Domain(_) | tapis_store::Error::Conflict(_))) => {
            again(e.to_string()).await
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

async fn reset_page(
    cx: &Ctx,
    code: &str,
    token: &str,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let account = cx
        .state
        .store
        .account_link(code)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    Ok(html! {
        h1 { (cx.t("reset-title")) }
        p.lead { (cx.tf("reset-lead", &[("login", &account.login), ("party", &account.party_name)])) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stack method="post" action={ "/reset/" (code) } {
            (account_fields(cx, token, "", "", false))
            div { button type="submit" { (cx.t("reset-go")) } }
        }
    })
}

pub async fn reset_form(cx: Ctx, Path(code): Path<String>) -> Result<Response, WebError> {
    let (token, cookie) = form_token(&cx);
    let body = reset_page(&cx, &code, &token, None).await?;
    Ok(with_cookie(
        page(&cx, cx.t("reset-title"), body).into_response(),
        cookie,
    ))
}

pub async fn reset_submit(
    cx: Ctx,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = checked_form(&cx, &body)?;
    let token = cx.csrf();
    let again = |msg: String| async {
        let body = reset_page(&cx, &code, &token, Some(msg)).await?;
        Ok::<_, WebError>(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&cx, cx.t("reset-title"), body),
            )
                .into_response(),
        )
    };
    if form.get("password") != form.get("password2") {
        return again(cx.t("account-password-mismatch").to_owned()).await;
    }
    match cx
        .state
        .store
        .use_account_link(&code, form.get("password"))
        .await
    {
        Ok(_) => Ok(Redirect::to("/signin").into_response()),
        Err(tapis_store::Error::NotFound(_)) => Err(WebError::not_found(cx.lang)),
        Err(e @ tapis_store::Error::Domain(_)) => again(e.to_string()).await,
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}
