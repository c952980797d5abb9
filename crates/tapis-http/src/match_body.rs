//! Reading a `POST /api/v1/match` body: JSON (images base64 in `data`) or
//! `multipart/form-data` (a `request` part with the same JSON first, then
//! one file part per image query, named by its `file`). Both are read under
//! the route's own limit ([`MATCH_MAX_BODY`]); a multipart body is streamed
//! part by part, each image refused as soon as it passes
//! [`MAX_IMAGE_BYTES`], at most [`MAX_PARTS`] parts, every refusal a 4xx
//! whose `field` names the query (`queries[2].file`) or the part
//! (`parts[3]`) and whose message names the part.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use tapis_match::{Signal, SignalKind};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::match_routes::{MATCH_MAX_BODY, MAX_IMAGE_BYTES, MAX_IMAGES, MAX_QUERIES};

/// Most parts in a multipart match request: the `request` part and one
/// per image.
pub const MAX_PARTS: usize = 1 + MAX_IMAGES;
/// Longest part name.
const MAX_PART_NAME: usize = 64;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryInput {
    /// `url`, `domain`, `sha256`, `md5`, `pdq` (64 hex digits) or `image`.
    #[serde(rename = "type")]
    kind: String,
    /// The URL, domain or hash (not for `image`).
    value: Option<String>,
    /// For `image`: the file, base64 (JPEG, PNG, GIF, WebP or BMP; at most 4 MiB).
    data: Option<String>,
    /// For `image` in a `multipart/form-data` request: the name of the
    /// part that carries the file (instead of `data`).
    file: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchRequest {
    /// 1 to 1,000 queries (at most 16 images).
    queries: Vec<QueryInput>,
    /// Only these banks (default: every enabled bank the caller may match).
    banks: Option<Vec<String>>,
}

/// A query, parsed: a signal, or an image still to hash.
pub(crate) enum Parsed {
    Signal(Signal),
    /// The image's bytes and the field that names it (`queries[1].data`,
    /// or `queries[1].file` with the part's name, for errors).
    Image {
        bytes: Vec<u8>,
        field: String,
        part: Option<String>,
    },
    /// An image still to arrive in the named multipart part.
    File(String),
}

/// A match request, read and checked; images not yet hashed.
pub(crate) struct MatchBody {
    pub queries: Vec<Parsed>,
    pub banks: Option<Vec<String>>,
}

pub(crate) fn too_large(field: String, message: String) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("{field}: {message}"),
        field: Some(field),
    }
}

fn too_big() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the match request is larger than {MATCH_MAX_BODY} bytes: split it"),
    )
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    tapis_core::Error::invalid(field, message).into()
}

fn media_type(v: Option<&str>) -> String {
    v.and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Read the match body under the route's own limit, JSON or multipart.
pub(crate) async fn read(req: Request, state: &AppState) -> ApiResult<MatchBody> {
    let ct = media_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let multipart = match ct.as_str() {
        "application/json" => false,
        "multipart/form-data" => true,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON (Content-Type: application/json, images base64 in `data`) \
                 or as multipart/form-data (a `request` part with that JSON, then one part per image \
                 named by its query's `file`)",
            ));
        }
    };
    // a declared length over the limit is refused before any byte is read
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MATCH_MAX_BODY as u64) {
        return Err(too_big());
    }
    if multipart {
        return read_multipart(req, state).await;
    }
    let bytes = axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_big()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("cannot read the body: {e}"),
                )
            }
        })?;
    let request = parse_request(&bytes, "the body")?;
    drop(bytes);
    check(request, false)
}

fn parse_request(bytes: &[u8], what: &str) -> ApiResult<MatchRequest> {
    let raw: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("{what} is not valid JSON: {e}"),
        )
    })?;
    MatchRequest::deserialize(raw).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("{what}: {e}"),
        )
    })
}

