//! Command-line interface: the clap definitions of every command (each
//! lists only the flags it reads; --config, --data-dir and --database-url
//! are also taken before the command, hidden, as earlier versions did),
//! settings loading (defaults < file < `TAPIS_*` < flags, in `config`) and
//! `tapis serve`. The commands that work on the database directly are in
//! [`offline`]; `tapis resolver` is `resolver_cmd`, `tapis replay` is
//! `replay`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tapis_core::{SystemClock, Timestamp};
use tapis_store::Store;

use crate::config::{Overrides, Settings};
use offline::{audit_verify, import, receipt_verify, token_create, token_list, token_revoke};

/// `println!` that treats a closed stdout (`tapis … | head`) as the reader
/// being done, not as a reason to panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*)
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }};
}

mod account;
mod anchor;
mod authoriser;
mod db;
mod files;
mod offline;
mod tlog;
mod witness;

pub(crate) use db::explain_open_error;
pub(crate) use files::{
    check_key_file, ensure_private_dir, load_signing_key, prepare_database,
    remove_admin_token_once_used, write_secret,
};

/// Print a line on stdout; a closed stdout ends the process quietly.
pub(crate) fn print_line(line: &str) {
    say!("{line}");
}

/// tapis: takedown notices, government channel and blocking orders, with a
/// tamper-evident audit log.
///
/// Each command lists the flags it reads (`tapis <command> --help`).
/// Settings come from defaults, then a TOML file (--config, or ./tapis.toml),
/// then TAPIS_* environment variables, then flags. See tapis.example.toml
/// for every setting. Exit status: 0 done, 2 could not run (bad settings,
/// unreadable file, database unreachable); commands that check something
/// exit 1 when the check fails.
#[derive(Parser, Debug)]
#[command(name = "tapis", version, propagate_version = true)]
struct Cli {
    /// --config, --data-dir and --database-url before the command, as
    /// earlier versions took them; hidden, as each command that reads them
    /// lists them itself.
    #[command(flatten)]
    early: EarlyArgs,
    #[command(subcommand)]
    command: Command,
}

/// The settings flags given before the command (`tapis --data-dir D serve`).
#[derive(clap::Args, Debug, Default)]
struct EarlyArgs {
    #[arg(long = "config", value_name = "FILE", hide = true)]
    config: Option<PathBuf>,
    #[arg(long = "data-dir", value_name = "DIR", hide = true)]
    data_dir: Option<PathBuf>,
    #[arg(long = "database-url", value_name = "URL", hide = true)]
    database_url: Option<String>,
}

impl EarlyArgs {
    /// Keep only --config, for a command that reads no database: say that
    /// the others are ignored rather than have them fail its settings.
    fn only_config(self, command: &str) -> EarlyArgs {
        for (given, flag) in [
            (self.data_dir.is_some(), "--data-dir"),
            (self.database_url.is_some(), "--database-url"),
        ] {
            if given {
                eprintln!("warning: tapis {command} does not use {flag}; ignored");
            }
        }
        EarlyArgs {
            config: self.config,
            ..EarlyArgs::default()
        }
    }
}

