//! The byte-level fast path of URL normalisation: plain ASCII http(s) URLs
//! (a DNS host name, an optional port, a path and query of unreserved and
//! sub-delimiter characters) are normalised in one pass with one
//! allocation. Anything else (percent-encodings, user information, IP
//! literals or numeric hosts, IDN or `xn--` labels, dot-segments, trailing
//! dots, unusual characters) returns `None` and goes through the full
//! WHATWG parser; the test below checks the two agree on every URL the fast
//! path takes.

use super::{NormalisedUrl, UrlNormaliser};

/// Path bytes taken as they are: the URL parser leaves them unchanged.
fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/".contains(&b)
}

/// The scheme's length (`http` or `https`, any case) and default port.
fn scheme(s: &[u8]) -> Option<(usize, u16)> {
    let starts = |p: &[u8]| s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"https://") {
        Some((5, 443))
    } else if starts(b"http://") {
        Some((4, 80))
    } else {
        None
    }
}

/// A host the parser would only lowercase: dot-separated labels of
/// letters, digits and inner hyphens, none empty, none over 63 bytes, no
/// `--` (so no `xn--` A-labels to validate), and a last label that does not
/// start with a digit (so nothing the parser reads as an IPv4 address).
fn plain_host(h: &[u8]) -> bool {
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    let mut last_start = 0;
    let mut label_len = 0;
    let mut prev = b'.';
    for (i, &b) in h.iter().enumerate() {
        match b {
            b'.' => {
                if label_len == 0 || prev == b'-' {
                    return false;
                }
                label_len = 0;
                last_start = i + 1;
            }
            b'-' => {
                if label_len == 0 || prev == b'-' {
                    return false;
                }
                label_len += 1;
            }
            _ if b.is_ascii_alphanumeric() => label_len += 1,
            _ => return false,
        }
        if label_len > 63 {
            return false;
        }
        prev = b;
    }
    label_len > 0 && prev != b'-' && !h[last_start].is_ascii_digit()
}

