//! The server's wiring, usable in-process: the store, the HTTP API, the
//! channel workers (scheduler and delivery), the RPZ primary and the
//! compliance prober, started together and stopped together. `tapis serve`
//! runs it until a signal; `tapis replay` and `tapis serve --demo` run it
//! on a simulated clock and drive it over HTTP like any client would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tapis_core::{Clock, ManualClock, SystemClock, Timestamp};
use tapis_store::Store;

use crate::config::Settings;

/// How to start.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    /// `TAPIS_BOOTSTRAP_TOKEN`: the admin token on a first start.
    pub bootstrap_token: Option<String>,
    /// Run on a simulated clock starting here.
    pub simulated_clock: Option<Timestamp>,
    /// A demonstration server (said in `/healthz`).
    pub demo: bool,
}

/// What happened at start-up, for the caller to tell the operator.
pub enum Bootstrap {
    /// The database already had its authority.
    Existing,
    /// First start: the authority was created; the admin token is the
    /// bootstrap token, or a new secret written to `written_to`.
    Created {
        authority: String,
        written_to: Option<std::path::PathBuf>,
    },
}

/// A running server.
pub struct Running {
    pub http: SocketAddr,
    pub dns: SocketAddr,
    pub store: Store,
    pub bootstrap: Bootstrap,
    /// The simulated time at start, when the clock is simulated.
    pub simulated_now: Option<Timestamp>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stop everything and wait for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_tx.send(true);
        let served = self.http_task.await;
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
        match served {
            Ok(r) => r.context("the HTTP server failed"),
            Err(e) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
        }
    }
}

