//! Drives a tapis server through a scenario over HTTP, exactly as its
//! users would: the same client for an in-process server and for a running
//! one (`--against`). Time moves only by `POST /api/v1/admin/clock/advance`,
//! in hops to each step and to each piece of work tapis has scheduled
//! before it (`GET /api/v1/admin/clock` says when that is), so every ladder
//! step and retry happens at its own simulated time; after each hop and
//! each action the driver waits until tapis reports nothing due.
//!
//! This file holds the run loop, the clock and the dispatcher: [`Driver::step`]
//! hands each action to its own function in [`actions`] and each expectation
//! to its own function in [`expect`]; [`setup`] registers the scenario's
//! parties and tokens, and [`observe`] turns what tapis did between steps
//! into timeline lines.

mod actions;
mod api;
mod expect;
mod observe;
mod setup;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tapis_core::Timestamp;
use tapis_dns::tsig::TsigKey;

pub use api::{Api, ApiError};

use super::scenario::{Action, Scenario, Step};
use super::sinks::{Secondary, SmtpSink, Webhook, Zone, axfr};

/// Where the driver finds the server's parts.
pub struct Target {
    pub api: Api,
    pub admin_token: String,
    /// The RPZ primary (for zone transfers as an ISP).
    pub dns: Option<SocketAddr>,
    pub zone: String,
    /// The SMTP sink the server sends email to, if the replay runs it.
    pub smtp: Option<Arc<SmtpSink>>,
    /// The server's database, when it runs in-process: what the replay
    /// does as the host operator (enrolling authorisers' keys, which the
    /// API refuses to do). `None` with `--against`.
    pub host: Option<tapis_store::Store>,
}

impl Target {
    /// A tapis started in-process (the replay's default, and the demo).
    pub fn in_process(
        running: &crate::server::Running,
        admin_token: String,
        zone: String,
        smtp: Arc<SmtpSink>,
    ) -> anyhow::Result<Target> {
        Ok(Target {
            api: Api::new(&format!("http://{}", running.http))?,
            admin_token,
            dns: Some(running.dns),
            zone,
            smtp: Some(smtp),
            host: Some(running.store.clone()),
        })
    }
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

/// What an expectation found: whether it held, what was expected, what
/// was there instead.
pub struct Verdict {
    pub passed: bool,
    pub expected: String,
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
    finished: HashSet<String>,
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
            finished: HashSet::new(),
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

    /// Carry out one step: an action, or an expectation whose verdict is
    /// recorded.
    async fn step(&mut self, step: &Step) -> anyhow::Result<()> {
        let verdict = match &step.action {
            Action::SubmitNotice(a) => return self.submit_notice(a).await,
            Action::FetchInbox(a) => return self.fetch_inbox(a).await,
            Action::Acknowledge(a) => return self.acknowledge(a).await,
            Action::Decide(a) => return self.decide(a).await,
            Action::WithdrawNotice(a) => return self.withdraw_notice(a).await,
            Action::DecideEscalation(a) => return self.decide_escalation(a).await,
            Action::ProposeOrder(a) => return self.propose_order(a).await,
            Action::ApproveOrder(a) => return self.approve_order(a).await,
            Action::AuthoriseOrder(a) => return self.authorise_order(a).await,
            Action::RespondToOrder(a) => return self.respond_to_order(a).await,
            Action::ReviewOrder(a) => return self.review_order(a).await,
            Action::LiftOrder(a) => return self.lift_order(a).await,
            Action::IspAcknowledge(a) => return self.isp_acknowledge(a).await,
            Action::WebhookDown(a) => return self.set_webhook(a, false),
            Action::WebhookUp(a) => return self.set_webhook(a, true),
            Action::Request(r) => return self.request(r).await,
            Action::Note(a) => return self.note(a),
            Action::ExpectNotice(e) => self.expect_notice(e).await?,
            Action::ExpectItem(e) => self.expect_item(e).await?,
            Action::ExpectOrder(e) => self.expect_order(e).await?,
            Action::ExpectBlocked(e) => self.expect_blocked(e).await?,
            Action::ExpectAudit(e) => self.expect_audit(e).await?,
            Action::ExpectReceived(e) => self.expect_received(e).await?,
        };
        self.record(step, verdict, "but found");
        Ok(())
    }

