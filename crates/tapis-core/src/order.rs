//! Blocking orders: the last, approved step. An order names exact DNS
//! targets, one action, its legal basis and a bounded life (effective,
//! review and expiry times), and moves through a four-eyes state machine:
//! `draft → approved → scheduled → in_force → expired | lifted`.
//!
//! This module also decides what the Response Policy Zone says for an
//! owner name when several in-force orders cover it, and computes an
//! order's blast radius.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::notice::{LegalBasis, LegalBasisInput};
use crate::party::bounded_text;
use crate::target::DomainName;
use crate::taxonomy::{Taxonomy, truncate};
use crate::{Error, Result, Timestamp};

/// What the RPZ tells a resolver to do for a covered name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrderAction {
    /// An exception: answer normally even if another order covers the name.
    Passthru,
    /// Drop the query (no answer).
    Drop,
    /// The name does not exist.
    Nxdomain,
    /// The name exists but has no data.
    Nodata,
    /// Answer with the block page host, which explains the order.
    WalledGarden,
}

impl OrderAction {
    pub const ALL: [OrderAction; 5] = [
        OrderAction::Passthru,
        OrderAction::Drop,
        OrderAction::Nxdomain,
        OrderAction::Nodata,
        OrderAction::WalledGarden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Passthru => "passthru",
            OrderAction::Drop => "drop",
            OrderAction::Nxdomain => "nxdomain",
            OrderAction::Nodata => "nodata",
            OrderAction::WalledGarden => "walled_garden",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        OrderAction::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "action",
                format!(
                    "unknown action {:?}: use nxdomain, nodata, walled_garden, drop or passthru",
                    truncate(s, 32)
                ),
            )
        })
    }

    /// When two in-force orders name the same owner, the smaller rank wins:
    /// an exception beats any block, and among blocks the one that tells
    /// the user most (walled garden) loses to none, so the order is:
    /// passthru, walled_garden, nxdomain, nodata, drop. This is the one
    /// definition: the store's SQL ranks are generated from it.
    pub fn rank(self) -> u8 {
        match self {
            OrderAction::Passthru => 0,
            OrderAction::WalledGarden => 1,
            OrderAction::Nxdomain => 2,
            OrderAction::Nodata => 3,
            OrderAction::Drop => 4,
        }
    }

    /// The RPZ CNAME target for this action (relative to nothing: absolute
    /// names with the trailing dot).
    pub fn rpz_target(self, block_page_host: &str) -> String {
        match self {
            OrderAction::Passthru => "rpz-passthru.".into(),
            OrderAction::Drop => "rpz-drop.".into(),
            OrderAction::Nxdomain => ".".into(),
            OrderAction::Nodata => "*.".into(),
            OrderAction::WalledGarden => format!("{}.", block_page_host.trim_end_matches('.')),
        }
    }
}

