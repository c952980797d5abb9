//! Notices: submission with idempotency and deduplication, delivery,
//! acknowledgement and per-item decisions. Each write is one transaction
//! with its audit events.

use crate::db::Ctx;
use crate::{
    Created, DuplicateRef, Error, EvidenceView, Item, LegalBasisView, NOTICE_SORTS, Notice,
    NoticeFilter, Principal, Result, Store,
    audit::{self, Event},
    channel,
};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::notice::{Decision, ItemState, NewNotice, NoticeEvent, NoticeState, Urgency};
use tapis_core::party::PartyKind;
use tapis_core::target::ItemKind;
use tapis_core::{ItemId, NoticeId, PartyId, Timestamp, canonical};

mod lifecycle;
mod rows;

pub(crate) use lifecycle::*;
pub use rows::*;

/// States in which a notice is open (neither draft nor finished).
const OPEN_STATES: &str = "('submitted', 'delivered', 'acknowledged', 'escalated', 'disputed')";

/// The caller's party must be the notice's platform; anything else looks
/// like a notice that does not exist, so ids cannot be probed.
pub(crate) fn require_platform(p: &Principal, n: &Notice) -> Result<()> {
    // a draft is the authority's own business until it is submitted
    if p.party_kind == PartyKind::Platform
        && p.party_id == n.platform_id
        && n.state != NoticeState::Draft
    {
        Ok(())
    } else {
        Err(Error::NotFound("notice"))
    }
}

fn notice_json(n: &Notice) -> Result<Value> {
    serde_json::to_value(n).map_err(|e| Error::corrupt(format!("notice does not serialise: {e}")))
}

type Tx = Transaction<'static, Any>;