    /// A step that must be refused: record whether it was, with that status.
    fn check_refused(&mut self, step: &Step, code: u16, done: anyhow::Result<()>) {
        let (passed, found) = match &done {
            Ok(()) => (false, "it was carried out".to_owned()),
            Err(e) => match e.downcast_ref::<ApiError>() {
                Some(api) => (api.status == code, api.to_string()),
                None => (false, format!("{e:#}")),
            },
        };
        let expected = format!("{} refused with {code}", step.action.name());
        self.record(
            step,
            Verdict {
                passed,
                expected,
                found,
            },
            "but",
        );
    }

    /// Keep a verdict for the summary and the report, and print it.
    fn record(&mut self, step: &Step, v: Verdict, but: &str) {
        self.checks.push(Checked {
            step: step.index,
            line: step.line,
            at: self.sc.show(self.now),
            expectation: v.expected.clone(),
            passed: v.passed,
            found: v.found.clone(),
        });
        if v.passed {
            self.entry("expect", format!("{}: {}", v.expected, v.found));
        } else {
            self.entry(
                "fail",
                format!(
                    "expectation failed (step {}, line {}): {}, {but} {}",
                    step.index, step.line, v.expected, v.found
                ),
            );
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

    // ---- names to ids -------------------------------------------------------

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

    // ---- talking to tapis ---------------------------------------------------

    /// GET as the replay's admin.
    async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        self.t.api.get(path, Some(&self.t.admin_token)).await
    }

    /// POST `body` to `path` with the scenario token `by`.
    async fn post_as(&self, by: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.t.api.post(path, self.token(by)?, body).await
    }

    /// POST with the scenario token `by`, then print `text` as the step's
    /// line: the whole of an action whose answer tells nothing new.
    async fn post_and_say(
        &mut self,
        by: &str,
        path: &str,
        body: Value,
        text: String,
    ) -> anyhow::Result<()> {
        self.post_as(by, path, body).await?;
        self.entry("action", text);
        Ok(())
    }

    /// The path of one of an order's routes (`/api/v1/orders/{id}/{route}`).
    fn order_path(&self, order: &str, route: &str) -> anyhow::Result<String> {
        Ok(format!("/api/v1/orders/{}/{route}", self.order(order)?))
    }

    /// The path of one of a notice's routes (`/api/v1/notices/{id}/{route}`).
    fn notice_path(&self, notice: &str, route: &str) -> anyhow::Result<String> {
        Ok(format!(
            "/api/v1/notices/{}/{route}",
            self.notice(notice)?.id
        ))
    }

    /// The latest escalation of a notice.
    async fn escalation_of(&self, notice: &str) -> anyhow::Result<Value> {
        let id = self.notice(notice)?.id.clone();
        let list = self.admin_get("/api/v1/escalations").await?;
        list.as_array()
            .into_iter()
            .flatten()
            .rfind(|e| e["notice_id"] == id.as_str())
            .cloned()
            .ok_or_else(|| anyhow!("notice {notice} has no escalation (yet)"))
    }

    /// The RPZ as the first ISP secondary transfers it (its name and the
    /// zone); `None` without an RPZ primary or an ISP secondary.
    async fn transfer_as_isp(&self) -> anyhow::Result<Option<(String, Zone)>> {
        match (self.t.dns, self.isps.first()) {
            (Some(dns), Some(isp)) => Ok(Some((
                isp.name.clone(),
                axfr(dns, &self.t.zone, &isp.key).await?,
            ))),
            _ => Ok(None),
        }
    }

    // ---- the clock ----------------------------------------------------------

    /// Wait until tapis has done everything due now; returns its clock.
    async fn settle(&mut self) -> anyhow::Result<(Timestamp, Option<Timestamp>)> {
        let started = Instant::now();
        loop {
            let st = self
                .admin_get("/api/v1/admin/clock")
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
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time tapis wrote, shown in the scenario's offset.
fn show_str(sc: &Scenario, t: &str) -> String {
    Timestamp::parse("t", t)
        .map(|t| sc.show(t))
        .unwrap_or_else(|_| t.to_owned())
}
