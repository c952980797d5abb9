//! Property tests: whatever bytes arrive, the message handler does not
//! panic, and whatever it sends back is a well-formed response to the same
//! id. Inputs are random bytes and mutations of valid queries (plain,
//! signed, EDNS, IXFR, NOTIFY). Names survive compression round trips.

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use proptest::prelude::*;
use tapis_dns::wire::{
    Header, Message, MessageBuilder, Name, Rcode, Rdata, Section, class, flags, opcode, rtype,
};
use tapis_dns::{MemoryZone, Primary, Reply, Transport};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn primary() -> &'static Primary<Arc<MemoryZone>> {
    static P: OnceLock<Primary<Arc<MemoryZone>>> = OnceLock::new();
    P.get_or_init(|| {
        let zone = Arc::new(MemoryZone::new(5, zone_records(300)));
        zone.apply(
            [],
            [("x.example".to_owned(), tapis_core::order::OrderAction::Drop)],
        );
        let mut c = default_config();
        c.allow_unsigned_transfer =
            vec![tapis_dns::IpNet::parse("allow", "127.0.0.1").expect("net")];
        Primary::new(c, zone).expect("primary")
    })
}

/// Runs the handler and checks what comes out.
fn check(bytes: &[u8], transport: Transport) {
    let peer = "127.0.0.1:5353".parse().expect("peer");
    let reply = runtime().block_on(primary().respond(bytes, peer, transport));
    let request = Header::parse(bytes);
    let mut messages = Vec::new();
    match reply {
        Reply::Drop => {
            assert!(
                request.is_none_or(|h| h.is_response()),
                "a query was dropped"
            );
        }
        Reply::Message(m) => messages.push(m),
        Reply::Transfer(mut t) => runtime().block_on(async {
            while let Some(m) = t.next_message().await {
                messages.push(m);
                assert!(messages.len() <= 10_000, "a transfer that never ends");
            }
        }),
    }
    for m in messages {
        let parsed = Message::parse(&m).expect("the answer parses");
        let req = request.expect("answers only to readable headers");
        assert!(parsed.header.is_response());
        assert_eq!(parsed.header.id, req.id);
        assert_eq!(parsed.header.opcode(), req.opcode());
        assert!(m.len() <= 16 * 1024);
        if transport == Transport::Udp {
            assert!(m.len() <= 1232, "UDP answer of {} octets", m.len());
        }
    }
}

fn seeds() -> &'static Vec<Vec<u8>> {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        let k = key();
        let mut v = vec![
            query(1, ZONE, rtype::SOA, None),
            query(2, ZONE, rtype::AXFR, None),
            query(3, ZONE, rtype::IXFR, Some(5)),
            query(4, ZONE, rtype::IXFR, Some(1)),
            signed(query(5, ZONE, rtype::AXFR, None), &k, None).0,
            signed(query(6, ZONE, rtype::IXFR, Some(5)), &k, None).0,
            signed(query(7, ZONE, rtype::SOA, None), &k, None).0,
            query(8, "judi.example.rpz.tapis.", rtype::CNAME, None),
        ];
        let mut b = MessageBuilder::new(9, 0);
        b.question(&tapis_dns::wire::Question {
            name: Name::from_ascii(ZONE).expect("n"),
            qtype: rtype::SOA,
            qclass: class::IN,
        });
        b.opt(4096, Rcode::NOERROR);
        v.push(signed(b.finish(), &k, None).0);
        let mut n = MessageBuilder::new(10, (u16::from(opcode::NOTIFY) << 11) | flags::AA);
        n.question(&tapis_dns::wire::Question {
            name: Name::from_ascii(ZONE).expect("n"),
            qtype: rtype::SOA,
            qclass: class::IN,
        });
        v.push(n.finish());
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Xor(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 1u8..).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut m: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for mu in muts {
        if m.is_empty() {
            break;
        }
        let len = m.len();
        match mu {
            Mutation::Set(i, b) => m[i % len] = *b,
            Mutation::Xor(i, b) => m[i % len] ^= *b,
            Mutation::Insert(i, b) => {
                let at = i % (len + 1);
                m.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i % len;
                let end = (at + n).min(len);
                m.drain(at..end);
            }
            Mutation::Truncate(i) => m.truncate(i % (len + 1)),
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), tcp in any::<bool>()) {
        check(&bytes, if tcp { Transport::Tcp } else { Transport::Udp });
    }

    #[test]
    fn random_bytes_after_a_plausible_header_never_panic(
        id in any::<u16>(),
        op in 0u8..16,
        counts in prop::array::uniform4(0u16..4),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&(u16::from(op) << 11).to_be_bytes());
        for c in counts {
            m.extend_from_slice(&c.to_be_bytes());
        }
        m.extend_from_slice(&body);
        check(&m, Transport::Tcp);
        check(&m, Transport::Udp);
    }

    #[test]
    fn mutated_queries_never_panic(
        seed in 0usize..10,
        muts in prop::collection::vec(mutation(), 1..6),
        tcp in any::<bool>(),
    ) {
        let seeds = seeds();
        let m = mutate(seeds[seed % seeds.len()].clone(), &muts);
        check(&m, if tcp { Transport::Tcp } else { Transport::Udp });
    }

    #[test]
    fn names_survive_compression(
        labels in prop::collection::vec(prop::collection::vec("[a-z0-9*_-]{1,20}", 1..5), 1..20),
    ) {
        let zone = Name::from_ascii(ZONE).expect("zone");
        let names: Vec<Name> = labels
            .iter()
            .map(|l| Name::relative_to(&l.join("."), &zone).expect("name"))
            .collect();
        let mut b = MessageBuilder::new(1, flags::QR);
        for (i, n) in names.iter().enumerate() {
            let target = &names[(i * 7) % names.len()];
            b.record(Section::Answer, n, rtype::CNAME, class::IN, 60, Rdata::Cname(target));
        }
        let bytes = b.finish();
        let m = Message::parse(&bytes).expect("parse");
        for (i, r) in m.answers.iter().enumerate() {
            prop_assert_eq!(&r.name, &names[i]);
            let t = tapis_dns::wire::parse_name_rdata(&bytes, r.rdata.clone()).expect("target");
            prop_assert_eq!(&t, &names[(i * 7) % names.len()]);
        }
    }
}

#[test]
fn the_seeds_are_valid_and_answered() {
    for (i, s) in seeds().iter().enumerate() {
        Message::parse(s).unwrap_or_else(|e| panic!("seed {i}: {e}"));
        check(s, Transport::Tcp);
    }
}
