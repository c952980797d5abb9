//! Blocking orders and the Response Policy Zone they compile into.
//!
//! `rpz_records` is the zone as it stands: one row per owner name (`name` or
//! `*.name`) with the action the in-force orders give it (core's
//! `effective_action` settles overlaps). Every change to it is journalled
//! under a new serial in the same transaction as the order change that
//! caused it, so the zone, its serial and its diffs (for IXFR) can never
//! disagree, and the serial only increases.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::audit::Actor;
use tapis_core::order::{
    NewOrder, OrderAction, OrderEvent, OrderState, candidate_owners, effective_action,
};
use tapis_core::publication::Publication;
use tapis_core::target::DomainName;
use tapis_core::{Timestamp, canonical};

use crate::{Error, Principal, Result, Store, audit};

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
}

/// What an order would touch, shown before anyone approves it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlastRadius {
    pub order_id: String,
    pub action: OrderAction,
    pub targets: Vec<TargetRadius>,
    /// Targets that are (or are under) a registered platform's domain:
    /// blocking them blocks the whole service for everyone.
    pub platform_domains_hit: usize,
    pub overlapping_orders: usize,
    pub exceptions_hit: usize,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetRadius {
    pub name: String,
    /// The exact name is covered.
    pub exact: bool,
    /// Every name under it is covered too (`*.name`).
    pub wildcard: bool,
    /// Registered platforms that operate this name (or a parent of it).
    pub platforms: Vec<PlatformHit>,
    /// Other live orders that cover this name or names under it.
    pub overlaps: Vec<Overlap>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformHit {
    pub party_id: String,
    pub name: String,
    pub domain: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overlap {
    pub order_id: String,
    pub state: OrderState,
    pub action: OrderAction,
    pub name: String,
    pub include_subdomains: bool,
}

/// Why a name is (or is not) blocked.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lookup {
    pub name: String,
    pub blocked: bool,
    /// The zone owner that matched (`name` or `*.parent`).
    pub matched: Option<String>,
    pub action: Option<OrderAction>,
    pub order: Option<LookupOrder>,
    pub serial: i64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LookupOrder {
    pub id: String,
    pub category: String,
    pub legal_basis: crate::LegalBasisView,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub in_force_since: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
}

fn record_from_row(r: &AnyRow) -> Result<RpzRecord> {
    Ok(RpzRecord {
        owner: r.try_get("owner")?,
        action: OrderAction::parse(&r.try_get::<String, _>("action")?).map_err(Error::corrupt)?,
        order_id: r.try_get("order_id")?,
        category: r.try_get("category")?,
    })
}

/// One record of the zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpzRecord {
    pub owner: String,
    pub action: OrderAction,
    /// The order the record carries out, and its category (for the
    /// explanation published beside it). Journal entries written before
    /// explanations existed have none.
    pub order_id: Option<String>,
    pub category: Option<String>,
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

pub(crate) async fn schedule_job(
    tx: &mut Tx,
    kind: &str,
    subject: &str,
    due: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, subject_id, due_at, state) VALUES ($1, $2, $3, $4, 'pending') \
         ON CONFLICT (kind, subject_id) DO UPDATE SET due_at = excluded.due_at, state = 'pending', fired_at = NULL",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(kind)
    .bind(subject)
    .bind(due.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn cancel_jobs(tx: &mut Tx, subject: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET state = 'cancelled' WHERE subject_id = $1 AND state = 'pending'")
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    Ok(())
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

/// Recompute the zone for these owners, one by one, from the in-force
/// orders; journal what changed under `serial`. Returns the journal entries
/// written. (Bulk activation and deactivation are set-based; this handles
/// the owners several orders share.)
async fn recompute(tx: &mut Tx, serial: i64, owners: &[String]) -> Result<i64> {
    let mut seq = seq_base(tx, serial).await?;
    let start = seq;
    for owner in owners {
        let (base, wildcard) = match owner.strip_prefix("*.") {
            Some(b) => (b, true),
            None => (owner.as_str(), false),
        };
        let sql = format!(
            "SELECT o.id, o.action, o.activated_at FROM order_targets t JOIN orders o ON o.id = t.order_id \
             WHERE t.name = $1 AND o.state = 'in_force' AND o.id IN (SELECT order_id FROM order_publications){} \
             ORDER BY o.activated_at, o.id",
            if wildcard {
                " AND t.include_subdomains = 1"
            } else {
                ""
            }
        );
        let rows = sqlx::query(&sql).bind(base).fetch_all(&mut **tx).await?;
        let mut live: Vec<(OrderAction, String)> = Vec::new();
        for r in &rows {
            live.push((
                OrderAction::parse(&r.try_get::<String, _>("action")?).map_err(Error::corrupt)?,
                r.try_get("id")?,
            ));
        }
        let new = effective_action(live.iter().map(|(a, _)| *a)).map(|a| {
            let id = live
                .iter()
                .find(|(x, _)| *x == a)
                .map(|(_, id)| id.clone())
                .unwrap_or_default();
            (a, id)
        });
        let old = sqlx::query("SELECT action, order_id FROM rpz_records WHERE owner = $1")
            .bind(owner)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| -> Result<(OrderAction, String)> {
                Ok((
                    OrderAction::parse(&r.try_get::<String, _>("action")?)
                        .map_err(Error::corrupt)?,
                    r.try_get("order_id")?,
                ))
            })
            .transpose()?;
        // a change of order with the same action is a change too: the
        // explanation published beside the record names the order
        if old != new {
            if let Some(o) = &old {
                seq += 1;
                journal(tx, serial, seq, "del", owner, o).await?;
            }
            if let Some(n) = &new {
                seq += 1;
                journal(tx, serial, seq, "add", owner, n).await?;
            }
        }
        match (&old, &new) {
            (_, None) => {
                sqlx::query("DELETE FROM rpz_records WHERE owner = $1")
                    .bind(owner)
                    .execute(&mut **tx)
                    .await?;
            }
            (None, Some((a, id))) => {
                sqlx::query(
                    "INSERT INTO rpz_records (owner, action, order_id) VALUES ($1, $2, $3)",
                )
                .bind(owner)
                .bind(a.as_str())
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
            (Some(o), Some((a, id))) if o.0 != *a || o.1 != *id => {
                sqlx::query("UPDATE rpz_records SET action = $1, order_id = $2 WHERE owner = $3")
                    .bind(a.as_str())
                    .bind(id)
                    .bind(owner)
                    .execute(&mut **tx)
                    .await?;
            }
            _ => {}
        }
    }
    Ok(seq - start)
}

/// An SQL expression giving the rank of the action in column `col`,
/// generated from core's [`OrderAction::rank`] (the one definition of
/// precedence: smaller wins).
fn rank_sql(col: &str) -> String {
    let mut sql = format!("CASE {col}");
    for a in OrderAction::ALL {
        sql.push_str(&format!(" WHEN '{}' THEN {}", a.as_str(), a.rank()));
    }
    sql.push_str(" END");
    sql
}

/// The owner names of order `$1`: every target, and `*.target` for those
/// with subdomains.
const OWNERS: &str = "(SELECT name AS owner FROM order_targets WHERE order_id = $1 \
    UNION ALL SELECT '*.' || name AS owner FROM order_targets WHERE order_id = $1 AND include_subdomains = 1)";

/// Whether an in-force order still covers `rpz_records.owner`.
const COVERED: &str = "EXISTS (SELECT 1 FROM order_targets t JOIN orders o ON o.id = t.order_id \
    WHERE o.state = 'in_force' AND o.id IN (SELECT order_id FROM order_publications) AND t.name = CASE WHEN rpz_records.owner LIKE '*.%' THEN substr(rpz_records.owner, 3) ELSE rpz_records.owner END \
    AND (rpz_records.owner NOT LIKE '*.%' OR t.include_subdomains = 1))";

async fn next_serial(tx: &mut Tx) -> Result<(Option<i64>, i64)> {
    let current = current_serial(tx).await?;
    Ok(((current > 0).then_some(current), current + 1))
}

async fn seq_base(tx: &mut Tx, serial: i64) -> Result<i64> {
    let s: Option<i64> = sqlx::query("SELECT MAX(seq) AS s FROM rpz_journal WHERE serial = $1")
        .bind(serial)
        .fetch_one(&mut **tx)
        .await?
        .try_get("s")?;
    Ok(s.unwrap_or(0))
}

/// Record the serial if anything changed.
async fn finish_serial(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    last: Option<i64>,
    serial: i64,
    changes: i64,
    reason: &str,
) -> Result<()> {
    if changes > 0 {
        sqlx::query(
            "INSERT INTO rpz_serials (serial, created_at, changes, reason) VALUES ($1, $2, $3, $4)",
        )
        .bind(serial)
        .bind(now.unix_millis())
        .bind(changes)
        .bind(reason)
        .execute(&mut **tx)
        .await?;
        audit::append(
            tx,
            now,
            actor,
            "rpz.serial",
            ("zone", "rpz"),
            json!({"serial": last}),
            json!({"serial": serial, "changes": changes, "reason": reason}),
        )
        .await?;
    }
    Ok(())
}

/// Put order `o` (now in force) into the zone, set-based: owners it beats
/// are replaced, new owners added; everything journalled under one serial.
/// Adding an order can only lower an owner's rank, so no other order needs
/// looking at.
async fn activate_zone(tx: &mut Tx, now: Timestamp, actor: &Actor, o: &Order) -> Result<i64> {
    let (last, serial) = next_serial(tx).await?;
    let rank = i64::from(o.action.rank());
    let r_rank = rank_sql("r.action");
    let base = seq_base(tx, serial).await?;
    let dels = sqlx::query(&format!(
        "INSERT INTO rpz_journal (serial, seq, op, owner, action, order_id) SELECT $2, $3 + ROW_NUMBER() OVER (ORDER BY r.owner), 'del', r.owner, r.action, r.order_id \
         FROM rpz_records r JOIN {OWNERS} ow ON ow.owner = r.owner WHERE {r_rank} > $4"
    ))
    .bind(&o.id)
    .bind(serial)
    .bind(base)
    .bind(rank)
    .execute(&mut **tx)
    .await?
    .rows_affected() as i64;
    let base = seq_base(tx, serial).await?;
    let adds_over = sqlx::query(&format!(
        "INSERT INTO rpz_journal (serial, seq, op, owner, action, order_id) SELECT $2, $3 + ROW_NUMBER() OVER (ORDER BY r.owner), 'add', r.owner, $5, $1 \
         FROM rpz_records r JOIN {OWNERS} ow ON ow.owner = r.owner WHERE {r_rank} > $4"
    ))
    .bind(&o.id)
    .bind(serial)
    .bind(base)
    .bind(rank)
    .bind(o.action.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(&format!(
        "UPDATE rpz_records SET action = $2, order_id = $1 WHERE owner IN (SELECT owner FROM {OWNERS} ow) AND {} > $3",
        rank_sql("action")
    ))
    .bind(&o.id)
    .bind(o.action.as_str())
    .bind(rank)
    .execute(&mut **tx)
    .await?;
    let base = seq_base(tx, serial).await?;
    let adds_new = sqlx::query(&format!(
        "INSERT INTO rpz_journal (serial, seq, op, owner, action, order_id) SELECT $2, $3 + ROW_NUMBER() OVER (ORDER BY ow.owner), 'add', ow.owner, $4, $1 \
         FROM {OWNERS} ow WHERE NOT EXISTS (SELECT 1 FROM rpz_records r WHERE r.owner = ow.owner)"
    ))
    .bind(&o.id)
    .bind(serial)
    .bind(base)
    .bind(o.action.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(&format!(
        "INSERT INTO rpz_records (owner, action, order_id) SELECT ow.owner, $2, $1 FROM {OWNERS} ow \
         WHERE NOT EXISTS (SELECT 1 FROM rpz_records r WHERE r.owner = ow.owner)"
    ))
    .bind(&o.id)
    .bind(o.action.as_str())
    .execute(&mut **tx)
    .await?;
    let changes = dels + adds_over + adds_new;
    finish_serial(
        tx,
        now,
        actor,
        last,
        serial,
        changes,
        &format!("order {} in force", o.id),
    )
    .await?;
    Ok(changes)
}

/// Take order `o` (no longer in force) out of the zone: owners no other
/// in-force order covers are deleted set-based; owners others share are
/// recomputed one by one.
async fn deactivate_zone(tx: &mut Tx, now: Timestamp, actor: &Actor, o: &Order) -> Result<i64> {
    let (last, serial) = next_serial(tx).await?;
    let base = seq_base(tx, serial).await?;
    let dels = sqlx::query(&format!(
        "INSERT INTO rpz_journal (serial, seq, op, owner, action, order_id) SELECT $2, $3 + ROW_NUMBER() OVER (ORDER BY rpz_records.owner), 'del', rpz_records.owner, rpz_records.action, rpz_records.order_id \
         FROM rpz_records WHERE rpz_records.order_id = $1 AND NOT {COVERED}"
    ))
    .bind(&o.id)
    .bind(serial)
    .bind(base)
    .execute(&mut **tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(&format!(
        "DELETE FROM rpz_records WHERE rpz_records.order_id = $1 AND NOT {COVERED}"
    ))
    .bind(&o.id)
    .execute(&mut **tx)
    .await?;
    let shared: Vec<String> = sqlx::query("SELECT owner FROM rpz_records WHERE order_id = $1")
        .bind(&o.id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("owner"))
        .collect::<std::result::Result<_, _>>()?;
    let rest = recompute(tx, serial, &shared).await?;
    let changes = dels + rest;
    finish_serial(
        tx,
        now,
        actor,
        last,
        serial,
        changes,
        &format!("order {} {}", o.id, o.state.as_str()),
    )
    .await?;
    Ok(changes)
}

async fn journal(
    tx: &mut Tx,
    serial: i64,
    seq: i64,
    op: &str,
    owner: &str,
    (action, order_id): &(OrderAction, String),
) -> Result<()> {
    sqlx::query(
        "INSERT INTO rpz_journal (serial, seq, op, owner, action, order_id) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(serial)
    .bind(seq)
    .bind(op)
    .bind(owner)
    .bind(action.as_str())
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Tell every ISP (webhook or email, as for platforms) that an order
/// changed, with the zone serial that carries it.
async fn tell_isps(tx: &mut Tx, now: Timestamp, o: &Order, event: &str) -> Result<()> {
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
        audit::append(
            tx,
            now,
            actor,
            "order.publication_withheld",
            ("order", &o.id),
            json!({"state": o.state}),
            json!({"state": o.state, "reason": why}),
        )
        .await?;
        return Ok(None);
    }
    crate::due_process::record_publication(tx, now, o, &publication).await?;
    if let Publication::Allowed {
        until: Some(until), ..
    } = &publication
    {
        schedule_job(tx, "order_emergency_lapse", &o.id, *until).await?;
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
    tell_isps(tx, now, o, "order.in_force").await?;
    audit::append(
        tx,
        now,
        actor,
        "order.in_force",
        ("order", &o.id),
        json!({"state": "scheduled"}),
        json!({"state": next, "zone_changes": changes}),
    )
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

/// [`end`] for the due-process module.
pub(crate) async fn end_in(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    o: &mut Order,
    event: OrderEvent,
    reason: &str,
) -> Result<i64> {
    end(tx, now, actor, o, event, reason).await
}

/// End an order (expired, lapsed or lifted) inside `tx`.
async fn end(
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
    cancel_jobs(tx, &o.id).await?;
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
            "order.lifted"
        } else {
            "order.expired"
        },
    )
    .await?;
    let action = if next == OrderState::Lifted {
        "order.lifted"
    } else {
        "order.expired"
    };
    audit::append(
        tx,
        now,
        actor,
        action,
        ("order", &o.id),
        json!({"state": before}),
        json!({"state": next, "reason": reason, "zone_changes": changes}),
    )
    .await?;
    Ok(changes)
}

impl Store {
    /// Propose an order (a draft; nothing changes in DNS until it is approved
    /// and in force).
    pub async fn create_order(&self, by: &Principal, new: NewOrder) -> Result<Order> {
        let proposer = Proposer {
            party_id: by.party_id.to_string(),
            token_id: by.token_id.to_string(),
            label: by.label.clone(),
            actor: by.actor(),
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
        let (o, _) = load_order(&mut tx, id).await?;
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

    /// Approve an order. Four eyes: the approver is never the proposer.
    /// An order whose time has come goes in force at once; otherwise it is
    /// scheduled. Expiry and review are scheduled either way.
    pub async fn approve_order(&self, by: &Principal, id: &str) -> Result<Order> {
        let mut tx = self.write().await?;
        let (mut o, proposer) = load_order(&mut tx, id).await?;
        if proposer == by.token_id.to_string() || o.proposer_label == by.label {
            return Err(tapis_core::Error::Forbidden {
                role: by.role.as_str().to_owned(),
                action: "approve an order they proposed (four eyes: a second person must approve)"
                    .into(),
            }
            .into());
        }
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
                Col::Int("approved_at", now.unix_millis()),
            ],
        )
        .await?;
        o.state = next;
        audit::append(
            &mut tx,
            now,
            &by.actor(),
            "order.approved",
            ("order", id),
            json!({"state": "draft"}),
            json!({"state": next, "approver": by.label}),
        )
        .await?;
        schedule_job(&mut tx, "order_expire", id, o.expires_at).await?;
        schedule_job(&mut tx, "order_review", id, o.review_at).await?;
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
            schedule_job(&mut tx, "order_activate", id, o.effective_at).await?;
        }
        let (o, _) = load_order(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(o)
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
        let (o, _) = load_order(&mut tx, id).await?;
        tx.commit().await?;
        self.signal();
        Ok(o)
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
        sqlx::query("UPDATE jobs SET state = 'cancelled' WHERE kind = 'order_review' AND subject_id = $1 AND state = 'pending'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            now,
            &by.actor(),
            "order.reviewed",
            ("order", id),
            Value::Null,
            json!({"note": note}),
        )
        .await?;
        let (o, _) = load_order(&mut tx, id).await?;
        tx.commit().await?;
        Ok(o)
    }

    /// Fire due order jobs (activation, expiry, missed review). Like ladder
    /// timers, each job and its effects commit together.
    pub async fn fire_due_jobs(&self, limit: u32) -> Result<usize> {
        let mut tx = self.write().await?;
        let now = self.now();
        let rows = sqlx::query(&format!(
            "SELECT id, kind, subject_id FROM jobs WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT {}",
            limit.clamp(1, 5000)
        ))
        .bind(now.unix_millis())
        .fetch_all(&mut *tx)
        .await?;
        let actor = Actor::system("scheduler");
        let seen = rows.len();
        let mut changed = false;
        for row in rows {
            let job: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let subject: String = row.try_get("subject_id")?;
            let (mut o, _) = load_order(&mut tx, &subject).await?;
            let acted = match kind.as_str() {
                "order_activate"
                    if matches!(o.state, OrderState::Approved | OrderState::Scheduled) =>
                {
                    activate(&mut tx, &self.ctx.due_process, now, &actor, &mut o)
                        .await?
                        .is_some()
                }
                "order_emergency_lapse" if o.state == OrderState::InForce => {
                    // still published as an emergency (not authorised since)?
                    let basis: Option<String> =
                        sqlx::query("SELECT basis FROM order_publications WHERE order_id = $1")
                            .bind(&o.id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("basis"))
                            .transpose()?;
                    if basis.as_deref() == Some("emergency") {
                        let hours = self.ctx.due_process.emergency_max_secs / 3600;
                        end(
                            &mut tx,
                            now,
                            &actor,
                            &mut o,
                            OrderEvent::Expire,
                            &format!("lapsed: emergency order not authorised within {hours} h"),
                        )
                        .await?;
                        true
                    } else {
                        false
                    }
                }
                "order_review"
                    if !o.state.is_terminal()
                        && o.state != OrderState::Draft
                        && self.ctx.due_process.on_missed_review
                            == tapis_core::due_process::MissedReview::Escalate =>
                {
                    audit::append(
                        &mut tx,
                        now,
                        &actor,
                        "order.review_missed",
                        ("order", &o.id),
                        Value::Null,
                        json!({"review_at": o.review_at.to_string(), "escalated_to": "authoriser"}),
                    )
                    .await?;
                    crate::due_process::tell_authorisers(
                        &mut tx,
                        now,
                        "order.review_missed",
                        json!({"order_id": o.id, "review_at": o.review_at.to_string(), "state": o.state}),
                    )
                    .await?;
                    true
                }
                "order_expire" if !o.state.is_terminal() && o.state != OrderState::Draft => {
                    end(
                        &mut tx,
                        now,
                        &actor,
                        &mut o,
                        OrderEvent::Expire,
                        "expired at its end date",
                    )
                    .await?;
                    true
                }
                "order_review" if !o.state.is_terminal() && o.state != OrderState::Draft => {
                    end(
                        &mut tx,
                        now,
                        &actor,
                        &mut o,
                        OrderEvent::Expire,
                        "lapsed: its review date passed without a review",
                    )
                    .await?;
                    true
                }
                _ => false,
            };
            changed |= acted;
            sqlx::query(
                "UPDATE jobs SET state = $1, fired_at = $2 WHERE id = $3 AND state = 'pending'",
            )
            .bind(if acted { "fired" } else { "cancelled" })
            .bind(now.unix_millis())
            .bind(&job)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if changed {
            self.signal();
        }
        Ok(seen)
    }

    /// What an order would touch. Reads the order's targets and every
    /// other live order's targets once and matches them in memory (exact
    /// names, parents with subdomains, names under ours), so an imported
    /// national list costs a few queries, not one per name.
    pub async fn blast_radius(&self, id: &str) -> Result<BlastRadius> {
        use std::collections::{BTreeSet, HashMap, HashSet};
        let mut tx = self.pool.begin().await?;
        let (o, _) = load_order(&mut tx, id).await?;
        let ours = load_targets(&mut tx, id, u32::MAX).await?;
        let platforms =
            sqlx::query("SELECT id, name, domains FROM parties WHERE kind = 'platform'")
                .fetch_all(&mut *tx)
                .await?;
        let mut registered: Vec<(String, String, DomainName)> = Vec::new();
        for p in platforms {
            let domains: Vec<String> = serde_json::from_str(&p.try_get::<String, _>("domains")?)
                .map_err(Error::corrupt)?;
            for d in domains {
                if let Ok(d) = DomainName::parse(&d) {
                    registered.push((p.try_get("id")?, p.try_get("name")?, d));
                }
            }
        }
        // other live orders and their targets
        let rows = sqlx::query(
            "SELECT o.id, o.state, o.action, t.name, t.include_subdomains FROM order_targets t JOIN orders o ON o.id = t.order_id \
             WHERE o.id <> $1 AND o.state IN ('approved', 'scheduled', 'in_force')",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut orders: Vec<(String, OrderState, OrderAction)> = Vec::new();
        let mut order_idx: HashMap<String, usize> = HashMap::new();
        let mut others: HashMap<String, Vec<(usize, bool)>> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let oid: String = r.try_get("id")?;
            let idx = match order_idx.get(&oid) {
                Some(i) => *i,
                None => {
                    orders.push((
                        oid.clone(),
                        OrderState::parse(&r.try_get::<String, _>("state")?)
                            .map_err(Error::corrupt)?,
                        OrderAction::parse(&r.try_get::<String, _>("action")?)
                            .map_err(Error::corrupt)?,
                    ));
                    order_idx.insert(oid, orders.len() - 1);
                    orders.len() - 1
                }
            };
            others
                .entry(r.try_get("name")?)
                .or_default()
                .push((idx, r.try_get::<i64, _>("include_subdomains")? != 0));
        }
        // names of others that fall under one of our targets with subdomains
        let our_wild: HashSet<&str> = ours
            .iter()
            .filter(|t| t.include_subdomains)
            .map(|t| t.name.as_str())
            .collect();
        let mut under: HashMap<&str, Vec<(&str, usize, bool)>> = HashMap::new();
        if !our_wild.is_empty() {
            for (name, entries) in &others {
                let mut rest = name.as_str();
                while let Some((_, parent)) = rest.split_once('.') {
                    if our_wild.contains(parent) {
                        for (idx, inc) in entries {
                            under
                                .entry(parent)
                                .or_default()
                                .push((name.as_str(), *idx, *inc));
                        }
                    }
                    rest = parent;
                }
            }
        }
        let overlap = |name: &str, idx: usize, include: bool| {
            let (oid, state, action) = &orders[idx];
            Overlap {
                order_id: oid.clone(),
                state: *state,
                action: *action,
                name: name.to_owned(),
                include_subdomains: include,
            }
        };
        let mut targets = Vec::with_capacity(ours.len());
        let (mut platform_hits, mut overlap_orders, mut exceptions) = (0, BTreeSet::new(), 0);
        for t in ours {
            let name = DomainName::parse(&t.name).map_err(Error::corrupt)?;
            let platforms: Vec<PlatformHit> = registered
                .iter()
                .filter(|(_, _, d)| {
                    name.is_within(d) || (t.include_subdomains && d.is_within(&name))
                })
                .map(|(pid, pname, d)| PlatformHit {
                    party_id: pid.clone(),
                    name: pname.clone(),
                    domain: d.to_string(),
                })
                .collect();
            if !platforms.is_empty() {
                platform_hits += 1;
            }
            let mut overlaps = Vec::new();
            for (idx, inc) in others.get(name.as_str()).into_iter().flatten() {
                overlaps.push(overlap(name.as_str(), *idx, *inc));
            }
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                for (idx, inc) in others
                    .get(parent)
                    .into_iter()
                    .flatten()
                    .filter(|(_, inc)| *inc)
                {
                    overlaps.push(overlap(parent, *idx, *inc));
                }
                rest = parent;
            }
            for (child, idx, inc) in under.get(name.as_str()).into_iter().flatten() {
                overlaps.push(overlap(child, *idx, *inc));
            }
            for ov in &overlaps {
                overlap_orders.insert(ov.order_id.clone());
                if ov.action == OrderAction::Passthru {
                    exceptions += 1;
                }
            }
            overlaps.truncate(100);
            targets.push(TargetRadius {
                name: t.name,
                exact: true,
                wildcard: t.include_subdomains,
                platforms,
                overlaps,
            });
        }
        Ok(BlastRadius {
            order_id: o.id,
            action: o.action,
            targets,
            platform_domains_hit: platform_hits,
            overlapping_orders: overlap_orders.len(),
            exceptions_hit: exceptions,
        })
    }

    /// Is this name blocked now, by which order, since when, why.
    pub async fn lookup(&self, name: &DomainName) -> Result<Lookup> {
        let mut conn = self.pool.acquire().await?;
        let serial = current_serial(&mut conn).await?;
        for owner in candidate_owners(name.as_str()) {
            let row = sqlx::query("SELECT action, order_id FROM rpz_records WHERE owner = $1")
                .bind(&owner)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else { continue };
            let action =
                OrderAction::parse(&row.try_get::<String, _>("action")?).map_err(Error::corrupt)?;
            let order_id: String = row.try_get("order_id")?;
            let o = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
                .bind(&order_id)
                .fetch_one(&mut *conn)
                .await?;
            let o = order_from_row(&o)?;
            return Ok(Lookup {
                name: name.to_string(),
                blocked: action != OrderAction::Passthru,
                matched: Some(owner),
                action: Some(action),
                order: Some(LookupOrder {
                    id: o.id,
                    category: o.category,
                    legal_basis: o.legal_basis,
                    in_force_since: o.activated_at,
                    expires_at: o.expires_at,
                }),
                serial,
            });
        }
        Ok(Lookup {
            name: name.to_string(),
            blocked: false,
            matched: None,
            action: None,
            order: None,
            serial,
        })
    }

    /// The zone's current serial (0 before the first order).
    pub async fn rpz_serial(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        current_serial(&mut conn).await
    }

    /// Every record of the zone, by owner, and the serial they belong to
    /// (in memory: for exports of modest zones and tests; the primary
    /// streams [`Store::rpz_snapshot`]).
    pub async fn rpz_records(&self) -> Result<(i64, Vec<RpzRecord>)> {
        let (serial, mut rx) = self.rpz_snapshot(4096).await?;
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch?);
        }
        Ok((serial, all))
    }

    /// The zone's serial now, and every record of that version by owner,
    /// in batches of `batch` read as they are taken (one read transaction,
    /// so the rows match the serial). Dropping the receiver ends the read.
    pub async fn rpz_snapshot(
        &self,
        batch: usize,
    ) -> Result<(i64, tokio::sync::mpsc::Receiver<Result<Vec<RpzRecord>>>)> {
        let mut tx = self.pool.begin().await?;
        // one snapshot for the serial and the rows (SQLite's read
        // transaction is one already; PostgreSQL's default is not)
        if self.backend() == crate::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let serial = current_serial(&mut tx).await?;
        let batch = batch.clamp(1, 65_536);
        let (send, recv) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query(
                "SELECT r.owner, r.action, r.order_id, o.category FROM rpz_records r \
                 LEFT JOIN orders o ON o.id = r.order_id ORDER BY r.owner",
            )
            .fetch(&mut *tx);
            let mut buf = Vec::with_capacity(batch);
            loop {
                let next = match rows.try_next().await {
                    Ok(Some(r)) => record_from_row(&r),
                    Ok(None) => break,
                    Err(e) => Err(e.into()),
                };
                match next {
                    Ok(rec) => {
                        buf.push(rec);
                        if buf.len() == batch
                            && send
                                .send(Ok(std::mem::replace(&mut buf, Vec::with_capacity(batch))))
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = send.send(Err(e)).await;
                        return;
                    }
                }
            }
            if !buf.is_empty() {
                let _ = send.send(Ok(buf)).await;
            }
        });
        Ok((serial, recv))
    }

    /// Journal entries after `serial` (exclusive) up to the current one:
    /// `(serial, op, record)`, or `None` if the journal does not reach back
    /// that far (then a full transfer is needed).
    pub async fn rpz_journal_since(
        &self,
        serial: i64,
    ) -> Result<Option<Vec<(i64, String, RpzRecord)>>> {
        let rows = sqlx::query(
            "SELECT j.serial, j.op, j.owner, j.action, j.order_id, o.category FROM rpz_journal j \
             LEFT JOIN orders o ON o.id = j.order_id WHERE j.serial > $1 ORDER BY j.serial, j.seq",
        )
        .bind(serial)
        .fetch_all(&self.pool)
        .await?;
        let first: Option<i64> = sqlx::query("SELECT MIN(serial) AS s FROM rpz_serials")
            .fetch_one(&self.pool)
            .await?
            .try_get("s")?;
        if serial > 0 && first.is_some_and(|f| f > serial + 1) {
            return Ok(None);
        }
        rows.iter()
            .map(|r| Ok((r.try_get("serial")?, r.try_get("op")?, record_from_row(r)?)))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// Who proposes an order: a token holder, or an operator at the command line.
#[derive(Debug, Clone)]
pub struct Proposer {
    pub party_id: String,
    /// The token id, or a marker such as `cli:import` for local commands.
    pub token_id: String,
    pub label: String,
    pub actor: Actor,
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
         emergency, needs_authorisation) \
         VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18)",
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
    audit::append(
        tx,
        now,
        &by.actor,
        "order.proposed",
        ("order", &id),
        Value::Null,
        event,
    )
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
            "order.authorisation_needed",
            json!({"order_id": o.id, "reasons": reasons, "effective_at": o.effective_at.to_string(),
                   "emergency": o.emergency, "order": format!("/api/v1/orders/{}", o.id)}),
        )
        .await?;
    }
    let (o, _) = load_order(tx, &id).await?;
    Ok(o)
}

/// The zone's current serial (0 before the first order in force).
pub(crate) async fn current_serial(conn: &mut sqlx::AnyConnection) -> Result<i64> {
    let s: Option<i64> = sqlx::query("SELECT MAX(serial) AS s FROM rpz_serials")
        .fetch_one(&mut *conn)
        .await?
        .try_get("s")?;
    Ok(s.unwrap_or(0))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use std::sync::Arc;

    use sqlx::Row;
    use tapis_core::order::{OrderAction, effective_action};

    use super::rank_sql;
    use crate::testing::{TestDb, backends};

    /// The zone's SQL ranks actions exactly as core does: evaluated by
    /// each database, every action gets core's rank, and sorting by the
    /// SQL rank puts core's effective action first. Fails if anyone
    /// writes precedence a second time.
    #[tokio::test]
    async fn sql_rank_is_cores_rank() {
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = db.open(Arc::new(tapis_core::SystemClock)).await;
            for a in OrderAction::ALL {
                let row = sqlx::query(&format!("SELECT {} AS r", rank_sql("CAST($1 AS TEXT)")))
                    .bind(a.as_str())
                    .fetch_one(&store.pool)
                    .await
                    .expect("rank");
                let r: i64 = row.try_get("r").expect("r");
                assert_eq!(r, i64::from(a.rank()), "{backend:?} {}", a.as_str());
            }
            // and the action the zone keeps for an owner is the one with
            // the smallest SQL rank
            let mut sql = String::from("SELECT a FROM (");
            for (i, a) in OrderAction::ALL.iter().enumerate() {
                if i > 0 {
                    sql.push_str(" UNION ALL ");
                }
                sql.push_str(&format!("SELECT '{}' AS a", a.as_str()));
            }
            sql.push_str(&format!(") t ORDER BY {} LIMIT 1", rank_sql("t.a")));
            let first: String = sqlx::query(&sql)
                .fetch_one(&store.pool)
                .await
                .expect("order")
                .try_get("a")
                .expect("a");
            assert_eq!(
                Some(first.as_str()),
                effective_action(OrderAction::ALL).map(OrderAction::as_str)
            );
            store.close().await;
            db.cleanup().await;
        }
    }
}
