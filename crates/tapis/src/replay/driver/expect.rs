//! One function per expectation: each asks tapis (or the replay's own
//! webhook receivers, SMTP sink and ISP secondary) what is so now, and
//! returns a [`Verdict`]: whether the expectation holds, what it expected
//! and what was found, both worded for the timeline and the report.

use std::collections::HashSet;

use serde_json::Value;

use super::super::scenario::{
    ExpectAudit, ExpectBlocked, ExpectItem, ExpectNotice, ExpectOrder, ExpectReceived,
};
use super::{Driver, Verdict, show_str};

/// An expectation of several parts (state, delivered, …): each part adds
/// what it wanted and what it found, and all must hold.
struct Tally {
    want: Vec<String>,
    got: Vec<String>,
    ok: bool,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            want: Vec::new(),
            got: Vec::new(),
            ok: true,
        }
    }

    fn add(&mut self, want: String, got: String, ok: bool) {
        self.want.push(want);
        self.got.push(got);
        self.ok &= ok;
    }

    fn verdict(self, subject: String) -> Verdict {
        Verdict {
            passed: self.ok,
            expected: format!("{subject}: {}", self.want.join(", ")),
            found: self.got.join(", "),
        }
    }
}

impl Driver<'_> {
    /// A notice as tapis shows it now.
    async fn notice_now(&self, handle: &str) -> anyhow::Result<Value> {
        let id = &self.notice(handle)?.id;
        self.admin_get(&format!("/api/v1/notices/{id}")).await
    }

    pub(super) async fn expect_notice(&self, e: &ExpectNotice) -> anyhow::Result<Verdict> {
        let n = self.notice_now(&e.notice).await?;
        let mut t = Tally::new();
        if let Some(s) = &e.state {
            t.add(
                format!("state {s}"),
                format!("state {}", n["state"].as_str().unwrap_or("?")),
                n["state"] == s.as_str(),
            );
        }
        if let Some(d) = e.delivered {
            let got = match n["delivered_at"].as_str() {
                Some(at) => format!("delivered at {}", show_str(self.sc, at)),
                None => "not delivered".into(),
            };
            let want = if d { "delivered" } else { "not delivered" };
            t.add(want.into(), got, n["delivered_at"].is_null() != d);
        }
        if let Some(x) = e.escalated {
            let esc = self.escalation_of(&e.notice).await.ok();
            let got = match &esc {
                Some(v) => format!(
                    "escalation ({}) opened at {}",
                    v["reason"].as_str().unwrap_or("?"),
                    show_str(self.sc, v["created_at"].as_str().unwrap_or("?"))
                ),
                None => "no escalation".into(),
            };
            let want = if x { "escalated" } else { "never escalated" };
            t.add(want.into(), got, esc.is_some() == x);
        }
        Ok(t.verdict(format!("notice {}", e.notice)))
    }

    pub(super) async fn expect_item(&self, e: &ExpectItem) -> anyhow::Result<Verdict> {
        let count = self.notice(&e.notice)?.items.len();
        if e.item >= count {
            return Ok(Verdict {
                passed: false,
                expected: format!("notice {} item {}", e.notice, e.item),
                found: format!("the notice has {count} item(s)"),
            });
        }
        let n = self.notice_now(&e.notice).await?;
        let item = &n["items"][e.item];
        let mut t = Tally::new();
        if let Some(s) = &e.state {
            t.add(
                format!("state {s}"),
                format!("state {}", item["state"].as_str().unwrap_or("?")),
                item["state"] == s.as_str(),
            );
        }
        if let Some(d) = &e.duplicate_of {
            let orig = self.notice(d)?.id.as_str();
            let of = item["duplicate_of"]["notice_id"].as_str();
            // the original by the scenario's name for it
            let back = of.map(|o| {
                self.notices
                    .iter()
                    .find(|(_, r)| r.id == o)
                    .map_or(o, |(h, _)| h.as_str())
            });
            t.add(
                format!("a duplicate of an item of notice {d}"),
                match back {
                    Some(h) => format!("a duplicate of notice {h}'s item"),
                    None => "not a duplicate".into(),
                },
                of == Some(orig),
            );
        }
        Ok(t.verdict(format!(
            "notice {} item {} ({})",
            e.notice,
            e.item,
            item["value"].as_str().unwrap_or("?")
        )))
    }

    pub(super) async fn expect_order(&self, e: &ExpectOrder) -> anyhow::Result<Verdict> {
        let id = self.order(&e.order)?;
        let o = self.admin_get(&format!("/api/v1/orders/{id}")).await?;
        let state = o["state"].as_str().unwrap_or("?");
        Ok(Verdict {
            passed: state == e.state,
            expected: format!("order {} {}", e.order, e.state),
            found: format!("order {} {state}", e.order),
        })
    }

    /// Blocked or not, by the public lookup and/or in the zone an ISP
    /// secondary transfers.
    pub(super) async fn expect_blocked(&self, e: &ExpectBlocked) -> anyhow::Result<Verdict> {
        let want = if e.blocked { "blocked" } else { "not blocked" };
        let mut found = Vec::new();
        let mut ok = true;
        if e.via != "dns" {
            let l = self
                .t
                .api
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
            match self.transfer_as_isp().await? {
                Some((name, zone)) => {
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
                None => {
                    ok = false;
                    found.push("no RPZ primary or ISP secondary to transfer the zone (declare an isp with secondary = true; with --against, give --dns)".into());
                }
            }
        }
        Ok(Verdict {
            passed: ok,
            expected: format!("{} {want}", e.name),
            found: found.join("; "),
        })
    }

    pub(super) async fn expect_audit(&self, e: &ExpectAudit) -> anyhow::Result<Verdict> {
        let v = self.admin_get("/api/v1/audit/verify").await?;
        let intact = v["first_break"].is_null();
        Ok(Verdict {
            passed: intact == e.verifies,
            expected: if e.verifies {
                "audit chain verifies".into()
            } else {
                "audit chain broken".to_owned()
            },
            found: if intact {
                format!("intact, {} events", v["events"])
            } else {
                format!("broken: {}", v["first_break"])
            },
        })
    }

    /// A platform received an event of a notice, by webhook and/or email:
    /// the events tapis says it sent, matched by event id with what the
    /// replay's receivers got.
    pub(super) async fn expect_received(&self, e: &ExpectReceived) -> anyhow::Result<Verdict> {
        let id = &self.notice(&e.notice)?.id;
        let sent = self
            .admin_get(&format!("/api/v1/notices/{id}/deliveries"))
            .await?;
        let wanted: HashSet<String> = sent
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["event_type"] == e.event.as_str())
            .filter_map(|d| d["event_id"].as_str().map(str::to_owned))
            .collect();
        let by_hook = self.hooks.get(&e.party).map_or(0, |h| {
            h.received()
                .iter()
                .filter(|r| wanted.contains(&r.id))
                .count()
        });
        let emails = self.t.smtp.as_ref().map(|s| s.mail());
        let addresses = self
            .sc
            .party(&e.party)
            .map(|p| p.emails.clone())
            .unwrap_or_default();
        let by_mail = emails.as_ref().map_or(0, |m| {
            m.iter()
                .filter(|x| {
                    x.message_id()
                        .and_then(|m| m.strip_suffix("@tapis"))
                        .is_some_and(|m| wanted.contains(m))
                        && x.to.iter().any(|t| addresses.contains(t))
                })
                .count()
        });
        let passed = match e.via.as_str() {
            "webhook" => by_hook > 0,
            "email" => by_mail > 0,
            _ => by_hook + by_mail > 0,
        };
        Ok(Verdict {
            passed,
            expected: format!(
                "{} received {} of notice {} by {}",
                self.party_name(&e.party),
                e.event,
                e.notice,
                e.via
            ),
            found: format!(
                "{by_hook} by webhook, {}",
                if emails.is_some() {
                    format!("{by_mail} by email")
                } else {
                    "email not observable (no SMTP sink: give --smtp-listen matching the server's smtp.url)".into()
                }
            ),
        })
    }
}
