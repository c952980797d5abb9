//! Image upload to `POST /api/v1/match` as `multipart/form-data`, over real
//! HTTP with hand-built multipart bodies, on every backend: a PNG and a
//! JPEG hashed as Meta's reference hashes them and matched against a bank
//! (with a URL query in the same request, answers in query order); then
//! the refusals, each a precise 4xx naming the part or field: a corrupt
//! image, an image over 4 MiB, one declaring over 25 megapixels, an empty
//! part, too many parts, a part no query names, a named part missing, a
//! part sent twice, the `request` part not first, a part of the wrong
//! content type, a body of the wrong content type, a broken multipart
//! body, and a body over the route's 16 MiB streamed without a length.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PNG: &[u8] = include_bytes!("../../tapis-match/testdata/bridge-256-rgb.png");
const JPEG: &[u8] = include_bytes!("../../tapis-match/testdata/bridge-square-256x256.jpg");
/// Both images' PDQ hash as Meta's reference implementation gives it
/// (`tapis-match/testdata/expected.txt`, `rgb-expected.txt`).
const BRIDGE_PDQ: &str = "d8f8f0cec4f4a84f0637022a078f67f0b36e2ee5b6621e1d33e6239c4e9c9b22";
const BOUNDARY: &str = "tapis-test-boundary-7MA4YWxkTrZu0gW";

/// One part: its name, file name, content type and bytes.
struct Part<'a> {
    name: &'a str,
    file: Option<&'a str>,
    ctype: Option<&'a str>,
    bytes: &'a [u8],
}

fn request_part(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

fn json_part(bytes: &[u8]) -> Part<'_> {
    Part {
        name: "request",
        file: None,
        ctype: Some("application/json"),
        bytes,
    }
}

