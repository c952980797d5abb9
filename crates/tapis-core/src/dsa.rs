//! Platforms' decisions as statements of reasons in the EU Digital
//! Services Act Transparency Database's vocabulary (DSA article 24(5); the
//! database's API documentation, "statement of reasons" fields), and a
//! validator for that database's field rules: required fields, maximum
//! lengths, enumerations, the fields one value makes required, and dates.
//!
//! What maps to what (the table [`category`], [`visibility`],
//! [`content_type`] keep; README "Public register" repeats it):
//!
//! | tapis | DSA |
//! |---|---|
//! | category `terrorism`, `public_order` | `STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY` |
//! | `violent_extremism` | `STATEMENT_CATEGORY_VIOLENCE` |
//! | `child_sexual_abuse` | `STATEMENT_CATEGORY_PROTECTION_OF_MINORS` |
//! | `gambling` | `STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS` |
//! | `fraud` | `STATEMENT_CATEGORY_SCAMS_AND_FRAUD` |
//! | `disinformation` | `STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS` |
//! | `pornography` | `STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT` |
//! | `other` | `STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH` |
//! | decision `removed` | `DECISION_VISIBILITY_CONTENT_REMOVED` |
//! | `geo_blocked` | `DECISION_VISIBILITY_CONTENT_DISABLED` (access disabled in the territories) |
//! | `restricted` | `DECISION_VISIBILITY_OTHER`, other: "access restricted" |
//! | any other decision (rejected, not found, already removed, …) | no statement: nothing was restricted |
//! | every item kind | `CONTENT_TYPE_OTHER` with the kind in `content_type_other` (tapis does not know the media type) |
//! | every notice | `DECISION_GROUND_ILLEGAL_CONTENT` (an authority's notice under a law) |
//! | a trusted flagger's notice | `SOURCE_TRUSTED_FLAGGER`; any other: `SOURCE_TYPE_OTHER_NOTIFICATION` (an authority's order) |
//! | automation | `automated_detection` "No", `automated_decision` `AUTOMATED_DECISION_NOT_AUTOMATED`: tapis records a decision its platform agent submitted, and no more |
//!
//! The database accepts only EEA member states in `territorial_scope`: a
//! decision whose notice names none is not exported (it is counted).

use serde::Serialize;
use serde_json::Value;

use crate::Timestamp;

pub const DECISION_VISIBILITY: &[&str] = &[
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
];
pub const DECISION_GROUND: &[&str] = &[
    "DECISION_GROUND_ILLEGAL_CONTENT",
    "DECISION_GROUND_INCOMPATIBLE_CONTENT",
];
pub const CATEGORY: &[&str] = &[
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NON_CONSENSUAL_BEHAVIOUR",
    "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE",
    "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
];
pub const CONTENT_TYPE: &[&str] = &[
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
    "CONTENT_TYPE_OTHER",
];
pub const SOURCE_TYPE: &[&str] = &[
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
];
pub const AUTOMATED_DETECTION: &[&str] = &["Yes", "No"];
pub const AUTOMATED_DECISION: &[&str] = &[
    "AUTOMATED_DECISION_FULLY",
    "AUTOMATED_DECISION_PARTIALLY",
    "AUTOMATED_DECISION_NOT_AUTOMATED",
];
/// The EEA member states the database accepts in `territorial_scope`.
pub const EEA: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The tapis category's DSA statement category; `None` for a category
/// the table does not know (such decisions are not exported, and counted).
pub fn category(tapis: &str) -> Option<&'static str> {
    Some(match tapis {
        "terrorism" | "public_order" => "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "violent_extremism" => "STATEMENT_CATEGORY_VIOLENCE",
        "child_sexual_abuse" => "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "gambling" => "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS",
        "fraud" => "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
        "disinformation" => "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        "pornography" => "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
        "other" => "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
        _ => return None,
    })
}

/// The platform's decision as a visibility restriction (and the text for
/// `DECISION_VISIBILITY_OTHER`); `None`: nothing was restricted.
pub fn visibility(decision: &str) -> Option<(&'static str, Option<&'static str>)> {
    match decision {
        "removed" => Some(("DECISION_VISIBILITY_CONTENT_REMOVED", None)),
        "geo_blocked" => Some(("DECISION_VISIBILITY_CONTENT_DISABLED", None)),
        "restricted" => Some(("DECISION_VISIBILITY_OTHER", Some("access restricted"))),
        _ => None,
    }
}

