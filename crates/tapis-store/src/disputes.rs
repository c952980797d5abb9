//! A platform's questions (clarifications) and disputes about notice
//! items, the authority's answers, and the pause they put on the notice's
//! clock. What may happen is core's (`tapis_core::dispute`); this loads,
//! asks, writes and appends the audit events in one transaction.
//!
//! The pause: while a question or dispute is open, `notice_pauses` has the
//! notice's row and its pending ladder jobs are set aside (`held_jobs`,
//! cancelled in `jobs`), so the dispatcher cannot fire a step while the
//! clock stands still. When the last one is answered the jobs are put back
//! later by the time paused, and so is the notice's deadline
//! (`notice.paused` and `notice.resumed` are on the notice's timeline).
//!
//! Every answer is signed (over the chain head, like a decision's
//! receipt), kept with the notice's receipts and delivered to the platform
//! through the outbox.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::audit::Actor;
use tapis_core::dispute::{
    ClarificationState, DisputeOutcome, DisputeReview, DisputeState, Hold, HoldChange, Question,
    check_questionable, item_after_review,
};
use tapis_core::notice::{ItemState, NoticeEvent, NoticeState};
use tapis_core::person::{Person, PersonalAct, not_involved};
use tapis_core::role::Action;
use tapis_core::{ClarificationId, DisputeId, EventType, ItemId, NoticeId, Timestamp, canonical};

use crate::audit::Event;
use crate::db::Ctx;
use crate::notices::{load_notice, opt_ts, require_platform, set_state, settle};
use crate::{Error, Notice, Principal, Result, Store};

type Tx = Transaction<'static, Any>;

/// A platform's question about an item, and the authority's answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Clarification {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: ClarificationId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notice_id: NoticeId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub item_id: ItemId,
    pub question: String,
    pub state: ClarificationState,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub asked_at: Timestamp,
    pub answer: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub answered_at: Option<Timestamp>,
}

/// A platform's dispute of an item, and the authority's review.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dispute {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: DisputeId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notice_id: NoticeId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub item_id: ItemId,
    pub reason: String,
    pub state: DisputeState,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub opened_at: Timestamp,
    pub review_reason: Option<String>,
    pub amended_explanation: Option<String>,
    pub amended_legal_basis: Option<crate::LegalBasisView>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reviewed_at: Option<Timestamp>,
}

fn ts(row: &AnyRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_millis(row.try_get(col)?))
}

fn clarification_from_row(r: &AnyRow) -> Result<Clarification> {
    let s = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
    Ok(Clarification {
        id: ClarificationId::parse(&s("id")?).map_err(Error::corrupt)?,
        notice_id: NoticeId::parse(&s("notice_id")?).map_err(Error::corrupt)?,
        item_id: ItemId::parse(&s("item_id")?).map_err(Error::corrupt)?,
        question: s("question")?,
        state: ClarificationState::parse(&s("state")?).map_err(Error::corrupt)?,
        asked_at: ts(r, "asked_at")?,
        answer: r.try_get("answer")?,
        answered_at: opt_ts(r, "answered_at")?,
    })
}

fn dispute_from_row(r: &AnyRow) -> Result<Dispute> {
    let s = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
    let basis_ref: Option<String> = r.try_get("amended_basis_ref")?;
    let basis_text: Option<String> = r.try_get("amended_basis_text")?;
    Ok(Dispute {
        id: DisputeId::parse(&s("id")?).map_err(Error::corrupt)?,
        notice_id: NoticeId::parse(&s("notice_id")?).map_err(Error::corrupt)?,
        item_id: ItemId::parse(&s("item_id")?).map_err(Error::corrupt)?,
        reason: s("reason")?,
        state: DisputeState::parse(&s("state")?).map_err(Error::corrupt)?,
        opened_at: ts(r, "opened_at")?,
        review_reason: r.try_get("review_reason")?,
        amended_explanation: r.try_get("amended_explanation")?,
        amended_legal_basis: basis_ref
            .zip(basis_text)
            .map(|(reference, text)| crate::LegalBasisView { reference, text }),
        reviewed_at: opt_ts(r, "reviewed_at")?,
    })
}

