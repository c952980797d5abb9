//! Notices and their items: the decoder that turns a submitted notice into a
//! validated [`NewNotice`], and the two state machines.
//!
//! Notice: `draft → submitted → delivered → acknowledged → closed`, with
//! `escalated` and `disputed` on the way and `withdrawn` from any open state.
//! Item: `pending →` one decision. Anything else is refused with
//! [`Error::IllegalTransition`].

use serde::{Deserialize, Serialize};

use crate::party::bounded_text;
use crate::target::{ItemKind, Sha256Hex, Target};
use crate::taxonomy::{Taxonomy, truncate};
use crate::{Error, PartyId, Result, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Urgency {
    Urgent,
    Normal,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Urgent => "urgent",
            Urgency::Normal => "normal",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "urgent" => Ok(Urgency::Urgent),
            "normal" => Ok(Urgency::Normal),
            other => Err(Error::invalid(
                "urgency",
                format!(
                    "unknown urgency {:?}: use urgent or normal",
                    truncate(other, 32)
                ),
            )),
        }
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> $crate::Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => {
                        let all: Vec<&str> = vec![$($text),+];
                        Err($crate::Error::invalid($field, format!("unknown {} {:?}: use one of {}", $field, $crate::taxonomy::truncate(other, 32), all.join(", "))))
                    }
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;

string_enum!(
    /// Where a notice is in its life.
    NoticeState, "state" {
        Draft = "draft",
        Submitted = "submitted",
        Delivered = "delivered",
        Acknowledged = "acknowledged",
        Escalated = "escalated",
        Disputed = "disputed",
        Closed = "closed",
        Withdrawn = "withdrawn",
    }
);

string_enum!(
    /// Where an item is: pending, or the platform's decision on it.
    ItemState, "decision" {
        Pending = "pending",
        Removed = "removed",
        Restricted = "restricted",
        GeoBlocked = "geo_blocked",
        Rejected = "rejected",
        Disputed = "disputed",
        NotFound = "not_found",
        AlreadyRemoved = "already_removed",
        NotAccessible = "not_accessible",
        OutOfScope = "out_of_scope",
        // the authority withdrew the item (a dispute or an appeal upheld):
        // never a platform's decision
        Withdrawn = "withdrawn",
    }
);

/// What can happen to a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeEvent {
    Submit,
    Deliver,
    Acknowledge,
    Escalate,
    Dispute,
    /// The authority answered every open dispute.
    ResolveDisputes,
    Close,
    Withdraw,
}

impl NoticeEvent {
    fn verb(self) -> &'static str {
        match self {
            NoticeEvent::Submit => "submit",
            NoticeEvent::Deliver => "deliver",
            NoticeEvent::Acknowledge => "acknowledge",
            NoticeEvent::Escalate => "escalate",
            NoticeEvent::Dispute => "dispute",
            NoticeEvent::ResolveDisputes => "resolve disputes on",
            NoticeEvent::Close => "close",
            NoticeEvent::Withdraw => "withdraw",
        }
    }
}

impl NoticeState {
    /// Closed and withdrawn notices never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, NoticeState::Closed | NoticeState::Withdrawn)
    }

    /// Open notices count for deduplication and deadlines.
    pub fn is_open(self) -> bool {
        !self.is_terminal() && self != NoticeState::Draft
    }

    /// The notice state machine.
    pub fn on(self, event: NoticeEvent) -> Result<NoticeState> {
        use NoticeEvent as E;
        use NoticeState as S;
        let next = match (self, event) {
            (S::Draft, E::Submit) => Some(S::Submitted),
            (S::Submitted, E::Deliver) => Some(S::Delivered),
            (S::Submitted | S::Delivered | S::Escalated, E::Acknowledge) => Some(S::Acknowledged),
            (S::Submitted | S::Delivered | S::Acknowledged, E::Escalate) => Some(S::Escalated),
            (
                S::Submitted | S::Delivered | S::Acknowledged | S::Escalated | S::Disputed,
                E::Dispute,
            ) => Some(S::Disputed),
            (S::Disputed, E::ResolveDisputes) => Some(S::Acknowledged),
            (
                S::Submitted | S::Delivered | S::Acknowledged | S::Escalated | S::Disputed,
                E::Close,
            ) => Some(S::Closed),
            (s, E::Withdraw) if !s.is_terminal() => Some(S::Withdrawn),
            _ => None,
        };
        next.ok_or_else(|| Error::IllegalTransition {
            entity: "notice",
            state: self.as_str().to_owned(),
            action: event.verb().to_owned(),
        })
    }

    /// The state a notice moves to after its items changed: closed when every
    /// item has a final decision, disputed while any item is disputed.
    pub fn after_items(self, items: &[ItemState]) -> Result<NoticeState> {
        if items.iter().all(|s| s.is_final()) {
            self.on(NoticeEvent::Close)
        } else if items.contains(&ItemState::Disputed) && self != NoticeState::Disputed {
            self.on(NoticeEvent::Dispute)
        } else {
            Ok(self)
        }
    }
}

