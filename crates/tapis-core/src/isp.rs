//! An ISP's resolver settings: the resolvers tapis may probe, the
//! secondaries to NOTIFY, and the addresses allowed to transfer the zone
//! without TSIG (for resolvers that cannot sign).

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolversInput {
    /// Resolvers tapis probes for compliance (`addr` or `addr:port`).
    #[serde(default)]
    pub resolvers: Vec<String>,
    /// Secondaries that receive NOTIFY when the zone changes.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Addresses allowed to transfer without TSIG (IP or CIDR).
    #[serde(default)]
    pub allow_transfer_from: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolvers {
    pub resolvers: Vec<SocketAddr>,
    pub notify: Vec<SocketAddr>,
    pub allow_transfer_from: Vec<IpNet>,
}

/// An IP network (address and prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(field: &str, s: &str) -> Result<IpNet> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| Error::invalid(field, format!("{s:?} is not an IP address or network")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                Error::invalid(field, format!("prefix of {s:?} must be 0 to {max}"))
            })?,
        };
        if prefix < if addr.is_ipv4() { 8 } else { 32 } {
            return Err(Error::invalid(
                field,
                "network is too wide to allow transfers from",
            ));
        }
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn socket(field: &str, s: &str, default_port: u16) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| Error::invalid(field, format!("{s:?} is not an address (IP, or IP:port)")))
}

impl Resolvers {
    pub fn parse(input: ResolversInput) -> Result<Resolvers> {
        let bound = |field: &str, v: &Vec<String>| {
            if v.len() > 64 {
                Err(Error::invalid(field, "at most 64 entries"))
            } else {
                Ok(())
            }
        };
        bound("resolvers", &input.resolvers)?;
        bound("notify", &input.notify)?;
        bound("allow_transfer_from", &input.allow_transfer_from)?;
        let list = |field: &str, v: &[String]| -> Result<Vec<SocketAddr>> {
            v.iter()
                .enumerate()
                .map(|(i, s)| socket(&format!("{field}[{i}]"), s, 53))
                .collect()
        };
        Ok(Resolvers {
            resolvers: list("resolvers", &input.resolvers)?,
            notify: list("notify", &input.notify)?,
            allow_transfer_from: input
                .allow_transfer_from
                .iter()
                .enumerate()
                .map(|(i, s)| IpNet::parse(&format!("allow_transfer_from[{i}]"), s))
                .collect::<Result<_>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_networks() {
        let r = Resolvers::parse(ResolversInput {
            resolvers: vec!["192.0.2.53".into(), "[2001:db8::53]:5353".into()],
            notify: vec!["192.0.2.1:5301".into()],
            allow_transfer_from: vec!["198.51.100.0/24".into(), "2001:db8::/48".into()],
        })
        .expect("valid");
        assert_eq!(r.resolvers[0].port(), 53);
        assert_eq!(r.resolvers[1].port(), 5353);
        assert!(r.allow_transfer_from[0].contains("198.51.100.7".parse().expect("ip")));
        assert!(!r.allow_transfer_from[0].contains("198.51.101.7".parse().expect("ip")));
        assert!(r.allow_transfer_from[1].contains("2001:db8::1".parse().expect("ip")));
        for bad in ["10.0.0.0/4", "1.2.3.4/33", "nope", "::/0"] {
            assert!(IpNet::parse("a", bad).is_err(), "{bad}");
        }
        assert!(
            Resolvers::parse(ResolversInput {
                notify: vec!["host.example".into()],
                ..Default::default()
            })
            .is_err()
        );
    }
}
