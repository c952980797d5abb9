//! The SLA policy: how long a platform has to decide a notice, by category
//! and urgency, counted from delivery; and the escalation ladder that runs
//! when it does not. Versioned TOML data (`data/sla-*.toml`); every notice
//! records the version that set its deadline.

use serde::Deserialize;

use crate::notice::Urgency;
use crate::{Error, Result, Timestamp};

/// One rung of the escalation ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Reminder,
    Warning,
    SecondWarning,
    Escalation,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Reminder => "reminder",
            Step::Warning => "warning",
            Step::SecondWarning => "second_warning",
            Step::Escalation => "escalation",
        }
    }

    pub fn parse(s: &str) -> Result<Step> {
        match s {
            "reminder" => Ok(Step::Reminder),
            "warning" => Ok(Step::Warning),
            "second_warning" => Ok(Step::SecondWarning),
            "escalation" => Ok(Step::Escalation),
            other => Err(Error::invalid(
                "ladder.step",
                format!(
                    "unknown step {other:?}: use reminder, warning, second_warning or escalation"
                ),
            )),
        }
    }

    /// The event a platform receives for this step.
    pub fn event_type(self) -> crate::EventType {
        use crate::EventType as E;
        match self {
            Step::Reminder => E::NoticeReminder,
            Step::Warning | Step::SecondWarning => E::NoticeWarning,
            Step::Escalation => E::NoticeEscalated,
        }
    }
}

/// When a step falls due.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    /// A fraction of the allowance after the clock starts.
    Fraction(f64),
    /// Seconds after the deadline (0 = at the deadline).
    AfterDeadline(i64),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    categories: Vec<String>,
    #[serde(default)]
    urgency: Option<Urgency>,
    within: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    step: String,
    at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: String,
    description: String,
    delivery_timeout: String,
    default: String,
    #[serde(default)]
    deadline: Vec<RawRule>,
    #[serde(default)]
    ladder: Vec<RawStep>,
    /// Time the authority has to decide an appeal (default 7 days).
    #[serde(default)]
    appeal_review: Option<String>,
    /// The share of the allowance a notice from a trusted flagger gets,
    /// "NN%" (default 50%).
    #[serde(default)]
    trusted_flagger: Option<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    categories: Vec<String>,
    urgency: Option<Urgency>,
    seconds: i64,
}

/// A parsed, checked SLA policy.
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    pub version: String,
    pub description: String,
    /// Seconds a notice may wait for delivery before it is escalated.
    pub delivery_timeout: i64,
    default: i64,
    rules: Vec<Rule>,
    ladder: Vec<(Step, At)>,
    /// Seconds the authority has to decide an appeal, from its receipt;
    /// past it, the appeal is overdue and the approvers are told.
    pub appeal_review: i64,
    /// The share of the allowance a trusted flagger's notice gets (0 to 1).
    pub trusted_flagger: f64,
    /// The policy's source text, as published.
    pub source: String,
}

/// A trusted flagger's share of the allowance when the policy names none.
pub const DEFAULT_TRUSTED_SHARE: f64 = 0.5;

const DEFAULT: &str = include_str!("../data/sla-default.toml");
/// Seven days to decide an appeal when a policy does not say.
const DEFAULT_APPEAL_REVIEW: i64 = 7 * 86_400;
const EU_TCO: &str = include_str!("../data/sla-eu-tco.toml");

/// Parse "90s", "30m", "4h", "2d" (or combinations like "1h30m").
pub fn parse_duration(field: &str, s: &str) -> Result<i64> {
    let s = s.trim();
    let err = || Error::invalid(field, format!("{s:?} is not a duration like 30m, 4h or 2d"));
    if s.is_empty() {
        return Err(err());
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| err())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    if !num.is_empty() {
        return Err(err());
    }
    Ok(total)
}

impl SlaPolicy {
    /// The default policy shipped with tapis.
    pub fn bundled() -> SlaPolicy {
        SlaPolicy::from_toml(DEFAULT).expect("the bundled SLA policy is valid (tested)")
    }

    /// The bundled presets by name: `default`, `eu-tco`.
    pub fn preset(name: &str) -> Option<SlaPolicy> {
        match name {
            "default" => Some(Self::bundled()),
            "eu-tco" => {
                Some(SlaPolicy::from_toml(EU_TCO).expect("the bundled EU preset is valid (tested)"))
            }
            _ => None,
        }
    }

