//! The replay's HTTP client: one `call` for every route, bearer tokens, and
//! an error that keeps tapis's status and body whole, so a step expected to
//! be refused can be checked against the status and the report can quote
//! the server's own message.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// An HTTP error from tapis, kept whole for the report.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        match v.get("error") {
            Some(e) => write!(
                f,
                "tapis answered {} {}: {}{}",
                self.status,
                e["code"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("?"),
                e["field"]
                    .as_str()
                    .map(|x| format!(" (field {x})"))
                    .unwrap_or_default()
            ),
            None => write!(f, "tapis answered {}: {}", self.status, self.body),
        }
    }
}

impl std::error::Error for ApiError {}

#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Api> {
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach tapis at {}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ApiError { status, body: text }.into());
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        // exports (zone file, lists) are text
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }
}
