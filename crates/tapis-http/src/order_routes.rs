//! Routes of blocking orders: proposal, four-eyes approval, lifting,
//! review, blast radius, the public lookup, escalation → draft order, and
//! the blocklist exports (zone file, domain list, hosts file) with ETags.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tapis_core::EscalationId;
use tapis_core::escalation::{DraftRequest, Escalated, NoDnsTarget, draft_order};
use tapis_core::order::{NewOrder, OrderInput, OrderLimits, OrderState};
use tapis_core::role::Action;
use tapis_core::target::DomainName;
use tapis_store::{BlastRadius, Lookup, Order};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(approve_order))
        .routes(routes!(lift_order))
        .routes(routes!(review_order))
        .routes(routes!(blast_radius))
        .routes(routes!(due_process))
        .routes(routes!(authorise_order))
        .routes(routes!(respond_to_order))
        .routes(routes!(lookup))
        .routes(routes!(draft_from_escalation))
        .routes(routes!(blocklist_rpz))
        .routes(routes!(blocklist_domains))
        .routes(routes!(blocklist_hosts))
        .routes(routes!(put_resolvers, get_resolvers))
        .routes(routes!(rotate_tsig_key))
        .routes(routes!(retire_previous_tsig_key))
        .routes(routes!(ack_serial))
        .routes(routes!(compliance))
}

fn require(p: &tapis_store::Principal, action: Action) -> ApiResult<()> {
    Ok(p.role.require(action)?)
}

/// A platform reads only the orders that would affect it (it was told of
/// them); others with [`Action::ReadOrders`] read all. 404, not 403, so a
/// platform learns nothing of other orders.
async fn read_scope(state: &AppState, p: &tapis_store::Principal, id: &str) -> ApiResult<()> {
    require(p, Action::ReadOrders)?;
    if p.party_kind == tapis_core::party::PartyKind::Platform
        && !state.store.order_affects(id, p.party_id).await?
    {
        return Err(ApiError::not_found("order"));
    }
    Ok(())
}

fn order_id(raw: &str) -> ApiResult<String> {
    if raw.len() == 36 && raw.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "order id is not valid (a UUID)",
        ))
    }
}

