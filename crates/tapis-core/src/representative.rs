//! Who answers for a platform: its legal representative in the country
//! (a person or an office, with a postal address, email, phone, contact
//! hours and time zone) and its technical and administrative contacts.
//!
//! The platform sets them itself and proves each email address reachable
//! with a one-time code sent there. The rules are here, pure: what a
//! contact must carry ([`Contact::parse`]), what a change does to its
//! verification ([`ContactState::on`]), whether a code may be sent or is
//! accepted ([`may_send_code`], [`check_code`]), and when the authority's
//! messages reach the representative: a notice is copied to a *verified*
//! representative, once per cause, when the channel is dead or the
//! deadline is missed ([`copy_cause_of_dead_letter`],
//! [`copy_cause_of_escalation`], [`should_copy`]); the ladder's last
//! steps name the representative ([`names_representative`]). The store
//! applies these (`tapis-store/src/representatives.rs`).

use serde::{Deserialize, Serialize};

use crate::delivery::OutboxChannel;
use crate::escalation::EscalationReason;
use crate::party::bounded_text;
use crate::policy::Step;
use crate::target::DomainName;
use crate::{Error, EventType, Result, Timestamp};

/// Which contact of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    /// The legal representative in the country: the one escalations name
    /// and notices are copied to.
    Legal,
    Technical,
    Administrative,
}

impl ContactRole {
    pub const ALL: [ContactRole; 3] = [
        ContactRole::Legal,
        ContactRole::Technical,
        ContactRole::Administrative,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactRole::Legal => "legal",
            ContactRole::Technical => "technical",
            ContactRole::Administrative => "administrative",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        ContactRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!(
                        "unknown contact {:?}: use legal, technical or administrative",
                        crate::taxonomy::truncate(s, 32)
                    ),
                )
            })
    }
}

impl std::fmt::Display for ContactRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person or an office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ContactKind {
    Person,
    Office,
}

/// A contact as submitted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactInput {
    /// The person's or office's name.
    pub name: String,
    /// `person` or `office` (default `person`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Postal address in the country (required for the legal representative).
    #[serde(default)]
    pub address: Option<String>,
    pub email: String,
    /// Required for the legal representative.
    #[serde(default)]
    pub phone: Option<String>,
    /// When they answer, e.g. `Mon-Fri 09:00-17:00` (required for the legal
    /// representative).
    #[serde(default)]
    pub hours: Option<String>,
    /// The zone the hours are in: an IANA name (`Asia/Jakarta`) or an
    /// offset (`+07:00`); required for the legal representative.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A contact, parsed. Personal data: the store keeps it sealed and shows it
/// only to the platform itself and the authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    pub name: String,
    pub kind: ContactKind,
    pub address: Option<String>,
    /// Lower-cased domain part.
    pub email: String,
    pub phone: Option<String>,
    pub hours: Option<String>,
    pub time_zone: Option<String>,
}

impl Contact {
    /// Parse `input` as the platform's `role` contact. The legal
    /// representative needs everything a court letter or a call needs:
    /// address, phone, hours and their time zone.
    pub fn parse(role: ContactRole, input: ContactInput) -> Result<Contact> {
        let opt = |field: &str, v: Option<String>, max: usize| -> Result<Option<String>> {
            v.filter(|s| !s.trim().is_empty())
                .map(|s| bounded_text(field, &s, 1, max))
                .transpose()
        };
        let kind = match input.kind.as_deref().map(str::trim) {
            None | Some("") | Some("person") => ContactKind::Person,
            Some("office") => ContactKind::Office,
            Some(_) => return Err(Error::invalid("kind", "use person or office")),
        };
        let email = parse_email(&input.email)?;
        let phone = opt("phone", input.phone, 40)?;
        if let Some(p) = &phone {
            let digits = p.chars().filter(char::is_ascii_digit).count();
            let ok = p
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if !ok || !(5..=20).contains(&digits) {
                return Err(Error::invalid(
                    "phone",
                    "a phone number: digits, spaces and + - ( ) . only, 5 to 20 digits",
                ));
            }
        }
        let time_zone = opt("time_zone", input.time_zone, 64)?;
        if let Some(tz) = &time_zone
            && !is_time_zone(tz)
        {
            return Err(Error::invalid(
                "time_zone",
                "an IANA zone such as Asia/Jakarta, UTC, or an offset such as +07:00",
            ));
        }
        let c = Contact {
            name: bounded_text("name", &input.name, 1, 200)?,
            kind,
            address: opt("address", input.address, 500)?,
            email,
            phone,
            hours: opt("hours", input.hours, 200)?,
            time_zone,
        };
        if role == ContactRole::Legal {
            for (field, missing) in [
                ("address", c.address.is_none()),
                ("phone", c.phone.is_none()),
                ("hours", c.hours.is_none()),
                ("time_zone", c.time_zone.is_none()),
            ] {
                if missing {
                    return Err(Error::invalid(
                        field,
                        "the legal representative needs a postal address, phone, contact hours and time zone",
                    ));
                }
            }
        }
        Ok(c)
    }

