//! The one way tests start the real `tapis serve`.
//!
//! A server gets a data directory (a fresh temporary one unless the test
//! keeps one across restarts), an HTTP port chosen by the system, an RPZ
//! primary on a free port, the bootstrap admin token [`ADMIN`] and,
//! usually, a simulated clock that the test moves over HTTP. It is killed
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Api, Proc, free_port, wait_until};

/// The bootstrap admin token every kit server starts with.
pub const ADMIN: &str = "tapis-testkit-admin-token-0123456789abcdef";

/// How a `tapis serve` is started; [`ServerBuilder::start`] starts it.
/// Clone it to restart a server on the same data directory.
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    bin: PathBuf,
    data_dir: Option<PathBuf>,
    config: Option<String>,
    clock: Option<String>,
    database_url: Option<String>,
    env: Vec<(String, String)>,
}

impl ServerBuilder {
    /// `bin` is the tapis binary (`env!("CARGO_BIN_EXE_tapis")` in the
    /// tapis crate's tests).
    pub fn new(bin: impl AsRef<Path>) -> ServerBuilder {
        ServerBuilder {
            bin: bin.as_ref().to_owned(),
            data_dir: None,
            config: None,
            clock: None,
            database_url: None,
            env: Vec::new(),
        }
    }

    /// Use (and keep) this data directory instead of a fresh temporary
    /// one: a restarted server finds its database and keys there.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Write `toml` as the data directory's `tapis.toml` before starting.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// Run on a simulated clock starting at `rfc3339` (a restarted
    /// simulation resumes where it was, never before this).
    pub fn simulated_clock(mut self, rfc3339: &str) -> Self {
        self.clock = Some(rfc3339.to_owned());
        self
    }

    /// Use this database instead of the data directory's SQLite file.
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Set an environment variable for the server.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command line, for a test that wants to watch it fail (see
    /// [`ServerBuilder::run_to_exit`]); `data_dir` is where it runs.
    pub fn command(&self, data_dir: &Path, dns_port: u16) -> Command {
        if let Some(toml) = &self.config {
            std::fs::write(data_dir.join("tapis.toml"), toml).expect("write tapis.toml");
        }
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir").arg(data_dir);
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dns-listen",
            &format!("127.0.0.1:{dns_port}"),
        ]);
        if let Some(clock) = &self.clock {
            cmd.args(["--simulated-clock", clock]);
        }
        cmd.env("TAPIS_BOOTSTRAP_TOKEN", ADMIN)
            .env("TAPIS_LOG", "warn")
            .env_remove("TAPIS_CONFIG")
            .env_remove("TAPIS_RPZ_DNS_LISTEN")
            .current_dir(data_dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the server and waits until it says where it listens.
    pub fn start(self) -> Server {
        let (tmp, dir) = match &self.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir().expect("temporary data directory");
                let d = t.path().to_owned();
                (Some(t), d)
            }
        };
        let dns_port = free_port();
        let (proc, base) =
            Proc::spawn_reading(&mut self.command(&dir, dns_port), "tapis serve", |line| {
                line.strip_prefix("tapis listening on ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            });
        Server {
            api: Api::new(base),
            dns_port,
            data_dir: dir,
            _tmp: tmp,
            proc,
        }
    }

    /// Runs a server expected to refuse to start: waits (up to `within`)
    /// for it to exit; returns its status and standard error.
    pub fn run_to_exit(self, within: Duration) -> (ExitStatus, String) {
        let tmp = tempfile::tempdir().expect("temporary data directory");
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().to_owned());
        let child = self
            .command(&dir, free_port())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tapis");
        let mut proc = Proc(child);
        let status = wait_until(within, "tapis serve to exit", || {
            proc.0.try_wait().expect("wait for tapis serve")
        });
        let mut err = String::new();
        std::io::Read::read_to_string(&mut proc.0.stderr.take().expect("stderr"), &mut err)
            .expect("read stderr");
        (status, err)
    }
}

/// A running `tapis serve`; its API is reachable through `Deref` to
/// [`Api`] (`server.get(path, token)`, …).
pub struct Server {
    pub api: Api,
    /// The RPZ primary's port (UDP and TCP on 127.0.0.1).
    pub dns_port: u16,
    /// Where the server keeps its database, keys and `tapis.toml`.
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    proc: Proc,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    /// How tests start a server: `bin` with `config` as its tapis.toml (may
    /// be empty), on a simulated clock from `clock` (RFC 3339).
    pub fn start(bin: impl AsRef<Path>, config: &str, clock: &str) -> Server {
        Server::builder(bin)
            .config(config)
            .simulated_clock(clock)
            .start()
    }

    pub fn builder(bin: impl AsRef<Path>) -> ServerBuilder {
        ServerBuilder::new(bin)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.api.base
    }

    /// The server's process id (to freeze it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// SIGKILL, as a crash would: no graceful shutdown.
    pub fn kill9(self) {
        drop(self);
    }

    /// Panics if the server has exited.
    pub fn assert_running(&mut self) {
        self.proc.assert_running("tapis serve", String::new);
    }

    /// The bootstrap authority's party id.
    pub async fn authority(&self) -> String {
        self.api.party_of(ADMIN).await
    }

    /// A new party of `kind`; returns its id.
    pub async fn party(&self, kind: &str, name: &str) -> String {
        self.api.party(ADMIN, kind, name).await
    }

    /// A token for `party` with `role`; returns its secret.
    pub async fn token(&self, party: &str, role: &str) -> String {
        self.api.token(ADMIN, party, role).await
    }

    /// Moves the simulated clock; the server fires what fell due before
    /// it answers.
    pub async fn advance(&self, seconds: i64) {
        let (s, v) = self
            .api
            .post(
                "/api/v1/admin/clock/advance",
                ADMIN,
                json!({"seconds": seconds}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// `GET /api/v1/admin/clock`: the simulated time and the work due.
    pub async fn clock(&self) -> Value {
        self.api.get_ok("/api/v1/admin/clock", ADMIN).await
    }

    /// Waits until the server is quiet: no ladder timer, order job or
    /// outbound message is due or being sent (`due_now == 0`). Only after
    /// this may a test assert that something did *not* happen.
    pub async fn wait_quiet(&self, within: Duration) -> Value {
        crate::wait_until_async(within, "the server to be quiet (due_now = 0)", || async {
            let c = self.clock().await;
            if c["work"]["due_now"] == 0 {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        })
        .await
    }
}
