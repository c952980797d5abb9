//! Every timed thing tapis does, as one vocabulary: a job is a kind, a
//! subject (the notice or order it acts on) and a due time, kept in one
//! table and fired by one dispatcher. New timed steps are new kinds here,
//! not new tables or loops (an appeal's deadline is one; a clarification's
//! pause holds the notice's own jobs, see [`crate::dispute::Hold`]).

use crate::due_process::{DueProcessPolicy, MissedReview};
use crate::ladder::NoticeTimer;
use crate::order::OrderState;
use crate::policy::Step;
use crate::{Error, Result};

/// What a job does when it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// A notice's delivery timeout or ladder step (see [`crate::ladder`]).
    Notice(NoticeTimer),
    /// An approved order's effective time came.
    OrderActivate,
    /// An order's expiry came.
    OrderExpire,
    /// An order's review date came.
    OrderReview,
    /// An emergency order's time without an authorisation ran out.
    OrderEmergencyLapse,
    /// An appeal's review deadline came (see [`crate::appeal::overdue`]).
    AppealDeadline,
}

impl JobKind {
    pub const ALL: [JobKind; 10] = [
        JobKind::Notice(NoticeTimer::DeliveryTimeout),
        JobKind::Notice(NoticeTimer::Ladder(Step::Reminder)),
        JobKind::Notice(NoticeTimer::Ladder(Step::Warning)),
        JobKind::Notice(NoticeTimer::Ladder(Step::SecondWarning)),
        JobKind::Notice(NoticeTimer::Ladder(Step::Escalation)),
        JobKind::OrderActivate,
        JobKind::OrderExpire,
        JobKind::OrderReview,
        JobKind::OrderEmergencyLapse,
        JobKind::AppealDeadline,
    ];

    /// The stored name (`notice_` + the timer, or `order_…`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Notice(NoticeTimer::DeliveryTimeout) => "notice_delivery_timeout",
            JobKind::Notice(NoticeTimer::Ladder(Step::Reminder)) => "notice_reminder",
            JobKind::Notice(NoticeTimer::Ladder(Step::Warning)) => "notice_warning",
            JobKind::Notice(NoticeTimer::Ladder(Step::SecondWarning)) => "notice_second_warning",
            JobKind::Notice(NoticeTimer::Ladder(Step::Escalation)) => "notice_escalation",
            JobKind::OrderActivate => "order_activate",
            JobKind::OrderExpire => "order_expire",
            JobKind::OrderReview => "order_review",
            JobKind::OrderEmergencyLapse => "order_emergency_lapse",
            JobKind::AppealDeadline => "appeal_deadline",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::invalid("kind", format!("unknown job kind {s:?}")))
    }

    /// Whether scheduling a job that exists moves it (and arms it again).
    /// A notice's steps are set once, at delivery, and a second delivery
    /// must not re-arm a step that fired; an order's dates are its own and
    /// the latest schedule wins.
    pub fn reschedules(self) -> bool {
        !matches!(self, JobKind::Notice(_))
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a due order job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderJobOutcome {
    /// Nothing (the order moved on): the job is cancelled.
    Nothing,
    /// Put it in force, if the compiler's due-process check lets it in.
    Activate,
    /// End it (expired or lapsed), for this reason.
    End(String),
    /// Its review date passed: tell the authorisers; it stays in force.
    ReviewMissed,
}

/// Decide what order job `kind` does for an order in `state`.
/// `published_as_emergency`: the order is in the zone as an emergency (not
/// authorised since). Only an order's own kinds are decided here.
pub fn decide_order_job(
    kind: JobKind,
    state: OrderState,
    published_as_emergency: bool,
    policy: &DueProcessPolicy,
) -> OrderJobOutcome {
    let live = !state.is_terminal() && state != OrderState::Draft;
    match kind {
        JobKind::OrderActivate if matches!(state, OrderState::Approved | OrderState::Scheduled) => {
            OrderJobOutcome::Activate
        }
        JobKind::OrderEmergencyLapse if state == OrderState::InForce && published_as_emergency => {
            OrderJobOutcome::End(format!(
                "lapsed: emergency order not authorised within {} h",
                policy.emergency_max_secs / 3600
            ))
        }
        JobKind::OrderReview if live && policy.on_missed_review == MissedReview::Escalate => {
            OrderJobOutcome::ReviewMissed
        }
        JobKind::OrderExpire if live => OrderJobOutcome::End("expired at its end date".into()),
        JobKind::OrderReview if live => {
            OrderJobOutcome::End("lapsed: its review date passed without a review".into())
        }
        _ => OrderJobOutcome::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_jobs() {
        use OrderState as S;
        let lapse = DueProcessPolicy::default();
        let escalate = DueProcessPolicy {
            on_missed_review: MissedReview::Escalate,
            ..DueProcessPolicy::default()
        };
        let d = |k, s, e, p: &DueProcessPolicy| decide_order_job(k, s, e, p);
        assert_eq!(
            d(JobKind::OrderActivate, S::Scheduled, false, &lapse),
            OrderJobOutcome::Activate
        );
        assert_eq!(
            d(JobKind::OrderActivate, S::InForce, false, &lapse),
            OrderJobOutcome::Nothing
        );
        assert_eq!(
            d(JobKind::OrderEmergencyLapse, S::InForce, true, &lapse),
            OrderJobOutcome::End("lapsed: emergency order not authorised within 48 h".into())
        );
        // authorised since: it stays
        assert_eq!(
            d(JobKind::OrderEmergencyLapse, S::InForce, false, &lapse),
            OrderJobOutcome::Nothing
        );
        assert_eq!(
            d(JobKind::OrderReview, S::InForce, false, &escalate),
            OrderJobOutcome::ReviewMissed
        );
        assert_eq!(
            d(JobKind::OrderReview, S::Scheduled, false, &lapse),
            OrderJobOutcome::End("lapsed: its review date passed without a review".into())
        );
        assert_eq!(
            d(JobKind::OrderExpire, S::Approved, false, &lapse),
            OrderJobOutcome::End("expired at its end date".into())
        );
        for k in [JobKind::OrderExpire, JobKind::OrderReview] {
            for s in [S::Draft, S::Expired, S::Lifted] {
                assert_eq!(d(k, s, false, &escalate), OrderJobOutcome::Nothing);
            }
        }
    }

    #[test]
    fn kinds_round_trip_and_notice_names_follow_their_timer() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Ok(k));
            if let JobKind::Notice(t) = k {
                // the migration from the old timers table relies on this
                assert_eq!(k.as_str(), format!("notice_{}", t.as_str()));
                assert!(!k.reschedules());
            } else {
                assert!(k.as_str().starts_with("order_") || k.as_str().starts_with("appeal_"));
                assert!(k.reschedules());
            }
        }
        assert!(JobKind::parse("order_party").is_err());
    }
}
