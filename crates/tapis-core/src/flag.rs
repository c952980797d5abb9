//! Flags: reports from a flagger party (an agency, an accredited NGO) or
//! from the public, which the authority reviews into notices.
//!
//! A flag is lighter than a notice: targets (the item kinds and
//! normalisation of notices), a category from the taxonomy, reasons and
//! optional evidence hashes. Its life: `received →` `accepted` (it became,
//! with others, a notice), `merged` (its targets joined a notice that
//! already asks for them) or `rejected` (with a reason). Only an officer
//! decides ([`crate::role::Action::TriageFlags`]); every decision is final.
//!
//! The review queue's order is decided here too ([`order_queue`]): by the
//! category's severity, the sources' track record and the number of
//! independent sources, and fair per source, so one source's flood cannot
//! push the others off the first page.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::notice::{ItemInput, Limits, parse_item, string_enum};
use crate::party::bounded_text;
use crate::target::{ItemKind, Sha256Hex};
use crate::taxonomy::{Taxonomy, truncate};
use crate::{Error, Result, Timestamp};

string_enum!(
    /// Where a flag is in its review.
    FlagState, "state" {
        Received = "received",
        Accepted = "accepted",
        Rejected = "rejected",
        Merged = "merged",
    }
);

/// What an officer can do with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagEvent {
    Accept,
    Reject,
    Merge,
}

impl FlagEvent {
    fn verb(self) -> &'static str {
        match self {
            FlagEvent::Accept => "accept",
            FlagEvent::Reject => "reject",
            FlagEvent::Merge => "merge",
        }
    }
}

impl FlagState {
    /// The flag state machine: a received flag takes one decision, and a
    /// decision is final (a rejected flag is flagged again, not reopened).
    pub fn on(self, event: FlagEvent) -> Result<FlagState> {
        let next = match (self, event) {
            (FlagState::Received, FlagEvent::Accept) => Some(FlagState::Accepted),
            (FlagState::Received, FlagEvent::Reject) => Some(FlagState::Rejected),
            (FlagState::Received, FlagEvent::Merge) => Some(FlagState::Merged),
            _ => None,
        };
        next.ok_or_else(|| Error::IllegalTransition {
            entity: "flag",
            state: self.as_str().to_owned(),
            action: event.verb().to_owned(),
        })
    }
}

/// Bounds on one flag. The public form's are tighter than a flagger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagLimits {
    pub max_targets: usize,
    pub max_evidence: usize,
    pub max_reasons_chars: usize,
    /// Flags in one request.
    pub max_batch: usize,
}