/// Where a command that opens tapis's database finds its settings.
#[derive(clap::Args, Debug, Default, Clone)]
struct StoreArgs {
    /// Config file (TOML). Without it, ./tapis.toml is read if present.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for tapis's files (SQLite database, first admin token).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: postgres://… for PostgreSQL; default is SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

impl StoreArgs {
    /// These flags, each filled from before the command when not given
    /// after it.
    fn or_early(self, early: EarlyArgs) -> StoreArgs {
        StoreArgs {
            config: self.config.or(early.config),
            data_dir: self.data_dir.or(early.data_dir),
            database_url: self.database_url.or(early.database_url),
        }
    }
}

const SERVE_HELP: &str = "\
Files: the data directory is created 0700; tapis.db (with its -wal and -shm),
signing-key and admin-token are created 0600. At start a key file (signing-key,
admin-token, secrets_key_file) that others can read or write is refused with
the chmod to run: a key others could read may have been copied, and only you
can judge whether to replace it. A database file others can read is tightened
to 0600 and a warning logged: tapis creates it itself (earlier versions made
it 0644), and SQLite gives -wal and -shm the database file's mode.

Secrets at rest: webhook and TSIG secrets are sealed under a key kept outside
the database, from secrets_key_file (mode 0600) or TAPIS_SECRETS_KEY. Make one:
  head -c 32 /dev/urandom | base64 > /etc/tapis/secrets.key
  chmod 600 /etc/tapis/secrets.key
Without it they are stored in clear and tapis serve says so at start. To rotate
it, start with the new key and the old one in TAPIS_SECRETS_PREVIOUS_KEY: every
sealed secret is sealed again under the new key at start; then drop the old one.

Health: GET /healthz is 200 while the process is alive (no database needed);
GET /readyz is 200 only if this process can write now (the audit chain's lock
taken and released within 2 s, scheduler and delivery loops running), else
503 with the reasons. Database faults answer 503 with Retry-After, bounded by
[database] statement/lock/idle-in-transaction/acquire timeouts (30 s, 10 s,
5 s, 5 s). GET /metrics (Prometheus text) needs an admin or auditor token, or
an address in metrics.allow_from.
Several processes (PostgreSQL only): run any number on one database. All serve
the API and zone transfers and deliver webhooks; one owns the scheduler, NOTIFY
and probes by a lease (ownership.lease_ms, default 5000) and another takes over
within seconds if it stops renewing. Give them one signing key with
signing_key_file (or each makes its own; all are published).

Exit status: 0 after a graceful stop (SIGTERM or SIGINT), 2 when it cannot start.

Examples:
  tapis serve --data-dir /var/lib/tapis --listen 0.0.0.0:8080
  tapis serve --database-url postgres://tapis@db/tapis
  tapis serve --demo";

const TOKEN_HELP: &str = "\
Exit status: 0 created (the secret on stdout), 2 on error.

Example:
  tapis token create --party \"Messenger\" --role platform_agent --label \"trust & safety desk\"";

const TOKEN_REVOKE_HELP: &str = "\
Exit status: 0 revoked, 2 on error (no such token, or already revoked).

Example:
  tapis token list --party Messenger
  tapis token revoke 0192f3c4-…";

const TOKEN_LIST_HELP: &str = "\
Exit status: 0 listed, 2 on error.

Example:
  tapis token list --party Messenger";

const AUDIT_HELP: &str = "\
Exit status: 0 intact, 1 broken (or a document no longer anchored),
2 could not check.

With --against, each receipt or decision (as the API returned it) must
verify with tapis's published keys, and the chain must still hold the
event it anchors (payload.chain: seq and hash). The chain alone can be
rewritten by whoever writes the database; a receipt a platform kept
cannot.

Examples:
  tapis audit verify --database-url postgres://tapis@db/tapis
  tapis audit verify --against ack.json decision-1.json";

const RECEIPT_HELP: &str = "\
Exit status: 0 valid, 1 invalid, 2 could not check.

Examples:
  tapis receipt verify ack.json --keys keys.json
  tapis receipt verify ack.json --public-key BASE64";

const IMPORT_HELP: &str = "\
Exit status: 0 imported (as drafts), 1 nothing to import, 2 on error.

Examples:
  tapis import rpz blocked.rpz --category gambling --legal-basis \"Law 11/2008 art. 40\"
  tapis import domains list.txt --category gambling --legal-basis \"Law 11/2008 art. 40\" --include-subdomains";

const DB_HELP: &str = "\
On PostgreSQL, run tapis with two roles:
  the owner role owns tapis's tables: it runs `tapis db migrate` (at install
    and after each upgrade) and applies the grants; nothing else uses it;
  the application role is the one `tapis serve` runs as: it reads and writes
    rows and owns nothing, so it cannot drop or disable the audit log's
    append-only trigger, nor change, delete or truncate audit events.
