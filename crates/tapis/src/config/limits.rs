//! Limits on what a stranger or a party can make tapis hold: request
//! bodies, notice items, HTTP connections, anonymous request rates, live
//! streams, and the transfer hosts an ISP may register.

use serde::Deserialize;

/// Limits on what one request, one client or all of them may take. The
/// edge's (connections, header time, anonymous rate, streams) apply in
/// `tapis serve`'s own accept loop, before any handler runs; their
/// defaults are `tapis_http::edge::EdgeLimits::default()`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most items in one notice.
    pub max_items: usize,
    /// Open HTTP connections in all; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Open HTTP connections from one address (an IPv6 /64).
    pub connections_per_address: usize,
    /// Seconds a client has to send a whole request head.
    pub header_read_timeout_secs: u64,
    /// Requests without credentials (public lookup, block page, health),
    /// per address and minute, sustained.
    pub anonymous_per_minute: u32,
    /// How many such requests one address may send at once before the
    /// rate applies.
    pub anonymous_burst: u32,
    /// Live event streams (SSE) open at once with one token.
    pub streams_per_token: usize,
    /// Addresses (single hosts) one ISP may register to transfer the zone
    /// without TSIG.
    pub transfer_hosts_per_isp: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        let edge = tapis_http::edge::EdgeLimits::default();
        LimitSettings {
            max_body_bytes: 1024 * 1024,
            max_items: 1000,
            max_connections: edge.max_connections,
            connections_per_address: edge.connections_per_address,
            header_read_timeout_secs: edge.header_read_timeout.as_secs(),
            anonymous_per_minute: edge.anonymous_per_minute,
            anonymous_burst: edge.anonymous_burst,
            streams_per_token: edge.streams_per_token,
            transfer_hosts_per_isp: tapis_core::isp::IspRules::default().max_transfer_hosts,
        }
    }
}

impl LimitSettings {
    /// The HTTP edge's limits.
    pub fn edge(&self) -> tapis_http::edge::EdgeLimits {
        tapis_http::edge::EdgeLimits {
            max_connections: self.max_connections,
            connections_per_address: self.connections_per_address,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            anonymous_per_minute: self.anonymous_per_minute,
            anonymous_burst: self.anonymous_burst,
            streams_per_token: self.streams_per_token,
        }
    }

    /// The bounds on ISPs' transfer, NOTIFY and probe addresses.
    pub fn isp_rules(&self, allow_private: bool) -> tapis_core::isp::IspRules {
        tapis_core::isp::IspRules {
            allow_private,
            max_transfer_hosts: self.transfer_hosts_per_isp,
        }
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        let d = LimitSettings::default();
        let within = |key: &str, v: u64, lo: u64, hi: u64, default: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "limits.{key} is {v}: it must be between {lo} and {hi} (default {default})"
                ))
            }
        };
        let n = |v: usize| v as u64;
        within(
            "max_connections",
            n(self.max_connections),
            1,
            1_000_000,
            n(d.max_connections),
        )?;
        within(
            "connections_per_address",
            n(self.connections_per_address),
            1,
            n(self.max_connections),
            n(d.connections_per_address),
        )
        .map_err(|e| anyhow::anyhow!("{e}, at most limits.max_connections"))?;
        within(
            "header_read_timeout_secs",
            self.header_read_timeout_secs,
            1,
            300,
            d.header_read_timeout_secs,
        )?;
        within(
            "anonymous_per_minute",
            u64::from(self.anonymous_per_minute),
            1,
            1_000_000,
            u64::from(d.anonymous_per_minute),
        )?;
        within(
            "anonymous_burst",
            u64::from(self.anonymous_burst),
            1,
            1_000_000,
            u64::from(d.anonymous_burst),
        )?;
        within(
            "streams_per_token",
            n(self.streams_per_token),
            1,
            1000,
            n(d.streams_per_token),
        )?;
        within(
            "transfer_hosts_per_isp",
            n(self.transfer_hosts_per_isp),
            0,
            64,
            n(d.transfer_hosts_per_isp),
        )?;
        Ok(())
    }
}
