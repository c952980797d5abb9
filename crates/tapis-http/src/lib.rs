//! The HTTP API: an axum router over the store, with bearer-token
//! authentication, authorisation by role and party, JSON errors and an
//! OpenAPI description generated from the handlers themselves.
//!
//! Handlers parse input with core's decoders, check the role matrix, scope
//! reads to the caller's party and call the store; there are no business
//! rules here.
#![forbid(unsafe_code)]

mod appeal_routes;
mod block_page;
mod channel_routes;
pub mod edge;
mod error;
mod extract;
mod flag_routes;
pub mod health;
pub(crate) mod log_routes;
mod match_body;
mod match_routes;
pub mod metrics;
mod order_routes;
pub mod pow;
mod power_routes;
pub(crate) mod register_routes;
mod representative_routes;
mod routes;
mod zone_routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tapis_core::notice::Limits as NoticeLimits;
use tapis_core::taxonomy::Taxonomy;
use tapis_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ApiResult};

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub notice: NoticeLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            notice: NoticeLimits::default(),
        }
    }
}

/// Moves a simulated clock (implemented by the binary's wiring, so this
/// crate does not depend on the scheduler).
pub trait ClockControl: Send + Sync {
    fn advance(
        &self,
        secs: i64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<tapis_core::Timestamp, String>> + Send + '_>,
    >;
}

/// Push-back on new notices: `Some(retry_after)` while delivery cannot
/// keep up (implemented by the binary's wiring from delivery's backlog).
pub trait Admission: Send + Sync {
    fn retry_after(&self) -> Option<std::time::Duration>;
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub taxonomy: Arc<Taxonomy>,
    pub limits: Limits,
    /// Accept webhook URLs on loopback and private networks.
    pub allow_private_targets: bool,
    /// Present only when the server runs on a simulated clock.
    pub clock_control: Option<Arc<dyn ClockControl>>,
    /// The public flag API's proof-of-work challenges (key, difficulty,
    /// the spent set).
    pub challenges: Arc<pow::Challenges>,
    /// When a flagger's accuracy calls its trusted status into review.
    pub accuracy: tapis_core::flag::AccuracyPolicy,
    /// The Response Policy Zone's name, SOA and block-page host.
    pub zone: tapis_dns::ZoneConfig,
    /// Log the client address of block-page and public-lookup requests
    /// (off by default; the operator's reason is on the audit log).
    pub log_client_addresses: bool,
    /// `tapis serve --demo`: said in `/healthz`.
    pub demo: bool,
    /// Connection, header, anonymous-rate and stream limits.
    pub edge: Arc<edge::Edge>,
    /// The public suffix list due process uses: said in `/healthz`.
    pub public_suffix_list: tapis_core::due_process::ListOrigin,
    /// What `/readyz` demands, and its last answer.
    pub readiness: health::Readiness,
    pub ready_cache: Arc<health::ReadyCache>,
    /// Who may read `/metrics` and which sources add to it.
    pub metrics: metrics::MetricsConfig,
    /// Responses by status class (for `/metrics`).
    pub responses: Arc<metrics::ResponseCounts>,
    /// Push-back on notice submissions (429 with `Retry-After`); none: never.
    pub admission: Option<Arc<dyn Admission>>,
    /// The web interface (`tapis-web`): answers every path outside
    /// `/api/` that no API route takes. Without it, those are JSON 404s.
    pub web: Option<Router>,
    /// Renders the block page (the web interface's, bilingual); without
    /// it, the built-in English page.
    pub block_page: Option<BlockPageRenderer>,
    /// tapis's own host name (from `channel.public_url`): requests for it
    /// go to the web interface; other names get the block page.
    pub public_host: Option<String>,
    /// The signal banks' in-memory indexes (the matching API), kept up to
    /// date from each bank's sequence.
    pub matcher: Arc<tapis_store::banks::Matcher>,
    /// What the public register withholds (`[register]`).
    pub register: Arc<tapis_core::register::RedactionPolicy>,
    /// How long personal data is kept (`[retention]`), shown with the
    /// register's policy.
    pub retention: Arc<tapis_core::retention::RetentionPolicy>,
}

/// Renders the block page for a lookup, given the request's headers (for
/// its language).
pub type BlockPageRenderer =
    Arc<dyn Fn(&tapis_store::Lookup, &axum::http::HeaderMap) -> String + Send + Sync>;

impl AppState {
    pub fn new(store: Store, limits: Limits) -> Self {
        AppState {
            store,
            taxonomy: Arc::new(Taxonomy::bundled()),
            limits,
            allow_private_targets: false,
            clock_control: None,
            challenges: Arc::new(pow::Challenges::random(Default::default())),
            accuracy: Default::default(),
            zone: tapis_dns::ZoneConfig::default(),
            log_client_addresses: false,
            demo: false,
            edge: edge::Edge::new(edge::EdgeLimits::default()),
            // the store's default policy knows top-level domains only
            public_suffix_list: Default::default(),
            readiness: Default::default(),
            ready_cache: Default::default(),
            metrics: Default::default(),
            responses: Default::default(),
            admission: None,
            web: None,
            block_page: None,
            public_host: None,
            matcher: Default::default(),
            register: Default::default(),
            retention: Default::default(),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tapis API",
        description = "Takedown notices, their delivery and decisions, and a tamper-evident audit log. \
                       Authenticate with `Authorization: Bearer <token>`; errors are \
                       `{\"error\": {\"code\", \"message\", \"field\"?}}`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document and the router, built from the same handlers:
/// every route goes through `OpenApiRouter::routes` (never a bare
/// `.route`), so what is served is what is documented
/// (`tests/openapi.rs` keeps it so).
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(openapi_json))
        .routes(utoipa_axum::routes!(block_page::block))
        .merge(health::router())
        .merge(metrics::router())
        .merge(routes::router())
        .merge(channel_routes::router())
        .merge(order_routes::router())
        .merge(power_routes::router())
        .merge(appeal_routes::router())
        .merge(log_routes::router())
        .merge(flag_routes::router())
        .merge(representative_routes::router())
        .merge(pow::router())
        .merge(match_routes::router())
        .merge(register_routes::router())
        .merge(zone_routes::router())
        .split_for_parts()
}

/// The OpenAPI description of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The document, built once.
static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();

/// This description: OpenAPI 3.1, every route with its parameters and
/// responses. Public.
#[utoipa::path(get, path = "/api/v1/openapi.json", security(()),
    responses((status = 200, content_type = "application/json", body = Object, description = "the OpenAPI 3.1 document")))]
