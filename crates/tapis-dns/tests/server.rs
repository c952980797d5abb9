//! The primary in-process, driven by a hand-written client over real
//! sockets: SOA, refusals, AXFR of a zone that needs many messages, IXFR
//! after changes, TSIG failures, the allow-list, TCP limits, NOTIFY.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tapis_core::order::OrderAction;
use tapis_dns::tsig::{self, RequestAuth, ResponseTsigError, TsigKey, unix_now};
use tapis_dns::wire::{
    Message, MessageBuilder, Name, Question, Rcode, TsigRcode, class, opcode, rtype,
};
use tapis_dns::{
    Error, IpNet, MemoryZone, NotifyOptions, Observed, PrimaryConfig, Reply, Transport,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

fn small_zone() -> Arc<MemoryZone> {
    Arc::new(MemoryZone::new(7, zone_records(50)))
}

#[tokio::test]
async fn soa_over_udp_and_tcp() {
    let s = start(default_config(), small_zone()).await;
    for answer in [
        udp(s.addr, &query(1, ZONE, rtype::SOA, None)).await,
        tcp(s.addr, &query(1, ZONE, rtype::SOA, None)).await,
    ] {
        let a = answer.expect("an answer");
        assert_eq!(rcode(&a), Rcode::NOERROR);
        assert!(is_authoritative(&a));
        assert_eq!(header(&a).id, 1);
        let recs = answers(&a);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].soa_serial(), Some(7));
        assert_eq!(recs[0].owner, ZONE);
        assert!(tsig_of(&a).is_none(), "unsigned query, unsigned answer");
    }
    // Case of the question is kept (0x20 randomisation).
    let a = udp(s.addr, &query(2, "RpZ.TaPiS.", rtype::SOA, None))
        .await
        .expect("answer");
    let m = Message::parse(&a).expect("parse");
    assert_eq!(m.questions[0].name.to_string(), "RpZ.TaPiS.");
    assert_eq!(rcode(&a), Rcode::NOERROR);

    // A signed SOA query gets a signed answer.
    let (q, mut v) = signed(query(3, ZONE, rtype::SOA, None), &key(), None);
    let a = udp(s.addr, &q).await.expect("answer");
    v.verify(&a, unix_now()).expect("signed answer");
    assert_eq!(answers(&a)[0].soa_serial(), Some(7));
}

#[tokio::test]
async fn other_queries_are_answered_sensibly() {
    let s = start(default_config(), small_zone()).await;
    let ask = |m: Vec<u8>| async move { udp(s.addr, &m).await.expect("answer") };

    let a = ask(query(1, "example.com.", rtype::SOA, None)).await;
    assert_eq!(rcode(&a), Rcode::REFUSED, "another zone");
    let a = ask(query(
        1,
        "site1.gambling1.example.rpz.tapis.",
        rtype::CNAME,
        None,
    ))
    .await;
    assert_eq!(rcode(&a), Rcode::REFUSED, "records only by transfer");
    let a = ask(query(1, ZONE, rtype::A, None)).await;
    assert_eq!(rcode(&a), Rcode::NOERROR, "apex, no such type");
    assert!(answers(&a).is_empty());
    assert_eq!(authority(&a)[0].soa_serial(), Some(7));
    let a = ask(query(1, ZONE, rtype::NS, None)).await;
    assert_eq!(answers(&a)[0].data, "ns.rpz.tapis.");
    let a = ask(query(1, ZONE, rtype::ANY, None)).await;
    assert_eq!(answers(&a).len(), 2);
    let a = ask(query(1, ZONE, rtype::MAILB, None)).await;
    assert_eq!(rcode(&a), Rcode::NOTIMP);
    let a = ask(query(1, ZONE, rtype::AXFR, None)).await;
    assert_eq!(rcode(&a), Rcode::FORMERR, "AXFR over UDP");

    // NOTIFY and UPDATE: not implemented by a primary.
    for op in [opcode::NOTIFY, opcode::UPDATE] {
        let mut q = query(9, ZONE, rtype::SOA, None);
        q[2] |= op << 3;
        let a = ask(q).await;
        assert_eq!(rcode(&a), Rcode::NOTIMP);
        assert_eq!(header(&a).opcode(), op);
    }

    // EDNS: echoed; version 1 gets BADVERS.
    let mut b = MessageBuilder::new(5, 0);
    b.question(&Question {
        name: Name::from_ascii(ZONE).expect("n"),
        qtype: rtype::SOA,
        qclass: class::IN,
    });
    b.opt(4096, Rcode::NOERROR);
    let a = ask(b.finish()).await;
    let m = Message::parse(&a).expect("parse");
    assert_eq!(m.additional.len(), 1);
    assert_eq!(m.additional[0].rtype, rtype::OPT);
    assert_eq!(m.additional[0].class, tapis_dns::server::EDNS_UDP_SIZE);
    let a = ask(b_opt_version(1)).await;
    let m = Message::parse(&a).expect("parse");
    let ext = (m.additional[0].ttl >> 24) as u16;
    assert_eq!((ext << 4) | header(&a).rcode().0, Rcode::BADVERS.0);

    // Malformed after a readable header: FORMERR with the same id.
    let mut q = query(77, ZONE, rtype::SOA, None);
    q.push(0xFF);
    let a = ask(q).await;
    assert_eq!(rcode(&a), Rcode::FORMERR);
    assert_eq!(header(&a).id, 77);

    // Too short for a header, or a response: no answer.
    let p = &s.primary;
    let peer = "127.0.0.1:1".parse().expect("peer");
    assert!(matches!(
        p.respond(&[1, 2, 3], peer, Transport::Udp).await,
        Reply::Drop
    ));
    let mut r = query(1, ZONE, rtype::SOA, None);
    r[2] |= 0x80;
    assert!(matches!(
        p.respond(&r, peer, Transport::Udp).await,
        Reply::Drop
    ));
    assert!(udp(s.addr, &[1, 2, 3]).await.is_none());
}

