//! Property tests for the decoders at the edge of the domain: whatever a
//! client sends, parsing never panics, errors name their field, and every
//! normal form is a fixed point of its own parser.

use proptest::prelude::*;
use serde_json::{Map, Value};
use tapis_core::notice::{
    EvidenceInput, ItemInput, LegalBasisInput, Limits, NewNotice, NoticeInput,
};
use tapis_core::target::{DomainName, ItemKind, MAX_NORMALIZED_LEN, Target};
use tapis_core::taxonomy::Taxonomy;
use tapis_core::{Error, PartyId, Timestamp, canonical};

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // failures print their minimal input; known ones are pinned below as
        // plain tests rather than in a regressions file
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn any_kind() -> impl Strategy<Value = ItemKind> {
    prop::sample::select(ItemKind::ALL.to_vec())
}

/// Characters that have tripped up normalisers before: case mappings that
/// change length or add combining marks, dots that IDNA maps, controls,
/// separators and a character outside the BMP.
fn tricky_char() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        'İ', 'ı', 'ß', 'ẞ', 'Ⱥ', 'ǅ', 'ﬀ', 'Σ', 'ς', '\u{212a}', '\u{212b}', 'é', 'ü', '。', '．',
        '\u{200b}', '\u{0}', '\u{1}', '\u{7f}', '\t', '\n', ' ', '.', '@', ':', '/', '%', '#', '?',
        '-', '_', 'A', 'z', '0', '😀',
    ])
}

/// Arbitrary text: anything at all, printable Unicode, or a mix of tricky
/// characters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "\\PC{0,80}",
        prop::collection::vec(tricky_char(), 0..40).prop_map(|c| c.into_iter().collect()),
    ]
}

fn url_like() -> impl Strategy<Value = String> {
    (
        "(https?|HTTPS?|ftp|)",
        "(://|:/|:)",
        "([a-zA-Z0-9_-]{1,12}\\.){0,3}[a-zA-Z0-9-]{1,12}\\.?",
        "(:[0-9]{1,5})?",
        "(/[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,12}){0,4}",
        "(\\?[a-zA-Z0-9=&%.-]{0,12})?",
        "(#[a-zA-Z0-9]{0,8})?",
        prop::collection::vec(tricky_char(), 0..4),
    )
        .prop_map(|(scheme, sep, host, port, path, query, frag, noise)| {
            let noise: String = noise.into_iter().collect();
            format!("{scheme}{sep}{host}{port}{path}{query}{frag}{noise}")
        })
}

fn domain_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-zA-Z0-9_-]{1,12}\\.){1,4}[a-zA-Z0-9-]{1,12}\\.?",
        prop::collection::vec(
            prop_oneof!["[a-zA-Z0-9-]{1,8}", "\\PL{1,4}", "[äöüßİıσ]{1,6}"],
            1..5
        )
        .prop_map(|labels| labels.join(".")),
    ]
}

fn hash_like() -> impl Strategy<Value = String> {
    "(sha256:|SHA-256:|sha1:|md5:|MD5:|pdq:|PDQ:|crc32:)?[0-9a-fA-F]{30,66}"
}

fn handle_like() -> impl Strategy<Value = String> {
    (
        "@?",
        prop::collection::vec(
            prop_oneof![
                "[a-zA-Z0-9_.-]".prop_map(|s| s.chars().next().unwrap_or('a')),
                tricky_char(),
            ],
            0..30,
        ),
    )
        .prop_map(|(at, chars)| format!("{at}{}", chars.into_iter().collect::<String>()))
}

fn input_for(kind: ItemKind) -> BoxedStrategy<String> {
    let specific = match kind {
        ItemKind::Url => url_like().boxed(),
        ItemKind::Domain => domain_like().boxed(),
        ItemKind::ContentHash => hash_like().boxed(),
        ItemKind::PlatformAccount | ItemKind::PlatformChannel => {
            prop_oneof![handle_like(), url_like()].boxed()
        }
    };
    prop_oneof![3 => specific, 1 => any_text()].boxed()
}

fn kind_and_input() -> impl Strategy<Value = (ItemKind, String)> {
    any_kind().prop_flat_map(|k| (Just(k), input_for(k)))
}

