//! What a notice's timer does when it falls due. A notice has two kinds of
//! timer: the delivery timeout (set at submission, cancelled by delivery)
//! and the escalation ladder's steps (set at delivery from the SLA policy,
//! see [`crate::policy`]). [`decide`] takes the notice's state and how many
//! items are still pending and says what the step does; the store loads,
//! asks, and applies the outcome with its events in one transaction.

use crate::escalation::EscalationReason;
use crate::notice::NoticeState;
use crate::policy::Step;
use crate::{Error, Result};

/// A timer on a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeTimer {
    /// The notice was not delivered in time.
    DeliveryTimeout,
    /// A rung of the escalation ladder.
    Ladder(Step),
}

impl NoticeTimer {
    pub const ALL: [NoticeTimer; 5] = [
        NoticeTimer::DeliveryTimeout,
        NoticeTimer::Ladder(Step::Reminder),
        NoticeTimer::Ladder(Step::Warning),
        NoticeTimer::Ladder(Step::SecondWarning),
        NoticeTimer::Ladder(Step::Escalation),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeTimer::DeliveryTimeout => "delivery_timeout",
            NoticeTimer::Ladder(step) => step.as_str(),
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        NoticeTimer::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::invalid("step", format!("unknown notice timer {s:?}")))
    }
}

impl std::fmt::Display for NoticeTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a due timer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Nothing (the notice moved on): the timer is cancelled.
    Nothing,
    /// Escalate the notice to an approver.
    Escalate(EscalationReason),
    /// Remind or warn the platform; `level` is 0 for a reminder, 1 for a
    /// warning, 2 for the second warning.
    Notify { step: Step, level: u8 },
}

/// Decide what `timer` does for a notice in `state` with `pending` items
/// not yet decided. Decided items do not escalate; disputed ones wait for
/// the authority; a closed or withdrawn notice has nothing left to chase.
pub fn decide(timer: NoticeTimer, state: NoticeState, pending: usize) -> StepOutcome {
    if !state.is_open() {
        return StepOutcome::Nothing;
    }
    match timer {
        NoticeTimer::DeliveryTimeout if state == NoticeState::Submitted => {
            StepOutcome::Escalate(EscalationReason::Undeliverable)
        }
        NoticeTimer::DeliveryTimeout => StepOutcome::Nothing,
        NoticeTimer::Ladder(_) if pending == 0 => StepOutcome::Nothing,
        NoticeTimer::Ladder(Step::Escalation) if state == NoticeState::Escalated => {
            StepOutcome::Nothing
        }
        NoticeTimer::Ladder(Step::Escalation) => {
            StepOutcome::Escalate(EscalationReason::DeadlineMissed)
        }
        NoticeTimer::Ladder(step @ Step::Reminder) => StepOutcome::Notify { step, level: 0 },
        NoticeTimer::Ladder(step @ Step::Warning) => StepOutcome::Notify { step, level: 1 },
        NoticeTimer::Ladder(step @ Step::SecondWarning) => StepOutcome::Notify { step, level: 2 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_round_trip() {
        for t in NoticeTimer::ALL {
            assert_eq!(NoticeTimer::parse(t.as_str()), Ok(t));
        }
        assert!(NoticeTimer::parse("nap").is_err());
    }

    #[test]
    fn delivery_timeout_escalates_only_undelivered_notices() {
        let t = NoticeTimer::DeliveryTimeout;
        assert_eq!(
            decide(t, NoticeState::Submitted, 3),
            StepOutcome::Escalate(EscalationReason::Undeliverable)
        );
        // pending items do not matter: nothing was delivered
        assert_eq!(
            decide(t, NoticeState::Submitted, 0),
            StepOutcome::Escalate(EscalationReason::Undeliverable)
        );
        for s in [
            NoticeState::Delivered,
            NoticeState::Acknowledged,
            NoticeState::Closed,
        ] {
            assert_eq!(decide(t, s, 3), StepOutcome::Nothing, "{s}");
        }
    }

    #[test]
    fn ladder_steps() {
        let l = NoticeTimer::Ladder;
        assert_eq!(
            decide(l(Step::Reminder), NoticeState::Delivered, 1),
            StepOutcome::Notify {
                step: Step::Reminder,
                level: 0
            }
        );
        assert_eq!(
            decide(l(Step::SecondWarning), NoticeState::Acknowledged, 1),
            StepOutcome::Notify {
                step: Step::SecondWarning,
                level: 2
            }
        );
        assert_eq!(
            decide(l(Step::Escalation), NoticeState::Acknowledged, 2),
            StepOutcome::Escalate(EscalationReason::DeadlineMissed)
        );
        // already escalated, nothing pending, or finished: nothing
        assert_eq!(
            decide(l(Step::Escalation), NoticeState::Escalated, 2),
            StepOutcome::Nothing
        );
        assert_eq!(
            decide(l(Step::Warning), NoticeState::Delivered, 0),
            StepOutcome::Nothing
        );
        assert_eq!(
            decide(l(Step::Warning), NoticeState::Closed, 1),
            StepOutcome::Nothing
        );
        assert_eq!(
            decide(l(Step::Reminder), NoticeState::Withdrawn, 1),
            StepOutcome::Nothing
        );
    }
}