fn image<'a>(name: &'a str, ctype: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part {
        name,
        file: Some("upload.bin"),
        ctype: Some(ctype),
        bytes,
    }
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disp = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = p.file {
            disp.push_str(&format!("; filename=\"{f}\""));
        }
        out.extend_from_slice(disp.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(c) = p.ctype {
            out.extend_from_slice(format!("Content-Type: {c}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// POST a raw body to /api/v1/match; the status and the JSON answer.
async fn send(app: &App, token: &str, ctype: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(format!("{}/api/v1/match", app.base))
        .bearer_auth(token)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status();
    let text = resp.text().await.expect("text");
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

async fn send_parts(app: &App, token: &str, parts: &[Part<'_>]) -> (StatusCode, Value) {
    send(
        app,
        token,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart(parts),
    )
    .await
}

/// The answer must be `status` with `code`, its `field` `field` and its
/// message containing `says`.
fn refused(
    got: (StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    says: &str,
) {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    if let Some(f) = field {
        assert_eq!(v["error"]["field"], f, "{v}");
    }
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(says), "`{says}` not in {v}");
}

/// CRC-32 (IEEE) of PNG chunks, to forge a PNG header.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG that declares `w` × `h` pixels (and carries none).
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    out
}

/// A multipart body streamed with chunked encoding (no length) past the
/// route's limit: the answer as text (read while the body is still going).
async fn streamed_over_limit(app: &App, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_owned();
    let conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = conn.into_split();
    let head = format!(
        "POST /api/v1/match HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let queries: Vec<Value> = (0..5)
        .map(|i| json!({"type": "image", "file": format!("img{i}")}))
        .collect();
    let req = request_part(&json!({"queries": queries}));
    let writer = tokio::spawn(async move {
        let send = |bytes: Vec<u8>| {
            let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
            chunk.extend_from_slice(&bytes);
            chunk.extend_from_slice(b"\r\n");
            chunk
        };
        let mut all = head.into_bytes();
        let mut first =
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n")
                .into_bytes();
        first.extend_from_slice(&req);
        all.extend(send(first));
        if wr.write_all(&all).await.is_err() {
            return;
        }
        // five images of 3.9 MiB each: every one within its own limit, the
        // body past 16 MiB
        for i in 0..5 {
            let mut part = format!(
                "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"img{i}\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .into_bytes();
            part.extend(std::iter::repeat_n(0u8, 3_900_000));
            for piece in part.chunks(256 * 1024) {
                if wr.write_all(&send(piece.to_vec())).await.is_err() {
                    return;
                }
            }
        }
        let _ = wr
            .write_all(&send(format!("\r\n--{BOUNDARY}--\r\n").into_bytes()))
            .await;
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains("}}") {
                    break;
                }
            }
            Ok(Err(_)) => break,
        }
    }
    writer.abort();
    String::from_utf8_lossy(&buf).into_owned()
}

async fn uploads(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app.party("platform", "VideoShare").await;
    let plat_t = app.token(&platform, "platform_agent").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let (s, notice) = app
        .post("/api/v1/notices", &officer, notice_body(&platform, 1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{notice}");
    let (s, bank) = app
        .post(
            "/api/v1/banks",
            &officer,
            json!({"name": "uploads", "shared_with": [platform]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bank}");
    let bank_id = bank["id"].as_str().expect("id").to_owned();
    let src = json!({"notice_id": notice["id"]});
    let (s, added) = app
        .post(
            &format!("/api/v1/banks/{bank_id}/signals"),
            &officer,
            json!({"signals": [
                {"type": "pdq", "value": BRIDGE_PDQ, "quality": 100, "source": src},
                {"type": "url", "value": "https://bad.example/v/1", "source": src},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    let pdq_signal = added["signals"][0]["id"].clone();

    // a PNG and a JPEG, with a URL between them: each hashed as the
    // reference does, each matching the bank's PDQ signal, in query order
    let req = request_part(&json!({"queries": [
        {"type": "image", "file": "photo"},
        {"type": "url", "value": "https://BAD.example/v/1"},
        {"type": "image", "file": "scan"},
    ]}));
    let (s, r) = send_parts(
        &app,
        &plat_t,
        &[
            json_part(&req),
            image("scan", "image/jpeg", JPEG),
            image("photo", "image/png", PNG),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    for i in [0, 2] {
        let q = &r["results"][i];
        assert_eq!(
            (q["type"].as_str(), q["value"].as_str()),
            (Some("pdq"), Some(BRIDGE_PDQ)),
            "{r}"
        );
        assert_eq!(q["quality"], 100, "{r}");
        assert_eq!(q["matches"][0]["signal_id"], pdq_signal, "{r}");
        assert_eq!(q["matches"][0]["distance"], 0, "{r}");
    }
    assert_eq!(
        r["results"][1]["matches"].as_array().map(Vec::len),
        Some(1),
        "{r}"
    );
    // no content type on the image and on the request part: accepted
    let req = request_part(&json!({"queries": [{"type": "image", "file": "a"}]}));
    let (s, r) = send_parts(
        &app,
        &plat_t,
        &[
            Part {
                name: "request",
                file: None,
                ctype: None,
                bytes: &req,
            },
            Part {
                name: "a",
                file: None,
                ctype: None,
                bytes: JPEG,
            },
        ],
    )
    .await;
    assert_eq!(
        (s, r["results"][0]["value"].as_str()),
        (StatusCode::OK, Some(BRIDGE_PDQ)),
        "{r}"
    );

    let one = request_part(
        &json!({"queries": [{"type": "url", "value": "https://a.example/"}, {"type": "image", "file": "pic"}]}),
    );
    // a corrupt image: the PNG cut short, and bytes that are no image
    for bytes in [&PNG[..PNG.len() / 2], b"hello, not an image".as_slice()] {
        let got = send_parts(
            &app,
            &plat_t,
            &[json_part(&one), image("pic", "image/png", bytes)],
        )
        .await;
        refused(
            got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("queries[1].file"),
            "part `pic`",
        );
    }
    // an image over 4 MiB: 413 naming the part
    let big = vec![0u8; 4 * 1024 * 1024 + 1];
    let got = send_parts(
        &app,
        &plat_t,
        &[json_part(&one), image("pic", "image/png", &big)],
    )
    .await;
    refused(
        got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        Some("queries[1].file"),
        "part `pic` is over 4194304 bytes",
    );
    // one declaring more than 25 megapixels (6,000 × 5,000), refused from its header
    let huge = png_declaring(6000, 5000);
    let got = send_parts(
        &app,
        &plat_t,
        &[json_part(&one), image("pic", "image/png", &huge)],
    )
    .await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries[1].file"),
        "part `pic`",
    );
    // an empty part
    let got = send_parts(
        &app,
        &plat_t,
        &[json_part(&one), image("pic", "image/png", b"")],
    )
    .await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries[1].file"),
        "part `pic` is empty",
    );
    // a part of another content type
    let got = send_parts(
        &app,
        &plat_t,
        &[json_part(&one), image("pic", "text/plain", PNG)],
    )
    .await;
    refused(
        got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        Some("queries[1].file"),
        "part `pic` is text/plain",
    );
    let got = send_parts(
        &app,
        &plat_t,
        &[
            Part {
                name: "request",
                file: None,
                ctype: Some("application/xml"),
                bytes: &one,
            },
            image("pic", "image/png", PNG),
        ],
    )
    .await;
    refused(
        got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        Some("request"),
        "application/xml",
    );
    // a part no query names, a named part that never comes, one sent twice
    let got = send_parts(
        &app,
        &plat_t,
        &[
            json_part(&one),
            image("pic", "image/png", PNG),
            image("extra", "image/png", PNG),
        ],
    )
    .await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("parts[2]"),
        "part `extra` is not the `file` of any image query",
    );
    let got = send_parts(
        &app,
        &plat_t,
        &[
            json_part(&one),
            image("pic", "image/png", PNG),
            image("pic", "image/png", PNG),
        ],
    )
    .await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("parts[2]"),
        "part `pic` came twice",
    );
    let got = send_parts(&app, &plat_t, &[json_part(&one)]).await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries[1].file"),
        "no part named `pic`",
    );
    // two queries naming one part; an image query with neither file nor data
    let two = request_part(
        &json!({"queries": [{"type": "image", "file": "pic"}, {"type": "image", "file": "pic"}]}),
    );
    let got = send_parts(
        &app,
        &plat_t,
        &[json_part(&two), image("pic", "image/png", PNG)],
    )
    .await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries[1].file"),
        "already the image of queries[0]",
    );
    let none = request_part(&json!({"queries": [{"type": "image"}]}));
    let got = send_parts(&app, &plat_t, &[json_part(&none)]).await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries[0].file"),
        "needs `file`",
    );
    // `file` in a JSON body means nothing
    let (s, v) = app
        .post(
            "/api/v1/match",
            &plat_t,
            json!({"queries": [{"type": "image", "file": "pic"}]}),
        )
        .await;
    refused(
        (s, v),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries[0].file"),
        "multipart/form-data",
    );
    // the request part must come first; a malformed request part
    let got = send_parts(
        &app,
        &plat_t,
        &[image("pic", "image/png", PNG), json_part(&one)],
    )
    .await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("request"),
        "the first part is `pic`",
    );
    let got = send_parts(&app, &plat_t, &[json_part(b"{not json")]).await;
    refused(
        got,
        StatusCode::BAD_REQUEST,
        "malformed_json",
        None,
        "part `request`",
    );
    let got = send_parts(&app, &plat_t, &[]).await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("request"),
        "no parts",
    );
    // too many parts: 16 images named, a 17th image part sent
    let names: Vec<String> = (0..17).map(|i| format!("p{i}")).collect();
    let sixteen = request_part(
        &json!({"queries": names[..16].iter().map(|n| json!({"type": "image", "file": n})).collect::<Vec<_>>()}),
    );
    let mut parts = vec![json_part(&sixteen)];
    parts.extend(names.iter().map(|n| image(n, "image/png", b"x")));
    let got = send_parts(&app, &plat_t, &parts).await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("parts[17]"),
        "more than 17 parts",
    );
    // 17 images named in the request
    let seventeen = request_part(
        &json!({"queries": names.iter().map(|n| json!({"type": "image", "file": n})).collect::<Vec<_>>()}),
    );
    let got = send_parts(&app, &plat_t, &[json_part(&seventeen)]).await;
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("queries"),
        "at most 16 images",
    );
    // the body's content type: not JSON or multipart; multipart without a
    // boundary; a body that is not multipart at all
    let got = send(&app, &plat_t, "text/plain", multipart(&[json_part(&one)])).await;
    refused(
        got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
        "multipart/form-data",
    );
    let got = send(
        &app,
        &plat_t,
        "multipart/form-data",
        multipart(&[json_part(&one)]),
    )
    .await;
    refused(
        got,
        StatusCode::BAD_REQUEST,
        "malformed_multipart",
        None,
        "boundary",
    );
    let got = send(
        &app,
        &plat_t,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        b"garbage, no parts here".to_vec(),
    )
    .await;
    refused(
        got,
        StatusCode::BAD_REQUEST,
        "malformed_multipart",
        None,
        "multipart",
    );
    let mut cut = multipart(&[json_part(&one), image("pic", "image/png", PNG)]);
    cut.truncate(cut.len() - 40);
    let got = send(
        &app,
        &plat_t,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        cut,
    )
    .await;
    refused(
        got,
        StatusCode::BAD_REQUEST,
        "malformed_multipart",
        None,
        "multipart",
    );
    // a body over 16 MiB with no declared length is cut off as it streams
    let answer = streamed_over_limit(&app, &plat_t).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("payload_too_large") && answer.contains("16777216"),
        "{answer}"
    );
    // and the server still answers
    let req = request_part(&json!({"queries": [{"type": "image", "file": "a"}]}));
    let (s, _) = send_parts(
        &app,
        &plat_t,
        &[json_part(&req), image("a", "image/png", PNG)],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_images_are_hashed_and_bad_parts_refused_on_every_backend() {
    for b in backends() {
        uploads(b).await;
    }
}