impl FlagLimits {
    /// A flagger party's API.
    pub const AGENCY: FlagLimits = FlagLimits {
        max_targets: 100,
        max_evidence: 20,
        max_reasons_chars: 20_000,
        max_batch: 100,
    };
    /// The public form: one flag, a few targets, a short text.
    pub const PUBLIC: FlagLimits = FlagLimits {
        max_targets: 10,
        max_evidence: 5,
        max_reasons_chars: 4_000,
        max_batch: 1,
    };
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagTargetInput {
    /// url, domain, platform_account, platform_channel or content_hash
    pub kind: String,
    /// The target as the flagger wrote it.
    pub value: String,
    /// The platform's stable id of the object, when known.
    #[serde(default)]
    pub native_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagEvidenceInput {
    /// SHA-256 of the screenshot or archived copy (64 hex digits).
    pub sha256: String,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagInput {
    pub targets: Vec<FlagTargetInput>,
    /// A category id from the taxonomy.
    pub category: String,
    /// Why the content is unlawful, in the flagger's words.
    pub reasons: String,
    #[serde(default)]
    pub evidence: Vec<FlagEvidenceInput>,
    /// Public reports only: an address to hear back at (optional). It is
    /// stored sealed and never shown to a platform or another flagger.
    #[serde(default)]
    pub contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagTarget {
    pub kind: ItemKind,
    pub value: String,
    pub normalized: String,
    pub native_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagEvidence {
    pub sha256: Sha256Hex,
    pub description: String,
}

/// A flag that has passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlag {
    pub category: String,
    pub taxonomy_version: String,
    pub targets: Vec<FlagTarget>,
    pub reasons: String,
    pub evidence: Vec<FlagEvidence>,
    pub contact: Option<String>,
}

impl NewFlag {
    /// Decode one flag. `public` allows (only) the public form's contact.
    pub fn parse(
        input: FlagInput,
        taxonomy: &Taxonomy,
        limits: FlagLimits,
        public: bool,
        now: Timestamp,
    ) -> Result<NewFlag> {
        let category = taxonomy.category(&input.category)?.id.clone();
        let reasons = bounded_text("reasons", &input.reasons, 1, limits.max_reasons_chars)?;
        if input.targets.is_empty() {
            return Err(Error::invalid(
                "targets",
                "a flag needs at least one target",
            ));
        }
        if input.targets.len() > limits.max_targets {
            return Err(Error::invalid(
                "targets",
                format!(
                    "{} targets is more than the limit of {}: split the flag",
                    input.targets.len(),
                    limits.max_targets
                ),
            ));
        }
        let mut targets: Vec<FlagTarget> = Vec::with_capacity(input.targets.len());
        for (i, t) in input.targets.into_iter().enumerate() {
            let at = format!("targets[{i}]");
            // the notice decoder's item rules, so a flag's target is exactly
            // what a notice item built from it will be
            let item = ItemInput {
                kind: t.kind,
                value: t.value,
                native_id: t.native_id,
                evidence: Vec::new(),
            };
            let item = parse_item(item, Limits::default(), now).map_err(|e| e.within(&at))?;
            if let Some(j) = targets
                .iter()
                .position(|o| o.kind == item.kind && o.normalized == item.normalized)
            {
                return Err(Error::invalid(
                    at,
                    format!("repeats targets[{j}] ({})", item.normalized),
                ));
            }
            targets.push(FlagTarget {
                kind: item.kind,
                value: item.value,
                normalized: item.normalized,
                native_id: item.native_id,
            });
        }
        if input.evidence.len() > limits.max_evidence {
            return Err(Error::invalid(
                "evidence",
                format!("at most {} evidence entries per flag", limits.max_evidence),
            ));
        }
        let mut evidence = Vec::with_capacity(input.evidence.len());
        for (i, ev) in input.evidence.into_iter().enumerate() {
            let at = format!("evidence[{i}]");
            evidence.push(FlagEvidence {
                sha256: Sha256Hex::parse(&ev.sha256).map_err(|e| e.within(&at))?,
                description: bounded_text("description", &ev.description, 1, 2000)
                    .map_err(|e| e.within(&at))?,
            });
        }
        let contact = match (input.contact, public) {
            (None, _) => None,
            (Some(_), false) => {
                return Err(Error::invalid(
                    "contact",
                    "a flagger is reached through its party's contacts: leave contact out",
                ));
            }
            (Some(c), true) if c.trim().is_empty() => None,
            (Some(c), true) => Some(parse_contact(&c)?),
        };
        Ok(NewFlag {
            category,
            taxonomy_version: taxonomy.version.clone(),
            targets,
            reasons,
            evidence,
            contact,
        })
    }
}

/// An email address or a phone number, bounded.
fn parse_contact(raw: &str) -> Result<String> {
    let c = bounded_text("contact", raw, 3, 254)?;
    let email = c.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && crate::target::DomainName::parse(domain).is_ok()
    });
    let phone = c
        .chars()
        .all(|ch| ch.is_ascii_digit() || matches!(ch, '+' | ' ' | '-' | '(' | ')'))
        && c.chars().filter(char::is_ascii_digit).count() >= 5;
    if (email || phone) && !c.contains(['\n', '\t', '\r']) {
        Ok(c)
    } else {
        Err(Error::invalid(
            "contact",
            format!(
                "{:?} is neither an email address nor a phone number; leave it out to stay anonymous",
                truncate(&c, 32)
            ),
        ))
    }
}

/// A source's track record as a number between 0 and 1: the share of its
/// reviewed flags that were accepted or merged, with one of each added so
/// a new source starts at one half and one decision does not swing it.
pub fn track_record(upheld: u64, reviewed: u64) -> f64 {
    (upheld as f64 + 1.0) / (reviewed as f64 + 2.0)
}

/// One entry of the review queue as ordering sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueCandidate {
    /// The independent sources that flagged the target (a flagger party's
    /// id, or one per public report).
    pub sources: Vec<String>,
    /// The shortest SLA allowance among the flags' categories, in seconds:
    /// the category's severity (shorter is more severe).
    pub allowance_secs: i64,
    /// The best track record among the sources.
    pub trust: f64,
    /// The oldest flag's arrival.
    pub first_received: Timestamp,
}

/// The order to review `entries` in, as indices into it.
///
/// First by severity, then trust, then the number of independent sources,
/// then age. Then fairness: each source may place `per_source` entries in
/// a round; an entry goes in the round of its least-used source, so a
/// flood from one source fills later rounds and the first page still
/// shows everyone else.
pub fn order_queue(entries: &[QueueCandidate], per_source: usize) -> Vec<usize> {
    let per_source = per_source.max(1);
    let mut sorted: Vec<usize> = (0..entries.len()).collect();
    sorted.sort_by(|&a, &b| {
        let (x, y) = (&entries[a], &entries[b]);
        x.allowance_secs
            .cmp(&y.allowance_secs)
            .then(y.trust.total_cmp(&x.trust))
            .then(y.sources.len().cmp(&x.sources.len()))
            .then(x.first_received.cmp(&y.first_received))
            .then(a.cmp(&b))
    });
    let mut used: HashMap<&str, usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for i in sorted {
        let e = &entries[i];
        let least = e
            .sources
            .iter()
            .map(|s| used.get(s.as_str()).copied().unwrap_or(0))
            .min()
            .unwrap_or(0);
        for s in &e.sources {
            *used.entry(s.as_str()).or_insert(0) += 1;
        }
        let round = least / per_source;
        if rounds.len() <= round {
            rounds.resize_with(round + 1, Vec::new);
        }
        rounds[round].push(i);
    }
    rounds.into_iter().flatten().collect()
}

/// What an officer says when accepting flags into a notice, before
/// validation. The items are the flags' targets; the rest is the notice's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptInput {
    /// The flags to accept (one notice for all of them).
    pub flag_ids: Vec<String>,
    /// The platform; absent: inferred from the targets' domains or handles
    /// where a platform registered them.
    #[serde(default)]
    pub platform_id: Option<String>,
    /// The notice's category; absent: the most severe among the flags'.
    #[serde(default)]
    pub category: Option<String>,
    pub urgency: String,
    pub legal_basis: crate::notice::LegalBasisInput,
    pub explanation: String,
}

