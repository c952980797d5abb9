//! Drives a tapis server through a scenario over HTTP, exactly as its
//! users would: the same client for an in-process server and for a running
//! one (`--against`). Time moves only by `POST /api/v1/admin/clock/advance`,
//! in hops to each step and to each piece of work tapis has scheduled
//! before it (`GET /api/v1/admin/clock` says when that is), so every ladder
//! step and retry happens at its own simulated time; after each hop and
//! each action the driver waits until tapis reports nothing due.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tapis_core::Timestamp;
use tapis_dns::tsig::TsigKey;

use super::scenario::{Action, Scenario, Step};
use super::sinks::{Secondary, SmtpSink, Webhook, axfr};

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

/// Where the driver finds the server's parts.
pub struct Target {
    pub api: Api,
    pub admin_token: String,
    /// The RPZ primary (for zone transfers as an ISP).
    pub dns: Option<SocketAddr>,
    pub zone: String,
    /// The SMTP sink the server sends email to, if the replay runs it.
    pub smtp: Option<Arc<SmtpSink>>,
}

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    /// action, event, expect, fail
    pub kind: &'static str,
    pub text: String,
}

/// The result of one expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub step: usize,
    pub line: usize,
    pub at: String,
    pub expectation: String,
    pub passed: bool,
    pub found: String,
}

/// Facts gathered for the summary and the comparison.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Facts {
    pub first_request: Option<Timestamp>,
    pub first_escalation: Option<Timestamp>,
    pub notices: usize,
    pub items_targeted: u64,
    pub escalations: usize,
    /// Most names the zone held at once.
    pub names_blocked: u64,
    pub orders: usize,
    pub first_block: Option<Timestamp>,
    pub block_ended: Option<Timestamp>,
    /// Milliseconds from the clock reaching an order's effective time to
    /// the ISP secondary's NOTIFY for the new serial.
    pub notify_latency_ms: Vec<f64>,
    pub webhooks_received: usize,
    pub webhooks_refused: u64,
    /// Deliveries whose Standard Webhooks signature did not verify.
    pub webhooks_unverified: u64,
    pub emails_received: usize,
    pub advances: u64,
}

pub struct Outcome {
    /// The tokens the scenario created (name, secret), for a demo's user.
    pub tokens: Vec<(String, String)>,
    /// Keeps the replay's webhook receivers and ISP secondaries running;
    /// they stop when this is dropped.
    pub _sinks: tokio::sync::watch::Sender<bool>,
    pub entries: Vec<Entry>,
    pub checks: Vec<Checked>,
    /// Set when a step could not be carried out (the replay stops there).
    pub error: Option<String>,
    pub facts: Facts,
}

struct NoticeRef {
    id: String,
    items: Vec<String>,
}

struct Isp {
    name: String,
    key: TsigKey,
    secondary: Arc<Secondary>,
}

pub struct Driver<'a> {
    sc: &'a Scenario,
    t: Target,
    print: bool,
    now: Timestamp,
    parties: HashMap<String, String>,
    tokens: HashMap<String, String>,
    notices: HashMap<String, NoticeRef>,
    orders: HashMap<String, String>,
    order_states: BTreeMap<String, String>,
    hooks: HashMap<String, Arc<Webhook>>,
    isps: Vec<Isp>,
    seen: HashMap<String, i64>,
    /// Notices whose timeline has ended (closed or withdrawn).
    finished: std::collections::HashSet<String>,
    /// When the last clock move was asked for (real time).
    moved_at: Instant,
    entries: Vec<Entry>,
    checks: Vec<Checked>,
    facts: Facts,
    stop_tx: tokio::sync::watch::Sender<bool>,
}

/// How long tapis may take to finish what is due (real time).
const CATCH_UP: Duration = Duration::from_secs(30);

impl<'a> Driver<'a> {
    pub fn new(sc: &'a Scenario, t: Target, print: bool) -> Driver<'a> {
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        Driver {
            sc,
            t,
            print,
            now: sc.start,
            parties: HashMap::new(),
            tokens: HashMap::new(),
            notices: HashMap::new(),
            orders: HashMap::new(),
            order_states: BTreeMap::new(),
            hooks: HashMap::new(),
            isps: Vec::new(),
            seen: HashMap::new(),
            finished: std::collections::HashSet::new(),
            moved_at: Instant::now(),
            entries: Vec::new(),
            checks: Vec::new(),
            facts: Facts::default(),
            stop_tx,
        }
    }

    /// Run the whole scenario. Never fails: a step that cannot be carried
    /// out ends the run with `error` set.
    pub async fn run(mut self) -> Outcome {
        let result = self.run_inner().await;
        for h in self.hooks.values() {
            let (refused, unverified) = h.counters();
            self.facts.webhooks_received += h.received().len();
            self.facts.webhooks_refused += refused;
            self.facts.webhooks_unverified += unverified;
        }
        if let Some(s) = &self.t.smtp {
            self.facts.emails_received = s.mail().len();
        }
        let error = result.err().map(|e| format!("{e:#}"));
        if let Some(e) = &error {
            self.entry("fail", format!("the replay stopped: {e}"));
        }
        let mut tokens: Vec<(String, String)> = self.tokens.into_iter().collect();
        tokens.sort();
        Outcome {
            tokens,
            _sinks: self.stop_tx,
            entries: self.entries,
            checks: self.checks,
            error,
            facts: self.facts,
        }
    }

    fn entry(&mut self, kind: &'static str, text: String) {
        let at = self.sc.show(self.now);
        if self.print {
            let mark = match kind {
                "action" => ">",
                "event" => " ",
                "expect" => "ok",
                "fail" => "FAIL",
                _ => "",
            };
            crate::cli::print_line(&format!("{at}  {mark:<4} {text}"));
        }
        self.entries.push(Entry { at, kind, text });
    }

    fn token(&self, id: &str) -> anyhow::Result<&str> {
        if id == "admin" {
            return Ok(&self.t.admin_token);
        }
        self.tokens
            .get(id)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("token {id:?} was not created"))
    }

