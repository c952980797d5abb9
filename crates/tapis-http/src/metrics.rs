//! `GET /metrics`: what an operator watches, in the Prometheus text format
//! (0.0.4) through `prometheus-client` (3 crates beyond what the workspace
//! already builds: the client, its derive macro and `dtoa`).
//!
//! Gauges are read from the store at scrape time (`Store::ops_snapshot`:
//! outbox per destination, dead letters, due jobs and scheduler lag,
//! notices by state and overdue, zone serial, ISP sync lag); instruments
//! are recorded as things happen (chain-lock waits in the store, responses
//! by status class here). When the database cannot be read the scrape
//! still answers, with `tapis_database_up 0` and the in-memory figures.
//! Other parts plug their own figures in as a [`MetricsSource`] (delivery's
//! per-destination latency, attempts and breakers).
//!
//! Access: operational detail is not for strangers. A caller is let in if
//! its address is in `metrics.allow_from` (empty by default) or it shows a
//! token whose role is admin or auditor (the roles that read everything);
//! anyone else gets 401 or 403. Series are bounded: per-party families
//! stop at `tapis_store::metrics::MAX_PARTIES` rows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tapis_core::isp::IpNet;
use tapis_core::role::Role;
use tapis_store::metrics::LockWaitSnapshot;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use prometheus_client;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Auth;

/// Figures another part of the server adds to every scrape (e.g. the
/// delivery workers' per-destination latency and breaker state). Register
/// metrics on the registry given; keep label sets bounded.
pub trait MetricsSource: Send + Sync {
    fn collect(&self, registry: &mut Registry);
}

impl<F: Fn(&mut Registry) + Send + Sync> MetricsSource for F {
    fn collect(&self, registry: &mut Registry) {
        self(registry)
    }
}

/// Who may read `/metrics`, and what else goes in it.
#[derive(Clone, Default)]
pub struct MetricsConfig {
    /// Networks allowed without a token (e.g. the Prometheus server's).
    pub allow_from: Vec<IpNet>,
    /// Extra figures, rendered after tapis's own.
    pub sources: Vec<Arc<dyn MetricsSource>>,
}

/// Responses by status class, counted by the `count_responses` layer.
#[derive(Default)]
pub struct ResponseCounts([AtomicU64; 5]);

impl ResponseCounts {
    fn record(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.0[class].fetch_add(1, Relaxed);
    }
}

pub(crate) async fn count_responses(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    state.responses.record(response.status());
    response
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Operational metrics in the Prometheus text format: outbox depth and
/// age per destination, dead letters, due timers and scheduler lag,
/// notices by state and overdue, zone serial and ISP sync lag, database
/// pool and chain-lock wait, responses by class. Open to the networks in
/// `metrics.allow_from`, and to admin and auditor tokens.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, content_type = "text/plain", body = String, description = "Prometheus text format 0.0.4"),
    (status = 401, body = crate::error::ErrorBody, description = "not from an allowed network and no token"),
    (status = 403, body = crate::error::ErrorBody, description = "the token's role may not read metrics")))]
async fn metrics(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let allowed = peer.is_some_and(|ip| state.metrics.allow_from.iter().any(|n| n.contains(ip)));
    if !allowed {
        let Auth(p) = Auth::from_request_parts(&mut parts, &state).await?;
        if !matches!(p.role, Role::Admin | Role::Auditor) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "metrics are for admin and auditor tokens (or the networks in metrics.allow_from)",
            ));
        }
    }
    let body = render(&state).await;
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    Ok(resp)
}

