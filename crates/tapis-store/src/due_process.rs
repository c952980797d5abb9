//! Due process on the blocking path, in the store: the RPZ compiler's
//! publication check (an order that needs an independent authorisation
//! reaches the zone only with a valid one, or as an emergency for a
//! limited time), authorisations signed by authoriser parties, platforms
//! told of orders that would affect them and their responses.
//!
//! The check lives where the zone is compiled (order activation), not in
//! the API: an order that arrives by any path (an import, a direct insert)
//! is held to it. The zone is recomputed only from orders the check let
//! through (`order_publications`).

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::due_process::{DueProcessPolicy, Sensitivity, authorisation_statement};
use tapis_core::order::OrderTarget;
use tapis_core::party::PartyKind;
use tapis_core::publication::{
    self, AuthorisationDecision, DecisionEffect, Publication, ValidAuthorisation,
};
use tapis_core::role::{Action, Role};
use tapis_core::target::DomainName;
use tapis_core::{PartyId, Timestamp, canonical};

use crate::orders::Order;
use crate::{Error, Principal, Result, Store, audit::Event};

pub(crate) type Tx = Transaction<'static, Any>;

/// An order's due-process record, as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueProcess {
    /// Why the order needs an independent authorisation (empty: it does not).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub needs_authorisation: Vec<Sensitivity>,
    pub emergency: bool,
    /// Platforms whose names the order would affect; they were told when it
    /// was proposed.
    pub platforms: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub platforms_notified_at: Option<Timestamp>,
    /// SHA-256 of the order's content: what an authoriser signs.
    pub order_sha256: String,
    /// The statement an authoriser signs to authorise it (RFC 8785 JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub statement_to_sign: Value,
    pub authorisations: Vec<AuthorisationView>,
    pub responses: Vec<ResponseView>,
    /// How the order reached the zone (absent until it did).
    pub publication: Option<PublicationView>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorisationView {
    pub id: String,
    pub party_id: String,
    pub token_label: String,
    pub decision: String,
    pub reasons: String,
    pub order_sha256: String,
    /// tapis's signed receipt of the authoriser's signed statement.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub receipt: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseView {
    pub id: String,
    pub party_id: String,
    pub token_label: String,
    /// `comply`, `dispute` or `clarification`.
    pub kind: String,
    pub text: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicationView {
    pub basis: String,
    pub authorisation_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub until: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub published_at: Timestamp,
}

/// Every registered platform's domains: (party id, domain).
pub(crate) async fn platform_domains(tx: &mut Tx) -> Result<Vec<(String, DomainName)>> {
    let rows = sqlx::query("SELECT id, domains FROM parties WHERE kind = 'platform'")
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let domains: Vec<String> =
            serde_json::from_str(&r.try_get::<String, _>("domains")?).map_err(Error::corrupt)?;
        for d in domains {
            out.push((id.clone(), DomainName::parse(&d).map_err(Error::corrupt)?));
        }
    }
    Ok(out)
}

/// Stream an order's targets (normalised names as stored, in name order)
/// through `f`, which returns false to stop early. Constant memory, so a
/// national list of millions of names is fine.
async fn each_target(tx: &mut Tx, id: &str, mut f: impl FnMut(&str, bool) -> bool) -> Result<()> {
    use futures_util::TryStreamExt;
    let mut rows = sqlx::query(
        "SELECT name, include_subdomains FROM order_targets WHERE order_id = $1 ORDER BY name",
    )
    .bind(id)
    .fetch(&mut **tx);
    while let Some(r) = rows.try_next().await? {
        let name: String = r.try_get("name")?;
        let subs = r.try_get::<i64, _>("include_subdomains")? != 0;
        if !f(&name, subs) {
            break;
        }
    }
    Ok(())
}