fn b_opt_version(version: u8) -> Vec<u8> {
    let mut b = MessageBuilder::new(6, 0);
    b.question(&Question {
        name: Name::from_ascii(ZONE).expect("n"),
        qtype: rtype::SOA,
        qclass: class::IN,
    });
    b.opt(4096, Rcode::NOERROR);
    let mut m = b.finish();
    // OPT TTL is extended rcode, version, flags (2), then rdlen (2): the
    // version octet is 5 from the end.
    let at = m.len() - 5;
    m[at] = version;
    m
}

#[tokio::test]
async fn axfr_of_a_zone_that_needs_many_messages() {
    let records = zone_records(20_000);
    let zone = Arc::new(MemoryZone::new(42, records.clone()));
    let s = start(default_config(), zone).await;
    let started = Instant::now();
    let (q, v) = signed(query(11, ZONE, rtype::AXFR, None), &key(), None);
    let messages = transfer(s.addr, &q, Some(v)).await;
    let elapsed = started.elapsed();
    println!(
        "AXFR of 20,000 names: {} messages in {elapsed:?}",
        messages.len()
    );
    assert!(messages.len() > 5, "{} messages", messages.len());
    for m in &messages {
        assert!(m.len() <= 16 * 1024, "message of {} octets", m.len());
        assert_eq!(rcode(m), Rcode::NOERROR);
        assert!(is_authoritative(m));
        assert_eq!(header(m).id, 11);
    }
    let recs = all_answers(&messages);
    assert_eq!(recs.first().and_then(Rec::soa_serial), Some(42));
    assert_eq!(recs.last().and_then(Rec::soa_serial), Some(42));
    assert_eq!(recs[1].rtype, rtype::NS);
    assert_eq!(recs[1].data, "ns.rpz.tapis.");
    assert_eq!(recs[2].rtype, rtype::ZONEMD, "the apex ZONEMD");
    let mut cnames: Vec<Rec> = recs[3..recs.len() - 1].to_vec();
    cnames.sort();
    assert_eq!(cnames, expected_cnames(&records, 60));
    assert!(
        cnames
            .iter()
            .any(|r| r.owner.starts_with("*.") && r.data == ".")
    );
    assert!(cnames.iter().any(|r| r.data == "block.tapis.example."));
    assert!(cnames.iter().any(|r| r.data == "rpz-passthru."));
    assert!(cnames.iter().any(|r| r.data == "*."));
    assert!(cnames.iter().any(|r| r.data == "rpz-drop."));

    // The same with an HMAC-SHA512 key.
    let k512 = TsigKey::new("other-key", "hmac-sha512", SECRET).expect("key");
    let mut c = default_config();
    c.keys.push(k512.clone());
    let s2 = start(c, s.zone.clone()).await;
    let (q, v) = signed(query(12, ZONE, rtype::AXFR, None), &k512, None);
    let messages = transfer(s2.addr, &q, Some(v)).await;
    assert_eq!(all_answers(&messages).len(), 20_004);
}

