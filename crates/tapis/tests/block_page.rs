//! The block page as a person meets it: headless Chromium (Debian's
//! `chromium`, installed by .ci/run) asks for a blocked name, which the
//! walled-garden answer sends to tapis (here by Chromium's host-resolver
//! rules, standing in for the ISP resolver's CNAME), and reads what the
//! page says: the order, its category, legal basis, dates and how to
//! appeal. A name that is not blocked says so.

mod common;

use std::process::Command;

use common::*;

/// The page Chromium renders for `url` when `host` resolves to tapis.
fn render(server: &Server, host: &str, url: &str) -> String {
    let addr = server
        .base()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let profile = tempfile::tempdir().expect("profile");
    let out = Command::new(tool("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--host-resolver-rules=MAP {host} {addr}"))
        .args(["--virtual-time-budget=5000", "--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sent_to_the_block_page_learns_which_order_and_how_to_appeal() {
    let server = serve(
        "[channel]\npublic_url = \"https://tapis.ministry.example/\"\n",
        "2017-07-14T11:00:00+07:00",
    );
    let p = Parties::new(&server).await;
    let id = p
        .approve(
            &server,
            gambling_order(
                "judi.example",
                "walled_garden",
                "2017-07-14T11:30:00+07:00",
                "2017-08-14T11:30:00+07:00",
                "2017-08-01T11:30:00+07:00",
            ),
        )
        .await;

    // before 11:30 the page says the name is not blocked
    let page = render(&server, "www.judi.example", "http://www.judi.example/");
    assert!(page.contains("is not blocked"), "{page}");
    assert!(!page.contains(&id), "{page}");

    server.advance(30 * 60).await;
    let page = render(
        &server,
        "www.judi.example",
        "http://www.judi.example/some/path?q=1",
    );
    for want in [
        "www.judi.example",
        "is blocked by a legal order",
        id.as_str(),
        "gambling",
        "Law 11/2008 art. 27(2)",
        "Online gambling is unlawful.",
        "2017-08-14",
        "ask for a review",
        "/api/v1/lookup?name=www.judi.example",
    ] {
        assert!(page.contains(want), "the page lacks {want:?}:\n{page}");
    }
    // the page is served under the blocked name, so its links go to tapis
    // itself: a relative link would ask the blocked name again
    let appeal = format!(
        "href=\"https://tapis.ministry.example/appeal?order={id}&amp;name=www.judi.example\""
    );
    assert!(page.contains(&appeal), "no {appeal} in:\n{page}");
    assert!(
        page.contains("href=\"https://tapis.ministry.example/transparency\""),
        "{page}"
    );
    assert!(
        !page.contains("<a href=\"/") && !page.contains("class=\"brand\" href=\"/\""),
        "a relative link on the block page:\n{page}"
    );
    // nothing in the page comes from elsewhere (no third-party requests)
    assert!(!page.contains("src=\"http"), "{page}");

    // a name the order does not cover
    let page = render(&server, "fine.example", "http://fine.example/");
    assert!(page.contains("fine.example"), "{page}");
    assert!(page.contains("is not blocked"), "{page}");
}