/// An accepted review, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub flag_ids: Vec<crate::FlagId>,
    pub platform_id: Option<crate::PartyId>,
    pub category: Option<String>,
    pub urgency: crate::notice::Urgency,
    pub legal_basis: crate::notice::LegalBasis,
    pub explanation: String,
    /// The taxonomy the category was checked against.
    pub taxonomy_version: String,
}

/// Most flags one review may accept or reject at once.
pub const MAX_FLAGS_PER_REVIEW: usize = 1000;

/// Parse flag ids given in a review, without repeats.
pub fn parse_flag_ids(raw: &[String]) -> Result<Vec<crate::FlagId>> {
    if raw.is_empty() || raw.len() > MAX_FLAGS_PER_REVIEW {
        return Err(Error::invalid(
            "flag_ids",
            format!("name between 1 and {MAX_FLAGS_PER_REVIEW} flags"),
        ));
    }
    let mut ids = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let id = crate::FlagId::parse(r.trim()).map_err(|e| e.within(&format!("flag_ids[{i}]")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

impl Acceptance {
    pub fn parse(input: AcceptInput, taxonomy: &Taxonomy) -> Result<Acceptance> {
        let flag_ids = parse_flag_ids(&input.flag_ids)?;
        let platform_id = input
            .platform_id
            .map(|p| {
                crate::PartyId::parse(p.trim())
                    .map_err(|_| Error::invalid("platform_id", "not a valid party id"))
            })
            .transpose()?;
        let category = input
            .category
            .map(|c| taxonomy.category(&c).map(|c| c.id.clone()))
            .transpose()?;
        let (legal_basis, explanation) =
            crate::notice::LegalBasis::parse(&input.legal_basis, &input.explanation)?;
        Ok(Acceptance {
            flag_ids,
            platform_id,
            category,
            urgency: crate::notice::Urgency::parse(&input.urgency)?,
            legal_basis,
            explanation,
            taxonomy_version: taxonomy.version.clone(),
        })
    }
}

/// A platform as inference sees it: the domains and handles it registered.
#[derive(Debug, Clone)]
pub struct PlatformNames {
    pub id: crate::PartyId,
    pub domains: Vec<crate::target::DomainName>,
    pub handles: Vec<String>,
}

/// The platform a target belongs to, if exactly one registered its domain
/// (or a parent of it) or its handle.
pub fn platform_of(target: &FlagTarget, platforms: &[PlatformNames]) -> Option<crate::PartyId> {
    use crate::target::{DomainName, NormalUrl};
    let domain = match target.kind {
        ItemKind::Domain => DomainName::parse(&target.normalized).ok(),
        ItemKind::ContentHash => None,
        _ => NormalUrl::parse(&target.normalized)
            .ok()
            .and_then(|u| u.domain()),
    };
    let found: Vec<crate::PartyId> = platforms
        .iter()
        .filter(|p| match &domain {
            Some(d) => p.domains.iter().any(|own| d.is_within(own)),
            None => target.kind.is_platform_object() && p.handles.contains(&target.normalized),
        })
        .map(|p| p.id)
        .collect();
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The platform a notice built from these targets goes to: the one named,
/// or the one every target infers to.
pub fn choose_platform(
    named: Option<crate::PartyId>,
    targets: &[FlagTarget],
    platforms: &[PlatformNames],
) -> Result<crate::PartyId> {
    if let Some(p) = named {
        return Ok(p);
    }
    let mut chosen: Option<crate::PartyId> = None;
    for t in targets {
        let Some(p) = platform_of(t, platforms) else {
            return Err(Error::invalid(
                "platform_id",
                format!(
                    "no single platform registered the domain or handle of {}: name the platform with platform_id",
                    truncate(&t.normalized, 80)
                ),
            ));
        };
        if chosen.is_some_and(|c| c != p) {
            return Err(Error::invalid(
                "platform_id",
                "these flags' targets belong to different platforms: accept them in one review per platform",
            ));
        }
        chosen = Some(p);
    }
    chosen.ok_or_else(|| Error::invalid("flag_ids", "the flags have no targets"))
}

/// The notice an accepted review becomes: the flags' targets (each once),
/// the officer's legal basis and explanation, and the category named or
/// else the most severe of the flags' (`allowance` gives each category's
/// severity: a shorter allowance is more severe).
pub fn notice_from_flags(
    acceptance: &Acceptance,
    platform_id: crate::PartyId,
    flags: &[(String, Vec<FlagTarget>)],
    allowance: impl Fn(&str) -> i64,
) -> Result<crate::notice::NewNotice> {
    let category = match &acceptance.category {
        Some(c) => c.clone(),
        None => flags
            .iter()
            .map(|(c, _)| c)
            .min_by_key(|c| allowance(c))
            .cloned()
            .ok_or_else(|| Error::invalid("flag_ids", "no flags to accept"))?,
    };
    let mut items: Vec<crate::notice::NewItem> = Vec::new();
    for t in flags.iter().flat_map(|(_, ts)| ts) {
        if items
            .iter()
            .any(|i| i.kind == t.kind && i.normalized == t.normalized)
        {
            continue;
        }
        items.push(crate::notice::NewItem {
            kind: t.kind,
            value: t.value.clone(),
            normalized: t.normalized.clone(),
            native_id: t.native_id.clone(),
            evidence: Vec::new(),
        });
    }
    if items.len() > Limits::default().max_items {
        return Err(Error::invalid(
            "flag_ids",
            "these flags have more targets than a notice may carry: accept fewer at once",
        ));
    }
    Ok(crate::notice::NewNotice {
        platform_id,
        category,
        taxonomy_version: acceptance.taxonomy_version.clone(),
        urgency: acceptance.urgency,
        legal_basis: acceptance.legal_basis.clone(),
        explanation: acceptance.explanation.clone(),
        items,
        territorial_scope: Vec::new(),
        may_notify_user: true,
        draft: false,
        trusted_flagger: false,
    })
}

/// When a flagger's accuracy calls its status into review: below
/// `threshold` of its reviewed flags upheld (accepted or merged), once it
/// has at least `min_reviewed` reviewed in the last `window_days` (the
/// `[flags]` settings; defaults 50%, 10, 365 days).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccuracyPolicy {
    pub threshold: f64,
    pub min_reviewed: u64,
    pub window_days: u32,
}

impl Default for AccuracyPolicy {
    fn default() -> Self {
        AccuracyPolicy {
            threshold: 0.5,
            min_reviewed: 10,
            window_days: 365,
        }
    }
}

impl AccuracyPolicy {
    /// A policy from settings: `threshold` a share from 0 to 1, at least
    /// one review, a window of 1 to 3,660 days.
    pub fn parse(threshold: f64, min_reviewed: u64, window_days: u32) -> Result<AccuracyPolicy> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(Error::invalid(
                "flags.accuracy_threshold",
                "give a share between 0 and 1 (0.5 is 50%)",
            ));
        }
        if min_reviewed == 0 {
            return Err(Error::invalid(
                "flags.accuracy_min_reviewed",
                "at least one reviewed flag is needed to judge accuracy",
            ));
        }
        if !(1..=3660).contains(&window_days) {
            return Err(Error::invalid(
                "flags.accuracy_window_days",
                "give a window between 1 and 3660 days",
            ));
        }
        Ok(AccuracyPolicy {
            threshold,
            min_reviewed,
            window_days,
        })
    }
}

/// A flagger's figures over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggerFigures {
    pub flags: u64,
    pub received: u64,
    pub accepted: u64,
    pub merged: u64,
    pub rejected: u64,
    /// Targets of its upheld flags in notices, by the platform's decision:
    /// removed, restricted or geo-blocked.
    pub items_actioned: u64,
    /// … rejected by the platform.
    pub items_rejected: u64,
    /// … any other final decision (not found, out of scope, …).
    pub items_other: u64,
    /// … still awaiting a decision.
    pub items_pending: u64,
}

