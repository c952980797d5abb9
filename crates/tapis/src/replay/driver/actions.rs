//! One function per scenario action: each turns the step's fields into
//! the API call a real user would make (names resolved to ids, the step's
//! token as the bearer), keeps what later steps need (ids, facts for the
//! summary) and prints one timeline line saying what was done.

use std::collections::BTreeSet;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tapis_core::Timestamp;

use super::super::scenario::{
    As, AuthoriseOrder, Decide, DecideEscalation, Note, OnNotice, OnOrder, OnParty, OrderWithText,
    ProposeOrder, Request, RespondToOrder, SubmitNotice, Withdraw,
};
use super::{Driver, NoticeRef};

impl Driver<'_> {
    pub(super) async fn submit_notice(&mut self, a: &SubmitNotice) -> anyhow::Result<()> {
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
        let n = self.post_as(&a.by, "/api/v1/notices", body).await?;
        let items = n["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        let item_ids = items
            .iter()
            .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let dups = items
            .iter()
            .filter(|i| !i["duplicate_of"].is_null())
            .count();
        self.facts.notices += 1;
        self.facts.items_targeted += count as u64;
        if self.facts.first_request.is_none() {
            self.facts.first_request = Some(self.now);
        }
        let id = n["id"].as_str().unwrap_or_default().to_owned();
        self.notices.insert(
            a.notice.clone(),
            NoticeRef {
                id,
                items: item_ids,
            },
        );
        let merged = if dups > 0 {
            format!("; {dups} already named by an open notice: merged, not multiplied")
        } else {
            String::new()
        };
        let text = format!(
            "{} submits notice {} to {}: {count} item(s), {} ({}){merged}",
            a.by,
            a.notice,
            self.party_name(&a.platform),
            a.category,
            a.urgency,
        );
        self.entry("action", text);
        Ok(())
    }

    pub(super) async fn fetch_inbox(&mut self, a: &As) -> anyhow::Result<()> {
        let list = self
            .t
            .api
            .get("/api/v1/inbox", Some(self.token(&a.by)?))
            .await?;
        let n = list.as_array().map(Vec::len).unwrap_or(0);
        self.entry(
            "action",
            format!("{} fetches the inbox: {n} open notice(s)", a.by),
        );
        Ok(())
    }

    pub(super) async fn acknowledge(&mut self, a: &OnNotice) -> anyhow::Result<()> {
        let r = self
            .post_as(
                &a.by,
                &self.notice_path(&a.notice, "acknowledge")?,
                json!({}),
            )
            .await?;
        let kid = r["receipt"]["kid"].as_str().unwrap_or("?");
        let text = format!(
            "{} acknowledges notice {}: signed receipt ({kid})",
            a.by, a.notice
        );
        self.entry("action", text);
        Ok(())
    }

    /// Decide the chosen items, or every undecided one.
    pub(super) async fn decide(&mut self, a: &Decide) -> anyhow::Result<()> {
        let (id, items) = {
            let n = self.notice(&a.notice)?;
            (n.id.clone(), n.items.clone())
        };
        let token = self.token(&a.by)?.to_owned();
        let current = self
            .t
            .api
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
            let r = self
                .t
                .api
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
        let why = a
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let text = format!(
            "{} decides {decided} item(s) of notice {}: {}{why}",
            a.by, a.notice, a.decision
        );
        self.entry("action", text);
        Ok(())
    }

    pub(super) async fn withdraw_notice(&mut self, a: &Withdraw) -> anyhow::Result<()> {
        let text = format!("{} withdraws notice {}: {}", a.by, a.notice, a.reason);
        let path = self.notice_path(&a.notice, "withdraw")?;
        self.post_and_say(&a.by, &path, json!({"reason": a.reason}), text)
            .await
    }

    pub(super) async fn decide_escalation(&mut self, a: &DecideEscalation) -> anyhow::Result<()> {
        let esc = self.escalation_of(&a.notice).await?;
        let id = esc["id"].as_str().unwrap_or_default();
        self.post_as(
            &a.by,
            &format!("/api/v1/escalations/{id}/decision"),
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
        Ok(())
    }

    /// Propose an order, drafted from an escalation or standalone, and
    /// say how far it reaches (its blast radius).
    pub(super) async fn propose_order(&mut self, a: &ProposeOrder) -> anyhow::Result<()> {
        let o = match &a.from_escalation_of {
            Some(n) => self.draft_order(a, n).await?,
            None => self.standalone_order(a).await?,
        };
        let id = o["id"].as_str().unwrap_or_default().to_owned();
        let radius = self
            .t
            .api
            .get(
                &format!("/api/v1/orders/{id}/blast-radius"),
                Some(self.token(&a.by)?),
            )
            .await?;
        self.facts.orders += 1;
        self.orders.insert(a.order.clone(), id);
        self.order_states.insert(
            a.order.clone(),
            o["state"].as_str().unwrap_or("?").to_owned(),
        );
        let hit = radius["platform_domains_hit"].as_u64().unwrap_or(0);
        let text = format!(
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
        );
        self.entry("action", text);
        Ok(())
    }

    /// The order drafted from `notice`'s escalation.
    async fn draft_order(&self, a: &ProposeOrder, notice: &str) -> anyhow::Result<Value> {
        let esc = self.escalation_of(notice).await?;
        let id = esc["id"].as_str().unwrap_or_default();
        let mut body = order_dates(a);
        if let Some(act) = &a.action {
            body["action"] = json!(act);
        }
        self.post_as(
            &a.by,
            &format!("/api/v1/escalations/{id}/draft-order"),
            body,
        )
        .await
    }

    /// An order over the step's own targets.
    async fn standalone_order(&self, a: &ProposeOrder) -> anyhow::Result<Value> {
        let notices: Vec<String> = a
            .notices
            .iter()
            .map(|n| self.notice(n).map(|r| r.id.clone()))
            .collect::<anyhow::Result<_>>()?;
        let reference = a
            .legal_basis
            .clone()
            .ok_or_else(|| anyhow!("a standalone order needs legal_basis"))?;
        let mut body = order_dates(a);
        body["targets"] = a
            .targets
            .iter()
            .map(|t| json!({"name": t, "include_subdomains": a.include_subdomains}))
            .collect();
        body["action"] = json!(a.action.clone().unwrap_or_else(|| "walled_garden".into()));
        body["category"] = json!(
            a.category
                .clone()
                .ok_or_else(|| anyhow!("a standalone order needs category"))?
        );
        body["legal_basis"] = json!({"reference": reference, "text": a.legal_text.clone().unwrap_or_else(|| format!("See {reference}."))});
        body["explanation"] = json!(a.explanation);
        body["emergency"] = json!(a.emergency);
        body["notices"] = json!(notices);
        self.post_as(&a.by, "/api/v1/orders", body).await
    }

    pub(super) async fn approve_order(&mut self, a: &OnOrder) -> anyhow::Result<()> {
        let o = self
            .post_as(&a.by, &self.order_path(&a.order, "approve")?, json!({}))
            .await?;
        let text = format!(
            "{} approves order {} (four eyes: not the proposer): {}",
            a.by,
            a.order,
            o["state"].as_str().unwrap_or("?")
        );
        self.entry("action", text);
        Ok(())
    }

    /// An authoriser's signed decision. The replay signs with a key of its
    /// own for the token's party, registered on first use.
    pub(super) async fn authorise_order(&mut self, a: &AuthoriseOrder) -> anyhow::Result<()> {
        let id = self.order(&a.order)?.to_owned();
        let token = self.token(&a.by)?.to_owned();
        let key = self.authoriser_key(&a.by).await?;
        let decision = a.decision.clone().unwrap_or_else(|| "authorise".into());
        let dp = self
            .t
            .api
            .get(&format!("/api/v1/orders/{id}/due-process"), Some(&token))
            .await?;
        let mut statement = dp["statement_to_sign"].clone();
        statement["decision"] = json!(decision);
        let signature = key.seal(statement)?["signature"].clone();
        let r = self
            .post_as(
                &a.by,
                &self.order_path(&a.order, "authorisation")?,
                json!({"decision": decision, "reasons": a.reasons, "signature": signature}),
            )
            .await?;
        let why: BTreeSet<&str> = dp["needs_authorisation"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["kind"].as_str())
            .collect();
        let text = format!(
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
                why.into_iter().collect::<Vec<_>>().join(", ")
            },
            r["order"]["state"].as_str().unwrap_or("?"),
            a.reasons
        );
        self.entry("action", text);
        Ok(())
    }

    /// The signing key of the party behind scenario token `by`, derived
    /// from the party's id. Authorisers' keys are enrolled on the host,
    /// never through the API: in-process the replay enrols it in the
    /// server's database on first use, as `tapis authoriser enrol` would;
    /// against a running server it must already be enrolled there.
    async fn authoriser_key(&self, by: &str) -> anyhow::Result<tapis_core::sign::Signer> {
        let party = self
            .sc
            .tokens
            .iter()
            .find(|t| t.id == by)
            .map(|t| t.party.clone())
            .ok_or_else(|| anyhow!("token {by:?} is not the scenario's"))?;
        let name = self
            .sc
            .parties
            .iter()
            .find(|p| p.id == party)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let seed: [u8; 32] = Sha256::digest(format!("tapis-replay-authoriser:{party}")).into();
        let key = tapis_core::sign::Signer::from_seed(seed);
        let b64 = key.public_key_b64();
        let enrolled = self.t.api.get("/api/v1/authorisers", None).await?;
        let current =
            enrolled.as_array().into_iter().flatten().any(|k| {
                k["public_key"].as_str() == Some(b64.as_str()) && k["retired_at"].is_null()
            });
        if !current {
            let Some(store) = &self.t.host else {
                bail!(
                    "the key of authoriser {name:?} is not enrolled on that server: on its host run \
                     `tapis authoriser enrol --name {name:?} --public-key {b64}`"
                );
            };
            store
                .enrol_authoriser(
                    &tapis_core::audit::Actor::system("replay (host operator)"),
                    &name,
                    &b64,
                )
                .await?;
        }
        Ok(key)
    }

    pub(super) async fn respond_to_order(&mut self, a: &RespondToOrder) -> anyhow::Result<()> {
        let text = format!(
            "{} answers order {} ({}): {}",
            a.by, a.order, a.kind, a.text
        );
        let body = json!({"kind": a.kind, "text": a.text});
        self.post_and_say(&a.by, &self.order_path(&a.order, "responses")?, body, text)
            .await
    }

    pub(super) async fn review_order(&mut self, a: &OrderWithText) -> anyhow::Result<()> {
        let text = format!("{} reviews order {}: {}", a.by, a.order, a.reason);
        let body = json!({"note": a.reason});
        self.post_and_say(&a.by, &self.order_path(&a.order, "review")?, body, text)
            .await
    }

    pub(super) async fn lift_order(&mut self, a: &OrderWithText) -> anyhow::Result<()> {
        let text = format!("{} lifts order {}: {}", a.by, a.order, a.reason);
        let body = json!({"reason": a.reason});
        self.post_and_say(&a.by, &self.order_path(&a.order, "lift")?, body, text)
            .await
    }

    /// An ISP says which zone serial it enforces: the one the replay's
    /// secondary transfers now.
    pub(super) async fn isp_acknowledge(&mut self, a: &As) -> anyhow::Result<()> {
        let token = self.token(&a.by)?.to_owned();
        let Some((_, zone)) = self.transfer_as_isp().await? else {
            bail!("isp_acknowledge needs an ISP with secondary = true");
        };
        let serial = zone.serial;
        self.t
            .api
            .post("/api/v1/rpz/acknowledge", &token, json!({"serial": serial}))
            .await?;
        self.entry(
            "action",
            format!("{} acknowledges zone serial {serial}", a.by),
        );
        Ok(())
    }

    /// The replay's webhook receiver for a platform goes down (answers
    /// 503) or comes back.
    pub(super) fn set_webhook(&mut self, a: &OnParty, up: bool) -> anyhow::Result<()> {
        if let Some(h) = self.hooks.get(&a.party) {
            h.set_up(up);
        }
        let text = format!(
            "{}'s webhook endpoint {}",
            self.party_name(&a.party),
            if up {
                "is back up"
            } else {
                "goes down (answers 503)"
            }
        );
        self.entry("action", text);
        Ok(())
    }

    /// Any API call, with names in the path and body resolved to ids.
    pub(super) async fn request(&mut self, r: &Request) -> anyhow::Result<()> {
        let path = self.resolve(&r.path)?;
        let body = match &r.body {
            Some(b) => Some(self.resolve_json(serde_json::to_value(b)?)?),
            None => None,
        };
        let method = reqwest::Method::from_bytes(r.method.as_bytes())?;
        let token = self.token(&r.by)?.to_owned();
        let answer = self.t.api.call(method, &path, Some(&token), body).await?;
        let summary = answer
            .get("state")
            .and_then(Value::as_str)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        self.entry(
            "action",
            format!("{} {} {}{summary}", r.by, r.method, r.path),
        );
        Ok(())
    }

    pub(super) fn note(&mut self, a: &Note) -> anyhow::Result<()> {
        self.entry("action", format!("({})", a.text));
        Ok(())
    }
}

/// An item as the notice API takes it, with fictional evidence.
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

/// The three dates every order carries.
fn order_dates(a: &ProposeOrder) -> Value {
    json!({
        "effective_at": a.effective_at.0.to_string(),
        "expires_at": a.expires_at.0.to_string(),
        "review_at": a.review_at.0.to_string(),
    })
}

fn item_states(notice: &Value) -> Vec<String> {
    notice["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}
