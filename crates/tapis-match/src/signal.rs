//! Typed content signals, parsed once at the edge: after
//! [`Signal::parse`] a URL is normalised, a domain is a valid lowercase
//! A-label name that knows whether it covers its subdomains, and a digest is
//! bytes of the right length.
//!
//! URL normalisation ([`UrlNormaliser`]) makes equal what a browser treats
//! as equal plus what only tracks the visitor: scheme and host lowercased,
//! IDN hosts in punycode, default ports dropped, dot-segments resolved,
//! percent-encodings of unreserved characters decoded and the others in
//! upper case (RFC 3986 §6.2.2), user information and fragment dropped, and
//! tracking parameters removed (`utm_*`, `fbclid`, `gclid` and a few more by
//! default; configurable). The order of the remaining query parameters is
//! kept: servers may read parameters in order (a repeated `a=1&a=2`, or
//! positional APIs), so sorting could make two different resources one
//! signal and a platform would act on the wrong content. Matching ignores
//! the scheme ([`NormalisedUrl::key`]): the same content is served over
//! http and https.

use std::fmt;

use tapis_core::public_suffix::PublicSuffixList;
use tapis_core::target::DomainName;

use crate::pdq::{PdqHash, parse_hex};
use crate::{Error, Result};

mod fast;

/// The kinds of signal a bank holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    Url,
    Domain,
    Sha256,
    Md5,
    Pdq,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Url => "url",
            SignalKind::Domain => "domain",
            SignalKind::Sha256 => "sha256",
            SignalKind::Md5 => "md5",
            SignalKind::Pdq => "pdq",
        }
    }

    /// `url`, `domain`, `sha256`, `md5` or `pdq` (any case).
    pub fn parse(s: &str) -> Result<SignalKind> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "url" => SignalKind::Url,
            "domain" => SignalKind::Domain,
            "sha256" | "sha-256" => SignalKind::Sha256,
            "md5" => SignalKind::Md5,
            "pdq" => SignalKind::Pdq,
            _ => return Err(Error::UnknownKind(s.to_owned())),
        })
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed signal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signal {
    Url(NormalisedUrl),
    Domain(DomainSignal),
    Sha256([u8; 32]),
    Md5([u8; 16]),
    Pdq(PdqHash),
}

impl Signal {
    /// Parse `value` as a signal of `kind` with the default URL
    /// normalisation. A domain written `*.example.com` covers its
    /// subdomains; `example.com` is that name only.
    pub fn parse(kind: SignalKind, value: &str) -> Result<Signal> {
        Signal::parse_with(kind, value, &UrlNormaliser::default())
    }

    /// As [`Signal::parse`], normalising URLs with `urls`.
    pub fn parse_with(kind: SignalKind, value: &str, urls: &UrlNormaliser) -> Result<Signal> {
        let v = value.trim();
        Ok(match kind {
            SignalKind::Url => Signal::Url(urls.normalise(v)?),
            SignalKind::Domain => Signal::Domain(DomainSignal::parse(v)?),
            SignalKind::Sha256 => Signal::Sha256(parse_hex("sha256", v)?),
            SignalKind::Md5 => Signal::Md5(parse_hex("md5", v)?),
            SignalKind::Pdq => Signal::Pdq(PdqHash::parse(v)?),
        })
    }

    pub fn kind(&self) -> SignalKind {
        match self {
            Signal::Url(_) => SignalKind::Url,
            Signal::Domain(_) => SignalKind::Domain,
            Signal::Sha256(_) => SignalKind::Sha256,
            Signal::Md5(_) => SignalKind::Md5,
            Signal::Pdq(_) => SignalKind::Pdq,
        }
    }
}

impl fmt::Display for Signal {
    /// The value in its canonical text form (what [`Signal::parse`] reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Url(u) => f.write_str(u.as_str()),
            Signal::Domain(d) => d.fmt(f),
            Signal::Sha256(b) => f.write_str(&hex::encode(b)),
            Signal::Md5(b) => f.write_str(&hex::encode(b)),
            Signal::Pdq(h) => h.fmt(f),
        }
    }
}

/// A domain name, and whether the signal covers every name under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainSignal {
    pub name: DomainName,
    pub include_subdomains: bool,
}

impl DomainSignal {
    /// `example.com` (that name only) or `*.example.com` / `.example.com`
    /// (the name and everything under it). Unicode names become punycode.
    pub fn parse(raw: &str) -> Result<DomainSignal> {
        let s = raw.trim();
        let (body, include_subdomains) = match s.strip_prefix("*.").or_else(|| s.strip_prefix('.'))
        {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let name = DomainName::parse(body).map_err(|e| Error::Domain {
            domain: raw.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(DomainSignal {
            name,
            include_subdomains,
        })
    }

    /// The registrable domain (public suffix plus one label) of this name
    /// under `list`; `None` when the name is itself a public suffix.
    pub fn registrable(&self, list: &PublicSuffixList) -> Option<String> {
        registrable_domain(self.name.as_str(), list).map(str::to_owned)
    }
}

impl fmt::Display for DomainSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.include_subdomains {
            f.write_str("*.")?;
        }
        f.write_str(self.name.as_str())
    }
}

/// The registrable domain of `name` (lowercase ASCII): the longest public
/// suffix it ends with, plus one label. `None` when `name` is a public
/// suffix (or nothing is one, which a list with its TLD fallback rules out).
pub fn registrable_domain<'a>(name: &'a str, list: &PublicSuffixList) -> Option<&'a str> {
    // walk from the whole name towards the root: the first suffix found is
    // the longest; the registrable domain is one label more
    let mut prev: Option<&str> = None;
    let mut cur = name;
    loop {
        if list.is_suffix(cur) {
            return prev;
        }
        prev = Some(cur);
        cur = cur.split_once('.')?.1;
    }
}

