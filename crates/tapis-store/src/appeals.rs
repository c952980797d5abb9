//! Appeals against a notice item or a blocking order: received (from a
//! party with its token, or from the public without one), reviewed and
//! decided by a person who neither issued the notice nor proposed or
//! approved the order, within the policy's `appeal_review` time (an
//! `appeal_deadline` job marks it overdue otherwise). What may happen is
//! core's (`tapis_core::appeal`); this loads, asks, writes and appends the
//! audit events in one transaction.
//!
//! Upheld on an item: the item is withdrawn and the platform told, signed,
//! through the outbox. Upheld on an order: the order is lifted through the
//! one lift path (`orders::end`), so its names leave the zone under a new
//! serial and the ISPs are told, like any lift.
//!
//! Privacy: no client address and no contact address is stored; the audit
//! event carries the reason's digest and length, not its text (the text
//! stays in the appeal's row, for the reviewers).

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::appeal::{
    AppealDecision, AppealEvent, AppealOutcome, AppealState, AppealSubject, AppellantKind,
    NewAppeal, Reference, ReferredTo, overdue,
};
use tapis_core::audit::Actor;
use tapis_core::dispute::withdraw_item;
use tapis_core::job::JobKind;
use tapis_core::notice::NoticeState;
use tapis_core::order::{OrderEvent, OrderState};
use tapis_core::person::{Person, PersonalAct, not_involved};
use tapis_core::role::Action;
use tapis_core::{AppealId, EventType, ItemId, NoticeId, Timestamp, canonical};

use crate::audit::Event;
use crate::disputes::stored_person;
use crate::notices::{load_notice, opt_ts, require_platform, settle};
use crate::{Error, Principal, Result, Store};

type Tx = Transaction<'static, Any>;

/// What anyone holding the reference sees: where the appeal is and the
/// decision with its reasons; never who appealed, their reason or evidence.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicAppeal {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reference: Reference,
    /// `item` or `order`.
    pub subject: String,
    /// The order appealed (its reference is public on the block page).
    pub order_id: Option<String>,
    pub state: AppealState,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub received_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub due_at: Timestamp,
    /// Still open past its deadline.
    pub overdue: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub review_started_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub decided_at: Option<Timestamp>,
    pub outcome: Option<AppealOutcome>,
    pub reasons: Option<String>,
    pub referred_to: Option<ReferredTo>,
}

/// An appeal as the authority sees it (the queue): the public view and
/// who appealed what, why.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Appeal {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: AppealId,
    pub notice_id: Option<String>,
    pub item_id: Option<String>,
    pub appellant_kind: AppellantKind,
    pub reason: String,
    pub evidence: Vec<String>,
    #[serde(flatten)]
    pub public: PublicAppeal,
}

impl std::ops::Deref for Appeal {
    type Target = PublicAppeal;
    fn deref(&self) -> &PublicAppeal {
        &self.public
    }
}

/// An order lifted because an appeal against it was upheld (the lookup and
/// the block page say so).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiftedAfterAppeal {
    pub order_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reference: Reference,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub lifted_at: Timestamp,
}

const COLUMNS: &str = "id, reference, subject_kind, order_id, notice_id, item_id, appellant_kind, reason, \
    evidence, state, received_at, due_at, review_started_at, decided_at, outcome, reasons, referred_to";

fn appeal_from_row(r: &AnyRow, now: Timestamp) -> Result<Appeal> {
    let s = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
    let opt = |c: &str| -> Result<Option<String>> { Ok(r.try_get::<Option<String>, _>(c)?) };
    let state = AppealState::parse(&s("state")?).map_err(Error::corrupt)?;
    let due_at = Timestamp::from_unix_millis(r.try_get("due_at")?);
    Ok(Appeal {
        id: AppealId::parse(&s("id")?).map_err(Error::corrupt)?,
        notice_id: opt("notice_id")?,
        item_id: opt("item_id")?,
        appellant_kind: AppellantKind::parse(&s("appellant_kind")?).map_err(Error::corrupt)?,
        reason: s("reason")?,
        evidence: serde_json::from_str(&s("evidence")?).map_err(Error::corrupt)?,
        public: PublicAppeal {
            reference: Reference::parse(&s("reference")?).map_err(Error::corrupt)?,
            subject: s("subject_kind")?,
            order_id: opt("order_id")?,
            state,
            received_at: Timestamp::from_unix_millis(r.try_get("received_at")?),
            due_at,
            overdue: state.is_open() && due_at <= now,
            review_started_at: opt_ts(r, "review_started_at")?,
            decided_at: opt_ts(r, "decided_at")?,
            outcome: opt("outcome")?
                .map(|o| AppealOutcome::parse(&o))
                .transpose()
                .map_err(Error::corrupt)?,
            reasons: opt("reasons")?,
            referred_to: opt("referred_to")?
                .map(|o| ReferredTo::parse(&o))
                .transpose()
                .map_err(Error::corrupt)?,
        },
    })
}

