//! The composer takes each item's evidence (its SHA-256, what it shows,
//! when it was captured, in the authority's zone) into the signed notice,
//! on both backends; a malformed hash is refused with the field named and
//! nothing is stored.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{person, send};
use tapis_core::role::Role;
use tapis_store::NoticeFilter;
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, platform};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn form(fields: &[(&str, &str)]) -> Option<String> {
    Some(
        fields
            .iter()
            .map(|(k, v)| format!("{k}={}", tapis_web::session::url_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_given_in_the_composer_reaches_the_notice() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let chat = platform(&store, &admin, "Chat", "chat.example").await;
        let siti = person(
            &store,
            boot.authority.id,
            "siti",
            "Siti Rahma",
            &[Role::Officer],
        )
        .await;
        let (s, page) = send(&store, &siti, "GET", "/notices/new", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("evidence_sha256_0") && page.contains("Captured at (WIB)"));

        let platform_id = chat.id.to_string();
        let fields = |key: &'static str, sha: &'static str| {
            let mut f = vec![
                ("csrf", siti.csrf.clone()),
                ("idempotency_key", key.to_owned()),
                ("platform_id", platform_id.clone()),
                ("category", "fraud".to_owned()),
                ("urgency", "normal".to_owned()),
                ("legal_reference", "Law 11/2008 art. 28".to_owned()),
                ("legal_text", "Fraud is unlawful.".to_owned()),
                ("explanation", "A fake shop.".to_owned()),
                ("item_kind_0", "url".to_owned()),
                ("item_value_0", "https://shop.chat.example/fake".to_owned()),
            ];
            f.push(("evidence_sha256_0", sha.to_owned()));
            f.push((
                "evidence_description_0",
                "screenshot of the shop".to_owned(),
            ));
            f.push(("evidence_captured_0", "2025-12-31T21:30".to_owned()));
            f
        };
        let body = |f: Vec<(&str, String)>| {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(&pairs)
        };

        // a malformed hash: the field is named, nothing is stored
        let (s, page) = send(
            &store,
            &siti,
            "POST",
            "/notices/new",
            body(fields("k1", "not-a-hash")),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert!(
            page.contains("items[0].evidence[0].sha256"),
            "{backend:?}: {page}"
        );
        let all = NoticeFilter {
            limit: 10,
            ..NoticeFilter::default()
        };
        assert!(store.list_notices(&all).await.expect("list").is_empty());

        // a good one lands in the notice, its capture time read in WIB
        let (s, _) = send(
            &store,
            &siti,
            "POST",
            "/notices/new",
            body(fields("k2", SHA)),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{backend:?}");
        let listed = store.list_notices(&all).await.expect("list");
        assert_eq!(listed.len(), 1);
        let n = store.get_notice(listed[0].id).await.expect("notice");
        let ev = &n.items[0].evidence;
        assert_eq!(ev.len(), 1, "{backend:?}");
        assert_eq!(ev[0].sha256, SHA);
        assert_eq!(ev[0].description, "screenshot of the shop");
        assert_eq!(ev[0].captured_at.to_string(), "2025-12-31T14:30:00.000Z");
        db.cleanup().await;
    }
}

/// One multipart part: (name, file name if a file, bytes).
type Part<'a> = (&'a str, Option<&'a str>, Vec<u8>);

/// POST `parts` as `multipart/form-data` to the composer, with the
/// evidence limit at `limit` bytes.
async fn post_multipart(
    store: &tapis_store::Store,
    who: &common::Signed,
    limit: u64,
    parts: &[Part<'_>],
) -> (StatusCode, String) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let boundary = "----tapis-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let config = tapis_web::WebConfig {
        evidence_max_bytes: limit,
        ..tapis_web::WebConfig::default()
    };
    let app = tapis_web::router(tapis_web::WebState::new(store.clone(), config));
    let req = Request::builder()
        .method("POST")
        .uri("/notices/new")
        .header(header::COOKIE, format!("tapis_session={}", who.secret))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    let resp = app.oneshot(req).await.expect("response");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_files_are_hashed_on_upload_and_never_kept() {
    use sha2::{Digest, Sha256};
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.open(Arc::new(clock_at(START))).await;
        let (boot, admin) = bootstrap(&store).await;
        let chat = platform(&store, &admin, "Chat", "chat.example").await;
        let siti = person(
            &store,
            boot.authority.id,
            "siti",
            "Siti Rahma",
            &[Role::Officer],
        )
        .await;
        let (s, page) = send(&store, &siti, "GET", "/notices/new", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
        assert!(
            page.contains("type=\"file\" id=\"evidence_file_0\" name=\"evidence_file_0\""),
            "{page}"
        );

        let platform_id = chat.id.to_string();
        let limit = 64 * 1024;
        let parts = |csrf: &str, key: &str, sha: &str, file: Option<(&'static str, Vec<u8>)>| {
            let mut p: Vec<(String, Option<&'static str>, Vec<u8>)> = vec![
                ("csrf".into(), None, csrf.as_bytes().to_vec()),
                ("idempotency_key".into(), None, key.as_bytes().to_vec()),
                ("platform_id".into(), None, platform_id.as_bytes().to_vec()),
                ("category".into(), None, b"fraud".to_vec()),
                ("urgency".into(), None, b"normal".to_vec()),
                (
                    "legal_reference".into(),
                    None,
                    b"Law 11/2008 art. 28".to_vec(),
                ),
                ("legal_text".into(), None, b"Fraud is unlawful.".to_vec()),
                ("explanation".into(), None, b"A fake shop.".to_vec()),
                ("item_kind_0".into(), None, b"url".to_vec()),
                (
                    "item_value_0".into(),
                    None,
                    b"https://shop.chat.example/fake".to_vec(),
                ),
            ];
            if let Some((name, bytes)) = file {
                p.push(("evidence_file_0".into(), Some(name), bytes));
            }
            p.push(("evidence_sha256_0".into(), None, sha.as_bytes().to_vec()));
            p.push((
                "evidence_description_0".into(),
                None,
                b"screenshot of the shop".to_vec(),
            ));
            p.push((
                "evidence_captured_0".into(),
                None,
                b"2025-12-31T21:30".to_vec(),
            ));
            p
        };
        let post = |p: Vec<(String, Option<&'static str>, Vec<u8>)>, limit: u64| {
            let store = store.clone();
            let siti = &siti;
            async move {
                let refs: Vec<Part<'_>> = p
                    .iter()
                    .map(|(n, f, b)| (n.as_str(), *f, b.clone()))
                    .collect();
                post_multipart(&store, siti, limit, &refs).await
            }
        };
        let all = NoticeFilter {
            limit: 10,
            ..NoticeFilter::default()
        };
        let none_stored = |what: &'static str| {
            let store = store.clone();
            let all = all.clone();
            async move {
                assert!(
                    store.list_notices(&all).await.expect("list").is_empty(),
                    "{backend:?}: {what}"
                );
            }
        };
        let shot: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let want = hex::encode(Sha256::digest(&shot));

        // CSRF is still required: a wrong or missing token is refused
        // before the file is read, and nothing is stored
        let (s, _) = post(
            parts("forged", "m0", "", Some(("shot.png", shot.clone()))),
            limit,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{backend:?}");
        let (s, _) = post(parts("", "m0", "", Some(("shot.png", shot.clone()))), limit).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{backend:?}");
        none_stored("forged").await;

        // over the evidence limit: 413 naming it, nothing stored
        let big = vec![7u8; limit as usize + 1];
        let (s, page) = post(parts(&siti.csrf, "m1", "", Some(("big.mp4", big))), limit).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{backend:?}: {page}");
        assert!(page.contains("65,536 bytes"), "the limit named: {page}");
        // over the whole body's bound too (the multipart reader's own 413)
        let huge = vec![7u8; 2 * 1024 * 1024];
        let (s, page) = post(parts(&siti.csrf, "m1", "", Some(("huge.mp4", huge))), limit).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{backend:?}: {page}");
        none_stored("too large").await;

        // a typed hash that differs from the file's: refused naming the field
        let (s, page) = post(
            parts(&siti.csrf, "m2", SHA, Some(("shot.png", shot.clone()))),
            limit,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert!(
            page.contains("evidence_sha256_0") && page.contains(&want),
            "{page}"
        );
        none_stored("mismatch").await;

        // an empty file: refused naming the item
        let (s, page) = post(
            parts(&siti.csrf, "m3", "", Some(("empty.png", vec![]))),
            limit,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}");
        assert!(
            page.contains("empty.png") && page.contains("0 bytes"),
            "{page}"
        );
        none_stored("empty").await;

        // the file alone (the same hash typed too is fine): its SHA-256,
        // name and size reach the signed notice; the bytes are not kept
        let (s, page) = post(
            parts(
                &siti.csrf,
                "m4",
                &want.to_uppercase(),
                Some(("C:\\shots\\shot.png", shot.clone())),
            ),
            limit,
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{backend:?}: {page}");
        let listed = store.list_notices(&all).await.expect("list");
        assert_eq!(listed.len(), 1);
        let n = store.get_notice(listed[0].id).await.expect("notice");
        let ev = &n.items[0].evidence;
        assert_eq!(ev.len(), 1, "{backend:?}");
        assert_eq!(ev[0].sha256, want);
        assert_eq!(
            ev[0].description,
            "screenshot of the shop (file shot.png, 10000 bytes)"
        );
        assert_eq!(ev[0].captured_at.to_string(), "2025-12-31T14:30:00.000Z");
        // and the notice page shows them
        let (s, page) = send(&store, &siti, "GET", &format!("/notices/{}", n.id), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            page.contains(&want) && page.contains("file shot.png, 10000 bytes"),
            "{page}"
        );

        // a file input left empty sends a part with no name and no bytes:
        // no evidence, no refusal
        let (s, page) = post(parts(&siti.csrf, "m5", "", Some(("", vec![]))), limit).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{backend:?}: {page}");
        db.cleanup().await;
    }
}
