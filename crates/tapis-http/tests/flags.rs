//! Flags over real HTTP, on every backend: two agencies and a member of the
//! public flag the same channel (spelt differently); the officer sees one
//! queue entry with three sources and accepts it into one notice to the
//! platform that registered the domain; the platform removes the item;
//! each flagger sees the outcome, the public reporter by reference, and
//! nobody sees anyone else's flags or the reporter's contact. A flood from
//! one public address is throttled while another address's report lands;
//! one agency's flood does not push another agency off the first page;
//! bad input gets a precise 4xx.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CHANNEL: &str = "https://t.me/s/jihad_channel";

fn flag(kind: &str, value: &str, category: &str) -> Value {
    json!({
        "targets": [{"kind": kind, "value": value}],
        "category": category,
        "reasons": "recruitment posts and execution videos",
        "evidence": [{"sha256": "ab".repeat(32), "description": "screenshot of the pinned post"}],
    })
}

fn ids(v: &Value) -> Vec<String> {
    v["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A public report with a solved proof-of-work challenge.
async fn report(api: &Api, body: Value) -> (StatusCode, Value) {
    let (s, c) = api
        .call("GET", "/api/v1/public/challenge", None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let challenge = c["challenge"].as_str().expect("challenge").to_owned();
    let counter = tapis_core::pow::solve(&challenge).expect("solvable");
    let resp = api
        .client
        .post(format!("{}/api/v1/public/flags", api.base))
        .header("Tapis-Challenge", &challenge)
        .header("Tapis-Proof", counter.to_string())
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.expect("json"))
}

/// An API client whose requests come from another loopback address.
fn from_address(app: &App, ip: [u8; 4]) -> Api {
    Api {
        base: app.base.clone(),
        client: reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client"),
    }
}

async fn three_sources_one_notice(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app
        .party_with(
            &app.admin,
            json!({"kind": "platform", "name": "Telegram", "domains": ["t.me", "telegram.org"]}),
        )
        .await;
    let agency = app.party("flagger", "Counter-terrorism agency").await;
    let police = app.party("flagger", "National police").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let agency_t = app.token(&agency, "flagger").await;
    let police_t = app.token(&police, "flagger").await;
    let agent = app.token(&platform, "platform_agent").await;

    // two agencies, the same channel spelt two ways; the police retries
    let (s, a) = app
        .post(
            "/api/v1/flags",
            &agency_t,
            json!({"flags": [flag("url", CHANNEL, "terrorism")]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["flags"][0]["targets"][0]["normalized"], CHANNEL);
    let body = json!({"flags": [flag("url", "HTTPS://T.ME/s/jihad_channel#latest", "terrorism")]});
    let (s, p) = app
        .call("POST", "/api/v1/flags", Some(&police_t), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let idem = |body: Value| {
        app.client
            .post(format!("{}/api/v1/flags", app.base))
            .bearer_auth(&police_t)
            .header("Idempotency-Key", "police-batch-1")
            .json(&body)
            .send()
    };
    let first = idem(body.clone()).await.expect("send");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let again = idem(body.clone()).await.expect("send");
    assert_eq!(again.status(), StatusCode::OK, "a repeat is not a new flag");
    let again: Value = again.json().await.expect("json");
    assert_eq!(ids(&first), ids(&again));
    let other = idem(json!({"flags": [flag("domain", "other.example", "fraud")]}))
        .await
        .expect("send");
    assert_eq!(other.status(), StatusCode::CONFLICT);
    // the retried batch was the same report: reject it as a duplicate
    let (s, v) = app
        .post(
            "/api/v1/flags/reject",
            &officer,
            json!({"flag_ids": ids(&first), "reason": "sent twice"}),
        )
        .await;
    assert_eq!(
        (s, v["flags"][0]["state"].as_str()),
        (StatusCode::OK, Some("rejected")),
        "{v}"
    );

    // a member of the public, no account, with a contact address
    let mut report_body = flag(
        "platform_channel",
        "https://t.me/s/jihad_channel",
        "terrorism",
    );
    report_body["targets"][0]["kind"] = json!("url");
    report_body["contact"] = json!("worried.parent@example.org");
    let (s, public) = report(&app, report_body).await;
    assert_eq!(s, StatusCode::CREATED, "{public}");
    let reference = public["reference"].as_str().expect("reference").to_owned();
    assert_eq!(public["state"], "received");
    assert!(public.get("contact").is_none(), "{public}");

    // one entry, three independent sources, the platform inferred
    let queue = app.get_ok("/api/v1/flags/queue", &officer).await;
    let entries = queue.as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{queue}");
    let e = &entries[0];
    assert_eq!(e["normalized"], CHANNEL);
    assert_eq!(e["independent_sources"], 3, "{e}");
    assert_eq!(e["platform_id"], platform.as_str());
    let kinds: Vec<&str> = e["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["source_kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "public").count(), 1);
    assert!(!queue.to_string().contains("worried.parent"), "{queue}");
    let flag_ids: Vec<Value> = e["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["flag_id"].clone())
        .collect();

    // the authority's own queue health: three waiting, one review so far
    let health = app.get_ok("/api/v1/flags/queue/health", &officer).await;
    assert_eq!(health["waiting"], 3, "{health}");
    assert_eq!(health["oldest_waiting_secs"], 0, "the clock has not moved");
    assert_eq!(health["reviewers"][0]["reviews"], 1, "{health}");
    assert_eq!(health["reviewers"][0]["person"], "officer test");

    // only officers review; a flagger cannot read the queue
    let (s, v) = app.get("/api/v1/flags/queue", &agency_t).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = app.get("/api/v1/flags/queue/health", &agency_t).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");

    // accepted into one notice, through the notices' own path
    let accept = json!({
        "flag_ids": flag_ids,
        "urgency": "urgent",
        "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "The government prevents dissemination of unlawful content."},
        "explanation": "Flagged by two agencies and the public",
    });
    let (s, v) = app
        .post("/api/v1/flags/accept", &agency_t, accept.clone())
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, notice) = app
        .post("/api/v1/flags/accept", &officer, accept.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{notice}");
    assert_eq!(notice["platform_id"], platform.as_str());
    assert_eq!(notice["category"], "terrorism");
    assert_eq!(notice["state"], "submitted");
    assert_eq!(
        notice["items"].as_array().map(Vec::len),
        Some(1),
        "{notice}"
    );
    let notice_id = notice["id"].as_str().expect("id").to_owned();
    let item = notice["items"][0]["id"].as_str().expect("item").to_owned();
    let (s, v) = app.post("/api/v1/flags/accept", &officer, accept).await;
    assert_error(s, &v, StatusCode::CONFLICT, "illegal_transition");
    assert_eq!(
        app.get_ok("/api/v1/flags/queue", &officer).await,
        json!([]),
        "nothing left to review"
    );

    // the platform receives it as any notice, names no reporter, removes
    let inbox = app.get_ok("/api/v1/inbox", &agent).await;
    assert_eq!(inbox[0]["id"], notice_id.as_str());
    let seen = app
        .get_ok(&format!("/api/v1/notices/{notice_id}"), &agent)
        .await;
    let text = seen.to_string();
    assert!(
        !text.contains("worried.parent") && !text.contains(&reference),
        "{text}"
    );
    let (s, v) = app
        .post(
            &format!("/api/v1/notices/{notice_id}/items/{item}/decision"),
            &agent,
            json!({"decision": "removed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // each flagger sees its own outcome, and only its own
    for (token, n) in [(&agency_t, 1), (&police_t, 2)] {
        let mine = app.get_ok("/api/v1/flags", token).await;
        let flags = mine["flags"].as_array().expect("flags");
        assert_eq!(flags.len(), n, "{mine}");
        let accepted: Vec<&Value> = flags.iter().filter(|f| f["state"] == "accepted").collect();
        assert_eq!(accepted.len(), 1, "{mine}");
        assert_eq!(accepted[0]["notice_id"], notice_id.as_str());
        assert_eq!(accepted[0]["targets"][0]["decision"], "removed", "{mine}");
        assert!(!mine.to_string().contains("worried.parent"));
    }
    let agency_flag = a["flags"][0]["id"].as_str().expect("id");
    let (s, v) = app
        .get(&format!("/api/v1/flags/{agency_flag}"), &police_t)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, _) = app
        .get(&format!("/api/v1/flags/{agency_flag}"), &agency_t)
        .await;
    assert_eq!(s, StatusCode::OK);
    // the public reporter, by reference only
    let (s, status) = app
        .call(
            "GET",
            &format!("/api/v1/public/flags/{reference}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{status}");
    assert_eq!(status["state"], "accepted");
    assert_eq!(status["targets"][0]["decision"], "removed");
    assert!(status.get("notice_id").is_none() && status.get("party_id").is_none());
    let (s, v) = app
        .call("GET", "/api/v1/public/flags/TF-NOPE", None, None)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");

    // accuracy figures follow: the police sent one report twice
    let report = app
        .get_ok(
            &format!("/api/v1/flaggers/{agency}/report?year=2017"),
            &agency_t,
        )
        .await;
    let f = &report["figures"];
    assert_eq!(
        (
            f["flags"].as_u64(),
            f["accepted"].as_u64(),
            f["items_actioned"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["acceptance_rate"], 1.0);
    assert_eq!(report["platform_action_rate"], 1.0);
    assert_eq!(report["review_needed"], false);
    let report = app
        .get_ok(
            &format!("/api/v1/flaggers/{police}/report?year=2017"),
            &officer,
        )
        .await;
    assert_eq!(report["figures"]["rejected"], 1, "{report}");
    assert_eq!(report["acceptance_rate"], 0.5);
    let (s, v) = app
        .get(&format!("/api/v1/flaggers/{police}/report"), &agency_t)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = app
        .get(
            &format!("/api/v1/flaggers/{agency}/report?year=1900"),
            &agency_t,
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let empty = app
        .get_ok(
            &format!("/api/v1/flaggers/{agency}/report?year=2018"),
            &agency_t,
        )
        .await;
    assert_eq!(empty["figures"]["flags"], 0);
    assert!(empty["acceptance_rate"].is_null());
    // the review is judged over the policy's window ending now, whatever
    // the year asked
    assert_eq!(empty["window"]["figures"]["accepted"], 1, "{empty}");
    assert_eq!(empty["policy"]["window_days"], 365);

    // the authority's own issuers: the officer's notice, its item removed
    let issuers = app
        .get_ok("/api/v1/issuers/report?year=2017", &officer)
        .await;
    let rows = issuers["issuers"].as_array().expect("issuers");
    assert_eq!(rows.len(), 1, "{issuers}");
    assert_eq!(
        (
            rows[0]["notices"].as_u64(),
            rows[0]["items_actioned"].as_u64()
        ),
        (Some(1), Some(1)),
        "{issuers}"
    );
    assert_eq!(rows[0]["platform_action_rate"], 1.0);
    let (s, v) = app.get("/api/v1/issuers/report", &agency_t).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = app.get("/api/v1/issuers/report?year=3000", &officer).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");

    // every decision is on the chain
    let auditor = app.token(&app.authority_id, "auditor").await;
    let (s, v) = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sources_become_one_notice_on_every_backend() {
    for b in backends() {
        three_sources_one_notice(b).await;
    }
}

async fn floods_and_bad_input(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let officer = app.token(&app.authority_id, "officer").await;
    let loud = app.party("flagger", "Loud NGO").await;
    let quiet = app.party("flagger", "Quiet NGO").await;
    let loud_t = app.token(&loud, "flagger").await;
    let quiet_t = app.token(&quiet, "flagger").await;

    // one public address floods: its few reports land, then 429
    let flood = from_address(&app, [127, 0, 0, 3]);
    let mut refused = None;
    for i in 0..20 {
        let (s, v) = report(
            &flood,
            flag("domain", &format!("spam{i}.example"), "gambling"),
        )
        .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, v));
            break;
        }
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (after, v) = refused.expect("a flood from one address is throttled");
    assert!(after >= 1, "the first reports land");
    assert_eq!(v["error"]["code"], "rate_limited");
    // another address is not held back by it
    let neighbour = from_address(&app, [127, 0, 0, 4]);
    let (s, v) = report(&neighbour, flag("domain", "casino.example", "gambling")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // one agency floods the queue with severe flags; the other's single,
    // milder flag is still on the first page
    let batch: Vec<Value> = (0..30)
        .map(|i| flag("domain", &format!("propaganda{i}.example"), "terrorism"))
        .collect();
    let (s, v) = app
        .post("/api/v1/flags", &loud_t, json!({"flags": batch}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/flags",
            &quiet_t,
            json!({"flags": [flag("domain", "fraud.example", "fraud")]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let page = app
        .get_ok("/api/v1/flags/queue?limit=10&per_source=3", &officer)
        .await;
    let targets: Vec<&str> = page
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["normalized"].as_str().expect("target"))
        .collect();
    assert_eq!(targets.len(), 10);
    assert!(targets.contains(&"fraud.example"), "{targets:?}");
    assert!(targets.contains(&"casino.example"), "{targets:?}");
    // severity still leads within the fair share
    assert!(targets[0].starts_with("propaganda"), "{targets:?}");

    // bad input, each with a precise answer
    let bad = [
        (
            json!({"flags": [flag("domain", "x.example", "jaywalking")]}),
            "flags[0].category",
        ),
        (
            json!({"flags": [flag("url", "ftp://files.example/x", "fraud")]}),
            "flags[0].targets[0].value",
        ),
        (
            json!({"flags": [flag("tweet", "x", "fraud")]}),
            "flags[0].targets[0].kind",
        ),
        (json!({"flags": []}), "flags"),
    ];
    for (body, field) in bad {
        let (s, v) = app.post("/api/v1/flags", &loud_t, body).await;
        assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let mut with_contact = flag("domain", "x.example", "fraud");
    with_contact["contact"] = json!("me@example.org");
    let (s, v) = app
        .post("/api/v1/flags", &loud_t, json!({"flags": [with_contact]}))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, v) = app
        .post(
            "/api/v1/flags",
            &officer,
            json!({"flags": [flag("domain", "x.example", "fraud")]}),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let mut huge = flag("domain", "x.example", "fraud");
    huge["reasons"] = json!("x".repeat(40_000));
    let (s, v) = neighbour
        .call("POST", "/api/v1/public/flags", None, Some(huge))
        .await;
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let mut long = flag("domain", "x.example", "fraud");
    long["reasons"] = json!("x".repeat(5_000));
    let (s, v) = neighbour
        .call("POST", "/api/v1/public/flags", None, Some(long))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(v["error"]["field"], "reasons");
    let (s, v) = app
        .post(
            "/api/v1/flags/reject",
            &officer,
            json!({"flag_ids": ["not-an-id"], "reason": "no"}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    // a target no platform registered: the officer must name the platform
    let quiet_flag = app.get_ok("/api/v1/flags", &quiet_t).await;
    let (s, v) = app
        .post(
            "/api/v1/flags/accept",
            &officer,
            json!({
                "flag_ids": ids(&quiet_flag),
                "urgency": "normal",
                "legal_basis": {"reference": "KUHP 378", "text": "Fraud."},
                "explanation": "phishing",
            }),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(v["error"]["field"], "platform_id");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_contained_and_bad_input_is_refused_on_every_backend() {
    for b in backends() {
        floods_and_bad_input(b).await;
    }
}

async fn accept_one(app: &App, officer: &str, flags: &Value) -> Value {
    let (s, notice) = app
        .post(
            "/api/v1/flags/accept",
            officer,
            json!({
                "flag_ids": ids(flags),
                "urgency": "urgent",
                "legal_basis": {"reference": "Law 11/2008 art. 40", "text": "Unlawful content."},
                "explanation": "from a flag",
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{notice}");
    notice
}

async fn trusted_flagger(backend: tapis_store::Backend) {
    let app = spawn_app(backend).await;
    let platform = app
        .party_with(
            &app.admin,
            json!({"kind": "platform", "name": "Telegram", "domains": ["t.me"]}),
        )
        .await;
    let other = app.party("platform", "Other").await;
    let agency = app.party("flagger", "Counter-terrorism agency").await;
    let officer = app.token(&app.authority_id, "officer").await;
    let agency_t = app.token(&agency, "flagger").await;
    let agent = app.token(&platform, "platform_agent").await;
    let other_agent = app.token(&other, "platform_agent").await;

    // the admin grants; the officer may not, nor may the flagger itself
    let grant = json!({"flagger_id": agency, "platform_id": platform, "categories": ["terrorism"]});
    for token in [&officer, &agency_t] {
        let (s, v) = app
            .post("/api/v1/trusted-flaggers", token, grant.clone())
            .await;
        assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    }
    let (s, g) = app
        .post("/api/v1/trusted-flaggers", &app.admin, grant.clone())
        .await;
    assert_eq!(
        (s, g["state"].as_str()),
        (StatusCode::CREATED, Some("granted")),
        "{g}"
    );
    let gid = g["id"].as_str().expect("id").to_owned();
    let (s, v) = app
        .post("/api/v1/trusted-flaggers", &app.admin, grant)
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, v) = app
        .post(
            "/api/v1/trusted-flaggers",
            &app.admin,
            json!({"flagger_id": platform, "platform_id": platform, "categories": ["terrorism"]}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(v["error"]["field"], "flagger_id");

    // not yet confirmed: a notice from its flag is an ordinary one
    let (_, f) = app
        .post(
            "/api/v1/flags",
            &agency_t,
            json!({"flags": [flag("url", "https://t.me/s/early", "terrorism")]}),
        )
        .await;
    let early = accept_one(&app, &officer, &f).await;
    assert_eq!(early["trusted_flagger"], false);

    // the platform confirms through its own account; nobody else can
    let confirm = format!("/api/v1/trusted-flaggers/{gid}/confirm");
    let (s, v) = app.post(&confirm, &other_agent, json!({})).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = app.post(&confirm, &app.admin, json!({})).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, g) = app.post(&confirm, &agent, json!({})).await;
    assert_eq!(
        (s, g["state"].as_str()),
        (StatusCode::OK, Some("confirmed")),
        "{g}"
    );
    assert!(g["confirmed_at"].is_string());

    // an officer's own notice first, then the trusted flagger's
    let mut body = notice_body(&platform, 1);
    body["items"] = json!([{"kind": "url", "value": "https://t.me/s/plain"}]);
    let (s, plain) = app.post("/api/v1/notices", &officer, body).await;
    assert_eq!(s, StatusCode::CREATED, "{plain}");
    let (_, f) = app
        .post(
            "/api/v1/flags",
            &agency_t,
            json!({"flags": [flag("url", "https://t.me/s/trusted", "terrorism")]}),
        )
        .await;
    let trusted = accept_one(&app, &officer, &f).await;
    assert_eq!(trusted["trusted_flagger"], true, "{trusted}");
    assert_eq!(
        trusted["signed_document"]["payload"]["trusted_flagger"],
        true
    );
    assert!(
        plain["signed_document"]["payload"]
            .get("trusted_flagger")
            .is_none()
    );

    // first in the inbox, with the shorter deadline (half of 4 h)
    let inbox = app.get_ok("/api/v1/inbox", &agent).await;
    let order: Vec<&str> = inbox
        .as_array()
        .expect("inbox")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    assert_eq!(order[0], trusted["id"].as_str().expect("id"), "{order:?}");
    let hours = |n: &Value| {
        let due = n["due_at"].as_str().expect("due_at");
        let delivered = n["delivered_at"].as_str().expect("delivered_at");
        let t = |s: &str| {
            tapis_core::Timestamp::parse("t", s)
                .expect("time")
                .unix_millis()
        };
        (t(due) - t(delivered)) / 3_600_000
    };
    let find = |id: &Value| {
        inbox
            .as_array()
            .expect("inbox")
            .iter()
            .find(|n| n["id"] == *id)
            .cloned()
            .expect("in the inbox")
    };
    assert_eq!(hours(&find(&trusted["id"])), 2);
    assert_eq!(hours(&find(&plain["id"])), 4);

    // suspended: the next notice is ordinary again; reinstated: trusted
    let status = format!("/api/v1/trusted-flaggers/{gid}/status");
    let (s, v) = app
        .post(
            &status,
            &app.admin,
            json!({"action": "suspend", "reason": "accuracy under review"}),
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("suspended")),
        "{v}"
    );
    let (_, f) = app
        .post(
            "/api/v1/flags",
            &agency_t,
            json!({"flags": [flag("url", "https://t.me/s/while_suspended", "terrorism")]}),
        )
        .await;
    assert_eq!(
        accept_one(&app, &officer, &f).await["trusted_flagger"],
        false
    );
    let (s, v) = app
        .post(
            &status,
            &app.admin,
            json!({"action": "confirm", "reason": "x"}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let (s, v) = app
        .post(
            &status,
            &app.admin,
            json!({"action": "reinstate", "reason": "review passed"}),
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("confirmed")),
        "{v}"
    );
    let grants = app.get_ok("/api/v1/trusted-flaggers", &agency_t).await;
    assert_eq!(grants.as_array().map(Vec::len), Some(1));
    let grants = app.get_ok("/api/v1/trusted-flaggers", &other_agent).await;
    assert_eq!(grants, json!([]));

    let auditor = app.token(&app.authority_id, "auditor").await;
    let (s, v) = app.get("/api/v1/audit/verify", &auditor).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_flaggers_notice_comes_first_with_the_shorter_deadline_on_every_backend() {
    for b in backends() {
        trusted_flagger(b).await;
    }
}
