//! The public register, no sign-in: `/register` searches approved orders
//! or submitted notices (text, category, legal basis, state, dates,
//! platform; a page at a time with a link to the next), and
//! `/register/orders/{id}`, `/register/notices/{id}` show one entry. What
//! is shown is what the API's register shows (core's `register` under the
//! configured policy, through the same store methods): withheld values
//! read "withheld" and every withholding is counted on the page.

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use tapis_core::register::{RegisterNotice, RegisterOrder, Withheld};
use tapis_store::register::{Kind, RawSearch, RegisterQuery};

use crate::error::WebError;
use crate::layout::{maybe_time, page, time};
use crate::session::{Ctx, query, url_encode};

const FIELDS: [&str; 8] = [
    "q",
    "category",
    "legal_basis",
    "state",
    "from",
    "to",
    "platform",
    "limit",
];

fn withheld(cx: &Ctx, w: &Withheld) -> Markup {
    html! {
        @if w.reasons.is_empty() {
            p.muted { (cx.t("register-nothing-withheld")) }
        } @else {
            ul.withheld {
                @for r in &w.reasons { li { (r) } }
            }
        }
    }
}

fn category_label(cx: &Ctx, id: &str) -> String {
    cx.state
        .taxonomy
        .categories
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.label.clone())
        .unwrap_or_else(|| id.replace('_', " "))
}

pub async fn search(cx: Ctx, uri: Uri) -> Result<Response, WebError> {
    let f = query(&uri);
    let kind = if f.get("kind") == "notices" {
        Kind::Notices
    } else {
        Kind::Orders
    };
    let some = |k: &str| {
        let v = f.get(k).trim();
        (!v.is_empty()).then(|| v.to_owned())
    };
    let raw = RawSearch {
        q: some("q"),
        category: some("category"),
        legal_basis: some("legal_basis"),
        state: some("state"),
        from: some("from"),
        to: some("to"),
        platform: some("platform"),
        cursor: some("cursor"),
        limit: some("limit"),
    };
    let err = |e| WebError::from_store(cx.lang, e);
    let q = RegisterQuery::parse(&cx.state.taxonomy, &raw, kind)
        .map_err(|e| err(tapis_store::Error::Domain(e)))?;
    let store = &cx.state.store;
    let policy = &cx.state.register;
    let (rows, next) = match kind {
        Kind::Orders => {
            let p = store.register_orders(policy, &q).await.map_err(err)?;
            (orders_table(&cx, &p.entries), p.next)
        }
        Kind::Notices => {
            let p = store.register_notices(policy, &q).await.map_err(err)?;
            (notices_table(&cx, &p.entries), p.next)
        }
    };
    let kind_value = if kind == Kind::Notices {
        "notices"
    } else {
        "orders"
    };
    let mut next_link = format!("/register?kind={kind_value}");
    for k in FIELDS {
        let v = f.get(k).trim();
        if !v.is_empty() {
            next_link.push_str(&format!("&{k}={}", url_encode(v)));
        }
    }
    let states: &[&str] = match kind {
        Kind::Orders => &["approved", "scheduled", "in_force", "expired", "lifted"],
        Kind::Notices => &[
            "submitted",
            "delivered",
            "acknowledged",
            "escalated",
            "disputed",
            "closed",
            "withdrawn",
        ],
    };
    let body = html! {
        h1 { (cx.t("register-title")) }
        p.lead { (cx.t("register-lead")) }
        p.muted { (cx.tf("register-policy", &[("hash", policy.sha256())])) }
        nav aria-label=(cx.t("register-kind")) {
            a href="/register?kind=orders" aria-current=[(kind == Kind::Orders).then_some("page")] { (cx.t("register-orders")) }
            " · "
            a href="/register?kind=notices" aria-current=[(kind == Kind::Notices).then_some("page")] { (cx.t("register-notices")) }
        }
        form.filters method="get" action="/register" role="search" {
            input type="hidden" name="kind" value=(kind_value);
            div {
                label for="q" { (cx.t("register-text")) }
                input type="search" id="q" name="q" value=(f.get("q")) maxlength="200";
            }
            div {
                label for="category" { (cx.t("col-category")) }
                select id="category" name="category" {
                    option value="" { (cx.t("register-any")) }
                    @for c in &cx.state.taxonomy.categories {
                        option value=(c.id) selected[f.get("category") == c.id] { (c.label) }
                    }
                }
            }
            div {
                label for="legal_basis" { (cx.t("block-legal-basis")) }
                input type="text" id="legal_basis" name="legal_basis" value=(f.get("legal_basis")) maxlength="200";
            }
            div {
                label for="state" { (cx.t("register-state")) }
                select id="state" name="state" {
                    option value="" { (cx.t("register-any")) }
                    @for s in states {
                        option value=(s) selected[f.get("state") == *s] { (s.replace('_', " ")) }
                    }
                }
            }
            div {
                label for="from" { (cx.t("register-from")) }
                input type="date" id="from" name="from" value=(f.get("from"));
            }
            div {
                label for="to" { (cx.t("register-to")) }
                input type="date" id="to" name="to" value=(f.get("to"));
            }
            div {
                label for="platform" { (cx.t("register-platform")) }
                input type="text" id="platform" name="platform" value=(f.get("platform")) maxlength="64";
            }
            div { button type="submit" { (cx.t("register-search")) } }
        }
        (rows)
        @if let Some(c) = next {
            p { a rel="next" href={ (next_link) "&cursor=" (url_encode(&c.to_string())) } { (cx.t("register-next")) } }
        }
        h2 { (cx.t("register-data-title")) }
        p { (cx.t("register-data-text")) }
        ul {
            li { a href="/api/v1/register/dumps" { (cx.t("register-dumps")) } }
            li { a href="/api/v1/register/policy" { (cx.t("register-policy-link")) } }
            li { (cx.t("register-dsa")) " " code { "/api/v1/register/dsa-sor?from=YYYY-MM-DD&to=YYYY-MM-DD" } }
        }
    };
    Ok(page(&cx, cx.t("register-title"), body).into_response())
}

