//! The block page. A walled-garden answer sends a browser for a blocked
//! name here, with that name in the Host header; the page says which order
//! blocks it, why, since when, until when, and how to appeal — never just
//! "blocked". It is also at `/block?name=` for anyone to check a name.
//!
//! Privacy by default: nothing about the visitor (address, user agent) is
//! logged or stored, unless the operator turns on
//! `[privacy] log_client_addresses` with a reason (which goes on the audit
//! log); then block-page and public-lookup requests are logged with the
//! client's address.

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tapis_core::target::DomainName;
use tapis_store::Lookup;

use crate::AppState;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Render the page for a lookup result.
pub fn render(l: &Lookup) -> String {
    let name = escape(&l.name);
    let body = match (&l.order, l.blocked) {
        (Some(o), true) => format!(
            "<p class=\"lead\">Access to <strong>{name}</strong> is blocked by a legal order.</p>\
             <dl>\
             <dt>Order</dt><dd><code>{id}</code></dd>\
             <dt>Category</dt><dd>{category}</dd>\
             <dt>Legal basis</dt><dd>{reference}<br><small>{text}</small></dd>\
             <dt>In force since</dt><dd>{since}</dd>\
             <dt>Expires</dt><dd>{expires}</dd>\
             </dl>\
             <h2>Think this is wrong?</h2>\
             <p>You can ask for a review of this order: \
             <a href=\"/appeal?order={id}&amp;name={name}\">appeal this block</a> \
             (no account needed; you get a reference to follow it), or \
             <code>POST /api/v1/appeals</code> with the order number above. \
             The public register lists every order with its legal basis and dates; \
             anyone can check a name at <code>/api/v1/lookup?name={name}</code>.</p>",
            id = escape(&o.id),
            category = escape(&o.category.replace('_', " ")),
            reference = escape(&o.legal_basis.reference),
            text = escape(&o.legal_basis.text),
            since = o
                .in_force_since
                .map(|t| t.to_string())
                .unwrap_or_else(|| "—".into()),
            expires = o.expires_at,
        ),
        _ => {
            let mut p = format!(
                "<p class=\"lead\"><strong>{name}</strong> is not blocked by any order in force.</p>"
            );
            if let Some(a) = &l.lifted_after_appeal {
                p.push_str(&format!(
                    "<p>Order <code>{id}</code> was lifted on {at} after appeal <code>{r}</code> \
                     was upheld (<a href=\"/appeal/{r}\">the decision</a>).</p>",
                    id = escape(&a.order_id),
                    at = a.lifted_at,
                    r = escape(a.reference.as_str()),
                ));
            }
            p
        }
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}}\
         .lead{{font-size:1.25rem}} dt{{font-weight:600;margin-top:.75rem}} dd{{margin:0}} code{{background:#f2f2f2;padding:0 .25rem}}\
         </style></head><body><h1>{title}</h1>{body}<hr><p><small>tapis · zone serial {serial}</small></p></body></html>",
        title = if l.blocked {
            "This site is blocked"
        } else {
            "Not blocked"
        },
        serial = l.serial,
    )
}

/// The page for a lookup, never cached (orders end): the web interface's
/// (bilingual, with the web interface's security headers: its stylesheet
/// is a file, so scripts and inline styles can be refused) when mounted,
/// else the built-in one.
fn respond(
    state: &AppState,
    status: StatusCode,
    l: &Lookup,
    headers: &axum::http::HeaderMap,
) -> Response {
    let mut resp = match &state.block_page {
        Some(r) => {
            let mut resp = (status, Html(r(l, headers))).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                     form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            h.insert(
                header::X_FRAME_OPTIONS,
                header::HeaderValue::from_static("DENY"),
            );
            h.insert(
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("no-referrer"),
            );
            resp
        }
        None => (status, Html(render(l))).into_response(),
    };
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

async fn page_for(
    state: &AppState,
    name: &DomainName,
    headers: &axum::http::HeaderMap,
) -> Response {
    match state.store.lookup(name).await {
        Ok(l) => {
            let status = if l.blocked {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            };
            // 403 tells clients and crawlers the block is deliberate; the
            // page explains it
            respond(state, status, &l, headers)
        }
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlockQuery {
    /// The domain name to explain.
    name: String,
}

/// The block page for a name: which order blocks it, why, until when and
/// how to appeal (HTML; 403 when blocked). Public.
#[utoipa::path(get, path = "/block", security(()), params(BlockQuery), responses(
    (status = 200, content_type = "text/html", body = String, description = "the name is not blocked"),
    (status = 403, content_type = "text/html", body = String, description = "the name is blocked: the page says by which order"),
    (status = 422, content_type = "text/html", body = String, description = "not a domain name")))]
pub async fn block(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<BlockQuery>,
) -> Response {
    match DomainName::parse(&q.name) {
        Ok(name) => page_for(&state, &name, &headers).await,
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(format!("<p>{}</p>", escape(&e.to_string()))),
        )
            .into_response(),
    }
}

/// Requests whose Host is a blocked name (a browser sent here by a walled
/// garden answer) get the block page, whatever their path; everything else
/// goes on to the API. API paths skip the check. A page request for a
/// name that is not blocked (a stale walled-garden answer cached by a
/// resolver after a lift) that the API does not know gets the page saying
/// so, not an API error.
pub async fn by_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.log_client_addresses {
        let path = req.uri().path();
        if path == "/block" || path == "/api/v1/lookup" || !path.starts_with("/api/") {
            let client = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default();
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            tracing::info!(
                client,
                host,
                path,
                query = req.uri().query().unwrap_or(""),
                "public request (client addresses logged by operator choice)"
            );
        }
    }
    // the API never pays for this check
    let path = req.uri().path();
    if path.starts_with("/api/")
        || path == "/healthz"
        || path == "/block"
        || path.starts_with("/assets/")
    {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .map(|(n, p)| {
                    if p.bytes().all(|b| b.is_ascii_digit()) {
                        n
                    } else {
                        h
                    }
                })
                .unwrap_or(h)
                .to_owned()
        });
    let name = host
        .filter(|h| h.parse::<std::net::IpAddr>().is_err())
        .and_then(|h| DomainName::parse(&h).ok())
        .filter(|n| n.as_str() != state.zone.block_page_host.trim_end_matches('.'))
        // tapis's own name (from `channel.public_url`) and single-label
        // names (`localhost`) are the web interface's, not a blocked site's
        .filter(|n| n.as_str().contains('.'))
        .filter(|n| state.public_host.as_deref() != Some(n.as_str()));
    let Some(name) = name else {
        return next.run(req).await;
    };
    if state.web.is_some() {
        // Any other name here came by a walled-garden answer (perhaps a
        // stale one, cached after a lift): it gets the block page, blocked
        // or not, never the web interface.
        return page_for(&state, &name, req.headers()).await;
    }
    let headers = req.headers().clone();
    if let Ok(l) = state.store.lookup(&name).await
        && l.blocked
    {
        return respond(&state, StatusCode::FORBIDDEN, &l, &headers);
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::NOT_FOUND {
        // A browser here for a name that is not (or no longer) blocked:
        // a resolver still caching an old walled-garden answer sends it.
        // Say so, rather than answer with an API error.
        return page_for(&state, &name, &headers).await;
    }
    resp
}
