//! The web interface in headless Chromium: this test starts `tapis serve`
//! on a simulated clock, prepares what a person would be handed (an
//! officer's one-time link from `tapis account create`, a platform's
//! invitation code, another platform's notice), and runs the browser
//! driver `tests/browser/run.mjs` (Node with playwright-core and
//! axe-core, `npm ci` by scripts/setup) against it. The driver signs in,
//! submits notices in both languages, redeems the invitation, checks
//! CSRF, lockout, scoping, escaping and session expiry, walks the flag
//! pages (`tests/browser/flags.mjs`: the public report and its status, a
//! flagger's form and flags, the review queue, trusted flaggers, the
//! flagger and issuer reports, the representative page), runs axe-core on
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
    let reset_path = account(
        &server,
        &authority,
        &["officer", "approver"],
        "Siti Rahma",
        "siti",
    );

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

    // the approvals flow: an escalation, the people who handle it, and an
    // authoriser's key pair (the private key stays with the "authoriser":
    // the browser driver signs with OpenSSL as the desk tells it to)
    let roles = RolePages::prepare(&server, &authority).await;

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
            .env("TAPIS_ESCALATION", &roles.escalation)
            .env("TAPIS_ACCOUNTS", roles.accounts.to_string())
            .env("TAPIS_FLAGGER", &roles.flagger)
            .env("TAPIS_FLAG_REFERENCE", &roles.flag_reference)
            .env(
                "TAPIS_AUTHORISER_KEY",
                roles.key_dir.path().join("authoriser-key.pem"),
            )
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

/// `tapis account create` on the server's data directory: the account's
/// one-time link (its path), with which the person sets a password.
fn account(server: &Server, party: &str, roles: &[&str], person: &str, login: &str) -> String {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(&server.data_dir)
        .args(["account", "create", "--party", party]);
    for r in roles {
        cmd.args(["--role", r]);
    }
    let out = cmd
        .args(["--person", person, "--login", login])
        .output()
        .expect("run tapis account create");
    assert!(
        out.status.success(),
        "tapis account create {login}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    link.find("/reset/")
        .map(|i| link[i..].to_owned())
        .unwrap_or_else(|| panic!("no link in {link:?}"))
}

/// What the role pages' flow starts from: an open escalation of a notice
/// to a platform whose own domain it names (so the order drafted from it
/// needs an authoriser and is sent to the platform), and accounts for a
/// second approver, an authoriser (its key enrolled on the host), an ISP
/// operator, the platform's agent and an auditor.
struct RolePages {
    escalation: String,
    /// A flagger party (with a trusted-flagger grant with Chat C and a
    /// flag in the review queue, its reference).
    flagger: String,
    flag_reference: String,
    /// login → one-time link path.
    accounts: serde_json::Value,
    key_dir: tempfile::TempDir,
}

impl RolePages {
    async fn prepare(server: &Server, authority: &str) -> RolePages {
        let (s, v) = server
            .post(
                "/api/v1/parties",
                ADMIN,
                json!({"kind": "platform", "name": "Chat C", "domains": ["chat-c.example"]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let chat_c = v["id"].as_str().expect("party id").to_owned();
        let officer = server.token(authority, "officer").await;
        let (s, v) = server
            .post(
                "/api/v1/notices",
                &officer,
                json!({
                    "platform_id": chat_c, "category": "terrorism", "urgency": "urgent",
                    "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
                    "explanation": "a channel and a dedicated site",
                    "items": [
                        {"kind": "url", "value": "https://chat-c.example/channel/propaganda"},
                        {"kind": "domain", "value": "propaganda-mirror.example"},
                    ],
                }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let notice = v["id"].as_str().expect("notice id").to_owned();
        // Chat C has no channel: an hour later the notice escalates as undeliverable
        server.advance(3601).await;
        let open = server.get_ok("/api/v1/escalations?state=open", ADMIN).await;
        let escalation = open
            .as_array()
            .and_then(|a| a.iter().find(|e| e["notice_id"] == notice.as_str()))
            .and_then(|e| e["id"].as_str())
            .unwrap_or_else(|| panic!("no open escalation of {notice}: {open}"))
            .to_owned();

        // the authoriser's key pair, made where the authoriser is; only the
        // public key reaches the host
        let key_dir = tempfile::tempdir().expect("tmp");
        let pem = key_dir.path().join("authoriser-key.pem");
        let out = Command::new(tool("openssl"))
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&pem)
            .output()
            .expect("openssl genpkey");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg("openssl pkey -in \"$1\" -pubout -outform DER | tail -c 32 | base64 -w0")
            .arg("sh")
            .arg(&pem)
            .output()
            .expect("openssl pkey");
        let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success() && public.len() == 44,
            "public key {public:?}"
        );
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(&server.data_dir)
            .args(["authoriser", "enrol", "--name", "Administrative Court"])
            .args(["--public-key", &public])
            .output()
            .expect("run tapis authoriser enrol");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let isp = server.party("isp", "NetCo").await;
        let isp_token = server.token(&isp, "isp_operator").await;
        let (s, v) = server
            .put(
                &format!("/api/v1/parties/{isp}/resolvers"),
                &isp_token,
                json!({"resolvers": [], "notify": [], "allow_transfer_from": []}),
            )
            .await;
        assert_eq!(s, 200, "{v}");

        // a flagger agency: a flag on Chat C's channel waits in the queue,
        // and it holds trusted-flagger status with Chat C
        let flagger = server.party("flagger", "Badan Siber").await;
        let flagger_token = server.token(&flagger, "flagger").await;
        let (s, v) = server
            .post(
                "/api/v1/flags",
                &flagger_token,
                json!({"flags": [{
                    "targets": [{"kind": "url", "value": "https://chat-c.example/channel/recruiting"}],
                    "category": "terrorism",
                    "reasons": "recruitment posts for a banned group",
                }]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let flag_reference = v["flags"][0]["reference"]
            .as_str()
            .expect("flag reference")
            .to_owned();
        let (s, v) = server
            .post(
                "/api/v1/trusted-flaggers",
                ADMIN,
                json!({"flagger_id": flagger, "platform_id": chat_c, "categories": ["terrorism"]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");

        let accounts = json!({
            "wati": account(server, &flagger, &["flagger"], "Wati Susanti", "wati"),
            "budi": account(server, authority, &["approver"], "Budi Santoso", "budi"),
            "rina": account(server, authority, &["auditor"], "Rina Wijaya", "rina"),
            "ayu": account(server, authority, &["admin"], "Ayu Lestari", "ayu"),
            "hakim": account(server, "Administrative Court", &["authoriser"], "Hakim Adil", "hakim"),
            "eko": account(server, &isp, &["isp_operator"], "Eko Prasetyo", "eko"),
            "putri": account(server, &chat_c, &["platform_agent"], "Putri Ayu", "putri@chatc"),
        });
        RolePages {
            escalation,
            flagger,
            flag_reference,
            accounts,
            key_dir,
        }
    }
}
