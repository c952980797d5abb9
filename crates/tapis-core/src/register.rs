//! The public register: what of an order or a notice the public sees.
//!
//! A [`RedactionPolicy`] (the settings' `[register]` section) says which
//! personal data is withheld — person names by field, e-mail addresses and
//! phone numbers by pattern in free text, the operator's own patterns —,
//! for which categories the content locators (a blocked name, a notice
//! item's URL) are withheld because publishing them spreads the content,
//! and how many days after its decision a record of a category is listed.
//! [`order_entry`] and [`notice_entry`] turn the stored facts into the
//! register's entries; they are pure, so the API, the pages and the daily
//! dumps show the same thing.
//!
//! The floor no setting removes (DESIGN, "public register"): every order
//! is listed with its category, legal basis, authoriser (the authorising
//! institution), dates and number of names; whatever is withheld is
//! counted and said ("3 names withheld, category policy"); the policy's
//! canonical hash ([`RedactionPolicy::sha256`]) is on every entry and is
//! logged whenever the effective policy changes.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Error, Result, Timestamp};

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The most patterns a policy may hold, and the longest one.
pub const MAX_PATTERNS: usize = 32;
pub const MAX_PATTERN_LEN: usize = 256;
/// The longest publication delay (ten years).
pub const MAX_DELAY_DAYS: u32 = 3653;

/// What the public may not see, as configured. Build it with
/// [`RedactionPolicy::new`]; every field is checked there.
#[derive(Debug, Clone)]
pub struct RedactionPolicy {
    redact_emails: bool,
    redact_phones: bool,
    publish_person_names: bool,
    /// (source, compiled) — the source is what the hash covers.
    patterns: Vec<(String, Regex)>,
    withhold_locators: BTreeSet<String>,
    delay_days: BTreeMap<String, u32>,
    sha256: String,
}

/// The policy's settings as written (the configuration's `[register]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInput {
    pub redact_emails: bool,
    pub redact_phones: bool,
    pub publish_person_names: bool,
    pub patterns: Vec<String>,
    pub withhold_locators: Vec<String>,
    pub delay_days: BTreeMap<String, u32>,
}

impl Default for PolicyInput {
    /// Personal data withheld, and the locators of child sexual abuse
    /// material and terrorist content: publishing them spreads them.
    fn default() -> Self {
        PolicyInput {
            redact_emails: true,
            redact_phones: true,
            publish_person_names: false,
            patterns: Vec::new(),
            withhold_locators: vec!["child_sexual_abuse".into(), "terrorism".into()],
            delay_days: BTreeMap::new(),
        }
    }
}

impl Default for RedactionPolicy {
    fn default() -> Self {
        RedactionPolicy::new(PolicyInput::default(), &[]).expect("the default policy is valid")
    }
}

fn email_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
            .expect("a valid pattern")
    })
}

fn phone_re() -> &'static Regex {
    // international (+62 …) or trunk-prefixed (0812 …, (021) …) numbers
    // with separators; the digit count is checked after the match
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?:\+\d{1,3}|\(0\d{1,4}\)|0\d)(?:[ .\-]?\d+)+").expect("a valid pattern")
    })
}

