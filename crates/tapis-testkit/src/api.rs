//! A JSON client for the tapis HTTP API, for tests that run the real binary
//! and for those that serve the router in-process.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The API at `base` (`http://127.0.0.1:PORT`).
#[derive(Clone, Debug)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    /// `method path`, with a bearer `token` and a JSON `body` when given.
    /// Returns the status and the JSON body (`Null` when empty); panics on
    /// a body that is not JSON, since every API route answers JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON response {status}: {text}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    /// GET that must answer 200; returns the body.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (s, v) = self.get(path, token).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("PUT", path, Some(token), Some(body)).await
    }

    /// GET a text resource (the exports), with `If-None-Match` when an
    /// `etag` is given: the status, the text and the ETag.
    pub async fn text(
        &self,
        path: &str,
        token: &str,
        etag: Option<&str>,
    ) -> (StatusCode, String, Option<String>) {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        let resp = req.send().await.expect("get");
        let status = resp.status();
        let tag = resp
            .headers()
            .get("etag")
            .map(|v| v.to_str().expect("an ASCII ETag").to_owned());
        (status, resp.text().await.expect("text"), tag)
    }

    /// The party id of `token`'s holder.
    pub async fn party_of(&self, token: &str) -> String {
        let me = self.get_ok("/api/v1/whoami", token).await;
        me["party_id"].as_str().expect("party_id").to_owned()
    }

    /// A new party of `kind` (made by `admin`); returns its id.
    pub async fn party(&self, admin: &str, kind: &str, name: &str) -> String {
        self.party_with(admin, json!({"kind": kind, "name": name}))
            .await
    }

    /// A new party from a full body (with `domains`, …); returns its id.
    pub async fn party_with(&self, admin: &str, body: Value) -> String {
        let (s, v) = self.post("/api/v1/parties", admin, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// A token for `party` with `role`, held by the person "`role` test";
    /// returns its secret. The authority's own tokens are made by `admin`;
    /// any other party's come by invitation (`admin` invites, the party
    /// redeems the code without a token), because no authority role ever
    /// holds another party's credential.
    pub async fn token(&self, admin: &str, party: &str, role: &str) -> String {
        let label = format!("{role} test");
        let (s, v) = if party == self.party_of(admin).await {
            self.post(
                &format!("/api/v1/parties/{party}/tokens"),
                admin,
                json!({"role": role, "label": label, "person": label}),
            )
            .await
        } else {
            let (s, inv) = self
                .post(
                    &format!("/api/v1/parties/{party}/invitations"),
                    admin,
                    json!({"role": role}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{inv}");
            let code = inv["code"].as_str().expect("code");
            self.call(
                "POST",
                &format!("/api/v1/invitations/{code}/accept"),
                None,
                Some(json!({"label": label, "person": label})),
            )
            .await
        };
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().expect("token").to_owned()
    }
}
