//! Resolver settings: one TOML file (`deny_unknown_fields`), overridable by
//! the command line. Secrets never appear in `Debug`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use tapis_dns::TsigKey;
use tapis_dns::wire::Name;

use crate::Error;
use crate::access::{self, Cidr};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// UDP and TCP address to answer queries on.
    pub listen: SocketAddr,
    /// Client networks allowed to query (CIDR); others are answered
    /// REFUSED. Default: loopback and the private, shared (CGN),
    /// unique-local and link-local ranges ([`access::PRIVATE`]), never the
    /// whole Internet.
    pub allow_query: Vec<Cidr>,
    /// UDP answers per second per client prefix (`rrl.rs`); 0: no limit.
    pub rate_limit: u32,
    /// Past the limit, every `rate_limit_slip`-th query is answered empty
    /// with TC (the client retries over TCP); the rest are dropped. 0:
    /// drop all.
    pub rate_limit_slip: u32,
    /// The client prefix lengths the limit counts by.
    pub rate_limit_ipv4_prefix: u8,
    pub rate_limit_ipv6_prefix: u8,
    /// Clients the limit leaves alone (default: loopback, which cannot be
    /// forged from the network).
    pub rate_limit_exempt: Vec<Cidr>,
    /// Prometheus metrics (`GET /metrics`); none when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Where followed zones are persisted so a restart does not start empty.
    pub data_dir: PathBuf,
    /// Threads answering UDP (each reads the same socket).
    pub threads: usize,
    /// Upstream resolvers, tried in order.
    pub upstreams: Vec<SocketAddr>,
    pub upstream_timeout_ms: u64,
    /// At most this many upstream queries in flight (each holds a socket);
    /// a miss beyond it is answered SERVFAIL at once. Identical questions
    /// share one query.
    pub max_upstream_queries: usize,
    /// At most this many TCP client connections open at once; more are
    /// closed as soon as they are accepted.
    pub max_tcp_clients: usize,
    /// Seconds between checks of an upstream marked down.
    pub health_interval_secs: u64,
    /// Cache budget in bytes (answers plus keys, approximately).
    pub cache_bytes: usize,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
    /// The EDNS UDP size we advertise and the largest UDP answer we send.
    pub max_udp_size: u16,
    /// Add an Extended DNS Error (RFC 8914) to policy answers for clients
    /// that sent EDNS.
    pub ede: bool,
    /// Base URL named in the EDE text: `<ref>; see <url>?name=<qname>`.
    pub lookup_url: Option<String>,
    /// Log every query (name, type, outcome) at info level, target
    /// `tapis_resolver::querylog`. Off by default.
    pub query_log: bool,
    /// Also log the client's IP address. Off unless an operator turns it
    /// on for a stated reason.
    pub query_log_client_ip: bool,
    /// Policy zones, first wins.
    #[serde(rename = "zone")]
    pub zones: Vec<ZoneConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: ([127, 0, 0, 1], 5353).into(),
            allow_query: access::networks(&access::PRIVATE),
            rate_limit: 100,
            rate_limit_slip: 2,
            rate_limit_ipv4_prefix: 24,
            rate_limit_ipv6_prefix: 56,
            rate_limit_exempt: access::networks(&access::LOOPBACK),
            metrics_listen: None,
            data_dir: PathBuf::from("tapis-resolver-data"),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            upstreams: Vec::new(),
            upstream_timeout_ms: 1500,
            max_upstream_queries: 1024,
            max_tcp_clients: 1024,
            health_interval_secs: 5,
            cache_bytes: 64 << 20,
            max_ttl: 86_400,
            max_negative_ttl: 3_600,
            max_udp_size: 1232,
            ede: true,
            lookup_url: None,
            query_log: false,
            query_log_client_ip: false,
            zones: Vec::new(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The policy zone's name (origin), e.g. `rpz.tapis.`.
    pub name: String,
    /// Follow this primary by AXFR/IXFR (and its NOTIFYs)…
    pub primary: Option<SocketAddr>,
    /// …or read this zone file (re-read when it changes).
    pub file: Option<PathBuf>,
    pub tsig_key_name: Option<String>,
    #[serde(default = "default_alg")]
    pub tsig_algorithm: String,
    pub tsig_secret: Option<String>,
    /// Bounds on the SOA refresh interval, in seconds (a primary's
    /// 12-hour refresh is usually too slow for orders).
    #[serde(default = "default_min_refresh")]
    pub min_refresh_secs: u32,
    #[serde(default = "default_max_refresh")]
    pub max_refresh_secs: u32,
    /// Seconds between checks of a zone file's modification time.
    #[serde(default = "default_file_poll")]
    pub file_poll_secs: u64,
}

fn default_alg() -> String {
    "hmac-sha256".into()
}
fn default_min_refresh() -> u32 {
    5
}
fn default_max_refresh() -> u32 {
    300
}
fn default_file_poll() -> u64 {
    2
}