impl ItemState {
    /// A final decision closes the item for good.
    pub fn is_final(self) -> bool {
        !matches!(self, ItemState::Pending | ItemState::Disputed)
    }

    /// Whether this decision must carry a reason.
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            ItemState::Rejected
                | ItemState::Disputed
                | ItemState::OutOfScope
                | ItemState::NotAccessible
                | ItemState::GeoBlocked
                | ItemState::Restricted
        )
    }

    /// The item state machine: a pending or disputed item takes a decision;
    /// a final decision is final.
    pub fn decide(self, decision: ItemState) -> Result<ItemState> {
        let ok = match (self, decision) {
            (_, ItemState::Pending | ItemState::Withdrawn) => false,
            (ItemState::Pending, _) => true,
            (ItemState::Disputed, d) => d != ItemState::Disputed,
            _ => false,
        };
        if ok {
            Ok(decision)
        } else {
            Err(Error::IllegalTransition {
                entity: "item",
                state: self.as_str().to_owned(),
                action: format!("decide {}", decision.as_str()),
            })
        }
    }
}

/// Limits on a notice's size. Generous for real cases (the 2017 case had 55
/// channels) and small enough that one request cannot exhaust the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_items: usize,
    pub max_evidence_per_item: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 1000,
            max_evidence_per_item: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalBasisInput {
    /// Statute reference, e.g. "Law 11/2008 art. 40(2b)".
    pub reference: String,
    /// The text of the provision, as it should be shown to the platform.
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceInput {
    /// SHA-256 of the screenshot or archived copy (64 hex digits).
    pub sha256: String,
    pub description: String,
    /// RFC 3339 time the evidence was captured.
    pub captured_at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemInput {
    /// url, domain, platform_account, platform_channel or content_hash
    pub kind: String,
    /// The target as the issuer wrote it (URL, name, handle or hash).
    pub value: String,
    /// The platform's stable id of the object (e.g. channel id and message
    /// id), which survives a change of handle.
    #[serde(default)]
    pub native_id: Option<String>,
    #[serde(default)]
    pub evidence: Vec<EvidenceInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeInput {
    pub platform_id: String,
    pub category: String,
    pub urgency: String,
    pub legal_basis: LegalBasisInput,
    pub explanation: String,
    pub items: Vec<ItemInput>,
    /// ISO 3166-1 alpha-2 codes where the content is unlawful; empty means
    /// the issuing authority's own jurisdiction.
    #[serde(default)]
    pub territorial_scope: Vec<String>,
    /// Whether the platform may tell the affected user (some investigations
    /// forbid it). Defaults to true.
    #[serde(default)]
    pub may_notify_user: Option<bool>,
    /// Keep the notice as a draft instead of submitting it.
    #[serde(default)]
    pub draft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub sha256: Sha256Hex,
    pub description: String,
    pub captured_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub kind: ItemKind,
    pub value: String,
    pub normalized: String,
    pub native_id: Option<String>,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalBasis {
    pub reference: String,
    pub text: String,
}

impl LegalBasis {
    /// A notice's legal basis and explanation (a flag review's too).
    pub fn parse(input: &LegalBasisInput, explanation: &str) -> Result<(LegalBasis, String)> {
        let basis = LegalBasis {
            reference: bounded_text("legal_basis.reference", &input.reference, 1, 300)?,
            text: bounded_text("legal_basis.text", &input.text, 1, 20_000)?,
        };
        Ok((basis, bounded_text("explanation", explanation, 1, 20_000)?))
    }
}

/// A notice that has passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    pub platform_id: PartyId,
    pub category: String,
    pub taxonomy_version: String,
    pub urgency: Urgency,
    pub legal_basis: LegalBasis,
    pub explanation: String,
    pub items: Vec<NewItem>,
    pub territorial_scope: Vec<String>,
    pub may_notify_user: bool,
    pub draft: bool,
    /// From flags a confirmed trusted-flagger grant with the platform
    /// covers: marked in the signed document, first in the inbox, the
    /// policy's shorter deadline. Never set by the notice decoder.
    pub trusted_flagger: bool,
}

impl NewNotice {
    /// Decode a submitted notice. `now` bounds evidence capture times (no
    /// evidence from the future).
    pub fn parse(
        input: NoticeInput,
        taxonomy: &Taxonomy,
        limits: Limits,
        now: Timestamp,
    ) -> Result<Self> {
        let platform_id = PartyId::parse(input.platform_id.trim())
            .map_err(|_| Error::invalid("platform_id", "not a valid party id"))?;
        let category = taxonomy.category(&input.category)?.id.clone();
        let urgency = Urgency::parse(&input.urgency)?;
        let (legal_basis, explanation) = LegalBasis::parse(&input.legal_basis, &input.explanation)?;
        if input.items.is_empty() {
            return Err(Error::invalid("items", "a notice needs at least one item"));
        }
        if input.items.len() > limits.max_items {
            return Err(Error::invalid(
                "items",
                format!(
                    "{} items is more than the limit of {}: split the notice",
                    input.items.len(),
                    limits.max_items
                ),
            ));
        }
        let mut items: Vec<NewItem> = Vec::with_capacity(input.items.len());
        for (i, item) in input.items.into_iter().enumerate() {
            let at = format!("items[{i}]");
            let parsed = parse_item(item, limits, now).map_err(|e| e.within(&at))?;
            if let Some(j) = items
                .iter()
                .position(|o| o.kind == parsed.kind && o.normalized == parsed.normalized)
            {
                return Err(Error::invalid(
                    at,
                    format!("repeats items[{j}] ({})", parsed.normalized),
                ));
            }
            items.push(parsed);
        }
        if input.territorial_scope.len() > 250 {
            return Err(Error::invalid("territorial_scope", "too many countries"));
        }
        let mut territorial_scope = Vec::new();
        for (i, c) in input.territorial_scope.iter().enumerate() {
            let c = c.trim();
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(Error::invalid(
                    format!("territorial_scope[{i}]"),
                    "use ISO 3166-1 alpha-2 country codes, e.g. ID",
                ));
            }
            let c = c.to_ascii_uppercase();
            if !territorial_scope.contains(&c) {
                territorial_scope.push(c);
            }
        }
        Ok(NewNotice {
            platform_id,
            category,
            taxonomy_version: taxonomy.version.clone(),
            urgency,
            legal_basis,
            explanation,
            items,
            territorial_scope,
            may_notify_user: input.may_notify_user.unwrap_or(true),
            draft: input.draft,
            trusted_flagger: false,
        })
    }
}

pub(crate) fn parse_item(item: ItemInput, limits: Limits, now: Timestamp) -> Result<NewItem> {
    let kind = ItemKind::parse(&item.kind)?;
    let target = Target::parse(kind, &item.value).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("value", message),
        other => other,
    })?;
    let native_id = item
        .native_id
        .map(|n| bounded_text("native_id", &n, 1, 256))
        .transpose()?;
    if native_id.is_some() && !kind.is_platform_object() && kind != ItemKind::Url {
        return Err(Error::invalid(
            "native_id",
            "only platform accounts, channels and URLs carry a native id",
        ));
    }
    if item.evidence.len() > limits.max_evidence_per_item {
        return Err(Error::invalid(
            "evidence",
            format!(
                "at most {} evidence entries per item",
                limits.max_evidence_per_item
            ),
        ));
    }
    let mut evidence = Vec::with_capacity(item.evidence.len());
    for (i, ev) in item.evidence.into_iter().enumerate() {
        let at = format!("evidence[{i}]");
        let sha256 = Sha256Hex::parse(&ev.sha256).map_err(|e| e.within(&at))?;
        let description =
            bounded_text("description", &ev.description, 1, 2000).map_err(|e| e.within(&at))?;
        let captured_at =
            Timestamp::parse("captured_at", ev.captured_at.trim()).map_err(|e| e.within(&at))?;
        // allow a little clock skew between the capturing machine and ours
        if captured_at > now.plus_secs(300) {
            return Err(Error::invalid(
                format!("{at}.captured_at"),
                "evidence cannot be captured in the future",
            ));
        }
        evidence.push(Evidence {
            sha256,
            description,
            captured_at,
        });
    }
    Ok(NewItem {
        kind,
        value: item.value.trim().to_owned(),
        normalized: target.normalized,
        native_id,
        evidence,
    })
}

