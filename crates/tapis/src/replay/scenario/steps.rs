//! The step vocabulary: what each action and expectation of a scenario
//! file takes (one struct each, decoded from the step's table with unknown
//! fields refused), the `actions!` list that maps a step's `do` to its
//! struct, and the check that every token, party, notice and order a step
//! names exists by then. The driver gives each of these one function
//! (`driver/actions.rs`, `driver/expect.rs`).

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{PartyDef, When};

/// Declares the structs a step's table decodes into. Every one refuses
/// unknown fields (a typo is an error naming its line, not a key silently
/// ignored); `pub struct Name as { … }` adds the `as` field, the scenario
/// token the step acts with (`by`, as `as` is a Rust keyword).
macro_rules! step_fields {
    () => {};
    ($(#[$m:meta])* pub struct $name:ident as { $($body:tt)* } $($rest:tt)*) => {
        step_fields! {
            $(#[$m])* pub struct $name {
                #[serde(rename = "as")]
                pub by: String,
                $($body)*
            }
            $($rest)*
        }
    };
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* } $($rest:tt)*) => {
        $(#[$m])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($body)* }
        step_fields! { $($rest)* }
    };
}

step_fields! {
    pub struct ItemDef {
        pub kind: String,
        pub value: String,
        #[serde(default)]
        pub native_id: Option<String>,
    }

    /// `count` channels named `@{prefix}{n}` (n from `first`), each with a
    /// native id, for cases with many channels.
    pub struct ChannelRange {
        pub prefix: String,
        pub first: u32,
        pub count: u32,
    }

    pub struct SubmitNotice as {
        /// How later steps name this notice.
        pub notice: String,
        pub platform: String,
        pub category: String,
        #[serde(default = "default_urgency")]
        pub urgency: String,
        pub legal_basis: String,
        #[serde(default)]
        pub legal_text: Option<String>,
        pub explanation: String,
        #[serde(default)]
        pub items: Vec<ItemDef>,
        #[serde(default)]
        pub channels: Option<ChannelRange>,
    }

    pub struct As as {}

    pub struct OnNotice as {
        pub notice: String,
    }

    pub struct Decide as {
        pub notice: String,
        /// Item positions (from 0); all undecided items when left out.
        #[serde(default)]
        pub items: Option<Vec<usize>>,
        pub decision: String,
        #[serde(default)]
        pub reason: Option<String>,
    }

    pub struct Withdraw as {
        pub notice: String,
        pub reason: String,
    }

    pub struct DecideEscalation as {
        /// The notice whose escalation is decided.
        pub notice: String,
        /// propose_order or dismiss
        pub decision: String,
        pub note: String,
    }

    pub struct ProposeOrder as {
        /// How later steps name this order.
        pub order: String,
        /// Draft the order from this notice's escalation (its domain and URL
        /// items); otherwise a standalone order over `targets`.
        #[serde(default)]
        pub from_escalation_of: Option<String>,
        #[serde(default)]
        pub targets: Vec<String>,
        #[serde(default)]
        pub include_subdomains: bool,
        #[serde(default)]
        pub action: Option<String>,
        #[serde(default)]
        pub category: Option<String>,
        #[serde(default)]
        pub legal_basis: Option<String>,
        #[serde(default)]
        pub legal_text: Option<String>,
        #[serde(default)]
        pub explanation: Option<String>,
        /// Notices the order follows from.
        #[serde(default)]
        pub notices: Vec<String>,
        /// An emergency order: in force without the independent authorisation
        /// it may need, lapsing unless authorised in time (standalone only).
        #[serde(default)]
        pub emergency: bool,
        pub effective_at: When,
        pub expires_at: When,
        pub review_at: When,
    }

    pub struct OnOrder as {
        pub order: String,
    }

    /// An authoriser's signed decision on an order. The replay signs with a
    /// key of its own for the token's party (registered on first use).
    pub struct AuthoriseOrder as {
        pub order: String,
        /// `authorise` (the default) or `refuse`.
        #[serde(default)]
        pub decision: Option<String>,
        pub reasons: String,
    }

    /// An affected platform's answer to a proposed order.
    pub struct RespondToOrder as {
        pub order: String,
        /// `comply`, `dispute` or `clarification`.
        pub kind: String,
        pub text: String,
    }

    pub struct OrderWithText as {
        pub order: String,
        /// Why (lift) or the review's note.
        pub reason: String,
    }

    pub struct OnParty {
        pub party: String,
    }

    /// Any API call, for routes that have no action of their own yet (e.g. a
    /// new step in the order flow). `{notice:NAME}`, `{order:NAME}` and
    /// `{party:NAME}` in the path and in the body's strings become ids.
    pub struct Request as {
        /// GET, POST, PUT, PATCH or DELETE
        pub method: String,
        /// e.g. `/api/v1/orders/{order:block}/review`
        pub path: String,
        #[serde(default)]
        pub body: Option<toml::Table>,
    }

    pub struct Note {
        pub text: String,
    }

    // expectations

    pub struct ExpectNotice {
        pub notice: String,
        #[serde(default)]
        pub state: Option<String>,
        /// Delivered (the platform demonstrably has it) by now.
        #[serde(default)]
        pub delivered: Option<bool>,
        /// An escalation was opened for it.
        #[serde(default)]
        pub escalated: Option<bool>,
    }

    pub struct ExpectItem {
        pub notice: String,
        /// Position from 0.
        pub item: usize,
        #[serde(default)]
        pub state: Option<String>,
        /// The notice whose item this one duplicates.
        #[serde(default)]
        pub duplicate_of: Option<String>,
    }

    pub struct ExpectOrder {
        pub order: String,
        pub state: String,
    }

    pub struct ExpectBlocked {
        pub name: String,
        pub blocked: bool,
        /// lookup (the public API), dns (a zone transfer from tapis's RPZ
        /// primary, as an ISP secondary sees it) or both (the default).
        #[serde(default = "default_via")]
        pub via: String,
    }

    pub struct ExpectAudit {
        pub verifies: bool,
    }

    pub struct ExpectReceived {
        /// The platform that should have the event.
        pub party: String,
        pub notice: String,
        #[serde(default = "default_event")]
        pub event: String,
        /// webhook, email or any.
        #[serde(default = "default_any")]
        pub via: String,
    }
}

