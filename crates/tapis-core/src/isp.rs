//! An ISP's resolver settings: the resolvers tapis may probe, the
//! secondaries to NOTIFY, and the addresses allowed to transfer the zone
//! without TSIG (for resolvers that cannot sign).
//!
//! Each is an address tapis sends to, or trusts without a signature, on an
//! ISP's word, so `IspRules` bounds them: unsigned transfers only to a few
//! single hosts (a network would hand the zone to everyone in it, and a
//! source address is easy to claim inside one), and nothing aimed at
//! loopback, private or other special-purpose addresses (cloud metadata,
//! the operator's own network) unless the operator allowed private targets
//! for a lab. The same rules are applied again when stored settings are
//! loaded, so a setting made before they existed stops counting.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use crate::channel::is_private_ip;
use crate::{Error, Result};

/// How many addresses an ISP may allow to transfer without TSIG, unless
/// configured otherwise.
pub const DEFAULT_MAX_TRANSFER_HOSTS: usize = 4;

/// The bounds on what an ISP may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IspRules {
    /// Allow loopback, private and other special-purpose addresses (the
    /// server's `allow_private_targets`: for labs and tests).
    pub allow_private: bool,
    /// Most `allow_transfer_from` entries per ISP.
    pub max_transfer_hosts: usize,
}

impl Default for IspRules {
    fn default() -> Self {
        IspRules {
            allow_private: false,
            max_transfer_hosts: DEFAULT_MAX_TRANSFER_HOSTS,
        }
    }
}

impl IspRules {
    /// An address allowed to transfer without TSIG: one host, public
    /// unless private targets are allowed.
    pub fn check_transfer_host(&self, field: &str, net: &IpNet) -> Result<()> {
        let host = if net.addr.is_ipv4() { 32 } else { 128 };
        if net.prefix != host {
            return Err(Error::invalid(
                field,
                format!(
                    "{net} is a network: allow single hosts (/{host}) to transfer without TSIG, or give the resolvers the TSIG key"
                ),
            ));
        }
        self.check_ip(field, net.addr)
    }

    /// A resolver to probe or a secondary to NOTIFY: a real port on an
    /// address public unless private targets are allowed.
    pub fn check_target(&self, field: &str, addr: &SocketAddr) -> Result<()> {
        if addr.port() == 0 {
            return Err(Error::invalid(field, "port 0 is not a port to send to"));
        }
        self.check_ip(field, addr.ip())
    }