/// Propose a blocking order (officer). It is a draft until an approver
/// who is not the proposer approves it; check its blast radius first.
#[utoipa::path(post, path = "/api/v1/orders", request_body = OrderInput,
    responses((status = 201, body = Order), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_order(
    state: S,
    Auth(p): Auth,
    body: ApiJson<OrderInput>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    require(&p, Action::ProposeOrder)?;
    let new = NewOrder::parse(
        body.value,
        &state.taxonomy,
        OrderLimits::default(),
        state.store.now(),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_order(&p, new).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
    /// draft, approved, scheduled, in_force, expired or lifted
    state: Option<String>,
    /// 1 to 500 (default 50)
    limit: Option<u32>,
}

/// List orders, newest first (authority staff, ISPs).
#[utoipa::path(get, path = "/api/v1/orders", params(OrderQuery), responses((status = 200, body = Vec<Order>), (status = 403, body = ErrorBody)))]
async fn list_orders(
    state: S,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<Json<Vec<Order>>> {
    require(&p, Action::ReadOrders)?;
    let s = q.state.as_deref().map(OrderState::parse).transpose()?;
    if p.party_kind == tapis_core::party::PartyKind::Platform {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a platform reads the orders that affect it one by one (GET /api/v1/orders/{id}, from the order.proposed event)",
        ));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    Ok(Json(state.store.list_orders(s, limit).await?))
}

/// One order (its first 1,000 targets; `target_count` has the total).
#[utoipa::path(get, path = "/api/v1/orders/{id}", params(("id" = String, Path)), responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
async fn get_order(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    read_scope(&state, &p, &id).await?;
    Ok(Json(state.store.get_order(&id).await?))
}

/// An order's due process: why it needs an independent authorisation, the
/// statement an authoriser signs, the platforms told and their responses,
/// authorisations, and how it reached the zone.
#[utoipa::path(get, path = "/api/v1/orders/{id}/due-process", params(("id" = String, Path)), responses((status = 200, body = tapis_store::DueProcess), (status = 404, body = ErrorBody)))]
async fn due_process(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<tapis_store::DueProcess>> {
    let id = order_id(&id)?;
    read_scope(&state, &p, &id).await?;
    Ok(Json(state.store.due_process(&id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AuthorisationBody {
    /// `authorise` or `refuse`
    decision: String,
    /// The authoriser's reasons, for the record.
    reasons: String,
    /// Base64 Ed25519 signature, with the key the authoriser party
    /// registered, over the RFC 8785 form of the statement shown by
    /// `GET /orders/{id}/due-process` (`statement_to_sign`, with this
    /// decision).
    signature: String,
}

#[derive(serde::Serialize, ToSchema)]
struct AuthorisationResponse {
    order: Order,
    /// tapis's signed receipt of the authoriser's signed statement.
    #[schema(value_type = Object)]
    receipt: serde_json::Value,
}

/// Authorise (or refuse) an order (authoriser). Orders that touch a
/// platform's names, a public suffix or a popular site reach the zone only
/// with a valid authorisation; an authorised order whose time has come
/// goes in force at once; a refused emergency order leaves the zone.
#[utoipa::path(post, path = "/api/v1/orders/{id}/authorisation", params(("id" = String, Path)), request_body = AuthorisationBody,
    responses((status = 200, body = AuthorisationResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn authorise_order(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<AuthorisationBody>,
) -> ApiResult<Json<AuthorisationResponse>> {
    require(&p, Action::AuthoriseOrder)?;
    let id = order_id(&id)?;
    let b = body.value;
    let (order, receipt) = state
        .store
        .authorise_order(&p, &id, &b.decision, &b.reasons, &b.signature)
        .await?;
    Ok(Json(AuthorisationResponse { order, receipt }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResponseBody {
    /// `comply` (the platform acts on the underlying notices), `dispute`
    /// or `clarification` (a question)
    kind: String,
    text: String,
}

/// A platform's answer to an order that would affect it (platform agent).
/// It is put before the authoriser and the approver.
#[utoipa::path(post, path = "/api/v1/orders/{id}/responses", params(("id" = String, Path)), request_body = ResponseBody,
    responses((status = 201, body = tapis_store::ResponseView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn respond_to_order(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<ResponseBody>,
) -> ApiResult<(StatusCode, Json<tapis_store::ResponseView>)> {
    require(&p, Action::RespondToOrder)?;
    let id = order_id(&id)?;
    let b = body.value;
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .store
                .respond_to_order(&p, &id, &b.kind, &b.text)
                .await?,
        ),
    ))
}

/// Approve (approver; never the proposer). In force at once if its time
/// has come, else scheduled for its effective time.
#[utoipa::path(post, path = "/api/v1/orders/{id}/approve", params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_order(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Order>> {
    require(&p, Action::ApproveOrder)?;
    Ok(Json(state.store.approve_order(&p, &order_id(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    /// Why; it goes on the record.
    reason: String,
}

/// Lift an order before its expiry (officer, approver), with a reason.
#[utoipa::path(post, path = "/api/v1/orders/{id}/lift", params(("id" = String, Path)), request_body = ReasonBody,
    responses((status = 200, body = Order), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lift_order(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<ReasonBody>,
) -> ApiResult<Json<Order>> {
    require(&p, Action::LiftOrder)?;
    Ok(Json(
        state
            .store
            .lift_order(&p, &order_id(&id)?, &body.value.reason)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: String,
}

/// Record the order's review (approver); without one it lapses at its
/// review date.
#[utoipa::path(post, path = "/api/v1/orders/{id}/review", params(("id" = String, Path)), request_body = NoteBody,
    responses((status = 200, body = Order), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn review_order(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<NoteBody>,
) -> ApiResult<Json<Order>> {
    require(&p, Action::ReviewOrder)?;
    Ok(Json(
        state
            .store
            .review_order(&p, &order_id(&id)?, &body.value.note)
            .await?,
    ))
}

/// What the order would touch: exact and wildcard coverage per target,
/// overlaps with other orders and exceptions, and registered platforms'
/// domains (a whole-service block must never be an accident).
#[utoipa::path(get, path = "/api/v1/orders/{id}/blast-radius", params(("id" = String, Path)),
    responses((status = 200, body = BlastRadius), (status = 404, body = ErrorBody)))]
async fn blast_radius(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BlastRadius>> {
    let id = order_id(&id)?;
    read_scope(&state, &p, &id).await?;
    Ok(Json(state.store.blast_radius(&id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LookupQuery {
    /// The domain name to check.
    name: String,
}

/// Is this name blocked, by which order, since when, why. Public: anyone
/// can check any name.
#[utoipa::path(get, path = "/api/v1/lookup", security(()), params(LookupQuery),
    responses((status = 200, body = Lookup), (status = 422, body = ErrorBody)))]
async fn lookup(state: S, ApiQuery(q): ApiQuery<LookupQuery>) -> ApiResult<Json<Lookup>> {
    let name = DomainName::parse(&q.name).map_err(|e| e.within("name"))?;
    Ok(Json(state.store.lookup(&name).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DraftFromEscalation {
    /// nxdomain, nodata, walled_garden or drop (default walled_garden)
    action: Option<String>,
    effective_at: String,
    expires_at: String,
    review_at: String,
}

/// Turn an escalation into a draft order (officer). Only items that name a
/// domain or URL become targets; channels, accounts and hashes cannot be
/// removed by DNS, and a block of the platform itself is never derived
/// from them.
#[utoipa::path(post, path = "/api/v1/escalations/{id}/draft-order", params(("id" = String, Path)), request_body = DraftFromEscalation,
    responses((status = 201, body = Order), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn draft_from_escalation(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<DraftFromEscalation>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    require(&p, Action::ProposeOrder)?;
    let id = order_id(&id)?;
    let id = crate::extract::canonical_id(&id, EscalationId::parse, "escalation")?;
    let esc = state.store.get_escalation(id).await?;
    let notice = state.store.get_notice(esc.notice_id).await?;
    let b = body.value;
    let escalation_id = esc.id.to_string();
    let escalated = Escalated {
        escalation_id: &escalation_id,
        reason: esc.reason,
        pending: &esc.items,
        notice_id: notice.id,
        category: &notice.category,
        legal_basis: (&notice.legal_basis.reference, &notice.legal_basis.text),
        items: notice
            .items
            .iter()
            .map(|i| (i.id, i.kind, i.normalized.as_str()))
            .collect(),
    };
    let request = DraftRequest {
        action: b.action,
        effective_at: b.effective_at,
        expires_at: b.expires_at,
        review_at: b.review_at,
    };
    let input = draft_order(&escalated, request).map_err(|_| ApiError {
        field: Some("items".into()),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_dns_target",
            NoDnsTarget::MESSAGE,
        )
    })?;
    let new = NewOrder::parse(
        input,
        &state.taxonomy,
        OrderLimits::default(),
        state.store.now(),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_order(&p, new).await?),
    ))
}

/// Serve an export with an ETag of the zone serial: a poll whose
/// If-None-Match matches costs a 304 and nothing else.
async fn export(
    state: &AppState,
    p: &tapis_store::Principal,
    headers: &HeaderMap,
    kind: &str,
) -> ApiResult<Response> {
    require(p, Action::ReadBlocklist)?;
    let serial = state.store.rpz_serial().await?;
    let etag = format!("\"{kind}-{serial}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    let (serial, records) = state.store.rpz_records().await?;
    let iter = records.iter().map(|r| (r.owner.as_str(), r.action));
    let (body, content_type) = match kind {
        "rpz" => {
            let mut cache = tapis_dns::ExplanationCache::new(&state.zone.explanations);
            let why: Vec<Option<std::sync::Arc<str>>> = records
                .iter()
                .map(|r| cache.get(r.action, r.order_id.as_deref(), r.category.as_deref()))
                .collect();
            let records = records
                .iter()
                .zip(&why)
                .map(|(r, w)| (r.owner.as_str(), r.action, w.as_deref()));
            (
                tapis_dns::render_rpz(&state.zone, serial, records),
                "text/dns; charset=utf-8",
            )
        }
        "domains" => (tapis_dns::render_domains(iter), "text/plain; charset=utf-8"),
        _ => (
            tapis_dns::render_hosts(serial, iter),
            "text/plain; charset=utf-8",
        ),
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response())
}

/// The Response Policy Zone as a zone file (ISPs, authority staff).
#[utoipa::path(get, path = "/api/v1/blocklist.rpz", responses((status = 200, content_type = "text/dns", body = String), (status = 304, description = "unchanged since the ETag")))]
async fn blocklist_rpz(state: S, Auth(p): Auth, headers: HeaderMap) -> ApiResult<Response> {
    export(&state, &p, &headers, "rpz").await
}

/// Blocked domains, one a line (the format ISPs already consume).
#[utoipa::path(get, path = "/api/v1/blocklist/domains.txt", responses((status = 200, content_type = "text/plain", body = String), (status = 304, description = "unchanged since the ETag")))]
async fn blocklist_domains(state: S, Auth(p): Auth, headers: HeaderMap) -> ApiResult<Response> {
    export(&state, &p, &headers, "domains").await
}

/// Blocked exact names as a hosts file.
#[utoipa::path(get, path = "/api/v1/blocklist/hosts", responses((status = 200, content_type = "text/plain", body = String), (status = 304, description = "unchanged since the ETag")))]
async fn blocklist_hosts(state: S, Auth(p): Auth, headers: HeaderMap) -> ApiResult<Response> {
    export(&state, &p, &headers, "hosts").await
}

#[derive(serde::Serialize, ToSchema)]
struct ResolversResponse {
    #[serde(flatten)]
    resolvers: tapis_store::IspResolvers,
    /// The TSIG secret (base64) for zone transfers and NOTIFY: present only
    /// when the key was just created, never shown again.
    tsig_secret: Option<String>,
}

/// Register an ISP's resolvers (probed for compliance), NOTIFY targets and
/// TSIG-less transfer addresses (admin, or the ISP itself). The first call
/// creates the ISP's TSIG key and returns its secret once. Transfer
/// addresses are single hosts, a few per ISP; no address may be loopback,
/// private or special-purpose unless the server allows private targets;
/// a refusal names the entry (`notify[1]`).
#[utoipa::path(put, path = "/api/v1/parties/{id}/resolvers", params(("id" = String, Path)), request_body = tapis_core::isp::ResolversInput,
    responses((status = 200, body = ResolversResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_resolvers(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<tapis_core::isp::ResolversInput>,
) -> ApiResult<Json<ResolversResponse>> {
    require(&p, Action::ManageResolvers)?;
    let party = crate::extract::parse_id("party id", &id, tapis_core::PartyId::parse)?;
    if p.party_kind == tapis_core::party::PartyKind::Isp && p.party_id != party {
        return Err(ApiError::not_found("party"));
    }
    let rules = tapis_core::isp::IspRules {
        allow_private: state.allow_private_targets,
        ..state.store.isp_rules()
    };
    let r = tapis_core::isp::Resolvers::parse(body.value, &rules)?;
    let (resolvers, tsig_secret) = state.store.set_isp_resolvers(&p.actor(), party, r).await?;
    Ok(Json(ResolversResponse {
        resolvers,
        tsig_secret,
    }))
}

/// An ISP's resolver settings (never the secret).
#[utoipa::path(get, path = "/api/v1/parties/{id}/resolvers", params(("id" = String, Path)),
    responses((status = 200, body = tapis_store::IspResolvers), (status = 404, body = ErrorBody)))]
async fn get_resolvers(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<tapis_store::IspResolvers>> {
    let party = crate::extract::parse_id("party id", &id, tapis_core::PartyId::parse)?;
    if !p.role.reads_everything() && p.party_id != party {
        return Err(ApiError::not_found("party"));
    }
    Ok(Json(
        state
            .store
            .get_isp_resolvers(party)
            .await?
            .ok_or_else(|| ApiError::not_found("resolvers"))?,
    ))
}

#[derive(serde::Serialize, ToSchema)]
struct RotatedKey {
    #[serde(flatten)]
    resolvers: tapis_store::IspResolvers,
    /// The new key's secret (base64, HMAC-SHA256), shown this once.
    tsig_secret: String,
}

/// The ISP makes itself a new TSIG key: a new key name and secret (the
/// secret returned once, `Cache-Control: no-store`). The key it replaces
/// keeps verifying transfers until `previous_valid_until`
/// (`rpz.tsig_grace_hours`, a week by default), so secondaries move one by
/// one; NOTIFY is signed with the new key at once. Only the ISP's own
/// people and tokens: anyone else is refused (403), another ISP finds no
/// such party (404). Before any resolvers are registered there is no key
/// to rotate (422).
#[utoipa::path(post, path = "/api/v1/parties/{id}/tsig-key/rotate", params(("id" = String, Path)),
    responses((status = 200, body = RotatedKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rotate_tsig_key(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let party = crate::extract::parse_id("party id", &id, tapis_core::PartyId::parse)?;
    let (resolvers, tsig_secret) = state.store.rotate_tsig_key(&p, party).await?;
    let mut resp = Json(RotatedKey {
        resolvers,
        tsig_secret,
    })
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The ISP ends its previous TSIG key now, before its grace runs out. 422
/// when no previous key still verifies; who may, as for rotation.
#[utoipa::path(delete, path = "/api/v1/parties/{id}/tsig-key/previous", params(("id" = String, Path)),
    responses((status = 200, body = tapis_store::IspResolvers), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn retire_previous_tsig_key(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<tapis_store::IspResolvers>> {
    let party = crate::extract::parse_id("party id", &id, tapis_core::PartyId::parse)?;
    Ok(Json(state.store.retire_previous_tsig_key(&p, party).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SerialAck {
    /// The zone serial the ISP's resolvers enforce.
    serial: i64,
}

/// An ISP acknowledges that its resolvers enforce the zone as of a serial.
#[utoipa::path(post, path = "/api/v1/rpz/acknowledge", request_body = SerialAck,
    responses((status = 200, body = tapis_store::Compliance), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ack_serial(
    state: S,
    Auth(p): Auth,
    body: ApiJson<SerialAck>,
) -> ApiResult<Json<tapis_store::Compliance>> {
    require(&p, Action::AcknowledgeSerial)?;
    Ok(Json(state.store.ack_serial(&p, body.value.serial).await?))
}

/// Each ISP against the current zone serial. Authority staff see all; an
/// ISP sees itself.
#[utoipa::path(get, path = "/api/v1/compliance", responses((status = 200, body = Vec<tapis_store::Compliance>), (status = 403, body = ErrorBody)))]
async fn compliance(state: S, Auth(p): Auth) -> ApiResult<Json<Vec<tapis_store::Compliance>>> {
    require(&p, Action::ReadCompliance)?;
    let mut all = state.store.compliance().await?;
    if !p.role.reads_everything() {
        all.retain(|c| c.party_id == p.party_id.to_string());
    }
    Ok(Json(all))
}
