//! The real binary's own trust boundaries: on PostgreSQL `tapis serve` runs
//! as a role that owns nothing (`tapis db migrate` as the owner, `tapis db
//! grants` for the application role); tapis's files are owner-only and a
//! key others can read is refused; the secrets key is loaded, named by its
//! id and never printed; the edge limits come from the config.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tapis_core::SystemClock;
use tapis_store::testing::{TestDb, backends};
use tapis_store::{Backend, Options, Store};

mod common;

use common::BIN;

/// `tapis` with the data directory and database given, and nothing read
/// from the environment or the working directory.
fn tapis(data: &Path, url: &str) -> Command {
    tapis_in(data, data, url)
}

/// `tapis` as [`tapis`], run in `cwd` (which must exist; `data` need not).
fn tapis_in(cwd: &Path, data: &Path, url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0")
        .env_remove("TAPIS_CONFIG")
        .env_remove("TAPIS_BOOTSTRAP_TOKEN")
        .env_remove("TAPIS_SECRETS_KEY")
        .current_dir(cwd);
    c.arg("--data-dir").arg(data);
    if !url.is_empty() {
        c.arg("--database-url").arg(url);
    }
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running `tapis serve`, killed when dropped.
struct Served {
    child: Child,
    base: String,
    /// What it logged on stderr (collected in the background).
    log: Arc<std::sync::Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Stop with SIGTERM and wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tapis serve did not stop within 10 s of SIGTERM");
    }
}

/// Start `tapis serve` (`cmd` already has its settings) and wait until it
/// listens; `Err` with its output when it exits instead.
fn serve(mut cmd: Command) -> Result<Served, String> {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tapis serve");
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = sink.lock().expect("log");
            l.push_str(&line);
            l.push('\n');
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = String::new();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                printed.push_str(&line);
                printed.push('\n');
                if let Some(rest) = line.strip_prefix("tapis listening on ") {
                    break rest.split_whitespace().next().expect("url").to_owned();
                }
            }
            _ => {
                let _ = child.wait();
                let _ = reader.join();
                let log = log.lock().expect("log").clone();
                return Err(format!("{printed}{log}"));
            }
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Served { child, base, log })
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The URL of `db` with `user:password` in place of the owner.
fn as_role(db: &TestDb, user: &str, password: &str) -> String {
    let (scheme_rest, name) = db.url.rsplit_once('/').expect("url");
    let host = scheme_rest
        .rsplit_once('@')
        .map(|(_, h)| h)
        .or_else(|| scheme_rest.split_once("://").map(|(_, h)| h))
        .expect("host");
    format!("postgres://{user}:{password}@{host}/{name}")
}

/// A store on `url` that neither migrates anything new nor publishes a key
/// (the tables exist): for playing the attacker or the administrator.
async fn raw(url: &str) -> Store {
    Store::open_with(url, Arc::new(SystemClock), Options::default())
        .await
        .expect("open")
}

/// Run SQL with psql (as PostgreSQL's own client would be used by an
/// administrator).
fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().expect("stdin").write_all(sql.as_bytes())?;
            c.wait_with_output()
        })
        .expect("psql is installed (Debian package postgresql-client)");
    assert!(out.status.success(), "psql: {}", text(&out));
}

/// The two-role setup end to end: the owner migrates, prints and applies
/// the grants; `tapis serve` runs as the application role and does its
/// work through the API; that role cannot rewrite the audit log; and as
/// that role an unmigrated database is refused with the step to take.
#[tokio::test]
async fn serve_runs_as_an_application_role_that_cannot_rewrite_the_log() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let role = format!("tapis_app_{}", &uuid_like());
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();

    // as the application role, an unmigrated database is refused, naming
    // the command that fixes it
    psql(
        &admin_url(),
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'app-pw';"),
    );
    let app_url = as_role(&db, &role, "app-pw");
    let refused = serve(tapis(data, &app_url)).err().expect("refused");
    assert!(
        refused.contains("tapis db migrate") && refused.contains(&role),
        "{refused}"
    );
    assert!(!refused.contains("app-pw"), "the password is never shown");

    // the owner migrates and prints the grants
    let out = tapis(data, &db.url)
        .args(["db", "migrate"])
        .output()
        .expect("db migrate");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("schema is current"), "{}", text(&out));
    let out = tapis(data, &db.url)
        .args(["db", "grants", "--app-role", &role])
        .output()
        .expect("db grants");
    assert!(out.status.success(), "{}", text(&out));
    let grants = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        grants.contains(&format!(
            "REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}"
        )),
        "{grants}"
    );
    psql(&db.url, &grants);

    // tapis serve as the application role: first start, then a write
    let server = serve(tapis(data, &app_url)).expect("serve as the app role");
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/parties", server.base))
        .bearer_auth(admin.trim())
        .json(&json!({"kind": "platform", "name": "Messenger", "domains": ["messenger.example"]}))
        .send()
        .await
        .expect("create party");
    assert_eq!(resp.status(), 201, "the app role writes and audits");
    server.stop();

    // the application role cannot change the log
    let app = raw(&app_url).await;
    for attack in [
        "UPDATE audit_events SET action = 'x' WHERE seq = 1",
        "DELETE FROM audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    ] {
        let err = app.raw_execute(attack).await.expect_err(attack).to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{attack}: {err}"
        );
    }
    app.close().await;
    let out = tapis(data, &db.url)
        .args(["audit", "verify"])
        .output()
        .expect("audit verify");
    assert!(out.status.success(), "{}", text(&out));

    db.cleanup().await;
    psql(&admin_url(), &format!("DROP ROLE IF EXISTS {role};"));
}