/// Applies a transfer's records to a client copy (owner → target).
fn apply(copy: &mut BTreeMap<String, String>, recs: &[Rec]) {
    let serial = recs[0].soa_serial().expect("first is SOA");
    if recs.len() == 1 {
        return;
    }
    if recs[1].rtype != rtype::SOA {
        copy.clear();
        for r in &recs[1..recs.len() - 1] {
            if r.rtype == rtype::CNAME {
                copy.insert(r.owner.clone(), r.data.clone());
            }
        }
        return;
    }
    let mut deleting = true;
    for r in &recs[1..recs.len() - 1] {
        if r.rtype == rtype::SOA {
            deleting = r.soa_serial() != Some(serial);
            continue;
        }
        if r.rtype == rtype::ZONEMD {
            continue;
        }
        if deleting {
            assert_eq!(
                copy.remove(&r.owner),
                Some(r.data.clone()),
                "deleting {r:?}"
            );
        } else {
            assert!(
                copy.insert(r.owner.clone(), r.data.clone()).is_none(),
                "adding {r:?}"
            );
        }
    }
}

async fn snapshot_map(zone: &MemoryZone) -> BTreeMap<String, String> {
    zone_cnames(zone)
}

#[tokio::test]
async fn ixfr_after_changes() {
    let zone = Arc::new(MemoryZone::new(1, zone_records(2_000)).with_journal_limit(3));
    let s = start(default_config(), zone.clone()).await;
    let k = key();

    // The client's copy at serial 1, by AXFR.
    let (q, v) = signed(query(1, ZONE, rtype::AXFR, None), &k, None);
    let mut copy = BTreeMap::new();
    apply(
        &mut copy,
        &all_answers(&transfer(s.addr, &q, Some(v)).await),
    );
    assert_eq!(copy, snapshot_map(&zone).await);

    // Up to date: a single SOA.
    let (q, v) = signed(query(2, ZONE, rtype::IXFR, Some(1)), &k, None);
    let m = transfer(s.addr, &q, Some(v)).await;
    assert_eq!(m.len(), 1);
    let recs = all_answers(&m);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].soa_serial(), Some(1));

    // Two steps: remove, add, change an action, then undo part of it.
    assert_eq!(
        zone.apply(
            [
                "site5.gambling5.example".to_owned(),
                "site6.gambling6.example".to_owned()
            ],
            [
                ("new.example".to_owned(), OrderAction::Nxdomain),
                (
                    "site7.gambling7.example".to_owned(),
                    OrderAction::WalledGarden
                ),
                ("temp.example".to_owned(), OrderAction::Drop),
            ],
        ),
        2
    );
    assert_eq!(
        zone.apply(
            ["temp.example".to_owned()],
            [("site6.gambling6.example".to_owned(), OrderAction::Nxdomain)],
        ),
        3
    );
    let (q, v) = signed(query(3, ZONE, rtype::IXFR, Some(1)), &k, None);
    let m = transfer(s.addr, &q, Some(v)).await;
    let recs = all_answers(&m);
    let serials: Vec<u32> = recs.iter().filter_map(Rec::soa_serial).collect();
    assert_eq!(serials, [3, 1, 3, 3], "condensed: one diff from 1 to 3");
    assert!(
        !recs.iter().any(|r| r.owner.starts_with("temp.")),
        "added then removed: gone"
    );
    assert!(
        !recs.iter().any(|r| r.owner.starts_with("site6.")),
        "removed then re-added unchanged: gone"
    );
    // four SOAs, the old and new ZONEMD, two records each way
    assert_eq!(recs.len(), 4 + 2 + 2 + 2, "{recs:#?}");
    let zonemds: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.rtype == rtype::ZONEMD)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        zonemds,
        [2, 6],
        "serial 1's ZONEMD deleted, serial 3's added"
    );
    apply(&mut copy, &recs);
    assert_eq!(copy, snapshot_map(&zone).await);

    // IXFR over UDP: the current SOA only.
    let (q, mut v) = signed(query(4, ZONE, rtype::IXFR, Some(1)), &k, None);
    let a = udp(s.addr, &q).await.expect("answer");
    v.verify(&a, unix_now()).expect("signed");
    let recs = answers(&a);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].soa_serial(), Some(3));

    // Beyond the journal: the whole zone, in IXFR clothing.
    for i in 0..4 {
        zone.apply([], [(format!("more{i}.example"), OrderAction::Nxdomain)]);
    }
    let (q, v) = signed(query(5, ZONE, rtype::IXFR, Some(2)), &k, None);
    let m = transfer(s.addr, &q, Some(v)).await;
    let recs = all_answers(&m);
    assert_eq!(recs[1].rtype, rtype::NS, "AXFR-style");
    assert_eq!(
        Message::parse(&m[0]).expect("p").questions[0].qtype,
        rtype::IXFR
    );
    let mut copy2 = BTreeMap::new();
    apply(&mut copy2, &recs);
    assert_eq!(copy2, snapshot_map(&zone).await);

    // A client ahead of us (serial arithmetic): the current SOA.
    let (q, _) = signed(query(6, ZONE, rtype::IXFR, Some(1000)), &k, None);
    let recs = all_answers(&transfer(s.addr, &q, None).await);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].soa_serial(), Some(7));

    // IXFR without the client's SOA: FORMERR.
    let (q, _) = signed(query(7, ZONE, rtype::IXFR, None), &k, None);
    assert_eq!(
        rcode(&tcp(s.addr, &q).await.expect("answer")),
        Rcode::FORMERR
    );
}