fn orders_table(cx: &Ctx, orders: &[RegisterOrder]) -> Markup {
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { (cx.t("col-order")) }
                    th scope="col" { (cx.t("col-category")) }
                    th scope="col" { (cx.t("block-legal-basis")) }
                    th scope="col" { (cx.t("register-authoriser")) }
                    th.num scope="col" { (cx.t("col-names")) }
                    th scope="col" { (cx.t("register-state")) }
                    th scope="col" { (cx.t("register-effective")) }
                    th scope="col" { (cx.t("block-expires")) }
                    th scope="col" { (cx.t("register-withheld")) }
                } }
                tbody {
                    @for o in orders {
                        tr {
                            td { a href={ "/register/orders/" (o.id) } { code { (o.id.get(..8).unwrap_or(&o.id)) } } }
                            td { (category_label(cx, &o.category)) }
                            td { (o.legal_basis.reference) }
                            td { @if let Some(a) = &o.authorisation { (a.authoriser) } @else { span.muted { "—" } } }
                            td.num { (cx.lang.number(i64::try_from(o.names_count).unwrap_or(i64::MAX))) }
                            td { (o.state.replace('_', " ")) }
                            td { (time(cx, o.effective_at)) }
                            td { (time(cx, o.expires_at)) }
                            td { (o.withheld.reasons.join("; ")) }
                        }
                    }
                    @if orders.is_empty() { tr { td colspan="9" { (cx.t("empty")) } } }
                }
            }
        }
    }
}

fn notices_table(cx: &Ctx, notices: &[RegisterNotice]) -> Markup {
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { (cx.t("register-notice")) }
                    th scope="col" { (cx.t("col-category")) }
                    th scope="col" { (cx.t("block-legal-basis")) }
                    th scope="col" { (cx.t("col-platform")) }
                    th.num scope="col" { (cx.t("register-items")) }
                    th scope="col" { (cx.t("register-state")) }
                    th scope="col" { (cx.t("register-submitted")) }
                    th scope="col" { (cx.t("register-withheld")) }
                } }
                tbody {
                    @for n in notices {
                        tr {
                            td { a href={ "/register/notices/" (n.id) } { code { (n.id.get(..8).unwrap_or(&n.id)) } } }
                            td { (category_label(cx, &n.category)) }
                            td { (n.legal_basis.reference) }
                            td { (n.platform.name) }
                            td.num { (cx.lang.number(i64::try_from(n.items_count).unwrap_or(i64::MAX))) }
                            td { (n.state.replace('_', " ")) }
                            td { (time(cx, n.submitted_at)) }
                            td { (n.withheld.reasons.join("; ")) }
                        }
                    }
                    @if notices.is_empty() { tr { td colspan="8" { (cx.t("empty")) } } }
                }
            }
        }
    }
}