/// The item kind as `content_type_other`.
pub fn content_type(kind: &str) -> &'static str {
    match kind {
        "url" => "web page (URL)",
        "domain" => "website (domain name)",
        "platform_account" => "platform account",
        "platform_channel" => "platform channel",
        "content_hash" => "file identified by its hash",
        _ => "other content",
    }
}

/// One statement of reasons, with the database's field names.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Statement {
    pub decision_visibility: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_visibility_other: Option<String>,
    pub decision_ground: &'static str,
    pub illegal_content_legal_ground: String,
    pub illegal_content_explanation: String,
    pub category: &'static str,
    pub content_type: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type_other: Option<String>,
    pub territorial_scope: Vec<String>,
    pub content_date: String,
    pub application_date: String,
    pub decision_facts: String,
    pub source_type: &'static str,
    pub automated_detection: &'static str,
    pub automated_decision: &'static str,
    pub puid: String,
}

/// What one decided item brings (already redacted by the register policy).
#[derive(Debug, Clone)]
pub struct DecisionFacts<'a> {
    pub item_id: &'a str,
    pub notice_id: &'a str,
    pub position: i64,
    pub kind: &'a str,
    pub decision: &'a str,
    pub reason: Option<&'a str>,
    pub decided_at: Timestamp,
    pub category: &'a str,
    pub legal_basis_reference: &'a str,
    pub legal_basis_text: &'a str,
    pub explanation: &'a str,
    pub territorial_scope: &'a [String],
    pub submitted_at: Timestamp,
    pub trusted_flagger: bool,
}

/// Why a decision is not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// The decision restricted nothing (rejected, not found, …).
    NoRestriction,
    /// The notice names no EEA member state.
    OutsideEea,
    /// The category is not in the mapping table.
    UnmappedCategory,
}

/// Cut `s` to at most `max` characters (the database counts characters).
fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) if max >= 1 => {
            let mut t: String = s[..s.char_indices().nth(max - 1).map_or(i, |(j, _)| j)].into();
            t.push('…');
            t
        }
        _ => s.to_owned(),
    }
}

fn date(t: Timestamp) -> String {
    crate::register::Day::of(t).to_string()
}

/// The statement for one decided item, or why there is none.
pub fn statement(f: &DecisionFacts<'_>) -> Result<Statement, Skip> {
    let (visibility, other) = visibility(f.decision).ok_or(Skip::NoRestriction)?;
    let category = category(f.category).ok_or(Skip::UnmappedCategory)?;
    let scope: Vec<String> = f
        .territorial_scope
        .iter()
        .filter(|c| EEA.contains(&c.as_str()))
        .cloned()
        .collect();
    if scope.is_empty() {
        return Err(Skip::OutsideEea);
    }
    let mut facts = format!(
        "Notice {} item {} ({}) from a public authority under {}; the platform decided: {}.",
        f.notice_id, f.position, f.kind, f.legal_basis_reference, f.decision
    );
    if let Some(r) = f.reason.filter(|r| !r.trim().is_empty()) {
        facts.push_str(" Platform's reason: ");
        facts.push_str(r);
    }
    Ok(Statement {
        decision_visibility: vec![visibility],
        decision_visibility_other: other.map(str::to_owned),
        decision_ground: "DECISION_GROUND_ILLEGAL_CONTENT",
        illegal_content_legal_ground: cap(
            &format!("{}: {}", f.legal_basis_reference, f.legal_basis_text),
            500,
        ),
        illegal_content_explanation: cap(f.explanation, 2000),
        category,
        content_type: vec!["CONTENT_TYPE_OTHER"],
        content_type_other: Some(content_type(f.kind).to_owned()),
        territorial_scope: scope,
        content_date: date(f.submitted_at),
        application_date: date(f.decided_at),
        decision_facts: cap(&facts, 5000),
        source_type: if f.trusted_flagger {
            "SOURCE_TRUSTED_FLAGGER"
        } else {
            "SOURCE_TYPE_OTHER_NOTIFICATION"
        },
        automated_detection: "No",
        automated_decision: "AUTOMATED_DECISION_NOT_AUTOMATED",
        puid: cap(f.item_id, 500),
    })
}