/// Open the database, bootstrap it, and start every part. Returns once all
/// sockets are bound.
pub async fn start(settings: &Settings, opts: StartOptions) -> anyhow::Result<Running> {
    // the directory holds the database and the keys: owner only
    crate::cli::ensure_private_dir(&settings.data_dir)?;
    let token_file = settings.data_dir.join("admin-token");
    if token_file.exists() {
        crate::cli::check_key_file(&token_file, "the first admin token")?;
    }
    let manual = opts.simulated_clock.map(ManualClock::new);
    let clock: Arc<dyn Clock> = match &manual {
        Some(m) => Arc::new(m.clone()),
        None => Arc::new(SystemClock),
    };
    let signer = match &settings.signing_key_file {
        // several processes may share one key: it must exist, never be made
        // here (each process would make its own)
        Some(path) if !path.exists() => anyhow::bail!(
            "signing_key_file {} does not exist: make it once with `openssl rand -hex 32 > {0}; chmod 600 {0}` and give every process the same file",
            path.display()
        ),
        Some(path) => crate::cli::load_signing_key(path)?,
        None => crate::cli::load_signing_key(&settings.data_dir.join("signing-key"))?,
    };
    let due_process = settings.due_process_policy()?;
    let public_suffix_list = due_process.public_suffixes.origin().clone();
    tracing::info!(
        source = %public_suffix_list.source,
        version = %public_suffix_list.version,
        "public suffix list in use"
    );
    let options = tapis_store::Options {
        sla: settings.sla_policy()?,
        signer: Some(signer),
        retry: tapis_store::RetryPolicy {
            max_attempts: settings.channel.max_attempts,
            base_secs: settings.channel.backoff_base_secs,
            cap_secs: settings.channel.backoff_cap_secs,
            secret_grace_secs: settings.channel.secret_grace_secs,
            lease_secs: settings.channel.lease_secs,
        },
        due_process,
        secrets: settings.secret_key()?,
        isp_rules: settings
            .limits
            .isp_rules(settings.channel.allow_private_targets),
        tsig_grace_secs: i64::from(settings.rpz.tsig_grace_hours) * 3600,
        timeouts: settings.database.timeouts(),
        instance_id: Some(instance_id(&settings.data_dir)?),
        log: settings.transparency.log_options()?,
    };
    let url = settings.database_url();
    crate::cli::prepare_database(&url)?;
    let store = Store::open_with(&url, clock, options)
        .await
        .map_err(|e| crate::cli::explain_open_error(&url, e))?;
    match store.secrets().kid() {
        Some(kid) => {
            // secrets written before the key was configured, or under the
            // key it replaced (TAPIS_SECRETS_PREVIOUS_KEY), are sealed now
            let sealed = store
                .reseal_secrets()
                .await
                .context("cannot seal the secrets stored in clear")?;
            tracing::info!(
                kid,
                sealed,
                retired = ?store.secrets().retired_kids(),
                "secrets at rest (webhook, TSIG, contact and two-step secrets) are sealed"
            )
        }
        None if opts.demo => {}
        None => tracing::warn!(
            "secrets at rest (webhook and TSIG secrets) are stored in clear: set secrets_key_file or TAPIS_SECRETS_KEY (make a key with `head -c 32 /dev/urandom | base64 > secrets.key; chmod 600 secrets.key`)"
        ),
    }
    let mut simulated_now = None;
    if let Some(m) = &manual {
        // one time for every process on the database; a restarted
        // simulation resumes where it was, never before START
        simulated_now = Some(store.share_simulated_clock(m.clone()).await?);
    }
    let lease = start_ownership(&store, settings).await?;
    let bootstrap_token = opts.bootstrap_token.as_deref().map(str::trim);
    if let Some(t) = bootstrap_token
        && t.len() < 24
    {
        anyhow::bail!("TAPIS_BOOTSTRAP_TOKEN must be at least 24 characters");
    }
    let bootstrap = match store
        .bootstrap(&settings.authority_name, bootstrap_token)
        .await?
    {
        Some(boot) => {
            let written_to = if bootstrap_token.is_none() {
                crate::cli::write_secret(&token_file, &boot.admin_secret)?;
                Some(token_file)
            } else {
                None
            };
            Bootstrap::Created {
                authority: boot.authority.name.clone(),
                written_to,
            }
        }
        None => {
            if let Some(t) = bootstrap_token
                && !store.token_exists(t).await?
            {
                tracing::warn!(
                    "TAPIS_BOOTSTRAP_TOKEN is set but this database was bootstrapped before; it is ignored"
                );
            }
            Bootstrap::Existing
        }
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? try --listen 127.0.0.1:0)",
                settings.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let public_url = if settings.channel.public_url.is_empty() {
        format!("http://{addr}")
    } else {
        settings.channel.public_url.clone()
    };
    let delivery = Arc::new(
        tapis_channel::Delivery::new(
            // connections of its own: submissions cannot starve the senders
            store.with_own_pool(settings.channel.delivery_connections),
            tapis_channel::DeliveryConfig {
                allow_private_targets: settings.channel.allow_private_targets,
                smtp: (!settings.smtp.url.is_empty()).then(|| tapis_channel::SmtpConfig {
                    url: settings.smtp.url.clone(),
                    from: settings.smtp.from.clone(),
                }),
                public_url,
                connect_timeout: Duration::from_millis(settings.channel.connect_timeout_ms),
                response_timeout: Duration::from_millis(settings.channel.response_timeout_ms),
                concurrency: settings.channel.concurrency_per_destination,
                breaker: tapis_core::breaker::BreakerPolicy {
                    failure_threshold: settings.channel.breaker_failures,
                    open_millis: settings.channel.breaker_open_secs.saturating_mul(1000),
                    max_open_millis: settings.channel.breaker_max_open_secs.saturating_mul(1000),
                },
                max_backlog: settings.channel.max_backlog,
                group_commit_window: Duration::from_millis(settings.channel.group_commit_ms),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow::anyhow!(e))?,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // `/readyz` fails if either loop stops beating
    store.liveness().expect("scheduler");
    store.liveness().expect("delivery");
    let poll = std::time::Duration::from_millis(settings.channel.poll_ms.max(50));
    // the scheduler gets its own task and connections: nothing else can
    // stall a timer; delivery runs in a task of its own
    // the retention policy, logged whenever it changes, applied by the scheduler
    let retention = settings.retention.policy().context("[retention]")?;
    if store
        .log_retention_policy(&retention)
        .await
        .context("cannot log the retention policy")?
    {
        tracing::info!(
            sha256 = retention.sha256(),
            "retention: a new policy is in force and logged"
        );
    }
    let scheduler = tapis_channel::Scheduler::new(
        store.with_own_pool(settings.ownership.scheduler_connections),
    )
    .with_retention(retention, settings.retention.interval()?);
    let mut tasks = vec![
        tokio::spawn(lease.run(store.with_own_pool(1), stop_rx.clone())),
        tapis_channel::spawn_scheduler(scheduler.clone(), poll, stop_rx.clone()),
        tapis_channel::spawn_delivery(store.clone(), delivery.clone(), poll, stop_rx.clone()),
    ];
    if settings.transparency.checkpoint_interval_secs > 0 {
        tasks.push(tokio::spawn(checkpoints(
            store.clone(),
            std::time::Duration::from_secs(settings.transparency.checkpoint_interval_secs),
            stop_rx.clone(),
        )));
    }
    tasks.extend(
        crate::cli::remove_admin_token_once_used(
            store.clone(),
            settings.data_dir.join("admin-token"),
            std::time::Duration::from_secs(2),
            stop_rx.clone(),
        )
        .await,
    );
    let zone = tapis_dns::ZoneConfig {
        zone: settings.rpz.zone_name.clone(),
        block_page_host: settings.rpz.block_page_host.clone(),
        explanations: tapis_dns::Explanations {
            enabled: settings.rpz.explanations,
            by_category: settings.rpz.block_kinds.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let (dns_addr, dns_task) = crate::dns::start(
        store.clone(),
        zone.clone(),
        &settings.rpz,
        settings.channel.allow_private_targets,
        stop_rx.clone(),
    )
    .await?;
    tasks.push(dns_task);
    if settings.compliance.probe_interval_secs > 0 {
        tasks.push(crate::dns::spawn_prober(
            store.clone(),
            zone.clone(),
            crate::dns::ProbeSettings {
                interval: std::time::Duration::from_secs(settings.compliance.probe_interval_secs),
                sample: settings.compliance.sample,
                canaries: settings.compliance.canaries.clone(),
            },
            stop_rx.clone(),
        ));
    }
    let mut state = tapis_http::AppState::new(
        store.clone(),
        tapis_http::Limits {
            max_body_bytes: settings.limits.max_body_bytes,
            notice: tapis_core::notice::Limits {
                max_items: settings.limits.max_items,
                ..Default::default()
            },
        },
    );
    state.allow_private_targets = settings.channel.allow_private_targets;
    state.accuracy = settings.flags.accuracy()?;
    state.challenges = Arc::new(tapis_http::pow::Challenges::new(
        pow_key(settings)?,
        settings.flags.pow()?,
    ));
    state.edge = tapis_http::edge::Edge::new(settings.limits.edge());
    if settings.privacy.log_client_addresses {
        store
            .record_client_address_logging(&settings.privacy.log_client_addresses_reason)
            .await
            .context("cannot record the reason for logging client addresses")?;
        tracing::warn!(
            reason = settings.privacy.log_client_addresses_reason.trim(),
            "privacy: client addresses of block-page and lookup requests ARE logged"
        );
        state.log_client_addresses = true;
    }
    // the register's redaction policy, logged whenever it changes
    state.register = Arc::new(settings.register.policy().context("[register]")?);
    state.retention = Arc::new(settings.retention.policy().context("[retention]")?);
    if store
        .log_register_policy(&state.register)
        .await
        .context("cannot log the register's redaction policy")?
    {
        tracing::info!(
            sha256 = state.register.sha256(),
            "register: a new redaction policy is in force and logged"
        );
    }
    state.zone = zone;
    state.admission = Some(Arc::new(Pushback {
        delivery: delivery.clone(),
        store: store.clone(),
    }));
    state
        .metrics
        .sources
        .push(crate::delivery_metrics::source(delivery.clone()));
    state.demo = opts.demo;
    state.public_suffix_list = public_suffix_list;
    state.readiness = settings.health.readiness();
    state.metrics.allow_from = settings.metrics.allow_from()?;
    if let Some(m) = manual {
        state.clock_control = Some(Arc::new(SimControl(tapis_channel::SimulatedTime {
            clock: m,
            scheduler,
            delivery,
        })));
    }
    let web = web_state(&store, settings, &state, opts.demo)?;
    state.block_page = Some(tapis_web::render_block_page(web.config.clone()));
    state.web = Some(tapis_web::router(web));
    state.public_host = url::Url::parse(&settings.channel.public_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_end_matches('.').to_lowercase()));
    let mut stop = stop_rx;
    let http_task = tokio::spawn(tapis_http::serve(listener, state, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    Ok(Running {
        http: addr,
        dns: dns_addr,
        store,
        bootstrap,
        simulated_now,
        stop_tx,
        tasks,
        http_task,
    })
}

/// Take part in ownership (`tapis_store::lease`): one attempt now (taking
/// over at once from a crashed process of this host), so a lone process
/// owns the scheduler before it serves; the returned lease is then kept by
/// its own task. A SQLite database is for one process: a
/// lease held by another at start is said loudly.
async fn start_ownership(store: &Store, settings: &Settings) -> anyhow::Result<tapis_store::Lease> {
    let lease = store.use_lease(tapis_store::Lease::new(tapis_store::LeaseConfig {
        holder: tapis_store::lease::default_holder(),
        ttl: std::time::Duration::from_millis(settings.ownership.lease_ms),
        renew: std::time::Duration::from_millis(settings.ownership.renew_ms),
    }));
    if lease.reclaim_from_dead(store).await || lease.renew_once(store).await {
        return Ok(lease);
    }
    let holder = store
        .lease_row(tapis_store::lease::OWNER_LEASE)
        .await?
        .map(|r| r.holder)
        .unwrap_or_default();
    match store.backend() {
        tapis_store::Backend::Sqlite => tracing::warn!(
            %holder,
            "another process owns this SQLite database's scheduler: SQLite is for one tapis serve at a time (use PostgreSQL for several); if no other process runs, this is a previous run's lease and it lapses within ownership.lease_ms"
        ),
        tapis_store::Backend::Postgres => tracing::info!(
            %holder,
            this_process = lease.holder(),
            "another process owns the scheduler, NOTIFY and probes; this one serves and takes over if that one stops renewing"
        ),
    }
    Ok(lease)
}

/// This process's stable identity, kept in the data directory's
/// `instance-id` (created at first start, owner-only): outbox leases are
/// taken in its name, so after a crash the restarted process takes back at
/// once what it was sending. Two processes must not share a data directory.
fn instance_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            anyhow::ensure!(
                !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "{} is not an instance id (up to 64 letters, digits and '-'); delete it and a new one is made",
                path.display()
            );
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            let id = format!("tapis-{}", hex::encode(bytes));
            crate::cli::write_secret(&path, &id)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Push-back on notice submissions: from delivery's backlog, or when
/// writes have queued for their turn at the audit chain's lock for longer
/// than [`WRITE_QUEUE_PUSHBACK`] (the database cannot keep up; better a
/// quick 429 than a submission that waits seconds).
struct Pushback {
    delivery: Arc<tapis_channel::Delivery>,
    store: tapis_store::Store,
}

/// How long the oldest queued write may wait before submissions are pushed
/// back (a batch of writes commits in tens of milliseconds).
const WRITE_QUEUE_PUSHBACK: Duration = Duration::from_millis(250);

impl tapis_http::Admission for Pushback {
    fn retry_after(&self) -> Option<Duration> {
        self.delivery.pushback().or_else(|| {
            (self.store.write_backlog().oldest > WRITE_QUEUE_PUSHBACK)
                .then_some(Duration::from_secs(1))
        })
    }
}

struct SimControl(tapis_channel::SimulatedTime);

impl tapis_http::ClockControl for SimControl {
    fn advance(
        &self,
        secs: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Timestamp, String>> + Send + '_>>
    {
        Box::pin(async move { self.0.advance(secs).await.map_err(|e| e.to_string()) })
    }
}

/// The web interface's state from the settings (`[web]`).
/// The key public reports' challenges are MACed with: derived from the
/// secrets key when one is configured (every process sharing it accepts
/// the others' challenges), else random for this process.
fn pow_key(settings: &Settings) -> anyhow::Result<tapis_core::pow::PowKey> {
    use tapis_core::pow::PowKey;
    let text = match (settings.secrets_key.get(), &settings.secrets_key_file) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(p)) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the secrets key file {}", p.display()))?,
        ),
        (None, None) => None,
    };
    Ok(match text {
        Some(t) => PowKey::derive(t.trim().as_bytes()),
        None => PowKey::new(rand::random()),
    })
}

fn web_state(
    store: &tapis_store::Store,
    settings: &Settings,
    api: &tapis_http::AppState,
    demo: bool,
) -> anyhow::Result<tapis_web::WebState> {
    let w = &settings.web;
    let mut web = tapis_web::WebState::new(
        store.clone(),
        tapis_web::WebConfig {
            time_zone: w.offset()?,
            zone_label: w.zone_label.clone(),
            secure_cookies: w
                .secure_cookies
                .unwrap_or_else(|| settings.channel.public_url.starts_with("https://")),
            session: tapis_store::SessionPolicy {
                idle_ms: i64::from(w.session_idle_minutes) * 60_000,
                absolute_ms: i64::from(w.session_max_hours) * 3_600_000,
            },
            failures_per_address: w.failures_per_address,
            evidence_max_bytes: w.evidence_max_bytes,
            demo,
            public_url: settings.channel.public_url.clone(),
        },
    );
    web.taxonomy = api.taxonomy.clone();
    web.notice_limits = api.limits.notice;
    web.accuracy = api.accuracy;
    web.register = api.register.clone();
    Ok(web)
}

/// Sign a checkpoint every `every` while the log grows, as the owner only
/// (`make_checkpoint` does nothing when the latest has the log's size).
async fn checkpoints(
    store: Store,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if !store.is_owner() {
            continue;
        }
        if let Err(e) = store.make_checkpoint().await {
            tracing::warn!(error = %e, "cannot sign a checkpoint of the transparency log");
        }
    }
}
