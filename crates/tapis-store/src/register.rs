//! The public register's reads: orders (once approved) and notices (once
//! submitted) as core's `register` draws them under a redaction policy,
//! searched and paged by a cursor; a closed UTC day's dump; the platforms'
//! decisions as DSA statements of reasons; and the one write, logging the
//! effective redaction policy when it changes.
//!
//! Structural filters (category, state, platform, dates) run in SQL; the
//! text and legal-basis filters run on the *redacted* entries, so a query
//! can never confirm a withheld value. A request scans at most
//! [`SCAN_LIMIT`] records and answers with a cursor to go on from.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;
use tapis_core::register::{
    AuthorisationFacts, Day, DumpEntry, ItemFacts, NoticeFacts, OrderFacts, RedactionPolicy,
    RegisterNotice, RegisterOrder, notice_entry, order_entry,
};
use tapis_core::{EventType, Timestamp, dsa};

use crate::{Error, Result, Store};

/// Records one request looks at, at most.
pub const SCAN_LIMIT: usize = 2000;
/// Names (or items) an entry in a list carries; its page carries up to
/// [`DETAIL_NAMES`].
pub const LIST_NAMES: usize = 10;
pub const DETAIL_NAMES: usize = 10_000;
/// Days one DSA export may span, and the statements it may hold.
pub const DSA_MAX_DAYS: i64 = 31;
pub const DSA_MAX_STATEMENTS: usize = 10_000;
/// The subject the policy's events are about.
const POLICY_SUBJECT: (&str, &str) = ("setting", "register.policy");

/// A search of the register.
#[derive(Debug, Clone, Default)]
pub struct RegisterQuery {
    /// Free text, matched in what the entry shows (case-insensitive).
    pub text: Option<String>,
    pub category: Option<String>,
    /// Part of the legal basis's reference or text, as shown.
    pub legal_basis: Option<String>,
    pub state: Option<String>,
    /// Decided (orders: approved; notices: submitted) at or after.
    pub from: Option<Timestamp>,
    /// … and before.
    pub to: Option<Timestamp>,
    /// A platform's party id: orders affecting it, notices sent to it.
    pub platform: Option<String>,
    /// Where the previous page stopped ([`RegisterPage::next`]).
    pub cursor: Option<Cursor>,
    /// 1 to 100.
    pub limit: u32,
}

/// A search as it arrives (query strings, form fields): every field text.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RawSearch {
    pub q: Option<String>,
    pub category: Option<String>,
    pub legal_basis: Option<String>,
    pub state: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub platform: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

/// Which list a search is for (their states differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Orders,
    Notices,
}

/// `YYYY-MM-DD` (the day's start, UTC) or an RFC 3339 instant.
pub fn instant(field: &str, s: &str) -> tapis_core::Result<Timestamp> {
    if s.len() == 10 {
        Day::parse(field, s).map(Day::start)
    } else {
        Timestamp::parse(field, s)
    }
}

