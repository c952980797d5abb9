//! The Response Policy Zone as DNS sees it: zone-file text
//! (draft-vixie-dnsop-dns-rpz), and the plain exports for resolvers that
//! cannot transfer zones (one domain a line, hosts file).
//!
//! Input is the zone's records as the store keeps them (owner name and
//! action); this crate knows nothing about orders or the database.
//!
//! It also serves the zone as a primary name server ([`Primary`]: SOA,
//! AXFR and IXFR with TSIG, fed by a [`ZoneSource`]) and tells secondaries
//! about changes ([`send_notify`]).
//!
//! And it is the DNS toolkit of the workspace, written once and used by
//! the primary, `tapis import`, the filtering resolver and the replay:
//! [`wire`] and [`tsig`] (why they are hand-written: README.md),
//! [`zonefile`] (the reader and writer of the zone-file dialect), [`xfr`]
//! (the zone-transfer client), [`serial`] (RFC 1982), [`name`] (walking
//! wire names) and [`rpz`] (what a policy CNAME means).
#![forbid(unsafe_code)]

use std::fmt::Write;
use std::net::SocketAddr;

use tapis_core::order::OrderAction;

pub mod import;
pub mod name;
pub mod notify;
pub mod probe;
pub mod rpz;
pub mod serial;
pub mod server;
pub mod source;
pub mod tsig;
pub mod wire;
pub mod xfr;
pub mod zonefile;
pub mod zonemd;

pub use notify::{NotifyOptions, NotifyOutcome, send_notify, send_notify_with};
pub use serial::soa_serial;
pub use server::{Observation, Observed, Primary, PrimaryConfig, Reply, Transfer, Transport, bind};
pub use source::{Diff, MemoryZone, Record, SNAPSHOT_BATCH, Snapshot, ZoneSource};
pub use tapis_core::isp::IpNet;
pub use tsig::{Algorithm, TsigKey};
pub use zonemd::ZoneDigest;

/// What can go wrong in this crate's server and NOTIFY sender.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A zone name, key or setting that cannot be used.
    #[error("{0}")]
    Config(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A NOTIFY target on a private or special-purpose address, while
    /// those are not allowed.
    #[error("{0} is a private or special-purpose address: not sent (allow_private_targets is off)")]
    PrivateTarget(SocketAddr),
    /// A NOTIFY was never answered.
    #[error("no answer to NOTIFY from {target} after {tries} tries")]
    NoAnswer { target: SocketAddr, tries: u32 },
    /// A zone transfer or SOA query that failed (see [`xfr`]).
    #[error("zone transfer: {0}")]
    Transfer(String),
}

/// The label under the zone apex that holds explanations: for a policy
/// record at `T.<zone>`, a TXT record at `T._tapis.<zone>` says which order
/// it carries out and what kind of block it is, as
/// `ref=<order reference> cat=<blocked|censored|filtered>` (see
/// [`explanation_text`]). Resolvers that know the convention (tapis's own)
/// put it in an Extended DNS Error (RFC 8914); others see a harmless
/// policy for names under `_tapis`, which nobody looks up.
pub const EXPLANATION_LABEL: &str = "_tapis";

/// The kind of block, as an Extended DNS Error (RFC 8914) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// 15 Blocked: the resolver operator's own policy (e.g. malware).
    Blocked,
    /// 16 Censored: an external requirement, e.g. a legal order.
    Censored,
    /// 17 Filtered: filtering the client asked for.
    Filtered,
}

impl BlockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Blocked => "blocked",
            BlockKind::Censored => "censored",
            BlockKind::Filtered => "filtered",
        }
    }

    pub fn parse(s: &str) -> Option<BlockKind> {
        Some(match s {
            "blocked" => BlockKind::Blocked,
            "censored" => BlockKind::Censored,
            "filtered" => BlockKind::Filtered,
            _ => return None,
        })
    }

    /// The RFC 8914 INFO-CODE.
    pub fn ede_code(self) -> u16 {
        match self {
            BlockKind::Blocked => 15,
            BlockKind::Censored => 16,
            BlockKind::Filtered => 17,
        }
    }
}

/// Explanation texts by order: an order has one action and one category,
/// so its records share one text, formatted once and shared by `Arc`
/// however many million names the order has.
#[derive(Debug)]
pub struct ExplanationCache<'a> {
    policy: &'a Explanations,
    by_order: std::collections::HashMap<String, Option<std::sync::Arc<str>>>,
}

