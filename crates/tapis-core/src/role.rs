//! Roles and what each may do. The matrix is data in one place; the HTTP
//! layer asks [`Role::may`] and then scopes reads to the caller's party.

use serde::{Deserialize, Serialize};

use crate::party::PartyKind;
use crate::taxonomy::truncate;
use crate::{Error, PartyId, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Manages parties and tokens.
    Admin,
    /// Drafts, submits and withdraws notices.
    Officer,
    /// Approves escalations and orders (never their own).
    Approver,
    /// Reads everything, changes nothing.
    Auditor,
    /// Submits flags for the authority to review.
    Flagger,
    /// Acts for a platform: reads its notices, acknowledges, decides.
    PlatformAgent,
    /// Acts for an ISP: receives and acknowledges blocking orders.
    IspOperator,
    /// Acts for an independent authoriser: signs (or refuses) the
    /// authorisation some orders need before they are published.
    Authoriser,
}

/// Things a caller may ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ManageParties,
    ReadAllParties,
    ManageTokens,
    SubmitNotice,
    WithdrawNotice,
    /// Read notices: all of them for authority roles, a party's own for others.
    ReadNotices,
    AcknowledgeNotice,
    DecideItem,
    ReadInbox,
    VerifyAudit,
    /// Set a platform's delivery channel: admins, or the platform itself.
    ManageChannel,
    ReadEscalations,
    DecideEscalation,
    ReadDeadLetters,
    /// Move a simulated clock (demonstration and test servers only).
    ControlClock,
    /// Read how the server runs (which process owns the scheduler).
    ReadOperations,
    ProposeOrder,
    ApproveOrder,
    LiftOrder,
    ReviewOrder,
    ReadOrders,
    /// Fetch the zone file and the plain lists.
    ReadBlocklist,
    /// Register an ISP's resolvers and transfer settings.
    ManageResolvers,
    /// Acknowledge a zone serial (ISPs).
    AcknowledgeSerial,
    ReadCompliance,
    /// Sign or refuse an order's independent authorisation.
    AuthoriseOrder,
    /// A platform's answer to an order that would affect it.
    RespondToOrder,
    /// Ask the authority about an item, or dispute it (the addressed platform).
    QuestionItem,
    /// Answer a platform's question, review its dispute.
    AnswerPlatform,
    /// Appeal a notice item or an order as a party (the public needs no token).
    Appeal,
    /// Read the appeals queue.
    ReadAppeals,
    /// Start reviewing and decide an appeal.
    DecideAppeal,
    /// Submit flags (a flagger party; the public has its own form).
    SubmitFlag,
    /// Read flags: all of them for authority staff, a flagger its own.
    ReadFlags,
    /// Accept, merge or reject flags in the review queue.
    TriageFlags,
    /// Grant, suspend, reinstate or revoke trusted-flagger status.
    ManageTrustedFlaggers,
    /// A platform confirms a trusted-flagger grant with itself.
    ConfirmTrustedFlagger,
    /// Set and verify a platform's representative and contacts (its own).
    ManageContacts,
    /// Read a platform's representative and contacts: the authority all,
    /// a platform its own.
    ReadContacts,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ManageParties => "manage parties",
            Action::ReadAllParties => "read all parties",
            Action::ManageTokens => "manage tokens",
            Action::SubmitNotice => "submit notices",
            Action::WithdrawNotice => "withdraw notices",
            Action::ReadNotices => "read notices",
            Action::AcknowledgeNotice => "acknowledge notices",
            Action::DecideItem => "decide items",
            Action::ReadInbox => "read an inbox",
            Action::VerifyAudit => "verify the audit log",
            Action::ManageChannel => "manage delivery channels",
            Action::ReadEscalations => "read escalations",
            Action::DecideEscalation => "decide escalations",
            Action::ReadDeadLetters => "read dead-lettered deliveries",
            Action::ControlClock => "move the simulated clock",
            Action::ReadOperations => "read the server's operational status",
            Action::ProposeOrder => "propose blocking orders",
            Action::ApproveOrder => "approve blocking orders",
            Action::LiftOrder => "lift blocking orders",
            Action::ReviewOrder => "review blocking orders",
            Action::ReadOrders => "read blocking orders",
            Action::ReadBlocklist => "fetch the blocklist",
            Action::ManageResolvers => "manage resolver settings",
            Action::AcknowledgeSerial => "acknowledge zone serials",
            Action::ReadCompliance => "read compliance",
            Action::AuthoriseOrder => "authorise blocking orders",
            Action::RespondToOrder => "respond to blocking orders",
            Action::QuestionItem => "ask about or dispute notice items",
            Action::AnswerPlatform => "answer platforms' questions and disputes",
            Action::Appeal => "appeal notices or orders",
            Action::ReadAppeals => "read appeals",
            Action::DecideAppeal => "decide appeals",
            Action::SubmitFlag => "submit flags",
            Action::ReadFlags => "read flags",
            Action::TriageFlags => "review flags",
            Action::ManageTrustedFlaggers => "manage trusted-flagger status",
            Action::ConfirmTrustedFlagger => "confirm trusted-flagger status",
            Action::ManageContacts => "set a platform's representative and contacts",
            Action::ReadContacts => "read platforms' representatives and contacts",
        }
    }
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Officer,
        Role::Approver,
        Role::Auditor,
        Role::Flagger,
        Role::PlatformAgent,
        Role::IspOperator,
        Role::Authoriser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Officer => "officer",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Flagger => "flagger",
            Role::PlatformAgent => "platform_agent",
            Role::IspOperator => "isp_operator",
            Role::Authoriser => "authoriser",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "role",
                format!(
                    "unknown role {:?}: use admin, officer, approver, auditor, flagger, platform_agent, isp_operator or authoriser",
                    truncate(s, 32)
                ),
            )
        })
    }

    /// The kind of party a holder of this role acts for. A token's role
    /// must match its party's kind: a platform cannot mint an officer.
    pub fn party_kind(self) -> PartyKind {
        match self {
            Role::Admin | Role::Officer | Role::Approver | Role::Auditor => PartyKind::Authority,
            Role::Flagger => PartyKind::Flagger,
            Role::PlatformAgent => PartyKind::Platform,
            Role::IspOperator => PartyKind::Isp,
            Role::Authoriser => PartyKind::Authoriser,
        }
    }

    /// Whether the role reads across all parties (authority staff) rather
    /// than only its own party's records.
    pub fn reads_everything(self) -> bool {
        matches!(
            self,
            Role::Admin | Role::Officer | Role::Approver | Role::Auditor
        )
    }

    /// The roles matrix.
    pub fn may(self, action: Action) -> bool {
        use Action::*;
        use Role::*;
        match action {
            ManageParties | ManageTokens => self == Admin,
            ReadAllParties => self.reads_everything(),
            SubmitNotice | WithdrawNotice => self == Officer,
            ReadNotices => !matches!(self, IspOperator),
            AcknowledgeNotice | DecideItem | ReadInbox => self == PlatformAgent,
            VerifyAudit | ReadDeadLetters | ReadOperations => matches!(self, Admin | Auditor),
            // an authoriser keeps a channel to be told of orders; its signing
            // key is enrolled on the host, never here (see `channel_key`)
            ManageChannel => matches!(self, Admin | PlatformAgent | Authoriser),
            ReadEscalations => self.reads_everything(),
            DecideEscalation => self == Approver,
            ControlClock => self == Admin,
            ProposeOrder => self == Officer,
            ApproveOrder | ReviewOrder => self == Approver,
            LiftOrder => matches!(self, Officer | Approver),
            // a platform reads only the orders that would affect it
            ReadOrders => {
                self.reads_everything() || matches!(self, IspOperator | Authoriser | PlatformAgent)
            }
            ReadBlocklist | ReadCompliance => self.reads_everything() || self == IspOperator,
            AuthoriseOrder => self == Authoriser,
            RespondToOrder => self == PlatformAgent,
            ManageResolvers => matches!(self, Admin | IspOperator),
            AcknowledgeSerial => self == IspOperator,
            QuestionItem => self == PlatformAgent,
            AnswerPlatform | DecideAppeal => matches!(self, Officer | Approver),
            // the authority does not appeal its own acts
            Appeal => matches!(self, PlatformAgent | IspOperator),
            ReadAppeals => self.reads_everything(),
            SubmitFlag => self == Flagger,
            ReadFlags => self.reads_everything() || self == Flagger,
            // officers turn flags into notices, as they submit notices
            TriageFlags => self == Officer,
            ManageTrustedFlaggers => self == Admin,
            ConfirmTrustedFlagger => self == PlatformAgent,
            // a party manages its own record: the authority sees, never sets
            ManageContacts => self == PlatformAgent,
            ReadContacts => self.reads_everything() || self == PlatformAgent,
        }
    }

    pub fn require(self, action: Action) -> Result<()> {
        if self.may(action) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                who: format!("role {}", self.as_str()),
                action: action.as_str().to_owned(),
            })
        }
    }
}

