//! The public register, no token needed: approved orders and submitted
//! notices as the redaction policy lets the public see them (searched by
//! text, category, legal basis, state, dates and platform; paged by a
//! cursor), the policy itself with its hash, the daily dumps (a closed
//! UTC day's records as JSON lines, made on request, the same bytes every
//! time, with their SHA-256), and the platforms' decisions as DSA
//! statements of reasons. What to show is core's `register` and `dsa`;
//! the store reads; this module parses and bounds the requests.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tapis_core::register::{Day, RegisterNotice, RegisterOrder};
use tapis_core::{NoticeId, OrderId};
use tapis_store::register::{Kind, RawSearch, RegisterQuery, instant};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, canonical_id};

type S = axum::extract::State<AppState>;

/// Days one dump listing may span.
pub const MAX_DUMP_DAYS: i64 = 31;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(orders))
        .routes(routes!(order))
        .routes(routes!(notices))
        .routes(routes!(notice))
        .routes(routes!(policy))
        .routes(routes!(dumps))
        .routes(routes!(dump))
        .routes(routes!(dsa_sor))
}

/// A search of the register.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Free text, in what an entry shows (after redaction), up to 200 characters.
    pub q: Option<String>,
    /// A taxonomy category id, e.g. `gambling`.
    pub category: Option<String>,
    /// Part of the legal basis (reference or text), up to 200 characters.
    pub legal_basis: Option<String>,
    /// An order's state (`approved`, `scheduled`, `in_force`, `expired`,
    /// `lifted`) or a notice's.
    pub state: Option<String>,
    /// Decided at or after: `YYYY-MM-DD` (UTC) or RFC 3339.
    pub from: Option<String>,
    /// Decided before: `YYYY-MM-DD` (that day excluded) or RFC 3339.
    pub to: Option<String>,
    /// A platform's party id.
    pub platform: Option<String>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<u32>,
}

fn bounded(field: &str, v: &Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max => {
            Err(tapis_core::Error::invalid(field, format!("at most {max} characters")).into())
        }
        Some(s) => Ok(Some(s.to_owned())),
    }
}

fn parse_search(state: &AppState, p: SearchParams, kind: Kind) -> ApiResult<RegisterQuery> {
    let raw = RawSearch {
        q: p.q,
        category: p.category,
        legal_basis: p.legal_basis,
        state: p.state,
        from: p.from,
        to: p.to,
        platform: p.platform,
        cursor: p.cursor,
        limit: p.limit.map(|l| l.to_string()),
    };
    Ok(RegisterQuery::parse(&state.taxonomy, &raw, kind)?)
}

/// A page of the register.
#[derive(Serialize, ToSchema)]
struct Page {
    /// Register entries (orders or notices), newest decision first.
    #[schema(value_type = Vec<Object>)]
    entries: Value,
    /// Pass as `cursor` for the next page; absent at the end.
    next: Option<String>,
    /// The redaction policy the entries were drawn under.
    policy_sha256: String,
}

/// Approved orders, as the public register shows them: category, legal
/// basis, issuing authority, authoriser, dates and number of names always;
/// names withheld for the categories the policy names, personal data
/// redacted, each withholding counted.
#[utoipa::path(get, path = "/api/v1/register/orders", params(SearchParams), security(()),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn orders(state: S, ApiQuery(p): ApiQuery<SearchParams>) -> ApiResult<Json<Page>> {
    let q = parse_search(&state, p, Kind::Orders)?;
    let page = state.store.register_orders(&state.register, &q).await?;
    Ok(Json(Page {
        entries: to_json(&page.entries)?,
        next: page.next.map(|c| c.to_string()),
        policy_sha256: state.register.sha256().to_owned(),
    }))
}

fn to_json<T: Serialize>(v: &T) -> ApiResult<Value> {
    serde_json::to_value(v).map_err(|_| ApiError::internal())
}

