//! The tapis filtering resolver: a DNS forwarder that follows Response
//! Policy Zones (by AXFR/IXFR with TSIG from a primary, or from a zone file)
//! and enforces their QNAME triggers before answering from its cache or its
//! upstreams.
//!
//! Map: [`access`] (client networks: `allow_query`), [`policy`] (the RPZ engine over [`table`], a compact trigger table),
//! [`packet`] (query parsing and answer building, allocation-free
//! on the hot path), [`cache`], [`flight`] (the cap on upstream queries in flight, identical
//! questions coalesced), [`upstream`] (forwarding, health, failover),
//! [`xfr`] (the zone followers), [`metrics`], [`config`] and [`server`]
//! (sockets and wiring), [`rrl`] (response-rate limiting over UDP). The DNS toolkit it builds on (wire format, TSIG,
//! the zone-file reader and writer, the transfer client, serial arithmetic,
//! name walking, the RPZ CNAME mapping) is `tapis-dns`'s.

pub mod access;
pub mod cache;
pub mod config;
pub mod flight;
pub mod metrics;
pub mod packet;
pub mod policy;
pub mod rrl;
pub mod server;
pub(crate) mod table;
pub mod upstream;
pub mod xfr;

pub use config::{Config, ZoneConfig};
pub use server::{Running, start};

/// Errors of the resolver library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("policy: {0}")]
    Policy(String),
    #[error("zone file: {0}")]
    Zone(String),
    #[error("zone transfer: {0}")]
    Transfer(String),
    #[error("config: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tapis_dns::zonefile::LineError> for Error {
    fn from(e: tapis_dns::zonefile::LineError) -> Error {
        Error::Zone(e.to_string())
    }
}

impl From<tapis_dns::Error> for Error {
    fn from(e: tapis_dns::Error) -> Error {
        match e {
            tapis_dns::Error::Transfer(t) => Error::Transfer(t),
            other => Error::Transfer(other.to_string()),
        }
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
