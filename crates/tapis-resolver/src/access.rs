//! Who may ask: client networks written as CIDR prefixes (`allow_query`,
//! `rate_limit_exempt`), matched against a client address on the UDP fast
//! path. A list is a handful of prefixes held as integers, so a check is a
//! short loop of mask-and-compare: no allocation, no lock.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
//! reports for an IPv4 client) is matched as the IPv4 address it carries, so
//! a list written in IPv4 means the same on a `[::]` listener.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

/// One network: an address and a prefix length, host bits cleared.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    V4 { net: u32, len: u8 },
    V6 { net: u128, len: u8 },
}

impl Cidr {
    /// Whether `ip` is inside this network.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (Cidr::V4 { net, len }, IpAddr::V4(a)) => u32::from(a) & mask32(*len) == *net,
            (Cidr::V6 { net, len }, IpAddr::V6(a)) => u128::from(a) & mask128(*len) == *net,
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4; anything else unchanged.
#[inline]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        v4 => v4,
    }
}

#[inline]
fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

#[inline]
fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Why a network does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a network: write ADDRESS/LENGTH (e.g. 192.0.2.0/24, 2001:db8::/32) or one address"
)]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDR/LEN`, or a bare address (a host route). Host bits must be
    /// clear (`10.1.2.3/8` is refused: it is probably a typo for a host).
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_owned());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| err())?)),
            None => (s, None),
        };
        match addr.parse::<IpAddr>().map_err(|_| err())? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(err());
                }
                let net = u32::from(a);
                if net & !mask32(len) != 0 {
                    return Err(err());
                }
                Ok(Cidr::V4 { net, len })
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    // `::ffff:10.0.0.0/104` means 10.0.0.0/8
                    let len = len.unwrap_or(128);
                    if !(96..=128).contains(&len) {
                        return Err(err());
                    }
                    return format!("{v4}/{}", len - 96).parse().map_err(|_| err());
                }
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(err());
                }
                let net = u128::from(a);
                if net & !mask128(len) != 0 {
                    return Err(err());
                }
                Ok(Cidr::V6 { net, len })
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cidr::V4 { net, len } => write!(f, "{}/{len}", Ipv4Addr::from(*net)),
            Cidr::V6 { net, len } => write!(f, "{}/{len}", Ipv6Addr::from(*net)),
        }
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The networks `allow_query` admits by default: loopback and the private,
/// shared (carrier-grade NAT), unique-local and link-local ranges. Never
/// the whole Internet: an open resolver is an amplifier for anyone.
pub const PRIVATE: [&str; 8] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
    "fe80::/10",
];

/// Loopback: a source address no one off this host can forge (the kernel
/// drops loopback sources arriving on other interfaces), so it is exempt
/// from response-rate limiting by default.
pub const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// Parses a list of built-in networks.
pub fn networks(list: &[&str]) -> Vec<Cidr> {
    list.iter()
        .filter_map(|s| s.parse().ok())
        .collect::<Vec<Cidr>>()
}

/// Whether `ip` is in any of `list`.
#[inline]
pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn parses_and_matches() {
        let private = networks(&PRIVATE);
        assert_eq!(private.len(), PRIVATE.len(), "the built-in list parses");
        for inside in [
            "127.0.0.1",
            "10.200.1.1",
            "172.31.255.255",
            "192.168.0.1",
            "100.127.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(any_contains(&private, ip(inside)), "{inside}");
        }
        for outside in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "::2",
        ] {
            assert!(!any_contains(&private, ip(outside)), "{outside}");
        }
        let c: Cidr = "0.0.0.0/0".parse().expect("all");
        assert!(c.contains(ip("203.0.113.1")));
        assert!(!c.contains(ip("2001:db8::1")));
        let c: Cidr = "::/0".parse().expect("all v6");
        assert!(c.contains(ip("2001:db8::1")));
        let c: Cidr = "192.0.2.7".parse().expect("host");
        assert_eq!(c.to_string(), "192.0.2.7/32");
        let c: Cidr = "::ffff:10.0.0.0/104".parse().expect("mapped");
        assert_eq!(c.to_string(), "10.0.0.0/8");
        for bad in [
            "10.1.2.3/8",
            "10.0.0.0/33",
            "nonsense",
            "fe80::1/10",
            "::/129",
            "1.2.3.4/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
