//! Every class of client error, over real HTTP on every backend: each bad
//! request gets the right status and our JSON error shape (never a 500, never
//! axum's plain text), and leaves nothing half-written: the notices an
//! officer sees and the audit chain (length, head, validity) are exactly as
//! they were before.

mod common;

use common::*;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tapis_core::notice::Limits as NoticeLimits;
use tapis_http::Limits;
use tapis_store::Backend;

/// Run `$test` against every backend, as its own `#[tokio::test]`.
macro_rules! on_every_backend {
    ($($name:ident => $test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for b in backends() {
                    $test(b).await;
                }
            }
        )+
    };
}

/// A server with the cast every test needs, and one submitted notice.
struct World {
    app: App,
    platform: String,
    other_platform: String,
    isp: String,
    flagger: String,
    officer: String,
    auditor: String,
    agent: String,
    other_agent: String,
    isp_operator: String,
    notice: String,
    items: Vec<String>,
}

async fn world(backend: Backend) -> World {
    world_with(backend, Limits::default()).await
}

async fn world_with(backend: Backend, limits: Limits) -> World {
    let app = spawn_app_with(backend, limits).await;
    let platform = app.party("platform", "Messenger").await;
    let other_platform = app.party("platform", "Other Platform").await;
    let isp = app.party("isp", "Backbone ISP").await;
    let flagger = app.party("flagger", "Safer Internet NGO").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let auditor = app.token(&app.authority_id, "auditor").await;
    let agent = app.token(&platform, "platform_agent").await;
    let other_agent = app.token(&other_platform, "platform_agent").await;
    let isp_operator = app.token(&isp, "isp_operator").await;
    let (s, n) = app
        .post("/api/v1/notices", &officer, notice_body(&platform, 2))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let notice = n["id"].as_str().expect("id").to_owned();
    let items = n["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("item id").to_owned())
        .collect();
    World {
        app,
        platform,
        other_platform,
        isp,
        flagger,
        officer,
        auditor,
        agent,
        other_agent,
        isp_operator,
        notice,
        items,
    }
}

/// What a bad request must not change: every notice as an officer sees it,
/// and the audit chain.
#[derive(Debug, PartialEq)]
struct Snapshot {
    notices: Value,
    events: u64,
    head: String,
}

impl World {
    async fn snapshot(&self) -> Snapshot {
        let (s, notices) = self
            .app
            .get("/api/v1/notices?limit=500", &self.officer)
            .await;
        assert_eq!(s, StatusCode::OK, "{notices}");
        assert!(notices.is_array(), "{notices}");
        let (s, v) = self.app.get("/api/v1/audit/verify", &self.auditor).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["ok"], true, "the audit chain does not verify: {v}");
        Snapshot {
            notices,
            events: v["events"].as_u64().expect("events"),
            head: v["head"].as_str().expect("head").to_owned(),
        }
    }

    async fn assert_unchanged(&self, before: &Snapshot, what: &str) {
        let now = self.snapshot().await;
        assert_eq!(
            now.events, before.events,
            "{what}: the audit log grew from {} to {} events",
            before.events, now.events
        );
        assert_eq!(&now, before, "{what}: stored state changed");
    }

    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        self.app
            .client
            .request(method, format!("{}{path}", self.app.base))
    }

    fn authed(&self, method: &str, path: &str, token: &str) -> RequestBuilder {
        self.req(method, path).bearer_auth(token)
    }

    fn decision_path(&self, item: usize) -> String {
        format!(
            "/api/v1/notices/{}/items/{}/decision",
            self.notice, self.items[item]
        )
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

/// Send `req`; the response must be JSON.
async fn send(req: RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("non-JSON response {status}: {text:?}"));
    (status, headers, value)
}

/// The error shape, exactly: `{"error": {"code", "message", "field"?}}`
/// with a 4xx status.
fn assert_shape(status: StatusCode, body: &Value, what: &str) {
    assert!(
        status.is_client_error(),
        "{what}: expected a 4xx, got {status}: {body}"
    );
    let top = body.as_object().expect("an object");
    assert_eq!(top.keys().collect::<Vec<_>>(), ["error"], "{what}: {body}");
    let err = body["error"].as_object().expect("error is an object");
    assert!(
        err.keys()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "{what}: {body}"
    );
    let code = err["code"].as_str().expect("code is a string");
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{what}: {body}"
    );
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    if let Some(f) = err.get("field") {
        assert!(f.as_str().is_some_and(|f| !f.is_empty()), "{what}: {body}");
    }
}

/// Send `req` and expect an error with this status and code.
/// One request of a table of bad requests.
struct Case<'a> {
    what: &'a str,
    method: &'a str,
    path: String,
    token: &'a str,
    body: Option<&'a Value>,
}

fn case<'a>(
    what: &'a str,
    method: &'a str,
    path: impl Into<String>,
    token: &'a str,
    body: Option<&'a Value>,
) -> Case<'a> {
    Case {
        what,
        method,
        path: path.into(),
        token,
        body,
    }
}

impl World {
    /// Every case must fail with `status` and the error `code`.
    async fn expect_each(&self, cases: Vec<Case<'_>>, status: StatusCode, code: &str) {
        for c in cases {
            let mut req = self.authed(c.method, &c.path, c.token);
            if let Some(body) = c.body {
                req = json_req(req, body);
            }
            let what = format!("{} ({} {})", c.what, c.method, c.path);
            expect_error(req, status, code, &what).await;
        }
    }
}

async fn expect_error(
    req: RequestBuilder,
    status: StatusCode,
    code: &str,
    what: &str,
) -> (HeaderMap, Value) {
    let (s, headers, body) = send(req).await;
    assert_shape(s, &body, what);
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{what}: {body}"
    );
    (headers, body)
}

