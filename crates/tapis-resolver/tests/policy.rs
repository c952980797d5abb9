//! The RPZ QNAME rules of draft-vixie-dnsop-dns-rpz, one table row per
//! case: every action, exact beats wildcard, the longest wildcard wins, the
//! first zone wins, `_tapis` metadata, IXFR-style deletions.

use tapis_dns::wire::{Name, rtype};
use tapis_dns::zonefile;
use tapis_resolver::policy::{Action, Category, Policies, PolicyZone, ZoneRecord};

fn zone(origin: &str, text: &str) -> PolicyZone {
    let origin = Name::from_ascii(origin).expect("origin");
    let mut z = PolicyZone::new(&origin);
    let full = format!("$TTL 300\n@ SOA ns. admin. 1 60 60 600 60\n{text}");
    zonefile::parse(full.as_bytes(), &origin, |r| z.apply(&r, true)).expect("zone parses");
    z
}

fn policies(zones: Vec<PolicyZone>) -> Policies {
    let p = Policies::new(
        zones
            .iter()
            .enumerate()
            .map(|(i, z)| (format!("z{i}"), z.origin().clone())),
    );
    for (i, z) in zones.into_iter().enumerate() {
        p.replace(i, z);
    }
    p
}

/// (zone index, action, reference text, category) for a query name.
fn verdict(p: &Policies, qname: &str) -> Option<(usize, Action, Option<String>, Option<Category>)> {
    let q = Name::from_ascii(qname).expect("qname").to_lowercase();
    p.check(q.wire(), |v| {
        v.map(|v| {
            let r = v.zone.reference(v.hit.reference);
            (
                v.zone_index,
                v.hit.action,
                r.map(|r| r.reference.to_string()),
                r.map(|r| r.category),
            )
        })
    })
}

const Z1: &str = "
nx.example CNAME .
nodata.example CNAME *.
pass.example CNAME rpz-passthru.
drop.example CNAME rpz-drop.
tcp.example CNAME rpz-tcp-only.
garden.example CNAME walled.garden.test.
local.example A 192.0.2.1
local.example AAAA 2001:db8::1
local.example TXT \"blocked by order\"
*.wild.example CNAME .
exact.wild.example CNAME rpz-passthru.
*.deep.wild.example CNAME *.
both.example CNAME *.
*.both.example CNAME .
Mixed.Case.Example CNAME .
*.everything-under.test CNAME rpz-drop.
over.example CNAME .
pt.example CNAME rpz-passthru.
nx.example._tapis TXT \"ref=ORD-2026-0001 cat=censored\"
*.wild.example._tapis TXT \"ref=ORD-2026-0002 cat=filtered\"
garden.example._tapis TXT \"ref=ORD-2026-0003\"
local.example._tapis TXT \"ref=ORD-2026-0001 cat=censored\"
foo._tapis CNAME .
32.1.2.0.192.rpz-ip CNAME .
";

const Z2: &str = "
over.example CNAME rpz-drop.
pt.example CNAME .
only2.example CNAME .
*.example CNAME *.
";

#[test]
fn qname_triggers_follow_the_draft() {
    let p = policies(vec![zone("rpz.one", Z1), zone("rpz.two", Z2)]);
    use Action::*;
    let cases: &[(&str, Option<(usize, Action)>)] = &[
        // every action, exact
        ("nx.example", Some((0, Nxdomain))),
        ("nodata.example", Some((0, Nodata))),
        ("pass.example", Some((0, Passthru))),
        ("drop.example", Some((0, Drop))),
        ("tcp.example", Some((0, TcpOnly))),
        ("garden.example", Some((0, Local))),
        ("local.example", Some((0, Local))),
        // an exact trigger does not cover names below it; zone 2's
        // `*.example` does
        ("sub.nx.example", Some((1, Nodata))),
        // wildcard covers names below, not the name itself
        ("a.wild.example", Some((0, Nxdomain))),
        ("a.b.c.wild.example", Some((0, Nxdomain))),
        ("wild.example", Some((1, Nodata))),
        // exact beats wildcard in the same zone
        ("exact.wild.example", Some((0, Passthru))),
        // the longest wildcard wins
        ("x.deep.wild.example", Some((0, Nodata))),
        ("deep.wild.example", Some((0, Nxdomain))),
        // one name, both kinds of trigger
        ("both.example", Some((0, Nodata))),
        ("x.both.example", Some((0, Nxdomain))),
        // case-insensitive both ways
        ("mixed.case.example", Some((0, Nxdomain))),
        ("NX.EXAMPLE", Some((0, Nxdomain))),
        ("deep.under.everything-under.test", Some((0, Drop))),
        // first zone wins, even with PASSTHRU
        ("over.example", Some((0, Nxdomain))),
        ("pt.example", Some((0, Passthru))),
        ("only2.example", Some((1, Nxdomain))),
        // no trigger
        ("example", None),
        ("nx.example.org", None),
        ("other.test", None),
        // the _tapis subtree and other trigger kinds are not QNAME triggers
        ("foo._tapis.rpz.one", None),
        ("foo", None),
        ("32.1.2.0.192.rpz-ip", None),
    ];
    for (q, want) in cases {
        let got = verdict(&p, q).map(|(z, a, _, _)| (z, a));
        assert_eq!(got, *want, "{q}");
    }
}

