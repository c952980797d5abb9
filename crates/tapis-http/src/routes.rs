//! Route handlers. Each one: authenticate, check the role matrix, parse
//! with core's decoders, scope to the caller's party, call the store.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tapis_core::notice::{Decision, DecisionInput, NewNotice, NoticeInput, NoticeState};
use tapis_core::party::{NewParty, PartyInput, PartyKind, bounded_text};
use tapis_core::role::{Action, Role};
use tapis_core::{ItemId, NoticeId, PartyId, canonical};
use tapis_store::{AuditEvent, Notice, NoticeFilter, Party, Principal, TokenInfo};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, OptionalJson, parse_id};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_party, list_parties))
        .routes(routes!(get_party))
        .routes(routes!(create_token))
        .routes(routes!(create_notice, list_notices))
        .routes(routes!(get_notice))
        .routes(routes!(submit_notice))
        .routes(routes!(withdraw_notice))
        .routes(routes!(acknowledge_notice))
        .routes(routes!(decide_item))
        .routes(routes!(notice_timeline))
        .routes(routes!(inbox))
        .routes(routes!(whoami))
        .routes(routes!(verify_audit))
}

fn require(p: &Principal, action: Action) -> ApiResult<()> {
    Ok(p.role.require(action)?)
}

#[derive(Serialize, ToSchema)]
struct WhoAmI {
    #[schema(value_type = String)]
    token_id: String,
    #[schema(value_type = String)]
    party_id: String,
    party_kind: PartyKind,
    role: Role,
    label: String,
    /// The person holding the token (normalised); absent for a machine
    /// credential.
    #[schema(value_type = Option<String>)]
    person: Option<tapis_core::person::Person>,
}

/// The caller's identity: party, role, token label and person.
#[utoipa::path(get, path = "/api/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
async fn whoami(Auth(p): Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        token_id: p.token_id.to_string(),
        party_id: p.party_id.to_string(),
        party_kind: p.party_kind,
        role: p.role,
        label: p.label,
        person: p.person,
    })
}

// ---- parties -------------------------------------------------------------