    /// Whether `new` reaches someone else than `self`: another email,
    /// phone or address. Such a change un-verifies the contact; new hours
    /// or a new name do not.
    pub fn reachability_changed(&self, new: &Contact) -> bool {
        self.email != new.email || self.phone != new.phone || self.address != new.address
    }
}

fn parse_email(raw: &str) -> Result<String> {
    let e = bounded_text("email", raw, 3, 254)?;
    let parsed = e.split_once('@').and_then(|(local, domain)| {
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_graphic() && !"<>()[],;:\\\"@".contains(c));
        let domain = DomainName::parse(domain).ok()?;
        local_ok.then(|| format!("{local}@{domain}"))
    });
    parsed.ok_or_else(|| Error::invalid("email", "not an email address"))
}

fn is_time_zone(tz: &str) -> bool {
    let b = tz.as_bytes();
    if let Some(rest) = tz
        .strip_prefix("UTC")
        .or(Some(tz))
        .filter(|r| r.starts_with(['+', '-']))
    {
        let r = rest.as_bytes();
        return r.len() == 6
            && r[3] == b':'
            && r[1..3].iter().chain(&r[4..6]).all(u8::is_ascii_digit)
            && rest[1..3].parse::<u8>().is_ok_and(|h| h <= 14)
            && rest[4..6].parse::<u8>().is_ok_and(|m| m < 60);
    }
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && tz.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        })
}

/// Where a contact's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ContactState {
    /// Set, not yet proved reachable.
    Unverified,
    /// A code was sent to its email; not yet confirmed.
    CodeSent,
    /// The platform confirmed the code sent to the address it has now.
    Verified,
}