#[tokio::test]
async fn transfers_need_a_valid_key_or_an_allowed_address() {
    let s = start(default_config(), small_zone()).await;

    // No TSIG, not on the allow-list.
    for qtype in [rtype::AXFR, rtype::IXFR] {
        let a = tcp(s.addr, &query(1, ZONE, qtype, Some(1)))
            .await
            .expect("answer");
        assert_eq!(rcode(&a), Rcode::REFUSED);
        assert!(answers(&a).is_empty());
    }
    let a = udp(s.addr, &query(1, ZONE, rtype::IXFR, Some(1)))
        .await
        .expect("answer");
    assert_eq!(rcode(&a), Rcode::REFUSED);

    // The right name, the wrong secret: NOTAUTH, BADSIG, unsigned.
    let wrong = TsigKey::new("tapis-xfr", "hmac-sha256", "d3Jvbmctc2VjcmV0").expect("key");
    let (q, mut v) = signed(query(2, ZONE, rtype::AXFR, None), &wrong, None);
    let a = tcp(s.addr, &q).await.expect("answer");
    assert_eq!(rcode(&a), Rcode::NOTAUTH);
    assert_eq!(tsig_of(&a), Some((TsigRcode::BADSIG, 0)));
    assert_eq!(
        v.verify(&a, unix_now()),
        Err(ResponseTsigError::Rejected(TsigRcode::BADSIG))
    );
    assert!(answers(&a).is_empty());

    // An unknown key: BADKEY. A known name with another algorithm: BADKEY.
    for k in [
        TsigKey::new("nobody", "hmac-sha256", SECRET).expect("key"),
        TsigKey::new("tapis-xfr", "hmac-sha512", SECRET).expect("key"),
    ] {
        let (q, _) = signed(query(3, ZONE, rtype::AXFR, None), &k, None);
        let a = tcp(s.addr, &q).await.expect("answer");
        assert_eq!(rcode(&a), Rcode::NOTAUTH);
        assert_eq!(tsig_of(&a), Some((TsigRcode::BADKEY, 0)));
    }

    // Signed ten minutes ago: BADTIME, signed, with our time.
    let (q, mut v) = signed(
        query(4, ZONE, rtype::AXFR, None),
        &key(),
        Some(unix_now() - 600),
    );
    let a = tcp(s.addr, &q).await.expect("answer");
    assert_eq!(rcode(&a), Rcode::NOTAUTH);
    assert_eq!(tsig_of(&a).map(|t| t.0), Some(TsigRcode::BADTIME));
    match v.verify(&a, unix_now()) {
        Err(ResponseTsigError::ServerBadTime { server }) => {
            assert!(server.abs_diff(unix_now()) < 5)
        }
        other => panic!("{other:?}"),
    }

    // A wrong TSIG fails SOA queries too (they do not need one, but one
    // that is present must verify).
    let (q, _) = signed(query(5, ZONE, rtype::SOA, None), &wrong, None);
    let a = udp(s.addr, &q).await.expect("answer");
    assert_eq!(rcode(&a), Rcode::NOTAUTH);

    // A truncated MAC below the minimum: FORMERR.
    let (mut q, _) = signed(query(6, ZONE, rtype::AXFR, None), &key(), None);
    shorten_mac(&mut q, 8);
    let a = tcp(s.addr, &q).await.expect("answer");
    assert_eq!(rcode(&a), Rcode::FORMERR);

    // Allow-list: unsigned transfers from 127.0.0.1 are allowed…
    let mut c = default_config();
    c.allow_unsigned_transfer = vec![IpNet::parse("allow", "127.0.0.0/8").expect("net")];
    let open = start(c, small_zone()).await;
    let m = transfer(open.addr, &query(7, ZONE, rtype::AXFR, None), None).await;
    assert_eq!(all_answers(&m).len(), 54);
    // …but not when only another address is.
    let mut c = default_config();
    c.allow_unsigned_transfer = vec![IpNet::parse("allow", "127.0.0.2").expect("net")];
    let closed = start(c, small_zone()).await;
    let a = tcp(closed.addr, &query(8, ZONE, rtype::AXFR, None))
        .await
        .expect("answer");
    assert_eq!(rcode(&a), Rcode::REFUSED);
    // and a bad signature is still an error even from an allowed address.
    let (q, _) = signed(query(9, ZONE, rtype::AXFR, None), &wrong, None);
    let a = tcp(open.addr, &q).await.expect("answer");
    assert_eq!(rcode(&a), Rcode::NOTAUTH);
}