    fn notice(&self, handle: &str) -> anyhow::Result<&NoticeRef> {
        self.notices
            .get(handle)
            .ok_or_else(|| anyhow!("notice {handle:?} was not submitted (an earlier step failed?)"))
    }

    fn order(&self, handle: &str) -> anyhow::Result<&str> {
        self.orders
            .get(handle)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("order {handle:?} was not proposed"))
    }

    fn party_name(&self, handle: &str) -> String {
        self.sc
            .party(handle)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| handle.to_owned())
    }

    // ---- the clock ----------------------------------------------------------

    /// Wait until tapis has done everything due now; returns its clock.
    async fn settle(&mut self) -> anyhow::Result<(Timestamp, Option<Timestamp>)> {
        let started = Instant::now();
        loop {
            let st = self
                .t
                .api
                .get("/api/v1/admin/clock", Some(&self.t.admin_token))
                .await
                .context("cannot read the simulated clock (is the server started with --simulated-clock, and is the token an admin's?)")?;
            let now = Timestamp::parse("now", st["now"].as_str().unwrap_or(""))
                .map_err(|e| anyhow!("the server's clock: {e}"))?;
            let due = st["work"]["due_now"].as_i64().unwrap_or(0);
            let next = st["work"]["next_due"]
                .as_str()
                .and_then(|s| Timestamp::parse("next_due", s).ok());
            if due == 0 {
                return Ok((now, next));
            }
            if started.elapsed() > CATCH_UP {
                bail!(
                    "tapis still had {due} piece(s) of work due at {} after {} s (is a delivery hanging?)",
                    self.sc.show(now),
                    CATCH_UP.as_secs()
                );
            }
            // the worker is busy (a webhook in flight): look again shortly
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Move the clock to `target`, stopping at every piece of work tapis
    /// scheduled before it, and report what happened on the way.
    async fn advance_to(&mut self, target: Timestamp) -> anyhow::Result<()> {
        loop {
            let (now, next) = self.settle().await?;
            self.now = now;
            self.collect().await?;
            if now >= target {
                return Ok(());
            }
            let hop = next.map_or(target, |n| n.min(target));
            let ms = hop.unix_millis() - now.unix_millis();
            let secs = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0);
            let secs = secs.clamp(1, 31_536_000);
            self.moved_at = Instant::now();
            self.t
                .api
                .post(
                    "/api/v1/admin/clock/advance",
                    &self.t.admin_token,
                    json!({"seconds": secs}),
                )
                .await
                .context("cannot move the simulated clock")?;
            self.facts.advances += 1;
        }
    }

    /// Print what happened to tracked notices and orders since last time.
    async fn collect(&mut self) -> anyhow::Result<()> {
        let mut handles: Vec<(String, String)> = self
            .notices
            .iter()
            .filter(|(_, n)| !self.finished.contains(&n.id))
            .map(|(h, n)| (h.clone(), n.id.clone()))
            .collect();
        handles.sort();
        let mut events: Vec<(i64, String)> = Vec::new();
        for (handle, id) in handles {
            let list = self
                .t
                .api
                .get(
                    &format!("/api/v1/notices/{id}/timeline"),
                    Some(&self.t.admin_token),
                )
                .await?;
            let last = self.seen.get(&id).copied().unwrap_or(0);
            let mut max = last;
            for e in list.as_array().into_iter().flatten() {
                let seq = e["seq"].as_i64().unwrap_or(0);
                if seq <= last {
                    continue;
                }
                max = max.max(seq);
                if let Some(text) = describe(self.sc, &handle, e) {
                    events.push((seq, text));
                }
                if e["action"] == "notice.closed" || e["action"] == "notice.withdrawn" {
                    self.finished.insert(id.clone());
                }
                if e["action"] == "notice.escalated" {
                    let at = Timestamp::parse("at", e["at"].as_str().unwrap_or("")).ok();
                    self.facts.escalations += 1;
                    if self.facts.first_escalation.is_none() {
                        self.facts.first_escalation = at;
                    }
                }
            }
            self.seen.insert(id, max);
        }
        events.sort();
        for (_, text) in events {
            self.entry("event", text);
        }
        let orders: Vec<(String, String)> = self
            .orders
            .iter()
            .map(|(h, id)| (h.clone(), id.clone()))
            .collect();
        let mut in_force_names = 0;
        for (handle, id) in orders {
            let o = self
                .t
                .api
                .get(&format!("/api/v1/orders/{id}"), Some(&self.t.admin_token))
                .await?;
            let state = o["state"].as_str().unwrap_or("?").to_owned();
            if state == "in_force" {
                in_force_names += o["target_count"].as_u64().unwrap_or(0);
            }
            if self.order_states.get(&handle) != Some(&state) {
                self.order_states.insert(handle.clone(), state.clone());
                let text = match state.as_str() {
                    "in_force" => {
                        let names = o["target_count"].as_u64().unwrap_or(0);
                        if self.facts.first_block.is_none() {
                            self.facts.first_block = Some(self.now);
                        }
                        format!("order {handle} IN FORCE: {names} name(s) now in the RPZ")
                    }
                    "scheduled" => format!(
                        "order {handle} scheduled for {}",
                        show_str(self.sc, o["effective_at"].as_str().unwrap_or("?"))
                    ),
                    "expired" | "lifted" => {
                        self.facts.block_ended = Some(self.now);
                        format!(
                            "order {handle} {state}: {}",
                            o["end_reason"].as_str().unwrap_or("")
                        )
                    }
                    other => format!("order {handle} {other}"),
                };
                self.entry("event", text);
                if state == "in_force" {
                    self.measure_enforcement().await;
                }
            }
        }
        self.facts.names_blocked = self.facts.names_blocked.max(in_force_names);
        Ok(())
    }

    /// After an order comes into force: how long (real time) from the
    /// clock move that brought its effective time until each ISP secondary
    /// heard of the new serial, and what the zone then holds.
    async fn measure_enforcement(&mut self) {
        let Some(dns) = self.t.dns else { return };
        let started = self.moved_at;
        let waiting = Instant::now();
        let isps: Vec<(String, TsigKey, Arc<Secondary>)> = self
            .isps
            .iter()
            .map(|i| (i.name.clone(), i.key.clone(), i.secondary.clone()))
            .collect();
        for (name, key, sec) in isps {
            let zone = match axfr(dns, &self.t.zone, &key).await {
                Ok(z) => z,
                Err(e) => {
                    self.entry("event", format!("{name}: zone transfer failed: {e:#}"));
                    continue;
                }
            };
            // NOTIFY is sent by its own task on every serial: wait for it
            let mut got = None;
            while waiting.elapsed() < Duration::from_secs(5) {
                if let Some((_, at)) = sec.notifies().into_iter().find(|(s, _)| *s >= zone.serial) {
                    got = Some(at);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            match got {
                Some(at) => {
                    let ms = at.saturating_duration_since(started).as_secs_f64() * 1000.0;
                    self.facts.notify_latency_ms.push(ms);
                    self.entry(
                        "event",
                        format!(
                            "{name} notified of serial {} {ms:.1} ms (real time) after the clock reached the effective time; it transferred the zone ({} names): enforcing",
                            zone.serial,
                            zone.owners.len()
                        ),
                    );
                }
                None => self.entry(
                    "event",
                    format!(
                        "{name} was not notified of serial {} within 5 s",
                        zone.serial
                    ),
                ),
            }
        }
    }

    // ---- set-up -----------------------------------------------------------

    async fn setup(&mut self) -> anyhow::Result<()> {
        let who = self
            .t
            .api
            .get("/api/v1/whoami", Some(&self.t.admin_token))
            .await
            .context("the admin token does not work")?;
        if who["role"] != "admin" {
            bail!(
                "the token given is a {} token; the replay needs an admin token",
                who["role"]
            );
        }
        let home = who["party_id"].as_str().unwrap_or_default().to_owned();
        let stop_rx = self.stop_tx.subscribe();
        let mut first_authority = true;
        for p in self.sc.parties.clone() {
            let id = if p.kind == "authority" && first_authority {
                first_authority = false;
                home.clone()
            } else {
                let body = json!({
                    "kind": p.kind, "name": p.name, "domains": p.domains,
                    "contacts": p.emails.iter().map(|e| json!({"email": e})).collect::<Vec<_>>(),
                });
                let made = self
                    .t
                    .api
                    .post("/api/v1/parties", &self.t.admin_token, body)
                    .await
                    .with_context(|| format!("cannot register party {:?}", p.id))?;
                made["id"].as_str().unwrap_or_default().to_owned()
            };
            if p.webhook || !p.emails.is_empty() {
                let hook = if p.webhook {
                    Some(Webhook::start(stop_rx.clone()).await?)
                } else {
                    None
                };
                let ch = self
                    .t
                    .api
                    .put(
                        &format!("/api/v1/parties/{id}/channel"),
                        &self.t.admin_token,
                        json!({"webhook_url": hook.as_ref().map(|h| h.url()), "emails": p.emails}),
                    )
                    .await
                    .with_context(|| format!("cannot set the channel of {:?} (a server run with --against needs [channel] allow_private_targets = true for the replay's webhook receivers)", p.id))?;
                if let Some(h) = hook {
                    h.set_secret(ch["webhook_secret"].as_str().unwrap_or_default().to_owned());
                    self.hooks.insert(p.id.clone(), h);
                }
            }
            if p.secondary {
                let sec = Secondary::start(stop_rx.clone()).await?;
                let r = self
                    .t
                    .api
                    .put(
                        &format!("/api/v1/parties/{id}/resolvers"),
                        &self.t.admin_token,
                        json!({"notify": [sec.addr.to_string()]}),
                    )
                    .await
                    .with_context(|| format!("cannot register the resolvers of {:?}", p.id))?;
                let key = TsigKey::new(
                    r["tsig_key_name"].as_str().unwrap_or_default(),
                    r["tsig_algorithm"].as_str().unwrap_or("hmac-sha256"),
                    r["tsig_secret"].as_str().unwrap_or_default(),
                )
                .map_err(|e| anyhow!("the TSIG key of {:?}: {e:?}", p.id))?;
                self.isps.push(Isp {
                    name: p.name.clone(),
                    key,
                    secondary: sec,
                });
            }
            self.parties.insert(p.id.clone(), id);
        }
        for t in self.sc.tokens.clone() {
            let party = &self.parties[&t.party];
            let made = self
                .t
                .api
                .post(
                    &format!("/api/v1/parties/{party}/tokens"),
                    &self.t.admin_token,
                    json!({"role": t.role, "label": t.label.clone().unwrap_or_else(|| t.id.clone())}),
                )
                .await
                .with_context(|| format!("cannot create token {:?}", t.id))?;
            self.tokens.insert(
                t.id.clone(),
                made["token"].as_str().unwrap_or_default().to_owned(),
            );
        }
        let text = format!(
            "set up {} and {}; the replay receives {} and acts as {}",
            count(self.sc.parties.len(), "party", "parties"),
            count(self.sc.tokens.len(), "token", "tokens"),
            count(self.hooks.len(), "webhook", "webhooks"),
            count(self.isps.len(), "ISP secondary", "ISP secondaries")
        );
        self.entry("action", text);
        Ok(())
    }

    async fn run_inner(&mut self) -> anyhow::Result<()> {
        let (now, _) = self.settle().await?;
        self.now = now;
        if now > self.sc.start {
            bail!(
                "the server's clock is at {}, after the scenario's start {}; start it with --simulated-clock {} on a fresh database",
                self.sc.show(now),
                self.sc.show(self.sc.start),
                self.sc.meta.start
            );
        }
        self.advance_to(self.sc.start).await?;
        self.setup().await?;
        for step in &self.sc.steps {
            self.advance_to(step.at).await?;
            let done = self.step(step).await;
            match step.refused {
                None => done.with_context(|| {
                    format!(
                        "step {} ({}, line {})",
                        step.index,
                        step.action.name(),
                        step.line
                    )
                })?,
                Some(code) => self.check_refused(step, code, done),
            }
            let (now, _) = self.settle().await?;
            self.now = now;
            self.collect().await?;
        }
        Ok(())
    }

    // ---- steps ----------------------------------------------------------------

    async fn step(&mut self, step: &Step) -> anyhow::Result<()> {
        let api = self.t.api.clone();
        match &step.action {
            Action::SubmitNotice(a) => {
                let mut items: Vec<Value> = a
                    .items
                    .iter()
                    .map(|i| item_json(&i.kind, &i.value, i.native_id.as_deref(), self.now))
                    .collect();
                if let Some(r) = &a.channels {
                    for k in r.first..r.first.saturating_add(r.count) {
                        let native = format!("-100{:010}", 1_000_000 + u64::from(k));
                        items.push(item_json(
                            "platform_channel",
                            &format!("@{}{k}", r.prefix),
                            Some(&native),
                            self.now,
                        ));
                    }
                }
                let count = items.len();
                let body = json!({
                    "platform_id": self.parties[&a.platform], "category": a.category, "urgency": a.urgency,
                    "legal_basis": {"reference": a.legal_basis, "text": a.legal_text.clone().unwrap_or_else(|| format!("See {}.", a.legal_basis))},
                    "explanation": a.explanation, "items": items,
                });
                let n = api
                    .post("/api/v1/notices", self.token(&a.by)?, body)
                    .await?;
                let id = n["id"].as_str().unwrap_or_default().to_owned();
                let item_ids = n["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                let dups = n["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|i| !i["duplicate_of"].is_null())
                    .count();
                self.facts.notices += 1;
                self.facts.items_targeted += count as u64;
                if self.facts.first_request.is_none() {
                    self.facts.first_request = Some(self.now);
                }
                self.notices.insert(
                    a.notice.clone(),
                    NoticeRef {
                        id,
                        items: item_ids,
                    },
                );
                self.entry(
                    "action",
                    format!(
                        "{} submits notice {} to {}: {count} item(s), {} ({}){}",
                        a.by,
                        a.notice,
                        self.party_name(&a.platform),
                        a.category,
                        a.urgency,
                        if dups > 0 {
                            format!(
                                "; {dups} already named by an open notice: merged, not multiplied"
                            )
                        } else {
                            String::new()
                        }
                    ),
                );
            }
            Action::FetchInbox(a) => {
                let list = api.get("/api/v1/inbox", Some(self.token(&a.by)?)).await?;
                let n = list.as_array().map(Vec::len).unwrap_or(0);
                self.entry(
                    "action",
                    format!("{} fetches the inbox: {n} open notice(s)", a.by),
                );
            }
            Action::Acknowledge(a) => {
                let id = self.notice(&a.notice)?.id.clone();
                let r = api
                    .post(
                        &format!("/api/v1/notices/{id}/acknowledge"),
                        self.token(&a.by)?,
                        json!({}),
                    )
                    .await?;
                let kid = r["receipt"]["kid"].as_str().unwrap_or("?").to_owned();
                self.entry(
                    "action",
                    format!(
                        "{} acknowledges notice {}: signed receipt ({kid})",
                        a.by, a.notice
                    ),
                );
            }
            Action::Decide(a) => {
                let (id, items) = {
                    let n = self.notice(&a.notice)?;
                    (n.id.clone(), n.items.clone())
                };
                let token = self.token(&a.by)?.to_owned();
                let current = api
                    .get(&format!("/api/v1/notices/{id}"), Some(&token))
                    .await?;
                let mut states = item_states(&current);
                let chosen: Vec<usize> = match &a.items {
                    Some(list) => {
                        if let Some(bad) = list.iter().find(|i| **i >= items.len()) {
                            bail!(
                                "notice {} has {} items; there is no item {bad}",
                                a.notice,
                                items.len()
                            );
                        }
                        list.clone()
                    }
                    None => (0..items.len()).collect(),
                };
                let mut body = json!({"decision": a.decision});
                if let Some(r) = &a.reason {
                    body["reason"] = json!(r);
                }
                let mut decided = 0;
                for i in chosen {
                    // "all items" means the undecided ones, and an item
                    // settled by its duplicate's decision stays settled
                    let open = matches!(
                        states.get(i).map(String::as_str),
                        Some("pending" | "disputed")
                    );
                    if a.items.is_none() && !open {
                        continue;
                    }
                    let r = api
                        .post(
                            &format!("/api/v1/notices/{id}/items/{}/decision", items[i]),
                            &token,
                            body.clone(),
                        )
                        .await
                        .with_context(|| format!("deciding item {i} of notice {}", a.notice))?;
                    states = item_states(&r);
                    decided += 1;
                }
                self.entry(
                    "action",
                    format!(
                        "{} decides {} item(s) of notice {}: {}{}",
                        a.by,
                        decided,
                        a.notice,
                        a.decision,
                        a.reason
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                );
            }
            Action::WithdrawNotice(a) => {
                let id = self.notice(&a.notice)?.id.clone();
                api.post(
                    &format!("/api/v1/notices/{id}/withdraw"),
                    self.token(&a.by)?,
                    json!({"reason": a.reason}),
                )
                .await?;
                self.entry(
                    "action",
                    format!("{} withdraws notice {}: {}", a.by, a.notice, a.reason),
                );
            }
            Action::DecideEscalation(a) => {
                let esc = self.escalation_of(&a.notice).await?;
                let id = esc["id"].as_str().unwrap_or_default().to_owned();
                api.post(
                    &format!("/api/v1/escalations/{id}/decision"),
                    self.token(&a.by)?,
                    json!({"decision": a.decision, "note": a.note}),
                )
                .await?;
                self.entry(
                    "action",
                    format!(
                        "{} decides the escalation of notice {}: {} ({})",
                        a.by, a.notice, a.decision, a.note
                    ),
                );
            }
            Action::ProposeOrder(a) => {
                let token = self.token(&a.by)?.to_owned();
                let o = if let Some(n) = &a.from_escalation_of {
                    let esc = self.escalation_of(n).await?;
                    let id = esc["id"].as_str().unwrap_or_default().to_owned();
                    let mut body = json!({
                        "effective_at": a.effective_at.0.to_string(),
                        "expires_at": a.expires_at.0.to_string(),
                        "review_at": a.review_at.0.to_string(),
                    });
                    if let Some(act) = &a.action {
                        body["action"] = json!(act);
                    }
                    api.post(
                        &format!("/api/v1/escalations/{id}/draft-order"),
                        &token,
                        body,
                    )
                    .await?
                } else {
                    let notices: Vec<String> = a
                        .notices
                        .iter()
                        .map(|n| self.notice(n).map(|r| r.id.clone()))
                        .collect::<anyhow::Result<_>>()?;
                    let reference = a
                        .legal_basis
                        .clone()
                        .ok_or_else(|| anyhow!("a standalone order needs legal_basis"))?;
                    let body = json!({
                        "targets": a.targets.iter().map(|t| json!({"name": t, "include_subdomains": a.include_subdomains})).collect::<Vec<_>>(),
                        "action": a.action.clone().unwrap_or_else(|| "walled_garden".into()),
                        "category": a.category.clone().ok_or_else(|| anyhow!("a standalone order needs category"))?,
                        "legal_basis": {"reference": reference, "text": a.legal_text.clone().unwrap_or_else(|| format!("See {reference}."))},
                        "explanation": a.explanation,
                        "effective_at": a.effective_at.0.to_string(),
                        "expires_at": a.expires_at.0.to_string(),
                        "review_at": a.review_at.0.to_string(),
                        "emergency": a.emergency,
                        "notices": notices,
                    });
                    api.post("/api/v1/orders", &token, body).await?
                };
                let id = o["id"].as_str().unwrap_or_default().to_owned();
                let radius = api
                    .get(&format!("/api/v1/orders/{id}/blast-radius"), Some(&token))
                    .await?;
                self.facts.orders += 1;
                self.orders.insert(a.order.clone(), id);
                self.order_states.insert(
                    a.order.clone(),
                    o["state"].as_str().unwrap_or("?").to_owned(),
                );
                let hit = radius["platform_domains_hit"].as_u64().unwrap_or(0);
                self.entry(
                    "action",
                    format!(
                        "{} proposes order {}: {} name(s), {}, effective {}, expires {}, review {}; blast radius: {}",
                        a.by,
                        a.order,
                        o["target_count"],
                        o["action"].as_str().unwrap_or("?"),
                        self.sc.show(a.effective_at.0),
                        self.sc.show(a.expires_at.0),
                        self.sc.show(a.review_at.0),
                        if hit > 0 {
                            format!("{hit} registered platform domain(s) hit")
                        } else {
                            "no platform's own domain".into()
                        }
                    ),
                );
            }
            Action::ApproveOrder(a) => {
                let id = self.order(&a.order)?.to_owned();
                let o = api
                    .post(
                        &format!("/api/v1/orders/{id}/approve"),
                        self.token(&a.by)?,
                        json!({}),
                    )
                    .await?;
                self.entry(
                    "action",
                    format!(
                        "{} approves order {} (four eyes: not the proposer): {}",
                        a.by,
                        a.order,
                        o["state"].as_str().unwrap_or("?")
                    ),
                );
            }
            Action::AuthoriseOrder(a) => {
                let id = self.order(&a.order)?.to_owned();
                let token = self.token(&a.by)?.to_owned();
                let party = self
                    .sc
                    .tokens
                    .iter()
                    .find(|t| t.id == a.by)
                    .map(|t| t.party.clone())
                    .ok_or_else(|| anyhow!("token {:?} is not the scenario's", a.by))?;
                let party_id = self.parties[&party].clone();
                // the replay's key for this authoriser, registered on first use
                let seed: [u8; 32] =
                    sha2::Sha256::digest(format!("tapis-replay-authoriser:{party}")).into();
                let key = tapis_core::sign::Signer::from_seed(seed);
                let channel = api
                    .get(&format!("/api/v1/parties/{party_id}/channel"), Some(&token))
                    .await
                    .unwrap_or(Value::Null);
                if channel["public_key"].as_str() != Some(key.public_key_b64().as_str()) {
                    api.put(
                        &format!("/api/v1/parties/{party_id}/channel"),
                        &token,
                        json!({"public_key": key.public_key_b64()}),
                    )
                    .await?;
                }
                let decision = a.decision.clone().unwrap_or_else(|| "authorise".into());
                let dp = api
                    .get(&format!("/api/v1/orders/{id}/due-process"), Some(&token))
                    .await?;
                let mut statement = dp["statement_to_sign"].clone();
                statement["decision"] = json!(decision);
                let signature = key.seal(statement)?["signature"].clone();
                let r = api
                    .post(
                        &format!("/api/v1/orders/{id}/authorisation"),
                        &token,
                        json!({"decision": decision, "reasons": a.reasons, "signature": signature}),
                    )
                    .await?;
                let why: Vec<String> = dp["needs_authorisation"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x["kind"].as_str().map(str::to_owned))
                            .collect::<std::collections::BTreeSet<_>>()
                            .into_iter()
                            .collect()
                    })
                    .unwrap_or_default();
                self.entry(
                    "action",
                    format!(
                        "{} {} order {} (signed; it needed authorisation: {}) — order now {}: {}",
                        a.by,
                        if decision == "refuse" {
                            "refuses"
                        } else {
                            "authorises"
                        },
                        a.order,
                        if why.is_empty() {
                            "no".into()
                        } else {
                            why.join(", ")
                        },
                        r["order"]["state"].as_str().unwrap_or("?"),
                        a.reasons
                    ),
                );
            }
            Action::RespondToOrder(a) => {
                let id = self.order(&a.order)?.to_owned();
                api.post(
                    &format!("/api/v1/orders/{id}/responses"),
                    self.token(&a.by)?,
                    json!({"kind": a.kind, "text": a.text}),
                )
                .await?;
                self.entry(
                    "action",
                    format!(
                        "{} answers order {} ({}): {}",
                        a.by, a.order, a.kind, a.text
                    ),
                );
            }
            Action::ReviewOrder(a) => {
                let id = self.order(&a.order)?.to_owned();
                api.post(
                    &format!("/api/v1/orders/{id}/review"),
                    self.token(&a.by)?,
                    json!({"note": a.reason}),
                )
                .await?;
                self.entry(
                    "action",
                    format!("{} reviews order {}: {}", a.by, a.order, a.reason),
                );
            }
            Action::LiftOrder(a) => {
                let id = self.order(&a.order)?.to_owned();
                api.post(
                    &format!("/api/v1/orders/{id}/lift"),
                    self.token(&a.by)?,
                    json!({"reason": a.reason}),
                )
                .await?;
                self.entry(
                    "action",
                    format!("{} lifts order {}: {}", a.by, a.order, a.reason),
                );
            }
            Action::IspAcknowledge(a) => {
                let token = self.token(&a.by)?.to_owned();
                let serial = match (self.t.dns, self.isps.first()) {
                    (Some(dns), Some(isp)) => axfr(dns, &self.t.zone, &isp.key).await?.serial,
                    _ => bail!("isp_acknowledge needs an ISP with secondary = true"),
                };
                api.post("/api/v1/rpz/acknowledge", &token, json!({"serial": serial}))
                    .await?;
                self.entry(
                    "action",
                    format!("{} acknowledges zone serial {serial}", a.by),
                );
            }
            Action::WebhookDown(a) | Action::WebhookUp(a) => {
                let up = matches!(step.action, Action::WebhookUp(_));
                if let Some(h) = self.hooks.get(&a.party) {
                    h.set_up(up);
                }
                self.entry(
                    "action",
                    format!(
                        "{}'s webhook endpoint {}",
                        self.party_name(&a.party),
                        if up {
                            "is back up"
                        } else {
                            "goes down (answers 503)"
                        }
                    ),
                );
            }
            Action::Request(r) => {
                let path = self.resolve(&r.path)?;
                let body = match &r.body {
                    Some(b) => Some(self.resolve_json(serde_json::to_value(b)?)?),
                    None => None,
                };
                let method = reqwest::Method::from_bytes(r.method.as_bytes())?;
                let token = self.token(&r.by)?.to_owned();
                let answer = api.call(method, &path, Some(&token), body).await?;
                let summary = answer
                    .get("state")
                    .and_then(Value::as_str)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                self.entry(
                    "action",
                    format!("{} {} {}{summary}", r.by, r.method, r.path),
                );
            }
            Action::Note(a) => self.entry("action", format!("({})", a.text)),
            _ => {
                let (passed, expectation, found) = self.expect(&step.action).await?;
                self.checks.push(Checked {
                    step: step.index,
                    line: step.line,
                    at: self.sc.show(self.now),
                    expectation: expectation.clone(),
                    passed,
                    found: found.clone(),
                });
                if passed {
                    self.entry("expect", format!("{expectation}: {found}"));
                } else {
                    self.entry(
                        "fail",
                        format!(
                            "expectation failed (step {}, line {}): {expectation}, but found {found}",
                            step.index, step.line
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// `{notice:NAME}`, `{order:NAME}` and `{party:NAME}` → ids.
    fn resolve(&self, text: &str) -> anyhow::Result<String> {
        let mut out = text.to_owned();
        for (kind, name) in super::scenario::references(text) {
            let id = match kind {
                "notice" => self.notice(name)?.id.clone(),
                "order" => self.order(name)?.to_owned(),
                _ => self
                    .parties
                    .get(name)
                    .cloned()
                    .ok_or_else(|| anyhow!("party {name:?} was not registered"))?,
            };
            out = out.replace(&format!("{{{kind}:{name}}}"), &id);
        }
        Ok(out)
    }

    fn resolve_json(&self, v: Value) -> anyhow::Result<Value> {
        Ok(match v {
            Value::String(s) => Value::String(self.resolve(&s)?),
            Value::Array(a) => Value::Array(
                a.into_iter()
                    .map(|x| self.resolve_json(x))
                    .collect::<anyhow::Result<_>>()?,
            ),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| Ok((k, self.resolve_json(x)?)))
                    .collect::<anyhow::Result<_>>()?,
            ),
            other => other,
        })
    }

    /// A step that must be refused: record whether it was, with that status.
    fn check_refused(&mut self, step: &Step, code: u16, done: anyhow::Result<()>) {
        let expectation = format!("{} refused with {code}", step.action.name());
        let (passed, found) = match &done {
            Ok(()) => (false, "it was carried out".to_owned()),
            Err(e) => match e.downcast_ref::<ApiError>() {
                Some(api) => (api.status == code, api.to_string()),
                None => (false, format!("{e:#}")),
            },
        };
        self.checks.push(Checked {
            step: step.index,
            line: step.line,
            at: self.sc.show(self.now),
            expectation: expectation.clone(),
            passed,
            found: found.clone(),
        });
        if passed {
            self.entry("expect", format!("{expectation}: {found}"));
        } else {
            self.entry(
                "fail",
                format!(
                    "expectation failed (step {}, line {}): {expectation}, but {found}",
                    step.index, step.line
                ),
            );
        }
    }

    async fn escalation_of(&self, notice: &str) -> anyhow::Result<Value> {
        let id = self.notice(notice)?.id.clone();
        let list = self
            .t
            .api
            .get("/api/v1/escalations", Some(&self.t.admin_token))
            .await?;
        list.as_array()
            .into_iter()
            .flatten()
            .rfind(|e| e["notice_id"] == id.as_str())
            .cloned()
            .ok_or_else(|| anyhow!("notice {notice} has no escalation (yet)"))
    }

    /// Check an expectation: (passed, what was expected, what was found).
    async fn expect(&mut self, action: &Action) -> anyhow::Result<(bool, String, String)> {
        let api = self.t.api.clone();
        let admin = self.t.admin_token.clone();
        Ok(match action {
            Action::ExpectNotice(e) => {
                let id = self.notice(&e.notice)?.id.clone();
                let n = api
                    .get(&format!("/api/v1/notices/{id}"), Some(&admin))
                    .await?;
                let mut want = Vec::new();
                let mut got = Vec::new();
                let mut ok = true;
                if let Some(s) = &e.state {
                    want.push(format!("state {s}"));
                    got.push(format!("state {}", n["state"].as_str().unwrap_or("?")));
                    ok &= n["state"] == s.as_str();
                }
                if let Some(d) = e.delivered {
                    want.push(if d {
                        "delivered".into()
                    } else {
                        "not delivered".to_owned()
                    });
                    let is = !n["delivered_at"].is_null();
                    got.push(match n["delivered_at"].as_str() {
                        Some(t) => format!("delivered at {}", show_str(self.sc, t)),
                        None => "not delivered".into(),
                    });
                    ok &= is == d;
                }
                if let Some(x) = e.escalated {
                    want.push(if x {
                        "escalated".into()
                    } else {
                        "never escalated".to_owned()
                    });
                    let esc = self.escalation_of(&e.notice).await.ok();
                    got.push(match &esc {
                        Some(v) => format!(
                            "escalation ({}) opened at {}",
                            v["reason"].as_str().unwrap_or("?"),
                            show_str(self.sc, v["created_at"].as_str().unwrap_or("?"))
                        ),
                        None => "no escalation".into(),
                    });
                    ok &= esc.is_some() == x;
                }
                (
                    ok,
                    format!("notice {}: {}", e.notice, want.join(", ")),
                    got.join(", "),
                )
            }
            Action::ExpectItem(e) => {
                let (id, count) = {
                    let n = self.notice(&e.notice)?;
                    (n.id.clone(), n.items.len())
                };
                if e.item >= count {
                    return Ok((
                        false,
                        format!("notice {} item {}", e.notice, e.item),
                        format!("the notice has {count} item(s)"),
                    ));
                }
                let n = api
                    .get(&format!("/api/v1/notices/{id}"), Some(&admin))
                    .await?;
                let item = &n["items"][e.item];
                let mut want = Vec::new();
                let mut got = Vec::new();
                let mut ok = true;
                if let Some(s) = &e.state {
                    want.push(format!("state {s}"));
                    got.push(format!("state {}", item["state"].as_str().unwrap_or("?")));
                    ok &= item["state"] == s.as_str();
                }
                if let Some(d) = &e.duplicate_of {
                    let orig = self.notice(d)?.id.clone();
                    want.push(format!("a duplicate of an item of notice {d}"));
                    let of = item["duplicate_of"]["notice_id"].as_str();
                    let back: Option<String> = of.map(|o| {
                        self.notices
                            .iter()
                            .find(|(_, r)| r.id == o)
                            .map(|(h, _)| h.clone())
                            .unwrap_or_else(|| o.to_owned())
                    });
                    got.push(match back {
                        Some(h) => format!("a duplicate of notice {h}'s item"),
                        None => "not a duplicate".into(),
                    });
                    ok &= of == Some(orig.as_str());
                }
                (
                    ok,
                    format!(
                        "notice {} item {} ({}): {}",
                        e.notice,
                        e.item,
                        item["value"].as_str().unwrap_or("?"),
                        want.join(", ")
                    ),
                    got.join(", "),
                )
            }
            Action::ExpectOrder(e) => {
                let id = self.order(&e.order)?.to_owned();
                let o = api
                    .get(&format!("/api/v1/orders/{id}"), Some(&admin))
                    .await?;
                let state = o["state"].as_str().unwrap_or("?");
                (
                    state == e.state,
                    format!("order {} {}", e.order, e.state),
                    format!("order {} {state}", e.order),
                )
            }
            Action::ExpectBlocked(e) => {
                let want = if e.blocked { "blocked" } else { "not blocked" };
                let mut found = Vec::new();
                let mut ok = true;
                if e.via != "dns" {
                    let l = api
                        .get(&format!("/api/v1/lookup?name={}", e.name), None)
                        .await?;
                    let blocked = l["blocked"].as_bool().unwrap_or(false);
                    ok &= blocked == e.blocked;
                    found.push(format!(
                        "lookup: {}{}",
                        if blocked { "blocked" } else { "not blocked" },
                        l["action"]
                            .as_str()
                            .map(|a| format!(" ({a})"))
                            .unwrap_or_default()
                    ));
                }
                if e.via != "lookup" {
                    match (self.t.dns, self.isps.first()) {
                        (Some(dns), Some(isp)) => {
                            let key = isp.key.clone();
                            let name = isp.name.clone();
                            let zone = axfr(dns, &self.t.zone, &key).await?;
                            let blocked = zone.covers(&e.name.to_ascii_lowercase());
                            ok &= blocked == e.blocked;
                            found.push(format!(
                                "RPZ serial {} transferred by {name}: {}",
                                zone.serial,
                                if blocked {
                                    "blocked"
                                } else {
                                    "not in the zone"
                                }
                            ));
                        }
                        _ => {
                            ok = false;
                            found.push("no RPZ primary or ISP secondary to transfer the zone (declare an isp with secondary = true; with --against, give --dns)".into());
                        }
                    }
                }
                (ok, format!("{} {want}", e.name), found.join("; "))
            }
            Action::ExpectAudit(e) => {
                let v = api.get("/api/v1/audit/verify", Some(&admin)).await?;
                let intact = v["first_break"].is_null();
                (
                    intact == e.verifies,
                    if e.verifies {
                        "audit chain verifies".into()
                    } else {
                        "audit chain broken".to_owned()
                    },
                    if intact {
                        format!("intact, {} events", v["events"])
                    } else {
                        format!("broken: {}", v["first_break"])
                    },
                )
            }
            Action::ExpectReceived(e) => {
                let id = self.notice(&e.notice)?.id.clone();
                // the events tapis sent for this notice, by event id
                let sent = api
                    .get(&format!("/api/v1/notices/{id}/deliveries"), Some(&admin))
                    .await?;
                let wanted: std::collections::HashSet<String> = sent
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| d["event_type"] == e.event.as_str())
                    .filter_map(|d| d["event_id"].as_str().map(str::to_owned))
                    .collect();
                let by_hook = self
                    .hooks
                    .get(&e.party)
                    .map(|h| {
                        h.received()
                            .iter()
                            .filter(|r| wanted.contains(&r.id))
                            .count()
                    })
                    .unwrap_or(0);
                let emails = self.t.smtp.as_ref().map(|s| s.mail());
                let addresses = self
                    .sc
                    .party(&e.party)
                    .map(|p| p.emails.clone())
                    .unwrap_or_default();
                let by_mail = emails
                    .as_ref()
                    .map(|m| {
                        m.iter()
                            .filter(|x| {
                                x.message_id()
                                    .and_then(|m| m.strip_suffix("@tapis"))
                                    .is_some_and(|m| wanted.contains(m))
                                    && x.to.iter().any(|t| addresses.contains(t))
                            })
                            .count()
                    })
                    .unwrap_or(0);
                let ok = match e.via.as_str() {
                    "webhook" => by_hook > 0,
                    "email" => by_mail > 0,
                    _ => by_hook + by_mail > 0,
                };
                (
                    ok,
                    format!(
                        "{} received {} of notice {} by {}",
                        self.party_name(&e.party),
                        e.event,
                        e.notice,
                        e.via
                    ),
                    format!(
                        "{by_hook} by webhook, {}",
                        if emails.is_some() {
                            format!("{by_mail} by email")
                        } else {
                            "email not observable (no SMTP sink: give --smtp-listen matching the server's smtp.url)".into()
                        }
                    ),
                )
            }
            other => bail!("{} is not an expectation", other.name()),
        })
    }
}

fn item_json(kind: &str, value: &str, native_id: Option<&str>, now: Timestamp) -> Value {
    let sha = hex::encode(Sha256::digest(format!("evidence of {value}").as_bytes()));
    let mut v = json!({
        "kind": kind, "value": value,
        "evidence": [{"sha256": sha, "description": "archived copy (fictional, for the replay)", "captured_at": now.to_string()}],
    });
    if let Some(n) = native_id {
        v["native_id"] = json!(n);
    }
    v
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn item_states(notice: &Value) -> Vec<String> {
    notice["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn show_str(sc: &Scenario, t: &str) -> String {
    Timestamp::parse("t", t)
        .map(|t| sc.show(t))
        .unwrap_or_else(|_| t.to_owned())
}

/// A notice's audit event as a timeline line; `None` for what the action
/// line already said.
fn describe(sc: &Scenario, handle: &str, e: &Value) -> Option<String> {
    let after = &e["after"];
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    Some(match e["action"].as_str()? {
        "notice.delivered" => format!(
            "notice {handle} delivered ({}); deadline {} under {}",
            s(&after["via"]),
            show_str(sc, after["due_at"].as_str().unwrap_or("?")),
            s(&after["sla_version"])
        ),
        "delivery.attempt" => {
            if after["ok"] == true && after["channel"] != "email" {
                return None;
            }
            if after["ok"] == true {
                format!("notice {handle}: {} sent by email", s(&after["event_type"]))
            } else {
                format!(
                    "notice {handle}: {} attempt {} of {} failed: {}",
                    s(&after["channel"]),
                    after["attempt"],
                    s(&after["event_type"]),
                    after["error"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("HTTP {}", after["status"]))
                )
            }
        }
        "delivery.dead_lettered" => format!(
            "notice {handle}: {} dead-lettered after {} attempts; fallback: {}",
            s(&after["channel"]),
            after["attempts"],
            after["fallback"].as_str().unwrap_or("none")
        ),
        "notice.reminder" => {
            format!("notice {handle}: reminder sent to the platform (half the time gone)")
        }
        "notice.warning" => format!(
            "notice {handle}: warning {} sent to the platform",
            after["level"]
        ),
        "notice.escalated" => format!(
            "notice {handle} ESCALATED ({}): {} item(s) still undecided; an approver must decide",
            s(&after["reason"]),
            after["pending_items"].as_array().map(Vec::len).unwrap_or(0)
        ),
        "notice.closed" => format!("notice {handle} closed: every item decided"),
        "notice.disputed" => format!("notice {handle} disputed by the platform"),
        _ => return None,
    })
}
