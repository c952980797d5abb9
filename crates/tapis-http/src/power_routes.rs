//! Routes that keep the separation of powers: invitations (the authority
//! invites a party's first members; the party redeems the code itself, so
//! the authority never holds its credential) and the public list of
//! authorisers' enrolled keys with their fingerprints (keys are enrolled
//! on the host, never through this API); a party's list of tokens and
//! their revocation (a party sees every credential that acts for it).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::{PartyId, TokenId};
use tapis_store::{AuthoriserKey, InvitationInfo, TokenInfo, TokenRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, parse_id};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invitation))
        .routes(routes!(accept_invitation))
        .routes(routes!(authorisers))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
}

/// A party's tokens, oldest first: who holds each, its role, when it was
/// created, first used, when it expires and whether it was revoked. Never
/// a secret. A party's own members see its list — so a platform sees any
/// credential acting for it, one redeemed by someone else included — and
/// the authority's admin sees every party's.
#[utoipa::path(get, path = "/api/v1/parties/{id}/tokens", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TokenRecord>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_tokens(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<TokenRecord>>> {
    let id = parse_id("party id", &id, PartyId::parse)?;
    Ok(Json(state.store.list_tokens_by(&p, id).await?))
}

/// Revoke a token: it authenticates nothing from now on (audited as
/// `token.revoked`). Any token may revoke itself; a party's own members
/// revoke its tokens; the authority's admin may revoke any token (to stop
/// a stolen credential — it grants nothing). Revoking twice is a 409.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", params(("id" = String, Path)),
    responses((status = 200, body = TokenInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_token(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TokenInfo>> {
    let id = parse_id("token id", &id, TokenId::parse)?;
    Ok(Json(state.store.revoke_token_by(&p, id).await?))
}

/// Secrets in a response are never cached.
fn no_store(status: StatusCode, body: impl Serialize) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InvitationRequest {
    /// The role the party's member will hold; it must fit the party's kind.
    role: String,
}

#[derive(Serialize, ToSchema)]
struct InvitationCreated {
    #[serde(flatten)]
    info: InvitationInfo,
    /// The one-time code, shown this once and stored only as a hash. Hand
    /// it to the party; it redeems it with
    /// `POST /api/v1/invitations/{code}/accept` before `expires_at`.
    code: String,
}

/// Invite a party's member: a one-time code, valid seven days, that the
/// party redeems itself for a token of its own. The admin invites the
/// authority's people and a party's first member (409 once the party has
/// one); after that the party's own members invite, for their own role.
#[utoipa::path(post, path = "/api/v1/parties/{id}/invitations", params(("id" = String, Path)), request_body = InvitationRequest,
    responses((status = 201, body = InvitationCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invitation(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<InvitationRequest>,
) -> ApiResult<Response> {
    let id = parse_id("party id", &id, PartyId::parse)?;
    if !p.role.reads_everything() && p.party_id != id {
        return Err(ApiError::not_found("party"));
    }
    let role = Role::parse(&body.value.role)?;
    let (info, code) = state.store.create_invitation(&p, id, role).await?;
    Ok(no_store(
        StatusCode::CREATED,
        InvitationCreated { info, code },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptRequest {
    /// The invited role, if the caller wants it checked.
    #[serde(default)]
    role: Option<String>,
    /// What the token is for, e.g. "trust & safety desk".
    label: String,
    /// The person who will hold the token; absent for a machine
    /// credential.
    #[serde(default)]
    person: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Accepted {
    #[serde(flatten)]
    info: TokenInfo,
    /// The token's secret, shown this once and stored only as a hash.
    token: String,
}

/// Redeem an invitation code for a token of the invited party (no token
/// needed; limited like every anonymous request). A code works once.
#[utoipa::path(post, path = "/api/v1/invitations/{code}/accept", params(("code" = String, Path)), request_body = AcceptRequest, security(()),
    responses((status = 201, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn accept_invitation(
    state: S,
    ApiPath(code): ApiPath<String>,
    body: ApiJson<AcceptRequest>,
) -> ApiResult<Response> {
    let b = body.value;
    let role = b.role.as_deref().map(Role::parse).transpose()?;
    let person = b.person.as_deref().map(Person::parse).transpose()?;
    if code.len() > 200 {
        return Err(ApiError::not_found("invitation"));
    }
    let (info, token) = state
        .store
        .accept_invitation(&code, role, &b.label, person.as_ref())
        .await?;
    Ok(no_store(StatusCode::CREATED, Accepted { info, token }))
}

/// Every authoriser's enrolled signing keys, current and retired, with
/// their fingerprints (SHA-256 of the raw key, hex). Public: compare them
/// with what each authoriser publishes. Keys are enrolled on the tapis
/// host (`tapis authoriser enrol`), never through this API.
#[utoipa::path(get, path = "/api/v1/authorisers", security(()), responses((status = 200, body = Vec<AuthoriserKey>)))]
async fn authorisers(state: S) -> ApiResult<Json<Vec<AuthoriserKey>>> {
    Ok(Json(state.store.authoriser_keys().await?))
}
