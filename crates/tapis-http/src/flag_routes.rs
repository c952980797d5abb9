//! Flags: a flagger party submits (one or a batch, idempotent), the public
//! reports without an account (bounded, a few an hour per address, no
//! address recorded) and follows its report by reference; officers work
//! the review queue and accept flags into a notice, merge them into an
//! open one, or reject them with a reason. Each flagger reads its own
//! flags only. Core parses and decides; the store applies.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, Extension};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tapis_core::flag::{AcceptInput, Acceptance, FlagInput, FlagLimits, NewFlag, parse_flag_ids};
use tapis_core::party::bounded_text;
use tapis_core::role::Action;
use tapis_core::trusted::{GrantEvent, GrantInput, NewGrant};
use tapis_core::{FlagId, NoticeId, PartyId, Timestamp, canonical};
use tapis_store::{
    FlagView, FlaggerReport, IssuerFigures, Notice, PublicFlagStatus, QueueEntry, QueueHealth,
    TrustedGrant,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, parse_id};

type S = axum::extract::State<AppState>;

/// The largest public report, as canonical JSON.
pub const PUBLIC_FLAG_MAX_BYTES: usize = 32 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_flags, list_flags))
        .routes(routes!(flag_queue))
        .routes(routes!(flag_queue_health))
        .routes(routes!(get_flag))
        .routes(routes!(accept_flags))
        .routes(routes!(reject_flags))
        .routes(routes!(merge_flags))
        .routes(routes!(submit_public_flag))
        .routes(routes!(public_flag_status))
        .routes(routes!(grant_trusted_flagger, list_trusted_flaggers))
        .routes(routes!(confirm_trusted_flagger))
        .routes(routes!(change_trusted_flagger))
        .routes(routes!(flagger_report))
        .routes(routes!(issuer_report))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FlagBatch {
    /// One or more flags (a single flag is a batch of one).
    flags: Vec<FlagInput>,
}

#[derive(Serialize, ToSchema)]
struct FlagsAnswer {
    flags: Vec<FlagView>,
}

/// Submit flags (a flagger party): one or a batch, in one transaction. With
/// an `Idempotency-Key` header a repeat returns the first flags (200); the
/// same key with a different body is a 409.
#[utoipa::path(post, path = "/api/v1/flags", request_body = FlagBatch,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe; up to 200 printable characters")),
    responses((status = 201, body = FlagsAnswer), (status = 200, body = FlagsAnswer, description = "idempotent repeat"),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_flags(
    state: S,
    Auth(p): Auth,
    headers: HeaderMap,
    body: ApiJson<FlagBatch>,
) -> ApiResult<Response> {
    p.role.require(Action::SubmitFlag)?;
    let idempotency = crate::routes::idempotency(&headers, &body.raw)?;
    let limits = FlagLimits::AGENCY;
    let batch = body.value.flags;
    if batch.is_empty() || batch.len() > limits.max_batch {
        return Err(tapis_core::Error::invalid(
            "flags",
            format!("send between 1 and {} flags at once", limits.max_batch),
        )
        .into());
    }
    let now = state.store.now();
    let mut flags = Vec::with_capacity(batch.len());
    for (i, f) in batch.into_iter().enumerate() {
        flags.push(
            NewFlag::parse(f, &state.taxonomy, limits, false, now)
                .map_err(|e| e.within(&format!("flags[{i}]")))?,
        );
    }
    let (flags, created) = state
        .store
        .submit_flags(
            &p,
            flags,
            idempotency.as_ref().map(|(k, f)| (k.as_str(), f.as_str())),
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(FlagsAnswer { flags })).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

fn page(limit: Option<u32>, default: u32) -> ApiResult<u32> {
    let limit = limit.unwrap_or(default);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be between 1 and 500",
        ))
    }
}

/// Flags with their outcome (accepted → notice → the platform's decision
/// per target). A flagger sees its own party's only; authority staff all.
#[utoipa::path(get, path = "/api/v1/flags", params(ListQuery), responses(
    (status = 200, body = FlagsAnswer), (status = 403, body = ErrorBody)))]
