//! The real binary: first start, the CLI's token and audit commands, and a
//! direct database edit caught by `tapis audit verify`, on every backend.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tapis_store::Backend;
use tapis_store::testing::{TestDb, backends};

mod common;

use common::BIN;

// hermetic: no config from the environment or cwd
use common::cli as tapis;

/// Start `tapis serve` on a free port and return it with its base URL.
fn serve(data: &Path, url: &str) -> (Child, String) {
    let mut child = tapis(data, url)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TAPIS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tapis serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines
            .next()
            .expect("tapis serve printed its address")
            .expect("line");
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("tapis listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    assert!(
        printed
            .iter()
            .any(|l| l.contains("first start") && l.contains("admin-token")),
        "first start says where the admin token is: {printed:?}"
    );
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let ok = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("tapis serve did not stop within 5 s of SIGTERM");
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let (server, base) = serve(data, &db.url);

    let token_file = data.join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("admin-token")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the admin token is readable by its owner only"
        );
    }
    let admin = std::fs::read_to_string(&token_file)
        .expect("read token")
        .trim()
        .to_owned();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/api/v1/parties"))
        .bearer_auth(&admin)
        .json(&json!({"kind": "platform", "name": "Messenger", "domains": ["messenger.example"]}))
        .send()
        .await
        .expect("create party");
    assert_eq!(resp.status(), 201);

    // the CLI creates a token for the platform, by name
    let cmd = tapis(data, &db.url);
    let out = common::token_create(cmd, "Messenger", "platform_agent", Some("ops bot"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    assert!(secret.starts_with("tapis_"), "{secret}");
    let me: Value = http
        .get(format!("{base}/api/v1/whoami"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "platform_agent");
    assert_eq!(me["label"], "ops bot");

    // a role that does not fit the party is refused with a clear message
    let out = common::token_create(tapis(data, &db.url), "Messenger", "officer", None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot hold the officer role"));

    stop(server);

    // a second start does not bootstrap again
    let (server, _) = {
        let mut child = tapis(data, &db.url)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TAPIS_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("restart");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("line").expect("line");
        assert!(
            first.starts_with("tapis listening on"),
            "no second bootstrap: {first}"
        );
        std::thread::spawn(move || for _ in lines {});
        (child, ())
    };
    stop(server);
    // the token was used, so its file is gone (at the latest when the
    // restart checked) and no second bootstrap wrote it again
    assert!(!token_file.exists(), "the used admin token's file remains");

    // the chain verifies
    let out = tapis(data, &db.url)
        .args(["audit", "verify"])
        .output()
        .expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // five of the story's own, and the register's redaction policy and the
    // retention policy logged once at the first start (the restart finds
    // them unchanged)
    assert!(text.contains("audit chain intact: 7 events"), "{text}");

    // someone with database access rewrites history; verify names the event
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    let drop_trigger = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
        Backend::Postgres => "DROP TRIGGER audit_events_no_change ON audit_events",
    };
    store.raw_execute(drop_trigger).await.expect("drop trigger");
    // the event that names the platform (its place depends on what the
    // server logged at start)
    let victim = store
        .all_audit_events()
        .await
        .expect("events")
        .into_iter()
        .find(|e| e.after.to_string().contains("Messenger"))
        .expect("an event names the platform")
        .seq;
    let n = store
        .raw_execute(&format!(
            "UPDATE audit_events SET after = replace(after, 'Messenger', 'Innocent') WHERE seq = {victim}"
        ))
        .await
        .expect("tamper");
    assert_eq!(n, 1);
    store.close().await;
    let out = tapis(data, &db.url)
        .args(["audit", "verify"])
        .output()
        .expect("verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN at event {victim}")),
        "{text}"
    );

    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_story_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("bad.toml"), "listen = 8080\n").expect("write");
    let out = Command::new(BIN)
        .env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .args(["--config", "bad.toml", "serve"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml is not valid"), "{err}");

    let out = Command::new(BIN)
        .env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .args(["serve"])
        .env("TAPIS_DATABASE_URL", "mysql://nope")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url must start with"));

    let out = Command::new(BIN)
        .env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .args(["serve"])
        .env("TAPIS_BOOTSTRAP_TOKEN", "short")
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 24 characters"));
}

#[test]
fn bootstrap_token_from_the_environment() {
    let dir = tempfile::tempdir().expect("tmp");
    let secret = "automation-secret-0123456789abcdef";
    let mut child = Command::new(BIN)
        .env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("TAPIS_BOOTSTRAP_TOKEN", secret)
        .env("TAPIS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut base = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("tapis listening on ") {
            base = rest.split_whitespace().next().expect("url").to_owned();
            break;
        }
    }
    assert!(
        !dir.path().join("admin-token").exists(),
        "no token file when the operator chose the token"
    );
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/whoami"))
            .bearer_auth(secret)
            .send()
            .await
            .expect("whoami")
            .status()
    });
    assert_eq!(status, 200);
    stop(child);
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(BIN)
        .env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "token", "audit"] {
        assert!(text.contains(cmd), "{text}");
    }
    let out = Command::new(BIN)
        .env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .args(["serve", "--help"])
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TAPIS_BOOTSTRAP_TOKEN") && text.contains("--listen"),
        "{text}"
    );
}

