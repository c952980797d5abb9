//! Banks of content signals (the filtering management service): who may
//! do what with a bank, a new bank's and a bank change's settings, match
//! feedback verdicts, and when a signal's false positives put it up for
//! review. No I/O: the store loads a bank's access facts, asks
//! [`access`], and applies.
//!
//! The rule for who may touch a bank:
//!
//! * the authority's admin and officers create and change banks, add
//!   signals to any bank and tombstone them;
//! * a flagger party adds signals only to a bank that lists it among its
//!   `contributors` (and sees only those banks);
//! * a platform sees, matches against, syncs and gives feedback on an
//!   enabled bank that lists it in `shared_with`, and nothing else: any
//!   other bank is a 404, as if it did not exist;
//! * the other authority roles (approver, auditor) read every bank and may
//!   match, and change nothing.
//!
//! Feedback counts once per platform and signal: a platform's latest
//! verdict replaces its earlier one ([`Tally::revise`]), so one platform
//! repeating itself cannot push a signal into review, and a platform that
//! changes its mind is counted as it now sees the match. Earlier verdicts
//! stay on record (superseded, and in the audit log); a signal once put up
//! for review stays there until someone reviews it.

use serde::{Deserialize, Serialize};

use crate::party::bounded_text;
use crate::role::Role;
use crate::{Error, PartyId, Result};

/// The highest PDQ threshold a bank may use (Meta's recommended default,
/// also ours): past it, unrelated images start to match.
pub const MAX_PDQ_THRESHOLD: u32 = 31;
/// False positives that put a signal up for review unless a bank says.
pub const DEFAULT_REVIEW_AFTER: u32 = 3;
/// Images whose PDQ quality is below this are flagged in answers
/// (Meta's guidance: hashes of flat images match too easily).
pub const LOW_QUALITY: u8 = 50;
/// Most platforms a bank is shared with, and most contributors.
pub const MAX_PARTIES: usize = 1000;

/// What is asked of a bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankAction {
    /// Create a bank or change its settings.
    Manage,
    /// Read the bank, its sync feed and export, its precision.
    Read,
    AddSignal,
    RemoveSignal,
    /// Match queries against it.
    Match,
    /// Mark a match confirmed or a false positive.
    Feedback,
}

impl BankAction {
    fn as_str(self) -> &'static str {
        match self {
            BankAction::Manage => "manage signal banks",
            BankAction::Read => "read signal banks",
            BankAction::AddSignal => "add signals to this bank",
            BankAction::RemoveSignal => "remove signals from banks",
            BankAction::Match => "match against signal banks",
            BankAction::Feedback => "give feedback on matches",
        }
    }
}

/// The facts about a bank that access depends on.
#[derive(Debug, Clone, Copy)]
pub struct BankFacts<'a> {
    pub enabled: bool,
    pub shared_with: &'a [PartyId],
    pub contributors: &'a [PartyId],
}

/// The answer to "may this caller do this to this bank?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The caller may see the bank but not do this: a 403.
    Forbidden(Error),
    /// The caller may not know the bank exists: a 404.
    Hidden,
}

fn is_staff(role: Role) -> bool {
    role.reads_everything()
}

/// Whether a caller with `role` acting for `party` sees the bank at all.
pub fn visible(role: Role, party: PartyId, bank: &BankFacts<'_>) -> bool {
    match role {
        r if is_staff(r) => true,
        Role::PlatformAgent => bank.enabled && bank.shared_with.contains(&party),
        Role::Flagger => bank.contributors.contains(&party),
        _ => false,
    }
}