async fn list_flags(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<FlagsAnswer>> {
    p.role.require(Action::ReadFlags)?;
    let limit = page(q.limit, 100)?;
    Ok(Json(FlagsAnswer {
        flags: state.store.list_flags(&p, limit).await?,
    }))
}

/// One flag; another party's is a 404.
#[utoipa::path(get, path = "/api/v1/flags/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = FlagView), (status = 404, body = ErrorBody)))]
async fn get_flag(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<FlagView>> {
    p.role.require(Action::ReadFlags)?;
    let id = parse_id("flag id", &id, FlagId::parse)?;
    Ok(Json(state.store.get_flag(&p, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    /// Entries, 1 to 500 (default 50).
    limit: Option<u32>,
    /// Entries one source may place in each round of the order, 1 to 50
    /// (default 3): a flood from one source cannot fill the first page.
    per_source: Option<u32>,
}

/// The review queue (officers; authority staff may read it): received
/// flags grouped by normalised target with every source, most severe
/// category first, then the sources' track record, then the number of
/// independent sources, fair per source.
#[utoipa::path(get, path = "/api/v1/flags/queue", params(QueueQuery), responses(
    (status = 200, body = Vec<QueueEntry>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn flag_queue(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> ApiResult<Json<Vec<QueueEntry>>> {
    if !p.role.reads_everything() {
        p.role.require(Action::TriageFlags)?;
    }
    let limit = page(q.limit, 50)?;
    let per_source = q.per_source.unwrap_or(3);
    if !(1..=50).contains(&per_source) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "per_source must be between 1 and 50",
        ));
    }
    Ok(Json(
        state
            .store
            .flag_queue(limit as usize, per_source as usize)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HealthQuery {
    /// Days the reviews are counted over, 1 to 90 (default 7).
    days: Option<u32>,
}

/// The authority's own queue health: flags waiting, the oldest's age,
/// reviews per person per day (authority staff).
#[utoipa::path(get, path = "/api/v1/flags/queue/health", params(HealthQuery), responses(
    (status = 200, body = QueueHealth), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn flag_queue_health(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> ApiResult<Json<QueueHealth>> {
    if !p.role.reads_everything() {
        p.role.require(Action::TriageFlags)?;
    }
    let days = q.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "days must be between 1 and 90",
        ));
    }
    Ok(Json(state.store.flag_queue_health(days).await?))
}

/// Accept flags into one notice (an officer): the flags' targets become
/// its items, sent to the platform named or the one that registered the
/// targets' domain or handle; the notice goes the way every notice goes
/// (signed, delivered, deadlines).
#[utoipa::path(post, path = "/api/v1/flags/accept", request_body = AcceptInput, responses(
    (status = 201, body = Notice), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn accept_flags(
    state: S,
    Auth(p): Auth,
    body: ApiJson<AcceptInput>,
) -> ApiResult<(StatusCode, Json<Notice>)> {
    p.role.require(Action::TriageFlags)?;
    let acceptance = Acceptance::parse(body.value, &state.taxonomy)?;
    let notice = state.store.accept_flags(&p, acceptance).await?;
    Ok((StatusCode::CREATED, Json(notice)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    flag_ids: Vec<String>,
    /// Why; the flagger (and a public reporter) reads it.
    reason: String,
}

/// Reject flags with a reason (an officer).
#[utoipa::path(post, path = "/api/v1/flags/reject", request_body = RejectRequest, responses(
    (status = 200, body = FlagsAnswer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reject_flags(
    state: S,
    Auth(p): Auth,
    body: ApiJson<RejectRequest>,
) -> ApiResult<Json<FlagsAnswer>> {
    p.role.require(Action::TriageFlags)?;
    let ids = parse_flag_ids(&body.value.flag_ids)?;
    let reason = bounded_text("reason", &body.value.reason, 1, 4000)?;
    Ok(Json(FlagsAnswer {
        flags: state.store.reject_flags(&p, &ids, &reason).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    flag_ids: Vec<String>,
    /// An open notice that already names every target of these flags.
    notice_id: String,
}

/// Merge flags into an open notice that already asks for their targets
/// (an officer); their outcome follows that notice.
#[utoipa::path(post, path = "/api/v1/flags/merge", request_body = MergeRequest, responses(
    (status = 200, body = FlagsAnswer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn merge_flags(
    state: S,
    Auth(p): Auth,
    body: ApiJson<MergeRequest>,
) -> ApiResult<Json<FlagsAnswer>> {
    p.role.require(Action::TriageFlags)?;
    let ids = parse_flag_ids(&body.value.flag_ids)?;
    let notice = parse_id("notice_id", body.value.notice_id.trim(), NoticeId::parse)?;
    Ok(Json(FlagsAnswer {
        flags: state.store.merge_flags(&p, &ids, notice).await?,
    }))
}

/// 429 with `Retry-After` once an address has sent its few public reports;
/// the address is only counted in memory, never stored.
fn public_flag_admission(state: &AppState, peer: Option<SocketAddr>) -> Option<Response> {
    let wait = state
        .edge
        .allow_public_flag(peer?.ip(), Instant::now())
        .err()?;
    let secs = wait.as_secs().max(1);
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many reports from this address; try again in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

/// Report content without an account. Nothing about the reporter is
/// recorded but the optional contact (sealed, never shown to a platform or
/// a flagger); a few reports an hour per address, each with a solved
/// proof-of-work challenge (`GET /api/v1/public/challenge`). The answer's
/// `reference` is the only key to the report's status.
#[utoipa::path(post, path = "/api/v1/public/flags", security(()), request_body = FlagInput,
    params(
        ("Tapis-Challenge" = String, Header, description = "a challenge from GET /api/v1/public/challenge, as given"),
        ("Tapis-Proof" = String, Header, description = "a decimal counter: SHA-256(challenge \":\" counter) starts with `difficulty` zero bits")),
    responses(
    (status = 201, body = PublicFlagStatus), (status = 400, body = ErrorBody, description = "proof missing or malformed"),
    (status = 409, body = ErrorBody, description = "challenge already used"), (status = 413, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "invalid report, or a proof that is expired, forged or unsolved"),
    (status = 429, body = ErrorBody)))]
async fn submit_public_flag(
    state: S,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: ApiJson<FlagInput>,
) -> ApiResult<Response> {
    let size = canonical::to_vec(&body.raw)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > PUBLIC_FLAG_MAX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "a public report is at most {PUBLIC_FLAG_MAX_BYTES} bytes of JSON: shorten the reasons or send fewer targets"
            ),
        ));
    }
    let flag = NewFlag::parse(
        body.value,
        &state.taxonomy,
        FlagLimits::PUBLIC,
        true,
        state.store.now(),
    )?;
    // only a well-formed report with a good proof spends from the
    // address's allowance; the proof is spent first, once
    state
        .challenges
        .check(&state.store, &headers, state.store.now())
        .await?;
    if let Some(refused) = public_flag_admission(&state, peer.map(|Extension(c)| c.0)) {
        return Ok(refused);
    }
    let f = state.store.submit_public_flag(flag).await?;
    let status = state.store.public_flag_status(&f.reference).await?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// A public report's status by its reference: state, dates, the reason if
/// rejected and the platform's decision per target; no names.
#[utoipa::path(get, path = "/api/v1/public/flags/{reference}", security(()), params(("reference" = String, Path)),
    responses((status = 200, body = PublicFlagStatus), (status = 404, body = ErrorBody)))]
async fn public_flag_status(
    state: S,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<PublicFlagStatus>> {
    let reference = reference.trim().to_ascii_uppercase();
    if reference.len() > 40
        || !reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::not_found("flag"));
    }
    Ok(Json(state.store.public_flag_status(&reference).await?))
}

// ---- trusted-flagger status -------------------------------------------

fn grant_id(raw: &str) -> ApiResult<String> {
    let ok = raw.len() == 36 && raw.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "grant id is not a valid id (a UUID such as 0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a)",
        ))
    }
}

/// Grant a flagger trusted-flagger status with a platform, for a scope
/// (the authority's admin). It counts once the platform confirms it.
#[utoipa::path(post, path = "/api/v1/trusted-flaggers", request_body = GrantInput, responses(
    (status = 201, body = TrustedGrant), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn grant_trusted_flagger(
    state: S,
    Auth(p): Auth,
    body: ApiJson<GrantInput>,
) -> ApiResult<(StatusCode, Json<TrustedGrant>)> {
    p.role.require(Action::ManageTrustedFlaggers)?;
    let new = NewGrant::parse(body.value, &state.taxonomy)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.grant_trusted_flagger(&p, new).await?),
    ))
}

