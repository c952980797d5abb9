//! Read-only order queries the web pages need beyond the API's: a sorted,
//! paged list, the orders told to one platform, the orders waiting for an
//! authoriser's decision, and who proposed an order (so a page need not
//! offer the approve button to its proposer; the store's `approve_order`
//! still decides). Nothing here changes state.

use super::*;

/// Columns an order list may be sorted by (the web's names → SQL).
pub const ORDER_SORTS: [(&str, &str); 6] = [
    ("created", "id"),
    ("state", "state"),
    ("effective", "effective_at"),
    ("expires", "expires_at"),
    ("names", "target_count"),
    ("category", "category"),
];

/// One page of a sorted order list.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// Only orders in these states (none: all).
    pub states: Vec<OrderState>,
    /// A key of [`ORDER_SORTS`]; anything else sorts by `created`.
    pub sort: String,
    pub ascending: bool,
    pub offset: u32,
    /// 1 to 500.
    pub limit: u32,
}

/// Who proposed an order: the proposer's token and person (when a person
/// proposed it).
#[derive(Debug, Clone)]
pub struct OrderProposer {
    pub token_id: String,
    pub person: Option<tapis_core::person::Person>,
}

impl Store {
    /// Orders by [`OrderQuery`]: sorted, filtered by state, paged (ties
    /// broken by id, so pages never overlap).
    pub async fn query_orders(&self, q: &OrderQuery) -> Result<Vec<Order>> {
        let col = ORDER_SORTS
            .iter()
            .find(|(k, _)| *k == q.sort)
            .map(|(_, c)| *c)
            .unwrap_or("id");
        let dir = if q.ascending { "ASC" } else { "DESC" };
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders");
        if !q.states.is_empty() {
            let marks: Vec<String> = (1..=q.states.len()).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(" WHERE state IN ({})", marks.join(", ")));
        }
        sql.push_str(&format!(
            " ORDER BY {col} {dir}, id {dir} LIMIT {} OFFSET {}",
            q.limit.clamp(1, 500),
            q.offset
        ));
        let mut query = sqlx::query(&sql);
        for s in &q.states {
            query = query.bind(s.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(order_from_row).collect()
    }

    /// The orders a platform was told of (their blast radius touches its
    /// names), newest first: what `order_affects` lets it read.
    pub async fn orders_affecting(
        &self,
        party: tapis_core::PartyId,
        limit: u32,
    ) -> Result<Vec<Order>> {
        self.orders_of_party(
            "id IN (SELECT order_id FROM order_platforms WHERE party_id = $1) ORDER BY id DESC",
            party,
            limit,
        )
        .await
    }

    /// Orders still running (not expired or lifted) that need an
    /// independent authorisation and that authoriser party `party` has not
    /// yet decided, oldest first.
    pub async fn orders_awaiting_authorisation(
        &self,
        party: tapis_core::PartyId,
        limit: u32,
    ) -> Result<Vec<Order>> {
        self.orders_of_party(
            "state NOT IN ('expired', 'lifted') AND needs_authorisation <> '[]' \
             AND NOT EXISTS (SELECT 1 FROM order_authorisations a WHERE a.order_id = orders.id AND a.party_id = $1) \
             ORDER BY id",
            party,
            limit,
        )
        .await
    }

    /// Orders where `condition` (which may name the party as `$1`, and
    /// ends with its ORDER BY) holds, at most `limit`.
    async fn orders_of_party(
        &self,
        condition: &str,
        party: tapis_core::PartyId,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} LIMIT {}",
            limit.clamp(1, 500)
        );
        let rows = sqlx::query(&sql)
            .bind(party.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Who proposed order `id`.
    pub async fn order_proposer(&self, id: &str) -> Result<OrderProposer> {
        let row =
            sqlx::query("SELECT proposer_token_id, proposer_person FROM orders WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(Error::NotFound("order"))?;
        Ok(OrderProposer {
            token_id: row.try_get("proposer_token_id")?,
            person: row
                .try_get::<Option<String>, _>("proposer_person")?
                .map(|p| tapis_core::person::Person::from_stored(&p))
                .transpose()
                .map_err(Error::corrupt)?,
        })
    }
}
