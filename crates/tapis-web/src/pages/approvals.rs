//! Approvals: what waits for a second person. Open escalations (notices
//! whose ladder ran out) and draft orders, for approvers to decide and
//! officers to read; one escalation's page with the approver's decision
//! (propose an order or dismiss, with a note) and the officer's form that
//! drafts an order from it.
//!
//! The decisions are the API's: `Store::decide_escalation` (as
//! `POST /api/v1/escalations/{id}/decision`, a person only), and the draft
//! is core's `escalation::draft_order` then `Store::create_order` (as
//! `POST /api/v1/escalations/{id}/draft-order`). A draft goes to the
//! order's page, where another person approves it.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::EscalationId;
use tapis_core::escalation::{
    DraftRequest, EscalationDecision, EscalationState, NoDnsTarget, draft_order,
};
use tapis_core::order::{NewOrder, OrderLimits, OrderState};
use tapis_core::role::Action;
use tapis_store::{Escalation, Notice, OrderQuery, Session};

use super::checked_form;
use super::notices::{may, short};
use super::table::{ListState, PAGE};
use crate::error::WebError;
use crate::layout::{from_local_input, local_input, page, time};
use crate::session::{Ctx, Form, query};

/// One open escalation with its notice (and the notice's platform).
struct Waiting {
    esc: Escalation,
    notice: Notice,
    platform: String,
}

async fn waiting(cx: &Ctx) -> Result<Vec<Waiting>, WebError> {
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let parties = store.list_parties(None).await.map_err(err)?;
    let mut out = Vec::new();
    for esc in store
        .list_escalations(Some(EscalationState::Open))
        .await
        .map_err(err)?
    {
        let notice = store.get_notice(esc.notice_id).await.map_err(err)?;
        let platform = parties
            .iter()
            .find(|p| p.id == notice.platform_id)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        out.push(Waiting {
            esc,
            notice,
            platform,
        });
    }
    Ok(out)
}

fn reason_name(cx: &Ctx, reason: &str) -> &'static str {
    if reason == "undeliverable" {
        cx.t("esc-reason-undeliverable")
    } else {
        cx.t("esc-reason-deadline_missed")
    }
}

pub async fn show(cx: Ctx, uri: Uri) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadEscalations)?;
    let q = query(&uri);
    let list = ListState::parse(
        &cx,
        "/approvals",
        &q,
        &["created", "reason", "platform"],
        true,
    )?;
    let mut rows = waiting(&cx).await?;
    match list.sort {
        "reason" => rows.sort_by(|a, b| a.esc.reason.as_str().cmp(b.esc.reason.as_str())),
        "platform" => rows.sort_by(|a, b| a.platform.cmp(&b.platform)),
        _ => rows.sort_by_key(|r| r.esc.created_at.unix_millis()),
    }
    if !list.ascending {
        rows.reverse();
    }
    let drafts = cx
        .state
        .store
        .query_orders(&OrderQuery {
            states: vec![OrderState::Draft],
            sort: "created".into(),
            ascending: true,
            offset: 0,
            limit: PAGE,
        })
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let p = &s.principal;
    let body = html! {
        h1 { (cx.t("approvals-title")) }
        p.lead {
            @if p.role.may(Action::ApproveOrder) { (cx.t("approvals-lead-approver")) }
            @else { (cx.t("approvals-lead-readonly")) }
        }
        h2 id="escalations" { (cx.t("approvals-escalations")) }
        div.table-wrap {
            table aria-labelledby="escalations" {
                caption.muted { (cx.tf("escalations-count", &[("n", &cx.lang.number(rows.len() as i64))])) }
                thead { tr {
                    th scope="col" { (cx.t("col-escalation")) }
                    th scope="col" { (cx.t("col-notice")) }
                    (list.th(&cx, "platform", cx.t("col-platform")))
                    (list.th(&cx, "reason", cx.t("col-reason")))
                    th.num scope="col" { (cx.t("inbox-col-pending")) }
                    (list.th(&cx, "created", cx.t("col-created")))
                } }
                tbody {
                    @for w in &rows {
                        @let eid = w.esc.id.to_string();
                        tr {
                            td { a href={ "/escalations/" (eid) } { code { (short(&eid)) } } }
                            td {
                                a href={ "/notices/" (w.notice.id) } { code { (short(&w.notice.id.to_string())) } }
                                @if let Some(i) = w.notice.items.first() { br; small.muted { (i.value) } }
                            }
                            td { (w.platform) }
                            td { (reason_name(&cx, w.esc.reason.as_str())) }
                            td.num { (w.esc.items.len()) " / " (w.notice.items.len()) }
                            td { (time(&cx, w.esc.created_at)) }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="6" { (cx.t("approvals-no-escalations")) } } }
                }
            }
        }
        h2 { (cx.t("approvals-drafts")) }
        (super::orders::table(&cx, &drafts, None))
        p { a href="/orders" { (cx.t("approvals-all-orders")) } }
    };
    Ok(page(&cx, cx.t("approvals-title"), body).into_response())
}