    pub fn from_toml(text: &str) -> Result<SlaPolicy> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            Error::invalid("sla_policy", format!("cannot read the SLA policy: {e}"))
        })?;
        let delivery_timeout = parse_duration("delivery_timeout", &raw.delivery_timeout)?;
        let default = parse_duration("default", &raw.default)?;
        let mut rules = Vec::new();
        for (i, r) in raw.deadline.iter().enumerate() {
            let seconds = parse_duration(&format!("deadline[{i}].within"), &r.within)?;
            if seconds <= 0 || r.categories.is_empty() {
                return Err(Error::invalid(
                    format!("deadline[{i}]"),
                    "a rule needs categories and a positive time",
                ));
            }
            rules.push(Rule {
                categories: r.categories.clone(),
                urgency: r.urgency,
                seconds,
            });
        }
        let appeal_review = match &raw.appeal_review {
            Some(s) => parse_duration("appeal_review", s)?,
            None => DEFAULT_APPEAL_REVIEW,
        };
        if delivery_timeout <= 0 || default <= 0 || appeal_review <= 0 {
            return Err(Error::invalid(
                "sla_policy",
                "every time limit must be positive",
            ));
        }
        let mut ladder = Vec::new();
        for (i, s) in raw.ladder.iter().enumerate() {
            let field = format!("ladder[{i}].at");
            let step = Step::parse(&s.step)?;
            let at = s.at.trim();
            let at = if let Some(p) = at.strip_suffix('%') {
                let pct: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| Error::invalid(&field, "use NN%"))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(Error::invalid(&field, "a percentage is between 0 and 100"));
                }
                At::Fraction(pct / 100.0)
            } else if at == "deadline" {
                At::AfterDeadline(0)
            } else if let Some(d) = at.strip_prefix("deadline+") {
                At::AfterDeadline(parse_duration(&field, d)?)
            } else {
                return Err(Error::invalid(
                    &field,
                    "use NN%, deadline or deadline+DURATION",
                ));
            };
            ladder.push((step, at));
        }
        let escalations = ladder
            .iter()
            .filter(|(s, _)| *s == Step::Escalation)
            .count();
        if escalations != 1 || ladder.last().map(|(s, _)| *s) != Some(Step::Escalation) {
            return Err(Error::invalid(
                "ladder",
                "the ladder must end with exactly one escalation step",
            ));
        }
        let trusted_flagger = match raw.trusted_flagger.as_deref().map(str::trim) {
            None => DEFAULT_TRUSTED_SHARE,
            Some(t) => {
                let pct: f64 = t
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse().ok())
                    .ok_or_else(|| Error::invalid("trusted_flagger", "use NN%, e.g. 50%"))?;
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(Error::invalid(
                        "trusted_flagger",
                        "a share of the allowance is above 0% and at most 100%",
                    ));
                }
                pct / 100.0
            }
        };
        let policy = SlaPolicy {
            trusted_flagger,
            version: raw.version,
            description: raw.description,
            delivery_timeout,
            default,
            rules,
            ladder,
            appeal_review,
            source: text.to_owned(),
        };
        // steps must fall in order for any allowance
        for allowance in [60, 3600, 86400] {
            let times: Vec<i64> = policy
                .ladder
                .iter()
                .map(|(_, at)| policy.offset(*at, allowance))
                .collect();
            if times.windows(2).any(|w| w[0] > w[1]) {
                return Err(Error::invalid(
                    "ladder",
                    "ladder steps must be in time order",
                ));
            }
        }
        Ok(policy)
    }

    fn offset(&self, at: At, allowance: i64) -> i64 {
        match at {
            At::Fraction(f) => (allowance as f64 * f).round() as i64,
            At::AfterDeadline(s) => allowance + s,
        }
    }

    /// Seconds allowed for a notice of this category and urgency.
    pub fn allowance(&self, category: &str, urgency: Urgency) -> i64 {
        self.rules
            .iter()
            .find(|r| {
                r.categories.iter().any(|c| c == category) && r.urgency.is_none_or(|u| u == urgency)
            })
            .map(|r| r.seconds)
            .unwrap_or(self.default)
    }

    /// Seconds allowed for a notice from a trusted flagger: the policy's
    /// share of the allowance (at least a minute).
    pub fn trusted_allowance(&self, category: &str, urgency: Urgency) -> i64 {
        ((self.allowance(category, urgency) as f64 * self.trusted_flagger).round() as i64).max(60)
    }

    /// The deadline for a notice delivered at `delivered_at`, shorter when
    /// it comes from a trusted flagger.
    pub fn due_at_for(
        &self,
        delivered_at: Timestamp,
        category: &str,
        urgency: Urgency,
        trusted_flagger: bool,
    ) -> Timestamp {
        if trusted_flagger {
            delivered_at.plus_secs(self.trusted_allowance(category, urgency))
        } else {
            self.due_at(delivered_at, category, urgency)
        }
    }

    /// The deadline for a notice delivered at `delivered_at`.
    pub fn due_at(&self, delivered_at: Timestamp, category: &str, urgency: Urgency) -> Timestamp {
        delivered_at.plus_secs(self.allowance(category, urgency))
    }

    /// Every ladder step with the time it falls due.
    pub fn ladder(
        &self,
        delivered_at: Timestamp,
        category: &str,
        urgency: Urgency,
    ) -> Vec<(Step, Timestamp)> {
        let allowance = self.allowance(category, urgency);
        self.ladder
            .iter()
            .map(|(step, at)| (*step, delivered_at.plus_secs(self.offset(*at, allowance))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_flaggers_get_the_policys_share_of_the_allowance() {
        let p = SlaPolicy::bundled();
        assert_eq!(p.trusted_flagger, DEFAULT_TRUSTED_SHARE);
        assert_eq!(p.trusted_allowance("terrorism", Urgency::Urgent), 2 * 3600);
        let t = Timestamp::from_unix_millis(0);
        assert_eq!(
            p.due_at_for(t, "fraud", Urgency::Normal, true),
            t.plus_secs(12 * 3600)
        );
        assert_eq!(
            p.due_at_for(t, "fraud", Urgency::Normal, false),
            p.due_at(t, "fraud", Urgency::Normal)
        );
        let text = p.source.replace(
            "default = \"24h\"",
            "default = \"24h\"\ntrusted_flagger = \"25%\"",
        );
        assert_eq!(
            SlaPolicy::from_toml(&text).expect("valid").trusted_flagger,
            0.25
        );
        let bad = p.source.replace(
            "default = \"24h\"",
            "default = \"24h\"\ntrusted_flagger = \"0%\"",
        );
        assert!(SlaPolicy::from_toml(&bad).is_err());
    }

    #[test]
    fn default_policy_follows_the_four_and_twenty_four_hour_rule() {
        let p = SlaPolicy::bundled();
        for c in ["terrorism", "child_sexual_abuse", "public_order"] {
            assert_eq!(p.allowance(c, Urgency::Urgent), 4 * 3600, "{c}");
            assert_eq!(p.allowance(c, Urgency::Normal), 4 * 3600, "{c}");
        }
        assert_eq!(p.allowance("gambling", Urgency::Urgent), 24 * 3600);
        assert_eq!(p.delivery_timeout, 3600);
    }

    #[test]
    fn eu_preset_gives_terrorism_one_hour() {
        let p = SlaPolicy::preset("eu-tco").expect("preset");
        assert_eq!(p.allowance("terrorism", Urgency::Normal), 3600);
        assert_eq!(p.allowance("public_order", Urgency::Normal), 4 * 3600);
        assert_eq!(p.allowance("fraud", Urgency::Urgent), 24 * 3600);
        assert!(SlaPolicy::preset("nope").is_none());
    }

    #[test]
    fn ladder_times() {
        let p = SlaPolicy::bundled();
        let t0 = Timestamp::from_unix_millis(0);
        let h = |n: i64| Timestamp::from_unix_millis(n * 3_600_000);
        assert_eq!(
            p.ladder(t0, "terrorism", Urgency::Urgent),
            vec![
                (Step::Reminder, h(2)),
                (Step::Warning, h(4)),
                (Step::SecondWarning, h(28)),
                (Step::Escalation, h(52)),
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("d", "90s"), Ok(90));
        assert_eq!(parse_duration("d", "1h30m"), Ok(5400));
        assert_eq!(parse_duration("d", "2d"), Ok(172_800));
        for bad in ["", "h", "4", "4x", "-1h", "99999999999999999999d"] {
            assert!(parse_duration("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_bad_policies() {
        let base =
            "version = \"v\"\ndescription = \"d\"\ndelivery_timeout = \"1h\"\ndefault = \"24h\"\n";
        let ok = format!("{base}[[ladder]]\nstep = \"escalation\"\nat = \"deadline\"\n");
        assert!(SlaPolicy::from_toml(&ok).is_ok());
        let no_escalation = format!("{base}[[ladder]]\nstep = \"reminder\"\nat = \"50%\"\n");
        assert!(SlaPolicy::from_toml(&no_escalation).is_err());
        let out_of_order = format!(
            "{base}[[ladder]]\nstep = \"warning\"\nat = \"deadline+1h\"\n[[ladder]]\nstep = \"reminder\"\nat = \"50%\"\n[[ladder]]\nstep = \"escalation\"\nat = \"deadline+2h\"\n"
        );
        assert!(SlaPolicy::from_toml(&out_of_order).is_err());
        assert!(SlaPolicy::from_toml(&format!("{base}typo = 1\n")).is_err());
    }

    #[test]
    fn appeal_review_time() {
        assert_eq!(
            SlaPolicy::bundled().appeal_review,
            7 * 86_400,
            "a week unless said"
        );
        let base =
            "version = \"v\"\ndescription = \"d\"\ndelivery_timeout = \"1h\"\ndefault = \"24h\"\n";
        let ladder = "[[ladder]]\nstep = \"escalation\"\nat = \"deadline\"\n";
        let three = format!("{base}appeal_review = \"3d\"\n{ladder}");
        assert_eq!(
            SlaPolicy::from_toml(&three).map(|p| p.appeal_review),
            Ok(3 * 86_400)
        );
        for bad in ["0s", "soon"] {
            let p = format!("{base}appeal_review = \"{bad}\"\n{ladder}");
            assert!(SlaPolicy::from_toml(&p).is_err(), "{bad}");
        }
    }
}