/// SHA-256 of the order's content (targets, action, category, legal basis,
/// dates, emergency flag): an authorisation is for exactly this.
pub(crate) async fn order_sha256(tx: &mut Tx, o: &Order) -> Result<String> {
    use sha2::Digest;
    // the targets as lines (`*.name` with subdomains), hashed as they stream
    let mut targets = sha2::Sha256::new();
    each_target(tx, &o.id, |name, subs| {
        if subs {
            targets.update(b"*.");
        }
        targets.update(name.as_bytes());
        targets.update(b"\n");
        true
    })
    .await?;
    let targets = hex::encode(targets.finalize());
    let emergency = order_emergency(tx, &o.id).await?;
    tapis_core::sign::content_hash(&json!({
        "id": o.id,
        "targets_sha256": targets,
        "action": o.action,
        "category": o.category,
        "legal_basis": {"reference": o.legal_basis.reference, "text": o.legal_basis.text},
        "explanation": o.explanation,
        "effective_at": o.effective_at.to_string(),
        "expires_at": o.expires_at.to_string(),
        "review_at": o.review_at.to_string(),
        "emergency": emergency,
    }))
    .map_err(Into::into)
}

async fn order_emergency(tx: &mut Tx, id: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT emergency FROM orders WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>("emergency")?
        != 0)
}

/// The latest authorisation decision that still holds for the order as it
/// is: the signature verifies against the key it was made with, that key
/// was enrolled on the host for that authoriser party (`authoriser_keys`:
/// a key written by any other path counts for nothing), and the content
/// hash matches.
async fn valid_decision(tx: &mut Tx, o: &Order) -> Result<Option<ValidAuthorisation>> {
    let rows = sqlx::query(
        "SELECT a.id, a.decision, a.reasons, a.order_sha256, a.public_key, a.signature, p.kind \
         FROM order_authorisations a JOIN parties p ON p.id = a.party_id \
         JOIN authoriser_keys k ON k.party_id = a.party_id AND k.public_key = a.public_key \
         WHERE a.order_id = $1 ORDER BY a.created_at DESC, a.id DESC",
    )
    .bind(&o.id)
    .fetch_all(&mut **tx)
    .await?;
    let sha = order_sha256(tx, o).await?;
    for r in rows {
        let kind: String = r.try_get("kind")?;
        let decision: String = r.try_get("decision")?;
        let their_sha: String = r.try_get("order_sha256")?;
        if kind != PartyKind::Authoriser.as_str() || their_sha != sha {
            continue;
        }
        let Ok(key) = tapis_core::sign::parse_public_key(
            "public_key",
            &r.try_get::<String, _>("public_key")?,
        ) else {
            continue;
        };
        let statement = authorisation_statement(&o.id, &sha, &decision);
        if tapis_core::sign::verify_detached(
            &key,
            &statement,
            &r.try_get::<String, _>("signature")?,
        )
        .is_err()
        {
            continue;
        }
        return Ok(Some(ValidAuthorisation {
            id: r.try_get("id")?,
            decision: AuthorisationDecision::parse(&decision).map_err(Error::corrupt)?,
            reasons: r.try_get("reasons")?,
        }));
    }
    Ok(None)
}

/// Why order `o` needs an independent authorisation (empty: it does not),
/// recomputed from its targets every time (a stored flag could have been
/// written by anyone), streaming, stopping at the first reason.
async fn sensitivity(
    tx: &mut Tx,
    policy: &DueProcessPolicy,
    o: &Order,
) -> Result<Vec<Sensitivity>> {
    let platforms = platform_domains(tx).await?;
    let index = tapis_core::due_process::SensitiveIndex::new(policy, &platforms);
    let mut reasons = Vec::new();
    let mut affected = Vec::new();
    each_target(tx, &o.id, |name, subs| {
        index.check(policy, name, subs, &mut reasons, &mut affected, 3);
        reasons.is_empty() && affected.is_empty()
    })
    .await?;
    Ok(reasons)
}

