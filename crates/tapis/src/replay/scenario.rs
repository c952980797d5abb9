//! Scenario files: parties, tokens and a timeline of steps (actions and
//! expectations) at given times, in TOML.
//!
//! A step is a table with `at` (RFC 3339 with its offset), `do` (what to
//! do) and that action's own fields. Parsing is two-phase so that every
//! error names its line: the file is read with spans, then each step's
//! table is decoded into its action's struct (`deny_unknown_fields`). A new
//! action is one line in the `actions!` list, a struct here and an arm in
//! the driver.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use tapis_core::Timestamp;
use toml::Spanned;

/// A scenario file that cannot be used: the message names the line.
#[derive(Debug)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// An instant written in the file (a TOML string or a TOML date-time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct When(pub Timestamp);

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = When;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time with its offset, e.g. 2016-03-29T10:00:00+07:00")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<When, E> {
                parse_when(s).map_err(E::custom)
            }
            // a TOML date-time arrives as a one-entry map
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<When, A::Error> {
                let Some((_, v)) = map.next_entry::<String, String>()? else {
                    return Err(serde::de::Error::custom("empty date-time"));
                };
                parse_when(&v).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

pub fn parse_when(s: &str) -> Result<When, String> {
    Timestamp::parse("time", s.trim()).map(When).map_err(|_| {
        format!("{s:?} is not an RFC 3339 time with an offset (e.g. 2016-03-29T10:00:00+07:00)")
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    scenario: Meta,
    #[serde(default)]
    party: Vec<Spanned<PartyDef>>,
    #[serde(default)]
    token: Vec<Spanned<TokenDef>>,
    #[serde(default)]
    step: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    comparison: Option<Comparison>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the simulated clock starts; its offset is how times are shown.
    pub start: String,
    /// The SLA preset the embedded server runs (`default` or `eu-tco`).
    #[serde(default = "default_sla")]
    pub sla: String,
    /// Where the facts come from.
    #[serde(default)]
    pub source: Option<String>,
}

fn default_sla() -> String {
    "default".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyDef {
    /// How steps name this party.
    pub id: String,
    /// authority, platform, isp, flagger or authoriser. The first authority is the
    /// server's own (the admin token's party).
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub domains: Vec<String>,
    /// Platforms: the replay runs a webhook receiver for it.
    #[serde(default)]
    pub webhook: bool,
    /// Platforms: addresses for the email fallback (the replay's SMTP sink
    /// receives them).
    #[serde(default)]
    pub emails: Vec<String>,
    /// ISPs: the replay acts as this ISP's secondary (TSIG key, NOTIFY,
    /// zone transfers).
    #[serde(default)]
    pub secondary: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenDef {
    /// How steps name this token (`as = "…"`); `admin` is the server's.
    pub id: String,
    pub party: String,
    pub role: String,
    #[serde(default)]
    pub label: Option<String>,
}

/// The historical record a case is compared with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub label: String,
    pub first_request: When,
    /// When the first escalation of any kind happened (in 2017: the block).
    pub first_escalation: When,
    pub names_blocked: u64,
    pub items_targeted: u64,
    #[serde(default)]
    pub block_lifted: Option<When>,
    #[serde(default)]
    pub notes: Vec<String>,
}

// ---- actions --------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDef {
    pub kind: String,
    pub value: String,
    #[serde(default)]
    pub native_id: Option<String>,
}

/// `count` channels named `@{prefix}{n}` (n from `first`), each with a
/// native id, for cases with many channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRange {
    pub prefix: String,
    pub first: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitNotice {
    #[serde(rename = "as")]
    pub by: String,
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

fn default_urgency() -> String {
    "urgent".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct As {
    #[serde(rename = "as")]
    pub by: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnNotice {
    #[serde(rename = "as")]
    pub by: String,
    pub notice: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    #[serde(rename = "as")]
    pub by: String,
    pub notice: String,
    /// Item positions (from 0); all undecided items when left out.
    #[serde(default)]
    pub items: Option<Vec<usize>>,
    pub decision: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    #[serde(rename = "as")]
    pub by: String,
    pub notice: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideEscalation {
    #[serde(rename = "as")]
    pub by: String,
    /// The notice whose escalation is decided.
    pub notice: String,
    /// propose_order or dismiss
    pub decision: String,
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeOrder {
    #[serde(rename = "as")]
    pub by: String,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnOrder {
    #[serde(rename = "as")]
    pub by: String,
    pub order: String,
}

/// An authoriser's signed decision on an order. The replay signs with a
/// key of its own for the token's party (registered on first use).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoriseOrder {
    #[serde(rename = "as")]
    pub by: String,
    pub order: String,
    /// `authorise` (the default) or `refuse`.
    #[serde(default)]
    pub decision: Option<String>,
    pub reasons: String,
}

/// An affected platform's answer to a proposed order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondToOrder {
    #[serde(rename = "as")]
    pub by: String,
    pub order: String,
    /// `comply`, `dispute` or `clarification`.
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderWithText {
    #[serde(rename = "as")]
    pub by: String,
    pub order: String,
    /// Why (lift) or the review's note.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnParty {
    pub party: String,
}

/// Any API call, for routes that have no action of their own yet (e.g. a
/// new step in the order flow). `{notice:NAME}`, `{order:NAME}` and
/// `{party:NAME}` in the path and in the body's strings become ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(rename = "as")]
    pub by: String,
    /// GET, POST, PUT, PATCH or DELETE
    pub method: String,
    /// e.g. `/api/v1/orders/{order:block}/review`
    pub path: String,
    #[serde(default)]
    pub body: Option<toml::Table>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub text: String,
}

// ---- expectations ---------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectOrder {
    pub order: String,
    pub state: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectBlocked {
    pub name: String,
    pub blocked: bool,
    /// lookup (the public API), dns (a zone transfer from tapis's RPZ
    /// primary, as an ISP secondary sees it) or both (the default).
    #[serde(default = "default_via")]
    pub via: String,
}

fn default_via() -> String {
    "both".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectAudit {
    pub verifies: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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

        fn decode(kind: &str, table: toml::Table) -> Result<Action, String> {
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

/// One step of the timeline.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based position in the file.
    pub index: usize,
    pub line: usize,
    pub at: Timestamp,
    pub action: Action,
    /// The step must be refused with this HTTP status (`refused = 409`):
    /// a rule the scenario shows holding.
    pub refused: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub meta: Meta,
    pub start: Timestamp,
    /// The offset of `start`, used to show every time.
    pub offset: time::UtcOffset,
    pub parties: Vec<PartyDef>,
    pub tokens: Vec<TokenDef>,
    pub steps: Vec<Step>,
    pub comparison: Option<Comparison>,
}

/// The line of the field a decoding error names (`unknown field `x``),
/// searched within the step's table.
fn field_line(text: &str, span: std::ops::Range<usize>, message: &str) -> Option<usize> {
    let field = message.split('`').nth(1)?;
    let body = text.get(span.clone())?;
    let mut offset = 0;
    for l in body.split_inclusive('\n') {
        let key = l.trim_start();
        if key.starts_with(field) && key[field.len()..].trim_start().starts_with('=') {
            return Some(line_of(text, span.start + offset));
        }
        offset += l.len();
    }
    None
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|s| s.bytes().filter(|b| *b == b'\n').count() + 1)
        .unwrap_or(0)
}

impl Scenario {
    /// Parse and check a scenario. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let err = |line: usize, msg: String| ScenarioError(format!("{file}:{line}: {msg}"));
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            err(line, e.message().trim().to_owned())
        })?;
        let start = parse_when(&raw.scenario.start)
            .map_err(|e| err(1, format!("[scenario] start: {e}")))?
            .0;
        let offset = time::OffsetDateTime::parse(
            raw.scenario.start.trim(),
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.offset())
        .unwrap_or(time::UtcOffset::UTC);
        if tapis_core::policy::SlaPolicy::preset(&raw.scenario.sla).is_none() {
            return Err(err(
                1,
                format!(
                    "[scenario] sla {:?} is not a preset: use default or eu-tco",
                    raw.scenario.sla
                ),
            ));
        }

        // parties and tokens: unique ids, known kinds, one home authority
        let mut party_ids = BTreeSet::new();
        let mut parties = Vec::new();
        for p in &raw.party {
            let line = line_of(text, p.span().start);
            let def = p.get_ref().clone();
            if !party_ids.insert(def.id.clone()) {
                return Err(err(line, format!("party id {:?} is used twice", def.id)));
            }
            if !matches!(
                def.kind.as_str(),
                "authority" | "platform" | "isp" | "flagger" | "authoriser"
            ) {
                return Err(err(
                    line,
                    format!(
                        "party {:?}: kind {:?} is not authority, platform, isp, flagger or authoriser",
                        def.id, def.kind
                    ),
                ));
            }
            if def.kind != "platform" && (def.webhook || !def.emails.is_empty()) {
                return Err(err(
                    line,
                    format!(
                        "party {:?}: only platforms have a webhook or emails",
                        def.id
                    ),
                ));
            }
            if def.kind != "isp" && def.secondary {
                return Err(err(
                    line,
                    format!("party {:?}: only ISPs have a secondary", def.id),
                ));
            }
            parties.push(def);
        }
        if !parties.iter().any(|p| p.kind == "authority") {
            return Err(err(
                1,
                "a scenario needs an authority party (the first one is the server's own)".into(),
            ));
        }
        let mut token_ids = BTreeSet::from(["admin".to_owned()]);
        let mut tokens = Vec::new();
        for t in &raw.token {
            let line = line_of(text, t.span().start);
            let def = t.get_ref().clone();
            if !token_ids.insert(def.id.clone()) {
                return Err(err(
                    line,
                    format!(
                        "token id {:?} is used twice (admin is the server's own)",
                        def.id
                    ),
                ));
            }
            if !party_ids.contains(&def.party) {
                return Err(err(
                    line,
                    format!("token {:?}: unknown party {:?}", def.id, def.party),
                ));
            }
            tapis_core::role::Role::parse(&def.role)
                .map_err(|e| err(line, format!("token {:?}: {e}", def.id)))?;
            tokens.push(def);
        }

        // the timeline: decode each step, times in order, names known
        let mut steps = Vec::new();
        let mut last = start;
        let mut notices = BTreeSet::new();
        let mut orders = BTreeSet::new();
        for (i, s) in raw.step.iter().enumerate() {
            let line = line_of(text, s.span().start);
            let mut table = s.get_ref().clone();
            let index = i + 1;
            let at = match table.remove("at") {
                Some(toml::Value::String(v)) => parse_when(&v),
                Some(toml::Value::Datetime(d)) => parse_when(&d.to_string()),
                Some(_) => Err("at must be an RFC 3339 time with an offset".into()),
                None => Err("missing at (an RFC 3339 time with an offset)".into()),
            }
            .map_err(|e| err(line, format!("step {index}: {e}")))?
            .0;
            let kind = match table.remove("do") {
                Some(toml::Value::String(v)) => v,
                _ => {
                    return Err(err(
                        line,
                        format!("step {index}: missing do (one of {})", ACTIONS.join(", ")),
                    ));
                }
            };
            let refused = match table.remove("refused") {
                None => None,
                Some(toml::Value::Integer(n)) if (400..600).contains(&n) => Some(n as u16),
                Some(_) => {
                    return Err(err(
                        line,
                        format!(
                            "step {index}: refused must be an HTTP error status, e.g. 403 or 409"
                        ),
                    ));
                }
            };
            let action = decode(&kind, table).map_err(|e| {
                let line = field_line(text, s.span(), &e).unwrap_or(line);
                err(line, format!("step {index} ({kind}): {e}"))
            })?;
            if at < last {
                return Err(err(
                    line,
                    format!(
                        "step {index} ({kind}) at {} is before the step or start before it ({}): steps must be in time order",
                        show(at, offset),
                        show(last, offset)
                    ),
                ));
            }
            last = at;
            if refused.is_some()
                && (kind.starts_with("expect_")
                    || matches!(kind.as_str(), "note" | "webhook_down" | "webhook_up"))
            {
                return Err(err(
                    line,
                    format!("step {index} ({kind}): only a request to tapis can be refused"),
                ));
            }
            let ctx = Names {
                parties: &parties,
                tokens: &token_ids,
                notices: &notices,
                orders: &orders,
            };
            ctx.check(&action)
                .map_err(|e| err(line, format!("step {index} ({kind}): {e}")))?;
            match &action {
                Action::SubmitNotice(a) if !notices.insert(a.notice.clone()) => {
                    return Err(err(
                        line,
                        format!("step {index}: notice name {:?} is used twice", a.notice),
                    ));
                }
                Action::ProposeOrder(a) if !orders.insert(a.order.clone()) => {
                    return Err(err(
                        line,
                        format!("step {index}: order name {:?} is used twice", a.order),
                    ));
                }
                _ => {}
            }
            steps.push(Step {
                index,
                line,
                at,
                action,
                refused,
            });
        }
        Ok(Scenario {
            meta: raw.scenario,
            start,
            offset,
            parties,
            tokens,
            steps,
            comparison: raw.comparison,
        })
    }

    pub fn party(&self, id: &str) -> Option<&PartyDef> {
        self.parties.iter().find(|p| p.id == id)
    }

    /// When the timeline ends.
    pub fn end(&self) -> Timestamp {
        self.steps.last().map(|s| s.at).unwrap_or(self.start)
    }

    pub fn show(&self, t: Timestamp) -> String {
        show(t, self.offset)
    }
}

/// `t` in `offset`, e.g. `2016-03-29 10:00:00 +07:00`.
pub fn show(t: Timestamp, offset: time::UtcOffset) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_millis()) * 1_000_000)
        .ok()
        .map(|u| u.to_offset(offset))
        .and_then(|u| u.format(&fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Names a step refers to must exist by then.
struct Names<'a> {
    parties: &'a [PartyDef],
    tokens: &'a BTreeSet<String>,
    notices: &'a BTreeSet<String>,
    orders: &'a BTreeSet<String>,
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

    fn check(&self, action: &Action) -> Result<(), String> {
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
