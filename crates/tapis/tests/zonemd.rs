//! Each RPZ serial's digest (ZONEMD, RFC 8976) is logged, against the real
//! `tapis serve`: an order comes into force, the primary computes the new
//! serial's digest before its NOTIFY and logs it as an `rpz.digest` audit
//! event; `GET /api/v1/zone/digests` (no token) lists it with its event
//! and log leaf; the zone-file export carries the same digest in its
//! ZONEMD, which dnspython verifies; `tapis log verify` still holds; and
//! bad query parameters get a 400.
//!
//! Needs `python3` with dnspython (scripts/setup installs it).

mod common;

use std::time::Duration;

use common::*;

const CLOCK: &str = "2017-07-14T11:00:00+07:00";

#[tokio::test]
async fn each_serial_digest_is_logged_public_and_matches_the_zone() {
    let server = serve("", CLOCK);
    let p = Parties::new(&server).await;
    let order = gambling_order(
        "judi.example",
        "nxdomain",
        "2017-07-14T11:30:00+07:00",
        "2017-08-14T11:30:00+07:00",
        "2017-08-10T11:30:00+07:00",
    );
    p.approve(&server, order).await;
    server.advance(30 * 60).await;
    let listed = wait_until_async(
        Duration::from_secs(30),
        "the serial's digest to be logged",
        || async {
            let (s, v) = server
                .call("GET", "/api/v1/zone/digests?since_serial=0", None, None)
                .await;
            match v["digests"].as_array() {
                Some(d) if s == 200 && !d.is_empty() => Ok(v),
                _ => Err(v),
            }
        },
    )
    .await;
    let d = &listed["digests"][0];
    assert_eq!(d["serial"], 1, "{listed}");
    assert_eq!(d["scheme"], 1);
    assert_eq!(d["algorithm"], 1);
    let digest = d["digest"].as_str().expect("digest").to_owned();
    assert_eq!(digest.len(), 96);
    assert_eq!(d["event"]["action"], "rpz.digest");
    assert_eq!(d["event"]["after"]["digest"], digest.as_str());
    assert_eq!(d["event"]["after"]["serial"], 1);
    assert!(d["leaf"]["salt"].as_str().is_some_and(|s| s.len() == 64));
    assert_eq!(
        d["leaf"]["leaf_index"],
        d["event"]["seq"].as_i64().expect("seq") - 1
    );

    // the export's ZONEMD is the logged digest, and dnspython verifies it
    let (s, rpz, _) = server
        .text("/api/v1/blocklist.rpz", &p.isp_token, None)
        .await;
    assert_eq!(s, 200);
    assert!(rpz.contains(&format!("@ ZONEMD 1 1 1 {digest}\n")), "{rpz}");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("rpz.zone");
    std::fs::write(&file, &rpz).expect("zone");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys, dns.zone\nz = dns.zone.from_file(sys.argv[1], relativize=False)\nz.verify_digest()")
        .arg(&file)
        .output()
        .expect("python3 with dnspython");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // paging and bounds
    let (s, v) = server
        .call("GET", "/api/v1/zone/digests?since_serial=1", None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["digests"].as_array().map(Vec::len), Some(0), "{v}");
    for bad in ["since_serial=-1", "since_serial=x", "limit=70000"] {
        let (s, v) = server
            .call("GET", &format!("/api/v1/zone/digests?{bad}"), None, None)
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
}