impl<'a> ExplanationCache<'a> {
    pub fn new(policy: &'a Explanations) -> Self {
        ExplanationCache {
            policy,
            by_order: Default::default(),
        }
    }

    /// The explanation for a record of `action` carrying out `order_id`.
    pub fn get(
        &mut self,
        action: OrderAction,
        order_id: Option<&str>,
        category: Option<&str>,
    ) -> Option<std::sync::Arc<str>> {
        let id = order_id?;
        if let Some(t) = self.by_order.get(id) {
            return t.clone();
        }
        let t: Option<std::sync::Arc<str>> =
            self.policy.text(action, Some(id), category).map(Into::into);
        self.by_order.insert(id.to_owned(), t.clone());
        t
    }
}

/// The text of an explanation record (a reference is kept to printable
/// ASCII without spaces, and short enough for one TXT string).
pub fn explanation_text(reference: &str, kind: BlockKind) -> String {
    let reference: String = reference
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(200)
        .collect();
    format!("ref={reference} cat={}", kind.as_str())
}

/// Reads an explanation record's text: (reference, kind). Unknown fields
/// are ignored; `cat` is read in any case, and a missing or unknown one is
/// [`BlockKind::Blocked`]. The resolver reads `_tapis` records with this.
pub fn parse_explanation(text: &str) -> Option<(String, BlockKind)> {
    let mut reference = None;
    let mut kind = BlockKind::Blocked;
    for field in text.split_ascii_whitespace() {
        if let Some(r) = field.strip_prefix("ref=") {
            reference = Some(r.to_owned()).filter(|r| !r.is_empty());
        } else if let Some(c) = field.strip_prefix("cat=") {
            kind = BlockKind::parse(&c.to_ascii_lowercase()).unwrap_or(BlockKind::Blocked);
        }
    }
    Some((reference?, kind))
}

/// Zone parameters.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's name, absolute (e.g. `rpz.tapis.`).
    pub zone: String,
    /// Where walled-garden answers point (the block page).
    pub block_page_host: String,
    /// Primary name server and contact for the SOA.
    pub mname: String,
    pub rname: String,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// TTL of policy records, and the SOA minimum (negative caching).
    pub ttl: u32,
    /// Whether and how each record's explanation TXT is published.
    pub explanations: Explanations,
}

/// Which explanation each record gets: its order's reference, and the
/// kind of block its order's category makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanations {
    /// Publish explanation TXTs at all.
    pub enabled: bool,
    /// The kind for categories not listed in `by_category`. A blocking
    /// order is an external legal requirement: RFC 8914 calls that
    /// Censored.
    pub default_kind: BlockKind,
    pub by_category: std::collections::BTreeMap<String, BlockKind>,
}

impl Default for Explanations {
    fn default() -> Self {
        Explanations {
            enabled: true,
            default_kind: BlockKind::Censored,
            by_category: Default::default(),
        }
    }
}

impl Explanations {
    /// The kind of block for a category.
    pub fn kind(&self, category: &str) -> BlockKind {
        self.by_category
            .get(category)
            .copied()
            .unwrap_or(self.default_kind)
    }

    /// The explanation text for a record of `action` carrying out order
    /// `reference` of `category` (none for exceptions, or when disabled).
    pub fn text(
        &self,
        action: OrderAction,
        reference: Option<&str>,
        category: Option<&str>,
    ) -> Option<String> {
        if !self.enabled || action == OrderAction::Passthru {
            return None;
        }
        let reference = reference?;
        Some(explanation_text(
            reference,
            category.map_or(self.default_kind, |c| self.kind(c)),
        ))
    }
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            zone: "rpz.tapis.".into(),
            block_page_host: "block.tapis.invalid".into(),
            mname: "ns.rpz.tapis.".into(),
            rname: "hostmaster.rpz.tapis.".into(),
            refresh: 300,
            retry: 60,
            expire: 604_800,
            ttl: 60,
            explanations: Explanations::default(),
        }
    }
}

/// Whether `owner` (`name` or `*.name`, relative to the zone) may be
/// written into the policy zone `zone`: it must be a name an order may
/// target, as core parses it (lowercase A-labels) and as
/// `tapis_core::order::check_blockable` allows it (no `rpz-` trigger
/// label, nothing under `_tapis`), and its explanation owner
/// `<owner>._tapis.<zone>` must fit in 255 octets. The store's compiler
/// keeps such owners out of the zone; the writers here refuse them again,
/// so a row that reached the database some other way still cannot turn
/// into a trigger on client or answer addresses, or break the zone.
pub fn check_owner(owner: &str, zone: &str) -> Result<(), String> {
    check_owner_wire(owner, wire_len(&absolute(zone)))
}