async fn load(cx: &Ctx, s: &Session, raw: &str) -> Result<(Escalation, Notice), WebError> {
    may(cx, s, Action::ReadEscalations)?;
    let id = EscalationId::parse(raw).map_err(|_| WebError::not_found(cx.lang))?;
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let esc = store.get_escalation(id).await.map_err(err)?;
    let notice = store.get_notice(esc.notice_id).await.map_err(err)?;
    Ok((esc, notice))
}

pub async fn escalation(cx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let s = cx.require()?;
    let (esc, notice) = load(&cx, s, &id).await?;
    Ok(render(&cx, s, &esc, &notice, &Form::default(), None).into_response())
}

/// One escalation's page, with the forms its reader's role may use; after
/// a refusal, the form's values and the message.
fn render(
    cx: &Ctx,
    s: &Session,
    esc: &Escalation,
    notice: &Notice,
    form: &Form,
    error: Option<String>,
) -> axum::response::Html<String> {
    let eid = esc.id.to_string();
    let title = cx.tf("escalation-title", &[("id", short(&eid))]);
    let p = &s.principal;
    let open = esc.state == EscalationState::Open;
    let body = html! {
        h1 { (title) " " (crate::layout::badge(cx, esc.state.as_str())) }
        @if let Some(e) = &error { p.error role="alert" { (e) } }
        dl.facts {
            dt { (cx.t("col-notice")) } dd { a href={ "/notices/" (notice.id) } { code { (notice.id) } } }
            dt { (cx.t("col-category")) } dd { (notice.category.replace('_', " ")) }
            dt { (cx.t("compose-legal-ref")) } dd { (notice.legal_basis.reference) }
            dt { (cx.t("col-reason")) } dd { (reason_name(cx, esc.reason.as_str())) }
            dt { (cx.t("col-created")) } dd { (time(cx, esc.created_at)) }
            @if let Some(d) = esc.decision {
                dt { (cx.t("escalation-decision")) } dd { (decision_name(cx, d.as_str())) @if let Some(n) = &esc.note { " · " (n) } }
            }
        }
        h2 { (cx.t("escalation-pending")) }
        ul.names {
            @for it in notice.items.iter().filter(|i| esc.items.contains(&i.id)) {
                li { (it.kind.as_str().replace('_', " ")) ": " code { (it.value) } }
            }
        }
        @if open && p.role.may(Action::DecideEscalation) {
            (decision_form(cx, s, &eid, form))
        }
        @if p.role.may(Action::ProposeOrder) {
            (draft_form(cx, s, &eid, form))
        }
        p { a href="/approvals" { (cx.t("approvals-back")) } }
    };
    page(cx, &title, body)
}

fn decision_name(cx: &Ctx, d: &str) -> &'static str {
    if d == "dismiss" {
        cx.t("escalation-dismiss")
    } else {
        cx.t("escalation-propose")
    }
}

fn decision_form(cx: &Ctx, s: &Session, eid: &str, form: &Form) -> Markup {
    html! {
        form.stack method="post" action={ "/escalations/" (eid) "/decision" } aria-labelledby="h-decide" {
            h2 id="h-decide" { (cx.t("escalation-decide")) }
            input type="hidden" name="csrf" value=(s.csrf);
            div {
                label for="esc-decision" { (cx.t("escalation-decision")) }
                select id="esc-decision" name="decision" {
                    @for d in ["propose_order", "dismiss"] { option value=(d) selected[form.get("decision") == d] { (decision_name(cx, d)) } }
                }
            }
            div {
                label for="esc-note" { (cx.t("escalation-note")) }
                textarea id="esc-note" name="note" required maxlength="4000" { (form.get("note")) }
            }
            div { button type="submit" { (cx.t("escalation-decide-go")) } }
        }
    }
}

