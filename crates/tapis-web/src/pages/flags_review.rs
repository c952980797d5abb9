//! Flags in the browser, for the authority and the platforms: the review
//! queue (merged entries with every source; accept into a notice, merge
//! into an open one, reject with a reason), the trusted-flagger grants
//! (the admin grants, suspends, reinstates, revokes; the platform
//! confirms), and a flagger's yearly report with the issuers' figures
//! beside it for the authority.
//!
//! Each action calls the store method its API route calls
//! (`flag_queue`, `accept_flags`, `merge_flags`, `reject_flags`,
//! `grant_trusted_flagger`, `change_trusted_flagger`, `flagger_report`,
//! `issuer_figures`) with the session's principal.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::flag::{AcceptInput, Acceptance, parse_flag_ids};
use tapis_core::notice::LegalBasisInput;
use tapis_core::party::{PartyKind, bounded_text};
use tapis_core::role::Action;
use tapis_core::trusted::{GrantEvent, GrantInput, NewGrant};
use tapis_core::{NoticeId, PartyId, Timestamp};
use tapis_store::{QueueEntry, Session};

use super::checked_form;
use super::notices::may;
use crate::error::WebError;
use crate::layout::{badge, maybe_time, page, time};
use crate::session::{Ctx, Form, query};

fn store_err(cx: &Ctx) -> impl Fn(tapis_store::Error) -> WebError + '_ {
    move |e| WebError::from_store(cx.lang, e)
}

fn percent(cx: &Ctx, r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{} %", cx.lang.number((r * 100.0).round() as i64)),
        None => "—".into(),
    }
}

/// The queue may be read by authority staff and worked by officers.
fn may_read_queue(cx: &Ctx, s: &Session) -> Result<(), WebError> {
    if s.principal.role.reads_everything() {
        Ok(())
    } else {
        Err(WebError::forbidden(cx.lang))
    }
}

fn entry_forms(
    cx: &Ctx,
    s: &Session,
    n: usize,
    e: &QueueEntry,
    platforms: &[(PartyId, String)],
) -> Markup {
    let ids: Vec<String> = e.sources.iter().map(|x| x.flag_id.to_string()).collect();
    let ids = ids.join(",");
    html! {
        details {
            summary { (cx.t("queue-accept")) }
            form.stack method="post" action="/flags/queue/accept" aria-label=(cx.tf("queue-accept-label", &[("target", &e.normalized)])) {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="flag_ids" value=(ids);
                div {
                    label for={ "platform-" (n) } { (cx.t("col-platform")) }
                    select id={ "platform-" (n) } name="platform_id" {
                        option value="" { (cx.t("queue-platform-inferred")) }
                        @for (id, name) in platforms {
                            option value=(id.to_string()) selected[e.platform_id == Some(*id)] { (name) }
                        }
                    }
                }
                div {
                    label for={ "urgency-" (n) } { (cx.t("col-urgency")) }
                    select id={ "urgency-" (n) } name="urgency" {
                        option value="normal" { (cx.t("urgency-normal")) }
                        option value="urgent" { (cx.t("urgency-urgent")) }
                    }
                }
                div {
                    label for={ "legal-ref-" (n) } { (cx.t("compose-legal-ref")) }
                    input type="text" id={ "legal-ref-" (n) } name="legal_reference" required maxlength="500";
                }
                div {
                    label for={ "legal-text-" (n) } { (cx.t("compose-legal-text")) }
                    textarea id={ "legal-text-" (n) } name="legal_text" required maxlength="4000" {}
                }
                div {
                    label for={ "explanation-" (n) } { (cx.t("compose-explanation")) }
                    textarea id={ "explanation-" (n) } name="explanation" required maxlength="4000" {}
                }
                div { button type="submit" { (cx.t("queue-accept-go")) } }
            }
        }
        details {
            summary { (cx.t("queue-merge")) }
            form.stack method="post" action="/flags/queue/merge" {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="flag_ids" value=(ids);
                div {
                    label for={ "notice-" (n) } { (cx.t("queue-merge-notice")) }
                    input type="text" id={ "notice-" (n) } name="notice_id" required maxlength="64" autocomplete="off" spellcheck="false";
                }
                div { button type="submit" { (cx.t("queue-merge-go")) } }
            }
        }
        details {
            summary { (cx.t("queue-reject")) }
            form.stack method="post" action="/flags/queue/reject" {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="flag_ids" value=(ids);
                div {
                    label for={ "reason-" (n) } { (cx.t("flag-reason")) }
                    textarea id={ "reason-" (n) } name="reason" required maxlength="4000" {}
                }
                div { button type="submit" { (cx.t("queue-reject-go")) } }
            }
        }
    }
}

