//! Snapshot tests of what tapis-dns writes for people and other programs to
//! read: the RPZ zone file (with explanations), the domain list, the hosts
//! file, and the zone-file writer the resolver's snapshots use. A change to
//! any of them shows up as a diff of the `.snap` file under `snapshots/`,
//! reviewed like code (`INSTA_UPDATE=always` rewrites them).

use std::collections::BTreeMap;

use tapis_core::order::OrderAction;
use tapis_dns::wire::Name;
use tapis_dns::zonefile::{ZoneRecord, parse, write_record};
use tapis_dns::{BlockKind, ExplanationCache, Explanations, ZoneConfig};

/// Owners as the store keeps them (sorted), with their action, order and
/// category.
fn records() -> Vec<(
    &'static str,
    OrderAction,
    Option<&'static str>,
    Option<&'static str>,
)> {
    vec![
        (
            "*.judi.example",
            OrderAction::Nxdomain,
            Some("ORD-2017-001"),
            Some("gambling"),
        ),
        (
            "gone.example",
            OrderAction::Drop,
            Some("ORD-2017-002"),
            Some("malware"),
        ),
        (
            "judi.example",
            OrderAction::Nxdomain,
            Some("ORD-2017-001"),
            Some("gambling"),
        ),
        (
            "ok.judi.example",
            OrderAction::Passthru,
            Some("ORD-2017-003"),
            None,
        ),
        ("quiet.example", OrderAction::Nodata, None, None),
        (
            "shown.example",
            OrderAction::WalledGarden,
            Some("ORD \"quoted\" 4"),
            Some("csam"),
        ),
        (
            "xn--bcher-kva.example",
            OrderAction::Nxdomain,
            Some("ORD-2017-005"),
            None,
        ),
    ]
}

fn config() -> ZoneConfig {
    ZoneConfig {
        block_page_host: "block.tapis.example".into(),
        explanations: Explanations {
            enabled: true,
            default_kind: BlockKind::Censored,
            by_category: BTreeMap::from([
                ("malware".to_owned(), BlockKind::Blocked),
                ("csam".to_owned(), BlockKind::Filtered),
            ]),
        },
        ..ZoneConfig::default()
    }
}

fn zone_text() -> String {
    let config = config();
    let mut cache = ExplanationCache::new(&config.explanations);
    let rows: Vec<_> = records()
        .into_iter()
        .map(|(o, a, order, cat)| (o, a, cache.get(a, order, cat)))
        .collect();
    tapis_dns::render_rpz(
        &config,
        2_026_120_301,
        rows.iter().map(|(o, a, e)| (*o, *a, e.as_deref())),
    )
}

#[test]
fn the_rpz_zone_file() {
    insta::assert_snapshot!("rpz_zone_file", zone_text());
}

#[test]
fn the_domain_list() {
    let list = tapis_dns::render_domains(records().into_iter().map(|(o, a, _, _)| (o, a)));
    insta::assert_snapshot!("domain_list", list);
}

#[test]
fn the_hosts_file() {
    let hosts = tapis_dns::render_hosts(7, records().into_iter().map(|(o, a, _, _)| (o, a)));
    insta::assert_snapshot!("hosts_file", hosts);
}

/// The resolver writes its snapshot of a followed zone with
/// `write_record`: the zone file above, read and written back, is the
/// form a restart reads.
#[test]
fn the_zone_as_the_resolver_snapshots_it() {
    let origin = Name::from_ascii("rpz.tapis.").expect("origin");
    let mut records: Vec<ZoneRecord> = Vec::new();
    parse(zone_text().as_bytes(), &origin, |r| {
        records.push(r);
        Ok::<_, tapis_dns::zonefile::LineError>(())
    })
    .expect("the zone file reads back");
    let mut out = Vec::new();
    for r in &records {
        write_record(&mut out, r).expect("write");
    }
    let text = String::from_utf8(out).expect("utf-8");
    insta::assert_snapshot!("resolver_snapshot", text);
    let mut again = Vec::new();
    parse(text.as_bytes(), &origin, |r| {
        again.push(r);
        Ok::<_, tapis_dns::zonefile::LineError>(())
    })
    .expect("the snapshot reads back");
    assert_eq!(again, records, "writing and reading loses nothing");
}
