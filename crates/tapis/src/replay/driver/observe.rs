//! What tapis did between steps, as timeline lines: each tracked notice's
//! new audit events, each order's state changes, and, when an order comes
//! into force, how soon the ISP secondaries heard of the new serial. The
//! facts for the summary (escalations, names blocked, block start and end,
//! NOTIFY latency) are gathered here as they are seen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tapis_core::Timestamp;
use tapis_dns::tsig::TsigKey;

use super::super::scenario::Scenario;
use super::super::sinks::{Secondary, axfr};
use super::{Driver, show_str};

impl Driver<'_> {
    /// Print what happened to tracked notices and orders since last time.
    pub(super) async fn collect(&mut self) -> anyhow::Result<()> {
        self.collect_notices().await?;
        self.collect_orders().await
    }

    /// New audit events of the notices still open, in the order tapis
    /// wrote them.
    async fn collect_notices(&mut self) -> anyhow::Result<()> {
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
                .admin_get(&format!("/api/v1/notices/{id}/timeline"))
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
        Ok(())
    }

    /// Each order whose state changed, and the most names in force at once.
    async fn collect_orders(&mut self) -> anyhow::Result<()> {
        let orders: Vec<(String, String)> = self
            .orders
            .iter()
            .map(|(h, id)| (h.clone(), id.clone()))
            .collect();
        let mut in_force_names = 0;
        for (handle, id) in orders {
            let o = self.admin_get(&format!("/api/v1/orders/{id}")).await?;
            let state = o["state"].as_str().unwrap_or("?").to_owned();
            if state == "in_force" {
                in_force_names += o["target_count"].as_u64().unwrap_or(0);
            }
            if self.order_states.get(&handle) != Some(&state) {
                self.order_states.insert(handle.clone(), state.clone());
                let text = self.order_event(&handle, &state, &o);
                self.entry("event", text);
                if state == "in_force" {
                    self.measure_enforcement().await;
                }
            }
        }
        self.facts.names_blocked = self.facts.names_blocked.max(in_force_names);
        Ok(())
    }

    /// An order's new state as a timeline line (noting when a block starts
    /// and ends).
    fn order_event(&mut self, handle: &str, state: &str, o: &Value) -> String {
        match state {
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
        }
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
