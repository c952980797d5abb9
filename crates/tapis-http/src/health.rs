//! Health for load balancers and orchestrators, public and cheap:
//!
//! - `GET /healthz` — **alive**: the process answers HTTP. It touches no
//!   database, so a database outage does not get a healthy process
//!   restarted; it names the backend and the public suffix list in use.
//! - `GET /readyz` — **ready**: this process can write now. It takes the
//!   audit chain's lock (SQLite: the write lock) and releases it within a
//!   deadline, and every background loop this process runs (scheduler,
//!   delivery) beat recently. Otherwise 503 with `Retry-After` and each
//!   reason. One check runs at a time and its answer is reused for
//!   `READY_CACHE`, so a flood of probes cannot contend for the lock.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// How long one readiness answer is reused.
const READY_CACHE: Duration = Duration::from_millis(500);

/// What readiness demands.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    /// The chain lock must be taken and released within this.
    pub lock_deadline: Duration,
    /// Every expected loop must have beaten within this.
    pub loop_stale_after: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            lock_deadline: Duration::from_secs(2),
            loop_stale_after: Duration::from_secs(30),
        }
    }
}

/// The last readiness answer, shared by the app's clones.
#[derive(Default)]
pub struct ReadyCache(tokio::sync::Mutex<Option<(Instant, Ready)>>);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`: the process is alive (the database is not asked; see
    /// `/readyz`).
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: &'static str,
    /// A demonstration server (`tapis serve --demo`): fictional data on a
    /// temporary database.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    demo: bool,
    /// Which public suffix list due process uses (source and date).
    public_suffix_list: tapis_core::due_process::ListOrigin,
}

/// Liveness: the process answers. Never touches the database.
#[utoipa::path(get, path = "/healthz", security(()), responses(
    (status = 200, body = Health, description = "the process is alive")))]
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        database: state.store.backend().name(),
        demo: state.demo,
        public_suffix_list: state.public_suffix_list.clone(),
    })
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Why not, one sentence each (empty when ready).
    reasons: Vec<String>,
    /// Milliseconds the chain lock took (absent when not obtained).
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_lock_ms: Option<u64>,
    /// Seconds since each of this process's background loops last beat.
    loops: std::collections::BTreeMap<String, f64>,
}

/// Readiness: 200 only if this process can write now (the audit chain's
/// lock taken and released within the deadline) and its scheduler and
/// delivery loops beat recently; 503 with `Retry-After` and the reasons
/// otherwise.
#[utoipa::path(get, path = "/readyz", security(()), responses(
    (status = 200, body = Ready, description = "this process can write now"),
    (status = 503, body = Ready, description = "not ready: `reasons` says why",
        headers(("Retry-After" = u32, description = "seconds before asking again")))))]
async fn readyz(State(state): State<AppState>) -> Response {
    let ready = current(&state).await;
    if ready.is_ready() {
        return (StatusCode::OK, Json(ready)).into_response();
    }
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, Json(ready)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The readiness answer: the last one if fresh, else a new check (one at a
/// time).
pub(crate) async fn current(state: &AppState) -> Ready {
    let mut cached = state.ready_cache.0.lock().await;
    match &*cached {
        Some((at, r)) if at.elapsed() < READY_CACHE => r.clone(),
        _ => {
            let r = check(state).await;
            *cached = Some((Instant::now(), r.clone()));
            r
        }
    }
}

impl Ready {
    pub(crate) fn is_ready(&self) -> bool {
        self.reasons.is_empty()
    }
}

async fn check(state: &AppState) -> Ready {
    let r = state.readiness;
    let mut reasons = Vec::new();
    let chain_lock_ms = match state.store.check_writable(r.lock_deadline).await {
        Ok(took) => Some(took.as_millis().min(u64::MAX as u128) as u64),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: cannot take the audit chain's lock");
            reasons.push(match e.unavailability() {
                Some(why) => format!(
                    "cannot write: {} (the audit chain's lock was not taken within {} ms)",
                    why.describe(),
                    r.lock_deadline.as_millis()
                ),
                None => "cannot write: the database refused the lock check (see the log)".into(),
            });
            None
        }
    };
    let liveness = state.store.liveness();
    for stale in liveness.stale(r.loop_stale_after) {
        reasons.push(format!(
            "the {} loop has not run for {:.1} s (limit {} s)",
            stale.name,
            stale.silent_for.as_secs_f64(),
            r.loop_stale_after.as_secs()
        ));
    }
    let loops = liveness
        .ages()
        .into_iter()
        .map(|(name, age)| {
            (
                name.to_owned(),
                (age.as_secs_f64() * 1000.0).round() / 1000.0,
            )
        })
        .collect();
    Ready {
        status: if reasons.is_empty() {
            "ready"
        } else {
            "not_ready"
        },
        reasons,
        chain_lock_ms,
        loops,
    }
}
