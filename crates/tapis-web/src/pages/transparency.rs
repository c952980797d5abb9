//! The public transparency report: notices by category, month and
//! platform; how long each platform took to acknowledge and to act
//! (median, 90th percentile, and the spread as a chart); orders in force
//! with their legal basis; lifted and expired orders. Charts are SVG made
//! here, no script. Nothing on this page needs a sign-in, and nothing on
//! it names a notice's items.

use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use tapis_core::order::OrderState;
use tapis_store::{Order, quantile};

use crate::error::WebError;
use crate::layout::{bar_chart, maybe_time, page, time};
use crate::session::Ctx;

fn orders_table(cx: &Ctx, orders: &[Order], ended: bool) -> Markup {
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { (cx.t("col-order")) }
                    th scope="col" { (cx.t("col-category")) }
                    th scope="col" { (cx.t("block-legal-basis")) }
                    th.num scope="col" { (cx.t("col-names")) }
                    th scope="col" { (cx.t("block-since")) }
                    @if ended { th scope="col" { (cx.t("col-ended")) } th scope="col" { (cx.t("col-reason")) } }
                    @else { th scope="col" { (cx.t("block-expires")) } }
                } }
                tbody {
                    @for o in orders {
                        tr {
                            td { code { (o.id.get(..8).unwrap_or(&o.id)) } }
                            td { (o.category.replace('_', " ")) }
                            td { (o.legal_basis.reference) }
                            td.num { (cx.lang.number(o.target_count)) }
                            td { (maybe_time(cx, o.activated_at)) }
                            @if ended { td { (maybe_time(cx, o.ended_at)) } td { @if let Some(r) = &o.end_reason { (r) } } }
                            @else { td { (time(cx, o.expires_at)) } }
                        }
                    }
                    @if orders.is_empty() { tr { td colspan="7" { (cx.t("empty")) } } }
                }
            }
        }
    }
}

pub async fn show(cx: Ctx) -> Result<Response, WebError> {
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let t = store.transparency().await.map_err(err)?;
    let in_force = store
        .list_orders(Some(OrderState::InForce), 500)
        .await
        .map_err(err)?;
    let mut ended = store
        .list_orders(Some(OrderState::Lifted), 250)
        .await
        .map_err(err)?;
    ended.extend(
        store
            .list_orders(Some(OrderState::Expired), 250)
            .await
            .map_err(err)?,
    );
    let label_of = |id: &str| {
        cx.state
            .taxonomy
            .categories
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.label.clone())
            .unwrap_or_else(|| id.replace('_', " "))
    };
    let by_category: Vec<(String, i64)> = t
        .by_category
        .iter()
        .map(|(k, v)| (label_of(k), *v))
        .collect();
    let by_month: Vec<(String, i64)> = t.by_month.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let by_platform: Vec<(String, i64)> = t
        .platforms
        .iter()
        .map(|p| (p.name.clone(), p.notices))
        .collect();
    let total: i64 = t.by_category.values().sum();
    let dur = |v: Option<i64>| {
        v.map(|ms| cx.lang.duration(ms))
            .unwrap_or_else(|| "—".into())
    };
    // the median time to act per platform, in minutes, charted
    let act_minutes: Vec<(String, i64)> = t
        .platforms
        .iter()
        .filter_map(|p| quantile(&p.to_act_ms, 0.5).map(|ms| (p.name.clone(), ms / 60_000)))
        .collect();
    let body = html! {
        h1 { (cx.t("transparency-title")) }
        p.lead { (cx.tf("transparency-lead", &[("n", &cx.lang.number(total))])) }
        p { a href="/register" { (cx.t("nav-register")) } }
        div.grid {
            section.card {
                h2 { (cx.t("transparency-by-category")) }
                (bar_chart(cx.lang, cx.t("transparency-by-category"), &by_category))
            }
            section.card {
                h2 { (cx.t("transparency-by-month")) }
                (bar_chart(cx.lang, cx.t("transparency-by-month"), &by_month))
            }
            section.card {
                h2 { (cx.t("transparency-by-platform")) }
                (bar_chart(cx.lang, cx.t("transparency-by-platform"), &by_platform))
            }
        }
        h2 { (cx.t("transparency-timing")) }
        p.muted { (cx.t("transparency-timing-help")) }
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { (cx.t("col-platform")) }
                    th.num scope="col" { (cx.t("col-notices")) }
                    th.num scope="col" { (cx.t("col-ack-median")) }
                    th.num scope="col" { (cx.t("col-ack-p90")) }
                    th.num scope="col" { (cx.t("col-act-median")) }
                    th.num scope="col" { (cx.t("col-act-p90")) }
                } }
                tbody {
                    @for p in &t.platforms {
                        tr {
                            td { (p.name) }
                            td.num { (cx.lang.number(p.notices)) }
                            td.num { (dur(quantile(&p.to_acknowledge_ms, 0.5))) }
                            td.num { (dur(quantile(&p.to_acknowledge_ms, 0.9))) }
                            td.num { (dur(quantile(&p.to_act_ms, 0.5))) }
                            td.num { (dur(quantile(&p.to_act_ms, 0.9))) }
                        }
                    }
                    @if t.platforms.is_empty() { tr { td colspan="6" { (cx.t("empty")) } } }
                }
            }
        }
        @if !act_minutes.is_empty() {
            section.card {
                h2 { (cx.t("transparency-act-chart")) }
                (bar_chart(cx.lang, cx.t("transparency-act-chart"), &act_minutes))
            }
        }
        h2 { (cx.t("transparency-in-force")) }
        (orders_table(&cx, &in_force, false))
        h2 { (cx.t("transparency-ended")) }
        (orders_table(&cx, &ended, true))
    };
    Ok(page(&cx, cx.t("transparency-title"), body).into_response())
}
