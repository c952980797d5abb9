//! Interop with BIND 9 (`named`, `dig`): BIND as a TSIG-authenticated
//! secondary of the in-process tapis primary, enforcing the zone as a
//! response policy. Checks the first AXFR, the policy answers, an IXFR
//! after a signed NOTIFY (and how long until BIND enforces it), that BIND's
//! copy equals ours afterwards, dig's verification of a multi-message
//! signed AXFR, and that a wrong secret transfers nothing.
//!
//! Needs the Debian packages bind9, bind9-utils and bind9-dnsutils; the
//! tests fail (they do not skip) when `named` or `dig` is missing.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tapis_core::order::OrderAction;
use tapis_dns::wire::{MessageBuilder, Name, Question, Rcode, TsigRcode, class, flags, rtype};
use tapis_dns::{Diff, MemoryZone, Primary, Record, ZoneSource};
use tapis_testkit::tool;
use tokio::process::{Child, Command};

/// Counts what BIND asks the source for (AXFR vs IXFR).
struct Counting {
    zone: Arc<MemoryZone>,
    snapshots: AtomicUsize,
    changes: AtomicUsize,
}

impl ZoneSource for Counting {
    async fn serial(&self) -> Result<u32, String> {
        self.zone.serial().await
    }

    async fn snapshot(&self) -> Result<tapis_dns::Snapshot, String> {
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        self.zone.snapshot().await
    }

    async fn changes_since(&self, serial: u32) -> Result<Option<Vec<Diff>>, String> {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.zone.changes_since(serial).await
    }

    /// Digests come from a snapshot of their own, not counted (as a
    /// store that keeps them would give them): `snapshots` counts AXFRs.
    async fn known_digest(&self, serial: u32) -> Result<Option<tapis_dns::ZoneDigest>, String> {
        let snapshot = self.zone.snapshot().await?;
        if snapshot.serial != serial {
            return Ok(None);
        }
        tapis_dns::zonemd::digest_snapshot(&zone_config(), snapshot)
            .await
            .map(Some)
    }
}

