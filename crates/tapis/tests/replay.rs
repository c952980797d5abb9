//! `tapis replay`, through the real binary: every bundled scenario passes
//! on an in-process server; a wrong expectation fails and says which, when
//! and what was found; bad scenario files are clear errors (never a
//! panic); and the same driver runs a scenario against a running
//! `tapis serve --simulated-clock` on every backend.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tapis_store::testing::{TestDb, backends};

const BIN: &str = env!("CARGO_BIN_EXE_tapis");

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios")
}

fn replay(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .arg("replay")
        .args(args)
        .env_remove("TAPIS_CONFIG")
        .env_remove("TAPIS_LOG")
        .env_remove("TAPIS_REPLAY_TOKEN")
        .current_dir(cwd)
        .output()
        .expect("run tapis replay")
}

/// `tapis replay FILE --report PATH` (and `extra` flags) in `cwd`: its
/// output, and the report it wrote (none when it could not write one).
fn replay_reporting(file: &Path, extra: &[&str], cwd: &Path) -> (Output, Option<Value>) {
    let report = cwd.join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut args = vec![
        file.to_str().expect("utf-8 path"),
        "--report",
        report.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = replay(&args, cwd);
    let written = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("the report is JSON"));
    (out, written)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bundled() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("examples/scenarios exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bundled_scenario_passes() {
    let files = bundled();
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "2017-channel-blocking",
        "answered-in-time",
        "disputed-then-withdrawn",
        "webhook-down",
        "order-expires",
        "two-agencies",
        "escalation-to-order",
        "email-only-platform",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected}.toml is bundled: {names:?}"
        );
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let mut case_2017 = None;
    for file in &files {
        let (out, report) = replay_reporting(file, &[], tmp.path());
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}):\n{stdout}\n{}",
            file.display(),
            out.status,
            text(&out.stderr)
        );
        assert!(stdout.contains("PASSED"), "{stdout}");
        let r = report.expect("report written");
        assert_eq!(r["passed"], true, "{}", file.display());
        assert_eq!(r["mode"], "embedded");
        assert!(r["error"].is_null(), "{}", r["error"]);
        assert_eq!(r["expectations"]["failed"], 0);
        assert!(
            r["expectations"]["total"].as_u64().unwrap_or(0) >= 5,
            "{} checks something: {}",
            file.display(),
            r["expectations"]
        );
        assert!(r["timeline"].as_array().is_some_and(|t| !t.is_empty()));
        // every webhook tapis sent carried a valid Standard Webhooks signature
        assert_eq!(r["facts"]["webhooks_unverified"], 0, "{}", file.display());
        assert!(!stderr_panicked(&out), "{}", text(&out.stderr));
        if file.ends_with("2017-channel-blocking.toml") {
            case_2017 = Some((stdout, r));
        }
    }
    let (stdout, r) = case_2017.expect("the 2017 case ran");
    the_2017_comparison(&stdout, &r);
    // pinned here rather than in a test of its own: the case is the
    // longest of the bundle, and this run of it is already on hand
    the_2017_timeline_as_printed(&stdout);
}

/// The 2017 case's printed timeline, summary and comparison, line for
/// line, on the simulated clock. The filters hide only what differs
/// between two runs of the same scenario; each says why.
fn the_2017_timeline_as_printed(stdout: &str) {
    let mut settings = insta::Settings::clone_current();
    // the scenario's path is wherever the repository is checked out
    settings.add_filter(r"\(\S*/examples/scenarios/", "([repo]/examples/scenarios/");
    // the in-process server listens on ephemeral ports …
    settings.add_filter(r"127\.0\.0\.1:\d+", "[addr]");
    // … and its fresh database is in a new temporary directory
    settings.add_filter(r"fresh SQLite in \S+,", "fresh SQLite in [tmpdir],");
    // each start makes a new signing key, and receipts name its key id
    settings.add_filter(r"tapis-[0-9a-f]{16}", "[kid]");
    // NOTIFY latency is real time, measured on this machine
    settings.add_filter(r"\d+\.\d ms", "[real-time ms]");
    // each zone transfer by an ISP's secondary is an audit event, and the
    // secondaries refresh on real time as well as on NOTIFY, so the count
    // varies by a few between runs (the replay itself checks "intact")
    settings.add_filter(r"intact, \d+ events", "intact, [n] events");
    settings.bind(|| insta::assert_snapshot!("the_2017_case_timeline", stdout));
}

