//! Readers of existing blocklists for `tapis import`: an RPZ zone file, or a
//! plain list of domains or hosts-file lines. Every line that cannot be used
//! is reported with its number and the reason; the command (in the binary)
//! turns the result into draft orders, one per action, in one transaction.
//!
//! Pure functions over lines, tested without files.

use std::collections::BTreeMap;
use std::io::BufRead;

use tapis_core::order::OrderAction;
use tapis_core::target::DomainName;

/// What a file yielded.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Per action: name → include_subdomains.
    pub targets: BTreeMap<OrderAction, BTreeMap<DomainName, bool>>,
    pub accepted: usize,
    pub duplicates: usize,
    /// `*.name` entries without `name` itself: a target covers the name and
    /// everything under it, so these are widened to the name.
    pub widened: usize,
    pub rejected: Vec<(usize, String)>,
}

impl Parsed {
    fn add(&mut self, action: OrderAction, name: DomainName, subdomains: bool) {
        let entry = self.targets.entry(action).or_default();
        match entry.get_mut(&name) {
            Some(existing) if *existing || !subdomains => self.duplicates += 1,
            Some(existing) => {
                *existing = true;
                self.accepted += 1;
            }
            None => {
                entry.insert(name, subdomains);
                self.accepted += 1;
            }
        }
    }

    fn reject(&mut self, line: usize, reason: impl Into<String>) {
        self.rejected.push((line, reason.into()));
    }

    pub fn names(&self) -> usize {
        self.targets.values().map(BTreeMap::len).sum()
    }
}

/// A plain list: one name a line (`name`, `*.name`, or hosts-file lines
/// `0.0.0.0 name`); `#` starts a comment.
pub fn parse_domains(
    reader: impl BufRead,
    action: OrderAction,
    subdomains: bool,
    mut progress: impl FnMut(usize),
) -> std::io::Result<Parsed> {
    let mut out = Parsed::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        progress(line.len() + 1);
        let n = i + 1;
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let mut fields = text.split_whitespace();
        let first = fields.next().unwrap_or("");
        let name = match (first, fields.next()) {
            ("0.0.0.0" | "127.0.0.1" | "::" | "::1", Some(host)) => host,
            (_, None) => first,
            _ => {
                out.reject(n, "expected one domain name (or a hosts-file line)");
                continue;
            }
        };
        if fields.next().is_some() {
            out.reject(n, "more than one name on the line");
            continue;
        }
        if matches!(
            name,
            "localhost" | "localhost.localdomain" | "broadcasthost" | "local"
        ) {
            continue;
        }
        let (bare, wild) = match name.strip_prefix("*.") {
            Some(b) => (b, true),
            None => (name, false),
        };
        match DomainName::parse(bare) {
            Ok(d) => out.add(action, d, subdomains || wild),
            Err(e) => out.reject(n, e.to_string()),
        }
    }
    Ok(out)
}