impl RegisterQuery {
    /// Check and bound a search: each field's length, the category against
    /// the taxonomy, the state against the kind's states (never a draft),
    /// dates, the platform id's characters, the cursor, a limit of 1 to
    /// 100 (default 20). Empty fields are absent.
    pub fn parse(
        taxonomy: &tapis_core::taxonomy::Taxonomy,
        p: &RawSearch,
        kind: Kind,
    ) -> tapis_core::Result<RegisterQuery> {
        use tapis_core::Error as E;
        let text =
            |f: &str, v: &Option<String>, max: usize| -> tapis_core::Result<Option<String>> {
                match v.as_deref().map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(s) if s.chars().count() > max => {
                        Err(E::invalid(f, format!("at most {max} characters")))
                    }
                    Some(s) => Ok(Some(s.to_owned())),
                }
            };
        let category = text("category", &p.category, 64)?;
        if let Some(c) = &category {
            taxonomy.category(c)?;
        }
        let state = text("state", &p.state, 32)?;
        if let Some(s) = &state {
            let draft = match kind {
                Kind::Orders => {
                    tapis_core::order::OrderState::parse(s)? == tapis_core::order::OrderState::Draft
                }
                Kind::Notices => {
                    tapis_core::notice::NoticeState::parse(s)?
                        == tapis_core::notice::NoticeState::Draft
                }
            };
            if draft {
                return Err(E::invalid("state", "drafts are not in the register"));
            }
        }
        let from = text("from", &p.from, 64)?
            .map(|s| instant("from", &s))
            .transpose()?;
        let to = text("to", &p.to, 64)?
            .map(|s| instant("to", &s))
            .transpose()?;
        let platform = text("platform", &p.platform, 64)?;
        if let Some(pl) = &platform
            && !pl.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(E::invalid("platform", "a party id"));
        }
        let cursor = text("cursor", &p.cursor, 100)?
            .map(|c| Cursor::parse(&c))
            .transpose()?;
        let limit = match text("limit", &p.limit, 3)? {
            None => 20,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| E::invalid("limit", "from 1 to 100"))?,
        };
        Ok(RegisterQuery {
            text: text("q", &p.q, 200)?,
            category,
            legal_basis: text("legal_basis", &p.legal_basis, 200)?,
            state,
            from,
            to,
            platform,
            cursor,
            limit,
        })
    }
}

/// A position in the register's order: newest decision first, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    /// `MILLIS.ID`, as [`Cursor::to_string`] writes it.
    pub fn parse(s: &str) -> tapis_core::Result<Cursor> {
        let bad =
            || tapis_core::Error::invalid("cursor", "use the `next` value of the previous page");
        let (at, id) = s.split_once('.').ok_or_else(bad)?;
        let at: i64 = at.parse().map_err(|_| bad())?;
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad());
        }
        Ok(Cursor {
            at,
            id: id.to_owned(),
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.at, self.id)
    }
}

/// One page of the register.
#[derive(Debug, Clone)]
pub struct RegisterPage<T> {
    pub entries: Vec<T>,
    /// Where to go on from, if anything may follow.
    pub next: Option<Cursor>,
}

/// A closed day's dump: its bytes and their SHA-256.
#[derive(Debug, Clone)]
pub struct Dump {
    pub day: Day,
    pub body: String,
    pub sha256: String,
    pub records: usize,
}

/// Platforms' decisions as statements of reasons.
#[derive(Debug, Clone)]
pub struct DsaExport {
    pub statements: Vec<dsa::Statement>,
    /// Decisions not exported, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// More decisions than [`DSA_MAX_STATEMENTS`] in the range.
    pub truncated: bool,
}

/// Rows read per query while walking the register.
const WALK_PAGE: i64 = 200;

/// A row's place in the walk: its listing time column and id.
fn row_cursor(r: &AnyRow, at: &str) -> Result<Cursor> {
    Ok(Cursor {
        at: r.try_get(at)?,
        id: r.try_get("id")?,
    })
}

/// The register's walk, shared by orders and notices: rows newest first
/// from the query's cursor, [`WALK_PAGE`] at a time; `entry` makes a row
/// into an entry, or `None` when the policy still withholds it or the
/// query does not want it. Stops at the query's limit or after
/// `SCAN_LIMIT` rows (the page then ends early and `next` resumes).
async fn walk<E, Rows, RowsFut, Entry, EntryFut>(
    q: &RegisterQuery,
    mut rows: Rows,
    mut entry: Entry,
) -> Result<RegisterPage<E>>
where
    Rows: FnMut(Option<Cursor>) -> RowsFut,
    RowsFut: std::future::Future<Output = Result<Vec<AnyRow>>>,
    Entry: FnMut(AnyRow) -> EntryFut,
    EntryFut: std::future::Future<Output = Result<(Cursor, Option<E>)>>,
{
    let limit = q.limit.clamp(1, 100) as usize;
    let mut cursor = q.cursor.clone();
    let mut entries = Vec::new();
    let mut scanned = 0;
    loop {
        let page = rows(cursor.clone()).await?;
        let exhausted = page.len() < WALK_PAGE as usize;
        for r in page {
            scanned += 1;
            let (at, e) = entry(r).await?;
            cursor = Some(at);
            if let Some(e) = e {
                entries.push(e);
                if entries.len() == limit {
                    return Ok(RegisterPage {
                        entries,
                        next: cursor,
                    });
                }
            }
            if scanned >= SCAN_LIMIT {
                return Ok(RegisterPage {
                    entries,
                    next: cursor,
                });
            }
        }
        if exhausted {
            return Ok(RegisterPage {
                entries,
                next: None,
            });
        }
    }
}

