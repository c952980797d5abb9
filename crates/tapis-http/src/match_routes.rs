//! The filtering management service over HTTP: signal banks (create,
//! change, read), signals (add, tombstone), the matching API (a batch of
//! up to 1,000 URLs, domains, hashes or images to hash), the signed sync
//! feed and export, match feedback and precision. Signals and queries are
//! parsed with `tapis-match`; who may do what is core's
//! (`tapis_core::bank`); the store applies.
//!
//! The matching API reads its own body with its own limit
//! ([`MATCH_MAX_BODY`], for images) instead of the global one, as JSON or
//! `multipart/form-data` (`match_body.rs`); each image is bounded too
//! ([`MAX_IMAGE_BYTES`], and its pixels by [`IMAGE_LIMITS`] before
//! decoding). The export is read in signed pages at a fixed checkpoint.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tapis_core::bank::{BankInput, LOW_QUALITY, Verdict, label};
use tapis_match::pdq::{ImageLimits, hash_image};
use tapis_match::{Signal, SignalKind};
use tapis_store::banks::{
    BankView, FeedbackAnswer, MatchHit, NewSignal, Precision, SignalLabels, SignalView, SourceRef,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::match_body::{self as body, Parsed};

type S = axum::extract::State<AppState>;

/// Most queries in one match request.
pub const MAX_QUERIES: usize = 1000;
/// Most images in one match request (each is decoded and hashed).
pub const MAX_IMAGES: usize = 16;
/// Largest image, decoded from base64.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest match request body.
pub const MATCH_MAX_BODY: usize = 16 * 1024 * 1024;
/// How long the match request body may take to arrive (16 MiB in a
/// minute is about 2.2 Mbit/s): a client dripping it is cut off with a 408.
pub const MATCH_BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
/// Most signals added in one request.
pub const MAX_SIGNALS: usize = 1000;
/// Pixels an uploaded image may declare (checked from its header).
pub const IMAGE_LIMITS: ImageLimits = ImageLimits {
    max_side: 10_000,
    max_pixels: 25_000_000,
};

pub fn router() -> OpenApiRouter<AppState> {
    let matching = OpenApiRouter::new()
        .routes(routes!(match_batch))
        .layer(DefaultBodyLimit::max(MATCH_MAX_BODY));
    OpenApiRouter::new()
        .routes(routes!(create_bank, list_banks))
        .routes(routes!(get_bank, update_bank))
        .routes(routes!(add_signals, bank_feed))
        .routes(routes!(remove_signal))
        .routes(routes!(bank_export))
        .routes(routes!(bank_precision))
        .routes(routes!(match_feedback))
        .merge(matching)
}

fn bank_id(raw: &str) -> ApiResult<&str> {
    // ids are UUIDs; anything else names no bank
    if raw.len() != 36 {
        return Err(ApiError::not_found("bank"));
    }
    Ok(raw)
}

/// Create a signal bank (authority admin or officer).
#[utoipa::path(post, path = "/api/v1/banks", request_body = BankInput, responses(
    (status = 201, body = BankView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_bank(state: S, Auth(p): Auth, body: ApiJson<BankInput>) -> ApiResult<Response> {
    let b = state.store.create_bank(&p, body.value).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

#[derive(Serialize, ToSchema)]
struct BanksAnswer {
    banks: Vec<BankView>,
}

/// Banks the caller may see: authority staff all; a platform the enabled
/// banks shared with it; a flagger those it contributes to.
#[utoipa::path(get, path = "/api/v1/banks", responses((status = 200, body = BanksAnswer)))]
async fn list_banks(state: S, Auth(p): Auth) -> ApiResult<Json<BanksAnswer>> {
    Ok(Json(BanksAnswer {
        banks: state.store.list_banks(&p).await?,
    }))
}

/// One bank; one the caller may not see is a 404.
#[utoipa::path(get, path = "/api/v1/banks/{id}", params(("id" = String, Path)), responses(
    (status = 200, body = BankView), (status = 404, body = ErrorBody)))]
