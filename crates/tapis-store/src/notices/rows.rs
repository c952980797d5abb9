//! Reading notices: the columns, row decoding, loading a notice with its
//! items inside a transaction, and the signed document's content.

use super::*;

pub(crate) const NOTICE_COLUMNS: &str = "id, state, issuer_party_id, issuer_label, platform_id, category, \
    taxonomy_version, urgency, legal_basis_reference, legal_basis_text, explanation, \
    territorial_scope, may_notify_user, sla_version, due_at, created_at, submitted_at, \
    delivered_at, acknowledged_at, closed_at, document, document_sha256, trusted_flagger";

pub(crate) const ITEM_COLUMNS: &str = "i.id, i.notice_id, i.kind, i.value, i.normalized, i.native_id, \
    i.evidence, i.state, i.reason, i.decided_at, i.duplicate_of, d.notice_id AS dup_notice_id";

pub(crate) fn opt_ts(row: &AnyRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)?
        .map(Timestamp::from_unix_millis))
}

pub(crate) fn notice_from_row(row: &AnyRow) -> Result<Notice> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(Notice {
        id: NoticeId::parse(&s("id")?).map_err(Error::corrupt)?,
        state: NoticeState::parse(&s("state")?).map_err(Error::corrupt)?,
        issuer_party_id: PartyId::parse(&s("issuer_party_id")?).map_err(Error::corrupt)?,
        issuer_label: s("issuer_label")?,
        platform_id: PartyId::parse(&s("platform_id")?).map_err(Error::corrupt)?,
        category: s("category")?,
        taxonomy_version: s("taxonomy_version")?,
        urgency: Urgency::parse(&s("urgency")?).map_err(Error::corrupt)?,
        legal_basis: LegalBasisView {
            reference: s("legal_basis_reference")?,
            text: s("legal_basis_text")?,
        },
        explanation: s("explanation")?,
        territorial_scope: serde_json::from_str(&s("territorial_scope")?)
            .map_err(Error::corrupt)?,
        may_notify_user: row.try_get::<i64, _>("may_notify_user")? != 0,
        trusted_flagger: row.try_get::<i64, _>("trusted_flagger")? != 0,
        sla_version: row.try_get("sla_version")?,
        due_at: opt_ts(row, "due_at")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        submitted_at: opt_ts(row, "submitted_at")?,
        delivered_at: opt_ts(row, "delivered_at")?,
        acknowledged_at: opt_ts(row, "acknowledged_at")?,
        closed_at: opt_ts(row, "closed_at")?,
        document_sha256: row.try_get("document_sha256")?,
        signed_document: row
            .try_get::<Option<String>, _>("document")?
            .map(|d| serde_json::from_str(&d).map_err(Error::corrupt))
            .transpose()?,
        items: Vec::new(),
    })
}

pub(crate) fn item_from_row(row: &AnyRow) -> Result<(NoticeId, Item)> {
    let s = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    let notice_id = NoticeId::parse(&s("notice_id")?).map_err(Error::corrupt)?;
    let duplicate_of = match (
        row.try_get::<Option<String>, _>("duplicate_of")?,
        row.try_get::<Option<String>, _>("dup_notice_id")?,
    ) {
        (Some(item), Some(notice)) => Some(DuplicateRef {
            item_id: ItemId::parse(&item).map_err(Error::corrupt)?,
            notice_id: NoticeId::parse(&notice).map_err(Error::corrupt)?,
        }),
        _ => None,
    };
    let evidence: Vec<EvidenceRow> =
        serde_json::from_str(&s("evidence")?).map_err(Error::corrupt)?;
    Ok((
        notice_id,
        Item {
            id: ItemId::parse(&s("id")?).map_err(Error::corrupt)?,
            kind: ItemKind::parse(&s("kind")?).map_err(Error::corrupt)?,
            value: s("value")?,
            normalized: s("normalized")?,
            native_id: row.try_get("native_id")?,
            evidence: evidence
                .into_iter()
                .map(|e| {
                    Ok(EvidenceView {
                        sha256: e.sha256,
                        description: e.description,
                        captured_at: Timestamp::parse("captured_at", &e.captured_at)
                            .map_err(Error::corrupt)?,
                    })
                })
                .collect::<Result<_>>()?,
            state: ItemState::parse(&s("state")?).map_err(Error::corrupt)?,
            reason: row.try_get("reason")?,
            decided_at: opt_ts(row, "decided_at")?,
            duplicate_of,
        },
    ))
}

