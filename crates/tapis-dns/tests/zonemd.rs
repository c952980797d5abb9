//! ZONEMD (RFC 8976) checked by verifiers that are not ours: the zone as
//! an AXFR delivers it, and as an IXFR leaves it, verified by dnspython's
//! `Zone.verify_digest`; and Unbound (`auth-zone` with `zonemd-check` and
//! `zonemd-reject-absence`) loading the zone from the primary by AXFR,
//! following a change by IXFR after a NOTIFY, and refusing a zone whose
//! ZONEMD is wrong. The tests fail (they do not skip) when `python3` with
//! dnspython, or `unbound`, is missing.

mod common;

use std::net::SocketAddr;
use std::process::Command as StdCommand;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tapis_core::order::OrderAction;
use tapis_dns::wire::{Message, Name, rtype};
use tapis_dns::xfr::{self, Ask, Connection};
use tapis_dns::zonefile::{ZoneRecord, write_record};
use tapis_dns::zonemd::{HASH_SHA384, SCHEME_SIMPLE, ZoneDigest};
use tapis_dns::{Diff, MemoryZone, PrimaryConfig, Record, ZoneSource};
use tapis_testkit::{free_port, tool};

/// A zone with explanations on some records.
fn records(n: usize) -> Vec<Record> {
    zone_records(n)
        .into_iter()
        .enumerate()
        .map(|(i, (o, a))| {
            let r = Record::new(o, a);
            if i % 3 == 0 && a != OrderAction::Passthru {
                r.explained(format!("ref=ORD-{} cat=censored", i % 7))
            } else {
                r
            }
        })
        .collect()
}

/// Every record of a transfer's messages, in order.
async fn transfer(addr: SocketAddr, ask: Ask) -> Vec<ZoneRecord> {
    let origin = Name::from_ascii(ZONE).expect("zone");
    let mut c = Connection::open(addr, xfr::request(&origin, ask, Some(&key())))
        .await
        .expect("connect");
    let mut out = Vec::new();
    let mut soas = 0;
    while let Some(m) = c.next_message().await.expect("message") {
        let msg = Message::parse(&m).expect("parse");
        for r in &msg.answers {
            let zr = xfr::zone_record(&msg, r).expect("record");
            if zr.rtype == rtype::SOA {
                soas += 1;
            }
            out.push(zr);
        }
        // AXFR: two SOAs; IXFR: the opening one, then one per step side
        let done = match ask {
            Ask::Axfr => soas == 2,
            Ask::Ixfr(_) => {
                soas >= 4
                    && out.last().map(|r| r.rtype) == Some(rtype::SOA)
                    && out.len() > 1
                    && c_is_last(&out)
            }
        };
        if done {
            break;
        }
    }
    out
}

/// An IXFR ends with the new SOA a third time (opening, after the
/// deletions' end, closing).
fn c_is_last(out: &[ZoneRecord]) -> bool {
    let first = &out[0];
    out.iter()
        .filter(|r| r.rtype == rtype::SOA && r.rdata == first.rdata)
        .count()
        == 3
}

fn zonemd_of(r: &ZoneRecord) -> ZoneDigest {
    assert_eq!(r.rtype, rtype::ZONEMD);
    assert_eq!(r.owner, Name::from_ascii(ZONE).expect("zone"));
    assert_eq!(r.rdata.len(), 54);
    assert_eq!((r.rdata[4], r.rdata[5]), (SCHEME_SIMPLE, HASH_SHA384));
    let mut digest = [0u8; 48];
    digest.copy_from_slice(&r.rdata[6..]);
    ZoneDigest {
        serial: u32::from_be_bytes(r.rdata[..4].try_into().expect("4")),
        digest,
    }
}