async fn load(tx: &mut Tx, id: AppealId, now: Timestamp) -> Result<Appeal> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM appeals WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("appeal"))?;
    appeal_from_row(&row, now)
}

/// Who is involved in what an appeal questions: the notice's issuer, or
/// the order's proposer and approver (people, with their tokens).
async fn involved(tx: &mut Tx, a: &Appeal) -> Result<Vec<(Option<Person>, String)>> {
    if let Some(order) = &a.order_id {
        let r = sqlx::query(
            "SELECT proposer_person, proposer_token_id, approver_person, approver_token_id FROM orders WHERE id = $1",
        )
        .bind(order)
        .fetch_one(&mut **tx)
        .await?;
        let mut out = vec![(
            stored_person(r.try_get("proposer_person")?)?,
            r.try_get::<String, _>("proposer_token_id")?,
        )];
        if let Some(t) = r.try_get::<Option<String>, _>("approver_token_id")? {
            out.push((stored_person(r.try_get("approver_person")?)?, t));
        }
        Ok(out)
    } else {
        let notice = a
            .notice_id
            .as_deref()
            .map(NoticeId::parse)
            .transpose()
            .map_err(Error::corrupt)?
            .ok_or_else(|| Error::corrupt("an item appeal without its notice"))?;
        Ok(vec![crate::disputes::issuer(tx, notice).await?])
    }
}

/// The reviewer may act on appeal `a`: an officer or approver, a person,
/// and none of the people involved.
async fn check_reviewer(tx: &mut Tx, by: &Principal, a: &Appeal) -> Result<()> {
    by.role.require(Action::DecideAppeal)?;
    let people = involved(tx, a).await?;
    let refs: Vec<(Option<&Person>, &str)> = people
        .iter()
        .map(|(p, t)| (p.as_ref(), t.as_str()))
        .collect();
    not_involved(
        &refs,
        by.person.as_ref(),
        &by.token_id.to_string(),
        PersonalAct::DecideAppeal,
    )?;
    Ok(())
}

fn public_actor() -> Actor {
    Actor {
        kind: "public",
        party_id: None,
        token_id: None,
        label: "member of the public".into(),
        role: None,
        person: None,
    }
}

