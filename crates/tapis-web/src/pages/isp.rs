//! The ISP page: orders in force and coming (with their effective
//! times), the zone serial and this ISP's sync record (what
//! `GET /api/v1/compliance` says for it: acknowledgement, SOA polls,
//! transfers, NOTIFY answers, probes), its transfer settings (as
//! `GET /api/v1/parties/{id}/resolvers`, never the secret), the list
//! exports its machines fetch, a form that acknowledges the serial
//! its resolvers enforce (`Store::ack_serial`, as
//! `POST /api/v1/rpz/acknowledge`), and TSIG key rotation: a new key
//! shown once, the previous one working until its grace ends, and a way to
//! retire it sooner (`Store::rotate_tsig_key`,
//! `Store::retire_previous_tsig_key`, as the API's
//! `/api/v1/parties/{id}/tsig-key/...`). Only the ISP's own people see
//! these forms; the store refuses anyone else.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::order::OrderState;
use tapis_core::party::PartyKind;
use tapis_core::role::Action;
use tapis_store::{IspResolvers, OrderQuery, Session, SyncEvent};

use super::checked_form;
use super::notices::may;
use crate::error::WebError;
use crate::layout::{badge, maybe_time, page, time};
use crate::session::Ctx;

const LIMIT: u32 = 200;

fn sync_event(cx: &Ctx, e: &Option<SyncEvent>) -> Markup {
    match e {
        None => html! { span.muted { (cx.t("isp-never")) } },
        Some(e) => html! {
            (e.kind) " · " (cx.t("isp-serial")) " " (e.serial)
            @if let Some(f) = e.from_serial { " (" (cx.tf("isp-from-serial", &[("n", &f.to_string())])) ")" }
            " · " code { (e.peer) } " · " (time(cx, e.at))
            @if !e.complete { " · " span.overdue { (cx.t("isp-incomplete")) } }
            @if !e.detail.is_empty() { " · " (e.detail) }
        },
    }
}

pub async fn show(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadCompliance)?;
    if s.principal.party_kind != PartyKind::Isp {
        // the authority sees every ISP on its dashboard
        return Err(WebError::forbidden(cx.lang));
    }
    Ok(render(&cx, s, None).await?.into_response())
}

async fn render(
    cx: &Ctx,
    s: &Session,
    message: Option<(bool, String)>,
) -> Result<axum::response::Html<String>, WebError> {
    render_with(cx, s, message, None).await
}

