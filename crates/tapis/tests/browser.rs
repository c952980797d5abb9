//! The web interface in headless Chromium: this test starts `tapis serve`
//! on a simulated clock, prepares what a person would be handed (an
//! officer's one-time link from `tapis account create`, a platform's
//! invitation code, another platform's notice), and runs the browser
//! driver `tests/browser/run.mjs` (Node with playwright-core and
//! axe-core, `npm ci` by scripts/setup) against it. The driver signs in,
//! submits notices in both languages, redeems the invitation, checks
//! CSRF, lockout, scoping, escaping and session expiry, runs axe-core on
//! every page, and writes screenshots of every page in both languages to
//! `target/test-artifacts/screens/`. A failure shows the driver's output.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("the crate is two levels below the repository root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_use_the_web_interface_in_a_real_browser() {
    let root = repo_root();
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir()
            && browser_dir.join("node_modules/axe-core").is_dir(),
        "the browser driver's packages are missing: run scripts/setup (or `npm ci` in tests/browser)"
    );
    let node = tool("node");
    let chromium = tool("chromium");

    // browsers ask for many pages without an API token: lift the
    // anonymous-rate limit meant for strangers
    let server = server()
        .simulated_clock("2026-03-02T09:00:00+07:00")
        .env("TAPIS_LIMITS_ANONYMOUS_PER_MINUTE", "100000")
        .env("TAPIS_LIMITS_ANONYMOUS_BURST", "100000")
        .start();
    let authority = server.authority().await;
    let chat_a = server.party("platform", "Chat A").await;
    let chat_b = server.party("platform", "Chat B").await;

    // the officer's account, made on the host: a one-time link, no password
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .args(["account", "create", "--party", &authority])
        .args(["--role", "officer", "--role", "approver"])
        .args(["--person", "Siti Rahma", "--login", "siti"])
        .output()
        .expect("run tapis account create");
    assert!(
        out.status.success(),
        "tapis account create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let reset_path = link
        .find("/reset/")
        .map(|i| link[i..].to_owned())
        .unwrap_or_else(|| panic!("no link in {link:?}"));

    // the platform's invitation, from the admin
    let (s, v) = server
        .post(
            &format!("/api/v1/parties/{chat_a}/invitations"),
            ADMIN,
            json!({"role": "platform_agent"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let code = v["code"].as_str().expect("invitation code").to_owned();

    // a notice to another platform, which Chat A's people must not see
    let officer = server.token(&authority, "officer").await;
    let (s, v) = server
        .post(
            "/api/v1/notices",
            &officer,
            json!({
                "platform_id": chat_b, "category": "terrorism", "urgency": "urgent",
                "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
                "explanation": "for Chat B only",
                "items": [{"kind": "url", "value": "https://chat-b.example/secret"}],
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let other = v["id"].as_str().expect("notice id").to_owned();

    let screens = root.join("target/test-artifacts/screens");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg("run.mjs")
            .current_dir(&browser_dir)
            .env("TAPIS_BASE", server.base())
            .env("TAPIS_ADMIN_TOKEN", ADMIN)
            .env("TAPIS_RESET_PATH", &reset_path)
            .env("TAPIS_INVITE_CODE", &code)
            .env("TAPIS_OTHER_NOTICE", &other)
            .env("TAPIS_SCREENS", &screens)
            .env("TAPIS_CHROMIUM", chromium)
            .output()
            .map(|o| (o, server))
    })
    .await
    .expect("join")
    .expect("run node tests/browser/run.mjs");
    let (out, _server) = out;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser run failed:\n{report}");
    assert!(report.contains(", 0 failed"), "{report}");
    // the summary line, for the record
    if let Some(line) = report.lines().find(|l| l.contains(" checks, ")) {
        eprintln!("{line}");
    }
}