fn default_urgency() -> String {
    "urgent".into()
}

/// The `{kind:name}` references in `text`.
pub fn references(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        if let Some((kind, name)) = after[..close].split_once(':')
            && matches!(kind, "notice" | "order" | "party")
        {
            out.push((kind, name));
        }
        rest = &after[close + 1..];
    }
    out
}

fn default_via() -> String {
    "both".into()
}

fn default_event() -> String {
    "notice.submitted".into()
}

fn default_any() -> String {
    "any".into()
}

macro_rules! actions {
    ($($name:literal => $variant:ident($ty:ty)),* $(,)?) => {
        /// What a step does.
        #[derive(Debug, Clone)]
        pub enum Action { $($variant($ty)),* }

        pub const ACTIONS: &[&str] = &[$($name),*];

        pub(super) fn decode(kind: &str, table: toml::Table) -> Result<Action, String> {
            match kind {
                $($name => toml::Value::Table(table)
                    .try_into::<$ty>()
                    .map(Action::$variant)
                    .map_err(|e| e.message().trim().to_owned()),)*
                other => Err(format!("unknown action {other:?}: use one of {}", ACTIONS.join(", "))),
            }
        }

        impl Action {
            pub fn name(&self) -> &'static str {
                match self { $(Action::$variant(_) => $name),* }
            }
        }
    };
}