/// The compiler's check: may order `o` enter the zone at `now`? The facts
/// are gathered here; the precedence of bases is core's
/// (`tapis_core::publication::decide`).
pub(crate) async fn check_publication(
    tx: &mut Tx,
    policy: &DueProcessPolicy,
    now: Timestamp,
    o: &Order,
) -> Result<Publication> {
    let reasons = sensitivity(tx, policy, o).await?;
    // the authorisation costs a hash of every target: only when it matters
    let authorisation = if reasons.is_empty() {
        None
    } else {
        valid_decision(tx, o).await?
    };
    let emergency = order_emergency(tx, &o.id).await?;
    Ok(publication::decide(
        policy,
        now,
        &reasons,
        authorisation.as_ref(),
        emergency,
    ))
}

/// Record that the compiler let order `o` in.
pub(crate) async fn record_publication(
    tx: &mut Tx,
    now: Timestamp,
    o: &Order,
    p: &Publication,
) -> Result<()> {
    let Publication::Allowed {
        basis,
        authorisation_id,
        until,
    } = p
    else {
        return Ok(());
    };
    let basis = basis.as_str();
    sqlx::query("DELETE FROM order_publications WHERE order_id = $1")
        .bind(&o.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO order_publications (order_id, basis, authorisation_id, until, published_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&o.id)
    .bind(basis)
    .bind(authorisation_id.clone())
    .bind(until.map(|t| t.unix_millis()))
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Tell every affected platform about a proposed order: the draft, the
/// targets that touch it, the legal basis, and where to answer.
pub(crate) async fn tell_platforms(
    tx: &mut Tx,
    now: Timestamp,
    o: &Order,
    targets: &[OrderTarget],
    platforms: &[(String, DomainName)],
    affected: &[String],
    reasons: &[Sensitivity],
) -> Result<()> {
    for party in affected {
        let mine: Vec<&DomainName> = platforms
            .iter()
            .filter(|(p, _)| p == party)
            .map(|(_, d)| d)
            .collect();
        let touching: Vec<Value> = targets
            .iter()
            .filter(|t| {
                mine.iter()
                    .any(|d| t.name.is_within(d) || (t.include_subdomains && d.is_within(&t.name)))
            })
            .take(100)
            .map(|t| {
                json!({"name": t.name.as_str(), "include_subdomains": t.include_subdomains,
                       "touches": mine.iter().filter(|d| t.name.is_within(d) || (t.include_subdomains && d.is_within(&t.name))).map(|d| d.as_str()).collect::<Vec<_>>()})
            })
            .collect();
        sqlx::query("INSERT INTO order_platforms (order_id, party_id) VALUES ($1, $2)")
            .bind(&o.id)
            .bind(party)
            .execute(&mut **tx)
            .await?;
        let pid = PartyId::parse(party).map_err(Error::corrupt)?;
        crate::channel::enqueue(
            tx,
            now,
            pid,
            None,
            EventType::OrderProposed,
            json!({
                "order_id": o.id,
                "state": o.state,
                "action": o.action,
                "category": o.category,
                "legal_basis": {"reference": o.legal_basis.reference, "text": o.legal_basis.text},
                "explanation": o.explanation,
                "effective_at": o.effective_at.to_string(),
                "expires_at": o.expires_at.to_string(),
                "review_at": o.review_at.to_string(),
                "target_count": o.target_count,
                "blast_radius": {"targets_touching_you": touching, "needs_authorisation": reasons,
                                 "full": format!("/api/v1/orders/{}/blast-radius", o.id)},
                "respond": format!("/api/v1/orders/{}/responses", o.id),
            }),
        )
        .await?;
    }
    if !affected.is_empty() {
        sqlx::query("UPDATE orders SET platforms_notified_at = $1 WHERE id = $2")
            .bind(now.unix_millis())
            .bind(&o.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Tell every authoriser party (webhook or email, as for platforms).
pub(crate) async fn tell_authorisers(
    tx: &mut Tx,
    now: Timestamp,
    event: EventType,
    data: Value,
) -> Result<()> {
    let rows = sqlx::query("SELECT id FROM parties WHERE kind = 'authoriser'")
        .fetch_all(&mut **tx)
        .await?;
    for r in rows {
        let pid = PartyId::parse(&r.try_get::<String, _>("id")?).map_err(Error::corrupt)?;
        crate::channel::enqueue(tx, now, pid, None, event, data.clone()).await?;
    }
    Ok(())
}

/// Whether `party` is one of the platforms an order affects.
pub(crate) async fn affects(tx: &mut Tx, order: &str, party: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS x FROM order_platforms WHERE order_id = $1 AND party_id = $2")
            .bind(order)
            .bind(party)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

fn ts(r: &sqlx::any::AnyRow, c: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_millis(r.try_get(c)?))
}

/// The rows `sql` selects for order `id` (its one parameter), each read
/// by `read`.
async fn rows_for_order<T>(
    tx: &mut Tx,
    sql: &str,
    id: &str,
    read: fn(&AnyRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut **tx).await?;
    rows.iter().map(read).collect()
}

fn authorisation_from_row(r: &AnyRow) -> Result<AuthorisationView> {
    let receipt: String = r.try_get("receipt")?;
    Ok(AuthorisationView {
        id: r.try_get("id")?,
        party_id: r.try_get("party_id")?,
        token_label: r.try_get("token_label")?,
        decision: r.try_get("decision")?,
        reasons: r.try_get("reasons")?,
        order_sha256: r.try_get("order_sha256")?,
        receipt: serde_json::from_str(&receipt).map_err(Error::corrupt)?,
        created_at: ts(r, "created_at")?,
    })
}

fn response_from_row(r: &AnyRow) -> Result<ResponseView> {
    Ok(ResponseView {
        id: r.try_get("id")?,
        party_id: r.try_get("party_id")?,
        token_label: r.try_get("token_label")?,
        kind: r.try_get("kind")?,
        text: r.try_get("text")?,
        created_at: ts(r, "created_at")?,
    })
}

impl Store {
    /// An order's due-process record: why it needs authorisation, the
    /// platforms told, authorisations, responses, publication.
    pub async fn due_process(&self, id: &str) -> Result<DueProcess> {
        let mut tx = self.pool.begin().await?;
        let o = crate::orders::load_order_in(&mut tx, id).await?;
        let row = sqlx::query(
            "SELECT emergency, needs_authorisation, platforms_notified_at FROM orders WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let sha = order_sha256(&mut tx, &o).await?;
        let platforms = sqlx::query(
            "SELECT party_id FROM order_platforms WHERE order_id = $1 ORDER BY party_id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("party_id"))
        .collect::<std::result::Result<_, _>>()?;
        let authorisations = rows_for_order(
            &mut tx,
            "SELECT id, party_id, token_label, decision, reasons, order_sha256, receipt, created_at FROM order_authorisations WHERE order_id = $1 ORDER BY created_at, id",
            id,
            authorisation_from_row,
        )
        .await?;
        let responses = rows_for_order(
            &mut tx,
            "SELECT id, party_id, token_label, kind, text, created_at FROM order_responses WHERE order_id = $1 ORDER BY created_at, id",
            id,
            response_from_row,
        )
        .await?;
        let publication = sqlx::query("SELECT basis, authorisation_id, until, published_at FROM order_publications WHERE order_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| -> Result<PublicationView> {
                Ok(PublicationView {
                    basis: r.try_get("basis")?,
                    authorisation_id: r.try_get("authorisation_id")?,
                    until: r.try_get::<Option<i64>, _>("until")?.map(Timestamp::from_unix_millis),
                    published_at: ts(&r, "published_at")?,
                })
            })
            .transpose()?;
        tx.commit().await?;
        Ok(DueProcess {
            needs_authorisation: serde_json::from_str(
                &row.try_get::<String, _>("needs_authorisation")?,
            )
            .unwrap_or_default(),
            emergency: row.try_get::<i64, _>("emergency")? != 0,
            platforms,
            platforms_notified_at: row
                .try_get::<Option<i64>, _>("platforms_notified_at")?
                .map(Timestamp::from_unix_millis),
            statement_to_sign: authorisation_statement(&o.id, &sha, "authorise"),
            order_sha256: sha,
            authorisations,
            responses,
            publication,
        })
    }

    /// Whether a platform party is among those an order affects (platforms
    /// read only such orders).
    pub async fn order_affects(&self, id: &str, party: PartyId) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let yes = affects(&mut tx, id, &party.to_string()).await?;
        tx.commit().await?;
        Ok(yes)
    }

    /// An authoriser's decision on an order, signed with the key enrolled
    /// for its party on the host (`tapis authoriser enrol`): Ed25519 over
    /// the RFC 8785 form of `{"type":"tapis.authorisation.v1","order_id",
    /// "order_sha256","decision"}`. An authorised order whose time has
    /// come goes in force at once; an emergency order becomes a regular
    /// one. A refusal ends an order in force, and counts only for orders
    /// that need an authorisation or are emergencies (core's
    /// `publication::decision_effect`): refusing any other order is a
    /// conflict. Returns the order and tapis's signed receipt.
    pub async fn authorise_order(
        &self,
        by: &Principal,
        id: &str,
        decision: &str,
        reasons: &str,
        signature: &str,
    ) -> Result<(Order, Value)> {
        by.role.require(Action::AuthoriseOrder)?;
        if by.party_kind != PartyKind::Authoriser || by.role != Role::Authoriser {
            return Err(tapis_core::Error::Forbidden {
                who: format!("role {}", by.role.as_str()),
                action: Action::AuthoriseOrder.as_str().to_owned(),
            }
            .into());
        }
        let decided = AuthorisationDecision::parse(decision)?;
        let reasons = tapis_core::party::bounded_text("reasons", reasons, 1, 20_000)?;
        let mut tx = self.write().await?;
        let now = self.now();
        let mut o = crate::orders::load_order_in(&mut tx, id).await?;
        if o.state.is_terminal() {
            return Err(tapis_core::Error::IllegalTransition {
                entity: "order",
                state: o.state.as_str().to_owned(),
                action: "authorise".into(),
            }
            .into());
        }
        let needs = !sensitivity(&mut tx, &self.ctx.due_process, &o)
            .await?
            .is_empty();
        let effect = publication::decision_effect(
            decided,
            needs,
            order_emergency(&mut tx, &o.id).await?,
            o.state,
            o.effective_at <= now,
        )
        .map_err(|_| {
            Error::Conflict(
                "this order needs no independent authorisation and is no emergency: a refusal would count for nothing"
                    .into(),
            )
        })?;
        let key = crate::authorisers::current_key(&mut tx, by.party_id)
            .await?
            .ok_or_else(|| {
                tapis_core::Error::invalid(
                    "signature",
                    "no signing key is enrolled for this authoriser: the tapis host operator enrols it with \
                     `tapis authoriser enrol --name NAME --public-key KEY`",
                )
            })?;
        let vk = tapis_core::sign::parse_public_key("public_key", &key)?;
        let sha = order_sha256(&mut tx, &o).await?;
        let statement = authorisation_statement(&o.id, &sha, decision);
        tapis_core::sign::verify_detached(&vk, &statement, signature)?;
        let auth_id = uuid::Uuid::now_v7().to_string();
        let party_name = crate::notices::party_name(&mut tx, by.party_id).await?;
        let receipt = self.ctx.signer.seal(json!({
            "type": "tapis.authorisation_receipt.v1",
            "authorisation_id": auth_id,
            "statement": statement,
            "signature": signature.trim(),
            "kid": tapis_core::sign::key_id(vk.as_bytes()),
            "reasons": reasons,
            "by": {"party_id": by.party_id.to_string(), "party_name": party_name, "token_label": by.label},
            "at": now.to_string(),
        }))?;
        sqlx::query(
            "INSERT INTO order_authorisations (id, order_id, party_id, token_label, decision, reasons, order_sha256, public_key, signature, receipt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&auth_id)
        .bind(id)
        .bind(by.party_id.to_string())
        .bind(&by.label)
        .bind(decision)
        .bind(&reasons)
        .bind(&sha)
        .bind(key.trim())
        .bind(signature.trim())
        .bind(canonical::to_string(&receipt)?)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        Event::order(
            if decision == "authorise" {
                EventType::OrderAuthorised
            } else {
                EventType::OrderAuthorisationRefused
            },
            id,
            json!({"authorisation_id": auth_id, "order_sha256": sha, "reasons": reasons}),
        )
        .append(&mut tx, now, &by.actor())
        .await?;
        let actor = Actor::system("scheduler");
        let mut changed = false;
        match effect {
            DecisionEffect::Activate => {
                changed = crate::orders::activate_in(self, &mut tx, now, &actor, &mut o)
                    .await?
                    .is_some();
            }
            DecisionEffect::Confirm => {
                let p = check_publication(&mut tx, &self.ctx.due_process, now, &o).await?;
                record_publication(&mut tx, now, &o, &p).await?;
                crate::jobs::cancel(
                    &mut tx,
                    id,
                    Some(tapis_core::job::JobKind::OrderEmergencyLapse),
                )
                .await?;
            }
            DecisionEffect::End => {
                crate::orders::end(
                    &mut tx,
                    now,
                    &actor,
                    &mut o,
                    tapis_core::order::OrderEvent::Expire,
                    &format!("lapsed: the authoriser refused it ({reasons})"),
                )
                .await?;
                changed = true;
            }
            DecisionEffect::Record => {}
        }
        let o = crate::orders::load_order_in(&mut tx, id).await?;
        tx.commit().await?;
        if changed {
            self.signal();
        }
        Ok((o, receipt))
    }

    /// A platform's answer to an order that would affect it: `comply` (it
    /// will act on the underlying notices), `dispute`, or `clarification`
    /// (a question). Recorded for the authoriser and the approver, and on
    /// the audit log.
    pub async fn respond_to_order(
        &self,
        by: &Principal,
        id: &str,
        kind: &str,
        text: &str,
    ) -> Result<ResponseView> {
        by.role.require(Action::RespondToOrder)?;
        if !matches!(kind, "comply" | "dispute" | "clarification") {
            return Err(
                tapis_core::Error::invalid("kind", "use comply, dispute or clarification").into(),
            );
        }
        let text = tapis_core::party::bounded_text("text", text, 1, 20_000)?;
        let mut tx = self.write().await?;
        let now = self.now();
        let o = crate::orders::load_order_in(&mut tx, id).await?;
        if !affects(&mut tx, id, &by.party_id.to_string()).await? {
            return Err(Error::NotFound("order"));
        }
        if o.state.is_terminal() {
            return Err(tapis_core::Error::IllegalTransition {
                entity: "order",
                state: o.state.as_str().to_owned(),
                action: "respond".into(),
            }
            .into());
        }
        let rid = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO order_responses (id, order_id, party_id, token_label, kind, text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&rid)
            .bind(id)
            .bind(by.party_id.to_string())
            .bind(&by.label)
            .bind(kind)
            .bind(&text)
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
        Event::order(
            EventType::OrderPlatformResponded,
            id,
            json!({"response_id": rid, "kind": kind, "text": text}),
        )
        .append(&mut tx, now, &by.actor())
        .await?;
        tell_authorisers(
            &mut tx,
            now,
            EventType::OrderPlatformResponded,
            json!({"order_id": id, "platform_id": by.party_id.to_string(), "kind": kind, "text": text}),
        )
        .await?;
        tx.commit().await?;
        self.signal();
        Ok(ResponseView {
            id: rid,
            party_id: by.party_id.to_string(),
            token_label: by.label.clone(),
            kind: kind.to_owned(),
            text,
            created_at: now,
        })
    }
}