type Labels = Vec<(&'static str, String)>;

fn gauge_family() -> Family<Labels, Gauge<f64, AtomicU64>> {
    Family::default()
}

async fn render(state: &AppState) -> String {
    let store = &state.store;
    let mut reg = Registry::with_prefix("tapis");

    let ready = crate::health::current(state).await;
    reg.register(
        "ready",
        "Whether this process can write now, as GET /readyz says (1) or not (0)",
        ConstGauge::new(i64::from(ready.is_ready())),
    );
    let snapshot = store.ops_snapshot().await;
    reg.register(
        "database_up",
        "Whether this scrape could read the database (1) or not (0)",
        ConstGauge::new(i64::from(snapshot.is_ok())),
    );
    match snapshot {
        Ok(s) => {
            let pending = gauge_family();
            let oldest = gauge_family();
            let dead = gauge_family();
            for o in &s.outbox {
                let l = vec![
                    ("party", o.party_id.clone()),
                    ("name", o.party_name.clone()),
                ];
                pending.get_or_create(&l).set(o.pending as f64);
                oldest.get_or_create(&l).set(o.oldest_age_secs);
                dead.get_or_create(&l).set(o.dead as f64);
            }
            reg.register(
                "outbox_pending",
                "Messages waiting to be delivered, per destination party",
                pending,
            );
            reg.register(
                "outbox_oldest_age_seconds",
                "Age of the oldest undelivered message, per destination party",
                oldest,
            );
            reg.register(
                "outbox_dead",
                "Dead letters (every attempt failed), per destination party",
                dead,
            );
            reg.register(
                "dead_letters",
                "Dead letters in all",
                ConstGauge::new(s.dead_letters),
            );
            reg.register(
                "jobs_due",
                "Timers (deadlines, ladder steps, order dates) due and not yet fired",
                ConstGauge::new(s.due_jobs),
            );
            reg.register(
                "scheduler_lag_seconds",
                "Now minus the due time of the oldest unfired due timer (0 when none is due)",
                ConstGauge::new(s.scheduler_lag_secs),
            );
            let notices = gauge_family();
            for (state, n) in &s.notices {
                notices
                    .get_or_create(&vec![("state", state.clone())])
                    .set(*n as f64);
            }
            reg.register(
                "notices",
                "Notices not yet closed or withdrawn, by state",
                notices,
            );
            reg.register(
                "notices_overdue",
                "Open notices past their deadline",
                ConstGauge::new(s.overdue_notices),
            );
            let answers = gauge_family();
            for (kind, state, n) in &s.answers {
                answers
                    .get_or_create(&vec![("kind", kind.clone()), ("state", state.clone())])
                    .set(*n as f64);
            }
            reg.register(
                "questions",
                "Platforms' clarifications and disputes, and appeals, by kind and state (appeal/overdue: open past the deadline)",
                answers,
            );
            reg.register(
                "zone_serial",
                "The Response Policy Zone's current serial",
                ConstGauge::new(s.zone_serial),
            );
            let isp_serial = gauge_family();
            let isp_lag = gauge_family();
            for i in &s.isps {
                let l = vec![("isp", i.party_id.clone()), ("name", i.party_name.clone())];
                isp_serial.get_or_create(&l).set(i.serial as f64);
                isp_lag.get_or_create(&l).set(i.lag_secs);
            }
            reg.register(
                "isp_serial",
                "Newest zone serial each ISP's secondaries were seen to hold (0: never seen)",
                isp_serial,
            );
            reg.register(
                "isp_sync_lag_seconds",
                "Seconds each ISP has been behind the current zone (0: current)",
                isp_lag,
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the database"),
    }

    let (size, idle) = store.pool_state();
    let pool = Family::<Labels, Gauge>::default();
    pool.get_or_create(&vec![("state", "idle".into())])
        .set(idle as i64);
    pool.get_or_create(&vec![("state", "in_use".into())])
        .set(i64::from(size).saturating_sub(idle as i64));
    reg.register(
        "db_pool_connections",
        "Database connections held by this process's pool",
        pool,
    );
    reg.register(
        "db_pool_max_connections",
        "Most connections the pool opens",
        ConstGauge::new(i64::from(store.pool_max())),
    );
    let waits = store.lock_waits();
    reg.register(
        "chain_lock_failures",
        "Write transactions that did not get the audit chain's lock (timeout, database gone)",
        ConstCounter::new(waits.failed),
    );
    reg.register(
        "chain_lock_wait_seconds",
        "Time write transactions waited for the audit chain's lock, pool wait included",
        LockWaitHistogram(waits),
    );
    let group = store.group_commit_stats();
    let backlog = store.write_backlog();
    reg.register(
        "write_batches",
        "Transactions that committed a batch of submissions (group commit)",
        ConstCounter::new(group.batches),
    );
    reg.register(
        "write_batched_jobs",
        "Submissions committed in those batches (divide by write_batches for the mean batch)",
        ConstCounter::new(group.jobs),
    );
    reg.register(
        "write_queue_depth",
        "Submissions waiting for their batch now",
        ConstGauge::new(backlog.queued as i64),
    );
    reg.register(
        "write_queue_oldest_seconds",
        "How long the oldest waiting submission has waited (over 0.25 s: new ones get 429)",
        ConstGauge::new(backlog.oldest.as_secs_f64()),
    );
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let counts = Family::<Labels, prometheus_client::metrics::counter::Counter>::default();
    for (i, class) in classes.iter().enumerate() {
        counts
            .get_or_create(&vec![("class", (*class).to_owned())])
            .inc_by(state.responses.0[i].load(Relaxed));
    }
    reg.register("http_responses", "HTTP responses by status class", counts);
    let loops = gauge_family();
    for (name, age) in store.liveness().ages() {
        loops
            .get_or_create(&vec![("loop", name.to_owned())])
            .set(age.as_secs_f64());
    }
    reg.register(
        "loop_last_beat_age_seconds",
        "Seconds since each background loop of this process completed a pass",
        loops,
    );
    for source in &state.metrics.sources {
        source.collect(&mut reg);
    }

    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg) {
        tracing::error!(error = %e, "metrics: cannot encode");
    }
    out
}

/// The store's chain-lock wait histogram, encoded as it was snapshotted.
#[derive(Debug)]
struct LockWaitHistogram(LockWaitSnapshot);

impl EncodeMetric for LockWaitHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.0.sum_secs, self.0.count, &self.0.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
