//! The auditor's page: the chain's verification at the top (what
//! `GET /api/v1/audit/verify` reports: intact, or the first broken link),
//! then the log, newest first, searchable by event type, subject id,
//! actor and date range, paged, every filter in the URL.
//!
//! Admins and auditors only (`Action::VerifyAudit`, as the API). The
//! search is `Store::search_audit`, read-only.

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use maud::html;
use tapis_core::EventType;
use tapis_core::Timestamp;
use tapis_core::role::Action;
use tapis_store::AuditQuery;

use super::notices::{may, short};
use super::table::{ListState, PAGE, bad_filter};
use crate::error::WebError;
use crate::layout::{from_local_input, page, time};
use crate::session::{Ctx, query};

pub async fn show(cx: Ctx, uri: Uri) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::VerifyAudit)?;
    let q = query(&uri);
    let list = ListState::parse(&cx, "/audit", &q, &["seq"], false)?;
    let text = |k: &str| {
        let v = q.get(k).trim();
        if v.is_empty() {
            Ok(None)
        } else if v.len() > 200 || v.contains('\0') {
            Err(bad_filter(&cx, k))
        } else {
            Ok(Some(v.to_owned()))
        }
    };
    let action = text("type")?;
    if action
        .as_deref()
        .is_some_and(|a| !EventType::ALL.iter().any(|e| e.as_str() == a))
    {
        return Err(bad_filter(&cx, "type"));
    }
    let day = |k: &str| -> Result<Option<Timestamp>, WebError> {
        match text(k)? {
            None => Ok(None),
            Some(v) if v.len() == 10 => from_local_input(&cx, &v)
                .and_then(|t| Timestamp::parse(k, &t).ok())
                .map(Some)
                .ok_or_else(|| bad_filter(&cx, k)),
            Some(_) => Err(bad_filter(&cx, k)),
        }
    };
    let from = day("from")?;
    // the whole day named by `to` is included
    let to = day("to")?.map(|t| t.plus_millis(86_400_000));
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let report = store.verify_audit().await.map_err(err)?;
    let events = store
        .search_audit(&AuditQuery {
            action: action.clone(),
            subject_id: text("subject")?,
            actor: text("actor")?,
            from,
            to,
            ascending: list.ascending,
            offset: list.offset(),
            limit: PAGE,
        })
        .await
        .map_err(err)?;
    let body = html! {
        h1 { (cx.t("audit-title")) }
        @if report.ok() {
            p.notice-box.ok role="status" id="chain-status" {
                strong { (cx.t("audit-intact")) } " "
                (cx.tf("audit-intact-detail", &[("n", &cx.lang.number(report.events as i64))]))
                br; small { (cx.t("audit-head")) " " code.break { (report.head) } }
            }
        } @else {
            p.error role="alert" id="chain-status" {
                strong { (cx.t("audit-broken")) } " "
                @if let Some(b) = &report.first_break {
                    (cx.tf("audit-broken-detail", &[("seq", &b.seq.to_string()), ("why", &b.reason)]))
                }
            }
        }
        form.filters method="get" action="/audit" aria-label=(cx.t("filters")) {
            div {
                label for="f-type" { (cx.t("audit-type")) }
                select id="f-type" name="type" {
                    option value="" { (cx.t("any")) }
                    @for e in EventType::ALL {
                        option value=(e.as_str()) selected[action.as_deref() == Some(e.as_str())] { (e.as_str()) }
                    }
                }
            }
            div {
                label for="f-subject" { (cx.t("audit-subject")) }
                input type="text" id="f-subject" name="subject" value=(q.get("subject")) spellcheck="false";
            }
            div {
                label for="f-actor" { (cx.t("audit-actor")) }
                input type="text" id="f-actor" name="actor" value=(q.get("actor")) spellcheck="false";
            }
            div {
                label for="f-from" { (cx.t("audit-from")) }
                input type="date" id="f-from" name="from" value=(q.get("from"));
            }
            div {
                label for="f-to" { (cx.t("audit-to")) }
                input type="date" id="f-to" name="to" value=(q.get("to"));
            }
            button type="submit" { (cx.t("filter-apply")) }
        }
        div.table-wrap {
            table {
                caption.muted { (cx.tf("audit-count", &[("n", &cx.lang.number(events.len() as i64))])) }
                thead { tr {
                    (list.th(&cx, "seq", "#"))
                    th scope="col" { (cx.t("audit-at")) }
                    th scope="col" { (cx.t("audit-type")) }
                    th scope="col" { (cx.t("audit-subject")) }
                    th scope="col" { (cx.t("audit-actor")) }
                    th scope="col" { (cx.t("audit-hash")) }
                } }
                tbody {
                    @for e in &events {
                        @let who = e.actor.get("person").and_then(|v| v.as_str())
                            .or_else(|| e.actor.get("label").and_then(|v| v.as_str())).unwrap_or("");
                        @let role = e.actor.get("role").and_then(|v| v.as_str()).unwrap_or("");
                        tr {
                            td.num { (e.seq) }
                            td { (time(&cx, e.at)) }
                            td { a href=(list.href(&[("type", &e.action), ("page", "")])) { code { (e.action) } } }
                            td {
                                (e.subject_type) " " a href=(list.href(&[("subject", &e.subject_id), ("page", "")])) title=(cx.t("audit-filter-subject")) { code { (short(&e.subject_id)) } }
                                @if matches!(e.subject_type.as_str(), "order" | "notice") {
                                    " " a href={ "/" (e.subject_type) "s/" (e.subject_id) } aria-label=(cx.tf("audit-open", &[("id", short(&e.subject_id))])) { "↗" }
                                }
                            }
                            td { (who) @if !role.is_empty() { " · " (role) } }
                            td { code title=(e.hash) { (short(&e.hash)) } }
                        }
                    }
                    @if events.is_empty() { tr { td colspan="6" { (cx.t("empty")) } } }
                }
            }
        }
        (list.pager(&cx, events.len() as u32 == PAGE))
    };
    Ok(page(&cx, cx.t("audit-title"), body).into_response())
}
