//! Arbitrary bodies to POST /api/v1/notices (SQLite): random bytes, random
//! JSON and mutations of a valid notice. Every answer is a 2xx, or a 4xx in
//! our error shape; never a 5xx, never a dropped connection. Generation is
//! seeded, so a failure reproduces.

// the harness also exports `backends`, which this SQLite-only test does not use
#[allow(unused_imports)]
mod common;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tapis_store::Backend;

const BODIES: usize = 64;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        ".{0,24}",
        "[\\x00-\\x1f\"\\\\]{0,6}",
        Just("terrorism".to_owned()),
        Just("https://example.com/x".to_owned()),
        Just("@channel".to_owned()),
        Just("0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a".to_owned()),
        Just("2017-03-28T10:00:00+07:00".to_owned()),
        Just("0000-01-01T00:00:00+01:00".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// One change to a valid notice, at the `at`-th node (modulo their number).
#[derive(Debug, Clone)]
enum Mutation {
    /// Another value of the same JSON type (a string for a string), which
    /// gets past decoding to validation.
    Retype(String, bool),
    Remove,
    Replace(Value),
    AddField(String, Value),
    Duplicate,
}

fn mutation() -> impl Strategy<Value = (usize, Mutation)> {
    let m = prop_oneof![
        6 => (text(), any::<bool>()).prop_map(|(s, b)| Mutation::Retype(s, b)),
        1 => Just(Mutation::Remove),
        1 => json_value().prop_map(Mutation::Replace),
        1 => (text(), json_value()).prop_map(|(k, v)| Mutation::AddField(k, v)),
        1 => Just(Mutation::Duplicate),
    ];
    (any::<usize>(), m)
}

/// JSON pointers to every node below the root.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, &p, out);
            }
        }
        _ => {}
    }
}

fn mutate(mut v: Value, mutations: &[(usize, Mutation)]) -> Value {
    for (at, m) in mutations {
        let mut ptrs = Vec::new();
        pointers(&v, "", &mut ptrs);
        if ptrs.is_empty() {
            break;
        }
        let ptr = &ptrs[at % ptrs.len()];
        let (parent_ptr, last) = ptr.rsplit_once('/').expect("a pointer has a slash");
        let key = last.replace("~1", "/").replace("~0", "~");
        let node = v.pointer(ptr).cloned().unwrap_or(Value::Null);
        if let Mutation::Retype(s, b) = m {
            let new = match node {
                Value::String(_) => Value::String(s.clone()),
                Value::Bool(_) => Value::Bool(*b),
                _ => continue,
            };
            if let Some(slot) = v.pointer_mut(ptr) {
                *slot = new;
            }
            continue;
        }
        let Some(parent) = v.pointer_mut(parent_ptr) else {
            continue;
        };
        match (parent, m) {
            (Value::Object(o), Mutation::Remove) => {
                o.remove(&key);
            }
            (Value::Array(a), Mutation::Remove) => {
                a.remove(key.parse::<usize>().expect("index"));
            }
            (Value::Object(o), Mutation::Replace(x)) => {
                o.insert(key, x.clone());
            }
            (Value::Array(a), Mutation::Replace(x)) => {
                a[key.parse::<usize>().expect("index")] = x.clone();
            }
            (Value::Object(o), Mutation::AddField(k, x)) => {
                o.insert(k.clone(), x.clone());
            }
            (Value::Array(a), Mutation::AddField(_, x)) => a.push(x.clone()),
            (Value::Object(o), Mutation::Duplicate) => {
                o.insert(format!("{key}_copy"), node);
            }
            (Value::Array(a), Mutation::Duplicate) => a.push(node),
            _ => {}
        }
    }
    v
}

/// The bodies to send, from a fixed seed.
fn bodies(platform: &str) -> Vec<Vec<u8>> {
    let valid = notice_body(platform, 2);
    let strategy = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("json")),
        4 => prop::collection::vec(mutation(), 1..4)
            .prop_map(move |ms| serde_json::to_vec(&mutate(valid.clone(), &ms)).expect("json")),
    ];
    let mut runner = TestRunner::deterministic();
    (0..BODIES)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("generate a body")
                .current()
        })
        .collect()
}

#[test]
fn mutations_reach_every_node() {
    let v = json!({"a": [1, {"b": 2}], "c/d": {"e~f": null}});
    let mut ptrs = Vec::new();
    pointers(&v, "", &mut ptrs);
    assert_eq!(ptrs.len(), 6, "{ptrs:?}");
    for (i, _) in ptrs.iter().enumerate() {
        let out = mutate(v.clone(), &[(i, Mutation::Remove)]);
        assert_ne!(out, v, "removing node {i} changed nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_notice_bodies_never_500() {
    let app = spawn_app(Backend::Sqlite).await;
    let platform = app.party("platform", "Messenger").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let auditor = app.token(&app.authority_id, "auditor").await;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut created = 0;
    for (i, body) in bodies(&platform).into_iter().enumerate() {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(300)
            .collect::<String>();
        let resp = app
            .client
            .post(format!("{}/api/v1/notices", app.base))
            .bearer_auth(&officer)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("body {i} ({shown}): no response: {e}"));
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("body {i} ({shown}): non-JSON {status}: {text}"));
        assert!(
            status.is_success() || status.is_client_error(),
            "body {i} ({shown}): {status} {v}"
        );
        if status.is_success() {
            assert!(v["id"].is_string(), "body {i}: {v}");
            created += 1;
            *outcomes.entry(status.to_string()).or_default() += 1;
        } else {
            let obj: &Map<String, Value> = v.as_object().expect("object");
            assert_eq!(obj.len(), 1, "body {i} ({shown}): {v}");
            assert!(
                v["error"]["code"].as_str().is_some_and(|c| !c.is_empty())
                    && v["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                "body {i} ({shown}): {v}"
            );
            *outcomes
                .entry(format!(
                    "{status} {}",
                    v["error"]["code"].as_str().unwrap_or("")
                ))
                .or_default() += 1;
        }
    }
    // the mix is wide enough to mean something
    assert!(
        outcomes.len() >= 4,
        "too few kinds of outcome: {outcomes:?}"
    );
    let (s, listed) = app.get("/api/v1/notices?limit=500", &officer).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(created),
        "{outcomes:?}"
    );
    let (s, v) = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    app.stop().await;
}
