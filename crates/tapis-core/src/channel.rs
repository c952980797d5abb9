//! A platform's channel settings: where its notices go (a webhook, email
//! addresses) and its own public key for signing acknowledgements.

use serde::Deserialize;

use crate::party::bounded_text;
use crate::target::DomainName;
use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelInput {
    /// HTTPS (or HTTP) URL that receives Standard Webhooks deliveries.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Addresses for the email fallback (besides the party's contacts).
    #[serde(default)]
    pub emails: Vec<String>,
    /// The platform's Ed25519 public key (base64), to sign acknowledgements.
    #[serde(default)]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChannel {
    pub webhook_url: Option<String>,
    pub emails: Vec<String>,
    pub public_key: Option<String>,
}

/// Whether a literal host names this machine or a private network. Names
/// are resolved and checked again at delivery time.
pub fn is_private_host(host: &str) -> bool {
    let h = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => is_private_ip(ip),
        Err(_) => false,
    }
}

/// Whether an address is not globally reachable, so that nothing tapis is
/// told to connect to (webhooks, NOTIFY targets, probes) can point it at
/// this machine, the operator's networks or a cloud metadata service.
///
/// The ranges are the IANA IPv4 and IPv6 Special-Purpose Address Registries
/// (RFC 6890 and its updates) whose entries are not "globally reachable",
/// plus multicast and the deprecated site-local and IPv4-compatible blocks.
/// Addresses that carry an IPv4 address inside an IPv6 one (IPv4-mapped,
/// the NAT64 well-known prefix, 6to4) are judged by the embedded address,
/// since that is where a connection ends up; Teredo hides its embedded
/// address and is refused whole.
pub fn is_private_ip(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    match ip {
        IpAddr::V4(v4) => {
            let a = u32::from(v4);
            SPECIAL_V4
                .iter()
                .any(|&(net, len)| a >> (32 - len) == u32::from(net) >> (32 - len))
        }
        IpAddr::V6(v6) => {
            let a = u128::from(v6);
            let seg = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                is_private_ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_ip(IpAddr::V4(v4));
            }
            if a >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
                // NAT64 well-known prefix 64:ff9b::/96
                return embedded(seg[6], seg[7]);
            }
            if seg[0] == 0x2002 {
                // 6to4: the IPv4 address is bits 16..48
                return embedded(seg[1], seg[2]);
            }
            SPECIAL_V6
                .iter()
                .any(|&(net, len)| a >> (128 - len) == net >> (128 - len))
        }
    }
}

/// IPv4 blocks that are not globally reachable (address, prefix length).
const SPECIAL_V4: &[(std::net::Ipv4Addr, u32)] = {
    use std::net::Ipv4Addr as A;
    &[
        (A::new(0, 0, 0, 0), 8),       // "this network"
        (A::new(10, 0, 0, 0), 8),      // private
        (A::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
        (A::new(127, 0, 0, 0), 8),     // loopback
        (A::new(169, 254, 0, 0), 16),  // link local (cloud metadata)
        (A::new(172, 16, 0, 0), 12),   // private
        (A::new(192, 0, 0, 0), 24),    // IETF protocol assignments
        (A::new(192, 0, 2, 0), 24),    // documentation
        (A::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
        (A::new(192, 168, 0, 0), 16),  // private
        (A::new(198, 18, 0, 0), 15),   // benchmarking
        (A::new(198, 51, 100, 0), 24), // documentation
        (A::new(203, 0, 113, 0), 24),  // documentation
        (A::new(224, 0, 0, 0), 4),     // multicast
        (A::new(240, 0, 0, 0), 4),     // reserved, and broadcast
    ]
};

/// IPv6 blocks that are not globally reachable (address, prefix length).
const SPECIAL_V6: &[(u128, u32)] = &[
    (0, 96),                           // ::/96: unspecified, loopback, IPv4-compatible
    (0x0064_ff9b_0001 << 80, 48),      // 64:ff9b:1::/48 local-use NAT64
    (0x0100 << 112, 64),               // 100::/64 discard-only
    (0x0100_0000_0000_0001 << 64, 64), // 100:0:0:1::/64 dummy prefix
    (0x2001_0000 << 96, 32),           // 2001::/32 Teredo
    (0x2001_0002_0000 << 80, 48),      // 2001:2::/48 benchmarking
    (0x2001_0010 << 96, 28),           // 2001:10::/28 ORCHID
    (0x2001_0db8 << 96, 32),           // 2001:db8::/32 documentation
    (0x3fff << 112, 20),               // 3fff::/20 documentation
    (0x5f00 << 112, 16),               // 5f00::/16 SRv6 SIDs
    (0xfc00 << 112, 7),                // fc00::/7 unique local
    (0xfe80 << 112, 10),               // fe80::/10 link local
    (0xfec0 << 112, 10),               // fec0::/10 site local (deprecated)
    (0xff00 << 112, 8),                // ff00::/8 multicast
];

/// Validate an email address well enough to refuse typos and injection.
pub fn parse_email(field: &str, raw: &str) -> Result<String> {
    let e = bounded_text(field, raw, 3, 254)?;
    let ok = !e.contains(char::is_whitespace)
        && !e.contains(['<', '>', ',', ';', '"'])
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.contains('@') && DomainName::parse(domain).is_ok()
        });
    if ok {
        Ok(e)
    } else {
        Err(Error::invalid(field, "not an email address"))
    }
}

