//! Blocking orders: the list (state filter, sort and page in the URL) and
//! one order's page, which shows everything a second person must see
//! before approving — its names, blast radius, due-process reasons,
//! platform responses and the authoriser's status — and only then the
//! forms: approve (approver, never the proposer), lift (officer,
//! approver), a platform's response.
//!
//! Scoping and decisions are the API's (`order_routes.rs`): `Role::may`,
//! a platform reads only orders told to it (`Store::order_affects`, else a
//! 404 page), and `Store::approve_order`, `lift_order` and
//! `respond_to_order` decide. Four eyes is the store's: a page only hides
//! the approve button from the proposer, and a refusal shows on the page.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tapis_core::order::OrderState;
use tapis_core::party::PartyKind;
use tapis_core::role::Action;
use tapis_store::{DueProcess, Order, OrderQuery, Session};

use super::checked_form;
use super::notices::{may, short};
use super::table::{ListState, PAGE, bad_filter};
use crate::error::WebError;
use crate::layout::{badge, maybe_time, page, time};
use crate::session::{Ctx, query};

const STATES: [OrderState; 6] = [
    OrderState::Draft,
    OrderState::Approved,
    OrderState::Scheduled,
    OrderState::InForce,
    OrderState::Expired,
    OrderState::Lifted,
];

/// An order id as the API accepts it (a UUID, lowercased), or a 404 page.
pub(crate) fn order_id(cx: &Ctx, raw: &str) -> Result<String, WebError> {
    if raw.len() == 36 && raw.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(WebError::not_found(cx.lang))
    }
}

/// The order a session may read (the API's `read_scope`), or a 404 page.
pub(crate) async fn readable(cx: &Ctx, s: &Session, raw: &str) -> Result<Order, WebError> {
    may(cx, s, Action::ReadOrders)?;
    let id = order_id(cx, raw)?;
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let p = &s.principal;
    if p.party_kind == PartyKind::Platform
        && !store.order_affects(&id, p.party_id).await.map_err(err)?
    {
        return Err(WebError::not_found(cx.lang));
    }
    store.get_order(&id).await.map_err(err)
}

/// A table of orders (the list, the approvals page, the ISP page and the
/// platform's inbox share it); `list` makes the heads sortable.
pub(crate) fn table(cx: &Ctx, orders: &[Order], list: Option<&ListState>) -> Markup {
    let head = |col: &str, key: &str| match list {
        Some(l) => l.th(cx, col, cx.t(key)),
        None => html! { th scope="col" { (cx.t(key)) } },
    };
    html! {
        div.table-wrap {
            table {
                caption.muted { (cx.tf("orders-count", &[("n", &cx.lang.number(orders.len() as i64))])) }
                thead { tr {
                    (head("created", "col-order"))
                    (head("state", "col-state"))
                    (head("category", "col-category"))
                    th scope="col" { (cx.t("order-action")) }
                    (head("names", "col-names"))
                    (head("effective", "order-effective"))
                    (head("expires", "order-expires"))
                } }
                tbody {
                    @for o in orders {
                        tr {
                            td {
                                a href={ "/orders/" (o.id) } { code { (short(&o.id)) } }
                                @if let Some(t) = o.targets.first() { br; small.muted { (t.name) } }
                            }
                            td { (badge(cx, o.state.as_str())) @if o.emergency { " " span.badge.red { (cx.t("order-emergency")) } } }
                            td { (o.category.replace('_', " ")) }
                            td { (action_name(cx, o.action.as_str())) }
                            td.num { (cx.lang.number(o.target_count)) }
                            td { (time(cx, o.effective_at)) }
                            td { (time(cx, o.expires_at)) }
                        }
                    }
                    @if orders.is_empty() { tr { td colspan="7" { (cx.t("empty")) } } }
                }
            }
        }
    }
}

pub(crate) fn action_name(cx: &Ctx, action: &str) -> &'static str {
    match action {
        "nxdomain" => cx.t("action-nxdomain"),
        "nodata" => cx.t("action-nodata"),
        "drop" => cx.t("action-drop"),
        "passthru" => cx.t("action-passthru"),
        _ => cx.t("action-walled_garden"),
    }
}

