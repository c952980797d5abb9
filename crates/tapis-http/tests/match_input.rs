//! The matching API's bad input over real HTTP, on every backend: corrupt
//! images, oversized uploads and requests (the route's own body limit),
//! malformed hashes, too many queries, unknown types, a role that may not
//! match, an unknown bank, a bad feed query, a bad signal. Each is a
//! precise 4xx whose `field` names the problem; a request over the global
//! 1 MiB limit but within the route's is served.

mod common;

use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const IMAGE: &[u8] = include_bytes!("../../tapis-match/testdata/bridge-256-rgb.png");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn match_ok(app: &App, token: &str, body: Value) -> Value {
    let (s, v) = app.post("/api/v1/match", token, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// POST /api/v1/match's head only, declaring `length` bytes; the answer as text.
async fn raw_head(app: &App, token: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/match HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            conn.read(&mut buf[got..]),
        )
        .await
        {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                got += n;
                if String::from_utf8_lossy(&buf[..got]).contains("}}") {
                    break;
                }
            }
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&buf[..got]).into_owned()
}

async fn bad_input(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "VideoShare").await;
    let plat_t = app.token(&platform, "platform_agent").await;
    let bad = |queries: Value| json!({"queries": queries});
    let field = |e: &Value| e["error"]["field"].as_str().unwrap_or_default().to_owned();

    // a corrupt image (a PNG cut short), and bytes that are no image
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!([{"type": "url", "value": "https://a.example/"}, {"type": "image", "data": b64(&IMAGE[..IMAGE.len() / 2])}]))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "queries[1].data", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("decoded"),
        "{e}"
    );
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(
                json!([{"type": "image", "data": b64(b"hello, not an image")}]),
            )),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "queries[0].data", "{e}");
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!([{"type": "image", "data": "***"}]))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("base64"),
        "{e}"
    );
    // an oversized image: 413 naming the query
    let big = b64(&vec![0u8; 5 * 1024 * 1024]);
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!([{"type": "image", "data": big}]))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        )
        .await;
    assert_eq!(field(&e), "queries[0].data", "{e}");
    // a request over the route's own limit is refused from its length,
    // before the body is read (a client sending it would see the
    // connection closed under it, so the head alone is sent)
    let answer = raw_head(&app, &plat_t, 20_000_000).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("payload_too_large") && answer.contains("16777216"),
        "{answer}"
    );
    // over the global 1 MiB but within the route's: accepted
    let long: Vec<Value> = (0..1000)
        .map(|i| json!({"type": "url", "value": format!("https://a.example/{i}/{}", "x".repeat(1500))}))
        .collect();
    let r = match_ok(&app, &plat_t, bad(json!(long))).await;
    assert_eq!(r["results"].as_array().map(Vec::len), Some(1000));
    // malformed hashes
    for (q, want) in [
        (json!({"type": "pdq", "value": "abc"}), "64 hex digits"),
        (json!({"type": "pdq", "value": "zz".repeat(32)}), "non-hex"),
        (json!({"type": "sha256", "value": "12"}), "64 hex digits"),
        (json!({"type": "md5", "value": "g".repeat(32)}), "non-hex"),
    ] {
        let e = app
            .expect_error(
                "POST",
                "/api/v1/match",
                &plat_t,
                Some(bad(
                    json!([{"type": "url", "value": "https://a.example/"}, q]),
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
            )
            .await;
        assert_eq!(field(&e), "queries[1].value", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(want),
            "{e}"
        );
    }
    // too many queries, none, an unknown type, a missing value
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"type": "domain", "value": "a.example"}))
        .collect();
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!(many))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "queries", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1001"),
        "{e}"
    );
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!([]))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "queries", "{e}");
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!([{"type": "video", "value": "x"}]))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "queries[0].type", "{e}");
    let e = app
        .expect_error(
            "POST",
            "/api/v1/match",
            &plat_t,
            Some(bad(json!([{"type": "url"}]))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "queries[0].value", "{e}");
    app.expect_error(
        "POST",
        "/api/v1/match",
        &plat_t,
        Some(json!({"queries": [], "extra": 1})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    let resp = app
        .client
        .post(format!("{}/api/v1/match", app.base))
        .bearer_auth(&plat_t)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = app
        .client
        .post(format!("{}/api/v1/match", app.base))
        .bearer_auth(&plat_t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // a flagger may not match; an unknown bank is a 404
    let flagger = app.party("flagger", "Agency").await;
    let flag_t = app.token(&flagger, "flagger").await;
    app.expect_error(
        "POST",
        "/api/v1/match",
        &flag_t,
        Some(bad(json!([{"type": "domain", "value": "a.example"}]))),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    app.expect_error(
        "POST",
        "/api/v1/match",
        &plat_t,
        Some(json!({"queries": [{"type": "domain", "value": "a.example"}], "banks": ["0190a0a0-0000-7000-8000-000000000000"]})),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // the feed's query is checked
    let officer = app.token(&app.authority_id, "officer").await;
    let (_, bank) = app
        .post("/api/v1/banks", &officer, json!({"name": "b"}))
        .await;
    let id = bank["id"].as_str().expect("id");
    let e = app
        .expect_error(
            "GET",
            &format!("/api/v1/banks/{id}/signals?limit=0"),
            &officer,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "limit");
    app.expect_error(
        "GET",
        &format!("/api/v1/banks/{id}/signals?since=x"),
        &officer,
        None,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    // a signal's value is checked where it is
    let e = app
        .expect_error(
            "POST",
            &format!("/api/v1/banks/{id}/signals"),
            &officer,
            Some(json!({"signals": [{"type": "url", "value": "ftp://a.example/", "source": {"notice_id": id}}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "signals[0].value", "{e}");
    let e = app
        .expect_error(
            "POST",
            &format!("/api/v1/banks/{id}/signals"),
            &officer,
            Some(json!({"signals": [{"type": "domain", "value": "a.example", "source": {"notice_id": id}}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert_eq!(field(&e), "signals[0].source.notice_id", "{e}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_precise_4xx_on_every_backend() {
    for b in backends() {
        bad_input(b).await;
    }
}