/// Trusted-flagger grants: authority staff see all, a platform those with
/// it, a flagger its own.
#[utoipa::path(get, path = "/api/v1/trusted-flaggers", responses((status = 200, body = Vec<TrustedGrant>)))]
async fn list_trusted_flaggers(state: S, Auth(p): Auth) -> ApiResult<Json<Vec<TrustedGrant>>> {
    Ok(Json(state.store.list_trusted_flaggers(&p).await?))
}

/// The platform confirms a grant with itself, through its own account.
#[utoipa::path(post, path = "/api/v1/trusted-flaggers/{id}/confirm", params(("id" = String, Path)), responses(
    (status = 200, body = TrustedGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn confirm_trusted_flagger(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TrustedGrant>> {
    p.role.require(Action::ConfirmTrustedFlagger)?;
    let id = grant_id(&id)?;
    Ok(Json(
        state
            .store
            .change_trusted_flagger(&p, &id, GrantEvent::Confirm, None)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GrantChange {
    /// suspend, reinstate or revoke
    action: String,
    /// Why; it goes on the record.
    reason: String,
}

/// Suspend, reinstate or revoke a grant, with a reason (the authority's
/// admin); each is an audit event.
#[utoipa::path(post, path = "/api/v1/trusted-flaggers/{id}/status", params(("id" = String, Path)), request_body = GrantChange,
    responses((status = 200, body = TrustedGrant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_trusted_flagger(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<GrantChange>,
) -> ApiResult<Json<TrustedGrant>> {
    p.role.require(Action::ManageTrustedFlaggers)?;
    let id = grant_id(&id)?;
    let event = match body.value.action.as_str() {
        "suspend" => GrantEvent::Suspend,
        "reinstate" => GrantEvent::Reinstate,
        "revoke" => GrantEvent::Revoke,
        _ => {
            return Err(tapis_core::Error::invalid(
                "action",
                "use suspend, reinstate or revoke (the platform confirms with POST …/confirm)",
            )
            .into());
        }
    };
    let reason = bounded_text("reason", &body.value.reason, 1, 4000)?;
    Ok(Json(
        state
            .store
            .change_trusted_flagger(&p, &id, event, Some(&reason))
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// The calendar year (UTC), 2000 to 2100; default: the current one.
    year: Option<i32>,
}

/// A flagger's yearly report: flags, acceptance at review, the platforms'
/// decisions on its items, its grants, and whether its accuracy calls its
/// status into review. The flagger itself or authority staff; anyone
/// else gets a 404.
#[utoipa::path(get, path = "/api/v1/flaggers/{id}/report", params(("id" = String, Path), ReportQuery), responses(
    (status = 200, body = FlaggerReport), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn flagger_report(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<FlaggerReport>> {
    let id = parse_id("flagger id", &id, PartyId::parse)?;
    if !p.role.reads_everything() && id != p.party_id {
        return Err(ApiError::not_found("flagger"));
    }
    let year = year_of(&state, q.year)?;
    let (from, to) = year_bounds(year)?;
    Ok(Json(
        state
            .store
            .flagger_report(id, year, from, to, state.accuracy)
            .await?,
    ))
}

/// The calendar year asked for (default: the current one), bounded.
fn year_of(state: &AppState, asked: Option<i32>) -> ApiResult<i32> {
    let year = match asked {
        Some(y) => y,
        None => state
            .store
            .now()
            .to_string()
            .get(..4)
            .and_then(|y| y.parse().ok())
            .unwrap_or(2000),
    };
    if !(2000..=2100).contains(&year) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "year must be between 2000 and 2100",
        ));
    }
    Ok(year)
}

fn year_bounds(year: i32) -> ApiResult<(Timestamp, Timestamp)> {
    let start = |y: i32| Timestamp::parse("year", &format!("{y:04}-01-01T00:00:00Z"));
    Ok((start(year)?, start(year + 1)?))
}

#[derive(Serialize, ToSchema)]
struct IssuerReport {
    year: i32,
    issuers: Vec<IssuerFigures>,
}

/// The authority's own issuers' accuracy for notices submitted in a year:
/// per issuer, the platforms' decisions on the items, disputes answered by
/// withdrawing the item, appeals upheld (authority staff).
#[utoipa::path(get, path = "/api/v1/issuers/report", params(ReportQuery), responses(
    (status = 200, body = IssuerReport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn issuer_report(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<IssuerReport>> {
    if !p.role.reads_everything() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the issuers' report is for the authority's staff",
        ));
    }
    let year = year_of(&state, q.year)?;
    let (from, to) = year_bounds(year)?;
    Ok(Json(IssuerReport {
        year,
        issuers: state.store.issuer_figures(from, to).await?,
    }))
}
