//! Typed identifiers. They are UUIDv7 (time-ordered, so indexes stay compact)
//! and parse from text at the edge; a `NoticeId` can never be passed where a
//! `PartyId` is expected.

use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Parse the canonical hyphenated form.
            pub fn parse(s: &str) -> crate::Result<Self> {
                if s.len() != 36 {
                    return Err(crate::Error::invalid($what, "not a valid id (expected a 36-character UUID)"));
                }
                uuid::Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid($what, "not a valid id (expected a 36-character UUID)"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }
    };
}

typed_id!(
    /// A party: an authority, a trusted flagger, a platform or an ISP.
    PartyId, "party_id"
);
typed_id!(
    /// An API token (a person's or a machine's credential).
    TokenId, "token_id"
);
typed_id!(
    /// A takedown notice.
    NoticeId, "notice_id"
);
typed_id!(
    /// One item (target) of a notice.
    ItemId, "item_id"
);
typed_id!(
    /// A blocking order.
    OrderId, "order_id"
);
typed_id!(
    /// An escalation of a notice to an approver.
    EscalationId, "escalation_id"
);
typed_id!(
    /// A platform's question about a notice item.
    ClarificationId, "clarification_id"
);
typed_id!(
    /// A platform's dispute of a notice item.
    DisputeId, "dispute_id"
);
typed_id!(
    /// An appeal against a notice item or a blocking order.
    AppealId, "appeal_id"
);
typed_id!(
    /// A flag: a flagger's or the public's report for the authority to review.
    FlagId, "flag_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let id = NoticeId::new();
        assert_eq!(NoticeId::parse(&id.to_string()), Ok(id));
        assert!(NoticeId::parse("not-an-id").is_err());
        assert!(NoticeId::parse("").is_err());
        // simple (unhyphenated) form is refused: one canonical spelling only
        assert!(NoticeId::parse(&id.0.simple().to_string()).is_err());
    }
}
