//! Flags: intake from flagger parties and the public, the review queue, and
//! triage into notices. Core decides (`FlagState::on`, `order_queue`,
//! `choose_platform`, `notice_from_flags`); this module loads, asks, writes
//! and appends the audit event in the same transaction. An accepted review
//! becomes a notice through the notices' own write path
//! (`create_notice_in`), so signing, delivery and deadlines are unchanged.
//!
//! Privacy: a public report has no account and no client address; its
//! contact is sealed under the secrets key (a SHA-256 when none is set) and
//! never leaves this module. What a flagger reads is its own flags only.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::audit::Actor;
use tapis_core::flag::{
    Acceptance, FlagEvent, FlagState, FlagTarget, NewFlag, PlatformNames, QueueCandidate,
    choose_platform, notice_from_flags, order_queue, track_record,
};
use tapis_core::notice::{ItemState, Urgency};
use tapis_core::party::PartyKind;
use tapis_core::target::{DomainName, ItemKind};
use tapis_core::{EventType, FlagId, NoticeId, PartyId, Timestamp, canonical};

use crate::audit::Event;
use crate::secrets::Place;
use crate::{Error, Notice, Principal, Result, Store};

mod figures;

pub use figures::{FlaggerReport, IssuerFigures, QueueHealth, ReviewerLoad, WindowFigures};

type Tx = Transaction<'static, Any>;

/// One target of a flag, with the platform's decision once it is in a
/// notice.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagTargetView {
    pub kind: ItemKind,
    pub value: String,
    pub normalized: String,
    pub native_id: Option<String>,
    /// The platform's decision on the notice item made from this target.
    pub decision: Option<ItemState>,
}

/// A flag as its flagger (or the authority) sees it: never a public
/// reporter's contact.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: FlagId,
    /// What a reporter quotes to read the status.
    pub reference: String,
    /// `flagger` or `public`.
    pub source_kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub party_id: Option<PartyId>,
    pub category: String,
    pub reasons: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub evidence: Value,
    pub state: FlagState,
    pub targets: Vec<FlagTargetView>,
    /// The notice it became part of (accepted or merged).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub notice_id: Option<NoticeId>,
    /// The officer's reason when rejected.
    pub decision_reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
}

/// What a public reporter sees with only the reference: status, no
/// names, no notice.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicFlagStatus {
    pub reference: String,
    pub state: FlagState,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<Timestamp>,
    pub decision_reason: Option<String>,
    /// Each reported target and the platform's decision on it, if any.
    pub targets: Vec<FlagTargetView>,
}

/// One source of a queue entry.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueSource {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub flag_id: FlagId,
    pub reference: String,
    /// `flagger` or `public` (a public reporter is never named).
    pub source_kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub party_id: Option<PartyId>,
    pub party_name: Option<String>,
    pub category: String,
    pub reasons: String,
    /// The source's accepted share of reviewed flags (0 to 1, new: 0.5).
    pub track_record: f64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
}

/// One entry of the review queue: a normalised target and every source
/// that flagged it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueEntry {
    pub kind: ItemKind,
    pub normalized: String,
    /// The most severe category among its flags.
    pub category: String,
    /// That category's SLA allowance (seconds, urgent): its severity.
    pub allowance_secs: i64,
    pub independent_sources: usize,
    /// The platform it would go to, when one registered its domain or handle.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub platform_id: Option<PartyId>,
    pub sources: Vec<QueueSource>,
}

/// How many received flags the queue considers at once (oldest first).
const QUEUE_WINDOW: i64 = 10_000;

const FLAG_COLUMNS: &str = "id, reference, source_kind, party_id, category, reasons, evidence, state, \
    notice_id, decision_reason, decided_at, created_at";