/// The page; `new_key`: a key just made, its secret shown this once.
async fn render_with(
    cx: &Ctx,
    s: &Session,
    message: Option<(bool, String)>,
    new_key: Option<(&IspResolvers, &str)>,
) -> Result<axum::response::Html<String>, WebError> {
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let party = s.principal.party_id;
    let orders = store
        .query_orders(&OrderQuery {
            states: vec![
                OrderState::InForce,
                OrderState::Scheduled,
                OrderState::Approved,
            ],
            sort: "effective".into(),
            ascending: true,
            offset: 0,
            limit: LIMIT,
        })
        .await
        .map_err(err)?;
    let serial = store.rpz_serial().await.map_err(err)?;
    let me = store
        .compliance()
        .await
        .map_err(err)?
        .into_iter()
        .find(|c| c.party_id == party.to_string());
    let resolvers = store.get_isp_resolvers(party).await.map_err(err)?;
    let may_ack = s.principal.role.may(Action::AcknowledgeSerial);
    let body = html! {
        h1 { (cx.t("isp-title")) }
        @if let Some((ok, m)) = &message {
            @if *ok { p.notice-box role="status" { (m) } } @else { p.error role="alert" { (m) } }
        }
        div.grid {
            div.card { div.n { (serial) } div { (cx.t("dash-serial")) } }
            @if let Some(c) = &me {
                div.card.alert[c.status != "current"] {
                    div.n { @if let Some(a) = c.acknowledged_serial { (a) } @else { "—" } }
                    div { (cx.t("col-acked-serial")) " · " (badge(cx, c.status)) }
                }
                div.card.alert[c.zone_sync.status != "in_sync"] {
                    div.n { @if let Some(h) = c.zone_sync.held_serial { (h) } @else { "—" } }
                    div { (cx.t("isp-held-serial")) " · " (sync_badge(cx, c.zone_sync.status)) }
                }
            }
        }
        h2 { (cx.t("isp-orders")) }
        p.muted { (cx.t("isp-orders-help")) }
        (super::orders::table(cx, &orders, None))

        h2 { (cx.t("isp-sync")) }
        @match &me {
            None => p.muted { (cx.t("empty")) },
            Some(c) => {
                dl.facts {
                    dt { (cx.t("col-acked-at")) } dd { (maybe_time(cx, c.acknowledged_at)) }
                    dt { (cx.t("isp-held-since")) } dd { (maybe_time(cx, c.zone_sync.held_since)) }
                    dt { (cx.t("isp-pickup")) } dd {
                        @if let Some(ms) = c.zone_sync.pickup_ms { (cx.lang.duration(ms)) } @else { span.muted { "—" } }
                    }
                    @if let Some(b) = c.zone_sync.behind_since { dt { (cx.t("isp-behind-since")) } dd { span.overdue { (time(cx, b)) } } }
                    dt { (cx.t("isp-last-poll")) } dd { (sync_event(cx, &c.zone_sync.last_poll)) }
                    dt { (cx.t("isp-last-transfer")) } dd { (sync_event(cx, &c.zone_sync.last_transfer)) }
                    dt { (cx.t("isp-last-notify")) } dd { (sync_event(cx, &c.zone_sync.last_notify)) }
                }
                h3 { (cx.t("isp-probes")) }
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { (cx.t("isp-resolver")) }
                        th.num scope="col" { (cx.t("isp-serial")) }
                        th.num scope="col" { (cx.t("isp-enforced")) }
                        th.num scope="col" { (cx.t("isp-not-enforced")) }
                        th.num scope="col" { (cx.t("isp-overblocked")) }
                        th.num scope="col" { (cx.t("isp-unreachable")) }
                        th scope="col" { (cx.t("isp-probed-at")) }
                    } }
                    tbody {
                        @for p in &c.probes {
                            tr {
                                td { code { (p.resolver) } }
                                td.num { (p.serial) }
                                td.num { (p.enforced) }
                                td.num { @if p.not_enforced > 0 { span.overdue { (p.not_enforced) } } @else { (p.not_enforced) } }
                                td.num { (p.overblocked) }
                                td.num { (p.unreachable) }
                                td { (time(cx, p.probed_at)) }
                            }
                        }
                        @if c.probes.is_empty() { tr { td colspan="7" { (cx.t("isp-no-probes")) } } }
                    }
                } }
            }
        }

        @if may_ack && serial < 1 {
            p.muted { (cx.t("isp-nothing-to-ack")) }
        } @else if may_ack {
            form.stack method="post" action="/isp/acknowledge" aria-labelledby="h-ack" {
                h2 id="h-ack" { (cx.t("isp-ack")) }
                p { (cx.t("isp-ack-help")) }
                input type="hidden" name="csrf" value=(s.csrf);
                div {
                    label for="ack-serial" { (cx.t("isp-serial")) }
                    input type="number" id="ack-serial" name="serial" min="1" max=(serial) value=(serial) required;
                }
                div { button type="submit" { (cx.t("isp-ack-go")) } }
            }
        }

        @if let Some((k, secret)) = new_key {
            section.notice-box role="status" aria-labelledby="h-new-key" {
                h2 id="h-new-key" { (cx.t("isp-key-new-title")) }
                p { (cx.t("isp-key-new-help")) }
                dl.facts {
                    dt { (cx.t("isp-tsig-name")) } dd { code { (k.tsig_key_name) } " (" (k.tsig_algorithm) ")" }
                    dt { (cx.t("isp-key-secret")) } dd { code.secret { (secret) } }
                }
                pre.command tabindex="0" aria-label=(cx.t("isp-key-bind")) {
                    "key \"" (k.tsig_key_name.trim_end_matches('.')) "\" {\n    algorithm " (k.tsig_algorithm) ";\n    secret \"" (secret) "\";\n};"
                }
            }
        }
        h2 { (cx.t("isp-transfer")) }
        @match &resolvers {
            None => p { (cx.t("isp-no-resolvers")) },
            Some(r) => dl.facts {
                dt { (cx.t("isp-tsig-name")) } dd { code { (r.tsig_key_name) } " (" (r.tsig_algorithm) ")" }
                dt { (cx.t("isp-key-generation")) } dd {
                    (r.key_generation)
                    @if let Some(at) = r.tsig_created_at { " · " (cx.t("isp-key-made")) " " (time(cx, at)) }
                }
                dt { (cx.t("isp-key-previous")) } dd {
                    @match (&r.previous_tsig_key_name, r.previous_valid_until) {
                        (Some(n), Some(until)) => {
                            code { (n) } " · " (cx.t("isp-key-stops")) " " span.overdue { (time(cx, until)) }
                        }
                        _ => span.muted { (cx.t("isp-key-no-previous")) },
                    }
                }
                dt { (cx.t("isp-resolvers")) } dd { (list(cx, &r.resolvers)) }
                dt { (cx.t("isp-notify")) } dd { (list(cx, &r.notify)) }
                dt { (cx.t("isp-allow-transfer")) } dd { (list(cx, &r.allow_transfer_from)) }
            },
        }
        p.muted { (cx.t("isp-settings-api")) " " code { "PUT /api/v1/parties/" (party) "/resolvers" } }
        @if let Some(r) = &resolvers && s.principal.role.may(Action::ManageResolvers) {
            form.stack method="post" action="/isp/tsig-key/rotate" aria-labelledby="h-rotate" {
                h3 id="h-rotate" { (cx.t("isp-key-rotate")) }
                p { (cx.tf("isp-key-rotate-help", &[("duration", &cx.lang.duration(store.tsig_grace_secs() * 1000))])) }
                input type="hidden" name="csrf" value=(s.csrf);
                div { button type="submit" { (cx.t("isp-key-rotate-go")) } }
            }
            @if r.previous_tsig_key_name.is_some() {
                form.stack method="post" action="/isp/tsig-key/retire" aria-labelledby="h-retire" {
                    h3 id="h-retire" { (cx.t("isp-key-retire")) }
                    p { (cx.t("isp-key-retire-help")) }
                    input type="hidden" name="csrf" value=(s.csrf);
                    div { button type="submit" { (cx.t("isp-key-retire-go")) } }
                }
            }
        }
        p.muted { (cx.t("isp-tsig-rotation")) " " code { "POST /api/v1/parties/" (party) "/tsig-key/rotate" } }

        h2 { (cx.t("isp-exports")) }
        p { (cx.t("isp-exports-help")) }
        ul {
            @for (path, key) in [("/api/v1/blocklist.rpz", "isp-export-rpz"), ("/api/v1/blocklist/domains.txt", "isp-export-domains"), ("/api/v1/blocklist/hosts", "isp-export-hosts")] {
                li { (cx.t(key)) ": " code { (path) } }
            }
        }
        pre.command tabindex="0" aria-label=(cx.t("isp-exports")) { "curl -H \"Authorization: Bearer $TAPIS_TOKEN\" -H 'If-None-Match: \"rpz-" (serial) "\"' https://…/api/v1/blocklist.rpz" }
    };
    Ok(page(cx, cx.t("isp-title"), body))
}