/// `tapis ARGS --help`, its stdout.
fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .env_remove("TAPIS_CONFIG")
        .output()
        .expect("help");
    assert!(out.status.success(), "{args:?} --help exits 0");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each command's help lists only the flags it reads: the resolver opens
/// no database, so it neither offers --database-url nor speaks of SQLite;
/// the commands that open tapis's database offer all three settings
/// flags, and every one says how it exits.
#[test]
fn each_command_lists_only_the_flags_it_reads() {
    let resolver = help(&["resolver"]);
    assert!(!resolver.contains("--database-url"), "{resolver}");
    assert!(!resolver.contains("SQLite"), "{resolver}");
    assert!(
        resolver.contains("--config") && resolver.contains("--data-dir"),
        "{resolver}"
    );
    let replay = help(&["replay"]);
    assert!(
        !replay.contains("--database-url") && !replay.contains("--data-dir"),
        "{replay}"
    );
    for cmd in [
        &["serve"][..],
        &["token", "create"],
        &["audit", "verify"],
        &["import", "rpz"],
        &["import", "domains"],
        &["receipt", "verify"],
    ] {
        let text = help(cmd);
        for flag in ["--config", "--data-dir", "--database-url"] {
            assert!(text.contains(flag), "{cmd:?} --help offers {flag}:\n{text}");
        }
        assert!(text.contains("SQLite"), "{cmd:?}:\n{text}");
    }
    for cmd in [
        &["serve"][..],
        &["token", "create"],
        &["audit", "verify"],
        &["import", "rpz"],
        &["receipt", "verify"],
        &["replay"],
        &["resolver"],
    ] {
        assert!(
            help(cmd).contains("Exit status"),
            "{cmd:?} says how it exits"
        );
    }
}

/// The settings flags work after the command and, as before, ahead of it;
/// after the command a flag beats TAPIS_* (defaults < file < environment
/// < flags).
#[test]
fn settings_flags_work_before_and_after_the_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let (flag_dir, early_dir, env_dir) = (
        dir.path().join("flag"),
        dir.path().join("early"),
        dir.path().join("env"),
    );
    for (args, made) in [
        (
            vec![
                "audit".into(),
                "verify".into(),
                "--data-dir".into(),
                flag_dir.display().to_string(),
            ],
            &flag_dir,
        ),
        (
            vec![
                "--data-dir".into(),
                early_dir.display().to_string(),
                "audit".into(),
                "verify".into(),
            ],
            &early_dir,
        ),
    ] {
        std::fs::create_dir_all(made).expect("mkdir");
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("TAPIS_CONFIG")
            .env_remove("TAPIS_DATABASE_URL")
            .env("TAPIS_DATA_DIR", &env_dir)
            .current_dir(dir.path())
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("audit chain intact"),
            "{args:?}"
        );
        assert!(
            made.join("tapis.db").exists(),
            "{args:?} used {}",
            made.display()
        );
    }
    assert!(
        !env_dir.join("tapis.db").exists(),
        "the flag beats TAPIS_DATA_DIR"
    );
}
