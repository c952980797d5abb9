//! `tapis resolver` as an operator runs it: the real binary with a config
//! file and flags, a policy zone file, metrics, the query log (without
//! client addresses), and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapis_dns::wire::{Message, MessageBuilder, Name, Question, Rcode, class, flags, rtype};

const BIN: &str = env!("CARGO_BIN_EXE_tapis");

fn ask(server: &str, name: &str) -> Option<(u16, Vec<u8>)> {
    let mut b = MessageBuilder::new(0x5151, flags::RD);
    b.question(&Question {
        name: Name::from_ascii(name).expect("n"),
        qtype: rtype::A,
        qclass: class::IN,
    });
    b.opt(1232, Rcode::NOERROR);
    let q = b.finish();
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(2))).expect("t");
    s.send_to(&q, server).expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    let m = Message::parse(&buf[..n]).expect("parse");
    let opt = m.additional.iter().find(|r| r.rtype == rtype::OPT)?;
    Some((m.header.flags & 0xF, m.rdata(opt).to_vec()))
}

#[test]
fn help_explains_the_resolver() {
    let out = Command::new(BIN)
        .args(["resolver", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Response",
        "--upstream",
        "--zone",
        "TSIG",
        "IXFR",
        "--query-log-client-ip",
        "Extended DNS Error",
        "allow_query",
        "--allow-query",
        "--max-upstream-queries",
        "--max-tcp-clients",
        "--rate-limit",
        "rate_limit_slip",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
    // The examples never advertise an open resolver: a public listen
    // address only with the clients' networks beside it.
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("0.0.0.0:53") {
            let near = lines[i..(i + 2).min(lines.len())].join("\n");
            assert!(
                near.contains("allow_query") || near.contains("--allow-query"),
                "a public listen address without allow_query in --help:\n{near}"
            );
        }
    }
    let out = Command::new(BIN)
        .args(["resolver", "--zone", "x"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("upstream") || err.contains("--zone"), "{err}");
}

#[test]
fn serves_a_zone_file_logs_without_addresses_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("orders.rpz"),
        "$TTL 60\n@ SOA ns. admin. 3 60 60 600 60\njudi.example CNAME .\njudi.example._tapis TXT \"ref=ORD-7 cat=blocked\"\n",
    )
    .expect("zone");
    // an upstream that never answers: only policy answers are asked for
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    std::fs::write(
        dir.path().join("resolver.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\nupstreams = [\"{}\"]\nmetrics_listen = \"127.0.0.1:0\"\nthreads = 1\n[[zone]]\nname = \"rpz.orders\"\nfile = \"{}\"\n",
            silent.local_addr().expect("a"),
            dir.path().join("orders.rpz").display()
        ),
    )
    .expect("config");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path().join("resolver.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "resolver",
            "--query-log",
            "--lookup-url",
            "https://tapis.example/block",
        ])
        .env("TAPIS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("line");
    let rest = line
        .strip_prefix("tapis resolver listening on ")
        .unwrap_or_else(|| panic!("{line}"));
    let addr = rest.split_whitespace().next().expect("addr").to_owned();
    let metrics = rest
        .split("http://")
        .nth(1)
        .expect("metrics")
        .split('/')
        .next()
        .expect("m")
        .to_owned();
    let start = Instant::now();
    let (rcode, opt) = loop {
        if let Some((r, o)) = ask(&addr, "judi.example")
            && r == 3
        {
            break (r, o);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "zone never enforced"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rcode, 3);
    // EDE 15 with the order and the lookup link
    assert_eq!(&opt[..2], &[0, 15]);
    let text = String::from_utf8_lossy(&opt[6..]).into_owned();
    assert_eq!(
        text,
        "ORD-7; see https://tapis.example/block?name=judi.example"
    );

    let mut m = std::net::TcpStream::connect(&metrics).expect("metrics");
    std::io::Write::write_all(&mut m, b"GET /metrics HTTP/1.1\r\n\r\n").expect("w");
    let mut body = String::new();
    m.read_to_string(&mut body).expect("r");
    assert!(
        body.contains("tapis_resolver_policy_hits_total{zone=\"rpz.orders.\",action=\"nxdomain\"}"),
        "{body}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(
        log.contains("judi.example"),
        "the query log names the query:\n{log}"
    );
    assert!(log.contains("policy-nxdomain"), "{log}");
    assert!(!log.contains("client="), "no client address:\n{log}");
}