#[tokio::test]
async fn db_grants_is_for_postgresql_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = tapis(dir.path(), "")
        .args(["db", "grants", "--app-role", "tapis_app"])
        .output()
        .expect("db grants");
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out);
    assert!(
        said.contains("PostgreSQL") && said.contains("permissions"),
        "{said}"
    );
    let out = tapis(dir.path(), "postgres://o@127.0.0.1:1/x")
        .args(["db", "grants", "--app-role", "Bad;Name"])
        .output()
        .expect("db grants");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("role name"), "{}", text(&out));
}

fn admin_url() -> String {
    std::env::var("TAPIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A unique suffix for a role name (lowercase hex).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// tapis's files are owner-only from the first start; a key file others
/// can read stops the start with the `chmod` to run; a database file
/// others can read is tightened and the fact logged.
#[cfg(unix)]
#[test]
fn files_are_owner_only_and_a_readable_key_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("fresh").join("data");
    // the parent too is created by tapis
    std::fs::create_dir_all(data.parent().expect("parent")).expect("mkdir");
    let start = || {
        let mut c = tapis_in(dir.path(), &data, "");
        c.env("TAPIS_LOG", "warn");
        serve(c)
    };
    let server = start().expect("first start");
    let db = data.join("tapis.db");
    for (path, want) in [
        (data.clone(), 0o700),
        (db.clone(), 0o600),
        (data.join("tapis.db-wal"), 0o600),
        (data.join("tapis.db-shm"), 0o600),
        (data.join("signing-key"), 0o600),
        (data.join("admin-token"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    server.stop();

    for (file, what) in [
        ("signing-key", "signing key"),
        ("admin-token", "admin token"),
    ] {
        let path = data.join(file);
        chmod(&path, 0o644);
        let refused = start().err().expect("a readable key is refused");
        assert!(
            refused.contains(&format!("chmod 600 {}", path.display())) && refused.contains(what),
            "{refused}"
        );
        assert_eq!(mode(&path), 0o644, "a key's mode is the operator's to fix");
        chmod(&path, 0o600);
    }

    chmod(&db, 0o644);
    let server = start().expect("a readable database is tightened, not refused");
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&data.join("tapis.db-wal")), 0o600);
    let log = server.log();
    assert!(
        log.contains("tightened") && log.contains("tapis.db"),
        "{log}"
    );
    server.stop();

    // the offline commands create the database owner-only too
    let other = dir.path().join("other");
    let out = tapis_in(dir.path(), &other, "")
        .args(["db", "migrate"])
        .output()
        .expect("db migrate");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&other), 0o700);
    assert_eq!(mode(&other.join("tapis.db")), 0o600);
}

/// The secrets key: loaded from a file (refused when others can read it)
/// or the environment, named at start by its id, never printed; without
/// one the start warns, naming the setting.
#[cfg(unix)]
#[test]
fn the_secrets_key_is_loaded_named_and_never_printed() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let key_text = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=";
    let kid = tapis_store::secrets::SecretKey::parse(key_text)
        .expect("key")
        .kid()
        .expect("kid")
        .to_owned();
    let key_file = data.join("secrets.key");
    std::fs::write(&key_file, format!("{key_text}\n")).expect("write key");
    chmod(&key_file, 0o600);
    let config = data.join("keyed.toml");
    std::fs::write(
        &config,
        format!("secrets_key_file = {:?}\n", key_file.display().to_string()),
    )
    .expect("config");
    let with_config = || {
        let mut c = tapis(data, "");
        c.arg("--config").arg(&config).env("TAPIS_LOG", "info");
        c
    };

    let server = serve(with_config()).expect("start with a key file");
    let log = server.log();
    server.stop();
    assert!(log.contains("sealed") && log.contains(&kid), "{log}");
    assert!(!log.contains(key_text) && !log.contains("3q2+7w"), "{log}");

    chmod(&key_file, 0o644);
    let refused = serve(with_config()).err().expect("a readable key file");
    assert!(
        refused.contains(&format!("chmod 600 {}", key_file.display())),
        "{refused}"
    );
    assert!(!refused.contains("3q2+7w"), "{refused}");
    chmod(&key_file, 0o600);

    // from the environment instead
    let mut c = tapis(data, "");
    c.env("TAPIS_SECRETS_KEY", key_text)
        .env("TAPIS_LOG", "info");
    let server = serve(c).expect("start with TAPIS_SECRETS_KEY");
    let log = server.log();
    server.stop();
    assert!(log.contains(&kid) && !log.contains("3q2+7w"), "{log}");

    // a bad key stops the start without being echoed
    let mut c = tapis(data, "");
    c.env("TAPIS_SECRETS_KEY", "hunter2-is-not-a-key");
    let refused = serve(c).err().expect("a bad key");
    assert!(
        refused.contains("TAPIS_SECRETS_KEY") && !refused.contains("hunter2"),
        "{refused}"
    );

    // none: said, naming the setting
    let mut c = tapis(data, "");
    c.env("TAPIS_LOG", "warn");
    let server = serve(c).expect("start without a key");
    let log = server.log();
    server.stop();
    assert!(
        log.contains("in clear") && log.contains("secrets_key_file"),
        "{log}"
    );
}

