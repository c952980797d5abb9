//! Scenario files: parties, tokens and a timeline of steps (actions and
//! expectations) at given times, in TOML.
//!
//! A step is a table with `at` (RFC 3339 with its offset), `do` (what to
//! do) and that action's own fields. Parsing is two-phase so that every
//! error names its line: the file is read with spans, then each step's
//! table is decoded into its action's struct (`deny_unknown_fields`). The
//! structs, the `actions!` list and the check of the names a step uses
//! are in [`steps`]; this file reads the file, its parties and tokens, and
//! puts the steps in time order.

mod steps;

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use tapis_core::Timestamp;
use toml::Spanned;

pub use steps::*;
use steps::{Names, decode};

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
    /// The person holding it (four eyes compares people); default: the
    /// label, else the id.
    #[serde(default)]
    pub person: Option<String>,
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
        let r = Reader { file, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            r.err(line, e.message().trim().to_owned())
        })?;
        let start = parse_when(&raw.scenario.start)
            .map_err(|e| r.err(1, format!("[scenario] start: {e}")))?
            .0;
        let offset = time::OffsetDateTime::parse(
            raw.scenario.start.trim(),
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.offset())
        .unwrap_or(time::UtcOffset::UTC);
        if tapis_core::policy::SlaPolicy::preset(&raw.scenario.sla).is_none() {
            return Err(r.err(
                1,
                format!(
                    "[scenario] sla {:?} is not a preset: use default or eu-tco",
                    raw.scenario.sla
                ),
            ));
        }
        let parties = r.parties(&raw.party)?;
        let (tokens, token_ids) = r.tokens(&raw.token, &parties)?;
        let steps = r.steps(&raw.step, start, offset, &parties, &token_ids)?;
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

/// The file being parsed, so that every error names its line.
struct Reader<'t> {
    file: &'t str,
    text: &'t str,
}