fn stderr_panicked(out: &Output) -> bool {
    text(&out.stderr).contains("panicked")
}

/// The 2017 case's timeline, comparison and report.
fn the_2017_comparison(stdout: &str, r: &Value) {
    assert!(
        stdout.contains("submits notice r1"),
        "the timeline is printed"
    );
    assert!(stdout.contains("notice r1 ESCALATED"), "{stdout}");
    assert!(
        stdout.contains("compared with the public record"),
        "{stdout}"
    );
    assert!(stdout.contains("472 days"), "{stdout}");
    assert!(stdout.contains("2 days 4 h"), "{stdout}");
    let c = &r["comparison"];
    // 29 March 2016 10:00 to 14 July 2017 11:30, UTC+7 both
    assert_eq!(
        c["record"]["first_request_to_first_escalation_secs"],
        40_786_200
    );
    // delivered at once, escalated at deadline (4 h) + 48 h
    assert_eq!(
        c["tapis"]["first_request_to_first_escalation_secs"],
        52 * 3600
    );
    assert_eq!(c["record"]["names_blocked"], 11);
    assert_eq!(c["tapis"]["names_blocked"], 11);
    assert_eq!(c["record"]["items_targeted"], 55);
    // the 55 channels of the six requests, and 8 more after the apology
    assert_eq!(c["tapis"]["items_targeted"], 63);
    let f = &r["facts"];
    assert_eq!(f["escalations"], 6);
    assert_eq!(f["first_block"], "2017-07-14 11:30:00 +07:00");
    assert_eq!(f["block_ended"], "2017-08-10 10:00:00 +07:00");
    // both ISP secondaries were notified of the new serial
    assert_eq!(f["notify_latency_ms"].as_array().map(Vec::len), Some(2));
}

#[test]
fn quiet_prints_only_the_summary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = scenarios_dir().join("answered-in-time.toml");
    let out = replay(&[file.to_str().expect("path"), "--quiet"], tmp.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("submits notice"), "{stdout}");
    assert!(stdout.contains("== summary"), "{stdout}");
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}

/// The answered-in-time scenario with one expectation made wrong.
#[test]
fn a_wrong_expectation_fails_and_says_which_when_and_what_was_found() {
    let tmp = tempfile::tempdir().expect("tmp");
    let original =
        std::fs::read_to_string(scenarios_dir().join("answered-in-time.toml")).expect("scenario");
    let wrong = original.replacen(
        "at = \"2026-03-02T11:20:00+07:00\"\ndo = \"expect_notice\"\nnotice = \"n1\"\nstate = \"closed\"",
        "at = \"2026-03-02T11:20:00+07:00\"\ndo = \"expect_notice\"\nnotice = \"n1\"\nstate = \"escalated\"",
        1,
    );
    assert_ne!(wrong, original, "the expectation to break is in the file");
    let line = wrong
        .lines()
        .position(|l| l == "state = \"escalated\"")
        .expect("line")
        - 3; // the [[step]] header, 1-based
    let file = tmp.path().join("wrong.toml");
    std::fs::write(&file, &wrong).expect("write");
    let (out, report) = replay_reporting(&file, &[], tmp.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("FAILED"), "{stdout}");
    let failure = stdout
        .lines()
        .find(|l| l.contains("FAILED step"))
        .unwrap_or_else(|| panic!("a failure line in:\n{stdout}"));
    assert!(
        failure.contains(&format!("(line {line})")),
        "names the line {line}: {failure}"
    );
    assert!(
        failure.contains("at 2026-03-02 11:20:00 +07:00"),
        "names the simulated time: {failure}"
    );
    assert!(
        failure.contains("expected notice n1: state escalated"),
        "names the expectation: {failure}"
    );
    assert!(
        failure.contains("found state closed"),
        "says what was found: {failure}"
    );
    let r = report.expect("report written");
    assert_eq!(r["passed"], false);
    assert_eq!(r["expectations"]["failed"], 1);
    let failed: Vec<&Value> = r["expectations"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["at"], "2026-03-02 11:20:00 +07:00");
    assert_eq!(failed[0]["found"], "state closed");
    assert_eq!(failed[0]["line"], line);
    // the other expectations still ran and passed
    assert_eq!(r["expectations"]["passed"], 4);
}