impl NewChannel {
    /// Parse channel settings. `allow_private` permits loopback and private
    /// webhook hosts (tests, closed networks).
    pub fn parse(input: ChannelInput, allow_private: bool) -> Result<NewChannel> {
        let webhook_url = match input
            .webhook_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(u) => {
                let field = "webhook_url";
                if u.len() > 2048 {
                    return Err(Error::invalid(field, "URL is longer than 2048 bytes"));
                }
                let url = url::Url::parse(u)
                    .map_err(|e| Error::invalid(field, format!("not an absolute URL ({e})")))?;
                if url.scheme() != "https" && url.scheme() != "http" {
                    return Err(Error::invalid(field, "use an https:// URL"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(Error::invalid(
                        field,
                        "URL carries credentials; authenticate with the webhook signature instead",
                    ));
                }
                if url.fragment().is_some() {
                    return Err(Error::invalid(field, "URL has a fragment"));
                }
                let host = url
                    .host_str()
                    .ok_or_else(|| Error::invalid(field, "URL has no host"))?;
                if !allow_private && is_private_host(host) {
                    return Err(Error::invalid(
                        field,
                        "webhook host is loopback or a private address; set [channel] allow_private_targets = true to allow it",
                    ));
                }
                Some(url.to_string())
            }
        };
        if input.emails.len() > 20 {
            return Err(Error::invalid("emails", "at most 20 addresses"));
        }
        let mut emails = Vec::new();
        for (i, e) in input.emails.iter().enumerate() {
            let e = parse_email(&format!("emails[{i}]"), e)?;
            if !emails.contains(&e) {
                emails.push(e);
            }
        }
        let public_key = match input
            .public_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            None => None,
            Some(k) => {
                crate::sign::parse_public_key("public_key", k)?;
                Some(k.to_owned())
            }
        };
        Ok(NewChannel {
            webhook_url,
            emails,
            public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str, allow: bool) -> Result<NewChannel> {
        NewChannel::parse(
            ChannelInput {
                webhook_url: Some(u.into()),
                ..Default::default()
            },
            allow,
        )
    }

    #[test]
    fn webhook_urls() {
        assert!(url("https://hooks.platform.example/tapis", false).is_ok());
        for private in [
            "http://127.0.0.1:9000/",
            "http://localhost/x",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(url(private, false).is_err(), "{private}");
            assert!(url(private, true).is_ok(), "{private}");
        }
        for bad in [
            "ftp://x.example/",
            "https://u:p@x.example/",
            "not a url",
            "https://x.example/#frag",
        ] {
            assert!(url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_and_keys() {
        let ok = NewChannel::parse(
            ChannelInput {
                emails: vec![
                    "abuse@platform.example".into(),
                    "abuse@platform.example".into(),
                ],
                ..Default::default()
            },
            false,
        )
        .expect("ok");
        assert_eq!(ok.emails.len(), 1);
        for bad in ["x", "a@b", "a b@c.example", "a@c.example>, evil@x.example"] {
            assert!(parse_email("e", bad).is_err(), "{bad}");
        }
        let key = NewChannel::parse(
            ChannelInput {
                public_key: Some("AAAA".into()),
                ..Default::default()
            },
            false,
        );
        assert!(key.is_err());
    }

    #[test]
    fn special_purpose_addresses_are_private() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.251",
            "240.0.0.1",
            "255.255.255.255",
            "192.88.99.1",
            "::1",
            "::",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ];
        for a in private {
            let ip: std::net::IpAddr = a.parse().expect(a);
            assert!(is_private_ip(ip), "{a} must count as private");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ];
        for a in public {
            let ip: std::net::IpAddr = a.parse().expect(a);
            assert!(!is_private_ip(ip), "{a} is globally reachable");
        }
    }
}
