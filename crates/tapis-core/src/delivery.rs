//! What one delivery attempt of an outbound message leads to: delivered
//! (and, for a new notice sent by webhook, the notice is delivered), retried
//! later with exponential backoff, or dead-lettered — a dead webhook falling
//! back to email. [`outcome`] decides; the store records the attempt and
//! applies the outcome in one transaction.

use serde::{Deserialize, Serialize};

use crate::{Error, EventType, Result};

/// How an outbound message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxChannel {
    Webhook,
    Email,
}

impl OutboxChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxChannel::Webhook => "webhook",
            OutboxChannel::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "webhook" => Ok(OutboxChannel::Webhook),
            "email" => Ok(OutboxChannel::Email),
            other => Err(Error::invalid(
                "channel",
                format!("unknown channel {other:?}: use webhook or email"),
            )),
        }
    }
}

impl std::fmt::Display for OutboxChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How undelivered outbound messages are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with ±20 % jitter.
    pub base_secs: i64,
    /// Longest delay between attempts.
    pub cap_secs: i64,
    /// How long a worker holds a claimed message (real time); a live
    /// worker renews it while a send is in flight, so a dead process's
    /// messages are taken over within this.
    pub lease_secs: i64,
    /// How long the previous webhook secret stays valid after a rotation.
    pub secret_grace_secs: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_secs: 5,
            cap_secs: 3600,
            lease_secs: 15,
            secret_grace_secs: 86_400,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (1 = after the first
    /// failure): exponential, capped, with `jitter` (−1.0 … 1.0) scaled to
    /// ±20 %; at least one millisecond.
    pub fn backoff_millis(&self, attempt: u32, jitter: f64) -> i64 {
        let exp = self
            .base_secs
            .saturating_mul(1i64 << attempt.saturating_sub(1).min(30))
            .min(self.cap_secs);
        let ms = exp * 1000;
        let spread = ms / 5;
        let jitter = ((spread as f64) * jitter.clamp(-1.0, 1.0)).round() as i64;
        (ms + jitter).max(1)
    }
}

/// One attempt, as the worker saw it.
#[derive(Debug, Clone, Copy)]
pub struct AttemptFacts {
    pub channel: OutboxChannel,
    /// The platform event type the message carries.
    pub event_type: EventType,
    pub ok: bool,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Random in −1.0 … 1.0, for the backoff's jitter.
    pub jitter: f64,
}

/// What the attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeliveryOutcome {
    /// Delivered. `notice_delivered`: a 2xx webhook carrying a new notice
    /// is proof of delivery (it starts the deadline).
    Delivered { notice_delivered: bool },
    /// Try again after this many milliseconds.
    Retry { after_millis: i64 },
    /// Give up. `email_fallback`: send the same message by email instead
    /// (if the platform has addresses).
    DeadLetter { email_fallback: bool },
}

/// Decide what an attempt leads to.
pub fn outcome(policy: &RetryPolicy, a: AttemptFacts) -> DeliveryOutcome {
    if a.ok {
        DeliveryOutcome::Delivered {
            notice_delivered: a.channel == OutboxChannel::Webhook
                && a.event_type == EventType::NoticeSubmitted,
        }
    } else if a.attempt >= policy.max_attempts {
        DeliveryOutcome::DeadLetter {
            email_fallback: a.channel == OutboxChannel::Webhook,
        }
    } else {
        DeliveryOutcome::Retry {
            after_millis: policy.backoff_millis(a.attempt, a.jitter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(channel: OutboxChannel, ok: bool, attempt: u32) -> AttemptFacts {
        AttemptFacts {
            channel,
            event_type: EventType::NoticeSubmitted,
            ok,
            attempt,
            jitter: 0.0,
        }
    }

    #[test]
    fn success_delivers_and_only_a_webhook_proves_notice_delivery() {
        let p = RetryPolicy::default();
        assert_eq!(
            outcome(&p, facts(OutboxChannel::Webhook, true, 3)),
            DeliveryOutcome::Delivered {
                notice_delivered: true
            }
        );
        assert_eq!(
            outcome(&p, facts(OutboxChannel::Email, true, 1)),
            DeliveryOutcome::Delivered {
                notice_delivered: false
            }
        );
        let reminder = AttemptFacts {
            event_type: EventType::NoticeReminder,
            ..facts(OutboxChannel::Webhook, true, 1)
        };
        assert_eq!(
            outcome(&p, reminder),
            DeliveryOutcome::Delivered {
                notice_delivered: false
            }
        );
    }

    #[test]
    fn failures_back_off_then_dead_letter_with_email_fallback_for_webhooks() {
        let p = RetryPolicy::default();
        assert_eq!(
            outcome(&p, facts(OutboxChannel::Webhook, false, 1)),
            DeliveryOutcome::Retry { after_millis: 5000 }
        );
        assert_eq!(
            outcome(&p, facts(OutboxChannel::Webhook, false, 3)),
            DeliveryOutcome::Retry {
                after_millis: 20_000
            }
        );
        assert_eq!(
            outcome(&p, facts(OutboxChannel::Webhook, false, p.max_attempts)),
            DeliveryOutcome::DeadLetter {
                email_fallback: true
            }
        );
        assert_eq!(
            outcome(&p, facts(OutboxChannel::Email, false, p.max_attempts)),
            DeliveryOutcome::DeadLetter {
                email_fallback: false
            }
        );
    }

    #[test]
    fn backoff_is_capped_and_jittered_by_a_fifth() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_millis(30, 0.0), 3_600_000);
        assert_eq!(p.backoff_millis(1, 1.0), 6000);
        assert_eq!(p.backoff_millis(1, -1.0), 4000);
        assert_eq!(p.backoff_millis(1, 7.0), 6000);
        let tiny = RetryPolicy { base_secs: 0, ..p };
        assert_eq!(tiny.backoff_millis(1, -1.0), 1);
    }
}