/// Writes `records` (the closing SOA of an AXFR left out) as a zone file
/// and has dnspython verify its ZONEMD; `Err` with what it said.
fn dnspython_verifies(records: &[ZoneRecord]) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("zone");
    let mut f = std::fs::File::create(&path).expect("file");
    for r in records {
        write_record(&mut f, r).expect("write");
    }
    drop(f);
    let out = StdCommand::new("python3")
        .arg("-c")
        .arg(
            "import sys, dns.zone\n\
             z = dns.zone.from_file(sys.argv[1], origin=sys.argv[2], relativize=False)\n\
             z.verify_digest()\n\
             print(z.compute_digest(dns.zone.DigestHashAlgorithm.SHA384).digest.hex())",
        )
        .arg(&path)
        .arg(ZONE)
        .output()
        .expect("python3 runs (and has dnspython: pip install dnspython)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What an AXFR sends carries a ZONEMD that dnspython verifies; the same
/// digest the zone file export writes; and an IXFR removes the old ZONEMD
/// and adds the new one, so the zone it leaves verifies too. A wrong
/// record in the zone makes verification fail (the check can fail).
#[tokio::test]
async fn axfr_and_ixfr_carry_a_zonemd_dnspython_verifies() {
    let zone = Arc::new(MemoryZone::new(5, records(3000)));
    let p = start(default_config(), zone.clone()).await;
    let mut axfr = transfer(p.addr, Ask::Axfr).await;
    assert_eq!(axfr.last().map(|r| r.rtype), Some(rtype::SOA));
    axfr.pop();
    let mds: Vec<&ZoneRecord> = axfr.iter().filter(|r| r.rtype == rtype::ZONEMD).collect();
    assert_eq!(mds.len(), 1, "one apex ZONEMD");
    let d5 = zonemd_of(mds[0]);
    assert_eq!(d5.serial, 5);
    let hex = dnspython_verifies(&axfr).expect("dnspython verifies the AXFR");
    assert_eq!(hex, d5.hex());
    // the zone file export writes the same digest
    let rs = zone.records();
    let file = tapis_dns::render_rpz(
        &zone_config(),
        5,
        rs.iter()
            .map(|r| (r.owner.as_str(), r.action, r.explanation.as_deref())),
    );
    assert!(
        file.contains(&format!("@ ZONEMD 5 1 1 {}\n", d5.hex())),
        "{}",
        &file[..400]
    );
    // tampering is caught: one target changed
    let mut bad = axfr.clone();
    let i = bad
        .iter()
        .position(|r| r.rtype == rtype::CNAME)
        .expect("a cname");
    bad[i].rdata = Name::from_ascii("rpz-drop.").expect("n").wire().to_vec();
    let err = dnspython_verifies(&bad).expect_err("a changed record fails");
    assert!(err.contains("DigestVerificationFailure"), "{err}");

    // a change: IXFR from 5 to 6 swaps the ZONEMD
    let six = zone.apply(
        ["site1.gambling1.example".to_owned()],
        [Record::new("new.example", OrderAction::Nxdomain).explained("ref=ORD-9 cat=censored")],
    );
    assert_eq!(six, 6);
    let ixfr = transfer(p.addr, Ask::Ixfr(5)).await;
    let md: Vec<ZoneDigest> = ixfr
        .iter()
        .filter(|r| r.rtype == rtype::ZONEMD)
        .map(zonemd_of)
        .collect();
    assert_eq!(md.len(), 2, "old and new ZONEMD: {ixfr:?}");
    assert_eq!(md[0], d5, "the ZONEMD the secondary holds is removed");
    assert_eq!(md[1].serial, 6);
    // apply the IXFR to the AXFR's records, as a secondary does
    let soa_at: Vec<usize> = ixfr
        .iter()
        .enumerate()
        .filter(|(_, r)| r.rtype == rtype::SOA)
        .map(|(i, _)| i)
        .collect();
    let (del, add) = (
        &ixfr[soa_at[1] + 1..soa_at[2]],
        &ixfr[soa_at[2] + 1..soa_at[3]],
    );
    let mut after: Vec<ZoneRecord> = axfr
        .into_iter()
        .filter(|r| r.rtype != rtype::SOA && !del.contains(r))
        .collect();
    after.insert(0, ixfr[0].clone());
    after.extend(add.iter().cloned());
    let hex6 = dnspython_verifies(&after).expect("dnspython verifies the zone after IXFR");
    assert_eq!(hex6, md[1].hex());
}

/// A source that claims a wrong digest for every serial (what a primary
/// serving a zone other than the one logged looks like to a secondary).
struct Lying(Arc<MemoryZone>);

impl ZoneSource for Lying {
    async fn serial(&self) -> Result<u32, String> {
        self.0.serial().await
    }
    async fn snapshot(&self) -> Result<tapis_dns::Snapshot, String> {
        self.0.snapshot().await
    }
    async fn changes_since(&self, serial: u32) -> Result<Option<Vec<Diff>>, String> {
        self.0.changes_since(serial).await
    }
    async fn known_digest(&self, serial: u32) -> Result<Option<ZoneDigest>, String> {
        Ok(Some(ZoneDigest {
            serial,
            digest: [7; 48],
        }))
    }
}

struct Unbound {
    _proc: tapis_testkit::Proc,
    port: u16,
    dir: tempfile::TempDir,
}

impl Unbound {
    fn start(primary: SocketAddr) -> Unbound {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            r#"server:
    chroot: ""
    username: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: "{d}/unbound.log"
    verbosity: 2
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    do-not-query-localhost: no
auth-zone:
    name: "{ZONE}"
    primary: {}@{}
    allow-notify: 127.0.0.1
    for-downstream: yes
    for-upstream: no
    fallback-enabled: no
    zonemd-check: yes
    zonemd-reject-absence: yes
"#,
            primary.ip(),
            primary.port()
        );
        std::fs::write(dir.path().join("unbound.conf"), conf).expect("conf");
        let child = StdCommand::new(tool("unbound"))
            .arg("-d")
            .arg("-c")
            .arg(dir.path().join("unbound.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start unbound");
        Unbound {
            _proc: tapis_testkit::Proc(child),
            port,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }

    /// The CNAME target Unbound answers for `name` (from the zone it
    /// loaded), if it answers one.
    async fn cname(&self, name: &str) -> Option<String> {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().expect("addr");
        let answer = udp(addr, &query(7, name, rtype::CNAME, None)).await?;
        answers(&answer)
            .into_iter()
            .find(|r| r.rtype == rtype::CNAME)
            .map(|r| r.data)
    }
}

fn unsigned_config() -> PrimaryConfig {
    let mut c = default_config();
    c.allow_unsigned_transfer = vec![tapis_core::isp::IpNet::parse("t", "127.0.0.1").expect("net")];
    c
}

/// Unbound loads the zone by AXFR with ZONEMD checking on (and absence
/// refused), answers from it, then follows a change by IXFR after a
/// NOTIFY, the new ZONEMD checked again.
#[tokio::test]
async fn unbound_verifies_the_zonemd_over_axfr_and_ixfr() {
    let zone = Arc::new(MemoryZone::new(3, records(500)));
    let p = start(unsigned_config(), zone.clone()).await;
    let mut seen = p.primary.observe();
    let u = Unbound::start(p.addr);
    let first = "site5.gambling5.example.rpz.tapis.";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while u.cname(first).await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unbound never answered from the zone; log:\n{}",
            u.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(u.cname(first).await.as_deref(), Some("."));
    // a change, and a NOTIFY
    zone.apply(
        Vec::<String>::new(),
        [Record::new("fresh.example", OrderAction::Drop)],
    );
    let options = tapis_dns::NotifyOptions {
        allow_private_targets: true,
        ..Default::default()
    };
    let secondary: SocketAddr = format!("127.0.0.1:{}", u.port).parse().expect("addr");
    tapis_dns::send_notify_with(secondary, &zone_config(), 4, None, &options)
        .await
        .expect("notify answered");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while u.cname("fresh.example.rpz.tapis.").await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unbound never took the change; log:\n{}",
            u.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut kinds = Vec::new();
    while let Ok(o) = seen.try_recv() {
        if let tapis_dns::Observed::Transfer {
            kind,
            complete: true,
            ..
        } = o.event
        {
            kinds.push(kind);
        }
    }
    assert!(
        kinds.contains(&"IXFR"),
        "the change came by IXFR: {kinds:?}"
    );
    let log = u.log();
    assert!(
        !log.to_ascii_lowercase()
            .contains("zonemd verification failed"),
        "{log}"
    );
}

/// The check can fail: a primary whose ZONEMD does not match its zone is
/// refused by Unbound, which then answers nothing from it.
#[tokio::test]
async fn unbound_refuses_a_wrong_zonemd() {
    let zone = Arc::new(MemoryZone::new(3, records(50)));
    let (udp_s, tcp_s) = tapis_dns::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = tcp_s.local_addr().expect("addr");
    let primary = tapis_dns::Primary::new(unsigned_config(), Lying(zone)).expect("primary");
    let p = primary.clone();
    let task = tokio::spawn(async move {
        let _ = p.run(udp_s, tcp_s, std::future::pending()).await;
    });
    let u = Unbound::start(addr);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = u.log().to_ascii_lowercase();
        if log.contains("zonemd") && (log.contains("fail") || log.contains("mismatch")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unbound never said the ZONEMD failed; log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(u.cname("site5.gambling5.example.rpz.tapis.").await, None);
    task.abort();
}