/// Cuts the request's MAC down to `len` octets (keeps the message valid).
fn shorten_mac(msg: &mut Vec<u8>, len: usize) {
    let m = Message::parse(msg).expect("parse");
    let t = tsig::find_tsig(&m).expect("ok").expect("tsig");
    let rd = m.additional.last().expect("tsig").rdata.clone();
    let alg_len = t.rdata.algorithm.wire().len();
    let mac_len_at = rd.start + alg_len + 8;
    let old = t.rdata.mac.len();
    let mac_at = mac_len_at + 2;
    msg.drain(mac_at + len..mac_at + old);
    msg[mac_len_at..mac_len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
    let rdlen_at = rd.start - 2;
    let rdlen = (rd.len() - (old - len)) as u16;
    msg[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

#[tokio::test]
async fn tcp_is_bounded() {
    let mut c = default_config();
    c.tcp_idle_timeout = Duration::from_millis(300);
    let s = start(c, small_zone()).await;

    // Several queries on one connection.
    let mut conn = TcpStream::connect(s.addr).await.expect("connect");
    for id in 1..=3 {
        tcp_send(&mut conn, &query(id, ZONE, rtype::SOA, None)).await;
        let a = tcp_recv(&mut conn).await.expect("answer");
        assert_eq!(header(&a).id, id);
    }
    // Then idle: closed by the server.
    let t = Instant::now();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
        .await
        .expect("closed before 3 s")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );

    // Absurd lengths close the connection at once.
    for len in [0u16, 5, 40_000] {
        let mut conn = TcpStream::connect(s.addr).await.expect("connect");
        use tokio::io::AsyncWriteExt;
        conn.write_all(&len.to_be_bytes()).await.expect("write");
        let t = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
            .await
            .expect("closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(t.elapsed() < Duration::from_millis(250), "len {len}");
    }

    // A message that never arrives in full: closed after the idle timeout.
    let mut conn = TcpStream::connect(s.addr).await.expect("connect");
    use tokio::io::AsyncWriteExt;
    conn.write_all(&[0, 100, 1, 2, 3]).await.expect("write");
    let n = tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf))
        .await
        .expect("closed")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // Garbage with a readable header: FORMERR, connection stays usable.
    let mut conn = TcpStream::connect(s.addr).await.expect("connect");
    let mut junk = query(9, ZONE, rtype::SOA, None);
    junk[12] = 0x80; // a reserved label type
    tcp_send(&mut conn, &junk).await;
    assert_eq!(
        rcode(&tcp_recv(&mut conn).await.expect("answer")),
        Rcode::FORMERR
    );
    tcp_send(&mut conn, &query(10, ZONE, rtype::SOA, None)).await;
    assert_eq!(
        rcode(&tcp_recv(&mut conn).await.expect("answer")),
        Rcode::NOERROR
    );
}

#[tokio::test]
async fn notify_is_signed_and_retried_until_answered() {
    let secondary = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let target = secondary.local_addr().expect("addr");
    let k = key();
    let keys = vec![k.clone()];
    let fake = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut seen = 0;
        loop {
            let (n, from) = secondary.recv_from(&mut buf).await.expect("recv");
            seen += 1;
            if seen < 3 {
                continue; // lost
            }
            let m = Message::parse(&buf[..n]).expect("NOTIFY parses");
            assert_eq!(m.header.opcode(), opcode::NOTIFY);
            assert_eq!(m.questions[0].qtype, rtype::SOA);
            assert_eq!(m.questions[0].name.to_string(), ZONE);
            let serial = tapis_dns::wire::Soa::parse(m.bytes, m.answers[0].rdata.clone())
                .expect("soa")
                .serial;
            let RequestAuth::Signed(mut signer) =
                tsig::verify_request(&m, &keys, unix_now()).expect("valid TSIG")
            else {
                panic!("NOTIFY not signed");
            };
            let mut b =
                MessageBuilder::new(m.header.id, m.header.response_flags(Rcode::NOERROR, true));
            b.question(&m.questions[0]);
            let mut a = b.finish();
            signer.sign(&mut a, unix_now());
            secondary.send_to(&a, from).await.expect("send");
            return (seen, serial);
        }
    });
    // the fake secondary is on loopback
    let options = NotifyOptions {
        first_timeout: Duration::from_millis(100),
        allow_private_targets: true,
        ..NotifyOptions::default()
    };
    let outcome = tapis_dns::send_notify_with(target, &zone_config(), 99, Some(&k), &options)
        .await
        .expect("answered");
    assert_eq!(outcome.rcode, Rcode::NOERROR);
    assert_eq!(outcome.attempts, 3);
    assert!(outcome.verified);
    assert!(outcome.accepted(true));
    assert_eq!(fake.await.expect("fake secondary"), (3, 99));

    // Nobody answers: an error after the tries.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let options = NotifyOptions {
        tries: 3,
        first_timeout: Duration::from_millis(50),
        allow_private_targets: true,
        ..NotifyOptions::default()
    };
    let t = Instant::now();
    let r = tapis_dns::send_notify_with(
        silent.local_addr().expect("addr"),
        &zone_config(),
        1,
        None,
        &options,
    )
    .await;
    assert!(matches!(r, Err(Error::NoAnswer { tries: 3, .. })), "{r:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(350),
        "50 + 100 + 200 ms"
    );
}