/// Check the request's shape and parse each query; image files of a
/// multipart request are left to arrive.
fn check(body: MatchRequest, multipart: bool) -> ApiResult<MatchBody> {
    if body.queries.is_empty() || body.queries.len() > MAX_QUERIES {
        return Err(invalid(
            "queries",
            format!(
                "send between 1 and {MAX_QUERIES} queries (got {})",
                body.queries.len()
            ),
        ));
    }
    if let Some(b) = &body.banks
        && (b.is_empty() || b.len() > 100)
    {
        return Err(invalid(
            "banks",
            "name 1 to 100 banks, or leave it out for all",
        ));
    }
    let mut queries = Vec::with_capacity(body.queries.len());
    let mut images = 0;
    for (i, q) in body.queries.into_iter().enumerate() {
        let q = parse_query(i, q, multipart)?;
        if !matches!(q, Parsed::Signal(_)) {
            images += 1;
            if images > MAX_IMAGES {
                return Err(invalid(
                    "queries",
                    format!("at most {MAX_IMAGES} images in one request"),
                ));
            }
        }
        if let Parsed::File(name) = &q
            && let Some(j) = queries
                .iter()
                .position(|p| matches!(p, Parsed::File(n) if n == name))
        {
            return Err(invalid(
                format!("queries[{i}].file"),
                format!(
                    "part `{name}` is already the image of queries[{j}]: send one part per image"
                ),
            ));
        }
        queries.push(q);
    }
    Ok(MatchBody {
        queries,
        banks: body
            .banks
            .map(|b| b.into_iter().map(|s| s.trim().to_owned()).collect()),
    })
}

fn parse_query(i: usize, q: QueryInput, multipart: bool) -> ApiResult<Parsed> {
    let at = |f: &str| format!("queries[{i}].{f}");
    let kind = q.kind.trim();
    if kind == "image" {
        if q.value.is_some() {
            return Err(invalid(
                at("value"),
                "an image query sends its file in `data` (or `file`), not `value`",
            ));
        }
        match (q.data, q.file) {
            (Some(_), Some(_)) => Err(invalid(at("file"), "send `data` or `file`, not both")),
            (None, None) if multipart => Err(invalid(
                at("file"),
                "an image query needs `file`: the name of the part carrying the image",
            )),
            (None, None) => Err(invalid(
                at("data"),
                "an image query needs `data`: the file, base64",
            )),
            (None, Some(_)) if !multipart => Err(invalid(
                at("file"),
                "`file` names a part of a multipart/form-data request; in JSON send the image base64 in `data`",
            )),
            (None, Some(name)) => {
                let name = name.trim();
                if name.is_empty() || name.len() > MAX_PART_NAME || name == "request" {
                    return Err(invalid(
                        at("file"),
                        format!(
                            "name the image's part: 1 to {MAX_PART_NAME} characters, not `request`"
                        ),
                    ));
                }
                Ok(Parsed::File(name.to_owned()))
            }
            (Some(data), None) => {
                // base64 is 4 characters per 3 bytes: refuse before decoding
                if data.len() / 4 * 3 > MAX_IMAGE_BYTES + 3 {
                    return Err(too_large(
                        at("data"),
                        format!("the image is over {MAX_IMAGE_BYTES} bytes"),
                    ));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| invalid(at("data"), format!("not base64: {e}")))?;
                if bytes.len() > MAX_IMAGE_BYTES {
                    return Err(too_large(
                        at("data"),
                        format!("the image is over {MAX_IMAGE_BYTES} bytes"),
                    ));
                }
                Ok(Parsed::Image {
                    bytes,
                    field: at("data"),
                    part: None,
                })
            }
        }
    } else {
        let kind = SignalKind::parse(kind).map_err(|_| {
            invalid(
                at("type"),
                "use one of url, domain, sha256, md5, pdq, image",
            )
        })?;
        if q.data.is_some() || q.file.is_some() {
            return Err(invalid(
                at(if q.data.is_some() { "data" } else { "file" }),
                "only an image query sends a file",
            ));
        }
        let value = q
            .value
            .ok_or_else(|| invalid(at("value"), format!("a {kind} query needs `value`")))?;
        if value.len() > 8192 {
            return Err(invalid(at("value"), "longer than 8192 bytes"));
        }
        Signal::parse(kind, &value)
            .map(Parsed::Signal)
            .map_err(|e| invalid(at("value"), e.to_string()))
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_big()
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_multipart",
            format!("the multipart body cannot be read: {}", e.body_text()),
        )
    }
}

