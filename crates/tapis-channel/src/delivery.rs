//! Delivery: claim due outbox messages, send them, report the outcome.
//!
//! Webhooks are POSTed with the Standard Webhooks headers; a 2xx is
//! success, anything else (or a timeout) is retried by the store's backoff.
//! Redirects are not followed and, unless private targets are allowed,
//! names that resolve to loopback or private addresses are refused at
//! connect time (the resolver filters them, so a DNS answer cannot be
//! swapped between the check and the connection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tapis_core::EventType;
use tapis_core::channel::{is_private_host, is_private_ip};
use tapis_core::delivery::OutboxChannel;
use tapis_store::{Attempt, Claimed, Store};

use crate::Error;

/// Messages claimed per pass, and sent concurrently.
const CLAIM: u32 = 64;
const CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@mail.example:465`,
    /// or `smtp://mail.example:587?tls=required` for STARTTLS.
    pub url: String,
    /// The From address, e.g. `tapis <tapis@ministry.example>`.
    pub from: String,
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Allow webhooks to loopback and private addresses (tests, closed
    /// networks). Off by default: a webhook must not reach into our network.
    pub allow_private_targets: bool,
    pub smtp: Option<SmtpConfig>,
    /// Base URL of this tapis, for links in emails.
    pub public_url: String,
    /// Per-request timeout for webhooks.
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            allow_private_targets: false,
            smtp: None,
            public_url: "http://127.0.0.1:8080".into(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// A resolver that drops loopback and private addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| !is_private_ip(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to loopback or private addresses; refused"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub struct Delivery {
    store: Store,
    http: reqwest::Client,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    config: DeliveryConfig,
    owner: String,
}

impl Delivery {
    pub fn new(store: Store, config: DeliveryConfig) -> crate::Result<Delivery> {
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tapis/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_targets {
            http = http.dns_resolver(Arc::new(PublicOnly));
        }
        let http = http.build().map_err(|e| Error::HttpClient(e.to_string()))?;
        let smtp = match &config.smtp {
            None => None,
            Some(s) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.url)
                    .map_err(|e| Error::SmtpUrl(e.to_string()))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build();
                let from: Mailbox = s
                    .from
                    .parse::<Mailbox>()
                    .map_err(|e| Error::SmtpFrom(e.to_string()))?;
                Some((transport, from))
            }
        };
        Ok(Delivery {
            store,
            http,
            smtp,
            config,
            owner: format!("worker-{}", uuid::Uuid::now_v7().simple()),
        })
    }

    /// Claim and deliver one batch. Returns how many messages were tried.
    pub async fn run_once(&self) -> crate::Result<usize> {
        let claimed = self.store.claim_outbox(&self.owner, CLAIM).await?;
        let n = claimed.len();
        let results: Vec<Result<(), tapis_store::Error>> = futures_util::stream::iter(claimed)
            .map(|msg| async move {
                let attempt = self.deliver(&msg).await;
                if !attempt.ok {
                    tracing::warn!(event = %msg.event_id, channel = %msg.channel, error = ?attempt.error, status = ?attempt.status, "delivery failed");
                }
                self.store.complete_delivery(&msg, attempt).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn deliver(&self, msg: &Claimed) -> Attempt {
        let started = Instant::now();
        let result = match msg.channel {
            OutboxChannel::Webhook => self.webhook(msg).await,
            OutboxChannel::Email => self.email(msg).await,
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match result {
            Ok(status) => Attempt {
                ok: true,
                status,
                latency_ms,
                error: None,
            },
            Err((status, error)) => Attempt {
                ok: false,
                status,
                latency_ms,
                error: Some(error),
            },
        }
    }

    async fn webhook(&self, msg: &Claimed) -> Result<Option<u16>, (Option<u16>, String)> {
        let target = self
            .store
            .webhook_target(msg.party_id)
            .await
            .map_err(|e| (None, format!("cannot read the channel: {e}")))?
            .ok_or((None, "the platform has no webhook any more".to_owned()))?;
        let url =
            url::Url::parse(&target.url).map_err(|e| (None, format!("bad webhook URL: {e}")))?;
        if !self.config.allow_private_targets && url.host_str().is_some_and(is_private_host) {
            return Err((None, "webhook host is loopback or private; refused".into()));
        }
        // the transport timestamp is real time: receivers check it against
        // their own clocks to refuse replays
        let ts = tapis_core::Clock::now(&tapis_core::SystemClock).unix_millis() / 1000;
        let body = msg.payload.as_bytes();
        let signature = crate::webhook::header(&target.secrets, &msg.event_id, ts, body)
            .map_err(|e| (None, e.to_string()))?;
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(msg.payload.clone())
            .send()
            .await
            .map_err(|e| (None, describe(&e)))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            Ok(Some(status))
        } else {
            Err((Some(status), format!("receiver answered {status}")))
        }
    }

    async fn email(&self, msg: &Claimed) -> Result<Option<u16>, (Option<u16>, String)> {
        let Some((transport, from)) = &self.smtp else {
            return Err((None, "no SMTP server is configured ([smtp] url)".into()));
        };
        let to = self
            .store
            .email_targets(msg.party_id)
            .await
            .map_err(|e| (None, format!("cannot read the contacts: {e}")))?;
        if to.is_empty() {
            return Err((None, "the platform has no email address".into()));
        }
        let payload: Value =
            serde_json::from_str(&msg.payload).map_err(|e| (None, format!("bad payload: {e}")))?;
        let (subject, text) = summary(&payload, msg.event_type, &self.config.public_url);
        let attachment_body = payload
            .pointer("/data/notice")
            .map(|n| serde_json::to_string_pretty(n).unwrap_or_default())
            .unwrap_or_else(|| msg.payload.clone());
        let notice_id = payload
            .pointer("/data/notice_id")
            .and_then(Value::as_str)
            .unwrap_or("event");
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@tapis>", msg.event_id)));
        for addr in &to {
            let mb: Mailbox = addr
                .parse()
                .map_err(|e| (None, format!("bad address {addr}: {e}")))?;
            builder = builder.to(mb);
        }
        let json_type =
            ContentType::parse("application/json").map_err(|e| (None, e.to_string()))?;
        let email = builder
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(
                        Attachment::new(format!("notice-{notice_id}.signed.json"))
                            .body(attachment_body, json_type),
                    ),
            )
            .map_err(|e| (None, format!("cannot build the email: {e}")))?;
        transport
            .send(email)
            .await
            .map(|r| Some(r.code().into()))
            .map_err(|e| (None, format!("SMTP: {e}")))
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Subject and plain-text body for an event.
fn summary(payload: &Value, event_type: EventType, public_url: &str) -> (String, String) {
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let id = data.get("notice_id").and_then(Value::as_str).unwrap_or("?");
    let link = format!("{}/api/v1/notices/{id}", public_url.trim_end_matches('/'));
    let notice = data.pointer("/notice/payload");
    let mut text = String::new();
    let subject = match event_type {
        EventType::NoticeSubmitted => {
            let category = notice
                .and_then(|n| n.get("category"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let urgency = notice
                .and_then(|n| n.get("urgency"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            text.push_str(&format!("A takedown notice was sent to you through tapis.\n\nNotice: {id}\nCategory: {category}\nUrgency: {urgency}\n"));
            if let Some(lb) = notice.and_then(|n| n.get("legal_basis")) {
                text.push_str(&format!(
                    "Legal basis: {}\n",
                    lb.get("reference").and_then(Value::as_str).unwrap_or("?")
                ));
            }
            if let Some(e) = notice
                .and_then(|n| n.get("explanation"))
                .and_then(Value::as_str)
            {
                text.push_str(&format!("\n{e}\n"));
            }
            if let Some(items) = notice
                .and_then(|n| n.get("items"))
                .and_then(Value::as_array)
            {
                text.push_str(&format!("\nItems ({}):\n", items.len()));
                for i in items {
                    text.push_str(&format!(
                        "  - {} {}\n",
                        i.get("kind").and_then(Value::as_str).unwrap_or("?"),
                        i.get("value").and_then(Value::as_str).unwrap_or("?")
                    ));
                }
            }
            format!("[tapis] takedown notice {id} ({category}, {urgency})")
        }
        other => {
            text.push_str(&format!("Event {other} for notice {id}.\n"));
            if let Some(due) = data.get("due_at").and_then(Value::as_str) {
                text.push_str(&format!("Deadline: {due}\n"));
            }
            format!("[tapis] {other} for notice {id}")
        }
    };
    text.push_str(&format!(
        "\nThe signed notice is attached (notice-*.signed.json); verify it with tapis's public keys at {}/api/v1/keys.\nAct on it and acknowledge it at {link}\n\nThis email is a fallback: the webhook could not be used. Fetching the notice through the API records delivery.\n",
        public_url.trim_end_matches('/')
    ));
    (subject, text)
}