/// May a caller with `role` acting for `party` do `action` to `bank`?
/// `bank` is `None` for creating a bank.
pub fn access(
    role: Role,
    party: PartyId,
    bank: Option<&BankFacts<'_>>,
    action: BankAction,
) -> Access {
    if let Some(b) = bank
        && !visible(role, party, b)
    {
        return Access::Hidden;
    }
    let allowed = match action {
        BankAction::Manage | BankAction::RemoveSignal => {
            matches!(role, Role::Admin | Role::Officer)
        }
        BankAction::Read => bank.is_some(),
        // a flagger that sees the bank is one of its contributors
        BankAction::AddSignal => matches!(role, Role::Admin | Role::Officer | Role::Flagger),
        BankAction::Match => is_staff(role) || role == Role::PlatformAgent,
        BankAction::Feedback => role == Role::PlatformAgent,
    };
    if allowed {
        Access::Allowed
    } else {
        Access::Forbidden(Error::Forbidden {
            who: format!("role {}", role.as_str()),
            action: action.as_str().to_owned(),
        })
    }
}

/// A bank's settings as sent (create, or a change: absent keeps).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BankInput {
    /// Unique, 1 to 100 characters (required to create).
    pub name: Option<String>,
    /// Up to 2,000 characters.
    pub description: Option<String>,
    /// Disabled banks match nothing and are hidden from platforms (default true).
    pub enabled: Option<bool>,
    /// PDQ Hamming distance at or under which an image matches, 0 to 31 (default 31).
    pub pdq_threshold: Option<u32>,
    /// Platform parties that may match and sync this bank.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub shared_with: Option<Vec<String>>,
    /// Flagger parties that may add signals to this bank.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub contributors: Option<Vec<String>>,
    /// False positives (more than confirmations) that put a signal up for review, 1 to 1,000 (default 3).
    pub review_after: Option<u32>,
}

/// A bank's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankSettings {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub pdq_threshold: u32,
    pub shared_with: Vec<PartyId>,
    pub contributors: Vec<PartyId>,
    pub review_after: u32,
}

impl BankSettings {
    /// A new bank's settings: `name` required, the rest defaulted.
    pub fn create(input: BankInput) -> Result<BankSettings> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| Error::invalid("name", "a bank needs a name"))?;
        let base = BankSettings {
            name,
            description: String::new(),
            enabled: true,
            pdq_threshold: MAX_PDQ_THRESHOLD,
            shared_with: Vec::new(),
            contributors: Vec::new(),
            review_after: DEFAULT_REVIEW_AFTER,
        };
        base.change(input)
    }

    /// These settings with `input`'s fields applied, checked.
    pub fn change(&self, input: BankInput) -> Result<BankSettings> {
        let name = bounded_text("name", input.name.as_deref().unwrap_or(&self.name), 1, 100)?;
        let description = bounded_text(
            "description",
            input.description.as_deref().unwrap_or(&self.description),
            0,
            2000,
        )?;
        let pdq_threshold = input.pdq_threshold.unwrap_or(self.pdq_threshold);
        if pdq_threshold > MAX_PDQ_THRESHOLD {
            return Err(Error::invalid(
                "pdq_threshold",
                format!(
                    "{pdq_threshold} is over {MAX_PDQ_THRESHOLD}: use 0 to {MAX_PDQ_THRESHOLD} bits"
                ),
            ));
        }
        let review_after = input.review_after.unwrap_or(self.review_after);
        if !(1..=1000).contains(&review_after) {
            return Err(Error::invalid(
                "review_after",
                "use 1 to 1000 false positives",
            ));
        }
        let parties =
            |field: &str, given: Option<Vec<String>>, now: &[PartyId]| -> Result<Vec<PartyId>> {
                let Some(given) = given else {
                    return Ok(now.to_vec());
                };
                if given.len() > MAX_PARTIES {
                    return Err(Error::invalid(
                        field,
                        format!("at most {MAX_PARTIES} parties"),
                    ));
                }
                let mut out = Vec::with_capacity(given.len());
                for (i, s) in given.iter().enumerate() {
                    let id =
                        PartyId::parse(s.trim()).map_err(|e| e.within(&format!("{field}[{i}]")))?;
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
                Ok(out)
            };
        Ok(BankSettings {
            name,
            description,
            enabled: input.enabled.unwrap_or(self.enabled),
            pdq_threshold,
            shared_with: parties("shared_with", input.shared_with, &self.shared_with)?,
            contributors: parties("contributors", input.contributors, &self.contributors)?,
            review_after,
        })
    }
}