/// One order of the register (404 unless it is listed).
#[utoipa::path(get, path = "/api/v1/register/orders/{id}", security(()),
    params(("id" = String, Path, description = "the order's id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn order(state: S, ApiPath(id): ApiPath<String>) -> ApiResult<Json<RegisterOrder>> {
    let id = canonical_id(&id, OrderId::parse, "order")?;
    Ok(Json(
        state
            .store
            .register_order(&state.register, &id.to_string())
            .await?,
    ))
}

/// Submitted notices, as the public register shows them (locators
/// withheld for the categories the policy names, personal data redacted).
#[utoipa::path(get, path = "/api/v1/register/notices", params(SearchParams), security(()),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn notices(state: S, ApiQuery(p): ApiQuery<SearchParams>) -> ApiResult<Json<Page>> {
    let q = parse_search(&state, p, Kind::Notices)?;
    let page = state.store.register_notices(&state.register, &q).await?;
    Ok(Json(Page {
        entries: to_json(&page.entries)?,
        next: page.next.map(|c| c.to_string()),
        policy_sha256: state.register.sha256().to_owned(),
    }))
}

/// One notice of the register (404 unless it is listed).
#[utoipa::path(get, path = "/api/v1/register/notices/{id}", security(()),
    params(("id" = String, Path, description = "the notice's id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn notice(state: S, ApiPath(id): ApiPath<String>) -> ApiResult<Json<RegisterNotice>> {
    let id = canonical_id(&id, NoticeId::parse, "notice")?;
    Ok(Json(
        state
            .store
            .register_notice(&state.register, &id.to_string())
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
struct PolicyView {
    /// SHA-256 of the policy's RFC 8785 form (logged as
    /// `register.policy_logged` whenever it changes).
    sha256: String,
    #[schema(value_type = Object)]
    policy: Value,
    /// The retention policy in force (README: "Retention"): per kind of
    /// personal record, how long it is kept, what is removed and what
    /// stays; with its SHA-256 (logged as `retention.policy_logged`).
    #[schema(value_type = Object)]
    retention: Value,
}

/// The redaction policy in force, and its hash; and the retention policy.
#[utoipa::path(get, path = "/api/v1/register/policy", security(()),
    responses((status = 200, body = PolicyView)))]
async fn policy(state: S) -> Json<PolicyView> {
    Json(PolicyView {
        sha256: state.register.sha256().to_owned(),
        policy: state.register.to_json(),
        retention: serde_json::json!({
            "sha256": state.retention.sha256(),
            "policy": state.retention.to_json(),
        }),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DayRange {
    /// First day (`YYYY-MM-DD`); default: seven days before `to`.
    from: Option<String>,
    /// Last day (`YYYY-MM-DD`, included); default and latest: yesterday (UTC).
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct DumpInfo {
    /// The UTC day, `YYYY-MM-DD`.
    day: String,
    /// Its path: `/api/v1/register/dumps/{day}.jsonl`.
    url: String,
    records: usize,
    /// SHA-256 (hex) of the file's bytes.
    sha256: String,
}

#[derive(Serialize, ToSchema)]
struct DumpList {
    dumps: Vec<DumpInfo>,
    policy_sha256: String,
}

/// The daily dumps of closed UTC days (at most 31 per request), each
/// with its record count and SHA-256. A day's dump holds the records
/// listed that day in the fields that never change once listed: the same
/// bytes every time under the same policy.
#[utoipa::path(get, path = "/api/v1/register/dumps", params(DayRange), security(()),
    responses((status = 200, body = DumpList), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dumps(state: S, ApiQuery(r): ApiQuery<DayRange>) -> ApiResult<Json<DumpList>> {
    let yesterday = Day::of(state.store.now().plus_millis(-tapis_core::register::DAY_MS));
    let to = match bounded("to", &r.to, 10)? {
        None => yesterday,
        Some(s) => Day::parse("to", &s)?.min(yesterday),
    };
    let from = match bounded("from", &r.from, 10)? {
        None => Day::of(to.start().plus_millis(-6 * tapis_core::register::DAY_MS)),
        Some(s) => Day::parse("from", &s)?,
    };
    if from > to {
        return Ok(Json(DumpList {
            dumps: Vec::new(),
            policy_sha256: state.register.sha256().to_owned(),
        }));
    }
    let span =
        (to.start().unix_millis() - from.start().unix_millis()) / tapis_core::register::DAY_MS;
    if span >= MAX_DUMP_DAYS {
        return Err(tapis_core::Error::invalid(
            "from",
            format!("at most {MAX_DUMP_DAYS} days per request"),
        )
        .into());
    }
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        if let Some(dump) = state.store.register_dump(&state.register, d).await? {
            out.push(DumpInfo {
                day: d.to_string(),
                url: format!("/api/v1/register/dumps/{d}.jsonl"),
                records: dump.records,
                sha256: dump.sha256,
            });
        }
        d = d.next();
    }
    Ok(Json(DumpList {
        dumps: out,
        policy_sha256: state.register.sha256().to_owned(),
    }))
}

/// One closed day's dump, `{day}.jsonl`: one RFC 8785 JSON object per
/// line (`application/jsonl`), its SHA-256 in `ETag` and `Digest`-like
/// `X-Content-SHA256`. A day not yet over is a 404.
#[utoipa::path(get, path = "/api/v1/register/dumps/{file}", security(()),
    params(("file" = String, Path, description = "`YYYY-MM-DD.jsonl`")),
    responses((status = 200, content_type = "application/jsonl", body = String), (status = 404, body = ErrorBody)))]
async fn dump(state: S, ApiPath(file): ApiPath<String>) -> ApiResult<Response> {
    let day = file
        .strip_suffix(".jsonl")
        .and_then(|d| Day::parse("file", d).ok())
        .ok_or_else(|| ApiError::not_found("dump"))?;
    let dump = state
        .store
        .register_dump(&state.register, day)
        .await?
        .ok_or_else(|| ApiError::not_found("dump"))?;
    let etag =
        HeaderValue::from_str(&format!("\"{}\"", dump.sha256)).map_err(|_| ApiError::internal())?;
    let sha = HeaderValue::from_str(&dump.sha256).map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jsonl"),
            ),
            (header::ETAG, etag),
            (header::HeaderName::from_static("x-content-sha256"), sha),
        ],
        dump.body,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DsaRange {
    /// Decisions at or after: `YYYY-MM-DD` or RFC 3339.
    from: String,
    /// … and before (at most 31 days after `from`).
    to: String,
}

#[derive(Serialize, ToSchema)]
struct DsaView {
    from: String,
    to: String,
    /// Statements of reasons with the DSA Transparency Database's field
    /// names and enumerations.
    #[schema(value_type = Vec<Object>)]
    statements: Value,
    /// Decisions not exported, by reason (`no_restriction`,
    /// `outside_eea`, `unmapped_category`, `not_yet_listed`).
    #[schema(value_type = Object)]
    skipped: Value,
    /// More than 10,000 decisions in the range: ask for a shorter one.
    truncated: bool,
    policy_sha256: String,
}

/// Platforms' decisions on listed notices as DSA statements of reasons
/// (field names and enumerations of the EU DSA Transparency Database;
/// the mapping is core's `dsa`, documented in the README).
#[utoipa::path(get, path = "/api/v1/register/dsa-sor", params(DsaRange), security(()),
    responses((status = 200, body = DsaView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dsa_sor(state: S, ApiQuery(r): ApiQuery<DsaRange>) -> ApiResult<Json<DsaView>> {
    let from_s = bounded("from", &Some(r.from), 64)?
        .ok_or_else(|| tapis_core::Error::invalid("from", "required"))?;
    let to_s = bounded("to", &Some(r.to), 64)?
        .ok_or_else(|| tapis_core::Error::invalid("to", "required"))?;
    let from = instant("from", &from_s)?;
    let to = instant("to", &to_s)?;
    let export = state.store.register_dsa(&state.register, from, to).await?;
    Ok(Json(DsaView {
        from: from.to_string(),
        to: to.to_string(),
        statements: to_json(&export.statements)?,
        skipped: to_json(&export.skipped)?,
        truncated: export.truncated,
        policy_sha256: state.register.sha256().to_owned(),
    }))
}
