//! Due process on the blocking path: the `[due_process]` section and the
//! policy it gives (moved out of config.rs, which was at its size limit).

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use super::Settings;

/// Due process on the blocking path.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DueProcessSettings {
    /// How long an emergency order may be in force without an independent
    /// authorisation before it lapses by itself.
    pub emergency_max_hours: u32,
    /// Least time between telling an affected platform about a proposed
    /// order and the order taking effect (emergencies excepted).
    pub platform_lead_hours: u32,
    /// When a review date passes without a review: `lapse` (the order
    /// ends) or `escalate` (the authoriser is told; it stays to expiry).
    pub on_missed_review: tapis_core::due_process::MissedReview,
    /// Names whose blocking always needs authorisation (widely used sites).
    pub popular_sites: Vec<String>,
    /// A file of more such names, one a line (`#` comments).
    pub popular_sites_file: Option<PathBuf>,
    /// A public suffix list file (publicsuffix.org format) to use instead
    /// of the copy bundled with tapis. Orders touching a public suffix or
    /// shared-hosting domain need authorisation; a file that cannot be read
    /// stops tapis from starting.
    pub public_suffix_list: Option<PathBuf>,
}

impl Default for DueProcessSettings {
    fn default() -> Self {
        DueProcessSettings {
            emergency_max_hours: 48,
            platform_lead_hours: 24,
            on_missed_review: tapis_core::due_process::MissedReview::Lapse,
            popular_sites: Vec::new(),
            popular_sites_file: None,
            public_suffix_list: None,
        }
    }
}

impl Settings {
    /// The due-process policy in force (reads the public suffix list and
    /// the popular-sites file).
    pub fn due_process_policy(&self) -> anyhow::Result<tapis_core::due_process::DueProcessPolicy> {
        use tapis_core::due_process::{DueProcessPolicy, ListOrigin, PublicSuffixList};
        use tapis_core::target::DomainName;
        let d = &self.due_process;
        if d.emergency_max_hours == 0 || d.emergency_max_hours > 24 * 30 {
            anyhow::bail!("due_process.emergency_max_hours must be between 1 and 720");
        }
        if d.platform_lead_hours > 24 * 90 {
            anyhow::bail!("due_process.platform_lead_hours must be at most 2160");
        }
        let mut popular = Vec::new();
        let mut add = |what: &str, raw: &str| -> anyhow::Result<()> {
            let name = DomainName::parse(raw)
                .map_err(|e| anyhow::anyhow!("{what}: {raw:?} is not a domain name: {e}"))?;
            popular.push(name);
            Ok(())
        };
        for n in &d.popular_sites {
            add("due_process.popular_sites", n)?;
        }
        if let Some(path) = &d.popular_sites_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the popular-sites file {}", path.display())
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if !line.is_empty() {
                    add(&format!("{} line {}", path.display(), i + 1), line)?;
                }
            }
        }
        let public_suffixes = match &d.public_suffix_list {
            None => PublicSuffixList::bundled(),
            Some(path) => {
                // never a silent fallback: due process would weaken
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "cannot read the public suffix list {} (due_process.public_suffix_list): fix the path, or remove the setting to use the bundled list",
                        path.display()
                    )
                })?;
                let (list, skipped) = PublicSuffixList::parse(&text);
                if list.is_empty() {
                    anyhow::bail!("the public suffix list {} has no rules", path.display());
                }
                if skipped > 0 {
                    tracing::warn!(
                        skipped,
                        "public suffix rules that could not be read were skipped"
                    );
                }
                list.with_origin(ListOrigin::file(&path.display().to_string(), &text))
            }
        };
        Ok(DueProcessPolicy {
            emergency_max_secs: i64::from(d.emergency_max_hours) * 3600,
            platform_lead_secs: i64::from(d.platform_lead_hours) * 3600,
            on_missed_review: d.on_missed_review,
            popular_sites: popular,
            public_suffixes,
        })
    }
}