fn flag_from_row(row: &AnyRow) -> Result<FlagView> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(FlagView {
        id: FlagId::parse(&s("id")?).map_err(Error::corrupt)?,
        reference: s("reference")?,
        source_kind: s("source_kind")?,
        party_id: row
            .try_get::<Option<String>, _>("party_id")?
            .map(|p| PartyId::parse(&p).map_err(Error::corrupt))
            .transpose()?,
        category: s("category")?,
        reasons: s("reasons")?,
        evidence: serde_json::from_str(&s("evidence")?).map_err(Error::corrupt)?,
        state: FlagState::parse(&s("state")?).map_err(Error::corrupt)?,
        targets: Vec::new(),
        notice_id: row
            .try_get::<Option<String>, _>("notice_id")?
            .map(|n| NoticeId::parse(&n).map_err(Error::corrupt))
            .transpose()?,
        decision_reason: row.try_get("decision_reason")?,
        decided_at: crate::notices::opt_ts(row, "decided_at")?,
        received_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}

fn target_from_row(row: &AnyRow) -> Result<FlagTarget> {
    Ok(FlagTarget {
        kind: ItemKind::parse(&row.try_get::<String, _>("kind")?).map_err(Error::corrupt)?,
        value: row.try_get("value")?,
        normalized: row.try_get("normalized")?,
        native_id: row.try_get("native_id")?,
    })
}

/// A reference a reporter can read out: 20 characters of Crockford's
/// base32 (100 random bits) in groups.
fn new_reference() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let bytes: [u8; 20] = rand::random();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    let groups: Vec<String> = chars.chunks(5).map(|c| c.iter().collect()).collect();
    format!("TF-{}", groups.join("-"))
}

/// The actor for a public report: nobody named, no address.
fn public_actor() -> Actor {
    Actor {
        kind: "public",
        party_id: None,
        token_id: None,
        label: "public report".into(),
        role: None,
        person: None,
    }
}

