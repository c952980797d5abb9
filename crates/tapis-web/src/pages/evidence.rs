//! Evidence files in the notice composer, hashed on upload. The pages run
//! no script, so the browser cannot hash a file itself: the composer is a
//! `multipart/form-data` form with an optional file per item, and the
//! server streams each file through SHA-256 as it arrives. The file is
//! never kept (a notice carries the hash of the screenshot or archived
//! copy, not the copy); the hash fills the item's evidence field and the
//! file's name and size go into the evidence description.
//!
//! Bounds: the files of one submission together at most
//! `web.evidence_max_bytes` (413 page naming the limit), the text fields
//! together at most [`TEXT_MAX`], at most [`MAX_FIELDS`] parts. The CSRF
//! token is checked before the first file byte is read (it is the form's
//! first field), so a forged upload costs no hashing.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::error::WebError;
use crate::session::{Ctx, Form, check_csrf};

/// The text fields of one form, together (the API's body limit).
pub const TEXT_MAX: usize = 1024 * 1024;
/// Parts in one form.
pub const MAX_FIELDS: usize = 200;
/// Room for the parts' own headers and boundaries.
pub const SLACK: u64 = 64 * 1024;

/// One uploaded file, hashed.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The item row it belongs to (0-based).
    pub row: usize,
    /// Its name as the browser gave it, without any path, bounded.
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A multipart composer form: its text fields (CSRF checked) and files.
#[derive(Debug, Default)]
pub struct Submitted {
    pub form: Form,
    pub uploads: Vec<Upload>,
}

/// The request body a multipart composer form may have.
pub fn body_limit(evidence_max: u64) -> usize {
    usize::try_from(evidence_max.saturating_add(TEXT_MAX as u64 + SLACK)).unwrap_or(usize::MAX)
}

fn bytes_label(cx: &Ctx, n: u64) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", cx.lang.number((n / (1024 * 1024)) as i64))
    } else {
        format!("{} bytes", cx.lang.number(n as i64))
    }
}

/// The 413 page: the files are over the limit, which it names.
pub fn too_large(cx: &Ctx) -> WebError {
    let limit = bytes_label(cx, cx.state.config.evidence_max_bytes);
    WebError::new(
        cx.lang,
        StatusCode::PAYLOAD_TOO_LARGE,
        "error-413-title",
        cx.tf("compose-evidence-too-large", &[("limit", &limit)]),
    )
}

fn bad_form(cx: &Ctx) -> WebError {
    WebError::new(
        cx.lang,
        StatusCode::BAD_REQUEST,
        "error-400-title",
        cx.t("error-bad-form").to_owned(),
    )
}

fn multipart_error(cx: &Ctx, e: MultipartError) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(cx)
    } else {
        bad_form(cx)
    }
}

/// A file name as shown in the notice: the last path segment, control
/// characters dropped, at most 100 characters.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    last.chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Read a multipart composer form: text fields into a [`Form`], each
/// `evidence_file_<row>` streamed through SHA-256. A file of zero bytes is
/// refused naming its item (a file input left empty sends a part with no
/// name and no bytes: that is no file).
pub async fn read(cx: &Ctx, mut mp: Multipart, rows: usize) -> Result<Submitted, WebError> {
    let mut out = Submitted::default();
    let (mut text, mut files, mut parts) = (0usize, 0u64, 0usize);
    let limit = cx.state.config.evidence_max_bytes;
    let mut csrf_checked = false;
    while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_error(cx, e))? {
        parts += 1;
        if parts > MAX_FIELDS {
            return Err(bad_form(cx));
        }
        let name = field.name().unwrap_or("").to_owned();
        if name.is_empty() || name.len() > 64 {
            return Err(bad_form(cx));
        }
        if let Some(row) = name.strip_prefix("evidence_file_") {
            let row: usize = row.parse().map_err(|_| bad_form(cx))?;
            if row >= rows {
                return Err(bad_form(cx));
            }
            if !csrf_checked {
                // the token comes first in the form: nothing is hashed for
                // a forged request
                check_csrf(cx, &out.form)?;
                csrf_checked = true;
            }
            let file_name = clean_name(field.file_name().unwrap_or(""));
            let mut h = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(cx, e))? {
                size += chunk.len() as u64;
                files += chunk.len() as u64;
                if files > limit {
                    return Err(too_large(cx));
                }
                h.update(&chunk);
            }
            if size == 0 && file_name.is_empty() {
                continue;
            }
            if size == 0 {
                return Err(WebError::new(
                    cx.lang,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "error-422-title",
                    cx.tf(
                        "compose-evidence-empty",
                        &[("n", &(row + 1).to_string()), ("name", &file_name)],
                    ),
                ));
            }
            out.uploads.push(Upload {
                row,
                name: if file_name.is_empty() {
                    "(unnamed)".to_owned()
                } else {
                    file_name
                },
                size,
                sha256: hex::encode(h.finalize()),
            });
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(cx, e))? {
                text += chunk.len();
                if text > TEXT_MAX {
                    return Err(too_large(cx));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| bad_form(cx))?;
            out.form.0.push((name, value));
        }
    }
    check_csrf(cx, &out.form)?;
    Ok(out)
}

/// Put each upload's hash into its item's evidence: refused naming the
/// field when a typed hash differs from the file's, or when the item has
/// no target; the description gains the file's name and size.
pub fn apply(cx: &Ctx, sub: &mut Submitted) -> Result<(), String> {
    for u in &sub.uploads {
        let n = (u.row + 1).to_string();
        if sub
            .form
            .get(&format!("item_value_{}", u.row))
            .trim()
            .is_empty()
        {
            return Err(cx.tf("compose-evidence-no-item", &[("n", &n)]));
        }
        let sha_field = format!("evidence_sha256_{}", u.row);
        let typed = sub.form.get(&sha_field).trim().to_ascii_lowercase();
        if !typed.is_empty() && typed != u.sha256 {
            return Err(cx.tf(
                "compose-evidence-mismatch",
                &[("n", &n), ("field", &sha_field), ("sha", &u.sha256)],
            ));
        }
        set(&mut sub.form, &sha_field, u.sha256.clone());
        let desc_field = format!("evidence_description_{}", u.row);
        let note = format!("file {}, {} bytes", u.name, u.size);
        let desc = sub.form.get(&desc_field).trim();
        let desc = if desc.is_empty() {
            note
        } else {
            format!("{desc} ({note})")
        };
        set(&mut sub.form, &desc_field, desc);
    }
    Ok(())
}

fn set(form: &mut Form, key: &str, value: String) {
    match form.0.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => form.0.push((key.to_owned(), value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_paths_and_control_characters() {
        assert_eq!(clean_name("C:\\Users\\siti\\shot.png"), "shot.png");
        assert_eq!(clean_name("/tmp/a/b.pdf"), "b.pdf");
        assert_eq!(clean_name("we\u{0}ird\nname.png"), "weirdname.png");
        assert_eq!(clean_name(&"x".repeat(300)).len(), 100);
        assert_eq!(clean_name(""), "");
    }
}