#[test]
fn references_are_interned_per_trigger_side() {
    let p = policies(vec![zone("rpz.one", Z1)]);
    let r = |q: &str| verdict(&p, q).map(|(_, _, r, c)| (r, c));
    assert_eq!(
        r("nx.example"),
        Some((Some("ORD-2026-0001".into()), Some(Category::Censored)))
    );
    assert_eq!(
        r("local.example"),
        Some((Some("ORD-2026-0001".into()), Some(Category::Censored)))
    );
    assert_eq!(
        r("a.wild.example"),
        Some((Some("ORD-2026-0002".into()), Some(Category::Filtered)))
    );
    // default category
    assert_eq!(
        r("garden.example"),
        Some((Some("ORD-2026-0003".into()), Some(Category::Blocked)))
    );
    // the exact side of wild.example has no trigger; the wildcard side's
    // reference does not leak onto it
    assert_eq!(r("exact.wild.example"), Some((None, None)));
    let z = p.zone(0).expect("zone");
    assert_eq!(z.unsupported, 1);
}

#[test]
fn local_data_is_kept_per_trigger() {
    let p = policies(vec![zone("rpz.one", Z1)]);
    let q = Name::from_ascii("local.example").expect("q");
    let types = p.check(q.wire(), |v| {
        let v = v.expect("hit");
        let mut t: Vec<u16> = v
            .zone
            .local_data(&v.hit)
            .expect("local data")
            .records
            .iter()
            .map(|r| r.0)
            .collect();
        t.sort();
        t
    });
    assert_eq!(types, vec![rtype::A, rtype::TXT, rtype::AAAA]);
    let q = Name::from_ascii("garden.example").expect("q");
    let target = p.check(q.wire(), |v| {
        let v = v.expect("hit");
        let d = v.zone.local_data(&v.hit).expect("local").records[0].clone();
        (d.0, d.2.to_vec())
    });
    assert_eq!(
        target,
        (rtype::CNAME, b"\x06walled\x06garden\x04test\x00".to_vec())
    );
}

#[test]
fn deletions_as_an_ixfr_carries_them() {
    let origin = Name::from_ascii("rpz.one").expect("o");
    let p = policies(vec![zone("rpz.one", Z1)]);
    let rec = |owner: &str, t: u16, rdata: &[u8]| ZoneRecord {
        owner: Name::relative_to(owner, &origin).expect("owner"),
        rtype: t,
        class: 1,
        ttl: 300,
        rdata: rdata.to_vec(),
    };
    p.update(0, |z| {
        // delete an exact trigger, one side of a name with both
        z.apply(&rec("nx.example", rtype::CNAME, b"\x00"), false)
            .expect("del");
        z.apply(&rec("*.both.example", rtype::CNAME, b"\x00"), false)
            .expect("del");
        // a delete that does not match the current action changes nothing
        z.apply(&rec("drop.example", rtype::CNAME, b"\x00"), false)
            .expect("del");
        // local data goes record by record
        z.apply(&rec("local.example", rtype::A, &[192, 0, 2, 1]), false)
            .expect("del");
        // change an action: delete then add
        z.apply(
            &rec("pass.example", rtype::CNAME, b"\x0crpz-passthru\x00"),
            false,
        )
        .expect("del");
        z.apply(&rec("pass.example", rtype::CNAME, b"\x00"), true)
            .expect("add");
        z.apply(&rec("new.example", rtype::CNAME, b"\x01*\x00"), true)
            .expect("add");
    });
    use Action::*;
    for (q, want) in [
        ("nx.example", None),
        ("both.example", Some(Nodata)),
        ("x.both.example", None),
        ("drop.example", Some(Drop)),
        ("local.example", Some(Local)),
        ("pass.example", Some(Nxdomain)),
        ("new.example", Some(Nodata)),
    ] {
        assert_eq!(verdict(&p, q).map(|v| v.1), want, "{q}");
    }
    p.update(0, |z| {
        for (t, d) in [
            (
                rtype::AAAA,
                b"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01".as_slice(),
            ),
            (rtype::TXT, b"\x10blocked by order".as_slice()),
        ] {
            z.apply(&rec("local.example", t, d), false).expect("del");
        }
    });
    assert_eq!(verdict(&p, "local.example"), None);
}

