//! Errors as pages: a browser route never answers JSON. Store errors map
//! as in the API (missing or another party's record → 404, refused by
//! role → 403, bad input → 422, conflict → 409); a database that cannot
//! answer now (unreachable, a lock or statement timed out) is a 503 page
//! with `Retry-After`, as in the API; any other database fault is logged
//! and shown as a plain 500 page without detail.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::i18n::Lang;
use crate::layout;

/// Seconds a browser is told to wait after a 503 (the database timeouts
/// are a few seconds, so by then the fault has shown itself or passed).
const UNAVAILABLE_RETRY_AFTER: u32 = 1;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub lang: Lang,
    /// The translation key of the page's title.
    pub title: &'static str,
    /// What went wrong, already in the reader's language.
    pub detail: String,
    pub redirect: Option<String>,
    /// Seconds for `Retry-After` (a 503 only).
    pub retry_after: Option<u32>,
}

impl WebError {
    pub fn new(lang: Lang, status: StatusCode, title: &'static str, detail: String) -> Self {
        WebError {
            status,
            lang,
            title,
            detail,
            redirect: None,
            retry_after: None,
        }
    }

    pub fn not_found(lang: Lang) -> Self {
        Self::new(
            lang,
            StatusCode::NOT_FOUND,
            "error-404-title",
            lang.t("error-404-text").to_owned(),
        )
    }

    pub fn forbidden(lang: Lang) -> Self {
        Self::new(
            lang,
            StatusCode::FORBIDDEN,
            "error-403-title",
            lang.t("error-403-text").to_owned(),
        )
    }

    pub fn csrf(lang: Lang) -> Self {
        Self::new(
            lang,
            StatusCode::FORBIDDEN,
            "error-csrf-title",
            lang.t("error-csrf-text").to_owned(),
        )
    }

    pub fn redirect(to: &str) -> Self {
        WebError {
            status: StatusCode::SEE_OTHER,
            lang: Lang::En,
            title: "error-404-title",
            detail: String::new(),
            redirect: Some(to.to_owned()),
            retry_after: None,
        }
    }

    pub fn from_store(lang: Lang, e: tapis_store::Error) -> Self {
        use tapis_store::Error as E;
        match e {
            E::NotFound(_) => Self::not_found(lang),
            E::Conflict(m) => Self::new(lang, StatusCode::CONFLICT, "error-409-title", m),
            E::Domain(tapis_core::Error::Forbidden { .. }) => Self::forbidden(lang),
            E::Domain(d) => Self::new(
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                "error-422-title",
                d.to_string(),
            ),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable for a page");
                let mut page = Self::new(
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error-503-title",
                    lang.t("error-503-text").to_owned(),
                );
                page.retry_after = Some(UNAVAILABLE_RETRY_AFTER);
                page
            }
            other => {
                tracing::error!(error = %other, "a page failed");
                Self::new(
                    lang,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error-500-title",
                    lang.t("error-500-text").to_owned(),
                )
            }
        }
    }
}

/// What an error page said, kept on the response so [`with_navigation`]
/// can show it again inside the signed-in shell.
#[derive(Clone)]
struct Shown {
    title: &'static str,
    detail: String,
}

fn error_body(lang: Lang, title: &'static str, detail: &str) -> maud::Markup {
    html! {
        h1 { (lang.t(title)) }
        p.lead { (detail) }
        p { a href="/" { (lang.t("error-home")) } }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Some(to) = self.redirect {
            return Redirect::to(&to).into_response();
        }
        let lang = self.lang;
        let mut resp = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            layout::bare(
                lang,
                lang.t(self.title),
                error_body(lang, self.title, &self.detail),
            ),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        resp.extensions_mut().insert(Shown {
            title: self.title,
            detail: self.detail,
        });
        resp
    }
}

/// Error pages for a signed-in person keep the navigation (the session is
/// looked up again only when a page failed).
pub async fn with_navigation(
    axum::extract::State(state): axum::extract::State<crate::WebState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (uri, headers) = (req.uri().clone(), req.headers().clone());
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .cloned();
    let resp = next.run(req).await;
    let Some(shown) = resp.extensions().get::<Shown>().cloned() else {
        return resp;
    };
    let mut again = axum::http::Request::builder().uri(uri);
    if let Some(h) = again.headers_mut() {
        *h = headers;
    }
    let Ok(again) = again.body(()) else {
        return resp;
    };
    let (mut parts, ()) = again.into_parts();
    if let Some(p) = peer {
        parts.extensions.insert(p);
    }
    let Ok(cx) = <crate::session::Ctx as axum::extract::FromRequestParts<crate::WebState>>::from_request_parts(&mut parts, &state).await
    else {
        return resp;
    };
    if cx.session.is_none() {
        return resp;
    }
    let status = resp.status();
    let (mut head, _) = resp.into_parts();
    let page = layout::page(
        &cx,
        cx.t(shown.title),
        error_body(cx.lang, shown.title, &shown.detail),
    );
    head.headers.remove(header::CONTENT_LENGTH);
    let mut out = Response::from_parts(head, axum::body::Body::from(page.0));
    *out.status_mut() = status;
    out
}

/// Any browser path nothing answers.
pub async fn not_found(headers: HeaderMap) -> Response {
    WebError::not_found(Lang::choose(&headers)).into_response()
}

pub async fn method_not_allowed(headers: HeaderMap) -> Response {
    let lang = Lang::choose(&headers);
    WebError::new(
        lang,
        StatusCode::METHOD_NOT_ALLOWED,
        "error-405-title",
        lang.t("error-405-text").to_owned(),
    )
    .into_response()
}
