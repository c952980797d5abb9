//! A platform's legal representative and its technical and administrative
//! contacts: the platform's own agents set them and confirm the code
//! emailed to each; authority staff read them and list the platforms
//! without a verified representative. The authority cannot set them
//! (403); another platform gets a 404. Core parses and decides; the store
//! applies (`tapis-store/src/representatives.rs`).

use axum::Json;
use serde::Deserialize;
use tapis_core::PartyId;
use tapis_core::representative::{Contact, ContactInput, ContactRole};
use tapis_store::{PlatformContact, UnrepresentedPlatform};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, parse_id};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts))
        .routes(routes!(set_contact))
        .routes(routes!(send_code))
        .routes(routes!(verify_code))
        .routes(routes!(unrepresented))
}

fn path(platform: &str, role: &str) -> ApiResult<(PartyId, ContactRole)> {
    Ok((
        parse_id("platform id", platform, PartyId::parse)?,
        ContactRole::parse(role)?,
    ))
}

/// A platform's representative and contacts (personal data: the platform
/// itself and authority staff only; anyone else gets a 404).
#[utoipa::path(get, path = "/api/v1/platforms/{id}/contacts", params(("id" = String, Path)),
    responses((status = 200, body = Vec<PlatformContact>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_contacts(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<PlatformContact>>> {
    let id = parse_id("platform id", &id, PartyId::parse)?;
    Ok(Json(state.store.platform_contacts(&p, id).await?))
}

/// Set the platform's `legal` representative (a person or office with a
/// postal address, email, phone, contact hours and time zone), or its
/// `technical` or `administrative` contact. The platform's own agents
/// only: the authority may not (403). A new email, phone or address
/// un-verifies the contact.
#[utoipa::path(put, path = "/api/v1/platforms/{id}/contacts/{role}",
    params(("id" = String, Path), ("role" = String, Path, description = "legal, technical or administrative")),
    request_body = ContactInput,
    responses((status = 200, body = PlatformContact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_contact(
    state: S,
    Auth(p): Auth,
    ApiPath((id, role)): ApiPath<(String, String)>,
    body: ApiJson<ContactInput>,
) -> ApiResult<Json<PlatformContact>> {
    let (id, role) = path(&id, &role)?;
    let contact = Contact::parse(role, body.value)?;
    Ok(Json(
        state
            .store
            .set_platform_contact(&p, id, role, contact)
            .await?,
    ))
}

/// Email a one-time code to the contact's address (good for 24 hours,
/// five tries; one a minute at most).
#[utoipa::path(post, path = "/api/v1/platforms/{id}/contacts/{role}/code",
    params(("id" = String, Path), ("role" = String, Path)),
    responses((status = 200, body = PlatformContact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_code(
    state: S,
    Auth(p): Auth,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> ApiResult<Json<PlatformContact>> {
    let (id, role) = path(&id, &role)?;
    Ok(Json(state.store.send_contact_code(&p, id, role).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    /// The digits in the email.
    code: String,
}

/// Confirm the code emailed to the contact: it is then verified. A wrong
/// code is a 422 naming the tries left; an expired or spent one a 409.
#[utoipa::path(post, path = "/api/v1/platforms/{id}/contacts/{role}/verify",
    params(("id" = String, Path), ("role" = String, Path)), request_body = CodeBody,
    responses((status = 200, body = PlatformContact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn verify_code(
    state: S,
    Auth(p): Auth,
    ApiPath((id, role)): ApiPath<(String, String)>,
    body: ApiJson<CodeBody>,
) -> ApiResult<Json<PlatformContact>> {
    let (id, role) = path(&id, &role)?;
    Ok(Json(
        state
            .store
            .verify_platform_contact(&p, id, role, &body.value.code)
            .await?,
    ))
}

/// Platforms without a verified legal representative (authority staff).
#[utoipa::path(get, path = "/api/v1/representatives/missing",
    responses((status = 200, body = Vec<UnrepresentedPlatform>), (status = 403, body = ErrorBody)))]
async fn unrepresented(state: S, Auth(p): Auth) -> ApiResult<Json<Vec<UnrepresentedPlatform>>> {
    Ok(Json(state.store.unrepresented_platforms(&p).await?))
}
