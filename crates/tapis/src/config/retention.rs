//! `[retention]`: how long each kind of record holding personal data is
//! kept after it stops being live (whole days, 1 to 36500, or "forever"),
//! and how often the scheduler applies it. The kinds, what each removes and
//! what stays are core's (`tapis_core::retention`).

use std::collections::BTreeMap;

use serde::Deserialize;
use tapis_core::retention::{Keep, RecordKind, RetentionPolicy};

/// One kind's setting: a number of days or the word "forever".
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Days {
    Days(i64),
    Word(String),
}

impl Days {
    fn keep(&self, key: &str) -> anyhow::Result<Keep> {
        match self {
            Days::Days(n) => Keep::days(key, *n).map_err(|e| anyhow::anyhow!("{e}")),
            Days::Word(w) if w == "forever" => Ok(Keep::Forever),
            Days::Word(w) => anyhow::bail!(
                "{key}: {:?} is neither a number of days (1 to 36500) nor \"forever\"",
                w.chars().take(32).collect::<String>()
            ),
        }
    }

    fn of(keep: Keep) -> Days {
        match keep {
            Keep::Days(d) => Days::Days(i64::from(d)),
            Keep::Forever => Days::Word("forever".into()),
        }
    }
}

/// `[retention]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Minutes between the scheduler's retention runs (1 to 1440).
    pub interval_minutes: u32,
    /// Public reports: contact, reasons and evidence, after the decision.
    pub public_flag_days: Days,
    /// Appeals by the public and content owners: reason and evidence,
    /// after the decision.
    pub personal_appeal_days: Days,
    /// Web sessions, after they end or were last used.
    pub web_session_days: Days,
    /// Sign-in and password-reset codes, after they expire.
    pub account_link_days: Days,
    /// Invitations never accepted, after they expire.
    pub invitation_days: Days,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        let d = |k: RecordKind| Days::of(k.default_keep());
        RetentionSettings {
            interval_minutes: 60,
            public_flag_days: d(RecordKind::PublicFlag),
            personal_appeal_days: d(RecordKind::PersonalAppeal),
            web_session_days: d(RecordKind::WebSession),
            account_link_days: d(RecordKind::AccountLink),
            invitation_days: d(RecordKind::Invitation),
        }
    }
}

impl RetentionSettings {
    /// The policy, each value checked (the error names its key).
    pub fn policy(&self) -> anyhow::Result<RetentionPolicy> {
        let mut rules = BTreeMap::new();
        for (kind, value) in [
            (RecordKind::PublicFlag, &self.public_flag_days),
            (RecordKind::PersonalAppeal, &self.personal_appeal_days),
            (RecordKind::WebSession, &self.web_session_days),
            (RecordKind::AccountLink, &self.account_link_days),
            (RecordKind::Invitation, &self.invitation_days),
        ] {
            let key = format!("retention.{kind}_days");
            rules.insert(kind.as_str().to_owned(), value.keep(&key)?);
        }
        RetentionPolicy::new(&rules).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The time between runs, checked.
    pub fn interval(&self) -> anyhow::Result<std::time::Duration> {
        if !(1..=1440).contains(&self.interval_minutes) {
            anyhow::bail!(
                "retention.interval_minutes: {} is not between 1 and 1440",
                self.interval_minutes
            );
        }
        Ok(std::time::Duration::from_secs(
            u64::from(self.interval_minutes) * 60,
        ))
    }

    /// Both checks, for loading.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        self.policy()?;
        self.interval()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RetentionSettings {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn days_and_forever_parse_into_the_policy() {
        let s = parse("public_flag_days = 90\npersonal_appeal_days = \"forever\"\n");
        let p = s.policy().expect("valid");
        assert_eq!(p.keep(RecordKind::PublicFlag), Keep::Days(90));
        assert_eq!(p.keep(RecordKind::PersonalAppeal), Keep::Forever);
        assert_eq!(p.keep(RecordKind::WebSession), Keep::Days(30), "default");
        assert_eq!(
            RetentionSettings::default().policy().expect("ok"),
            RetentionPolicy::default()
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key, says) in [
            (
                "public_flag_days = 0",
                "retention.public_flag_days",
                "0 would remove",
            ),
            (
                "web_session_days = -3",
                "retention.web_session_days",
                "between 1 and 36500",
            ),
            (
                "account_link_days = 40000",
                "retention.account_link_days",
                "between 1 and 36500",
            ),
            (
                "invitation_days = \"never\"",
                "retention.invitation_days",
                "\"never\"",
            ),
            (
                "interval_minutes = 0",
                "retention.interval_minutes",
                "between 1 and 1440",
            ),
        ] {
            let e = parse(text).check().expect_err(text).to_string();
            assert!(e.contains(key) && e.contains(says), "{text}: {e}");
        }
        let e = toml::from_str::<RetentionSettings>("orders_days = 3").expect_err("unknown key");
        assert!(e.to_string().contains("orders_days"), "{e}");
    }
}
