//! Before the first step: check the token is an admin's, register the
//! scenario's parties (the first authority is the server's own), start a
//! webhook receiver for each platform that has one and an ISP secondary
//! for each ISP that asks for it, and create the scenario's tokens (the
//! authority's through the admin, every other party's by invitation).

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use tapis_dns::tsig::TsigKey;

use super::super::scenario::{PartyDef, TokenDef};
use super::super::sinks::{Secondary, Webhook};
use super::{Driver, Isp, count};

impl Driver<'_> {
    pub(super) async fn setup(&mut self) -> anyhow::Result<()> {
        let who = self
            .admin_get("/api/v1/whoami")
            .await
            .context("the admin token does not work")?;
        if who["role"] != "admin" {
            bail!(
                "the token given is a {} token; the replay needs an admin token",
                who["role"]
            );
        }
        let home = who["party_id"].as_str().unwrap_or_default().to_owned();
        let mut first_authority = true;
        for p in self.sc.parties.clone() {
            let id = if p.kind == "authority" && first_authority {
                first_authority = false;
                home.clone()
            } else {
                self.register_party(&p).await?
            };
            if p.webhook || !p.emails.is_empty() {
                self.open_channel(&p, &id).await?;
            }
            if p.secondary {
                self.start_secondary(&p, &id).await?;
            }
            self.parties.insert(p.id.clone(), id);
        }
        for t in self.sc.tokens.clone() {
            let secret = self
                .create_token(&t)
                .await
                .with_context(|| format!("cannot create token {:?}", t.id))?;
            self.tokens.insert(t.id.clone(), secret);
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

    /// A scenario token's secret. The admin creates the authority's own
    /// people's tokens; any other party's is an invitation the replay
    /// redeems as that party (the authority never holds it).
    async fn create_token(&self, t: &TokenDef) -> anyhow::Result<String> {
        let party = &self.parties[&t.party];
        let label = t.label.clone().unwrap_or_else(|| t.id.clone());
        let person = t.person.clone().unwrap_or_else(|| label.clone());
        let authority = self
            .sc
            .parties
            .iter()
            .any(|p| p.id == t.party && p.kind == "authority");
        let made = if authority {
            self.t
                .api
                .post(
                    &format!("/api/v1/parties/{party}/tokens"),
                    &self.t.admin_token,
                    json!({"role": t.role, "label": label, "person": person}),
                )
                .await?
        } else {
            let invited = self
                .t
                .api
                .post(
                    &format!("/api/v1/parties/{party}/invitations"),
                    &self.t.admin_token,
                    json!({"role": t.role}),
                )
                .await?;
            let code = invited["code"].as_str().unwrap_or_default();
            self.t
                .api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/invitations/{code}/accept"),
                    None,
                    Some(json!({"role": t.role, "label": label, "person": person})),
                )
                .await?
        };
        Ok(made["token"].as_str().unwrap_or_default().to_owned())
    }

    /// Register a party other than the server's own authority; its id.
    async fn register_party(&self, p: &PartyDef) -> anyhow::Result<String> {
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
        Ok(made["id"].as_str().unwrap_or_default().to_owned())
    }

    /// A platform's channel: the replay's webhook receiver (if it has
    /// one) and its fallback addresses.
    async fn open_channel(&mut self, p: &PartyDef, id: &str) -> anyhow::Result<()> {
        let hook = if p.webhook {
            Some(Webhook::start(self.stop_tx.subscribe()).await?)
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
        Ok(())
    }

    /// Act as an ISP's secondary: register where it hears NOTIFY, and keep
    /// the TSIG key tapis issued it for zone transfers.
    async fn start_secondary(&mut self, p: &PartyDef, id: &str) -> anyhow::Result<()> {
        let sec = Secondary::start(self.stop_tx.subscribe()).await?;
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
        Ok(())
    }
}
