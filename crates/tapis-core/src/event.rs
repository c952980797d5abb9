//! The catalogue of event types: every kind of audit event, and every
//! event a party receives on its stream or by webhook. The two share names
//! (`notice.submitted` is both the audit record and the platform's event),
//! so they share one enum. The text form is part of the wire format and of
//! the hashed audit chain: a name here never changes once released.

use std::str::FromStr;

use crate::Error;

macro_rules! event_types {
    ($($variant:ident = $text:literal),+ $(,)?) => {
        /// One kind of event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),+ }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $text),+ }
            }
        }
    };
}

event_types! {
    PartyCreated = "party.created",
    TokenCreated = "token.created",
    TokenRevoked = "token.revoked",
    InvitationCreated = "invitation.created",
    InvitationAccepted = "invitation.accepted",
    AccountCreated = "account.created",
    AccountLinkIssued = "account.link_issued",
    AccountPasswordSet = "account.password_set",
    AccountSignedIn = "account.signed_in",
    AccountSignedOut = "account.signed_out",
    AccountLocked = "account.locked",
    AccountTotpEnabled = "account.totp_enabled",
    AccountTotpDisabled = "account.totp_disabled",
    AuthoriserKeyEnrolled = "authoriser.key_enrolled",
    ChannelUpdated = "channel.updated",
    ChannelSecretRotated = "channel.secret_rotated",
    KeyPublished = "key.published",
    NoticeCreated = "notice.created",
    NoticeDrafted = "notice.drafted",
    NoticeSubmitted = "notice.submitted",
    NoticeDelivered = "notice.delivered",
    NoticeAcknowledged = "notice.acknowledged",
    NoticeReminder = "notice.reminder",
    NoticeWarning = "notice.warning",
    NoticeEscalated = "notice.escalated",
    NoticeDisputed = "notice.disputed",
    NoticeClosed = "notice.closed",
    NoticeWithdrawn = "notice.withdrawn",
    ItemDecided = "item.decided",
    DeliveryAttempt = "delivery.attempt",
    DeliveryDeadLettered = "delivery.dead_lettered",
    EscalationDecided = "escalation.decided",
    OrderProposed = "order.proposed",
    OrderApproved = "order.approved",
    OrderInForce = "order.in_force",
    OrderPublicationWithheld = "order.publication_withheld",
    OrderReviewed = "order.reviewed",
    OrderReviewMissed = "order.review_missed",
    OrderExpired = "order.expired",
    OrderLifted = "order.lifted",
    OrderAuthorisationNeeded = "order.authorisation_needed",
    OrderAuthorised = "order.authorised",
    OrderAuthorisationRefused = "order.authorisation_refused",
    OrderPlatformResponded = "order.platform_responded",
    RpzSerial = "rpz.serial",
    RpzAcknowledged = "rpz.acknowledged",
    RpzTransferred = "rpz.transferred",
    RpzNotifyAnswered = "rpz.notify_answered",
    IspResolversSet = "isp.resolvers_set",
    IspTsigRotated = "isp.tsig_rotated",
    IspTsigRetired = "isp.tsig_retired",
    SecretsSealed = "secrets.sealed",
    ReceiptIssued = "receipt.issued",
    ComplianceProbed = "compliance.probed",
    PrivacyClientAddressesLogged = "privacy.client_addresses_logged",
    NoticePaused = "notice.paused",
    NoticeResumed = "notice.resumed",
    ItemWithdrawn = "item.withdrawn",
    ClarificationAsked = "clarification.asked",
    ClarificationAnswered = "clarification.answered",
    DisputeOpened = "dispute.opened",
    DisputeReviewed = "dispute.reviewed",
    AppealReceived = "appeal.received",
    AppealReviewStarted = "appeal.review_started",
    AppealDecided = "appeal.decided",
    AppealOverdue = "appeal.overdue",
    FlagSubmitted = "flag.submitted",
    FlagAccepted = "flag.accepted",
    FlagRejected = "flag.rejected",
    FlagMerged = "flag.merged",
    TrustedFlaggerGranted = "trusted_flagger.granted",
    TrustedFlaggerConfirmed = "trusted_flagger.confirmed",
    TrustedFlaggerSuspended = "trusted_flagger.suspended",
    TrustedFlaggerReinstated = "trusted_flagger.reinstated",
    TrustedFlaggerRevoked = "trusted_flagger.revoked",
    ContactSet = "contact.set",
    ContactCodeSent = "contact.code_sent",
    ContactCodeRefused = "contact.code_refused",
    ContactVerified = "contact.verified",
    RepresentativeCopied = "representative.copied",
    BankCreated = "bank.created",
    BankUpdated = "bank.updated",
    SignalAdded = "signal.added",
    SignalRemoved = "signal.removed",
    SignalFeedback = "signal.feedback",
    SignalFlaggedForReview = "signal.flagged_for_review",
    RegisterPolicyLogged = "register.policy_logged",
    RpzDigest = "rpz.digest",
    RetentionPolicyLogged = "retention.policy_logged",
    RetentionErased = "retention.erased",
}

impl FromStr for EventType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        EventType::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "event_type",
                    format!("unknown event type {:?}", crate::taxonomy::truncate(s, 48)),
                )
            })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for e in EventType::ALL {
            assert_eq!(e.as_str().parse::<EventType>(), Ok(*e));
            assert!(seen.insert(e.as_str()), "{e} twice");
            let (subject, verb) = e.as_str().split_once('.').expect("subject.verb");
            assert!(!subject.is_empty() && !verb.is_empty());
        }
        assert!("notice.exploded".parse::<EventType>().is_err());
    }
}
