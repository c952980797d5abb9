//! The primary's trust boundaries, tried as an attacker would: targets
//! that are RPZ triggers rather than names never reach a zone file or a
//! transfer (and what does reach one loads in BIND's `named-checkzone`
//! with exactly the names accepted as policy owners).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use tapis_core::order::{OrderAction, check_blockable};
use tapis_core::target::DomainName;
use tapis_dns::MemoryZone;
use tapis_dns::wire::rtype;

/// What the API refuses (core's rule) and a row from elsewhere could still
/// hold: each a trigger on clients, answers or name servers, or a name in
/// the explanation subtree.
const HOSTILE: [&str; 6] = [
    "32.1.0.0.127.rpz-client-ip",
    "1.0.0.0.0.rpz-ip",
    "com.rpz-nsdname",
    "32.1.0.0.127.rpz-nsip",
    "victim.example._tapis",
    "rpz-drop.example",
];

#[test]
fn the_zone_writer_leaves_out_triggers() {
    // 240 octets: a name core accepts, too long beside `._tapis.rpz.tapis.`
    let long = format!(
        "{}.{}.example",
        vec!["a".repeat(60); 3].join("."),
        "b".repeat(49)
    );
    assert_eq!(long.len(), 240);
    let mut owners: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    owners.extend(HOSTILE.iter().map(|s| format!("*.{s}")));
    owners.push(long.clone());
    owners.push("Upper.Example".into());
    owners.push("x CNAME rpz-passthru.\nevil.example".into());
    owners.push("ok.example".into());
    owners.push("*.ok.example".into());
    let zone = tapis_dns::render_rpz(
        &zone_config(),
        3,
        owners.iter().map(|o| {
            (
                o.as_str(),
                OrderAction::Nxdomain,
                Some("ref=ORD-1 cat=censored"),
            )
        }),
    );
    let policy: Vec<&str> = zone
        .lines()
        .filter(|l| l.contains(" CNAME "))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(policy, ["ok.example", "*.ok.example"], "{zone}");
    assert!(
        !zone.contains("rpz-client-ip") && !zone.contains("evil"),
        "{zone}"
    );
    assert!(
        zone.contains(&format!("; {} owner(s) left out", owners.len() - 2)),
        "{zone}"
    );
    for o in HOSTILE {
        assert!(tapis_dns::check_owner(o, "rpz.tapis.").is_err(), "{o}");
    }
    let err = tapis_dns::check_owner(&long, "rpz.tapis.").expect_err("too long");
    assert!(err.contains("255"), "{err}");
    tapis_dns::check_owner(&long, "z.").expect("fits under a short zone name");
}

#[tokio::test]
async fn transfers_leave_out_triggers() {
    let mut records: Vec<(String, OrderAction)> = HOSTILE
        .iter()
        .map(|s| (s.to_string(), OrderAction::Nxdomain))
        .collect();
    records.push(("ok.example".into(), OrderAction::Nxdomain));
    records.push(("*.ok.example".into(), OrderAction::Nxdomain));
    let zone = Arc::new(MemoryZone::new(5, records));
    let server = start(default_config(), zone).await;
    let (q, v) = signed(query(7, ZONE, rtype::AXFR, None), &key(), None);
    let messages = transfer(server.addr, &q, Some(v)).await;
    let owners: BTreeSet<String> = all_answers(&messages)
        .into_iter()
        .filter(|r| r.rtype == rtype::CNAME)
        .map(|r| r.owner)
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from([format!("ok.example.{ZONE}"), format!("*.ok.example.{ZONE}")])
    );
}

/// Labels an attacker (or an unlucky list) would put in a target.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,8}",
        1 => "[0-9]{1,3}",
        1 => "[a-z0-9]{1,4}-[a-z0-9]{1,4}",
        1 => "_[a-z]{1,6}",
        1 => Just("rpz-ip".to_owned()),
        1 => Just("rpz-client-ip".to_owned()),
        1 => Just("rpz-nsdname".to_owned()),
        1 => Just("rpz-nsip".to_owned()),
        1 => "rpz-[a-z]{0,6}",
        1 => Just("RPZ-IP".to_owned()),
        1 => Just("_tapis".to_owned()),
        1 => Just("_TAPIS".to_owned()),
        1 => Just("bücher".to_owned()),
        1 => Just("xn--bcher-kva".to_owned()),
        1 => Just("ünïcödé-rpz".to_owned()),
        1 => Just("a".repeat(63)),
        1 => "[a-z]{55,63}",
        1 => Just("-bad".to_owned()),
    ]
}