/// A multipart match request: the `request` part first (JSON), then each
/// image query's part, streamed and bounded as it arrives.
async fn read_multipart(req: Request, state: &AppState) -> ApiResult<MatchBody> {
    let mut mp = Multipart::from_request(req, state).await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_multipart",
            format!("cannot read the multipart body: {}", e.body_text()),
        )
    })?;
    let first = mp
        .next_field()
        .await
        .map_err(multipart_error)?
        .ok_or_else(|| {
            invalid(
                "request",
                "the multipart body has no parts: send a `request` part with the JSON first",
            )
        })?;
    if first.name() != Some("request") {
        return Err(invalid(
            "request",
            format!(
                "the first part is `{}`: send the `request` part (the JSON with the queries) first, then the images",
                first.name().map_or_else(|| "(unnamed)".to_owned(), clean)
            ),
        ));
    }
    let ct = media_type(first.content_type());
    if !(ct.is_empty() || ct == "application/json" || ct == "text/plain") {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!("part `request` is {ct}: send it as application/json"),
            field: Some("request".into()),
        });
    }
    let json = read_part(first, MATCH_MAX_BODY, too_big).await?;
    let mut body = check(parse_request(&json, "part `request`")?, true)?;
    drop(json);
    let mut parts = 1;
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        parts += 1;
        let at = format!("parts[{}]", parts - 1);
        if parts > MAX_PARTS {
            return Err(invalid(
                at,
                format!("more than {MAX_PARTS} parts: `request` and at most {MAX_IMAGES} images"),
            ));
        }
        let name = field.name().unwrap_or("").to_owned();
        let Some(i) = body
            .queries
            .iter()
            .position(|q| matches!(q, Parsed::File(n) if *n == name))
        else {
            let already = body
                .queries
                .iter()
                .any(|q| matches!(q, Parsed::Image { part: Some(p), .. } if *p == name));
            return Err(invalid(
                at,
                if already {
                    format!("part `{}` came twice: one part per image", clean(&name))
                } else {
                    format!(
                        "part `{}` is not the `file` of any image query",
                        clean(&name)
                    )
                },
            ));
        };
        let field_name = format!("queries[{i}].file");
        let ct = media_type(field.content_type());
        if !(ct.is_empty() || ct.starts_with("image/") || ct == "application/octet-stream") {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: format!(
                    "{field_name}: part `{}` is {ct}: send an image (image/png, image/jpeg, …) or application/octet-stream",
                    clean(&name)
                ),
                field: Some(field_name),
            });
        }
        let f = field_name.clone();
        let n = clean(&name);
        let bytes = read_part(field, MAX_IMAGE_BYTES, move || {
            too_large(
                f.clone(),
                format!("part `{n}` is over {MAX_IMAGE_BYTES} bytes"),
            )
        })
        .await?;
        if bytes.is_empty() {
            return Err(invalid(
                field_name,
                format!("part `{}` is empty", clean(&name)),
            ));
        }
        body.queries[i] = Parsed::Image {
            bytes,
            field: field_name,
            part: Some(name),
        };
    }
    if let Some((i, name)) = body.queries.iter().enumerate().find_map(|(i, q)| match q {
        Parsed::File(n) => Some((i, n)),
        _ => None,
    }) {
        return Err(invalid(
            format!("queries[{i}].file"),
            format!("no part named `{name}` in the request"),
        ));
    }
    Ok(body)
}

/// A part's bytes, refused with `over()` once past `max`.
async fn read_part(
    mut field: Field<'_>,
    max: usize,
    over: impl Fn() -> ApiError,
) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if out.len() + chunk.len() > max {
            return Err(over());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A client-given part name as shown in an error: control characters
/// dropped, at most 64 characters.
fn clean(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control())
        .take(MAX_PART_NAME)
        .collect()
}