/// Optional text label on a signal: trimmed, 1 to 100 characters, or none.
pub fn label(field: &str, raw: Option<&str>) -> Result<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => bounded_text(field, s, 1, 100).map(Some),
    }
}

/// A platform's verdict on a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Verdict {
    /// The match was right: the content is what the signal says.
    Confirmed,
    /// The match was wrong.
    FalsePositive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::FalsePositive => "false_positive",
        }
    }

    pub fn parse(s: &str) -> Result<Verdict> {
        match s {
            "confirmed" => Ok(Verdict::Confirmed),
            "false_positive" => Ok(Verdict::FalsePositive),
            _ => Err(Error::invalid("verdict", "use confirmed or false_positive")),
        }
    }
}

/// Confirmed and false-positive counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    pub confirmed: u64,
    pub false_positives: u64,
}

impl Tally {
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Confirmed => self.confirmed += 1,
            Verdict::FalsePositive => self.false_positives += 1,
        }
    }

    /// A platform's new verdict `v` replacing its `previous` one (if any):
    /// the latest verdict of each platform counts, once.
    pub fn revise(&mut self, previous: Option<Verdict>, v: Verdict) {
        match previous {
            Some(Verdict::Confirmed) => self.confirmed = self.confirmed.saturating_sub(1),
            Some(Verdict::FalsePositive) => {
                self.false_positives = self.false_positives.saturating_sub(1);
            }
            None => {}
        }
        self.add(v);
    }

    /// Confirmed over all verdicts; `None` before any.
    pub fn precision(&self) -> Option<f64> {
        let all = self.confirmed + self.false_positives;
        #[allow(clippy::cast_precision_loss)]
        (all > 0).then(|| self.confirmed as f64 / all as f64)
    }

    /// Whether this tally puts a signal up for review: at least
    /// `review_after` false positives, and more of them than
    /// confirmations (a signal most platforms confirm is not doubted
    /// because a few disagree).
    pub fn needs_review(&self, review_after: u32) -> bool {
        self.false_positives >= u64::from(review_after) && self.false_positives > self.confirmed
    }
}