proptest! {
    #![proptest_config(config())]

    /// (a) Parsing a target never panics, whatever the kind and the text,
    /// and a refusal always names the field.
    #[test]
    fn target_parse_never_panics(kind in any_kind(), raw in any_text()) {
        if let Err(e) = Target::parse(kind, &raw) {
            let is_invalid = matches!(&e, Error::Invalid { field, .. } if !field.is_empty());
            prop_assert!(is_invalid, "{e:?}");
        }
    }

    /// (a) Same, for inputs shaped like each kind's values.
    #[test]
    fn target_parse_never_panics_on_near_misses((kind, raw) in kind_and_input()) {
        let _ = Target::parse(kind, &raw);
    }

    /// (b) The normal form is a fixed point: parsing it again succeeds and
    /// gives the same normal form.
    #[test]
    fn normalisation_is_idempotent((kind, raw) in kind_and_input()) {
        if let Ok(t) = Target::parse(kind, &raw) {
            prop_assert!(t.normalized.len() <= MAX_NORMALIZED_LEN);
            let again = Target::parse(kind, &t.normalized);
            prop_assert_eq!(
                again.as_ref().map(|a| a.normalized.as_str()),
                Ok(t.normalized.as_str()),
                "{:?} normalised to {:?}", raw, t.normalized
            );
        }
    }

    /// (c) Domain names ignore case and one trailing dot.
    #[test]
    fn domains_ignore_case_and_trailing_dot(
        labels in prop::collection::vec("[a-z0-9]{1,20}", 2..=5),
        upper in prop::collection::vec(any::<bool>(), 105),
    ) {
        let lower = labels.join(".");
        let mixed: String = lower
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        let want = DomainName::parse(&lower);
        for variant in [
            lower.to_ascii_uppercase(),
            mixed.clone(),
            format!("{lower}."),
            format!("{mixed}."),
            format!("  {}. ", lower.to_ascii_uppercase()),
        ] {
            prop_assert_eq!(&DomainName::parse(&variant), &want, "{}", variant);
        }
        // every generated name is valid unless its last label is all digits
        let numeric_tld = labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
        prop_assert_eq!(want.is_ok(), !numeric_tld, "{}: {:?}", lower, want);
        if let Ok(d) = want {
            prop_assert_eq!(d.as_str(), lower.as_str());
        }
    }
}

// ---- notices ----------------------------------------------------------------

/// Text for a notice field: usually one of `valid`, sometimes hostile
/// (arbitrary, huge, control characters), so that whole notices are
/// accepted often enough for the checks on accepted notices to matter.
fn field_text(valid: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        40 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => any_text(),
        1 => (prop::sample::select(vec!['a', 'é', '\u{0}', ' ', '😀']), 0usize..30_000)
            .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
        1 => "[\\x00-\\x1f\\x7f]{0,8}",
    ]
    .boxed()
}

/// A value that is valid for `kind`, possibly with noise around it that the
/// parsers trim or refuse (spaces, controls, an `@`, case).
fn valid_value(kind: ItemKind) -> BoxedStrategy<String> {
    let core = match kind {
        ItemKind::Url => {
            "(https?|HTTPS)://[a-zA-Z0-9-]{1,10}\\.(example|org|me)(/[a-zA-Z0-9_%-]{0,10}){0,3}"
                .boxed()
        }
        ItemKind::Domain => "([a-zA-Z0-9-]{1,10}\\.){1,3}(example|COM|рф)\\.?".boxed(),
        ItemKind::ContentHash => "(sha256:|SHA-256:|pdq:|)[0-9a-fA-F]{64}".boxed(),
        ItemKind::PlatformAccount | ItemKind::PlatformChannel => "@?[a-zA-Z0-9_.]{1,20}".boxed(),
    };
    let noise = prop_oneof![
        8 => Just(String::new()),
        1 => " {1,3}".boxed(),
        1 => "[\\x00-\\x1f]{1,2}".boxed(),
        1 => prop::collection::vec(tricky_char(), 1..3)
            .prop_map(|c| c.into_iter().collect::<String>())
            .boxed(),
    ];
    (noise.clone(), core, noise)
        .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
        .boxed()
}