async fn queue_page(cx: &Ctx, s: &Session, message: Option<String>) -> Result<Markup, WebError> {
    let store = &cx.state.store;
    let entries = store.flag_queue(50, 3).await.map_err(store_err(cx))?;
    let health = store.flag_queue_health(7).await.map_err(store_err(cx))?;
    let platforms: Vec<(PartyId, String)> = store
        .list_parties(Some(PartyKind::Platform))
        .await
        .map_err(store_err(cx))?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let names: HashMap<PartyId, &str> = platforms.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let works = s.principal.role.may(Action::TriageFlags);
    let oldest = health
        .oldest_waiting_secs
        .map(|x| cx.lang.number(x / 3600))
        .unwrap_or_else(|| "—".into());
    Ok(html! {
        h1 { (cx.t("queue-title")) }
        p.lead { (cx.t("queue-lead")) }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        dl.facts {
            dt { (cx.t("queue-waiting")) } dd { (cx.lang.number(health.waiting as i64)) }
            dt { (cx.t("queue-oldest-hours")) } dd { (oldest) }
            @for r in &health.reviewers {
                dt { (r.person) } dd { (cx.tf("queue-reviews-per-day", &[("n", &format!("{:.1}", r.per_day))])) }
            }
        }
        @if entries.is_empty() {
            p.muted { (cx.t("queue-empty")) }
        }
        @for (n, e) in entries.iter().enumerate() {
            section.card {
                h2 { (cx.t(&format!("kind-{}", e.kind.as_str()))) " " code { (e.normalized) } }
                p {
                    (cx.t("col-category")) ": " (e.category) " · "
                    (cx.tf("queue-sources-n", &[("n", &e.independent_sources.to_string())])) " · "
                    (cx.t("col-platform")) ": "
                    @match e.platform_id.and_then(|p| names.get(&p)) {
                        Some(name) => { (name) }
                        None => { span.muted { (cx.t("queue-platform-unknown")) } }
                    }
                }
                table {
                    thead { tr {
                        th { (cx.t("queue-source")) } th { (cx.t("report-reference")) } th { (cx.t("flag-reasons")) }
                        th { (cx.t("queue-track-record")) } th { (cx.t("flag-received")) }
                    } }
                    tbody {
                        @for src in &e.sources {
                            tr {
                                td {
                                    @match &src.party_name {
                                        Some(name) if src.source_kind == "flagger" => { (name) }
                                        _ => { (cx.t("queue-public-reporter")) }
                                    }
                                }
                                td { code { (src.reference) } }
                                td { (src.reasons) }
                                td { (percent(cx, Some(src.track_record))) }
                                td { (time(cx, src.received_at)) }
                            }
                        }
                    }
                }
                @if works { (entry_forms(cx, s, n, e, &platforms)) }
            }
        }
    })
}

/// `GET /flags/queue`: the review queue.
pub async fn queue(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may_read_queue(&cx, s)?;
    let body = queue_page(&cx, s, None).await?;
    Ok(page(&cx, cx.t("queue-title"), body).into_response())
}

async fn refused(
    cx: &Ctx,
    s: &Session,
    status: StatusCode,
    why: String,
) -> Result<Response, WebError> {
    let body = queue_page(cx, s, Some(cx.tf("action-refused", &[("why", &why)]))).await?;
    Ok((status, page(cx, cx.t("queue-title"), body)).into_response())
}

