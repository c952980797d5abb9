//! `tapis serve --demo`: a server on a throw-away database with the 2017
//! case already replayed into it, so a newcomer's first look is a populated
//! one. It never touches the configured data directory or database: the
//! demo lives in a temporary directory that is deleted on exit, runs on a
//! simulated clock, and says so at start, in the log and in the name of
//! its authority.

use std::process::ExitCode;

use anyhow::{Context, anyhow};

use crate::cli::print_line;
use crate::config::Settings;
use crate::replay::{driver, scenario::Scenario, sinks};

/// The bundled case.
pub const CASE_FILE: &str = "examples/scenarios/2017-channel-blocking.toml";
const CASE: &str = include_str!("../../../examples/scenarios/2017-channel-blocking.toml");

pub async fn serve(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let sc = Scenario::parse(CASE_FILE, CASE).map_err(|e| anyhow!("the bundled case: {e}"))?;
    let dir = tempfile::Builder::new()
        .prefix("tapis-demo-")
        .tempdir()
        .context("cannot make the demo's temporary directory")?;
    let (_stop_smtp, stop_rx) = tokio::sync::watch::channel(false);
    let smtp = sinks::SmtpSink::start(stop_rx).await?;
    // only addresses and the log carry over from the operator's settings
    let mut demo = crate::replay::embedded_settings(&sc, dir.path(), smtp.addr);
    demo.listen = settings.listen;
    demo.rpz.dns_listen = settings.rpz.dns_listen;
    demo.log = settings.log.clone();
    demo.authority_name = format!("DEMO {}", demo.authority_name);
    let admin = crate::replay::new_admin_secret();
    tracing::warn!(
        data_dir = %dir.path().display(),
        "DEMO MODE: fictional data on a temporary database, simulated clock; nothing here is real and everything is deleted on exit"
    );
    let running = crate::replay::start_in_process(&demo, &sc, &admin, true).await?;
    let banner = "=".repeat(78);
    print_line(&banner);
    print_line("DEMO MODE: tapis serve --demo");
    print_line(&format!(
        "  fictional data in a temporary database ({}), deleted on exit;",
        dir.path().display()
    ));
    print_line("  your data directory and database settings are not used.");
    print_line(&format!(
        "  loading the bundled case ({CASE_FILE}) on a simulated clock from {} ...",
        sc.show(sc.start)
    ));
    print_line(&banner);
    let target =
        driver::Target::in_process(&running, admin.clone(), demo.rpz.zone_name.clone(), smtp)?;
    let outcome = driver::Driver::new(&sc, target, false).run().await;
    if let Some(e) = &outcome.error {
        running.stop().await?;
        return Err(anyhow!("the demo case did not load: {e}"));
    }
    let failed = outcome.checks.iter().filter(|c| !c.passed).count();
    print_line(&banner);
    print_line(&format!(
        "DEMO MODE: the 2017 case is loaded ({} steps, {} checks, {failed} failed): {} notices, {} escalations, 1 order lifted on {}",
        sc.steps.len(),
        outcome.checks.len(),
        outcome.facts.notices,
        outcome.facts.escalations,
        outcome
            .facts
            .block_ended
            .map(|t| sc.show(t))
            .unwrap_or_else(|| "?".into())
    ));
    print_line(&format!(
        "  the simulated clock stands at {}; POST /api/v1/admin/clock/advance moves it",
        sc.show(sc.end())
    ));
    print_line(&format!(
        "  tapis listening on http://{} (RPZ primary on udp+tcp {})",
        running.http, running.dns
    ));
    print_line("  tokens (demo only):");
    print_line(&format!("    {:<10} {admin}", "admin"));
    for (name, secret) in &outcome.tokens {
        print_line(&format!("    {name:<10} {secret}"));
    }
    print_line(&format!(
        "  try: curl -H \"Authorization: Bearer {admin}\" http://{}/api/v1/orders",
        running.http
    ));
    let (password, accounts) = demo_accounts(&running.store).await?;
    print_line(&format!(
        "  web interface: http://{}/ — sign in at /signin (demo only; password for all: {password})",
        running.http
    ));
    for (login, who) in &accounts {
        print_line(&format!("    {login:<22} {who}"));
    }
    print_line(
        "  to watch the case unfold step by step: tapis replay examples/scenarios/2017-channel-blocking.toml",
    );
    print_line(&banner);
    shutdown.await;
    running.stop().await?;
    drop(outcome);
    tracing::info!("demo stopped; its temporary database is deleted");
    Ok(ExitCode::SUCCESS)
}

/// One account per role at each of the demo's parties, all with one
/// random password (printed; demo only), so a visitor can sign in as
/// anyone in the story. Made on the host, as `tapis account create` does.
async fn demo_accounts(
    store: &tapis_store::Store,
) -> anyhow::Result<(String, Vec<(String, String)>)> {
    use tapis_core::party::PartyKind;
    use tapis_core::person::Person;
    use tapis_core::role::Role;
    let password = format!("demo-{}", &crate::replay::new_admin_secret()[7..23]);
    let actor = tapis_core::audit::Actor::system("demo accounts");
    let mut made = Vec::new();
    for party in store.list_parties(None).await? {
        let roles: &[Role] = match party.kind {
            PartyKind::Authority => &[Role::Admin, Role::Officer, Role::Approver, Role::Auditor],
            PartyKind::Platform => &[Role::PlatformAgent],
            PartyKind::Isp => &[Role::IspOperator],
            PartyKind::Flagger => &[Role::Flagger],
            PartyKind::Authoriser => &[Role::Authoriser],
        };
        let slug: String = party
            .name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join("-")
            .chars()
            .take(40)
            .collect::<String>();
        for role in roles {
            let login = format!("{}@{}", role.as_str().replace('_', "-"), slug);
            let person = Person::parse(&format!(
                "{} {}",
                role.as_str().replace('_', " "),
                party.name
            ))?;
            store
                .create_account(&actor, party.id, &login, &person, &[*role], Some(&password))
                .await?;
            made.push((login, format!("{} at {}", role.as_str(), party.name)));
        }
    }
    Ok((password, made))
}
