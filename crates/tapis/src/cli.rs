//! Command-line interface.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tapis_core::audit::Actor;
use tapis_core::role::Role;
use tapis_core::{PartyId, SystemClock};
use tapis_store::Store;

use crate::config::{Overrides, Settings};

/// tapis: takedown notices, government channel and blocking orders, with a
/// tamper-evident audit log.
///
/// Settings come from defaults, then a TOML file (--config, or ./tapis.toml),
/// then TAPIS_* environment variables, then these flags. See
/// tapis.example.toml for every setting.
#[derive(Parser, Debug)]
#[command(name = "tapis", version, propagate_version = true)]
struct Cli {
    /// Config file (TOML). Without it, ./tapis.toml is read if present.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for tapis's files (SQLite database, first admin token).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: postgres://… for PostgreSQL; default is SQLite in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: HTTP API on --listen (default 127.0.0.1:8080).
    ///
    /// On an empty database the first start creates the authority party and
    /// an admin token, written to DATA_DIR/admin-token (mode 0600). Set
    /// TAPIS_BOOTSTRAP_TOKEN to choose that token yourself (automation).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print its secret (shown once, stored only as a hash).
    Create {
        /// The party the token acts for: its id, or its exact name.
        #[arg(long)]
        party: String,
        /// admin, officer, approver, auditor (authority parties), flagger,
        /// platform_agent or isp_operator; it must fit the party's kind.
        #[arg(long)]
        role: String,
        /// Who or what holds it, e.g. "J. Doe, duty officer".
        #[arg(long, default_value = "created with tapis token create")]
        label: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the hash chain from the first event and report the first broken
    /// link. Exit status: 0 intact, 1 broken, 2 could not check.
    Verify,
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
    };
    let (settings, warnings) = Settings::load(cli.config.as_deref(), &env, &overrides)?;
    crate::telemetry::init(&settings);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { .. } => {
                serve(settings, env.get("TAPIS_BOOTSTRAP_TOKEN").cloned()).await
            }
            Command::Token {
                command: TokenCommand::Create { party, role, label },
            } => token_create(&settings, &party, &role, &label).await,
            Command::Audit {
                command: AuditCommand::Verify,
            } => audit_verify(&settings).await,
        }
    })
}

async fn open(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    Store::open(&url, Arc::new(SystemClock))
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                crate::config::redact_url(&url)
            )
        })
}

async fn serve(settings: Settings, bootstrap_token: Option<String>) -> anyhow::Result<ExitCode> {
    if !settings.data_dir.exists() {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        // the directory holds the database and the admin token: owner only
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", settings.data_dir.display()))?;
        }
    }
    let store = open(&settings).await?;
    if let Some(t) = &bootstrap_token
        && t.trim().len() < 24
    {
        bail!("TAPIS_BOOTSTRAP_TOKEN must be at least 24 characters");
    }
    let token_file = settings.data_dir.join("admin-token");
    match store
        .bootstrap(
            &settings.authority_name,
            bootstrap_token.as_deref().map(str::trim),
        )
        .await?
    {
        Some(boot) => {
            if bootstrap_token.is_some() {
                println!(
                    "first start: created the authority party {:?}; the admin token is the value of TAPIS_BOOTSTRAP_TOKEN",
                    boot.authority.name
                );
            } else {
                write_secret(&token_file, &boot.admin_secret)?;
                println!(
                    "first start: created the authority party {:?} and an admin token in {}",
                    boot.authority.name,
                    token_file.display()
                );
            }
        }
        None => {
            if let Some(t) = &bootstrap_token
                && !store.token_exists(t.trim()).await?
            {
                tracing::warn!(
                    "TAPIS_BOOTSTRAP_TOKEN is set but this database was bootstrapped before; it is ignored"
                );
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? try --listen 127.0.0.1:0)",
                settings.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    println!(
        "tapis listening on http://{addr} (database: {})",
        store.backend().name()
    );
    if token_file.exists() {
        println!(
            "log in with the admin token: curl -H \"Authorization: Bearer $(cat {})\" http://{addr}/api/v1/whoami",
            token_file.display()
        );
    }
    let _ = std::io::stdout().flush();
    let state = tapis_http::AppState::new(
        store.clone(),
        tapis_http::Limits {
            max_body_bytes: settings.limits.max_body_bytes,
            notice: tapis_core::notice::Limits {
                max_items: settings.limits.max_items,
                ..Default::default()
            },
        },
    );
    tapis_http::serve(listener, state, shutdown).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT. The handlers are installed when this is called (before
/// the server says it is listening), so a signal sent right after start-up
/// still shuts down gracefully instead of killing the process.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}

/// Write a secret readable by the owner only.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{secret}")?;
    Ok(())
}

async fn token_create(
    settings: &Settings,
    party: &str,
    role: &str,
    label: &str,
) -> anyhow::Result<ExitCode> {
    let role = Role::parse(role)?;
    let store = open(settings).await?;
    let party_id = match PartyId::parse(party) {
        Ok(id) => id,
        Err(_) => {
            let matches: Vec<_> = store
                .list_parties(None)
                .await?
                .into_iter()
                .filter(|p| p.name == party)
                .collect();
            match matches.as_slice() {
                [one] => one.id,
                [] => bail!("no party has the id or name {party:?}"),
                _ => bail!("several parties are named {party:?}; give the id"),
            }
        }
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let actor = Actor {
        kind: "cli",
        party_id: None,
        token_id: None,
        label: format!("tapis token create (OS user {user})"),
        role: None,
    };
    let (info, secret) = store
        .create_token(&actor, party_id, role, label, None)
        .await?;
    eprintln!(
        "created token {} ({}) for party {}",
        info.id,
        info.role.as_str(),
        info.party_id
    );
    println!("{secret}");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let report = store.verify_audit().await?;
    store.close().await;
    match report.first_break {
        None => {
            println!(
                "audit chain intact: {} events, head {}",
                report.events, report.head
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            println!(
                "audit chain BROKEN at event {}: {} ({} events before it verify)",
                b.seq, b.reason, report.events
            );
            Ok(ExitCode::from(1))
        }
    }
}
