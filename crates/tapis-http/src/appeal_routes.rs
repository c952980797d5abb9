//! Questions, disputes and appeals: a platform asks about or disputes an
//! item of a notice addressed to it; the authority answers and reviews;
//! anyone affected appeals an item or an order — a party with its token,
//! the public without one (a few a hour per address on top of the
//! anonymous limit, bodies bounded like every other) — and follows it by
//! its reference. Core parses, the store decides who may; nothing is
//! decided here.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tapis_core::appeal::{AppealDecision, AppealInput, AppealState, NewAppeal, Reference};
use tapis_core::dispute::{DisputeReview, Question};
use tapis_core::{AppealId, ClarificationId, DisputeId, ItemId, NoticeId};
use tapis_store::{Appeal, Clarification, Dispute, Principal, PublicAppeal};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, parse_id};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ask_clarification))
        .routes(routes!(dispute_item))
        .routes(routes!(notice_questions))
        .routes(routes!(answer_clarification))
        .routes(routes!(review_dispute))
        .routes(routes!(submit_appeal, list_appeals))
        .routes(routes!(appeal_status))
        .routes(routes!(start_review))
        .routes(routes!(decide_appeal))
}

/// The caller, when it sent a token; `None` for the public. A token that
/// is sent must be valid (401 otherwise, as everywhere).
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(MaybeAuth(None));
        }
        Auth::from_request_parts(parts, state)
            .await
            .map(|Auth(p)| MaybeAuth(Some(p)))
    }
}

/// The client's address, for the per-address limit on public forms only
/// (never stored).
pub struct Peer(pub Option<IpAddr>);

impl<St: Send + Sync> FromRequestParts<St> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct QuestionBody {
    /// What the platform needs to know (up to 4,000 characters).
    question: String,
}

