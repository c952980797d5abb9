//! A platform's questions and disputes about a notice item, and the
//! authority's answers, as state machines; and the pause they put on the
//! notice's deadline.
//!
//! Clarification: `open → answered`. Dispute: `open → upheld | withdrawn |
//! amended`. While any question or dispute on a notice is open, its clock
//! is paused ([`Hold`]): the deadline is the notice's (one allowance for
//! all its items, one escalation ladder), so a pause holds the whole
//! notice, and the time paused is added to the deadline and to every step
//! of the ladder not yet fired when the last one is answered. What an
//! answer does to the item is [`item_after_review`]: upheld and amended
//! put it back to pending (the platform must decide it again), withdrawn
//! withdraws it.

use crate::notice::{ItemState, LegalBasis, NoticeState, string_enum};
use crate::party::bounded_text;
use crate::{Error, Result, Timestamp};

string_enum!(
    /// Where a platform's question is.
    ClarificationState, "state" {
        Open = "open",
        Answered = "answered",
    }
);

string_enum!(
    /// Where a dispute is: open, or the authority's answer.
    DisputeState, "state" {
        Open = "open",
        Upheld = "upheld",
        Withdrawn = "withdrawn",
        Amended = "amended",
    }
);

string_enum!(
    /// The authority's answer to a dispute: the item stands as notified,
    /// is withdrawn, or stands with its explanation or legal basis amended.
    DisputeOutcome, "outcome" {
        Upheld = "upheld",
        Withdrawn = "withdrawn",
        Amended = "amended",
    }
);

impl ClarificationState {
    /// The authority answers: only an open question, once.
    pub fn answer(self) -> Result<ClarificationState> {
        match self {
            ClarificationState::Open => Ok(ClarificationState::Answered),
            s => Err(Error::IllegalTransition {
                entity: "clarification",
                state: s.as_str().to_owned(),
                action: "answer".into(),
            }),
        }
    }
}

impl DisputeState {
    /// The reviewing officer's answer: only an open dispute, once.
    pub fn review(self, outcome: DisputeOutcome) -> Result<DisputeState> {
        match self {
            DisputeState::Open => Ok(match outcome {
                DisputeOutcome::Upheld => DisputeState::Upheld,
                DisputeOutcome::Withdrawn => DisputeState::Withdrawn,
                DisputeOutcome::Amended => DisputeState::Amended,
            }),
            s => Err(Error::IllegalTransition {
                entity: "dispute",
                state: s.as_str().to_owned(),
                action: "review".into(),
            }),
        }
    }

    pub fn is_open(self) -> bool {
        self == DisputeState::Open
    }
}

/// May a platform ask about, or dispute, an item of a notice in this
/// state? Only an open notice's pending item: a decided item is the
/// platform's own word, and a disputed one is already waiting for the
/// authority.
pub fn check_questionable(notice: NoticeState, item: ItemState, action: &str) -> Result<()> {
    if !notice.is_open() {
        return Err(Error::IllegalTransition {
            entity: "notice",
            state: notice.as_str().to_owned(),
            action: format!("{action} items of"),
        });
    }
    if item != ItemState::Pending {
        return Err(Error::IllegalTransition {
            entity: "item",
            state: item.as_str().to_owned(),
            action: action.to_owned(),
        });
    }
    Ok(())
}

/// The item after the authority answered its dispute.
pub fn item_after_review(item: ItemState, outcome: DisputeOutcome) -> Result<ItemState> {
    match (item, outcome) {
        (ItemState::Disputed, DisputeOutcome::Upheld | DisputeOutcome::Amended) => {
            Ok(ItemState::Pending)
        }
        (ItemState::Disputed, DisputeOutcome::Withdrawn) => Ok(ItemState::Withdrawn),
        (s, o) => Err(Error::IllegalTransition {
            entity: "item",
            state: s.as_str().to_owned(),
            action: format!("answer a dispute ({o}) on"),
        }),
    }
}

/// The authority withdraws an item (an appeal upheld): whatever the
/// platform decided, the request is gone; withdrawing twice is refused.
pub fn withdraw_item(item: ItemState) -> Result<ItemState> {
    if item == ItemState::Withdrawn {
        return Err(Error::IllegalTransition {
            entity: "item",
            state: item.as_str().to_owned(),
            action: "withdraw".into(),
        });
    }
    Ok(ItemState::Withdrawn)
}

/// A notice's pause: how many questions and disputes hold it, and since
/// when its clock stands still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub open: u32,
    pub since: Option<Timestamp>,
}

/// What a change of holds does to the notice's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldChange {
    /// Nothing: it was already paused, or another hold remains.
    None,
    /// The clock stops now.
    Pause,
    /// The clock runs again; the deadline and the steps not yet fired move
    /// later by `paused_ms`.
    Resume { paused_ms: i64 },
}

impl Hold {
    /// A question or dispute opens.
    pub fn open(self, now: Timestamp) -> (Hold, HoldChange) {
        let since = self.since.unwrap_or(now);
        let change = if self.since.is_none() {
            HoldChange::Pause
        } else {
            HoldChange::None
        };
        (
            Hold {
                open: self.open + 1,
                since: Some(since),
            },
            change,
        )
    }

    /// A question is answered or a dispute reviewed.
    pub fn close(self, now: Timestamp) -> Result<(Hold, HoldChange)> {
        let (Some(since), Some(open)) = (self.since, self.open.checked_sub(1)) else {
            return Err(Error::IllegalTransition {
                entity: "notice",
                state: "running".into(),
                action: "resume the clock of".into(),
            });
        };
        if open > 0 {
            return Ok((
                Hold {
                    open,
                    since: Some(since),
                },
                HoldChange::None,
            ));
        }
        let paused_ms = (now.unix_millis() - since.unix_millis()).max(0);
        Ok((
            Hold {
                open: 0,
                since: None,
            },
            HoldChange::Resume { paused_ms },
        ))
    }
}

