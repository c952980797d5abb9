//! Flags in the browser, for those who send them: the public "Report
//! content" form (no account) with the status page its reference opens,
//! and a flagger party's "Flag content" form and "My flags" list with each
//! flag's outcome (accepted → notice → the platform's decision per target).
//!
//! The public form carries no proof of work (pages carry no script under
//! the CSP): its abuse control is the double-submit CSRF token the sign-in
//! form uses plus a stricter per-address allowance than the API's
//! ([`REPORTS_PER_WINDOW`] in 15 minutes, `WebState::flag_throttle`, in
//! memory only: the address is never stored). Everything goes through the
//! store methods the API calls (`submit_public_flag`, `public_flag_status`,
//! `submit_flags`, `list_flags`) with the session's principal.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use sha2::{Digest, Sha256};
use tapis_core::flag::{FlagEvidenceInput, FlagInput, FlagLimits, FlagTargetInput, NewFlag};
use tapis_core::role::Action;
use tapis_store::{FlagTargetView, FlagView, PublicFlagStatus, Session};

use super::checked_form;
use super::notices::may;
use crate::error::WebError;
use crate::layout::{badge, maybe_time, page, time};
use crate::session::{Ctx, Form, form_token, query, random_token};

/// Public reports one address may send through the web form in the
/// throttle's window (15 minutes): stricter than the API (a burst of 5,
/// then 6 an hour, each with a proof of work), as the form needs no work.
pub const REPORTS_PER_WINDOW: u32 = 3;

/// Target rows on a form.
const TARGET_ROWS: usize = 3;
const KINDS: [&str; 5] = [
    "url",
    "domain",
    "platform_account",
    "platform_channel",
    "content_hash",
];

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The flag's fields from a form (targets from the rows that have a value).
fn input_of(f: &Form, public: bool) -> FlagInput {
    let targets = (0..TARGET_ROWS)
        .filter_map(|i| {
            let value = f.get(&format!("target_value_{i}")).trim();
            (!value.is_empty()).then(|| FlagTargetInput {
                kind: f.get(&format!("target_kind_{i}")).to_owned(),
                value: value.to_owned(),
                native_id: None,
            })
        })
        .collect();
    let sha = f.get("evidence_sha256").trim();
    let evidence = if sha.is_empty() {
        vec![]
    } else {
        vec![FlagEvidenceInput {
            sha256: sha.to_owned(),
            description: f.get("evidence_description").trim().to_owned(),
        }]
    };
    let contact = f.get("contact").trim();
    FlagInput {
        targets,
        category: f.get("category").to_owned(),
        reasons: f.get("reasons").to_owned(),
        evidence,
        contact: (public && !contact.is_empty()).then(|| contact.to_owned()),
    }
}

/// The form's fields (targets, category, reasons, evidence, and the
/// optional contact for the public).
fn flag_fields(cx: &Ctx, f: &Form, public: bool) -> Markup {
    html! {
        fieldset {
            legend { (cx.t("flag-targets")) }
            p.muted { small { (cx.t("flag-targets-help")) } }
            @for i in 0..TARGET_ROWS {
                @let kind_name = format!("target_kind_{i}");
                @let value_name = format!("target_value_{i}");
                div.items-row {
                    div {
                        label for=(kind_name) { (cx.tf("flag-target-kind-n", &[("n", &(i + 1).to_string())])) }
                        select id=(kind_name) name=(kind_name) {
                            @for k in KINDS { option value=(k) selected[f.get(&kind_name) == k] { (cx.t(&format!("kind-{k}"))) } }
                        }
                    }
                    div {
                        label for=(value_name) { (cx.tf("flag-target-value-n", &[("n", &(i + 1).to_string())])) }
                        input type="text" id=(value_name) name=(value_name) value=(f.get(&value_name)) required[i == 0] spellcheck="false" maxlength="2048";
                    }
                }
            }
        }
        div {
            label for="category" { (cx.t("col-category")) }
            select id="category" name="category" required {
                @for c in &cx.state.taxonomy.categories { option value=(c.id) selected[f.get("category") == c.id] { (c.label) } }
            }
        }
        div {
            label for="reasons" { (cx.t("flag-reasons")) }
            textarea id="reasons" name="reasons" required maxlength=(if public { "4000" } else { "20000" }) { (f.get("reasons")) }
        }
        details open[!f.get("evidence_sha256").is_empty()] {
            summary { (cx.t("flag-evidence")) }
            div {
                label for="evidence_sha256" { (cx.t("flag-evidence-sha256")) }
                input type="text" id="evidence_sha256" name="evidence_sha256" value=(f.get("evidence_sha256")) maxlength="64" spellcheck="false" autocomplete="off";
            }
            div {
                label for="evidence_description" { (cx.t("flag-evidence-description")) }
                input type="text" id="evidence_description" name="evidence_description" value=(f.get("evidence_description")) maxlength="500";
            }
        }
        @if public {
            div {
                label for="contact" { (cx.t("report-contact")) }
                input type="email" id="contact" name="contact" value=(f.get("contact")) maxlength="320" autocomplete="email";
                p.muted { small { (cx.t("report-contact-help")) } }
            }
        }
    }
}

