//! Settings: defaults < config file < `TAPIS_*` environment < command-line
//! flags. The file is TOML with unknown keys refused, so a typo is an error
//! at start-up rather than a setting silently ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

mod due_process;
mod flags;
mod limits;
mod operations;
mod register;
mod retention;
mod secrets;
mod transparency;
mod web;
pub use due_process::DueProcessSettings;
pub use flags::FlagSettings;
pub use limits::LimitSettings;
pub use operations::{DatabaseSettings, HealthSettings, MetricsSettings, OwnershipSettings};
pub use register::RegisterSettings;
pub use retention::RetentionSettings;
pub use transparency::TransparencySettings;
pub use web::WebSettings;

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Where tapis keeps its files: the SQLite database and the first
    /// admin token.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// Name of the authority party created on first start.
    pub authority_name: String,
    /// Log filter, e.g. `info` or `tapis=debug,tower_http=info`.
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A file holding the key that seals secrets at rest (webhook and TSIG
    /// secrets): 32 bytes in base64 or hex, mode 0600. Unset (and no
    /// `TAPIS_SECRETS_KEY`): those secrets are stored in clear.
    pub secrets_key_file: Option<PathBuf>,
    /// `TAPIS_SECRETS_KEY`: the key itself, from the environment only
    /// (never from the config file, which is often readable by others).
    #[serde(skip)]
    pub secrets_key: SecretText,
    /// `TAPIS_SECRETS_PREVIOUS_KEY`: the key the secrets key replaced, kept
    /// while `serve` reseals under the new one (config/secrets.rs).
    #[serde(skip)]
    pub secrets_previous_key: SecretText,
    /// The signing key (64 hex digits, mode 0600). Unset: `signing-key` in
    /// `data_dir`, created on first start. Several processes sharing one
    /// database may point this at one shared key file, which must exist.
    pub signing_key_file: Option<PathBuf>,
    pub limits: LimitSettings,
    pub channel: ChannelSettings,
    pub smtp: SmtpSettings,
    pub sla: SlaSettings,
    pub rpz: RpzSettings,
    pub compliance: ComplianceSettings,
    pub due_process: DueProcessSettings,
    pub privacy: PrivacySettings,
    pub database: DatabaseSettings,
    pub health: HealthSettings,
    pub metrics: MetricsSettings,
    pub ownership: OwnershipSettings,
    pub web: WebSettings,
    pub transparency: TransparencySettings,
    pub flags: FlagSettings,
    pub register: RegisterSettings,
    pub retention: RetentionSettings,
}