fn evidence() -> impl Strategy<Value = EvidenceInput> {
    (
        prop_oneof![
            6 => Just("ab".repeat(32)),
            2 => Just(format!("sha256:{}", "AB".repeat(32))),
            1 => hash_like(),
            1 => any_text(),
        ],
        field_text(&["screenshot", "archived copy"]),
        prop_oneof![
            12 => Just("2017-03-28T10:00:00+07:00".to_owned()),
            2 => Just("1969-12-31T23:59:59.9999Z".to_owned()),
            1 => Just("2999-01-01T00:00:00Z".to_owned()),
            1 => Just("0000-01-01T00:00:00+01:00".to_owned()),
            1 => any_text(),
        ],
    )
        .prop_map(|(sha256, description, captured_at)| EvidenceInput {
            sha256,
            description,
            captured_at,
        })
}

fn item() -> impl Strategy<Value = ItemInput> {
    let kind_and_value = prop_oneof![
        12 => any_kind().prop_flat_map(|k| (Just(k.as_str().to_owned()), valid_value(k))),
        2 => kind_and_input().prop_map(|(k, v)| (k.as_str().to_owned(), v)),
        1 => (any_text(), any_text()),
    ];
    (
        kind_and_value,
        prop_oneof![
            4 => Just(None),
            1 => field_text(&["-1001234567890", "42"]).prop_map(Some),
        ],
        prop::collection::vec(evidence(), 0..3),
    )
        .prop_map(|((kind, value), native_id, evidence)| ItemInput {
            kind,
            value,
            native_id,
            evidence,
        })
}

fn notice_input() -> impl Strategy<Value = NoticeInput> {
    let platform = prop_oneof![
        12 => Just(PartyId::new().to_string()),
        1 => Just(format!(" {} ", PartyId::new())),
        1 => any_text(),
    ];
    (
        platform,
        field_text(&["terrorism", "gambling"]),
        field_text(&["urgent", "normal"]),
        field_text(&["Law 11/2008 art. 40"]),
        field_text(&["The government prevents dissemination of unlawful content."]),
        field_text(&["Public channels distributing propaganda"]),
        prop_oneof![
            8 => prop::collection::vec(item(), 1..=2),
            1 => prop::collection::vec(item(), 0..=3),
        ],
        prop::collection::vec(field_text(&["ID", "id", " MY "]), 0..3),
        any::<Option<bool>>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                platform_id,
                category,
                urgency,
                reference,
                text,
                explanation,
                items,
                territorial_scope,
                may_notify_user,
                draft,
            )| NoticeInput {
                platform_id,
                category,
                urgency,
                legal_basis: LegalBasisInput { reference, text },
                explanation,
                items,
                territorial_scope,
                may_notify_user,
                draft,
            },
        )
}