struct Primaried {
    addr: SocketAddr,
    source: Arc<Counting>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Primaried {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_primary(zone: Arc<MemoryZone>) -> Primaried {
    let source = Arc::new(Counting {
        zone,
        snapshots: AtomicUsize::new(0),
        changes: AtomicUsize::new(0),
    });
    let (udp, tcp) = tapis_dns::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let primary = Primary::new(default_config(), source.clone()).expect("primary");
    let task = tokio::spawn(async move {
        let _ = primary.run(udp, tcp, std::future::pending()).await;
    });
    Primaried { addr, source, task }
}

struct Bind {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Bind {
    /// Starts `named` as a secondary of `primary` with `secret` for the
    /// key `tapis-xfr`, enforcing the zone as an RPZ. It is also primary
    /// for `example.` with a wildcard A record, so a name the policy does
    /// not cover answers 192.0.2.1 (there is no internet to recurse to).
    async fn start(primary: SocketAddr, secret: &str) -> Bind {
        let named = tool("named");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let port = {
            let (u, t) = tapis_dns::bind("127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("free port");
            let p = t.local_addr().expect("addr").port();
            drop((u, t));
            p
        };
        let conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion yes;
    allow-recursion {{ 127.0.0.1; }};
    allow-query {{ 127.0.0.1; }};
    dnssec-validation no;
    notify no;
    response-policy {{ zone "rpz.tapis" min-update-interval 0; }} qname-wait-recurse no;
}};
controls {{ }};
key "tapis-xfr" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "rpz.tapis" {{
    type secondary;
    primaries {{ {pip} port {pport} key "tapis-xfr"; }};
    file "rpz.tapis.db";
    allow-notify {{ 127.0.0.1; }};
    allow-transfer {{ 127.0.0.1; }};
}};
zone "example" {{
    type primary;
    file "example.db";
}};
"#,
            pip = primary.ip(),
            pport = primary.port(),
        );
        std::fs::write(dir.path().join("named.conf"), conf).expect("write conf");
        std::fs::write(
            dir.path().join("example.db"),
            "$TTL 60\n@ SOA ns.example. host.example. 1 60 60 600 60\n@ NS ns.example.\nns A 192.0.2.53\n* A 192.0.2.1\n",
        )
        .expect("write zone");
        let log = std::fs::File::create(dir.path().join("named.log")).expect("log");
        let child = Command::new(named)
            .arg("-g")
            .arg("-4")
            .arg("-c")
            .arg(dir.path().join("named.conf"))
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start named");
        let bind = Bind {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        bind.wait_for_log("running", Duration::from_secs(20)).await;
        bind
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    async fn wait_for_log(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if start.elapsed() > within {
                panic!(
                    "named did not log {needle:?} within {within:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lines of the log that mention the zone's transfers.
    fn transfer_log(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("rpz.tapis") && (l.contains("ransfer") || l.contains("XFR")))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Asks BIND (recursion desired, as a stub resolver does) with our client.
async fn resolve(bind: SocketAddr, name: &str, qtype: u16) -> Option<(Rcode, Vec<Rec>)> {
    let mut b = MessageBuilder::new(rand::random(), flags::RD);
    b.question(&Question {
        name: Name::from_ascii(name).expect("name"),
        qtype,
        qclass: class::IN,
    });
    let a = udp(bind, &b.finish()).await?;
    Some((rcode(&a), answers(&a)))
}

fn blocked_nx(r: &Option<(Rcode, Vec<Rec>)>) -> bool {
    matches!(r, Some((Rcode::NXDOMAIN, a)) if a.is_empty())
}

fn resolves_to_wildcard(r: &Option<(Rcode, Vec<Rec>)>) -> bool {
    matches!(r, Some((Rcode::NOERROR, a)) if a.iter().any(|x| x.rtype == rtype::A))
}

async fn dig(args: &[&str]) -> String {
    let out = Command::new(tool("dig"))
        .args(args)
        .args(["+tries=1", "+time=3"])
        .output()
        .await
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dig_status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("(no status)")
}

/// CNAME records of a dig AXFR listing, as (owner, target).
fn dig_cnames(out: &str) -> BTreeSet<(String, String)> {
    out.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[3] == "CNAME").then(|| (f[0].to_owned(), f[4].to_owned()))
        })
        .collect()
}

async fn our_cnames(zone: &MemoryZone) -> BTreeSet<(String, String)> {
    zone_cnames(zone)
}

/// The zone BIND follows; most records carry an explanation TXT (under
/// `_tapis`), as tapis publishes them, so BIND is shown to accept those.
fn policy_records() -> Vec<Record> {
    let mut r = zone_records(20_000);
    r.extend([
        ("judi.example".to_owned(), OrderAction::Nxdomain),
        ("*.judi.example".to_owned(), OrderAction::Nxdomain),
        ("ok.judi.example".to_owned(), OrderAction::Passthru),
        ("shown.example".to_owned(), OrderAction::WalledGarden),
        ("quiet.example".to_owned(), OrderAction::Nodata),
        ("gone.example".to_owned(), OrderAction::Nxdomain),
    ]);
    r.into_iter()
        .enumerate()
        .map(|(i, (o, a))| {
            let rec = Record::new(o, a);
            if a == OrderAction::Passthru || i % 3 == 0 {
                rec
            } else {
                rec.explained(tapis_dns::explanation_text(
                    &format!("ORD-{}", i % 7),
                    tapis_dns::BlockKind::Censored,
                ))
            }
        })
        .collect()
}

async fn wait_until<F, Fut>(what: &str, within: Duration, bind: &Bind, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!(
                "{what}: not within {within:?}; BIND's transfer log:\n{}",
                bind.transfer_log().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_transfers_enforces_and_follows_notify() {
    let zone = Arc::new(MemoryZone::new(1, policy_records()));
    let primary = start_primary(zone.clone()).await;
    let pport = primary.addr.port().to_string();

    // dig verifies the TSIG of every message of a multi-message AXFR.
    let y = format!("hmac-sha256:tapis-xfr:{SECRET}");
    let out = dig(&["@127.0.0.1", "-p", &pport, "-y", &y, "rpz.tapis", "AXFR"]).await;
    assert!(
        !out.contains("failed") && !out.contains("Couldn't"),
        "{out}"
    );
    let records = policy_records();
    let explained = records.iter().filter(|r| r.explanation.is_some()).count();
    assert!(explained > 10_000, "most records explained: {explained}");
    // SOA, NS, ZONEMD, the records with their TXTs, SOA
    let size = 4 + records.len() + explained;
    assert!(
        out.contains(&format!("XFR size: {size} records")),
        "{}",
        out.lines().rev().take(6).collect::<Vec<_>>().join("\n")
    );
    let messages: usize = out
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .expect("dig reports the message count");
    assert!(messages > 10, "{messages} messages");
    assert_eq!(dig_cnames(&out), our_cnames(&zone).await);
    // and refuses a transfer with the wrong secret.
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &pport,
        "-y",
        "hmac-sha256:tapis-xfr:d3Jvbmc=",
        "rpz.tapis",
        "AXFR",
    ])
    .await;
    assert!(
        out.contains("Transfer failed") || out.contains("NOTAUTH") || out.contains("BADSIG"),
        "{out}"
    );
    assert_eq!(primary.source.snapshots.load(Ordering::SeqCst), 1);

    // BIND loads the zone by AXFR and enforces it.
    let bind = Bind::start(primary.addr, SECRET).await;
    let loaded = wait_until(
        "BIND enforces the zone",
        Duration::from_secs(30),
        &bind,
        || async { blocked_nx(&resolve(bind.addr, "judi.example", rtype::A).await) },
    )
    .await;
    println!("BIND loaded and enforced the zone {loaded:?} after start");
    assert_eq!(
        primary.source.snapshots.load(Ordering::SeqCst),
        2,
        "one AXFR by BIND"
    );
    let bport = bind.addr.port().to_string();
    let at = |name: &'static str| {
        let bport = bport.clone();
        async move { dig(&["@127.0.0.1", "-p", &bport, name, "A"]).await }
    };
    let out = at("judi.example").await;
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");
    let out = at("www.judi.example").await;
    assert_eq!(dig_status(&out), "NXDOMAIN", "wildcard: {out}");
    let out = at("ok.judi.example").await;
    assert_eq!(dig_status(&out), "NOERROR", "passthru: {out}");
    assert!(out.contains("192.0.2.1"), "{out}");
    let out = at("shown.example").await;
    assert_eq!(dig_status(&out), "NOERROR", "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("shown.example.")
            && l.contains("CNAME")
            && l.contains("block.tapis.example.")),
        "walled garden: {out}"
    );
    let out = at("quiet.example").await;
    assert_eq!(dig_status(&out), "NOERROR", "{out}");
    assert!(out.contains("ANSWER: 0"), "nodata: {out}");
    let out = at("gone.example").await;
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");
    let out = at("site11.gambling11.example").await;
    assert!(
        out.contains("CNAME") && out.contains("block.tapis.example."),
        "{out}"
    );
    assert!(
        bind.log()
            .contains("rpz QNAME NXDOMAIN rewrite judi.example"),
        "BIND logs the policy hit"
    );

    // A change: lift one order, add another; NOTIFY; BIND follows by IXFR.
    let serial = zone.apply(
        ["gone.example".to_owned()],
        [("new-judi.example".to_owned(), OrderAction::Nxdomain)],
    );
    assert_eq!(serial, 2);
    let t0 = Instant::now();
    let outcome = notify_loopback(bind.addr, serial, Some(&key()))
        .await
        .expect("BIND answers the NOTIFY");
    println!("NOTIFY answered: {outcome:?}");
    assert!(outcome.accepted(true), "{outcome:?}");
    wait_until(
        "BIND enforces the change",
        Duration::from_secs(5),
        &bind,
        || async {
            resolves_to_wildcard(&resolve(bind.addr, "gone.example", rtype::A).await)
                && blocked_nx(&resolve(bind.addr, "new-judi.example", rtype::A).await)
        },
    )
    .await;
    let delay = t0.elapsed();
    println!("NOTIFY → BIND enforcing the change: {delay:?}");
    assert_eq!(
        primary.source.snapshots.load(Ordering::SeqCst),
        2,
        "no AXFR after the NOTIFY"
    );
    assert!(
        primary.source.changes.load(Ordering::SeqCst) >= 1,
        "IXFR asked"
    );
    let out = at("gone.example").await;
    assert_eq!(dig_status(&out), "NOERROR", "lifted: {out}");
    let out = at("new-judi.example").await;
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");

    // A larger change, then BIND's copy must equal ours exactly.
    let remove: Vec<String> = zone_records(1_000).into_iter().map(|(o, _)| o).collect();
    let add: Vec<(String, OrderAction)> = (0..1_000)
        .map(|i| (format!("batch{i}.example"), OrderAction::WalledGarden))
        .collect();
    let serial = zone.apply(remove, add);
    let t0 = Instant::now();
    let outcome = notify_loopback(bind.addr, serial, Some(&key()))
        .await
        .expect("NOTIFY");
    assert!(outcome.accepted(true), "{outcome:?}");
    wait_until(
        "BIND takes the batch",
        Duration::from_secs(5),
        &bind,
        || async {
            let out = dig(&[
                "@127.0.0.1",
                "-p",
                &bind.addr.port().to_string(),
                "rpz.tapis",
                "SOA",
                "+short",
            ])
            .await;
            out.split_whitespace().nth(2) == Some(&serial.to_string())
        },
    )
    .await;
    println!(
        "NOTIFY → BIND at serial {serial} (2,000 changed records): {:?}",
        t0.elapsed()
    );
    assert_eq!(
        primary.source.snapshots.load(Ordering::SeqCst),
        2,
        "still no AXFR"
    );
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &bind.addr.port().to_string(),
        "rpz.tapis",
        "AXFR",
    ])
    .await;
    assert_eq!(
        dig_cnames(&out),
        our_cnames(&zone).await,
        "BIND's copy equals ours"
    );
    let ixfrs: Vec<String> = bind.transfer_log();
    println!("BIND's transfer log:\n{}", ixfrs.join("\n"));
    assert!(
        bind.log().contains("Transfer status: success"),
        "BIND logs successful transfers"
    );
    assert!(delay < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_with_a_wrong_secret_transfers_nothing() {
    let zone = Arc::new(MemoryZone::new(1, policy_records()));
    let primary = start_primary(zone).await;
    let bind = Bind::start(primary.addr, "d3JvbmctdGFwaXMtc2VjcmV0LTAxMjM0NTY3ODlhYg==").await;

    // BIND's SOA query is signed with its (wrong) key: we answer NOTAUTH/
    // BADSIG, and BIND reports the TSIG failure.
    let start = Instant::now();
    let failure = loop {
        let log = bind.log();
        if let Some(l) = log.lines().find(|l| {
            l.contains("rpz.tapis")
                && (l.contains("tsig") || l.contains("TSIG") || l.contains("BADSIG"))
        }) {
            break l.to_owned();
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("BIND logged no TSIG failure; log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("BIND: {failure}");
    assert_eq!(
        primary.source.snapshots.load(Ordering::SeqCst),
        0,
        "nothing transferred"
    );
    assert_eq!(primary.source.changes.load(Ordering::SeqCst), 0);
    let r = resolve(bind.addr, "judi.example", rtype::A).await;
    assert!(resolves_to_wildcard(&r), "not enforced: {r:?}");

    // Our NOTIFY, signed with the right key, is refused by a BIND that
    // has another secret under the same name: BADSIG, reported.
    let outcome = notify_loopback(bind.addr, 1, Some(&key()))
        .await
        .expect("answered");
    println!("NOTIFY to the misconfigured BIND: {outcome:?}");
    assert_eq!(outcome.rcode, Rcode::NOTAUTH);
    assert_eq!(outcome.tsig_error, Some(TsigRcode::BADSIG));
    assert!(!outcome.accepted(true));
}

/// NOTIFY to the BIND under test, on loopback: a private address, so
/// allowed explicitly.
async fn notify_loopback(
    target: std::net::SocketAddr,
    serial: u32,
    key: Option<&tapis_dns::TsigKey>,
) -> Result<tapis_dns::NotifyOutcome, tapis_dns::Error> {
    let options = tapis_dns::NotifyOptions {
        allow_private_targets: true,
        ..Default::default()
    };
    tapis_dns::send_notify_with(target, &zone_config(), serial, key, &options).await
}