pub async fn list(cx: Ctx, uri: Uri) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadOrders)?;
    if s.principal.party_kind == PartyKind::Platform {
        // as in the API: a platform reads the orders told to it, in its inbox
        return Ok(Redirect::to("/inbox").into_response());
    }
    let q = query(&uri);
    let list = ListState::parse(
        &cx,
        "/orders",
        &q,
        &[
            "created",
            "state",
            "category",
            "names",
            "effective",
            "expires",
        ],
        false,
    )?;
    let state = match q.get("state") {
        "" => None,
        v => Some(OrderState::parse(v).map_err(|_| bad_filter(&cx, "state"))?),
    };
    let orders = cx
        .state
        .store
        .query_orders(&OrderQuery {
            states: state.into_iter().collect(),
            sort: list.sort.to_owned(),
            ascending: list.ascending,
            offset: list.offset(),
            limit: PAGE,
        })
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let body = html! {
        h1 { (cx.t("orders-title")) }
        form.filters method="get" action="/orders" aria-label=(cx.t("filters")) {
            div {
                label for="f-state" { (cx.t("col-state")) }
                select id="f-state" name="state" {
                    option value="" { (cx.t("any")) }
                    @for st in STATES {
                        option value=(st.as_str()) selected[state == Some(st)] { (crate::layout::state_name(cx.lang, st.as_str())) }
                    }
                }
            }
            @if !q.get("sort").is_empty() { input type="hidden" name="sort" value=(list.sort); }
            @if !q.get("dir").is_empty() { input type="hidden" name="dir" value=(if list.ascending { "asc" } else { "desc" }); }
            button type="submit" { (cx.t("filter-apply")) }
        }
        (table(&cx, &orders, Some(&list)))
        (list.pager(&cx, orders.len() as u32 == PAGE))
    };
    Ok(page(&cx, cx.t("orders-title"), body).into_response())
}

pub async fn detail(cx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let s = cx.require()?;
    let o = readable(&cx, s, &id).await?;
    Ok(render(&cx, s, &o, None).await?.into_response())
}

/// What the page shows beside an order: its blast radius, due process and
/// the authorisers' enrolled keys.
struct Context {
    radius: tapis_store::BlastRadius,
    due: DueProcess,
    keys: Vec<tapis_store::AuthoriserKey>,
    party_names: Vec<(String, String)>,
    proposer: tapis_store::OrderProposer,
}

async fn gather(cx: &Ctx, o: &Order) -> Result<Context, WebError> {
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    Ok(Context {
        radius: store.blast_radius(&o.id).await.map_err(err)?,
        due: store.due_process(&o.id).await.map_err(err)?,
        keys: store.authoriser_keys().await.map_err(err)?,
        party_names: store
            .list_parties(None)
            .await
            .map_err(err)?
            .into_iter()
            .map(|p| (p.id.to_string(), p.name))
            .collect(),
        proposer: store.order_proposer(&o.id).await.map_err(err)?,
    })
}

/// Whether this session's person (or token) proposed the order: the
/// store would refuse their approval, so the page does not offer it.
fn proposed_by(s: &Session, p: &tapis_store::OrderProposer) -> bool {
    p.token_id == s.principal.token_id.to_string()
        || (p.person.is_some() && p.person == s.principal.person)
}

