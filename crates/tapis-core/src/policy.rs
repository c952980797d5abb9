//! The SLA policy: how long a platform has to decide a notice, by category
//! and urgency. Versioned data (`data/sla-policy.json`); every notice records
//! the version that set its deadline.

use serde::Deserialize;

use crate::notice::Urgency;
use crate::{Error, Result, Timestamp};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    urgent: i64,
    normal: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    category: String,
    urgency: Urgency,
    seconds: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub version: String,
    #[allow(dead_code)]
    description: String,
    default: Defaults,
    rules: Vec<Rule>,
}

const BUNDLED: &str = include_str!("../data/sla-policy.json");

impl SlaPolicy {
    pub fn bundled() -> SlaPolicy {
        SlaPolicy::from_json(BUNDLED).expect("the bundled SLA policy is valid (tested)")
    }

    pub fn from_json(text: &str) -> Result<SlaPolicy> {
        let p: SlaPolicy = serde_json::from_str(text)
            .map_err(|e| Error::invalid("sla_policy", format!("cannot read SLA policy: {e}")))?;
        let all = p
            .rules
            .iter()
            .map(|r| r.seconds)
            .chain([p.default.urgent, p.default.normal]);
        for s in all {
            if s <= 0 {
                return Err(Error::invalid(
                    "sla_policy",
                    "every deadline must be positive",
                ));
            }
        }
        Ok(p)
    }

    /// Seconds allowed for a notice of this category and urgency.
    pub fn allowance(&self, category: &str, urgency: Urgency) -> i64 {
        self.rules
            .iter()
            .find(|r| r.category == category && r.urgency == urgency)
            .map(|r| r.seconds)
            .unwrap_or(match urgency {
                Urgency::Urgent => self.default.urgent,
                Urgency::Normal => self.default.normal,
            })
    }

    pub fn due_at(&self, submitted_at: Timestamp, category: &str, urgency: Urgency) -> Timestamp {
        submitted_at.plus_secs(self.allowance(category, urgency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_rules_beat_defaults() {
        let p = SlaPolicy::bundled();
        assert_eq!(p.allowance("terrorism", Urgency::Urgent), 3600);
        assert_eq!(p.allowance("public_order", Urgency::Normal), 4 * 3600);
        assert_eq!(p.allowance("gambling", Urgency::Normal), 24 * 3600);
        assert_eq!(p.allowance("gambling", Urgency::Urgent), 4 * 3600);
        let t = Timestamp::from_unix_millis(0);
        assert_eq!(
            p.due_at(t, "terrorism", Urgency::Urgent),
            Timestamp::from_unix_millis(3_600_000)
        );
    }

    #[test]
    fn refuses_non_positive_deadlines() {
        let bad =
            r#"{"version":"x","description":"","default":{"urgent":0,"normal":1},"rules":[]}"#;
        assert!(SlaPolicy::from_json(bad).is_err());
    }
}