impl Store {
    /// Submit (or save as a draft) a validated notice from `by`.
    ///
    /// With an idempotency key, a repeat of the same request returns the
    /// first notice; the same key with a different request is a conflict.
    pub async fn create_notice(
        &self,
        by: &Principal,
        new: NewNotice,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Created> {
        // submissions come in bursts: they share transactions (group_commit.rs)
        let store = self.clone();
        let by = by.clone();
        let idempotency = idempotency.map(|(k, f)| (k.to_owned(), f.to_owned()));
        self.grouped(move |tx| {
            Box::pin(async move {
                let idempotency = idempotency.as_ref().map(|(k, f)| (k.as_str(), f.as_str()));
                store.create_notice_in(tx, &by, new, idempotency).await
            })
        })
        .await
    }

    pub(crate) async fn create_notice_in(
        &self,
        tx: &mut Tx,
        by: &Principal,
        new: NewNotice,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Created> {
        if let Some((key, fingerprint)) = idempotency {
            let row = sqlx::query(
                "SELECT id, request_hash FROM notices WHERE issuer_party_id = $1 AND idempotency_key = $2",
            )
            .bind(by.party_id.to_string())
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = row {
                let hash: Option<String> = row.try_get("request_hash")?;
                if hash.as_deref() != Some(fingerprint) {
                    return Err(Error::Conflict(
                        "this Idempotency-Key was already used for a different request; use a new key".into(),
                    ));
                }
                let id: String = row.try_get("id")?;
                let notice = load_notice(tx, NoticeId::parse(&id).map_err(Error::corrupt)?).await?;
                return Ok(Created {
                    notice,
                    created: false,
                });
            }
        }
        let platform = sqlx::query("SELECT kind FROM parties WHERE id = $1")
            .bind(new.platform_id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
        match platform {
            None => {
                return Err(
                    tapis_core::Error::invalid("platform_id", "no party has this id").into(),
                );
            }
            Some(row)
                if tapis_core::party::PartyKind::parse(&row.try_get::<String, _>("kind")?)
                    .map_err(Error::corrupt)?
                    != tapis_core::party::PartyKind::Platform =>
            {
                return Err(tapis_core::Error::invalid(
                    "platform_id",
                    "this party is not a platform",
                )
                .into());
            }
            Some(_) => {}
        }

        // stored times are whole milliseconds: keep the one read back
        let now = Timestamp::from_unix_millis(self.now().unix_millis());
        let id = NoticeId::new();
        // the notice is built here as it will read back from its rows (the
        // signed document is computed from it before the insert, so a
        // submission costs no read-back and no second write of the row)
        let mut items = Vec::with_capacity(new.items.len());
        for item in &new.items {
            // Deduplicate against items still awaiting a decision in open
            // notices to the same platform, from any issuer.
            let original = sqlx::query(&format!(
                "SELECT i.id, i.notice_id FROM notice_items i JOIN notices n ON n.id = i.notice_id \
                 WHERE i.platform_id = $1 AND i.kind = $2 AND i.normalized = $3 \
                 AND i.duplicate_of IS NULL AND i.state IN ('pending', 'disputed') \
                 AND n.state IN {OPEN_STATES} ORDER BY n.created_at LIMIT 1"
            ))
            .bind(new.platform_id.to_string())
            .bind(item.kind.as_str())
            .bind(&item.normalized)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| -> Result<DuplicateRef> {
                Ok(DuplicateRef {
                    item_id: ItemId::parse(&r.try_get::<String, _>("id")?)
                        .map_err(Error::corrupt)?,
                    notice_id: NoticeId::parse(&r.try_get::<String, _>("notice_id")?)
                        .map_err(Error::corrupt)?,
                })
            })
            .transpose()?;
            items.push(Item {
                id: ItemId::new(),
                kind: item.kind,
                value: item.value.clone(),
                normalized: item.normalized.clone(),
                native_id: item.native_id.clone(),
                evidence: item
                    .evidence
                    .iter()
                    .map(|e| EvidenceView {
                        sha256: e.sha256.as_str().to_owned(),
                        description: e.description.clone(),
                        captured_at: e.captured_at,
                    })
                    .collect(),
                state: ItemState::Pending,
                reason: None,
                decided_at: None,
                duplicate_of: original,
            });
        }
        let mut notice = Notice {
            id,
            // the deadline is set at delivery, not here
            state: if new.draft {
                NoticeState::Draft
            } else {
                NoticeState::Submitted
            },
            issuer_party_id: by.party_id,
            issuer_label: by.label.clone(),
            platform_id: new.platform_id,
            category: new.category.clone(),
            taxonomy_version: new.taxonomy_version.clone(),
            urgency: new.urgency,
            legal_basis: LegalBasisView {
                reference: new.legal_basis.reference.clone(),
                text: new.legal_basis.text.clone(),
            },
            explanation: new.explanation.clone(),
            territorial_scope: new.territorial_scope.clone(),
            may_notify_user: new.may_notify_user,
            trusted_flagger: new.trusted_flagger,
            sla_version: None,
            due_at: None,
            created_at: now,
            submitted_at: (!new.draft).then_some(now),
            delivered_at: None,
            acknowledged_at: None,
            closed_at: None,
            document_sha256: None,
            signed_document: None,
            items,
        };
        if !new.draft {
            let (envelope, sha) = seal_document(&self.ctx, &notice)?;
            notice.document_sha256 = Some(sha);
            notice.signed_document = Some(envelope);
        }
        let document = notice
            .signed_document
            .as_ref()
            .map(canonical::to_string)
            .transpose()?;
        sqlx::query("INSERT INTO notices (id, issuer_party_id, issuer_token_id, issuer_label, platform_id, category, \
             taxonomy_version, urgency, legal_basis_reference, legal_basis_text, explanation, territorial_scope, \
             may_notify_user, state, sla_version, due_at, idempotency_key, request_hash, created_at, submitted_at, updated_at, trusted_flagger, \
             document, document_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $19, $21, $22, $23)")
        .bind(id.to_string())
        .bind(by.party_id.to_string())
        .bind(by.token_id.to_string())
        .bind(&by.label)
        .bind(new.platform_id.to_string())
        .bind(&new.category)
        .bind(&new.taxonomy_version)
        .bind(new.urgency.as_str())
        .bind(&new.legal_basis.reference)
        .bind(&new.legal_basis.text)
        .bind(&new.explanation)
        .bind(canonical::to_string(&json!(new.territorial_scope))?)
        .bind(i64::from(new.may_notify_user))
        .bind(notice.state.as_str())
        .bind(None::<String>)
        .bind(None::<i64>)
        .bind(idempotency.map(|(k, _)| k.to_owned()))
        .bind(idempotency.map(|(_, f)| f.to_owned()))
        .bind(now.unix_millis())
        .bind(notice.submitted_at.map(Timestamp::unix_millis))
        .bind(i64::from(new.trusted_flagger))
        .bind(document)
        .bind(notice.document_sha256.clone())
        .execute(&mut **tx)
        .await?;

        for (position, item) in notice.items.iter().enumerate() {
            let evidence: Vec<Value> = item
                .evidence
                .iter()
                .map(|e| {
                    json!({"sha256": e.sha256, "description": e.description, "captured_at": e.captured_at.to_string()})
                })
                .collect();
            sqlx::query(
                "INSERT INTO notice_items (id, notice_id, position, platform_id, kind, value, normalized, \
                 native_id, evidence, state, duplicate_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)",
            )
            .bind(item.id.to_string())
            .bind(id.to_string())
            .bind(position as i64)
            .bind(new.platform_id.to_string())
            .bind(item.kind.as_str())
            .bind(&item.value)
            .bind(&item.normalized)
            .bind(item.native_id.clone())
            .bind(canonical::to_string(&Value::Array(evidence))?)
            .bind(item.duplicate_of.as_ref().map(|d| d.item_id.to_string()))
            .execute(&mut **tx)
            .await?;
        }
        if !new.draft {
            after_sealed(tx, &self.ctx, now, &notice).await?;
        }
        let action = if new.draft {
            EventType::NoticeDrafted
        } else {
            EventType::NoticeSubmitted
        };
        Event::notice(action, id, notice_json(&notice)?)
            .append(tx, now, &by.actor())
            .await?;
        Ok(Created {
            notice,
            created: true,
        })
    }

    /// Submit a draft.
    pub async fn submit_draft(&self, by: &Principal, id: NoticeId) -> Result<Notice> {
        let mut tx = self.write().await?;
        let n = load_notice(&mut tx, id).await?;
        if n.issuer_party_id != by.party_id {
            return Err(Error::NotFound("notice"));
        }
        let next = n.state.on(NoticeEvent::Submit)?;
        let now = self.now();
        sqlx::query(
            "UPDATE notices SET state = $1, submitted_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind(next.as_str())
        .bind(now.unix_millis())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let mut n = load_notice(&mut tx, id).await?;
        on_submitted(&mut tx, &self.ctx, now, &mut n).await?;
        Event::notice(EventType::NoticeSubmitted, id, notice_json(&n)?)
            .before(json!({"state": NoticeState::Draft}))
            .append(&mut tx, now, &by.actor())
            .await?;
        tx.commit().await?;
        self.signal();
        Ok(n)
    }

    pub async fn get_notice(&self, id: NoticeId) -> Result<Notice> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound("notice"))?;
        let mut n = notice_from_row(&row)?;
        let mut items = load_items(&mut conn, &[id]).await?;
        n.items = items.remove(&id).unwrap_or_default();
        Ok(n)
    }

    pub async fn list_notices(&self, f: &NoticeFilter) -> Result<Vec<Notice>> {
        let mut sql = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, v: String| {
            binds.push(v);
            sql.push_str(&clause.replace("?", &format!("${}", binds.len())));
        };
        if let Some(s) = f.state {
            push(&mut sql, " AND state = ?", s.as_str().to_owned());
        }
        if let Some(p) = f.platform_id {
            push(&mut sql, " AND platform_id = ?", p.to_string());
        }
        if f.exclude_drafts {
            sql.push_str(" AND state <> 'draft'");
        }
        if let Some(p) = f.issuer_party_id {
            push(&mut sql, " AND issuer_party_id = ?", p.to_string());
        }
        if let Some(c) = &f.category {
            push(&mut sql, " AND category = ?", c.clone());
        }
        if let Some(b) = f.before {
            push(&mut sql, " AND id < ?", b.to_string());
        }
        let mut ints: Vec<i64> = Vec::new();
        if f.overdue {
            sql.push_str(&format!(
                " AND state IN {OPEN_STATES} AND due_at < ${}",
                binds.len() + 1
            ));
            ints.push(self.now().unix_millis());
        }
        match f.sort.and_then(|(k, asc)| {
            NOTICE_SORTS
                .iter()
                .find(|(c, _)| *c == k)
                .map(|c| (c.1, asc))
        }) {
            None => sql.push_str(&format!(
                " ORDER BY id DESC LIMIT {}",
                f.limit.clamp(1, 500)
            )),
            Some((col, asc)) => {
                let dir = if asc { "ASC" } else { "DESC" };
                // no deadline sorts last both ways, on both databases
                let key = match col {
                    "due_at" => format!("CASE WHEN due_at IS NULL THEN 1 ELSE 0 END, due_at {dir}"),
                    c => format!("{c} {dir}"),
                };
                sql.push_str(&format!(
                    " ORDER BY {key}, id {dir} LIMIT {} OFFSET {}",
                    f.limit.clamp(1, 500),
                    f.offset
                ));
            }
        }
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        for i in ints {
            q = q.bind(i);
        }
        let mut conn = self.pool.acquire().await?;
        let rows = q.fetch_all(&mut *conn).await?;
        let mut notices: Vec<Notice> = rows.iter().map(notice_from_row).collect::<Result<_>>()?;
        let ids: Vec<NoticeId> = notices.iter().map(|n| n.id).collect();
        let mut items = load_items(&mut conn, &ids).await?;
        for n in &mut notices {
            n.items = items.remove(&n.id).unwrap_or_default();
        }
        Ok(notices)
    }

    /// A platform's open notices, most pressing first (a trusted
    /// flagger's, then urgent, then by deadline). Fetching counts as delivery: the platform demonstrably
    /// has them, and each newly delivered notice gets its event.
    pub async fn inbox(&self, by: &Principal, limit: u32) -> Result<Vec<Notice>> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE platform_id = $1 AND state IN {OPEN_STATES} \
             ORDER BY trusted_flagger DESC, \
             CASE urgency WHEN 'urgent' THEN 0 ELSE 1 END, due_at, id LIMIT {}",
            limit.clamp(1, 500)
        ))
        .bind(by.party_id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut notices: Vec<Notice> = rows.iter().map(notice_from_row).collect::<Result<_>>()?;
        let now = self.now();
        for n in &mut notices {
            if n.state == NoticeState::Submitted {
                mark_delivered_tx(&mut tx, &self.ctx, now, &by.actor(), n, "inbox fetch").await?;
            }
        }
        let ids: Vec<NoticeId> = notices.iter().map(|n| n.id).collect();
        let mut items = load_items(&mut tx, &ids).await?;
        for n in &mut notices {
            n.items = items.remove(&n.id).unwrap_or_default();
        }
        tx.commit().await?;
        Ok(notices)
    }

    /// A platform agent fetches one of its notices: that is delivery.
    pub async fn fetch_as_platform(&self, by: &Principal, id: NoticeId) -> Result<Notice> {
        let mut tx = self.write().await?;
        let mut n = load_notice(&mut tx, id).await?;
        require_platform(by, &n)?;
        if n.state == NoticeState::Submitted {
            mark_delivered_tx(
                &mut tx,
                &self.ctx,
                self.now(),
                &by.actor(),
                &mut n,
                "authenticated fetch",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Acknowledge receipt and get tapis's signed receipt over (notice id,
    /// notice content hash, acknowledging party and token label, time).
    /// A platform that registered a public key may add its own signature
    /// over `{"type":"tapis.acknowledgement.v1","notice_id","notice_sha256"}`;
    /// it is verified and kept, and named in the receipt.
    pub async fn acknowledge(
        &self,
        by: &Principal,
        id: NoticeId,
        platform_signature: Option<&str>,
    ) -> Result<(Notice, Value)> {
        let mut tx = self.write().await?;
        let mut n = load_notice(&mut tx, id).await?;
        require_platform(by, &n)?;
        let now = self.now();
        let sha = n.document_sha256.clone().unwrap_or_default();
        let platform_sig = match platform_signature {
            None => None,
            Some(sig) => {
                let key = channel::load_channel(&mut tx, by.party_id)
                    .await?
                    .and_then(|c| c.public_key)
                    .ok_or_else(|| tapis_core::Error::invalid("signature", "register a public key with PUT /api/v1/parties/{id}/channel before signing"))?;
                let key = tapis_core::sign::parse_public_key("public_key", &key)?;
                let statement = acknowledgement_statement(&n);
                tapis_core::sign::verify_detached(&key, &statement, sig)?;
                Some(
                    json!({"statement": statement, "signature": sig.trim(), "kid": tapis_core::sign::key_id(key.as_bytes())}),
                )
            }
        };
        if n.state == NoticeState::Submitted {
            mark_delivered_tx(
                &mut tx,
                &self.ctx,
                now,
                &by.actor(),
                &mut n,
                "acknowledgement",
            )
            .await?;
        }
        acknowledge_in(&mut tx, now, &by.actor(), &mut n).await?;
        let party_name = party_name(&mut tx, by.party_id).await?;
        // the head right after the acknowledgement's own events: the
        // platform's copy then pins the log up to here
        let chain = audit::head(&mut tx).await?;
        let leaf = crate::tlog::entry_in(&mut *tx, chain.seq).await?;
        let receipt = json!({
            "type": "tapis.receipt.v1",
            "notice_id": id.to_string(),
            "notice_sha256": sha,
            "acknowledged_by": {"party_id": by.party_id.to_string(), "party_name": party_name, "token_label": by.label},
            "acknowledged_at": now.to_string(),
            "platform_signature": platform_sig,
            "chain": chain.to_json(),
            "log": leaf.to_json(),
        });
        let sealed = self.ctx.signer.seal(receipt)?;
        sqlx::query("INSERT INTO receipts (id, notice_id, receipt, platform_signature, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(id.to_string())
            .bind(canonical::to_string(&sealed)?)
            .bind(platform_signature.map(|s| s.trim().to_owned()))
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
        let after = json!({"receipt_sha256": tapis_core::sign::content_hash(&sealed["payload"])?, "kid": sealed["kid"], "platform_signed": platform_signature.is_some()});
        Event::notice(EventType::ReceiptIssued, id, after)
            .append(&mut tx, now, &by.actor())
            .await?;
        tx.commit().await?;
        Ok((n, sealed))
    }

    /// Withdraw a notice (its issuer only). The reason is on the record.
    pub async fn withdraw(&self, by: &Principal, id: NoticeId, reason: &str) -> Result<Notice> {
        let reason = tapis_core::party::bounded_text("reason", reason, 1, 4000)?;
        let mut tx = self.write().await?;
        let mut n = load_notice(&mut tx, id).await?;
        if n.issuer_party_id != by.party_id {
            return Err(Error::NotFound("notice"));
        }
        let next = n.state.on(NoticeEvent::Withdraw)?;
        let now = self.now();
        set_state(&mut tx, now, &n, next, Some("closed_at")).await?;
        crate::jobs::cancel(&mut tx, &n.id.to_string(), None).await?;
        if n.state != NoticeState::Draft {
            channel::enqueue(
                &mut tx,
                now,
                n.platform_id,
                Some(n.id),
                EventType::NoticeWithdrawn,
                json!({"notice_id": n.id.to_string(), "reason": reason}),
            )
            .await?;
        }
        Event::notice(
            EventType::NoticeWithdrawn,
            id,
            json!({"state": next, "reason": reason}),
        )
        .before(json!({"state": n.state}))
        .append(&mut tx, now, &by.actor())
        .await?;
        n.state = next;
        tx.commit().await?;
        self.signal();
        Ok(n)
    }

    /// Record a platform's decision on one item. Deciding implies
    /// acknowledgement; the decision also settles the item's duplicates in
    /// other notices, and a notice whose items are all decided closes.
    pub async fn decide_item(
        &self,
        by: &Principal,
        notice_id: NoticeId,
        item_id: ItemId,
        decision: Decision,
    ) -> Result<(Notice, Value)> {
        let mut tx = self.write().await?;
        let mut n = load_notice(&mut tx, notice_id).await?;
        require_platform(by, &n)?;
        let item = n
            .items
            .iter()
            .find(|i| i.id == item_id)
            .cloned()
            .ok_or(Error::NotFound("item"))?;
        if !n.state.is_open() {
            return Err(tapis_core::Error::IllegalTransition {
                entity: "notice",
                state: n.state.as_str().to_owned(),
                action: "decide items of".into(),
            }
            .into());
        }
        let next = item.state.decide(decision.decision)?;
        crate::disputes::refuse_if_disputed(&mut tx, item.id).await?;
        let dispute = match next {
            ItemState::Disputed => {
                by.role.require(tapis_core::role::Action::QuestionItem)?;
                Some(tapis_core::dispute::Question::parse(
                    "reason",
                    decision.reason.as_deref().unwrap_or_default(),
                )?)
            }
            _ => None,
        };
        let now = self.now();
        let actor = by.actor();
        if matches!(n.state, NoticeState::Submitted | NoticeState::Delivered) {
            if n.state == NoticeState::Submitted {
                mark_delivered_tx(&mut tx, &self.ctx, now, &actor, &mut n, "decision").await?;
            }
            acknowledge_in(&mut tx, now, &actor, &mut n).await?;
        }
        if let Some(reason) = &dispute {
            // a decision of `disputed` opens a dispute for review, as
            // `POST …/dispute` does (the clock stops, the item waits for
            // the authority); it is this notice's, so duplicates elsewhere
            // keep their own state
            crate::disputes::open_dispute_in(&mut tx, now, by, &n, &item, &reason.text).await?;
        } else {
            apply_decision(
                &mut tx,
                now,
                &actor,
                &n,
                &item,
                next,
                decision.reason.as_deref(),
                None,
            )
            .await?;
        }

        // The same target in other notices (the original, or its other
        // duplicates) gets the same decision.
        let linked_decision = dispute.is_none();
        let root = item
            .duplicate_of
            .as_ref()
            .map(|d| d.item_id)
            .unwrap_or(item.id);
        let linked = sqlx::query(
            "SELECT i.id, i.notice_id FROM notice_items i \
             WHERE (i.id = $1 OR i.duplicate_of = $1) AND i.id <> $2 AND i.state IN ('pending', 'disputed')",
        )
        .bind(root.to_string())
        .bind(item.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        for row in linked.into_iter().filter(|_| linked_decision) {
            let other_notice =
                NoticeId::parse(&row.try_get::<String, _>("notice_id")?).map_err(Error::corrupt)?;
            let other_item =
                ItemId::parse(&row.try_get::<String, _>("id")?).map_err(Error::corrupt)?;
            let mut on = load_notice(&mut tx, other_notice).await?;
            if !on.state.is_open() {
                continue;
            }
            let Some(oi) = on.items.iter().find(|i| i.id == other_item).cloned() else {
                continue;
            };
            let Ok(onext) = oi.state.decide(decision.decision) else {
                continue;
            };
            apply_decision(
                &mut tx,
                now,
                &actor,
                &on,
                &oi,
                onext,
                decision.reason.as_deref(),
                Some(item.id),
            )
            .await?;
            on = load_notice(&mut tx, other_notice).await?;
            settle(&mut tx, now, &actor, &mut on).await?;
        }

        let mut n = load_notice(&mut tx, notice_id).await?;
        settle(&mut tx, now, &actor, &mut n).await?;
        // the platform's proof that it acted, and when: signed by tapis
        let party_name = party_name(&mut tx, by.party_id).await?;
        let chain = audit::head(&mut tx).await?;
        let leaf = crate::tlog::entry_in(&mut *tx, chain.seq).await?;
        let sealed = self.ctx.signer.seal(json!({
            "type": "tapis.decision.v1",
            "notice_id": notice_id.to_string(),
            "notice_sha256": n.document_sha256,
            "item_id": item_id.to_string(),
            "item": {"kind": item.kind, "normalized": item.normalized},
            "decision": decision.decision,
            "reason": decision.reason,
            "decided_by": {"party_id": by.party_id.to_string(), "party_name": party_name, "token_label": by.label},
            "decided_at": now.to_string(),
            "chain": chain.to_json(),
            "log": leaf.to_json(),
        }))?;
        sqlx::query(
            "INSERT INTO receipts (id, notice_id, receipt, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(notice_id.to_string())
        .bind(canonical::to_string(&sealed)?)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.signal();
        Ok((n, sealed))
    }
}