const CLARIFICATION_COLUMNS: &str =
    "id, notice_id, item_id, question, state, asked_at, answer, answered_at";
const DISPUTE_COLUMNS: &str = "id, notice_id, item_id, reason, state, opened_at, review_reason, \
    amended_explanation, amended_basis_ref, amended_basis_text, reviewed_at";

/// The notice's item `item`, or 404.
fn item_of(n: &Notice, item: ItemId) -> Result<crate::Item> {
    n.items
        .iter()
        .find(|i| i.id == item)
        .cloned()
        .ok_or(Error::NotFound("item"))
}

/// Who issued notice `id`: the person and the token (for the second-person
/// rule).
pub(crate) async fn issuer(tx: &mut Tx, id: NoticeId) -> Result<(Option<Person>, String)> {
    let row = sqlx::query(
        "SELECT n.issuer_token_id, t.person FROM notices n LEFT JOIN tokens t ON t.id = n.issuer_token_id WHERE n.id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok((
        stored_person(row.try_get("person")?)?,
        row.try_get::<Option<String>, _>("issuer_token_id")?
            .unwrap_or_default(),
    ))
}

/// A person as stored (normalised), or a corrupt row.
pub(crate) fn stored_person(p: Option<String>) -> Result<Option<Person>> {
    p.map(|p| Person::from_stored(&p))
        .transpose()
        .map_err(Error::corrupt)
}

/// An item whose dispute is open waits for the authority's answer: the
/// platform's own decision on it would leave the notice's clock paused
/// with nothing left to answer.
pub(crate) async fn refuse_if_disputed(tx: &mut Tx, item: ItemId) -> Result<()> {
    let open = sqlx::query("SELECT id FROM disputes WHERE item_id = $1 AND state = 'open'")
        .bind(item.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    if open.is_some() {
        return Err(Error::Conflict(
            "this item's dispute is open: wait for the authority's review, then decide it".into(),
        ));
    }
    Ok(())
}

/// No item disputed any more: the notice is no longer disputed.
pub(crate) async fn resolve_if_undisputed(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut Notice,
) -> Result<()> {
    if n.state == NoticeState::Disputed && !n.items.iter().any(|i| i.state == ItemState::Disputed) {
        let back = n.state.on(NoticeEvent::ResolveDisputes)?;
        set_state(tx, now, n, back, None).await?;
        Event::notice(
            EventType::NoticeAcknowledged,
            n.id,
            json!({"state": back, "disputes_resolved": true}),
        )
        .before(json!({"state": n.state}))
        .append(tx, now, actor)
        .await?;
        n.state = back;
    }
    Ok(())
}

/// An item withdrawn another way (an appeal upheld) ends its open
/// dispute as withdrawn, and with it the pause the dispute held.
pub(crate) async fn end_open_dispute(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut Notice,
    item: ItemId,
    reason: &str,
) -> Result<()> {
    let Some(row) = sqlx::query("SELECT id FROM disputes WHERE item_id = $1 AND state = 'open'")
        .bind(item.to_string())
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(());
    };
    let id: String = row.try_get("id")?;
    let next = DisputeState::Open.review(DisputeOutcome::Withdrawn)?;
    sqlx::query(
        "UPDATE disputes SET state = $1, review_reason = $2, reviewed_at = $3 WHERE id = $4",
    )
    .bind(next.as_str())
    .bind(reason)
    .bind(now.unix_millis())
    .bind(&id)
    .execute(&mut **tx)
    .await?;
    Event::notice(
        EventType::DisputeReviewed,
        n.id,
        json!({"dispute_id": id, "item_id": item.to_string(), "outcome": DisputeOutcome::Withdrawn, "reason": reason}),
    )
    .before(json!({"state": DisputeState::Open}))
    .append(tx, now, actor)
    .await?;
    hold_close(tx, now, actor, n, json!({"dispute_id": id})).await
}

