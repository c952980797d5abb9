//! Blocking orders: their life (proposal, four-eyes approval, activation
//! through the due-process check, lift, review, end), each step one
//! transaction with its audit event and the ISPs' messages. Split by
//! subject: `zone` (the RPZ compiler and the zone's readers), `views`
//! (blast radius, lookup) and `jobs` (the timed steps).

use crate::{
    Error, Principal, Result, Store,
    audit::{self, Event},
};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::job::JobKind;
use tapis_core::order::{
    NewOrder, OrderAction, OrderEvent, OrderState, candidate_owners, effective_action,
};
use tapis_core::publication::Publication;
use tapis_core::target::DomainName;
use tapis_core::{Timestamp, canonical};

mod digests;
mod views;
mod web;
mod zone;

pub use digests::*;
pub use views::*;
pub use web::*;
pub use zone::*;

type Tx = Transaction<'static, Any>;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderTargetView {
    pub name: String,
    pub include_subdomains: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: String,
    pub state: OrderState,
    pub action: OrderAction,
    pub category: String,
    pub legal_basis: crate::LegalBasisView,
    pub explanation: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub effective_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub review_at: Timestamp,
    pub notices: Vec<String>,
    pub escalation_id: Option<String>,
    pub target_count: i64,
    /// The first 1,000 targets; `target_count` says how many there are.
    pub targets: Vec<OrderTargetView>,
    pub proposer_label: String,
    pub approver_label: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub approved_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub activated_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    /// An emergency order may go in force before its authorisation, and
    /// lapses unless authorised within the policy's limit.
    pub emergency: bool,
    /// Where the log holds the latest audit event about the order (its
    /// leaf, the salt and the event's hash): what an ISP checks with
    /// `GET /api/v1/log/proof/leaf/{leaf_index}`. Only on a single order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<crate::tlog::LeafEntry>,
}

const ORDER_COLUMNS: &str = "id, state, action, category, legal_basis_reference, legal_basis_text, explanation, \
    effective_at, expires_at, review_at, notices, escalation_id, target_count, proposer_party_id, proposer_token_id, \
    proposer_label, approver_label, approved_at, activated_at, ended_at, end_reason, created_at, emergency";

fn ts(row: &AnyRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_millis(row.try_get(col)?))
}

fn opt_ts(row: &AnyRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)?
        .map(Timestamp::from_unix_millis))
}

fn order_from_row(row: &AnyRow) -> Result<Order> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(Order {
        id: s("id")?,
        state: OrderState::parse(&s("state")?).map_err(Error::corrupt)?,
        action: OrderAction::parse(&s("action")?).map_err(Error::corrupt)?,
        category: s("category")?,
        legal_basis: crate::LegalBasisView {
            reference: s("legal_basis_reference")?,
            text: s("legal_basis_text")?,
        },
        explanation: row.try_get("explanation")?,
        effective_at: ts(row, "effective_at")?,
        expires_at: ts(row, "expires_at")?,
        review_at: ts(row, "review_at")?,
        notices: serde_json::from_str(&s("notices")?).map_err(Error::corrupt)?,
        escalation_id: row.try_get("escalation_id")?,
        target_count: row.try_get("target_count")?,
        targets: Vec::new(),
        proposer_label: s("proposer_label")?,
        approver_label: row.try_get("approver_label")?,
        approved_at: opt_ts(row, "approved_at")?,
        activated_at: opt_ts(row, "activated_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        end_reason: row.try_get("end_reason")?,
        created_at: ts(row, "created_at")?,
        emergency: row.try_get::<i64, _>("emergency")? != 0,
        log: None,
    })
}

async fn load_order(tx: &mut Tx, id: &str) -> Result<(Order, String)> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("order"))?;
    let proposer_token: String = row.try_get("proposer_token_id")?;
    let mut o = order_from_row(&row)?;
    o.targets = load_targets(tx, id, 1000).await?;
    Ok((o, proposer_token))
}

/// An order by id inside a transaction (for the due-process module).
pub(crate) async fn load_order_in(tx: &mut Tx, id: &str) -> Result<Order> {
    Ok(load_order(tx, id).await?.0)
}

