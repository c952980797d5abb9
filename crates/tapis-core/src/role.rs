//! Roles and what each may do. The matrix is data in one place; the HTTP
//! layer asks [`Role::may`] and then scopes reads to the caller's party.

use serde::{Deserialize, Serialize};

use crate::party::PartyKind;
use crate::taxonomy::truncate;
use crate::{Error, Result};

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
            VerifyAudit | ReadDeadLetters => matches!(self, Admin | Auditor),
            // the authoriser registers the public key it signs with
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
        }
    }

    pub fn require(self, action: Action) -> Result<()> {
        if self.may(action) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                role: self.as_str().to_owned(),
                action: action.as_str().to_owned(),
            })
        }
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
}
