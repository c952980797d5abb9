//! One error type for every route. It becomes
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `malformed_json`, `invalid_query`, `invalid_id`, `invalid_header` | the request cannot be read |
//! | 401 | `unauthorized` | no token, or one that is not valid |
//! | 403 | `forbidden` | the role may not do this |
//! | 404 | `not_found` | no such thing, or not visible to the caller |
//! | 405 | `method_not_allowed` | |
//! | 409 | `conflict`, `illegal_transition` | clashes with stored state |
//! | 413 | `payload_too_large` | body over the limit |
//! | 415 | `unsupported_media_type` | body is not `application/json` |
//! | 422 | `invalid`, `invalid_body` | readable but wrong: unknown or missing fields, bad values |
//! | 429 | `overloaded` | delivery is behind: submit again after `Retry-After` seconds |
//! | 500 | `internal` | a bug; details go to the log, never to the client |
//! | 503 | `unavailable` | the database cannot do it now (unreachable, a lock or statement timed out, a clash rolled back): retry after `Retry-After` seconds |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Seconds a client should wait after a 503 (every database timeout is a
/// few seconds, so by then the fault has been seen or has passed).
const UNAVAILABLE_RETRY_AFTER: &str = "1";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code.
    code: &'static str,
    /// What went wrong and what to do, for people.
    message: String,
    /// The offending field, for validation errors (e.g. `items[2].value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 503: the database cannot do it now; `Retry-After` says when to try
    /// again.
    pub fn unavailable(why: Option<tapis_store::Unavailability>) -> Self {
        let why = why.map_or("the database is unavailable", |w| w.describe());
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{why}; retry in {UNAVAILABLE_RETRY_AFTER} s"),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

/// 429 `overloaded` with `Retry-After`: delivery cannot keep up, so new
/// notices wait instead of queueing behind a growing backlog.
pub fn overloaded(retry_after: std::time::Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "overloaded",
        format!("delivery is behind; submit again in {secs} s (Retry-After)"),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tapis\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER),
            );
        }
        resp
    }
}

impl From<tapis_core::Error> for ApiError {
    fn from(e: tapis_core::Error) -> Self {
        use tapis_core::Error as E;
        match e {
            E::Invalid { field, message } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid",
                message: if field.is_empty() {
                    message
                } else {
                    format!("{field}: {message}")
                },
                field: (!field.is_empty()).then_some(field),
            },
            e @ E::IllegalTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", e.to_string())
            }
            e @ E::Forbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
        }
    }
}

impl From<tapis_store::Error> for ApiError {
    fn from(e: tapis_store::Error) -> Self {
        use tapis_store::Error as E;
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            E::Domain(d) => d.into(),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable(e.unavailability())
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