#[test]
fn config_is_checked() {
    let mut c = PrimaryConfig::new(zone_config());
    c.zone.zone = "bad..zone".into();
    assert!(
        tapis_dns::Primary::new(c, MemoryZone::new(1, Vec::<tapis_dns::Record>::new())).is_err()
    );
    assert!(TsigKey::new("k", "hmac-md5", SECRET).is_err());
    assert!(TsigKey::new("k", "hmac-sha256", "not base64!").is_err());
    assert!(TsigKey::new("k", "hmac-sha256", "").is_err());
}

#[tokio::test]
async fn the_primary_reports_what_secondaries_do() {
    let zone = Arc::new(MemoryZone::new(4, zone_records(300)));
    let s = start(default_config(), zone.clone()).await;
    let mut seen = s.primary.observe();
    let k = key();
    let key_name = Some("tapis-xfr".to_owned());

    // a signed SOA poll, an unsigned one
    let (q, _) = signed(query(1, ZONE, rtype::SOA, None), &k, None);
    udp(s.addr, &q).await.expect("answer");
    udp(s.addr, &query(2, ZONE, rtype::SOA, None))
        .await
        .expect("answer");
    // a full transfer, then an IXFR from a secondary already current,
    // then a real IXFR after a change
    let (q, v) = signed(query(3, ZONE, rtype::AXFR, None), &k, None);
    transfer(s.addr, &q, Some(v)).await;
    let (q, v) = signed(query(4, ZONE, rtype::IXFR, Some(4)), &k, None);
    transfer(s.addr, &q, Some(v)).await;
    zone.apply([], [("new.example".to_owned(), OrderAction::Nxdomain)]);
    let (q, v) = signed(query(5, ZONE, rtype::IXFR, Some(4)), &k, None);
    transfer(s.addr, &q, Some(v)).await;
    // refused: no observation
    tcp(s.addr, &query(6, ZONE, rtype::AXFR, None))
        .await
        .expect("refusal");

    let mut got = Vec::new();
    while got.len() < 5 {
        let o = tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .expect("an observation in time")
            .expect("channel open");
        got.push(o);
    }
    let local: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
    // a signed, complete transfer: kind, serial asked from, serial sent
    let signed_transfer = |kind, from, serial| {
        let complete = true;
        let event = Observed::Transfer {
            kind,
            from,
            serial,
            complete,
        };
        (key_name.clone(), event)
    };
    let want = [
        (key_name.clone(), Observed::SoaPoll { serial: 4 }),
        (None, Observed::SoaPoll { serial: 4 }),
        signed_transfer("AXFR", None, 4),
        signed_transfer("IXFR", Some(4), 4),
        signed_transfer("IXFR", Some(4), 5),
    ];
    // (a transfer is reported after its last message is written, so the
    // next request can overtake it: compare as sets)
    assert!(got.iter().all(|o| o.peer == local), "{got:?}");
    let mut got: Vec<String> = got
        .iter()
        .map(|o| format!("{:?}", (&o.key, &o.event)))
        .collect();
    let mut want: Vec<String> = want.iter().map(|w| format!("{w:?}")).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Quiescence by a fact, not a pause: an SOA poll sent after the
    // refusal was answered is the next observation, so nothing was
    // reported for the refused transfer.
    udp(s.addr, &query(8, ZONE, rtype::SOA, None))
        .await
        .expect("answer");
    let next = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("an observation in time")
        .expect("channel open");
    assert_eq!(
        (next.key, next.event),
        (None, Observed::SoaPoll { serial: 5 }),
        "a refused transfer is not observed"
    );
    assert!(seen.try_recv().is_err(), "nothing else was observed");
}

