//! An ISP rotates its TSIG key against the real `tapis serve`, on both
//! backends, judged by `dig -y` transfers from the running primary: the
//! old key keeps transferring through its grace beside the new one, stops
//! when the grace ends (simulated clock) or when the ISP retires it, and
//! only the ISP itself may rotate (the admin 403, another ISP 404).
//! Needs `dig` (scripts/setup installs it).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tapis_store::testing::{TestDb, backends};

const CLOCK: &str = "2026-03-02T09:00:00+07:00";

/// `dig -y` AXFR of the zone with (name, secret); its whole output.
fn axfr(port: u16, key: &(String, String)) -> String {
    let y = format!("hmac-sha256:{}:{}", key.0.trim_end_matches('.'), key.1);
    let out = std::process::Command::new(tool("dig"))
        .args(["@127.0.0.1", "-p", &port.to_string(), "rpz.tapis.", "AXFR"])
        .args(["+tries=1", "+time=2", "-y", &y])
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn transfers(out: &str) -> bool {
    out.contains("XFR size:") && !out.contains("Transfer failed")
}

fn wait_transfers(port: u16, key: &(String, String), want: bool, what: &str) {
    wait_until(Duration::from_secs(20), what, || {
        let out = axfr(port, key);
        if transfers(&out) == want {
            Ok(out)
        } else {
            Err(out)
        }
    });
}

async fn story(backend: tapis_store::Backend) {
    let db = TestDb::new(backend).await;
    let server = server()
        .database_url(&db.url)
        .simulated_clock(CLOCK)
        // secrets sealed at rest: the previous key moves column sealed
        .env(
            "TAPIS_SECRETS_KEY",
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
        )
        .config("[rpz]\ntsig_grace_hours = 2\n")
        .start();
    let port = server.dns_port;
    let p = Parties::new(&server).await;
    let k1 = p
        .register(
            &server,
            json!({"resolvers": [], "notify": [], "allow_transfer_from": []}),
        )
        .await;
    wait_transfers(port, &k1, true, "the first key to transfer");
    let stranger = (
        k1.0.clone(),
        "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=".to_owned(),
    );
    assert!(
        !transfers(&axfr(port, &stranger)),
        "a wrong secret is refused"
    );

    // only the ISP itself: the admin and the authority's officer 403,
    // another ISP's operator 404, the party's id checked
    let rotate = format!("/api/v1/parties/{}/tsig-key/rotate", p.isp);
    let other = server.party("isp", "OtherNet").await;
    let other_token = server.token(&other, "isp_operator").await;
    for (token, want) in [
        (ADMIN, 403),
        (p.officer.as_str(), 403),
        (other_token.as_str(), 404),
    ] {
        let (s, v) = server.post(&rotate, token, json!({})).await;
        assert_eq!(s.as_u16(), want, "{v}");
    }
    let (s, v) = server
        .post(
            "/api/v1/parties/not-an-id/tsig-key/rotate",
            &p.isp_token,
            json!({}),
        )
        .await;
    assert_eq!(s.as_u16(), 400, "{v}");
    // the other ISP has no resolvers yet: nothing to rotate, said so
    let (s, v) = server
        .post(
            &format!("/api/v1/parties/{other}/tsig-key/rotate"),
            &other_token,
            json!({}),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");

    // the ISP rotates: a new name and secret, shown once, not cached
    let resp = reqwest::Client::new()
        .post(format!("{}{rotate}", server.base()))
        .bearer_auth(&p.isp_token)
        .send()
        .await
        .expect("rotate");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap_or("")),
        Some("no-store")
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    let k2 = (
        v["tsig_key_name"].as_str().expect("name").to_owned(),
        v["tsig_secret"].as_str().expect("secret").to_owned(),
    );
    assert_ne!(k2.0, k1.0, "a new key name");
    assert_ne!(k2.1, k1.1, "a new secret");
    assert_eq!(
        v["previous_tsig_key_name"].as_str(),
        Some(k1.0.as_str()),
        "{v}"
    );
    assert_eq!(v["key_generation"], 2, "{v}");
    let until = v["previous_valid_until"]
        .as_str()
        .expect("until")
        .to_owned();
    // the settings never show a secret again
    let (_, r) = server
        .get(
            &format!("/api/v1/parties/{}/resolvers", p.isp),
            &p.isp_token,
        )
        .await;
    assert!(
        r.get("tsig_secret").is_none() && !r.to_string().contains(&k2.1),
        "{r}"
    );
    assert_eq!(
        r["previous_valid_until"].as_str(),
        Some(until.as_str()),
        "{r}"
    );

    // both keys transfer during the grace
    wait_transfers(port, &k2, true, "the new key to transfer");
    assert!(
        transfers(&axfr(port, &k1)),
        "the old key still works in its grace"
    );

    // the grace ends: the old key is refused, the new one still works
    server.advance(2 * 3600 + 1).await;
    wait_transfers(port, &k1, false, "the old key refused after its grace");
    let out = axfr(port, &k1);
    assert!(
        out.contains("BADKEY") || out.contains("NOTAUTH") || out.contains("failed"),
        "{out}"
    );
    assert!(transfers(&axfr(port, &k2)), "the new key still works");
    let (_, r) = server
        .get(
            &format!("/api/v1/parties/{}/resolvers", p.isp),
            &p.isp_token,
        )
        .await;
    assert!(
        r["previous_tsig_key_name"].is_null(),
        "an expired key is not shown: {r}"
    );

    // nothing to retire now
    let retire = format!("/api/v1/parties/{}/tsig-key/previous", p.isp);
    let (s, v) = server
        .call("DELETE", &retire, Some(&p.isp_token), None)
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");

    // rotate again, then retire the previous key at once
    let (s, v) = server.post(&rotate, &p.isp_token, json!({})).await;
    assert_eq!(s.as_u16(), 200, "{v}");
    let k3 = (
        v["tsig_key_name"].as_str().expect("name").to_owned(),
        v["tsig_secret"].as_str().expect("secret").to_owned(),
    );
    assert_eq!(
        v["previous_tsig_key_name"].as_str(),
        Some(k2.0.as_str()),
        "{v}"
    );
    wait_transfers(port, &k3, true, "the third key to transfer");
    assert!(transfers(&axfr(port, &k2)), "the second key in its grace");
    for (token, want) in [(ADMIN, 403), (other_token.as_str(), 404)] {
        let (s, v) = server.call("DELETE", &retire, Some(token), None).await;
        assert_eq!(s.as_u16(), want, "{v}");
    }
    let (s, v) = server
        .call("DELETE", &retire, Some(&p.isp_token), None)
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    assert!(v["previous_tsig_key_name"].is_null(), "{v}");
    wait_transfers(port, &k2, false, "the retired key refused");
    assert!(transfers(&axfr(port, &k3)), "the current key still works");
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isp_rotates_its_tsig_key_without_a_flag_day() {
    for b in backends() {
        story(b).await;
    }
}