`tapis serve` applies pending migrations itself when its role may (one role,
or SQLite); as the application role it refuses to start until the owner has
run `tapis db migrate`. On SQLite there are no roles: the database file is
the boundary (created 0600, owner only).

Exit status: 0 done, 2 on error.

Example:
  tapis db migrate --database-url postgres://tapis_owner@db/tapis
  tapis db grants --app-role tapis_app --database-url postgres://tapis_owner@db/tapis \\
    | psql postgres://tapis_owner@db/tapis
  tapis serve --database-url postgres://tapis_app:PASSWORD@db/tapis";

const REPLAY_HELP: &str = "\
Exit status: 0 every expectation holds, 1 one fails (or a step cannot be carried out), 2 the scenario cannot be read.

Examples:
  tapis replay examples/scenarios/2017-channel-blocking.toml
  tapis replay examples/scenarios/order-expires.toml --report report.json --quiet
  tapis replay FILE --against http://127.0.0.1:8080 --token ADMIN_TOKEN";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: HTTP API on --listen (default 127.0.0.1:8080).
    ///
    /// Runs the HTTP API, the RPZ primary and the background workers
    /// (delivery, deadlines, order activation and expiry) until SIGTERM or
    /// SIGINT. On an empty database the first start creates the authority
    /// party and an admin token, written to DATA_DIR/admin-token (mode
    /// 0600). Set TAPIS_BOOTSTRAP_TOKEN to choose that token yourself
    /// (automation).
    #[command(after_help = SERVE_HELP)]
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Address to listen on, e.g. 0.0.0.0:8080 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Where the RPZ primary listens (UDP and TCP), default 127.0.0.1:5300.
        #[arg(long, value_name = "ADDR")]
        dns_listen: Option<SocketAddr>,
        /// Run on a simulated clock starting at this RFC 3339 time (for
        /// demonstrations, training and acceptance tests). Time then moves
        /// only by POST /api/v1/admin/clock/advance.
        #[arg(long, value_name = "START")]
        simulated_clock: Option<String>,
        /// Start a demonstration instead: the 2017 case replayed into a
        /// temporary database (your data directory and database are not
        /// touched), on a simulated clock; prints tokens to explore it.
        #[arg(long, conflicts_with = "simulated_clock")]
        demo: bool,
    },
    /// Import an existing blocklist as draft orders (one per action), all
    /// or nothing; nothing is blocked until an approver approves them.
    #[command(after_help = IMPORT_HELP)]
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Work with signed receipts.
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The database: migrations, and the PostgreSQL roles tapis runs as.
    #[command(after_help = DB_HELP)]
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// People's accounts for the web interface (host-side: the first
    /// admin's, and one-time links for forgotten passwords).
    Account {
        #[command(subcommand)]
        command: account::AccountCommand,
    },
    /// Enrol and list authorisers' signing keys (host-side only).
    Authoriser {
        #[command(subcommand)]
        command: authoriser::AuthoriserCommand,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The transparency log: check it offline against saved checkpoints.
    Log {
        #[command(subcommand)]
        command: tlog::LogCommand,
    },
    /// Follow a tapis transparency log as a witness: check that it only
    /// grows, co-sign its checkpoints, keep them, report a fork.
    Witness(witness::WitnessArgs),
    /// Replay a scenario (examples/scenarios/*.toml) on a simulated clock.
    ///
    /// By default against tapis started in-process on a fresh temporary
    /// SQLite database (your data directory and database are never used);
    /// --against drives a running server instead. Prints the timeline and
    /// a summary, and with --report writes them as JSON.
    #[command(after_help = REPLAY_HELP)]
    Replay(crate::replay::ReplayArgs),
    Resolver(crate::resolver_cmd::ResolverArgs),
    /// Hash files (PDQ perceptual hashes of images), as Meta's tools do.
    Hash(crate::match_cmd::HashArgs),
    Match(crate::match_cmd::MatchArgs),
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print its secret (shown once, stored only as a hash).
    #[command(after_help = TOKEN_HELP)]
    Create {
        #[command(flatten)]
        store: StoreArgs,
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
        /// The person holding it ("Siti Rahma"); four eyes compares people.
        /// Without it the token is a machine credential, which may not
        /// propose, approve or decide escalations.
        #[arg(long)]
        person: Option<String>,
        /// When it stops working (RFC 3339, e.g. 2027-06-30T17:00:00+07:00,
        /// within five years). Without it, it works until revoked.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// Revoke a token: it stops working at once (a running server checks
    /// every request against the database). Audited as token.revoked.
    #[command(after_help = TOKEN_REVOKE_HELP)]
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// The token's id (from `tapis token list`), not its secret.
        id: String,
    },
    /// List a party's tokens: id, role, state (live, live until, expired,
    /// revoked), when created and first used, label and person. Secrets are
    /// never shown (only their hash is stored).
    #[command(after_help = TOKEN_LIST_HELP)]
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// The party: its id, or its exact name.
        #[arg(long)]
        party: String,
    },
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The file to import.
    file: PathBuf,
    /// Category of the orders (e.g. gambling), from the taxonomy.
    #[arg(long)]
    category: String,
    /// Legal basis: the statute reference.
    #[arg(long)]
    legal_basis: String,
    /// Legal basis: the text of the provision.
    #[arg(long, default_value = "see the referenced provision")]
    legal_text: String,
    /// When the orders take effect once approved (RFC 3339; default: now).
    #[arg(long)]
    effective_at: Option<String>,
    /// Days from effect to expiry.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Days from effect to the review date (a missed review lapses the order).
    #[arg(long, default_value_t = 30)]
    review_days: i64,
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// An RPZ zone file (`name CNAME .` and `*.name CNAME .` records).
    #[command(after_help = IMPORT_HELP)]
    Rpz {
        #[command(flatten)]
        args: ImportArgs,
        /// The zone's origin, for absolute owner names.
        #[arg(long, default_value = "rpz.tapis.")]
        origin: String,
    },
    /// A plain list: one domain a line (or hosts-file lines).
    #[command(after_help = IMPORT_HELP)]
    Domains {
        #[command(flatten)]
        args: ImportArgs,
        /// nxdomain, nodata, walled_garden or drop.
        #[arg(long, default_value = "nxdomain")]
        action: String,
        /// Cover every name under each listed name too.
        #[arg(long)]
        include_subdomains: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ReceiptCommand {
    /// Check a receipt (the `receipt` object of an acknowledgement or a
    /// decision, saved as JSON) offline. The key comes from --public-key, from --keys (the
    /// output of GET /api/v1/keys), or else from the local database.
    #[command(after_help = RECEIPT_HELP)]
    Verify {
        /// The settings of the local database, read only when neither
        /// --public-key nor --keys is given.
        #[command(flatten)]
        store: StoreArgs,
        /// The receipt file.
        file: PathBuf,
        /// tapis's Ed25519 public key, base64.
        #[arg(long, value_name = "BASE64")]
        public_key: Option<String>,
        /// A JSON file with the keys list from GET /api/v1/keys.
        #[arg(long, value_name = "FILE")]
        keys: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Apply pending migrations and exit. On PostgreSQL run it as the
    /// owner role (the one that owns tapis's tables), not as the role
    /// `tapis serve` runs as.
    #[command(after_help = DB_HELP)]
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the SQL that gives the application role (the one `tapis
    /// serve` runs as) what it needs and no more: read and write rows,
    /// append to the audit log, own nothing. Apply it as the owner role
    /// after every `tapis db migrate`. PostgreSQL only.
    #[command(after_help = DB_HELP)]
    Grants {
        #[command(flatten)]
        store: StoreArgs,
        /// The application role, e.g. tapis_app (lowercase letters, digits
        /// and '_'); the database administrator creates it with LOGIN.
        #[arg(long, value_name = "NAME")]
        app_role: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the hash chain from the first event and report the first broken
    /// link.
    #[command(after_help = AUDIT_HELP)]
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Receipts or decisions (JSON, as the API returned them) whose
        /// anchored chain head must still be in the chain.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        against: Vec<PathBuf>,
        /// tapis's public keys as GET /api/v1/keys returned them (default:
        /// the keys published in the database).
        #[arg(long, value_name = "FILE", requires = "against")]
        keys: Option<PathBuf>,
    },
}

impl Command {
    /// The settings flags this command reads, when it opens tapis's
    /// settings (all but the resolver, which has its own).
    fn store_args(&self) -> Option<StoreArgs> {
        Some(match self {
            Command::Serve { store, .. }
            | Command::Token {
                command:
                    TokenCommand::Create { store, .. }
                    | TokenCommand::Revoke { store, .. }
                    | TokenCommand::List { store, .. },
            }
            | Command::Audit {
                command: AuditCommand::Verify { store, .. },
            }
            | Command::Db {
                command: DbCommand::Migrate { store } | DbCommand::Grants { store, .. },
            }
            | Command::Receipt {
                command: ReceiptCommand::Verify { store, .. },
            } => store.clone(),
            Command::Import {
                command: ImportCommand::Rpz { args, .. } | ImportCommand::Domains { args, .. },
            } => args.store.clone(),
            Command::Authoriser { command } => command.store().clone(),
            Command::Account { command } => command.store().clone(),
            Command::Log { command } => command.store().clone(),
            Command::Replay(args) => StoreArgs {
                config: args.config.clone(),
                ..StoreArgs::default()
            },
            Command::Resolver(_) | Command::Witness(_) | Command::Hash(_) | Command::Match(_) => {
                return None;
            }
        })
    }
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let early = cli.early;
    // The resolver has its own settings (it needs no database).
    if let Command::Resolver(args) = cli.command {
        if early.database_url.is_some() {
            eprintln!("warning: tapis resolver does not use --database-url; ignored");
        }
        return crate::resolver_cmd::run(args.or_early(early.config, early.data_dir));
    }
    // a witness has no database and no tapis settings
    if let Command::Witness(args) = cli.command {
        return witness::run(args);
    }
    // Content matching reads only the files it is given: no settings.
    if let Command::Hash(args) = cli.command {
        return crate::match_cmd::run_hash(args);
    }
    if let Command::Match(args) = cli.command {
        return crate::match_cmd::run_match(args);
    }
    let early = match cli.command {
        Command::Replay(_) => early.only_config("replay"),
        _ => early,
    };
    let store = cli.command.store_args().unwrap_or_default().or_early(early);
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let (listen, dns_listen) = match &cli.command {
        Command::Serve {
            listen, dns_listen, ..
        } => (*listen, *dns_listen),
        _ => (None, None),
    };
    let overrides = Overrides {
        listen,
        data_dir: store.data_dir,
        database_url: store.database_url,
        dns_listen,
    };
    let (mut settings, warnings) = Settings::load(store.config.as_deref(), &env, &overrides)?;
    if matches!(cli.command, Command::Replay(_)) && !env.contains_key("TAPIS_LOG") {
        // the timeline is the output; the server's own logs only on error
        settings.log = "error".into();
    }
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
            Command::Serve { demo: true, .. } => {
                crate::demo::serve(settings, shutdown_signal()?).await
            }
            Command::Serve {
                simulated_clock, ..
            } => {
                serve(
                    settings,
                    env.get("TAPIS_BOOTSTRAP_TOKEN").cloned(),
                    simulated_clock,
                )
                .await
            }
            Command::Import { command } => import(&settings, command).await,
            Command::Receipt {
                command:
                    ReceiptCommand::Verify {
                        file,
                        public_key,
                        keys,
                        ..
                    },
            } => receipt_verify(&settings, &file, public_key, keys).await,
            Command::Token {
                command:
                    TokenCommand::Create {
                        party,
                        role,
                        label,
                        person,
                        expires_at,
                        ..
                    },
            } => {
                token_create(
                    &settings,
                    &party,
                    &role,
                    &label,
                    person.as_deref(),
                    expires_at.as_deref(),
                )
                .await
            }
            Command::Token {
                command: TokenCommand::Revoke { id, .. },
            } => token_revoke(&settings, &id).await,
            Command::Token {
                command: TokenCommand::List { party, .. },
            } => token_list(&settings, &party).await,
            Command::Audit {
                command: AuditCommand::Verify { against, keys, .. },
            } => {
                if against.is_empty() {
                    audit_verify(&settings).await
                } else {
                    anchor::audit_verify_against(&settings, &against, keys.as_deref()).await
                }
            }
            Command::Db {
                command: DbCommand::Migrate { .. },
            } => db::migrate(&settings).await,
            Command::Db {
                command: DbCommand::Grants { app_role, .. },
            } => db::grants(&settings, &app_role),
            Command::Authoriser { command } => authoriser::run(&settings, command).await,
            Command::Account { command } => account::run(&settings, command).await,
            Command::Log { command } => tlog::run(&settings, command).await,
            Command::Replay(args) => crate::replay::run(args).await,
            Command::Resolver(_) | Command::Witness(_) | Command::Hash(_) | Command::Match(_) => {
                unreachable!("handled before the settings load")
            }
        }
    })
}

