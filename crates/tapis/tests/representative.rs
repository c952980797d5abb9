//! Issue 14's "a platform whose webhook is dead has its representative
//! told, on the record", end to end with the real binary on both
//! backends: the platform sets its legal representative, the code reaches
//! a real SMTP server (`aiosmtpd`) and comes back through the API; the
//! authority may not set it (403), another platform does not see it
//! (404); a notice whose webhook refuses every attempt is dead-lettered
//! and copied to the representative by email (summary and the signed
//! notice attached), with `representative.copied` on its timeline.

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

async fn dead_webhook_tells_the_representative(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let maildir = dir.path().join("mail");
    let smtp_port = free_port();
    let _smtp = Proc(
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
        .config(&format!("[channel]\nmax_attempts = 3\nbackoff_base_secs = 10\nbackoff_cap_secs = 60\n[smtp]\nurl = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"tapis <tapis@ministry.example>\"\n"))
        .start();
    let authority = server.authority().await;
    let officer = server.token(&authority, "officer").await;
    // the webhook refuses every connection; the platform has no email of
    // its own, so only its representative can be told
    let platform = platform_with_dead_webhook(&server, "Messenger", "messenger.example").await;
    let agent = server.token(&platform, "platform_agent").await;
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

    let (s, v) = server.put(&legal, &agent, rep()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "unverified");
    let (s, v) = server.get(&contacts, &other_agent).await;
    assert_eq!(s, 404, "{v}");
    let seen = server.get_ok(&contacts, &officer).await;
    assert_eq!(seen[0]["contact"]["email"], "legal-rep@messenger.example");
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

    // a notice the webhook never takes: retried, dead-lettered, copied
    let (st, n) = server
        .post(
            "/api/v1/notices",
            &officer,
            json!({
                "platform_id": platform, "category": "terrorism", "urgency": "urgent",
                "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
                "explanation": "Channel distributes terrorist propaganda",
                "items": [{"kind": "platform_channel", "value": "@channel_0", "native_id": "-1000"}],
            }),
        )
        .await;
    assert_eq!(st, 201, "{n}");
    let id = n["id"].as_str().expect("id").to_owned();
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