/// One order's page; `message` is a refusal (or an outcome) to show.
pub(crate) async fn render(
    cx: &Ctx,
    s: &Session,
    o: &Order,
    message: Option<(bool, String)>,
) -> Result<axum::response::Html<String>, WebError> {
    let c = gather(cx, o).await?;
    let name_of = |id: &str| {
        c.party_names
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let p = &s.principal;
    let title = cx.tf("order-title", &[("id", short(&o.id))]);
    let needs = !c.due.needs_authorisation.is_empty();
    let authorised = c
        .due
        .authorisations
        .iter()
        .any(|a| a.decision == "authorise");
    let is_proposer = proposed_by(s, &c.proposer);
    let live = !o.state.is_terminal();
    let body = html! {
        h1 { (title) " " (badge(cx, o.state.as_str())) @if o.emergency { " " span.badge.red { (cx.t("order-emergency")) } } }
        @if let Some((ok, m)) = &message {
            @if *ok { p.notice-box role="status" { (m) } } @else { p.error role="alert" { (m) } }
        }
        dl.facts {
            dt { (cx.t("col-order")) } dd { code { (o.id) } }
            dt { (cx.t("order-action")) } dd { (action_name(cx, o.action.as_str())) }
            dt { (cx.t("col-category")) } dd { (o.category.replace('_', " ")) }
            dt { (cx.t("compose-legal-ref")) } dd { (o.legal_basis.reference) }
            dt { (cx.t("compose-legal-text")) } dd { (o.legal_basis.text) }
            @if let Some(e) = &o.explanation { dt { (cx.t("order-explanation")) } dd { (e) } }
            dt { (cx.t("order-effective")) } dd { (time(cx, o.effective_at)) }
            dt { (cx.t("order-expires")) } dd { (time(cx, o.expires_at)) }
            dt { (cx.t("order-review")) } dd { (time(cx, o.review_at)) }
            dt { (cx.t("order-proposer")) } dd { (o.proposer_label) " · " (time(cx, o.created_at)) }
            dt { (cx.t("order-approver")) } dd {
                @if let Some(a) = &o.approver_label { (a) " · " (maybe_time(cx, o.approved_at)) } @else { span.muted { (cx.t("order-not-approved")) } }
            }
            @if let Some(t) = o.activated_at { dt { (cx.t("order-activated")) } dd { (time(cx, t)) } }
            @if let Some(t) = o.ended_at { dt { (cx.t("col-ended")) } dd { (time(cx, t)) @if let Some(r) = &o.end_reason { " · " (r) } } }
            @if !o.notices.is_empty() && p.role.reads_everything() {
                dt { (cx.t("col-notices")) }
                dd { @for n in &o.notices { a href={ "/notices/" (n) } { code { (short(n)) } } " " } }
            }
        }

        section id="names" aria-labelledby="h-names" {
            h2 id="h-names" { (cx.t("order-names")) " (" (cx.lang.number(o.target_count)) ")" }
            @if (o.targets.len() as i64) < o.target_count {
                p.muted { (cx.tf("order-names-first", &[("n", &cx.lang.number(o.targets.len() as i64))])) }
            }
            ul.names { @for t in &o.targets { li { code { @if t.include_subdomains { "*." } (t.name) } } } }
        }

        section id="blast-radius" aria-labelledby="h-radius" {
            h2 id="h-radius" { (cx.t("order-radius")) }
            p.lead {
                (cx.tf("order-radius-summary", &[
                    ("platforms", &cx.lang.number(c.radius.platform_domains_hit as i64)),
                    ("overlaps", &cx.lang.number(c.radius.overlapping_orders as i64)),
                    ("exceptions", &cx.lang.number(c.radius.exceptions_hit as i64)),
                ]))
            }
            @if c.radius.platform_domains_hit > 0 { p.error role="note" { (cx.t("order-radius-platform-warning")) } }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { (cx.t("order-name")) }
                        th scope="col" { (cx.t("order-coverage")) }
                        th scope="col" { (cx.t("order-platforms-hit")) }
                        th scope="col" { (cx.t("order-overlaps")) }
                    } }
                    tbody {
                        @for t in &c.radius.targets {
                            tr {
                                td { code { (t.name) } }
                                td { (cx.t(if t.wildcard { "order-coverage-wildcard" } else { "order-coverage-exact" })) }
                                td { @for h in &t.platforms { (h.name) " (" code { (h.domain) } ") " } @if t.platforms.is_empty() { span.muted { "—" } } }
                                td { @for ov in &t.overlaps { a href={ "/orders/" (ov.order_id) } { code { (short(&ov.order_id)) } } " " (badge(cx, ov.state.as_str())) " " } @if t.overlaps.is_empty() { span.muted { "—" } } }
                            }
                        }
                    }
                }
            }
        }

        section id="due-process" aria-labelledby="h-due" {
            h2 id="h-due" { (cx.t("order-due-process")) }
            @if needs {
                p { strong { (cx.t("order-needs-authorisation")) } }
                ul { @for r in &c.due.needs_authorisation { li { (sensitivity(cx, r)) } } }
            } @else {
                p { (cx.t("order-no-authorisation-needed")) }
            }
            @if !c.due.platforms.is_empty() {
                p {
                    (cx.t("order-platforms-told")) " "
                    @for (i, pl) in c.due.platforms.iter().enumerate() { @if i > 0 { ", " } (name_of(pl)) }
                    @if let Some(t) = c.due.platforms_notified_at { " · " (time(cx, t)) }
                }
            }
            @match &c.due.publication {
                Some(pb) => p { (cx.tf("order-published", &[("basis", &pb.basis.replace('_', " "))])) " · " (time(cx, pb.published_at)) },
                None => p.muted { (cx.t("order-not-published")) },
            }
            p.muted { small { (cx.t("order-sha")) " " code { (c.due.order_sha256) } } }
        }

        section id="responses" aria-labelledby="h-responses" {
            h2 id="h-responses" { (cx.t("order-responses")) }
            @if c.due.responses.is_empty() {
                p.muted { (cx.t("order-no-responses")) }
            } @else {
                div.table-wrap { table {
                    thead { tr {
                        th scope="col" { (cx.t("col-platform")) }
                        th scope="col" { (cx.t("order-response-kind")) }
                        th scope="col" { (cx.t("order-response-text")) }
                        th scope="col" { (cx.t("col-created")) }
                    } }
                    tbody { @for r in &c.due.responses {
                        tr {
                            td { (name_of(&r.party_id)) br; small.muted { (r.token_label) } }
                            td { (response_kind(cx, &r.kind)) }
                            td { (r.text) }
                            td { (time(cx, r.created_at)) }
                        }
                    } }
                } }
            }
        }

        section id="authorisation" aria-labelledby="h-auth" {
            h2 id="h-auth" { (cx.t("order-authoriser-status")) }
            p.lead {
                @if !needs { (cx.t("order-auth-not-required")) }
                @else if authorised { (cx.t("order-auth-given")) }
                @else { (cx.t("order-auth-waiting")) }
            }
            @for a in &c.due.authorisations {
                @let fp = c.keys.iter().find(|k| k.party_id.to_string() == a.party_id && k.retired_at.is_none()).map(|k| k.fingerprint.clone());
                p {
                    strong { (if a.decision == "authorise" { cx.t("order-auth-authorised-by") } else { cx.t("order-auth-refused-by") }) }
                    " " (name_of(&a.party_id)) " (" (a.token_label) ") · " (time(cx, a.created_at))
                    br; (a.reasons)
                    @if let Some(fp) = fp { br; small.muted { (cx.t("order-auth-key")) " " code.break { (fp) } } }
                }
            }
        }

        section id="actions" aria-labelledby="h-actions" {
            h2 id="h-actions" { (cx.t("order-actions")) }
            @if o.state == OrderState::Draft && p.role.may(Action::ApproveOrder) {
                @if is_proposer {
                    p.notice-box role="note" { (cx.t("order-four-eyes-yours")) }
                } @else {
                    form.stack method="post" action={ "/orders/" (o.id) "/approve" } aria-label=(cx.t("order-approve")) {
                        input type="hidden" name="csrf" value=(s.csrf);
                        p { (cx.t("order-approve-help")) }
                        div { button type="submit" { (cx.t("order-approve")) } }
                    }
                }
            }
            @if live && p.role.may(Action::LiftOrder) && o.state != OrderState::Draft {
                form.stack method="post" action={ "/orders/" (o.id) "/lift" } aria-label=(cx.t("order-lift")) {
                    input type="hidden" name="csrf" value=(s.csrf);
                    div {
                        label for="lift-reason" { (cx.t("order-lift-reason")) }
                        textarea id="lift-reason" name="reason" required maxlength="4000" {}
                    }
                    div { button type="submit" { (cx.t("order-lift")) } }
                }
            }
            @if live && p.role.may(Action::RespondToOrder) {
                (response_form(cx, s, o))
            }
            @if live && p.role.may(Action::AuthoriseOrder) {
                p { a href={ "/authorise/" (o.id) } { (cx.t("order-go-sign")) } }
            }
            @if p.role.may(Action::ReadOrders) && p.party_kind != PartyKind::Platform {
                p { a href="/orders" { (cx.t("back-to-list")) } }
            }
        }
    };
    Ok(page(cx, &title, body))
}

