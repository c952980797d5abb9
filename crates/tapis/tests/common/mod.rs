//! Shared by the tests that run the real `tapis serve`: the test kit
//! (`tapis-testkit`) with this crate's binary.

#![allow(dead_code, unused_imports)]

use std::path::Path;

pub mod attacker;

pub use tapis_testkit::{
    ADMIN, Api, Proc, Server, ServerBuilder, dns, free_port, tool, wait_until, wait_until_async,
};

/// The tapis binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_tapis");

/// `tapis serve` with `config` as its tapis.toml, on a simulated clock
/// starting at `clock` (RFC 3339).
pub fn serve(config: &str, clock: &str) -> Server {
    Server::start(BIN, config, clock)
}

/// A builder for a `tapis serve` of this crate's binary.
pub fn server() -> ServerBuilder {
    Server::builder(BIN)
}

/// The `tapis` CLI on the data directory `data` and the database `url`,
/// run in `data`, kept hermetic: no configuration from the environment or
/// the working directory, and the RPZ DNS server on a port of its own.
pub fn cli(data: &Path, url: &str) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.env("TAPIS_RPZ_DNS_LISTEN", "127.0.0.1:0");
    c.arg("--data-dir").arg(data).arg("--database-url").arg(url);
    c.env_remove("TAPIS_CONFIG")
        .env_remove("TAPIS_BOOTSTRAP_TOKEN")
        .current_dir(data);
    c
}

/// `cmd token create --party <party> --role <role>` (and `--label
/// <label>` if given), run to its end.
pub fn token_create(
    mut cmd: std::process::Command,
    party: &str,
    role: &str,
    label: Option<&str>,
) -> std::process::Output {
    cmd.args(["token", "create", "--party", party, "--role", role]);
    if let Some(label) = label {
        cmd.args(["--label", label]);
    }
    cmd.output().expect("token create")
}

/// A path under this crate's `tests/fixtures`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

use serde_json::{Value, json};

/// The authority's officer and approver and an ISP with its operator: the
/// parties of every blocking test.
pub struct Parties {
    pub authority: String,
    pub officer: String,
    pub approver: String,
    pub isp: String,
    pub isp_token: String,
}

impl Parties {
    pub async fn new(server: &Server) -> Parties {
        let authority = server.authority().await;
        let isp = server.party("isp", "NetCo").await;
        Parties {
            officer: server.token(&authority, "officer").await,
            approver: server.token(&authority, "approver").await,
            isp_token: server.token(&isp, "isp_operator").await,
            authority,
            isp,
        }
    }

    /// The ISP registers its resolvers (`body`: `resolvers`, `notify`,
    /// `allow_transfer_from`); returns the TSIG key name and secret.
    pub async fn register(&self, server: &Server, body: Value) -> (String, String) {
        let (s, r) = server
            .put(
                &format!("/api/v1/parties/{}/resolvers", self.isp),
                &self.isp_token,
                body,
            )
            .await;
        assert_eq!(s, 200, "{r}");
        (
            r["tsig_key_name"].as_str().expect("key").to_owned(),
            r["tsig_secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// Proposes `order` as the officer and approves it: it must be
    /// scheduled. Returns its id.
    pub async fn approve(&self, server: &Server, order: Value) -> String {
        let (s, o) = server.post("/api/v1/orders", &self.officer, order).await;
        assert_eq!(s, 201, "{o}");
        let id = o["id"].as_str().expect("id").to_owned();
        let (s, o) = server
            .post(
                &format!("/api/v1/orders/{id}/approve"),
                &self.approver,
                json!({}),
            )
            .await;
        assert_eq!(
            (s.as_u16(), o["state"].as_str()),
            (200, Some("scheduled")),
            "{o}"
        );
        id
    }

    /// Lifts order `id` as the officer.
    pub async fn lift(&self, server: &Server, id: &str) {
        let (s, o) = server
            .post(
                &format!("/api/v1/orders/{id}/lift"),
                &self.officer,
                json!({"reason": "content removed"}),
            )
            .await;
        assert_eq!(
            (s.as_u16(), o["state"].as_str()),
            (200, Some("lifted")),
            "{o}"
        );
    }
}

/// A gambling order for `name` and its subdomains with `action`.
pub fn gambling_order(
    name: &str,
    action: &str,
    effective: &str,
    expires: &str,
    review: &str,
) -> Value {
    json!({
        "targets": [{"name": name, "include_subdomains": true}], "action": action, "category": "gambling",
        "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
        "effective_at": effective, "expires_at": expires, "review_at": review})
}

/// The zone a test resolver serves itself: every name under `example.`
/// has one A record, 192.0.2.1.
pub const EXAMPLE_ZONE: &str = "$TTL 60\n@ SOA ns.example. host.example. 1 60 60 600 60\n@ NS ns.example.\nns A 192.0.2.53\n@ A 192.0.2.1\n* A 192.0.2.1\n";

/// An Unbound configuration for the tests, in directory `d`, listening on
/// 127.0.0.1 port `port`: the `server:` section (in the foreground, no
/// chroot or syslog, queries from 127.0.0.0/8, RPZ through `respip`), then
/// `sections` as they are (e.g. `remote-control:`), then `example.` served
/// to itself from `{d}/example.zone` (see [`EXAMPLE_ZONE`]), then an `rpz:`
/// section for `rpz.tapis.` with the lines `rpz`.
pub fn unbound_conf(d: &str, port: u16, sections: &str, rpz: &str) -> String {
    format!(
        r#"server:
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    module-config: "respip iterator"
    do-not-query-localhost: no
{sections}auth-zone:
    name: "example."
    zonefile: "{d}/example.zone"
    for-upstream: yes
    for-downstream: no
    fallback-enabled: no
rpz:
    name: "rpz.tapis."
{rpz}"#
    )
}

/// A platform `name` with the domain `domain` whose webhook points at a
/// port nothing listens on, so every delivery to it fails; returns its id.
pub async fn platform_with_dead_webhook(server: &Server, name: &str, domain: &str) -> String {
    let body = json!({"kind": "platform", "name": name, "domains": [domain]});
    let platform = server.party_with(ADMIN, body).await;
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    let (s, v) = server
        .put(
            &format!("/api/v1/parties/{platform}/channel"),
            ADMIN,
            json!({"webhook_url": hook}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    platform
}