#[test]
fn the_snapshot_rebuilds_the_same_zone() {
    let z = zone("rpz.one", Z1);
    let mut text = Vec::new();
    z.for_each_record(|r| zonefile::write_record(&mut text, &r).expect("write"));
    let origin = z.origin().clone();
    let mut again = PolicyZone::new(&origin);
    zonefile::parse(text.as_slice(), &origin, |r| again.apply(&r, true)).expect("reparse");
    assert_eq!(again.len(), z.len());
    assert_eq!(again.serial(), Some(1));
    let a = policies(vec![z]);
    let b = policies(vec![again]);
    for q in [
        "nx.example",
        "x.wild.example",
        "exact.wild.example",
        "local.example",
        "garden.example",
        "x.both.example",
        "both.example",
        "tcp.example",
    ] {
        assert_eq!(verdict(&a, q), verdict(&b, q), "{q}");
    }
}

#[test]
fn a_full_reload_as_a_diff_equals_a_fresh_load() {
    let v2 = Z1
        .replace("nx.example CNAME .\n", "")
        .replace("drop.example CNAME rpz-drop.", "drop.example CNAME .")
        .replace("local.example A 192.0.2.1", "local.example A 192.0.2.9")
        .replace(
            "ref=ORD-2026-0002 cat=filtered",
            "ref=ORD-2026-0009 cat=blocked",
        )
        .replace("garden.example._tapis TXT \"ref=ORD-2026-0003\"\n", "")
        + "added.example CNAME rpz-tcp-only.\n*.added.example CNAME .\n";
    let origin = Name::from_ascii("rpz.one").expect("o");
    let fresh = policies(vec![zone("rpz.one", &v2)]);
    let p = policies(vec![zone("rpz.one", Z1)]);
    let base = p.zone(0).expect("zone");
    let mut reload = base.reload_begin();
    let text = format!("$TTL 300\n@ SOA ns. admin. 2 60 60 600 60\n{v2}");
    zonefile::parse(text.as_bytes(), &origin, |r| {
        base.reload_record(&mut reload, &r)
    })
    .expect("parse");
    assert!(!reload.overflowed());
    let plan = base.reload_plan(&reload);
    drop(base);
    p.update(0, |z| z.reload_apply(plan, reload))
        .expect("zone")
        .expect("applies");
    let queries = [
        "nx.example",
        "nodata.example",
        "pass.example",
        "drop.example",
        "tcp.example",
        "garden.example",
        "local.example",
        "a.wild.example",
        "exact.wild.example",
        "x.deep.wild.example",
        "both.example",
        "x.both.example",
        "mixed.case.example",
        "a.everything-under.test",
        "over.example",
        "pt.example",
        "added.example",
        "x.added.example",
        "nothing.example",
    ];
    for q in queries {
        assert_eq!(verdict(&p, q), verdict(&fresh, q), "{q}");
    }
    assert_eq!(p.zone(0).expect("z").len(), fresh.zone(0).expect("z").len());
    assert_eq!(p.zone(0).expect("z").serial(), Some(2));
    // local data replaced, not merged
    let q = Name::from_ascii("local.example").expect("q");
    let a = p.check(q.wire(), |v| {
        let v = v.expect("hit");
        let mut r: Vec<Vec<u8>> = v
            .zone
            .local_data(&v.hit)
            .expect("local")
            .records
            .iter()
            .map(|r| r.2.to_vec())
            .collect();
        r.sort();
        r
    });
    assert!(
        a.contains(&vec![192, 0, 2, 9]) && !a.contains(&vec![192, 0, 2, 1]),
        "{a:?}"
    );
}

#[test]
fn a_reload_that_changes_most_of_the_zone_overflows() {
    let origin = Name::from_ascii("rpz.big").expect("o");
    let mut old = String::new();
    let mut new = String::new();
    for i in 0..30_000 {
        old.push_str(&format!("old{i}.example CNAME .\n"));
        new.push_str(&format!("new{i}.example CNAME .\n"));
    }
    let z = zone("rpz.big", &old);
    let mut reload = z.reload_begin();
    zonefile::parse(format!("$TTL 60\n{new}").as_bytes(), &origin, |r| {
        z.reload_record(&mut reload, &r)
    })
    .expect("parse");
    assert!(reload.overflowed());
}
