//! Appeals against a notice item or a blocking order, by anyone affected:
//! the content's owner, the platform, an ISP, or a member of the public
//! who met a block.
//!
//! `received → under_review → upheld | rejected | referred`. A review is by
//! a person who neither issued the notice nor proposed or approved the
//! order ([`crate::person::not_involved`]), within the policy's
//! `appeal_review` time; an appeal still open at its deadline is overdue
//! ([`overdue`]), which the scheduler records and tells the approvers. An
//! upheld appeal withdraws the item, or lifts the order (the names leave
//! the zone); `referred` sends it to the authoriser or a court.
//!
//! An appeal is known publicly by its [`Reference`]: ten random
//! characters of Crockford's base32 and a check character, so a reference
//! cannot be guessed and a mistyped one is caught before it is looked up.

use serde::Deserialize;

use crate::notice::string_enum;
use crate::party::{PartyKind, bounded_text};
use crate::{Error, ItemId, NoticeId, OrderId, Result};

string_enum!(
    /// Who appeals.
    AppellantKind, "appellant_kind" {
        ContentOwner = "content_owner",
        Platform = "platform",
        Isp = "isp",
        Public = "public",
    }
);

string_enum!(
    /// Where an appeal is.
    AppealState, "state" {
        Received = "received",
        UnderReview = "under_review",
        Upheld = "upheld",
        Rejected = "rejected",
        Referred = "referred",
    }
);

string_enum!(
    /// A reviewer's decision.
    AppealOutcome, "outcome" {
        Upheld = "upheld",
        Rejected = "rejected",
        Referred = "referred",
    }
);

string_enum!(
    /// Where a referred appeal goes.
    ReferredTo, "referred_to" {
        Authoriser = "authoriser",
        Court = "court",
    }
);

/// What can happen to an appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppealEvent {
    StartReview,
    Decide(AppealOutcome),
}

impl AppealState {
    pub fn is_open(self) -> bool {
        matches!(self, AppealState::Received | AppealState::UnderReview)
    }

    /// The appeal state machine: a review starts once, and a decision
    /// comes only during a review.
    pub fn on(self, event: AppealEvent) -> Result<AppealState> {
        use AppealState as S;
        let next = match (self, event) {
            (S::Received, AppealEvent::StartReview) => Some(S::UnderReview),
            (S::UnderReview, AppealEvent::Decide(o)) => Some(match o {
                AppealOutcome::Upheld => S::Upheld,
                AppealOutcome::Rejected => S::Rejected,
                AppealOutcome::Referred => S::Referred,
            }),
            _ => None,
        };
        next.ok_or_else(|| Error::IllegalTransition {
            entity: "appeal",
            state: self.as_str().to_owned(),
            action: match event {
                AppealEvent::StartReview => "start reviewing".into(),
                AppealEvent::Decide(o) => format!("decide ({o})"),
            },
        })
    }
}

/// Is an appeal in `state` overdue when its deadline job fires? Only an
/// open one; a decided appeal has nothing to chase.
pub fn overdue(state: AppealState) -> bool {
    state.is_open()
}

/// What is appealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppealSubject {
    Item { notice: NoticeId, item: ItemId },
    Order(OrderId),
}

impl AppealSubject {
    pub fn kind(self) -> &'static str {
        match self {
            AppealSubject::Item { .. } => "item",
            AppealSubject::Order(_) => "order",
        }
    }
}

/// An appeal as submitted (JSON or a web form).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppealInput {
    /// The blocking order appealed (its reference on the block page)…
    #[serde(default)]
    pub order_id: Option<String>,
    /// …or the notice and item appealed.
    #[serde(default)]
    pub notice_id: Option<String>,
    #[serde(default)]
    pub item_id: Option<String>,
    /// Without a token: `public` (the default) or `content_owner`. With a
    /// token it comes from the caller's party (platform or isp).
    #[serde(default)]
    pub appellant_kind: Option<String>,
    /// Why the notice or order is wrong (up to 4,000 characters).
    pub reason: String,
    /// Optional evidence: links or descriptions, at most 10 of 500
    /// characters each.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// An appeal that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppeal {
    pub subject: AppealSubject,
    pub appellant: AppellantKind,
    pub reason: String,
    pub evidence: Vec<String>,
}