impl Store {
    /// Receive an appeal: from a party (`by`, its token) or from the
    /// public (`None`). What it names must exist and be public to the
    /// appellant: a platform appeals only items of notices addressed to it,
    /// and nobody appeals a draft (404, as for records that do not exist).
    pub async fn submit_appeal(&self, by: Option<&Principal>, new: &NewAppeal) -> Result<Appeal> {
        if let Some(p) = by {
            p.role.require(Action::Appeal)?;
        }
        let mut tx = self.write().await?;
        let (order_id, notice_id, item_id) = match new.subject {
            AppealSubject::Order(o) => {
                let o = crate::orders::load_order_in(&mut tx, &o.to_string()).await?;
                if o.state == OrderState::Draft {
                    return Err(Error::NotFound("order"));
                }
                (Some(o.id), None, None)
            }
            AppealSubject::Item { notice, item } => {
                let n = load_notice(&mut tx, notice).await?;
                if n.state == NoticeState::Draft {
                    return Err(Error::NotFound("notice"));
                }
                if let Some(p) = by {
                    require_platform(p, &n)?;
                }
                if !n.items.iter().any(|i| i.id == item) {
                    return Err(Error::NotFound("item"));
                }
                (None, Some(notice.to_string()), Some(item.to_string()))
            }
        };
        let now = self.now();
        let id = AppealId::new();
        let reference = Reference::from_random(rand::random::<u64>());
        let due = now.plus_secs(self.ctx.sla.appeal_review);
        sqlx::query(
            "INSERT INTO appeals (id, reference, subject_kind, order_id, notice_id, item_id, appellant_kind, \
             appellant_party_id, appellant_token_id, reason, evidence, state, received_at, due_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'received', $12, $13)",
        )
        .bind(id.to_string())
        .bind(reference.as_str())
        .bind(new.subject.kind())
        .bind(order_id.clone())
        .bind(notice_id.clone())
        .bind(item_id.clone())
        .bind(new.appellant.as_str())
        .bind(by.map(|p| p.party_id.to_string()))
        .bind(by.map(|p| p.token_id.to_string()))
        .bind(&new.reason)
        .bind(canonical::to_string(&json!(new.evidence))?)
        .bind(now.unix_millis())
        .bind(due.unix_millis())
        .execute(&mut *tx)
        .await?;
        crate::jobs::schedule(&mut tx, JobKind::AppealDeadline, &id.to_string(), due).await?;
        let actor = by.map(Principal::actor).unwrap_or_else(public_actor);
        Event::about(
            EventType::AppealReceived,
            "appeal",
            id,
            json!({
                "reference": reference, "subject": new.subject.kind(), "order_id": order_id,
                "notice_id": notice_id, "item_id": item_id, "appellant_kind": new.appellant,
                "reason_sha256": hex::encode(Sha256::digest(new.reason.as_bytes())),
                "reason_chars": new.reason.chars().count(), "evidence_entries": new.evidence.len(),
                "due_at": due.to_string(),
            }),
        )
        .append(&mut tx, now, &actor)
        .await?;
        let a = load(&mut tx, id, now).await?;
        tx.commit().await?;
        self.signal();
        Ok(a)
    }