/// Why an order needs an authorisation, in the reader's language (core's
/// `Sensitivity::describe` is the English the API gives).
pub(crate) fn sensitivity(cx: &Ctx, s: &tapis_core::due_process::Sensitivity) -> String {
    use tapis_core::due_process::Sensitivity as S;
    match s {
        S::PlatformDomain { target, domain, .. } => {
            cx.tf("sens-platform", &[("target", target), ("domain", domain)])
        }
        S::PublicSuffix { target, suffix } => {
            cx.tf("sens-suffix", &[("target", target), ("suffix", suffix)])
        }
        S::PopularSite { target, site } => {
            cx.tf("sens-popular", &[("target", target), ("site", site)])
        }
    }
}

fn response_kind(cx: &Ctx, kind: &str) -> &'static str {
    match kind {
        "comply" => cx.t("response-comply"),
        "dispute" => cx.t("response-dispute"),
        _ => cx.t("response-clarification"),
    }
}

/// A platform's answer to an order told to it.
fn response_form(cx: &Ctx, s: &Session, o: &Order) -> Markup {
    html! {
        form.stack method="post" action={ "/orders/" (o.id) "/responses" } aria-label=(cx.t("order-respond")) {
            input type="hidden" name="csrf" value=(s.csrf);
            p { (cx.t("order-respond-help")) }
            div {
                label for="response-kind" { (cx.t("order-response-kind")) }
                select id="response-kind" name="kind" {
                    @for k in ["comply", "dispute", "clarification"] { option value=(k) { (response_kind(cx, k)) } }
                }
            }
            div {
                label for="response-text" { (cx.t("order-response-text")) }
                textarea id="response-text" name="text" required maxlength="20000" {}
            }
            div { button type="submit" { (cx.t("order-respond")) } }
        }
    }
}