impl NewAppeal {
    /// `party`: the caller's party kind when it has a token; `None` for
    /// the public.
    pub fn parse(input: AppealInput, party: Option<PartyKind>) -> Result<NewAppeal> {
        let id = |field: &str, raw: &str| -> Result<String> {
            let t = raw.trim();
            if t.is_empty() || t.len() > 64 {
                return Err(Error::invalid(field, "not a valid id"));
            }
            Ok(t.to_owned())
        };
        let subject = match (
            input.order_id.as_deref().filter(|s| !s.trim().is_empty()),
            input.notice_id.as_deref().filter(|s| !s.trim().is_empty()),
            input.item_id.as_deref().filter(|s| !s.trim().is_empty()),
        ) {
            (Some(o), None, None) => AppealSubject::Order(
                OrderId::parse(&id("order_id", o)?)
                    .map_err(|_| Error::invalid("order_id", "not a valid order reference"))?,
            ),
            (None, Some(n), Some(i)) => AppealSubject::Item {
                notice: NoticeId::parse(&id("notice_id", n)?)
                    .map_err(|_| Error::invalid("notice_id", "not a valid notice id"))?,
                item: ItemId::parse(&id("item_id", i)?)
                    .map_err(|_| Error::invalid("item_id", "not a valid item id"))?,
            },
            _ => {
                return Err(Error::invalid(
                    "order_id",
                    "name what you appeal: an order_id, or a notice_id with an item_id",
                ));
            }
        };
        let claimed = input
            .appellant_kind
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| AppellantKind::parse(s.trim()))
            .transpose()?;
        let appellant = appellant(party, claimed)?;
        let reason = bounded_text("reason", &input.reason, 10, 4000)?;
        if input.evidence.len() > 10 {
            return Err(Error::invalid("evidence", "at most 10 entries"));
        }
        let evidence = input
            .evidence
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.trim().is_empty())
            .map(|(i, e)| bounded_text(&format!("evidence[{i}]"), e, 1, 500))
            .collect::<Result<Vec<_>>>()?;
        Ok(NewAppeal {
            subject,
            appellant,
            reason,
            evidence,
        })
    }
}

/// Who the appellant is: a party's kind when it calls with a token (its
/// word about itself is not needed), else what the member of the public
/// says (`public` unless they own the content).
fn appellant(party: Option<PartyKind>, claimed: Option<AppellantKind>) -> Result<AppellantKind> {
    let from_party = match party {
        None => None,
        Some(PartyKind::Platform) => Some(AppellantKind::Platform),
        Some(PartyKind::Isp) => Some(AppellantKind::Isp),
        Some(other) => {
            return Err(Error::Forbidden {
                who: format!("a {} party", other.as_str()),
                action: "appeal (platforms, ISPs and the public appeal)".into(),
            });
        }
    };
    match (from_party, claimed) {
        (Some(k), None) => Ok(k),
        (Some(k), Some(c)) if c == k => Ok(k),
        (Some(k), Some(c)) => Err(Error::invalid(
            "appellant_kind",
            format!("your token is a {k}'s: leave appellant_kind out or say {k}, not {c}"),
        )),
        (None, None) => Ok(AppellantKind::Public),
        (None, Some(c @ (AppellantKind::Public | AppellantKind::ContentOwner))) => Ok(c),
        (None, Some(c)) => Err(Error::invalid(
            "appellant_kind",
            format!("a {c} appeals with its token; without one, say public or content_owner"),
        )),
    }
}

/// A reviewer's decision, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppealDecision {
    pub outcome: AppealOutcome,
    pub reasons: String,
    pub referred_to: Option<ReferredTo>,
}