/// Of several actions for one owner name, the one the zone carries.
pub fn effective_action(actions: impl IntoIterator<Item = OrderAction>) -> Option<OrderAction> {
    actions.into_iter().min_by_key(|a| a.rank())
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrderState {
    Draft,
    Approved,
    Scheduled,
    InForce,
    Expired,
    Lifted,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Draft => "draft",
            OrderState::Approved => "approved",
            OrderState::Scheduled => "scheduled",
            OrderState::InForce => "in_force",
            OrderState::Expired => "expired",
            OrderState::Lifted => "lifted",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        [
            OrderState::Draft,
            OrderState::Approved,
            OrderState::Scheduled,
            OrderState::InForce,
            OrderState::Expired,
            OrderState::Lifted,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| {
            Error::invalid(
                "state",
                format!(
                    "unknown order state {:?}: use draft, approved, scheduled, in_force, expired or lifted",
                    truncate(s, 32)
                ),
            )
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OrderState::Expired | OrderState::Lifted)
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// An approver (not the proposer) approves.
    Approve,
    /// Approved and waiting for its effective time.
    Schedule,
    /// Its effective time came.
    Activate,
    /// Its expiry came (or its review date passed without a review).
    Expire,
    /// Lifted early, with a reason.
    Lift,
}

impl OrderState {
    pub fn on(self, event: OrderEvent) -> Result<OrderState> {
        use OrderEvent as E;
        use OrderState as S;
        let next = match (self, event) {
            (S::Draft, E::Approve) => Some(S::Approved),
            (S::Approved, E::Schedule) => Some(S::Scheduled),
            (S::Approved | S::Scheduled, E::Activate) => Some(S::InForce),
            (S::Approved | S::Scheduled | S::InForce, E::Expire) => Some(S::Expired),
            (S::Draft | S::Approved | S::Scheduled | S::InForce, E::Lift) => Some(S::Lifted),
            _ => None,
        };
        next.ok_or_else(|| Error::IllegalTransition {
            entity: "order",
            state: self.as_str().to_owned(),
            action: match event {
                E::Approve => "approve",
                E::Schedule => "schedule",
                E::Activate => "activate",
                E::Expire => "expire",
                E::Lift => "lift",
            }
            .to_owned(),
        })
    }
}

/// One target as submitted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetInput {
    /// A domain name (e.g. `judi-online.example`).
    pub name: String,
    /// Also cover every name under it (`*.name` in the zone).
    #[serde(default)]
    pub include_subdomains: bool,
}

/// An order as submitted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderInput {
    pub targets: Vec<TargetInput>,
    /// nxdomain, nodata, walled_garden, drop or passthru (an exception)
    pub action: String,
    pub category: String,
    pub legal_basis: LegalBasisInput,
    /// Why a network block is necessary here (what was tried before).
    #[serde(default)]
    pub explanation: Option<String>,
    /// RFC 3339 times. An order needs an end and a review date.
    pub effective_at: String,
    pub expires_at: String,
    pub review_at: String,
    /// Notices this order follows from.
    #[serde(default)]
    pub notices: Vec<String>,
    /// The escalation this order answers.
    #[serde(default)]
    pub escalation_id: Option<String>,
    /// An emergency order may go in force before its independent
    /// authorisation (where it needs one) and before the affected platform's
    /// lead time; it lapses unless authorised within the policy's limit.
    #[serde(default)]
    pub emergency: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTarget {
    pub name: DomainName,
    pub include_subdomains: bool,
}

/// A validated order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub targets: Vec<OrderTarget>,
    pub action: OrderAction,
    pub category: String,
    pub legal_basis: LegalBasis,
    pub explanation: Option<String>,
    pub effective_at: Timestamp,
    pub expires_at: Timestamp,
    pub review_at: Timestamp,
    pub notices: Vec<crate::NoticeId>,
    pub escalation_id: Option<String>,
    pub emergency: bool,
}

/// Bounds on an order.
#[derive(Debug, Clone, Copy)]
pub struct OrderLimits {
    /// Most targets in one order through the API (imports may carry more).
    pub max_targets: usize,
    /// Longest time from effect to expiry; renewal is a new decision.
    pub max_duration_secs: i64,
}

impl Default for OrderLimits {
    fn default() -> Self {
        OrderLimits {
            max_targets: 100_000,
            max_duration_secs: 180 * 86_400,
        }
    }
}

