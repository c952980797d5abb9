//! Signal banks (the filtering management service): banks and their
//! settings, signals added with their labels and legal basis (copied from
//! the notice or order they came from), tombstones, match feedback and
//! precision. Who may do what is core's (`tapis_core::bank::access`); every
//! change is one transaction with its audit event, and every addition or
//! tombstone takes the bank's next sequence number in `bank_changes`, which
//! the sync feed (`feed.rs`) and every process's in-memory index
//! (`matcher.rs`) read in order.

mod feed;
mod matcher;

use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::bank::{
    Access, BankAction, BankFacts, BankInput, BankSettings, Tally, Verdict, access,
    crosses_into_review,
};
use tapis_core::party::PartyKind;
use tapis_core::{EventType, PartyId, Timestamp, canonical};
use tapis_match::Signal;

use crate::audit::Event;
use crate::{Error, Principal, Result, Store};

pub use feed::{Change, ExportPage, Feed};
pub use matcher::{MatchHit, Matcher, MatcherStats, warm};

type Tx = Transaction<'static, Any>;

/// A bank as recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BankView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub pdq_threshold: u32,
    /// Platforms that may match and sync it (shown to authority staff only).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub shared_with: Vec<PartyId>,
    /// Flagger parties that may add signals (shown to authority staff only).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub contributors: Vec<PartyId>,
    pub review_after: u32,
    /// The bank's last change: the sync feed's checkpoint at its head.
    pub seq: i64,
    /// Live signals.
    pub signals: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub changed_at: Timestamp,
}

impl BankView {
    fn facts(&self) -> BankFacts<'_> {
        BankFacts {
            enabled: self.enabled,
            shared_with: &self.shared_with,
            contributors: &self.contributors,
        }
    }

    fn settings(&self) -> BankSettings {
        BankSettings {
            name: self.name.clone(),
            description: self.description.clone(),
            enabled: self.enabled,
            pdq_threshold: self.pdq_threshold,
            shared_with: self.shared_with.clone(),
            contributors: self.contributors.clone(),
            review_after: self.review_after,
        }
    }

    /// What `by` is shown: other parties' lists only to authority staff.
    fn for_viewer(mut self, by: &Principal) -> BankView {
        if !by.role.reads_everything() {
            self.shared_with.clear();
            self.contributors.clear();
        }
        self
    }
}

const BANK_COLUMNS: &str = "b.id, b.name, b.description, b.enabled, b.pdq_threshold, b.shared_with, \
    b.contributors, b.review_after, b.seq, b.created_at, b.changed_at, \
    (SELECT COUNT(*) FROM bank_signals s WHERE s.bank_id = b.id AND s.removed_at IS NULL) AS live";

fn u32_col(row: &AnyRow, c: &str) -> Result<u32> {
    u32::try_from(row.try_get::<i64, _>(c)?).map_err(Error::corrupt)
}

fn bank_from_row(row: &AnyRow) -> Result<BankView> {
    let parties = |c: &str| -> Result<Vec<PartyId>> {
        serde_json::from_str(&row.try_get::<String, _>(c)?).map_err(Error::corrupt)
    };
    Ok(BankView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        pdq_threshold: u32_col(row, "pdq_threshold")?,
        shared_with: parties("shared_with")?,
        contributors: parties("contributors")?,
        review_after: u32_col(row, "review_after")?,
        seq: row.try_get("seq")?,
        signals: row.try_get("live")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        changed_at: Timestamp::from_unix_millis(row.try_get("changed_at")?),
    })
}

async fn load_bank<'c, E>(conn: E, id: &str) -> Result<BankView>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    let row = sqlx::query(&format!(
        "SELECT {BANK_COLUMNS} FROM banks b WHERE b.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("bank"))?;
    bank_from_row(&row)
}

