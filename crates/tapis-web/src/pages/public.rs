//! Public pages: the landing page, the lookup and the language switch.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use tapis_core::target::DomainName;

use crate::error::WebError;
use crate::i18n::Lang;
use crate::layout::page;
use crate::session::{Ctx, local_path, query, set_cookie};

pub async fn landing(cx: Ctx) -> Response {
    let body = html! {
        h1 { (cx.t("landing-title")) }
        p.lead { (cx.t("landing-lead")) }
        @if cx.state.config.demo {
            p.notice-box { (cx.t("landing-demo")) }
        }
        div.grid {
            section.card {
                h2 { (cx.t("landing-public-title")) }
                p { (cx.t("landing-public-text")) }
                ul {
                    li { a href="/transparency" { (cx.t("nav-transparency")) } }
                    li { a href="/register" { (cx.t("nav-register")) } }
                    li { a href="/lookup" { (cx.t("nav-lookup")) } }
                    li { a href="/report" { (cx.t("nav-report")) } }
                }
            }
            section.card {
                h2 { (cx.t("landing-people-title")) }
                p { (cx.t("landing-people-text")) }
                p { a href="/signin" { (cx.t("nav-signin")) } }
            }
            section.card {
                h2 { (cx.t("landing-machines-title")) }
                p { (cx.t("landing-machines-text")) }
                p { a href="/api/v1/openapi.json" { (cx.t("footer-api")) } }
            }
        }
    };
    page(&cx, cx.t("landing-title"), body).into_response()
}

/// `/lookup?name=`: is a name blocked, by which order, why.
pub async fn lookup(cx: Ctx, uri: axum::http::Uri) -> Result<Response, WebError> {
    let q = query(&uri);
    let raw = q.get("name").trim().to_owned();
    let mut error = None;
    let mut result = None;
    if !raw.is_empty() {
        match DomainName::parse(&raw) {
            Ok(name) => {
                result = Some(
                    cx.state
                        .store
                        .lookup(&name)
                        .await
                        .map_err(|e| WebError::from_store(cx.lang, e))?,
                )
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    let body = html! {
        h1 { (cx.t("lookup-title")) }
        p { (cx.t("lookup-lead")) }
        form.filters method="get" action="/lookup" role="search" {
            div {
                label for="name" { (cx.t("lookup-name")) }
                input type="search" id="name" name="name" value=(raw) autocomplete="off" spellcheck="false";
            }
            button type="submit" { (cx.t("lookup-go")) }
        }
        @if let Some(e) = error {
            p.error role="alert" { (cx.t("lookup-invalid")) " " (e) }
        }
        @if let Some(l) = &result {
            (super::block::explanation(&cx, l))
        }
    };
    Ok(page(&cx, cx.t("lookup-title"), body).into_response())
}

/// `/lang?to=id&back=/path`: remember the language for a year and go back.
pub async fn switch_language(cx: Ctx, uri: axum::http::Uri) -> Response {
    let q = query(&uri);
    let lang = Lang::parse(q.get("to")).unwrap_or(cx.lang);
    let back = local_path(q.get("back"));
    let mut resp = Redirect::to(&back).into_response();
    let cookie = set_cookie(
        "lang",
        lang.code(),
        cx.state.config.secure_cookies,
        Some(31_536_000),
    );
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Cookie"));
    resp
}
