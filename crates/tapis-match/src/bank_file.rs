//! Banks in the text formats the industry exchanges, parsed from a string
//! (reading the file is the caller's job):
//!
//! * one PDQ hash per line, optionally followed by its quality (separated
//!   by whitespace or a comma), as ThreatExchange's tools write them;
//! * CSV with a header naming at least `type` and `value`, and optionally
//!   `category`, `tier`, `group`, `source`, `added_by`, `added_at` and
//!   `quality` (other columns are ignored; fields may be double-quoted).
//!
//! Blank lines and lines starting with `#` are skipped. The first bad line
//! stops the load with its line number, so a bank is never half loaded.

use crate::Error;
use crate::bank::{Bank, Labels, Provenance};
use crate::pdq::PdqHash;
use crate::signal::{Signal, SignalKind, UrlNormaliser};

/// Why a bank file did not load.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("line {line}: {error}")]
    Signal { line: usize, error: Error },
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
    #[error(
        "the bank file has no signals: write one PDQ hash per line, or CSV with a type,value header"
    )]
    Empty,
}

/// Parse a bank file's text into a bank named `name`.
pub fn parse(name: &str, text: &str, urls: &UrlNormaliser) -> Result<Bank, LoadError> {
    let mut bank = Bank::new(name);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((first_no, first)) = lines.next() else {
        return Err(LoadError::Empty);
    };
    let header = split_csv(first);
    let is_csv = header.iter().any(|h| h.eq_ignore_ascii_case("type"))
        && header.iter().any(|h| h.eq_ignore_ascii_case("value"));
    if is_csv {
        let col = |n: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n));
        let (Some(t), Some(v)) = (col("type"), col("value")) else {
            return Err(LoadError::Format {
                line: first_no,
                message: "the header needs type and value columns".into(),
            });
        };
        let [category, tier, group, source, added_by, added_at, quality] = [
            "category", "tier", "group", "source", "added_by", "added_at", "quality",
        ]
        .map(col);
        for (line, l) in lines {
            let f = split_csv(l);
            let get = |c: Option<usize>| {
                c.and_then(|c| f.get(c))
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
            };
            let (Some(kind), Some(value)) = (get(Some(t)), get(Some(v))) else {
                return Err(LoadError::Format {
                    line,
                    message: format!("needs a type and a value, found {} fields", f.len()),
                });
            };
            let kind =
                SignalKind::parse(&kind).map_err(|error| LoadError::Signal { line, error })?;
            let signal = Signal::parse_with(kind, &value, urls)
                .map_err(|error| LoadError::Signal { line, error })?;
            let quality = get(quality)
                .map(|q| parse_quality(&q))
                .transpose()
                .map_err(|error| LoadError::Signal { line, error })?;
            let labels = Labels {
                category: get(category),
                tier: get(tier),
                group: get(group),
            };
            let provenance = Provenance {
                source: get(source),
                added_by: get(added_by),
                added_at: get(added_at),
            };
            bank.add(signal, quality, labels, provenance);
        }
    } else {
        for (line, l) in std::iter::once((first_no, first)).chain(lines) {
            let mut parts = l
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty());
            let hash = parts.next().unwrap_or_default();
            let hash = PdqHash::parse(hash).map_err(|error| LoadError::Signal { line, error })?;
            let quality = parts
                .next()
                .map(parse_quality)
                .transpose()
                .map_err(|error| LoadError::Signal { line, error })?;
            bank.add(
                Signal::Pdq(hash),
                quality,
                Labels::default(),
                Provenance::default(),
            );
        }
    }
    Ok(bank)
}

fn parse_quality(s: &str) -> Result<u8, Error> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|q| *q <= 100)
        .ok_or_else(|| Error::Quality(s.to_owned()))
}

/// Split one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22";

    #[test]
    fn hash_per_line_with_optional_quality() {
        let text = format!("# pdq\n{H} 100\n\n{H},87\n{H}\n");
        let b = parse("b", &text, &UrlNormaliser::default()).unwrap();
        let q: Vec<_> = b.entries().iter().map(|e| e.quality).collect();
        assert_eq!(q, [Some(100), Some(87), None]);
        let e = parse("b", &format!("{H}\n{H} 101\n"), &UrlNormaliser::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: quality \"101\" is not a number from 0 to 100"
        );
        let e = parse("b", "xyz\n", &UrlNormaliser::default()).unwrap_err();
        assert!(matches!(e, LoadError::Signal { line: 1, .. }), "{e}");
        assert_eq!(
            parse(
                "b",
                "
# x
",
                &UrlNormaliser::default()
            )
            .unwrap_err(),
            LoadError::Empty
        );
    }

    #[test]
    fn csv_with_labels_and_quoting() {
        let text = format!(
            "type,value,category,source,extra\npdq,{H},terrorism,notice-1,x\nurl,\"https://e.com/?a=1,2\",terrorism,order-7,\ndomain,*.bad.example,,,\n"
        );
        let b = parse("b", &text, &UrlNormaliser::default()).unwrap();
        assert_eq!(b.entries().len(), 3);
        assert_eq!(b.entries()[1].signal.to_string(), "https://e.com/?a=1,2");
        assert_eq!(b.entries()[1].provenance.source.as_deref(), Some("order-7"));
        assert_eq!(b.entries()[0].labels.category.as_deref(), Some("terrorism"));
        assert_eq!(b.entries()[2].labels.category, None);
        let e = parse("b", "type,value\nsha1,abc\n", &UrlNormaliser::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: unknown signal type \"sha1\": use one of url, domain, sha256, md5, pdq"
        );
        let e = parse("b", "type,value\npdq\n", &UrlNormaliser::default()).unwrap_err();
        assert!(matches!(e, LoadError::Format { line: 2, .. }), "{e}");
    }
}
