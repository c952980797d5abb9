//! Appeals in the browser: the public form (no account; prefilled from the
//! block page and the lookup with the order's reference), the status page
//! a reference opens, the authority's queue with its review and decision
//! forms, and the platform's question and dispute forms on a notice's
//! items.
//!
//! The public form carries the double-submit CSRF token the sign-in form
//! uses, and an address may send only a few appeals in a window
//! (`WebState::appeal_throttle`, in memory: the address is never stored).
//! Every action calls the store method the API calls
//! (`Store::submit_appeal`, `start_appeal_review`, `decide_appeal`,
//! `ask_clarification`, `dispute_item`) with the session's principal, so
//! who may do what is decided there.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::appeal::{AppealDecision, AppealInput, AppealState, NewAppeal, Reference};
use tapis_core::dispute::{DisputeReview, Question};
use tapis_core::notice::ItemState;
use tapis_core::role::Action;
use tapis_core::{AppealId, ClarificationId, DisputeId, ItemId, NoticeId};
use tapis_store::{Appeal, Notice, PublicAppeal, Session};

use super::checked_form;
use super::notices::may;
use crate::error::WebError;
use crate::layout::{badge, deadline, maybe_time, page, time};
use crate::session::{Ctx, Form, form_token, query};

/// Appeals one address may send in the throttle's window (15 minutes).
pub const APPEALS_PER_WINDOW: u32 = 5;

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The form's fields as sent (or prefilled), shown again after a refusal.
#[derive(Default)]
struct Fields {
    order: String,
    name: String,
    notice: String,
    item: String,
    kind: String,
    reason: String,
    evidence: String,
}

impl Fields {
    fn from(f: &Form) -> Fields {
        Fields {
            order: f.get("order").trim().to_owned(),
            name: f.get("name").trim().to_owned(),
            notice: f.get("notice").trim().to_owned(),
            item: f.get("item").trim().to_owned(),
            kind: f.get("appellant_kind").to_owned(),
            reason: f.get("reason").to_owned(),
            evidence: f.get("evidence").to_owned(),
        }
    }
}

fn appeal_form(cx: &Ctx, token: &str, f: &Fields, error: Option<&str>) -> Markup {
    let kinds = [
        ("public", "appeal-kind-public"),
        ("content_owner", "appeal-kind-content_owner"),
    ];
    html! {
        h1 { (cx.t("appeal-title")) }
        p.lead { (cx.t("appeal-lead")) }
        @if let Some(e) = error {
            p.error role="alert" { (cx.tf("action-refused", &[("why", e)])) }
        }
        form.stack method="post" action="/appeal" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="name" value=(f.name);
            @if !f.name.is_empty() {
                p { (cx.tf("appeal-about-name", &[("name", &f.name)])) }
            }
            div {
                label for="order" { (cx.t("appeal-order")) }
                input type="text" id="order" name="order" value=(f.order) autocomplete="off" spellcheck="false" maxlength="64";
                p.muted { small { (cx.t("appeal-order-help")) } }
            }
            details open[!f.notice.is_empty()] {
                summary { (cx.t("appeal-item-summary")) }
                div {
                    label for="notice" { (cx.t("appeal-notice")) }
                    input type="text" id="notice" name="notice" value=(f.notice) autocomplete="off" maxlength="64";
                }
                div {
                    label for="item" { (cx.t("appeal-item")) }
                    input type="text" id="item" name="item" value=(f.item) autocomplete="off" maxlength="64";
                }
            }
            div {
                label for="appellant_kind" { (cx.t("appeal-kind")) }
                select id="appellant_kind" name="appellant_kind" {
                    @for (v, key) in kinds { option value=(v) selected[f.kind == v] { (cx.t(key)) } }
                }
            }
            div {
                label for="reason" { (cx.t("appeal-reason")) }
                textarea id="reason" name="reason" required minlength="10" maxlength="4000" { (f.reason) }
            }
            div {
                label for="evidence" { (cx.t("appeal-evidence")) }
                textarea id="evidence" name="evidence" maxlength="5000" { (f.evidence) }
                p.muted { small { (cx.t("appeal-evidence-help")) } }
            }
            p.muted { small { (cx.t("appeal-privacy")) } }
            div { button type="submit" { (cx.t("appeal-go")) } }
        }
    }
}