/// [`check_owner`] for a zone whose name is `zone_wire` octets on the wire.
pub(crate) fn check_owner_wire(owner: &str, zone_wire: usize) -> Result<(), String> {
    let bare = owner.strip_prefix("*.").unwrap_or(owner);
    let name = tapis_core::target::DomainName::parse(bare).map_err(|e| e.to_string())?;
    if name.as_str() != bare {
        return Err(format!(
            "{owner:?} is not written as the store writes names"
        ));
    }
    tapis_core::order::check_blockable(&name).map_err(|e| e.to_string())?;
    // `<owner>.` + `_tapis.` + the zone, as wire octets
    let explained = owner.len() + 1 + 1 + EXPLANATION_LABEL.len() + zone_wire;
    if explained > 255 {
        return Err(format!(
            "{owner:?} is too long: its explanation name would be {explained} octets (at most 255)"
        ));
    }
    Ok(())
}

/// Octets of an absolute name (`a.b.`) on the wire.
fn wire_len(absolute: &str) -> usize {
    if absolute == "." {
        1
    } else {
        absolute.len() + 1
    }
}

/// The zone file: `$TTL`, SOA, NS, the zone's ZONEMD (RFC 8976, SIMPLE,
/// SHA-384: the digest a transfer of this serial carries), then one CNAME
/// per owner, sorted, each followed by its explanation TXT when it has
/// one. Owner names are relative to the zone (`example.com` becomes
/// `example.com.rpz.tapis.`). An owner [`check_owner`] refuses is left out
/// (and counted in a comment at the end), whatever its source says.
pub fn render_rpz<'a>(
    config: &ZoneConfig,
    serial: i64,
    records: impl IntoIterator<Item = (&'a str, OrderAction, Option<&'a str>)>,
) -> String {
    let records: Vec<(&str, OrderAction, Option<&str>)> = records.into_iter().collect();
    let zone = absolute(&config.zone);
    let zone_wire = wire_len(&zone);
    let digest = zonemd::digest_records(config, soa_serial(serial), records.iter().copied());
    let mut refused = 0usize;
    let mut out = String::with_capacity(4096 + records.len() * 40);
    let _ = writeln!(out, "; tapis response policy zone, serial {serial}");
    let _ = writeln!(out, "$ORIGIN {zone}");
    let _ = writeln!(out, "$TTL {}", config.ttl);
    let _ = writeln!(
        out,
        "@ SOA {} {} {} {} {} {} {}",
        absolute(&config.mname),
        absolute(&config.rname),
        soa_serial(serial),
        config.refresh,
        config.retry,
        config.expire,
        config.ttl
    );
    let _ = writeln!(out, "@ NS {}", absolute(&config.mname));
    match digest {
        Ok(d) => {
            let _ = writeln!(out, "@ ZONEMD {}", d.presentation());
        }
        Err(e) => tracing::warn!(error = %e, "zone file written without its ZONEMD"),
    }
    for (owner, action, explanation) in records {
        if let Err(e) = check_owner_wire(owner, zone_wire) {
            tracing::warn!(owner = %owner.escape_debug(), error = %e, "owner left out of the zone file");
            refused += 1;
            continue;
        }
        let _ = writeln!(
            out,
            "{owner} CNAME {}",
            action.rpz_target(&config.block_page_host)
        );
        if let Some(text) = explanation {
            let _ = writeln!(
                out,
                "{owner}.{EXPLANATION_LABEL} TXT \"{}\"",
                txt_presentation(text)
            );
        }
    }
    if refused > 0 {
        let _ = writeln!(
            out,
            "; {refused} owner(s) left out: not names a policy zone may carry"
        );
    }
    out
}

