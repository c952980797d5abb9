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

/// Loopback, private (RFC 1918, ULA), link-local, unspecified, CGNAT,
/// multicast and documentation ranges: nothing a platform's public webhook
/// should resolve to.
pub fn is_private_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_ip(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
        }
    }
}

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
}