impl FlaggerFigures {
    pub fn reviewed(&self) -> u64 {
        self.accepted + self.merged + self.rejected
    }

    /// Upheld share of reviewed flags; `None` before any review.
    pub fn acceptance_rate(&self) -> Option<f64> {
        let r = self.reviewed();
        (r > 0).then(|| (self.accepted + self.merged) as f64 / r as f64)
    }

    /// Actioned share of the platform's decisions on its items (removed,
    /// restricted, geo-blocked vs rejected); `None` before any.
    pub fn platform_action_rate(&self) -> Option<f64> {
        let d = self.items_actioned + self.items_rejected;
        (d > 0).then(|| self.items_actioned as f64 / d as f64)
    }
}

impl AccuracyPolicy {
    /// Whether the flagger's status should be reviewed.
    pub fn needs_review(&self, f: &FlaggerFigures) -> bool {
        f.reviewed() >= self.min_reviewed && f.acceptance_rate().is_some_and(|r| r < self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("t", "2017-03-29T09:00:00+07:00").expect("time")
    }

    fn input(targets: &[(&str, &str)]) -> FlagInput {
        FlagInput {
            targets: targets
                .iter()
                .map(|(k, v)| FlagTargetInput {
                    kind: (*k).into(),
                    value: (*v).into(),
                    native_id: None,
                })
                .collect(),
            category: "terrorism".into(),
            reasons: "propaganda".into(),
            evidence: vec![],
            contact: None,
        }
    }

    #[test]
    fn a_received_flag_takes_one_final_decision() {
        use FlagEvent::*;
        use FlagState::*;
        assert_eq!(Received.on(Accept), Ok(Accepted));
        assert_eq!(Received.on(Reject), Ok(Rejected));
        assert_eq!(Received.on(Merge), Ok(Merged));
        for s in [Accepted, Rejected, Merged] {
            for e in [Accept, Reject, Merge] {
                assert!(s.on(e).is_err(), "{s} then {e:?}");
            }
        }
    }

    #[test]
    fn targets_are_normalised_like_notice_items() {
        let t = Taxonomy::bundled();
        let f = NewFlag::parse(
            input(&[
                ("url", "HTTPS://T.ME/s/chan#x"),
                ("platform_channel", "@Chan"),
            ]),
            &t,
            FlagLimits::AGENCY,
            false,
            now(),
        )
        .expect("valid");
        assert_eq!(f.targets[0].normalized, "https://t.me/s/chan");
        assert_eq!(f.targets[1].normalized, "chan");
    }

    #[test]
    fn bad_flags_name_the_field() {
        let t = Taxonomy::bundled();
        let parse = |i: FlagInput, public| {
            NewFlag::parse(i, &t, FlagLimits::PUBLIC, public, now())
                .expect_err("bad")
                .to_string()
        };
        assert!(parse(input(&[("url", "ftp://x")]), true).starts_with("targets[0].value"));
        assert!(parse(input(&[("tweet", "x")]), true).starts_with("targets[0].kind"));
        assert!(parse(input(&[]), true).starts_with("targets"));
        let many: Vec<(&str, String)> = (0..11)
            .map(|i| ("domain", format!("d{i}.example")))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(parse(input(&many), true).contains("limit of 10"));
        let mut i = input(&[("domain", "a.example")]);
        i.category = "jaywalking".into();
        assert!(parse(i, true).starts_with("category"));
        let mut i = input(&[("domain", "a.example")]);
        i.contact = Some("me@example.org".into());
        assert!(parse(i.clone(), false).starts_with("contact"));
        assert!(NewFlag::parse(i, &t, FlagLimits::PUBLIC, true, now()).is_ok());
        let mut i = input(&[("domain", "a.example")]);
        i.contact = Some("not a contact".into());
        assert!(parse(i, true).starts_with("contact"));
    }

    fn candidate(sources: &[&str], allowance_secs: i64, trust: f64) -> QueueCandidate {
        QueueCandidate {
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            allowance_secs,
            trust,
            first_received: now(),
        }
    }

    #[test]
    fn the_platform_is_inferred_from_registered_domains_and_handles() {
        use crate::target::DomainName;
        let tg = crate::PartyId::new();
        let other = crate::PartyId::new();
        let platforms = [
            PlatformNames {
                id: tg,
                domains: vec![DomainName::parse("t.me").expect("d")],
                handles: vec!["telegram".into()],
            },
            PlatformNames {
                id: other,
                domains: vec![DomainName::parse("example.com").expect("d")],
                handles: vec![],
            },
        ];
        let t = |k: &str, v: &str| {
            let f = NewFlag::parse(
                input(&[(k, v)]),
                &Taxonomy::bundled(),
                FlagLimits::AGENCY,
                false,
                now(),
            )
            .expect("valid");
            f.targets[0].clone()
        };
        assert_eq!(
            platform_of(&t("url", "https://T.me/s/x"), &platforms),
            Some(tg)
        );
        assert_eq!(
            platform_of(&t("domain", "cdn.example.com"), &platforms),
            Some(other)
        );
        assert_eq!(
            platform_of(&t("platform_account", "@Telegram"), &platforms),
            Some(tg)
        );
        assert_eq!(
            platform_of(&t("platform_channel", "@nobody"), &platforms),
            None
        );
        let mixed = [t("url", "https://t.me/x"), t("domain", "example.com")];
        assert!(choose_platform(None, &mixed, &platforms).is_err());
        assert_eq!(choose_platform(Some(other), &mixed, &platforms), Ok(other));
    }

    #[test]
    fn low_accuracy_calls_for_review_once_there_is_enough_to_judge() {
        let p = AccuracyPolicy::default();
        let mut f = FlaggerFigures {
            accepted: 1,
            rejected: 4,
            ..Default::default()
        };
        assert_eq!(f.acceptance_rate(), Some(0.2));
        assert!(!p.needs_review(&f), "five reviews are too few to judge");
        f.rejected = 20;
        assert!(p.needs_review(&f));
        f.accepted = 30;
        assert!(!p.needs_review(&f));
        assert_eq!(FlaggerFigures::default().acceptance_rate(), None);
    }

    #[test]
    fn severity_then_trust_then_sources() {
        let entries = [
            candidate(&["a"], 86_400, 0.9),
            candidate(&["b"], 14_400, 0.2),
            candidate(&["c"], 14_400, 0.8),
            candidate(&["d", "e"], 14_400, 0.8),
        ];
        assert_eq!(order_queue(&entries, 10), vec![3, 2, 1, 0]);
    }

    #[test]
    fn a_flood_from_one_source_does_not_push_others_out() {
        let mut entries: Vec<QueueCandidate> = (0..50)
            .map(|_| candidate(&["flood"], 14_400, 0.9))
            .collect();
        entries.push(candidate(&["quiet"], 86_400, 0.1));
        let order = order_queue(&entries, 3);
        let first_page = &order[..5];
        assert!(first_page.contains(&50), "{first_page:?}");
        assert_eq!(order.len(), 51);
    }
}