impl ContactState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Unverified => "unverified",
            ContactState::CodeSent => "code_sent",
            ContactState::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        [
            ContactState::Unverified,
            ContactState::CodeSent,
            ContactState::Verified,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| Error::invalid("state", format!("unknown contact state {s:?}")))
    }

    /// The next state. Setting a contact keeps its verification only when
    /// it still reaches the same person (same email, phone and address); a
    /// code confirms only a contact that was sent one.
    pub fn on(self, event: ContactEvent) -> Result<ContactState> {
        match (self, event) {
            (
                _,
                ContactEvent::Set {
                    reachability_changed,
                },
            ) => Ok(if self == ContactState::Verified && !reachability_changed {
                ContactState::Verified
            } else {
                ContactState::Unverified
            }),
            (_, ContactEvent::CodeSent) => Ok(ContactState::CodeSent),
            (ContactState::CodeSent, ContactEvent::Confirmed) => Ok(ContactState::Verified),
            (s, ContactEvent::Confirmed) => Err(Error::IllegalTransition {
                entity: "contact",
                state: s.as_str().to_owned(),
                action: "confirm a code for".to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for ContactState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent {
    /// The platform set it (first time or again).
    Set { reachability_changed: bool },
    /// A verification code was sent to its email.
    CodeSent,
    /// The right code came back in time.
    Confirmed,
}

/// How verification codes work.
#[derive(Debug, Clone, Copy)]
pub struct CodePolicy {
    /// How long a code is good for.
    pub ttl_secs: i64,
    /// Wrong codes before the code is void (a new one must be sent).
    pub max_attempts: u32,
    /// How soon another code may be sent.
    pub resend_after_secs: i64,
    /// Digits in a code.
    pub digits: u32,
}

impl Default for CodePolicy {
    fn default() -> Self {
        CodePolicy {
            ttl_secs: 24 * 3600,
            max_attempts: 5,
            resend_after_secs: 60,
            digits: 8,
        }
    }
}

/// May a code be sent now? Not to a verified contact (it is already
/// proved; change it to verify again) and not twice within
/// `resend_after_secs` (a code is an email to someone's mailbox).
pub fn may_send_code(
    policy: &CodePolicy,
    state: ContactState,
    last_sent: Option<Timestamp>,
    now: Timestamp,
) -> Result<()> {
    if state == ContactState::Verified {
        return Err(Error::IllegalTransition {
            entity: "contact",
            state: state.as_str().to_owned(),
            action: "send a code to".to_owned(),
        });
    }
    if let Some(t) = last_sent
        && now.unix_millis() < t.plus_secs(policy.resend_after_secs).unix_millis()
    {
        return Err(Error::invalid(
            "code",
            format!(
                "a code was sent less than {} seconds ago: wait for it, or try again shortly",
                policy.resend_after_secs
            ),
        ));
    }
    Ok(())
}

/// What is known when a code comes back.
#[derive(Debug, Clone, Copy)]
pub struct CodeFacts {
    pub state: ContactState,
    pub expires_at: Option<Timestamp>,
    /// Wrong codes so far.
    pub attempts: u32,
    /// Whether the code given is the one sent (compared by the store in
    /// constant time over hashes).
    pub matches: bool,
}

/// The answer to a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Verified,
    /// Wrong; this many tries remain before the code is void.
    Wrong {
        attempts_left: u32,
    },
    /// No code is outstanding (none sent, or already used).
    NoCode,
    Expired,
    /// Too many wrong codes: send a new one.
    Exhausted,
}

/// Check a code. Exhaustion and expiry win over a match, so a guess that
/// comes too late or after too many wrong ones is no good either.
pub fn check_code(policy: &CodePolicy, f: CodeFacts, now: Timestamp) -> CodeCheck {
    let Some(expires) = f.expires_at.filter(|_| f.state == ContactState::CodeSent) else {
        return CodeCheck::NoCode;
    };
    if f.attempts >= policy.max_attempts {
        return CodeCheck::Exhausted;
    }
    if now.unix_millis() >= expires.unix_millis() {
        return CodeCheck::Expired;
    }
    if f.matches {
        CodeCheck::Verified
    } else {
        CodeCheck::Wrong {
            attempts_left: policy.max_attempts - f.attempts - 1,
        }
    }
}

/// Why a notice is copied to the representative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyCause {
    /// The channel could not deliver (a message dead-lettered, or the
    /// notice never delivered in time).
    Undeliverable,
    /// The platform let the deadline pass.
    DeadlineMissed,
    /// The platform's webhook stopped answering: its delivery circuit
    /// breaker opened with the notice still waiting.
    Unreachable,
}

impl CopyCause {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyCause::Undeliverable => "undeliverable",
            CopyCause::DeadlineMissed => "deadline_missed",
            CopyCause::Unreachable => "unreachable",
        }
    }

    /// Earlier copies that make a copy for this cause redundant: a dead
    /// channel is one reason whether a dead letter or an open breaker
    /// showed it first, so the notice goes to the representative once
    /// for it; a missed deadline is news of its own.
    pub fn covered_by(self) -> &'static [CopyCause] {
        match self {
            CopyCause::Undeliverable | CopyCause::Unreachable => {
                &[CopyCause::Undeliverable, CopyCause::Unreachable]
            }
            CopyCause::DeadlineMissed => &[CopyCause::DeadlineMissed],
        }
    }
}

/// A delivery circuit breaker opened for `channel`: is a notice still
/// waiting on it copied to the representative? A platform's webhook
/// breaker, yes, while the notice is open (`notice_open`): the platform is
/// unreachable. An email breaker, no: the representative's own copies go
/// by email, to the same kind of destination.
pub fn copy_cause_of_breaker_open(channel: OutboxChannel, notice_open: bool) -> Option<CopyCause> {
    (channel == OutboxChannel::Webhook && notice_open).then_some(CopyCause::Unreachable)
}

/// A dead-lettered message about a notice makes the channel undeliverable
/// — unless it was itself one of the representative's own emails (its
/// code, or a copy), which would loop.
pub fn copy_cause_of_dead_letter(event_type: EventType) -> Option<CopyCause> {
    match event_type {
        EventType::ContactCodeSent | EventType::RepresentativeCopied => None,
        _ => Some(CopyCause::Undeliverable),
    }
}