const HEAD: &str = r#"[scenario]
name = "t"
start = "2026-01-01T09:00:00+07:00"

[[party]]
id = "gov"
kind = "authority"
name = "Gov"

[[party]]
id = "app"
kind = "platform"
name = "App"

[[token]]
id = "officer"
party = "gov"
role = "officer"
"#;

const SUBMIT: &str = r#"
[[step]]
at = "2026-01-01T10:00:00+07:00"
do = "submit_notice"
as = "officer"
notice = "n1"
platform = "app"
category = "terrorism"
legal_basis = "Law 1"
explanation = "x"
items = [{ kind = "platform_channel", value = "@c1" }]
"#;

#[test]
fn bad_scenarios_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    // (file, what stderr must say)
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("[scenario\nname = 1".into(), vec!["bad.toml:1:"]),
        (
            format!("{HEAD}{}", SUBMIT.replace("explanation", "explanaton")),
            vec![
                "bad.toml:28:",
                "step 1 (submit_notice)",
                "unknown field `explanaton`",
            ],
        ),
        (
            format!(
                "{HEAD}{}",
                SUBMIT.replace("platform = \"app\"", "platform = \"nope\"")
            ),
            vec!["bad.toml:20:", "unknown party \"nope\""],
        ),
        (
            format!(
                "{HEAD}{}",
                SUBMIT.replace("as = \"officer\"", "as = \"approver\"")
            ),
            vec!["unknown token \"approver\""],
        ),
        (
            format!(
                "{HEAD}{SUBMIT}\n[[step]]\nat = \"2026-01-01T09:30:00+07:00\"\ndo = \"note\"\ntext = \"x\"\n"
            ),
            vec![
                "bad.toml:31:",
                "step 2 (note)",
                "before the step or start before it",
                "time order",
            ],
        ),
        (
            format!("{HEAD}\n[[step]]\nat = \"2026-01-01T10:00:00+07:00\"\ndo = \"teleport\"\n"),
            vec!["unknown action \"teleport\"", "submit_notice"],
        ),
        (
            format!("{HEAD}\n[[step]]\ndo = \"note\"\ntext = \"x\"\n"),
            vec!["step 1", "missing at"],
        ),
        (
            format!("{HEAD}\n[[step]]\nat = \"yesterday\"\ndo = \"note\"\ntext = \"x\"\n"),
            vec!["\"yesterday\" is not an RFC 3339 time"],
        ),
        (
            format!(
                "{HEAD}\n[[step]]\nat = \"2026-01-01T10:00:00+07:00\"\ndo = \"acknowledge\"\nas = \"officer\"\nnotice = \"n9\"\n"
            ),
            vec!["unknown notice \"n9\""],
        ),
        (
            format!(
                "{HEAD}\n[[step]]\nat = \"2026-01-01T10:00:00+07:00\"\ndo = \"expect_order\"\norder = \"o1\"\nstate = \"in_force\"\n"
            ),
            vec!["unknown order \"o1\""],
        ),
        (
            format!(
                "{HEAD}{SUBMIT}\n[[step]]\nat = \"2026-01-01T10:00:00+07:00\"\ndo = \"expect_notice\"\nnotice = \"n1\"\nstate = \"vanished\"\n"
            ),
            vec!["unknown state \"vanished\""],
        ),
        (
            HEAD.replace("role = \"officer\"", "role = \"king\""),
            vec!["token \"officer\"", "unknown role \"king\""],
        ),
        (
            HEAD.replace("kind = \"platform\"", "kind = \"bank\""),
            vec!["bad.toml:10:", "kind \"bank\""],
        ),
        (
            format!("{HEAD}{SUBMIT}refused = \"yes\"\n"),
            vec!["bad.toml:20:", "refused must be an HTTP error status"],
        ),
        (
            format!(
                "{HEAD}\n[[step]]\nat = \"2026-01-01T10:00:00+07:00\"\ndo = \"expect_audit\"\nverifies = true\nrefused = 409\n"
            ),
            vec!["only a request to tapis can be refused"],
        ),
        (format!("{HEAD}extra = 1\n"), vec!["unknown field `extra`"]),
    ];
    for (content, wants) in cases {
        let file = tmp.path().join("bad.toml");
        std::fs::write(&file, &content).expect("write");
        let out = replay(&["bad.toml"], tmp.path());
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "exit 2 for a bad scenario:\n{content}\n---\n{stderr}{}",
            text(&out.stdout)
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        for w in wants {
            assert!(
                stderr.contains(w),
                "error mentions {w:?}:\n{stderr}\nfor:\n{content}"
            );
        }
    }
    let out = replay(&["missing.toml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read the scenario missing.toml"));
}