/// A refused action: the order's page again with the store's reason
/// (after `lead`, a translated sentence, when given). A missing or
/// unreadable order stays a 404 page.
async fn refused(
    cx: &Ctx,
    s: &Session,
    id: &str,
    e: tapis_store::Error,
    lead: Option<&str>,
) -> Response {
    use tapis_store::Error as E;
    let (status, msg) = match e {
        E::Conflict(m) => (StatusCode::CONFLICT, m),
        E::Domain(d @ tapis_core::Error::Forbidden { .. }) => {
            (StatusCode::FORBIDDEN, d.to_string())
        }
        E::Domain(
            d @ (tapis_core::Error::Invalid { .. } | tapis_core::Error::IllegalTransition { .. }),
        ) => (StatusCode::UNPROCESSABLE_ENTITY, d.to_string()),
        other => return WebError::from_store(cx.lang, other).into_response(),
    };
    let msg = match lead {
        Some(l) => format!("{l} {}", cx.tf("action-refused", &[("why", &msg)])),
        None => cx.tf("action-refused", &[("why", &msg)]),
    };
    match readable(cx, s, id).await {
        Ok(o) => match render(cx, s, &o, Some((false, msg))).await {
            Ok(html) => (status, html).into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

pub async fn approve(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    checked_form(&cx, &body)?;
    may(&cx, s, Action::ApproveOrder)?;
    let oid = order_id(&cx, &id)?;
    match cx.state.store.approve_order(&s.principal, &oid).await {
        Ok(_) => Ok(Redirect::to(&format!("/orders/{oid}")).into_response()),
        // the store's four eyes (or a machine credential) said no
        Err(e @ tapis_store::Error::Domain(tapis_core::Error::Forbidden { .. })) => {
            Ok(refused(&cx, s, &oid, e, Some(cx.t("order-four-eyes-refused"))).await)
        }
        Err(e) => Ok(refused(&cx, s, &oid, e, None).await),
    }
}

pub async fn lift(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::LiftOrder)?;
    let oid = order_id(&cx, &id)?;
    match cx
        .state
        .store
        .lift_order(&s.principal, &oid, form.get("reason"))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/orders/{oid}")).into_response()),
        Err(e) => Ok(refused(&cx, s, &oid, e, None).await),
    }
}

pub async fn respond(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::RespondToOrder)?;
    let oid = order_id(&cx, &id)?;
    match cx
        .state
        .store
        .respond_to_order(&s.principal, &oid, form.get("kind"), form.get("text"))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/orders/{oid}#responses")).into_response()),
        Err(e) => Ok(refused(&cx, s, &oid, e, None).await),
    }
}
