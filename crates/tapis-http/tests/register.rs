//! The public register over HTTP, on every backend, with no token: an
//! order whose explanation holds an e-mail address, a phone number and a
//! national id number, and whose proposer is a person, shows them
//! withheld and counted; the names of a terrorism order are withheld and
//! counted while the floor (category, legal basis, authority, dates,
//! number of names) stays; a category's publication delay is kept on the
//! simulated clock; searches run on what is shown; paging; a closed day's
//! dump is the same bytes before and after the order changes; the DSA
//! export validates against the database's field rules; the policy is
//! logged once per change; nothing non-public (party contacts, token
//! secrets, people, an appellant's text) appears anywhere.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tapis_core::register::{DAY_MS, PolicyInput, RedactionPolicy};
use tapis_core::{Clock, ManualClock, Timestamp};
use tapis_http::{AppState, Limits};
use tapis_store::testing::TestDb;

struct Harness {
    api: Api,
    admin: String,
    authority: String,
    store: tapis_store::Store,
    clock: ManualClock,
    db: TestDb,
    serving: Serving,
    policy: Arc<RedactionPolicy>,
}

async fn start(backend: tapis_store::Backend) -> Harness {
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(Timestamp::parse("t", "2017-03-29T09:00:00+07:00").expect("time"));
    let store = db.open(Arc::new(clock.clone()) as Arc<dyn Clock>).await;
    let boot = store
        .bootstrap("Ministry", None)
        .await
        .expect("bootstrap")
        .expect("first start");
    let mut delay = BTreeMap::new();
    delay.insert("fraud".to_owned(), 3);
    let policy = Arc::new(
        RedactionPolicy::new(
            PolicyInput {
                patterns: vec![r"NIK\s*\d{16}".into()],
                delay_days: delay,
                ..PolicyInput::default()
            },
            &[],
        )
        .expect("policy"),
    );
    let mut state = AppState::new(store.clone(), Limits::default());
    state.register = policy.clone();
    let serving = serve_state(state).await;
    Harness {
        api: Api::new(serving.base.clone()),
        admin: boot.admin_secret,
        authority: boot.authority.id.to_string(),
        store,
        clock,
        db,
        serving,
        policy,
    }
}

impl Harness {
    /// A public GET (no token): status and JSON.
    async fn public(&self, path: &str) -> (StatusCode, Value) {
        self.api.call("GET", path, None, None).await
    }

