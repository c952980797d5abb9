//! The RPZ compiler's publication rule: on what basis an order may enter
//! the zone now. An order that needs no independent authorisation is
//! published as it is; one that does is published with a valid
//! authorisation, or — failing one — as an emergency for a limited time,
//! and otherwise withheld. A refusal by the authoriser wins over the
//! emergency flag. [`decide`] holds that precedence; the store works out
//! the facts (the order's sensitivities, the latest valid decision) and
//! records the outcome.

use crate::due_process::{DueProcessPolicy, Sensitivity};
use crate::order::OrderState;
use crate::{Error, Result, Timestamp};

/// Why an order is in the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationBasis {
    /// Nothing about it needs an independent authorisation.
    NotRequired,
    /// An authoriser signed it.
    Authorised,
    /// Published before its authorisation, for a limited time.
    Emergency,
}

impl PublicationBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicationBasis::NotRequired => "not_required",
            PublicationBasis::Authorised => "authorised",
            PublicationBasis::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "not_required" => Ok(PublicationBasis::NotRequired),
            "authorised" => Ok(PublicationBasis::Authorised),
            "emergency" => Ok(PublicationBasis::Emergency),
            _ => Err(Error::invalid(
                "basis",
                "use not_required, authorised or emergency",
            )),
        }
    }
}

/// An authoriser's decision on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorisationDecision {
    Authorise,
    Refuse,
}

impl AuthorisationDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorisationDecision::Authorise => "authorise",
            AuthorisationDecision::Refuse => "refuse",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "authorise" => Ok(AuthorisationDecision::Authorise),
            "refuse" => Ok(AuthorisationDecision::Refuse),
            _ => Err(Error::invalid("decision", "use authorise or refuse")),
        }
    }
}

/// The latest authorisation that still holds for the order as it is
/// (signature, key and content hash checked by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuthorisation {
    pub id: String,
    pub decision: AuthorisationDecision,
    pub reasons: String,
}

/// Whether the compiler lets an order into the zone now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    Allowed {
        basis: PublicationBasis,
        authorisation_id: Option<String>,
        /// Emergency publication ends here unless authorised meanwhile.
        until: Option<Timestamp>,
    },
    Refused(String),
}

/// Decide publication. `reasons` are why the order needs an authorisation
/// (empty: it does not), as many as were looked for; `authorisation` is
/// the latest valid decision, if any; `emergency` the order's flag.
pub fn decide(
    policy: &DueProcessPolicy,
    now: Timestamp,
    reasons: &[Sensitivity],
    authorisation: Option<&ValidAuthorisation>,
    emergency: bool,
) -> Publication {
    if reasons.is_empty() {
        return Publication::Allowed {
            basis: PublicationBasis::NotRequired,
            authorisation_id: None,
            until: None,
        };
    }
    match authorisation {
        Some(a) if a.decision == AuthorisationDecision::Authorise => {
            return Publication::Allowed {
                basis: PublicationBasis::Authorised,
                authorisation_id: Some(a.id.clone()),
                until: None,
            };
        }
        Some(a) => {
            return Publication::Refused(format!("the authoriser refused it: {}", a.reasons));
        }
        None => {}
    }
    if emergency {
        return Publication::Allowed {
            basis: PublicationBasis::Emergency,
            authorisation_id: None,
            until: Some(now.plus_millis(policy.emergency_max_secs * 1000)),
        };
    }
    let why: Vec<String> = reasons.iter().take(3).map(Sensitivity::describe).collect();
    Publication::Refused(format!(
        "it needs an independent authorisation ({}{})",
        why.join("; "),
        if reasons.len() > 3 { "; …" } else { "" }
    ))
}

/// What an authoriser's decision does to an order now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionEffect {
    /// Approved or scheduled and due: it goes in force now.
    Activate,
    /// Already in force: its publication is recorded as authorised and an
    /// emergency lapse is cancelled.
    Confirm,
    /// In force and refused: it ends at once.
    End,
    /// Recorded; the compiler reads it when the order falls due.
    Record,
}

/// A refusal of an order that needs no authorisation: it counts for
/// nothing, and saying so is better than pretending it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoAuthorisationNeeded;