#[derive(serde::Deserialize)]
pub(crate) struct EvidenceRow {
    sha256: String,
    description: String,
    captured_at: String,
}

/// The notice's content as signed: everything the platform is asked to act
/// on, nothing that changes afterwards (state, decisions).
pub(crate) fn notice_document(n: &Notice) -> Value {
    let mut doc = json!({
        "type": "tapis.notice.v1",
        "id": n.id.to_string(),
        "issuer": {"party_id": n.issuer_party_id.to_string(), "label": n.issuer_label},
        "platform_id": n.platform_id.to_string(),
        "category": n.category,
        "taxonomy_version": n.taxonomy_version,
        "urgency": n.urgency,
        "legal_basis": {"reference": n.legal_basis.reference, "text": n.legal_basis.text},
        "explanation": n.explanation,
        "territorial_scope": n.territorial_scope,
        "may_notify_user": n.may_notify_user,
        "submitted_at": n.submitted_at.map(|t| t.to_string()),
        "items": n.items.iter().map(|i| json!({
            "id": i.id.to_string(),
            "kind": i.kind,
            "value": i.value,
            "normalized": i.normalized,
            "native_id": i.native_id,
            "evidence": i.evidence.iter().map(|e| json!({
                "sha256": e.sha256, "description": e.description, "captured_at": e.captured_at.to_string(),
            })).collect::<Vec<_>>(),
            "duplicate_of": i.duplicate_of.as_ref().map(|d| json!({"item_id": d.item_id.to_string(), "notice_id": d.notice_id.to_string()})),
        })).collect::<Vec<_>>(),
    });
    // only when set, so every other notice's document is as it was
    if n.trusted_flagger {
        doc["trusted_flagger"] = json!(true);
    }
    doc
}

pub(crate) async fn load_notice(tx: &mut Tx, id: NoticeId) -> Result<Notice> {
    let row = sqlx::query(&format!(
        "SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("notice"))?;
    let mut n = notice_from_row(&row)?;
    let mut items = load_items(tx, &[id]).await?;
    n.items = items.remove(&id).unwrap_or_default();
    Ok(n)
}

/// Several notices with their items, in two queries (for the scheduler,
/// which fires many steps at once).
pub(crate) async fn load_notices(
    tx: &mut Tx,
    ids: &[NoticeId],
) -> Result<HashMap<NoticeId, Notice>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT {NOTICE_COLUMNS} FROM notices WHERE id IN ({})",
        placeholders(ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.to_string());
    }
    for row in q.fetch_all(&mut **tx).await? {
        let n = notice_from_row(&row)?;
        out.insert(n.id, n);
    }
    let mut items = load_items(tx, ids).await?;
    for n in out.values_mut() {
        n.items = items.remove(&n.id).unwrap_or_default();
    }
    Ok(out)
}

/// `$1, $2, … $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn load_items(
    conn: &mut sqlx::AnyConnection,
    ids: &[NoticeId],
) -> Result<HashMap<NoticeId, Vec<Item>>> {
    let mut out: HashMap<NoticeId, Vec<Item>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM notice_items i LEFT JOIN notice_items d ON d.id = i.duplicate_of \
         WHERE i.notice_id IN ({}) ORDER BY i.notice_id, i.position",
        placeholders(ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.to_string());
    }
    for row in q.fetch_all(&mut *conn).await? {
        let (nid, item) = item_from_row(&row)?;
        out.entry(nid).or_default().push(item);
    }
    Ok(out)
}

/// What a platform signs to acknowledge a notice with its own key.
pub fn acknowledgement_statement(n: &Notice) -> Value {
    json!({
        "type": "tapis.acknowledgement.v1",
        "notice_id": n.id.to_string(),
        "notice_sha256": n.document_sha256,
    })
}

/// A party's display name, for signed records.
pub(crate) async fn party_name(tx: &mut Tx, party: PartyId) -> Result<String> {
    Ok(sqlx::query("SELECT name FROM parties WHERE id = $1")
        .bind(party.to_string())
        .fetch_one(&mut **tx)
        .await?
        .try_get("name")?)
}