fn ts(r: &AnyRow, c: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_millis(r.try_get(c)?))
}

fn opt_ts(r: &AnyRow, c: &str) -> Result<Option<Timestamp>> {
    Ok(r.try_get::<Option<i64>, _>(c)?
        .map(Timestamp::from_unix_millis))
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

const ORDER_COLS: &str = "o.id, o.state, o.action, o.category, o.legal_basis_reference, \
    o.legal_basis_text, o.explanation, o.proposer_person, o.approver_person, o.approved_at, \
    o.effective_at, o.expires_at, o.activated_at, o.ended_at, o.end_reason, o.emergency, \
    o.target_count, p.name AS authority";

const NOTICE_COLS: &str = "n.id, n.state, n.category, n.legal_basis_reference, n.legal_basis_text, \
    n.explanation, n.territorial_scope, n.issuer_label, n.platform_id, n.trusted_flagger, \
    n.submitted_at, n.closed_at, a.name AS authority, pl.name AS platform_name";

impl Store {
    /// Log `policy` if it is not the last one logged: an audit event with
    /// its canonical hash and its text. Returns whether it logged one.
    pub async fn log_register_policy(&self, policy: &RedactionPolicy) -> Result<bool> {
        let last = self
            .events_for(POLICY_SUBJECT.0, POLICY_SUBJECT.1)
            .await?
            .pop();
        let last_hash = last.as_ref().and_then(|e| {
            e.after
                .get("sha256")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if last_hash.as_deref() == Some(policy.sha256()) {
            return Ok(false);
        }
        let mut tx = self.write().await?;
        crate::audit::append(
            &mut tx,
            self.now(),
            &tapis_core::audit::Actor::system("operator"),
            EventType::RegisterPolicyLogged,
            POLICY_SUBJECT,
            last_hash.map_or(Value::Null, |h| json!({ "sha256": h })),
            json!({"sha256": policy.sha256(), "policy": policy.to_json()}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Approved orders as the register shows them, newest first.
    pub async fn register_orders(
        &self,
        policy: &RedactionPolicy,
        q: &RegisterQuery,
    ) -> Result<RegisterPage<RegisterOrder>> {
        let now = self.now();
        walk(
            q,
            |cursor| async move { self.order_rows(q, cursor.as_ref(), WALK_PAGE).await },
            |r| async move {
                let cursor = row_cursor(&r, "approved_at")?;
                let mut facts = order_facts(&r)?;
                if policy.listed_at(&facts.category, facts.approved_at) > now {
                    return Ok((cursor, None));
                }
                self.order_details(&mut facts, LIST_NAMES).await?;
                let e = order_entry(policy, facts);
                Ok((cursor, order_wanted(&e, q).then_some(e)))
            },
        )
        .await
    }

    /// One order as the register shows it: not found unless it is listed.
    pub async fn register_order(
        &self,
        policy: &RedactionPolicy,
        id: &str,
    ) -> Result<RegisterOrder> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLS} FROM orders o JOIN parties p ON p.id = o.proposer_party_id \
             WHERE o.id = $1 AND o.approved_at IS NOT NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("order"))?;
        let mut facts = order_facts(&row)?;
        if policy.listed_at(&facts.category, facts.approved_at) > self.now() {
            return Err(Error::NotFound("order"));
        }
        self.order_details(&mut facts, DETAIL_NAMES).await?;
        Ok(order_entry(policy, facts))
    }

    /// Submitted notices as the register shows them, newest first.
    pub async fn register_notices(
        &self,
        policy: &RedactionPolicy,
        q: &RegisterQuery,
    ) -> Result<RegisterPage<RegisterNotice>> {
        let now = self.now();
        walk(
            q,
            |cursor| async move { self.notice_rows(q, cursor.as_ref(), WALK_PAGE).await },
            |r| async move {
                let cursor = row_cursor(&r, "submitted_at")?;
                let mut facts = notice_facts(&r)?;
                if policy.listed_at(&facts.category, facts.submitted_at) > now {
                    return Ok((cursor, None));
                }
                self.notice_items(&mut facts, LIST_NAMES).await?;
                let e = notice_entry(policy, facts);
                Ok((cursor, notice_wanted(&e, q).then_some(e)))
            },
        )
        .await
    }

    /// One notice as the register shows it: not found unless listed.
    pub async fn register_notice(
        &self,
        policy: &RedactionPolicy,
        id: &str,
    ) -> Result<RegisterNotice> {
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLS} FROM notices n JOIN parties a ON a.id = n.issuer_party_id \
             JOIN parties pl ON pl.id = n.platform_id \
             WHERE n.id = $1 AND n.submitted_at IS NOT NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("notice"))?;
        let mut facts = notice_facts(&row)?;
        if policy.listed_at(&facts.category, facts.submitted_at) > self.now() {
            return Err(Error::NotFound("notice"));
        }
        self.notice_items(&mut facts, DETAIL_NAMES).await?;
        Ok(notice_entry(policy, facts))
    }

    /// The dump of a closed UTC day: every record listed that day (its
    /// listing time, decision plus the category's delay, falls in it), in
    /// the fields that never change once listed. None while the day is not
    /// over (a dump is final once served).
    pub async fn register_dump(&self, policy: &RedactionPolicy, day: Day) -> Result<Option<Dump>> {
        if day.end() > self.now() {
            return Ok(None);
        }
        // a record listed today was decided up to the longest delay before
        let from = day
            .start()
            .plus_millis(-(i64::from(policy.max_delay_days()) * tapis_core::register::DAY_MS));
        let mut lines = Vec::new();
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLS} FROM orders o JOIN parties p ON p.id = o.proposer_party_id \
             WHERE o.approved_at >= $1 AND o.approved_at < $2"
        ))
        .bind(from.unix_millis())
        .bind(day.end().unix_millis())
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let mut facts = order_facts(&r)?;
            if Day::of(policy.listed_at(&facts.category, facts.approved_at)) != day {
                continue;
            }
            self.order_details(&mut facts, usize::MAX).await?;
            let e = order_entry(policy, facts);
            let line = tapis_core::register::dump_line(&DumpEntry::Order(&e))?;
            lines.push((e.listed_at, "order", e.id.clone(), line));
        }
        let rows = sqlx::query(&format!(
            "SELECT {NOTICE_COLS} FROM notices n JOIN parties a ON a.id = n.issuer_party_id \
             JOIN parties pl ON pl.id = n.platform_id \
             WHERE n.submitted_at >= $1 AND n.submitted_at < $2"
        ))
        .bind(from.unix_millis())
        .bind(day.end().unix_millis())
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let mut facts = notice_facts(&r)?;
            if Day::of(policy.listed_at(&facts.category, facts.submitted_at)) != day {
                continue;
            }
            self.notice_items(&mut facts, usize::MAX).await?;
            let e = notice_entry(policy, facts);
            let line = tapis_core::register::dump_line(&DumpEntry::Notice(&e))?;
            lines.push((e.listed_at, "notice", e.id.clone(), line));
        }
        let records = lines.len();
        let body = tapis_core::register::dump(lines);
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
        Ok(Some(Dump {
            day,
            body,
            sha256,
            records,
        }))
    }

    /// Platforms' decisions made in `[from, to)` (at most
    /// [`DSA_MAX_DAYS`] apart) on listed notices, as DSA statements of
    /// reasons under `policy`'s redaction.
    pub async fn register_dsa(
        &self,
        policy: &RedactionPolicy,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<DsaExport> {
        if to <= from {
            return Err(tapis_core::Error::invalid("to", "must be after from").into());
        }
        if to.unix_millis() - from.unix_millis() > DSA_MAX_DAYS * tapis_core::register::DAY_MS {
            return Err(tapis_core::Error::invalid(
                "to",
                format!("an export spans at most {DSA_MAX_DAYS} days: ask for several"),
            )
            .into());
        }
        let rows = sqlx::query(
            "SELECT i.id, i.notice_id, i.position, i.kind, i.state AS decision, i.reason, i.decided_at, \
                    n.category, n.legal_basis_reference, n.legal_basis_text, n.explanation, \
                    n.territorial_scope, n.submitted_at, n.trusted_flagger \
               FROM notice_items i JOIN notices n ON n.id = i.notice_id \
              WHERE i.decided_at >= $1 AND i.decided_at < $2 AND n.submitted_at IS NOT NULL \
                AND i.state <> 'pending' \
              ORDER BY i.decided_at, i.id LIMIT $3",
        )
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .bind(i64::try_from(DSA_MAX_STATEMENTS + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let truncated = rows.len() > DSA_MAX_STATEMENTS;
        let now = self.now();
        let mut out = DsaExport {
            statements: Vec::new(),
            skipped: BTreeMap::new(),
            truncated,
        };
        for r in rows.iter().take(DSA_MAX_STATEMENTS) {
            let s = |c: &str| -> Result<String> { Ok(r.try_get::<String, _>(c)?) };
            let category = s("category")?;
            let submitted_at = ts(r, "submitted_at")?;
            if policy.listed_at(&category, submitted_at) > now {
                *out.skipped.entry("not_yet_listed".into()).or_default() += 1;
                continue;
            }
            let mut w = tapis_core::register::Withheld::default();
            let scope: Vec<String> = serde_json::from_str(&s("territorial_scope")?)
                .map_err(|e| Error::corrupt(format!("territorial_scope: {e}")))?;
            let reason = r
                .try_get::<Option<String>, _>("reason")?
                .map(|t| policy.redact_text(&t, &mut w));
            let reference = policy.redact_text(&s("legal_basis_reference")?, &mut w);
            let text = policy.redact_text(&s("legal_basis_text")?, &mut w);
            let explanation = policy.redact_text(&s("explanation")?, &mut w);
            let (item_id, notice_id, kind, decision) =
                (s("id")?, s("notice_id")?, s("kind")?, s("decision")?);
            let facts = dsa::DecisionFacts {
                item_id: &item_id,
                notice_id: &notice_id,
                position: r.try_get("position")?,
                kind: &kind,
                decision: &decision,
                reason: reason.as_deref(),
                decided_at: ts(r, "decided_at")?,
                category: &category,
                legal_basis_reference: &reference,
                legal_basis_text: &text,
                explanation: &explanation,
                territorial_scope: &scope,
                submitted_at,
                trusted_flagger: r.try_get::<i64, _>("trusted_flagger")? != 0,
            };
            match dsa::statement(&facts) {
                Ok(st) => out.statements.push(st),
                Err(skip) => {
                    let key = serde_json::to_value(skip)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    *out.skipped.entry(key).or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    async fn order_rows(
        &self,
        q: &RegisterQuery,
        cursor: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<AnyRow>> {
        let mut sql = format!(
            "SELECT {ORDER_COLS} FROM orders o JOIN parties p ON p.id = o.proposer_party_id \
             WHERE o.approved_at IS NOT NULL"
        );
        let mut binds: Vec<Bind> = Vec::new();
        structural(
            &mut sql,
            &mut binds,
            q,
            cursor,
            "o.approved_at",
            "o.id",
            "o.id IN (SELECT order_id FROM order_platforms WHERE party_id = {})",
            "o.",
        );
        sql.push_str(&format!(
            " ORDER BY o.approved_at DESC, o.id DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn notice_rows(
        &self,
        q: &RegisterQuery,
        cursor: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<AnyRow>> {
        let mut sql = format!(
            "SELECT {NOTICE_COLS} FROM notices n JOIN parties a ON a.id = n.issuer_party_id \
             JOIN parties pl ON pl.id = n.platform_id WHERE n.submitted_at IS NOT NULL"
        );
        let mut binds: Vec<Bind> = Vec::new();
        structural(
            &mut sql,
            &mut binds,
            q,
            cursor,
            "n.submitted_at",
            "n.id",
            "n.platform_id = {}",
            "n.",
        );
        sql.push_str(&format!(
            " ORDER BY n.submitted_at DESC, n.id DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// An order's names (up to `max`), platforms and latest authorisation.
    async fn order_details(&self, f: &mut OrderFacts, max: usize) -> Result<()> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        f.names = sqlx::query(
            "SELECT name FROM order_targets WHERE order_id = $1 ORDER BY name LIMIT $2",
        )
        .bind(&f.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<std::result::Result<_, _>>()?;
        f.platforms = sqlx::query(
            "SELECT p.id, p.name FROM order_platforms op JOIN parties p ON p.id = op.party_id \
             WHERE op.order_id = $1 ORDER BY p.name, p.id",
        )
        .bind(&f.id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .collect::<Result<_>>()?;
        let a = sqlx::query(
            "SELECT p.name, a.token_label, a.decision, a.created_at FROM order_authorisations a \
             JOIN parties p ON p.id = a.party_id WHERE a.order_id = $1 \
             ORDER BY a.created_at DESC, a.id DESC LIMIT 1",
        )
        .bind(&f.id)
        .fetch_optional(&self.pool)
        .await?;
        f.authorisation = match a {
            None => None,
            Some(r) => Some(AuthorisationFacts {
                authoriser: r.try_get("name")?,
                signer: r.try_get("token_label")?,
                decision: r.try_get("decision")?,
                at: ts(&r, "created_at")?,
            }),
        };
        Ok(())
    }

    /// A notice's items (up to `max`) and how many it has.
    async fn notice_items(&self, f: &mut NoticeFacts, max: usize) -> Result<()> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT id, position, kind, value, state, reason, decided_at FROM notice_items \
             WHERE notice_id = $1 ORDER BY position LIMIT $2",
        )
        .bind(&f.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        f.items = rows
            .iter()
            .map(|r| {
                Ok(ItemFacts {
                    id: r.try_get("id")?,
                    position: r.try_get("position")?,
                    kind: r.try_get("kind")?,
                    value: r.try_get("value")?,
                    state: r.try_get("state")?,
                    reason: r.try_get("reason")?,
                    decided_at: opt_ts(r, "decided_at")?,
                })
            })
            .collect::<Result<_>>()?;
        f.items_count = f.items.len();
        if f.items.len() >= max {
            let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notice_items WHERE notice_id = $1")
                .bind(&f.id)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            f.items_count = usize::try_from(n).unwrap_or(0);
        }
        Ok(())
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The SQL filters every register list shares.
#[allow(clippy::too_many_arguments)]
fn structural(
    sql: &mut String,
    binds: &mut Vec<Bind>,
    q: &RegisterQuery,
    cursor: Option<&Cursor>,
    at: &str,
    id: &str,
    platform: &str,
    prefix: &str,
) {
    let next = |binds: &mut Vec<Bind>, b: Bind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    if let Some(c) = &q.category {
        let m = next(binds, Bind::Text(c.clone()));
        sql.push_str(&format!(" AND {prefix}category = {m}"));
    }
    if let Some(s) = &q.state {
        let m = next(binds, Bind::Text(s.clone()));
        sql.push_str(&format!(" AND {prefix}state = {m}"));
    }
    if let Some(f) = q.from {
        let m = next(binds, Bind::Int(f.unix_millis()));
        sql.push_str(&format!(" AND {at} >= {m}"));
    }
    if let Some(t) = q.to {
        let m = next(binds, Bind::Int(t.unix_millis()));
        sql.push_str(&format!(" AND {at} < {m}"));
    }
    if let Some(p) = &q.platform {
        let m = next(binds, Bind::Text(p.clone()));
        sql.push_str(" AND ");
        sql.push_str(&platform.replace("{}", &m));
    }
    if let Some(c) = cursor {
        let a = next(binds, Bind::Int(c.at));
        let a2 = next(binds, Bind::Int(c.at));
        let i = next(binds, Bind::Text(c.id.clone()));
        sql.push_str(&format!(
            " AND ({at} < {a} OR ({at} = {a2} AND {id} < {i}))"
        ));
    }
}

fn order_wanted(e: &RegisterOrder, q: &RegisterQuery) -> bool {
    q.text.as_deref().is_none_or(|t| e.matches(t))
        && q.legal_basis.as_deref().is_none_or(|l| {
            contains(&e.legal_basis.reference, l) || contains(&e.legal_basis.text, l)
        })
}

fn notice_wanted(e: &RegisterNotice, q: &RegisterQuery) -> bool {
    q.text.as_deref().is_none_or(|t| e.matches(t))
        && q.legal_basis.as_deref().is_none_or(|l| {
            contains(&e.legal_basis.reference, l) || contains(&e.legal_basis.text, l)
        })
}

fn order_facts(r: &AnyRow) -> Result<OrderFacts> {
    Ok(OrderFacts {
        id: r.try_get("id")?,
        state: r.try_get("state")?,
        action: r.try_get("action")?,
        category: r.try_get("category")?,
        legal_basis_reference: r.try_get("legal_basis_reference")?,
        legal_basis_text: r.try_get("legal_basis_text")?,
        explanation: r.try_get("explanation")?,
        issuing_authority: r.try_get("authority")?,
        proposer_person: r.try_get("proposer_person")?,
        approver_person: r.try_get("approver_person")?,
        approved_at: ts(r, "approved_at")?,
        effective_at: ts(r, "effective_at")?,
        expires_at: ts(r, "expires_at")?,
        activated_at: opt_ts(r, "activated_at")?,
        ended_at: opt_ts(r, "ended_at")?,
        end_reason: r.try_get("end_reason")?,
        emergency: r.try_get::<i64, _>("emergency")? != 0,
        names_count: usize::try_from(r.try_get::<i64, _>("target_count")?).unwrap_or(0),
        authorisation: None,
        names: Vec::new(),
        platforms: Vec::new(),
    })
}

fn notice_facts(r: &AnyRow) -> Result<NoticeFacts> {
    let scope: String = r.try_get("territorial_scope")?;
    Ok(NoticeFacts {
        id: r.try_get("id")?,
        state: r.try_get("state")?,
        category: r.try_get("category")?,
        legal_basis_reference: r.try_get("legal_basis_reference")?,
        legal_basis_text: r.try_get("legal_basis_text")?,
        explanation: r.try_get("explanation")?,
        territorial_scope: serde_json::from_str(&scope)
            .map_err(|e| Error::corrupt(format!("territorial_scope: {e}")))?,
        issuing_authority: r.try_get("authority")?,
        issuer_person: r.try_get("issuer_label")?,
        platform: (r.try_get("platform_id")?, r.try_get("platform_name")?),
        trusted_flagger: r.try_get::<i64, _>("trusted_flagger")? != 0,
        submitted_at: ts(r, "submitted_at")?,
        closed_at: opt_ts(r, "closed_at")?,
        items_count: 0,
        items: Vec::new(),
    })
}
