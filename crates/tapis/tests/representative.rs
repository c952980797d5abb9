//! Issue 14's "a platform whose webhook is dead has its representative
//! told, on the record", end to end with the real binary on both
//! backends: the platform sets its legal representative, the code reaches
//! a real SMTP server (`aiosmtpd`) and comes back through the API; the
//! authority may not set it (403), another platform does not see it
//! (404); a notice whose webhook refuses every attempt is dead-lettered
//! and copied to the representative by email (summary and the signed
//! notice attached), with `representative.copied` on its timeline. When
//! the webhook's circuit breaker opens, the notices waiting on it are
//! copied at once, each once: not again when the breaker reopens, nor when
//! they are dead-lettered later.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tapis_store::testing::{TestDb, backends};

const WITHIN: Duration = Duration::from_secs(20);

/// The messages the SMTP server has written, oldest first.
fn mails(maildir: &Path) -> Vec<String> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(maildir.join("new"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    let t = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (t, e.path())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|(_, f)| std::fs::read_to_string(f).expect("mail"))
        .collect()
}

/// Quoted-printable soft breaks undone.
fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

fn rep() -> Value {
    json!({
        "name": "PT Perwakilan Messenger", "kind": "office",
        "address": "Jl. Jend. Sudirman Kav. 52, Jakarta 12190",
        "email": "legal-rep@messenger.example", "phone": "+62 21 5550 100",
        "hours": "Mon-Fri 09:00-17:00", "time_zone": "Asia/Jakarta",
    })
}

/// A platform whose webhook refuses every connection and whose legal
/// representative is verified (its code read from a real SMTP server),
/// on `tapis serve` with `channel` as its `[channel]` settings.
struct Represented {
    db: TestDb,
    _dir: tempfile::TempDir,
    _smtp: Proc,
    maildir: PathBuf,
    server: Server,
    platform: String,
    agent: String,
    officer: String,
}

