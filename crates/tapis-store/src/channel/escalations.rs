//! Escalations: the record written when a notice's ladder runs out (or it
//! cannot be delivered), listed for approvers, decided once. The states,
//! reasons and decisions are core's (`tapis_core::escalation`).

use super::*;

/// An open or decided escalation: a notice whose ladder ran out.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: EscalationId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notice_id: NoticeId,
    /// `deadline_missed` or `undeliverable`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: EscalationReason,
    /// Items still awaiting a decision when the ladder ran out.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub items: Vec<ItemId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: EscalationState,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub decision: Option<EscalationDecision>,
    pub note: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    /// The platform's verified legal representative when the escalation
    /// was written (name, email, phone, address, hours, time zone);
    /// absent when it had none. Authority staff only read escalations.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub representative: Option<Value>,
}

pub(crate) fn escalation_from_row(
    keys: &crate::secrets::SecretKey,
    row: &AnyRow,
) -> Result<Escalation> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(Escalation {
        representative: crate::representatives::open_escalation_rep(
            keys,
            &s("id")?,
            row.try_get("representative")?,
        )?,
        id: EscalationId::parse(&s("id")?).map_err(Error::corrupt)?,
        notice_id: NoticeId::parse(&s("notice_id")?).map_err(Error::corrupt)?,
        reason: EscalationReason::parse(&s("reason")?).map_err(Error::corrupt)?,
        items: serde_json::from_str(&s("items")?).map_err(Error::corrupt)?,
        state: EscalationState::parse(&s("state")?).map_err(Error::corrupt)?,
        decision: row
            .try_get::<Option<String>, _>("decision")?
            .map(|d| EscalationDecision::parse(&d).map_err(Error::corrupt))
            .transpose()?,
        note: row.try_get("note")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

pub(crate) async fn escalate(
    tx: &mut Tx,
    keys: &crate::secrets::SecretKey,
    now: Timestamp,
    actor: &Actor,
    n: &mut crate::Notice,
    reason: EscalationReason,
    pending: &[String],
) -> Result<()> {
    let cause = tapis_core::representative::copy_cause_of_escalation(reason);
    let reason = reason.as_str();
    let id = n.id.to_string();
    let next = n.state.on(NoticeEvent::Escalate)?;
    set_state(tx, now, n, next, None).await?;
    let esc_id = EscalationId::new().to_string();
    sqlx::query("INSERT INTO escalations (id, notice_id, reason, items, state, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&esc_id)
        .bind(&id)
        .bind(reason)
        .bind(canonical::to_string(&json!(pending))?)
        .bind(EscalationState::Open.as_str())
        .bind(now.unix_millis())
        .execute(&mut **tx)
        .await?;
    let mut data = json!({"notice_id": id, "escalation_id": esc_id, "reason": reason, "pending_items": pending});
    // the escalation names the platform's verified representative (sealed
    // on its row) and the notice is copied to it
    let rep = crate::representatives::representative_named(tx, keys, n.platform_id).await?;
    if let Some(rep) = &rep {
        crate::representatives::name_on_escalation(tx, keys, &esc_id, rep).await?;
        data["representative"] = rep.clone();
    }
    Event::notice(
        EventType::NoticeEscalated,
        &id,
        json!({"state": next, "escalation_id": esc_id, "reason": reason, "pending_items": pending}),
    )
    .before(json!({"state": n.state}))
    .append(tx, now, actor)
    .await?;
    enqueue(
        tx,
        now,
        n.platform_id,
        Some(n.id),
        EventType::NoticeEscalated,
        data,
    )
    .await?;
    n.state = next;
    crate::representatives::copy_notice(tx, keys, now, actor, n, cause).await?;
    Ok(())
}

impl Store {
    pub async fn list_escalations(
        &self,
        state: Option<EscalationState>,
    ) -> Result<Vec<Escalation>> {
        let mut sql = "SELECT id, notice_id, reason, items, state, decision, note, created_at, representative FROM escalations".to_owned();
        if state.is_some() {
            sql.push_str(" WHERE state = $1");
        }
        sql.push_str(" ORDER BY created_at, id");
        let mut q = sqlx::query(&sql);
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| escalation_from_row(&self.ctx.secrets, r))
            .collect()
    }

    pub async fn get_escalation(&self, id: EscalationId) -> Result<Escalation> {
        let row = sqlx::query("SELECT id, notice_id, reason, items, state, decision, note, created_at, representative FROM escalations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("escalation"))?;
        escalation_from_row(&self.ctx.secrets, &row)
    }

    /// An approver decides an escalation: `propose_order` (the blocking
    /// order work picks it up) or `dismiss`, with a note for the record.
    pub async fn decide_escalation(
        &self,
        by: &Principal,
        id: EscalationId,
        decision: EscalationDecision,
        note: &str,
    ) -> Result<Escalation> {
        let note = tapis_core::party::bounded_text("note", note, 1, 4000)?;
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT id, notice_id, reason, items, state, decision, note, created_at, representative FROM escalations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("escalation"))?;
        let esc = escalation_from_row(&self.ctx.secrets, &row)?;
        let next = esc.state.decide()?;
        let now = self.now();
        sqlx::query("UPDATE escalations SET state = $1, decision = $2, note = $3, decided_by = $4, decided_at = $5 WHERE id = $6")
            .bind(next.as_str())
            .bind(decision.as_str())
            .bind(&note)
            .bind(by.token_id.to_string())
            .bind(now.unix_millis())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        Event::notice(
            EventType::EscalationDecided,
            esc.notice_id,
            json!({"escalation_id": id, "state": next, "decision": decision, "note": note}),
        )
        .before(json!({"escalation_id": id, "state": esc.state}))
        .append(&mut tx, now, &by.actor())
        .await?;
        let row = sqlx::query("SELECT id, notice_id, reason, items, state, decision, note, created_at, representative FROM escalations WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        escalation_from_row(&self.ctx.secrets, &row)
    }
}

impl Escalation {
    /// What core's `escalation::draft_order` reads of this escalation and
    /// its notice (`id` is this escalation's id as text, kept by the
    /// caller): the one place the two records are put together for a
    /// draft.
    pub fn escalated<'a>(
        &'a self,
        id: &'a str,
        notice: &'a crate::Notice,
    ) -> tapis_core::escalation::Escalated<'a> {
        tapis_core::escalation::Escalated {
            escalation_id: id,
            reason: self.reason,
            pending: &self.items,
            notice_id: notice.id,
            category: &notice.category,
            legal_basis: (&notice.legal_basis.reference, &notice.legal_basis.text),
            items: notice
                .items
                .iter()
                .map(|i| (i.id, i.kind, i.normalized.as_str()))
                .collect(),
        }
    }
}