async fn openapi_json() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    axum::Json(DOCUMENT.get_or_init(openapi))
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (router, _) = parts();
    let body_limit = state.limits.max_body_bytes;
    let web = state.web.clone();
    router
        .fallback(move |req: axum::extract::Request| async move {
            use axum::response::IntoResponse;
            match web {
                // browser paths go to the web interface; the API's stay JSON
                Some(web) if !req.uri().path().starts_with("/api/") => {
                    tower::ServiceExt::oneshot(web, req).await.into_response()
                }
                _ => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route; see /api/v1/openapi.json")
                    .into_response(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), block_page::by_host))
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge::limit_anonymous))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            axum::response::IntoResponse::into_response(ApiError::internal())
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_responses))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), party = tracing::field::Empty)
            }),
        )
        .with_state(state)
}

/// Serve `app` on `listener` until `shutdown` resolves; in-flight requests
/// get up to ten seconds to finish.
///
/// The accept loop is ours rather than `axum::serve` so that the edge's
/// limits hold before a request exists: a connection over its address's
/// cap is closed at once, and a client that has not sent a whole request
/// head within `header_read_timeout` is cut off.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let edge = state.edge.clone();
    let limits = edge.limits();
    // the signal banks' indexes are built at start, not on the first match
    tokio::spawn(tapis_store::banks::warm(
        state.store.clone(),
        state.matcher.clone(),
    ));
    let app = app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin
                    // and don't stop serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = edge.try_connect(peer.ip()) else {
            tracing::debug!("connection refused: the address or the server is at its cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => Ok(()),
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("requests still running after 10 s; stopping anyway");
            Ok(())
        }
    }
}
