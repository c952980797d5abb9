//! The published contract: `GET /api/v1/openapi.json` is a valid OpenAPI
//! 3.1 document by an independent validator (Python's
//! `openapi-spec-validator`, which client generators agree with), every
//! documented path parameter is in its path, every documented route is
//! served, and no route is served outside the documented router.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn served_document() -> Value {
    let app = spawn_app(tapis_store::Backend::Sqlite).await;
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    app.stop().await;
    doc
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_3_1() {
    let doc = served_document().await;
    assert_eq!(
        doc["openapi"].as_str().map(|v| &v[..4]),
        Some("3.1."),
        "{}",
        doc["openapi"]
    );
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write");
    let out = Command::new("python3")
        .args([
            "-m",
            "openapi_spec_validator",
            "--schema",
            "3.1",
            "--validation-errors",
            "all",
        ])
        .arg(&file)
        .output()
        .expect("run python3");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains("No module named openapi_spec_validator"),
        "openapi-spec-validator is not installed: scripts/setup installs it (pip install openapi-spec-validator)"
    );
    assert!(
        out.status.success(),
        "the served OpenAPI document is invalid:\n{said}"
    );
    assert!(said.contains("OK"), "{said}");
}

/// `{name}` placeholders of a path template.
fn placeholders(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                ops.push((m.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn path_parameters_are_exactly_the_placeholders_of_their_path() {
    let doc = served_document().await;
    let ops = operations(&doc);
    assert!(ops.len() > 40, "{} operations", ops.len());
    let mut wrong = Vec::new();
    for (method, path, op) in &ops {
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let in_path: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect();
        if in_path != placeholders(path) {
            wrong.push(format!(
                "{method} {path}: path parameters {in_path:?}, placeholders {:?}",
                placeholders(path)
            ));
        }
        for p in &params {
            let place = p["in"].as_str().unwrap_or("");
            assert!(
                ["path", "query", "header"].contains(&place),
                "{method} {path}: parameter {p}"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app(tapis_store::Backend::Sqlite).await;
    let (_, doc) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    for (method, path, _) in operations(&doc) {
        let concrete = placeholders(&path).iter().fold(path.clone(), |p, name| {
            p.replace(&format!("{{{name}}}"), "x")
        });
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = app
            .client
            .request(m, format!("{}{concrete}", app.base))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let body = resp.text().await.expect("body");
        // the router's own answers for what it does not serve
        assert!(
            !(status == StatusCode::NOT_FOUND && body.contains("no such route"))
                && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
    app.stop().await;
}

#[test]
fn no_route_is_served_outside_the_documented_router() {
    // a bare axum `.route(…)` would serve a path the document does not
    // know; every route goes through `OpenApiRouter::routes(routes!(…))`
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (i, line) in text.lines().enumerate() {
            if line.contains(".route(") || line.contains("routing::") {
                found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes outside the OpenAPI router:\n{}",
        found.join("\n")
    );
}