/// Register a party (admin).
#[utoipa::path(post, path = "/api/v1/parties", request_body = PartyInput, responses(
    (status = 201, body = Party), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_party(
    state: S,
    Auth(p): Auth,
    body: ApiJson<PartyInput>,
) -> ApiResult<(StatusCode, Json<Party>)> {
    require(&p, Action::ManageParties)?;
    let new = NewParty::parse(body.value)?;
    let party = state.store.create_party(&p.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(party)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PartyQuery {
    /// authority, flagger, platform or isp
    kind: Option<String>,
}

/// List parties. Authority staff see all; others see their own party.
#[utoipa::path(get, path = "/api/v1/parties", params(PartyQuery), responses((status = 200, body = Vec<Party>)))]
async fn list_parties(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PartyQuery>,
) -> ApiResult<Json<Vec<Party>>> {
    let kind = q.kind.as_deref().map(PartyKind::parse).transpose()?;
    if !p.role.may(Action::ReadAllParties) {
        let own = state.store.get_party(p.party_id).await?;
        let matches = kind.is_none_or(|k| k == own.kind);
        return Ok(Json(if matches { vec![own] } else { vec![] }));
    }
    Ok(Json(state.store.list_parties(kind).await?))
}

/// One party. Another party's record is 404 unless the caller is authority staff.
#[utoipa::path(get, path = "/api/v1/parties/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = Party), (status = 404, body = ErrorBody)))]
async fn get_party(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Party>> {
    let id = parse_id("party id", &id, PartyId::parse)?;
    if !p.role.may(Action::ReadAllParties) && id != p.party_id {
        return Err(ApiError::not_found("party"));
    }
    Ok(Json(state.store.get_party(id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// admin, officer, approver, auditor, flagger, platform_agent or isp_operator;
    /// it must fit the party's kind
    role: String,
    /// What the token is for, e.g. "duty officer" or "ingest bot".
    label: String,
    /// The person holding it ("J. Doe"); compared case- and
    /// space-insensitively for four eyes. Absent: a machine credential,
    /// which may not propose or approve.
    #[serde(default)]
    person: Option<String>,
    /// When it stops working (RFC 3339, within five years); absent: it
    /// lives until revoked.
    #[serde(default)]
    expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct TokenCreated {
    #[serde(flatten)]
    info: TokenInfo,
    /// The secret. It is shown this once and stored only as a hash.
    token: String,
}

/// Create a token. The authority's admin creates tokens for the
/// authority's own people; another party gets its first token through an
/// invitation (`POST /api/v1/parties/{id}/invitations`), and its own
/// member then creates further tokens of its own role for its own party.
/// The secret is in the response only.
#[utoipa::path(post, path = "/api/v1/parties/{id}/tokens", params(("id" = String, Path)), request_body = TokenRequest,
    responses((status = 201, body = TokenCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<TokenRequest>,
) -> ApiResult<Response> {
    let id = parse_id("party id", &id, PartyId::parse)?;
    let role = Role::parse(&body.value.role)?;
    let person = body
        .value
        .person
        .as_deref()
        .map(tapis_core::person::Person::parse)
        .transpose()?;
    let expires_at = body
        .value
        .expires_at
        .as_deref()
        .map(|s| tapis_core::Timestamp::parse("expires_at", s))
        .transpose()?;
    let (info, token) = state
        .store
        .issue_token(&p, id, role, &body.value.label, person.as_ref(), expires_at)
        .await?;
    let mut resp = (StatusCode::CREATED, Json(TokenCreated { info, token })).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

// ---- notices -------------------------------------------------------------

/// Submit a notice (officer), or save it as a draft with `"draft": true`.
///
/// With an `Idempotency-Key` header, repeating the same request returns the
/// first notice (200) instead of creating another; the same key with a
/// different body is a 409. Items whose target is already in an open notice
/// to the same platform are accepted and linked (`duplicate_of`).
#[utoipa::path(post, path = "/api/v1/notices", request_body = NoticeInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe; up to 200 printable characters")),
    responses((status = 201, body = Notice), (status = 200, body = Notice, description = "idempotent repeat"),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "delivery is behind: submit again after Retry-After seconds")))]
async fn create_notice(
    state: S,
    Auth(p): Auth,
    headers: HeaderMap,
    body: ApiJson<NoticeInput>,
) -> ApiResult<Response> {
    require(&p, Action::SubmitNotice)?;
    if let Some(after) = pushback(&state) {
        return Ok(after);
    }
    let idempotency = idempotency(&headers, &body.raw)?;
    let new = NewNotice::parse(
        body.value,
        &state.taxonomy,
        state.limits.notice,
        state.store.now(),
    )?;
    let created = state
        .store
        .create_notice(
            &p,
            new,
            idempotency.as_ref().map(|(k, f)| (k.as_str(), f.as_str())),
        )
        .await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created.notice)).into_response())
}

/// The `Idempotency-Key` header, if sent, with the fingerprint of the
/// request body it must be repeated with (SHA-256 of its canonical JSON).
pub(crate) fn idempotency(
    headers: &HeaderMap,
    raw: &serde_json::Value,
) -> ApiResult<Option<(String, String)>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "Idempotency-Key must be 1 to 200 printable ASCII characters",
            )
        })?;
    let fingerprint = hex::encode(Sha256::digest(canonical::to_vec(raw).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })?));
    Ok(Some((key.to_owned(), fingerprint)))
}