/// A normalised http(s) URL. Build one with [`UrlNormaliser::normalise`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalisedUrl {
    text: String,
    /// Byte offset of the host in `text`, for the scheme-less key.
    host_start: usize,
    host_end: usize,
}

impl NormalisedUrl {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL without its scheme (`host[:port]/path?query`): two URLs
    /// with the same key are the same signal.
    pub fn key(&self) -> &str {
        &self.text[self.host_start..]
    }

    /// The host name (lowercase ASCII, or an IP literal).
    pub fn host(&self) -> &str {
        &self.text[self.host_start..self.host_end]
    }
}

impl fmt::Display for NormalisedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How URLs are normalised: which query parameters are tracking noise.
#[derive(Debug, Clone)]
pub struct UrlNormaliser {
    /// Parameter names removed (compared case-insensitively); a name
    /// ending in `*` is a prefix.
    pub tracking: Vec<String>,
}

/// The tracking parameters removed by default.
pub const DEFAULT_TRACKING: &[&str] = &[
    "utm_*", "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "igshid", "mc_cid",
    "mc_eid", "yclid", "_ga",
];

impl Default for UrlNormaliser {
    fn default() -> Self {
        UrlNormaliser {
            tracking: DEFAULT_TRACKING.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl UrlNormaliser {
    /// A normaliser that removes exactly these parameters.
    pub fn with_tracking<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        UrlNormaliser {
            tracking: names.into_iter().map(Into::into).collect(),
        }
    }

    fn is_tracking(&self, name: &str) -> bool {
        self.tracking.iter().any(|t| match t.strip_suffix('*') {
            Some(prefix) => name
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix)),
            None => name.eq_ignore_ascii_case(t),
        })
    }

    /// Parse and normalise an absolute http(s) URL.
    pub fn normalise(&self, raw: &str) -> Result<NormalisedUrl> {
        match fast::normalise(raw.trim(), self) {
            Some(u) => Ok(u),
            None => self.normalise_full(raw),
        }
    }