/// A TXT string as zone files write it: the same octets a transfer sends
/// (cut at 255), `"` and `\\` escaped, anything outside printable ASCII
/// as `\DDD`, so that reading it back gives what the digest hashed.
fn txt_presentation(text: &str) -> String {
    let data = zonemd::txt_rdata(text);
    let mut out = String::with_capacity(data.len());
    for &b in &data[1..] {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            b' ' => out.push(' '),
            b if b.is_ascii_graphic() => out.push(b as char),
            b => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out
}

/// One blocked domain a line (exceptions left out; `*.x` and `x` both
/// become `x`), sorted and unique: the format ISPs already consume.
pub fn render_domains<'a>(records: impl IntoIterator<Item = (&'a str, OrderAction)>) -> String {
    let mut names: Vec<&str> = records
        .into_iter()
        .filter(|(_, a)| *a != OrderAction::Passthru)
        .map(|(o, _)| o.strip_prefix("*.").unwrap_or(o))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::with_capacity(names.len() * 24);
    for n in names {
        out.push_str(n);
        out.push('\n');
    }
    out
}

/// A hosts file sending blocked exact names to 0.0.0.0 (hosts files have no
/// wildcards, so subdomain coverage is lost: say so in the header).
pub fn render_hosts<'a>(
    serial: i64,
    records: impl IntoIterator<Item = (&'a str, OrderAction)>,
) -> String {
    let mut out = format!(
        "# tapis blocklist, serial {serial}\n# hosts files cannot express subdomain coverage; use the RPZ where possible\n"
    );
    for (owner, action) in records {
        if action != OrderAction::Passthru && !owner.starts_with("*.") {
            let _ = writeln!(out, "0.0.0.0 {owner}");
        }
    }
    out
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<(&'static str, OrderAction)> {
        vec![
            ("*.judi.example", OrderAction::Nxdomain),
            ("judi.example", OrderAction::Nxdomain),
            ("ok.judi.example", OrderAction::Passthru),
            ("quiet.example", OrderAction::Nodata),
            ("shown.example", OrderAction::WalledGarden),
            ("gone.example", OrderAction::Drop),
        ]
    }

    /// The ZONEMD line's digest was computed independently by dnspython
    /// 2.8.0 (`dns.zone.Zone.compute_digest(SHA384)` over this zone file
    /// without the line), and `verify_digest` accepts the file.
    #[test]
    fn zone_file_follows_the_rpz_draft() {
        let z = render_rpz(
            &ZoneConfig {
                block_page_host: "block.tapis.example".into(),
                ..Default::default()
            },
            7,
            records().into_iter().map(|(o, a)| {
                let why = (o == "judi.example").then_some("ref=ORD-1 cat=censored");
                (o, a, why)
            }),
        );
        let expected = "\
; tapis response policy zone, serial 7
$ORIGIN rpz.tapis.
$TTL 60
@ SOA ns.rpz.tapis. hostmaster.rpz.tapis. 7 300 60 604800 60
@ NS ns.rpz.tapis.
@ ZONEMD 7 1 1 3092dcff26b14591a2946084800e94ba4722a974ae3ce4c35451087a7c9a68342d73934cf83bbe8f0c64450eaa7a17de
*.judi.example CNAME .
judi.example CNAME .
judi.example._tapis TXT \"ref=ORD-1 cat=censored\"
ok.judi.example CNAME rpz-passthru.
quiet.example CNAME *.
shown.example CNAME block.tapis.example.
gone.example CNAME rpz-drop.
";
        assert_eq!(z, expected);
    }

    #[test]
    fn lists_leave_out_exceptions() {
        assert_eq!(
            render_domains(records()),
            "gone.example\njudi.example\nquiet.example\nshown.example\n"
        );
        let hosts = render_hosts(7, records());
        assert!(hosts.contains("0.0.0.0 judi.example\n"));
        assert!(!hosts.contains("ok.judi.example"));
        assert!(!hosts.contains("*."));
    }

    #[test]
    fn explanations_read_back() {
        for kind in [BlockKind::Blocked, BlockKind::Censored, BlockKind::Filtered] {
            let text = explanation_text("0193-abc \"x\"", kind);
            assert_eq!(
                parse_explanation(&text),
                Some(("0193-abc\"x\"".to_owned(), kind))
            );
        }
        assert_eq!(parse_explanation("cat=censored"), None, "no reference");
        assert_eq!(
            parse_explanation("ref=A cat=odd extra=1"),
            Some(("A".to_owned(), BlockKind::Blocked))
        );
        assert_eq!(
            parse_explanation("cat=Filtered ref=B"),
            Some(("B".to_owned(), BlockKind::Filtered))
        );
        assert_eq!(
            [BlockKind::Blocked, BlockKind::Censored, BlockKind::Filtered].map(BlockKind::ede_code),
            [15, 16, 17]
        );
    }
}