/// Send `req` and expect a 422 `invalid` naming `field`.
async fn expect_invalid(req: RequestBuilder, field: &str, what: &str) {
    let (_, body) = expect_error(req, StatusCode::UNPROCESSABLE_ENTITY, "invalid", what).await;
    assert_eq!(body["error"]["field"], field, "{what}: {body}");
}

fn json_req(req: RequestBuilder, body: &Value) -> RequestBuilder {
    req.header(CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).expect("json"))
}

// ---- 400 malformed_json -------------------------------------------------------

async fn malformed_json(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let deep = "[".repeat(100_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated object", br#"{"platform_id": "#.to_vec()),
        ("truncated array", b"[1, 2".to_vec()),
        ("empty body", Vec::new()),
        ("trailing garbage", b"{} x".to_vec()),
        ("single quotes", b"{'platform_id': 'x'}".to_vec()),
        ("not UTF-8", vec![0xff, 0xfe, b'{', b'}']),
        ("deep nesting", deep.into_bytes()),
        ("a bare word", b"notice".to_vec()),
    ];
    let targets = [
        ("POST", "/api/v1/notices".to_owned(), w.officer.clone()),
        ("POST", "/api/v1/parties".to_owned(), w.app.admin.clone()),
        ("POST", w.decision_path(0), w.agent.clone()),
        (
            "POST",
            format!("/api/v1/parties/{}/tokens", w.platform),
            w.app.admin.clone(),
        ),
        (
            "POST",
            format!("/api/v1/notices/{}/withdraw", w.notice),
            w.officer.clone(),
        ),
    ];
    for (method, path, token) in &targets {
        for (what, body) in &bodies {
            let req = w
                .authed(method, path, token)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            expect_error(
                req,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("{what} to {path}"),
            )
            .await;
        }
    }
    w.assert_unchanged(&before, "malformed JSON").await;
    w.stop().await;
}

// ---- 422 invalid_body: unknown, missing and mistyped fields -------------------

async fn invalid_body(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let valid = notice_body(&w.platform, 1);
    type Mutate = fn(&mut Value);
    let notice_cases: Vec<(&str, Mutate)> = vec![
        ("unknown top-level field", |n| n["priority"] = json!("high")),
        ("unknown field in legal_basis", |n| {
            n["legal_basis"]["article"] = json!("40")
        }),
        ("unknown field in an item", |n| {
            n["items"][0]["colour"] = json!("red")
        }),
        ("unknown field in evidence", |n| {
            n["items"][0]["evidence"][0]["url"] = json!("https://example.com/")
        }),
        ("missing category", |n| {
            n.as_object_mut().expect("obj").remove("category");
        }),
        ("missing items", |n| {
            n.as_object_mut().expect("obj").remove("items");
        }),
        ("missing legal_basis.text", |n| {
            n["legal_basis"]
                .as_object_mut()
                .expect("obj")
                .remove("text");
        }),
        ("missing item value", |n| {
            n["items"][0].as_object_mut().expect("obj").remove("value");
        }),
        ("items is a string", |n| n["items"] = json!("abc")),
        ("draft is a string", |n| n["draft"] = json!("yes")),
        ("platform_id is a number", |n| n["platform_id"] = json!(5)),
        ("may_notify_user is a float", |n| {
            n["may_notify_user"] = json!(1.5)
        }),
        ("evidence is an object", |n| {
            n["items"][0]["evidence"] = json!({})
        }),
        ("category is null", |n| n["category"] = Value::Null),
        ("body is an array", |n| *n = json!([])),
        ("body is null", |n| *n = Value::Null),
        ("body is a string", |n| *n = json!("notice")),
    ];
    for (what, mutate) in notice_cases {
        let mut body = valid.clone();
        mutate(&mut body);
        let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
        expect_error(req, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", what).await;
    }
    let party_cases = [
        (
            "unknown party field",
            json!({"kind": "platform", "name": "X", "website": "x"}),
        ),
        (
            "unknown contact field",
            json!({"kind": "platform", "name": "X", "contacts": [{"email": "a@b.example", "fax": "1"}]}),
        ),
        ("missing party name", json!({"kind": "platform"})),
        ("party kind is a number", json!({"kind": 1, "name": "X"})),
    ];
    for (what, body) in &party_cases {
        let req = json_req(w.authed("POST", "/api/v1/parties", &w.app.admin), body);
        expect_error(req, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", what).await;
    }
    let decision_cases = [
        (
            "unknown decision field",
            json!({"decision": "removed", "note": "done"}),
        ),
        ("missing decision", json!({"reason": "done"})),
        (
            "reason is a number",
            json!({"decision": "rejected", "reason": 5}),
        ),
    ];
    for (what, body) in &decision_cases {
        let req = json_req(w.authed("POST", &w.decision_path(0), &w.agent), body);
        expect_error(req, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", what).await;
    }
    let token_path = format!("/api/v1/parties/{}/tokens", w.platform);
    let token_cases = [
        (
            "unknown token field",
            json!({"role": "platform_agent", "label": "x", "expires": "never"}),
        ),
        ("missing token label", json!({"role": "platform_agent"})),
    ];
    for (what, body) in &token_cases {
        let req = json_req(w.authed("POST", &token_path, &w.app.admin), body);
        expect_error(req, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", what).await;
    }
    let withdraw = format!("/api/v1/notices/{}/withdraw", w.notice);
    for (what, body) in [
        (
            "unknown withdraw field",
            json!({"reason": "x", "now": true}),
        ),
        ("missing withdraw reason", json!({})),
    ] {
        let req = json_req(w.authed("POST", &withdraw, &w.officer), &body);
        expect_error(req, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", what).await;
    }
    w.assert_unchanged(&before, "invalid bodies").await;
    w.stop().await;
}

// ---- 413 payload_too_large ----------------------------------------------------

async fn payload_too_large(b: Backend) {
    let limits = Limits {
        max_body_bytes: 4096,
        ..Default::default()
    };
    let w = world_with(b, limits).await;
    let before = w.snapshot().await;
    let mut big = notice_body(&w.platform, 1);
    big["explanation"] = json!("x".repeat(6000));
    let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &big);
    let (_, body) = expect_error(
        req,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "big notice",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4096")),
        "{body}"
    );
    // the limit applies before the body is parsed: big garbage is a 413 too
    let req = w
        .authed("POST", "/api/v1/notices", &w.officer)
        .header(CONTENT_TYPE, "application/json")
        .body(vec![b'{'; 10_000]);
    expect_error(
        req,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "big garbage",
    )
    .await;
    let party = json!({"kind": "platform", "name": "y".repeat(5000)});
    let req = json_req(w.authed("POST", "/api/v1/parties", &w.app.admin), &party);
    expect_error(
        req,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "big party",
    )
    .await;
    w.assert_unchanged(&before, "bodies over the limit").await;
    // a body under the limit still goes through
    let (s, v) = w
        .app
        .post(
            "/api/v1/notices",
            &w.officer,
            notice_body(&w.other_platform, 1),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    w.stop().await;
}

// ---- 415 unsupported_media_type -----------------------------------------------

async fn unsupported_media_type(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let body = serde_json::to_vec(&notice_body(&w.other_platform, 1)).expect("json");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        Some("multipart/form-data; boundary=x"),
        Some(""),
    ] {
        let mut req = w
            .authed("POST", "/api/v1/notices", &w.officer)
            .body(body.clone());
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        expect_error(
            req,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &format!("Content-Type {ct:?}"),
        )
        .await;
    }
    let party = br#"{"kind": "platform", "name": "Plain"}"#.to_vec();
    let req = w
        .authed("POST", "/api/v1/parties", &w.app.admin)
        .header(CONTENT_TYPE, "text/plain")
        .body(party);
    expect_error(
        req,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "party as text/plain",
    )
    .await;
    w.assert_unchanged(&before, "wrong Content-Type").await;
    // parameters and case do not matter
    let req = w
        .authed("POST", "/api/v1/notices", &w.officer)
        .header(CONTENT_TYPE, "Application/JSON; charset=utf-8")
        .body(body);
    let (s, _, v) = send(req).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    w.stop().await;
}

// ---- 422 invalid: too many items ----------------------------------------------

async fn too_many_items(b: Backend) {
    let limits = Limits {
        notice: NoticeLimits {
            max_items: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let w = world_with(b, limits).await;
    let before = w.snapshot().await;
    for n in [4, 50, 0] {
        let req = json_req(
            w.authed("POST", "/api/v1/notices", &w.officer),
            &notice_body(&w.other_platform, n),
        );
        expect_invalid(req, "items", &format!("{n} items")).await;
    }
    w.assert_unchanged(&before, "too many items").await;
    let (s, v) = w
        .app
        .post(
            "/api/v1/notices",
            &w.officer,
            notice_body(&w.other_platform, 3),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    w.stop().await;
}

// ---- 422 invalid: bad values, named by field ----------------------------------

/// `n` lowercase letters that do not compress (PostgreSQL compresses long
/// index entries, so repetitive text would hide a size limit).
fn incompressible(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

async fn invalid_values(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let item = |kind: &str, value: &str| json!({"kind": kind, "value": value});
    let hash64 = "ab".repeat(32);
    let item_cases = [
        (item("url", "not a url"), "items[0].value"),
        (item("url", "ftp://example.com/file"), "items[0].value"),
        (
            item("url", "https://user:pw@example.com/"),
            "items[0].value",
        ),
        (item("url", "https://example.com/\u{0}"), "items[0].value"),
        (item("url", "\u{1}https://example.com/"), "items[0].value"),
        (item("url", "https://exa\tmple.com/"), "items[0].value"),
        (
            item("url", &format!("https://example.com/{}", "a".repeat(5000))),
            "items[0].value",
        ),
        // too long to index for deduplication, as typed or once normalised
        (
            item(
                "url",
                &format!("https://example.com/{}", incompressible(4000)),
            ),
            "items[0].value",
        ),
        (
            item("url", &format!("https://example.com/{}", "é".repeat(400))),
            "items[0].value",
        ),
        (item("domain", "exa mple.com"), "items[0].value"),
        (item("domain", "*.example.com"), "items[0].value"),
        (item("domain", "1.2.3.4"), "items[0].value"),
        (item("domain", "com"), "items[0].value"),
        (item("content_hash", "xyz"), "items[0].value"),
        (
            item("content_hash", &format!("md5:{hash64}")),
            "items[0].value",
        ),
        (
            item("content_hash", &format!("crc32:{}", "a".repeat(8))),
            "items[0].value",
        ),
        (item("platform_channel", "@"), "items[0].value"),
        (item("platform_account", "two words"), "items[0].value"),
        (item("platform_account", "İstanbul"), "items[0].value"),
        (item("tweet", "@x"), "items[0].kind"),
        (
            json!({"kind": "domain", "value": "example.com", "native_id": "1"}),
            "items[0].native_id",
        ),
        (
            json!({"kind": "platform_channel", "value": "@c", "native_id": "a\u{0}b"}),
            "items[0].native_id",
        ),
    ];
    for (bad, field) in &item_cases {
        let mut body = notice_body(&w.other_platform, 1);
        body["items"][0] = bad.clone();
        let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
        expect_invalid(req, field, &format!("item {bad}")).await;
    }
    // the index is the item's: a bad second item names items[1]
    let mut body = notice_body(&w.other_platform, 2);
    body["items"][1]["value"] = json!("@");
    let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
    expect_invalid(req, "items[1].value", "bad second item").await;
    let mut body = notice_body(&w.other_platform, 2);
    body["items"][1]["value"] = json!("@CHANNEL_0");
    let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
    expect_invalid(req, "items[1]", "repeated item").await;

    type Mutate = fn(&mut Value);
    let cases: Vec<(Mutate, &str)> = vec![
        (|n| n["urgency"] = json!("asap"), "urgency"),
        (|n| n["explanation"] = json!("  "), "explanation"),
        (
            |n| n["explanation"] = json!("nul \u{0} inside"),
            "explanation",
        ),
        (
            |n| n["explanation"] = json!("x".repeat(20_001)),
            "explanation",
        ),
        (
            |n| n["legal_basis"]["reference"] = json!(""),
            "legal_basis.reference",
        ),
        (
            |n| n["territorial_scope"] = json!(["Indonesia"]),
            "territorial_scope[0]",
        ),
        (
            |n| n["items"][0]["evidence"][0]["sha256"] = json!("abc"),
            "items[0].evidence[0].sha256",
        ),
        (
            |n| n["items"][0]["evidence"][0]["description"] = json!(""),
            "items[0].evidence[0].description",
        ),
        (
            |n| n["items"][0]["evidence"][0]["captured_at"] = json!("yesterday"),
            "items[0].evidence[0].captured_at",
        ),
        (
            |n| n["items"][0]["evidence"][0]["captured_at"] = json!("2999-01-01T00:00:00Z"),
            "items[0].evidence[0].captured_at",
        ),
        // in UTC this is in year -1, which has no RFC 3339 form to store
        (
            |n| n["items"][0]["evidence"][0]["captured_at"] = json!("0000-01-01T00:00:00+01:00"),
            "items[0].evidence[0].captured_at",
        ),
    ];
    for (mutate, field) in cases {
        let mut body = notice_body(&w.other_platform, 1);
        mutate(&mut body);
        let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
        expect_invalid(req, field, field).await;
    }
    w.assert_unchanged(&before, "invalid values").await;
    // a long URL within the limit stores, and deduplicates, on every backend
    let long = format!("https://example.com/{}", incompressible(2000));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut body = notice_body(&w.other_platform, 1);
        body["items"][0] = item("url", &long);
        let (s, v) = w.app.post("/api/v1/notices", &w.officer, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["items"][0]["normalized"], long.as_str());
        ids.push(v["items"][0]["id"].clone());
        if ids.len() == 2 {
            assert_eq!(v["items"][0]["duplicate_of"]["item_id"], ids[0], "{v}");
        }
    }
    w.stop().await;
}

// ---- 422 invalid: platform_id and category ------------------------------------

async fn bad_platform_and_category(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let unknown = "0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a".to_owned();
    for (platform, what) in [
        (unknown.as_str(), "unknown party"),
        ("not-a-party-id", "malformed id"),
        ("", "empty id"),
        (w.isp.as_str(), "an ISP"),
        (w.flagger.as_str(), "a flagger"),
        (w.app.authority_id.as_str(), "the authority"),
    ] {
        let req = json_req(
            w.authed("POST", "/api/v1/notices", &w.officer),
            &notice_body(platform, 1),
        );
        expect_invalid(req, "platform_id", what).await;
    }
    for category in ["jaywalking", "", "TERRORISM", "terrorism\u{0}"] {
        let mut body = notice_body(&w.platform, 1);
        body["category"] = json!(category);
        let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
        expect_invalid(req, "category", category).await;
    }
    // drafts are checked the same way
    let mut body = notice_body(&w.isp, 1);
    body["draft"] = json!(true);
    let req = json_req(w.authed("POST", "/api/v1/notices", &w.officer), &body);
    expect_invalid(req, "platform_id", "draft to an ISP").await;
    w.assert_unchanged(&before, "bad platform or category")
        .await;
    w.stop().await;
}

// ---- 401 unauthorized ---------------------------------------------------------

async fn unauthorized(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let valid = serde_json::to_vec(&notice_body(&w.other_platform, 1)).expect("json");
    let routes = [
        ("GET", "/api/v1/notices".to_owned()),
        ("POST", "/api/v1/notices".to_owned()),
        ("GET", "/api/v1/whoami".to_owned()),
        ("GET", "/api/v1/audit/verify".to_owned()),
        ("POST", "/api/v1/parties".to_owned()),
        ("GET", format!("/api/v1/notices/{}", w.notice)),
        ("POST", format!("/api/v1/notices/{}/acknowledge", w.notice)),
    ];
    let long = format!("Bearer {}", "x".repeat(300));
    let headers: [(&str, Option<HeaderValue>); 8] = [
        ("no header", None),
        (
            "wrong token",
            Some(HeaderValue::from_static("Bearer tapis_not_a_real_token")),
        ),
        (
            "basic auth",
            Some(HeaderValue::from_static("Basic YWRtaW46YWRtaW4=")),
        ),
        ("empty bearer", Some(HeaderValue::from_static("Bearer "))),
        (
            "no scheme",
            Some(HeaderValue::from_str(&w.officer).expect("header")),
        ),
        (
            "over-long token",
            Some(HeaderValue::from_str(&long).expect("header")),
        ),
        (
            "not text",
            Some(HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("header")),
        ),
        (
            "a real token with a character added",
            Some(HeaderValue::from_str(&format!("Bearer {}x", w.officer)).expect("header")),
        ),
    ];
    for (method, path) in &routes {
        for (what, value) in &headers {
            let mut req = w
                .req(method, path)
                .header(CONTENT_TYPE, "application/json")
                .body(valid.clone());
            if let Some(v) = value {
                req = req.header(AUTHORIZATION, v.clone());
            }
            let (h, _) = expect_error(
                req,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &format!("{what} on {method} {path}"),
            )
            .await;
            assert_eq!(
                h.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()),
                Some("Bearer realm=\"tapis\""),
                "{what} on {method} {path}"
            );
        }
    }
    w.assert_unchanged(&before, "unauthenticated requests")
        .await;
    w.stop().await;
}

// ---- 403 forbidden ------------------------------------------------------------

async fn forbidden(b: Backend) {
    let w = world(b).await;
    let flagger_token = w.app.token(&w.flagger, "flagger").await;
    let before = w.snapshot().await;
    let notice = notice_body(&w.platform, 1);
    let party = json!({"kind": "platform", "name": "Rogue"});
    let token = json!({"role": "officer", "label": "me"});
    let removed = json!({"decision": "removed"});
    let reason = json!({"reason": "because"});
    let n = &w.notice;
    #[rustfmt::skip]
    let cases = vec![
        case("platform agent submits", "POST", "/api/v1/notices", &w.agent, Some(&notice)),
        case("auditor submits", "POST", "/api/v1/notices", &w.auditor, Some(&notice)),
        case("admin submits", "POST", "/api/v1/notices", &w.app.admin, Some(&notice)),
        case("flagger submits", "POST", "/api/v1/notices", &flagger_token, Some(&notice)),
        case("officer creates a party", "POST", "/api/v1/parties", &w.officer, Some(&party)),
        case("agent creates a party", "POST", "/api/v1/parties", &w.agent, Some(&party)),
        case("officer mints a token", "POST", format!("/api/v1/parties/{}/tokens", w.app.authority_id), &w.officer, Some(&token)),
        case("agent mints a token", "POST", format!("/api/v1/parties/{}/tokens", w.platform), &w.agent, Some(&token)),
        case("officer decides", "POST", w.decision_path(0), &w.officer, Some(&removed)),
        case("auditor decides", "POST", w.decision_path(0), &w.auditor, Some(&removed)),
        case("officer acknowledges", "POST", format!("/api/v1/notices/{n}/acknowledge"), &w.officer, None),
        case("isp operator lists notices", "GET", "/api/v1/notices", &w.isp_operator, None),
        case("isp operator reads a notice", "GET", format!("/api/v1/notices/{n}"), &w.isp_operator, None),
        case("isp operator reads a timeline", "GET", format!("/api/v1/notices/{n}/timeline"), &w.isp_operator, None),
        case("officer verifies audit", "GET", "/api/v1/audit/verify", &w.officer, None),
        case("agent verifies audit", "GET", "/api/v1/audit/verify", &w.agent, None),
        case("agent withdraws", "POST", format!("/api/v1/notices/{n}/withdraw"), &w.agent, Some(&reason)),
        case("agent submits a draft", "POST", format!("/api/v1/notices/{n}/submit"), &w.agent, None),
        case("officer reads an inbox", "GET", "/api/v1/inbox", &w.officer, None),
        case("isp operator reads an inbox", "GET", "/api/v1/inbox", &w.isp_operator, None),
    ];
    w.expect_each(cases, StatusCode::FORBIDDEN, "forbidden")
        .await;
    w.assert_unchanged(&before, "forbidden requests").await;
    w.stop().await;
}

// ---- 422 invalid: a token role that does not fit the party --------------------

async fn token_role_mismatch(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let cases = [
        (
            &w.platform,
            json!({"role": "officer", "label": "x"}),
            "role",
        ),
        (
            &w.app.authority_id,
            json!({"role": "platform_agent", "label": "x"}),
            "role",
        ),
        (&w.isp, json!({"role": "flagger", "label": "x"}), "role"),
        (&w.flagger, json!({"role": "admin", "label": "x"}), "role"),
        (&w.platform, json!({"role": "root", "label": "x"}), "role"),
        (
            &w.platform,
            json!({"role": "platform_agent", "label": " "}),
            "label",
        ),
        (
            &w.platform,
            json!({"role": "platform_agent", "label": "a\u{0}b"}),
            "label",
        ),
    ];
    for (party, body, field) in &cases {
        let req = json_req(
            w.authed(
                "POST",
                &format!("/api/v1/parties/{party}/tokens"),
                &w.app.admin,
            ),
            body,
        );
        expect_invalid(req, field, &format!("{body}")).await;
    }
    let req = json_req(
        w.authed(
            "POST",
            "/api/v1/parties/0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a/tokens",
            &w.app.admin,
        ),
        &json!({"role": "platform_agent", "label": "x"}),
    );
    expect_error(
        req,
        StatusCode::NOT_FOUND,
        "not_found",
        "token for no party",
    )
    .await;
    w.assert_unchanged(&before, "token role mismatch").await;
    w.stop().await;
}

// ---- 404 not_found ------------------------------------------------------------

async fn not_found(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let unknown = "0190f5e2-8f3c-7b4e-9a1d-3c5e7f9b1d2a";
    let n = &w.notice;
    let removed = json!({"decision": "removed"});
    let reason = json!({"reason": "because"});
    #[rustfmt::skip]
    let cases = vec![
        case("unknown notice", "GET", format!("/api/v1/notices/{unknown}"), &w.officer, None),
        case("unknown notice's timeline", "GET", format!("/api/v1/notices/{unknown}/timeline"), &w.auditor, None),
        case("another platform's notice", "GET", format!("/api/v1/notices/{n}"), &w.other_agent, None),
        case("acknowledge another platform's notice", "POST", format!("/api/v1/notices/{n}/acknowledge"), &w.other_agent, None),
        case("decide another platform's item", "POST", w.decision_path(0), &w.other_agent, Some(&removed)),
        case("acknowledge unknown notice", "POST", format!("/api/v1/notices/{unknown}/acknowledge"), &w.agent, None),
        case("decide in unknown notice", "POST", format!("/api/v1/notices/{unknown}/items/{}/decision", w.items[0]), &w.agent, Some(&removed)),
        case("decide unknown item", "POST", format!("/api/v1/notices/{n}/items/{unknown}/decision"), &w.agent, Some(&removed)),
        case("withdraw unknown notice", "POST", format!("/api/v1/notices/{unknown}/withdraw"), &w.officer, Some(&reason)),
        case("submit unknown draft", "POST", format!("/api/v1/notices/{unknown}/submit"), &w.officer, None),
        case("unknown party", "GET", format!("/api/v1/parties/{unknown}"), &w.app.admin, None),
        case("another party's record", "GET", format!("/api/v1/parties/{}", w.platform), &w.other_agent, None),
    ];
    w.expect_each(cases, StatusCode::NOT_FOUND, "not_found")
        .await;
    w.assert_unchanged(&before, "not found").await;
    w.stop().await;
}

// ---- 400 invalid_id -----------------------------------------------------------

async fn invalid_id(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let simple = w.notice.replace('-', "");
    let n = &w.notice;
    let item = &w.items[0];
    let removed = json!({"decision": "removed"});
    let token = json!({"role": "officer", "label": "x"});
    #[rustfmt::skip]
    let cases = vec![
        case("invalid id", "GET", "/api/v1/notices/not-a-uuid", &w.officer, None),
        case("invalid id", "GET", format!("/api/v1/notices/{simple}"), &w.officer, None),
        case("invalid id", "GET", format!("/api/v1/notices/{n}x"), &w.officer, None),
        case("invalid id", "GET", "/api/v1/notices/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz/timeline", &w.auditor, None),
        case("invalid id", "GET", "/api/v1/parties/42", &w.app.admin, None),
        case("invalid id", "POST", "/api/v1/parties/42/tokens", &w.app.admin, Some(&token)),
        case("invalid id", "POST", format!("/api/v1/notices/x/items/{item}/decision"), &w.agent, Some(&removed)),
        case("invalid id", "POST", format!("/api/v1/notices/{n}/items/1/decision"), &w.agent, Some(&removed)),
        case("invalid id", "POST", "/api/v1/notices/%20/acknowledge", &w.agent, None),
        case("invalid id", "POST", "/api/v1/notices/1/submit", &w.officer, None),
        case("invalid id", "GET", "/api/v1/notices?platform=messenger", &w.officer, None),
        case("invalid id", "GET", "/api/v1/notices?before=yesterday", &w.officer, None),
    ];
    w.expect_each(cases, StatusCode::BAD_REQUEST, "invalid_id")
        .await;
    // a path segment that is not UTF-8 cannot even be read as text
    let req = w.authed("GET", "/api/v1/notices/%FF%FE", &w.officer);
    expect_error(req, StatusCode::BAD_REQUEST, "invalid_path", "non-UTF-8 id").await;
    w.assert_unchanged(&before, "invalid ids").await;
    w.stop().await;
}

// ---- 404 unknown route, 405 wrong method --------------------------------------

async fn routes_and_methods(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let n = &w.notice;
    for (method, path) in [
        ("GET", "/".to_owned()),
        ("GET", "/api/v1/nope".to_owned()),
        ("GET", "/api/v2/notices".to_owned()),
        ("GET", "/api/v1/notices/".to_owned()),
        ("POST", "/api/v1/notice".to_owned()),
        ("GET", format!("/api/v1/notices/{n}/items")),
        ("DELETE", format!("/api/v1/notices/{n}/extra/segments")),
    ] {
        for token in [None, Some(w.officer.as_str())] {
            let mut req = json_req(w.req(method, &path), &json!({}));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            expect_error(
                req,
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("{method} {path}"),
            )
            .await;
        }
    }
    for (method, path) in [
        ("DELETE", "/api/v1/notices".to_owned()),
        ("PUT", "/api/v1/parties".to_owned()),
        ("PATCH", format!("/api/v1/notices/{n}")),
        ("DELETE", format!("/api/v1/notices/{n}")),
        ("GET", format!("/api/v1/notices/{n}/submit")),
        (
            "GET",
            format!("/api/v1/notices/{n}/items/{}/decision", w.items[0]),
        ),
        ("POST", "/api/v1/whoami".to_owned()),
        ("POST", "/api/v1/inbox".to_owned()),
        ("DELETE", "/healthz".to_owned()),
        ("POST", "/api/v1/audit/verify".to_owned()),
    ] {
        for token in [None, Some(w.officer.as_str())] {
            let mut req = json_req(w.req(method, &path), &json!({}));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            expect_error(
                req,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("{method} {path}"),
            )
            .await;
        }
    }
    w.assert_unchanged(&before, "unknown routes and methods")
        .await;
    w.stop().await;
}

// ---- bad query parameters -----------------------------------------------------

async fn bad_query(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let cases: Vec<(&str, &str, StatusCode, &str)> = vec![
        (
            "/api/v1/notices?limit=0",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?limit=501",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?limit=-1",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?limit=ten",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?limit=99999999999",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?limit=",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?overdue=maybe",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?overdue=1",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?sort=due",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?limit=1&limit=2",
            &w.officer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/notices?state=bogus",
            &w.officer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "/api/v1/notices?state=",
            &w.officer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "/api/v1/notices?category=terrorism%00",
            &w.officer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "/api/v1/notices?category=%01",
            &w.agent,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "/api/v1/parties?kind=bogus",
            &w.app.admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "/api/v1/parties?kind=isp&x=1",
            &w.app.admin,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/inbox?limit=0",
            &w.agent,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/inbox?limit=1000",
            &w.agent,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/inbox?state=submitted",
            &w.agent,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ];
    for (path, token, status, code) in cases {
        let (_, body) = expect_error(w.authed("GET", path, token), status, code, path).await;
        if code == "invalid" {
            let field = body["error"]["field"].as_str().expect("field");
            assert!(path.contains(&format!("{field}=")), "{path}: {body}");
        }
    }
    w.assert_unchanged(&before, "bad queries").await;
    // the same parameters, well-formed, are fine
    for path in [
        "/api/v1/notices?limit=1&state=submitted&overdue=false&category=terrorism",
        "/api/v1/notices?limit=500&overdue=true",
        "/api/v1/notices?category=%C3%BCber",
    ] {
        let (s, v) = w.app.get(path, &w.officer).await;
        assert!(s == StatusCode::OK && v.is_array(), "{path}: {s} {v}");
    }
    w.stop().await;
}

// ---- 422: a decision that needs a reason --------------------------------------

async fn decision_needs_reason(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let cases = [
        (json!({"decision": "rejected"}), "reason"),
        (json!({"decision": "rejected", "reason": "   "}), "reason"),
        (json!({"decision": "rejected", "reason": null}), "reason"),
        (json!({"decision": "disputed"}), "reason"),
        (json!({"decision": "geo_blocked"}), "reason"),
        (json!({"decision": "restricted", "reason": ""}), "reason"),
        (json!({"decision": "out_of_scope"}), "reason"),
        (json!({"decision": "not_accessible"}), "reason"),
        (
            json!({"decision": "rejected", "reason": "lawful\u{0}satire"}),
            "reason",
        ),
        (
            json!({"decision": "rejected", "reason": "x".repeat(4001)}),
            "reason",
        ),
        (json!({"decision": "pending"}), "decision"),
        (json!({"decision": "deleted"}), "decision"),
        (json!({"decision": ""}), "decision"),
    ];
    for (body, field) in &cases {
        let req = json_req(w.authed("POST", &w.decision_path(0), &w.agent), body);
        expect_invalid(req, field, &format!("{body}")).await;
    }
    // a refused decision does not deliver or acknowledge the notice either
    w.assert_unchanged(&before, "decisions without reasons")
        .await;
    let (s, n) = w
        .app
        .get(&format!("/api/v1/notices/{}", w.notice), &w.officer)
        .await;
    assert_eq!(
        (s, n["state"].as_str()),
        (StatusCode::OK, Some("submitted")),
        "{n}"
    );
    w.stop().await;
}

// ---- 409 illegal_transition ---------------------------------------------------

async fn illegal_transition(b: Backend) {
    let w = world(b).await;
    let n = &w.notice;
    let (s, v) = w
        .app
        .post(
            &w.decision_path(0),
            &w.agent,
            json!({"decision": "removed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let before = w.snapshot().await;
    let again = [
        json!({"decision": "removed"}),
        json!({"decision": "rejected", "reason": "changed our mind"}),
        json!({"decision": "disputed", "reason": "on reflection"}),
    ];
    for body in &again {
        let req = json_req(w.authed("POST", &w.decision_path(0), &w.agent), body);
        expect_error(
            req,
            StatusCode::CONFLICT,
            "illegal_transition",
            "decide a final item",
        )
        .await;
    }
    // deciding acknowledged the notice; acknowledging again is refused
    let req = w.authed(
        "POST",
        &format!("/api/v1/notices/{n}/acknowledge"),
        &w.agent,
    );
    expect_error(
        req,
        StatusCode::CONFLICT,
        "illegal_transition",
        "acknowledge twice",
    )
    .await;
    // a submitted notice is not a draft
    let req = w.authed("POST", &format!("/api/v1/notices/{n}/submit"), &w.officer);
    expect_error(
        req,
        StatusCode::CONFLICT,
        "illegal_transition",
        "submit a submitted notice",
    )
    .await;
    w.assert_unchanged(&before, "illegal transitions").await;

    // after withdrawal nothing more happens to the notice
    let (s, v) = w
        .app
        .post(
            &format!("/api/v1/notices/{n}/withdraw"),
            &w.officer,
            json!({"reason": "sent in error"}),
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("withdrawn")),
        "{v}"
    );
    let before = w.snapshot().await;
    let req = json_req(
        w.authed("POST", &w.decision_path(1), &w.agent),
        &json!({"decision": "removed"}),
    );
    expect_error(
        req,
        StatusCode::CONFLICT,
        "illegal_transition",
        "decide in a withdrawn notice",
    )
    .await;
    let req = json_req(
        w.authed("POST", &format!("/api/v1/notices/{n}/withdraw"), &w.officer),
        &json!({"reason": "again"}),
    );
    expect_error(
        req,
        StatusCode::CONFLICT,
        "illegal_transition",
        "withdraw twice",
    )
    .await;
    let req = w.authed(
        "POST",
        &format!("/api/v1/notices/{n}/acknowledge"),
        &w.agent,
    );
    expect_error(
        req,
        StatusCode::CONFLICT,
        "illegal_transition",
        "acknowledge a withdrawn notice",
    )
    .await;
    w.assert_unchanged(&before, "transitions of a withdrawn notice")
        .await;
    w.stop().await;
}

// ---- 409 conflict -------------------------------------------------------------

async fn conflict(b: Backend) {
    let w = world(b).await;
    let before = w.snapshot().await;
    let req = json_req(
        w.authed("POST", "/api/v1/parties", &w.app.admin),
        &json!({"kind": "platform", "name": "Messenger"}),
    );
    expect_error(
        req,
        StatusCode::CONFLICT,
        "conflict",
        "a second party of the same name",
    )
    .await;
    w.assert_unchanged(&before, "duplicate party").await;
    w.stop().await;
}

// ---- Idempotency-Key ------------------------------------------------------------

async fn idempotency(b: Backend) {
    let w = world(b).await;
    let body = notice_body(&w.other_platform, 2);
    let post = |key: &str, body: Vec<u8>| {
        w.authed("POST", "/api/v1/notices", &w.officer)
            .header("Idempotency-Key", key)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    };
    let bytes = serde_json::to_vec(&body).expect("json");
    let (s, _, first) = send(post("retry-1", bytes.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().expect("id").to_owned();
    let before = w.snapshot().await;

    // the same request again: 200, the same notice, nothing new
    let (s, _, again) = send(post("retry-1", bytes.clone())).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    // the same JSON spelled differently (key order, spacing) is the same request
    let respelled = serde_json::to_string_pretty(&body).expect("json");
    let mut reordered = serde_json::Map::new();
    for (k, v) in body.as_object().expect("object").iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    for b in [
        respelled.into_bytes(),
        serde_json::to_vec(&reordered).expect("json"),
    ] {
        let (s, _, v) = send(post("retry-1", b)).await;
        assert_eq!(
            (s, v["id"].as_str()),
            (StatusCode::OK, Some(id.as_str())),
            "{v}"
        );
    }
    // the key is surrounded by spaces in some clients; they do not count
    let (s, _, v) = send(post("  retry-1  ", bytes.clone())).await;
    assert_eq!(
        (s, v["id"].as_str()),
        (StatusCode::OK, Some(id.as_str())),
        "{v}"
    );
    w.assert_unchanged(&before, "idempotent repeats").await;

    // the same key with a different body: 409, nothing written
    let mut changed = body.clone();
    changed["explanation"] = json!("A different explanation");
    let req = post("retry-1", serde_json::to_vec(&changed).expect("json"));
    expect_error(
        req,
        StatusCode::CONFLICT,
        "conflict",
        "key reused for another body",
    )
    .await;
    let mut draft = body.clone();
    draft["draft"] = json!(true);
    let req = post("retry-1", serde_json::to_vec(&draft).expect("json"));
    expect_error(
        req,
        StatusCode::CONFLICT,
        "conflict",
        "key reused for a draft",
    )
    .await;

    // keys that are not keys: 400, nothing written
    let long = "k".repeat(201);
    for (what, key) in [
        (
            "over-long key",
            HeaderValue::from_str(&long).expect("header"),
        ),
        ("empty key", HeaderValue::from_static("")),
        ("blank key", HeaderValue::from_static("   ")),
        ("key with a tab", HeaderValue::from_static("a\tb")),
        (
            "non-ASCII key",
            HeaderValue::from_bytes(b"cl\xc3\xa9").expect("header"),
        ),
    ] {
        let req = w
            .authed("POST", "/api/v1/notices", &w.officer)
            .header("Idempotency-Key", key)
            .header(CONTENT_TYPE, "application/json")
            .body(bytes.clone());
        expect_error(req, StatusCode::BAD_REQUEST, "invalid_header", what).await;
    }
    // an invalid body with a used key is refused for the body, not replayed
    let mut invalid = body.clone();
    invalid["category"] = json!("jaywalking");
    let req = post("retry-1", serde_json::to_vec(&invalid).expect("json"));
    expect_invalid(req, "category", "invalid body with a used key").await;
    w.assert_unchanged(&before, "refused idempotency keys")
        .await;

    // a key of exactly 200 characters is fine, and a new key is a new notice
    let (s, _, v) = send(post(&"k".repeat(200), bytes.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_ne!(v["id"].as_str(), Some(id.as_str()));

    // concurrent retries with one key make exactly one notice
    let before = w.snapshot().await;
    let tasks: Vec<_> = (0..6)
        .map(|_| tokio::spawn(send(post("burst", bytes.clone()))))
        .collect();
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let (s, _, v) = t.await.expect("task");
        statuses.push(s);
        ids.push(v["id"].as_str().map(str::to_owned));
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK; 5]
            .into_iter()
            .chain([StatusCode::CREATED])
            .collect::<Vec<_>>(),
        "{ids:?}"
    );
    assert!(ids.iter().all(|i| i.is_some() && *i == ids[0]), "{ids:?}");
    let after = w.snapshot().await;
    assert_eq!(
        after.notices.as_array().map(Vec::len),
        before.notices.as_array().map(|a| a.len() + 1)
    );
    w.stop().await;
}

on_every_backend! {
    malformed_json_is_400 => malformed_json,
    unknown_missing_and_mistyped_fields_are_422 => invalid_body,
    bodies_over_the_limit_are_413 => payload_too_large,
    bodies_that_are_not_json_are_415 => unsupported_media_type,
    too_many_items_is_422 => too_many_items,
    bad_values_are_422_naming_the_field => invalid_values,
    bad_platform_or_category_is_422 => bad_platform_and_category,
    missing_or_wrong_tokens_are_401 => unauthorized,
    roles_that_may_not_are_403 => forbidden,
    token_roles_must_fit_the_party => token_role_mismatch,
    unknown_or_invisible_things_are_404 => not_found,
    malformed_ids_are_400 => invalid_id,
    unknown_routes_404_and_wrong_methods_405 => routes_and_methods,
    bad_query_parameters_are_4xx => bad_query,
    decisions_that_need_a_reason_are_422 => decision_needs_reason,
    illegal_transitions_are_409 => illegal_transition,
    clashes_with_stored_state_are_409 => conflict,
    idempotency_keys => idempotency,
}