/// What tapis records about the people who reach it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// Log the client address of block-page and public-lookup requests.
    /// Off by default; turning it on needs `log_client_addresses_reason`,
    /// which is written to the audit log at start.
    pub log_client_addresses: bool,
    pub log_client_addresses_reason: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceSettings {
    /// Seconds between probes of ISPs' registered resolvers; 0 turns
    /// probing off.
    pub probe_interval_secs: u64,
    /// Blocked names asked per probe.
    pub sample: u32,
    /// Names no order should ever cover; a resolver blocking one is
    /// over-blocking.
    pub canaries: Vec<String>,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        ComplianceSettings {
            probe_interval_secs: 300,
            sample: 5,
            canaries: vec!["www.iana.org".into()],
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RpzSettings {
    /// The Response Policy Zone's name.
    pub zone_name: String,
    /// The host walled-garden answers point to (it serves the block page).
    pub block_page_host: String,
    /// Where the RPZ primary answers SOA queries and zone transfers (UDP
    /// and TCP).
    pub dns_listen: SocketAddr,
    /// Publish beside each policy record a TXT (`<name>._tapis.<zone>`)
    /// naming its order and the kind of block, which resolvers that explain
    /// blocks (tapis's own) turn into an Extended DNS Error.
    pub explanations: bool,
    /// The kind of block per order category: `blocked`, `censored` or
    /// `filtered` (RFC 8914). Unlisted categories are `censored`: an order
    /// is an external legal requirement.
    pub block_kinds: std::collections::BTreeMap<String, tapis_dns::BlockKind>,
    /// TCP connections the primary holds open at once (all peers).
    pub tcp_max_connections: usize,
    /// Of those, kept for allow-listed peers and those that recently sent
    /// a TSIG-signed request; unsigned strangers share the rest.
    pub tcp_reserved_connections: usize,
    /// TCP connections from one address (an IPv6 /64 counts as one).
    pub tcp_connections_per_address: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle_timeout_secs: u64,
    /// A TCP message must arrive whole within this of its first octet.
    pub tcp_message_timeout_secs: u64,
    /// After an ISP rotates its TSIG key, how long the key it replaced
    /// keeps verifying transfers (hours, 1 to 2160; a week by default), so
    /// its secondaries can move without a flag day.
    pub tsig_grace_hours: u32,
}

impl Default for RpzSettings {
    fn default() -> Self {
        RpzSettings {
            zone_name: "rpz.tapis.".into(),
            block_page_host: "block.tapis.invalid".into(),
            dns_listen: SocketAddr::from(([127, 0, 0, 1], 5300)),
            explanations: true,
            block_kinds: Default::default(),
            tcp_max_connections: 256,
            tcp_reserved_connections: 32,
            tcp_connections_per_address: 8,
            tcp_idle_timeout_secs: 10,
            tcp_message_timeout_secs: 5,
            tsig_grace_hours: 168,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelSettings {
    /// Allow webhooks to loopback and private addresses. Off by default so
    /// that a webhook URL cannot reach into the operator's network.
    pub allow_private_targets: bool,
    /// This server's public base URL, for links in emails.
    pub public_url: String,
    /// How often workers look for work written by other processes (ms).
    pub poll_ms: u64,
    /// Delivery attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay in seconds (doubles each attempt, with jitter).
    pub backoff_base_secs: i64,
    /// Longest delay between attempts, in seconds.
    pub backoff_cap_secs: i64,
    /// How long an old webhook secret stays valid after a rotation, seconds.
    pub secret_grace_secs: i64,
    /// Messages in flight at once per destination (a platform's webhook, a
    /// party's email); more wait in that destination's own queue.
    pub concurrency_per_destination: usize,
    /// How long a webhook or SMTP connection may take to open (ms).
    pub connect_timeout_ms: u64,
    /// How long a receiver may take to answer once connected (ms).
    pub response_timeout_ms: u64,
    /// Consecutive failures or timeouts that open a destination's circuit
    /// breaker (its messages then take the retry schedule unattempted).
    pub breaker_failures: u32,
    /// How long an open breaker waits before one probe; doubles after each
    /// failed probe up to `breaker_max_open_secs`.
    pub breaker_open_secs: u64,
    pub breaker_max_open_secs: u64,
    /// How long a claimed message is leased (real seconds); renewed while
    /// it is sent, so a crashed process's messages resume within this.
    pub lease_secs: i64,
    /// Notice submissions answer 429 with Retry-After while this many
    /// messages to healthy destinations are due and unsent; 0: never.
    pub max_backlog: u64,
    /// How long a group commit of delivery results waits for more (ms).
    pub group_commit_ms: u64,
    /// Database connections delivery keeps for itself (claims, group
    /// commits, lease renewals), apart from the pool HTTP requests share,
    /// so a burst of submissions cannot starve the senders.
    pub delivery_connections: u32,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            allow_private_targets: false,
            public_url: String::new(),
            poll_ms: 500,
            max_attempts: 8,
            backoff_base_secs: 5,
            backoff_cap_secs: 3600,
            secret_grace_secs: 86_400,
            concurrency_per_destination: 4,
            connect_timeout_ms: 3000,
            response_timeout_ms: 10_000,
            breaker_failures: 5,
            breaker_open_secs: 5,
            breaker_max_open_secs: 300,
            lease_secs: 15,
            max_backlog: 1000,
            group_commit_ms: 2,
            delivery_connections: 4,
        }
    }
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`. Empty: no email.
    pub url: String,
    /// The From address of fallback emails.
    pub from: String,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            url: String::new(),
            from: "tapis <tapis@localhost>".into(),
        }
    }
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &tapis_store::redact_url(&self.url))
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlaSettings {
    /// A bundled policy: `default` (4 h for terrorism, child sexual abuse
    /// and public order; 24 h otherwise) or `eu-tco` (1 h for terrorism).
    pub preset: String,
    /// A policy file (TOML) that replaces the preset.
    pub policy_file: Option<PathBuf>,
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings {
            preset: "default".into(),
            policy_file: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("tapis-data"),
            database_url: String::new(),
            authority_name: "Authority".into(),
            log: "info".into(),
            log_format: LogFormat::Text,
            secrets_key_file: None,
            secrets_key: SecretText::default(),
            secrets_previous_key: SecretText::default(),
            signing_key_file: None,
            limits: LimitSettings::default(),
            channel: ChannelSettings::default(),
            smtp: SmtpSettings::default(),
            sla: SlaSettings::default(),
            rpz: RpzSettings::default(),
            compliance: ComplianceSettings::default(),
            due_process: DueProcessSettings::default(),
            privacy: PrivacySettings::default(),
            database: DatabaseSettings::default(),
            health: HealthSettings::default(),
            metrics: MetricsSettings::default(),
            ownership: OwnershipSettings::default(),
            web: WebSettings::default(),
            transparency: TransparencySettings::default(),
            flags: FlagSettings::default(),
            register: RegisterSettings::default(),
            retention: RetentionSettings::default(),
        }
    }
}

impl std::fmt::Debug for Settings {
    /// The database URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &tapis_store::redact_url(&self.database_url))
            .field("authority_name", &self.authority_name)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("secrets_key_file", &self.secrets_key_file)
            .field("secrets_key", &self.secrets_key)
            .field("secrets_previous_key", &self.secrets_previous_key)
            .field("limits", &self.limits)
            .field("channel", &self.channel)
            .field("smtp", &self.smtp)
            .field("sla", &self.sla)
            .field("rpz", &self.rpz)
            .field("compliance", &self.compliance)
            .field("database", &self.database)
            .field("health", &self.health)
            .field("metrics", &self.metrics)
            .field("signing_key_file", &self.signing_key_file)
            .field("ownership", &self.ownership)
            .field("transparency", &self.transparency)
            .field("flags", &self.flags)
            .field("register", &self.register)
            .field("retention", &self.retention)
            .finish()
    }
}

/// A secret given as text (`TAPIS_SECRETS_KEY`), never shown by `Debug`.
#[derive(Clone, Default, PartialEq)]
pub struct SecretText(Option<String>);

impl SecretText {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "<set, redacted>"
        } else {
            "<unset>"
        })
    }
}

/// Environment variables that are not settings but are ours.
const OTHER_VARS: &[&str] = &[
    "TAPIS_CONFIG",
    "TAPIS_BOOTSTRAP_TOKEN",
    "TAPIS_LOG_STYLE",
    "TAPIS_REPLAY_TOKEN",
];

/// Overrides from the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub dns_listen: Option<SocketAddr>,
}

impl Settings {
    /// Load settings. `config` is `--config`; without it `tapis.toml` in the
    /// working directory is read if present.
    pub fn load(
        config: Option<&Path>,
        env: &BTreeMap<String, String>,
        cli: &Overrides,
    ) -> anyhow::Result<(Settings, Vec<String>)> {
        let mut warnings = Vec::new();
        let env_config = env.get("TAPIS_CONFIG").map(PathBuf::from);
        let path = config.map(Path::to_path_buf).or(env_config);
        let mut s = match &path {
            Some(p) => Self::from_file(p)?,
            None if Path::new("tapis.toml").exists() => Self::from_file(Path::new("tapis.toml"))?,
            None => Settings::default(),
        };
        for (key, value) in env.iter().filter(|(k, _)| k.starts_with("TAPIS_")) {
            let v = value.trim();
            let bad = |what: &str| anyhow::anyhow!("{key}={value:?} is not {what}");
            match key.as_str() {
                "TAPIS_LISTEN" => {
                    s.listen = v
                        .parse()
                        .map_err(|_| bad("an address like 127.0.0.1:8080"))?
                }
                "TAPIS_DATA_DIR" => s.data_dir = PathBuf::from(v),
                "TAPIS_DATABASE_URL" => s.database_url = v.to_owned(),
                "TAPIS_AUTHORITY_NAME" => s.authority_name = v.to_owned(),
                "TAPIS_LOG" => s.log = v.to_owned(),
                "TAPIS_LOG_FORMAT" => {
                    s.log_format = match v {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => return Err(bad("text or json")),
                    }
                }
                "TAPIS_LIMITS_MAX_BODY_BYTES" => {
                    s.limits.max_body_bytes = v.parse().map_err(|_| bad("a number of bytes"))?
                }
                "TAPIS_LIMITS_MAX_ITEMS" => {
                    s.limits.max_items = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_LIMITS_MAX_CONNECTIONS" => {
                    s.limits.max_connections = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_LIMITS_CONNECTIONS_PER_ADDRESS" => {
                    s.limits.connections_per_address = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_LIMITS_HEADER_READ_TIMEOUT_SECS" => {
                    s.limits.header_read_timeout_secs =
                        v.parse().map_err(|_| bad("a number of seconds"))?
                }
                "TAPIS_LIMITS_ANONYMOUS_PER_MINUTE" => {
                    s.limits.anonymous_per_minute = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_LIMITS_ANONYMOUS_BURST" => {
                    s.limits.anonymous_burst = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_LIMITS_STREAMS_PER_TOKEN" => {
                    s.limits.streams_per_token = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_LIMITS_TRANSFER_HOSTS_PER_ISP" => {
                    s.limits.transfer_hosts_per_isp = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_CHANNEL_ALLOW_PRIVATE_TARGETS" => {
                    s.channel.allow_private_targets = v.parse().map_err(|_| bad("true or false"))?
                }
                "TAPIS_CHANNEL_PUBLIC_URL" => s.channel.public_url = v.to_owned(),
                "TAPIS_CHANNEL_DELIVERY_CONNECTIONS" => {
                    s.channel.delivery_connections = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_CHANNEL_CONCURRENCY_PER_DESTINATION" => {
                    s.channel.concurrency_per_destination =
                        v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_CHANNEL_CONNECT_TIMEOUT_MS" => {
                    s.channel.connect_timeout_ms = v.parse().map_err(|_| bad("milliseconds"))?
                }
                "TAPIS_CHANNEL_RESPONSE_TIMEOUT_MS" => {
                    s.channel.response_timeout_ms = v.parse().map_err(|_| bad("milliseconds"))?
                }
                "TAPIS_CHANNEL_BREAKER_FAILURES" => {
                    s.channel.breaker_failures = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_CHANNEL_BREAKER_OPEN_SECS" => {
                    s.channel.breaker_open_secs = v.parse().map_err(|_| bad("seconds"))?
                }
                "TAPIS_CHANNEL_BREAKER_MAX_OPEN_SECS" => {
                    s.channel.breaker_max_open_secs = v.parse().map_err(|_| bad("seconds"))?
                }
                "TAPIS_CHANNEL_LEASE_SECS" => {
                    s.channel.lease_secs = v.parse().map_err(|_| bad("seconds"))?
                }
                "TAPIS_CHANNEL_MAX_BACKLOG" => {
                    s.channel.max_backlog = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_CHANNEL_GROUP_COMMIT_MS" => {
                    s.channel.group_commit_ms = v.parse().map_err(|_| bad("milliseconds"))?
                }
                "TAPIS_SMTP_URL" => s.smtp.url = v.to_owned(),
                "TAPIS_SMTP_FROM" => s.smtp.from = v.to_owned(),
                "TAPIS_SLA_PRESET" => s.sla.preset = v.to_owned(),
                "TAPIS_RPZ_DNS_LISTEN" => {
                    s.rpz.dns_listen = v
                        .parse()
                        .map_err(|_| bad("an address like 127.0.0.1:5300"))?
                }
                "TAPIS_RPZ_TCP_MAX_CONNECTIONS" => {
                    s.rpz.tcp_max_connections = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_RPZ_TCP_RESERVED_CONNECTIONS" => {
                    s.rpz.tcp_reserved_connections = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_RPZ_TCP_CONNECTIONS_PER_ADDRESS" => {
                    s.rpz.tcp_connections_per_address = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_RPZ_TCP_IDLE_TIMEOUT_SECS" => {
                    s.rpz.tcp_idle_timeout_secs =
                        v.parse().map_err(|_| bad("a number of seconds"))?
                }
                "TAPIS_RPZ_TSIG_GRACE_HOURS" => {
                    s.rpz.tsig_grace_hours = v.parse().map_err(|_| bad("a number of hours"))?
                }
                "TAPIS_RPZ_TCP_MESSAGE_TIMEOUT_SECS" => {
                    s.rpz.tcp_message_timeout_secs =
                        v.parse().map_err(|_| bad("a number of seconds"))?
                }
                "TAPIS_DATABASE_STATEMENT_TIMEOUT_MS" => {
                    s.database.statement_timeout_ms =
                        v.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "TAPIS_DATABASE_LOCK_TIMEOUT_MS" => {
                    s.database.lock_timeout_ms =
                        v.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "TAPIS_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS" => {
                    s.database.idle_in_transaction_timeout_ms =
                        v.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "TAPIS_DATABASE_ACQUIRE_TIMEOUT_MS" => {
                    s.database.acquire_timeout_ms =
                        v.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "TAPIS_DATABASE_SQLITE_BUSY_TIMEOUT_MS" => {
                    s.database.sqlite_busy_timeout_ms =
                        v.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "TAPIS_DATABASE_KEEPALIVE_SECS" => {
                    s.database.keepalive_secs = v.parse().map_err(|_| bad("a number of seconds"))?
                }
                "TAPIS_HEALTH_READY_LOCK_TIMEOUT_MS" => {
                    s.health.ready_lock_timeout_ms =
                        v.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "TAPIS_HEALTH_READY_LOOP_STALE_SECS" => {
                    s.health.ready_loop_stale_secs =
                        v.parse().map_err(|_| bad("a number of seconds"))?
                }
                "TAPIS_METRICS_ALLOW_FROM" => {
                    s.metrics.allow_from = v
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "TAPIS_SLA_POLICY_FILE" => s.sla.policy_file = Some(PathBuf::from(v)),
                "TAPIS_SECRETS_KEY_FILE" => s.secrets_key_file = Some(PathBuf::from(v)),
                "TAPIS_SIGNING_KEY_FILE" => s.signing_key_file = Some(PathBuf::from(v)),
                "TAPIS_OWNERSHIP_LEASE_MS" => {
                    s.ownership.lease_ms = v.parse().map_err(|_| bad("milliseconds"))?
                }
                "TAPIS_OWNERSHIP_RENEW_MS" => {
                    s.ownership.renew_ms = v.parse().map_err(|_| bad("milliseconds"))?
                }
                "TAPIS_OWNERSHIP_SCHEDULER_CONNECTIONS" => {
                    s.ownership.scheduler_connections = v.parse().map_err(|_| bad("a number"))?
                }
                // the value is a secret: never put it in a message
                "TAPIS_SECRETS_KEY" => s.secrets_key = SecretText(Some(v.to_owned())),
                "TAPIS_SECRETS_PREVIOUS_KEY" => {
                    s.secrets_previous_key = SecretText(Some(v.to_owned()))
                }
                "TAPIS_WEB_TIME_ZONE" => s.web.time_zone = v.to_owned(),
                "TAPIS_WEB_ZONE_LABEL" => s.web.zone_label = v.to_owned(),
                "TAPIS_WEB_SESSION_IDLE_MINUTES" => {
                    s.web.session_idle_minutes =
                        v.parse().map_err(|_| bad("a number of minutes"))?
                }
                "TAPIS_WEB_SESSION_MAX_HOURS" => {
                    s.web.session_max_hours = v.parse().map_err(|_| bad("a number of hours"))?
                }
                "TAPIS_WEB_SECURE_COOKIES" => {
                    s.web.secure_cookies = Some(v.parse().map_err(|_| bad("true or false"))?)
                }
                "TAPIS_WEB_FAILURES_PER_ADDRESS" => {
                    s.web.failures_per_address = v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_WEB_EVIDENCE_MAX_BYTES" => {
                    s.web.evidence_max_bytes = v.parse().map_err(|_| bad("a number of bytes"))?
                }
                "TAPIS_TRANSPARENCY_ORIGIN" => s.transparency.origin = v.to_owned(),
                "TAPIS_TRANSPARENCY_CHECKPOINT_INTERVAL_SECS" => {
                    s.transparency.checkpoint_interval_secs =
                        v.parse().map_err(|_| bad("a number"))?
                }
                "TAPIS_TRANSPARENCY_WITNESSES" => {
                    s.transparency.witnesses = v
                        .split(',')
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                k if OTHER_VARS.contains(&k) || k.starts_with("TAPIS_TEST_") => {}
                k => warnings.push(format!("ignoring unknown environment variable {k}")),
            }
        }
        if let Some(l) = cli.listen {
            s.listen = l;
        }
        if let Some(d) = &cli.data_dir {
            s.data_dir = d.clone();
        }
        if let Some(d) = cli.dns_listen {
            s.rpz.dns_listen = d;
        }
        if let Some(u) = &cli.database_url {
            s.database_url = u.clone();
        }
        s.check()?;
        Ok((s, warnings))
    }

    fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }

    fn check(&self) -> anyhow::Result<()> {
        if !(1024..=64 * 1024 * 1024).contains(&self.limits.max_body_bytes) {
            bail!("limits.max_body_bytes must be between 1 KiB and 64 MiB");
        }
        if !(1..=100_000).contains(&self.limits.max_items) {
            bail!("limits.max_items must be between 1 and 100000");
        }
        self.limits.check()?;
        self.retention.check()?;
        let o = &self.ownership;
        if !(50..=60_000).contains(&o.renew_ms)
            || !(3 * o.renew_ms..=600_000).contains(&o.lease_ms)
            || !(1..=16).contains(&o.scheduler_connections)
        {
            bail!(
                "ownership: renew_ms must be 50..60000, lease_ms at least 3 × renew_ms (and at most 600000), scheduler_connections 1..16"
            );
        }
        let u = &self.database_url;
        if tapis_core::policy::SlaPolicy::preset(&self.sla.preset).is_none() {
            bail!("sla.preset must be default or eu-tco");
        }
        if self.channel.max_attempts == 0
            || self.channel.backoff_base_secs <= 0
            || self.channel.backoff_cap_secs < self.channel.backoff_base_secs
        {
            bail!(
                "channel: max_attempts must be at least 1 and 0 < backoff_base_secs <= backoff_cap_secs"
            );
        }
        let c = &self.channel;
        if !(1..=256).contains(&c.concurrency_per_destination)
            || c.connect_timeout_ms == 0
            || c.response_timeout_ms == 0
            || c.breaker_failures == 0
            || c.breaker_open_secs == 0
            || c.breaker_max_open_secs < c.breaker_open_secs
            || c.lease_secs < 3
            || c.group_commit_ms > 1000
            || !(1..=64).contains(&c.delivery_connections)
        {
            bail!(
                "channel: concurrency_per_destination must be 1 to 256, the timeouts, breaker_failures and breaker_open_secs at least 1, breaker_max_open_secs >= breaker_open_secs, lease_secs at least 3, group_commit_ms at most 1000 and delivery_connections 1 to 64"
            );
        }
        let smtp_ok = ["smtp://", "smtps://"]
            .iter()
            .any(|p| self.smtp.url.starts_with(p));
        if !self.smtp.url.is_empty() && !smtp_ok {
            bail!("smtp.url must start with smtp:// or smtps://");
        }
        for (key, name) in [
            ("rpz.zone_name", &self.rpz.zone_name),
            ("rpz.block_page_host", &self.rpz.block_page_host),
        ] {
            let bare = name.trim_end_matches('.');
            if bare.is_empty()
                || bare.len() > 200
                || !bare.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
            {
                bail!("{key} must be a domain name, e.g. rpz.tapis.");
            }
        }
        let r = &self.rpz;
        if !(1..=65_536).contains(&r.tcp_max_connections)
            || r.tcp_reserved_connections >= r.tcp_max_connections
            || r.tcp_connections_per_address == 0
            || !(1..=3600).contains(&r.tcp_idle_timeout_secs)
            || !(1..=3600).contains(&r.tcp_message_timeout_secs)
        {
            bail!(
                "rpz: tcp_max_connections must be 1 to 65536, tcp_reserved_connections less than it, \
                 tcp_connections_per_address at least 1, and the TCP timeouts 1 to 3600 seconds"
            );
        }
        if !(1..=2160).contains(&r.tsig_grace_hours) {
            bail!("rpz.tsig_grace_hours must be 1 to 2160 (90 days)");
        }
        if self.privacy.log_client_addresses
            && self.privacy.log_client_addresses_reason.trim().len() < 10
        {
            bail!(
                "privacy.log_client_addresses needs privacy.log_client_addresses_reason: say why (it is written to the audit log)"
            );
        }
        self.web.offset()?;
        if !(1..=1440).contains(&self.web.session_idle_minutes)
            || !(1..=720).contains(&self.web.session_max_hours)
            || self.web.failures_per_address == 0
            || self.web.zone_label.trim().is_empty()
        {
            bail!(
                "web: session_idle_minutes must be 1 to 1440, session_max_hours 1 to 720, \
                 failures_per_address at least 1, and zone_label not empty"
            );
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.web.evidence_max_bytes) {
            bail!("web.evidence_max_bytes must be between 1 KiB and 1 GiB");
        }
        if !(1..=100).contains(&self.compliance.sample) || self.compliance.canaries.len() > 20 {
            bail!("compliance: sample must be 1 to 100, and at most 20 canaries");
        }
        for c in &self.compliance.canaries {
            tapis_core::target::DomainName::parse(c)
                .map_err(|e| anyhow::anyhow!("compliance.canaries: {c:?}: {e}"))?;
        }
        let known = ["postgres://", "postgresql://", "sqlite:"];
        if !u.is_empty() && !known.iter().any(|k| u.starts_with(k)) {
            bail!(
                "database_url must start with postgres:// or sqlite: (or be empty for the embedded SQLite)"
            );
        }
        self.database.check()?;
        if !(50..=60_000).contains(&self.health.ready_lock_timeout_ms)
            || !(1..=3600).contains(&self.health.ready_loop_stale_secs)
        {
            bail!(
                "health: ready_lock_timeout_ms must be 50 to 60000 and ready_loop_stale_secs 1 to 3600"
            );
        }
        self.metrics.allow_from()?;
        Ok(())
    }

    /// The SLA policy in force: the policy file if set, else the preset.
    pub fn sla_policy(&self) -> anyhow::Result<tapis_core::policy::SlaPolicy> {
        match &self.sla.policy_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the SLA policy {}", path.display()))?;
                tapis_core::policy::SlaPolicy::from_toml(&text)
                    .with_context(|| format!("the SLA policy {} is not valid", path.display()))
            }
            None => tapis_core::policy::SlaPolicy::preset(&self.sla.preset)
                .ok_or_else(|| anyhow::anyhow!("unknown SLA preset {}", self.sla.preset)),
        }
    }

    /// The URL the store opens.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("tapis.db").display())
        } else {
            self.database_url.clone()
        }
    }
}

#[cfg(test)]
mod tests;
