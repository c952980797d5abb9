//! The RPZ compiler: `rpz_records` is the zone as it stands, one row per
//! owner name (`name` or `*.name`) with the action the in-force, published
//! orders give it (core's `effective_action` and `OrderAction::rank`
//! settle overlaps; the SQL rank is generated from the latter). Every
//! change is journalled under a new serial in the transaction of the order
//! change that caused it, so the zone, its serial and its diffs (for IXFR)
//! never disagree. Also the zone's readers: serial, snapshot, journal.

use super::*;

pub(crate) fn record_from_row(r: &AnyRow) -> Result<RpzRecord> {
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

/// Recompute the zone for these owners, one by one, from the in-force
/// orders; journal what changed under `serial`. Returns the journal entries
/// written. (Bulk activation and deactivation are set-based; this handles
/// the owners several orders share.)
pub(crate) async fn recompute(tx: &mut Tx, serial: i64, owners: &[String]) -> Result<i64> {
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
pub(crate) fn rank_sql(col: &str) -> String {
    let mut sql = format!("CASE {col}");
    for a in OrderAction::ALL {
        sql.push_str(&format!(" WHEN '{}' THEN {}", a.as_str(), a.rank()));
    }
    sql.push_str(" END");
    sql
}

/// Room kept for the zone's own name, in wire octets (`rpz.tapis.` is 11):
/// the compiler does not know the zone's name, so it keeps every owner
/// short enough for any zone name up to this long. The primary refuses to
/// start with a longer one.
pub const ZONE_NAME_BUDGET: usize = 64;

/// The longest target name the compiler puts in the zone (181 octets):
/// `*.<name>._tapis.<zone>`, the longest name a target makes (its
/// explanation under a wildcard), must fit in 255 wire octets with a zone
/// name of [`ZONE_NAME_BUDGET`]. Core accepts names up to 253 octets;
/// longer ones than this are left out of the zone rather than break it.
pub const MAX_ZONE_TARGET_LEN: usize = 255 - ZONE_NAME_BUDGET - "*.".len() - "._tapis".len() - 1;

/// Whether a target name may become a zone owner: core's
/// [`check_blockable`](tapis_core::order::check_blockable) (no label
/// beginning `rpz-`, none equal to `_tapis`) and [`MAX_ZONE_TARGET_LEN`],
/// as the SQL the compiler runs (`col` is the column holding the name).
/// The API already refuses such targets; this keeps a row that reached
/// the database some other way out of the zone, where it would be a
/// trigger on client or answer addresses, or break the zone for
/// secondaries. [`compilable`] is the same rule in Rust; a test holds them
/// equal on both backends.
pub(crate) fn blockable_sql(col: &str) -> String {
    let l = format!("LOWER({col})");
    format!(
        "(LENGTH({col}) <= {MAX_ZONE_TARGET_LEN} AND {l} NOT LIKE 'rpz-%' AND {l} NOT LIKE '%.rpz-%' \
         AND {l} <> '_tapis' AND {l} NOT LIKE '\\_tapis.%' ESCAPE '\\' \
         AND {l} NOT LIKE '%.\\_tapis' ESCAPE '\\' AND {l} NOT LIKE '%.\\_tapis.%' ESCAPE '\\')"
    )
}

/// [`blockable_sql`] in Rust: whether `name` (as the store keeps target
/// names) may become a zone owner.
pub fn compilable(name: &str) -> bool {
    name.len() <= MAX_ZONE_TARGET_LEN
        && tapis_core::target::DomainName::parse(name)
            .is_ok_and(|d| tapis_core::order::check_blockable(&d).is_ok())
}

/// The owner names of order `$1`: every target, and `*.target` for those
/// with subdomains — only targets [`blockable_sql`] lets through.
pub(crate) fn owners_sql() -> String {
    let ok = blockable_sql("name");
    format!(
        "(SELECT name AS owner FROM order_targets WHERE order_id = $1 AND {ok} \
         UNION ALL SELECT '*.' || name AS owner FROM order_targets WHERE order_id = $1 AND include_subdomains = 1 AND {ok})"
    )
}

/// Whether an in-force order still covers `rpz_records.owner`.
pub(crate) const COVERED: &str = "EXISTS (SELECT 1 FROM order_targets t JOIN orders o ON o.id = t.order_id \
    WHERE o.state = 'in_force' AND o.id IN (SELECT order_id FROM order_publications) AND t.name = CASE WHEN rpz_records.owner LIKE '*.%' THEN substr(rpz_records.owner, 3) ELSE rpz_records.owner END \
    AND (rpz_records.owner NOT LIKE '*.%' OR t.include_subdomains = 1))";

pub(crate) async fn next_serial(tx: &mut Tx) -> Result<(Option<i64>, i64)> {
    let current = current_serial(tx).await?;
    Ok(((current > 0).then_some(current), current + 1))
}

pub(crate) async fn seq_base(tx: &mut Tx, serial: i64) -> Result<i64> {
    let s: Option<i64> = sqlx::query("SELECT MAX(seq) AS s FROM rpz_journal WHERE serial = $1")
        .bind(serial)
        .fetch_one(&mut **tx)
        .await?
        .try_get("s")?;
    Ok(s.unwrap_or(0))
}

/// Record the serial if anything changed.
pub(crate) async fn finish_serial(
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
            EventType::RpzSerial,
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
pub(crate) async fn activate_zone(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    o: &Order,
) -> Result<i64> {
    let (last, serial) = next_serial(tx).await?;
    let left_out: Vec<String> = sqlx::query(&format!(
        "SELECT name FROM order_targets WHERE order_id = $1 AND NOT {} ORDER BY name LIMIT 20",
        blockable_sql("name")
    ))
    .bind(&o.id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.try_get("name"))
    .collect::<std::result::Result<_, _>>()?;
    if !left_out.is_empty() {
        tracing::warn!(
            order = %o.id,
            names = ?left_out,
            "targets left out of the zone: not names an RPZ may carry (rpz- trigger labels, _tapis, or too long)"
        );
    }
    let owners = owners_sql();
    let rank = i64::from(o.action.rank());
    let r_rank = rank_sql("r.action");
    let base = seq_base(tx, serial).await?;
    let dels = sqlx::query(&format!(
        "INSERT INTO rpz_journal (serial, seq, op, owner, action, order_id) SELECT $2, $3 + ROW_NUMBER() OVER (ORDER BY r.owner), 'del', r.owner, r.action, r.order_id \
         FROM rpz_records r JOIN {owners} ow ON ow.owner = r.owner WHERE {r_rank} > $4"
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
         FROM rpz_records r JOIN {owners} ow ON ow.owner = r.owner WHERE {r_rank} > $4"
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
        "UPDATE rpz_records SET action = $2, order_id = $1 WHERE owner IN (SELECT owner FROM {owners} ow) AND {} > $3",
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
         FROM {owners} ow WHERE NOT EXISTS (SELECT 1 FROM rpz_records r WHERE r.owner = ow.owner)"
    ))
    .bind(&o.id)
    .bind(serial)
    .bind(base)
    .bind(o.action.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(&format!(
        "INSERT INTO rpz_records (owner, action, order_id) SELECT ow.owner, $2, $1 FROM {owners} ow \
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
pub(crate) async fn deactivate_zone(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    o: &Order,
) -> Result<i64> {
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

pub(crate) async fn journal(
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
    pub(crate) async fn sql_rank_is_cores_rank() {
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

    /// The SQL the compiler filters targets with says what core's rule
    /// (and the length bound) says, on each database.
    #[tokio::test]
    pub(crate) async fn sql_blockable_is_cores_rule() {
        let long = |n: usize| format!("{}.example", "a".repeat(n - ".example".len()));
        let names = [
            "ok.example".to_owned(),
            "fine-rpz.example".into(),
            "rpzx.example".into(),
            "xrpz-a.example".into(),
            "tapis.example".into(),
            "_tapis_.example".into(),
            "x_tapis.example".into(),
            "_dmarc.example".into(),
            "32.1.0.0.127.rpz-client-ip".into(),
            "1.0.0.0.0.rpz-ip".into(),
            "com.rpz-nsdname".into(),
            "ns.rpz-nsip".into(),
            "rpz-drop.example".into(),
            "a.RPZ-IP.example".into(),
            "victim.example._tapis".into(),
            "_tapis.example".into(),
            "a._tapis.example".into(),
            "a._TAPIS.example".into(),
            long(63).replace("aaaa", "a.aa"),
            long(super::MAX_ZONE_TARGET_LEN).replace("aaaa", "a.aa"),
            long(super::MAX_ZONE_TARGET_LEN + 1).replace("aaaa", "a.aa"),
        ];
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = db.open(Arc::new(tapis_core::SystemClock)).await;
            for name in &names {
                let row = sqlx::query(&format!(
                    "SELECT CASE WHEN {} THEN 1 ELSE 0 END AS ok",
                    super::blockable_sql("CAST($1 AS TEXT)")
                ))
                .bind(name)
                .fetch_one(&store.pool)
                .await
                .expect("predicate");
                let ok: i64 = row.try_get("ok").expect("ok");
                assert_eq!(ok == 1, super::compilable(name), "{backend:?} {name}");
            }
            store.close().await;
            db.cleanup().await;
        }
    }

    /// A serial's digest is kept and logged once per settings; the same
    /// digest again is a no-op, a different one a conflict, a malformed
    /// one refused; the listing carries the event and its leaf, and the
    /// chain still verifies. On both backends.
    #[tokio::test]
    pub(crate) async fn digests_are_kept_once_and_logged() {
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = db.open(Arc::new(tapis_core::SystemClock)).await;
            let a = "ab".repeat(48);
            let b = "cd".repeat(48);
            let params = "0123456789abcdef0123456789abcdef";
            assert_eq!(
                store
                    .record_rpz_digest(3, params, 1, 1, &a)
                    .await
                    .expect("kept"),
                a
            );
            assert_eq!(
                store
                    .record_rpz_digest(3, params, 1, 1, &a)
                    .await
                    .expect("again"),
                a
            );
            let e = store
                .record_rpz_digest(3, params, 1, 1, &b)
                .await
                .expect_err("second digest");
            assert!(matches!(e, crate::Error::Conflict(_)), "{backend:?} {e}");
            for (d, p) in [
                ("AB".repeat(48), params),
                ("ab".repeat(47), params),
                (a.clone(), "x"),
            ] {
                let e = store
                    .record_rpz_digest(4, p, 1, 1, &d)
                    .await
                    .expect_err("malformed");
                assert!(matches!(e, crate::Error::Domain(_)), "{backend:?} {e}");
            }
            // other settings: another digest for the same serial
            let other = "fedcba9876543210fedcba9876543210";
            store
                .record_rpz_digest(3, other, 1, 1, &b)
                .await
                .expect("other settings");
            store
                .record_rpz_digest(5, params, 1, 1, &b)
                .await
                .expect("serial 5");
            assert_eq!(
                store.rpz_digest(3, params).await.expect("read"),
                Some(a.clone())
            );
            assert_eq!(store.rpz_digest(4, params).await.expect("read"), None);
            let all = store.rpz_digests_since(0, 100).await.expect("list");
            let got: Vec<(i64, &str)> = all.iter().map(|d| (d.serial, d.digest.as_str())).collect();
            assert_eq!(
                got,
                [(3, a.as_str()), (3, b.as_str()), (5, b.as_str())],
                "{backend:?}"
            );
            for d in &all {
                assert_eq!(d.event.action, "rpz.digest");
                assert_eq!(d.event.after["digest"], d.digest.as_str());
                assert_eq!(d.leaf.seq, d.event.seq);
                assert_eq!(d.leaf.salt.len(), 64);
            }
            assert_eq!(
                store.rpz_digests_since(3, 100).await.expect("since").len(),
                1
            );
            assert_eq!(store.rpz_digests_since(0, 1).await.expect("limit").len(), 1);
            assert!(
                store.verify_audit().await.expect("verify").ok(),
                "{backend:?}"
            );
            store.close().await;
            db.cleanup().await;
        }
    }

    /// An order whose targets reached the database without the API's
    /// check (`32.1.0.0.127.rpz-client-ip` would answer NXDOMAIN to every
    /// query from 127.0.0.1) puts only its real names in the zone.
    #[tokio::test]
    pub(crate) async fn triggers_in_the_database_never_reach_the_zone() {
        use tapis_core::Timestamp;
        use tapis_core::audit::Actor;
        for backend in backends() {
            let db = TestDb::new(backend).await;
            let store = db.open(Arc::new(tapis_core::SystemClock)).await;
            let boot = store
                .bootstrap("Ministry", None)
                .await
                .expect("bootstrap")
                .expect("first");
            let now = Timestamp::parse("t", "2026-12-01T00:00:00Z").expect("time");
            let mut tx = store.write().await.expect("tx");
            sqlx::query(
                "INSERT INTO orders (id, state, action, category, legal_basis_reference, legal_basis_text, \
                 effective_at, expires_at, review_at, notices, target_count, proposer_party_id, proposer_token_id, \
                 proposer_label, created_at, updated_at) VALUES ('ord-x', 'in_force', 'nxdomain', 'gambling', 'r', 't', \
                 0, 9999999999999, 9999999999999, '[]', 5, $1, 'tok', 'x', 0, 0)",
            )
            .bind(boot.authority.id.to_string())
            .execute(&mut *tx)
            .await
            .expect("order");
            for name in [
                "ok.example",
                "32.1.0.0.127.rpz-client-ip",
                "1.0.0.0.0.rpz-ip",
                "com.rpz-nsdname",
                "victim.example._tapis",
            ] {
                sqlx::query("INSERT INTO order_targets (order_id, name, include_subdomains) VALUES ('ord-x', $1, 1)")
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .expect("target");
            }
            let o = crate::orders::load_order_in(&mut tx, "ord-x")
                .await
                .expect("load");
            let changes = super::activate_zone(&mut tx, now, &Actor::system("test"), &o)
                .await
                .expect("activate");
            tx.commit().await.expect("commit");
            assert_eq!(changes, 2, "{backend:?}");
            let (_, records) = store.rpz_records().await.expect("zone");
            let owners: Vec<&str> = records.iter().map(|r| r.owner.as_str()).collect();
            assert_eq!(owners, ["*.ok.example", "ok.example"], "{backend:?}");
            let journal = store
                .rpz_journal_since(0)
                .await
                .expect("journal")
                .expect("whole");
            assert!(
                journal
                    .iter()
                    .all(|(_, _, r)| r.owner.ends_with("ok.example")),
                "{backend:?} {journal:?}"
            );
            store.close().await;
            db.cleanup().await;
        }
    }
}

impl Store {
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
