//! The public register's settings: what it withholds (person names by
//! field, e-mail addresses, phone numbers and the operator's patterns in
//! free text, content locators by category) and how long after its
//! decision a record of a category is listed. The floor no setting
//! removes is core's (`tapis_core::register`).

use std::collections::BTreeMap;

use serde::Deserialize;
use tapis_core::register::{PolicyInput, RedactionPolicy};

/// `[register]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterSettings {
    /// Replace e-mail addresses in free text (explanations, reasons,
    /// legal bases) with "[email withheld]".
    pub redact_emails: bool,
    /// Replace phone numbers (international `+62 …` or trunk-prefixed
    /// `0812 …`, `(021) …`, 9 to 15 digits) with "[phone withheld]".
    pub redact_phones: bool,
    /// Show the names of the people who proposed, approved, authorised or
    /// issued (off: each is "withheld" and counted).
    pub publish_person_names: bool,
    /// More passages to withhold, as Rust regular expressions (at most 32,
    /// each up to 256 characters), e.g. `NIK\s*\d{16}`.
    pub patterns: Vec<String>,
    /// Categories whose content locators (blocked names, items' URLs and
    /// handles) are withheld because publishing them spreads the content.
    pub withhold_locators: Vec<String>,
    /// Days after the decision a record of a category is listed, e.g.
    /// `{ fraud = 7 }` (at most 3653).
    pub delay_days: BTreeMap<String, u32>,
}

impl Default for RegisterSettings {
    fn default() -> Self {
        let p = PolicyInput::default();
        RegisterSettings {
            redact_emails: p.redact_emails,
            redact_phones: p.redact_phones,
            publish_person_names: p.publish_person_names,
            patterns: p.patterns,
            withhold_locators: p.withhold_locators,
            delay_days: p.delay_days,
        }
    }
}

impl RegisterSettings {
    /// The policy, every pattern compiled and every category checked
    /// against the bundled taxonomy.
    pub fn policy(&self) -> anyhow::Result<RedactionPolicy> {
        let taxonomy = tapis_core::taxonomy::Taxonomy::bundled();
        let ids: Vec<&str> = taxonomy.categories.iter().map(|c| c.id.as_str()).collect();
        RedactionPolicy::new(
            PolicyInput {
                redact_emails: self.redact_emails,
                redact_phones: self.redact_phones,
                publish_person_names: self.publish_person_names,
                patterns: self.patterns.clone(),
                withhold_locators: self.withhold_locators.clone(),
                delay_days: self.delay_days.clone(),
            },
            &ids,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_section_parses_and_checks() {
        let s: RegisterSettings = toml::from_str(
            r#"
            publish_person_names = false
            patterns = ['NIK\s*\d{16}']
            withhold_locators = ["child_sexual_abuse"]
            delay_days = { fraud = 7 }
            "#,
        )
        .expect("parses");
        let p = s.policy().expect("valid");
        assert_eq!(p.delay_days("fraud"), 7);
        assert!(p.withholds_locators("child_sexual_abuse"));
        assert!(!p.withholds_locators("terrorism"));
        assert_eq!(
            RegisterSettings::default()
                .policy()
                .expect("default")
                .sha256(),
            RedactionPolicy::default().sha256()
        );
        let typo = RegisterSettings {
            withhold_locators: vec!["csam".into()],
            ..Default::default()
        };
        let e = typo.policy().expect_err("unknown category").to_string();
        assert!(
            e.contains("register.withhold_locators") && e.contains("child_sexual_abuse"),
            "{e}"
        );
        let bad = RegisterSettings {
            patterns: vec!["(".into()],
            ..Default::default()
        };
        assert!(bad.policy().is_err());
        assert!(toml::from_str::<RegisterSettings>("unknown = 1").is_err());
    }
}