/// 429 while delivery is behind (drafts are not pushed back: they send
/// nothing).
fn pushback(state: &AppState) -> Option<Response> {
    let after = state.admission.as_ref()?.retry_after()?;
    Some(crate::error::overloaded(after))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct NoticeQuery {
    /// draft, submitted, delivered, acknowledged, escalated, disputed, closed or withdrawn
    state: Option<String>,
    /// Only notices to this platform.
    platform: Option<String>,
    /// Only notices in this category.
    category: Option<String>,
    /// Only open notices past their deadline.
    overdue: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<u32>,
    /// Continue after this notice id (results are newest first).
    before: Option<String>,
}

/// List notices. Authority staff see all; a platform sees those addressed
/// to it, a flagger those it issued.
#[utoipa::path(get, path = "/api/v1/notices", params(NoticeQuery), responses(
    (status = 200, body = Vec<Notice>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_notices(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<NoticeQuery>,
) -> ApiResult<Json<Vec<Notice>>> {
    require(&p, Action::ReadNotices)?;
    let mut f = NoticeFilter {
        state: q.state.as_deref().map(NoticeState::parse).transpose()?,
        platform_id: q
            .platform
            .as_deref()
            .map(|s| parse_id("platform", s, PartyId::parse))
            .transpose()?,
        // checked, not matched against the taxonomy (older notices may use
        // retired categories): a NUL would make PostgreSQL fail the query
        category: q
            .category
            .map(|c| bounded_text("category", &c, 1, 100))
            .transpose()?,
        overdue: q.overdue.unwrap_or(false),
        before: q
            .before
            .as_deref()
            .map(|s| parse_id("before", s, NoticeId::parse))
            .transpose()?,
        limit: q.limit.unwrap_or(50),
        ..Default::default()
    };
    if !(1..=500).contains(&f.limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    match p.party_kind {
        _ if p.role.reads_everything() => {}
        PartyKind::Platform => {
            if f.platform_id.is_some_and(|x| x != p.party_id) {
                return Ok(Json(vec![]));
            }
            f.platform_id = Some(p.party_id);
            f.exclude_drafts = true;
        }
        _ => f.issuer_party_id = Some(p.party_id),
    }
    Ok(Json(state.store.list_notices(&f).await?))
}

/// Load a notice the caller may see; for its platform, this fetch is delivery.
async fn visible_notice(state: &AppState, p: &Principal, raw_id: &str) -> ApiResult<Notice> {
    require(p, Action::ReadNotices)?;
    let id = parse_id("notice id", raw_id, NoticeId::parse)?;
    if p.role.reads_everything() {
        return Ok(state.store.get_notice(id).await?);
    }
    if p.party_kind == PartyKind::Platform {
        return Ok(state.store.fetch_as_platform(p, id).await?);
    }
    let n = state.store.get_notice(id).await?;
    if n.issuer_party_id != p.party_id {
        return Err(ApiError::not_found("notice"));
    }
    Ok(n)
}

/// One notice with its items. For the addressed platform, fetching it
/// records delivery.
#[utoipa::path(get, path = "/api/v1/notices/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = Notice), (status = 404, body = ErrorBody)))]
async fn get_notice(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Notice>> {
    Ok(Json(visible_notice(&state, &p, &id).await?))
}

/// Submit a draft (its issuer's officer).
#[utoipa::path(post, path = "/api/v1/notices/{id}/submit", params(("id" = String, Path)), responses(
    (status = 200, body = Notice), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "delivery is behind: submit again after Retry-After seconds")))]