async fn represented(backend: tapis_store::Backend, channel: &str) -> Represented {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let maildir = dir.path().join("mail");
    let smtp_port = free_port();
    let smtp = Proc(
        Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{smtp_port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .spawn()
            .expect("python3 -m aiosmtpd (scripts/setup installs aiosmtpd)"),
    );
    wait_until(Duration::from_secs(10), "the SMTP server to start", || {
        std::net::TcpStream::connect(("127.0.0.1", smtp_port))
    });
    let server = server()
        .data_dir(dir.path())
        .database_url(&db.url)
        .env("TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS", "true")
        .simulated_clock("2017-06-11T09:00:00+07:00")
        .config(&format!("[channel]\n{channel}\n[smtp]\nurl = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"tapis <tapis@ministry.example>\"\n"))
        .start();
    let authority = server.authority().await;
    let officer = server.token(&authority, "officer").await;
    // the webhook refuses every connection; the platform has no email of
    // its own, so only its representative can be told
    let platform = platform_with_dead_webhook(&server, "Messenger", "messenger.example").await;
    let agent = server.token(&platform, "platform_agent").await;
    let legal = format!("/api/v1/platforms/{platform}/contacts/legal");
    let (s, v) = server.put(&legal, &agent, rep()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "unverified");
    let missing = server
        .get_ok("/api/v1/representatives/missing", &officer)
        .await;
    assert!(missing.to_string().contains(&platform), "{missing}");

    // the code goes to the representative's address by real SMTP
    let (s, v) = server
        .post(&format!("{legal}/code"), &agent, json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let mail = wait_until(WITHIN, "the code's email", || {
        mails(&maildir).into_iter().next()
    });
    assert!(mail.contains("legal-rep@messenger.example"), "{mail}");
    let text = unfold(&mail);
    let code: String = text
        .split("Verification code: ")
        .nth(1)
        .expect("a code in the mail")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 8, "{text}");
    let (s, v) = server
        .post(&format!("{legal}/verify"), &agent, json!({"code": "x"}))
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = server
        .post(&format!("{legal}/verify"), &agent, json!({"code": code}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "verified");
    let missing = server
        .get_ok("/api/v1/representatives/missing", &officer)
        .await;
    assert!(!missing.to_string().contains(&platform), "{missing}");
    Represented {
        db,
        _dir: dir,
        _smtp: smtp,
        maildir,
        server,
        platform,
        agent,
        officer,
    }
}

/// A notice to `platform` from `officer`; its id.
async fn notice(server: &Server, officer: &str, platform: &str, channel: &str) -> String {
    let (st, n) = server
        .post(
            "/api/v1/notices",
            officer,
            json!({
                "platform_id": platform, "category": "terrorism", "urgency": "urgent",
                "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
                "explanation": "Channel distributes terrorist propaganda",
                "items": [{"kind": "platform_channel", "value": channel, "native_id": "-1000"}],
            }),
        )
        .await;
    assert_eq!(st, 201, "{n}");
    n["id"].as_str().expect("id").to_owned()
}

async fn dead_webhook_tells_the_representative(backend: tapis_store::Backend) {
    let Represented {
        db,
        _dir,
        _smtp,
        maildir,
        server,
        platform,
        agent,
        officer,
    } = represented(
        backend,
        "max_attempts = 3\nbackoff_base_secs = 10\nbackoff_cap_secs = 60",
    )
    .await;
    let other = server
        .party_with(ADMIN, json!({"kind": "platform", "name": "Other"}))
        .await;
    let other_agent = server.token(&other, "platform_agent").await;
    let contacts = format!("/api/v1/platforms/{platform}/contacts");
    let legal = format!("{contacts}/legal");

    // the authority cannot set it; another platform does not see it
    let (s, v) = server.put(&legal, ADMIN, rep()).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = server.put(&legal, &officer, rep()).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = server.put(&legal, &other_agent, rep()).await;
    assert_eq!(s, 404, "{v}");
    // bad input: a precise 422
    let mut bad = rep();
    bad["time_zone"] = json!("Mars/Olympus Mons");
    let (s, v) = server.put(&legal, &agent, bad).await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("time_zone"), "{v}");
    let (s, v) = server.put(&format!("{contacts}/ceo"), &agent, rep()).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = server.get(&contacts, &other_agent).await;
    assert_eq!(s, 404, "{v}");
    let seen = server.get_ok(&contacts, &officer).await;
    assert_eq!(seen[0]["contact"]["email"], "legal-rep@messenger.example");

    // a notice the webhook never takes: retried, dead-lettered, copied
    let id = notice(&server, &officer, &platform, "@channel_0").await;
    let mut copy = None;
    for _ in 0..10 {
        server.advance(60).await;
        let all = mails(&maildir);
        if all.len() >= 2 {
            copy = Some(all[1].clone());
            break;
        }
    }
    let copy = match copy {
        Some(c) => c,
        None => wait_until(WITHIN, "the representative's copy", || {
            mails(&maildir).get(1).cloned()
        }),
    };
    let text = unfold(&copy);
    assert!(text.contains("legal-rep@messenger.example"), "{text}");
    assert!(text.contains("copy to the representative"), "{text}");
    assert!(text.contains("could not deliver"), "{text}");
    assert!(text.contains(&format!("notice-{id}.signed.json")), "{text}");
    assert!(text.contains("Law 11/2008 art. 40"), "{text}");

    // on the record: the dead letter, then the copy, on the notice's timeline
    let timeline = server
        .get_ok(&format!("/api/v1/notices/{id}/timeline"), &officer)
        .await;
    let actions: Vec<&str> = timeline
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    let dead = actions.iter().position(|a| *a == "delivery.dead_lettered");
    let copied = actions.iter().position(|a| *a == "representative.copied");
    assert!(dead.is_some() && copied > dead, "{backend:?}: {actions:?}");
    let event = timeline
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["action"] == "representative.copied")
        .expect("copied");
    assert!(
        !event.to_string().contains("legal-rep@"),
        "the record names the contact by digest: {event}"
    );
    // the copy's own delivery is on the notice's deliveries too
    wait_until_async(WITHIN, "the copy delivered", || async {
        let d = server
            .get_ok(&format!("/api/v1/notices/{id}/deliveries"), &officer)
            .await;
        let ok = d
            .as_array()
            .expect("list")
            .iter()
            .any(|m| m["event_type"] == "representative.copied" && m["state"] == "delivered");
        if ok { Ok(()) } else { Err(d.to_string()) }
    })
    .await;
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_whose_webhook_is_dead_has_its_representative_told_on_the_record() {
    for backend in backends() {
        dead_webhook_tells_the_representative(backend).await;
    }
}

/// The `representative.copied` events on a notice's timeline, with their cause.
async fn copies_on_record(server: &Server, officer: &str, id: &str) -> Vec<(usize, String)> {
    let timeline = server
        .get_ok(&format!("/api/v1/notices/{id}/timeline"), officer)
        .await;
    timeline
        .as_array()
        .expect("events")
        .iter()
        .enumerate()
        .filter(|(_, e)| e["action"] == "representative.copied")
        .map(|(i, e)| {
            let cause = e["after"]["cause"]
                .as_str()
                .or(e["data"]["cause"].as_str())
                .unwrap_or_else(|| panic!("a cause on {e}"))
                .to_owned();
            (i, cause)
        })
        .collect()
}

async fn open_breaker_tells_the_representative(backend: tapis_store::Backend) {
    // the breaker opens after two failures in a row; a message is
    // dead-lettered only after six attempts
    let r = represented(
        backend,
        "max_attempts = 6\nbackoff_base_secs = 10\nbackoff_cap_secs = 60\nbreaker_failures = 2\nbreaker_open_secs = 5\nbreaker_max_open_secs = 20",
    )
    .await;
    let (server, officer) = (&r.server, r.officer.as_str());
    let ids = [
        notice(server, officer, &r.platform, "@channel_1").await,
        notice(server, officer, &r.platform, "@channel_2").await,
    ];
    // both wait on the webhook when its breaker opens: each is copied once
    let copies = wait_until(WITHIN, "the representative's two copies", || {
        let all = mails(&r.maildir);
        (all.len() >= 3).then(|| all[1..].to_vec())
    });
    for id in &ids {
        let to_id: Vec<&String> = copies.iter().filter(|m| m.contains(id.as_str())).collect();
        assert_eq!(to_id.len(), 1, "{backend:?}: one copy of {id}");
        let text = unfold(to_id[0]);
        assert!(text.contains("legal-rep@messenger.example"), "{text}");
        assert!(text.contains("copy to the representative"), "{text}");
        assert!(text.contains("unreachable"), "{text}");
        assert!(text.contains(&format!("notice-{id}.signed.json")), "{text}");
    }
    // the breaker probes, fails and reopens; the messages run out of
    // attempts and are dead-lettered: no further copy
    // (the open breaker lets one probe through at a time, so the two
    // messages' attempts need not run in step: advance until both are out)
    let mut dead = false;
    for _ in 0..30 {
        server.advance(60).await;
        let mut all = true;
        for id in &ids {
            let d = server
                .get_ok(&format!("/api/v1/notices/{id}/deliveries"), officer)
                .await;
            all &= d
                .as_array()
                .expect("list")
                .iter()
                .any(|m| m["state"] == "dead" && m["channel"] == "webhook");
        }
        if all {
            dead = true;
            break;
        }
    }
    assert!(dead, "{backend:?}: both notices were dead-lettered");
    wait_until_async(WITHIN, "both notices dead-lettered", || async {
        let mut all = true;
        for id in &ids {
            let d = server
                .get_ok(&format!("/api/v1/notices/{id}/deliveries"), officer)
                .await;
            all &= d
                .as_array()
                .expect("list")
                .iter()
                .any(|m| m["state"] == "dead" && m["channel"] == "webhook");
        }
        if all { Ok(()) } else { Err("not yet") }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        mails(&r.maildir).len(),
        3,
        "{backend:?}: the code and one copy of each notice, nothing more"
    );
    // on the record: one copy per notice, for the open breaker, before
    // the dead letter
    for id in &ids {
        let copied = copies_on_record(server, officer, id).await;
        assert_eq!(
            copied.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>(),
            vec!["unreachable"],
            "{backend:?}: {id}"
        );
        let timeline = server
            .get_ok(&format!("/api/v1/notices/{id}/timeline"), officer)
            .await;
        let dead = timeline
            .as_array()
            .expect("events")
            .iter()
            .position(|e| e["action"] == "delivery.dead_lettered");
        assert!(dead > Some(copied[0].0), "{backend:?}: {timeline}");
    }
    let _ = &r.agent;
    drop(r.server);
    r.db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_breaker_copies_the_waiting_notices_to_the_representative_once() {
    for backend in backends() {
        open_breaker_tells_the_representative(backend).await;
    }
}
