//! Due-process settings through the real binary: the public suffix list
//! (bundled, or a configured file that must be readable, and said on
//! `/healthz`) makes a shared namespace need authorisation; `on_missed_review = "escalate"` keeps an order whose
//! review date passed and tells the authoriser; logging client addresses
//! needs a reason, which goes on the audit log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;

fn order(name: &str, review: &str) -> serde_json::Value {
    json!({"targets": [{"name": name, "include_subdomains": true}], "action": "nxdomain", "category": "fraud",
           "legal_basis": {"reference": "Law 11/2008 art. 28", "text": "Fraud."},
           "effective_at": "2017-07-14T11:30:00+07:00", "expires_at": "2017-08-14T11:30:00+07:00", "review_at": review})
}

#[test]
fn logging_client_addresses_needs_a_reason() {
    let (status, err) = server()
        .config("[privacy]\nlog_client_addresses = true\n")
        .run_to_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(err.contains("log_client_addresses_reason"), "{err}");
}

#[test]
fn an_unreadable_public_suffix_list_stops_the_start() {
    let (status, err) = server()
        .config("[due_process]\npublic_suffix_list = \"/nonexistent/public_suffix_list.dat\"\n")
        .run_to_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(
        err.contains("cannot read the public suffix list /nonexistent/public_suffix_list.dat"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_which_public_suffix_list_is_in_use() {
    let server = serve("", "2017-07-14T11:00:00+07:00");
    let (s, h) = server.get("/healthz", ADMIN).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(
        h["public_suffix_list"],
        json!({"source": "bundled: Debian publicsuffix 20230209.2326-1", "version": "2023-02-09"}),
        "{h}"
    );
    drop(server);

    // a configured file, with its version line
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("psl.dat");
    std::fs::write(
        &file,
        "// VERSION: 2025-06-01_00-00-00_UTC\ncom\nio\ngithub.io\n",
    )
    .expect("write");
    let server = serve(
        &format!(
            "[due_process]\npublic_suffix_list = \"{}\"\n",
            file.display()
        ),
        "2017-07-14T11:00:00+07:00",
    );
    let (_, h) = server.get("/healthz", ADMIN).await;
    assert_eq!(
        h["public_suffix_list"],
        json!({"source": file.display().to_string(), "version": "2025-06-01_00-00-00_UTC"}),
        "{h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_shape_the_blocking_path() {
    let server = serve(
        "[due_process]\non_missed_review = \"escalate\"\npopular_sites = [\"wikipedia.org\"]\n\
         [privacy]\nlog_client_addresses = true\nlog_client_addresses_reason = \"court order 12/2017 requires it for a month\"\n",
        "2017-07-14T11:00:00+07:00",
    );
    let p = Parties::new(&server).await;
    let officer = &p.officer;

    // a shared-hosting namespace and a popular site need authorisation;
    // one site under the shared namespace does not
    for (name, kind) in [
        ("github.io", Some("public_suffix")),
        ("en.wikipedia.org", Some("popular_site")),
        ("scam.github.io", None),
    ] {
        let (s, o) = server
            .post(
                "/api/v1/orders",
                officer,
                order(name, "2017-07-20T11:30:00+07:00"),
            )
            .await;
        assert_eq!(s, 201, "{o}");
        let (_, dp) = server
            .get(
                &format!(
                    "/api/v1/orders/{}/due-process",
                    o["id"].as_str().expect("id")
                ),
                officer,
            )
            .await;
        assert_eq!(
            dp["needs_authorisation"][0]["kind"].as_str(),
            kind,
            "{name}: {dp}"
        );
    }

    // an order whose review date passes without a review stays in force,
    // and the authoriser is told
    let id = p
        .approve(&server, order("phish.example", "2017-07-15T11:30:00+07:00"))
        .await;
    server.advance(2 * 86_400).await;
    let (_, o) = server.get(&format!("/api/v1/orders/{id}"), officer).await;
    assert_eq!(o["state"], "in_force", "escalated, not lapsed: {o}");

    // what the audit log holds (read from the database the server uses)
    let url = format!("sqlite://{}", server.data_dir.join("tapis.db").display());
    let store = tapis_store::Store::open_with(
        &url,
        Arc::new(tapis_core::SystemClock),
        tapis_store::Options::default(),
    )
    .await
    .expect("open");
    let events = store.events_for("order", &id).await.expect("events");
    assert!(
        events.iter().any(|e| e.action == "order.review_missed"),
        "{:?}",
        events.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
    let privacy = store
        .events_for("setting", "privacy.log_client_addresses")
        .await
        .expect("events");
    assert_eq!(privacy.len(), 1);
    assert_eq!(
        privacy[0].after["reason"],
        "court order 12/2017 requires it for a month"
    );
}