impl std::fmt::Debug for ZoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneConfig")
            .field("name", &self.name)
            .field("primary", &self.primary)
            .field("file", &self.file)
            .field("tsig_key_name", &self.tsig_key_name)
            .field("tsig_algorithm", &self.tsig_algorithm)
            .field(
                "tsig_secret",
                &self.tsig_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where a zone comes from, checked.
#[derive(Debug, Clone)]
pub enum ZoneSource {
    Primary {
        addr: SocketAddr,
        key: Option<TsigKey>,
    },
    File(PathBuf),
}

impl ZoneConfig {
    pub fn origin(&self) -> Result<Name, Error> {
        Name::from_ascii(&self.name)
            .map(|n| n.to_lowercase())
            .map_err(|e| Error::Config(format!("zone name {:?}: {e}", self.name)))
    }

    pub fn source(&self) -> Result<ZoneSource, Error> {
        match (&self.primary, &self.file) {
            (Some(addr), None) => {
                let key = match (&self.tsig_key_name, &self.tsig_secret) {
                    (Some(name), Some(secret)) => Some(
                        TsigKey::new(name, &self.tsig_algorithm, secret).map_err(|e| {
                            Error::Config(format!("zone {}: TSIG key: {e}", self.name))
                        })?,
                    ),
                    (None, None) => None,
                    _ => {
                        return Err(Error::Config(format!(
                            "zone {}: give both tsig_key_name and tsig_secret, or neither",
                            self.name
                        )));
                    }
                };
                Ok(ZoneSource::Primary { addr: *addr, key })
            }
            (None, Some(path)) => Ok(ZoneSource::File(path.clone())),
            _ => Err(Error::Config(format!(
                "zone {}: give exactly one of primary = \"ADDR:PORT\" or file = \"PATH\"",
                self.name
            ))),
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }

    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), Error> {
        if self.upstreams.is_empty() {
            return Err(Error::Config(
                "no upstreams: set upstreams = [\"ADDR:PORT\", …] or pass --upstream".into(),
            ));
        }
        if self.threads == 0 {
            return Err(Error::Config("threads must be at least 1".into()));
        }
        if self.max_upstream_queries == 0 {
            return Err(Error::Config(
                "max_upstream_queries must be at least 1".into(),
            ));
        }
        if self.max_tcp_clients == 0 {
            return Err(Error::Config("max_tcp_clients must be at least 1".into()));
        }
        if self.rate_limit > 60_000 {
            return Err(Error::Config(
                "rate_limit is at most 60000 answers per second (0 turns it off)".into(),
            ));
        }
        if self.rate_limit_ipv4_prefix > 32 || self.rate_limit_ipv6_prefix > 128 {
            return Err(Error::Config(
                "rate_limit_ipv4_prefix is at most 32, rate_limit_ipv6_prefix at most 128".into(),
            ));
        }
        if self.allow_query.is_empty() {
            return Err(Error::Config(
                "allow_query is empty: no one could ask; list the client networks (e.g. [\"192.0.2.0/24\"])".into(),
            ));
        }
        if self.max_udp_size < 512 {
            return Err(Error::Config("max_udp_size must be at least 512".into()));
        }
        let mut seen = Vec::new();
        for z in &self.zones {
            let o = z.origin()?;
            if seen.contains(&o) {
                return Err(Error::Config(format!("zone {} is listed twice", z.name)));
            }
            seen.push(o);
            z.source()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_config_and_refuses_unknown_keys() {
        let c = Config::from_toml(
            r#"
listen = "127.0.0.1:53"
metrics_listen = "127.0.0.1:9153"
upstreams = ["127.0.0.1:5301", "[::1]:53"]
lookup_url = "https://tapis.example/block"
allow_query = ["192.0.2.0/24", "2001:db8::/32"]
max_upstream_queries = 512
max_tcp_clients = 256
rate_limit = 50
rate_limit_slip = 3
rate_limit_ipv4_prefix = 32
rate_limit_ipv6_prefix = 64
rate_limit_exempt = ["192.0.2.53"]
[[zone]]
name = "rpz.tapis."
primary = "127.0.0.1:5300"
tsig_key_name = "isp-a."
tsig_secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
[[zone]]
name = "local.rpz"
file = "/etc/tapis/local.rpz"
"#,
        )
        .expect("config");
        c.check().expect("valid");
        assert_eq!(c.zones.len(), 2);
        assert_eq!(c.allow_query.len(), 2);
        assert_eq!((c.max_upstream_queries, c.max_tcp_clients), (512, 256));
        assert_eq!((c.rate_limit, c.rate_limit_slip), (50, 3));
        assert_eq!(
            (c.rate_limit_ipv4_prefix, c.rate_limit_ipv6_prefix),
            (32, 64)
        );
        assert_eq!(c.rate_limit_exempt[0].to_string(), "192.0.2.53/32");
        for bad in [
            "max_upstream_queries = 0",
            "max_tcp_clients = 0",
            "rate_limit = 70000",
            "rate_limit_ipv4_prefix = 33",
            "allow_query = []",
        ] {
            let c = Config::from_toml(&format!("upstreams = [\"127.0.0.1:53\"]\n{bad}\n"))
                .expect("parses");
            assert!(c.check().is_err(), "{bad}");
        }
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        assert!(Config::from_toml("listen = \"127.0.0.1:53\"\nbogus = 1\n").is_err());
        let both = Config::from_toml(
            "upstreams = [\"127.0.0.1:53\"]\n[[zone]]\nname = \"a\"\nprimary = \"127.0.0.1:1\"\nfile = \"x\"\n",
        )
        .expect("parses");
        assert!(both.check().is_err());
        assert!(Config::default().check().is_err(), "no upstreams");
    }
}
