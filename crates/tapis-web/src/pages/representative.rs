//! The platform's own "Representative and contacts" page: its legal
//! representative in the country and its technical and administrative
//! contacts, each with a form, its verification state, a button that
//! emails a one-time code and the field to enter it. Every form posts to
//! the store methods the API calls (`set_platform_contact`,
//! `send_contact_code`, `verify_platform_contact`) with the session's
//! principal, so the page allows exactly what the API does.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::representative::{Contact, ContactInput, ContactRole, ContactState};
use tapis_core::role::Action;
use tapis_store::PlatformContact;

use super::checked_form;
use crate::error::WebError;
use crate::layout::{maybe_time, page};
use crate::session::{Ctx, query};

fn role_key(r: ContactRole) -> &'static str {
    match r {
        ContactRole::Legal => "rep-role-legal",
        ContactRole::Technical => "rep-role-technical",
        ContactRole::Administrative => "rep-role-administrative",
    }
}

fn state_badge(cx: &Ctx, s: Option<ContactState>) -> Markup {
    let (tone, key) = match s {
        Some(ContactState::Verified) => ("green", "rep-state-verified"),
        Some(ContactState::CodeSent) => ("blue", "rep-state-code-sent"),
        Some(ContactState::Unverified) => ("amber", "rep-state-unverified"),
        None => ("grey", "rep-state-none"),
    };
    html! { span class={ "badge " (tone) } { (cx.t(key)) } }
}

fn section(cx: &Ctx, csrf: &str, role: ContactRole, c: Option<&PlatformContact>) -> Markup {
    let r = role.as_str();
    let v = |f: fn(&Contact) -> Option<&str>| -> String {
        c.and_then(|c| f(&c.contact)).unwrap_or("").to_owned()
    };
    let legal = role == ContactRole::Legal;
    let id = |f: &str| format!("{r}-{f}");
    html! {
        section aria-labelledby={ (r) "-title" } {
            h2 id={ (r) "-title" } { (cx.t(role_key(role))) " " (state_badge(cx, c.map(|c| c.state))) }
            @if legal { p.muted { (cx.t("rep-legal-help")) } }
            @if let Some(c) = c {
                @if let Some(t) = c.verified_at { p { (cx.t("rep-verified-at")) " " (maybe_time(cx, Some(t))) } }
            }
            form.stack method="post" action={ "/representative/" (r) } {
                input type="hidden" name="csrf" value=(csrf);
                div {
                    label for=(id("name")) { (cx.t("rep-name")) }
                    input type="text" id=(id("name")) name="name" maxlength="200" required value=(v(|c| Some(c.name.as_str())));
                }
                div {
                    label for=(id("kind")) { (cx.t("rep-kind")) }
                    select id=(id("kind")) name="kind" {
                        option value="person" selected[c.is_some_and(|c| c.contact.kind == tapis_core::representative::ContactKind::Person)] { (cx.t("rep-kind-person")) }
                        option value="office" selected[c.is_some_and(|c| c.contact.kind == tapis_core::representative::ContactKind::Office)] { (cx.t("rep-kind-office")) }
                    }
                }
                div {
                    label for=(id("address")) { (cx.t("rep-address")) }
                    textarea id=(id("address")) name="address" maxlength="500" rows="3" required[legal] { (v(|c| c.address.as_deref())) }
                }
                div {
                    label for=(id("email")) { (cx.t("rep-email")) }
                    input type="email" id=(id("email")) name="email" maxlength="254" required value=(v(|c| Some(c.email.as_str())));
                }
                div {
                    label for=(id("phone")) { (cx.t("rep-phone")) }
                    input type="tel" id=(id("phone")) name="phone" maxlength="40" required[legal] value=(v(|c| c.phone.as_deref()));
                }
                div {
                    label for=(id("hours")) { (cx.t("rep-hours")) }
                    input type="text" id=(id("hours")) name="hours" maxlength="200" required[legal] value=(v(|c| c.hours.as_deref()));
                }
                div {
                    label for=(id("tz")) { (cx.t("rep-time-zone")) }
                    input type="text" id=(id("tz")) name="time_zone" maxlength="64" placeholder="Asia/Jakarta" required[legal] value=(v(|c| c.time_zone.as_deref()));
                }
                p.muted { (cx.t("rep-change-help")) }
                div { button type="submit" { (cx.t("rep-save")) } }
            }
            @if let Some(c) = c {
                @if c.state != ContactState::Verified {
                    form method="post" action={ "/representative/" (r) "/code" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (cx.t("rep-send-code")) }
                    }
                }
                @if c.state == ContactState::CodeSent {
                    form.stack method="post" action={ "/representative/" (r) "/verify" } {
                        input type="hidden" name="csrf" value=(csrf);
                        div {
                            label for=(id("code")) { (cx.t("rep-code")) }
                            input type="text" id=(id("code")) name="code" inputmode="numeric"
                                autocomplete="one-time-code" pattern="[0-9]{8}" required;
                        }
                        div { button type="submit" { (cx.t("rep-verify")) } }
                    }
                }
            }
        }
    }
}