fn draft_form(cx: &Ctx, s: &Session, eid: &str, form: &Form) -> Markup {
    // defaults: a day and an hour from now (platforms affected must be
    // told a day ahead), a month in force, reviewed after two weeks
    let now = cx.state.store.now();
    let hour = 3_600_000;
    let effective = now.plus_millis(25 * hour - now.unix_millis().rem_euclid(hour));
    let value = |k: &str, default: i64| {
        let v = form.get(k);
        if v.is_empty() {
            local_input(cx, effective.plus_millis(default))
        } else {
            v.to_owned()
        }
    };
    html! {
        form.stack method="post" action={ "/escalations/" (eid) "/draft-order" } aria-labelledby="h-draft" {
            h2 id="h-draft" { (cx.t("escalation-draft")) }
            p.muted { (cx.t("escalation-draft-help")) }
            input type="hidden" name="csrf" value=(s.csrf);
            div {
                label for="draft-action" { (cx.t("order-action")) }
                select id="draft-action" name="action" {
                    @for a in ["walled_garden", "nxdomain", "nodata"] {
                        option value=(a) selected[form.get("action") == a] { (super::orders::action_name(cx, a)) }
                    }
                }
            }
            div {
                label for="draft-effective" { (cx.tf("order-effective-zone", &[("zone", &cx.state.config.zone_label)])) }
                input type="datetime-local" id="draft-effective" name="effective_at" value=(value("effective_at", 0)) required;
            }
            div {
                label for="draft-expires" { (cx.tf("order-expires-zone", &[("zone", &cx.state.config.zone_label)])) }
                input type="datetime-local" id="draft-expires" name="expires_at" value=(value("expires_at", 30 * 24 * hour)) required;
            }
            div {
                label for="draft-review" { (cx.tf("order-review-zone", &[("zone", &cx.state.config.zone_label)])) }
                input type="datetime-local" id="draft-review" name="review_at" value=(value("review_at", 14 * 24 * hour)) required;
            }
            div { button type="submit" { (cx.t("escalation-draft-go")) } }
        }
    }
}

/// A refused form: the escalation's page again with the values and why.
async fn again(
    cx: &Ctx,
    s: &Session,
    id: &str,
    form: &Form,
    status: StatusCode,
    msg: String,
) -> Response {
    match load(cx, s, id).await {
        Ok((esc, notice)) => (
            status,
            render(
                cx,
                s,
                &esc,
                &notice,
                form,
                Some(cx.tf("action-refused", &[("why", &msg)])),
            ),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn status_of(e: &tapis_store::Error) -> Option<StatusCode> {
    use tapis_store::Error as E;
    match e {
        E::Conflict(_) => Some(StatusCode::CONFLICT),
        E::Domain(tapis_core::Error::Forbidden { .. }) => Some(StatusCode::FORBIDDEN),
        E::Domain(_) => Some(StatusCode::UNPROCESSABLE_ENTITY),
        _ => None,
    }
}

async fn refused(cx: &Ctx, s: &Session, id: &str, form: &Form, e: tapis_store::Error) -> Response {
    match status_of(&e) {
        Some(status) => again(cx, s, id, form, status, e.to_string()).await,
        None => WebError::from_store(cx.lang, e).into_response(),
    }
}

pub async fn decide(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::DecideEscalation)?;
    let eid = EscalationId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    let decided = EscalationDecision::parse(form.get("decision")).and_then(|d| {
        // a person decides, never a machine credential (as the API)
        tapis_core::person::require_person(
            s.principal.person.as_ref(),
            tapis_core::person::PersonalAct::DecideEscalation,
        )
        .map(|_| d)
    });
    let d = match decided {
        Ok(d) => d,
        Err(e) => return Ok(refused(&cx, s, &id, &form, e.into()).await),
    };
    match cx
        .state
        .store
        .decide_escalation(&s.principal, eid, d, form.get("note"))
        .await
    {
        Ok(_) => Ok(Redirect::to("/approvals").into_response()),
        Err(e) => Ok(refused(&cx, s, &id, &form, e).await),
    }
}

pub async fn draft(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::ProposeOrder)?;
    let (esc, notice) = load(&cx, s, &id).await?;
    let when = |field: &'static str| {
        from_local_input(&cx, form.get(field)).ok_or_else(|| {
            tapis_store::Error::Domain(tapis_core::Error::invalid(field, cx.t("error-bad-time")))
        })
    };
    let request = match (when("effective_at"), when("expires_at"), when("review_at")) {
        (Ok(e), Ok(x), Ok(r)) => DraftRequest {
            action: Some(form.get("action").to_owned()),
            effective_at: e,
            expires_at: x,
            review_at: r,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return Ok(refused(&cx, s, &id, &form, e).await);
        }
    };
    let escalation_id = esc.id.to_string();
    let input = match draft_order(&esc.escalated(&escalation_id, &notice), request) {
        Ok(i) => i,
        Err(NoDnsTarget) => {
            return Ok(again(
                &cx,
                s,
                &id,
                &form,
                StatusCode::UNPROCESSABLE_ENTITY,
                NoDnsTarget::MESSAGE.to_owned(),
            )
            .await);
        }
    };
    let new = match NewOrder::parse(
        input,
        &cx.state.taxonomy,
        OrderLimits::default(),
        cx.state.store.now(),
    ) {
        Ok(n) => n,
        Err(e) => return Ok(refused(&cx, s, &id, &form, e.into()).await),
    };
    match cx.state.store.create_order(&s.principal, new).await {
        Ok(o) => Ok(Redirect::to(&format!("/orders/{}", o.id)).into_response()),
        Err(e) => Ok(refused(&cx, s, &id, &form, e).await),
    }
}