/// A platform's decision on one item, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionInput {
    /// removed, restricted, geo_blocked, rejected, disputed, not_found,
    /// already_removed, not_accessible or out_of_scope
    pub decision: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub decision: ItemState,
    pub reason: Option<String>,
}

impl Decision {
    pub fn parse(input: DecisionInput) -> Result<Self> {
        let decision = ItemState::parse(&input.decision)?;
        if decision == ItemState::Pending {
            return Err(Error::invalid("decision", "pending is not a decision"));
        }
        if decision == ItemState::Withdrawn {
            return Err(Error::invalid(
                "decision",
                "withdrawn is the authority's answer, not a platform's decision: dispute the item instead",
            ));
        }
        let reason = input
            .reason
            .filter(|r| !r.trim().is_empty())
            .map(|r| bounded_text("reason", &r, 1, 4000))
            .transpose()?;
        if decision.needs_reason() && reason.is_none() {
            return Err(Error::invalid(
                "reason",
                format!("a {} decision needs a reason", decision.as_str()),
            ));
        }
        Ok(Decision { decision, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NoticeInput {
        NoticeInput {
            platform_id: PartyId::new().to_string(),
            category: "terrorism".into(),
            urgency: "urgent".into(),
            legal_basis: LegalBasisInput {
                reference: "Law 11/2008 art. 40".into(),
                text: "The government protects the public interest…".into(),
            },
            explanation: "Channel distributes propaganda".into(),
            items: vec![ItemInput {
                kind: "platform_channel".into(),
                value: "@Radical".into(),
                native_id: Some("-1001234567890".into()),
                evidence: vec![EvidenceInput {
                    sha256: "AB".repeat(32),
                    description: "screenshot".into(),
                    captured_at: "2017-03-29T10:00:00+07:00".into(),
                }],
            }],
            territorial_scope: vec!["id".into()],
            may_notify_user: None,
            draft: false,
        }
    }

    fn parse(i: NoticeInput) -> Result<NewNotice> {
        NewNotice::parse(
            i,
            &Taxonomy::bundled(),
            Limits::default(),
            Timestamp::from_unix_millis(1_700_000_000_000),
        )
    }

    #[test]
    fn decodes_a_valid_notice() {
        let n = parse(input()).expect("valid");
        assert_eq!(n.items[0].normalized, "radical");
        assert_eq!(n.items[0].evidence[0].sha256.as_str(), "ab".repeat(32));
        assert_eq!(n.territorial_scope, vec!["ID"]);
        assert!(n.may_notify_user);
    }

    #[test]
    fn every_error_names_its_field() {
        type Mutate = fn(&mut NoticeInput);
        let cases: Vec<(Mutate, &str)> = vec![
            (|i| i.platform_id = "x".into(), "platform_id"),
            (|i| i.category = "jaywalking".into(), "category"),
            (|i| i.urgency = "asap".into(), "urgency"),
            (|i| i.explanation = " ".into(), "explanation"),
            (
                |i| i.legal_basis.reference = "".into(),
                "legal_basis.reference",
            ),
            (|i| i.items.clear(), "items"),
            (|i| i.items[0].kind = "tweet".into(), "items[0].kind"),
            (|i| i.items[0].value = "@".into(), "items[0].value"),
            (
                |i| i.items[0].evidence[0].sha256 = "abc".into(),
                "items[0].evidence[0].sha256",
            ),
            (
                |i| i.items[0].evidence[0].captured_at = "2999-01-01T00:00:00Z".into(),
                "items[0].evidence[0].captured_at",
            ),
            (
                |i| {
                    let dup = i.items[0].clone();
                    i.items.push(ItemInput {
                        value: "@RADICAL".into(),
                        ..dup
                    })
                },
                "items[1]",
            ),
            (
                |i| i.territorial_scope = vec!["Indonesia".into()],
                "territorial_scope[0]",
            ),
        ];
        for (mutate, field) in cases {
            let mut i = input();
            mutate(&mut i);
            match parse(i) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected an error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_items_is_refused() {
        let mut i = input();
        let template = i.items[0].clone();
        i.items = (0..1001)
            .map(|n| ItemInput {
                value: format!("@c{n}"),
                ..template.clone()
            })
            .collect();
        assert!(matches!(parse(i), Err(Error::Invalid { field, .. }) if field == "items"));
    }

    #[test]
    fn notice_state_machine() {
        use NoticeEvent as E;
        use NoticeState as S;
        let legal = [
            (S::Draft, E::Submit, S::Submitted),
            (S::Submitted, E::Deliver, S::Delivered),
            (S::Delivered, E::Acknowledge, S::Acknowledged),
            (S::Submitted, E::Acknowledge, S::Acknowledged),
            (S::Acknowledged, E::Escalate, S::Escalated),
            (S::Escalated, E::Acknowledge, S::Acknowledged),
            (S::Acknowledged, E::Dispute, S::Disputed),
            (S::Disputed, E::ResolveDisputes, S::Acknowledged),
            (S::Acknowledged, E::Close, S::Closed),
            (S::Draft, E::Withdraw, S::Withdrawn),
            (S::Escalated, E::Withdraw, S::Withdrawn),
        ];
        for (from, ev, to) in legal {
            assert_eq!(from.on(ev), Ok(to), "{from} {ev:?}");
        }
        let illegal = [
            (S::Draft, E::Acknowledge),
            (S::Draft, E::Deliver),
            (S::Submitted, E::Submit),
            (S::Acknowledged, E::Acknowledge),
            (S::Delivered, E::Deliver),
            (S::Closed, E::Withdraw),
            (S::Withdrawn, E::Acknowledge),
            (S::Closed, E::Escalate),
            (S::Draft, E::Close),
        ];
        for (from, ev) in illegal {
            assert!(from.on(ev).is_err(), "{from} {ev:?} should be refused");
        }
    }

    #[test]
    fn item_state_machine() {
        assert_eq!(
            ItemState::Pending.decide(ItemState::Removed),
            Ok(ItemState::Removed)
        );
        assert_eq!(
            ItemState::Disputed.decide(ItemState::Removed),
            Ok(ItemState::Removed)
        );
        assert!(ItemState::Removed.decide(ItemState::Rejected).is_err());
        assert!(ItemState::Pending.decide(ItemState::Pending).is_err());
        assert!(ItemState::Disputed.decide(ItemState::Disputed).is_err());
    }

    #[test]
    fn notice_follows_its_items() {
        use ItemState as I;
        let s = NoticeState::Acknowledged;
        assert_eq!(s.after_items(&[I::Removed, I::Pending]), Ok(s));
        assert_eq!(
            s.after_items(&[I::Removed, I::Disputed]),
            Ok(NoticeState::Disputed)
        );
        assert_eq!(
            s.after_items(&[I::Removed, I::Rejected]),
            Ok(NoticeState::Closed)
        );
    }

    #[test]
    fn decisions_that_need_reasons() {
        let d = |decision: &str, reason: Option<&str>| {
            Decision::parse(DecisionInput {
                decision: decision.into(),
                reason: reason.map(Into::into),
            })
        };
        assert!(d("removed", None).is_ok());
        assert!(d("rejected", None).is_err());
        assert!(d("rejected", Some("  ")).is_err());
        assert!(d("rejected", Some("lawful satire")).is_ok());
        assert!(d("pending", None).is_err());
        assert!(d("deleted", None).is_err());
    }
}