impl NewOrder {
    pub fn parse(
        input: OrderInput,
        taxonomy: &Taxonomy,
        limits: OrderLimits,
        now: Timestamp,
    ) -> Result<NewOrder> {
        if input.targets.is_empty() {
            return Err(Error::invalid(
                "targets",
                "an order needs at least one target",
            ));
        }
        if input.targets.len() > limits.max_targets {
            return Err(Error::invalid(
                "targets",
                format!(
                    "{} targets is more than {}; import large lists with tapis import",
                    input.targets.len(),
                    limits.max_targets
                ),
            ));
        }
        let mut seen = BTreeMap::new();
        let mut targets = Vec::with_capacity(input.targets.len());
        for (i, t) in input.targets.into_iter().enumerate() {
            let name =
                DomainName::parse(&t.name).map_err(|e| e.within(&format!("targets[{i}]")))?;
            check_blockable(&name).map_err(|e| e.within(&format!("targets[{i}]")))?;
            if let Some(j) = seen.insert(name.clone(), i) {
                return Err(Error::invalid(
                    format!("targets[{i}]"),
                    format!("repeats targets[{j}] ({name})"),
                ));
            }
            targets.push(OrderTarget {
                name,
                include_subdomains: t.include_subdomains,
            });
        }
        let action = OrderAction::parse(&input.action)?;
        let category = taxonomy.category(&input.category)?.id.clone();
        let legal_basis = LegalBasis {
            reference: bounded_text(
                "legal_basis.reference",
                &input.legal_basis.reference,
                1,
                300,
            )?,
            text: bounded_text("legal_basis.text", &input.legal_basis.text, 1, 20_000)?,
        };
        let explanation = input
            .explanation
            .filter(|e| !e.trim().is_empty())
            .map(|e| bounded_text("explanation", &e, 1, 20_000))
            .transpose()?;
        let effective_at = Timestamp::parse("effective_at", input.effective_at.trim())?;
        let expires_at = Timestamp::parse("expires_at", input.expires_at.trim())?;
        let review_at = Timestamp::parse("review_at", input.review_at.trim())?;
        if expires_at <= effective_at {
            return Err(Error::invalid(
                "expires_at",
                "an order must expire after it takes effect",
            ));
        }
        if review_at <= effective_at || review_at > expires_at {
            return Err(Error::invalid(
                "review_at",
                "the review date must fall after the effective time and no later than the expiry",
            ));
        }
        if expires_at.unix_millis() - effective_at.unix_millis() > limits.max_duration_secs * 1000 {
            return Err(Error::invalid(
                "expires_at",
                format!(
                    "an order may last at most {} days; renew it with a new decision",
                    limits.max_duration_secs / 86_400
                ),
            ));
        }
        if expires_at <= now {
            return Err(Error::invalid("expires_at", "the expiry is already past"));
        }
        let mut notices = Vec::new();
        for (i, n) in input.notices.iter().enumerate() {
            notices.push(
                crate::NoticeId::parse(n.trim())
                    .map_err(|_| Error::invalid(format!("notices[{i}]"), "not a notice id"))?,
            );
        }
        let escalation_id = input
            .escalation_id
            .map(|e| {
                let e = e.trim().to_owned();
                if e.len() == 36 && e.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                    Ok(e)
                } else {
                    Err(Error::invalid("escalation_id", "not an escalation id"))
                }
            })
            .transpose()?;
        Ok(NewOrder {
            targets,
            action,
            category,
            legal_basis,
            explanation,
            effective_at,
            expires_at,
            review_at,
            notices,
            escalation_id,
            emergency: input.emergency,
        })
    }
}

/// The label under which every zone record's explanation lives
/// (`<owner>._tapis.<zone>`): a target may never reach into it.
pub const EXPLANATION_LABEL: &str = "_tapis";

/// Refuse a name that would mean something other than "this name" inside a
/// Response Policy Zone.
///
/// An RPZ owner `<target>.<zone>` is a QNAME trigger only while no label
/// says otherwise: `…rpz-ip`, `…rpz-client-ip`, `…rpz-nsdname` and
/// `…rpz-nsip` turn the record into a trigger on answer addresses, client
/// networks or name servers (one such "name" can cut whole networks off
/// DNS), and the spec reserves the `rpz-` prefix for more. A label
/// `_tapis` reaches the explanation subtree, where a policy record would
/// sit beside the explanation TXT and break the zone for secondaries. An
/// order's targets are names only; IP blocking, when it comes, is its own
/// target kind with its own due-process rules.
pub fn check_blockable(name: &DomainName) -> Result<()> {
    for label in name.as_str().split('.') {
        if label.starts_with("rpz-") {
            return Err(Error::invalid(
                "name",
                format!(
                    "label {label:?} is reserved by the Response Policy Zone format (triggers on \
                     addresses, clients or name servers): an order's targets are domain names only"
                ),
            ));
        }
        if label == EXPLANATION_LABEL {
            return Err(Error::invalid(
                "name",
                format!("label {label:?} is tapis's explanation subtree, not a name to block"),
            ));
        }
    }
    Ok(())
}