/// `Ok` if `by` may do `action` to `bank`; another party's hidden bank is
/// a 404, a visible one the role may not touch a 403.
pub(crate) fn require(by: &Principal, bank: Option<&BankView>, action: BankAction) -> Result<()> {
    let facts = bank.map(BankView::facts);
    match access(by.role, by.party_id, facts.as_ref(), action) {
        Access::Allowed => Ok(()),
        Access::Forbidden(e) => Err(e.into()),
        Access::Hidden => Err(Error::NotFound("bank")),
    }
}

/// Where a signal came from: the notice or order that is its legal basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceRef {
    /// `notice` or `order`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// The legal basis a signal carries (its source's, as recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegalBasis {
    pub reference: String,
    pub text: String,
}

/// A signal's labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignalLabels {
    pub category: Option<String>,
    pub tier: Option<String>,
    pub group: Option<String>,
}

/// A signal to add, parsed by the caller.
#[derive(Debug, Clone)]
pub struct NewSignal {
    pub signal: Signal,
    pub quality: Option<u8>,
    pub labels: SignalLabels,
    pub source: SourceRef,
}

/// A signal as recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignalView {
    pub id: String,
    pub bank_id: String,
    /// `url`, `domain`, `sha256`, `md5` or `pdq`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The normalised value.
    pub value: String,
    pub quality: Option<u8>,
    pub labels: SignalLabels,
    pub source: SourceRef,
    pub legal_basis: LegalBasis,
    /// The party that added it.
    pub added_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub added_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub removed_at: Option<Timestamp>,
    pub removed_reason: Option<String>,
    /// When its false positives put it up for review.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub review_flagged_at: Option<Timestamp>,
}

pub(crate) const SIGNAL_COLUMNS: &str = "s.id, s.bank_id, s.kind, s.value, s.quality, s.category, s.tier, s.grp, \
    s.source_type, s.source_id, s.legal_basis_reference, s.legal_basis_text, s.added_party, s.added_at, \
    s.removed_at, s.removed_reason, s.review_flagged_at";

pub(crate) fn signal_from_row(row: &AnyRow) -> Result<SignalView> {
    let quality = row
        .try_get::<Option<i64>, _>("quality")?
        .map(|q| u8::try_from(q).map_err(Error::corrupt))
        .transpose()?;
    Ok(SignalView {
        id: row.try_get("id")?,
        bank_id: row.try_get("bank_id")?,
        kind: row.try_get("kind")?,
        value: row.try_get("value")?,
        quality,
        labels: SignalLabels {
            category: row.try_get("category")?,
            tier: row.try_get("tier")?,
            group: row.try_get("grp")?,
        },
        source: SourceRef {
            kind: row.try_get("source_type")?,
            id: row.try_get("source_id")?,
        },
        legal_basis: LegalBasis {
            reference: row.try_get("legal_basis_reference")?,
            text: row.try_get("legal_basis_text")?,
        },
        added_by: row.try_get("added_party")?,
        added_at: Timestamp::from_unix_millis(row.try_get("added_at")?),
        removed_at: crate::notices::opt_ts(row, "removed_at")?,
        removed_reason: row.try_get("removed_reason")?,
        review_flagged_at: crate::notices::opt_ts(row, "review_flagged_at")?,
    })
}