/// Whether the verdict that made `after` from `before` is the one that
/// crosses into review (so the review event is written once).
pub fn crosses_into_review(before: Tally, after: Tally, review_after: u32) -> bool {
    !before.needs_review(review_after) && after.needs_review(review_after)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn who_may_do_what() {
        let platform = PartyId::new();
        let other = PartyId::new();
        let flagger = PartyId::new();
        let authority = PartyId::new();
        let shared = [platform];
        let contributors = [flagger];
        let bank = BankFacts {
            enabled: true,
            shared_with: &shared,
            contributors: &contributors,
        };
        let a = |role, party, action| access(role, party, Some(&bank), action);
        assert_eq!(
            a(Role::PlatformAgent, platform, BankAction::Match),
            Access::Allowed
        );
        assert_eq!(
            a(Role::PlatformAgent, platform, BankAction::Feedback),
            Access::Allowed
        );
        assert!(matches!(
            a(Role::PlatformAgent, platform, BankAction::AddSignal),
            Access::Forbidden(_)
        ));
        assert_eq!(
            a(Role::PlatformAgent, other, BankAction::Read),
            Access::Hidden
        );
        assert_eq!(
            a(Role::Flagger, flagger, BankAction::AddSignal),
            Access::Allowed
        );
        assert!(matches!(
            a(Role::Flagger, flagger, BankAction::RemoveSignal),
            Access::Forbidden(_)
        ));
        assert_eq!(
            a(Role::Flagger, other, BankAction::AddSignal),
            Access::Hidden
        );
        assert_eq!(
            a(Role::Officer, authority, BankAction::RemoveSignal),
            Access::Allowed
        );
        assert!(matches!(
            a(Role::Auditor, authority, BankAction::AddSignal),
            Access::Forbidden(_)
        ));
        assert_eq!(
            a(Role::Auditor, authority, BankAction::Match),
            Access::Allowed
        );
        assert_eq!(
            a(Role::IspOperator, other, BankAction::Read),
            Access::Hidden
        );
        let disabled = BankFacts {
            enabled: false,
            ..bank
        };
        assert_eq!(
            access(
                Role::PlatformAgent,
                platform,
                Some(&disabled),
                BankAction::Match
            ),
            Access::Hidden
        );
        assert_eq!(
            access(Role::Admin, authority, None, BankAction::Manage),
            Access::Allowed
        );
        assert!(matches!(
            access(Role::Flagger, flagger, None, BankAction::Manage),
            Access::Forbidden(_)
        ));
    }

    #[test]
    fn settings_are_checked() {
        let s = BankSettings::create(BankInput {
            name: Some(" terror ".into()),
            ..BankInput::default()
        })
        .unwrap();
        assert_eq!(
            (s.name.as_str(), s.pdq_threshold, s.enabled, s.review_after),
            ("terror", 31, true, 3)
        );
        let e = s
            .change(BankInput {
                pdq_threshold: Some(32),
                ..BankInput::default()
            })
            .unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "pdq_threshold"));
        let e = s
            .change(BankInput {
                shared_with: Some(vec!["nope".into()]),
                ..BankInput::default()
            })
            .unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field.starts_with("shared_with[0]"))
        );
        assert!(BankSettings::create(BankInput::default()).is_err());
        let c = s
            .change(BankInput {
                pdq_threshold: Some(10),
                enabled: Some(false),
                ..BankInput::default()
            })
            .unwrap();
        assert_eq!(
            (c.name.as_str(), c.pdq_threshold, c.enabled),
            ("terror", 10, false)
        );
    }

    #[test]
    fn review_is_crossed_once() {
        let mut t = Tally::default();
        assert_eq!(t.precision(), None);
        t.add(Verdict::Confirmed);
        let mut crossings = 0;
        for _ in 0..5 {
            let before = t;
            t.add(Verdict::FalsePositive);
            crossings += usize::from(crosses_into_review(before, t, 3));
        }
        assert_eq!(crossings, 1);
        assert!(t.needs_review(3));
        assert_eq!(t.precision(), Some(1.0 / 6.0));
        // confirmations outweigh: no review
        let t = Tally {
            confirmed: 10,
            false_positives: 4,
        };
        assert!(!t.needs_review(3));
        assert_eq!(
            Verdict::parse("false_positive").unwrap(),
            Verdict::FalsePositive
        );
        assert!(Verdict::parse("maybe").is_err());
    }

    #[test]
    fn a_platform_counts_once_with_its_latest_verdict() {
        let mut t = Tally::default();
        // one platform says false positive five times: one verdict
        let mut mine = None;
        let mut crossings = 0;
        for _ in 0..5 {
            let before = t;
            t.revise(mine, Verdict::FalsePositive);
            mine = Some(Verdict::FalsePositive);
            crossings += usize::from(crosses_into_review(before, t, 3));
        }
        assert_eq!(
            t,
            Tally {
                confirmed: 0,
                false_positives: 1
            }
        );
        assert_eq!(crossings, 0);
        // it changes its mind: the confirmation replaces the false positive
        t.revise(mine, Verdict::Confirmed);
        assert_eq!(
            t,
            Tally {
                confirmed: 1,
                false_positives: 0
            }
        );
        // three other platforms disagree: now it is up for review
        for _ in 0..3 {
            t.revise(None, Verdict::FalsePositive);
        }
        assert!(t.needs_review(3));
    }
}
