//! Zone digests (ZONEMD, RFC 8976): each serial's digest kept once with
//! the `rpz.digest` audit event that logs it (a leaf of the transparency
//! log), and the readers of the kept digests.

use super::*;

/// A zone digest (ZONEMD, RFC 8976) as kept and logged: one per serial and
/// zone settings, with the audit event that logged it and where that event
/// sits in the transparency log, so anyone can check the leaf.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneDigestRow {
    /// The zone version (its SOA serial modulo 2^32).
    pub serial: i64,
    /// 1: SIMPLE.
    pub scheme: i64,
    /// 1: SHA-384.
    pub algorithm: i64,
    /// The digest, lower-case hex (96 characters for SHA-384).
    pub digest: String,
    /// A fingerprint of the zone settings the digest covers besides the
    /// records (zone name, SOA, TTL, block page, explanations).
    pub params: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The `rpz.digest` audit event, whole: its chain hash can be
    /// recomputed from it, and its leaf from that hash and `leaf.salt`.
    pub event: crate::AuditEvent,
    pub leaf: crate::tlog::LeafEntry,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Store {
    /// Keep and log the digest of `serial` under zone settings `params`,
    /// once: the first digest recorded for a (serial, params) stays, with
    /// its `rpz.digest` audit event. A second, different digest for the
    /// same pair is refused (a conflict: the zone served under one serial
    /// changed). Returns the digest kept.
    pub async fn record_rpz_digest(
        &self,
        serial: i64,
        params: &str,
        scheme: u8,
        algorithm: u8,
        digest: &str,
    ) -> Result<String> {
        if !is_lower_hex(digest, 96) || !is_lower_hex(params, 32) || serial < 0 {
            return Err(Error::Domain(tapis_core::Error::invalid(
                "digest",
                "a SHA-384 digest is 96 lower-case hex digits, the settings fingerprint 32",
            )));
        }
        let mut tx = self.write().await?;
        let kept: Option<String> =
            sqlx::query("SELECT digest FROM rpz_digests WHERE serial = $1 AND params = $2")
                .bind(serial)
                .bind(params)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("digest"))
                .transpose()?;
        if let Some(kept) = kept {
            tx.rollback().await?;
            if kept != digest {
                tracing::error!(serial, %kept, computed = %digest, "a second digest for one serial: the zone changed without a new serial");
                return Err(Error::Conflict(format!(
                    "serial {serial} already has digest {kept}"
                )));
            }
            return Ok(kept);
        }
        let now = self.now();
        let seq = audit::append(
            &mut tx,
            now,
            &Actor::system("rpz primary"),
            EventType::RpzDigest,
            ("zone", "rpz"),
            Value::Null,
            json!({"serial": serial, "scheme": scheme, "algorithm": algorithm, "digest": digest, "params": params}),
        )
        .await?;
        sqlx::query(
            "INSERT INTO rpz_digests (serial, params, scheme, algorithm, digest, created_at, event_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(serial)
        .bind(params)
        .bind(i64::from(scheme))
        .bind(i64::from(algorithm))
        .bind(digest)
        .bind(now.unix_millis())
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(digest.to_owned())
    }

    /// The digest kept for `serial` under settings `params`, if any.
    pub async fn rpz_digest(&self, serial: i64, params: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT digest FROM rpz_digests WHERE serial = $1 AND params = $2")
                .bind(serial)
                .bind(params)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("digest"))
                .transpose()?,
        )
    }

    /// Digests of serials after `since_serial`, oldest first, at most
    /// `limit` (1 to 1,000), each with its audit event and log leaf.
    pub async fn rpz_digests_since(
        &self,
        since_serial: i64,
        limit: i64,
    ) -> Result<Vec<ZoneDigestRow>> {
        let limit = limit.clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT d.serial, d.scheme, d.algorithm, d.digest, d.params, d.created_at, d.event_seq, s.salt \
             FROM rpz_digests d JOIN tlog_salts s ON s.seq = d.event_seq \
             WHERE d.serial > $1 ORDER BY d.serial, d.event_seq LIMIT $2",
        )
        .bind(since_serial)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.try_get("event_seq")?;
            let event = sqlx::query(&format!(
                "SELECT {} FROM audit_events WHERE seq = $1",
                audit::COLUMNS
            ))
            .bind(seq)
            .fetch_one(&self.pool)
            .await?;
            let event = audit::event_from_row(&event)?;
            out.push(ZoneDigestRow {
                serial: r.try_get("serial")?,
                scheme: r.try_get("scheme")?,
                algorithm: r.try_get("algorithm")?,
                digest: r.try_get("digest")?,
                params: r.try_get("params")?,
                created_at: Timestamp::from_unix_millis(r.try_get("created_at")?),
                leaf: crate::tlog::LeafEntry {
                    seq,
                    leaf_index: tapis_core::tlog::leaf::index_of(seq),
                    salt: r.try_get("salt")?,
                    event_hash: Some(event.hash.clone()),
                },
                event,
            });
        }
        Ok(out)
    }
}