/// TXT record data as the tests read it (`Rec::data` holds the bytes'
/// debug form).
fn txt_of(text: &str) -> String {
    let mut d = vec![text.len() as u8];
    d.extend_from_slice(text.as_bytes());
    format!("{d:?}")
}

#[tokio::test]
async fn explanations_travel_with_their_records() {
    let why = |r: &str| tapis_dns::explanation_text(r, tapis_dns::BlockKind::Censored);
    let zone = Arc::new(MemoryZone::new(
        1,
        vec![
            tapis_dns::Record::new("judi.example", OrderAction::Nxdomain).explained(why("ORD-1")),
            tapis_dns::Record::new("*.judi.example", OrderAction::Nxdomain).explained(why("ORD-1")),
            tapis_dns::Record::new("ok.judi.example", OrderAction::Passthru),
        ],
    ));
    let s = start(default_config(), zone.clone()).await;
    let k = key();
    let (q, v) = signed(query(1, ZONE, rtype::AXFR, None), &k, None);
    let recs = all_answers(&transfer(s.addr, &q, Some(v)).await);
    let txts: Vec<(String, String)> = recs
        .iter()
        .filter(|r| r.rtype == rtype::TXT)
        .map(|r| (r.owner.clone(), r.data.clone()))
        .collect();
    assert_eq!(
        txts,
        [
            (
                format!("*.judi.example._tapis.{ZONE}"),
                txt_of("ref=ORD-1 cat=censored")
            ),
            (
                format!("judi.example._tapis.{ZONE}"),
                txt_of("ref=ORD-1 cat=censored")
            ),
        ],
        "one TXT per explained record, none for the exception"
    );
    assert_eq!(recs.iter().filter(|r| r.rtype == rtype::CNAME).count(), 3);

    // another order takes over the name with the same action: the CNAME is
    // the same, the explanation changes, and IXFR carries both sides
    zone.apply(
        [],
        [tapis_dns::Record::new("judi.example", OrderAction::Nxdomain).explained(why("ORD-2"))],
    );
    let (q, v) = signed(query(2, ZONE, rtype::IXFR, Some(1)), &k, None);
    let recs = all_answers(&transfer(s.addr, &q, Some(v)).await);
    let txts: Vec<&str> = recs
        .iter()
        .filter(|r| r.rtype == rtype::TXT)
        .map(|r| r.data.as_str())
        .collect();
    assert_eq!(
        txts,
        [
            txt_of("ref=ORD-1 cat=censored"),
            txt_of("ref=ORD-2 cat=censored")
        ],
        "deleted with the old record, added with the new: {recs:?}"
    );
}
