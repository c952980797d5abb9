//! The transparency log's settings: its origin, how often it signs a
//! checkpoint, and which witnesses' cosignatures it accepts.

use serde::Deserialize;

/// `[transparency]`: the Merkle log over the audit events.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TransparencySettings {
    /// The log's origin, the first line of every checkpoint and the name
    /// of its key: a schema-less URL naming this deployment, e.g.
    /// `kominfo.example/tapis`. Keep it once witnesses follow the log.
    pub origin: String,
    /// Seconds between checkpoints while the log grows (the owner signs
    /// one when the log has grown since the last); 0: only on demand.
    pub checkpoint_interval_secs: u64,
    /// Witnesses whose cosignatures are accepted, as verifier keys
    /// (`name+keyid+base64`, printed by `tapis witness`).
    pub witnesses: Vec<String>,
}

impl Default for TransparencySettings {
    fn default() -> Self {
        TransparencySettings {
            origin: "tapis.example/log".into(),
            checkpoint_interval_secs: 60,
            witnesses: Vec::new(),
        }
    }
}

impl TransparencySettings {
    /// The store's view, every key and the origin checked.
    pub fn log_options(&self) -> anyhow::Result<tapis_store::tlog::LogOptions> {
        tapis_core::tlog::note::check_name("transparency.origin", &self.origin)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let witnesses = self
            .witnesses
            .iter()
            .map(|w| {
                tapis_core::tlog::note::Vkey::parse(w)
                    .map_err(|e| anyhow::anyhow!("transparency.witnesses: {w}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(tapis_store::tlog::LogOptions {
            origin: self.origin.clone(),
            witnesses,
        })
    }
}