/// An escalation copies the notice for its reason.
pub fn copy_cause_of_escalation(reason: EscalationReason) -> CopyCause {
    match reason {
        EscalationReason::Undeliverable => CopyCause::Undeliverable,
        EscalationReason::DeadlineMissed => CopyCause::DeadlineMissed,
    }
}

/// Copy a notice to the representative? Only to a verified one (an
/// unverified address may be anyone's), and once per notice and cause
/// (`already_copied`: a copy for one of [`CopyCause::covered_by`]).
pub fn should_copy(state: Option<ContactState>, already_copied: bool) -> bool {
    state == Some(ContactState::Verified) && !already_copied
}

/// Does this ladder step name the representative? The last ones do: the
/// second warning and the escalation.
pub fn names_representative(step: Step) -> bool {
    matches!(step, Step::SecondWarning | Step::Escalation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ContactInput {
        ContactInput {
            name: "PT Perwakilan Messenger".into(),
            kind: Some("office".into()),
            address: Some("Jl. Sudirman 1, Jakarta 10220".into()),
            email: "Legal@Messenger.EXAMPLE".into(),
            phone: Some("+62 21 555 0100".into()),
            hours: Some("Mon-Fri 09:00-17:00".into()),
            time_zone: Some("Asia/Jakarta".into()),
        }
    }

    #[test]
    fn contacts_parse_and_the_legal_one_needs_everything() {
        let c = Contact::parse(ContactRole::Legal, input()).expect("legal");
        assert_eq!(c.email, "Legal@messenger.example");
        assert_eq!(c.kind, ContactKind::Office);
        for (field, edit) in [
            (
                "address",
                (|i: &mut ContactInput| i.address = None) as fn(&mut ContactInput),
            ),
            ("phone", |i| i.phone = Some("  ".into())),
            ("hours", |i| i.hours = None),
            ("time_zone", |i| i.time_zone = None),
        ] {
            let mut i = input();
            edit(&mut i);
            let e = Contact::parse(ContactRole::Legal, i.clone()).expect_err(field);
            assert!(e.to_string().starts_with(field), "{e}");
            // the technical contact may go without
            Contact::parse(ContactRole::Technical, i).expect("technical");
        }
        for (field, edit) in [
            (
                "email",
                (|i: &mut ContactInput| i.email = "nobody".into()) as fn(&mut ContactInput),
            ),
            ("email", |i| i.email = "a b@x.example".into()),
            ("email", |i| i.email = "a@-bad-".into()),
            ("phone", |i| i.phone = Some("call me".into())),
            ("phone", |i| i.phone = Some("12".into())),
            ("time_zone", |i| i.time_zone = Some("Mars/../x".into())),
            ("time_zone", |i| i.time_zone = Some("+25:00".into())),
            ("kind", |i| i.kind = Some("robot".into())),
            ("name", |i| i.name = " ".into()),
            ("name", |i| i.name = "x".repeat(201)),
        ] {
            let mut i = input();
            edit(&mut i);
            let e = Contact::parse(ContactRole::Technical, i).expect_err(field);
            assert!(e.to_string().starts_with(field), "{field}: {e}");
        }
        for tz in [
            "UTC",
            "Asia/Jakarta",
            "+07:00",
            "UTC+07:00",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT-7",
        ] {
            let mut i = input();
            i.time_zone = Some(tz.into());
            Contact::parse(ContactRole::Legal, i).expect(tz);
        }
    }

    #[test]
    fn a_new_address_unverifies_new_hours_do_not() {
        let a = Contact::parse(ContactRole::Legal, input()).expect("a");
        let mut i = input();
        i.hours = Some("24/7".into());
        let b = Contact::parse(ContactRole::Legal, i).expect("b");
        assert!(!a.reachability_changed(&b));
        let s = ContactState::Verified;
        assert_eq!(
            s.on(ContactEvent::Set {
                reachability_changed: false
            }),
            Ok(ContactState::Verified)
        );
        for edit in [
            (|i: &mut ContactInput| i.email = "other@messenger.example".into())
                as fn(&mut ContactInput),
            |i| i.phone = Some("+62 21 555 0199".into()),
            |i| i.address = Some("Jl. Thamrin 2".into()),
        ] {
            let mut i = input();
            edit(&mut i);
            let c = Contact::parse(ContactRole::Legal, i).expect("c");
            assert!(a.reachability_changed(&c));
        }
        assert_eq!(
            s.on(ContactEvent::Set {
                reachability_changed: true
            }),
            Ok(ContactState::Unverified)
        );
        // a code sent and not yet confirmed is void when the contact changes
        assert_eq!(
            ContactState::CodeSent.on(ContactEvent::Set {
                reachability_changed: false
            }),
            Ok(ContactState::Unverified)
        );
        assert_eq!(
            ContactState::CodeSent.on(ContactEvent::Confirmed),
            Ok(ContactState::Verified)
        );
        assert!(
            ContactState::Unverified
                .on(ContactEvent::Confirmed)
                .is_err()
        );
    }

    #[test]
    fn codes_expire_run_out_and_wait_between_sends() {
        let p = CodePolicy::default();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        let facts = |attempts, matches| CodeFacts {
            state: ContactState::CodeSent,
            expires_at: Some(t0.plus_secs(p.ttl_secs)),
            attempts,
            matches,
        };
        assert_eq!(check_code(&p, facts(0, true), t0), CodeCheck::Verified);
        assert_eq!(
            check_code(&p, facts(0, false), t0),
            CodeCheck::Wrong { attempts_left: 4 }
        );
        assert_eq!(check_code(&p, facts(5, true), t0), CodeCheck::Exhausted);
        assert_eq!(
            check_code(&p, facts(0, true), t0.plus_secs(p.ttl_secs)),
            CodeCheck::Expired
        );
        let none = CodeFacts {
            state: ContactState::Verified,
            ..facts(0, true)
        };
        assert_eq!(check_code(&p, none, t0), CodeCheck::NoCode);
        assert!(may_send_code(&p, ContactState::Unverified, None, t0).is_ok());
        assert!(may_send_code(&p, ContactState::CodeSent, Some(t0), t0.plus_secs(10)).is_err());
        assert!(may_send_code(&p, ContactState::CodeSent, Some(t0), t0.plus_secs(60)).is_ok());
        assert!(may_send_code(&p, ContactState::Verified, None, t0).is_err());
    }

    #[test]
    fn only_a_verified_representative_is_copied_once_per_cause() {
        assert!(should_copy(Some(ContactState::Verified), false));
        assert!(!should_copy(Some(ContactState::Verified), true));
        assert!(!should_copy(Some(ContactState::CodeSent), false));
        assert!(!should_copy(Some(ContactState::Unverified), false));
        assert!(!should_copy(None, false));
        assert_eq!(
            copy_cause_of_dead_letter(EventType::NoticeSubmitted),
            Some(CopyCause::Undeliverable)
        );
        assert_eq!(
            copy_cause_of_dead_letter(EventType::RepresentativeCopied),
            None
        );
        assert_eq!(copy_cause_of_dead_letter(EventType::ContactCodeSent), None);
        assert_eq!(
            copy_cause_of_escalation(EscalationReason::DeadlineMissed),
            CopyCause::DeadlineMissed
        );
        // an open webhook breaker copies an open notice, once for a dead channel
        assert_eq!(
            copy_cause_of_breaker_open(OutboxChannel::Webhook, true),
            Some(CopyCause::Unreachable)
        );
        assert_eq!(
            copy_cause_of_breaker_open(OutboxChannel::Webhook, false),
            None
        );
        assert_eq!(copy_cause_of_breaker_open(OutboxChannel::Email, true), None);
        assert!(
            CopyCause::Unreachable
                .covered_by()
                .contains(&CopyCause::Undeliverable)
        );
        assert!(
            CopyCause::Undeliverable
                .covered_by()
                .contains(&CopyCause::Unreachable)
        );
        assert!(
            !CopyCause::DeadlineMissed
                .covered_by()
                .contains(&CopyCause::Unreachable)
        );
        assert!(names_representative(Step::Escalation));
        assert!(names_representative(Step::SecondWarning));
        assert!(!names_representative(Step::Reminder));
        assert!(!names_representative(Step::Warning));
        for r in ContactRole::ALL {
            assert_eq!(ContactRole::parse(r.as_str()), Ok(r));
        }
        assert!(ContactRole::parse("ceo").is_err());
    }
}
