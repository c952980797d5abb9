//! Routes of the government channel: delivery settings, public keys, the
//! event stream, deliveries, escalations, the published SLA policy and the
//! simulated clock.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tapis_core::channel::{ChannelInput, NewChannel};
use tapis_core::escalation::EscalationState;
use tapis_core::party::PartyKind;
use tapis_core::role::Action;
use tapis_core::{EscalationId, NoticeId, PartyId};
use tapis_store::{Channel, Escalation, PublicKey};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, parse_id};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_channel, get_channel))
        .routes(routes!(rotate_secret))
        .routes(routes!(keys))
        .routes(routes!(sla_policy))
        .routes(routes!(stream))
        .routes(routes!(notice_deliveries))
        .routes(routes!(dead_letters))
        .routes(routes!(list_escalations))
        .routes(routes!(decide_escalation))
        .routes(routes!(advance_clock))
        .routes(routes!(clock_status))
        .routes(routes!(ownership))
}

fn require(p: &tapis_store::Principal, action: Action) -> ApiResult<()> {
    Ok(p.role.require(action)?)
}

/// Admins manage any party's channel; a platform agent or an authoriser
/// only its own.
fn channel_scope(p: &tapis_store::Principal, party: PartyId) -> ApiResult<()> {
    require(p, Action::ManageChannel)?;
    if matches!(p.party_kind, PartyKind::Platform | PartyKind::Authoriser) && p.party_id != party {
        return Err(ApiError::not_found("party"));
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
struct ChannelResponse {
    #[serde(flatten)]
    channel: Channel,
    /// The webhook secret (`whsec_…`): present only when it was just
    /// created, and never shown again. Verify deliveries with it.
    webhook_secret: Option<String>,
}

/// Set a platform's delivery channel: webhook URL, fallback emails, and its
/// Ed25519 public key for signed acknowledgements. The first time a webhook
/// is set, the response carries its secret.
#[utoipa::path(put, path = "/api/v1/parties/{id}/channel", params(("id" = String, Path)), request_body = ChannelInput,
    responses((status = 200, body = ChannelResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_channel(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<ChannelInput>,
) -> ApiResult<Json<ChannelResponse>> {
    let party = parse_id("party id", &id, PartyId::parse)?;
    channel_scope(&p, party)?;
    let mut ch = NewChannel::parse(body.value, state.allow_private_targets)?;
    // separation of powers: only a party rotates its own signing key, and
    // an authoriser's is enrolled on the host (core's `role::channel_key`)
    let kind = state.store.get_party(party).await?.kind;
    let current = state
        .store
        .get_channel(party)
        .await?
        .and_then(|c| c.public_key);
    ch.public_key = tapis_core::role::channel_key(
        p.role,
        p.party_id,
        party,
        kind,
        current.as_deref(),
        ch.public_key.as_deref(),
    )?;
    let (channel, webhook_secret) = state.store.set_channel(&p.actor(), party, ch).await?;
    Ok(Json(ChannelResponse {
        channel,
        webhook_secret,
    }))
}

/// A platform's delivery channel (never its secret).
#[utoipa::path(get, path = "/api/v1/parties/{id}/channel", params(("id" = String, Path)),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody)))]
async fn get_channel(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Channel>> {
    let party = parse_id("party id", &id, PartyId::parse)?;
    if !p.role.reads_everything() && p.party_id != party {
        return Err(ApiError::not_found("party"));
    }
    Ok(Json(
        state
            .store
            .get_channel(party)
            .await?
            .ok_or_else(|| ApiError::not_found("channel"))?,
    ))
}

/// Rotate the webhook secret. The new one is returned once; the old one
/// keeps working for the grace period (24 h by default).
#[utoipa::path(post, path = "/api/v1/parties/{id}/channel/rotate-secret", params(("id" = String, Path)),
    responses((status = 200, body = ChannelResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rotate_secret(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ChannelResponse>> {
    let party = parse_id("party id", &id, PartyId::parse)?;
    channel_scope(&p, party)?;
    let (channel, secret) = state.store.rotate_webhook_secret(&p.actor(), party).await?;
    Ok(Json(ChannelResponse {
        channel,
        webhook_secret: Some(secret),
    }))
}

/// tapis's public signing keys, old ones included, for verifying signed
/// notices and receipts. No authentication.
#[utoipa::path(get, path = "/api/v1/keys", security(()), responses((status = 200, body = Vec<PublicKey>)))]
async fn keys(state: S) -> ApiResult<Json<Vec<PublicKey>>> {
    Ok(Json(state.store.public_keys().await?))
}

#[derive(Serialize, ToSchema)]
struct PolicyView {
    version: String,
    description: String,
    /// The policy as published (TOML).
    source: String,
}

/// The SLA policy in force: deadlines by category and the escalation
/// ladder. No authentication: the rules are public.
#[utoipa::path(get, path = "/api/v1/policy/sla", security(()), responses((status = 200, body = PolicyView)))]
async fn sla_policy(state: S) -> Json<PolicyView> {
    let p = state.store.sla();
    Json(PolicyView {
        version: p.version.clone(),
        description: p.description.clone(),
        source: p.source.clone(),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Resume after this event id (same as the Last-Event-ID header).
    last_event_id: Option<i64>,
}

/// The platform's events as Server-Sent Events (`notice.submitted`,
/// `notice.reminder`, `notice.warning`, `notice.escalated`,
/// `notice.withdrawn`), the same bodies as its webhooks. Resume with
/// `Last-Event-ID`: resuming after an event confirms it, and a notice whose
/// `notice.submitted` event is confirmed counts as delivered.
#[utoipa::path(get, path = "/api/v1/stream", params(StreamQuery, ("Last-Event-ID" = Option<i64>, Header)),
    responses((status = 200, content_type = "text/event-stream", description = "event stream"), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "this token already holds as many open streams as it may")))]
async fn stream(
    state: S,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    require(&p, Action::ReadInbox)?;
    let header_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_header",
                        "Last-Event-ID must be an event id from this stream",
                    )
                })?,
        ),
    };
    // A stream holds a task and a database poll for as long as it lives:
    // a token gets a few, and the slot is freed when the stream is dropped.
    let slot = state
        .edge
        .try_stream(&p.token_id.to_string())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this token already has {} open event streams, the most it may hold: close one, or resume it with Last-Event-ID",
                    state.edge.limits().streams_per_token
                ),
            )
        })?;
    let after = header_id.or(q.last_event_id).unwrap_or(0);
    if after > 0 {
        state.store.confirm_stream(&p, after).await?;
    }
    let store = state.store.clone();
    let party = p.party_id;
    let rx = store.subscribe_events();
    let events = futures_util::stream::unfold(
        (store, rx, after, slot),
        move |(store, mut rx, after, slot)| async move {
            loop {
                match store.platform_events(party, after, 100).await {
                    Ok(batch) if !batch.is_empty() => {
                        let next = batch.last().map(|e| e.seq).unwrap_or(after);
                        let out: Vec<Result<Event, Infallible>> = batch
                            .into_iter()
                            .map(|e| {
                                Ok(Event::default()
                                    .id(e.seq.to_string())
                                    .event(e.event_type)
                                    .data(e.payload.to_string()))
                            })
                            .collect();
                        return Some((futures_util::stream::iter(out), (store, rx, next, slot)));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "event stream read failed");
                        return None;
                    }
                }
                // wake on local commits; poll for other processes' writes
                let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
            }
        },
    );
    Ok(Sse::new(futures_util::StreamExt::flatten(events))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Outbound messages of a notice: channel, state, attempts, last error.
#[utoipa::path(get, path = "/api/v1/notices/{id}/deliveries", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ErrorBody)))]
async fn notice_deliveries(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<tapis_store::Delivery>>> {
    require(&p, Action::ReadNotices)?;
    let nid = parse_id("notice id", &id, NoticeId::parse)?;
    let n = state.store.get_notice(nid).await?;
    let visible = p.role.reads_everything()
        || (p.party_kind == PartyKind::Platform
            && n.platform_id == p.party_id
            && n.state != tapis_core::notice::NoticeState::Draft)
        || n.issuer_party_id == p.party_id;
    if !visible {
        return Err(ApiError::not_found("notice"));
    }
    Ok(Json(state.store.deliveries(nid).await?))
}

/// Dead-lettered messages (admin, auditor).
#[utoipa::path(get, path = "/api/v1/deliveries/dead", responses((status = 200, body = Vec<tapis_store::DeadLetter>), (status = 403, body = ErrorBody)))]
async fn dead_letters(state: S, Auth(p): Auth) -> ApiResult<Json<Vec<tapis_store::DeadLetter>>> {
    require(&p, Action::ReadDeadLetters)?;
    Ok(Json(state.store.dead_letters(200).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EscalationQuery {
    /// open or decided
    state: Option<String>,
}

/// Escalations: notices whose ladder ran out (authority staff).
#[utoipa::path(get, path = "/api/v1/escalations", params(EscalationQuery), responses((status = 200, body = Vec<Escalation>), (status = 403, body = ErrorBody)))]
async fn list_escalations(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<EscalationQuery>,
) -> ApiResult<Json<Vec<Escalation>>> {
    require(&p, Action::ReadEscalations)?;
    let filter = match q.state.as_deref() {
        None => None,
        Some(s) => Some(EscalationState::parse(s).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "state must be open or decided",
            )
        })?),
    };
    Ok(Json(state.store.list_escalations(filter).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EscalationDecision {
    /// propose_order (hand it to the blocking-order process) or dismiss
    decision: String,
    /// Why; it goes on the record.
    note: String,
}

/// Decide an escalation (approver).
#[utoipa::path(post, path = "/api/v1/escalations/{id}/decision", params(("id" = String, Path)), request_body = EscalationDecision,
    responses((status = 200, body = Escalation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn decide_escalation(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<EscalationDecision>,
) -> ApiResult<Json<Escalation>> {
    require(&p, Action::DecideEscalation)?;
    if id.len() != 36 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "escalation id is not valid",
        ));
    }
    let decision = tapis_core::escalation::EscalationDecision::parse(&body.value.decision)?;
    let id = crate::extract::canonical_id(&id, EscalationId::parse, "escalation")?;
    // a person decides, never a machine credential
    tapis_core::person::require_person(
        p.person.as_ref(),
        tapis_core::person::PersonalAct::DecideEscalation,
    )?;
    Ok(Json(
        state
            .store
            .decide_escalation(&p, id, decision, &body.value.note)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    /// Seconds to move the simulated clock forward (1 to 31,536,000).
    seconds: i64,
}

#[derive(Serialize, ToSchema)]
struct AdvanceResponse {
    /// The simulated time after the move.
    now: String,
}

/// Move the simulated clock forward and fire whatever falls due (admin;
/// only on a server started with `--simulated-clock`).
#[utoipa::path(post, path = "/api/v1/admin/clock/advance", request_body = AdvanceRequest,
    responses((status = 200, body = AdvanceResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn advance_clock(
    state: S,
    Auth(p): Auth,
    body: ApiJson<AdvanceRequest>,
) -> ApiResult<Json<AdvanceResponse>> {
    require(&p, Action::ControlClock)?;
    let Some(control) = &state.clock_control else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "clock_not_simulated",
            "this server runs on the real clock; start it with --simulated-clock to move time",
        ));
    };
    let secs = body.value.seconds;
    if !(1..=31_536_000).contains(&secs) {
        return Err(ApiError {
            field: Some("seconds".into()),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "seconds must be between 1 and 31536000",
            )
        });
    }
    let now = control.advance(secs).await.map_err(|e| {
        tracing::error!(error = %e, "clock advance failed");
        ApiError::internal()
    })?;
    Ok(Json(AdvanceResponse {
        now: now.to_string(),
    }))
}

#[derive(Serialize, ToSchema)]
struct ClockStatus {
    /// The simulated time now.
    now: String,
    /// What the scheduler and delivery still have to do: `due_now` is
    /// zero once everything due has been done (a driver of the clock waits
    /// for that before its next step), `next_due` is when the next timer,
    /// order job or retry falls due.
    work: tapis_store::DueWork,
}

/// The simulated clock: its time, what is due now and when the next work
/// falls due (admin; only on a server started with `--simulated-clock`).
#[utoipa::path(get, path = "/api/v1/admin/clock",
    responses((status = 200, body = ClockStatus), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn clock_status(state: S, Auth(p): Auth) -> ApiResult<Json<ClockStatus>> {
    require(&p, Action::ControlClock)?;
    if state.clock_control.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "clock_not_simulated",
            "this server runs on the real clock; start it with --simulated-clock",
        ));
    }
    Ok(Json(ClockStatus {
        now: state.store.now().to_string(),
        work: state.store.due_work().await?,
    }))
}

/// Which process owns the scheduler, NOTIFY and compliance probes when
/// several `tapis serve` share one database (admin, auditor): this
/// process's name on the lease, whether it owns it, and the lease row
/// (holder, fencing token, time left by the database's clock).
#[utoipa::path(get, path = "/api/v1/admin/ownership",
    responses((status = 200, body = tapis_store::Ownership), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn ownership(state: S, Auth(p): Auth) -> ApiResult<Json<tapis_store::Ownership>> {
    require(&p, Action::ReadOperations)?;
    match state.store.ownership().await? {
        Some(o) => Ok(Json(o)),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_lease",
            "this server takes no part in ownership (it was started without a lease)",
        )),
    }
}
