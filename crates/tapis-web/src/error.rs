//! Errors as pages: a browser route never answers JSON. Store errors map
//! as in the API (missing or another party's record → 404, refused by
//! role → 403, bad input → 422, conflict → 409); a database fault is
//! logged and shown as a plain 500 page without detail.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::i18n::Lang;
use crate::layout;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub lang: Lang,
    /// The translation key of the page's title.
    pub title: &'static str,
    /// What went wrong, already in the reader's language.
    pub detail: String,
    pub redirect: Option<String>,
}

impl WebError {
    pub fn new(lang: Lang, status: StatusCode, title: &'static str, detail: String) -> Self {
        WebError {
            status,
            lang,
            title,
            detail,
            redirect: None,
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

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Some(to) = self.redirect {
            return Redirect::to(&to).into_response();
        }
        let lang = self.lang;
        let body = html! {
            h1 { (lang.t(self.title)) }
            p.lead { (self.detail) }
            p { a href="/" { (lang.t("error-home")) } }
        };
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            layout::bare(lang, lang.t(self.title), body),
        )
            .into_response()
    }
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
