//! `tapis resolver`: the filtering resolver's settings (its own TOML file,
//! then flags), logging, and a runtime that stops gracefully on SIGTERM or
//! SIGINT. The resolver itself is `tapis_resolver`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tapis_resolver::{Config, ZoneConfig};

/// Run the filtering resolver: a DNS forwarder that enforces Response Policy Zones.
///
/// It answers on --listen (UDP and TCP), applies the policy zones in the
/// order given (first zone wins; QNAME triggers: exact and `*.` wildcard,
/// NXDOMAIN, NODATA, PASSTHRU, DROP, TCP-only, local data and walled-garden
/// CNAMEs), and forwards everything else to the --upstream resolvers (in
/// order, failing over), caching answers by their TTLs.
///
/// A zone either follows a primary by AXFR, then IXFR on NOTIFY and on the
/// SOA refresh timer, signed with TSIG (e.g. tapis serve's RPZ primary with
/// the key tapis issued to your ISP, or BIND), or is read from a zone file
/// that is re-read when it changes. Followed zones are kept in --data-dir
/// so a restart serves the last policy at once, even when the primary is
/// down. Blocked answers carry an Extended DNS Error (RFC 8914) naming the
/// order when the zone says which.
///
/// Only clients in allow_query may ask (others are answered REFUSED); by
/// default that is loopback and the private ranges (127.0.0.0/8, ::1,
/// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7,
/// fe80::/10). Listening on a public address without listing your own
/// clients' networks would make an open resolver: an amplifier for anyone.
///
/// Limits: at most --max-upstream-queries (1024) upstream queries in
/// flight, identical questions sharing one, a miss over the cap answered
/// SERVFAIL at once (policy and cache answers are unaffected); at most
/// --max-tcp-clients (1024) TCP connections; over UDP at most --rate-limit
/// (100) answers per second per client /24 (IPv6: /56), past which queries
/// are dropped except every second one, answered empty with TC so a real
/// client retries over TCP (loopback is exempt; 0 turns it off).
///
/// --config FILE is the resolver's own TOML file (not tapis.toml); flags
/// override it. Example:
///
///   listen = "0.0.0.0:53"
///   allow_query = ["198.51.100.0/22", "2001:db8:42::/48", "10.0.0.0/8"]
///   upstreams = ["192.0.2.53:53", "198.51.100.53:53"]
///   metrics_listen = "127.0.0.1:9153"
///   lookup_url = "https://tapis.example/block"
///   [[zone]]
///   name = "rpz.tapis."
///   primary = "203.0.113.10:53"
///   tsig_key_name = "isp-netco."
///   tsig_secret = "base64…"
///
/// Other keys: data_dir, threads, upstream_timeout_ms, cache_bytes,
/// max_ttl, max_negative_ttl, max_udp_size, ede, query_log,
/// query_log_client_ip, health_interval_secs, max_upstream_queries,
/// max_tcp_clients, rate_limit, rate_limit_slip (2; 0: drop all),
/// rate_limit_ipv4_prefix (24), rate_limit_ipv6_prefix (56),
/// rate_limit_exempt (CIDR list; default loopback); per zone: file,
/// tsig_algorithm, min_refresh_secs, max_refresh_secs, file_poll_secs.
/// Logs go to stderr (TAPIS_LOG sets the filter, default info). The query
/// log is off by default and never records client addresses unless
/// --query-log-client-ip is given. It opens no database: tapis's own
/// settings (tapis.toml, TAPIS_* variables) are not read.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment, after_help = RESOLVER_HELP)]
pub struct ResolverArgs {
    /// The resolver's own TOML file (not tapis.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where followed zones are kept between restarts (overrides the
    /// file's data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to answer DNS on, UDP and TCP (default 127.0.0.1:5353).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// A client network allowed to query (CIDR), repeatable; replaces the
    /// file's allow_query. Default: loopback and private ranges only.
    #[arg(long = "allow-query", value_name = "CIDR")]
    allow_query: Vec<tapis_resolver::access::Cidr>,
    /// Upstream queries in flight at most (default 1024); a cache miss
    /// beyond it is answered SERVFAIL at once.
    #[arg(long, value_name = "N")]
    max_upstream_queries: Option<usize>,
    /// TCP client connections open at most (default 1024).
    #[arg(long, value_name = "N")]
    max_tcp_clients: Option<usize>,
    /// UDP answers per second per client /24 or /56 (default 100; 0: no
    /// limit); past it queries are dropped or answered with TC.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Upstream resolver, repeatable, tried in order (replaces the file's list).
    #[arg(long = "upstream", value_name = "ADDR")]
    upstreams: Vec<SocketAddr>,
    /// A policy zone, repeatable, in precedence order: NAME=ADDR:PORT to
    /// follow a primary, or NAME=PATH for a zone file. Added after the
    /// file's zones.
    #[arg(long = "zone", value_name = "NAME=SOURCE")]
    zones: Vec<String>,
    /// TSIG key for the --zone primaries: KEYNAME:BASE64SECRET (or set
    /// TAPIS_RESOLVER_TSIG, which keeps the secret out of the process list).
    #[arg(
        long,
        value_name = "KEY:SECRET",
        env = "TAPIS_RESOLVER_TSIG",
        hide_env_values = true
    )]
    tsig: Option<String>,
    /// TSIG algorithm for --tsig.
    #[arg(long, value_name = "ALG", default_value = "hmac-sha256")]
    tsig_algorithm: String,
    /// Where Prometheus metrics are served (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// UDP worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Cache budget in bytes.
    #[arg(long, value_name = "BYTES")]
    cache_bytes: Option<usize>,
    /// Base URL named in blocked answers' EDE text (`…?name=<qname>`).
    #[arg(long, value_name = "URL")]
    lookup_url: Option<String>,
    /// Log every query's name, type and outcome (off by default).
    #[arg(long)]
    query_log: bool,
    /// Also log client IP addresses in the query log; only for a stated
    /// reason (privacy by default).
    #[arg(long, requires = "query_log")]
    query_log_client_ip: bool,
}