/// May a caller with role `issuer` (acting for `issuer_party`) create a
/// token with `role` for `party` (of kind `party_kind`)?
///
/// Separation of powers: the authority's admin creates tokens for the
/// authority's own people only. Every other party gets its first
/// credential through a one-time invitation it redeems itself
/// ([`may_invite`]), so no authority role ever holds a platform's, an
/// ISP's, a flagger's or an authoriser's credential. After that, a
/// party's own member creates further tokens of its own role for its own
/// party (a platform agent more platform agents, an ISP operator more ISP
/// operators, and so on), and nobody else's.
pub fn may_issue_token(
    issuer: Role,
    issuer_party: PartyId,
    party: PartyId,
    party_kind: PartyKind,
    role: Role,
) -> Result<()> {
    let allowed = match issuer {
        Role::Admin => {
            // a role that fits no party of this kind is a malformed request
            fits(party_kind, role)?;
            party_kind == PartyKind::Authority
        }
        Role::PlatformAgent | Role::IspOperator | Role::Flagger | Role::Authoriser => {
            party == issuer_party && role == issuer
        }
        Role::Officer | Role::Approver | Role::Auditor => false,
    };
    if allowed {
        return Ok(());
    }
    Err(Error::Forbidden {
        who: format!("role {}", issuer.as_str()),
        action: if issuer == Role::Admin {
            format!(
                "create tokens for a {} party (the authority never holds another party's credential): \
                 create an invitation with POST /api/v1/parties/{{id}}/invitations and hand its code to the party",
                party_kind.as_str()
            )
        } else {
            "create tokens other than its own role's, for its own party".to_owned()
        },
    })
}

