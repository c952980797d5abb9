//! `tapis audit verify --against FILE…`: the chain checked against the
//! receipts and decisions that platforms kept.
//!
//! A hash chain held only by its operator proves nothing against the
//! operator: whoever can write the database can delete the tail or rewrite
//! the past and recompute every hash. Each signed receipt and decision
//! carries the chain head at the time it was issued (`payload.chain`), so
//! the chain must still hold that event with that hash; one kept receipt is
//! enough to catch a deleted tail or a rehashed past up to its point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use tapis_core::audit::Anchor;

use super::open;
use crate::config::Settings;

/// Verify the chain, then every anchored document; exit 1 if either fails.
pub(super) async fn audit_verify_against(
    settings: &Settings,
    files: &[PathBuf],
    keys_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let chain = super::offline::audit_verify(settings).await?;
    let store = open(settings).await?;
    let keys: Vec<(String, String)> = match keys_file {
        Some(path) => read_keys(path)?,
        None => store
            .public_keys()
            .await?
            .into_iter()
            .map(|k| (k.kid, k.public_key))
            .collect(),
    };
    let mut failed = false;
    for file in files {
        match check(&store, file, &keys).await {
            Ok(line) => say!("{}: {line}", file.display()),
            Err(why) => {
                failed = true;
                say!("{}: MISMATCH: {why}", file.display());
            }
        }
    }
    store.close().await;
    Ok(if failed || chain != ExitCode::SUCCESS {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One document: its signature, then its anchor against the chain.
async fn check(
    store: &tapis_store::Store,
    file: &Path,
    keys: &[(String, String)],
) -> anyhow::Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    // the API's whole response (`{"notice", "receipt"}`) or the envelope
    let envelope = doc.get("receipt").unwrap_or(&doc);
    let payload = tapis_core::sign::open_envelope(envelope, keys)
        .map_err(|e| format!("the signature does not verify with tapis's published keys: {e}"))?;
    let anchor = Anchor::from_payload(payload).map_err(|e| e.to_string())?;
    let stored = store
        .audit_hash_at(anchor.seq)
        .await
        .map_err(|e| format!("cannot read the chain: {e}"))?;
    anchor.check(stored.as_deref())?;
    Ok(format!(
        "{} anchored at event {} ({}): still in the chain",
        payload
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("document"),
        anchor.seq,
        anchor.hash
    ))
}

/// A keys list as `GET /api/v1/keys` returns it.
fn read_keys(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let list: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a keys list", path.display()))?;
    Ok(list
        .iter()
        .filter_map(|k| {
            Some((
                k.get("kid")?.as_str()?.to_owned(),
                k.get("public_key")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}
