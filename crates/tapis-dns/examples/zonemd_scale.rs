//! The cost of a zone's ZONEMD at scale: `cargo run --release -p tapis-dns
//! --example zonemd_scale -- 1000000` digests N names as the national-scale
//! benchmark shapes them (each `name` and `*.name`, every record with an
//! explanation TXT, so 4 N records), fed in text order as the store streams
//! them, and prints the time to take the records, the time to sort and
//! hash, the octets the digester held, and the process's peak RSS.
//! Figures: bench/rpz-scale/README.md.

use std::sync::Arc;
use std::time::Instant;

use tapis_core::order::OrderAction;
use tapis_dns::zonemd::Digester;
use tapis_dns::{Record, ZoneConfig};

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let words = [
        "judi", "slot", "gacor", "togel", "bocoran", "maxwin", "bet", "casino",
    ];
    let tlds = [
        "com", "net", "xyz", "site", "online", "co.id", "my.id", "org",
    ];
    let mut names: Vec<String> = (0..n)
        .map(|i| {
            let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            format!(
                "{}{}{}.{}",
                words[(x >> 7) as usize % words.len()],
                words[(x >> 13) as usize % words.len()],
                x % 1_000_003,
                tlds[(x >> 29) as usize % tlds.len()]
            )
        })
        .collect();
    names.sort();
    names.dedup();
    let text: Arc<str> = Arc::from("ref=0193b2c4-7e1f-7000-8000-000000000001 cat=censored");
    let base = peak_rss_kb();
    let mut d = Digester::new(&ZoneConfig::default()).expect("zone");
    let t0 = Instant::now();
    let mut records = 0usize;
    // the store streams `*.x` and `x` in text order, in batches
    for chunk in names.chunks(2048) {
        let mut batch: Vec<Record> = Vec::with_capacity(chunk.len() * 2);
        for name in chunk {
            batch.push(
                Record::new(format!("*.{name}"), OrderAction::Nxdomain).explained(text.clone()),
            );
            batch.push(Record::new(name.clone(), OrderAction::Nxdomain).explained(text.clone()));
        }
        batch.sort_by(|a, b| a.owner.cmp(&b.owner));
        for r in &batch {
            d.push(r);
        }
        records += batch.len();
    }
    let took = t0.elapsed();
    let held = d.held_bytes();
    let t1 = Instant::now();
    let digest = d.finish(1);
    let hashed = t1.elapsed();
    println!(
        "{{\"names\": {}, \"owners\": {records}, \"records\": {}, \"take_s\": {:.3}, \"sort_hash_s\": {:.3}, \"held_mb\": {:.1}, \"peak_rss_mb\": {:.1}, \"rss_before_mb\": {:.1}, \"digest\": \"{}\"}}",
        names.len(),
        records * 2 + 2,
        took.as_secs_f64(),
        hashed.as_secs_f64(),
        held as f64 / 1e6,
        peak_rss_kb() as f64 / 1e3,
        base as f64 / 1e3,
        digest.hex()
    );
}