/// Ask the authority about an item (the addressed platform). The notice's
/// deadline pauses until the answer (`notice.paused`, then
/// `notice.resumed` with the time paused added to it); another platform's
/// notice is a 404.
#[utoipa::path(post, path = "/api/v1/notices/{id}/items/{item_id}/clarification",
    params(("id" = String, Path), ("item_id" = String, Path)), request_body = QuestionBody,
    responses((status = 201, body = Clarification), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ask_clarification(
    state: S,
    Auth(p): Auth,
    ApiPath((id, item)): ApiPath<(String, String)>,
    body: ApiJson<QuestionBody>,
) -> ApiResult<(StatusCode, Json<Clarification>)> {
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    let item = parse_id("item id", &item, ItemId::parse)?;
    let q = Question::parse("question", &body.value.question)?;
    let c = state.store.ask_clarification(&p, id, item, &q).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DisputeBody {
    /// Why the item is wrong (up to 4,000 characters).
    reason: String,
}

/// Dispute an item (the addressed platform): it waits for the authority's
/// review and does not escalate; the notice's deadline pauses meanwhile.
#[utoipa::path(post, path = "/api/v1/notices/{id}/items/{item_id}/dispute",
    params(("id" = String, Path), ("item_id" = String, Path)), request_body = DisputeBody,
    responses((status = 201, body = Dispute), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dispute_item(
    state: S,
    Auth(p): Auth,
    ApiPath((id, item)): ApiPath<(String, String)>,
    body: ApiJson<DisputeBody>,
) -> ApiResult<(StatusCode, Json<Dispute>)> {
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    let item = parse_id("item id", &item, ItemId::parse)?;
    let reason = Question::parse("reason", &body.value.reason)?;
    let d = state.store.dispute_item(&p, id, item, &reason).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[derive(Serialize, ToSchema)]
struct Questions {
    clarifications: Vec<Clarification>,
    disputes: Vec<Dispute>,
}

/// A notice's questions and disputes with their answers (the addressed
/// platform, the authority).
#[utoipa::path(get, path = "/api/v1/notices/{id}/questions", params(("id" = String, Path)),
    responses((status = 200, body = Questions), (status = 404, body = ErrorBody)))]
async fn notice_questions(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Questions>> {
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    let (clarifications, disputes) = state.store.notice_questions(&p, id).await?;
    Ok(Json(Questions {
        clarifications,
        disputes,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    answer: String,
}

/// Answer a platform's question (officer or approver). The answer is
/// signed, delivered to the platform and the deadline runs again.
#[utoipa::path(post, path = "/api/v1/clarifications/{id}/answer", params(("id" = String, Path)), request_body = AnswerBody,
    responses((status = 200, body = Clarification), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn answer_clarification(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<AnswerBody>,
) -> ApiResult<Json<Clarification>> {
    let id = parse_id("clarification id", &id, ClarificationId::parse)?;
    let answer = Question::parse("answer", &body.value.answer)?;
    Ok(Json(
        state.store.answer_clarification(&p, id, &answer).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LegalBasisBody {
    reference: String,
    text: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    /// upheld, withdrawn or amended
    outcome: String,
    reason: String,
    /// For `amended`: the new explanation…
    #[serde(default)]
    explanation: Option<String>,
    /// …and/or the new legal basis. The target itself is not amended.
    #[serde(default)]
    legal_basis: Option<LegalBasisBody>,
}

/// Review a dispute (officer or approver, never the person who issued the
/// notice): upheld (the item is pending again), withdrawn, or amended (a
/// new explanation or legal basis; the item is pending again). Signed,
/// delivered to the platform; the deadline runs again.
#[utoipa::path(post, path = "/api/v1/disputes/{id}/review", params(("id" = String, Path)), request_body = ReviewBody,
    responses((status = 200, body = Dispute), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn review_dispute(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<ReviewBody>,
) -> ApiResult<Json<Dispute>> {
    let id = parse_id("dispute id", &id, DisputeId::parse)?;
    let b = &body.value;
    let review = DisputeReview::parse(
        &b.outcome,
        &b.reason,
        b.explanation.as_deref(),
        b.legal_basis
            .as_ref()
            .map(|l| (l.reference.as_str(), l.text.as_str())),
    )?;
    Ok(Json(state.store.review_dispute(&p, id, &review).await?))
}

#[derive(Serialize, ToSchema)]
struct AppealReceived {
    #[serde(flatten)]
    appeal: PublicAppeal,
    /// Where anyone with the reference follows it.
    status_url: String,
}

/// Appeal a notice item or a blocking order. With a token: a platform
/// (items of its own notices, any order) or an ISP. Without one: the
/// public or the content's owner — no account, nothing about the caller
/// recorded (not its address), a few appeals an hour per address. The
/// answer's `reference` is the only key to the appeal's status.
#[utoipa::path(post, path = "/api/v1/appeals", security((), ("bearer" = [])), request_body = AppealInput,
    responses((status = 201, body = AppealReceived), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn submit_appeal(
    state: S,
    Peer(peer): Peer,
    MaybeAuth(p): MaybeAuth,
    body: ApiJson<AppealInput>,
) -> ApiResult<Response> {
    // only a well-formed appeal spends from the address's few an hour
    let new = NewAppeal::parse(body.value, p.as_ref().map(|p| p.party_kind))?;
    if p.is_none()
        && let Some(ip) = peer
        && let Err(wait) = state.edge.allow_public_form(ip, Instant::now())
    {
        let secs = wait.as_secs().max(1);
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many appeals from this address; try again in {secs} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    let a = state.store.submit_appeal(p.as_ref(), &new).await?;
    let status_url = format!("/appeal/{}", a.reference);
    Ok((
        StatusCode::CREATED,
        Json(AppealReceived {
            appeal: a.public,
            status_url,
        }),
    )
        .into_response())
}

/// An appeal's status by its reference. Public: the state, dates, the
/// decision and its reasons; nothing about who appealed or why.
#[utoipa::path(get, path = "/api/v1/appeals/{reference}", security(()), params(("reference" = String, Path)),
    responses((status = 200, body = PublicAppeal), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn appeal_status(
    state: S,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<PublicAppeal>> {
    let reference = Reference::parse(&reference)?;
    Ok(Json(state.store.public_appeal(&reference).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    /// received, under_review, upheld, rejected or referred
    state: Option<String>,
    /// At most this many (default 200, at most 1,000).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct Queue {
    appeals: Vec<Appeal>,
    /// Appeals per state, and `overdue`.
    #[schema(value_type = Object)]
    counts: serde_json::Map<String, serde_json::Value>,
}

/// The appeals queue (the authority): open appeals first by deadline,
/// overdue ones marked; then decided ones, newest first.
#[utoipa::path(get, path = "/api/v1/appeals", params(QueueQuery),
    responses((status = 200, body = Queue), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_appeals(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> ApiResult<Json<Queue>> {
    let st = q.state.as_deref().map(AppealState::parse).transpose()?;
    let appeals = state
        .store
        .list_appeals(&p, st, q.limit.unwrap_or(200))
        .await?;
    let counts = state
        .store
        .appeal_counts(&p)
        .await?
        .into_iter()
        .map(|(k, n)| (k, serde_json::Value::from(n)))
        .collect();
    Ok(Json(Queue { appeals, counts }))
}

/// Start reviewing an appeal (officer or approver; never the person who
/// issued the notice or proposed or approved the order).
#[utoipa::path(post, path = "/api/v1/appeals/{id}/review", params(("id" = String, Path)),
    responses((status = 200, body = Appeal), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_review(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Appeal>> {
    let id = parse_id("appeal id", &id, AppealId::parse)?;
    Ok(Json(state.store.start_appeal_review(&p, id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// upheld, rejected or referred
    outcome: String,
    /// Published on the appeal's status page.
    reasons: String,
    /// For `referred`: authoriser or court.
    #[serde(default)]
    referred_to: Option<String>,
}

/// Decide an appeal under review (the same second-person rule). Upheld on
/// an order lifts it (its names leave the RPZ under a new serial); upheld
/// on an item withdraws it and tells the platform.
#[utoipa::path(post, path = "/api/v1/appeals/{id}/decision", params(("id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = Appeal), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn decide_appeal(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<DecisionBody>,
) -> ApiResult<Json<Appeal>> {
    let id = parse_id("appeal id", &id, AppealId::parse)?;
    let b = &body.value;
    let d = AppealDecision::parse(&b.outcome, &b.reasons, b.referred_to.as_deref())?;
    Ok(Json(state.store.decide_appeal(&p, id, &d).await?))
}
