//! Flags: the public report's proof of work and when a trusted flagger's
//! accuracy calls its status into review.

use serde::Deserialize;

/// `[flags]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlagSettings {
    /// Leading zero bits a public report's proof of work must have (1 to
    /// 32): about 2^n SHA-256 hashes for the reporter's client, one for
    /// the server.
    pub pow_difficulty: u8,
    /// Seconds a challenge may be answered after it was issued.
    pub pow_max_age_secs: u32,
    /// A flagger's accepted share of reviewed flags below which its
    /// trusted-flagger status is flagged for review (0 to 1).
    pub accuracy_threshold: f64,
    /// Reviewed flags in the window before accuracy is judged at all.
    pub accuracy_min_reviewed: u64,
    /// The window accuracy is measured over, ending now, in days.
    pub accuracy_window_days: u32,
}

impl Default for FlagSettings {
    fn default() -> Self {
        let a = tapis_core::flag::AccuracyPolicy::default();
        let p = tapis_core::pow::PowPolicy::default();
        FlagSettings {
            pow_difficulty: p.difficulty,
            pow_max_age_secs: p.max_age_secs as u32,
            accuracy_threshold: a.threshold,
            accuracy_min_reviewed: a.min_reviewed,
            accuracy_window_days: a.window_days,
        }
    }
}

impl FlagSettings {
    pub fn accuracy(&self) -> anyhow::Result<tapis_core::flag::AccuracyPolicy> {
        tapis_core::flag::AccuracyPolicy::parse(
            self.accuracy_threshold,
            self.accuracy_min_reviewed,
            self.accuracy_window_days,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    pub fn pow(&self) -> anyhow::Result<tapis_core::pow::PowPolicy> {
        if !(1..=tapis_core::pow::MAX_DIFFICULTY).contains(&self.pow_difficulty) {
            anyhow::bail!(
                "flags.pow_difficulty must be between 1 and {} bits, not {}",
                tapis_core::pow::MAX_DIFFICULTY,
                self.pow_difficulty
            );
        }
        if !(60..=86_400).contains(&self.pow_max_age_secs) {
            anyhow::bail!(
                "flags.pow_max_age_secs must be between 60 and 86400, not {}",
                self.pow_max_age_secs
            );
        }
        Ok(tapis_core::pow::PowPolicy {
            difficulty: self.pow_difficulty,
            max_age_secs: i64::from(self.pow_max_age_secs),
        })
    }
}