impl RedactionPolicy {
    /// Check and compile `input`. `categories`, when not empty, are the
    /// taxonomy's ids: a category the taxonomy does not know is refused (a
    /// typo would silently publish what was meant to be withheld).
    pub fn new(input: PolicyInput, categories: &[&str]) -> Result<Self> {
        if input.patterns.len() > MAX_PATTERNS {
            return Err(Error::invalid(
                "register.patterns",
                format!("at most {MAX_PATTERNS} patterns"),
            ));
        }
        let mut patterns = Vec::new();
        for (i, p) in input.patterns.iter().enumerate() {
            if p.is_empty() || p.len() > MAX_PATTERN_LEN {
                return Err(Error::invalid(
                    format!("register.patterns[{i}]"),
                    format!("a pattern is 1 to {MAX_PATTERN_LEN} characters"),
                ));
            }
            let re = regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    Error::invalid(
                        format!("register.patterns[{i}]"),
                        format!("not a regular expression (Rust regex syntax): {e}"),
                    )
                })?;
            if re.is_match("") {
                return Err(Error::invalid(
                    format!("register.patterns[{i}]"),
                    "the pattern matches the empty text",
                ));
            }
            patterns.push((p.clone(), re));
        }
        let known = |field: &str, c: &str| -> Result<()> {
            if !categories.is_empty() && !categories.contains(&c) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "unknown category {c:?}: use one of {}",
                        categories.join(", ")
                    ),
                ));
            }
            Ok(())
        };
        let mut withhold = BTreeSet::new();
        for c in &input.withhold_locators {
            known("register.withhold_locators", c)?;
            withhold.insert(c.clone());
        }
        for (c, d) in &input.delay_days {
            known("register.delay_days", c)?;
            if *d > MAX_DELAY_DAYS {
                return Err(Error::invalid(
                    format!("register.delay_days.{c}"),
                    format!("at most {MAX_DELAY_DAYS} days"),
                ));
            }
        }
        let mut policy = RedactionPolicy {
            redact_emails: input.redact_emails,
            redact_phones: input.redact_phones,
            publish_person_names: input.publish_person_names,
            patterns,
            withhold_locators: withhold,
            delay_days: input
                .delay_days
                .into_iter()
                .filter(|(_, d)| *d > 0)
                .collect(),
            sha256: String::new(),
        };
        let canon = crate::canonical::to_vec(&policy.to_json())?;
        policy.sha256 = hex::encode(Sha256::digest(&canon));
        Ok(policy)
    }

    /// The policy as JSON: what is hashed and logged.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "version": 1,
            "redact_emails": self.redact_emails,
            "redact_phones": self.redact_phones,
            "publish_person_names": self.publish_person_names,
            "patterns": self.patterns.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
            "withhold_locators": self.withhold_locators,
            "delay_days": self.delay_days,
        })
    }

    /// SHA-256 (hex) of the RFC 8785 form of [`Self::to_json`].
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether `category`'s locators are withheld.
    pub fn withholds_locators(&self, category: &str) -> bool {
        self.withhold_locators.contains(category)
    }

    /// Days between a record's decision and its listing.
    pub fn delay_days(&self, category: &str) -> u32 {
        self.delay_days.get(category).copied().unwrap_or(0)
    }

    /// When a record of `category` decided at `decided` is listed.
    pub fn listed_at(&self, category: &str, decided: Timestamp) -> Timestamp {
        decided.plus_millis(i64::from(self.delay_days(category)) * DAY_MS)
    }

    /// The longest delay of any category (to widen a day's query).
    pub fn max_delay_days(&self) -> u32 {
        self.delay_days.values().copied().max().unwrap_or(0)
    }

    /// Free text with e-mail addresses, phone numbers and the configured
    /// patterns replaced, counting each.
    pub fn redact_text(&self, text: &str, w: &mut Withheld) -> String {
        let mut out = text.to_owned();
        if self.redact_emails {
            let (t, n) = replace(&out, email_re(), "[email withheld]", |_| true);
            out = t;
            w.emails += n;
        }
        if self.redact_phones {
            let (t, n) = replace(&out, phone_re(), "[phone withheld]", |m| {
                let digits = m.bytes().filter(u8::is_ascii_digit).count();
                (9..=15).contains(&digits)
            });
            out = t;
            w.phones += n;
        }
        for (_, re) in &self.patterns {
            let (t, n) = replace(&out, re, "[withheld]", |_| true);
            out = t;
            w.patterns += n;
        }
        out
    }

    /// A person's name field: shown only if the policy publishes names.
    pub fn person(&self, name: Option<&str>, w: &mut Withheld) -> Option<String> {
        let name = name?.trim();
        if name.is_empty() {
            return None;
        }
        if self.publish_person_names {
            Some(self.redact_text(name, w))
        } else {
            w.persons += 1;
            Some(WITHHELD.to_owned())
        }
    }
}

/// The word a withheld value is replaced with.
pub const WITHHELD: &str = "withheld";

/// Replace the matches of `re` that `keep` accepts and that neither start
/// nor end inside a word (so "order12345678901" is not a phone number).
fn replace(text: &str, re: &Regex, with: &str, keep: impl Fn(&str) -> bool) -> (String, u32) {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut n = 0;
    for m in re.find_iter(text) {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let inside_word = text[..m.start()].chars().next_back().is_some_and(word)
            || text[m.end()..].chars().next().is_some_and(word);
        if inside_word || !keep(m.as_str()) {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str(with);
        last = m.end();
        n += 1;
    }
    out.push_str(&text[last..]);
    (out, n)
}

/// What an entry withholds, counted. `reasons` says it in words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Withheld {
    /// Content locators (names, URLs, handles) withheld by category policy.
    pub locators: u32,
    /// Person names withheld by field.
    pub persons: u32,
    pub emails: u32,
    pub phones: u32,
    /// Matches of the operator's own patterns.
    pub patterns: u32,
    /// The counts in words, e.g. "3 names withheld, category policy".
    pub reasons: Vec<String>,
}