async fn get_bank(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BankView>> {
    Ok(Json(state.store.get_bank(&p, bank_id(&id)?).await?))
}

/// Change a bank's settings (absent fields keep their value).
#[utoipa::path(patch, path = "/api/v1/banks/{id}", params(("id" = String, Path)), request_body = BankInput, responses(
    (status = 200, body = BankView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_bank(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<BankInput>,
) -> ApiResult<Json<BankView>> {
    Ok(Json(
        state
            .store
            .update_bank(&p, bank_id(&id)?, body.value)
            .await?,
    ))
}

/// The notice or order a signal comes from: exactly one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SourceInput {
    notice_id: Option<String>,
    order_id: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct LabelsInput {
    /// A taxonomy category id.
    category: Option<String>,
    tier: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignalInput {
    /// `url`, `domain` (`*.example.com` covers subdomains), `sha256`, `md5` or `pdq`.
    #[serde(rename = "type")]
    kind: String,
    value: String,
    /// PDQ quality, 0 to 100.
    quality: Option<u8>,
    #[serde(default)]
    labels: LabelsInput,
    /// The notice or order that is the signal's legal basis.
    source: SourceInput,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignalBatch {
    /// 1 to 1,000 signals.
    signals: Vec<SignalInput>,
}

#[derive(Serialize, ToSchema)]
struct SignalsAnswer {
    signals: Vec<SignalView>,
}

fn parse_signal(state: &AppState, s: SignalInput) -> tapis_core::Result<NewSignal> {
    let kind = SignalKind::parse(s.kind.trim())
        .map_err(|e| tapis_core::Error::invalid("type", e.to_string()))?;
    let signal = Signal::parse(kind, &s.value)
        .map_err(|e| tapis_core::Error::invalid("value", e.to_string()))?;
    if let Some(q) = s.quality
        && (kind != SignalKind::Pdq || q > 100)
    {
        return Err(tapis_core::Error::invalid(
            "quality",
            "only a pdq signal has a quality, 0 to 100",
        ));
    }
    let category = label("labels.category", s.labels.category.as_deref())?;
    if let Some(c) = &category {
        state.taxonomy.category(c).map_err(|e| e.within("labels"))?;
    }
    let source = match (s.source.notice_id, s.source.order_id) {
        (Some(id), None) => SourceRef {
            kind: "notice".into(),
            id: id.trim().to_owned(),
        },
        (None, Some(id)) => SourceRef {
            kind: "order".into(),
            id: id.trim().to_owned(),
        },
        _ => {
            return Err(tapis_core::Error::invalid(
                "source",
                "name exactly one of notice_id and order_id",
            ));
        }
    };
    if source.id.len() != 36 {
        return Err(tapis_core::Error::invalid(
            format!("source.{}_id", source.kind),
            "not a valid id (expected a 36-character UUID)",
        ));
    }
    Ok(NewSignal {
        signal,
        quality: s.quality,
        labels: SignalLabels {
            category,
            tier: label("labels.tier", s.labels.tier.as_deref())?,
            group: label("labels.group", s.labels.group.as_deref())?,
        },
        source,
    })
}

/// Add signals to a bank in one transaction (authority admin or officer;
/// a flagger to a bank that lists it as a contributor, citing a notice made
/// from its own flags). Each takes the bank's next sequence number.
#[utoipa::path(post, path = "/api/v1/banks/{id}/signals", params(("id" = String, Path)), request_body = SignalBatch, responses(
    (status = 201, body = SignalsAnswer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_signals(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<SignalBatch>,
) -> ApiResult<Response> {
    let batch = body.value.signals;
    if batch.is_empty() || batch.len() > MAX_SIGNALS {
        return Err(tapis_core::Error::invalid(
            "signals",
            format!("send between 1 and {MAX_SIGNALS} signals"),
        )
        .into());
    }
    let mut signals = Vec::with_capacity(batch.len());
    for (i, s) in batch.into_iter().enumerate() {
        signals.push(parse_signal(&state, s).map_err(|e| e.within(&format!("signals[{i}]")))?);
    }
    let added = state.store.add_signals(&p, bank_id(&id)?, signals).await?;
    Ok((StatusCode::CREATED, Json(SignalsAnswer { signals: added })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RemoveInput {
    /// Why it is removed, 3 to 2,000 characters.
    reason: String,
}

/// Tombstone a signal (authority admin or officer): it stays on record,
/// stops matching, and the sync feed carries the removal.
#[utoipa::path(post, path = "/api/v1/banks/{id}/signals/{signal_id}/remove",
    params(("id" = String, Path), ("signal_id" = String, Path)), request_body = RemoveInput, responses(
    (status = 200, body = SignalView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_signal(
    state: S,
    Auth(p): Auth,
    ApiPath((id, signal)): ApiPath<(String, String)>,
    body: ApiJson<RemoveInput>,
) -> ApiResult<Json<SignalView>> {
    if signal.len() != 36 {
        return Err(ApiError::not_found("signal"));
    }
    Ok(Json(
        state
            .store
            .remove_signal(&p, bank_id(&id)?, &signal, &body.value.reason)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// The checkpoint to read after (a previous answer's `next`; 0 or absent: from the start).
    since: Option<i64>,
    /// Changes per page, 1 to 10,000 (default 1,000).
    limit: Option<u32>,
}

/// The bank's sync feed: additions and tombstones after `since`, in order,
/// with the next checkpoint; an Ed25519 envelope (`payload`, `kid`, `alg`,
/// `signature`) checkable against `GET /api/v1/keys`.
#[utoipa::path(get, path = "/api/v1/banks/{id}/signals", params(("id" = String, Path), FeedQuery), responses(
    (status = 200, body = Object, description = "signed envelope; payload.feed is a Feed"), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn bank_feed(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> ApiResult<Json<Value>> {
    let feed = state
        .store
        .bank_feed(
            &p,
            bank_id(&id)?,
            q.since.unwrap_or(0),
            q.limit.unwrap_or(1000),
        )
        .await?;
    Ok(Json(feed))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// Where to go on: a previous page's `next`, as given (absent: the first page).
    cursor: Option<String>,
    /// Signals per page, 1 to 10,000 (default 1,000).
    limit: Option<u32>,
}

/// The bank's live signals at one checkpoint, in signed pages. The first
/// page fixes the checkpoint (the bank's head) and gives `total`; each
/// page's `next` cursor carries it, so every page reads the same snapshot
/// whatever is added or removed meanwhile. After the last page (`more`
/// false, no `next`), follow the feed from `payload.checkpoint`.
#[utoipa::path(get, path = "/api/v1/banks/{id}/export", params(("id" = String, Path), ExportQuery), responses(
    (status = 200, body = Object, description = "signed envelope; its payload is an ExportPage"), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn bank_export(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        state
            .store
            .bank_export(
                &p,
                bank_id(&id)?,
                q.cursor.as_deref(),
                q.limit.unwrap_or(1000),
            )
            .await?,
    ))
}

/// The bank's precision from platforms' verdicts, per contributor, and its
/// signals up for review.
#[utoipa::path(get, path = "/api/v1/banks/{id}/precision", params(("id" = String, Path)), responses(
    (status = 200, body = Precision), (status = 404, body = ErrorBody)))]
async fn bank_precision(
    state: S,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Precision>> {
    Ok(Json(state.store.bank_precision(&p, bank_id(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FeedbackInput {
    /// The matched signal.
    signal_id: String,
    verdict: Verdict,
    /// Up to 2,000 characters.
    note: Option<String>,
}

/// A platform marks a match confirmed or a false positive. Each platform
/// counts once per signal: its latest verdict replaces its earlier one
/// (201 for its first, 200 with `replaces` for a change). Enough false
/// positives (the bank's `review_after`, and more than confirmations) put
/// the signal up for review.
#[utoipa::path(post, path = "/api/v1/match/feedback", request_body = FeedbackInput, responses(
    (status = 201, body = FeedbackAnswer), (status = 200, body = FeedbackAnswer), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn match_feedback(
    state: S,
    Auth(p): Auth,
    body: ApiJson<FeedbackInput>,
) -> ApiResult<Response> {
    let f = body.value;
    if f.signal_id.len() != 36 {
        return Err(ApiError::not_found("signal"));
    }
    let answer = state
        .store
        .match_feedback(&p, &f.signal_id, f.verdict, f.note)
        .await?;
    let status = if answer.replaces.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(answer)).into_response())
}

#[derive(Serialize, ToSchema)]
struct QueryResult {
    index: usize,
    /// The query's type (`pdq` for an image, once hashed).
    #[serde(rename = "type")]
    kind: String,
    /// The normalised value (an image's PDQ hash).
    value: String,
    /// An image's PDQ quality.
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<u8>,
    /// An image's quality is below 50: its matches are weak evidence.
    low_quality: bool,
    matches: Vec<MatchHit>,
}

#[derive(Serialize, ToSchema)]
struct MatchAnswer {
    results: Vec<QueryResult>,
}

/// Match a batch of queries against the banks the caller may match (a
/// platform: the enabled banks shared with it). Each result lists every
/// matching signal with its bank, labels, distance (PDQ: Hamming distance
/// within the bank's threshold), quality flag and legal basis. Exact:
/// nothing within a threshold is missed. Images are hashed with PDQ
/// first; under quality 50 they are flagged `low_quality`. The body may be
/// up to 16 MiB (this route's own limit), JSON with images base64 in
/// `data`, or `multipart/form-data`: a `request` part with the same JSON
/// first (an image query names its part in `file`), then the image parts
/// (`image/*` or `application/octet-stream`), at most 16.
#[utoipa::path(post, path = "/api/v1/match", request_body(content(
    (body::MatchRequest = "application/json"),
    (body::MatchRequest = "multipart/form-data"))), responses(
    (status = 200, body = MatchAnswer), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn match_batch(state: S, Auth(p): Auth, req: Request) -> ApiResult<Json<MatchAnswer>> {
    let body = tokio::time::timeout(MATCH_BODY_DEADLINE, body::read(req, &state))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the match request did not arrive within {} s: send it faster or split it",
                    MATCH_BODY_DEADLINE.as_secs()
                ),
            )
        })??;
    let parsed = body.queries;
    // hash images off the async threads
    let hashed = tokio::task::spawn_blocking(move || {
        parsed
            .into_iter()
            .map(|q| match q {
                Parsed::Signal(s) => Ok((s, None)),
                Parsed::Image { bytes, field, part } => hash_image(&bytes, &IMAGE_LIMITS)
                    .map(|r| (Signal::Pdq(r.hash), Some(r.quality)))
                    .map_err(|e| {
                        let message = match part {
                            Some(part) => format!("part `{part}`: {e}"),
                            None => e.to_string(),
                        };
                        ApiError::from(tapis_core::Error::invalid(field, message))
                    }),
                // every file arrived or the body was refused
                Parsed::File(_) => Err(ApiError::internal()),
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let queries: Vec<Signal> = hashed.iter().map(|(s, _)| s.clone()).collect();
    let banks = body.banks;
    let answers = state
        .store
        .match_signals(&state.matcher, &p, banks.as_deref(), &queries)
        .await?;
    let results = hashed
        .into_iter()
        .zip(answers)
        .enumerate()
        .map(|(index, ((signal, quality), matches))| QueryResult {
            index,
            kind: signal.kind().as_str().to_owned(),
            value: signal.to_string(),
            quality,
            low_quality: quality.is_some_and(|q| q < LOW_QUALITY),
            matches,
        })
        .collect();
    Ok(Json(MatchAnswer { results }))
}
