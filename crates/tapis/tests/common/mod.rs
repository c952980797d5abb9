//! Shared by the tests that run the real `tapis serve`: start it on a
//! simulated clock on free ports, call its API, make parties and tokens.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_tapis");
pub const ADMIN: &str = "e2e-admin-token-0123456789abcdef";

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Debian tool's path, or a panic that says how to get it.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: run .ci/run (it installs the Debian packages the tests drive)"
    );
}

/// A port free for both UDP and TCP on 127.0.0.1.
pub fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let port = t.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `tapis serve`.
pub struct Server {
    pub base: String,
    pub dns_port: u16,
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Server {
    /// Start `tapis serve` with `config` as its tapis.toml, on a simulated
    /// clock starting at `clock` (RFC 3339).
    pub fn start(config: &str, clock: &str) -> Server {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("tapis.toml"), config).expect("config");
        let dns_port = free_port();
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--dns-listen",
                &format!("127.0.0.1:{dns_port}"),
                "--simulated-clock",
                clock,
            ])
            .env("TAPIS_BOOTSTRAP_TOKEN", ADMIN)
            .env("TAPIS_LOG", "warn")
            .env_remove("TAPIS_CONFIG")
            .env_remove("TAPIS_RPZ_DNS_LISTEN")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tapis");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("tapis printed its address")
                .expect("line");
            if let Some(rest) = line.strip_prefix("tapis listening on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server {
            base,
            dns_port,
            dir,
            _proc: Proc(child),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let s = resp.status().as_u16();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// The bootstrap authority's party id.
    pub async fn authority(&self) -> String {
        let (_, me) = self.get("/api/v1/whoami", ADMIN).await;
        me["party_id"].as_str().expect("id").to_owned()
    }

    /// A new party of `kind`; returns its id.
    pub async fn party(&self, kind: &str, name: &str) -> String {
        let (s, p) = self
            .post(
                "/api/v1/parties",
                ADMIN,
                json!({"kind": kind, "name": name}),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        p["id"].as_str().expect("id").to_owned()
    }

    /// A token for `party` with `role`, held by the person "`role` test":
    /// the admin creates the authority's own; another party's is an
    /// invitation the party redeems (the authority never holds it).
    pub async fn token(&self, party: &str, role: &str) -> String {
        let body = json!({"role": role, "label": format!("{role} test"), "person": format!("{role} test")});
        let (s, v) = if party == self.authority().await {
            self.post(&format!("/api/v1/parties/{party}/tokens"), ADMIN, body)
                .await
        } else {
            let (s, inv) = self
                .post(
                    &format!("/api/v1/parties/{party}/invitations"),
                    ADMIN,
                    json!({"role": role}),
                )
                .await;
            assert_eq!(s, 201, "{inv}");
            let code = inv["code"].as_str().expect("code");
            self.post(&format!("/api/v1/invitations/{code}/accept"), ADMIN, body)
                .await
        };
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().expect("token").to_owned()
    }

    /// Move the simulated clock.
    pub async fn advance(&self, seconds: u64) {
        let (s, v) = self
            .post(
                "/api/v1/admin/clock/advance",
                ADMIN,
                json!({"seconds": seconds}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
}