impl Withheld {
    fn explain(&mut self, noun: &str) {
        let counted = [
            (self.locators, format!("{noun} withheld, category policy")),
            (self.persons, "person names withheld, field policy".into()),
            (
                self.emails,
                "e-mail addresses withheld, pattern policy".into(),
            ),
            (self.phones, "phone numbers withheld, pattern policy".into()),
            (
                self.patterns,
                "passages withheld, configured patterns".into(),
            ),
        ];
        self.reasons = counted
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
    }
}

/// An order's stored facts, as the store reads them.
#[derive(Debug, Clone)]
pub struct OrderFacts {
    pub id: String,
    pub state: String,
    pub action: String,
    pub category: String,
    pub legal_basis_reference: String,
    pub legal_basis_text: String,
    pub explanation: Option<String>,
    pub issuing_authority: String,
    pub proposer_person: Option<String>,
    pub approver_person: Option<String>,
    pub approved_at: Timestamp,
    pub effective_at: Timestamp,
    pub expires_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    pub emergency: bool,
    /// The latest authorisation or refusal, if any.
    pub authorisation: Option<AuthorisationFacts>,
    /// How many names the order covers.
    pub names_count: usize,
    /// The names, sorted (all of them, or the first few for a list).
    pub names: Vec<String>,
    /// Platforms the order affects (party id, name).
    pub platforms: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct AuthorisationFacts {
    /// The authorising institution (the authoriser party's name).
    pub authoriser: String,
    pub signer: String,
    pub decision: String,
    pub at: Timestamp,
}

/// An order as the register shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterOrder {
    pub id: String,
    pub state: String,
    pub action: String,
    pub category: String,
    pub legal_basis: LegalBasis,
    pub explanation: Option<String>,
    /// The authority that issued the order (a public body).
    pub issuing_authority: String,
    pub proposer: Option<String>,
    pub approver: Option<String>,
    pub authorisation: Option<RegisterAuthorisation>,
    pub emergency: bool,
    pub approved_at: Timestamp,
    pub effective_at: Timestamp,
    pub expires_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    /// How many names the order covers (always shown).
    pub names_count: usize,
    /// The names (in a list, the first few), or "withheld" for each one
    /// the category policy hides.
    pub names: Vec<String>,
    pub platforms: Vec<RegisterParty>,
    pub listed_at: Timestamp,
    pub withheld: Withheld,
    /// The redaction policy this entry was drawn under.
    pub policy_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LegalBasis {
    pub reference: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterAuthorisation {
    /// The authorising institution: always shown.
    pub authoriser: String,
    /// The person who signed, by the person-name policy.
    pub signer: Option<String>,
    pub decision: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterParty {
    pub id: String,
    pub name: String,
}

/// The order as the register shows it under `policy`.
pub fn order_entry(policy: &RedactionPolicy, f: OrderFacts) -> RegisterOrder {
    let mut w = Withheld::default();
    let hide = policy.withholds_locators(&f.category);
    let names_count = f.names_count;
    let names = if hide {
        w.locators = u32::try_from(names_count).unwrap_or(u32::MAX);
        vec![WITHHELD.to_owned(); f.names.len()]
    } else {
        f.names
    };
    let legal_basis = LegalBasis {
        reference: policy.redact_text(&f.legal_basis_reference, &mut w),
        text: policy.redact_text(&f.legal_basis_text, &mut w),
    };
    let explanation = f
        .explanation
        .as_deref()
        .map(|e| policy.redact_text(e, &mut w));
    let proposer = policy.person(f.proposer_person.as_deref(), &mut w);
    let approver = policy.person(f.approver_person.as_deref(), &mut w);
    let authorisation = f.authorisation.map(|a| RegisterAuthorisation {
        authoriser: a.authoriser,
        signer: policy.person(Some(&a.signer), &mut w),
        decision: a.decision,
        at: a.at,
    });
    let end_reason = f
        .end_reason
        .as_deref()
        .map(|e| policy.redact_text(e, &mut w));
    w.explain("names");
    RegisterOrder {
        listed_at: policy.listed_at(&f.category, f.approved_at),
        id: f.id,
        state: f.state,
        action: f.action,
        category: f.category,
        legal_basis,
        explanation,
        issuing_authority: f.issuing_authority,
        proposer,
        approver,
        authorisation,
        emergency: f.emergency,
        approved_at: f.approved_at,
        effective_at: f.effective_at,
        expires_at: f.expires_at,
        activated_at: f.activated_at,
        ended_at: f.ended_at,
        end_reason,
        names_count,
        names,
        platforms: f
            .platforms
            .into_iter()
            .map(|(id, name)| RegisterParty { id, name })
            .collect(),
        withheld: w,
        policy_sha256: policy.sha256().to_owned(),
    }
}

/// A notice's stored facts.
#[derive(Debug, Clone)]
pub struct NoticeFacts {
    pub id: String,
    pub state: String,
    pub category: String,
    pub legal_basis_reference: String,
    pub legal_basis_text: String,
    pub explanation: String,
    pub territorial_scope: Vec<String>,
    pub issuing_authority: String,
    pub issuer_person: Option<String>,
    pub platform: (String, String),
    pub trusted_flagger: bool,
    pub submitted_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// How many items the notice has.
    pub items_count: usize,
    /// Its items (all of them, or the first few for a list).
    pub items: Vec<ItemFacts>,
}

#[derive(Debug, Clone)]
pub struct ItemFacts {
    pub id: String,
    pub position: i64,
    pub kind: String,
    pub value: String,
    pub state: String,
    pub reason: Option<String>,
    pub decided_at: Option<Timestamp>,
}

/// A notice as the register shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterNotice {
    pub id: String,
    pub state: String,
    pub category: String,
    pub legal_basis: LegalBasis,
    pub explanation: String,
    pub territorial_scope: Vec<String>,
    pub issuing_authority: String,
    pub issuer: Option<String>,
    pub platform: RegisterParty,
    pub trusted_flagger: bool,
    pub submitted_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub items_count: usize,
    pub items: Vec<RegisterItem>,
    pub listed_at: Timestamp,
    pub withheld: Withheld,
    pub policy_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterItem {
    pub id: String,
    pub position: i64,
    pub kind: String,
    /// The locator, or "withheld".
    pub locator: String,
    /// The platform's decision (`pending` until it decides).
    pub decision: String,
    pub reason: Option<String>,
    pub decided_at: Option<Timestamp>,
}

/// The notice as the register shows it under `policy`.
pub fn notice_entry(policy: &RedactionPolicy, f: NoticeFacts) -> RegisterNotice {
    let mut w = Withheld::default();
    let hide = policy.withholds_locators(&f.category);
    let items_count = f.items_count;
    if hide {
        w.locators = u32::try_from(items_count).unwrap_or(u32::MAX);
    }
    let items = f
        .items
        .into_iter()
        .map(|i| {
            let locator = if hide { WITHHELD.to_owned() } else { i.value };
            RegisterItem {
                reason: i.reason.as_deref().map(|r| policy.redact_text(r, &mut w)),
                id: i.id,
                position: i.position,
                kind: i.kind,
                locator,
                decision: i.state,
                decided_at: i.decided_at,
            }
        })
        .collect();
    let legal_basis = LegalBasis {
        reference: policy.redact_text(&f.legal_basis_reference, &mut w),
        text: policy.redact_text(&f.legal_basis_text, &mut w),
    };
    let explanation = policy.redact_text(&f.explanation, &mut w);
    let issuer = policy.person(f.issuer_person.as_deref(), &mut w);
    w.explain("locators");
    RegisterNotice {
        listed_at: policy.listed_at(&f.category, f.submitted_at),
        id: f.id,
        state: f.state,
        category: f.category,
        legal_basis,
        explanation,
        territorial_scope: f.territorial_scope,
        issuing_authority: f.issuing_authority,
        issuer,
        platform: RegisterParty {
            id: f.platform.0,
            name: f.platform.1,
        },
        trusted_flagger: f.trusted_flagger,
        submitted_at: f.submitted_at,
        closed_at: f.closed_at,
        items_count,
        items,
        withheld: w,
        policy_sha256: policy.sha256().to_owned(),
    }
}

/// Whether a free-text query matches an entry's public text (searched
/// after redaction, so a query cannot confirm a withheld value).
pub fn text_matches(query: &str, haystacks: &[&str]) -> bool {
    let q = query.to_lowercase();
    haystacks.iter().any(|h| h.to_lowercase().contains(&q))
}

impl RegisterOrder {
    /// Does the free-text `q` occur in what the entry shows?
    pub fn matches(&self, q: &str) -> bool {
        let mut h: Vec<&str> = vec![
            &self.id,
            &self.category,
            &self.legal_basis.reference,
            &self.legal_basis.text,
            &self.issuing_authority,
        ];
        h.extend(self.explanation.as_deref());
        h.extend(self.names.iter().map(String::as_str));
        h.extend(self.platforms.iter().map(|p| p.name.as_str()));
        text_matches(q, &h)
    }
}

impl RegisterNotice {
    /// Does the free-text `q` occur in what the entry shows?
    pub fn matches(&self, q: &str) -> bool {
        let mut h: Vec<&str> = vec![
            &self.id,
            &self.category,
            &self.legal_basis.reference,
            &self.legal_basis.text,
            &self.explanation,
            &self.issuing_authority,
            &self.platform.name,
        ];
        h.extend(self.items.iter().map(|i| i.locator.as_str()));
        text_matches(q, &h)
    }
}

/// A UTC day, `YYYY-MM-DD`: the unit of the daily dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(time::Date);

impl Day {
    pub fn parse(field: &str, s: &str) -> Result<Day> {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        if s.len() != 10 {
            return Err(Error::invalid(field, "a UTC day as YYYY-MM-DD"));
        }
        time::Date::parse(s, fmt)
            .map(Day)
            .map_err(|_| Error::invalid(field, "a UTC day as YYYY-MM-DD"))
    }

    /// The UTC day `t` falls in.
    pub fn of(t: Timestamp) -> Day {
        let days = t.unix_millis().div_euclid(DAY_MS);
        let date = time::OffsetDateTime::UNIX_EPOCH
            .date()
            .checked_add(time::Duration::days(days))
            .unwrap_or(time::Date::MIN);
        Day(date)
    }

    /// The day's first millisecond.
    pub fn start(self) -> Timestamp {
        let days = (self.0 - time::OffsetDateTime::UNIX_EPOCH.date()).whole_days();
        Timestamp::from_unix_millis(days * DAY_MS)
    }

    /// The next day's first millisecond.
    pub fn end(self) -> Timestamp {
        self.start().plus_millis(DAY_MS)
    }

    pub fn next(self) -> Day {
        Day(self.0.next_day().unwrap_or(self.0))
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

/// One line of a daily dump: the fields of a record that never change
/// after it is listed (its later state is the API's), so a closed day's
/// dump is the same bytes every time under the same policy.
pub fn dump_line(entry: &DumpEntry<'_>) -> Result<String> {
    let v = match entry {
        DumpEntry::Order(o) => json!({
            "type": "order",
            "id": o.id,
            "listed_at": o.listed_at,
            "category": o.category,
            "action": o.action,
            "legal_basis": {"reference": o.legal_basis.reference, "text": o.legal_basis.text},
            "explanation": o.explanation,
            "issuing_authority": o.issuing_authority,
            "approved_at": o.approved_at,
            "effective_at": o.effective_at,
            "expires_at": o.expires_at,
            "emergency": o.emergency,
            "names_count": o.names_count,
            "names": o.names,
            "withheld": {"locators": o.withheld.locators, "emails": o.withheld.emails, "phones": o.withheld.phones, "patterns": o.withheld.patterns},
            "policy_sha256": o.policy_sha256,
        }),
        DumpEntry::Notice(n) => json!({
            "type": "notice",
            "id": n.id,
            "listed_at": n.listed_at,
            "category": n.category,
            "legal_basis": {"reference": n.legal_basis.reference, "text": n.legal_basis.text},
            "explanation": n.explanation,
            "territorial_scope": n.territorial_scope,
            "issuing_authority": n.issuing_authority,
            "platform": {"id": n.platform.id, "name": n.platform.name},
            "submitted_at": n.submitted_at,
            "items_count": n.items_count,
            "items": n.items.iter().map(|i| json!({"position": i.position, "kind": i.kind, "locator": i.locator})).collect::<Vec<_>>(),
            "withheld": {"locators": n.withheld.locators, "emails": n.withheld.emails, "phones": n.withheld.phones, "patterns": n.withheld.patterns},
            "policy_sha256": n.policy_sha256,
        }),
    };
    crate::canonical::to_string(&v)
}

/// What a dump line is drawn from.
pub enum DumpEntry<'a> {
    Order(&'a RegisterOrder),
    Notice(&'a RegisterNotice),
}

/// A day's dump from its entries: sorted by (listed_at, type, id), one
/// RFC 8785 JSON object per line, each line ending in `\n`.
pub fn dump(mut lines: Vec<(Timestamp, &'static str, String, String)>) -> String {
    lines.sort();
    let mut out = String::new();
    for (_, _, _, l) in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