async fn load_targets(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    limit: u32,
) -> Result<Vec<OrderTargetView>> {
    let rows = sqlx::query(&format!("SELECT name, include_subdomains FROM order_targets WHERE order_id = $1 ORDER BY name LIMIT {limit}"))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderTargetView {
                name: r.try_get("name")?,
                include_subdomains: r.try_get::<i64, _>("include_subdomains")? != 0,
            })
        })
        .collect()
}

fn order_json(o: &Order) -> Value {
    json!({
        "id": o.id, "state": o.state, "action": o.action, "category": o.category,
        "legal_basis": {"reference": o.legal_basis.reference, "text": o.legal_basis.text},
        "effective_at": o.effective_at.to_string(), "expires_at": o.expires_at.to_string(),
        "review_at": o.review_at.to_string(), "target_count": o.target_count,
        "notices": o.notices, "escalation_id": o.escalation_id, "emergency": o.emergency,
    })
}

/// A value for an extra column set with a state change.
enum Col {
    Text(&'static str, Option<String>),
    Int(&'static str, i64),
}

async fn set_order_state(
    tx: &mut Tx,
    now: Timestamp,
    o: &Order,
    next: OrderState,
    extra: &[Col],
) -> Result<()> {
    let mut sql = "UPDATE orders SET state = $1, updated_at = $2".to_owned();
    for (i, c) in extra.iter().enumerate() {
        let name = match c {
            Col::Text(n, _) | Col::Int(n, _) => n,
        };
        sql.push_str(&format!(", {name} = ${}", i + 5));
    }
    sql.push_str(" WHERE id = $3 AND state = $4");
    let mut q = sqlx::query(&sql)
        .bind(next.as_str())
        .bind(now.unix_millis())
        .bind(&o.id)
        .bind(o.state.as_str());
    for c in extra {
        q = match c {
            Col::Text(_, v) => q.bind(v.clone()),
            Col::Int(_, v) => q.bind(*v),
        };
    }
    if q.execute(&mut **tx).await?.rows_affected() != 1 {
        return Err(Error::Conflict("the order changed meanwhile; retry".into()));
    }
    Ok(())
}

/// Tell every ISP (webhook or email, as for platforms) that an order
/// changed, with the zone serial that carries it.
async fn tell_isps(tx: &mut Tx, now: Timestamp, o: &Order, event: EventType) -> Result<()> {
    let serial = current_serial(tx).await?;
    let isps = sqlx::query("SELECT id FROM parties WHERE kind = 'isp'")
        .fetch_all(&mut **tx)
        .await?;
    for r in isps {
        let party =
            tapis_core::PartyId::parse(&r.try_get::<String, _>("id")?).map_err(Error::corrupt)?;
        crate::channel::enqueue(
            tx,
            now,
            party,
            None,
            event,
            json!({"order_id": o.id, "action": o.action, "category": o.category, "target_count": o.target_count,
                   "effective_at": o.effective_at.to_string(), "expires_at": o.expires_at.to_string(), "serial": serial}),
        )
        .await?;
    }
    Ok(())
}

/// Put an order in force (state, zone, serial, event) inside `tx` — if
/// the compiler's due-process check lets it in. Otherwise nothing changes
/// but an audit event saying why (`None`); the order waits, scheduled, for
/// its authorisation.
async fn activate(
    tx: &mut Tx,
    policy: &tapis_core::due_process::DueProcessPolicy,
    now: Timestamp,
    actor: &Actor,
    o: &mut Order,
) -> Result<Option<i64>> {
    let next = o.state.on(OrderEvent::Activate)?;
    let publication = crate::due_process::check_publication(tx, policy, now, o).await?;
    if let Publication::Refused(why) = &publication {
        Event::order(
            EventType::OrderPublicationWithheld,
            &o.id,
            json!({"state": o.state, "reason": why}),
        )
        .before(json!({"state": o.state}))
        .append(tx, now, actor)
        .await?;
        return Ok(None);
    }
    crate::due_process::record_publication(tx, now, o, &publication).await?;
    if let Publication::Allowed {
        until: Some(until), ..
    } = &publication
    {
        crate::jobs::schedule(tx, JobKind::OrderEmergencyLapse, &o.id, *until).await?;
    }
    set_order_state(
        tx,
        now,
        o,
        next,
        &[Col::Int("activated_at", now.unix_millis())],
    )
    .await?;
    o.state = next;
    let changes = activate_zone(tx, now, actor, o).await?;
    tell_isps(tx, now, o, EventType::OrderInForce).await?;
    Event::order(
        EventType::OrderInForce,
        &o.id,
        json!({"state": next, "zone_changes": changes}),
    )
    .before(json!({"state": "scheduled"}))
    .append(tx, now, actor)
    .await?;
    o.activated_at = Some(now);
    Ok(Some(changes))
}

/// [`activate`] with the store's policy (for the due-process module).
pub(crate) async fn activate_in(
    store: &Store,
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    o: &mut Order,
) -> Result<Option<i64>> {
    activate(tx, &store.ctx.due_process, now, actor, o).await
}

/// [`end`] under the name the jobs module calls it by.
pub(crate) use end as end_in;

/// End an order (expired, lapsed or lifted) inside `tx`.
pub(crate) async fn end(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    o: &mut Order,
    event: OrderEvent,
    reason: &str,
) -> Result<i64> {
    let was_in_force = o.state == OrderState::InForce;
    let next = o.state.on(event)?;
    set_order_state(
        tx,
        now,
        o,
        next,
        &[
            Col::Int("ended_at", now.unix_millis()),
            Col::Text("end_reason", Some(reason.to_owned())),
        ],
    )
    .await?;
    let before = o.state;
    o.state = next;
    crate::jobs::cancel(tx, &o.id, None).await?;
    let changes = if was_in_force {
        deactivate_zone(tx, now, actor, o).await?
    } else {
        0
    };
    tell_isps(
        tx,
        now,
        o,
        if next == OrderState::Lifted {
            EventType::OrderLifted
        } else {
            EventType::OrderExpired
        },
    )
    .await?;
    let action = if next == OrderState::Lifted {
        EventType::OrderLifted
    } else {
        EventType::OrderExpired
    };
    Event::order(
        action,
        &o.id,
        json!({"state": next, "reason": reason, "zone_changes": changes}),
    )
    .before(json!({"state": before}))
    .append(tx, now, actor)
    .await?;
    Ok(changes)
}

/// Who proposes an order: a token holder, or an operator at the command line.
#[derive(Debug, Clone)]
pub struct Proposer {
    pub party_id: String,
    /// The token id, or a marker such as `cli:import` for local commands.
    pub token_id: String,
    pub label: String,
    pub actor: Actor,
    /// The person proposing; `None` for a local command (an import).
    pub person: Option<tapis_core::person::Person>,
}

/// Rows of targets per INSERT: few round trips, well under every
/// database's parameter limit.
const TARGET_CHUNK: usize = 500;

async fn insert_order(
    tx: &mut Tx,
    policy: &tapis_core::due_process::DueProcessPolicy,
    now: Timestamp,
    by: &Proposer,
    new: NewOrder,
) -> Result<Order> {
    let platforms = crate::due_process::platform_domains(tx).await?;
    let (reasons, affected) = tapis_core::due_process::assess(policy, &new.targets, &platforms);
    if !affected.is_empty()
        && !new.emergency
        && new.effective_at < now.plus_millis(policy.platform_lead_secs * 1000)
    {
        return Err(tapis_core::Error::invalid(
            "effective_at",
            format!(
                "this order affects a registered platform's names, which must be told {} h before it takes effect: \
                 choose effective_at at or after {} (or mark it an emergency, which lapses unless authorised)",
                policy.platform_lead_secs / 3600,
                now.plus_millis(policy.platform_lead_secs * 1000)
            ),
        )
        .into());
    }
    let id = uuid::Uuid::now_v7().to_string();
    let notices: Vec<String> = new.notices.iter().map(|n| n.to_string()).collect();
    sqlx::query(
        "INSERT INTO orders (id, state, action, category, legal_basis_reference, legal_basis_text, explanation, effective_at, \
         expires_at, review_at, notices, escalation_id, target_count, proposer_party_id, proposer_token_id, proposer_label, created_at, updated_at, \
         emergency, needs_authorisation, proposer_person) \
         VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18, $19)",
    )
    .bind(&id)
    .bind(new.action.as_str())
    .bind(&new.category)
    .bind(&new.legal_basis.reference)
    .bind(&new.legal_basis.text)
    .bind(new.explanation.clone())
    .bind(new.effective_at.unix_millis())
    .bind(new.expires_at.unix_millis())
    .bind(new.review_at.unix_millis())
    .bind(canonical::to_string(&json!(notices))?)
    .bind(new.escalation_id.clone())
    .bind(new.targets.len() as i64)
    .bind(&by.party_id)
    .bind(&by.token_id)
    .bind(&by.label)
    .bind(now.unix_millis())
    .bind(i64::from(new.emergency))
    .bind(canonical::to_string(&json!(reasons))?)
    .bind(by.person.as_ref().map(|p| p.as_str().to_owned()))
    .execute(&mut **tx)
    .await?;
    for chunk in new.targets.chunks(TARGET_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO order_targets (order_id, name, include_subdomains) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(&id);
        for t in chunk {
            q = q
                .bind(t.name.as_str())
                .bind(i64::from(t.include_subdomains));
        }
        q.execute(&mut **tx).await?;
    }
    let (o, _) = load_order(tx, &id).await?;
    // one event per order, not per name: it names the batch by its hash
    let names: Vec<String> = new
        .targets
        .iter()
        .map(|t| format!("{}{}", if t.include_subdomains { "*." } else { "" }, t.name))
        .collect();
    let mut event = order_json(&o);
    event["targets_sha256"] = json!(tapis_core::sign::content_hash(&json!(names))?);
    event["needs_authorisation"] = json!(reasons);
    event["platforms"] = json!(affected);
    Event::order(EventType::OrderProposed, &id, event)
        .append(tx, now, &by.actor)
        .await?;
    if !affected.is_empty() {
        crate::due_process::tell_platforms(
            tx,
            now,
            &o,
            &new.targets,
            &platforms,
            &affected,
            &reasons,
        )
        .await?;
    }
    if !reasons.is_empty() {
        crate::due_process::tell_authorisers(
            tx,
            now,
            EventType::OrderAuthorisationNeeded,
            json!({"order_id": o.id, "reasons": reasons, "effective_at": o.effective_at.to_string(),
                   "emergency": o.emergency, "order": format!("/api/v1/orders/{}", o.id)}),
        )
        .await?;
    }
    let (o, _) = load_order(tx, &id).await?;
    Ok(o)
}

impl Store {
    /// Propose an order (a draft; nothing changes in DNS until it is approved
    /// and in force).
    pub async fn create_order(&self, by: &Principal, new: NewOrder) -> Result<Order> {
        let person = tapis_core::person::require_person(
            by.person.as_ref(),
            tapis_core::person::PersonalAct::ProposeOrder,
        )?;
        let proposer = Proposer {
            party_id: by.party_id.to_string(),
            token_id: by.token_id.to_string(),
            label: by.label.clone(),
            actor: by.actor(),
            person: Some(person.clone()),
        };
        let mut orders = self.create_orders(&proposer, vec![new]).await?;
        orders.pop().ok_or(Error::NotFound("order"))
    }

    /// Propose several orders in one transaction (an import): all or none.
    pub async fn create_orders(&self, by: &Proposer, orders: Vec<NewOrder>) -> Result<Vec<Order>> {
        let mut tx = self.write().await?;
        let now = self.now();
        let mut out = Vec::with_capacity(orders.len());
        for new in orders {
            out.push(insert_order(&mut tx, &self.ctx.due_process, now, by, new).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn get_order(&self, id: &str) -> Result<Order> {
        let mut tx = self.pool.begin().await?;
        let (mut o, _) = load_order(&mut tx, id).await?;
        o.log = crate::tlog::latest_entry_about(&mut *tx, "order", id).await?;
        tx.commit().await?;
        Ok(o)
    }

    pub async fn list_orders(&self, state: Option<OrderState>, limit: u32) -> Result<Vec<Order>> {
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders");
        if state.is_some() {
            sql.push_str(" WHERE state = $1");
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.clamp(1, 500)));
        let mut q = sqlx::query(&sql);
        if let Some(s) = state {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Approve an order. Four eyes: the approver is never the person who
    /// proposed it, whatever tokens either used (core's
    /// `person::four_eyes`), and a machine credential never approves.
    /// An order whose time has come goes in force at once; otherwise it is
    /// scheduled. Expiry and review are scheduled either way.
    pub async fn approve_order(&self, by: &Principal, id: &str) -> Result<Order> {
        let mut tx = self.write().await?;
        let (mut o, proposer) = load_order(&mut tx, id).await?;
        let proposer_person = sqlx::query("SELECT proposer_person FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<Option<String>, _>("proposer_person")?
            .map(|p| tapis_core::person::Person::from_stored(&p))
            .transpose()
            .map_err(Error::corrupt)?;
        tapis_core::person::four_eyes(
            proposer_person.as_ref(),
            &proposer,
            by.person.as_ref(),
            &by.token_id.to_string(),
        )?;
        let now = self.now();
        if o.expires_at <= now {
            return Err(tapis_core::Error::invalid(
                "expires_at",
                "this order has already expired; propose a new one",
            )
            .into());
        }
        let next = o.state.on(OrderEvent::Approve)?;
        set_order_state(
            &mut tx,
            now,
            &o,
            next,
            &[
                Col::Text("approver_token_id", Some(by.token_id.to_string())),
                Col::Text("approver_label", Some(by.label.clone())),
                Col::Text(
                    "approver_person",
                    by.person.as_ref().map(|p| p.as_str().to_owned()),
                ),
                Col::Int("approved_at", now.unix_millis()),
            ],
        )
        .await?;
        o.state = next;
        Event::order(
            EventType::OrderApproved,
            id,
            json!({"state": next, "approver": by.label}),
        )
        .before(json!({"state": "draft"}))
        .append(&mut tx, now, &by.actor())
        .await?;
        crate::jobs::schedule(&mut tx, JobKind::OrderExpire, id, o.expires_at).await?;
        crate::jobs::schedule(&mut tx, JobKind::OrderReview, id, o.review_at).await?;
        let actor = Actor::system("scheduler");
        if o.effective_at <= now {
            if activate(&mut tx, &self.ctx.due_process, now, &actor, &mut o)
                .await?
                .is_none()
            {
                // withheld: it waits, scheduled, for its authorisation
                let next = o.state.on(OrderEvent::Schedule)?;
                set_order_state(&mut tx, now, &o, next, &[]).await?;
                o.state = next;
            }
        } else {
            let next = o.state.on(OrderEvent::Schedule)?;
            set_order_state(&mut tx, now, &o, next, &[]).await?;
            o.state = next;
            crate::jobs::schedule(&mut tx, JobKind::OrderActivate, id, o.effective_at).await?;
        }
        self.commit_order(tx, id).await
    }

    /// Lift an order before its expiry, with a reason for the record.
    pub async fn lift_order(&self, by: &Principal, id: &str, reason: &str) -> Result<Order> {
        let reason = tapis_core::party::bounded_text("reason", reason, 1, 4000)?;
        let mut tx = self.write().await?;
        let (mut o, _) = load_order(&mut tx, id).await?;
        end(
            &mut tx,
            self.now(),
            &by.actor(),
            &mut o,
            OrderEvent::Lift,
            &reason,
        )
        .await?;
        self.commit_order(tx, id).await
    }

    /// Record the periodic review: the order stays in force to its expiry.
    /// Without it, the order lapses at its review date.
    pub async fn review_order(&self, by: &Principal, id: &str, note: &str) -> Result<Order> {
        let note = tapis_core::party::bounded_text("note", note, 1, 4000)?;
        let mut tx = self.write().await?;
        let (o, _) = load_order(&mut tx, id).await?;
        if !matches!(
            o.state,
            OrderState::Approved | OrderState::Scheduled | OrderState::InForce
        ) {
            return Err(tapis_core::Error::IllegalTransition {
                entity: "order",
                state: o.state.as_str().to_owned(),
                action: "review".into(),
            }
            .into());
        }
        let now = self.now();
        sqlx::query("UPDATE orders SET reviewed_at = $1, updated_at = $1 WHERE id = $2")
            .bind(now.unix_millis())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        crate::jobs::cancel(&mut tx, id, Some(JobKind::OrderReview)).await?;
        Event::order(EventType::OrderReviewed, id, json!({"note": note}))
            .append(&mut tx, now, &by.actor())
            .await?;
        let (o, _) = load_order(&mut tx, id).await?;
        tx.commit().await?;
        Ok(o)
    }

    /// Commit a change to order `id` and wake the workers (the zone may
    /// have changed); returns the order as committed.
    async fn commit_order(&self, mut tx: Tx, id: &str) -> Result<Order> {
        let (o, _) = load_order(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(o)
    }
}