/// May `issuer` (acting for `issuer_party`) create an invitation (a
/// one-time enrolment code) for `role` at `party` (of kind `party_kind`)?
/// The authority's admin invites the authority's people and any party's
/// first members (see [`authority_may_invite`]); a party's own member
/// invites further members of its own role to its own party. The code is
/// handed over out of band and redeemed without a token.
pub fn may_invite(
    issuer: Role,
    issuer_party: PartyId,
    party: PartyId,
    party_kind: PartyKind,
    role: Role,
) -> Result<()> {
    let allowed = match issuer {
        Role::Admin => {
            fits(party_kind, role)?;
            true
        }
        Role::PlatformAgent | Role::IspOperator | Role::Flagger | Role::Authoriser => {
            party == issuer_party && role == issuer
        }
        Role::Officer | Role::Approver | Role::Auditor => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden {
            who: format!("role {}", issuer.as_str()),
            action: "invite members other than its own role's, for its own party".to_owned(),
        })
    }
}

/// May `by` (acting for `by_party`) list or revoke the tokens of `party`?
/// A party's own members manage their party's tokens — so a platform can
/// see every credential that acts for it, including one the authority may
/// have redeemed from an invitation, and revoke it. The authority's admin
/// manages any party's tokens: revoking is how a stolen credential is
/// stopped, it grants nothing, and every revocation is on the log. The
/// authority's other roles manage none (a token may always revoke itself).
pub fn may_manage_tokens(by: Role, by_party: PartyId, party: PartyId) -> Result<()> {
    let allowed = match by {
        Role::Admin => true,
        Role::PlatformAgent | Role::IspOperator | Role::Flagger | Role::Authoriser => {
            party == by_party
        }
        Role::Officer | Role::Approver | Role::Auditor => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden {
            who: format!("role {}", by.as_str()),
            action: "list or revoke tokens other than its own party's".to_owned(),
        })
    }
}

/// The longest a token may be made to live: a credential meant to expire
/// should not be set to outlive the people who hold it.
pub const MAX_TOKEN_LIFETIME_MS: i64 = 5 * 366 * 24 * 3600 * 1000;

/// A token's expiry, if asked for, must lie ahead of `now` and within
/// [`MAX_TOKEN_LIFETIME_MS`].
pub fn check_token_expiry(
    now: crate::Timestamp,
    expires_at: Option<crate::Timestamp>,
) -> Result<Option<crate::Timestamp>> {
    let Some(at) = expires_at else {
        return Ok(None);
    };
    if at.unix_millis() <= now.unix_millis() {
        return Err(Error::invalid(
            "expires_at",
            format!("must be after now ({now}); a token that is already expired is useless"),
        ));
    }
    if at.unix_millis() - now.unix_millis() > MAX_TOKEN_LIFETIME_MS {
        return Err(Error::invalid(
            "expires_at",
            "must be within five years; leave it out for a token that lives until revoked",
        ));
    }
    Ok(Some(at))
}

