//! The platform inbox: a platform person's open notices, most pressing
//! first (overdue, then by deadline), and the forms that acknowledge a
//! notice and decide its items.
//!
//! Everything goes through the API's own store methods with the signed-in
//! person's principal: `Store::inbox` (fetching is delivery, as in
//! `GET /api/v1/inbox`), `Store::acknowledge` and `Store::decide_item`
//! (as `POST /api/v1/notices/{id}/acknowledge` and
//! `.../items/{item_id}/decision`), so the role check is `Role::may` and
//! the party check the store's. Another platform's notice is a 404 page;
//! a refused action (a decision without its reason, an item already
//! decided) shows the notice again with the message, never JSON.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::notice::{Decision, DecisionInput, ItemState, NoticeState};
use tapis_core::party::PartyKind;
use tapis_core::role::Action;
use tapis_core::{ItemId, NoticeId};
use tapis_store::{Notice, Session};

use super::checked_form;
use super::notices::{is_open, may, render_detail, short, visible};
use crate::error::WebError;
use crate::layout::{badge, deadline, page};
use crate::session::Ctx;

/// Notices on one page of the inbox (the API's default).
const LIMIT: u32 = 100;

/// The decisions the page offers, with their translation keys.
const DECISIONS: [(&str, &str); 3] = [
    ("removed", "decision-removed"),
    ("restricted", "decision-restricted"),
    ("rejected", "decision-rejected"),
];

fn acknowledgeable(n: &Notice) -> bool {
    matches!(n.state, NoticeState::Submitted | NoticeState::Delivered)
}

/// Overdue first, then by deadline (none last); the store's order
/// (flaggers, urgency) breaks ties.
fn priority(notices: &mut [Notice], now_ms: i64) {
    notices.sort_by_key(|n| priority_key(n.due_at.map(|d| d.unix_millis()), now_ms));
}

fn priority_key(due: Option<i64>, now_ms: i64) -> (bool, bool, i64) {
    (
        due.is_none_or(|d| d >= now_ms),
        due.is_none(),
        due.unwrap_or(i64::MAX),
    )
}

pub async fn show(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadInbox)?;
    let mut notices = cx
        .state
        .store
        .inbox(&s.principal, LIMIT)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    priority(&mut notices, cx.state.store.now().unix_millis());
    let may_ack = s.principal.role.may(Action::AcknowledgeNotice);
    let orders = super::platform_orders::section(&cx, s).await?;
    let body = html! {
        h1 { (cx.t("inbox-title")) }
        p.lead { (cx.t("inbox-lead")) }
        div.table-wrap {
            table {
                caption.muted { (cx.tf("notices-count", &[("n", &cx.lang.number(notices.len() as i64))])) }
                thead { tr {
                    th scope="col" { (cx.t("col-notice")) }
                    th scope="col" { (cx.t("col-state")) }
                    th scope="col" { (cx.t("col-category")) }
                    th scope="col" { (cx.t("col-urgency")) }
                    th.num scope="col" { (cx.t("inbox-col-pending")) }
                    th scope="col" { (cx.t("inbox-col-remaining")) }
                    th scope="col" { (cx.t("inbox-col-action")) }
                } }
                tbody {
                    @for n in &notices {
                        @let id = n.id.to_string();
                        @let pending = n.items.iter().filter(|i| i.state == ItemState::Pending).count();
                        tr {
                            td {
                                a href={ "/notices/" (id) } { code { (short(&id)) } }
                                @if let Some(first) = n.items.first() { br; small.muted { (first.value) } }
                            }
                            td { (badge(&cx, n.state.as_str())) }
                            td { (n.category.replace('_', " ")) }
                            td { (cx.t(if n.urgency.as_str() == "urgent" { "urgency-urgent" } else { "urgency-normal" })) }
                            td.num { (pending) " / " (n.items.len()) }
                            td { (deadline(&cx, n.due_at, is_open(n.state))) }
                            td {
                                @if may_ack && acknowledgeable(n) {
                                    form.inline method="post" action={ "/notices/" (id) "/acknowledge" } {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        input type="hidden" name="back" value="inbox";
                                        button type="submit" aria-label=(cx.tf("inbox-ack-label", &[("id", short(&id))])) { (cx.t("inbox-ack")) }
                                    }
                                } @else {
                                    a href={ "/notices/" (id) } { (cx.t("inbox-decide")) }
                                }
                            }
                        }
                    }
                    @if notices.is_empty() { tr { td colspan="7" { (cx.t("inbox-empty")) } } }
                }
            }
        }
        (orders)
    };
    Ok(page(&cx, cx.t("inbox-title"), body).into_response())
}