async fn open(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    prepare_database(&url)?;
    let options = tapis_store::Options {
        timeouts: settings.database.timeouts(),
        ..Default::default()
    };
    Store::open_with(&url, Arc::new(SystemClock), options)
        .await
        .map_err(|e| explain_open_error(&url, e))
}

async fn serve(
    settings: Settings,
    bootstrap_token: Option<String>,
    simulated_clock: Option<String>,
) -> anyhow::Result<ExitCode> {
    let simulated_clock = match &simulated_clock {
        Some(start) => Some(Timestamp::parse("--simulated-clock", start).map_err(|e| {
            anyhow::anyhow!("{e} (e.g. --simulated-clock 2017-03-29T09:00:00+07:00)")
        })?),
        None => None,
    };
    let running = crate::server::start(
        &settings,
        crate::server::StartOptions {
            bootstrap_token,
            simulated_clock,
            demo: false,
        },
    )
    .await?;
    if let Some(now) = running.simulated_now {
        say!(
            "SIMULATED CLOCK: the time is {now} and moves only by POST /api/v1/admin/clock/advance"
        );
    }
    match &running.bootstrap {
        crate::server::Bootstrap::Created {
            authority,
            written_to: None,
        } => say!(
            "first start: created the authority party {authority:?}; the admin token is the value of TAPIS_BOOTSTRAP_TOKEN"
        ),
        crate::server::Bootstrap::Created {
            authority,
            written_to: Some(file),
        } => say!(
            "first start: created the authority party {authority:?} and an admin token in {}",
            file.display()
        ),
        crate::server::Bootstrap::Existing => {}
    }
    let shutdown = shutdown_signal()?;
    let addr = running.http;
    say!(
        "tapis listening on http://{addr} (database: {})",
        running.store.backend().name()
    );
    let token_file = settings.data_dir.join("admin-token");
    if token_file.exists() {
        say!(
            "log in with the admin token: curl -H \"Authorization: Bearer $(cat {})\" http://{addr}/api/v1/whoami",
            token_file.display()
        );
    }
    say!(
        "RPZ primary for {} on udp+tcp {} (transfers need an ISP's TSIG key or an allowed address)",
        settings.rpz.zone_name,
        running.dns
    );
    let _ = std::io::stdout().flush();
    shutdown.await;
    running.stop().await?;
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
