//! `tapis replay`: run a scenario (parties, tokens, a timeline of actions
//! and expectations) on a simulated clock, print the timeline and a
//! summary, write a JSON report, and fail if any expectation fails.
//!
//! By default the replay starts tapis in-process on a fresh SQLite
//! database in a temporary directory (HTTP and the RPZ primary on
//! 127.0.0.1, ephemeral ports), with an SMTP sink for the email fallback;
//! `--against URL` drives a running server instead. Either way the same
//! [`driver`] talks to tapis only over HTTP and DNS.

pub mod driver;
pub mod report;
pub mod scenario;
pub mod sinks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};

use crate::cli::print_line;
use crate::config::Settings;
use driver::{Driver, Target};
use report::{report_json, summary};
use scenario::Scenario;

/// `tapis replay`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The scenario file (TOML).
    pub file: PathBuf,
    /// tapis's config file (TOML; default ./tapis.toml if present): only
    /// its log settings are used, as the replay's server starts on fresh
    /// settings of its own.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Drive a running server instead (started with --simulated-clock at
    /// the scenario's start, on a fresh database, with [channel]
    /// allow_private_targets = true).
    #[arg(long, value_name = "URL")]
    pub against: Option<String>,
    /// That server's admin token.
    #[arg(long, env = "TAPIS_REPLAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// That server's RPZ primary (default: its host, port 5300).
    #[arg(long, value_name = "ADDR")]
    pub dns: Option<SocketAddr>,
    /// Run the SMTP sink here (match the server's smtp.url) so email
    /// expectations can be checked with --against.
    #[arg(long, value_name = "ADDR")]
    pub smtp_listen: Option<SocketAddr>,
    /// Write a machine-readable report (JSON) here.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Print only the summary, not the timeline.
    #[arg(long)]
    pub quiet: bool,
}

/// Read and check a scenario file.
pub fn load(path: &Path) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the scenario {}", path.display()))?;
    Scenario::parse(&path.display().to_string(), &text).map_err(|e| anyhow!("{e}"))
}

/// Settings for an in-process server on a fresh database in `dir`, running
/// `sc`'s SLA preset, sending email to `smtp`.
pub fn embedded_settings(sc: &Scenario, dir: &Path, smtp: SocketAddr) -> Settings {
    let mut s = Settings {
        data_dir: dir.to_path_buf(),
        database_url: String::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    };
    s.rpz.dns_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    s.channel.allow_private_targets = true;
    s.compliance.probe_interval_secs = 0;
    s.sla.preset = sc.meta.sla.clone();
    s.smtp.url = format!("smtp://{smtp}");
    if let Some(a) = sc.parties.iter().find(|p| p.kind == "authority") {
        s.authority_name = a.name.clone();
    }
    s
}

/// Start tapis in-process on `settings`, its simulated clock at the
/// scenario's start, with `admin` as its first admin token.
pub async fn start_in_process(
    settings: &Settings,
    sc: &Scenario,
    admin: &str,
    demo: bool,
) -> anyhow::Result<crate::server::Running> {
    crate::server::start(
        settings,
        crate::server::StartOptions {
            bootstrap_token: Some(admin.to_owned()),
            simulated_clock: Some(sc.start),
            demo,
        },
    )
    .await
}

/// A fresh admin secret for an in-process server.
pub fn new_admin_secret() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    format!("replay-{}", hex::encode(b))
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let sc = load(&args.file)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let print = !args.quiet;
    if print {
        print_line(&format!("== {} ({})", sc.meta.name, args.file.display()));
        if !sc.meta.description.trim().is_empty() {
            for l in sc.meta.description.trim().lines() {
                print_line(&format!("   {l}"));
            }
        }
        if let Some(src) = &sc.meta.source {
            print_line(&format!("   source: {src}"));
        }
    }
    let (outcome, mode) = match &args.against {
        None => {
            let smtp = sinks::SmtpSink::start(stop_rx.clone()).await?;
            let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
            let settings = embedded_settings(&sc, dir.path(), smtp.addr);
            let admin = new_admin_secret();
            let running = start_in_process(&settings, &sc, &admin, false).await?;
            if print {
                print_line(&format!(
                    "   tapis in-process on http://{} (RPZ primary {}), fresh SQLite in {}, simulated clock from {}, SLA policy {}",
                    running.http,
                    running.dns,
                    dir.path().display(),
                    sc.show(sc.start),
                    sc.meta.sla
                ));
            }
            let target = Target::in_process(&running, admin, settings.rpz.zone_name.clone(), smtp)?;
            let outcome = Driver::new(&sc, target, print).run().await;
            running.stop().await?;
            (outcome, "embedded".to_owned())
        }
        Some(url) => {
            let token = args.token.clone().ok_or_else(|| {
                anyhow!(
                    "--against needs --token (an admin token of that server), or TAPIS_REPLAY_TOKEN"
                )
            })?;
            let smtp = match args.smtp_listen {
                Some(addr) => Some(sinks::SmtpSink::start_on(addr, stop_rx.clone()).await?),
                None => None,
            };
            let dns = match args.dns {
                Some(d) => Some(d),
                None => default_dns(url),
            };
            if print {
                print_line(&format!(
                    "   driving the running server {url} (RPZ primary {}); it must run --simulated-clock {} on a fresh database, with allow_private_targets",
                    dns.map(|d| d.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    sc.meta.start
                ));
            }
            let target = Target {
                api: driver::Api::new(url)?,
                admin_token: token,
                dns,
                zone: "rpz.tapis.".into(),
                smtp,
                host: None,
            };
            (Driver::new(&sc, target, print).run().await, url.clone())
        }
    };
    let _ = stop_tx.send(true);
    let passed = summary(&sc, &outcome, print || args.quiet);
    if let Some(path) = &args.report {
        let report = report_json(&sc, &args.file, &mode, &outcome, passed);
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The RPZ primary of a server at `url`: same host, tapis's default port.
fn default_dns(url: &str) -> Option<SocketAddr> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let ip: std::net::IpAddr = if host == "localhost" {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, 5300))
}
