//! `GET /metrics` on the real binary: the body is the Prometheus text
//! format (checked by a strict parser below: every line a comment, a
//! `# HELP`/`# TYPE` or a well-formed sample of a declared family;
//! histogram buckets cumulative and ending in `+Inf` = `_count`), the
//! outbox depth of a destination whose receiver is down grows as notices
//! are submitted, and strangers are refused (401 without a token, 403 for
//! a role that may not read metrics) unless their network is allowed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tapis_store::testing::{TestDb, backends};

/// One sample: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y\"z"}` → labels; errors on anything else.
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("label without =\": {rest:?}"))?;
        if !is_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

/// Parse the text exposition format strictly; returns the samples and
/// each family's type.
fn parse(text: &str) -> Result<(Vec<Sample>, BTreeMap<String, String>), String> {
    let mut types = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !is_name(name) || !helped.insert(name.to_owned()) {
                return Err(at("bad or repeated HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (Some(name), Some(kind), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(at("TYPE needs a name and a type".into()));
            };
            if !is_name(name)
                || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                || types.insert(name.to_owned(), kind.to_owned()).is_some()
            {
                return Err(at("bad or repeated TYPE".into()));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value".into()))?;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| at("labels not closed".into()))?;
                (name, parse_labels(inner).map_err(at)?)
            }
            None => (series, BTreeMap::new()),
        };
        if !is_name(name) {
            return Err(at("bad metric name".into()));
        }
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(at(format!("sample of undeclared family {family}")));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value: parse_value(value).map_err(at)?,
        });
    }
    // histograms: cumulative buckets ending in +Inf, equal to _count
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let buckets: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
            .collect();
        let count = samples
            .iter()
            .find(|s| s.name == format!("{family}_count"))
            .ok_or(format!("{family} has no _count"))?;
        if buckets
            .last()
            .map(|b| b.labels.get("le").map(String::as_str))
            != Some(Some("+Inf"))
        {
            return Err(format!("{family}: last bucket is not +Inf"));
        }
        if buckets.windows(2).any(|w| w[0].value > w[1].value) {
            return Err(format!("{family}: buckets are not cumulative"));
        }
        if buckets.last().map(|b| b.value) != Some(count.value) {
            return Err(format!("{family}: +Inf bucket differs from _count"));
        }
    }
    Ok((samples, types))
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let good = "# HELP a_b A thing.\n# TYPE a_b gauge\na_b{x=\"1\",y=\"q\\\"\"} 2.5\n";
    assert!(parse(good).is_ok(), "{:?}", parse(good));
    for bad in [
        "a_b 1\n",                              // no TYPE
        "# TYPE a_b gauge\na_b{x=1} 1\n",       // unquoted label
        "# TYPE a_b gauge\na_b{x=\"1\" 1\n",    // unclosed
        "# TYPE a_b gauge\na-b 1\n",            // bad name
        "# TYPE a_b gauge\na_b one\n",          // bad value
        "# TYPE a_b gauge\n# TYPE a_b gauge\n", // repeated
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

async fn scrape(server: &Server, token: Option<&str>) -> (StatusCode, String) {
    let mut req = server.api.client.get(format!("{}/metrics", server.base()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("scrape");
    let status = resp.status();
    if status == StatusCode::OK {
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    }
    (status, resp.text().await.expect("body"))
}

fn value(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_show_a_growing_outbox_and_refuse_strangers() {
    for b in backends() {
        metrics_on(b).await;
    }
}

async fn metrics_on(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let server = server()
        .database_url(&db.url)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
        .start();
    let authority = server.authority().await;
    let officer = server.token(&authority, "officer").await;
    let auditor = server.token(&authority, "auditor").await;
    // its receiver is down: nothing listens on its webhook's port
    let platform = platform_with_dead_webhook(&server, "Down Platform", "down.example").await;

    // an ISP with resolvers, so that its sync lag is a series
    let isp = server.party("isp", "NetCo").await;
    let isp_token = server.token(&isp, "isp_operator").await;
    let (s, v) = server
        .put(
            &format!("/api/v1/parties/{isp}/resolvers"),
            &isp_token,
            json!({"resolvers": [], "notify": [], "allow_transfer_from": ["127.0.0.1"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // strangers are refused
    let (s, body) = scrape(&server, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, body) = scrape(&server, Some(&officer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("metrics"), "{body}");

    let pending = |text: &str| -> f64 {
        let (samples, types) = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // a family with no series yet (an empty outbox) is left out
        assert!(
            types
                .get("tapis_outbox_pending")
                .is_none_or(|t| t == "gauge")
        );
        assert_eq!(
            types
                .get("tapis_chain_lock_wait_seconds")
                .map(String::as_str),
            Some("histogram")
        );
        assert_eq!(
            value(&samples, "tapis_database_up", None),
            Some(1.0),
            "{text}"
        );
        value(
            &samples,
            "tapis_outbox_pending",
            Some(("party", platform.as_str())),
        )
        .unwrap_or(0.0)
    };
    let (s, text) = scrape(&server, Some(&auditor)).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let before = pending(&text);

    let submit = || async {
        let (s, n) = server
            .post(
                "/api/v1/notices",
                &officer,
                json!({
                    "platform_id": platform, "category": "terrorism", "urgency": "urgent",
                    "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
                    "explanation": "Channel distributes terrorist propaganda",
                    "items": [{"kind": "platform_channel", "value": "@channel_1", "native_id": "-1001"}],
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{n}");
    };
    submit().await;
    let first = wait_until_async(
        Duration::from_secs(15),
        "the outbox gauge to count it",
        || async {
            let (_, text) = scrape(&server, Some(ADMIN)).await;
            let p = pending(&text);
            (p > before).then_some(p)
        },
    )
    .await;
    submit().await;
    submit().await;
    let (_, text) = scrape(&server, Some(&auditor)).await;
    let (samples, types) = parse(&text).expect("parses");
    assert_eq!(
        types.get("tapis_outbox_pending").map(String::as_str),
        Some("gauge")
    );
    let grown = value(
        &samples,
        "tapis_outbox_pending",
        Some(("party", platform.as_str())),
    )
    .expect("the destination's depth");
    assert!(grown >= first + 2.0, "{first} then {grown}\n{text}");
    let age = value(
        &samples,
        "tapis_outbox_oldest_age_seconds",
        Some(("party", platform.as_str())),
    )
    .expect("age");
    assert!(age >= 0.0);
    assert_eq!(
        samples
            .iter()
            .find(|s| s.name == "tapis_outbox_pending")
            .and_then(|s| s.labels.get("name"))
            .map(String::as_str),
        Some("Down Platform")
    );
    // the writes waited for the chain lock, and were counted
    assert!(value(&samples, "tapis_chain_lock_wait_seconds_count", None).unwrap_or(0.0) >= 3.0);
    assert!(
        value(
            &samples,
            "tapis_http_responses_total",
            Some(("class", "2xx"))
        )
        .unwrap_or(0.0)
            >= 3.0,
        "{text}"
    );
    assert!(
        value(
            &samples,
            "tapis_loop_last_beat_age_seconds",
            Some(("loop", "scheduler"))
        )
        .is_some()
    );
    assert_eq!(
        value(&samples, "tapis_isp_serial", Some(("isp", isp.as_str()))),
        Some(0.0),
        "{text}"
    );
    // every tapis metric the alert rules use is served (the delivery
    // workers' own, tapis_delivery_*, through their stats source)
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations/alerts.yml"),
    )
    .expect("docs/operations/alerts.yml");
    let used: BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.len() > 6 && w.starts_with("tapis_"))
        .collect();
    assert!(used.len() >= 10, "{used:?}");
    for name in used {
        assert!(
            types.contains_key(name)
                || ["_bucket", "_total"]
                    .iter()
                    .any(|s| name.strip_suffix(s).is_some_and(|f| types.contains_key(f))),
            "alerts.yml uses {name}, which /metrics does not serve:\n{text}"
        );
    }
    drop(server);

    // an allowed network needs no token; others still do
    let server = common::server()
        .database_url(&db.url)
        .env("TAPIS_METRICS_ALLOW_FROM", "127.0.0.1/32, ::1/128")
        .start();
    let (s, text) = scrape(&server, None).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    drop(server);
    let server = common::server()
        .database_url(&db.url)
        .env("TAPIS_METRICS_ALLOW_FROM", "10.0.0.0/8")
        .start();
    let (s, _) = scrape(&server, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    drop(server);
    db.cleanup().await;
}