    async fn public_ok(&self, path: &str) -> Value {
        let (s, v) = self.public(path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// A public GET of raw bytes: status, body, `x-content-sha256`.
    async fn raw(&self, path: &str) -> (StatusCode, String, Option<String>) {
        let r = self
            .api
            .client
            .get(format!("{}{path}", self.api.base))
            .send()
            .await
            .expect("request");
        let s = r.status();
        let sha = r
            .headers()
            .get("x-content-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (s, r.text().await.expect("body"), sha)
    }

    async fn order(&self, officer: &str, approver: &str, body: Value) -> String {
        let (s, o) = self.api.post("/api/v1/orders", officer, body).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        let id = o["id"].as_str().expect("id").to_owned();
        let (s, a) = self
            .api
            .post(&format!("/api/v1/orders/{id}/approve"), approver, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        id
    }
}

fn order_body(category: &str, names: &[&str], explanation: &str) -> Value {
    json!({
        "targets": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "action": "nxdomain", "category": category,
        "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
        "explanation": explanation,
        "effective_at": "2017-03-29T02:00:00Z", "expires_at": "2017-04-28T04:00:00Z", "review_at": "2017-04-14T04:00:00Z",
    })
}

const SECRET_TEXT: &[&str] = &[
    "budi.santoso@mail.example",
    "812-3456-7890",
    "3171234567890123",
    "officer test",
    "approver test",
    "legal@messenger.example",
    "+62 21 5550 1234",
    "appellant@mail.example",
    "kill-list.example",
    "https://messenger.example/c/terror",
    "Legal Desk",
];

fn assert_no_leak(what: &str, text: &str, extra: &[&str]) {
    for s in SECRET_TEXT.iter().chain(extra) {
        assert!(
            !text.to_lowercase().contains(&s.to_lowercase()),
            "{what} leaks {s:?}: {text}"
        );
    }
}

async fn story(backend: tapis_store::Backend) {
    let h = start(backend).await;
    let platform = h
        .api
        .party_with(
            &h.admin,
            json!({"kind": "platform", "name": "Messenger",
                   "contacts": [{"name": "Legal Desk", "email": "legal@messenger.example", "phone": "+62 21 5550 1234"}]}),
        )
        .await;
    let officer = h.api.token(&h.admin, &h.authority, "officer").await;
    let approver = h.api.token(&h.admin, &h.authority, "approver").await;
    let agent = h.api.token(&h.admin, &platform, "platform_agent").await;
    let secrets = [
        officer.as_str(),
        approver.as_str(),
        agent.as_str(),
        h.admin.as_str(),
    ];

    // the policy is logged once, again only when it changes
    assert!(h.store.log_register_policy(&h.policy).await.expect("log"));
    assert!(!h.store.log_register_policy(&h.policy).await.expect("log"));
    let logged = h
        .store
        .events_for("setting", "register.policy")
        .await
        .expect("events");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].action, "register.policy_logged");
    assert_eq!(logged[0].after["sha256"], h.policy.sha256());
    assert!(
        h.store
            .log_register_policy(&RedactionPolicy::default())
            .await
            .expect("log")
    );
    let p = h.public_ok("/api/v1/register/policy").await;
    assert_eq!(p["sha256"], h.policy.sha256());
    // the retention policy is published with it (README: Retention)
    let retention = tapis_core::retention::RetentionPolicy::default();
    assert_eq!(p["retention"]["sha256"], retention.sha256());
    assert_eq!(p["retention"]["policy"], retention.to_json());
    assert_eq!(p["retention"]["policy"]["kinds"][0]["kind"], "public_flag");

    // an order with personal data in its explanation
    let gambling = h
        .order(
            &officer,
            &approver,
            order_body(
                "gambling",
                &["slot77.example", "bakery-judi.example"],
                "Reported by budi.santoso@mail.example (call +62 812-3456-7890), NIK 3171234567890123.",
            ),
        )
        .await;
    // a terrorism order: its names are withheld
    let terror = h
        .order(
            &officer,
            &approver,
            order_body(
                "terrorism",
                &[
                    "kill-list.example",
                    "a.kill-list.example",
                    "b.kill-list.example",
                ],
                "Propaganda sites.",
            ),
        )
        .await;
    // a fraud order: listed three days after its approval
    let fraud = h
        .order(
            &officer,
            &approver,
            order_body("fraud", &["fake-bank.example"], "Phishing."),
        )
        .await;
    // a draft is not in the register
    let (s, draft) = h
        .api
        .post(
            "/api/v1/orders",
            &officer,
            order_body("gambling", &["draft-only.example"], "not approved"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{draft}");
    let draft = draft["id"].as_str().expect("id").to_owned();

    let o = h
        .public_ok(&format!("/api/v1/register/orders/{gambling}"))
        .await;
    let text = o.to_string();
    assert_no_leak("the order", &text, &secrets);
    assert_eq!(
        o["explanation"],
        "Reported by [email withheld] (call [phone withheld]), [withheld]."
    );
    assert_eq!(o["proposer"], "withheld");
    assert_eq!(o["approver"], "withheld");
    assert_eq!(o["withheld"]["emails"], 1);
    assert_eq!(o["withheld"]["phones"], 1);
    assert_eq!(o["withheld"]["patterns"], 1);
    assert_eq!(o["withheld"]["persons"], 2);
    assert_eq!(o["names_count"], 2);
    assert_eq!(o["names"], json!(["bakery-judi.example", "slot77.example"]));
    assert_eq!(o["category"], "gambling");
    assert_eq!(o["legal_basis"]["reference"], "Law 11/2008 art. 27(2)");
    assert_eq!(o["issuing_authority"], "Ministry");
    assert_eq!(o["state"], "in_force");
    assert!(o["approved_at"].is_string() && o["effective_at"].is_string());
    assert_eq!(o["platforms"], json!([]));
    assert_eq!(o["policy_sha256"], h.policy.sha256());

    let t = h
        .public_ok(&format!("/api/v1/register/orders/{terror}"))
        .await;
    assert_no_leak("the terrorism order", &t.to_string(), &secrets);
    assert_eq!(t["names_count"], 3);
    assert_eq!(t["names"], json!(["withheld", "withheld", "withheld"]));
    assert_eq!(t["withheld"]["locators"], 3);
    assert!(
        t["withheld"]["reasons"]
            .as_array()
            .expect("reasons")
            .contains(&json!("3 names withheld, category policy")),
        "{t}"
    );

    // the delay: not yet listed, anywhere
    for path in [
        format!("/api/v1/register/orders/{fraud}"),
        format!("/api/v1/register/orders/{draft}"),
        "/api/v1/register/orders/not-an-id".to_owned(),
    ] {
        let (s, v) = h.public(&path).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    }
    let list = h.public_ok("/api/v1/register/orders").await;
    let mut ids: Vec<&str> = list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    ids.sort();
    let mut want = vec![terror.as_str(), gambling.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert_no_leak("the list", &list.to_string(), &secrets);

    // searches run on what is shown
    let hits = |v: &Value| v["entries"].as_array().expect("entries").len();
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/orders?q=SLOT77").await),
        1
    );
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/orders?q=budi.santoso").await),
        0
    );
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/orders?q=kill-list").await),
        0
    );
    assert_eq!(
        hits(
            &h.public_ok("/api/v1/register/orders?category=terrorism")
                .await
        ),
        1
    );
    assert_eq!(
        hits(
            &h.public_ok("/api/v1/register/orders?legal_basis=27(2)")
                .await
        ),
        2
    );
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/orders?state=in_force").await),
        2
    );
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/orders?state=lifted").await),
        0
    );
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/orders?to=2017-03-01").await),
        0
    );
    // pages by cursor, never overlapping
    let p1 = h.public_ok("/api/v1/register/orders?limit=1").await;
    assert_eq!(hits(&p1), 1);
    let next = p1["next"].as_str().expect("a next page").to_owned();
    let p2 = h
        .public_ok(&format!("/api/v1/register/orders?limit=1&cursor={next}"))
        .await;
    assert_eq!(hits(&p2), 1);
    assert_ne!(p1["entries"][0]["id"], p2["entries"][0]["id"]);
    // bad searches are precise 4xx
    for (q, status, code) in [
        ("category=nope", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("state=draft", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("state=bogus", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("limit=101", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("limit=abc", StatusCode::BAD_REQUEST, "invalid_query"),
        ("cursor=nope", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (
            "from=yesterday",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "platform=a%20b",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        ("unknown=1", StatusCode::BAD_REQUEST, "invalid_query"),
    ] {
        let (s, v) = h.public(&format!("/api/v1/register/orders?{q}")).await;
        assert_eq!(s, status, "{q}: {v}");
        assert!(v["error"]["code"].is_string(), "{q}: {v}");
        let _ = code;
    }
    let long = "x".repeat(201);
    let (s, _) = h.public(&format!("/api/v1/register/orders?q={long}")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // notices: a gambling one with URLs (shown) and a terrorism one (withheld)
    let (s, n) = h
        .api
        .post(
            "/api/v1/notices",
            &officer,
            json!({
                "platform_id": platform,
                "category": "gambling",
                "urgency": "normal",
                "legal_basis": {"reference": "Law 11/2008 art. 27(2)", "text": "Online gambling is unlawful."},
                "explanation": "Advertised by budi.santoso@mail.example on 0812 3456 7890.",
                "territorial_scope": ["ID", "NL"],
                "items": [
                    {"kind": "url", "value": "https://messenger.example/c/slots"},
                    {"kind": "url", "value": "https://messenger.example/c/casino"},
                ]
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let notice = n["id"].as_str().expect("id").to_owned();
    let items: Vec<String> = n["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    let mut tb = notice_body(&platform, 2);
    tb["items"][0]["value"] = json!("https://messenger.example/c/terror");
    tb["items"][0]["kind"] = json!("url");
    tb["items"][0]
        .as_object_mut()
        .expect("item")
        .remove("native_id");
    let (s, tn) = h.api.post("/api/v1/notices", &officer, tb).await;
    assert_eq!(s, StatusCode::CREATED, "{tn}");
    let terror_notice = tn["id"].as_str().expect("id").to_owned();

    let (s, _) = h
        .api
        .post(
            &format!("/api/v1/notices/{notice}/acknowledge"),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    h.clock.advance_millis(3_600_000);
    for (item, decision) in [(&items[0], "removed"), (&items[1], "rejected")] {
        let (s, v) = h
            .api
            .post(
                &format!("/api/v1/notices/{notice}/items/{item}/decision"),
                &agent,
                json!({"decision": decision, "reason": "Checked by our team; ask legal@messenger.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    // an appeal's text never reaches the register
    let (s, a) = h
        .api
        .call(
            "POST",
            "/api/v1/appeals",
            None,
            Some(json!({"order_id": gambling, "reason": "This is my bakery; write to appellant@mail.example please."})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");

    let nv = h
        .public_ok(&format!("/api/v1/register/notices/{notice}"))
        .await;
    assert_no_leak("the notice", &nv.to_string(), &secrets);
    assert_eq!(
        nv["explanation"],
        "Advertised by [email withheld] on [phone withheld]."
    );
    assert_eq!(nv["issuer"], "withheld");
    assert_eq!(nv["items_count"], 2);
    assert_eq!(
        nv["items"][0]["locator"],
        "https://messenger.example/c/slots"
    );
    assert_eq!(nv["items"][0]["decision"], "removed");
    assert_eq!(
        nv["items"][0]["reason"],
        "Checked by our team; ask [email withheld]"
    );
    assert_eq!(nv["platform"]["name"], "Messenger");
    let tv = h
        .public_ok(&format!("/api/v1/register/notices/{terror_notice}"))
        .await;
    assert_no_leak("the terrorism notice", &tv.to_string(), &secrets);
    assert_eq!(tv["withheld"]["locators"], 2);
    assert!(
        tv["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["locator"] == "withheld"),
        "{tv}"
    );
    let nl = h
        .public_ok(&format!("/api/v1/register/notices?platform={platform}"))
        .await;
    assert_eq!(hits(&nl), 2);
    assert_no_leak("the notice list", &nl.to_string(), &secrets);
    assert_eq!(
        hits(&h.public_ok("/api/v1/register/notices?q=casino").await),
        1
    );
    assert_eq!(
        hits(
            &h.public_ok("/api/v1/register/notices?q=example/c/terror")
                .await
        ),
        0,
        "a withheld locator cannot be found by search"
    );

    // the DSA export validates against the database's rules
    let dsa = h
        .public_ok("/api/v1/register/dsa-sor?from=2017-03-28&to=2017-03-31")
        .await;
    assert_no_leak("the DSA export", &dsa.to_string(), &secrets);
    let statements = dsa["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{dsa}");
    for st in statements {
        assert_eq!(tapis_core::dsa::validate(st), vec![], "{st}");
    }
    assert_eq!(statements[0]["puid"], items[0].as_str());
    assert_eq!(
        statements[0]["decision_visibility"],
        json!(["DECISION_VISIBILITY_CONTENT_REMOVED"])
    );
    assert_eq!(
        statements[0]["category"],
        "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS"
    );
    assert_eq!(statements[0]["territorial_scope"], json!(["NL"]));
    assert_eq!(dsa["skipped"]["no_restriction"], 1, "{dsa}");
    for q in [
        "from=2017-03-28",
        "from=2017-03-28&to=2017-03-01",
        "from=2017-01-01&to=2017-03-01",
        "from=x&to=2017-03-01",
    ] {
        let (s, v) = h.public(&format!("/api/v1/register/dsa-sor?{q}")).await;
        assert!(s.is_client_error(), "{q}: {s} {v}");
    }

    // dumps: today's is not served; once the day is over it is, and stays
    let (s, _, _) = h.raw("/api/v1/register/dumps/2017-03-29.jsonl").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for bad in ["2017-03-29.json", "2017-3-29.jsonl", "x.jsonl"] {
        let (s, _, _) = h.raw(&format!("/api/v1/register/dumps/{bad}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
    }
    h.clock.advance_millis(DAY_MS);
    let listing = h.public_ok("/api/v1/register/dumps").await;
    let day = listing["dumps"]
        .as_array()
        .expect("dumps")
        .iter()
        .find(|d| d["day"] == "2017-03-29")
        .cloned()
        .expect("the day's dump is listed");
    // two orders and two notices listed on the 29th (UTC; the fraud order waits)
    assert_eq!(day["records"], 4, "{listing}");
    let (s, first, sha) = h.raw("/api/v1/register/dumps/2017-03-29.jsonl").await;
    assert_eq!(s, StatusCode::OK);
    assert_no_leak("the dump", &first, &secrets);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(first.as_bytes()));
    assert_eq!(sha.as_deref(), Some(digest.as_str()));
    assert_eq!(day["sha256"], digest);
    assert_eq!(first.lines().count(), 4);
    for line in first.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        assert!(v["type"] == "order" || v["type"] == "notice", "{v}");
    }
    // the order is lifted: the register says so, the closed day's dump is unchanged
    let (s, v) = h
        .api
        .post(
            &format!("/api/v1/orders/{gambling}/lift"),
            &officer,
            json!({"reason": "the operator closed the sites"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let o = h
        .public_ok(&format!("/api/v1/register/orders/{gambling}"))
        .await;
    assert_eq!(o["state"], "lifted");
    let (_, again, _) = h.raw("/api/v1/register/dumps/2017-03-29.jsonl").await;
    assert_eq!(first, again, "a closed day's dump never changes");

    // three days on, the fraud order is listed (and in the dump of its listing day)
    h.clock.advance_millis(2 * DAY_MS);
    let f = h
        .public_ok(&format!("/api/v1/register/orders/{fraud}"))
        .await;
    assert_eq!(f["names"], json!(["fake-bank.example"]));
    assert_eq!(hits(&h.public_ok("/api/v1/register/orders").await), 3);
    h.clock.advance_millis(DAY_MS);
    let (s, later, _) = h.raw("/api/v1/register/dumps/2017-04-01.jsonl").await;
    assert_eq!(s, StatusCode::OK);
    assert!(later.contains(&fraud), "{later}");
    let (s, v) = h
        .public("/api/v1/register/dumps?from=2017-01-01&to=2017-03-30")
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    h.serving.stop().await;
    h.store.close().await;
    h.db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_register_on_every_backend() {
    for backend in backends() {
        story(backend).await;
    }
}