impl AppealDecision {
    pub fn parse(outcome: &str, reasons: &str, referred_to: Option<&str>) -> Result<Self> {
        let outcome = AppealOutcome::parse(outcome.trim())?;
        let reasons = bounded_text("reasons", reasons, 1, 4000)?;
        let referred_to = referred_to
            .filter(|s| !s.trim().is_empty())
            .map(|s| ReferredTo::parse(s.trim()))
            .transpose()?;
        match (outcome, referred_to) {
            (AppealOutcome::Referred, None) => Err(Error::invalid(
                "referred_to",
                "say where it is referred: authoriser or court",
            )),
            (AppealOutcome::Upheld | AppealOutcome::Rejected, Some(_)) => Err(Error::invalid(
                "referred_to",
                "only a referred appeal names where it goes",
            )),
            _ => Ok(AppealDecision {
                outcome,
                reasons,
                referred_to,
            }),
        }
    }
}

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of randomness in a reference (50 bits).
const RANDOM_CHARS: usize = 10;

/// An appeal's public reference: ten random base32 characters and a check
/// character (a weighted sum modulo the prime 31, so one mistyped
/// character or two swapped neighbours are caught).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Reference(String);

fn check_char(values: &[u8]) -> u8 {
    let sum: u32 = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32 + 1) * u32::from(*v))
        .sum();
    ALPHABET[(sum % 31) as usize]
}

impl Reference {
    /// A reference from 50 random bits (the store draws them).
    pub fn from_random(bits: u64) -> Reference {
        let values: Vec<u8> = (0..RANDOM_CHARS)
            .map(|i| ((bits >> (5 * i)) & 31) as u8)
            .collect();
        let mut s: String = values
            .iter()
            .map(|v| ALPHABET[*v as usize] as char)
            .collect();
        s.push(check_char(&values) as char);
        Reference(s)
    }

