//! The zone's digests, public: the ZONEMD (RFC 8976, SIMPLE, SHA-384) of
//! every RPZ serial the primary served or announced, each with the
//! `rpz.digest` audit event that logged it and that event's leaf in the
//! transparency log. No token: a digest says nothing about the names in
//! the zone (it covers the whole zone with its SOA), every ISP receives
//! the same ZONEMD in its transfers anyway, and DESIGN wants each serial's
//! digest checkable by whoever enforces it — an ISP compares the ZONEMD
//! its secondary verified with the one logged here, and proves the log
//! holds it with the leaf and an inclusion proof (`/api/v1/log/…`).

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiQuery;

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(digests))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DigestsQuery {
    /// Digests of serials after this one (default 0: from the first).
    since_serial: Option<u32>,
    /// At most this many, 1 to 1,000 (default 100).
    limit: Option<u16>,
}

#[derive(Serialize, ToSchema)]
struct Digests {
    /// Oldest first. A serial appears once per zone-settings fingerprint
    /// it was served under (normally once).
    digests: Vec<tapis_store::ZoneDigestRow>,
    /// Pass as `since_serial` for the next page (absent on the last).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_since_serial: Option<i64>,
}

/// The ZONEMD digests of the RPZ's serials after `since_serial`, each with
/// its audit event and transparency-log leaf (public).
#[utoipa::path(get, path = "/api/v1/zone/digests", params(DigestsQuery), security(()),
    responses((status = 200, body = Digests), (status = 400, body = ErrorBody)))]
async fn digests(state: S, ApiQuery(q): ApiQuery<DigestsQuery>) -> ApiResult<Json<Digests>> {
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    let mut digests = state
        .store
        .rpz_digests_since(i64::from(q.since_serial.unwrap_or(0)), limit)
        .await?;
    let full = digests.len() as i64 == limit;
    // a full page ends on a whole serial (its rows under other settings
    // may not all have fitted): the next page starts after it
    if full
        && let Some(last) = digests.last().map(|d| d.serial)
        && digests.iter().any(|d| d.serial != last)
    {
        digests.retain(|d| d.serial != last);
    }
    let next_since_serial = full.then(|| digests.last().map(|d| d.serial)).flatten();
    Ok(Json(Digests {
        digests,
        next_since_serial,
    }))
}
