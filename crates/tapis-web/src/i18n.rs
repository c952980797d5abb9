//! Languages: English and Bahasa Indonesia, from `i18n/en.ftl` and
//! `i18n/id.ftl`, and the locale's way of writing numbers, dates and
//! durations.
//!
//! The files use a strict subset of Fluent syntax — one message per line,
//! `key = text`, `# comments`, placeables `{ $name }` — read by the small
//! parser below rather than the `fluent-bundle` crate: every message is
//! plain text with named values, which this covers in a few dozen lines
//! with no plural or selector machinery to compile. The tests check that
//! both files have the same keys with the same placeables, and that every
//! key the code uses exists.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;
use tapis_core::Timestamp;
use time::{OffsetDateTime, UtcOffset};

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Id,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Id];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Id => "id",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "id" | "in" => Some(Lang::Id),
            _ => None,
        }
    }

    /// The other language (for the switch).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Id,
            Lang::Id => Lang::En,
        }
    }

    /// The `lang` cookie if set, else the best of `Accept-Language` by
    /// quality, else English.
    pub fn choose(headers: &HeaderMap) -> Lang {
        if let Some(l) = crate::session::cookie(headers, "lang").and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.split(',') {
            let mut bits = part.split(';');
            let tag = bits.next().unwrap_or("").trim();
            let primary = tag.split('-').next().unwrap_or("");
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Lang::parse(primary)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, l));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }

    fn catalogue(self) -> &'static HashMap<String, String> {
        static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
        static ID: OnceLock<HashMap<String, String>> = OnceLock::new();
        match self {
            Lang::En => EN.get_or_init(|| parse(include_str!("../i18n/en.ftl"))),
            Lang::Id => ID.get_or_init(|| parse(include_str!("../i18n/id.ftl"))),
        }
    }

    /// The message `key` (the key itself if missing: the tests keep none
    /// missing).
    pub fn t(self, key: &str) -> &'static str {
        match self.catalogue().get(key) {
            Some(v) => v.as_str(),
            None => {
                tracing::warn!(key, lang = self.code(), "missing translation");
                // leak-free fallback: a static marker
                "⟨missing text⟩"
            }
        }
    }

    /// The message `key` with its placeables filled in.
    pub fn tf(self, key: &str, args: &[(&str, &str)]) -> String {
        let mut out = self.t(key).to_owned();
        for (name, value) in args {
            out = out.replace(&format!("{{ ${name} }}"), value);
        }
        out
    }

    /// An integer with the locale's thousands separator.
    pub fn number(self, n: i64) -> String {
        let sep = match self {
            Lang::En => ',',
            Lang::Id => '.',
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    }

    /// A date and time in `offset`, the locale's way.
    pub fn datetime(self, t: Timestamp, offset: UtcOffset) -> String {
        let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(t.unix_millis() as i128 * 1_000_000)
        else {
            return t.to_string();
        };
        let dt = dt.to_offset(offset);
        let month = self.t(&format!("month-{}", u8::from(dt.month())));
        match self {
            Lang::En => format!(
                "{} {} {}, {:02}:{:02}",
                dt.day(),
                month,
                dt.year(),
                dt.hour(),
                dt.minute()
            ),
            Lang::Id => format!(
                "{} {} {} {:02}.{:02}",
                dt.day(),
                month,
                dt.year(),
                dt.hour(),
                dt.minute()
            ),
        }
    }

    /// A duration in hours and minutes (days past 48 h).
    pub fn duration(self, ms: i64) -> String {
        let mins = ms.abs() / 60_000;
        let (d, h, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
        if mins >= 48 * 60 {
            self.tf("dur-dh", &[("d", &d.to_string()), ("h", &h.to_string())])
        } else if mins >= 60 {
            self.tf(
                "dur-hm",
                &[("h", &(mins / 60).to_string()), ("m", &m.to_string())],
            )
        } else {
            self.tf(
                "dur-m",
                &[("m", &mins.max(if ms == 0 { 0 } else { 1 }).to_string())],
            )
        }
    }
}

/// Read a catalogue: `key = text` lines; `#` comments and blank lines are
/// skipped.
fn parse(text: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(" = ") {
            map.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeables(s: &str) -> Vec<String> {
        let mut out: Vec<String> = s
            .split("{ $")
            .skip(1)
            .filter_map(|p| p.split_once(" }").map(|(n, _)| n.to_owned()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_key_exists_in_both_languages_with_the_same_placeables() {
        for raw in [
            include_str!("../i18n/en.ftl"),
            include_str!("../i18n/id.ftl"),
        ] {
            for (i, line) in raw.lines().enumerate() {
                let l = line.trim();
                assert!(
                    l.is_empty() || l.starts_with('#') || l.contains(" = "),
                    "line {} is not `key = text`: {line}",
                    i + 1
                );
            }
        }
        let en = Lang::En.catalogue();
        let id = Lang::Id.catalogue();
        let mut missing: Vec<String> = en
            .keys()
            .filter(|k| !id.contains_key(*k))
            .map(|k| format!("id lacks {k}"))
            .collect();
        missing.extend(
            id.keys()
                .filter(|k| !en.contains_key(*k))
                .map(|k| format!("en lacks {k}")),
        );
        missing.sort();
        assert!(missing.is_empty(), "{missing:#?}");
        for (k, v) in en {
            assert_eq!(
                placeables(v),
                placeables(&id[k]),
                "placeables of {k} differ"
            );
        }
    }

    #[test]
    fn every_key_the_code_uses_exists() {
        let sources = [
            include_str!("layout.rs"),
            include_str!("error.rs"),
            include_str!("session.rs"),
            include_str!("pages/public.rs"),
            include_str!("pages/block.rs"),
            include_str!("pages/signin.rs"),
            include_str!("pages/dashboard.rs"),
            include_str!("pages/notices.rs"),
            include_str!("pages/inbox.rs"),
            include_str!("pages/transparency.rs"),
            include_str!("pages/table.rs"),
            include_str!("pages/orders.rs"),
            include_str!("pages/approvals.rs"),
            include_str!("pages/authorise.rs"),
            include_str!("pages/isp.rs"),
            include_str!("pages/audit.rs"),
            include_str!("pages/platform_orders.rs"),
            include_str!("pages/appeal.rs"),
            include_str!("pages/account.rs"),
            include_str!("pages/admin.rs"),
            include_str!("pages/record.rs"),
            include_str!("pages/representative.rs"),
            include_str!("pages/flags.rs"),
            include_str!("pages/flags_review.rs"),
            include_str!("pages/register.rs"),
        ];
        let en = Lang::En.catalogue();
        let mut missing = Vec::new();
        for src in sources {
            for quote in [".t(\"", ".tf(\""] {
                for piece in src.split(quote).skip(1) {
                    if let Some((key, _)) = piece.split_once('"')
                        && !key.contains('{')
                        && !en.contains_key(key)
                    {
                        missing.push(key.to_owned());
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "keys used but not translated: {missing:#?}"
        );
    }

    #[test]
    fn accept_language_and_cookie_choose() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::choose(&h), Lang::En);
        h.insert(
            "accept-language",
            "id-ID,id;q=0.9,en;q=0.8".parse().expect("h"),
        );
        assert_eq!(Lang::choose(&h), Lang::Id);
        h.insert(
            "accept-language",
            "fr, en;q=0.5, id;q=0.4".parse().expect("h"),
        );
        assert_eq!(Lang::choose(&h), Lang::En);
        h.insert("cookie", "x=1; lang=id".parse().expect("h"));
        assert_eq!(Lang::choose(&h), Lang::Id);
    }

    #[test]
    fn numbers_dates_and_durations_per_locale() {
        assert_eq!(Lang::En.number(1234567), "1,234,567");
        assert_eq!(Lang::Id.number(1234567), "1.234.567");
        assert_eq!(Lang::Id.number(-12), "-12");
        let t = Timestamp::parse("t", "2026-12-03T07:05:00Z").expect("t");
        let wib = UtcOffset::from_hms(7, 0, 0).expect("o");
        assert_eq!(Lang::En.datetime(t, wib), "3 Dec 2026, 14:05");
        assert_eq!(Lang::Id.datetime(t, wib), "3 Des 2026 14.05");
        assert_eq!(Lang::En.duration(3_900_000), "1 h 5 min");
        assert_eq!(Lang::Id.duration(3_900_000), "1 j 5 mnt");
        assert_eq!(Lang::En.duration(3 * 86_400_000 + 3_600_000), "3 d 1 h");
    }
}