/// Every field the database knows that this export may write.
const KNOWN: &[&str] = &[
    "decision_visibility",
    "decision_visibility_other",
    "decision_monetary",
    "decision_monetary_other",
    "decision_provision",
    "decision_account",
    "account_type",
    "decision_ground",
    "decision_ground_reference_url",
    "illegal_content_legal_ground",
    "illegal_content_explanation",
    "incompatible_content_ground",
    "incompatible_content_explanation",
    "incompatible_content_illegal",
    "category",
    "category_addition",
    "category_specification",
    "category_specification_other",
    "content_type",
    "content_type_other",
    "content_language",
    "content_date",
    "territorial_scope",
    "application_date",
    "end_date_visibility_restriction",
    "decision_facts",
    "source_type",
    "source_identity",
    "automated_detection",
    "automated_decision",
    "puid",
];

/// One broken rule: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

/// Check a statement (as JSON) against the database's field rules.
/// Empty: it would be accepted as far as its fields go.
pub fn validate(v: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut bad = |field: &str, message: String| {
        out.push(Violation {
            field: field.to_owned(),
            message,
        })
    };
    let Some(obj) = v.as_object() else {
        bad("", "a statement is a JSON object".into());
        return out;
    };
    for k in obj.keys() {
        if !KNOWN.contains(&k.as_str()) {
            bad(k, "not a field of the database".into());
        }
    }
    let text = |f: &str| obj.get(f).and_then(Value::as_str);
    let string =
        |bad: &mut dyn FnMut(&str, String), f: &str, required: bool, max: usize| match obj.get(f) {
            None | Some(Value::Null) if required => bad(f, "required".into()),
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.trim().is_empty() && required => bad(f, "required".into()),
            Some(Value::String(s)) if s.chars().count() > max => {
                bad(f, format!("at most {max} characters"))
            }
            Some(Value::String(_)) => {}
            Some(_) => bad(f, "a string".into()),
        };
    let one_of =
        |bad: &mut dyn FnMut(&str, String), f: &str, allowed: &[&str], required: bool| match obj
            .get(f)
        {
            None | Some(Value::Null) if required => bad(f, "required".into()),
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
            Some(other) => bad(f, format!("{other} is not one of {}", allowed.join(", "))),
        };
    let list =
        |bad: &mut dyn FnMut(&str, String), f: &str, allowed: &[&str], required: bool| match obj
            .get(f)
        {
            None | Some(Value::Null) if required => bad(f, "required".into()),
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() && required => {
                bad(f, "at least one value".into())
            }
            Some(Value::Array(a)) => {
                for (i, x) in a.iter().enumerate() {
                    if !x.as_str().is_some_and(|s| allowed.contains(&s)) {
                        bad(
                            &format!("{f}[{i}]"),
                            format!("{x} is not one of {}", allowed.join(", ")),
                        );
                    }
                }
                let mut seen: Vec<&Value> = a.iter().collect();
                seen.dedup();
                if seen.len() != a.len() {
                    bad(f, "values repeat".into());
                }
            }
            Some(_) => bad(f, "an array".into()),
        };
    let day = |bad: &mut dyn FnMut(&str, String), f: &str, required: bool| match text(f) {
        None if required => bad(f, "required".into()),
        Some(s) if crate::register::Day::parse(f, s).is_err() => {
            bad(f, "a date as YYYY-MM-DD".into())
        }
        _ => {}
    };

    // a restriction of some kind is required: here, visibility
    list(&mut bad, "decision_visibility", DECISION_VISIBILITY, true);
    let has = |f: &str, x: &str| {
        obj.get(f)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(x)))
    };
    string(
        &mut bad,
        "decision_visibility_other",
        has("decision_visibility", "DECISION_VISIBILITY_OTHER"),
        500,
    );
    one_of(&mut bad, "decision_ground", DECISION_GROUND, true);
    let illegal = text("decision_ground") == Some("DECISION_GROUND_ILLEGAL_CONTENT");
    string(&mut bad, "illegal_content_legal_ground", illegal, 500);
    string(&mut bad, "illegal_content_explanation", illegal, 2000);
    let incompatible = text("decision_ground") == Some("DECISION_GROUND_INCOMPATIBLE_CONTENT");
    string(&mut bad, "incompatible_content_ground", incompatible, 500);
    string(
        &mut bad,
        "incompatible_content_explanation",
        incompatible,
        2000,
    );
    string(&mut bad, "decision_ground_reference_url", false, 500);
    one_of(&mut bad, "category", CATEGORY, true);
    list(&mut bad, "content_type", CONTENT_TYPE, true);
    string(
        &mut bad,
        "content_type_other",
        has("content_type", "CONTENT_TYPE_OTHER"),
        500,
    );
    list(&mut bad, "territorial_scope", EEA, true);
    day(&mut bad, "content_date", true);
    day(&mut bad, "application_date", true);
    if let (Some(c), Some(a)) = (text("content_date"), text("application_date"))
        && c.len() == 10
        && a.len() == 10
        && c > a
    {
        bad("content_date", "after application_date".into());
    }
    string(&mut bad, "decision_facts", true, 5000);
    one_of(&mut bad, "source_type", SOURCE_TYPE, true);
    string(&mut bad, "source_identity", false, 500);
    one_of(&mut bad, "automated_detection", AUTOMATED_DETECTION, true);
    one_of(&mut bad, "automated_decision", AUTOMATED_DECISION, true);
    string(&mut bad, "puid", true, 500);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(scope: &'a [String], decision: &'a str) -> DecisionFacts<'a> {
        DecisionFacts {
            item_id: "item-1",
            notice_id: "notice-1",
            position: 0,
            kind: "url",
            decision,
            reason: Some("removed under our terms"),
            decided_at: Timestamp::from_unix_millis(1_490_800_000_000),
            category: "fraud",
            legal_basis_reference: "Law 11/2008 art. 28",
            legal_basis_text: "Spreading false information that harms consumers.",
            explanation: "Phishing pages imitating a bank",
            territorial_scope: scope,
            submitted_at: Timestamp::from_unix_millis(1_490_700_000_000),
            trusted_flagger: false,
        }
    }

    #[test]
    fn every_mapped_statement_validates() {
        let scope = vec!["ID".to_owned(), "NL".to_owned()];
        for d in ["removed", "geo_blocked", "restricted"] {
            let s = statement(&facts(&scope, d)).expect("a statement");
            let v = serde_json::to_value(&s).expect("json");
            assert_eq!(validate(&v), vec![], "{d}: {v}");
            assert_eq!(s.territorial_scope, vec!["NL"]);
        }
        for c in crate::taxonomy::Taxonomy::bundled().categories {
            let c = category(&c.id).expect("every bundled category is mapped");
            assert!(CATEGORY.contains(&c));
        }
    }

    #[test]
    fn what_is_not_exported_says_why() {
        let scope = vec!["ID".to_owned()];
        assert_eq!(statement(&facts(&scope, "removed")), Err(Skip::OutsideEea));
        let eu = vec!["DE".to_owned()];
        assert_eq!(statement(&facts(&eu, "rejected")), Err(Skip::NoRestriction));
        let mut f = facts(&eu, "removed");
        f.category = "unknown";
        assert_eq!(statement(&f), Err(Skip::UnmappedCategory));
    }

    #[test]
    fn the_validator_catches_each_rule() {
        let eu = vec!["DE".to_owned()];
        let good = serde_json::to_value(statement(&facts(&eu, "removed")).expect("s")).expect("j");
        let broken = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
            let mut v = good.clone();
            f(v.as_object_mut().expect("object"));
            validate(&v)
                .into_iter()
                .map(|x| x.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            broken(&|o| {
                o.remove("puid");
            }),
            vec!["puid"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert("category".into(), "STATEMENT_CATEGORY_X".into());
            }),
            vec!["category"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert(
                    "illegal_content_legal_ground".into(),
                    "x".repeat(501).into(),
                );
            }),
            vec!["illegal_content_legal_ground"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert("territorial_scope".into(), serde_json::json!(["ID"]));
            }),
            vec!["territorial_scope[0]"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert("application_date".into(), "29/03/2017".into());
            }),
            vec!["application_date"]
        );
        assert_eq!(
            broken(&|o| {
                o.remove("content_type_other");
            }),
            vec!["content_type_other"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert("automated_detection".into(), "yes".into());
            }),
            vec!["automated_detection"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert("platform_name".into(), "x".into());
            }),
            vec!["platform_name"]
        );
        assert_eq!(
            broken(&|o| {
                o.insert("decision_visibility".into(), serde_json::json!([]));
            }),
            vec!["decision_visibility"]
        );
    }

    #[test]
    fn long_texts_are_cut_to_the_limits() {
        let eu = vec!["DE".to_owned()];
        let long = "é".repeat(3000);
        let mut f = facts(&eu, "removed");
        f.explanation = &long;
        let s = statement(&f).expect("s");
        assert_eq!(s.illegal_content_explanation.chars().count(), 2000);
        assert_eq!(validate(&serde_json::to_value(&s).expect("j")), vec![]);
    }
}