/// A target as a person or a hostile list writes it, and whether it
/// covers subdomains.
fn target() -> impl Strategy<Value = (String, bool)> {
    (
        prop::collection::vec(label(), 1..6),
        prop_oneof![Just("example"), Just("com"), Just("test"), Just("rpz-ip")],
        any::<bool>(),
    )
        .prop_map(|(labels, tld, sub)| (format!("{}.{tld}", labels.join(".")), sub))
}

/// The octets of `<owner>._tapis.<zone>` on the wire.
fn explained_len(owner: &str) -> usize {
    format!("{owner}._tapis.{ZONE}").len() + 1
}

/// Runs BIND's checker on `text` as zone `rpz.tapis.`: the owners of its
/// CNAMEs (relative, lowercase) as BIND loaded them.
fn bind_loads(text: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("rpz.zone");
    std::fs::write(&file, text).expect("write zone");
    let out = std::process::Command::new(tapis_testkit::tool("named-checkzone"))
        .args(["-D", "-o", "-", ZONE])
        .arg(&file)
        .output()
        .expect("run named-checkzone");
    assert!(
        out.status.success(),
        "named-checkzone refused the zone:\n{}{}\n--- zone ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let suffix = format!(".{ZONE}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[3] == "CNAME").then(|| {
                f[0].to_ascii_lowercase()
                    .strip_suffix(&suffix)
                    .unwrap_or("?outside the zone?")
                    .to_owned()
            })
        })
        .collect()
}

proptest! {
    // each case runs named-checkzone once: a few dozen cases of a few
    // dozen targets keep this to seconds
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever targets are proposed, the ones core accepts compile into a
    /// zone BIND loads, and its policy owners are exactly those names (and
    /// `*.name` for those with subdomains) that fit beside their
    /// explanation: no trigger, nothing under `_tapis`, nothing else.
    #[test]
    fn hostile_targets_never_become_triggers(targets in prop::collection::vec(target(), 1..40)) {
        // owner → action, as the store keeps them: what core accepts in
        // canonical form, and what it refuses as the raw text (a row that
        // reached the database some other way)
        let mut owners: BTreeMap<String, OrderAction> = BTreeMap::new();
        let mut expected: BTreeSet<String> = BTreeSet::new();
        for (i, (raw, sub)) in targets.iter().enumerate() {
            let action = OrderAction::ALL[i % OrderAction::ALL.len()];
            match DomainName::parse(raw).map(|d| (check_blockable(&d).is_ok(), d)) {
                Ok((true, d)) => {
                    let mut these = vec![d.as_str().to_owned()];
                    if *sub {
                        these.push(format!("*.{}", d.as_str()));
                    }
                    for o in these {
                        if explained_len(&o) <= 255 {
                            expected.insert(o.clone());
                        }
                        owners.insert(o, action);
                    }
                }
                _ => {
                    let raw = raw.to_lowercase();
                    prop_assert!(tapis_dns::check_owner(&raw, ZONE).is_err(), "{raw}");
                    owners.insert(raw.clone(), action);
                    owners.insert(format!("*.{raw}"), action);
                }
            }
        }
        // the name server outside the zone: BIND will not load a zone
        // whose in-zone NS has no address, which is beside the point here
        let config = tapis_dns::ZoneConfig { mname: "ns.tapis.example.".into(), ..zone_config() };
        let text = tapis_dns::render_rpz(
            &config,
            9,
            owners.iter().map(|(o, a)| (o.as_str(), *a, Some("ref=ORD-7 cat=censored"))),
        );
        let loaded = bind_loads(&text);
        prop_assert_eq!(&loaded, &expected, "zone:\n{}", text);
        for o in &loaded {
            let bare = o.strip_prefix("*.").unwrap_or(o);
            prop_assert!(
                !bare.split('.').any(|l| l.starts_with("rpz-") || l == "_tapis"),
                "{}", o
            );
        }
    }
}
