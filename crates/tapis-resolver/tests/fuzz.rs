//! Property tests on the packet path: whatever bytes arrive, the handler
//! does not panic; what it sends is a well-formed response to the same id
//! that fits the client's UDP size; it drops only what it must. Inputs are
//! random bytes and mutations of valid queries (EDNS, policy names, NOTIFY).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

mod common;

use common::{file_zone, runtime, wait_for};
use proptest::prelude::*;
use tapis_dns::wire::{
    Header, Message, MessageBuilder, Name, Question, Rcode, class, flags, rtype,
};
use tapis_resolver::server::{Step, Transport};
use tapis_resolver::{Config, Running};

struct Env {
    _rt: tokio::runtime::Runtime,
    running: Running,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let rt = runtime(1);
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("z.rpz");
        std::fs::write(
            &f,
            "$TTL 60\n@ SOA a. b. 1 60 60 60 60\nnx.test CNAME .\nnd.test CNAME *.\ndrop.test CNAME rpz-drop.\ntcp.test CNAME rpz-tcp-only.\nloc.test TXT \"x\"\nloc.test A 1.2.3.4\ng.test CNAME *.garden.test.\n*.w.test CNAME .\nnx.test._tapis TXT \"ref=R-1 cat=filtered\"\n",
        )
        .expect("zone");
        // the upstream is never reached: the property only runs the fast path
        let cfg = Config {
            listen: "127.0.0.1:0".parse().expect("a"),
            data_dir: dir.path().join("d"),
            threads: 1,
            upstreams: vec!["127.0.0.1:9".parse().expect("a")],
            lookup_url: Some("https://x.example/l".into()),
            zones: vec![file_zone("rpz.fuzz", &f, 1)],
            ..Config::default()
        };
        let running = rt.block_on(tapis_resolver::start(cfg)).expect("start");
        wait_for(Duration::from_secs(10), "the zone to load", || {
            running.policies().zone(0).is_some_and(|z| !z.is_empty())
        });
        Env {
            _rt: rt,
            running,
            _dir: dir,
        }
    })
}

fn check(bytes: &[u8], transport: Transport) {
    let e = env();
    let peer: SocketAddr = "127.0.0.1:5353".parse().expect("peer");
    let mut out = Vec::new();
    let step = e.running.handler.handle(bytes, peer, transport, &mut out);
    let request = Header::parse(bytes);
    match step {
        Step::Reply => {
            let req = request.expect("answers only readable headers");
            assert!(!req.is_response(), "a response was answered");
            let m = Message::parse(&out).expect("the answer parses");
            assert!(m.header.is_response());
            assert_eq!(m.header.id, req.id);
            assert_eq!(m.header.opcode(), req.opcode());
            if transport == Transport::Udp {
                assert!(out.len() <= 1232, "UDP answer of {} octets", out.len());
                let parsed = tapis_resolver::packet::Query::parse(bytes).ok();
                if let Some(q) = parsed {
                    assert!(out.len() <= q.udp_limit(1232));
                }
            }
        }
        Step::Drop => {
            let ok = request.is_none_or(|h| h.is_response())
                || tapis_resolver::packet::Query::parse(bytes)
                    .is_ok_and(|q| q.qname_lower().ends_with(b"\x04drop\x04test\x00"));
            assert!(ok, "dropped a query of {} octets", bytes.len());
        }
        Step::Forward(_) | Step::Chase(_) => {
            assert!(tapis_resolver::packet::Query::parse(bytes).is_ok());
        }
    }
}

fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut b = MessageBuilder::new(0x4242, flags::RD);
    b.question(&Question {
        name: Name::from_ascii(name).expect("n"),
        qtype,
        qclass: class::IN,
    });
    if let Some(s) = edns {
        b.opt(s, Rcode::NOERROR);
    }
    b.finish()
}

fn seeds() -> Vec<Vec<u8>> {
    let mut notify = query("rpz.fuzz", rtype::SOA, None);
    notify[2] = 4 << 3;
    vec![
        query("nx.test", rtype::A, Some(4096)),
        query("nd.test", rtype::AAAA, Some(512)),
        query("drop.test", rtype::A, None),
        query("tcp.test", rtype::A, Some(1232)),
        query("loc.test", rtype::ANY, Some(1232)),
        query("g.test", rtype::A, None),
        query("a.b.w.test", rtype::TXT, Some(600)),
        query("www.example", rtype::A, None),
        notify,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(&bytes, Transport::Udp);
        check(&bytes, Transport::Tcp);
    }

    #[test]
    fn mutated_queries_never_panic(
        seed in 0usize..9,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        extend in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut b = seeds()[seed].clone();
        for (at, v) in edits {
            let i = at % b.len();
            b[i] = v;
        }
        if cut % 3 == 0 {
            b.truncate(cut % (b.len() + 1));
        }
        b.extend_from_slice(&extend);
        check(&b, Transport::Udp);
        check(&b, Transport::Tcp);
    }
}

#[test]
fn every_seed_is_answered_as_expected() {
    // the seeds themselves: the properties start from meaningful queries
    for s in seeds() {
        check(&s, Transport::Udp);
    }
    let e = env();
    let mut out = Vec::new();
    let peer: SocketAddr = "127.0.0.1:5353".parse().expect("peer");
    let step = e
        .running
        .handler
        .handle(&seeds()[0], peer, Transport::Udp, &mut out);
    assert!(matches!(step, Step::Reply));
    assert_eq!(out[3] & 0xF, 3, "NXDOMAIN");
}