/// The acknowledge and decision forms on a notice's page, for a person
/// whose role may use them (the store checks the party when they post).
pub(crate) fn actions(cx: &Ctx, s: &Session, n: &Notice) -> Markup {
    let p = &s.principal;
    if p.party_kind != PartyKind::Platform || !is_open(n.state) {
        return html! {};
    }
    let ack = p.role.may(Action::AcknowledgeNotice) && acknowledgeable(n);
    let decide = p.role.may(Action::DecideItem);
    let id = n.id.to_string();
    html! {
        @if ack {
            form.inline method="post" action={ "/notices/" (id) "/acknowledge" } {
                input type="hidden" name="csrf" value=(s.csrf);
                button type="submit" { (cx.t("inbox-ack")) }
            }
        }
        @if decide && n.items.iter().any(|i| i.state == ItemState::Pending) {
            h2 { (cx.t("decide-title")) }
            p.muted { small { (cx.t("decide-help")) } }
            @for (i, it) in n.items.iter().enumerate() {
                @if it.state == ItemState::Pending {
                    @let d = format!("decision-{}", it.id);
                    @let r = format!("reason-{}", it.id);
                    form.stack method="post" action={ "/notices/" (id) "/items/" (it.id) "/decision" }
                        aria-label=(cx.tf("decide-item", &[("n", &(i + 1).to_string())])) {
                        input type="hidden" name="csrf" value=(s.csrf);
                        p { strong { (cx.tf("decide-item", &[("n", &(i + 1).to_string())])) } " " code { (it.value) } }
                        div {
                            label for=(d) { (cx.t("decide-decision")) }
                            select id=(d) name="decision" {
                                @for (v, key) in DECISIONS { option value=(v) { (cx.t(key)) } }
                            }
                        }
                        div {
                            label for=(r) { (cx.t("decide-reason")) }
                            textarea id=(r) name="reason" maxlength="4000" {}
                        }
                        div { button type="submit" { (cx.t("decide-go")) } }
                    }
                }
            }
        }
        (super::appeal::item_forms(cx, s, n))
    }
}

/// A refused action: the notice again, with the message. A missing or
/// another platform's notice stays a 404 page, a role refusal a 403.
pub(crate) async fn refused(cx: &Ctx, s: &Session, id: &str, e: tapis_store::Error) -> Response {
    use tapis_store::Error as E;
    let (status, msg) = match e {
        E::Conflict(m) => (StatusCode::CONFLICT, m),
        E::Domain(tapis_core::Error::Invalid { .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        other => return WebError::from_store(cx.lang, other).into_response(),
    };
    let msg = cx.tf("action-refused", &[("why", &msg)]);
    match visible(cx, s, id).await {
        Ok(n) => (status, render_detail(cx, s, &n, Some(msg)).await).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn acknowledge(
    cx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::AcknowledgeNotice)?;
    let nid = NoticeId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    match cx.state.store.acknowledge(&s.principal, nid, None).await {
        Ok(_) if form.get("back") == "inbox" => Ok(Redirect::to("/inbox").into_response()),
        Ok(_) => Ok(Redirect::to(&format!("/notices/{nid}")).into_response()),
        Err(e) => Ok(refused(&cx, s, &id, e).await),
    }
}

pub async fn decide(
    cx: Ctx,
    Path((id, item)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::DecideItem)?;
    let nid = NoticeId::parse(&id).map_err(|_| WebError::not_found(cx.lang))?;
    let item_id = ItemId::parse(&item).map_err(|_| WebError::not_found(cx.lang))?;
    let decision = match Decision::parse(DecisionInput {
        decision: form.get("decision").to_owned(),
        reason: Some(form.get("reason").to_owned()),
    }) {
        Ok(d) => d,
        Err(e) => return Ok(refused(&cx, s, &id, tapis_store::Error::Domain(e)).await),
    };
    match cx
        .state
        .store
        .decide_item(&s.principal, nid, item_id, decision)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/notices/{nid}")).into_response()),
        Err(e) => Ok(refused(&cx, s, &id, e).await),
    }
}

#[cfg(test)]
mod tests {
    use super::priority_key;

    #[test]
    fn overdue_first_then_by_deadline_then_none() {
        let now = 1_000;
        let mut dues = [Some(5_000), None, Some(900), Some(2_000), Some(100)];
        dues.sort_by_key(|d| priority_key(*d, now));
        assert_eq!(dues, [Some(100), Some(900), Some(2_000), Some(5_000), None]);
    }
}