/// The notice's pause, as core sees it.
async fn load_hold(tx: &mut Tx, notice: NoticeId) -> Result<Hold> {
    let row = sqlx::query("SELECT since, open_holds FROM notice_pauses WHERE notice_id = $1")
        .bind(notice.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        None => Hold {
            open: 0,
            since: None,
        },
        Some(r) => Hold {
            open: u32::try_from(r.try_get::<i64, _>("open_holds")?).map_err(Error::corrupt)?,
            since: Some(ts(&r, "since")?),
        },
    })
}

/// A question or dispute opens on notice `n`: its clock stops if it ran.
async fn hold_open(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &Notice,
    cause: Value,
) -> Result<()> {
    let (hold, change) = load_hold(tx, n.id).await?.open(now);
    let id = n.id.to_string();
    if change == HoldChange::Pause {
        sqlx::query("INSERT INTO notice_pauses (notice_id, since, open_holds) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(now.unix_millis())
            .bind(i64::from(hold.open))
            .execute(&mut **tx)
            .await?;
        // the steps not yet fired wait, where the dispatcher cannot see them
        sqlx::query(
            "INSERT INTO held_jobs (job_id, notice_id) SELECT id, subject_id FROM jobs \
             WHERE subject_id = $1 AND state = 'pending' AND kind LIKE 'notice%'",
        )
        .bind(&id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled' WHERE id IN (SELECT job_id FROM held_jobs WHERE notice_id = $1)",
        )
        .bind(&id)
        .execute(&mut **tx)
        .await?;
        Event::notice(
            EventType::NoticePaused,
            &id,
            json!({"paused_at": now.to_string(), "due_at": n.due_at.map(|t| t.to_string()), "cause": cause}),
        )
        .append(tx, now, actor)
        .await?;
    } else {
        sqlx::query("UPDATE notice_pauses SET open_holds = $1 WHERE notice_id = $2")
            .bind(i64::from(hold.open))
            .bind(&id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A question is answered or a dispute reviewed: when it was the last,
/// the clock runs again with the time paused added to the deadline and
/// to every step set aside (an answered notice that has closed meanwhile
/// gets none back).
async fn hold_close(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    n: &mut Notice,
    cause: Value,
) -> Result<()> {
    let (hold, change) = load_hold(tx, n.id).await?.close(now)?;
    let id = n.id.to_string();
    let HoldChange::Resume { paused_ms } = change else {
        sqlx::query("UPDATE notice_pauses SET open_holds = $1 WHERE notice_id = $2")
            .bind(i64::from(hold.open))
            .bind(&id)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    };
    if n.state.is_open() {
        sqlx::query(
            "UPDATE jobs SET state = 'pending', due_at = due_at + $1 \
             WHERE id IN (SELECT job_id FROM held_jobs WHERE notice_id = $2) AND state = 'cancelled'",
        )
        .bind(paused_ms)
        .bind(&id)
        .execute(&mut **tx)
        .await?;
        if let Some(due) = n.due_at {
            let moved = due.plus_millis(paused_ms);
            sqlx::query("UPDATE notices SET due_at = $1 WHERE id = $2")
                .bind(moved.unix_millis())
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            n.due_at = Some(moved);
        }
    }
    sqlx::query("DELETE FROM held_jobs WHERE notice_id = $1")
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM notice_pauses WHERE notice_id = $1")
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    Event::notice(
        EventType::NoticeResumed,
        &id,
        json!({"paused_ms": paused_ms, "due_at": n.due_at.map(|t| t.to_string()), "cause": cause}),
    )
    .append(tx, now, actor)
    .await?;
    Ok(())
}

/// Sign `body` (with the chain head), keep it with the notice's receipts
/// and send it to the platform as `event`. Returns the signed envelope.
pub(crate) async fn seal_and_deliver(
    tx: &mut Tx,
    ctx: &Ctx,
    now: Timestamp,
    n: &Notice,
    event: EventType,
    mut body: Value,
) -> Result<Value> {
    body["chain"] = crate::audit::head(tx).await?.to_json();
    let sealed = ctx.signer.seal(body)?;
    sqlx::query(
        "INSERT INTO receipts (id, notice_id, receipt, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(n.id.to_string())
    .bind(canonical::to_string(&sealed)?)
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    crate::channel::enqueue(
        tx,
        now,
        n.platform_id,
        Some(n.id),
        event,
        json!({"notice_id": n.id.to_string(), "signed": sealed}),
    )
    .await?;
    Ok(sealed)
}

/// The platform's side before asking or disputing: its own notice, an
/// open one, a pending item.
async fn questionable(
    tx: &mut Tx,
    by: &Principal,
    notice: NoticeId,
    item: ItemId,
    what: &str,
) -> Result<(Notice, crate::Item)> {
    by.role.require(Action::QuestionItem)?;
    let n = load_notice(tx, notice).await?;
    require_platform(by, &n)?;
    let it = item_of(&n, item)?;
    check_questionable(n.state, it.state, what)?;
    Ok((n, it))
}

/// Open a dispute on item `it` of notice `n` for the platform `by`, in the
/// caller's transaction: the item becomes `disputed`, the dispute is
/// recorded for review (`dispute.opened`), the notice settles and its
/// clock stops. The one path for `POST …/dispute` and for a decision of
/// `disputed` (which used to mark the item only, leaving nothing to review
/// and the clock running).
pub(crate) async fn open_dispute_in(
    tx: &mut Tx,
    now: Timestamp,
    by: &Principal,
    n: &Notice,
    it: &crate::Item,
    reason: &str,
) -> Result<DisputeId> {
    let next = it.state.decide(ItemState::Disputed)?;
    let actor = by.actor();
    crate::notices::apply_decision(tx, now, &actor, n, it, next, Some(reason), None).await?;
    let id = DisputeId::new();
    sqlx::query(
        "INSERT INTO disputes (id, notice_id, item_id, platform_id, reason, opened_by, opened_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open')",
    )
    .bind(id.to_string())
    .bind(n.id.to_string())
    .bind(it.id.to_string())
    .bind(n.platform_id.to_string())
    .bind(reason)
    .bind(by.token_id.to_string())
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    Event::notice(
        EventType::DisputeOpened,
        n.id,
        json!({"dispute_id": id.to_string(), "item_id": it.id.to_string(), "reason": reason}),
    )
    .append(tx, now, &actor)
    .await?;
    let mut n = load_notice(tx, n.id).await?;
    settle(tx, now, &actor, &mut n).await?;
    hold_open(tx, now, &actor, &n, json!({"dispute_id": id.to_string()})).await?;
    Ok(id)
}

impl Store {
    /// A platform asks the authority about an item: the notice's clock
    /// stops until the answer.
    pub async fn ask_clarification(
        &self,
        by: &Principal,
        notice: NoticeId,
        item: ItemId,
        question: &Question,
    ) -> Result<Clarification> {
        let mut tx = self.write().await?;
        let (n, _) = questionable(&mut tx, by, notice, item, "ask about").await?;
        let now = self.now();
        let id = ClarificationId::new();
        sqlx::query(
            "INSERT INTO clarifications (id, notice_id, item_id, platform_id, question, asked_by, asked_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open')",
        )
        .bind(id.to_string())
        .bind(notice.to_string())
        .bind(item.to_string())
        .bind(n.platform_id.to_string())
        .bind(&question.text)
        .bind(by.token_id.to_string())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        let actor = by.actor();
        Event::notice(
            EventType::ClarificationAsked,
            notice,
            json!({"clarification_id": id.to_string(), "item_id": item.to_string(), "question": question.text}),
        )
        .append(&mut tx, now, &actor)
        .await?;
        hold_open(
            &mut tx,
            now,
            &actor,
            &n,
            json!({"clarification_id": id.to_string()}),
        )
        .await?;
        let c = load_clarification(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(c)
    }

    /// The authority answers a question (an officer or approver): the
    /// answer is signed and delivered, and the clock runs again.
    pub async fn answer_clarification(
        &self,
        by: &Principal,
        id: ClarificationId,
        answer: &Question,
    ) -> Result<Clarification> {
        by.role.require(Action::AnswerPlatform)?;
        let mut tx = self.write().await?;
        let c = load_clarification(&mut tx, id).await?;
        let next = c.state.answer()?;
        let now = self.now();
        let actor = by.actor();
        sqlx::query(
            "UPDATE clarifications SET state = $1, answer = $2, answered_by = $3, answered_at = $4 WHERE id = $5 AND state = 'open'",
        )
        .bind(next.as_str())
        .bind(&answer.text)
        .bind(by.token_id.to_string())
        .bind(now.unix_millis())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let mut n = load_notice(&mut tx, c.notice_id).await?;
        Event::notice(
            EventType::ClarificationAnswered,
            c.notice_id,
            json!({"clarification_id": id.to_string(), "item_id": c.item_id.to_string(), "answer": answer.text}),
        )
        .append(&mut tx, now, &actor)
        .await?;
        hold_close(
            &mut tx,
            now,
            &actor,
            &mut n,
            json!({"clarification_id": id.to_string()}),
        )
        .await?;
        seal_and_deliver(
            &mut tx,
            &self.ctx,
            now,
            &n,
            EventType::ClarificationAnswered,
            json!({
                "type": "tapis.clarification.v1",
                "clarification_id": id.to_string(), "notice_id": n.id.to_string(),
                "item_id": c.item_id.to_string(), "question": c.question, "answer": answer.text,
                "answered_at": now.to_string(), "answered_by": by.label,
                "due_at": n.due_at.map(|t| t.to_string()),
            }),
        )
        .await?;
        let c = load_clarification(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(c)
    }

    /// A platform disputes an item, with its reason: the item waits for
    /// the authority (it does not escalate) and the notice's clock stops.
    pub async fn dispute_item(
        &self,
        by: &Principal,
        notice: NoticeId,
        item: ItemId,
        reason: &Question,
    ) -> Result<Dispute> {
        let mut tx = self.write().await?;
        let (mut n, it) = questionable(&mut tx, by, notice, item, "dispute").await?;
        let now = self.now();
        let actor = by.actor();
        if n.state == NoticeState::Submitted {
            crate::notices::mark_delivered_tx(&mut tx, &self.ctx, now, &actor, &mut n, "dispute")
                .await?;
        }
        let id = open_dispute_in(&mut tx, now, by, &n, &it, &reason.text).await?;
        let d = load_dispute(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(d)
    }

    /// An officer or approver who did not issue the notice reviews a
    /// dispute: upheld (the item is pending again), withdrawn (the item is
    /// withdrawn) or amended (pending again, with a new explanation or
    /// legal basis). The answer is signed and delivered; the clock runs
    /// again.
    pub async fn review_dispute(
        &self,
        by: &Principal,
        id: DisputeId,
        review: &DisputeReview,
    ) -> Result<Dispute> {
        by.role.require(Action::AnswerPlatform)?;
        let mut tx = self.write().await?;
        let d = load_dispute(&mut tx, id).await?;
        let (issuer_person, issuer_token) = issuer(&mut tx, d.notice_id).await?;
        not_involved(
            &[(issuer_person.as_ref(), &issuer_token)],
            by.person.as_ref(),
            &by.token_id.to_string(),
            PersonalAct::ReviewDispute,
        )?;
        let next = d.state.review(review.outcome)?;
        let mut n = load_notice(&mut tx, d.notice_id).await?;
        let it = item_of(&n, d.item_id)?;
        let item_next = item_after_review(it.state, review.outcome)?;
        let now = self.now();
        let actor = by.actor();
        sqlx::query(
            "UPDATE disputes SET state = $1, review_reason = $2, amended_explanation = $3, amended_basis_ref = $4, \
             amended_basis_text = $5, reviewed_by = $6, reviewer_person = $7, reviewed_at = $8 WHERE id = $9 AND state = 'open'",
        )
        .bind(next.as_str())
        .bind(&review.reason)
        .bind(review.explanation.clone())
        .bind(review.legal_basis.as_ref().map(|b| b.reference.clone()))
        .bind(review.legal_basis.as_ref().map(|b| b.text.clone()))
        .bind(by.token_id.to_string())
        .bind(by.person.as_ref().map(|p| p.as_str().to_owned()))
        .bind(now.unix_millis())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        // the item: pending again (its decision cleared) or withdrawn
        sqlx::query(
            "UPDATE notice_items SET state = $1, reason = $2, decided_at = $3 WHERE id = $4",
        )
        .bind(item_next.as_str())
        .bind((item_next != ItemState::Pending).then(|| review.reason.clone()))
        .bind((item_next != ItemState::Pending).then_some(now.unix_millis()))
        .bind(d.item_id.to_string())
        .execute(&mut *tx)
        .await?;
        let event = if review.outcome == DisputeOutcome::Withdrawn {
            EventType::ItemWithdrawn
        } else {
            EventType::ItemDecided
        };
        Event::notice(event, n.id, json!({"item_id": d.item_id.to_string(), "state": item_next, "dispute_id": id.to_string()}))
            .before(json!({"item_id": d.item_id.to_string(), "state": it.state}))
            .append(&mut tx, now, &actor)
            .await?;
        Event::notice(
            EventType::DisputeReviewed,
            n.id,
            json!({
                "dispute_id": id.to_string(), "item_id": d.item_id.to_string(), "outcome": review.outcome,
                "reason": review.reason, "amended_explanation": review.explanation,
                "amended_legal_basis": review.legal_basis.as_ref().map(|b| json!({"reference": b.reference, "text": b.text})),
            }),
        )
        .before(json!({"state": d.state}))
        .append(&mut tx, now, &actor)
        .await?;
        n = load_notice(&mut tx, d.notice_id).await?;
        resolve_if_undisputed(&mut tx, now, &actor, &mut n).await?;
        settle(&mut tx, now, &actor, &mut n).await?;
        hold_close(
            &mut tx,
            now,
            &actor,
            &mut n,
            json!({"dispute_id": id.to_string()}),
        )
        .await?;
        seal_and_deliver(
            &mut tx,
            &self.ctx,
            now,
            &n,
            EventType::DisputeReviewed,
            json!({
                "type": "tapis.dispute_review.v1",
                "dispute_id": id.to_string(), "notice_id": n.id.to_string(), "item_id": d.item_id.to_string(),
                "outcome": review.outcome, "reason": review.reason, "item_state": item_next,
                "amended_explanation": review.explanation,
                "amended_legal_basis": review.legal_basis.as_ref().map(|b| json!({"reference": b.reference, "text": b.text})),
                "reviewed_at": now.to_string(), "reviewed_by": by.label,
                "due_at": n.due_at.map(|t| t.to_string()),
            }),
        )
        .await?;
        let d = load_dispute(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(d)
    }

    /// A notice's questions and disputes, oldest first, for whoever may
    /// read the notice (the platform it is addressed to, the authority).
    pub async fn notice_questions(
        &self,
        by: &Principal,
        notice: NoticeId,
    ) -> Result<(Vec<Clarification>, Vec<Dispute>)> {
        let n = self.get_notice(notice).await?;
        if !by.role.reads_everything() {
            require_platform(by, &n)?;
        }
        let mut conn = self.pool.acquire().await?;
        let cs = sqlx::query(&format!(
            "SELECT {CLARIFICATION_COLUMNS} FROM clarifications WHERE notice_id = $1 ORDER BY asked_at, id"
        ))
        .bind(notice.to_string())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(clarification_from_row)
        .collect::<Result<Vec<_>>>()?;
        let ds = sqlx::query(&format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE notice_id = $1 ORDER BY opened_at, id"
        ))
        .bind(notice.to_string())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(dispute_from_row)
        .collect::<Result<Vec<_>>>()?;
        Ok((cs, ds))
    }
}

async fn load_clarification(tx: &mut Tx, id: ClarificationId) -> Result<Clarification> {
    let row = sqlx::query(&format!(
        "SELECT {CLARIFICATION_COLUMNS} FROM clarifications WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("clarification"))?;
    clarification_from_row(&row)
}

async fn load_dispute(tx: &mut Tx, id: DisputeId) -> Result<Dispute> {
    let row = sqlx::query(&format!(
        "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("dispute"))?;
    dispute_from_row(&row)
}