async fn load_targets(tx: &mut Tx, flag: &mut FlagView) -> Result<Vec<FlagTarget>> {
    let rows = sqlx::query(
        "SELECT kind, value, normalized, native_id FROM flag_targets WHERE flag_id = $1 ORDER BY position",
    )
    .bind(flag.id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let targets: Vec<FlagTarget> = rows.iter().map(target_from_row).collect::<Result<_>>()?;
    // the platform's decisions, for a flag that became part of a notice
    let mut decisions: HashMap<(String, String), ItemState> = HashMap::new();
    if let Some(n) = flag.notice_id {
        for r in
            sqlx::query("SELECT kind, normalized, state FROM notice_items WHERE notice_id = $1")
                .bind(n.to_string())
                .fetch_all(&mut **tx)
                .await?
        {
            decisions.insert(
                (r.try_get("kind")?, r.try_get("normalized")?),
                ItemState::parse(&r.try_get::<String, _>("state")?).map_err(Error::corrupt)?,
            );
        }
    }
    flag.targets = targets
        .iter()
        .map(|t| FlagTargetView {
            kind: t.kind,
            value: t.value.clone(),
            normalized: t.normalized.clone(),
            native_id: t.native_id.clone(),
            decision: decisions
                .get(&(t.kind.as_str().to_owned(), t.normalized.clone()))
                .copied(),
        })
        .collect();
    Ok(targets)
}

async fn load_flag(tx: &mut Tx, id: FlagId) -> Result<(FlagView, Vec<FlagTarget>)> {
    let row = sqlx::query(&format!("SELECT {FLAG_COLUMNS} FROM flags WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("flag"))?;
    let mut f = flag_from_row(&row)?;
    let targets = load_targets(tx, &mut f).await?;
    Ok((f, targets))
}

fn flag_json(f: &FlagView) -> Result<Value> {
    serde_json::to_value(f).map_err(|e| Error::corrupt(format!("flag does not serialise: {e}")))
}

impl Store {
    async fn insert_flag(
        &self,
        tx: &mut Tx,
        by: Option<&Principal>,
        flag: &NewFlag,
        idempotency: Option<(&str, &str)>,
        position: usize,
    ) -> Result<FlagView> {
        let now = self.now();
        let id = FlagId::new();
        let reference = new_reference();
        let contact = match &flag.contact {
            None => None,
            Some(c) if self.secrets().is_set() => Some(self.secrets().seal(
                Place {
                    table: "flags",
                    column: "contact",
                    row: &id.to_string(),
                },
                c,
            )?),
            // no key to seal with: keep only a hash, never the address
            Some(c) => Some(format!("sha256:{}", crate::hash_secret(c))),
        };
        let evidence: Vec<Value> = flag
            .evidence
            .iter()
            .map(|e| json!({"sha256": e.sha256.as_str(), "description": e.description}))
            .collect();
        sqlx::query(
            "INSERT INTO flags (id, reference, source_kind, party_id, token_id, contact, category, taxonomy_version, \
             reasons, evidence, state, idempotency_key, request_hash, batch_position, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received', $11, $12, $13, $14)",
        )
        .bind(id.to_string())
        .bind(&reference)
        .bind(if by.is_some() { "flagger" } else { "public" })
        .bind(by.map(|p| p.party_id.to_string()))
        .bind(by.map(|p| p.token_id.to_string()))
        .bind(contact)
        .bind(&flag.category)
        .bind(&flag.taxonomy_version)
        .bind(&flag.reasons)
        .bind(canonical::to_string(&Value::Array(evidence))?)
        .bind(idempotency.map(|(k, _)| k.to_owned()))
        .bind(idempotency.map(|(_, h)| h.to_owned()))
        .bind(position as i64)
        .bind(now.unix_millis())
        .execute(&mut **tx)
        .await?;
        for (i, t) in flag.targets.iter().enumerate() {
            sqlx::query(
                "INSERT INTO flag_targets (flag_id, position, kind, value, normalized, native_id) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.to_string())
            .bind(i as i64)
            .bind(t.kind.as_str())
            .bind(&t.value)
            .bind(&t.normalized)
            .bind(t.native_id.clone())
            .execute(&mut **tx)
            .await?;
        }
        let (view, _) = load_flag(tx, id).await?;
        // the audit record names the source party, never a reporter
        let actor = by.map_or_else(public_actor, Principal::actor);
        Event::about(EventType::FlagSubmitted, "flag", id, flag_json(&view)?)
            .append(tx, now, &actor)
            .await?;
        Ok(view)
    }

    /// Submit flags from a flagger party, all in one transaction. With an
    /// idempotency key, a repeat of the same request returns the first
    /// flags (`false`); the same key with another request is a conflict.
    pub async fn submit_flags(
        &self,
        by: &Principal,
        flags: Vec<NewFlag>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(Vec<FlagView>, bool)> {
        if by.party_kind != PartyKind::Flagger {
            return Err(tapis_core::Error::Forbidden {
                who: format!("party kind {}", by.party_kind.as_str()),
                action: "submit flags".into(),
            }
            .into());
        }
        let mut tx = self.write().await?;
        if let Some((key, fingerprint)) = idempotency {
            let rows = sqlx::query(
                "SELECT id, request_hash FROM flags WHERE party_id = $1 AND idempotency_key = $2 ORDER BY batch_position",
            )
            .bind(by.party_id.to_string())
            .bind(key)
            .fetch_all(&mut *tx)
            .await?;
            if !rows.is_empty() {
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    if row.try_get::<Option<String>, _>("request_hash")?.as_deref()
                        != Some(fingerprint)
                    {
                        return Err(Error::Conflict(
                            "this Idempotency-Key was already used for a different request; use a new key".into(),
                        ));
                    }
                    let id =
                        FlagId::parse(&row.try_get::<String, _>("id")?).map_err(Error::corrupt)?;
                    out.push(load_flag(&mut tx, id).await?.0);
                }
                return Ok((out, false));
            }
        }
        let mut out = Vec::with_capacity(flags.len());
        for (i, f) in flags.iter().enumerate() {
            out.push(
                self.insert_flag(&mut tx, Some(by), f, idempotency, i)
                    .await?,
            );
        }
        tx.commit().await?;
        self.signal();
        Ok((out, true))
    }

    /// A public report: no account, no address; answers with its reference.
    pub async fn submit_public_flag(&self, flag: NewFlag) -> Result<FlagView> {
        let mut tx = self.write().await?;
        let view = self.insert_flag(&mut tx, None, &flag, None, 0).await?;
        tx.commit().await?;
        self.signal();
        Ok(view)
    }

    /// The status of a public report, by its reference only.
    pub async fn public_flag_status(&self, reference: &str) -> Result<PublicFlagStatus> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {FLAG_COLUMNS} FROM flags WHERE reference = $1 AND source_kind = 'public'"
        ))
        .bind(reference)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("flag"))?;
        let mut f = flag_from_row(&row)?;
        load_targets(&mut tx, &mut f).await?;
        tx.rollback().await?;
        Ok(PublicFlagStatus {
            reference: f.reference,
            state: f.state,
            received_at: f.received_at,
            decided_at: f.decided_at,
            decision_reason: f.decision_reason,
            targets: f.targets,
        })
    }

    /// Flags the caller may read: a flagger its own party's, authority
    /// staff all; newest first.
    pub async fn list_flags(&self, by: &Principal, limit: u32) -> Result<Vec<FlagView>> {
        let mut tx = self.pool.begin().await?;
        let rows = if by.role.reads_everything() {
            sqlx::query(&format!(
                "SELECT {FLAG_COLUMNS} FROM flags ORDER BY created_at DESC, id DESC LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?
        } else {
            sqlx::query(&format!(
                "SELECT {FLAG_COLUMNS} FROM flags WHERE party_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
            ))
            .bind(by.party_id.to_string())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut f = flag_from_row(row)?;
            load_targets(&mut tx, &mut f).await?;
            out.push(f);
        }
        tx.rollback().await?;
        Ok(out)
    }

    /// One flag, if the caller may read it (another party's is a 404).
    pub async fn get_flag(&self, by: &Principal, id: FlagId) -> Result<FlagView> {
        let mut tx = self.pool.begin().await?;
        let (f, _) = load_flag(&mut tx, id).await?;
        tx.rollback().await?;
        if by.role.reads_everything() || f.party_id == Some(by.party_id) {
            Ok(f)
        } else {
            Err(Error::NotFound("flag"))
        }
    }

    async fn platform_names(tx: &mut Tx) -> Result<Vec<PlatformNames>> {
        let rows = sqlx::query("SELECT id, domains, handles FROM parties WHERE kind = 'platform'")
            .fetch_all(&mut **tx)
            .await?;
        rows.iter()
            .map(|r| {
                let domains: Vec<String> =
                    serde_json::from_str(&r.try_get::<String, _>("domains")?)
                        .map_err(Error::corrupt)?;
                Ok(PlatformNames {
                    id: PartyId::parse(&r.try_get::<String, _>("id")?).map_err(Error::corrupt)?,
                    domains: domains
                        .iter()
                        .filter_map(|d| DomainName::parse(d).ok())
                        .collect(),
                    handles: serde_json::from_str(&r.try_get::<String, _>("handles")?)
                        .map_err(Error::corrupt)?,
                })
            })
            .collect()
    }

    /// The review queue: received flags grouped by normalised target, each
    /// entry with every source, in core's order (`order_queue`), at most
    /// `per_source` entries per source in each round.
    pub async fn flag_queue(&self, limit: usize, per_source: usize) -> Result<Vec<QueueEntry>> {
        let mut tx = self.pool.begin().await?;
        // track records: per flagger party, and the public as one
        let mut records: HashMap<String, f64> = HashMap::new();
        for r in sqlx::query(
            "SELECT COALESCE(party_id, 'public') AS source, \
             SUM(CASE WHEN state IN ('accepted', 'merged') THEN 1 ELSE 0 END) AS upheld, \
             SUM(CASE WHEN state <> 'received' THEN 1 ELSE 0 END) AS reviewed \
             FROM flags GROUP BY COALESCE(party_id, 'public')",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let upheld: i64 = r.try_get("upheld")?;
            let reviewed: i64 = r.try_get("reviewed")?;
            records.insert(
                r.try_get("source")?,
                track_record(upheld.max(0) as u64, reviewed.max(0) as u64),
            );
        }
        let rows = sqlx::query(
            "SELECT f.id, f.reference, f.source_kind, f.party_id, p.name AS party_name, f.category, f.reasons, \
             f.created_at, t.kind, t.value, t.normalized, t.native_id \
             FROM flags f JOIN flag_targets t ON t.flag_id = f.id LEFT JOIN parties p ON p.id = f.party_id \
             WHERE f.id IN (SELECT id FROM flags WHERE state = 'received' ORDER BY created_at LIMIT $1) \
             ORDER BY f.created_at, f.id, t.position",
        )
        .bind(QUEUE_WINDOW)
        .fetch_all(&mut *tx)
        .await?;
        let platforms = Self::platform_names(&mut tx).await?;
        tx.rollback().await?;

        let mut entries: Vec<QueueEntry> = Vec::new();
        let mut index: HashMap<(ItemKind, String), usize> = HashMap::new();
        let mut keys: Vec<Vec<String>> = Vec::new();
        for r in &rows {
            let target = target_from_row(r)?;
            let party_id = r
                .try_get::<Option<String>, _>("party_id")?
                .map(|p| PartyId::parse(&p).map_err(Error::corrupt))
                .transpose()?;
            let flag_id = FlagId::parse(&r.try_get::<String, _>("id")?).map_err(Error::corrupt)?;
            let category: String = r.try_get("category")?;
            let record_key = party_id.map_or_else(|| "public".to_owned(), |p| p.to_string());
            // a flagger party is one source however often it flags; each
            // public report is its own
            let source_key =
                party_id.map_or_else(|| format!("public:{flag_id}"), |p| p.to_string());
            let allowance = self.sla().allowance(&category, Urgency::Urgent);
            let source = QueueSource {
                flag_id,
                reference: r.try_get("reference")?,
                source_kind: r.try_get("source_kind")?,
                party_id,
                party_name: r.try_get("party_name")?,
                category: category.clone(),
                reasons: r.try_get("reasons")?,
                track_record: records.get(&record_key).copied().unwrap_or(0.5),
                received_at: Timestamp::from_unix_millis(r.try_get("created_at")?),
            };
            let key = (target.kind, target.normalized.clone());
            let at = match index.get(&key) {
                Some(&i) => i,
                None => {
                    entries.push(QueueEntry {
                        kind: target.kind,
                        normalized: target.normalized.clone(),
                        category: category.clone(),
                        allowance_secs: allowance,
                        independent_sources: 0,
                        platform_id: tapis_core::flag::platform_of(&target, &platforms),
                        sources: Vec::new(),
                    });
                    keys.push(Vec::new());
                    index.insert(key, entries.len() - 1);
                    entries.len() - 1
                }
            };
            let e = &mut entries[at];
            if allowance < e.allowance_secs {
                e.allowance_secs = allowance;
                e.category = category;
            }
            e.sources.push(source);
            if !keys[at].contains(&source_key) {
                keys[at].push(source_key);
            }
            e.independent_sources = keys[at].len();
        }
        let candidates: Vec<QueueCandidate> = entries
            .iter()
            .zip(&keys)
            .map(|(e, k)| QueueCandidate {
                sources: k.clone(),
                allowance_secs: e.allowance_secs,
                trust: e.sources.iter().map(|s| s.track_record).fold(0.0, f64::max),
                first_received: e
                    .sources
                    .iter()
                    .map(|s| s.received_at)
                    .min()
                    .unwrap_or_else(|| self.now()),
            })
            .collect();
        let order = order_queue(&candidates, per_source);
        let mut slots: Vec<Option<QueueEntry>> = entries.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .take(limit)
            .collect())
    }

    /// Load the named flags for a decision, each still received.
    async fn flags_for_review(
        tx: &mut Tx,
        ids: &[FlagId],
        event: FlagEvent,
    ) -> Result<Vec<(FlagView, Vec<FlagTarget>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (f, targets) = load_flag(tx, *id).await?;
            f.state.on(event)?;
            out.push((f, targets));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn decide_flag(
        tx: &mut Tx,
        now: Timestamp,
        by: &Principal,
        f: &FlagView,
        event: FlagEvent,
        notice: Option<(NoticeId, PartyId)>,
        reason: Option<&str>,
    ) -> Result<()> {
        let next = f.state.on(event)?;
        let res = sqlx::query(
            "UPDATE flags SET state = $1, notice_id = $2, platform_id = $3, decision_reason = $4, \
             decided_at = $5, decided_by = $6 WHERE id = $7 AND state = $8",
        )
        .bind(next.as_str())
        .bind(notice.map(|(n, _)| n.to_string()))
        .bind(notice.map(|(_, p)| p.to_string()))
        .bind(reason.map(str::to_owned))
        .bind(now.unix_millis())
        .bind(by.token_id.to_string())
        .bind(f.id.to_string())
        .bind(f.state.as_str())
        .execute(&mut **tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(Error::Conflict("the flag changed meanwhile; retry".into()));
        }
        let action = match event {
            FlagEvent::Accept => EventType::FlagAccepted,
            FlagEvent::Reject => EventType::FlagRejected,
            FlagEvent::Merge => EventType::FlagMerged,
        };
        Event::about(
            action,
            "flag",
            f.id,
            json!({"state": next, "notice_id": notice.map(|(n, _)| n.to_string()), "reason": reason}),
        )
        .before(json!({"state": f.state}))
        .append(tx, now, &by.actor())
        .await?;
        Ok(())
    }

    /// Accept flags into one notice (an officer): the notice is created by
    /// the notices' own path, and each flag is accepted, in one transaction.
    pub async fn accept_flags(&self, by: &Principal, acceptance: Acceptance) -> Result<Notice> {
        let store = self.clone();
        let by = by.clone();
        self.grouped(move |tx| {
            Box::pin(async move {
                let flags =
                    Self::flags_for_review(tx, &acceptance.flag_ids, FlagEvent::Accept).await?;
                let platforms = Self::platform_names(tx).await?;
                let targets: Vec<FlagTarget> =
                    flags.iter().flat_map(|(_, t)| t.iter().cloned()).collect();
                let platform = choose_platform(acceptance.platform_id, &targets, &platforms)?;
                let parts: Vec<(String, Vec<FlagTarget>)> = flags
                    .iter()
                    .map(|(f, t)| (f.category.clone(), t.clone()))
                    .collect();
                let sla = store.sla().clone();
                let mut new = notice_from_flags(&acceptance, platform, &parts, |c| {
                    sla.allowance(c, acceptance.urgency)
                })?;
                // the authority acting on a trusted flag: a flag from a
                // party whose confirmed grant with this platform covers it
                for (f, targets) in &flags {
                    let kinds: Vec<ItemKind> = targets.iter().map(|t| t.kind).collect();
                    if let Some(party) = f.party_id
                        && crate::trusted::covered(tx, party, platform, &new.category, &kinds)
                            .await?
                    {
                        new.trusted_flagger = true;
                        break;
                    }
                }
                let created = store.create_notice_in(tx, &by, new, None).await?;
                let now = store.now();
                for (f, _) in &flags {
                    Self::decide_flag(
                        tx,
                        now,
                        &by,
                        f,
                        FlagEvent::Accept,
                        Some((created.notice.id, platform)),
                        None,
                    )
                    .await?;
                }
                Ok(created.notice)
            })
        })
        .await
    }

    /// Reject flags with a reason (an officer).
    pub async fn reject_flags(
        &self,
        by: &Principal,
        ids: &[FlagId],
        reason: &str,
    ) -> Result<Vec<FlagView>> {
        let mut tx = self.write().await?;
        let now = self.now();
        let flags = Self::flags_for_review(&mut tx, ids, FlagEvent::Reject).await?;
        let mut out = Vec::with_capacity(flags.len());
        for (f, _) in &flags {
            Self::decide_flag(&mut tx, now, by, f, FlagEvent::Reject, None, Some(reason)).await?;
            out.push(load_flag(&mut tx, f.id).await?.0);
        }
        tx.commit().await?;
        self.signal();
        Ok(out)
    }

    /// Merge flags into an open notice that already asks for every one of
    /// their targets (an officer): their outcome follows that notice.
    pub async fn merge_flags(
        &self,
        by: &Principal,
        ids: &[FlagId],
        notice_id: NoticeId,
    ) -> Result<Vec<FlagView>> {
        let mut tx = self.write().await?;
        let now = self.now();
        let notice = crate::notices::load_notice(&mut tx, notice_id).await?;
        if !notice.state.is_open() {
            return Err(Error::Conflict(format!(
                "notice {notice_id} is {}: merge only into an open notice, or accept the flags into a new one",
                notice.state
            )));
        }
        let flags = Self::flags_for_review(&mut tx, ids, FlagEvent::Merge).await?;
        let mut out = Vec::with_capacity(flags.len());
        for (f, targets) in &flags {
            if let Some(t) = targets.iter().find(|t| {
                !notice
                    .items
                    .iter()
                    .any(|i| i.kind == t.kind && i.normalized == t.normalized)
            }) {
                return Err(tapis_core::Error::invalid(
                    "flag_ids",
                    format!(
                        "flag {} names {} which notice {notice_id} does not: accept it into a new notice instead",
                        f.id, t.normalized
                    ),
                )
                .into());
            }
            Self::decide_flag(
                &mut tx,
                now,
                by,
                f,
                FlagEvent::Merge,
                Some((notice_id, notice.platform_id)),
                None,
            )
            .await?;
            out.push(load_flag(&mut tx, f.id).await?.0);
        }
        tx.commit().await?;
        self.signal();
        Ok(out)
    }
}