async fn load_signal(tx: &mut Tx, id: &str) -> Result<SignalView> {
    let row = sqlx::query(&format!(
        "SELECT {SIGNAL_COLUMNS} FROM bank_signals s WHERE s.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("signal"))?;
    signal_from_row(&row)
}

/// The bank's next sequence number (the chain lock every write holds
/// makes this gap-free and ordered across processes).
async fn next_seq(tx: &mut Tx, bank: &str, now: Timestamp) -> Result<i64> {
    sqlx::query("UPDATE banks SET seq = seq + 1, changed_at = $2 WHERE id = $1")
        .bind(bank)
        .bind(now.unix_millis())
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query("SELECT seq FROM banks WHERE id = $1")
        .bind(bank)
        .fetch_one(&mut **tx)
        .await?
        .try_get("seq")?)
}

async fn check_parties(tx: &mut Tx, s: &BankSettings) -> Result<()> {
    for (field, ids, want) in [
        ("shared_with", &s.shared_with, PartyKind::Platform),
        ("contributors", &s.contributors, PartyKind::Flagger),
    ] {
        for (i, id) in ids.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let kind = crate::parties::kind_of(tx, *id)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => {
                        tapis_core::Error::invalid(&field, "no party has this id").into()
                    }
                    other => other,
                })?;
            if PartyKind::parse(&kind).map_err(Error::corrupt)? != want {
                return Err(tapis_core::Error::invalid(
                    field,
                    format!("this party is not a {}", want.as_str()),
                )
                .into());
            }
        }
    }
    Ok(())
}

async fn name_taken(tx: &mut Tx, name: &str, except: &str) -> Result<()> {
    let row = sqlx::query("SELECT id FROM banks WHERE name = $1 AND id <> $2")
        .bind(name)
        .bind(except)
        .fetch_optional(&mut **tx)
        .await?;
    if row.is_some() {
        return Err(Error::Conflict(format!(
            "a bank named {name:?} already exists"
        )));
    }
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::corrupt(format!("does not serialise: {e}")))
}

/// The legal basis of `source`, which `by` may cite: authority staff any
/// notice or order; a flagger only a notice made from its own flags.
async fn legal_basis_of(tx: &mut Tx, by: &Principal, source: &SourceRef) -> Result<LegalBasis> {
    let (table, field) = match source.kind.as_str() {
        "notice" => ("notices", "source.notice_id"),
        "order" => ("orders", "source.order_id"),
        _ => {
            return Err(
                tapis_core::Error::invalid("source", "name a notice_id or an order_id").into(),
            );
        }
    };
    let row = if by.role.reads_everything() {
        sqlx::query(&format!(
            "SELECT legal_basis_reference, legal_basis_text FROM {table} WHERE id = $1"
        ))
        .bind(&source.id)
        .fetch_optional(&mut **tx)
        .await?
    } else if table == "notices" {
        sqlx::query(
            "SELECT n.legal_basis_reference, n.legal_basis_text FROM notices n WHERE n.id = $1 \
             AND EXISTS (SELECT 1 FROM flags f WHERE f.notice_id = n.id AND f.party_id = $2)",
        )
        .bind(&source.id)
        .bind(by.party_id.to_string())
        .fetch_optional(&mut **tx)
        .await?
    } else {
        None
    };
    let Some(row) = row else {
        let msg = if by.role.reads_everything() {
            format!("no {} has this id", source.kind)
        } else {
            "no notice made from your flags has this id".to_owned()
        };
        return Err(tapis_core::Error::invalid(field, msg).into());
    };
    Ok(LegalBasis {
        reference: row.try_get("legal_basis_reference")?,
        text: row.try_get("legal_basis_text")?,
    })
}

/// A platform's verdict, as answered.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackAnswer {
    pub id: String,
    pub signal_id: String,
    pub verdict: Verdict,
    /// The same platform's earlier verdict on this signal that this one
    /// replaces (each platform counts once, with its latest verdict).
    pub replaces: Option<ReplacedVerdict>,
    /// The signal's verdicts, one per platform (its latest).
    pub tally: Tally,
    /// Whether the signal is (now or already) up for review.
    pub flagged_for_review: bool,
}

/// A platform's earlier verdict, replaced by its new one.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplacedVerdict {
    pub id: String,
    pub verdict: Verdict,
}

/// A bank's precision, and each contributor's on it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Precision {
    pub bank_id: String,
    pub tally: Tally,
    /// Confirmed over all verdicts; absent before any.
    pub precision: Option<f64>,
    /// Per contributing party (authority staff see all; a flagger its own;
    /// a platform none).
    pub contributors: Vec<ContributorPrecision>,
    /// Signals up for review because of their false positives.
    pub flagged_signals: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContributorPrecision {
    pub party_id: String,
    pub tally: Tally,
    pub precision: Option<f64>,
}