fn ids_of(form: &Form) -> Vec<String> {
    form.get("flag_ids")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a refused review shows: the store's domain and conflict errors on
/// the page (422/409), anything else as an error page.
async fn after(
    cx: &Ctx,
    s: &Session,
    r: Result<String, tapis_store::Error>,
) -> Result<Response, WebError> {
    match r {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        Err(e @ tapis_store::Error::Domain(tapis_core::Error::IllegalTransition { .. })) => {
            refused(cx, s, StatusCode::CONFLICT, e.to_string()).await
        }
        Err(e @ tapis_store::Error::Domain(_)) => {
            refused(cx, s, StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await
        }
        Err(e @ tapis_store::Error::Conflict(_)) => {
            refused(cx, s, StatusCode::CONFLICT, e.to_string()).await
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

/// `POST /flags/queue/accept`: the entry's flags become one notice.
pub async fn accept(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::TriageFlags)?;
    let platform = form.get("platform_id").trim();
    let input = AcceptInput {
        flag_ids: ids_of(&form),
        platform_id: (!platform.is_empty()).then(|| platform.to_owned()),
        category: None,
        urgency: form.get("urgency").to_owned(),
        legal_basis: LegalBasisInput {
            reference: form.get("legal_reference").to_owned(),
            text: form.get("legal_text").to_owned(),
        },
        explanation: form.get("explanation").to_owned(),
    };
    let acceptance = match Acceptance::parse(input, &cx.state.taxonomy) {
        Ok(a) => a,
        Err(e) => return refused(&cx, s, StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
    };
    let r = cx
        .state
        .store
        .accept_flags(&s.principal, acceptance)
        .await
        .map(|n| format!("/notices/{}", n.id));
    after(&cx, s, r).await
}

/// `POST /flags/queue/merge`: into an open notice naming the targets.
pub async fn merge(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::TriageFlags)?;
    let parsed = parse_flag_ids(&ids_of(&form)).and_then(|ids| {
        NoticeId::parse(form.get("notice_id").trim())
            .map(|n| (ids, n))
            .map_err(|_| tapis_core::Error::invalid("notice_id", "not a valid notice id"))
    });
    let (ids, notice) = match parsed {
        Ok(x) => x,
        Err(e) => return refused(&cx, s, StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
    };
    let r = cx
        .state
        .store
        .merge_flags(&s.principal, &ids, notice)
        .await
        .map(|_| "/flags/queue".to_owned());
    after(&cx, s, r).await
}

/// `POST /flags/queue/reject`: with a reason the flaggers read.
pub async fn reject(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::TriageFlags)?;
    let parsed = parse_flag_ids(&ids_of(&form))
        .and_then(|ids| bounded_text("reason", form.get("reason"), 1, 4000).map(|r| (ids, r)));
    let (ids, reason) = match parsed {
        Ok(x) => x,
        Err(e) => return refused(&cx, s, StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
    };
    let r = cx
        .state
        .store
        .reject_flags(&s.principal, &ids, &reason)
        .await
        .map(|_| "/flags/queue".to_owned());
    after(&cx, s, r).await
}

// ---- trusted-flagger grants ---------------------------------------------

async fn grants_page(cx: &Ctx, s: &Session, message: Option<String>) -> Result<Markup, WebError> {
    let store = &cx.state.store;
    let grants = store
        .list_trusted_flaggers(&s.principal)
        .await
        .map_err(store_err(cx))?;
    let role = s.principal.role;
    let manages = role.may(Action::ManageTrustedFlaggers);
    let confirms = role.may(Action::ConfirmTrustedFlagger);
    // names: staff know every party; others see their own grants only,
    // whose other side they may know by id
    let parties = if role.reads_everything() {
        store.list_parties(None).await.map_err(store_err(cx))?
    } else {
        vec![]
    };
    let name = |id: PartyId| -> String {
        parties
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let flaggers: Vec<_> = parties
        .iter()
        .filter(|p| p.kind == PartyKind::Flagger)
        .collect();
    let platforms: Vec<_> = parties
        .iter()
        .filter(|p| p.kind == PartyKind::Platform)
        .collect();
    Ok(html! {
        h1 { (cx.t("trusted-title")) }
        p.lead { (cx.t("trusted-lead")) }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        @if grants.is_empty() { p.muted { (cx.t("trusted-none")) } }
        @else {
            table {
                thead { tr {
                    th { (cx.t("trusted-flagger")) } th { (cx.t("col-platform")) } th { (cx.t("trusted-scope")) }
                    th { (cx.t("col-state")) } th { (cx.t("trusted-granted")) } th { (cx.t("trusted-confirmed")) } th { (cx.t("appeal-actions")) }
                } }
                tbody {
                    @for g in &grants {
                        tr {
                            td {
                                @if role.reads_everything() {
                                    a href={ "/flaggers/" (g.flagger_id.to_string()) "/report" } { (name(g.flagger_id)) }
                                } @else { (name(g.flagger_id)) }
                            }
                            td { (name(g.platform_id)) }
                            td {
                                (g.categories.join(", "))
                                @if !g.item_kinds.is_empty() {
                                    br; small { @for k in &g.item_kinds { (cx.t(&format!("kind-{}", k.as_str()))) " " } }
                                }
                            }
                            td { (badge(cx, g.state.as_str())) @if let Some(r) = &g.reason { br; small { (r) } } }
                            td { (time(cx, g.granted_at)) }
                            td { (maybe_time(cx, g.confirmed_at)) }
                            td {
                                @if confirms && g.state.as_str() == "granted" {
                                    form.inline method="post" action={ "/trusted-flaggers/" (g.id) "/confirm" } {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        button type="submit" { (cx.t("trusted-confirm")) }
                                    }
                                }
                                @if manages && g.state.as_str() != "revoked" {
                                    form.stack method="post" action={ "/trusted-flaggers/" (g.id) "/status" } {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        div {
                                            label for={ "action-" (g.id) } { (cx.t("trusted-change")) }
                                            select id={ "action-" (g.id) } name="action" {
                                                option value="suspend" { (cx.t("trusted-suspend")) }
                                                option value="reinstate" { (cx.t("trusted-reinstate")) }
                                                option value="revoke" { (cx.t("trusted-revoke")) }
                                            }
                                        }
                                        div {
                                            label for={ "why-" (g.id) } { (cx.t("flag-reason")) }
                                            input type="text" id={ "why-" (g.id) } name="reason" required maxlength="4000";
                                        }
                                        div { button type="submit" { (cx.t("trusted-change-go")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if manages {
            h2 { (cx.t("trusted-grant")) }
            form.stack method="post" action="/trusted-flaggers" {
                input type="hidden" name="csrf" value=(s.csrf);
                div {
                    label for="flagger_id" { (cx.t("trusted-flagger")) }
                    select id="flagger_id" name="flagger_id" required {
                        @for p in &flaggers { option value=(p.id.to_string()) { (p.name) } }
                    }
                }
                div {
                    label for="platform_id" { (cx.t("col-platform")) }
                    select id="platform_id" name="platform_id" required {
                        @for p in &platforms { option value=(p.id.to_string()) { (p.name) } }
                    }
                }
                fieldset {
                    legend { (cx.t("trusted-categories")) }
                    @for c in &cx.state.taxonomy.categories {
                        div.check {
                            input type="checkbox" id={ "cat-" (c.id) } name="category" value=(c.id);
                            " " label for={ "cat-" (c.id) } { (c.label) }
                        }
                    }
                }
                fieldset {
                    legend { (cx.t("trusted-kinds")) }
                    @for k in ["url", "domain", "platform_account", "platform_channel", "content_hash"] {
                        div.check {
                            input type="checkbox" id={ "kind-" (k) } name="item_kind" value=(k);
                            " " label for={ "kind-" (k) } { (cx.t(&format!("kind-{k}"))) }
                        }
                    }
                    p.muted { small { (cx.t("trusted-kinds-help")) } }
                }
                div { button type="submit" { (cx.t("trusted-grant-go")) } }
            }
        }
    })
}

/// `GET /trusted-flaggers`.
pub async fn grants(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    let body = grants_page(&cx, s, None).await?;
    Ok(page(&cx, cx.t("trusted-title"), body).into_response())
}

async fn grant_after(
    cx: &Ctx,
    s: &Session,
    r: Result<tapis_store::TrustedGrant, tapis_store::Error>,
) -> Result<Response, WebError> {
    let status = match &r {
        Ok(_) => return Ok(Redirect::to("/trusted-flaggers").into_response()),
        Err(tapis_store::Error::Domain(tapis_core::Error::IllegalTransition { .. })) => {
            StatusCode::CONFLICT
        }
        Err(tapis_store::Error::Domain(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        Err(tapis_store::Error::Conflict(_)) => StatusCode::CONFLICT,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    match r {
        Err(e) if status != StatusCode::INTERNAL_SERVER_ERROR => {
            let msg = cx.tf("action-refused", &[("why", &e.to_string())]);
            let body = grants_page(cx, s, Some(msg)).await?;
            Ok((status, page(cx, cx.t("trusted-title"), body)).into_response())
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
        Ok(_) => Ok(Redirect::to("/trusted-flaggers").into_response()),
    }
}

/// `POST /trusted-flaggers`: the admin grants status for a scope.
pub async fn grant(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::ManageTrustedFlaggers)?;
    let all = |k: &str| -> Vec<String> {
        form.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .take(100)
            .collect()
    };
    let input = GrantInput {
        flagger_id: form.get("flagger_id").to_owned(),
        platform_id: form.get("platform_id").to_owned(),
        categories: all("category"),
        item_kinds: all("item_kind"),
    };
    let r = match NewGrant::parse(input, &cx.state.taxonomy) {
        Ok(new) => {
            cx.state
                .store
                .grant_trusted_flagger(&s.principal, new)
                .await
        }
        Err(e) => Err(tapis_store::Error::Domain(e)),
    };
    grant_after(&cx, s, r).await
}

fn grant_id(cx: &Ctx, raw: &str) -> Result<String, WebError> {
    let ok = raw.len() == 36 && raw.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then(|| raw.to_ascii_lowercase())
        .ok_or(WebError::not_found(cx.lang))
}

/// `POST /trusted-flaggers/{id}/confirm`: the platform, for itself.
pub async fn confirm(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    may(&cx, s, Action::ConfirmTrustedFlagger)?;
    let id = grant_id(&cx, &id)?;
    let r = cx
        .state
        .store
        .change_trusted_flagger(&s.principal, &id, GrantEvent::Confirm, None)
        .await;
    grant_after(&cx, s, r).await
}

/// `POST /trusted-flaggers/{id}/status`: suspend, reinstate or revoke,
/// with a reason on the record.
pub async fn change(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::ManageTrustedFlaggers)?;
    let id = grant_id(&cx, &id)?;
    let event = match form.get("action") {
        "suspend" => Ok(GrantEvent::Suspend),
        "reinstate" => Ok(GrantEvent::Reinstate),
        "revoke" => Ok(GrantEvent::Revoke),
        _ => Err(tapis_core::Error::invalid(
            "action",
            "use suspend, reinstate or revoke",
        )),
    };
    let r = match event
        .and_then(|ev| bounded_text("reason", form.get("reason"), 1, 4000).map(|r| (ev, r)))
    {
        Ok((ev, reason)) => {
            cx.state
                .store
                .change_trusted_flagger(&s.principal, &id, ev, Some(&reason))
                .await
        }
        Err(e) => Err(tapis_store::Error::Domain(e)),
    };
    grant_after(&cx, s, r).await
}

// ---- reports --------------------------------------------------------------

fn year_of(cx: &Ctx, uri: &axum::http::Uri) -> Result<i32, WebError> {
    let q = query(uri);
    let raw = q.get("year").trim();
    let year = if raw.is_empty() {
        cx.state
            .store
            .now()
            .to_string()
            .get(..4)
            .and_then(|y| y.parse().ok())
            .unwrap_or(2000)
    } else {
        raw.parse().unwrap_or(0)
    };
    if (2000..=2100).contains(&year) {
        Ok(year)
    } else {
        Err(WebError::new(
            cx.lang,
            StatusCode::BAD_REQUEST,
            "error-400-title",
            cx.t("report-bad-year").to_owned(),
        ))
    }
}

fn year_bounds(year: i32) -> (Timestamp, Timestamp) {
    let at = |y: i32| {
        Timestamp::parse("year", &format!("{y:04}-01-01T00:00:00Z"))
            .expect("a year between 2000 and 2101 is a valid time")
    };
    (at(year), at(year + 1))
}

/// `GET /flaggers/{id}/report?year=`: the flagger itself or authority
/// staff; anyone else a 404.
pub async fn flagger_report(
    cx: Ctx,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    let id = PartyId::parse(id.trim()).map_err(|_| WebError::not_found(cx.lang))?;
    if !s.principal.role.reads_everything() && id != s.principal.party_id {
        return Err(WebError::not_found(cx.lang));
    }
    let year = year_of(&cx, &uri)?;
    let (from, to) = year_bounds(year);
    let r = cx
        .state
        .store
        .flagger_report(id, year, from, to, cx.state.accuracy)
        .await
        .map_err(store_err(&cx))?;
    let f = &r.figures;
    let n = |x: u64| cx.lang.number(x as i64);
    let body = html! {
        h1 { (cx.tf("flagger-report-heading", &[("name", &r.name), ("year", &year.to_string())])) }
        p.lead { (cx.t("flagger-report-lead")) }
        p {
            a href={ "?year=" (year - 1) } { (year - 1) } " · "
            a href={ "?year=" (year + 1) } { (year + 1) } " · "
            a href={ "/api/v1/flaggers/" (r.flagger_id.to_string()) "/report?year=" (year) } { "JSON" }
        }
        @if r.review_needed {
            p.error role="alert" { (cx.tf("flagger-review-needed", &[
                ("rate", &percent(&cx, r.window.acceptance_rate)),
                ("threshold", &percent(&cx, Some(r.policy.threshold))),
                ("days", &r.policy.window_days.to_string())])) }
        }
        table {
            tbody {
                tr { th { (cx.t("fr-flags")) } td { (n(f.flags)) } }
                tr { th { (cx.t("fr-received")) } td { (n(f.received)) } }
                tr { th { (cx.t("fr-accepted")) } td { (n(f.accepted)) } }
                tr { th { (cx.t("fr-merged")) } td { (n(f.merged)) } }
                tr { th { (cx.t("fr-rejected")) } td { (n(f.rejected)) } }
                tr { th { (cx.t("fr-acceptance")) } td { (percent(&cx, r.acceptance_rate)) } }
                tr { th { (cx.t("fr-items-actioned")) } td { (n(f.items_actioned)) } }
                tr { th { (cx.t("fr-items-rejected")) } td { (n(f.items_rejected)) } }
                tr { th { (cx.t("fr-items-other")) } td { (n(f.items_other)) } }
                tr { th { (cx.t("fr-items-pending")) } td { (n(f.items_pending)) } }
                tr { th { (cx.t("fr-action-rate")) } td { (percent(&cx, r.platform_action_rate)) } }
                tr { th { (cx.tf("fr-window", &[("days", &r.policy.window_days.to_string())])) }
                     td { (percent(&cx, r.window.acceptance_rate)) " (" (n(r.window.figures.reviewed())) ")" } }
            }
        }
        h2 { (cx.t("trusted-title")) }
        @if r.trusted_flagger_grants.is_empty() { p.muted { (cx.t("trusted-none")) } }
        ul {
            @for g in &r.trusted_flagger_grants {
                li { (g.categories.join(", ")) " — " (badge(&cx, g.state.as_str())) " " (time(&cx, g.granted_at)) }
            }
        }
    };
    Ok(page(&cx, cx.t("flagger-report-title"), body).into_response())
}

/// `GET /issuers/report?year=`: the authority's own issuers' figures
/// (authority staff).
pub async fn issuer_report(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let s = cx.require()?;
    if !s.principal.role.reads_everything() {
        return Err(WebError::forbidden(cx.lang));
    }
    let year = year_of(&cx, &uri)?;
    let (from, to) = year_bounds(year);
    let rows = cx
        .state
        .store
        .issuer_figures(from, to)
        .await
        .map_err(store_err(&cx))?;
    let n = |x: u64| cx.lang.number(x as i64);
    let body = html! {
        h1 { (cx.tf("issuers-heading", &[("year", &year.to_string())])) }
        p.lead { (cx.t("issuers-lead")) }
        @if rows.is_empty() { p.muted { (cx.t("issuers-none")) } }
        @else {
            table {
                thead { tr {
                    th { (cx.t("issuers-issuer")) } th { (cx.t("nav-notices")) } th { (cx.t("fr-items-actioned")) }
                    th { (cx.t("fr-items-rejected")) } th { (cx.t("issuers-withdrawn")) } th { (cx.t("fr-items-pending")) }
                    th { (cx.t("fr-action-rate")) } th { (cx.t("issuers-disputes")) } th { (cx.t("issuers-appeals")) }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { (r.issuer) } td { (n(r.notices)) } td { (n(r.items_actioned)) } td { (n(r.items_rejected)) }
                            td { (n(r.items_withdrawn)) } td { (n(r.items_pending)) } td { (percent(&cx, r.platform_action_rate)) }
                            td { (n(r.disputes_withdrawn)) " / " (n(r.disputes)) } td { (n(r.appeals_upheld)) " / " (n(r.appeals)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&cx, cx.t("issuers-title"), body).into_response())
}