/// The same driver against a running `tapis serve --simulated-clock`, on
/// every backend: the order scenario, checked through the server's own RPZ
/// primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_against_a_running_server() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().expect("tmp");
        let token = "replay-test-admin-token-0123456789abcdef";
        let mut child = Command::new(BIN)
            .args(["--data-dir"])
            .arg(dir.path())
            .args(["--database-url", &db.url])
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--dns-listen",
                "127.0.0.1:0",
                "--simulated-clock",
                "2026-04-28T09:00:00+07:00",
            ])
            .env_remove("TAPIS_CONFIG")
            .env("TAPIS_BOOTSTRAP_TOKEN", token)
            .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
            .env("TAPIS_LOG", "warn")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tapis serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut base, mut dns) = (None, None);
        while base.is_none() || dns.is_none() {
            let line = lines
                .next()
                .expect("serve prints its addresses")
                .expect("line");
            if let Some(rest) = line.strip_prefix("tapis listening on ") {
                base = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some((_, rest)) = line.split_once(" on udp+tcp ") {
                dns = rest.split_whitespace().next().map(str::to_owned);
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let (base, dns) = (base.expect("url"), dns.expect("dns"));
        let file = scenarios_dir().join("order-expires.toml");
        let (out, report) = tokio::task::spawn_blocking({
            let (file, base, dns, cwd) = (
                file.clone(),
                base.clone(),
                dns.clone(),
                dir.path().to_path_buf(),
            );
            move || {
                replay_reporting(
                    &file,
                    &["--against", &base, "--token", token, "--dns", &dns],
                    &cwd,
                )
            }
        })
        .await
        .expect("join");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{backend:?}: {stdout}\n{}",
            text(&out.stderr)
        );
        let r = report.expect("report written");
        assert_eq!(r["mode"], base);
        assert_eq!(r["expectations"]["failed"], 0);
        assert_eq!(r["expectations"]["passed"], 13);

        // a second run finds the clock past the scenario's start: a clear refusal
        let again = tokio::task::spawn_blocking({
            let (file, base, cwd) = (file.clone(), base.clone(), dir.path().to_path_buf());
            move || {
                replay(
                    &[
                        file.to_str().expect("path"),
                        "--against",
                        &base,
                        "--token",
                        token,
                    ],
                    &cwd,
                )
            }
        })
        .await
        .expect("join");
        assert_eq!(again.status.code(), Some(1));
        assert!(
            text(&again.stdout).contains("after the scenario's start"),
            "{}",
            text(&again.stdout)
        );
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        db.cleanup().await;
    }
}