/// The zone owner names an order's target covers: the name itself and,
/// with subdomains, `*.name`.
pub fn owners(target: &OrderTarget) -> Vec<String> {
    let mut v = vec![target.name.as_str().to_owned()];
    if target.include_subdomains {
        v.push(format!("*.{}", target.name.as_str()));
    }
    v
}

/// Whether an owner (`name` or `*.name`) covers a query name.
pub fn owner_covers(owner: &str, qname: &str) -> bool {
    match owner.strip_prefix("*.") {
        Some(base) => {
            qname.len() > base.len()
                && qname.ends_with(base)
                && qname.as_bytes()[qname.len() - base.len() - 1] == b'.'
        }
        None => owner == qname,
    }
}

/// The owners that could cover `qname`, most specific first: the name
/// itself, then `*.parent` for every parent (RPZ: exact beats wildcard, and a
/// longer wildcard beats a shorter one).
pub fn candidate_owners(qname: &str) -> Vec<String> {
    let mut v = vec![qname.to_owned()];
    let mut rest = qname;
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') {
            // `*.tld` is not a name any order covers (a TLD is not a target)
            break;
        }
        v.push(format!("*.{parent}"));
        rest = parent;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        use OrderEvent as E;
        use OrderState as S;
        assert_eq!(S::Draft.on(E::Approve), Ok(S::Approved));
        assert_eq!(S::Approved.on(E::Schedule), Ok(S::Scheduled));
        assert_eq!(S::Scheduled.on(E::Activate), Ok(S::InForce));
        assert_eq!(S::InForce.on(E::Expire), Ok(S::Expired));
        assert_eq!(S::InForce.on(E::Lift), Ok(S::Lifted));
        for (s, e) in [
            (S::Draft, E::Activate),
            (S::InForce, E::Approve),
            (S::Expired, E::Lift),
            (S::Lifted, E::Activate),
            (S::Draft, E::Expire),
        ] {
            assert!(s.on(e).is_err(), "{s:?} {e:?}");
        }
    }

    #[test]
    fn exceptions_win_then_the_most_explanatory_block() {
        use OrderAction::*;
        assert_eq!(effective_action([Nxdomain, Passthru, Drop]), Some(Passthru));
        assert_eq!(
            effective_action([Nxdomain, WalledGarden]),
            Some(WalledGarden)
        );
        assert_eq!(effective_action([Drop, Nodata]), Some(Nodata));
        assert_eq!(effective_action([]), None);
        assert_eq!(Nxdomain.rpz_target("block.example"), ".");
        assert_eq!(Nodata.rpz_target("x"), "*.");
        assert_eq!(
            WalledGarden.rpz_target("block.tapis.example."),
            "block.tapis.example."
        );
    }

    #[test]
    fn coverage() {
        assert!(owner_covers("*.example.com", "a.b.example.com"));
        assert!(!owner_covers("*.example.com", "example.com"));
        assert!(!owner_covers("*.example.com", "badexample.com"));
        assert!(owner_covers("example.com", "example.com"));
        assert_eq!(
            candidate_owners("a.b.example.com"),
            ["a.b.example.com", "*.b.example.com", "*.example.com"]
        );
        assert_eq!(candidate_owners("example.com"), ["example.com"]);
    }

    fn input() -> OrderInput {
        OrderInput {
            targets: vec![TargetInput {
                name: "Judi.Example".into(),
                include_subdomains: true,
            }],
            action: "nxdomain".into(),
            category: "gambling".into(),
            legal_basis: LegalBasisInput {
                reference: "Law 11/2008 art. 40(2b)".into(),
                text: "…".into(),
            },
            explanation: None,
            effective_at: "2017-07-14T11:30:00+07:00".into(),
            expires_at: "2017-08-14T11:30:00+07:00".into(),
            review_at: "2017-08-01T11:30:00+07:00".into(),
            notices: vec![],
            escalation_id: None,
            emergency: false,
        }
    }

    fn parse(i: OrderInput) -> Result<NewOrder> {
        NewOrder::parse(
            i,
            &Taxonomy::bundled(),
            OrderLimits::default(),
            Timestamp::parse("t", "2017-07-01T00:00:00Z").expect("t"),
        )
    }

    #[test]
    fn targets_are_names_never_triggers() {
        for hostile in [
            "32.1.0.0.127.rpz-client-ip",
            "1.0.0.0.0.rpz-ip",
            "com.rpz-nsdname",
            "32.1.0.0.127.rpz-nsip",
            "ns.example.rpz-nsdname",
            "victim.example._tapis",
            "x._tapis.victim.example",
            "rpz-drop.example",
            "a.rpz-passthru.example",
        ] {
            let mut i = input();
            i.targets[0].name = hostile.into();
            let err = parse(i).expect_err(hostile);
            let text = err.to_string();
            assert!(text.contains("targets[0]"), "{hostile}: {text}");
            assert!(
                text.contains("rpz") || text.contains("_tapis"),
                "{hostile}: {text}"
            );
        }
        for fine in [
            "rpz.example",
            "my-rpz-site.example",
            "tapis.example",
            "_dmarc.example.com",
        ] {
            let mut i = input();
            i.targets[0].name = fine.into();
            assert!(parse(i).is_ok(), "{fine} is an ordinary name");
        }
    }

    #[test]
    fn decodes_and_bounds_orders() {
        let o = parse(input()).expect("valid");
        assert_eq!(o.targets[0].name.as_str(), "judi.example");
        assert_eq!(owners(&o.targets[0]), ["judi.example", "*.judi.example"]);
        type Mutate = fn(&mut OrderInput);
        let cases: Vec<(Mutate, &str)> = vec![
            (|i| i.targets.clear(), "targets"),
            (
                |i| i.targets[0].name = "*.x.example".into(),
                "targets[0].domain",
            ),
            (
                |i| {
                    i.targets.push(TargetInput {
                        name: "judi.example.".into(),
                        include_subdomains: false,
                    })
                },
                "targets[1]",
            ),
            (|i| i.action = "block".into(), "action"),
            (
                |i| i.expires_at = "2017-07-14T11:30:00+07:00".into(),
                "expires_at",
            ),
            (|i| i.review_at = "2017-09-01T00:00:00Z".into(), "review_at"),
            (
                |i| i.expires_at = "2018-07-14T11:30:00+07:00".into(),
                "expires_at",
            ),
            (|i| i.notices = vec!["nope".into()], "notices[0]"),
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
}

/// The DNS name an item of a notice could be blocked by, if any. Only
/// domains and URLs name something DNS can act on; a channel, an account or
/// a content hash cannot be removed by DNS, and blocking the platform that
/// hosts it is a separate decision (never derived from the item).
pub fn dns_target_of(kind: crate::target::ItemKind, normalized: &str) -> Option<DomainName> {
    use crate::target::{ItemKind, NormalUrl};
    match kind {
        ItemKind::Domain => DomainName::parse(normalized).ok(),
        ItemKind::Url => NormalUrl::parse(normalized).ok().and_then(|u| u.domain()),
        _ => None,
    }
}

#[cfg(test)]
mod item_tests {
    use super::*;
    use crate::target::ItemKind;

    #[test]
    fn only_domains_and_urls_become_dns_targets() {
        assert_eq!(
            dns_target_of(ItemKind::Domain, "judi.example").map(|d| d.to_string()),
            Some("judi.example".into())
        );
        assert_eq!(
            dns_target_of(ItemKind::Url, "https://judi.example/x").map(|d| d.to_string()),
            Some("judi.example".into())
        );
        assert_eq!(dns_target_of(ItemKind::PlatformChannel, "radical"), None);
        assert_eq!(dns_target_of(ItemKind::ContentHash, "sha256:00"), None);
    }
}