pub async fn order(cx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    if id.len() > 64 {
        return Err(WebError::not_found(cx.lang));
    }
    let o = cx
        .state
        .store
        .register_order(&cx.state.register, &id)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let body = html! {
        p { a href="/register?kind=orders" { (cx.t("register-back")) } }
        h1 { (cx.t("col-order")) " " code { (o.id) } }
        dl.facts {
            dt { (cx.t("col-category")) } dd { (category_label(&cx, &o.category)) }
            dt { (cx.t("register-state")) } dd { (o.state.replace('_', " ")) }
            dt { (cx.t("register-action")) } dd { (o.action) }
            dt { (cx.t("block-legal-basis")) } dd { (o.legal_basis.reference) br; (o.legal_basis.text) }
            @if let Some(e) = &o.explanation { dt { (cx.t("register-explanation")) } dd { (e) } }
            dt { (cx.t("register-issuer")) } dd { (o.issuing_authority) }
            @if let Some(p) = &o.proposer { dt { (cx.t("register-proposer")) } dd { (p) } }
            @if let Some(p) = &o.approver { dt { (cx.t("register-approver")) } dd { (p) } }
            dt { (cx.t("register-authoriser")) }
            dd {
                @if let Some(a) = &o.authorisation {
                    (a.authoriser) " (" (a.decision) ", " (time(&cx, a.at)) ")"
                    @if let Some(s) = &a.signer { " · " (cx.t("register-signer")) " " (s) }
                } @else { (cx.t("register-no-authoriser")) }
            }
            dt { (cx.t("register-approved")) } dd { (time(&cx, o.approved_at)) }
            dt { (cx.t("register-effective")) } dd { (time(&cx, o.effective_at)) }
            dt { (cx.t("block-expires")) } dd { (time(&cx, o.expires_at)) }
            dt { (cx.t("col-ended")) } dd { (maybe_time(&cx, o.ended_at)) @if let Some(r) = &o.end_reason { " · " (r) } }
            dt { (cx.t("register-listed")) } dd { (time(&cx, o.listed_at)) }
        }
        h2 { (cx.tf("register-names", &[("n", &cx.lang.number(i64::try_from(o.names_count).unwrap_or(i64::MAX)))])) }
        ul.names { @for n in &o.names { li { code { (n) } } } }
        @if !o.platforms.is_empty() {
            h2 { (cx.t("register-platforms")) }
            ul { @for p in &o.platforms { li { (p.name) } } }
        }
        h2 { (cx.t("register-withheld")) }
        (withheld(&cx, &o.withheld))
        p.muted { (cx.tf("register-policy", &[("hash", &o.policy_sha256)])) }
    };
    Ok(page(&cx, cx.t("register-title"), body).into_response())
}

pub async fn notice(cx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    if id.len() > 64 {
        return Err(WebError::not_found(cx.lang));
    }
    let n = cx
        .state
        .store
        .register_notice(&cx.state.register, &id)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let body = html! {
        p { a href="/register?kind=notices" { (cx.t("register-back")) } }
        h1 { (cx.t("register-notice")) " " code { (n.id) } }
        dl.facts {
            dt { (cx.t("col-category")) } dd { (category_label(&cx, &n.category)) }
            dt { (cx.t("register-state")) } dd { (n.state.replace('_', " ")) }
            dt { (cx.t("block-legal-basis")) } dd { (n.legal_basis.reference) br; (n.legal_basis.text) }
            dt { (cx.t("register-explanation")) } dd { (n.explanation) }
            dt { (cx.t("register-issuer")) } dd { (n.issuing_authority) @if let Some(p) = &n.issuer { " · " (p) } }
            dt { (cx.t("col-platform")) } dd { (n.platform.name) }
            dt { (cx.t("register-scope")) } dd { (n.territorial_scope.join(", ")) }
            dt { (cx.t("register-submitted")) } dd { (time(&cx, n.submitted_at)) }
            dt { (cx.t("col-ended")) } dd { (maybe_time(&cx, n.closed_at)) }
            dt { (cx.t("register-listed")) } dd { (time(&cx, n.listed_at)) }
        }
        h2 { (cx.tf("register-items-n", &[("n", &cx.lang.number(i64::try_from(n.items_count).unwrap_or(i64::MAX)))])) }
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { (cx.t("register-kind-col")) }
                    th scope="col" { (cx.t("register-locator")) }
                    th scope="col" { (cx.t("register-decision")) }
                    th scope="col" { (cx.t("register-reason")) }
                } }
                tbody {
                    @for i in &n.items {
                        tr {
                            td { (i.position + 1) }
                            td { (i.kind.replace('_', " ")) }
                            td { code { (i.locator) } }
                            td { (i.decision.replace('_', " ")) " " (maybe_time(&cx, i.decided_at)) }
                            td { @if let Some(r) = &i.reason { (r) } }
                        }
                    }
                }
            }
        }
        h2 { (cx.t("register-withheld")) }
        (withheld(&cx, &n.withheld))
        p.muted { (cx.tf("register-policy", &[("hash", &n.policy_sha256)])) }
    };
    Ok(page(&cx, cx.t("register-title"), body).into_response())
}
