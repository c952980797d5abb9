//! No query is lost while a 1 M-name policy zone reloads: a client keeps
//! asking (blocked names, a forwarded name, an unblocked one) from before
//! the change until after the new version is in force, and every answer
//! must come and be right for the version in force.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tapis_dns::wire::rtype;
use tapis_resolver::Config;

const NAMES: usize = 1_000_000;

fn write_zone(path: &std::path::Path, serial: u32, extra: &str) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("zone"));
    writeln!(
        f,
        "$TTL 300\n@ SOA ns.rpz.big. admin.rpz.big. {serial} 60 60 600 60"
    )
    .expect("w");
    for i in 0..NAMES {
        // shapes like real lists: a label or two under a handful of suffixes
        let suffix = ["com", "net", "org", "id", "co.id", "xyz", "top", "info"][i % 8];
        if i % 3 == 0 {
            writeln!(f, "*.slot{i}.{suffix} CNAME .").expect("w");
        } else {
            writeln!(f, "judi-{i}.bet{}.{suffix} CNAME .", i % 97).expect("w");
        }
    }
    f.write_all(extra.as_bytes()).expect("w");
    f.flush().expect("flush");
}

#[test]
fn a_million_name_reload_loses_no_query() {
    let rt = runtime(2);
    let upstream = rt.block_on(Upstream::start());
    let dir = tempfile::tempdir().expect("tmp");
    let zfile = dir.path().join("big.rpz");
    write_zone(&zfile, 1, "");
    let cfg = Config {
        listen: "127.0.0.1:0".parse().expect("a"),
        data_dir: dir.path().join("data"),
        threads: 1,
        upstreams: vec![upstream.addr],
        zones: vec![file_zone("rpz.big", &zfile, 1)],
        ..Config::default()
    };
    let running = rt.block_on(tapis_resolver::start(cfg)).expect("start");
    let dns = running.udp_addr;
    let loaded = Instant::now();
    wait_for(Duration::from_secs(300), "the 1 M-name zone", || {
        running.policies().zone(0).is_some_and(|z| z.len() == NAMES)
    });
    eprintln!("1 M names loaded in {:?} (test build)", loaded.elapsed());

    // version 2: one more name blocked, www.test among them
    let stop = Arc::new(AtomicBool::new(false));
    let switched = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicU64::new(0));
    let client = {
        let stop = stop.clone();
        let switched = switched.clone();
        let asked = asked.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            let mut failures = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                // j = 24k + 8: an exact trigger under .com; 24k + 9: a
                // wildcard under .net
                let k = i % (NAMES / 24 - 1);
                let (name, want): (String, &[u16]) = match i % 4 {
                    0 => (
                        format!("judi-{0}.bet{1}.com", 24 * k + 8, (24 * k + 8) % 97),
                        &[3],
                    ),
                    1 => (format!("www.slot{}.net", 24 * k + 9), &[3]),
                    2 => ("pass.test".into(), &[0]),
                    // blocked only in version 2: either answer until the
                    // switch is seen, then only NXDOMAIN
                    _ => (
                        "www.test".into(),
                        if switched.load(Ordering::SeqCst) {
                            &[3]
                        } else {
                            &[0, 3]
                        },
                    ),
                };
                sent += 1;
                asked.store(sent, Ordering::SeqCst);
                match udp(dns, &query(&name, rtype::A, false), Duration::from_secs(2)) {
                    Some(a) => {
                        let rcode = summary(&a).rcode;
                        if !want.contains(&rcode) {
                            failures.push(format!("{name}: rcode {rcode}, wanted {want:?}"));
                        }
                    }
                    None => failures.push(format!("{name}: no answer within 2 s")),
                }
            }
            (sent, failures)
        })
    };
    // the reload starts while the client is asking (a fact, not a pause)
    wait_for(Duration::from_secs(60), "the client to be asking", || {
        asked.load(Ordering::SeqCst) >= 50
    });
    write_zone(&zfile, 2, "www.test CNAME .\n");
    let reload = Instant::now();
    wait_for(Duration::from_secs(300), "version 2 in force", || {
        running
            .policies()
            .zone(0)
            .is_some_and(|z| z.serial() == Some(2))
    });
    switched.store(true, Ordering::SeqCst);
    eprintln!(
        "reload of 1 M names took {:?} (test build)",
        reload.elapsed()
    );
    // and goes on asking once version 2 is in force
    let at_switch = asked.load(Ordering::SeqCst);
    wait_for(Duration::from_secs(60), "queries after the switch", || {
        asked.load(Ordering::SeqCst) >= at_switch + 50
    });
    stop.store(true, Ordering::SeqCst);
    let (sent, failures) = client.join().expect("client");
    eprintln!(
        "{sent} queries during the reload, {} failures",
        failures.len()
    );
    assert!(sent > 50, "the client kept asking ({sent})");
    assert!(
        failures.is_empty(),
        "{} of {sent} queries failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert_eq!(running.policies().zone(0).map(|z| z.len()), Some(NAMES + 1));
    rt.block_on(running.shutdown());
}
