//! The steps of a notice's life applied inside a caller's transaction:
//! submission's side effects, delivery (which starts the deadline and
//! schedules the ladder), acknowledgement, item decisions and settling the
//! notice once its items are decided. Each asks core's state machines
//! (`NoticeState::on`, `ItemState::decide`) and appends its audit event.

use tapis_core::job::JobKind;
use tapis_core::ladder::NoticeTimer;

use super::*;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply_decision(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &Notice,
    item: &Item,
    next: ItemState,
    reason: Option<&str>,
    via_duplicate: Option<ItemId>,
) -> Result<()> {
    sqlx::query("UPDATE notice_items SET state = $1, reason = $2, decided_at = $3 WHERE id = $4")
        .bind(next.as_str())
        .bind(reason.map(str::to_owned))
        .bind(now.unix_millis())
        .bind(item.id.to_string())
        .execute(&mut **tx)
        .await?;
    let mut after = json!({"item_id": item.id.to_string(), "state": next, "reason": reason});
    if let Some(src) = via_duplicate {
        after["decided_via_duplicate"] = json!(src.to_string());
    }
    Event::notice(EventType::ItemDecided, n.id, after)
        .before(json!({"item_id": item.id.to_string(), "state": item.state}))
        .append(tx, now, actor)
        .await?;
    Ok(())
}

/// Move a notice to where its items put it (closed, disputed).
pub(crate) async fn settle(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut Notice,
) -> Result<()> {
    let states: Vec<ItemState> = n.items.iter().map(|i| i.state).collect();
    let next = n.state.after_items(&states)?;
    if next != n.state {
        let stamp = (next == NoticeState::Closed).then_some("closed_at");
        set_state(tx, now, n, next, stamp).await?;
        let action = if next == NoticeState::Closed {
            EventType::NoticeClosed
        } else {
            EventType::NoticeDisputed
        };
        Event::notice(action, n.id, json!({"state": next}))
            .before(json!({"state": n.state}))
            .append(tx, now, actor)
            .await?;
        n.state = next;
        if next == NoticeState::Closed {
            n.closed_at = Some(now);
            crate::jobs::cancel(tx, &n.id.to_string(), None).await?;
        }
    }
    Ok(())
}

pub(crate) async fn set_state(
    tx: &mut Tx,
    now: Timestamp,
    n: &Notice,
    next: NoticeState,
    stamp: Option<&str>,
) -> Result<()> {
    let stamp_sql = stamp.map(|c| format!(", {c} = $2")).unwrap_or_default();
    let res = sqlx::query(&format!(
        "UPDATE notices SET state = $1, updated_at = $2{stamp_sql} WHERE id = $3 AND state = $4"
    ))
    .bind(next.as_str())
    .bind(now.unix_millis())
    .bind(n.id.to_string())
    .bind(n.state.as_str())
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() != 1 {
        return Err(Error::Conflict(
            "the notice changed meanwhile; retry".into(),
        ));
    }
    Ok(())
}

/// The platform demonstrably has the notice: its deadline starts now, and
/// the escalation ladder is scheduled from it.
pub(crate) async fn mark_delivered_tx(
    tx: &mut Tx,
    ctx: &Ctx,
    now: Timestamp,
    actor: &Actor,
    n: &mut Notice,
    via: &str,
) -> Result<()> {
    let next = n.state.on(NoticeEvent::Deliver)?;
    let sla = &ctx.sla;
    let due = sla.due_at_for(now, &n.category, n.urgency, n.trusted_flagger);
    // the state (as `set_state` changes it) and the deadline in one statement
    let res = sqlx::query(
        "UPDATE notices SET state = $1, updated_at = $2, delivered_at = $2, due_at = $3, sla_version = $4 \
         WHERE id = $5 AND state = $6",
    )
    .bind(next.as_str())
    .bind(now.unix_millis())
    .bind(due.unix_millis())
    .bind(&sla.version)
    .bind(n.id.to_string())
    .bind(n.state.as_str())
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() != 1 {
        return Err(Error::Conflict(
            "the notice changed meanwhile; retry".into(),
        ));
    }
    crate::jobs::cancel(
        tx,
        &n.id.to_string(),
        Some(JobKind::Notice(NoticeTimer::DeliveryTimeout)),
    )
    .await?;
    let ladder: Vec<(JobKind, Timestamp)> = sla
        .ladder(now, &n.category, n.urgency)
        .into_iter()
        .map(|(step, at)| (JobKind::Notice(NoticeTimer::Ladder(step)), at))
        .collect();
    crate::jobs::schedule_many(tx, &n.id.to_string(), &ladder).await?;
    Event::notice(
        EventType::NoticeDelivered,
        n.id,
        json!({"state": next, "via": via, "due_at": due.to_string(), "sla_version": sla.version}),
    )
    .before(json!({"state": n.state}))
    .append(tx, now, actor)
    .await?;
    n.state = next;
    n.delivered_at = Some(now);
    n.due_at = Some(due);
    n.sla_version = Some(sla.version.clone());
    Ok(())
}

/// What submission sets in motion: the signed document, the delivery
/// timeout and the outbound `notice.submitted` event.
pub(crate) async fn on_submitted(
    tx: &mut Tx,
    ctx: &Ctx,
    now: Timestamp,
    n: &mut Notice,
) -> Result<()> {
    let (envelope, sha) = seal_document(ctx, n)?;
    sqlx::query("UPDATE notices SET document = $1, document_sha256 = $2 WHERE id = $3")
        .bind(canonical::to_string(&envelope)?)
        .bind(&sha)
        .bind(n.id.to_string())
        .execute(&mut **tx)
        .await?;
    n.document_sha256 = Some(sha);
    n.signed_document = Some(envelope);
    after_sealed(tx, ctx, now, n).await
}

/// The notice's document signed by tapis, and its content hash.
pub(crate) fn seal_document(ctx: &Ctx, n: &Notice) -> Result<(Value, String)> {
    let document = notice_document(n);
    let sha = tapis_core::sign::content_hash(&document)?;
    Ok((ctx.signer.seal(document)?, sha))
}

/// What follows a notice's sealed document being stored: the delivery
/// timeout and the message to the platform.
pub(crate) async fn after_sealed(tx: &mut Tx, ctx: &Ctx, now: Timestamp, n: &Notice) -> Result<()> {
    let (Some(sha), Some(envelope)) = (&n.document_sha256, &n.signed_document) else {
        return Err(Error::corrupt(format!(
            "notice {} has no sealed document",
            n.id
        )));
    };
    crate::jobs::schedule(
        tx,
        JobKind::Notice(NoticeTimer::DeliveryTimeout),
        &n.id.to_string(),
        now.plus_secs(ctx.sla.delivery_timeout),
    )
    .await?;
    channel::enqueue(
        tx,
        now,
        n.platform_id,
        Some(n.id),
        EventType::NoticeSubmitted,
        {
            let mut payload =
                json!({"notice_id": n.id.to_string(), "document_sha256": sha, "notice": envelope});
            if n.trusted_flagger {
                payload["trusted_flagger"] = json!(true);
            }
            payload
        },
    )
    .await?;
    Ok(())
}

pub(crate) async fn acknowledge_in(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut Notice,
) -> Result<()> {
    let next = n.state.on(NoticeEvent::Acknowledge)?;
    set_state(tx, now, n, next, Some("acknowledged_at")).await?;
    Event::notice(EventType::NoticeAcknowledged, n.id, json!({"state": next}))
        .before(json!({"state": n.state}))
        .append(tx, now, actor)
        .await?;
    n.state = next;
    n.acknowledged_at = Some(now);
    Ok(())
}
