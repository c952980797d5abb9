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

use crate::name;
use crate::rpz::CnamePolicy;
use crate::wire::{Name, rtype};
use crate::zonefile::Reader;

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
        match blockable(bare) {
            Ok(d) => out.add(action, d, subdomains || wild),
            Err(e) => out.reject(n, e),
        }
    }
    Ok(out)
}

/// An RPZ zone file (draft-vixie-dnsop-dns-rpz): QNAME policy records
/// `owner [ttl] [class] CNAME target`, owners relative to `$ORIGIN` (or the
/// zone named in `origin`); SOA and NS are skipped. The file is read by the
/// zone-file reader the resolver uses ([`crate::zonefile::Reader`]), so
/// both accept the same dialect (blank-owner continuation lines
/// included); an entry it cannot read is a rejection on its first line.
pub fn parse_rpz(
    reader: impl BufRead,
    origin: &str,
    mut progress: impl FnMut(usize),
) -> std::io::Result<Parsed> {
    let zone = Name::from_ascii(&absolute(origin)).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("origin {origin:?}: {e}"),
        )
    })?;
    let mut out = Parsed::default();
    let mut pending_wild: BTreeMap<(OrderAction, DomainName), usize> = BTreeMap::new();
    // TTLs do not matter to an import: never refuse a record for lacking one
    let mut entries = Reader::new(reader, &zone).with_default_ttl(0);
    let mut reported = 0;
    while let Some(entry) = entries.next() {
        progress(entries.bytes_read() - reported);
        reported = entries.bytes_read();
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.io => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ));
            }
            Err(e) => {
                out.reject(e.line, e.message);
                continue;
            }
        };
        let (n, r) = (entry.line, &entry.record);
        match r.rtype {
            rtype::SOA | rtype::NS => continue,
            rtype::CNAME => {}
            t => {
                out.reject(
                    n,
                    format!(
                        "{} records are not QNAME policies tapis imports (only CNAME)",
                        type_name(t)
                    ),
                );
                continue;
            }
        }
        let policy = CnamePolicy::of_target(&r.rdata);
        // the draft reserves every `rpz-` target, known to tapis or not
        let reserved = name::labels(&r.rdata)
            .next()
            .is_some_and(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case(b"rpz-"));
        let action = match policy.order_action() {
            Some(a) if policy != CnamePolicy::Local || !reserved => a,
            _ => {
                out.reject(
                    n,
                    format!(
                        "policy {} is not supported",
                        name::to_text(&r.rdata).to_ascii_lowercase()
                    ),
                );
                continue;
            }
        };
        if !r.owner.ends_with(&entry.origin) {
            out.reject(
                n,
                format!(
                    "{} is outside the zone {}",
                    name::to_text(r.owner.wire()).to_ascii_lowercase(),
                    name::to_text(entry.origin.wire()).to_ascii_lowercase()
                ),
            );
            continue;
        }
        let owner = r.owner.wire();
        let mut rel = owner[..owner.len() - entry.origin.wire().len()].to_vec();
        rel.push(0);
        let relative = name::to_text(&rel).to_ascii_lowercase();
        let relative = relative.trim_end_matches('.');
        let (bare, wild) = match relative.strip_prefix("*.") {
            Some(b) => (b, true),
            None => (relative, false),
        };
        match blockable(bare) {
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
            Err(e) => out.reject(n, e),
        }
    }
    out.widened = pending_wild.len();
    Ok(out)
}

/// A name an order may target: parsed as orders parse it, and refused when
/// it would be an RPZ trigger (`rpz-` labels) or reach into the `_tapis`
/// explanation subtree rather than name a domain (core's
/// `check_blockable`, the rule `NewOrder::parse` applies to the API).
fn blockable(text: &str) -> Result<DomainName, String> {
    let d = DomainName::parse(text).map_err(|e| e.to_string())?;
    tapis_core::order::check_blockable(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// A record type as zone files name it.
fn type_name(t: u16) -> String {
    match t {
        rtype::A => "A".into(),
        rtype::AAAA => "AAAA".into(),
        rtype::TXT => "TXT".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        39 => "DNAME".into(),
        t => format!("TYPE{t}"),
    }
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
    fn rpz_files_read_as_the_resolver_reads_them() {
        // a blank owner continues the previous one (the resolver's reader
        // always took these; the import's own reader used to reject them)
        let zone = "$TTL 60\nwild.example CNAME .\n  IN TXT \"x\"\n*.wild.example CNAME .\n\
            tcp.example CNAME rpz-tcp-only.\nodd.example CNAME rpz-odd.\n\
            multi.example (\n 60 CNAME\n )\n$ORIGIN other.test.\nmoved.example CNAME .\n";
        let p = parse_rpz(zone.as_bytes(), "rpz.tapis", |_| {}).expect("parse");
        let nx = &p.targets[&OrderAction::Nxdomain];
        assert_eq!(nx.len(), 2, "{nx:?}");
        assert!(
            nx.contains_key(&DomainName::parse("moved.example").expect("d")),
            "owners are relative to the $ORIGIN in force"
        );
        let got: Vec<(usize, &str)> = p.rejected.iter().map(|(l, m)| (*l, m.as_str())).collect();
        assert_eq!(
            got.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [3, 5, 6, 7],
            "{got:?}"
        );
        assert!(got[0].1.starts_with("TXT records"), "{got:?}");
        assert!(got[1].1.contains("rpz-tcp-only."), "{got:?}");
        let mut bytes = 0;
        parse_rpz(zone.as_bytes(), "rpz.tapis", |n| bytes += n).expect("parse");
        assert_eq!(bytes, zone.len(), "progress counts every byte");
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

    /// An RPZ trigger or the explanation subtree is not a name: each is a
    /// line-numbered rejection, in lists and in zone files alike.
    #[test]
    fn triggers_are_rejected_with_their_line() {
        let list = "ok.example\n32.1.0.0.127.rpz-client-ip\n0.0.0.0 1.0.0.0.0.rpz-ip\n*.com.rpz-nsdname\n\
            victim.example._tapis\nns.rpz-nsip\nRPZ-Odd.example\nfine-rpz.example\n";
        let p =
            parse_domains(list.as_bytes(), OrderAction::Nxdomain, false, |_| {}).expect("parse");
        let lines: Vec<usize> = p.rejected.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7], "{:?}", p.rejected);
        assert!(
            p.rejected[0].1.contains("rpz-client-ip"),
            "{:?}",
            p.rejected
        );
        assert!(p.rejected[3].1.contains("_tapis"), "{:?}", p.rejected);
        assert_eq!(p.names(), 2, "ok.example and fine-rpz.example");

        let zone = "$TTL 60\nok.example CNAME .\n32.1.0.0.127.rpz-client-ip CNAME .\n\
            1.0.0.0.0.rpz-ip CNAME .\ncom.rpz-nsdname CNAME .\n*.victim.example._tapis CNAME .\n\
            x.rpz-nsip.example CNAME .\n";
        let p = parse_rpz(zone.as_bytes(), "rpz.tapis", |_| {}).expect("parse");
        let lines: Vec<usize> = p.rejected.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7], "{:?}", p.rejected);
        assert_eq!(p.names(), 1);
    }
}