/// `GET /appeal?order=&name=`: the form, prefilled.
pub async fn form(cx: Ctx, uri: axum::http::Uri) -> Response {
    let q = query(&uri);
    let f = Fields {
        order: q.get("order").trim().to_owned(),
        name: q.get("name").trim().to_owned(),
        notice: q.get("notice").trim().to_owned(),
        item: q.get("item").trim().to_owned(),
        ..Fields::default()
    };
    let (token, cookie) = if cx.session.is_some() {
        (cx.csrf(), None)
    } else {
        form_token(&cx)
    };
    let body = appeal_form(&cx, &token, &f, None);
    with_cookie(
        page(&cx, cx.t("appeal-title"), body).into_response(),
        cookie,
    )
}

/// `POST /appeal`: received, then the status page with the reference.
pub async fn submit(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let form = checked_form(&cx, &body)?;
    let f = Fields::from(&form);
    let refuse = |status: StatusCode, why: &str| {
        let body = appeal_form(&cx, &cx.csrf(), &f, Some(why));
        (status, page(&cx, cx.t("appeal-title"), body)).into_response()
    };
    let principal = cx
        .session
        .as_ref()
        .map(|s| &s.principal)
        .filter(|p| p.role.may(Action::Appeal));
    let input = AppealInput {
        order_id: Some(f.order.clone()),
        notice_id: Some(f.notice.clone()),
        item_id: Some(f.item.clone()),
        appellant_kind: principal.is_none().then(|| f.kind.clone()),
        reason: f.reason.clone(),
        evidence: f.evidence.lines().map(str::to_owned).collect(),
    };
    let new = match NewAppeal::parse(input, principal.map(|p| p.party_kind)) {
        Ok(n) => n,
        Err(e) => return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())),
    };
    if principal.is_none()
        && let Some(ip) = cx.peer
    {
        if cx.state.appeal_throttle.blocked(ip, APPEALS_PER_WINDOW) {
            return Ok(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                cx.t("appeal-too-many"),
            ));
        }
        cx.state.appeal_throttle.fail(ip);
    }
    match cx.state.store.submit_appeal(principal, &new).await {
        Ok(a) => Ok(Redirect::to(&format!("/appeal/{}?received=1", a.reference)).into_response()),
        Err(tapis_store::Error::NotFound(_)) => {
            Ok(refuse(StatusCode::NOT_FOUND, cx.t("appeal-not-found")))
        }
        Err(tapis_store::Error::Domain(e)) => {
            Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

fn outcome_facts(cx: &Ctx, a: &PublicAppeal) -> Markup {
    html! {
        dl.facts {
            dt { (cx.t("appeal-reference")) } dd { code { (a.reference.as_str()) } }
            dt { (cx.t("col-state")) } dd { (badge(cx, a.state.as_str())) }
            @if let Some(o) = &a.order_id {
                dt { (cx.t("block-order")) } dd { code { (o) } }
            }
            dt { (cx.t("appeal-received")) } dd { (time(cx, a.received_at)) }
            dt { (cx.t("appeal-due")) } dd { (deadline(cx, Some(a.due_at), a.state.is_open())) }
            dt { (cx.t("appeal-review-started")) } dd { (maybe_time(cx, a.review_started_at)) }
            dt { (cx.t("appeal-decided")) } dd { (maybe_time(cx, a.decided_at)) }
            @if let Some(o) = a.outcome {
                dt { (cx.t("appeal-outcome")) } dd { (badge(cx, o.as_str())) }
            }
            @if let Some(r) = a.referred_to {
                dt { (cx.t("appeal-referred-to")) } dd { (cx.t(&format!("appeal-to-{}", r.as_str()))) }
            }
            @if let Some(r) = &a.reasons {
                dt { (cx.t("appeal-reasons")) } dd { (r) }
            }
        }
    }
}

/// `GET /appeal/{reference}`: where the appeal is. Needs only the
/// reference; shows nothing about who appealed or why.
pub async fn status(
    cx: Ctx,
    Path(reference): Path<String>,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let reference = Reference::parse(&reference).map_err(|_| WebError::not_found(cx.lang))?;
    let a = cx
        .state
        .store
        .public_appeal(&reference)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let received = query(&uri).get("received") == "1";
    let body = html! {
        h1 { (cx.t("appeal-status-title")) }
        @if received {
            p.notice-box role="status" { (cx.tf("appeal-thanks", &[("reference", a.reference.as_str())])) }
        }
        (outcome_facts(&cx, &a))
        p.muted { small { (cx.t("appeal-status-help")) } }
    };
    Ok(page(&cx, cx.t("appeal-status-title"), body).into_response())
}

fn subject(a: &Appeal) -> Markup {
    html! {
        @if let Some(o) = &a.order_id { "order " code { (o) } }
        @if let (Some(n), Some(i)) = (&a.notice_id, &a.item_id) {
            a href={ "/notices/" (n) } { "notice" } " · item " code { (i) }
        }
    }
}

fn queue_row_actions(cx: &Ctx, s: &Session, a: &Appeal) -> Markup {
    let id = a.id.to_string();
    let outcomes = [
        ("upheld", "appeal-outcome-upheld"),
        ("rejected", "appeal-outcome-rejected"),
        ("referred", "appeal-outcome-referred"),
    ];
    html! {
        @match a.state {
            AppealState::Received => {
                form.inline method="post" action={ "/appeals/" (id) "/review" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    button type="submit" { (cx.t("appeal-start-review")) }
                }
            }
            AppealState::UnderReview => {
                form.stack method="post" action={ "/appeals/" (id) "/decision" }
                    aria-label=(cx.tf("appeal-decide-label", &[("reference", a.reference.as_str())])) {
                    input type="hidden" name="csrf" value=(s.csrf);
                    div {
                        label for={ "outcome-" (id) } { (cx.t("appeal-outcome")) }
                        select id={ "outcome-" (id) } name="outcome" {
                            @for (v, key) in outcomes { option value=(v) { (cx.t(key)) } }
                        }
                    }
                    div {
                        label for={ "referred-" (id) } { (cx.t("appeal-referred-to")) }
                        select id={ "referred-" (id) } name="referred_to" {
                            option value="" { "—" }
                            option value="authoriser" { (cx.t("appeal-to-authoriser")) }
                            option value="court" { (cx.t("appeal-to-court")) }
                        }
                    }
                    div {
                        label for={ "reasons-" (id) } { (cx.t("appeal-reasons")) }
                        textarea id={ "reasons-" (id) } name="reasons" required maxlength="4000" {}
                    }
                    div { button type="submit" { (cx.t("appeal-decide")) } }
                }
            }
            _ => { (maybe_time(cx, a.decided_at)) }
        }
    }
}

async fn queue_page(cx: &Ctx, s: &Session, message: Option<String>) -> Result<Markup, WebError> {
    let store = &cx.state.store;
    let appeals = store
        .list_appeals(&s.principal, None, 200)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let counts = store
        .appeal_counts(&s.principal)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    Ok(html! {
        h1 { (cx.t("appeals-title")) }
        p.lead { (cx.t("appeals-lead")) }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        p {
            @for (state, n) in &counts {
                (badge(cx, state)) " " (cx.lang.number(*n)) " "
            }
        }
        table {
            thead { tr {
                th { (cx.t("appeal-reference")) } th { (cx.t("appeal-subject")) } th { (cx.t("appeal-kind")) }
                th { (cx.t("appeal-reason")) } th { (cx.t("appeal-due")) } th { (cx.t("col-state")) } th { (cx.t("appeal-actions")) }
            } }
            tbody {
                @for a in &appeals {
                    tr {
                        td { a href={ "/appeal/" (a.reference.as_str()) } { code { (a.reference.as_str()) } } }
                        td { (subject(a)) }
                        td { (cx.t(&format!("appeal-kind-{}", a.appellant_kind.as_str()))) }
                        td { (a.reason) @for e in &a.evidence { br; small { (e) } } }
                        td { (deadline(cx, Some(a.due_at), a.state.is_open())) }
                        td { (badge(cx, a.state.as_str())) }
                        td { (queue_row_actions(cx, s, a)) }
                    }
                }
                @if appeals.is_empty() { tr { td colspan="7" { (cx.t("appeals-empty")) } } }
            }
        }
    })
}

/// `GET /appeals`: the authority's queue, open appeals first by deadline.
pub async fn queue(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadAppeals)?;
    let body = queue_page(&cx, s, None).await?;
    Ok(page(&cx, cx.t("appeals-title"), body).into_response())
}

/// A refused review or decision: the queue again with the message; a
/// missing appeal stays a 404 page.
async fn refused(cx: &Ctx, s: &Session, e: tapis_store::Error) -> Response {
    use tapis_store::Error as E;
    let status = match &e {
        E::Domain(tapis_core::Error::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
        E::Domain(tapis_core::Error::IllegalTransition { .. }) | E::Conflict(_) => {
            StatusCode::CONFLICT
        }
        E::Domain(tapis_core::Error::Forbidden { .. }) => StatusCode::FORBIDDEN,
        _ => return WebError::from_store(cx.lang, e).into_response(),
    };
    let msg = cx.tf("action-refused", &[("why", &e.to_string())]);
    match queue_page(cx, s, Some(msg)).await {
        Ok(body) => (status, page(cx, cx.t("appeals-title"), body)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn start_review(
    cx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    may(&cx, s, Action::DecideAppeal)?;
    let id = AppealId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    match cx.state.store.start_appeal_review(&s.principal, id).await {
        Ok(_) => Ok(Redirect::to("/appeals").into_response()),
        Err(e) => Ok(refused(&cx, s, e).await),
    }
}

pub async fn decide(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::DecideAppeal)?;
    let id = AppealId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    let d = match AppealDecision::parse(
        form.get("outcome"),
        form.get("reasons"),
        Some(form.get("referred_to")),
    ) {
        Ok(d) => d,
        Err(e) => return Ok(refused(&cx, s, tapis_store::Error::Domain(e)).await),
    };
    match cx.state.store.decide_appeal(&s.principal, id, &d).await {
        Ok(_) => Ok(Redirect::to("/appeals").into_response()),
        Err(e) => Ok(refused(&cx, s, e).await),
    }
}

/// The question and dispute forms under each pending item of a notice
/// (a platform person whose role may use them).
pub(crate) fn item_forms(cx: &Ctx, s: &Session, n: &Notice) -> Markup {
    if !s.principal.role.may(Action::QuestionItem) {
        return html! {};
    }
    let id = n.id.to_string();
    html! {
        @if n.items.iter().any(|i| i.state == ItemState::Pending) {
            h2 { (cx.t("question-title")) }
            p.muted { small { (cx.t("question-help")) } }
            @for (i, it) in n.items.iter().enumerate() {
                @if it.state == ItemState::Pending {
                    @let nth = (i + 1).to_string();
                    details {
                        summary { (cx.tf("decide-item", &[("n", &nth)])) " " code { (it.value) } }
                        form.stack method="post" action={ "/notices/" (id) "/items/" (it.id) "/clarification" } {
                            input type="hidden" name="csrf" value=(s.csrf);
                            label for={ "question-" (it.id) } { (cx.t("question-ask")) }
                            textarea id={ "question-" (it.id) } name="text" required maxlength="4000" {}
                            div { button type="submit" { (cx.t("question-ask-go")) } }
                        }
                        form.stack method="post" action={ "/notices/" (id) "/items/" (it.id) "/dispute" } {
                            input type="hidden" name="csrf" value=(s.csrf);
                            label for={ "dispute-" (it.id) } { (cx.t("question-dispute")) }
                            textarea id={ "dispute-" (it.id) } name="text" required maxlength="4000" {}
                            div { button type="submit" { (cx.t("question-dispute-go")) } }
                        }
                    }
                }
            }
        }
    }
}

/// A notice's questions and disputes with their answers, and for an
/// officer or approver the forms that answer them (the store refuses the
/// notice's issuer a dispute review). Empty when there are none.
pub(crate) async fn questions_section(cx: &Ctx, s: &Session, n: &Notice) -> Markup {
    let Ok((cs, ds)) = cx.state.store.notice_questions(&s.principal, n.id).await else {
        return html! {};
    };
    if cs.is_empty() && ds.is_empty() {
        return html! {};
    }
    let answers = s.principal.role.may(Action::AnswerPlatform);
    let nid = n.id.to_string();
    let item_no = |id: ItemId| {
        n.items
            .iter()
            .position(|i| i.id == id)
            .map(|i| (i + 1).to_string())
            .unwrap_or_default()
    };
    let outcomes = [
        ("upheld", "dispute-outcome-upheld"),
        ("withdrawn", "dispute-outcome-withdrawn"),
        ("amended", "dispute-outcome-amended"),
    ];
    html! {
        h2 { (cx.t("questions-title")) }
        @for c in &cs {
            section.card {
                p { strong { (cx.tf("decide-item", &[("n", &item_no(c.item_id))])) } " " (badge(cx, c.state.as_str())) " " (time(cx, c.asked_at)) }
                p { (cx.t("question-asked")) " " (c.question) }
                @if let Some(a) = &c.answer { p { (cx.t("question-answer")) " " (a) } }
                @if answers && c.answer.is_none() {
                    form.stack method="post" action={ "/clarifications/" (c.id) "/answer" } {
                        input type="hidden" name="csrf" value=(s.csrf);
                        input type="hidden" name="notice" value=(nid);
                        label for={ "answer-" (c.id) } { (cx.t("question-answer")) }
                        textarea id={ "answer-" (c.id) } name="text" required maxlength="4000" {}
                        div { button type="submit" { (cx.t("question-answer-go")) } }
                    }
                }
            }
        }
        @for d in &ds {
            section.card {
                p { strong { (cx.tf("decide-item", &[("n", &item_no(d.item_id))])) } " " (badge(cx, d.state.as_str())) " " (time(cx, d.opened_at)) }
                p { (cx.t("question-disputed")) " " (d.reason) }
                @if let Some(r) = &d.review_reason { p { (cx.t("question-answer")) " " (r) } }
                @if let Some(e) = &d.amended_explanation { p { (cx.t("compose-explanation")) ": " (e) } }
                @if answers && d.state.is_open() {
                    form.stack method="post" action={ "/disputes/" (d.id) "/review" } {
                        input type="hidden" name="csrf" value=(s.csrf);
                        input type="hidden" name="notice" value=(nid);
                        div {
                            label for={ "outcome-" (d.id) } { (cx.t("appeal-outcome")) }
                            select id={ "outcome-" (d.id) } name="outcome" {
                                @for (v, key) in outcomes { option value=(v) { (cx.t(key)) } }
                            }
                        }
                        div {
                            label for={ "review-" (d.id) } { (cx.t("appeal-reasons")) }
                            textarea id={ "review-" (d.id) } name="text" required maxlength="4000" {}
                        }
                        div {
                            label for={ "amended-" (d.id) } { (cx.t("dispute-amended-explanation")) }
                            textarea id={ "amended-" (d.id) } name="explanation" maxlength="20000" {}
                        }
                        div { button type="submit" { (cx.t("question-review-go")) } }
                    }
                }
            }
        }
    }
}

/// `POST /clarifications/{id}/answer` and `/disputes/{id}/review`: back
/// to the notice, or the notice with the refusal.
async fn answer(cx: Ctx, id: String, body: Bytes, dispute: bool) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::AnswerPlatform)?;
    let notice = form.get("notice").to_owned();
    let store = &cx.state.store;
    let result = if dispute {
        let id = DisputeId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
        let explanation = Some(form.get("explanation"));
        match DisputeReview::parse(form.get("outcome"), form.get("text"), explanation, None) {
            Ok(r) => store.review_dispute(&s.principal, id, &r).await.map(|_| ()),
            Err(e) => Err(tapis_store::Error::Domain(e)),
        }
    } else {
        let id = ClarificationId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
        match Question::parse("answer", form.get("text")) {
            Ok(a) => store
                .answer_clarification(&s.principal, id, &a)
                .await
                .map(|_| ()),
            Err(e) => Err(tapis_store::Error::Domain(e)),
        }
    };
    match result {
        Ok(()) => Ok(
            Redirect::to(&format!("/notices/{}", crate::session::url_encode(&notice)))
                .into_response(),
        ),
        Err(e) => Ok(super::inbox::refused(&cx, s, &notice, e).await),
    }
}

pub async fn answer_clarification(
    cx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    answer(cx, id, body, false).await
}

pub async fn review_dispute(
    cx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    answer(cx, id, body, true).await
}

/// `POST /notices/{id}/items/{item}/clarification` and `…/dispute`.
async fn question(
    cx: Ctx,
    id: String,
    item: String,
    body: Bytes,
    dispute: bool,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::QuestionItem)?;
    let nid = NoticeId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    let item = ItemId::parse(&item).map_err(|_| WebError::not_found(cx.lang))?;
    let field = if dispute { "reason" } else { "question" };
    let store = &cx.state.store;
    let result = match Question::parse(field, form.get("text")) {
        Err(e) => Err(tapis_store::Error::Domain(e)),
        Ok(q) if dispute => store
            .dispute_item(&s.principal, nid, item, &q)
            .await
            .map(|_| ()),
        Ok(q) => store
            .ask_clarification(&s.principal, nid, item, &q)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/notices/{nid}")).into_response()),
        Err(e) => Ok(super::inbox::refused(&cx, s, &id, e).await),
    }
}

pub async fn clarify(
    cx: Ctx,
    Path((id, item)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    question(cx, id, item, body, false).await
}

pub async fn dispute(
    cx: Ctx,
    Path((id, item)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    question(cx, id, item, body, true).await
}
