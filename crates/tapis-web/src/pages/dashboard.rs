//! The authority's dashboard: notices by state, what is overdue and due
//! within the hour, escalations waiting, orders scheduled, in force and
//! ending soon, the zone serial and the ISPs behind it, and the platforms
//! without a verified local representative.

use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::error::WebError;
use crate::layout::{badge, maybe_time, page};
use crate::session::Ctx;

pub async fn show(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    if !s.principal.role.reads_everything() {
        return Ok(Redirect::to(super::signin::home_of(s.principal.role)).into_response());
    }
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let c = store.dashboard_counts().await.map_err(err)?;
    let serial = store.rpz_serial().await.map_err(err)?;
    let isps = store.compliance().await.map_err(err)?;
    let behind = isps.iter().filter(|i| i.status != "current").count() as i64;
    let unrepresented = store
        .unrepresented_platforms(&s.principal)
        .await
        .map_err(err)?;
    let count = |list: &[(String, i64)], k: &str| {
        list.iter().find(|(s, _)| s == k).map(|x| x.1).unwrap_or(0)
    };
    let n = |v: i64| cx.lang.number(v);
    let body = html! {
        h1 { (cx.t("dash-title")) }
        div.grid {
            a.card.alert[c.overdue > 0] href="/notices?overdue=1" {
                div.n { (n(c.overdue)) } div { (cx.t("dash-overdue")) }
            }
            div.card { div.n { (n(c.due_within_hour)) } div { (cx.t("dash-due-hour")) } }
            div.card.alert[c.escalations_open > 0] { div.n { (n(c.escalations_open)) } div { (cx.t("dash-escalations")) } }
            div.card { div.n { (n(count(&c.orders_by_state, "scheduled") + count(&c.orders_by_state, "approved"))) } div { (cx.t("dash-orders-scheduled")) } }
            div.card { div.n { (n(count(&c.orders_by_state, "in_force"))) } div { (cx.t("dash-orders-in-force")) } }
            div.card { div.n { (n(c.orders_ending_soon)) } div { (cx.t("dash-orders-ending")) } }
            div.card { div.n { (serial) } div { (cx.t("dash-serial")) } }
            div.card.alert[behind > 0] { div.n { (n(behind)) " / " (n(isps.len() as i64)) } div { (cx.t("dash-isps-behind")) } }
        }
        h2 { (cx.t("dash-by-state")) }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { (cx.t("col-state")) } th.num scope="col" { (cx.t("col-count")) } } }
                tbody {
                    @for (state, k) in &c.by_state {
                        tr {
                            td { a href={ "/notices?state=" (state) } { (badge(&cx, state)) } }
                            td.num { (n(*k)) }
                        }
                    }
                    @if c.by_state.is_empty() { tr { td colspan="2" { (cx.t("empty")) } } }
                }
            }
        }
        h2 { (cx.t("dash-unrepresented")) }
        p.muted { (cx.t("dash-unrepresented-help")) }
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { (cx.t("col-platform")) }
                    th scope="col" { (cx.t("col-representative")) }
                } }
                tbody {
                    @for u in &unrepresented {
                        tr {
                            td { (u.name) }
                            td { (cx.t(match u.state {
                                Some(tapis_core::representative::ContactState::CodeSent) => "rep-state-code-sent",
                                Some(_) => "rep-state-unverified",
                                None => "rep-state-none",
                            })) }
                        }
                    }
                    @if unrepresented.is_empty() { tr { td colspan="2" { (cx.t("empty")) } } }
                }
            }
        }
        h2 { (cx.t("dash-isps")) }
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { (cx.t("col-isp")) }
                    th scope="col" { (cx.t("col-status")) }
                    th.num scope="col" { (cx.t("col-acked-serial")) }
                    th scope="col" { (cx.t("col-acked-at")) }
                } }
                tbody {
                    @for i in &isps {
                        tr {
                            td { (i.name) }
                            td { (badge(&cx, i.status)) }
                            td.num { @if let Some(a) = i.acknowledged_serial { (a) } @else { "—" } }
                            td { (maybe_time(&cx, i.acknowledged_at)) }
                        }
                    }
                    @if isps.is_empty() { tr { td colspan="4" { (cx.t("empty")) } } }
                }
            }
        }
    };
    Ok(page(&cx, cx.t("dash-title"), body).into_response())
}