/// The edge limits in the settings reach the running server: with a
/// burst of two, a third anonymous request is turned away while a request
/// with a token is not; a limit out of bounds stops the start.
#[tokio::test]
async fn edge_limits_from_the_settings_apply_to_the_running_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path();
    let mut c = tapis(data, "");
    c.env("TAPIS_LIMITS_ANONYMOUS_BURST", "2")
        .env("TAPIS_LIMITS_ANONYMOUS_PER_MINUTE", "1");
    let server = serve(c).expect("start");
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token");
    let http = reqwest::Client::new();
    let url = format!("{}/healthz", server.base);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(http.get(&url).send().await.expect("get").status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let with_token = http
        .get(format!("{}/api/v1/whoami", server.base))
        .bearer_auth(admin.trim())
        .send()
        .await
        .expect("whoami");
    assert_eq!(
        with_token.status(),
        200,
        "requests with a token are not counted"
    );
    server.stop();

    let mut c = tapis(data, "");
    c.env("TAPIS_LIMITS_HEADER_READ_TIMEOUT_SECS", "0");
    let refused = serve(c).err().expect("out of bounds");
    assert!(
        refused.contains("limits.header_read_timeout_secs"),
        "{refused}"
    );
}

/// A token is revoked from the command line, on every backend: it stops
/// working on the running server at once, the list says so, the log has
/// the revocation, and revoking twice is refused.
#[tokio::test]
async fn tokens_are_listed_and_revoked_from_the_command_line() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path();
        let server = serve(tapis(data, &db.url)).expect("start");
        let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token");
        let http = reqwest::Client::new();
        let party: serde_json::Value = http
            .post(format!("{}/api/v1/parties", server.base))
            .bearer_auth(admin.trim())
            .json(
                &json!({"kind": "platform", "name": "Messenger", "domains": ["messenger.example"]}),
            )
            .send()
            .await
            .expect("party")
            .json()
            .await
            .expect("json");
        let party_id = party["id"].as_str().expect("id").to_owned();
        let cmd = tapis(data, &db.url);
        let out = common::token_create(cmd, "Messenger", "platform_agent", Some("ops bot"));
        assert!(out.status.success(), "{}", text(&out));
        let secret = String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned();
        let whoami = |secret: String| {
            let http = http.clone();
            let url = format!("{}/api/v1/whoami", server.base);
            async move {
                http.get(url)
                    .bearer_auth(secret)
                    .send()
                    .await
                    .expect("whoami")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(whoami(secret.clone()).await, 200);

        let list = |expect: &str| {
            let out = tapis(data, &db.url)
                .args(["token", "list", "--party", "Messenger"])
                .output()
                .expect("token list");
            assert!(out.status.success(), "{}", text(&out));
            let listed = String::from_utf8(out.stdout).expect("utf8");
            assert!(!listed.contains(&secret), "secrets are never listed");
            let line = listed
                .lines()
                .find(|l| l.contains("ops bot"))
                .unwrap_or_else(|| panic!("{listed}"))
                .to_owned();
            assert!(line.contains(expect), "{line}");
            line.split('\t').next().expect("id").to_owned()
        };
        let id = list("live");

        let out = tapis(data, &db.url)
            .args(["token", "revoke", &id])
            .output()
            .expect("token revoke");
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            whoami(secret.clone()).await,
            401,
            "{backend:?}: revoked at once"
        );
        assert_eq!(
            whoami(admin.trim().to_owned()).await,
            200,
            "others still work"
        );
        list("revoked");

        let again = tapis(data, &db.url)
            .args(["token", "revoke", &id])
            .output()
            .expect("token revoke");
        assert_eq!(again.status.code(), Some(2), "{}", text(&again));
        assert!(text(&again).contains("revoked"), "{}", text(&again));
        let by_secret = tapis(data, &db.url)
            .args(["token", "revoke", &secret])
            .output()
            .expect("token revoke");
        assert_eq!(by_secret.status.code(), Some(2));
        assert!(
            text(&by_secret).contains("not its secret"),
            "{}",
            text(&by_secret)
        );
        server.stop();

        let store = raw(&db.url).await;
        let events = store.events_for("party", &party_id).await.expect("events");
        let revoked: Vec<_> = events
            .iter()
            .filter(|e| e.action == "token.revoked")
            .collect();
        assert_eq!(revoked.len(), 1, "{backend:?}: one event per revocation");
        assert!(store.verify_audit().await.expect("verify").ok());
        store.close().await;
        db.cleanup().await;
    }
}