    /// An appeal by its public reference (anyone holding it).
    pub async fn public_appeal(&self, reference: &Reference) -> Result<PublicAppeal> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM appeals WHERE reference = $1"
        ))
        .bind(reference.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("appeal"))?;
        Ok(appeal_from_row(&row, self.now())?.public)
    }

    /// One appeal, for the authority.
    pub async fn get_appeal(&self, by: &Principal, id: AppealId) -> Result<Appeal> {
        by.role.require(Action::ReadAppeals)?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM appeals WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("appeal"))?;
        appeal_from_row(&row, self.now())
    }

    /// The authority's queue: open appeals first, by deadline; then the
    /// decided ones, newest first.
    pub async fn list_appeals(
        &self,
        by: &Principal,
        state: Option<AppealState>,
        limit: u32,
    ) -> Result<Vec<Appeal>> {
        by.role.require(Action::ReadAppeals)?;
        let mut sql = format!("SELECT {COLUMNS} FROM appeals");
        if state.is_some() {
            sql.push_str(" WHERE state = $1");
        }
        sql.push_str(&format!(
            " ORDER BY CASE WHEN state IN ('received', 'under_review') THEN 0 ELSE 1 END, \
             CASE WHEN state IN ('received', 'under_review') THEN due_at ELSE -received_at END, id LIMIT {}",
            limit.clamp(1, 1000)
        ));
        let mut q = sqlx::query(&sql);
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        let now = self.now();
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| appeal_from_row(r, now))
            .collect()
    }

    /// A reviewer takes the appeal up (`received → under_review`).
    pub async fn start_appeal_review(&self, by: &Principal, id: AppealId) -> Result<Appeal> {
        let mut tx = self.write().await?;
        let now = self.now();
        let a = load(&mut tx, id, now).await?;
        check_reviewer(&mut tx, by, &a).await?;
        let next = a.state.on(AppealEvent::StartReview)?;
        sqlx::query(
            "UPDATE appeals SET state = $1, review_started_at = $2, reviewer_token_id = $3, reviewer_person = $4 \
             WHERE id = $5 AND state = $6",
        )
        .bind(next.as_str())
        .bind(now.unix_millis())
        .bind(by.token_id.to_string())
        .bind(by.person.as_ref().map(|p| p.as_str().to_owned()))
        .bind(id.to_string())
        .bind(a.state.as_str())
        .execute(&mut *tx)
        .await?;
        Event::about(
            EventType::AppealReviewStarted,
            "appeal",
            id,
            json!({"state": next}),
        )
        .before(json!({"state": a.state}))
        .append(&mut tx, now, &by.actor())
        .await?;
        let a = load(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Decide an appeal under review. Upheld: the item is withdrawn (and
    /// the platform told), or the order is lifted (its names leave the
    /// zone). Referred to the authoriser: the authorisers are told.
    pub async fn decide_appeal(
        &self,
        by: &Principal,
        id: AppealId,
        decision: &AppealDecision,
    ) -> Result<Appeal> {
        let mut tx = self.write().await?;
        let now = self.now();
        let a = load(&mut tx, id, now).await?;
        check_reviewer(&mut tx, by, &a).await?;
        let next = a.state.on(AppealEvent::Decide(decision.outcome))?;
        let actor = by.actor();
        sqlx::query(
            "UPDATE appeals SET state = $1, decided_at = $2, decider_token_id = $3, decider_person = $4, \
             outcome = $5, reasons = $6, referred_to = $7 WHERE id = $8 AND state = $9",
        )
        .bind(next.as_str())
        .bind(now.unix_millis())
        .bind(by.token_id.to_string())
        .bind(by.person.as_ref().map(|p| p.as_str().to_owned()))
        .bind(decision.outcome.as_str())
        .bind(&decision.reasons)
        .bind(decision.referred_to.map(|r| r.as_str()))
        .bind(id.to_string())
        .bind(a.state.as_str())
        .execute(&mut *tx)
        .await?;
        crate::jobs::cancel(&mut tx, &id.to_string(), Some(JobKind::AppealDeadline)).await?;
        Event::about(
            EventType::AppealDecided,
            "appeal",
            id,
            json!({"state": next, "outcome": decision.outcome, "reasons": decision.reasons,
                   "referred_to": decision.referred_to, "reference": a.reference}),
        )
        .before(json!({"state": a.state}))
        .append(&mut tx, now, &actor)
        .await?;
        if decision.outcome == AppealOutcome::Upheld {
            self.apply_upheld(&mut tx, now, &actor, &a, &decision.reasons)
                .await?;
        }
        if decision.referred_to == Some(ReferredTo::Authoriser) {
            crate::due_process::tell_authorisers(
                &mut tx,
                now,
                EventType::AppealDecided,
                json!({"reference": a.reference, "order_id": a.order_id, "outcome": decision.outcome,
                       "referred_to": decision.referred_to, "reasons": decision.reasons}),
            )
            .await?;
        }
        let a = load(&mut tx, id, now).await?;
        tx.commit().await?;
        self.signal();
        Ok(a)
    }

    /// What an upheld appeal changes: the item withdrawn, or the order
    /// lifted (a finished order stays as it ended).
    async fn apply_upheld(
        &self,
        tx: &mut Tx,
        now: Timestamp,
        actor: &Actor,
        a: &Appeal,
        reasons: &str,
    ) -> Result<()> {
        let why = format!("lifted after appeal {}: {reasons}", a.reference);
        if let Some(order) = &a.order_id {
            let mut o = crate::orders::load_order_in(tx, order).await?;
            if !o.state.is_terminal() {
                crate::orders::end(tx, now, actor, &mut o, OrderEvent::Lift, &why).await?;
            }
            return Ok(());
        }
        let (Some(notice), Some(item)) = (&a.notice_id, &a.item_id) else {
            return Err(Error::corrupt("an item appeal without its item"));
        };
        let notice = NoticeId::parse(notice).map_err(Error::corrupt)?;
        let item = ItemId::parse(item).map_err(Error::corrupt)?;
        let mut n = load_notice(tx, notice).await?;
        let it = n
            .items
            .iter()
            .find(|i| i.id == item)
            .cloned()
            .ok_or(Error::NotFound("item"))?;
        let next = withdraw_item(it.state)?;
        let reason = format!("withdrawn after appeal {}: {reasons}", a.reference);
        sqlx::query(
            "UPDATE notice_items SET state = $1, reason = $2, decided_at = $3 WHERE id = $4",
        )
        .bind(next.as_str())
        .bind(&reason)
        .bind(now.unix_millis())
        .bind(item.to_string())
        .execute(&mut **tx)
        .await?;
        Event::notice(
            EventType::ItemWithdrawn,
            notice,
            json!({"item_id": item.to_string(), "state": next, "appeal": a.reference, "reason": reason}),
        )
        .before(json!({"item_id": item.to_string(), "state": it.state}))
        .append(tx, now, actor)
        .await?;
        crate::disputes::seal_and_deliver(
            tx,
            &self.ctx,
            now,
            &n,
            EventType::ItemWithdrawn,
            json!({
                "type": "tapis.withdrawal.v1", "notice_id": notice.to_string(), "item_id": item.to_string(),
                "item": {"kind": it.kind, "normalized": it.normalized},
                "reason": reason, "appeal": a.reference, "withdrawn_at": now.to_string(),
            }),
        )
        .await?;
        n = load_notice(tx, notice).await?;
        crate::disputes::end_open_dispute(tx, now, actor, &mut n, item, &reason).await?;
        crate::disputes::resolve_if_undisputed(tx, now, actor, &mut n).await?;
        if n.state.is_open() {
            settle(tx, now, actor, &mut n).await?;
        }
        Ok(())
    }

    /// A name's latest order lifted after an upheld appeal (for the lookup
    /// and the block page, once the name is no longer blocked).
    pub async fn lifted_after_appeal(&self, name: &str) -> Result<Option<LiftedAfterAppeal>> {
        // the name itself, or a parent whose order covered its subdomains
        let mut candidates = vec![(name.to_owned(), false)];
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            candidates.push((parent.to_owned(), true));
            rest = parent;
        }
        let now = self.now();
        let mut best: Option<LiftedAfterAppeal> = None;
        for (candidate, needs_subdomains) in candidates {
            let rows = sqlx::query(
                "SELECT a.reference, a.order_id, a.decided_at, t.include_subdomains FROM appeals a \
                 JOIN order_targets t ON t.order_id = a.order_id \
                 WHERE t.name = $1 AND a.outcome = 'upheld' ORDER BY a.decided_at DESC LIMIT 5",
            )
            .bind(&candidate)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                if needs_subdomains && r.try_get::<i64, _>("include_subdomains")? == 0 {
                    continue;
                }
                let lifted_at = opt_ts(&r, "decided_at")?.unwrap_or(now);
                if best.as_ref().is_none_or(|b| b.lifted_at < lifted_at) {
                    best = Some(LiftedAfterAppeal {
                        order_id: r.try_get("order_id")?,
                        reference: Reference::parse(&r.try_get::<String, _>("reference")?)
                            .map_err(Error::corrupt)?,
                        lifted_at,
                    });
                }
            }
        }
        Ok(best)
    }

    /// How many appeals are in each state, and how many are overdue.
    pub async fn appeal_counts(&self, by: &Principal) -> Result<Vec<(String, i64)>> {
        by.role.require(Action::ReadAppeals)?;
        let mut out: Vec<(String, i64)> =
            sqlx::query("SELECT state, COUNT(*) AS n FROM appeals GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
                .collect::<Result<_>>()?;
        let overdue: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM appeals WHERE state IN ('received', 'under_review') AND due_at <= $1",
        )
        .bind(self.now().unix_millis())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        out.push(("overdue".into(), overdue));
        Ok(out)
    }
}

/// An appeal's deadline fell due (the dispatcher's job): an open appeal
/// is overdue, on the record, and the approvers' queue shows it first.
/// Returns whether it acted.
pub(crate) async fn fire_deadline(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    subject: &str,
) -> Result<bool> {
    let id = AppealId::parse(subject).map_err(Error::corrupt)?;
    let a = load(tx, id, now).await?;
    if !overdue(a.state) {
        return Ok(false);
    }
    sqlx::query("UPDATE appeals SET overdue_at = $1 WHERE id = $2")
        .bind(now.unix_millis())
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    Event::about(
        EventType::AppealOverdue,
        "appeal",
        id,
        json!({"state": a.state, "due_at": a.due_at.to_string(), "reference": a.reference}),
    )
    .append(tx, now, actor)
    .await?;
    Ok(true)
}
