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
pub mod scenario;
pub mod sinks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use serde_json::json;
use tapis_core::Timestamp;

use crate::cli::print_line;
use crate::config::Settings;
use driver::{Driver, Outcome, Target};
use scenario::Scenario;

/// `tapis replay`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The scenario file (TOML).
    pub file: PathBuf,
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
            let running = crate::server::start(
                &settings,
                crate::server::StartOptions {
                    bootstrap_token: Some(admin.clone()),
                    simulated_clock: Some(sc.start),
                    demo: false,
                },
            )
            .await?;
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
            let target = Target {
                api: driver::Api::new(&format!("http://{}", running.http))?,
                admin_token: admin,
                dns: Some(running.dns),
                zone: settings.rpz.zone_name.clone(),
                smtp: Some(smtp),
            };
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

/// A duration in days, hours and minutes.
pub fn span(ms: i64) -> String {
    let mins = ms / 60_000;
    let (d, h, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

fn slowest(ms: &[f64]) -> f64 {
    ms.iter().copied().fold(0.0, f64::max)
}

fn between(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<i64> {
    Some(b?.unix_millis() - a?.unix_millis())
}

/// Print the summary (and the comparison with the record); true when
/// every expectation passed and every step ran.
fn summary(sc: &Scenario, o: &Outcome, print: bool) -> bool {
    let failed: Vec<_> = o.checks.iter().filter(|c| !c.passed).collect();
    let passed = failed.is_empty() && o.error.is_none();
    if !print {
        return passed;
    }
    let f = &o.facts;
    print_line("");
    print_line(&format!("== summary: {}", sc.meta.name));
    print_line(&format!(
        "   expectations: {} passed, {} failed{}",
        o.checks.len() - failed.len(),
        failed.len(),
        if o.error.is_some() {
            "; the replay stopped early"
        } else {
            ""
        }
    ));
    for c in &failed {
        print_line(&format!(
            "   FAILED step {} (line {}) at {}: expected {}, found {}",
            c.step, c.line, c.at, c.expectation, c.found
        ));
    }
    if let Some(e) = &o.error {
        print_line(&format!("   ERROR: {e}"));
    }
    print_line(&format!(
        "   {} notice(s), {} item(s) targeted; {} escalation(s); {} order(s), at most {} name(s) blocked at once",
        f.notices, f.items_targeted, f.escalations, f.orders, f.names_blocked
    ));
    print_line(&format!(
        "   webhooks received {} (signatures verified; refused while down {}, bad signature {}), emails {}; the clock moved in {} hop(s)",
        f.webhooks_received,
        f.webhooks_refused,
        f.webhooks_unverified,
        f.emails_received,
        f.advances
    ));
    if !f.notify_latency_ms.is_empty() {
        print_line(&format!(
            "   ISP secondaries notified {:.1} ms (slowest, real time) after an order came into force",
            slowest(&f.notify_latency_ms)
        ));
    }
    if let Some(c) = &sc.comparison {
        let hist = c.first_escalation.0.unix_millis() - c.first_request.0.unix_millis();
        let ours = between(f.first_request, f.first_escalation);
        print_line("");
        print_line(&format!("== compared with {}", c.label));
        print_line(&format!(
            "   {:<36} {:<30} {}",
            "", "the record", "tapis (this replay)"
        ));
        print_line(&format!(
            "   {:<36} {:<30} {}",
            "first request -> first escalation",
            span(hist),
            ours.map(span).unwrap_or_else(|| "no escalation".into())
        ));
        let record = format!("{} / {}", c.names_blocked, c.items_targeted);
        let replayed = format!("{} / {}", f.names_blocked, f.items_targeted);
        print_line(&format!(
            "   {:<36} {record:<30} {replayed}",
            "names blocked / items targeted"
        ));
        if let Some(lift) = c.block_lifted {
            print_line(&format!(
                "   {:<36} {:<30} {}",
                "block in force",
                span(lift.0.unix_millis() - c.first_escalation.0.unix_millis()),
                between(f.first_block, f.block_ended)
                    .map(|ms| format!("{} (approved, with an end date from the start)", span(ms)))
                    .unwrap_or_else(|| "no block".into())
            ));
        }
        print_line(&format!(
            "   {:<36} {:<30} {}",
            "ISPs told",
            "by letter; compliance unknown",
            if f.notify_latency_ms.is_empty() {
                "no ISP secondary in this scenario".to_owned()
            } else {
                format!(
                    "NOTIFY {:.1} ms after the effective time",
                    slowest(&f.notify_latency_ms)
                )
            }
        ));
        for n in &c.notes {
            print_line(&format!("   - {n}"));
        }
    }
    print_line("");
    print_line(if passed { "PASSED" } else { "FAILED" });
    passed
}

fn report_json(
    sc: &Scenario,
    file: &Path,
    mode: &str,
    o: &Outcome,
    passed: bool,
) -> serde_json::Value {
    let f = &o.facts;
    let ts = |t: Option<Timestamp>| t.map(|t| sc.show(t));
    json!({
        "scenario": sc.meta.name,
        "file": file.display().to_string(),
        "mode": mode,
        "start": sc.show(sc.start),
        "end": sc.show(sc.end()),
        "sla": sc.meta.sla,
        "passed": passed,
        "error": o.error,
        "expectations": {
            "total": o.checks.len(),
            "passed": o.checks.iter().filter(|c| c.passed).count(),
            "failed": o.checks.iter().filter(|c| !c.passed).count(),
            "results": o.checks,
        },
        "facts": {
            "notices": f.notices,
            "items_targeted": f.items_targeted,
            "escalations": f.escalations,
            "orders": f.orders,
            "names_blocked": f.names_blocked,
            "first_request": ts(f.first_request),
            "first_escalation": ts(f.first_escalation),
            "first_request_to_first_escalation_secs": between(f.first_request, f.first_escalation).map(|ms| ms / 1000),
            "first_block": ts(f.first_block),
            "block_ended": ts(f.block_ended),
            "notify_latency_ms": f.notify_latency_ms,
            "webhooks_received": f.webhooks_received,
            "webhooks_refused": f.webhooks_refused,
            "webhooks_unverified": f.webhooks_unverified,
            "emails_received": f.emails_received,
            "clock_hops": f.advances,
        },
        "comparison": sc.comparison.as_ref().map(|c| json!({
            "label": c.label,
            "record": {
                "first_request_to_first_escalation_secs": (c.first_escalation.0.unix_millis() - c.first_request.0.unix_millis()) / 1000,
                "names_blocked": c.names_blocked,
                "items_targeted": c.items_targeted,
            },
            "tapis": {
                "first_request_to_first_escalation_secs": between(f.first_request, f.first_escalation).map(|ms| ms / 1000),
                "names_blocked": f.names_blocked,
                "items_targeted": f.items_targeted,
            },
        })),
        "timeline": o.entries,
    })
}
