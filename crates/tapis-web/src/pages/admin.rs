//! The admin's page: the parties, a new party, and invitations.
//!
//! The admin never makes another party's credentials: it invites a
//! party's first member (and the authority's own people), and the invited
//! person opens the link and chooses their own login and password. After
//! that a party's own members invite their colleagues, from their account
//! page (`account.rs`). Who may invite whom is decided by the store and
//! core (`role::may_invite`, `authority_may_invite`), exactly as for the
//! API; a refusal shows its reason.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::PartyId;
use tapis_core::party::{NewParty, PartyInput, PartyKind};
use tapis_core::role::{Action, Role};

use super::checked_form;
use crate::error::WebError;
use crate::layout::{page, role_key};
use crate::session::{Ctx, query};

fn kind_key(k: PartyKind) -> &'static str {
    match k {
        PartyKind::Authority => "party-authority",
        PartyKind::Flagger => "party-flagger",
        PartyKind::Platform => "party-platform",
        PartyKind::Isp => "party-isp",
        PartyKind::Authoriser => "party-authoriser",
    }
}

/// Roles a person of a `kind` party may hold.
fn roles_for(kind: PartyKind) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| tapis_core::role::fits(kind, *r).is_ok())
        .collect()
}

/// A one-time invitation link, shown once, with what to do with it.
pub fn invitation_box(cx: &Ctx, code: &str, party: &str, role: Role) -> Markup {
    let link = format!(
        "{}/invitations/{code}",
        cx.state.config.public_url.trim_end_matches('/')
    );
    html! {
        section.notice-box role="status" aria-labelledby="invite-title" {
            h2 id="invite-title" { (cx.t("admin-invite-made")) }
            p { (cx.tf("admin-invite-for", &[("party", party), ("role", cx.t(role_key(role)))])) }
            p { code.secret { (link) } }
            p.muted { (cx.t("admin-invite-help")) }
        }
    }
}

fn require_admin(cx: &Ctx) -> Result<(), WebError> {
    let s = cx.require()?;
    if s.principal.role.may(Action::ManageParties) {
        Ok(())
    } else {
        Err(WebError::forbidden(cx.lang))
    }
}

async fn render(
    cx: &Ctx,
    status: StatusCode,
    message: Option<Markup>,
) -> Result<Response, WebError> {
    require_admin(cx)?;
    let s = cx.require()?;
    let parties = cx
        .state
        .store
        .list_parties(None)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let body = html! {
        h1 { (cx.t("admin-title")) }
        @if let Some(m) = message { (m) }
        h2 { (cx.t("admin-parties")) }
        table {
            thead { tr {
                th scope="col" { (cx.t("admin-party-name")) }
                th scope="col" { (cx.t("admin-party-kind")) }
                th scope="col" { (cx.t("admin-party-domains")) }
                th scope="col" { (cx.t("admin-invite")) }
            } }
            tbody {
                @for p in &parties {
                    tr {
                        td { (p.name) }
                        td { (cx.t(kind_key(p.kind))) }
                        td { (p.domains.join(", ")) }
                        td {
                            form.inline method="post" action={ "/admin/parties/" (p.id) "/invitations" } {
                                input type="hidden" name="csrf" value=(s.csrf);
                                label for={ "role-" (p.id) } { (cx.t("admin-invite-role")) }
                                select id={ "role-" (p.id) } name="role" {
                                    @for r in roles_for(p.kind) {
                                        option value=(r.as_str()) { (cx.t(role_key(r))) }
                                    }
                                }
                                button type="submit" { (cx.t("admin-invite-go")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (cx.t("admin-new-party")) }
        form.stack method="post" action="/admin/parties" {
            input type="hidden" name="csrf" value=(s.csrf);
            div {
                label for="kind" { (cx.t("admin-party-kind")) }
                select id="kind" name="kind" {
                    @for k in PartyKind::ALL {
                        @if k != PartyKind::Authority {
                            option value=(k.as_str()) { (cx.t(kind_key(k))) }
                        }
                    }
                }
            }
            div {
                label for="name" { (cx.t("admin-party-name")) }
                input type="text" id="name" name="name" required maxlength="200";
            }
            div {
                label for="domains" { (cx.t("admin-party-domains")) }
                input type="text" id="domains" name="domains" aria-describedby="domains-help";
                small.muted id="domains-help" { (cx.t("admin-party-domains-help")) }
            }
            div { button type="submit" { (cx.t("admin-new-party-go")) } }
        }
    };
    let mut resp = (status, page(cx, cx.t("admin-title"), body)).into_response();
    // an invitation link is shown once: never from a cache
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn show(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let q = query(&uri);
    let message = (!q.get("created").is_empty()).then(|| {
        html! { p.notice-box role="status" { (cx.tf("admin-party-created", &[("name", q.get("created"))])) } }
    });
    render(&cx, StatusCode::OK, message).await
}

pub async fn create_party(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    require_admin(&cx)?;
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    let input = PartyInput {
        kind: form.get("kind").to_owned(),
        name: form.get("name").trim().to_owned(),
        contacts: vec![],
        domains: form
            .get("domains")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        handles: vec![],
    };
    let created = match NewParty::parse(input) {
        Ok(new) if new.kind != PartyKind::Authority => {
            cx.state.store.create_party(&s.principal.actor(), new).await
        }
        Ok(_) => Err(tapis_core::Error::invalid("kind", "there is one authority").into()),
        Err(e) => Err(e.into()),
    };
    match created {
        Ok(p) => Ok(Redirect::to(&format!(
            "/admin?created={}",
            crate::session::url_encode(&p.name)
        ))
        .into_response()),
        Err(tapis_store::Error::Domain(e)) => {
            let m = html! { p.error role="alert" { (e.to_string()) } };
            render(&cx, StatusCode::UNPROCESSABLE_ENTITY, Some(m)).await
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

/// Make an invitation and show its link once. Shared by the admin page
/// and a member's account page (inviting a colleague).
pub async fn invite(
    cx: &Ctx,
    party: PartyId,
    role: &str,
) -> Result<Result<(String, String, Role), Markup>, WebError> {
    let s = cx.require()?;
    let role = match Role::parse(role) {
        Ok(r) => r,
        Err(e) => return Ok(Err(html! { p.error role="alert" { (e.to_string()) } })),
    };
    let store = &cx.state.store;
    let name = store
        .get_party(party)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?
        .name;
    match store.create_invitation(&s.principal, party, role).await {
        Ok((_, code)) => Ok(Ok((code, name, role))),
        Err(tapis_store::Error::Domain(e)) => {
            Ok(Err(html! { p.error role="alert" { (e.to_string()) } }))
        }
        Err(tapis_store::Error::Conflict(m)) => Ok(Err(html! { p.error role="alert" { (m) } })),
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

pub async fn invite_to_party(
    cx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    require_admin(&cx)?;
    let form = checked_form(&cx, &body)?;
    let party = PartyId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    match invite(&cx, party, form.get("role")).await? {
        Ok((code, name, role)) => {
            let shown = invitation_box(&cx, &code, &name, role);
            render(&cx, StatusCode::CREATED, Some(shown)).await
        }
        Err(m) => render(&cx, StatusCode::CONFLICT, Some(m)).await,
    }
}
