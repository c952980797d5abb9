//! Exact targets: domain names, URLs, platform handles and content hashes,
//! each parsed once into a normalised form.
//!
//! The normalised form is what deduplication and (later) matching compare, so
//! it must be a function of the thing named, not of how it was typed:
//! `EXAMPLE.com.`, `example.com` and `xn--` spellings of the same IDN all
//! become one string.

use std::fmt;

use crate::{Error, Result};

/// The longest raw value we accept for any item; a URL longer than this is
/// not one a person can have copied from a browser.
pub const MAX_VALUE_LEN: usize = 4096;

/// The longest normal form we accept. Normalising can lengthen a value
/// (non-ASCII in a URL path becomes `%XX` per byte), and the normal form is
/// indexed for deduplication: PostgreSQL cannot index a B-tree entry over
/// 2704 bytes, so a longer one would fail the insert.
pub const MAX_NORMALIZED_LEN: usize = 2048;

/// A fully-qualified DNS name in lowercase ASCII (A-labels), without the
/// trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parse a name as a person or a list would write it: any case, an
    /// optional trailing dot, Unicode or punycode labels.
    pub fn parse(raw: &str) -> Result<Self> {
        let field = "domain";
        let s = raw.trim();
        if s.is_empty() {
            return Err(Error::invalid(field, "domain name is empty"));
        }
        if s.len() > 1024 {
            return Err(Error::invalid(field, "domain name is too long"));
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.starts_with("*.") {
            return Err(Error::invalid(
                field,
                "wildcards are not targets: name the domain itself",
            ));
        }
        let ascii = if s.is_ascii() {
            s.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(s)
                .map_err(|_| Error::invalid(field, "not a valid internationalised domain name"))?
        };
        if ascii.len() > 253 {
            return Err(Error::invalid(
                field,
                "domain name is longer than 253 octets",
            ));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(Error::invalid(
                field,
                "a target domain needs at least two labels (e.g. example.com)",
            ));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(Error::invalid(field, "domain name has an empty label"));
            }
            if label.len() > 63 {
                return Err(Error::invalid(field, "a label is longer than 63 octets"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(Error::invalid(
                    field,
                    format!(
                        "label {label:?} has characters other than letters, digits, '-' and '_'"
                    ),
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(Error::invalid(
                    field,
                    format!("label {label:?} starts or ends with a hyphen"),
                ));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::invalid(
                field,
                "looks like an IP address, not a domain name",
            ));
        }
        Ok(DomainName(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or a subdomain of it.
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(other.0.as_str())
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute http(s) URL in normal form: scheme and host lowercased, IDN
/// hosts in punycode, default port and fragment dropped, dot-segments
/// resolved, an empty query removed. Paths and queries keep their case:
/// servers may treat them as case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalUrl(String);

impl NormalUrl {
    pub fn parse(raw: &str) -> Result<Self> {
        let field = "url";
        let s = raw.trim();
        if s.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(
                field,
                format!("URL is longer than {MAX_VALUE_LEN} bytes"),
            ));
        }
        let mut url = url::Url::parse(s)
            .map_err(|e| Error::invalid(field, format!("not an absolute URL ({e})")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Error::invalid(
                field,
                format!(
                    "scheme {:?} is not supported: use http or https",
                    url.scheme()
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid(
                field,
                "URL carries credentials (user:password@); remove them",
            ));
        }
        match url.host() {
            Some(url::Host::Domain(d)) => {
                let d = DomainName::parse(d)?;
                url.set_host(Some(d.as_str()))
                    .map_err(|_| Error::invalid(field, "host is not valid"))?;
            }
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
            None => return Err(Error::invalid(field, "URL has no host")),
        }
        url.set_fragment(None);
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(NormalUrl(url.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host part, if it is a domain name.
    pub fn domain(&self) -> Option<DomainName> {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.domain().and_then(|d| DomainName::parse(d).ok()))
    }
}

/// The hash algorithms a content-hash item may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha1,
    Md5,
    /// Meta's 256-bit perceptual hash, in its hex form.
    Pdq,
}

impl HashAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Pdq => "pdq",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 | HashAlgorithm::Pdq => 64,
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Md5 => 32,
        }
    }
}

/// A content hash written `algorithm:hex` in lowercase. A bare hex string is
/// taken as SHA-256, SHA-1 or MD5 by its length; PDQ must be named, since it
/// has SHA-256's length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentHash {
    pub algorithm: HashAlgorithm,
    hex: String,
}

impl ContentHash {
    pub fn parse(raw: &str) -> Result<Self> {
        let field = "content_hash";
        let s = raw.trim();
        if s.len() > 80 {
            return Err(Error::invalid(field, "hash is too long"));
        }
        let (algorithm, hex) = match s.split_once(':') {
            Some((alg, hex)) => {
                let alg = match alg.to_ascii_lowercase().as_str() {
                    "sha256" | "sha-256" => HashAlgorithm::Sha256,
                    "sha1" | "sha-1" => HashAlgorithm::Sha1,
                    "md5" => HashAlgorithm::Md5,
                    "pdq" => HashAlgorithm::Pdq,
                    other => {
                        return Err(Error::invalid(
                            field,
                            format!(
                                "unknown hash algorithm {other:?}: use sha256, sha1, md5 or pdq"
                            ),
                        ));
                    }
                };
                (alg, hex)
            }
            None => {
                let alg = match s.len() {
                    64 => HashAlgorithm::Sha256,
                    40 => HashAlgorithm::Sha1,
                    32 => HashAlgorithm::Md5,
                    n => {
                        return Err(Error::invalid(
                            field,
                            format!(
                                "a bare hash must be 64 (sha256), 40 (sha1) or 32 (md5) hex digits, not {n}; prefix it with its algorithm, e.g. pdq:…"
                            ),
                        ));
                    }
                };
                (alg, s)
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(Error::invalid(
                field,
                format!(
                    "a {} hash has {} hex digits, not {}",
                    algorithm.name(),
                    algorithm.hex_len(),
                    hex.len()
                ),
            ));
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                field,
                "hash has characters that are not hex digits",
            ));
        }
        Ok(ContentHash {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// A lowercase hex SHA-256 digest (evidence of a screenshot or archived copy).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(raw: &str) -> Result<Self> {
        let s = raw.trim();
        let s = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("SHA256:"))
            .unwrap_or(s);
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "sha256",
                "a SHA-256 digest is 64 hex digits",
            ));
        }
        Ok(Sha256Hex(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A platform account or channel handle, as the platform shows it: the
/// leading `@` dropped, lowercased (platforms treat handles case-blind).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);

impl Handle {
    pub fn parse(raw: &str) -> Result<Self> {
        let field = "handle";
        let s = raw.trim();
        // Check the lowercased form, not the raw one: lowercasing can add
        // combining marks ('İ' becomes "i\u{307}") or bytes, and a normal
        // form that is not itself a valid handle would not parse again.
        let s = s.strip_prefix('@').unwrap_or(s).to_lowercase();
        if s.is_empty() {
            return Err(Error::invalid(field, "handle is empty"));
        }
        if s.len() > 256 {
            return Err(Error::invalid(field, "handle is longer than 256 bytes"));
        }
        if !s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(Error::invalid(
                field,
                "a handle has only letters, digits, '_', '.' and '-' (give a URL for anything else)",
            ));
        }
        Ok(Handle(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an item points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ItemKind {
    Url,
    Domain,
    PlatformAccount,
    PlatformChannel,
    ContentHash,
}

impl ItemKind {
    pub const ALL: [ItemKind; 5] = [
        ItemKind::Url,
        ItemKind::Domain,
        ItemKind::PlatformAccount,
        ItemKind::PlatformChannel,
        ItemKind::ContentHash,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Url => "url",
            ItemKind::Domain => "domain",
            ItemKind::PlatformAccount => "platform_account",
            ItemKind::PlatformChannel => "platform_channel",
            ItemKind::ContentHash => "content_hash",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        ItemKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    format!("unknown item kind {s:?}: use url, domain, platform_account, platform_channel or content_hash"),
                )
            })
    }

    pub fn is_platform_object(self) -> bool {
        matches!(self, ItemKind::PlatformAccount | ItemKind::PlatformChannel)
    }
}

/// A parsed target: its kind and normalised form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: ItemKind,
    /// The normal form used for deduplication and matching.
    pub normalized: String,
}

impl Target {
    /// Parse `raw` as a target of `kind`. Account and channel items accept a
    /// handle (`@name`) or the URL of the account or channel.
    pub fn parse(kind: ItemKind, raw: &str) -> Result<Self> {
        if raw.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(
                "value",
                format!("value is longer than {MAX_VALUE_LEN} bytes"),
            ));
        }
        // The URL parser drops control characters at the ends (and tabs and
        // newlines anywhere), so without this a value with a NUL would be
        // accepted, and the raw value stored with it (PostgreSQL refuses NUL).
        if raw.trim().chars().any(char::is_control) {
            return Err(Error::invalid("value", "value contains control characters"));
        }
        let normalized = match kind {
            ItemKind::Url => NormalUrl::parse(raw)?.0,
            ItemKind::Domain => DomainName::parse(raw)?.0,
            ItemKind::ContentHash => ContentHash::parse(raw)?.to_string(),
            ItemKind::PlatformAccount | ItemKind::PlatformChannel => {
                let t = raw.trim();
                if t.contains("://") {
                    NormalUrl::parse(t)?.0
                } else {
                    Handle::parse(t)?.0
                }
            }
        };
        if normalized.len() > MAX_NORMALIZED_LEN {
            return Err(Error::invalid(
                "value",
                format!("value is longer than {MAX_NORMALIZED_LEN} bytes once normalised"),
            ));
        }
        Ok(Target { kind, normalized })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalise_case_dots_and_idn() {
        let cases = [
            ("Example.COM.", "example.com"),
            ("  example.com ", "example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("_dmarc.example.org", "_dmarc.example.org"),
            ("t.me", "t.me"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                DomainName::parse(raw).map(|d| d.0),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn domains_reject_what_is_not_a_name() {
        for raw in [
            "",
            ".",
            "com",
            "*.example.com",
            "exa mple.com",
            "-bad.com",
            "bad-.com",
            "a..b",
            "1.2.3.4",
            "http://example.com",
        ] {
            assert!(DomainName::parse(raw).is_err(), "{raw:?} should be refused");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(DomainName::parse(&long).is_err());
        let too_long = vec!["abcdefghi"; 30].join(".");
        assert!(DomainName::parse(&too_long).is_err());
    }

    #[test]
    fn within_is_label_aligned() {
        let parent = DomainName::parse("example.com").expect("valid");
        assert!(
            DomainName::parse("a.example.com")
                .expect("valid")
                .is_within(&parent)
        );
        assert!(parent.is_within(&parent));
        assert!(
            !DomainName::parse("badexample.com")
                .expect("valid")
                .is_within(&parent)
        );
    }

    #[test]
    fn urls_normalise() {
        let cases = [
            (
                "HTTPS://Example.COM:443/a/../b?#frag",
                "https://example.com/b",
            ),
            ("http://example.com", "http://example.com/"),
            (
                "https://t.me/SomeChannel/123",
                "https://t.me/SomeChannel/123",
            ),
            (
                "https://bücher.example/x?q=1",
                "https://xn--bcher-kva.example/x?q=1",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                NormalUrl::parse(raw).map(|u| u.0),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
        for raw in [
            "example.com/x",
            "ftp://example.com/",
            "https://u:p@example.com/",
            "https://",
        ] {
            assert!(NormalUrl::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn hashes_are_lowercased_and_length_checked() {
        let sha = "A".repeat(64);
        assert_eq!(
            ContentHash::parse(&sha).map(|h| h.to_string()),
            Ok(format!("sha256:{}", "a".repeat(64)))
        );
        assert_eq!(
            ContentHash::parse(&format!("PDQ:{}", "F".repeat(64))).map(|h| h.to_string()),
            Ok(format!("pdq:{}", "f".repeat(64)))
        );
        assert!(ContentHash::parse(&"a".repeat(63)).is_err());
        assert!(ContentHash::parse(&format!("md5:{}", "a".repeat(64))).is_err());
        assert!(ContentHash::parse(&"g".repeat(64)).is_err());
        assert!(ContentHash::parse(&format!("crc32:{}", "a".repeat(8))).is_err());
    }

    #[test]
    fn handles_and_channel_urls() {
        assert_eq!(
            Target::parse(ItemKind::PlatformChannel, "@Radical_Channel").map(|t| t.normalized),
            Ok("radical_channel".to_owned())
        );
        assert_eq!(
            Target::parse(ItemKind::PlatformChannel, "https://T.me/radical_channel")
                .map(|t| t.normalized),
            Ok("https://t.me/radical_channel".to_owned())
        );
        assert!(Target::parse(ItemKind::PlatformAccount, "@").is_err());
        assert!(Target::parse(ItemKind::PlatformAccount, "two words").is_err());
        assert!(Target::parse(ItemKind::PlatformAccount, "İstanbul").is_err());
        // 800 bytes typed, 2400 once percent-encoded
        let long = format!("https://example.com/{}", "é".repeat(400));
        assert!(Target::parse(ItemKind::Url, &long).is_err());
        for raw in [
            "https://example.com/\0",
            "\u{1}https://example.com/",
            "https://exa\tmple.com/",
        ] {
            assert!(Target::parse(ItemKind::Url, raw).is_err(), "{raw:?}");
        }
    }
}
