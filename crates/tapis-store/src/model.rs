//! What the store returns. These are read models: plain data with the
//! validated core types where they matter, serialisable for the edges.

use serde::Serialize;
use serde_json::Value;
use tapis_core::notice::{Evidence, ItemState, NoticeState, Urgency};
use tapis_core::party::{Contact, PartyKind};
use tapis_core::role::Role;
use tapis_core::target::ItemKind;
use tapis_core::{ItemId, NoticeId, PartyId, Timestamp, TokenId};

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Party {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: PartyId,
    pub kind: PartyKind,
    pub name: String,
    pub contacts: Vec<Contact>,
    pub domains: Vec<String>,
    pub handles: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The holder of a valid token: who is calling, for which party, in which
/// role.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub token_id: TokenId,
    pub party_id: PartyId,
    pub party_kind: PartyKind,
    pub role: Role,
    pub label: String,
    /// The person holding the token; `None` for a machine credential,
    /// which may not propose or approve.
    pub person: Option<tapis_core::person::Person>,
}

impl Principal {
    pub fn actor(&self) -> tapis_core::audit::Actor {
        tapis_core::audit::Actor {
            kind: "token",
            party_id: Some(self.party_id.to_string()),
            token_id: Some(self.token_id.to_string()),
            label: self.label.clone(),
            role: Some(self.role.as_str().to_owned()),
            person: self.person.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: TokenId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub party_id: PartyId,
    pub role: Role,
    pub label: String,
    /// The person holding it (normalised); absent for a machine credential.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub person: Option<tapis_core::person::Person>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it stops working, if it was made to expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Timestamp>,
}

/// A token as its party's list shows it: never the secret or its hash.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRecord {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// When it first authenticated a request; absent if never.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub first_used_at: Option<Timestamp>,
    /// When it was revoked; absent while live.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalBasisView {
    pub reference: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuplicateRef {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub item_id: ItemId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notice_id: NoticeId,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceView {
    pub sha256: String,
    pub description: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub captured_at: Timestamp,
}

impl From<&Evidence> for EvidenceView {
    fn from(e: &Evidence) -> Self {
        EvidenceView {
            sha256: e.sha256.as_str().to_owned(),
            description: e.description.clone(),
            captured_at: e.captured_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: ItemId,
    pub kind: ItemKind,
    pub value: String,
    pub normalized: String,
    pub native_id: Option<String>,
    pub evidence: Vec<EvidenceView>,
    pub state: ItemState,
    pub reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<Timestamp>,
    /// Set when the same target was already in an open notice to this
    /// platform: the platform acts once, and the decision applies to both.
    pub duplicate_of: Option<DuplicateRef>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: NoticeId,
    pub state: NoticeState,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub issuer_party_id: PartyId,
    pub issuer_label: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub platform_id: PartyId,
    pub category: String,
    pub taxonomy_version: String,
    pub urgency: Urgency,
    pub legal_basis: LegalBasisView,
    pub explanation: String,
    pub territorial_scope: Vec<String>,
    pub may_notify_user: bool,
    /// From flags a confirmed trusted-flagger grant covers: first in the
    /// inbox, the policy's shorter deadline, marked in the signed document.
    pub trusted_flagger: bool,
    pub sla_version: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub due_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub submitted_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub delivered_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub acknowledged_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub closed_at: Option<Timestamp>,
    /// SHA-256 of the canonical notice document (hex).
    pub document_sha256: Option<String>,
    /// The notice document as signed by tapis:
    /// `{"payload", "kid", "alg", "signature"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signed_document: Option<Value>,
    pub items: Vec<Item>,
}

/// What a notice list may be narrowed to.
#[derive(Debug, Clone, Default)]
pub struct NoticeFilter {
    pub state: Option<NoticeState>,
    pub platform_id: Option<PartyId>,
    pub issuer_party_id: Option<PartyId>,
    pub category: Option<String>,
    /// Only open notices whose deadline has passed.
    pub overdue: bool,
    /// Leave drafts out (a platform never sees them).
    pub exclude_drafts: bool,
    /// Newest first; continue after this id.
    pub before: Option<NoticeId>,
    pub limit: u32,
    /// Sort by a column of [`NOTICE_SORTS`] instead of newest first
    /// (ties by id), `true` for ascending; pages by `offset` then.
    pub sort: Option<(&'static str, bool)>,
    pub offset: u32,
}

/// Columns a notice list may be sorted by (the web's names → SQL; a
/// notice without a deadline sorts last either way).
pub const NOTICE_SORTS: [(&str, &str); 5] = [
    ("created", "id"),
    ("state", "state"),
    ("category", "category"),
    ("urgency", "urgency"),
    ("deadline", "due_at"),
];

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub seq: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub actor: Value,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub before: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub after: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of a notice submission.
#[derive(Debug, Clone)]
pub struct Created {
    pub notice: Notice,
    /// False when an `Idempotency-Key` matched an earlier submission and
    /// that notice was returned instead.
    pub created: bool,
}
