//! What `dig` (Debian's bind9-dnsutils) says about a name: the one DNS
//! client the end-to-end tests share, so a resolver is judged the way an
//! operator would judge it.

use std::process::Command;

use crate::tool;

/// `dig @127.0.0.1 -p port name qtype` (one try, two seconds) with
/// `extra` options; its standard output.
pub fn dig(port: u16, name: &str, qtype: &str, extra: &[&str]) -> String {
    let out = Command::new(tool("dig"))
        .args(["@127.0.0.1", "-p", &port.to_string(), name, qtype])
        .args(["+tries=1", "+time=2"])
        .args(extra)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DNS status the server on `port` gives for `name`'s A record
/// (`NOERROR`, `NXDOMAIN`, …; `NO ANSWER` when none came).
pub fn status(port: u16, name: &str) -> String {
    let text = dig(port, name, "A", &["+noall", "+comments"]);
    text.split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_owned()
}

/// The A records the server on `port` gives for `name`, one a line.
pub fn addresses(port: u16, name: &str) -> String {
    dig(port, name, "A", &["+short"]).trim().to_owned()
}

/// The SOA serial of `zone` on the server at `port`, if it answers.
pub fn soa_serial(port: u16, zone: &str) -> Option<u32> {
    dig(port, zone, "SOA", &["+short"])
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
}