actions! {
    "submit_notice" => SubmitNotice(SubmitNotice),
    "fetch_inbox" => FetchInbox(As),
    "acknowledge" => Acknowledge(OnNotice),
    "decide" => Decide(Decide),
    "withdraw_notice" => WithdrawNotice(Withdraw),
    "decide_escalation" => DecideEscalation(DecideEscalation),
    "propose_order" => ProposeOrder(ProposeOrder),
    "approve_order" => ApproveOrder(OnOrder),
    "authorise_order" => AuthoriseOrder(AuthoriseOrder),
    "respond_to_order" => RespondToOrder(RespondToOrder),
    "review_order" => ReviewOrder(OrderWithText),
    "lift_order" => LiftOrder(OrderWithText),
    "isp_acknowledge" => IspAcknowledge(As),
    "request" => Request(Request),
    "webhook_down" => WebhookDown(OnParty),
    "webhook_up" => WebhookUp(OnParty),
    "note" => Note(Note),
    "expect_notice" => ExpectNotice(ExpectNotice),
    "expect_item" => ExpectItem(ExpectItem),
    "expect_order" => ExpectOrder(ExpectOrder),
    "expect_blocked" => ExpectBlocked(ExpectBlocked),
    "expect_audit" => ExpectAudit(ExpectAudit),
    "expect_received" => ExpectReceived(ExpectReceived),
}

/// Names a step refers to must exist by then.
pub(super) struct Names<'a> {
    pub(super) parties: &'a [PartyDef],
    pub(super) tokens: &'a BTreeSet<String>,
    pub(super) notices: &'a BTreeSet<String>,
    pub(super) orders: &'a BTreeSet<String>,
}