fn report_form(cx: &Ctx, token: &str, f: &Form, error: Option<&str>) -> Markup {
    html! {
        h1 { (cx.t("report-title")) }
        p.lead { (cx.t("report-lead")) }
        @if let Some(e) = error {
            p.error role="alert" { (cx.tf("action-refused", &[("why", e)])) }
        }
        form.stack method="post" action="/report" {
            input type="hidden" name="csrf" value=(token);
            (flag_fields(cx, f, true))
            p.muted { small { (cx.t("report-privacy")) } }
            div { button type="submit" { (cx.t("report-go")) } }
        }
        h2 { (cx.t("report-follow")) }
        form.inline method="get" action="/report/status" {
            label for="reference" { (cx.t("report-reference")) }
            " "
            input type="text" id="reference" name="reference" maxlength="40" autocomplete="off" spellcheck="false" required;
            " "
            button type="submit" { (cx.t("report-follow-go")) }
        }
    }
}

/// `GET /report`: the public form.
pub async fn report(cx: Ctx) -> Response {
    let (token, cookie) = if cx.session.is_some() {
        (cx.csrf(), None)
    } else {
        form_token(&cx)
    };
    let body = report_form(&cx, &token, &Form::default(), None);
    with_cookie(
        page(&cx, cx.t("report-title"), body).into_response(),
        cookie,
    )
}