/// The zone-sync status (`in_sync`, `behind`, `never`: no transfer seen).
fn sync_badge(cx: &Ctx, status: &str) -> Markup {
    let (tone, key) = match status {
        "in_sync" => ("green", "isp-sync-in_sync"),
        "behind" => ("red", "isp-sync-behind"),
        _ => ("amber", "isp-sync-never"),
    };
    html! { span class={ "badge " (tone) } { (cx.t(key)) } }
}

fn list(cx: &Ctx, items: &[String]) -> Markup {
    html! {
        @if items.is_empty() { span.muted { (cx.t("isp-none")) } }
        @for (i, a) in items.iter().enumerate() { @if i > 0 { ", " } code { (a) } }
    }
}

pub async fn acknowledge(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::AcknowledgeSerial)?;
    let Ok(serial) = form.get("serial").trim().parse::<i64>() else {
        let msg = cx.tf("action-refused", &[("why", cx.t("isp-bad-serial"))]);
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&cx, s, Some((false, msg))).await?,
        )
            .into_response());
    };
    use tapis_store::Error as E;
    match cx.state.store.ack_serial(&s.principal, serial).await {
        Ok(_) => Ok(Redirect::to("/isp").into_response()),
        Err(e @ (E::Conflict(_) | E::Domain(tapis_core::Error::Invalid { .. }))) => {
            let msg = cx.tf("action-refused", &[("why", &e.to_string())]);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&cx, s, Some((false, msg))).await?,
            )
                .into_response())
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

/// Refused rotations and retirements come back to the page with the
/// reason (422); who may not is the store's to say (403 or 404).
async fn refused(cx: &Ctx, s: &Session, e: tapis_store::Error) -> Result<Response, WebError> {
    use tapis_store::Error as E;
    match e {
        e @ (E::Conflict(_) | E::Domain(tapis_core::Error::Invalid { .. })) => {
            let msg = cx.tf("action-refused", &[("why", &e.to_string())]);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(cx, s, Some((false, msg))).await?,
            )
                .into_response())
        }
        e => Err(WebError::from_store(cx.lang, e)),
    }
}

/// A new TSIG key: the page again, with the new secret shown this once
/// (pages are never cached: `Cache-Control: no-store`).
pub async fn rotate_key(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    let party = s.principal.party_id;
    match cx.state.store.rotate_tsig_key(&s.principal, party).await {
        Ok((view, secret)) => Ok(render_with(&cx, s, None, Some((&view, &secret)))
            .await?
            .into_response()),
        Err(e) => refused(&cx, s, e).await,
    }
}

/// The previous key ends now.
pub async fn retire_key(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    let party = s.principal.party_id;
    match cx
        .state
        .store
        .retire_previous_tsig_key(&s.principal, party)
        .await
    {
        Ok(_) => Ok(Redirect::to("/isp").into_response()),
        Err(e) => refused(&cx, s, e).await,
    }
}