async fn render(
    cx: &Ctx,
    message: Option<Markup>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    if !s.principal.role.may(Action::ManageContacts) {
        return Ok(Redirect::to(super::signin::home_of(s.principal.role)).into_response());
    }
    let contacts = cx
        .state
        .store
        .platform_contacts(&s.principal, s.principal.party_id)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let body = html! {
        h1 { (cx.t("rep-title")) }
        p { (cx.t("rep-intro")) }
        @if let Some(m) = message { (m) }
        @for role in ContactRole::ALL {
            (section(cx, &s.csrf, role, contacts.iter().find(|c| c.role == role)))
        }
    };
    let mut resp = page(cx, cx.t("rep-title"), body).into_response();
    *resp.status_mut() = status;
    Ok(resp)
}

pub async fn show(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let q = query(&uri);
    let message = match q.get("done") {
        "saved" => Some(html! { p.notice-box role="status" { (cx.t("rep-saved")) } }),
        "sent" => Some(html! { p.notice-box role="status" { (cx.t("rep-code-sent")) } }),
        "verified" => Some(html! { p.notice-box role="status" { (cx.t("rep-now-verified")) } }),
        _ => None,
    };
    render(&cx, message, StatusCode::OK).await
}

fn parse_role(cx: &Ctx, raw: &str) -> Result<ContactRole, WebError> {
    ContactRole::parse(raw).map_err(|_| WebError::not_found(cx.lang))
}

/// A refused form shows the page again with the reason (422, or 409 for a
/// code that can no longer be used); other failures are error pages.
async fn outcome<T>(
    cx: &Ctx,
    result: tapis_store::Result<T>,
    done: &str,
) -> Result<Response, WebError> {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/representative?done={done}")).into_response()),
        Err(tapis_store::Error::Domain(e @ tapis_core::Error::Invalid { .. })) => {
            let m = html! { p.error role="alert" { (e.to_string()) } };
            render(cx, Some(m), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(tapis_store::Error::Conflict(e)) => {
            let m = html! { p.error role="alert" { (e) } };
            render(cx, Some(m), StatusCode::CONFLICT).await
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

pub async fn save(cx: Ctx, Path(role): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    let role = parse_role(&cx, &role)?;
    let opt = |k: &str| Some(form.get(k).to_owned()).filter(|v| !v.trim().is_empty());
    let input = ContactInput {
        name: form.get("name").to_owned(),
        kind: opt("kind"),
        address: opt("address"),
        email: form.get("email").to_owned(),
        phone: opt("phone"),
        hours: opt("hours"),
        time_zone: opt("time_zone"),
    };
    let result = match Contact::parse(role, input) {
        Ok(c) => {
            cx.state
                .store
                .set_platform_contact(&s.principal, s.principal.party_id, role, c)
                .await
        }
        Err(e) => Err(e.into()),
    };
    outcome(&cx, result, "saved").await
}

pub async fn send_code(
    cx: Ctx,
    Path(role): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    let role = parse_role(&cx, &role)?;
    let result = cx
        .state
        .store
        .send_contact_code(&s.principal, s.principal.party_id, role)
        .await;
    outcome(&cx, result, "sent").await
}

pub async fn verify(cx: Ctx, Path(role): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    let role = parse_role(&cx, &role)?;
    let result = cx
        .state
        .store
        .verify_platform_contact(&s.principal, s.principal.party_id, role, form.get("code"))
        .await;
    outcome(&cx, result, "verified").await
}