    /// [`UrlNormaliser::normalise`] through the full WHATWG parser, for
    /// every URL the byte-level fast path does not take.
    pub(crate) fn normalise_full(&self, raw: &str) -> Result<NormalisedUrl> {
        let s = raw.trim();
        let bad = |reason: String| Error::Url {
            url: raw.to_owned(),
            reason,
        };
        let mut u = url::Url::parse(s).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                bad("it has no scheme: write it as https://…".into())
            }
            other => bad(other.to_string()),
        })?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(Error::UrlScheme(raw.to_owned()));
        }
        let Some(host) = u.host_str() else {
            return Err(Error::UrlHost(raw.to_owned()));
        };
        if let Some(trimmed) = host.strip_suffix('.') {
            let trimmed = trimmed.to_owned();
            if trimmed.is_empty() {
                return Err(Error::UrlHost(raw.to_owned()));
            }
            u.set_host(Some(&trimmed)).map_err(|e| bad(e.to_string()))?;
        }
        // user information identifies nobody's content and may be a secret
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_fragment(None);
        // (setting the path or query re-parses the URL: only when changed)
        if u.path().contains('%') {
            let path = normalise_percent(u.path());
            u.set_path(&path);
        }
        if let Some(q) = u.query() {
            let kept = q
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = p.split_once('=').map_or(*p, |(n, _)| n);
                    if name.contains(['%', '+']) {
                        !self.is_tracking(&percent_decode_lossy(name))
                    } else {
                        !self.is_tracking(name)
                    }
                })
                .map(|p| {
                    if p.contains('%') {
                        normalise_percent(p)
                    } else {
                        p.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("&");
            if kept.is_empty() {
                u.set_query(None);
            } else if kept != q {
                u.set_query(Some(&kept));
            }
        }
        let text = String::from(u);
        // locate the host for the scheme-less key: after "scheme://"
        let host_start = text.find("://").map_or(0, |i| i + 3);
        let host_end = text[host_start..]
            .find(['/', '?', ':'])
            .map_or(text.len(), |i| host_start + i);
        let host_end = if text[host_start..].starts_with('[') {
            // IPv6 literal: the host ends at the bracket
            text[host_start..]
                .find(']')
                .map_or(host_end, |i| host_start + i + 1)
        } else {
            host_end
        };
        Ok(NormalisedUrl {
            text,
            host_start,
            host_end,
        })
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The byte a `%XX` at `i` stands for, if one is there.
fn percent_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    let hi = char::from(*b.get(i + 1)?).to_digit(16)?;
    let lo = char::from(*b.get(i + 2)?).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// RFC 3986 §6.2.2: decode percent-encoded unreserved characters, write
/// the other percent-encodings in upper case.
fn normalise_percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(v) = percent_at(b, i) {
            // a decoded '.' could form a new dot-segment: keep it encoded
            if is_unreserved(v) && v != b'.' {
                out.push(char::from(v));
            } else {
                out.push_str(&format!("%{v:02X}"));
            }
            i += 3;
        } else {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Percent-decode for comparing parameter names (invalid UTF-8 replaced).
fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(v) = percent_at(b, i) {
            out.push(v);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        UrlNormaliser::default().normalise(s).unwrap().to_string()
    }

    #[test]
    fn urls_normalise_as_documented() {
        let cases = [
            (
                "HTTP://Example.COM:80/a/./b/../c?x=1#frag",
                "http://example.com/a/c?x=1",
            ),
            ("https://example.com:443", "https://example.com/"),
            ("https://example.com:8443/", "https://example.com:8443/"),
            (
                "https://bücher.example/ä",
                "https://xn--bcher-kva.example/%C3%A4",
            ),
            (
                "https://example.com/?utm_source=x&id=7&fbclid=y&gclid=z",
                "https://example.com/?id=7",
            ),
            ("https://example.com/?UTM_Medium=x", "https://example.com/"),
            (
                "https://example.com/%7euser/%41%2f?q=%3d%62",
                "https://example.com/~user/A%2F?q=%3Db",
            ),
            ("https://user:pw@example.com./p", "https://example.com/p"),
            (
                "https://example.com/?b=2&a=1&&",
                "https://example.com/?b=2&a=1",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(n(raw), want, "{raw}");
        }
        let u = UrlNormaliser::default()
            .normalise("http://[::1]:8080/x")
            .unwrap();
        assert_eq!(u.host(), "[::1]");
        let u = UrlNormaliser::default()
            .normalise("https://a.example.com:81/x?y")
            .unwrap();
        assert_eq!(
            (u.host(), u.key()),
            ("a.example.com", "a.example.com:81/x?y")
        );
    }

    #[test]
    fn tracking_parameters_are_configurable() {
        let keep = UrlNormaliser::with_tracking(["ref"]);
        let u = keep.normalise("https://e.com/?utm_source=x&ref=1").unwrap();
        assert_eq!(u.as_str(), "https://e.com/?utm_source=x");
    }

    #[test]
    fn bad_urls_say_why() {
        let e = UrlNormaliser::default()
            .normalise("example.com/x")
            .unwrap_err();
        assert!(e.to_string().contains("no scheme"), "{e}");
        assert_eq!(
            UrlNormaliser::default().normalise("ftp://example.com/"),
            Err(Error::UrlScheme("ftp://example.com/".into()))
        );
        assert!(matches!(
            UrlNormaliser::default().normalise("https://exa mple.com/"),
            Err(Error::Url { .. })
        ));
    }

    #[test]
    fn domains_parse_with_or_without_subdomains() {
        let d = DomainSignal::parse("*.Bücher.Example").unwrap();
        assert!(d.include_subdomains);
        assert_eq!(d.to_string(), "*.xn--bcher-kva.example");
        let d = DomainSignal::parse("example.com.").unwrap();
        assert!(!d.include_subdomains);
        assert!(matches!(
            DomainSignal::parse("bad..name"),
            Err(Error::Domain { .. })
        ));
        assert!(matches!(
            DomainSignal::parse("com"),
            Err(Error::Domain { .. })
        ));
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        let psl = PublicSuffixList::bundled();
        assert_eq!(
            registrable_domain("a.b.example.co.id", &psl),
            Some("example.co.id")
        );
        assert_eq!(
            registrable_domain("user.github.io", &psl),
            Some("user.github.io")
        );
        assert_eq!(
            registrable_domain("x.user.github.io", &psl),
            Some("user.github.io")
        );
        assert_eq!(registrable_domain("co.id", &psl), None);
        let d = DomainSignal::parse("www.kominfo.go.id").unwrap();
        assert_eq!(d.registrable(&psl).as_deref(), Some("kominfo.go.id"));
    }

    #[test]
    fn every_kind_parses_and_prints_back() {
        for (k, v) in [
            (
                "sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
            (
                "pdq",
                "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22",
            ),
            ("domain", "*.example.com"),
            ("url", "https://example.com/x"),
        ] {
            let kind = SignalKind::parse(k).unwrap();
            let s = Signal::parse(kind, v).unwrap();
            assert_eq!(s.kind(), kind);
            assert_eq!(s.to_string(), v);
        }
        assert_eq!(
            Signal::parse(SignalKind::Md5, "abcd"),
            Err(Error::HexLength {
                kind: "md5",
                expected: 32,
                got: 4
            })
        );
        assert_eq!(
            SignalKind::parse("sha1"),
            Err(Error::UnknownKind("sha1".into()))
        );
    }
}
