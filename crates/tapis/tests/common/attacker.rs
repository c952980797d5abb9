//! What the tests that play an attacker on the database share: `tapis
//! serve` on a given database with its address read from stdout, the CLI
//! run to its end, a JSON call, and a consistent rewrite of the chain.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{Value, json};
use tapis_core::audit::{EventBody, GENESIS};

use super::{Proc, cli as tapis};

/// `tapis serve` on the data directory and database given, with extra
/// environment; returns the process and its base URL.
pub fn serve_on(data: &Path, url: &str, env: &[(&str, &str)]) -> (Proc, String) {
    let mut cmd = tapis(data, url);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TAPIS_LOG", "warn")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start tapis serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("address").expect("line");
        if let Some(rest) = line.strip_prefix("tapis listening on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), base)
}

/// The CLI on `data` and `url` with `args`, run to its end.
pub fn run(data: &Path, url: &str, args: &[&str]) -> Output {
    tapis(data, url).args(args).output().expect("run tapis")
}

/// Stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A token of `party` with `role`, made by the CLI.
pub fn token(data: &Path, url: &str, party: &str, role: &str) -> String {
    let out = super::token_create(tapis(data, url), party, role, Some(role));
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// A JSON call (POST when `body` is given) with a bearer token.
pub async fn call(base: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let req = match body {
        Some(b) => http.post(format!("{base}{path}")).json(&b),
        None => http.get(format!("{base}{path}")),
    };
    let resp = req.bearer_auth(token).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// SQL text literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn hex_of(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The statements that give event `target` the content `after` and
/// recompute the hash of it and of every event after it: a rewrite
/// `tapis audit verify` cannot see.
pub fn rewrite_chain_sql(
    events: &[tapis_store::AuditEvent],
    target: i64,
    new_after: &Value,
) -> String {
    let mut prev = GENESIS;
    let mut sql = String::new();
    for e in events {
        let after = if e.seq == target {
            new_after.clone()
        } else {
            e.after.clone()
        };
        let body = EventBody {
            seq: e.seq,
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject_type: e.subject_type.clone(),
            subject_id: e.subject_id.clone(),
            before: e.before.clone(),
            after: after.clone(),
        };
        let hash = body.chain_hash(&prev).expect("hash");
        if e.seq >= target {
            sql.push_str(&format!(
                "UPDATE audit_events SET after = {}, prev_hash = {}, hash = {} WHERE seq = {};\n",
                lit(&tapis_core::canonical::to_string(&after).expect("json")),
                lit(&hex_of(&prev)),
                lit(&hex_of(&hash)),
                e.seq
            ));
        }
        prev = hash;
    }
    sql
}

/// A platform's notice, submitted by an officer and acknowledged by the
/// platform's agent: the tokens, the notice and the acknowledgement (with
/// its signed receipt).
pub struct AckedNotice {
    pub admin: String,
    pub officer: String,
    pub agent: String,
    pub notice: Value,
    pub ack: Value,
}

/// Make an [`AckedNotice`] on the server at `base` (data directory `data`,
/// database `url`).
pub async fn acked_notice(data: &Path, url: &str, base: &str) -> AckedNotice {
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .expect("admin token")
        .trim()
        .to_owned();
    let (_, me) = call(base, "/api/v1/whoami", &admin, None).await;
    let authority = me["party_id"].as_str().expect("party").to_owned();
    let (s, p) = call(
        base,
        "/api/v1/parties",
        &admin,
        Some(json!({"kind": "platform", "name": "Messenger", "domains": ["messenger.example"]})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let officer = token(data, url, &authority, "officer");
    let agent = token(data, url, "Messenger", "platform_agent");
    let (s, n) = call(
        base,
        "/api/v1/notices",
        &officer,
        Some(json!({
            "platform_id": p["id"], "category": "terrorism", "urgency": "urgent",
            "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content must be removed."},
            "explanation": "Channel distributes terrorist propaganda",
            "items": [{"kind": "platform_channel", "value": "@channel_1", "native_id": "-1001"},
                      {"kind": "platform_channel", "value": "@channel_2", "native_id": "-1002"}],
        })),
    )
    .await;
    assert_eq!(s, 201, "{n}");
    let id = n["id"].as_str().expect("id");
    let (s, ack) = call(
        base,
        &format!("/api/v1/notices/{id}/acknowledge"),
        &agent,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{ack}");
    AckedNotice {
        admin,
        officer,
        agent,
        notice: n,
        ack,
    }
}

impl AckedNotice {
    /// The platform decides the notice's first item (`removed`); returns
    /// the answer, with its signed `receipt`.
    pub async fn decide_first_item(&self, base: &str) -> Value {
        let id = self.notice["id"].as_str().expect("id");
        let item = self.notice["items"][0]["id"].as_str().expect("item");
        let (s, dec) = call(
            base,
            &format!("/api/v1/notices/{id}/items/{item}/decision"),
            &self.agent,
            Some(json!({"decision": "removed"})),
        )
        .await;
        assert_eq!(s, 200, "{dec}");
        dec
    }
}