async fn signal_tally(tx: &mut Tx, signal: &str) -> Result<Tally> {
    let rows = sqlx::query(
        "SELECT verdict, COUNT(*) AS n FROM match_feedback WHERE signal_id = $1 \
         AND superseded_by IS NULL GROUP BY verdict",
    )
    .bind(signal)
    .fetch_all(&mut **tx)
    .await?;
    let mut t = Tally::default();
    for r in rows {
        let n = u64::try_from(r.try_get::<i64, _>("n")?).map_err(Error::corrupt)?;
        match Verdict::parse(&r.try_get::<String, _>("verdict")?).map_err(Error::corrupt)? {
            Verdict::Confirmed => t.confirmed = n,
            Verdict::FalsePositive => t.false_positives = n,
        }
    }
    Ok(t)
}

impl Store {
    /// Create a bank (authority admin or officer).
    pub async fn create_bank(&self, by: &Principal, input: BankInput) -> Result<BankView> {
        require(by, None, BankAction::Manage)?;
        let s = BankSettings::create(input)?;
        let mut tx = self.write().await?;
        check_parties(&mut tx, &s).await?;
        name_taken(&mut tx, &s.name, "").await?;
        let now = self.now();
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO banks (id, name, description, enabled, pdq_threshold, shared_with, contributors, \
             review_after, seq, created_at, created_by, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $9)",
        )
        .bind(&id)
        .bind(&s.name)
        .bind(&s.description)
        .bind(i64::from(s.enabled))
        .bind(i64::from(s.pdq_threshold))
        .bind(canonical::to_string(&json!(s.shared_with))?)
        .bind(canonical::to_string(&json!(s.contributors))?)
        .bind(i64::from(s.review_after))
        .bind(now.unix_millis())
        .bind(by.token_id.to_string())
        .execute(&mut *tx)
        .await?;
        Event::about(EventType::BankCreated, "bank", &id, to_json(&s)?)
            .append(&mut tx, now, &by.actor())
            .await?;
        let b = load_bank(&mut *tx, &id).await?;
        tx.commit().await?;
        Ok(b)
    }

    /// Change a bank's settings (authority admin or officer).
    pub async fn update_bank(
        &self,
        by: &Principal,
        id: &str,
        input: BankInput,
    ) -> Result<BankView> {
        let mut tx = self.write().await?;
        let b = load_bank(&mut *tx, id).await?;
        require(by, Some(&b), BankAction::Manage)?;
        let before = b.settings();
        let s = before.change(input)?;
        check_parties(&mut tx, &s).await?;
        name_taken(&mut tx, &s.name, id).await?;
        let now = self.now();
        sqlx::query(
            "UPDATE banks SET name = $1, description = $2, enabled = $3, pdq_threshold = $4, shared_with = $5, \
             contributors = $6, review_after = $7, changed_at = $8 WHERE id = $9",
        )
        .bind(&s.name)
        .bind(&s.description)
        .bind(i64::from(s.enabled))
        .bind(i64::from(s.pdq_threshold))
        .bind(canonical::to_string(&json!(s.shared_with))?)
        .bind(canonical::to_string(&json!(s.contributors))?)
        .bind(i64::from(s.review_after))
        .bind(now.unix_millis())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Event::about(EventType::BankUpdated, "bank", id, to_json(&s)?)
            .before(to_json(&before)?)
            .append(&mut tx, now, &by.actor())
            .await?;
        let b = load_bank(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(b)
    }

    /// Banks `by` may see.
    pub async fn list_banks(&self, by: &Principal) -> Result<Vec<BankView>> {
        let rows = sqlx::query(&format!(
            "SELECT {BANK_COLUMNS} FROM banks b ORDER BY b.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let b = bank_from_row(r)?;
            if require(by, Some(&b), BankAction::Read).is_ok() {
                out.push(b.for_viewer(by));
            }
        }
        Ok(out)
    }

    /// One bank, if `by` may see it (else a 404).
    pub async fn get_bank(&self, by: &Principal, id: &str) -> Result<BankView> {
        let b = load_bank(&self.pool, id).await?;
        require(by, Some(&b), BankAction::Read)?;
        Ok(b.for_viewer(by))
    }

    /// Add signals to a bank in one transaction, each with its audit event
    /// and its sequence number. A live signal of the same type and value
    /// already in the bank is a 409 naming it.
    pub async fn add_signals(
        &self,
        by: &Principal,
        bank: &str,
        signals: Vec<NewSignal>,
    ) -> Result<Vec<SignalView>> {
        let mut tx = self.write().await?;
        let b = load_bank(&mut *tx, bank).await?;
        require(by, Some(&b), BankAction::AddSignal)?;
        let now = self.now();
        // the chain lock is held: the bank's sequence cannot move under us
        let first = b.seq + 1;
        let mut seq = b.seq;
        let mut bases: std::collections::HashMap<(String, String), LegalBasis> =
            std::collections::HashMap::new();
        let mut record = Vec::with_capacity(signals.len());
        for (i, n) in signals.into_iter().enumerate() {
            let key = (n.source.kind.clone(), n.source.id.clone());
            let legal = match bases.get(&key) {
                Some(l) => l.clone(),
                None => {
                    let l = legal_basis_of(&mut tx, by, &n.source)
                        .await
                        .map_err(|e| match e {
                            Error::Domain(d) => Error::Domain(d.within(&format!("signals[{i}]"))),
                            other => other,
                        })?;
                    bases.insert(key, l.clone());
                    l
                }
            };
            let kind = n.signal.kind().as_str();
            let value = n.signal.to_string();
            if let Some(row) = sqlx::query(
                "SELECT id FROM bank_signals WHERE bank_id = $1 AND kind = $2 AND value = $3 AND removed_at IS NULL",
            )
            .bind(bank)
            .bind(kind)
            .bind(&value)
            .fetch_optional(&mut *tx)
            .await?
            {
                return Err(Error::Conflict(format!(
                    "signals[{i}]: this {kind} is already in the bank as signal {}",
                    row.try_get::<String, _>("id")?
                )));
            }
            seq += 1;
            let id = uuid::Uuid::now_v7().to_string();
            sqlx::query(
                "INSERT INTO bank_signals (id, bank_id, kind, value, quality, category, tier, grp, source_type, source_id, \
                 legal_basis_reference, legal_basis_text, added_by, added_party, added_at, added_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&id)
            .bind(bank)
            .bind(kind)
            .bind(&value)
            .bind(n.quality.map(i64::from))
            .bind(n.labels.category.clone())
            .bind(n.labels.tier.clone())
            .bind(n.labels.group.clone())
            .bind(&n.source.kind)
            .bind(&n.source.id)
            .bind(&legal.reference)
            .bind(&legal.text)
            .bind(by.token_id.to_string())
            .bind(by.party_id.to_string())
            .bind(now.unix_millis())
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO bank_changes (bank_id, seq, op, signal_id, at) VALUES ($1, $2, 'add', $3, $4)")
                .bind(bank)
                .bind(seq)
                .bind(&id)
                .bind(now.unix_millis())
                .execute(&mut *tx)
                .await?;
            record.push(
                json!({"id": id, "seq": seq, "type": kind, "value": value, "source": n.source}),
            );
        }
        sqlx::query("UPDATE banks SET seq = $1, changed_at = $2 WHERE id = $3")
            .bind(seq)
            .bind(now.unix_millis())
            .bind(bank)
            .execute(&mut *tx)
            .await?;
        // one event for the batch, naming every signal and its sequence number
        Event::about(
            EventType::SignalAdded,
            "bank",
            bank,
            json!({"first_seq": first, "last_seq": seq, "signals": record}),
        )
        .append(&mut tx, now, &by.actor())
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {SIGNAL_COLUMNS} FROM bank_signals s WHERE s.bank_id = $1 AND s.added_seq >= $2 ORDER BY s.added_seq"
        ))
        .bind(bank)
        .bind(first)
        .fetch_all(&mut *tx)
        .await?;
        let out = rows
            .iter()
            .map(signal_from_row)
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(out)
    }

    /// Tombstone a signal (authority admin or officer): it stays on record,
    /// marked removed, and stops matching; the feed carries the tombstone.
    pub async fn remove_signal(
        &self,
        by: &Principal,
        bank: &str,
        signal: &str,
        reason: &str,
    ) -> Result<SignalView> {
        let reason = tapis_core::party::bounded_text("reason", reason, 3, 2000)?;
        let mut tx = self.write().await?;
        let b = load_bank(&mut *tx, bank).await?;
        require(by, Some(&b), BankAction::RemoveSignal)?;
        let s = load_signal(&mut tx, signal).await?;
        if s.bank_id != bank {
            return Err(Error::NotFound("signal"));
        }
        if s.removed_at.is_some() {
            return Err(Error::Conflict("this signal is already removed".into()));
        }
        let now = self.now();
        let seq = next_seq(&mut tx, bank, now).await?;
        sqlx::query(
            "UPDATE bank_signals SET removed_at = $1, removed_by = $2, removed_seq = $3, removed_reason = $4 \
             WHERE id = $5 AND removed_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(by.token_id.to_string())
        .bind(seq)
        .bind(&reason)
        .bind(signal)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO bank_changes (bank_id, seq, op, signal_id, at) VALUES ($1, $2, 'remove', $3, $4)")
            .bind(bank)
            .bind(seq)
            .bind(signal)
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
        Event::about(
            EventType::SignalRemoved,
            "signal",
            signal,
            json!({"bank_id": bank, "seq": seq, "reason": reason}),
        )
        .before(json!({"removed": false}))
        .append(&mut tx, now, &by.actor())
        .await?;
        let s = load_signal(&mut tx, signal).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// A platform's verdict on a match of `signal`. Each platform counts
    /// once per signal: its new verdict supersedes its earlier one (kept,
    /// marked `superseded_by`; core's `Tally::revise`). The verdict that
    /// puts the signal up for review (core's `Tally::needs_review` with the
    /// bank's `review_after`) also records that, with its own event.
    pub async fn match_feedback(
        &self,
        by: &Principal,
        signal: &str,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<FeedbackAnswer> {
        let note = note
            .map(|n| tapis_core::party::bounded_text("note", &n, 0, 2000))
            .transpose()?;
        let mut tx = self.write().await?;
        let s = load_signal(&mut tx, signal).await?;
        let b = load_bank(&mut *tx, &s.bank_id)
            .await
            .map_err(|_| Error::NotFound("signal"))?;
        require(by, Some(&b), BankAction::Feedback).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("signal"),
            other => other,
        })?;
        let platform = by.party_id.to_string();
        let before = signal_tally(&mut tx, signal).await?;
        let previous = sqlx::query(
            "SELECT id, verdict FROM match_feedback WHERE signal_id = $1 AND platform_id = $2 \
             AND superseded_by IS NULL",
        )
        .bind(signal)
        .bind(&platform)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| -> Result<ReplacedVerdict> {
            Ok(ReplacedVerdict {
                id: r.try_get("id")?,
                verdict: Verdict::parse(&r.try_get::<String, _>("verdict")?)
                    .map_err(Error::corrupt)?,
            })
        })
        .transpose()?;
        let now = self.now();
        let id = uuid::Uuid::now_v7().to_string();
        if let Some(p) = &previous {
            sqlx::query("UPDATE match_feedback SET superseded_by = $1 WHERE id = $2")
                .bind(&id)
                .bind(&p.id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO match_feedback (id, signal_id, bank_id, platform_id, verdict, note, token_id, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(signal)
        .bind(&s.bank_id)
        .bind(&platform)
        .bind(verdict.as_str())
        .bind(note.clone())
        .bind(by.token_id.to_string())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        let mut after = before;
        after.revise(previous.as_ref().map(|p| p.verdict), verdict);
        Event::about(
            EventType::SignalFeedback,
            "signal",
            signal,
            json!({"feedback_id": id, "verdict": verdict, "note": note, "tally": after,
                   "replaces": previous.as_ref().map(|p| json!({"id": p.id, "verdict": p.verdict}))}),
        )
        .append(&mut tx, now, &by.actor())
        .await?;
        let mut flagged = s.review_flagged_at.is_some();
        if !flagged && crosses_into_review(before, after, b.review_after) {
            sqlx::query("UPDATE bank_signals SET review_flagged_at = $1 WHERE id = $2")
                .bind(now.unix_millis())
                .bind(signal)
                .execute(&mut *tx)
                .await?;
            Event::about(
                EventType::SignalFlaggedForReview,
                "signal",
                signal,
                json!({"bank_id": s.bank_id, "tally": after, "review_after": b.review_after}),
            )
            .append(&mut tx, now, &by.actor())
            .await?;
            flagged = true;
        }
        tx.commit().await?;
        Ok(FeedbackAnswer {
            id,
            signal_id: signal.to_owned(),
            verdict,
            replaces: previous,
            tally: after,
            flagged_for_review: flagged,
        })
    }

    /// A bank's precision from the platforms' verdicts, and per
    /// contributor (the party that added the signal).
    pub async fn bank_precision(&self, by: &Principal, bank: &str) -> Result<Precision> {
        let b = load_bank(&self.pool, bank).await?;
        require(by, Some(&b), BankAction::Read)?;
        let rows = sqlx::query(
            "SELECT s.added_party, f.verdict, COUNT(*) AS n FROM match_feedback f \
             JOIN bank_signals s ON s.id = f.signal_id WHERE f.bank_id = $1 AND f.superseded_by IS NULL \
             GROUP BY s.added_party, f.verdict \
             ORDER BY s.added_party",
        )
        .bind(bank)
        .fetch_all(&self.pool)
        .await?;
        let mut total = Tally::default();
        let mut per: Vec<(String, Tally)> = Vec::new();
        for r in rows {
            let party: String = r.try_get("added_party")?;
            let n = u64::try_from(r.try_get::<i64, _>("n")?).map_err(Error::corrupt)?;
            let verdict =
                Verdict::parse(&r.try_get::<String, _>("verdict")?).map_err(Error::corrupt)?;
            if per.last().is_none_or(|(p, _)| *p != party) {
                per.push((party, Tally::default()));
            }
            if let Some((_, t)) = per.last_mut() {
                for tally in [t, &mut total] {
                    match verdict {
                        Verdict::Confirmed => tally.confirmed += n,
                        Verdict::FalsePositive => tally.false_positives += n,
                    }
                }
            }
        }
        let me = by.party_id.to_string();
        let contributors = per
            .into_iter()
            .filter(|(p, _)| {
                by.role.reads_everything() || (by.party_kind == PartyKind::Flagger && *p == me)
            })
            .map(|(party_id, tally)| ContributorPrecision {
                party_id,
                precision: tally.precision(),
                tally,
            })
            .collect();
        let flagged = sqlx::query(
            "SELECT id FROM bank_signals WHERE bank_id = $1 AND review_flagged_at IS NOT NULL ORDER BY review_flagged_at, id",
        )
        .bind(bank)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Precision {
            bank_id: bank.to_owned(),
            precision: total.precision(),
            tally: total,
            contributors,
            flagged_signals: flagged,
        })
    }
}