/// A platform's question or dispute, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
}

impl Question {
    /// `field` is `question` or `reason`.
    pub fn parse(field: &str, text: &str) -> Result<Question> {
        Ok(Question {
            text: bounded_text(field, text, 1, 4000)?,
        })
    }
}

/// A dispute's answer, checked: an outcome, the reasons, and for
/// `amended` what replaces the explanation or the legal basis. The item's
/// target is not amended (a different target is a new notice); the
/// notice's signed document stays as it was, and the amendment travels in
/// the signed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeReview {
    pub outcome: DisputeOutcome,
    pub reason: String,
    pub explanation: Option<String>,
    pub legal_basis: Option<LegalBasis>,
}

impl DisputeReview {
    pub fn parse(
        outcome: &str,
        reason: &str,
        explanation: Option<&str>,
        legal_basis: Option<(&str, &str)>,
    ) -> Result<DisputeReview> {
        let outcome = DisputeOutcome::parse(outcome)?;
        let reason = bounded_text("reason", reason, 1, 4000)?;
        let explanation = explanation
            .filter(|e| !e.trim().is_empty())
            .map(|e| bounded_text("explanation", e, 1, 20_000))
            .transpose()?;
        let legal_basis = legal_basis
            .map(|(r, t)| -> Result<LegalBasis> {
                Ok(LegalBasis {
                    reference: bounded_text("legal_basis.reference", r, 1, 300)?,
                    text: bounded_text("legal_basis.text", t, 1, 20_000)?,
                })
            })
            .transpose()?;
        let amends = explanation.is_some() || legal_basis.is_some();
        match (outcome, amends) {
            (DisputeOutcome::Amended, false) => Err(Error::invalid(
                "explanation",
                "an amended answer needs a new explanation or legal basis",
            )),
            (DisputeOutcome::Upheld | DisputeOutcome::Withdrawn, true) => Err(Error::invalid(
                "outcome",
                "only an amended answer carries a new explanation or legal basis",
            )),
            _ => Ok(DisputeReview {
                outcome,
                reason,
                explanation,
                legal_basis,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    #[test]
    fn holds_pause_once_and_resume_with_the_time_paused() {
        let running = Hold {
            open: 0,
            since: None,
        };
        let (one, c) = running.open(t(1000));
        assert_eq!(c, HoldChange::Pause);
        let (two, c) = one.open(t(5000));
        assert_eq!(c, HoldChange::None);
        assert_eq!(two.since, Some(t(1000)), "the first pause counts");
        let (one_left, c) = two.close(t(8000)).expect("close");
        assert_eq!(c, HoldChange::None, "another question is still open");
        let (back, c) = one_left.close(t(11_000)).expect("close");
        assert_eq!(c, HoldChange::Resume { paused_ms: 10_000 });
        assert_eq!(back, running);
        assert!(running.close(t(12_000)).is_err(), "nothing to resume");
    }

    #[test]
    fn answers_happen_once() {
        assert_eq!(
            ClarificationState::Open.answer(),
            Ok(ClarificationState::Answered)
        );
        assert!(ClarificationState::Answered.answer().is_err());
        for (o, s) in [
            (DisputeOutcome::Upheld, DisputeState::Upheld),
            (DisputeOutcome::Withdrawn, DisputeState::Withdrawn),
            (DisputeOutcome::Amended, DisputeState::Amended),
        ] {
            assert_eq!(DisputeState::Open.review(o), Ok(s));
            assert!(s.review(o).is_err());
        }
    }

    #[test]
    fn what_an_answer_does_to_the_item() {
        use DisputeOutcome as O;
        use ItemState as I;
        assert_eq!(item_after_review(I::Disputed, O::Upheld), Ok(I::Pending));
        assert_eq!(item_after_review(I::Disputed, O::Amended), Ok(I::Pending));
        assert_eq!(
            item_after_review(I::Disputed, O::Withdrawn),
            Ok(I::Withdrawn)
        );
        assert!(item_after_review(I::Removed, O::Upheld).is_err());
        assert!(item_after_review(I::Pending, O::Withdrawn).is_err());
        assert_eq!(withdraw_item(I::Removed), Ok(I::Withdrawn));
        assert!(withdraw_item(I::Withdrawn).is_err());
        // only an open notice's pending items are questioned
        assert!(check_questionable(NoticeState::Acknowledged, I::Pending, "dispute").is_ok());
        assert!(check_questionable(NoticeState::Closed, I::Pending, "dispute").is_err());
        assert!(check_questionable(NoticeState::Delivered, I::Removed, "dispute").is_err());
        // the platform can never decide "withdrawn" itself
        assert!(I::Pending.decide(I::Withdrawn).is_err());
    }

    #[test]
    fn reviews_parse() {
        let ok = DisputeReview::parse("amended", "wrong article", Some("new text"), None)
            .expect("amended");
        assert_eq!(ok.explanation.as_deref(), Some("new text"));
        let e = DisputeReview::parse("amended", "x", None, None).expect_err("nothing amended");
        assert_eq!(
            e.to_string(),
            "explanation: an amended answer needs a new explanation or legal basis"
        );
        assert!(DisputeReview::parse("upheld", "x", Some("y"), None).is_err());
        assert!(DisputeReview::parse("upheld", "  ", None, None).is_err());
        assert!(DisputeReview::parse("maybe", "x", None, None).is_err());
        assert!(DisputeReview::parse("amended", "x", None, Some(("Art. 1", "text"))).is_ok());
    }
}