/// Normalise `s` (already trimmed) if it is a plain URL; `None` otherwise.
pub(super) fn normalise(s: &str, n: &UrlNormaliser) -> Option<NormalisedUrl> {
    let b = s.as_bytes();
    let (scheme_len, default_port) = scheme(b)?;
    let rest = &b[scheme_len + 3..];
    // the fragment is dropped and never looked at
    let rest = &rest[..rest.iter().position(|&c| c == b'#').unwrap_or(rest.len())];
    let auth_end = rest
        .iter()
        .position(|&c| c == b'/' || c == b'?')
        .unwrap_or(rest.len());
    let (host, port) = match rest[..auth_end].iter().position(|&c| c == b':') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..auth_end])),
        None => (&rest[..auth_end], None),
    };
    if !plain_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || p[0] == b'0' || !p.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = std::str::from_utf8(p).ok()?.parse::<u16>().ok()?;
            (v != default_port).then_some(p)
        }
    };
    let after = &rest[auth_end..];
    let q = after.iter().position(|&c| c == b'?');
    let (path, query) = match q {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };
    if !path.iter().all(|&c| path_byte(c)) || path.windows(2).any(|w| w == b"/.") {
        return None;
    }
    if let Some(q) = query
        && !q.iter().all(|&c| path_byte(c) || c == b'?')
    {
        return None;
    }

    let mut text = String::with_capacity(s.len());
    text.push_str(if default_port == 443 {
        "https://"
    } else {
        "http://"
    });
    let host_start = text.len();
    // the bytes were checked to be ASCII
    for &c in host {
        text.push(char::from(c.to_ascii_lowercase()));
    }
    let host_end = text.len();
    if let Some(p) = port {
        text.push(':');
        text.push_str(std::str::from_utf8(p).ok()?);
    }
    if path.is_empty() {
        text.push('/');
    } else {
        text.push_str(std::str::from_utf8(path).ok()?);
    }
    if let Some(q) = query {
        let q = std::str::from_utf8(q).ok()?;
        let mut first = true;
        for p in q.split('&').filter(|p| !p.is_empty()) {
            let name = p.split_once('=').map_or(p, |(k, _)| k);
            if name.contains('+') {
                // a '+' is a space in a name: compared decoded, the long way
                return None;
            }
            if n.is_tracking(name) {
                continue;
            }
            text.push(if first { '?' } else { '&' });
            text.push_str(p);
            first = false;
        }
    }
    Some(NormalisedUrl {
        text,
        host_start,
        host_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_urls_take_the_fast_path() {
        let n = UrlNormaliser::default();
        for (raw, want) in [
            (
                "https://cdn.www.X.co.id/watch/v1?utm_source=share&t=1#x",
                "https://cdn.www.x.co.id/watch/v1?t=1",
            ),
            ("HTTP://Example.COM:80", "http://example.com/"),
            (
                "https://a-b.example:8443?x=1&&",
                "https://a-b.example:8443/?x=1",
            ),
            ("http://e.com/p?fbclid=1", "http://e.com/p"),
        ] {
            let fast = normalise(raw, &n).map(|u| u.to_string());
            assert_eq!(fast.as_deref(), Some(want), "{raw}");
        }
        for raw in [
            "https://e.com/a/../b",
            "https://u@e.com/",
            "https://1.2.3.4/",
            "https://e.com./",
            "https://xn--bcher-kva.example/",
            "https://e.com/%41",
            "https://e.com:080/",
            "https://e.com/?a+b=1",
        ] {
            assert!(
                normalise(raw, &n).is_none(),
                "{raw} is not for the fast path"
            );
        }
    }

    fn piece(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        proptest::sample::select(options)
    }

    /// Mostly a plain piece, sometimes an awkward one.
    fn mostly(
        plain: &'static [&'static str],
        awkward: &'static [&'static str],
    ) -> impl Strategy<Value = &'static str> {
        prop_oneof![12 => piece(plain), 1 => piece(awkward)]
    }

    fn url() -> impl Strategy<Value = String> {
        let scheme = mostly(
            &["http://", "HTTPS://", "https://", "hTTp://"],
            &["ftp://", "http:/", "", "https:///"],
        );
        let label = mostly(
            &["a", "Ex", "com", "b-c", "x2", "CO", "9a", "id"],
            &[
                "xn--a", "1", "0x1", "-b", "c-", "a--b", "_u", "é", "", "i..d",
            ],
        );
        let host = proptest::collection::vec(label, 1..4).prop_map(|v| v.join("."));
        let port = mostly(
            &["", "", "", ":80", ":443", ":8080", ":1"],
            &[":0", ":", ":99999", ":080", ":x"],
        );
        let seg = mostly(
            &["", "a", "~", "x-y", "@", ":", "a.b", "$!*", "x=1"],
            &[
                ".", "..", "A%41", "b c", "'", "|", "é", "\\", "?", ".a", "%2e",
            ],
        );
        let path = proptest::collection::vec(seg, 0..4).prop_map(|v| {
            if v.is_empty() {
                String::new()
            } else {
                format!("/{}", v.join("/"))
            }
        });
        let param = mostly(
            &[
                "utm_source=1",
                "a=1",
                "",
                "b",
                "fbclid=2",
                "c=d?e",
                "UTM_x=",
                "k=v/w",
                "_ga=1",
                "t=1",
                "a=1+2",
            ],
            &["x+y=1", "q='", "%41=1", "a=%zz", "s=é"],
        );
        let query =
            proptest::option::of(proptest::collection::vec(param, 0..4).prop_map(|v| v.join("&")));
        let frag = piece(&["", "", "#", "#x", "#a b", "#é"]);
        let at = mostly(&[""], &["user@", "u:p@"]);
        let dot = mostly(&[""], &["."]);
        (scheme, at, host, dot, port, path, query, frag).prop_map(
            |(s, at, h, dot, p, path, q, f)| {
                let q = q.map(|q| format!("?{q}")).unwrap_or_default();
                format!("{s}{at}{h}{dot}{p}{path}{q}{f}")
            },
        )
    }

    /// The generated URLs exercise both paths (else the comparison below
    /// would prove nothing).
    #[test]
    fn generated_urls_exercise_both_paths() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let n = UrlNormaliser::default();
        let strategy = url();
        let fast = (0..2000)
            .filter(|_| {
                let raw = strategy
                    .new_tree(&mut runner)
                    .map(|t| t.current())
                    .unwrap_or_default();
                normalise(raw.trim(), &n).is_some()
            })
            .count();
        assert!(
            (200..1800).contains(&fast),
            "{fast} of 2000 took the fast path"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Whatever the fast path takes, it normalises exactly as the full
        /// parser does.
        #[test]
        fn the_fast_path_agrees_with_the_full_parser(raw in url()) {
            let n = UrlNormaliser::default();
            if let Some(fast) = normalise(raw.trim(), &n) {
                let full = n.normalise_full(&raw);
                prop_assert_eq!(Ok(&fast), full.as_ref(), "{}", raw);
                prop_assert_eq!(
                    (fast.host(), fast.key()),
                    full.as_ref().map(|u| (u.host(), u.key())).unwrap_or_default()
                );
            }
        }
    }
}
