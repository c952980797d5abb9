//! Read models over orders: an order's blast radius (what it would touch,
//! shown before approval) and the public lookup (is this name blocked, by
//! which order, why).

use super::*;

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
    /// Not blocked because an order over it was lifted after an appeal.
    pub lifted_after_appeal: Option<crate::LiftedAfterAppeal>,
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

impl Store {
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
                lifted_after_appeal: None,
            });
        }
        drop(conn);
        Ok(Lookup {
            name: name.to_string(),
            blocked: false,
            matched: None,
            action: None,
            order: None,
            serial,
            lifted_after_appeal: self.lifted_after_appeal(name.as_str()).await?,
        })
    }
}