    /// Parse what a person typed: case, dashes and spaces do not matter,
    /// and I, L and O read as 1, 1 and 0, as Crockford's base32 says.
    pub fn parse(raw: &str) -> Result<Reference> {
        let bad = || {
            Error::invalid(
                "reference",
                "not an appeal reference (11 letters and digits, as on your confirmation)",
            )
        };
        if raw.len() > 40 {
            return Err(bad());
        }
        let mut values = Vec::with_capacity(RANDOM_CHARS + 1);
        for c in raw.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            let v = ALPHABET
                .iter()
                .position(|a| *a as char == c)
                .ok_or_else(bad)?;
            values.push(v as u8);
        }
        if values.len() != RANDOM_CHARS + 1 {
            return Err(bad());
        }
        let (body, check) = values.split_at(RANDOM_CHARS);
        if check_char(body) != ALPHABET[check[0] as usize] {
            return Err(Error::invalid(
                "reference",
                "this reference has a typing mistake: check it against your confirmation",
            ));
        }
        Ok(Reference(
            values
                .iter()
                .map(|v| ALPHABET[*v as usize] as char)
                .collect(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine() {
        use AppealEvent as E;
        use AppealState as S;
        assert_eq!(S::Received.on(E::StartReview), Ok(S::UnderReview));
        for (o, s) in [
            (AppealOutcome::Upheld, S::Upheld),
            (AppealOutcome::Rejected, S::Rejected),
            (AppealOutcome::Referred, S::Referred),
        ] {
            assert_eq!(S::UnderReview.on(E::Decide(o)), Ok(s));
            // decided once, never reopened
            assert!(s.on(E::StartReview).is_err());
            assert!(s.on(E::Decide(o)).is_err());
            assert!(!overdue(s));
        }
        // no decision without a review
        let e = S::Received
            .on(E::Decide(AppealOutcome::Upheld))
            .expect_err("not reviewed");
        assert_eq!(
            e.to_string(),
            "cannot decide (upheld) an appeal that is received"
        );
        assert!(S::UnderReview.on(E::StartReview).is_err());
        assert!(overdue(S::Received) && overdue(S::UnderReview));
    }

    #[test]
    fn references_round_trip_and_catch_typing_mistakes() {
        for bits in [0u64, 1, 0x3_FFFF_FFFF_FFFF, 0x1234_5678_9ABC, u64::MAX] {
            let r = Reference::from_random(bits);
            assert_eq!(r.as_str().len(), 11);
            assert_eq!(Reference::parse(r.as_str()), Ok(r.clone()));
            let lower = r.as_str().to_lowercase();
            let dashed = format!("{}-{}", &lower[..5], &lower[5..]);
            assert_eq!(Reference::parse(&dashed), Ok(r.clone()));
            // every single substitution of a random character is caught
            // (but 0↔Z, whose values differ by 31)
            let chars: Vec<char> = r.as_str().chars().collect();
            for i in 0..10 {
                for a in ALPHABET.iter().map(|b| *b as char) {
                    if a == chars[i]
                        || (a == 'Z' && chars[i] == '0')
                        || (a == '0' && chars[i] == 'Z')
                    {
                        continue;
                    }
                    let mut typo = chars.clone();
                    typo[i] = a;
                    let typo: String = typo.into_iter().collect();
                    assert!(Reference::parse(&typo).is_err(), "{typo} for {r}");
                }
            }
        }
        let r = Reference::from_random(0x0123_4567_89AB);
        let mut swapped: Vec<char> = r.as_str().chars().collect();
        if swapped[0] != swapped[1] {
            swapped.swap(0, 1);
            let s: String = swapped.into_iter().collect();
            assert!(Reference::parse(&s).is_err());
        }
        for bad in [
            "",
            "ABC",
            "<script>alert(1)</script>",
            "UUUUUUUUUUU",
            &"A".repeat(50),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    fn input() -> AppealInput {
        AppealInput {
            order_id: Some(OrderId::new().to_string()),
            reason: "my bakery's site is blocked by mistake".into(),
            ..Default::default()
        }
    }

    #[test]
    fn appeals_parse_and_name_their_appellant() {
        let a = NewAppeal::parse(input(), None).expect("public");
        assert_eq!(a.appellant, AppellantKind::Public);
        assert_eq!(a.subject.kind(), "order");
        let owner = AppealInput {
            appellant_kind: Some("content_owner".into()),
            ..input()
        };
        assert_eq!(
            NewAppeal::parse(owner.clone(), None).map(|a| a.appellant),
            Ok(AppellantKind::ContentOwner)
        );
        // a party's token decides who it is
        assert_eq!(
            NewAppeal::parse(input(), Some(PartyKind::Isp)).map(|a| a.appellant),
            Ok(AppellantKind::Isp)
        );
        assert!(NewAppeal::parse(owner, Some(PartyKind::Platform)).is_err());
        assert!(NewAppeal::parse(input(), Some(PartyKind::Authority)).is_err());
        let claims_isp = AppealInput {
            appellant_kind: Some("isp".into()),
            ..input()
        };
        assert!(NewAppeal::parse(claims_isp, None).is_err());
        // exactly one subject
        let both = AppealInput {
            notice_id: Some(NoticeId::new().to_string()),
            item_id: Some(ItemId::new().to_string()),
            ..input()
        };
        assert!(NewAppeal::parse(both, None).is_err());
        let item = AppealInput {
            order_id: None,
            notice_id: Some(NoticeId::new().to_string()),
            item_id: Some(ItemId::new().to_string()),
            ..input()
        };
        assert_eq!(
            NewAppeal::parse(item, None).map(|a| a.subject.kind()),
            Ok("item")
        );
        let short = AppealInput {
            reason: "no".into(),
            ..input()
        };
        assert!(NewAppeal::parse(short, None).is_err());
        let long = AppealInput {
            reason: "x".repeat(4001),
            ..input()
        };
        assert!(NewAppeal::parse(long, None).is_err());
        let many = AppealInput {
            evidence: vec!["https://example.org".into(); 11],
            ..input()
        };
        assert!(NewAppeal::parse(many, None).is_err());
        let garbage = AppealInput {
            order_id: Some("../../etc/passwd".into()),
            ..input()
        };
        assert!(NewAppeal::parse(garbage, None).is_err());
    }

    #[test]
    fn decisions_parse() {
        assert!(AppealDecision::parse("upheld", "the site is a bakery", None).is_ok());
        assert!(AppealDecision::parse("referred", "needs a judge", Some("court")).is_ok());
        assert!(AppealDecision::parse("referred", "needs a judge", None).is_err());
        assert!(AppealDecision::parse("rejected", "fine as it is", Some("court")).is_err());
        assert!(AppealDecision::parse("rejected", " ", None).is_err());
        assert!(AppealDecision::parse("granted", "x", None).is_err());
    }
}