impl Reader<'_> {
    fn err(&self, line: usize, msg: String) -> ScenarioError {
        ScenarioError(format!("{}:{line}: {msg}", self.file))
    }

    /// Parties: unique ids, known kinds, webhooks and emails for platforms
    /// only, secondaries for ISPs only, and an authority for the server.
    fn parties(&self, raw: &[Spanned<PartyDef>]) -> Result<Vec<PartyDef>, ScenarioError> {
        let mut ids = BTreeSet::new();
        let mut parties = Vec::new();
        for p in raw {
            let line = line_of(self.text, p.span().start);
            let def = p.get_ref().clone();
            if !ids.insert(def.id.clone()) {
                return Err(self.err(line, format!("party id {:?} is used twice", def.id)));
            }
            if !matches!(
                def.kind.as_str(),
                "authority" | "platform" | "isp" | "flagger" | "authoriser"
            ) {
                return Err(self.err(
                    line,
                    format!(
                        "party {:?}: kind {:?} is not authority, platform, isp, flagger or authoriser",
                        def.id, def.kind
                    ),
                ));
            }
            if def.kind != "platform" && (def.webhook || !def.emails.is_empty()) {
                return Err(self.err(
                    line,
                    format!(
                        "party {:?}: only platforms have a webhook or emails",
                        def.id
                    ),
                ));
            }
            if def.kind != "isp" && def.secondary {
                return Err(self.err(
                    line,
                    format!("party {:?}: only ISPs have a secondary", def.id),
                ));
            }
            parties.push(def);
        }
        if !parties.iter().any(|p| p.kind == "authority") {
            return Err(self.err(
                1,
                "a scenario needs an authority party (the first one is the server's own)".into(),
            ));
        }
        Ok(parties)
    }

    /// Tokens: unique ids (`admin` is the server's), a known party, a role.
    /// Also returns every token id a step may use.
    fn tokens(
        &self,
        raw: &[Spanned<TokenDef>],
        parties: &[PartyDef],
    ) -> Result<(Vec<TokenDef>, BTreeSet<String>), ScenarioError> {
        let mut ids = BTreeSet::from(["admin".to_owned()]);
        let mut tokens = Vec::new();
        for t in raw {
            let line = line_of(self.text, t.span().start);
            let def = t.get_ref().clone();
            if !ids.insert(def.id.clone()) {
                return Err(self.err(
                    line,
                    format!(
                        "token id {:?} is used twice (admin is the server's own)",
                        def.id
                    ),
                ));
            }
            if !parties.iter().any(|p| p.id == def.party) {
                return Err(self.err(
                    line,
                    format!("token {:?}: unknown party {:?}", def.id, def.party),
                ));
            }
            tapis_core::role::Role::parse(&def.role)
                .map_err(|e| self.err(line, format!("token {:?}: {e}", def.id)))?;
            tokens.push(def);
        }
        Ok((tokens, ids))
    }

    /// The timeline: each step decoded, times in order, every name it uses
    /// known by then, notice and order names given once.
    fn steps(
        &self,
        raw: &[Spanned<toml::Table>],
        start: Timestamp,
        offset: time::UtcOffset,
        parties: &[PartyDef],
        tokens: &BTreeSet<String>,
    ) -> Result<Vec<Step>, ScenarioError> {
        let mut steps = Vec::new();
        let mut last = start;
        let mut notices = BTreeSet::new();
        let mut orders = BTreeSet::new();
        for (i, s) in raw.iter().enumerate() {
            let (step, kind) = self.step(i + 1, s)?;
            let (index, line, at) = (step.index, step.line, step.at);
            if at < last {
                return Err(self.err(
                    line,
                    format!(
                        "step {index} ({kind}) at {} is before the step or start before it ({}): steps must be in time order",
                        show(at, offset),
                        show(last, offset)
                    ),
                ));
            }
            last = at;
            if step.refused.is_some()
                && (kind.starts_with("expect_")
                    || matches!(kind.as_str(), "note" | "webhook_down" | "webhook_up"))
            {
                return Err(self.err(
                    line,
                    format!("step {index} ({kind}): only a request to tapis can be refused"),
                ));
            }
            let names = Names {
                parties,
                tokens,
                notices: &notices,
                orders: &orders,
            };
            names
                .check(&step.action)
                .map_err(|e| self.err(line, format!("step {index} ({kind}): {e}")))?;
            let (what, name, fresh) = match &step.action {
                Action::SubmitNotice(a) => ("notice", &a.notice, notices.insert(a.notice.clone())),
                Action::ProposeOrder(a) => ("order", &a.order, orders.insert(a.order.clone())),
                _ => ("", &kind, true),
            };
            if !fresh {
                return Err(self.err(
                    line,
                    format!("step {index}: {what} name {name:?} is used twice"),
                ));
            }
            steps.push(step);
        }
        Ok(steps)
    }

    /// One step's table: `at`, `do`, `refused` and the action's own
    /// fields. Also returns the `do`.
    fn step(
        &self,
        index: usize,
        s: &Spanned<toml::Table>,
    ) -> Result<(Step, String), ScenarioError> {
        let line = line_of(self.text, s.span().start);
        let mut table = s.get_ref().clone();
        let at = match table.remove("at") {
            Some(toml::Value::String(v)) => parse_when(&v),
            Some(toml::Value::Datetime(d)) => parse_when(&d.to_string()),
            Some(_) => Err("at must be an RFC 3339 time with an offset".into()),
            None => Err("missing at (an RFC 3339 time with an offset)".into()),
        }
        .map_err(|e| self.err(line, format!("step {index}: {e}")))?
        .0;
        let Some(toml::Value::String(kind)) = table.remove("do") else {
            return Err(self.err(
                line,
                format!("step {index}: missing do (one of {})", ACTIONS.join(", ")),
            ));
        };
        let refused = match table.remove("refused") {
            None => None,
            Some(toml::Value::Integer(n)) if (400..600).contains(&n) => Some(n as u16),
            Some(_) => {
                return Err(self.err(
                    line,
                    format!("step {index}: refused must be an HTTP error status, e.g. 403 or 409"),
                ));
            }
        };
        let action = decode(&kind, table).map_err(|e| {
            let line = field_line(self.text, s.span(), &e).unwrap_or(line);
            self.err(line, format!("step {index} ({kind}): {e}"))
        })?;
        let step = Step {
            index,
            line,
            at,
            action,
            refused,
        };
        Ok((step, kind))
    }
}
