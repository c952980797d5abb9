//! The authoriser desk: orders that need an independent authorisation
//! and that this authoriser has not yet decided, and for each the exact
//! statement to sign, how to sign it offline, and a form for the detached
//! signature. The private key never enters tapis: the person signs on
//! their own machine and pastes the signature.
//!
//! The statement is core's `due_process::authorisation_statement` in its
//! RFC 8785 form, the bytes `Store::authorise_order` verifies (as
//! `POST /api/v1/orders/{id}/authorisation`) against the key enrolled on
//! the host for this authoriser; the store decides and records, and the
//! page shows the outcome or the refusal.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use tapis_core::due_process::authorisation_statement;
use tapis_core::role::Action;
use tapis_store::{Order, Session};

use super::checked_form;
use super::notices::{may, short};
use super::orders::{order_id, readable};
use crate::error::WebError;
use crate::layout::{page, time};
use crate::session::{Ctx, Form};

const LIMIT: u32 = 200;

pub async fn desk(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::AuthoriseOrder)?;
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    let waiting = store
        .orders_awaiting_authorisation(s.principal.party_id, LIMIT)
        .await
        .map_err(err)?;
    let keys = store.authoriser_keys().await.map_err(err)?;
    let mine: Vec<_> = keys
        .iter()
        .filter(|k| k.party_id == s.principal.party_id)
        .collect();
    let body = html! {
        h1 { (cx.t("authorise-title")) }
        p.lead { (cx.t("authorise-lead")) }
        h2 { (cx.t("authorise-waiting")) }
        (super::orders::table(&cx, &waiting, None))
        h2 { (cx.t("authorise-keys")) }
        p { (cx.t("authorise-keys-help")) }
        @if mine.is_empty() {
            p.error role="alert" { (cx.t("authorise-no-key")) }
        } @else {
            ul {
                @for k in &mine {
                    li {
                        code.break { (k.fingerprint) } " · " (time(&cx, k.enrolled_at))
                        @if let Some(r) = k.retired_at { " · " (cx.t("authorise-key-retired")) " " (time(&cx, r)) }
                    }
                }
            }
        }
    };
    Ok(page(&cx, cx.t("authorise-title"), body).into_response())
}

/// The statement's exact bytes for `decision`, as text.
fn statement(o: &Order, sha: &str, decision: &str) -> String {
    tapis_core::canonical::to_string(&authorisation_statement(&o.id, sha, decision))
        .unwrap_or_default()
}

pub async fn sign_page(cx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::AuthoriseOrder)?;
    let o = readable(&cx, s, &id).await?;
    Ok(render(&cx, s, &o, &Form::default(), None)
        .await?
        .into_response())
}

