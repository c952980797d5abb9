//! Escalations: a notice whose ladder ran out (or that could not be
//! delivered) goes to an approver, who decides to propose a blocking order
//! or to dismiss it. This module holds the escalation's states, reasons and
//! decisions, the one transition (`open → decided`), and the rule that turns
//! an escalation into a draft order: which items can become DNS targets and
//! what the draft says.

use serde::{Deserialize, Serialize};

use crate::notice::LegalBasisInput;
use crate::order::{OrderInput, TargetInput, dns_target_of};
use crate::target::ItemKind;
use crate::{Error, ItemId, NoticeId, Result};

/// Why a notice was escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The ladder's last step fell due with items still pending.
    DeadlineMissed,
    /// The notice was never delivered within the delivery timeout.
    Undeliverable,
}

impl EscalationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::DeadlineMissed => "deadline_missed",
            EscalationReason::Undeliverable => "undeliverable",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "deadline_missed" => Ok(EscalationReason::DeadlineMissed),
            "undeliverable" => Ok(EscalationReason::Undeliverable),
            _ => Err(Error::invalid(
                "reason",
                "use deadline_missed or undeliverable",
            )),
        }
    }
}

/// Where an escalation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationState {
    Open,
    Decided,
}

impl EscalationState {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationState::Open => "open",
            EscalationState::Decided => "decided",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(EscalationState::Open),
            "decided" => Ok(EscalationState::Decided),
            _ => Err(Error::invalid("state", "use open or decided")),
        }
    }

    /// An approver decides: only an open escalation can be decided, once.
    pub fn decide(self) -> Result<EscalationState> {
        match self {
            EscalationState::Open => Ok(EscalationState::Decided),
            EscalationState::Decided => Err(Error::IllegalTransition {
                entity: "escalation",
                state: self.as_str().to_owned(),
                action: "decide".into(),
            }),
        }
    }
}

/// What an approver decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationDecision {
    /// The blocking-order work picks it up.
    ProposeOrder,
    Dismiss,
}

impl EscalationDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationDecision::ProposeOrder => "propose_order",
            EscalationDecision::Dismiss => "dismiss",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "propose_order" => Ok(EscalationDecision::ProposeOrder),
            "dismiss" => Ok(EscalationDecision::Dismiss),
            _ => Err(Error::invalid("decision", "use propose_order or dismiss")),
        }
    }
}

/// What the officer chooses when drafting an order from an escalation.
#[derive(Debug, Clone)]
pub struct DraftRequest {
    /// Defaults to a walled garden (the block that explains itself).
    pub action: Option<String>,
    pub effective_at: String,
    pub expires_at: String,
    pub review_at: String,
}

/// What core needs of an escalated notice to draft an order from it.
#[derive(Debug, Clone)]
pub struct Escalated<'a> {
    pub escalation_id: &'a str,
    pub reason: EscalationReason,
    /// Items still pending when the ladder ran out.
    pub pending: &'a [ItemId],
    pub notice_id: NoticeId,
    pub category: &'a str,
    pub legal_basis: (&'a str, &'a str),
    /// Every item of the notice: id, kind and normalised value.
    pub items: Vec<(ItemId, ItemKind, &'a str)>,
}

/// No pending item of the escalation names a domain or URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDnsTarget;

impl NoDnsTarget {
    pub const MESSAGE: &'static str = "no pending item of this escalation names a domain or URL; channels, accounts and content cannot be blocked by DNS, and blocking the platform itself is a separate order with its own authorisation";
}

/// The draft order an escalation becomes. Only pending items that name a
/// domain or URL become targets (each domain once); channels, accounts and
/// hashes cannot be removed by DNS, and a block of the platform itself is
/// never derived from them. An escalation proposes; it never makes an
/// emergency.
pub fn draft_order(
    esc: &Escalated<'_>,
    req: DraftRequest,
) -> std::result::Result<OrderInput, NoDnsTarget> {
    let mut targets: Vec<TargetInput> = Vec::new();
    for (_, kind, normalized) in esc
        .items
        .iter()
        .filter(|(id, _, _)| esc.pending.contains(id))
    {
        if let Some(d) = dns_target_of(*kind, normalized)
            && !targets.iter().any(|t| t.name == d.as_str())
        {
            targets.push(TargetInput {
                name: d.to_string(),
                include_subdomains: false,
            });
        }
    }
    if targets.is_empty() {
        return Err(NoDnsTarget);
    }
    Ok(OrderInput {
        targets,
        action: req.action.unwrap_or_else(|| "walled_garden".into()),
        category: esc.category.to_owned(),
        legal_basis: LegalBasisInput {
            reference: esc.legal_basis.0.to_owned(),
            text: esc.legal_basis.1.to_owned(),
        },
        explanation: Some(format!(
            "Escalation {} of notice {}: {}",
            esc.escalation_id,
            esc.notice_id,
            esc.reason.as_str()
        )),
        effective_at: req.effective_at,
        expires_at: req.expires_at,
        review_at: req.review_at,
        notices: vec![esc.notice_id.to_string()],
        escalation_id: Some(esc.escalation_id.to_owned()),
        emergency: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DraftRequest {
        DraftRequest {
            action: None,
            effective_at: "2030-01-01T00:00:00Z".into(),
            expires_at: "2030-02-01T00:00:00Z".into(),
            review_at: "2030-01-15T00:00:00Z".into(),
        }
    }

    #[test]
    fn decided_once() {
        assert_eq!(EscalationState::Open.decide(), Ok(EscalationState::Decided));
        assert!(EscalationState::Decided.decide().is_err());
        assert!(EscalationDecision::parse("maybe").is_err());
        for d in [
            EscalationDecision::ProposeOrder,
            EscalationDecision::Dismiss,
        ] {
            assert_eq!(EscalationDecision::parse(d.as_str()), Ok(d));
        }
    }

    #[test]
    fn only_pending_dns_items_become_targets() {
        let (a, b, c, d) = (ItemId::new(), ItemId::new(), ItemId::new(), ItemId::new());
        let pending = [a, b, c];
        let esc = Escalated {
            escalation_id: "0193aaaa-0000-7000-8000-000000000001",
            reason: EscalationReason::DeadlineMissed,
            pending: &pending,
            notice_id: NoticeId::new(),
            category: "gambling",
            legal_basis: ("Art. 1", "text"),
            items: vec![
                (a, ItemKind::Domain, "judi.example"),
                (b, ItemKind::Url, "https://judi.example/x"),
                (c, ItemKind::PlatformChannel, "radical"),
                (d, ItemKind::Domain, "decided.example"),
            ],
        };
        let draft = draft_order(&esc, req()).expect("draft");
        let names: Vec<&str> = draft.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["judi.example"]);
        assert_eq!(draft.action, "walled_garden");
        assert!(!draft.emergency);
        assert_eq!(
            draft.explanation.as_deref(),
            Some(
                format!(
                    "Escalation {} of notice {}: deadline_missed",
                    esc.escalation_id, esc.notice_id
                )
                .as_str()
            )
        );
        let none = Escalated {
            pending: &[c],
            ..esc
        };
        assert_eq!(draft_order(&none, req()).err(), Some(NoDnsTarget));
    }
}