/// `POST /report`: received, then the status page with the reference.
pub async fn submit_report(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let form = checked_form(&cx, &body)?;
    let refuse = |status: StatusCode, why: &str| {
        let body = report_form(&cx, &cx.csrf(), &form, Some(why));
        (status, page(&cx, cx.t("report-title"), body)).into_response()
    };
    let flag = match NewFlag::parse(
        input_of(&form, true),
        &cx.state.taxonomy,
        FlagLimits::PUBLIC,
        true,
        cx.state.store.now(),
    ) {
        Ok(f) => f,
        Err(e) => return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())),
    };
    // only a well-formed report counts against the address
    if let Some(ip) = cx.peer {
        if cx.state.flag_throttle.blocked(ip, REPORTS_PER_WINDOW) {
            return Ok(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                cx.t("report-too-many"),
            ));
        }
        cx.state.flag_throttle.fail(ip);
    }
    match cx.state.store.submit_public_flag(flag).await {
        Ok(f) => Ok(Redirect::to(&format!("/report/{}?received=1", f.reference)).into_response()),
        Err(tapis_store::Error::Domain(e)) => {
            Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

/// A reference as typed: upper-cased; anything else than letters, digits
/// and dashes (or too long) is no reference at all.
fn clean_reference(raw: &str) -> Option<String> {
    let r = raw.trim().to_ascii_uppercase();
    (!r.is_empty() && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(r)
}

/// `GET /report/status?reference=`: the lookup form's target.
pub async fn find_report(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let r = clean_reference(query(&uri).get("reference")).ok_or(WebError::not_found(cx.lang))?;
    Ok(Redirect::to(&format!("/report/{r}")).into_response())
}

fn targets_table(cx: &Ctx, targets: &[FlagTargetView]) -> Markup {
    html! {
        table {
            thead { tr { th { (cx.t("col-kind")) } th { (cx.t("flag-target")) } th { (cx.t("flag-platform-decision")) } } }
            tbody {
                @for t in targets {
                    tr {
                        td { (cx.t(&format!("kind-{}", t.kind.as_str()))) }
                        td { code { (t.value) } }
                        td {
                            @match t.decision {
                                Some(d) => { (badge(cx, d.as_str())) }
                                None => { span.muted { "—" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn status_facts(cx: &Ctx, s: &PublicFlagStatus) -> Markup {
    html! {
        dl.facts {
            dt { (cx.t("report-reference")) } dd { code { (s.reference) } }
            dt { (cx.t("col-state")) } dd { (badge(cx, s.state.as_str())) }
            dt { (cx.t("flag-received")) } dd { (time(cx, s.received_at)) }
            dt { (cx.t("flag-decided")) } dd { (maybe_time(cx, s.decided_at)) }
            @if let Some(r) = &s.decision_reason {
                dt { (cx.t("flag-reason")) } dd { (r) }
            }
        }
        (targets_table(cx, &s.targets))
    }
}

/// `GET /report/{reference}`: where the report is. Needs only the
/// reference; shows nothing about who reported or to whom it went.
pub async fn report_status(
    cx: Ctx,
    Path(reference): Path<String>,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let reference = clean_reference(&reference).ok_or(WebError::not_found(cx.lang))?;
    let s = cx
        .state
        .store
        .public_flag_status(&reference)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let received = query(&uri).get("received") == "1";
    let body = html! {
        h1 { (cx.t("report-status-title")) }
        @if received {
            p.notice-box role="status" { (cx.tf("report-thanks", &[("reference", &s.reference)])) }
        }
        (status_facts(&cx, &s))
        p.muted { small { (cx.t("report-status-help")) } }
    };
    Ok(page(&cx, cx.t("report-status-title"), body).into_response())
}

// ---- a flagger party ----------------------------------------------------

fn flag_form(cx: &Ctx, s: &Session, f: &Form, error: Option<&str>) -> Markup {
    let key = if f.get("idempotency_key").is_empty() {
        random_token()
    } else {
        f.get("idempotency_key").to_owned()
    };
    html! {
        h1 { (cx.t("flag-new-title")) }
        p.lead { (cx.t("flag-new-lead")) }
        @if let Some(e) = error {
            p.error role="alert" { (cx.tf("action-refused", &[("why", e)])) }
        }
        form.stack method="post" action="/flags/new" {
            input type="hidden" name="csrf" value=(s.csrf);
            input type="hidden" name="idempotency_key" value=(key);
            (flag_fields(cx, f, false))
            div { button type="submit" { (cx.t("flag-go")) } }
        }
    }
}

/// `GET /flags/new`: a flagger party's form.
pub async fn new_flag(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::SubmitFlag)?;
    let body = flag_form(&cx, s, &Form::default(), None);
    Ok(page(&cx, cx.t("flag-new-title"), body).into_response())
}

/// `POST /flags/new`: one flag, idempotent on the form's hidden key (a
/// second press of the button is the first flag again).
pub async fn submit_flag(cx: Ctx, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::SubmitFlag)?;
    let again = |status: StatusCode, why: String| {
        let body = flag_form(&cx, s, &form, Some(&why));
        (status, page(&cx, cx.t("flag-new-title"), body)).into_response()
    };
    let key = form.get("idempotency_key").trim().to_owned();
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            cx.t("error-bad-form").to_owned(),
        ));
    }
    let mut h = Sha256::new();
    for (k, v) in form.0.iter().filter(|(k, _)| k != "csrf") {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let fingerprint = hex::encode(h.finalize());
    let flag = match NewFlag::parse(
        input_of(&form, false),
        &cx.state.taxonomy,
        FlagLimits::AGENCY,
        false,
        cx.state.store.now(),
    ) {
        Ok(f) => f,
        Err(e) => return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
    };
    match cx
        .state
        .store
        .submit_flags(&s.principal, vec![flag], Some((&key, &fingerprint)))
        .await
    {
        Ok(_) => Ok(Redirect::to("/flags?sent=1").into_response()),
        Err(e @ (tapis_store::Error::Domain(_) | tapis_store::Error::Conflict(_))) => {
            Ok(again(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
        }
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}

fn outcome(cx: &Ctx, f: &FlagView) -> Markup {
    html! {
        (badge(cx, f.state.as_str()))
        @if let Some(n) = &f.notice_id {
            " → " (cx.t("flag-notice")) " " code { (n.to_string()) }
        }
        @if let Some(r) = &f.decision_reason {
            br; small { (r) }
        }
    }
}

/// `GET /flags`: a flagger's own flags with their outcome (authority
/// staff: every flag, the public reporters unnamed).
pub async fn mine(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadFlags)?;
    let flags = cx
        .state
        .store
        .list_flags(&s.principal, 200)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let sent = query(&uri).get("sent") == "1";
    let body = html! {
        h1 { (cx.t("flags-title")) }
        @if sent { p.notice-box role="status" { (cx.t("flag-sent")) } }
        p.lead { (cx.t("flags-lead")) }
        @if s.principal.role.may(Action::SubmitFlag) {
            p { a href="/flags/new" { (cx.t("flag-new-title")) } }
        }
        @if s.principal.role == tapis_core::role::Role::Flagger {
            p { a href={ "/flaggers/" (s.principal.party_id.to_string()) "/report" } { (cx.t("flagger-report-title")) } }
        }
        @if flags.is_empty() {
            p.muted { (cx.t("flags-none")) }
        } @else {
            table {
                thead { tr {
                    th { (cx.t("report-reference")) } th { (cx.t("flag-received")) } th { (cx.t("col-category")) }
                    th { (cx.t("flag-targets")) } th { (cx.t("flag-outcome")) }
                } }
                tbody {
                    @for f in &flags {
                        tr {
                            td { code { (f.reference) } }
                            td { (time(&cx, f.received_at)) }
                            td { (f.category) }
                            td {
                                @for t in &f.targets {
                                    code { (t.value) } " "
                                    @if let Some(d) = t.decision { (badge(&cx, d.as_str())) }
                                    br;
                                }
                            }
                            td { (outcome(&cx, f)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&cx, cx.t("flags-title"), body).into_response())
}