    fn check_ip(&self, field: &str, ip: IpAddr) -> Result<()> {
        if !self.allow_private && is_private_ip(ip) {
            return Err(Error::invalid(
                field,
                format!(
                    "{ip} is loopback, private or special-purpose; set [channel] allow_private_targets = true to allow it"
                ),
            ));
        }
        Ok(())
    }
}

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
    pub fn parse(input: ResolversInput, rules: &IspRules) -> Result<Resolvers> {
        let bound = |field: &str, v: &Vec<String>| {
            if v.len() > 64 {
                Err(Error::invalid(field, "at most 64 entries"))
            } else {
                Ok(())
            }
        };
        bound("resolvers", &input.resolvers)?;
        bound("notify", &input.notify)?;
        let list = |field: &str, v: &[String]| -> Result<Vec<SocketAddr>> {
            v.iter()
                .enumerate()
                .map(|(i, s)| {
                    let field = format!("{field}[{i}]");
                    let a = socket(&field, s, 53)?;
                    rules.check_target(&field, &a)?;
                    Ok(a)
                })
                .collect()
        };
        // each entry first, so a refusal names the first bad one
        let allow_transfer_from = input
            .allow_transfer_from
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let field = format!("allow_transfer_from[{i}]");
                let net = IpNet::parse(&field, s)?;
                rules.check_transfer_host(&field, &net)?;
                Ok(net)
            })
            .collect::<Result<Vec<_>>>()?;
        if input.allow_transfer_from.len() > rules.max_transfer_hosts {
            return Err(Error::invalid(
                "allow_transfer_from",
                format!(
                    "at most {} addresses may transfer without TSIG; give the others the TSIG key",
                    rules.max_transfer_hosts
                ),
            ));
        }
        Ok(Resolvers {
            resolvers: list("resolvers", &input.resolvers)?,
            notify: list("notify", &input.notify)?,
            allow_transfer_from,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documentation ranges are special-purpose: these tests allow
    /// them, as a lab would.
    const LAB: IspRules = IspRules {
        allow_private: true,
        max_transfer_hosts: DEFAULT_MAX_TRANSFER_HOSTS,
    };

    #[test]
    fn parses_addresses_and_networks() {
        let r = Resolvers::parse(
            ResolversInput {
                resolvers: vec!["192.0.2.53".into(), "[2001:db8::53]:5353".into()],
                notify: vec!["192.0.2.1:5301".into()],
                allow_transfer_from: vec!["198.51.100.7".into(), "2001:db8::1/128".into()],
            },
            &LAB,
        )
        .expect("valid");
        assert_eq!(r.resolvers[0].port(), 53);
        assert_eq!(r.resolvers[1].port(), 5353);
        assert!(r.allow_transfer_from[0].contains("198.51.100.7".parse().expect("ip")));
        assert!(!r.allow_transfer_from[0].contains("198.51.100.8".parse().expect("ip")));
        assert!(r.allow_transfer_from[1].contains("2001:db8::1".parse().expect("ip")));
        // networks still parse (and `contains` works on them) ...
        let net = IpNet::parse("a", "198.51.100.0/24").expect("net");
        assert!(net.contains("198.51.100.9".parse().expect("ip")));
        for bad in ["10.0.0.0/4", "1.2.3.4/33", "nope", "::/0"] {
            assert!(IpNet::parse("a", bad).is_err(), "{bad}");
        }
        assert!(
            Resolvers::parse(
                ResolversInput {
                    notify: vec!["host.example".into()],
                    ..Default::default()
                },
                &LAB
            )
            .is_err()
        );
    }

    fn refused(input: ResolversInput, rules: &IspRules) -> String {
        match Resolvers::parse(input, rules) {
            Err(Error::Invalid { field, message }) => format!("{field}: {message}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn transfer_hosts_are_few_single_and_public() {
        let rules = IspRules::default();
        // ... but an ISP may not allow one to transfer without TSIG
        let e = refused(
            ResolversInput {
                allow_transfer_from: vec!["193.0.14.129".into(), "198.51.100.0/24".into()],
                ..Default::default()
            },
            &LAB,
        );
        assert!(
            e.starts_with("allow_transfer_from[1]") && e.contains("network"),
            "{e}"
        );
        // the 64 /8 networks of the demonstration
        let e = refused(
            ResolversInput {
                allow_transfer_from: (64..128).map(|i| format!("{i}.0.0.0/8")).collect(),
                ..Default::default()
            },
            &LAB,
        );
        assert!(
            e.starts_with("allow_transfer_from[0]") && e.contains("network"),
            "{e}"
        );
        let hosts: Vec<String> = (1..=64).map(|i| format!("127.0.0.{i}")).collect();
        let e = refused(
            ResolversInput {
                allow_transfer_from: hosts,
                ..Default::default()
            },
            &LAB,
        );
        assert!(e.contains("at most 4"), "{e}");
        let e = refused(
            ResolversInput {
                allow_transfer_from: vec!["127.0.0.0/8".into()],
                ..Default::default()
            },
            &rules,
        );
        assert!(e.starts_with("allow_transfer_from[0]"), "{e}");
        let e = refused(
            ResolversInput {
                allow_transfer_from: vec!["193.0.14.129".into(), "127.0.0.1".into()],
                ..Default::default()
            },
            &rules,
        );
        assert!(
            e.starts_with("allow_transfer_from[1]") && e.contains("allow_private_targets"),
            "{e}"
        );
        let five: Vec<String> = (1..=5).map(|i| format!("193.0.14.{i}")).collect();
        assert!(
            refused(
                ResolversInput {
                    allow_transfer_from: five.clone(),
                    ..Default::default()
                },
                &rules
            )
            .contains("at most 4")
        );
        let wider = IspRules {
            max_transfer_hosts: 5,
            ..rules
        };
        assert!(
            Resolvers::parse(
                ResolversInput {
                    allow_transfer_from: five,
                    ..Default::default()
                },
                &wider
            )
            .is_ok()
        );
        assert!(
            Resolvers::parse(
                ResolversInput {
                    resolvers: vec!["193.0.14.129".into()],
                    notify: vec!["[2001:7fd::1]:53".into()],
                    allow_transfer_from: vec!["193.0.14.129".into()],
                },
                &rules
            )
            .is_ok()
        );
    }

    #[test]
    fn targets_are_public_real_ports() {
        let rules = IspRules::default();
        let e = refused(
            ResolversInput {
                notify: vec!["193.0.14.129".into(), "169.254.169.254:80".into()],
                ..Default::default()
            },
            &rules,
        );
        assert!(e.starts_with("notify[1]"), "{e}");
        for (bad, field) in [
            ("127.0.0.1:53", "resolvers[0]"),
            ("[::1]:53", "resolvers[0]"),
            ("[64:ff9b::a00:1]:53", "resolvers[0]"),
            ("193.0.14.129:0", "resolvers[0]"),
        ] {
            let e = refused(
                ResolversInput {
                    resolvers: vec![bad.into()],
                    ..Default::default()
                },
                &rules,
            );
            assert!(e.starts_with(field), "{bad}: {e}");
        }
        // port 0 is refused even in a lab
        assert!(
            Resolvers::parse(
                ResolversInput {
                    notify: vec!["127.0.0.1:0".into()],
                    ..Default::default()
                },
                &LAB
            )
            .is_err()
        );
        assert!(
            Resolvers::parse(
                ResolversInput {
                    notify: vec!["127.0.0.1:5301".into()],
                    allow_transfer_from: vec!["127.0.0.1".into()],
                    ..Default::default()
                },
                &LAB
            )
            .is_ok()
        );
    }
}