/// An RPZ zone file (draft-vixie-dnsop-dns-rpz): QNAME policy records
/// `owner [ttl] [class] CNAME target`, owners relative to `$ORIGIN` (or the
/// zone named in `origin`); SOA, NS and directives are skipped.
pub fn parse_rpz(
    reader: impl BufRead,
    origin: &str,
    mut progress: impl FnMut(usize),
) -> std::io::Result<Parsed> {
    let mut out = Parsed::default();
    let mut origin = absolute(origin);
    let mut in_parens = false;
    let mut pending_wild: BTreeMap<(OrderAction, DomainName), usize> = BTreeMap::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        progress(line.len() + 1);
        let n = i + 1;
        let text = strip_comment(&line);
        if in_parens {
            if text.contains(')') {
                in_parens = false;
            }
            continue;
        }
        if text.trim().is_empty() {
            continue;
        }
        if text.contains('(') && !text.contains(')') {
            in_parens = true;
        }
        let continuation = text.starts_with(char::is_whitespace);
        let fields: Vec<&str> = text.split_whitespace().collect();
        if let Some(directive) = fields.first().filter(|f| f.starts_with('$')) {
            match (*directive, fields.get(1)) {
                ("$ORIGIN", Some(o)) => origin = absolute(o),
                ("$TTL" | "$ORIGIN", _) => {}
                _ => out.reject(n, format!("unsupported directive {directive}")),
            }
            continue;
        }
        let (owner, rest): (Option<&str>, &[&str]) = if continuation {
            (None, &fields[..])
        } else {
            (fields.first().copied(), &fields[1..])
        };
        // skip TTL and class, then the type
        let mut rest = rest;
        while let Some(f) = rest.first() {
            if f.bytes().all(|b| b.is_ascii_digit()) || f.eq_ignore_ascii_case("IN") {
                rest = &rest[1..];
            } else {
                break;
            }
        }
        let Some(rtype) = rest.first() else {
            out.reject(n, "no record type");
            continue;
        };
        if rtype.eq_ignore_ascii_case("SOA") || rtype.eq_ignore_ascii_case("NS") {
            continue;
        }
        if !rtype.eq_ignore_ascii_case("CNAME") {
            out.reject(
                n,
                format!("{rtype} records are not QNAME policies tapis imports (only CNAME)"),
            );
            continue;
        }
        let (Some(owner), Some(target)) = (owner, rest.get(1)) else {
            out.reject(n, "a CNAME needs an owner and a target");
            continue;
        };
        let action = match target.to_ascii_lowercase().as_str() {
            "." => OrderAction::Nxdomain,
            "*." => OrderAction::Nodata,
            "rpz-passthru." => OrderAction::Passthru,
            "rpz-drop." => OrderAction::Drop,
            t if t.starts_with("rpz-") => {
                out.reject(n, format!("policy {t} is not supported"));
                continue;
            }
            _ => OrderAction::WalledGarden,
        };
        let owner = owner.to_ascii_lowercase();
        let relative = if let Some(abs) = owner.strip_suffix('.') {
            match abs
                .strip_suffix(origin.trim_end_matches('.'))
                .and_then(|r| r.strip_suffix('.'))
            {
                Some(r) => r.to_owned(),
                None => {
                    out.reject(n, format!("{owner} is outside the zone {origin}"));
                    continue;
                }
            }
        } else {
            owner
        };
        let (bare, wild) = match relative.strip_prefix("*.") {
            Some(b) => (b.to_owned(), true),
            None => (relative, false),
        };
        match DomainName::parse(&bare) {
            Ok(d) => {
                if wild {
                    let exact_known = out.targets.get(&action).is_some_and(|m| m.contains_key(&d));
                    if !exact_known {
                        pending_wild.insert((action, d.clone()), n);
                    }
                } else {
                    pending_wild.remove(&(action, d.clone()));
                }
                out.add(action, d, wild);
            }
            Err(e) => out.reject(n, e.to_string()),
        }
    }
    out.widened = pending_wild.len();
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    // `;` starts a comment (zone files have no quoted strings in CNAMEs)
    line.split(';').next().unwrap_or("")
}

fn absolute(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpz_file() {
        let zone = "$TTL 3600\n@ SOA localhost. root.localhost. (\n 1 2 3\n 4 5 )\n  NS  localhost.\n; comment\n\
            judi.example CNAME .\n*.judi.example CNAME .\nonly.example 300 IN CNAME *.\n*.wild.example CNAME .\n\
            ok.judi.example CNAME rpz-passthru.\nshown.example.rpz.tapis. CNAME block.tapis.example.\n\
            bad..example CNAME .\nother.zone.example.org. CNAME .\nx.example A 1.2.3.4\njudi.example CNAME .\n";
        let p = parse_rpz(zone.as_bytes(), "rpz.tapis", |_| {}).expect("parse");
        let nx = &p.targets[&OrderAction::Nxdomain];
        assert_eq!(
            nx.get(&DomainName::parse("judi.example").expect("d")),
            Some(&true)
        );
        assert_eq!(
            nx.get(&DomainName::parse("wild.example").expect("d")),
            Some(&true)
        );
        assert_eq!(p.targets[&OrderAction::Nodata].len(), 1);
        assert_eq!(p.targets[&OrderAction::Passthru].len(), 1);
        assert!(
            p.targets[&OrderAction::WalledGarden]
                .contains_key(&DomainName::parse("shown.example").expect("d"))
        );
        assert_eq!(p.widened, 1, "*.wild.example had no exact entry");
        assert_eq!(p.duplicates, 1);
        let lines: Vec<usize> = p.rejected.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [13, 14, 15], "{:?}", p.rejected);
    }

    #[test]
    fn domain_lists_and_hosts_files() {
        let list = "# list\nJudi.Example\n0.0.0.0 slot.example\n127.0.0.1 localhost\n*.wild.example\nnot a domain\nbad_-.example\njudi.example\n";
        let p =
            parse_domains(list.as_bytes(), OrderAction::Nxdomain, false, |_| {}).expect("parse");
        let nx = &p.targets[&OrderAction::Nxdomain];
        assert_eq!(nx.len(), 3);
        assert_eq!(
            nx.get(&DomainName::parse("wild.example").expect("d")),
            Some(&true)
        );
        assert_eq!(p.duplicates, 1);
        assert_eq!(
            p.rejected.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [6, 7]
        );
    }
}