async fn render(
    cx: &Ctx,
    s: &Session,
    o: &Order,
    form: &Form,
    message: Option<(bool, String)>,
) -> Result<axum::response::Html<String>, WebError> {
    let due = cx
        .state
        .store
        .due_process(&o.id)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let title = cx.tf("authorise-order-title", &[("id", short(&o.id))]);
    let authorise = statement(o, &due.order_sha256, "authorise");
    let refuse = statement(o, &due.order_sha256, "refuse");
    let command = |text: &str| {
        format!(
            "printf '%s' '{text}' > statement.json\nopenssl pkeyutl -sign -rawin -inkey authoriser-key.pem -in statement.json | base64 -w0"
        )
    };
    let decided = due
        .authorisations
        .iter()
        .filter(|a| a.party_id == s.principal.party_id.to_string())
        .collect::<Vec<_>>();
    let body = html! {
        h1 { (title) " " (crate::layout::badge(cx, o.state.as_str())) }
        @if let Some((ok, m)) = &message {
            @if *ok { p.notice-box role="status" { (m) } } @else { p.error role="alert" { (m) } }
        }
        p { a href={ "/orders/" (o.id) } { (cx.t("authorise-see-order")) } }
        dl.facts {
            dt { (cx.t("col-names")) } dd { (cx.lang.number(o.target_count)) }
            dt { (cx.t("order-effective")) } dd { (time(cx, o.effective_at)) }
            dt { (cx.t("order-expires")) } dd { (time(cx, o.expires_at)) }
            dt { (cx.t("order-needs-authorisation")) } dd {
                @if due.needs_authorisation.is_empty() { (cx.t("order-no-authorisation-needed")) }
                @for r in &due.needs_authorisation { (super::orders::sensitivity(cx, r)) br; }
            }
            dt { (cx.t("order-sha")) } dd { code.break { (due.order_sha256) } }
        }
        @for a in &decided {
            p.notice-box role="status" {
                (if a.decision == "authorise" { cx.t("order-auth-authorised-by") } else { cx.t("order-auth-refused-by") })
                " " (a.token_label) " · " (time(cx, a.created_at))
            }
        }
        h2 id="h-statement" { (cx.t("authorise-statement")) }
        p { (cx.t("authorise-statement-help")) }
        pre.statement id="statement-authorise" aria-labelledby="h-statement" tabindex="0" { (authorise) }
        p { (cx.t("authorise-command-help")) }
        pre.command id="command-authorise" tabindex="0" aria-label=(cx.t("authorise-command")) { (command(&authorise)) }
        details {
            summary { (cx.t("authorise-refuse-statement")) }
            pre.statement id="statement-refuse" tabindex="0" aria-label=(cx.t("authorise-refuse-statement")) { (refuse) }
            pre.command id="command-refuse" tabindex="0" aria-label=(cx.t("authorise-command")) { (command(&refuse)) }
        }
        form.stack method="post" action={ "/authorise/" (o.id) } aria-labelledby="h-sign" {
            h2 id="h-sign" { (cx.t("authorise-form")) }
            input type="hidden" name="csrf" value=(s.csrf);
            div {
                label for="auth-decision" { (cx.t("authorise-decision")) }
                select id="auth-decision" name="decision" {
                    option value="authorise" selected[form.get("decision") != "refuse"] { (cx.t("authorise-decision-authorise")) }
                    option value="refuse" selected[form.get("decision") == "refuse"] { (cx.t("authorise-decision-refuse")) }
                }
            }
            div {
                label for="auth-reasons" { (cx.t("authorise-reasons")) }
                textarea id="auth-reasons" name="reasons" required maxlength="20000" { (form.get("reasons")) }
            }
            div {
                label for="auth-signature" { (cx.t("authorise-signature")) }
                textarea id="auth-signature" name="signature" required spellcheck="false" maxlength="200" { (form.get("signature")) }
            }
            div { button type="submit" { (cx.t("authorise-go")) } }
        }
    };
    Ok(page(cx, &title, body))
}

pub async fn submit(cx: Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response, WebError> {
    let s = cx.require()?;
    let form = checked_form(&cx, &body)?;
    may(&cx, s, Action::AuthoriseOrder)?;
    let oid = order_id(&cx, &id)?;
    let outcome = cx
        .state
        .store
        .authorise_order(
            &s.principal,
            &oid,
            form.get("decision"),
            form.get("reasons"),
            form.get("signature"),
        )
        .await;
    use tapis_store::Error as E;
    let (status, message, kept) = match outcome {
        Ok(_) => (
            StatusCode::OK,
            (true, cx.t("authorise-verified").to_owned()),
            Form::default(),
        ),
        Err(E::Conflict(m)) => (
            StatusCode::CONFLICT,
            (false, cx.tf("action-refused", &[("why", &m)])),
            form,
        ),
        Err(E::Domain(
            d @ (tapis_core::Error::Invalid { .. } | tapis_core::Error::IllegalTransition { .. }),
        )) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            (false, cx.tf("action-refused", &[("why", &d.to_string())])),
            form,
        ),
        Err(e) => return Err(WebError::from_store(cx.lang, e)),
    };
    let o = readable(&cx, s, &oid).await?;
    Ok((status, render(&cx, s, &o, &kept, Some(message)).await?).into_response())
}
