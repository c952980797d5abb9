//! A destination's circuit breaker: when a platform's webhook (or a
//! party's email route) fails again and again, stop trying it for a while
//! so that its messages follow the retry schedule (and, at the end, the
//! email fallback) without tying up workers, then let one probe through to
//! see whether it is back. [`Breaker::admit`] says whether a message may be
//! attempted now; [`Breaker::record`] moves the state on an attempt's
//! result. Pure: the caller passes the time (milliseconds of the store's
//! clock, the same time the retry schedule runs on, so a simulated outage
//! of an hour is an hour to the breaker too) and keeps the state.

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures (errors, non-2xx answers, timeouts) that open
    /// the breaker. At least 1.
    pub failure_threshold: u32,
    /// How long the breaker stays open the first time before a probe.
    pub open_millis: u64,
    /// The longest it stays open: each failed probe doubles the wait up to
    /// this.
    pub max_open_millis: u64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            open_millis: 5_000,
            max_open_millis: 300_000,
        }
    }
}

impl BreakerPolicy {
    /// How long to stay open after the `reopenings`-th failed probe (0 for
    /// the first opening): doubling, capped.
    pub fn open_for(&self, reopenings: u32) -> u64 {
        self.open_millis
            .saturating_mul(1u64 << reopenings.min(30))
            .min(self.max_open_millis.max(self.open_millis))
    }
}

/// The state of one destination's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Messages go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Nothing is attempted until `until`; `reopenings` counts failed
    /// probes since the breaker first opened.
    Open { until: u64, reopenings: u32 },
    /// One probe is in flight; everything else waits for its result.
    HalfOpen { reopenings: u32 },
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::Closed { failures: 0 }
    }
}

/// Whether a message may be attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it.
    Attempt,
    /// Send it as the probe of a half-open breaker.
    Probe,
    /// Do not send it: the breaker is open (or a probe is in flight). The
    /// message takes the policy's retry schedule as a failed attempt.
    Reject,
}

impl Breaker {
    pub fn name(self) -> &'static str {
        match self {
            Breaker::Closed { .. } => "closed",
            Breaker::Open { .. } => "open",
            Breaker::HalfOpen { .. } => "half_open",
        }
    }

    /// May a message be attempted at `now`? An open breaker whose wait is
    /// over lets exactly one probe through and turns half-open.
    pub fn admit(self, now: u64) -> (Admit, Breaker) {
        match self {
            Breaker::Closed { .. } => (Admit::Attempt, self),
            Breaker::Open { until, reopenings } if now >= until => {
                (Admit::Probe, Breaker::HalfOpen { reopenings })
            }
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => (Admit::Reject, self),
        }
    }

    /// The result of an attempt that was admitted (`probe`: as the
    /// half-open probe). A success closes the breaker, whatever its state:
    /// the destination answered. A failure counts towards opening a closed
    /// breaker, and a failed probe reopens it for twice as long.
    pub fn record(self, policy: &BreakerPolicy, ok: bool, probe: bool, now: u64) -> Breaker {
        if ok {
            return Breaker::Closed { failures: 0 };
        }
        match self {
            Breaker::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= policy.failure_threshold.max(1) {
                    Breaker::Open {
                        until: now.saturating_add(policy.open_for(0)),
                        reopenings: 0,
                    }
                } else {
                    Breaker::Closed { failures }
                }
            }
            Breaker::HalfOpen { reopenings } if probe => {
                let reopenings = reopenings.saturating_add(1);
                Breaker::Open {
                    until: now.saturating_add(policy.open_for(reopenings)),
                    reopenings,
                }
            }
            // a late failure of an attempt sent before the breaker opened
            // changes nothing
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BreakerPolicy = BreakerPolicy {
        failure_threshold: 3,
        open_millis: 1000,
        max_open_millis: 3000,
    };

    #[test]
    fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let mut b = Breaker::default();
        for _ in 0..2 {
            b = b.record(&P, false, false, 0);
        }
        assert_eq!(b, Breaker::Closed { failures: 2 });
        b = b.record(&P, true, false, 0);
        assert_eq!(b, Breaker::Closed { failures: 0 });
        for _ in 0..3 {
            assert_eq!(b.admit(10).0, Admit::Attempt);
            b = b.record(&P, false, false, 10);
        }
        assert_eq!(
            b,
            Breaker::Open {
                until: 1010,
                reopenings: 0
            }
        );
    }

    #[test]
    fn an_open_breaker_rejects_until_its_wait_is_over_then_lets_one_probe_through() {
        let b = Breaker::Open {
            until: 1000,
            reopenings: 0,
        };
        assert_eq!(b.admit(999), (Admit::Reject, b));
        let (a, half) = b.admit(1000);
        assert_eq!(a, Admit::Probe);
        assert_eq!(half, Breaker::HalfOpen { reopenings: 0 });
        // only one probe at a time
        assert_eq!(half.admit(1001).0, Admit::Reject);
        // a good probe closes it
        assert_eq!(
            half.record(&P, true, true, 1002),
            Breaker::Closed { failures: 0 }
        );
    }

    #[test]
    fn a_failed_probe_reopens_for_twice_as_long_capped() {
        let half = Breaker::HalfOpen { reopenings: 0 };
        let b = half.record(&P, false, true, 5000);
        assert_eq!(
            b,
            Breaker::Open {
                until: 7000,
                reopenings: 1
            }
        );
        let b = Breaker::HalfOpen { reopenings: 5 }.record(&P, false, true, 0);
        assert_eq!(
            b,
            Breaker::Open {
                until: 3000,
                reopenings: 6
            }
        );
        assert_eq!(P.open_for(40), 3000);
    }

    #[test]
    fn late_results_of_attempts_sent_before_opening() {
        let open = Breaker::Open {
            until: 1000,
            reopenings: 0,
        };
        // a late failure changes nothing, a late success closes it
        assert_eq!(open.record(&P, false, false, 10), open);
        assert_eq!(
            open.record(&P, true, false, 10),
            Breaker::Closed { failures: 0 }
        );
        // a late non-probe failure does not reopen a half-open breaker
        let half = Breaker::HalfOpen { reopenings: 1 };
        assert_eq!(half.record(&P, false, false, 10), half);
    }

    #[test]
    fn a_zero_threshold_still_needs_one_failure() {
        let p = BreakerPolicy {
            failure_threshold: 0,
            ..P
        };
        assert!(matches!(
            Breaker::default().record(&p, false, false, 0),
            Breaker::Open { .. }
        ));
        assert_eq!(Breaker::default().admit(0).0, Admit::Attempt);
    }
}