async fn submit_notice(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    require(&p, Action::SubmitNotice)?;
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    if let Some(after) = pushback(&state) {
        return Ok(after);
    }
    Ok(Json(state.store.submit_draft(&p, id).await?).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WithdrawRequest {
    /// Why the notice is withdrawn; it goes on the record.
    reason: String,
}

/// Withdraw a notice (its issuer's officer), with a reason.
#[utoipa::path(post, path = "/api/v1/notices/{id}/withdraw", params(("id" = String, Path)), request_body = WithdrawRequest,
    responses((status = 200, body = Notice), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn withdraw_notice(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<WithdrawRequest>,
) -> ApiResult<Json<Notice>> {
    require(&p, Action::WithdrawNotice)?;
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    Ok(Json(
        state.store.withdraw(&p, id, &body.value.reason).await?,
    ))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    /// Optional: the platform's own Ed25519 signature (base64) over the
    /// canonical JSON `{"notice_id","notice_sha256","type":"tapis.acknowledgement.v1"}`,
    /// with the key registered in its channel.
    signature: Option<String>,
}

/// A notice with the signed record of what was just done to it.
#[derive(Serialize, ToSchema)]
struct SignedNotice {
    #[serde(flatten)]
    notice: Notice,
    /// Signed by tapis: `{"payload": {...}, "kid", "alg", "signature"}`;
    /// a `tapis.receipt.v1` for an acknowledgement, a `tapis.decision.v1`
    /// for a decision.
    #[schema(value_type = Object)]
    receipt: serde_json::Value,
    /// The receipt's leaf (`receipt.payload.log`) proved in a signed
    /// checkpoint: with the salt and `chain.hash` it shows, with public
    /// data only, that tapis logged the exchange. Absent if it could not
    /// be made at once: fetch `GET /api/v1/log/proof/leaf/{leaf_index}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    log_proof: Option<crate::log_routes::LeafProof>,
}

impl SignedNotice {
    /// The notice and its receipt, with the receipt's leaf proved.
    async fn with_proof(
        state: &crate::AppState,
        notice: Notice,
        receipt: serde_json::Value,
    ) -> Self {
        let index = receipt
            .pointer("/payload/log/leaf_index")
            .and_then(serde_json::Value::as_u64);
        let log_proof = match index {
            Some(i) => crate::log_routes::leaf_proof_of(state, i)
                .await
                .inspect_err(|e| tracing::warn!(error = ?e, "no inclusion proof for a receipt"))
                .ok(),
            None => None,
        };
        SignedNotice {
            notice,
            receipt,
            log_proof,
        }
    }
}

/// Acknowledge receipt (the addressed platform). Returns the notice and a
/// receipt signed by tapis, which `tapis receipt verify` checks offline.
#[utoipa::path(post, path = "/api/v1/notices/{id}/acknowledge", params(("id" = String, Path)), request_body(content = AckRequest, description = "optional"),
    responses((status = 200, body = SignedNotice), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn acknowledge_notice(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: OptionalJson<AckRequest>,
) -> ApiResult<Json<SignedNotice>> {
    require(&p, Action::AcknowledgeNotice)?;
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    let req = body.0.unwrap_or_default();
    let (notice, receipt) = state
        .store
        .acknowledge(&p, id, req.signature.as_deref())
        .await?;
    Ok(Json(
        SignedNotice::with_proof(&state, notice, receipt).await,
    ))
}

/// Decide one item (the addressed platform). Decisions are final except
/// `disputed`; rejected, disputed, restricted, geo_blocked, out_of_scope and
/// not_accessible need a reason. Deciding implies acknowledgement.
#[utoipa::path(post, path = "/api/v1/notices/{id}/items/{item_id}/decision",
    params(("id" = String, Path), ("item_id" = String, Path)), request_body = DecisionInput,
    responses((status = 200, body = SignedNotice), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn decide_item(
    state: S,
    Auth(p): Auth,
    ApiPath((id, item_id)): ApiPath<(String, String)>,
    body: ApiJson<DecisionInput>,
) -> ApiResult<Json<SignedNotice>> {
    require(&p, Action::DecideItem)?;
    let id = parse_id("notice id", &id, NoticeId::parse)?;
    let item_id = parse_id("item id", &item_id, ItemId::parse)?;
    let decision = Decision::parse(body.value)?;
    let (notice, receipt) = state.store.decide_item(&p, id, item_id, decision).await?;
    Ok(Json(
        SignedNotice::with_proof(&state, notice, receipt).await,
    ))
}

/// The notice's audit events, oldest first.
#[utoipa::path(get, path = "/api/v1/notices/{id}/timeline", params(("id" = String, Path)), responses(
    (status = 200, body = Vec<AuditEvent>), (status = 404, body = ErrorBody)))]
async fn notice_timeline(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    let n = visible_notice(&state, &p, &id).await?;
    Ok(Json(
        state.store.events_for("notice", &n.id.to_string()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

/// The platform's open notices, most pressing first. Fetching is delivery.
#[utoipa::path(get, path = "/api/v1/inbox", params(InboxQuery), responses(
    (status = 200, body = Vec<Notice>), (status = 403, body = ErrorBody)))]
async fn inbox(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<Json<Vec<Notice>>> {
    require(&p, Action::ReadInbox)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    Ok(Json(state.store.inbox(&p, limit).await?))
}

#[derive(Serialize, ToSchema)]
struct VerifyResult {
    ok: bool,
    events: u64,
    head: String,
    /// The first broken link: its sequence number and what is wrong.
    first_break_seq: Option<i64>,
    reason: Option<String>,
}

/// Walk the audit chain and report the first broken link (admin, auditor).
#[utoipa::path(get, path = "/api/v1/audit/verify", responses(
    (status = 200, body = VerifyResult), (status = 403, body = ErrorBody)))]
async fn verify_audit(state: S, Auth(p): Auth) -> ApiResult<Json<VerifyResult>> {
    require(&p, Action::VerifyAudit)?;
    let r = state.store.verify_audit().await?;
    Ok(Json(VerifyResult {
        ok: r.ok(),
        events: r.events,
        head: r.head,
        first_break_seq: r.first_break.as_ref().map(|b| b.seq),
        reason: r.first_break.map(|b| b.reason),
    }))
}