/// The authority invites only a party's *first* members: once another
/// party has a live token, its further members come through its own
/// members, so an invitation the authority kept for itself cannot be
/// added beside the party's real ones unnoticed. The authority's own
/// parties it always may.
pub fn authority_may_invite(issuer: Role, party_kind: PartyKind, has_live_members: bool) -> bool {
    issuer != Role::Admin || party_kind == PartyKind::Authority || !has_live_members
}

/// A token's role must fit its party's kind: a platform cannot hold an
/// officer, and the authority can never hold an authoriser.
pub fn fits(party_kind: PartyKind, role: Role) -> Result<()> {
    if role.party_kind() == party_kind {
        return Ok(());
    }
    Err(Error::invalid(
        "role",
        format!(
            "a {} party cannot hold the {} role (it belongs to {} parties)",
            party_kind.as_str(),
            role.as_str(),
            role.party_kind().as_str()
        ),
    ))
}

/// The signing key a party's channel keeps when `caller_party` (with
/// role `caller`) sets `party`'s channel asking for `requested`, the
/// current key being `current`.
///
/// Only a party itself rotates its own channel key: another caller (an
/// admin changing a webhook) keeps the current key, and asking for a
/// different one is refused. An authoriser's signing key is not a channel
/// setting at all: it is enrolled on the host (`tapis authoriser enrol`),
/// so the API refuses it whoever asks.
pub fn channel_key(
    caller: Role,
    caller_party: PartyId,
    party: PartyId,
    party_kind: PartyKind,
    current: Option<&str>,
    requested: Option<&str>,
) -> Result<Option<String>> {
    let requested = requested.map(str::trim);
    let current = current.map(str::trim);
    if party_kind == PartyKind::Authoriser {
        if requested.is_some() {
            return Err(Error::invalid(
                "public_key",
                "an authoriser's signing key is enrolled on the tapis host, never through the API: \
                 the operator runs `tapis authoriser enrol --name NAME --public-key KEY` and the authoriser \
                 checks the fingerprint at GET /api/v1/authorisers",
            ));
        }
        return Ok(current.map(str::to_owned));
    }
    if caller_party == party {
        return Ok(requested.map(str::to_owned));
    }
    match requested {
        None => Ok(current.map(str::to_owned)),
        Some(k) if Some(k) == current => Ok(Some(k.to_owned())),
        Some(_) => Err(Error::Forbidden {
            who: format!("role {}", caller.as_str()),
            action:
                "set another party's channel signing key (only the party itself rotates its key)"
                    .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_match_party_kinds() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert_eq!(Role::PlatformAgent.party_kind(), PartyKind::Platform);
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn least_privilege() {
        // table: (role, action, allowed)
        let table = [
            (Role::Admin, Action::ManageParties, true),
            (Role::Officer, Action::ManageParties, false),
            (Role::Officer, Action::SubmitNotice, true),
            (Role::Approver, Action::SubmitNotice, false),
            (Role::Auditor, Action::SubmitNotice, false),
            (Role::Auditor, Action::VerifyAudit, true),
            (Role::PlatformAgent, Action::SubmitNotice, false),
            (Role::PlatformAgent, Action::DecideItem, true),
            (Role::Officer, Action::DecideItem, false),
            (Role::PlatformAgent, Action::ReadAllParties, false),
            (Role::IspOperator, Action::ReadNotices, false),
            (Role::Flagger, Action::AcknowledgeNotice, false),
            (Role::Approver, Action::DecideEscalation, true),
            (Role::Officer, Action::DecideEscalation, false),
            (Role::Admin, Action::DecideEscalation, false),
            (Role::PlatformAgent, Action::ManageChannel, true),
            (Role::IspOperator, Action::ManageChannel, false),
            (Role::Officer, Action::ControlClock, false),
            (Role::Flagger, Action::SubmitFlag, true),
            (Role::Officer, Action::SubmitFlag, false),
            (Role::Officer, Action::TriageFlags, true),
            (Role::Flagger, Action::TriageFlags, false),
            (Role::Approver, Action::TriageFlags, false),
            (Role::PlatformAgent, Action::ReadFlags, false),
            (Role::Flagger, Action::ReadFlags, true),
            (Role::Admin, Action::ManageTrustedFlaggers, true),
            (Role::Officer, Action::ManageTrustedFlaggers, false),
            (Role::Flagger, Action::ManageTrustedFlaggers, false),
            (Role::PlatformAgent, Action::ConfirmTrustedFlagger, true),
            (Role::Admin, Action::ConfirmTrustedFlagger, false),
            (Role::Officer, Action::ProposeOrder, true),
            (Role::Officer, Action::ApproveOrder, false),
            (Role::Approver, Action::ApproveOrder, true),
            (Role::PlatformAgent, Action::ReadBlocklist, false),
            (Role::IspOperator, Action::ReadBlocklist, true),
        ];
        for (role, action, allowed) in table {
            assert_eq!(role.may(action), allowed, "{role:?} {action:?}");
        }
    }

    #[test]
    fn the_authority_issues_only_its_own_credentials() {
        let home = PartyId::new();
        let platform = PartyId::new();
        let other = PartyId::new();
        use PartyKind::*;
        // table: (issuer, issuer's party, party, its kind, role, allowed)
        let table = [
            (Role::Admin, home, home, Authority, Role::Officer, true),
            (
                Role::Admin,
                home,
                platform,
                Platform,
                Role::PlatformAgent,
                false,
            ),
            (
                Role::Admin,
                home,
                other,
                Authoriser,
                Role::Authoriser,
                false,
            ),
            (Role::Admin, home, home, Authority, Role::Authoriser, false),
            (Role::Officer, home, home, Authority, Role::Officer, false),
            (
                Role::PlatformAgent,
                platform,
                platform,
                Platform,
                Role::PlatformAgent,
                true,
            ),
            (
                Role::PlatformAgent,
                platform,
                other,
                Platform,
                Role::PlatformAgent,
                false,
            ),
            (
                Role::IspOperator,
                platform,
                platform,
                Platform,
                Role::PlatformAgent,
                false,
            ),
        ];
        for (issuer, ip, party, kind, role, allowed) in table {
            assert_eq!(
                may_issue_token(issuer, ip, party, kind, role).is_ok(),
                allowed,
                "{issuer:?} {kind:?} {role:?}"
            );
        }
        let inv = |issuer, ip, party, kind, role| may_invite(issuer, ip, party, kind, role).is_ok();
        assert!(inv(
            Role::Admin,
            home,
            platform,
            Platform,
            Role::PlatformAgent
        ));
        assert!(!inv(Role::Admin, home, platform, Platform, Role::Officer));
        assert!(inv(
            Role::PlatformAgent,
            platform,
            platform,
            Platform,
            Role::PlatformAgent
        ));
        assert!(!inv(
            Role::PlatformAgent,
            platform,
            other,
            Platform,
            Role::PlatformAgent
        ));
        assert!(!inv(Role::Officer, home, home, Authority, Role::Officer));
        assert!(authority_may_invite(Role::Admin, Platform, false));
        assert!(!authority_may_invite(Role::Admin, Platform, true));
        assert!(authority_may_invite(Role::Admin, Authority, true));
        assert!(authority_may_invite(Role::PlatformAgent, Platform, true));
    }

    #[test]
    fn only_a_party_rotates_its_own_channel_key() {
        let home = PartyId::new();
        let platform = PartyId::new();
        let k = |r: Role, caller, party, kind, cur: Option<&str>, req: Option<&str>| {
            channel_key(r, caller, party, kind, cur, req)
        };
        use PartyKind::*;
        assert_eq!(
            k(
                Role::PlatformAgent,
                platform,
                platform,
                Platform,
                Some("a"),
                Some("b")
            ),
            Ok(Some("b".into()))
        );
        // an admin setting a webhook keeps the platform's key
        assert_eq!(
            k(Role::Admin, home, platform, Platform, Some("a"), None),
            Ok(Some("a".into()))
        );
        assert_eq!(
            k(Role::Admin, home, platform, Platform, Some("a"), Some("a")),
            Ok(Some("a".into()))
        );
        assert!(k(Role::Admin, home, platform, Platform, Some("a"), Some("b")).is_err());
        assert!(k(Role::Admin, home, platform, Platform, None, Some("b")).is_err());
        // nobody sets an authoriser's key through the API, not even itself
        assert!(
            k(
                Role::Authoriser,
                platform,
                platform,
                Authoriser,
                None,
                Some("b")
            )
            .is_err()
        );
        assert!(k(Role::Admin, home, platform, Authoriser, None, Some("b")).is_err());
    }
}