impl Names<'_> {
    fn token(&self, t: &str) -> Result<(), String> {
        if self.tokens.contains(t) {
            Ok(())
        } else {
            Err(format!(
                "unknown token {t:?} (declare it with [[token]], or use admin)"
            ))
        }
    }

    fn party(&self, p: &str, kind: Option<&str>) -> Result<(), String> {
        match self.parties.iter().find(|x| x.id == p) {
            None => Err(format!("unknown party {p:?}")),
            Some(x) if kind.is_some_and(|k| k != x.kind) => Err(format!(
                "party {p:?} is a {}, not a {}",
                x.kind,
                kind.unwrap_or_default()
            )),
            Some(_) => Ok(()),
        }
    }

    fn notice(&self, n: &str) -> Result<(), String> {
        if self.notices.contains(n) {
            Ok(())
        } else {
            Err(format!(
                "unknown notice {n:?} (no earlier submit_notice names it)"
            ))
        }
    }

    fn order(&self, o: &str) -> Result<(), String> {
        if self.orders.contains(o) {
            Ok(())
        } else {
            Err(format!(
                "unknown order {o:?} (no earlier propose_order names it)"
            ))
        }
    }

    pub(super) fn check(&self, action: &Action) -> Result<(), String> {
        match action {
            Action::SubmitNotice(a) => {
                self.token(&a.by)?;
                self.party(&a.platform, Some("platform"))?;
                if a.items.is_empty() && a.channels.is_none() {
                    return Err("a notice needs items (or channels)".into());
                }
                Ok(())
            }
            Action::FetchInbox(a) | Action::IspAcknowledge(a) => self.token(&a.by),
            Action::Acknowledge(a) => {
                self.token(&a.by)?;
                self.notice(&a.notice)
            }
            Action::Decide(a) => {
                self.token(&a.by)?;
                self.notice(&a.notice)
            }
            Action::WithdrawNotice(a) => {
                self.token(&a.by)?;
                self.notice(&a.notice)
            }
            Action::DecideEscalation(a) => {
                self.token(&a.by)?;
                self.notice(&a.notice)
            }
            Action::ProposeOrder(a) => {
                self.token(&a.by)?;
                if let Some(n) = &a.from_escalation_of {
                    self.notice(n)?;
                    if !a.targets.is_empty() {
                        return Err("give either from_escalation_of or targets, not both".into());
                    }
                } else if a.targets.is_empty() {
                    return Err("a standalone order needs targets".into());
                }
                for n in &a.notices {
                    self.notice(n)?;
                }
                if a.expires_at.0 <= a.effective_at.0 || a.review_at.0 > a.expires_at.0 {
                    return Err(
                        "effective_at < expires_at and review_at <= expires_at, please".into(),
                    );
                }
                Ok(())
            }
            Action::ApproveOrder(a) => {
                self.token(&a.by)?;
                self.order(&a.order)
            }
            Action::AuthoriseOrder(a) => {
                self.token(&a.by)?;
                if !matches!(
                    a.decision.as_deref(),
                    None | Some("authorise") | Some("refuse")
                ) {
                    return Err("decision is authorise or refuse".into());
                }
                self.order(&a.order)
            }
            Action::RespondToOrder(a) => {
                self.token(&a.by)?;
                if !matches!(a.kind.as_str(), "comply" | "dispute" | "clarification") {
                    return Err("kind is comply, dispute or clarification".into());
                }
                self.order(&a.order)
            }
            Action::ReviewOrder(a) | Action::LiftOrder(a) => {
                self.token(&a.by)?;
                self.order(&a.order)
            }
            Action::WebhookDown(a) | Action::WebhookUp(a) => {
                self.party(&a.party, Some("platform"))?;
                match self.parties.iter().find(|p| p.id == a.party) {
                    Some(p) if !p.webhook => Err(format!(
                        "party {:?} has no webhook (webhook = true)",
                        a.party
                    )),
                    _ => Ok(()),
                }
            }
            Action::Request(r) => {
                self.token(&r.by)?;
                if !matches!(
                    r.method.as_str(),
                    "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
                ) {
                    return Err(format!(
                        "method {:?}: use GET, POST, PUT, PATCH or DELETE",
                        r.method
                    ));
                }
                if !r.path.starts_with("/api/v1/") {
                    return Err(format!("path {:?} must start with /api/v1/", r.path));
                }
                let body = r
                    .body
                    .as_ref()
                    .and_then(|b| serde_json::to_string(b).ok())
                    .unwrap_or_default();
                for (kind, name) in references(&r.path).into_iter().chain(references(&body)) {
                    match kind {
                        "notice" => self.notice(name)?,
                        "order" => self.order(name)?,
                        _ => self.party(name, None)?,
                    }
                }
                Ok(())
            }
            Action::Note(_) | Action::ExpectAudit(_) => Ok(()),
            Action::ExpectNotice(e) => {
                if e.state.is_none() && e.delivered.is_none() && e.escalated.is_none() {
                    return Err("say what to expect: state, delivered or escalated".into());
                }
                if let Some(s) = &e.state {
                    tapis_core::notice::NoticeState::parse(s).map_err(|e| e.to_string())?;
                }
                self.notice(&e.notice)
            }
            Action::ExpectItem(e) => {
                if let Some(s) = &e.state {
                    tapis_core::notice::ItemState::parse(s).map_err(|e| e.to_string())?;
                }
                if let Some(d) = &e.duplicate_of {
                    self.notice(d)?;
                }
                self.notice(&e.notice)
            }
            Action::ExpectOrder(e) => {
                tapis_core::order::OrderState::parse(&e.state).map_err(|e| e.to_string())?;
                self.order(&e.order)
            }
            Action::ExpectBlocked(e) => {
                tapis_core::target::DomainName::parse(&e.name).map_err(|e| e.to_string())?;
                if !matches!(e.via.as_str(), "lookup" | "dns" | "both") {
                    return Err(format!("via {:?}: use lookup, dns or both", e.via));
                }
                Ok(())
            }
            Action::ExpectReceived(e) => {
                self.party(&e.party, Some("platform"))?;
                if !matches!(e.via.as_str(), "webhook" | "email" | "any") {
                    return Err(format!("via {:?}: use webhook, email or any", e.via));
                }
                self.notice(&e.notice)
            }
        }
    }
}