/// (d) The notice decoder never panics; it accepts, or refuses naming a
/// field. What it accepts is normalised: each item's normal form is a fixed
/// point, its raw value carries no control characters (so it stores the same
/// on every backend), evidence is not from the future and its time can be
/// written back out. Both outcomes must be common, or the property says
/// little.
#[test]
fn notice_decoder_never_panics() {
    let taxonomy = Taxonomy::bundled();
    let limits = Limits {
        max_items: 2,
        max_evidence_per_item: 1,
    };
    let now = Timestamp::parse("now", "2017-03-29T09:00:00+07:00").expect("now");
    let accepted = std::cell::Cell::new(0u32);
    let refused = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 4 * CASES,
        ..config()
    });
    let result = runner.run(&notice_input(), |input| {
        match NewNotice::parse(input, &taxonomy, limits, now) {
            Ok(n) => {
                accepted.set(accepted.get() + 1);
                prop_assert!((1..=limits.max_items).contains(&n.items.len()));
                for item in &n.items {
                    prop_assert!(item.evidence.len() <= limits.max_evidence_per_item);
                    prop_assert!(
                        !item.value.chars().any(char::is_control),
                        "{:?}",
                        item.value
                    );
                    let again = Target::parse(item.kind, &item.normalized).map(|t| t.normalized);
                    prop_assert_eq!(again.as_deref(), Ok(item.normalized.as_str()));
                    for ev in &item.evidence {
                        prop_assert!(ev.captured_at <= now.plus_secs(300));
                        let shown = ev.captured_at.to_string();
                        prop_assert_eq!(
                            Timestamp::parse("t", &shown),
                            Ok(ev.captured_at),
                            "{}",
                            shown
                        );
                    }
                }
            }
            Err(Error::Invalid { field, message }) => {
                refused.set(refused.get() + 1);
                prop_assert!(!field.is_empty(), "no field: {}", message);
                prop_assert!(!message.is_empty(), "no message for {}", field);
            }
            Err(other) => {
                return Err(TestCaseError::fail(format!(
                    "unexpected error kind: {other:?}"
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (a, r) = (accepted.get(), refused.get());
    assert!(
        a >= CASES / 4 && r >= CASES / 4,
        "{a} accepted and {r} refused: the generator no longer exercises both outcomes"
    );
}

/// Cases the properties above found, pinned.
#[test]
fn known_edge_cases() {
    // before 1970, sub-millisecond digits round down like after it
    let t = Timestamp::parse("t", "1969-12-31T23:59:59.9995Z").expect("valid");
    assert_eq!(t.unix_millis(), -1);
    assert_eq!(t.to_string(), "1969-12-31T23:59:59.999Z");
    let t = Timestamp::parse("t", "0000-01-01T00:00:00.0001Z").expect("valid");
    assert_eq!(t.to_string(), "0000-01-01T00:00:00.000Z");
    // an instant before year 0 or after 9999 in UTC cannot be displayed
    assert!(Timestamp::parse("t", "0000-01-01T00:00:00+01:00").is_err());
    assert!(Timestamp::parse("t", "9999-12-31T23:30:00-01:00").is_err());
    assert!(Timestamp::parse("t", "9999-12-31T23:59:59.999Z").is_ok());
}

// ---- canonical JSON ---------------------------------------------------------

const MAX_SAFE: i64 = (1 << 53) - 1;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-MAX_SAFE..=MAX_SAFE).prop_map(Value::from),
        prop_oneof![Just(0i64), Just(-MAX_SAFE), Just(MAX_SAFE)].prop_map(Value::from),
        any_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// The same value with every object's keys inserted in reverse order.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter().rev() {
                out.insert(k.clone(), reversed(v));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// JSON text for `v` with each object's keys written in reverse order.
fn reversed_text(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[ {} ]",
            items
                .iter()
                .map(reversed_text)
                .collect::<Vec<_>>()
                .join(" , ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.reverse();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{} : {}",
                        serde_json::to_string(k).expect("key"),
                        reversed_text(&map[k])
                    )
                })
                .collect();
            format!("{{ {} }}", parts.join(" , "))
        }
        other => serde_json::to_string(other).expect("leaf"),
    }
}

// ---- timestamps -------------------------------------------------------------

#[derive(Debug, Clone)]
struct Stamp {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// Fractional-second digits, if any.
    fraction: Option<String>,
    /// `None` is `Z`; otherwise (negative, hours, minutes).
    offset: Option<(bool, u8, u8)>,
}

impl Stamp {
    fn text(&self) -> String {
        let frac = self
            .fraction
            .as_ref()
            .map(|f| format!(".{f}"))
            .unwrap_or_default();
        let offset = match self.offset {
            None => "Z".to_owned(),
            Some((neg, h, m)) => format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' }),
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{offset}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// The instant in nanoseconds since the epoch, computed independently of
    /// `Timestamp` with the `time` crate.
    fn unix_nanos(&self) -> i128 {
        let month = time::Month::try_from(self.month).expect("month");
        let date = time::Date::from_calendar_date(self.year, month, self.day).expect("date");
        let nanos = self.fraction.as_ref().map_or(0, |f| {
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
            digits.parse::<u32>().expect("digits")
        });
        let t =
            time::Time::from_hms_nano(self.hour, self.minute, self.second, nanos).expect("time");
        let (sign, h, m) = self.offset.map_or((1, 0, 0), |(neg, h, m)| {
            (if neg { -1 } else { 1 }, h as i8, m as i8)
        });
        let offset = time::UtcOffset::from_hms(sign * h, sign * m, 0).expect("offset");
        time::PrimitiveDateTime::new(date, t)
            .assume_offset(offset)
            .unix_timestamp_nanos()
    }
}

fn stamp() -> impl Strategy<Value = Stamp> {
    (
        prop_oneof![
            0i32..=9999,
            1900i32..=2100,
            Just(0),
            Just(9999),
            1969i32..=1970
        ],
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        prop::option::of("[0-9]{1,9}"),
        prop::option::of((any::<bool>(), 0u8..24, 0u8..60)),
    )
        .prop_map(
            |(year, month, day, hour, minute, second, fraction, offset)| Stamp {
                year,
                month,
                day,
                hour,
                minute,
                second,
                fraction,
                offset,
            },
        )
}

/// The canonical display of an instant: UTC, three fractional digits.
fn utc_text(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    (0..=9999).contains(&t.year()).then(|| {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    })
}

proptest! {
    #![proptest_config(config())]

    /// (e) Canonical JSON parses back to the same value, is a fixed point,
    /// and does not depend on the order in which keys were written.
    #[test]
    fn canonical_json_round_trips_and_ignores_key_order(v in json_value()) {
        let bytes = canonical::to_vec(&v).expect("integers within 2^53 canonicalise");
        let back: Value = serde_json::from_slice(&bytes).expect("canonical output is JSON");
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(canonical::to_vec(&back).expect("again"), bytes.clone());
        prop_assert_eq!(canonical::to_vec(&reversed(&v)).expect("reversed"), bytes.clone());
        let reparsed: Value = serde_json::from_str(&reversed_text(&v)).expect("reversed text");
        prop_assert_eq!(canonical::to_vec(&reparsed).expect("reparsed"), bytes.clone());
        let text = String::from_utf8(bytes).expect("UTF-8");
        prop_assert!(!text.chars().any(|c| (c as u32) < 0x20), "{}", text);
    }

    /// (e) Integers canonicalise exactly when ECMAScript holds them exactly.
    #[test]
    fn canonical_json_refuses_unsafe_integers(i in any::<i64>(), f in any::<f64>()) {
        let ok = canonical::to_vec(&Value::from(i));
        prop_assert_eq!(ok.is_ok(), i.unsigned_abs() <= MAX_SAFE as u64);
        if let Ok(bytes) = ok {
            prop_assert_eq!(bytes, i.to_string().into_bytes());
        }
        if let Some(n) = serde_json::Number::from_f64(f) {
            prop_assert!(canonical::to_vec(&Value::Number(n)).is_err());
        }
    }

    /// (f) Timestamp parsing never panics on any text.
    #[test]
    fn timestamp_parse_never_panics(
        s in prop_oneof![
            any_text(),
            "[0-9+-]{0,6}-[0-9]{1,3}-[0-9]{1,3}[Tt ][0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}(\\.[0-9]{0,20})?(Z|z|[+-][0-9]{1,3}:[0-9]{1,3}|)",
        ]
    ) {
        if let Ok(t) = Timestamp::parse("t", &s) {
            let shown = t.to_string();
            prop_assert_eq!(Timestamp::parse("t", &shown), Ok(t), "{} shown as {}", s, shown);
        }
    }

    /// (f) Valid RFC 3339 timestamps parse to the instant they name (to the
    /// millisecond, rounding down), display in canonical UTC form and parse
    /// back from it. Ones whose instant falls outside years 0000 to 9999 in
    /// UTC cannot be written back out, so they are refused.
    #[test]
    fn timestamps_round_trip_through_display(st in stamp()) {
        let text = st.text();
        let ms = st.unix_nanos().div_euclid(1_000_000);
        let ms = i64::try_from(ms).expect("in i64");
        match utc_text(ms) {
            Some(want) => {
                let t = Timestamp::parse("t", &text);
                prop_assert_eq!(t.map(Timestamp::unix_millis), Ok(ms), "{}", text);
                let t = Timestamp::from_unix_millis(ms);
                prop_assert_eq!(t.to_string(), want.clone(), "{}", text);
                prop_assert_eq!(Timestamp::parse("t", &want), Ok(t));
            }
            None => {
                let t = Timestamp::parse("t", &text);
                prop_assert!(t.is_err(), "{} is outside 0000-9999 in UTC but parsed as {:?}", text, t);
            }
        }
    }
}