/// What an authoriser's `decision` does to an order in `state` that
/// `needs_authorisation` (its targets are sensitive) or is an `emergency`
/// order, `due` when its effective time has come.
///
/// A refusal only counts where an authorisation is needed: an order that
/// needs none and is no emergency stands on the authority's own
/// four-eyes approval, and an authoriser cannot end or block it.
pub fn decision_effect(
    decision: AuthorisationDecision,
    needs_authorisation: bool,
    emergency: bool,
    state: OrderState,
    due: bool,
) -> std::result::Result<DecisionEffect, NoAuthorisationNeeded> {
    use AuthorisationDecision::*;
    if decision == Refuse && !needs_authorisation && !emergency {
        return Err(NoAuthorisationNeeded);
    }
    Ok(match (decision, state) {
        (Authorise, OrderState::Approved | OrderState::Scheduled) if due => {
            DecisionEffect::Activate
        }
        (Authorise, OrderState::InForce) => DecisionEffect::Confirm,
        (Refuse, OrderState::InForce) => DecisionEffect::End,
        _ => DecisionEffect::Record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason() -> Vec<Sensitivity> {
        vec![Sensitivity::PublicSuffix {
            target: "co.id".into(),
            suffix: "co.id".into(),
        }]
    }

    fn auth(decision: AuthorisationDecision) -> ValidAuthorisation {
        ValidAuthorisation {
            id: "a1".into(),
            decision,
            reasons: "because".into(),
        }
    }

    #[test]
    fn precedence_not_required_then_authorisation_then_emergency() {
        let p = DueProcessPolicy::default();
        let now = Timestamp::from_unix_millis(0);
        let refused = auth(AuthorisationDecision::Refuse);
        // nothing sensitive: published whatever else is true
        assert!(matches!(
            decide(&p, now, &[], Some(&refused), true),
            Publication::Allowed {
                basis: PublicationBasis::NotRequired,
                ..
            }
        ));
        let authorised = auth(AuthorisationDecision::Authorise);
        assert_eq!(
            decide(&p, now, &reason(), Some(&authorised), true),
            Publication::Allowed {
                basis: PublicationBasis::Authorised,
                authorisation_id: Some("a1".into()),
                until: None
            }
        );
        // a refusal beats the emergency flag
        assert_eq!(
            decide(&p, now, &reason(), Some(&refused), true),
            Publication::Refused("the authoriser refused it: because".into())
        );
        assert_eq!(
            decide(&p, now, &reason(), None, true),
            Publication::Allowed {
                basis: PublicationBasis::Emergency,
                authorisation_id: None,
                until: Some(now.plus_millis(p.emergency_max_secs * 1000))
            }
        );
        let Publication::Refused(why) = decide(&p, now, &reason(), None, false) else {
            panic!("withheld without authorisation");
        };
        assert!(why.starts_with("it needs an independent authorisation (co.id touches"));
    }

    #[test]
    fn a_refusal_counts_only_where_authorisation_is_needed() {
        use AuthorisationDecision::*;
        use DecisionEffect::*;
        use OrderState::*;
        // table: (decision, needs, emergency, state, due, effect)
        let table = [
            (
                Refuse,
                false,
                false,
                InForce,
                true,
                Err(NoAuthorisationNeeded),
            ),
            (
                Refuse,
                false,
                false,
                Draft,
                false,
                Err(NoAuthorisationNeeded),
            ),
            (Refuse, true, false, InForce, true, Ok(End)),
            (Refuse, false, true, InForce, true, Ok(End)),
            (Refuse, true, false, Scheduled, false, Ok(Record)),
            (Authorise, false, false, InForce, true, Ok(Confirm)),
            (Authorise, true, false, Scheduled, true, Ok(Activate)),
            (Authorise, true, false, Scheduled, false, Ok(Record)),
            (Authorise, true, true, InForce, true, Ok(Confirm)),
        ];
        for (d, needs, emergency, state, due, want) in table {
            assert_eq!(
                decision_effect(d, needs, emergency, state, due),
                want,
                "{d:?} {needs} {emergency} {state:?} {due}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for b in [
            PublicationBasis::NotRequired,
            PublicationBasis::Authorised,
            PublicationBasis::Emergency,
        ] {
            assert_eq!(PublicationBasis::parse(b.as_str()), Ok(b));
        }
        assert!(AuthorisationDecision::parse("perhaps").is_err());
    }
}
