//! tapis-dns's hand-written wire format and TSIG against hickory-proto
//! doing the same work, on what the primary and its secondaries spend
//! their time on: one transfer message of 1,000 CNAME policy records
//! (encoded with name compression, then decoded with every CNAME target
//! read), and TSIG (HMAC-SHA256) signing and verifying that message.
//!
//! A plain timed loop (median of 15 runs of N iterations), release build:
//! `cargo run --release --manifest-path crates/tapis-dns/benches/compare/Cargo.toml`.
//! Results and the decision they support: ../README.md.

use std::hint::black_box;
use std::time::Instant;

use hickory_proto::op::{Message as HMessage, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name as HName, RData, Record as HRecord, RecordType, TSigner};
use tapis_dns::tsig::{self, RequestAuth, TsigKey};
use tapis_dns::wire::{
    Message, MessageBuilder, Name, Question, Rdata, Section, class, parse_name_rdata, rtype,
};

const RECORDS: usize = 1_000;
const SECRET: &str = "dGFwaXMtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==";
const NOW: u64 = 1_780_000_000;

fn owners() -> Vec<String> {
    (0..RECORDS)
        .map(|i| format!("site{i}.gambling{}.example.rpz.tapis.", i % 97))
        .collect()
}

fn target(i: usize) -> &'static str {
    if i.is_multiple_of(3) {
        "block.tapis.example."
    } else {
        "."
    }
}

/// Median nanoseconds per iteration of `f`.
fn time(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let mut runs: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn ours_encode(owners: &[Name], targets: &[Name], zone: &Name) -> Vec<u8> {
    let mut b = MessageBuilder::new(7, 0x8400);
    b.question(&Question {
        name: zone.clone(),
        qtype: rtype::AXFR,
        qclass: class::IN,
    });
    for (o, t) in owners.iter().zip(targets) {
        b.record(
            Section::Answer,
            o,
            rtype::CNAME,
            class::IN,
            60,
            Rdata::Cname(t),
        );
    }
    b.finish()
}

fn ours_decode(bytes: &[u8]) -> usize {
    let m = Message::parse(bytes).expect("parse");
    m.answers
        .iter()
        .map(|r| {
            parse_name_rdata(m.bytes, r.rdata.clone())
                .expect("cname")
                .labels()
                .count()
        })
        .sum()
}

fn hickory_message(owners: &[HName], targets: &[HName], zone: &HName) -> HMessage {
    let mut m = HMessage::new(7, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(zone.clone(), RecordType::AXFR));
    for (o, t) in owners.iter().zip(targets) {
        m.add_answer(HRecord::from_rdata(
            o.clone(),
            60,
            RData::CNAME(CNAME(t.clone())),
        ));
    }
    m
}

fn hickory_decode(bytes: &[u8]) -> usize {
    let m = HMessage::from_vec(bytes).expect("parse");
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::CNAME(c) => c.0.iter().count(),
            _ => 0,
        })
        .sum()
}

fn main() {
    let texts = owners();
    let zone = Name::from_ascii("rpz.tapis.").expect("zone");
    let o: Vec<Name> = texts
        .iter()
        .map(|t| Name::from_ascii(t).expect("n"))
        .collect();
    let t: Vec<Name> = (0..RECORDS)
        .map(|i| Name::from_ascii(target(i)).expect("n"))
        .collect();
    let hzone = HName::from_ascii("rpz.tapis.").expect("zone");
    let ho: Vec<HName> = texts
        .iter()
        .map(|t| HName::from_ascii(t).expect("n"))
        .collect();
    let ht: Vec<HName> = (0..RECORDS)
        .map(|i| HName::from_ascii(target(i)).expect("n"))
        .collect();

    let ours_bytes = ours_encode(&o, &t, &zone);
    let hmsg = hickory_message(&ho, &ht, &hzone);
    let h_bytes = hmsg.to_vec().expect("encode");
    assert_eq!(ours_decode(&ours_bytes), hickory_decode(&h_bytes));
    println!(
        "message: {RECORDS} CNAME records, ours {} bytes, hickory {} bytes",
        ours_bytes.len(),
        h_bytes.len()
    );

    let n = 300;
    let enc_ours = time(n, || {
        black_box(ours_encode(black_box(&o), &t, &zone));
    });
    // hickory builds a Message of owned records, then encodes it: both
    // steps are what a server would do per message
    let enc_h = time(n, || {
        let m = hickory_message(black_box(&ho), &ht, &hzone);
        black_box(m.to_vec().expect("encode"));
    });
    let enc_h_only = time(n, || {
        black_box(black_box(&hmsg).to_vec().expect("encode"));
    });
    let dec_ours = time(n, || {
        black_box(ours_decode(black_box(&ours_bytes)));
    });
    let dec_h = time(n, || {
        black_box(hickory_decode(black_box(&h_bytes)));
    });

    // TSIG: sign the message as a request, then verify it as the primary
    // does (hmac-sha256)
    let key = TsigKey::new("tapis-xfr.", "hmac-sha256", SECRET).expect("key");
    let keys = [key.clone()];
    let raw_key = base64_decode(SECRET);
    let signer = TSigner::new(
        raw_key,
        TsigAlgorithm::HmacSha256,
        HName::from_ascii("tapis-xfr.").expect("n"),
        300,
    )
    .expect("signer");
    let sign_ours = time(n, || {
        let mut m = ours_bytes.clone();
        black_box(tsig::sign_request(&mut m, &key, NOW));
        black_box(m);
    });
    let sign_h = time(n, || {
        let mut m = hmsg.clone();
        black_box(m.finalize(&signer, NOW).expect("sign"));
        black_box(m.to_vec().expect("encode"));
    });
    let mut signed_ours = ours_bytes.clone();
    tsig::sign_request(&mut signed_ours, &key, NOW);
    let mut hsigned = hmsg.clone();
    hsigned.finalize(&signer, NOW).expect("sign");
    let signed_h = hsigned.to_vec().expect("encode");
    let verify_ours = time(n, || {
        let m = Message::parse(black_box(&signed_ours)).expect("parse");
        match tsig::verify_request(&m, &keys, NOW) {
            Ok(RequestAuth::Signed(s)) => {
                black_box(s);
            }
            _ => panic!("does not verify"),
        }
    });
    let verify_h = time(n, || {
        black_box(
            signer
                .verify_message_byte(black_box(&signed_h), None, true)
                .expect("verify"),
        );
    });
    // the clone in the signing loops, measured alone, is left in both
    let clone_ours = time(n, || {
        black_box(black_box(&ours_bytes).clone());
    });
    let clone_h = time(n, || {
        black_box(black_box(&hmsg).clone());
    });

    let us = |ns: f64| ns / 1000.0;
    println!("operation                         ours (µs)   hickory-proto (µs)");
    println!(
        "encode 1,000-record message       {:>9.1}   {:>9.1} (build + encode), {:.1} (encode only)",
        us(enc_ours),
        us(enc_h),
        us(enc_h_only)
    );
    println!(
        "decode it (CNAME targets read)    {:>9.1}   {:>9.1}",
        us(dec_ours),
        us(dec_h)
    );
    println!(
        "TSIG sign it (hmac-sha256)        {:>9.1}   {:>9.1} (incl. a clone of {:.1} / {:.1})",
        us(sign_ours),
        us(sign_h),
        us(clone_ours),
        us(clone_h)
    );
    println!(
        "TSIG verify it (parse + MAC)      {:>9.1}   {:>9.1}",
        us(verify_ours),
        us(verify_h)
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