const RESOLVER_HELP: &str = "\
Exit status: 0 after a graceful stop (SIGTERM or SIGINT), 2 when it cannot start (bad settings, an address in use).

Example, following tapis's RPZ primary with the key tapis issued your ISP:
  TAPIS_RESOLVER_TSIG=isp-netco.:BASE64SECRET tapis resolver --listen 0.0.0.0:53 \\
      --allow-query 198.51.100.0/22 --allow-query 2001:db8:42::/48 \\
      --upstream 192.0.2.53:53 --zone rpz.tapis.=203.0.113.10:5300 --data-dir /var/lib/tapis-resolver";

impl ResolverArgs {
    /// --config and --data-dir given before the command (`tapis --config
    /// FILE resolver`, as earlier versions took them) count when not given
    /// after it.
    pub fn or_early(mut self, config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Self {
        self.config = self.config.or(config);
        self.data_dir = self.data_dir.or(data_dir);
        self
    }
}

pub fn run(mut args: ResolverArgs) -> anyhow::Result<ExitCode> {
    let mut log = crate::config::Settings::default();
    if let Ok(filter) = std::env::var("TAPIS_LOG") {
        log.log = filter;
    }
    crate::telemetry::init(&log);
    let (config, data_dir) = (args.config.take(), args.data_dir.take());
    let cfg = settings(config, data_dir, args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        // the handler exists before the resolver says it is listening, so
        // a SIGTERM sent right after that line stops it cleanly
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        let running = tapis_resolver::start(cfg)
            .await
            .context("cannot start the resolver")?;
        println!(
            "tapis resolver listening on {} (udp, tcp){}",
            running.udp_addr,
            running
                .metrics_addr
                .map(|m| format!(", metrics on http://{m}/metrics"))
                .unwrap_or_default()
        );
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Defaults < the resolver's TOML file < flags.
fn settings(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    a: ResolverArgs,
) -> anyhow::Result<Config> {
    let mut cfg = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Config::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if !a.allow_query.is_empty() {
        cfg.allow_query = a.allow_query;
    }
    if let Some(n) = a.max_upstream_queries {
        cfg.max_upstream_queries = n;
    }
    if let Some(n) = a.max_tcp_clients {
        cfg.max_tcp_clients = n;
    }
    if let Some(n) = a.rate_limit {
        cfg.rate_limit = n;
    }
    if !a.upstreams.is_empty() {
        cfg.upstreams = a.upstreams;
    }
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    if let Some(m) = a.metrics_listen {
        cfg.metrics_listen = Some(m);
    }
    if let Some(t) = a.threads {
        cfg.threads = t;
    }
    if let Some(c) = a.cache_bytes {
        cfg.cache_bytes = c;
    }
    if let Some(u) = a.lookup_url {
        cfg.lookup_url = Some(u);
    }
    cfg.query_log |= a.query_log;
    cfg.query_log_client_ip |= a.query_log_client_ip;
    let tsig = match &a.tsig {
        Some(t) => {
            let Some((name, secret)) = t.split_once(':') else {
                bail!("--tsig wants KEYNAME:BASE64SECRET");
            };
            Some((name.to_owned(), secret.to_owned()))
        }
        None => None,
    };
    for z in &a.zones {
        let Some((name, source)) = z.split_once('=') else {
            bail!("--zone wants NAME=ADDR:PORT or NAME=PATH, got {z:?}");
        };
        let (primary, file) = match source.parse::<SocketAddr>() {
            Ok(addr) => (Some(addr), None),
            Err(_) => (None, Some(PathBuf::from(source))),
        };
        let (key, secret) = match (&tsig, primary) {
            (Some((k, s)), Some(_)) => (Some(k.clone()), Some(s.clone())),
            _ => (None, None),
        };
        cfg.zones.push(ZoneConfig {
            name: name.to_owned(),
            primary,
            file,
            tsig_key_name: key,
            tsig_algorithm: a.tsig_algorithm.clone(),
            tsig_secret: secret,
            min_refresh_secs: 5,
            max_refresh_secs: 300,
            file_poll_secs: 2,
        });
    }
    cfg.check()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ResolverArgs,
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("r.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:53\"\nupstreams = [\"127.0.0.1:1\"]\nthreads = 3\n[[zone]]\nname = \"a.rpz\"\nfile = \"/a\"\n",
        )
        .expect("w");
        let t = T::try_parse_from([
            "t",
            "--listen",
            "127.0.0.1:5454",
            "--upstream",
            "127.0.0.1:2",
            "--zone",
            "b.rpz=127.0.0.1:5300",
            "--tsig",
            "isp.:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
            "--allow-query",
            "192.0.2.0/24",
            "--max-upstream-queries",
            "64",
            "--rate-limit",
            "0",
        ])
        .expect("args");
        let c = settings(Some(f), Some(dir.path().join("d")), t.a).expect("settings");
        assert_eq!(c.listen.port(), 5454);
        assert_eq!(
            c.upstreams,
            vec!["127.0.0.1:2".parse::<SocketAddr>().expect("a")]
        );
        assert_eq!(c.threads, 3);
        let allowed: Vec<String> = c.allow_query.iter().map(|n| n.to_string()).collect();
        assert_eq!(allowed, ["192.0.2.0/24"]);
        assert_eq!((c.max_upstream_queries, c.max_tcp_clients), (64, 1024));
        assert_eq!(c.rate_limit, 0);
        assert_eq!(c.zones.len(), 2);
        assert_eq!(c.zones[1].tsig_key_name.as_deref(), Some("isp."));
        assert_eq!(c.data_dir, dir.path().join("d"));
        let bad = T::try_parse_from(["t", "--upstream", "127.0.0.1:1", "--zone", "nosource"])
            .expect("args");
        assert!(settings(None, None, bad.a).is_err());
    }
}