/// `tapis serve --demo`: the case loaded into a temporary database, the
/// configured data directory untouched, tokens printed, and the demo's
/// directory gone after a graceful stop.
#[test]
fn serve_demo_loads_the_case_on_a_separate_database() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("my-real-data");
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/never-used",
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
        ])
        .env_remove("TAPIS_CONFIG")
        .env("TAPIS_LOG", "warn")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tapis serve --demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let (mut base, mut admin) = (None, None);
    while admin.is_none() {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the demo prints its tokens: {printed:#?}"))
            .expect("line");
        if let Some(rest) = line.trim().strip_prefix("tapis listening on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.trim().strip_prefix("admin ") {
            admin = Some(rest.trim().to_owned());
        }
        printed.push(line);
    }
    let all = printed.join("\n");
    assert!(all.contains("DEMO MODE"), "{all}");
    assert!(all.contains("2017 case is loaded"), "{all}");
    assert!(all.contains(", 0 failed)"), "{all}");
    let demo_dir = all
        .split("temporary database (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .map(PathBuf::from)
        .expect("the demo names its directory");
    assert!(demo_dir.exists());
    let (base, admin) = (base.expect("url"), admin.expect("token"));
    let orders: Value = get_json(&format!("{base}/api/v1/orders"), &admin);
    let list = orders.as_array().expect("orders");
    assert_eq!(list.len(), 1, "{orders}");
    assert_eq!(list[0]["state"], "lifted");
    assert_eq!(list[0]["target_count"], 11);
    let me: Value = get_json(&format!("{base}/api/v1/parties"), &admin);
    assert!(
        me.as_array()
            .expect("parties")
            .iter()
            .any(|p| p["name"].as_str().is_some_and(|n| n.starts_with("DEMO "))),
        "{me}"
    );
    // and it says so to anyone who checks its health
    let health: Value = get_json(&format!("{base}/healthz"), &admin);
    assert_eq!(health["demo"], true, "{health}");
    // neither the data directory nor the configured database was used
    assert!(
        !data.exists(),
        "the demo must not create {}",
        data.display()
    );
    std::thread::spawn(move || for _ in lines {});
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful stop: {status}");
    assert!(!demo_dir.exists(), "the demo's database is deleted on exit");
}

/// GET with a bearer token, from a synchronous test.
fn get_json(url: &str, token: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    })
}

/// `request` reaches any route (for API steps without an action of their
/// own), with names resolved to ids in the path and the body.
#[test]
fn request_steps_reach_any_route() {
    let tmp = tempfile::tempdir().expect("tmp");
    let agent = "\n[[token]]\nid = \"agent\"\nparty = \"app\"\nrole = \"platform_agent\"\n";
    let steps = r#"
[[step]]
at = "2026-01-01T10:05:00+07:00"
do = "request"
as = "agent"
method = "POST"
path = "/api/v1/notices/{notice:n1}/acknowledge"
body = {}

[[step]]
at = "2026-01-01T10:05:00+07:00"
do = "expect_notice"
notice = "n1"
state = "acknowledged"

[[step]]
at = "2026-01-01T10:06:00+07:00"
do = "request"
as = "agent"
method = "GET"
path = "/api/v1/parties/{party:gov}"
refused = 404

[[step]]
at = "2026-01-01T10:07:00+07:00"
do = "request"
as = "officer"
method = "POST"
path = "/api/v1/notices/{notice:n1}/withdraw"
body = { reason = "withdrawn through a raw request" }

[[step]]
at = "2026-01-01T10:07:00+07:00"
do = "expect_notice"
notice = "n1"
state = "withdrawn"
"#;
    let file = tmp.path().join("request.toml");
    std::fs::write(&file, format!("{HEAD}{agent}{SUBMIT}{steps}")).expect("write");
    let out = replay(&["request.toml"], tmp.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");
    assert!(stdout.contains("request refused with 404"), "{stdout}");

    let bad = format!(
        "{HEAD}\n[[step]]\nat = \"2026-01-01T10:00:00+07:00\"\ndo = \"request\"\nas = \"officer\"\nmethod = \"GET\"\npath = \"/api/v1/orders/{{order:nope}}\"\n"
    );
    std::fs::write(&file, bad).expect("write");
    let out = replay(&["request.toml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown order \"nope\""),
        "{}",
        text(&out.stderr)
    );
}
