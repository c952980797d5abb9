//! The transparency log, public: the latest signed checkpoint (a C2SP
//! signed note, witnesses' cosignatures appended), the log's verifier key,
//! inclusion and consistency proofs, pages of leaf hashes, the proof for
//! one leaf with a checkpoint that covers it, and witnesses' cosignatures.
//! No token is needed: leaves are salted commitments, so nothing here says
//! what an event was. Only making a checkpoint on demand is the admin's.

use axum::Json;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tapis_core::role::Role;
use tapis_core::tlog::note::{Checkpoint, Note};
use tapis_core::tlog::{self, hash_to_b64};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth};

type S = axum::extract::State<AppState>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkpoint, make_checkpoint))
        .routes(routes!(log_key))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(leaves))
        .routes(routes!(leaf_proof))
        .routes(routes!(cosignatures))
}

fn note_response(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

/// The latest checkpoint as a C2SP signed note: `<origin>\n<size>\n<base64
/// root>\n`, a blank line, the log's Ed25519 signature line, then any
/// witnesses' cosignature lines. Made now if the log has none yet.
#[utoipa::path(get, path = "/api/v1/log/checkpoint", security(()),
    responses((status = 200, content_type = "text/plain", body = String, description = "the signed note")))]
async fn checkpoint(state: S) -> ApiResult<Response> {
    Ok(note_response(state.store.latest_checkpoint().await?))
}

/// Sign a checkpoint of the log as it is now (admin). Checkpoints are also
/// made on a schedule when the log has grown.
#[utoipa::path(post, path = "/api/v1/log/checkpoint",
    responses((status = 200, content_type = "text/plain", body = String, description = "the signed note"), (status = 403, body = ErrorBody)))]
async fn make_checkpoint(state: S, Auth(p): Auth) -> ApiResult<Response> {
    if p.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin may make a checkpoint on demand",
        ));
    }
    Ok(note_response(state.store.make_checkpoint().await?))
}

/// The log's verifier key, `<origin>+<hex key id>+<base64(0x01 || Ed25519
/// public key)>` (c2sp.org/signed-note): pin it, and check it against the
/// key published with tapis's other keys.
#[utoipa::path(get, path = "/api/v1/log/key", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn log_key(state: S) -> Response {
    note_response(format!("{}\n", state.store.log_vkey()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    /// The leaf (event `seq` is leaf `seq - 1`).
    leaf_index: u64,
    /// The tree size of the checkpoint to prove against.
    tree_size: u64,
}

#[derive(Serialize, ToSchema)]
struct InclusionProof {
    leaf_index: u64,
    tree_size: u64,
    /// The leaf's RFC 6962 hash, base64.
    leaf_hash: String,
    /// The audit path, leaf to root, base64 (RFC 9162 2.1.3).
    proof: Vec<String>,
}

fn b64_all(hashes: &[tlog::Hash]) -> Vec<String> {
    hashes.iter().map(hash_to_b64).collect()
}

async fn inclusion_proof(state: &AppState, index: u64, size: u64) -> ApiResult<InclusionProof> {
    let proof = state.store.inclusion_proof(index, size).await?;
    let leaf = state.store.leaf_hashes(index, index + 1).await?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        leaf_hash: leaf.first().map(hash_to_b64).unwrap_or_default(),
        proof: b64_all(&proof),
    })
}

/// An inclusion proof: leaf `leaf_index` is in the tree of `tree_size`.
#[utoipa::path(get, path = "/api/v1/log/proof/inclusion", params(InclusionQuery), security(()),
    responses((status = 200, body = InclusionProof), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn inclusion(
    state: S,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> ApiResult<Json<InclusionProof>> {
    Ok(Json(
        inclusion_proof(&state, q.leaf_index, q.tree_size).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct LeafProof {
    #[serde(flatten)]
    proof: InclusionProof,
    /// A signed checkpoint of `tree_size` (made now if the latest did not
    /// cover the leaf), with its cosignatures.
    checkpoint: String,
}

/// Leaf `index`'s proof with a checkpoint that covers it.
pub(crate) async fn leaf_proof_of(state: &AppState, index: u64) -> ApiResult<LeafProof> {
    if index >= state.store.log_size().await? {
        return Err(ApiError::not_found("leaf"));
    }
    let checkpoint = state.store.checkpoint_covering(index).await?;
    let note = Note::parse(&checkpoint)?;
    let size = Checkpoint::parse_body(&note.text)?.size;
    Ok(LeafProof {
        proof: inclusion_proof(state, index, size).await?,
        checkpoint,
    })
}

/// A leaf's proof with a checkpoint that covers it: everything a platform
/// needs, with the salt and event hash from its receipt or message, to
/// show that tapis logged the event.
#[utoipa::path(get, path = "/api/v1/log/proof/leaf/{leaf_index}", params(("leaf_index" = u64, Path)), security(()),
    responses((status = 200, body = LeafProof), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn leaf_proof(state: S, ApiPath(index): ApiPath<String>) -> ApiResult<Json<LeafProof>> {
    let index: u64 = index.parse().map_err(|_| ApiError::not_found("leaf"))?;
    Ok(Json(leaf_proof_of(&state, index).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    /// The older tree size (at least 1).
    from: u64,
    /// The newer tree size (at most the log's size).
    to: u64,
}

#[derive(Serialize, ToSchema)]
struct ConsistencyProof {
    from: u64,
    to: u64,
    /// RFC 9162 2.1.4 consistency proof, base64.
    proof: Vec<String>,
}

/// A consistency proof: the tree of `to` leaves extends that of `from`.
#[utoipa::path(get, path = "/api/v1/log/proof/consistency", params(ConsistencyQuery), security(()),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn consistency(
    state: S,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyProof>> {
    let proof = state.store.consistency_proof(q.from, q.to).await?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        proof: b64_all(&proof),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LeavesQuery {
    /// The first leaf.
    start: u64,
    /// One past the last leaf; at most 1,000 leaves a page.
    end: u64,
}

#[derive(Serialize, ToSchema)]
struct Leaves {
    start: u64,
    end: u64,
    /// RFC 6962 leaf hashes, base64, in order.
    leaf_hashes: Vec<String>,
}

/// Leaf hashes `[start, end)`, at most 1,000 a page.
#[utoipa::path(get, path = "/api/v1/log/leaves", params(LeavesQuery), security(()),
    responses((status = 200, body = Leaves), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn leaves(state: S, ApiQuery(q): ApiQuery<LeavesQuery>) -> ApiResult<Json<Leaves>> {
    let hashes = state.store.leaf_hashes(q.start, q.end).await?;
    Ok(Json(Leaves {
        start: q.start,
        end: q.end,
        leaf_hashes: b64_all(&hashes),
    }))
}

#[derive(Serialize, ToSchema)]
struct Cosigned {
    /// Cosignature lines kept (one per configured witness key that signed).
    kept: usize,
}

/// A witness's cosignature: the body is a checkpoint this log published
/// (its text exactly) with the witness's `cosignature/v1` line(s)
/// (c2sp.org/tlog-cosignature). Only witnesses whose verifier keys are in
/// `log.witnesses` are kept (403 otherwise); a checkpoint the log never
/// signed is a 404 or a 409.
#[utoipa::path(post, path = "/api/v1/log/cosignatures", security(()),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = Cosigned), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn cosignatures(state: S, body: Bytes) -> ApiResult<Json<Cosigned>> {
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "the body must be a signed note in UTF-8",
        )
    })?;
    let kept = state.store.add_cosignatures(text).await?;
    Ok(Json(Cosigned { kept }))
}
