//! An ISP's compliance: its acknowledged serials, the transfers and
//! NOTIFY answers observed from its resolvers (sync evidence), and the
//! probes that check what its resolvers answer.

use super::*;

/// One ISP's standing against the current zone.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Compliance {
    pub party_id: String,
    pub name: String,
    pub current_serial: i64,
    pub acknowledged_serial: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub acknowledged_at: Option<Timestamp>,
    /// `current`, `behind` (acknowledged an older serial) or `never`.
    pub status: &'static str,
    /// What tapis's primary saw the ISP's secondaries do.
    pub zone_sync: ZoneSync,
    /// The latest probe of each of the ISP's resolvers.
    pub probes: Vec<ProbeResult>,
}

/// An ISP's secondaries as the primary sees them: the serial they hold
/// (from their transfers and IXFR requests), their last SOA poll and the
/// last NOTIFY answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneSync {
    /// `in_sync` (holds the current serial), `behind`, or `never` (no
    /// transfer seen).
    pub status: &'static str,
    pub held_serial: Option<i64>,
    /// When the held serial was first transferred to the ISP.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub held_since: Option<Timestamp>,
    /// From the held serial's publication to its transfer, in ms: how long
    /// the ISP took to pick the change up.
    pub pickup_ms: Option<i64>,
    /// When the first serial the ISP lacks was published (if behind).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub behind_since: Option<Timestamp>,
    pub last_poll: Option<SyncEvent>,
    pub last_transfer: Option<SyncEvent>,
    pub last_notify: Option<SyncEvent>,
}

/// One thing the primary saw: a poll, a transfer or a NOTIFY answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncEvent {
    pub peer: String,
    /// `SOA`, `AXFR`, `IXFR`, `IXFR(AXFR)` or `NOTIFY`.
    pub kind: String,
    pub from_serial: Option<i64>,
    pub serial: i64,
    /// Transfer sent to the end; NOTIFY answered.
    pub complete: bool,
    /// NOTIFY: the answer's rcode or the error.
    pub detail: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
}

/// What the primary (or the NOTIFY sender) saw, to be matched to an ISP by
/// its TSIG key or its registered addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEvidence {
    pub peer: std::net::IpAddr,
    /// The TSIG key name (without the trailing dot).
    pub key: Option<String>,
    pub kind: SyncKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncKind {
    Poll {
        serial: i64,
    },
    Transfer {
        kind: String,
        from: Option<i64>,
        serial: i64,
        complete: bool,
    },
    Notify {
        serial: i64,
        answered: bool,
        detail: String,
    },
}

/// One probe of one resolver: a sample of blocked names and canaries.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeResult {
    pub resolver: String,
    pub serial: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub probed_at: Timestamp,
    pub enforced: i64,
    pub not_enforced: i64,
    pub overblocked: i64,
    pub unreachable: i64,
    /// Per name: what was asked and the verdict.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: Value,
}

/// Where ISPs' resolvers are, for the prober.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub party_id: String,
    pub resolvers: Vec<std::net::SocketAddr>,
}

impl Store {
    /// An ISP says it enforces the zone as of `serial`.
    pub async fn ack_serial(&self, by: &Principal, serial: i64) -> Result<Compliance> {
        let mut tx = self.write().await?;
        let current = crate::orders::current_serial(&mut tx).await?;
        if serial < 1 || serial > current {
            return Err(tapis_core::Error::invalid(
                "serial",
                format!("the zone's serials run from 1 to {current}"),
            )
            .into());
        }
        let now = self.now();
        sqlx::query("INSERT INTO rpz_acks (id, party_id, serial, acked_at, label) VALUES ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(by.party_id.to_string())
            .bind(serial)
            .bind(now.unix_millis())
            .bind(&by.label)
            .execute(&mut *tx)
            .await?;
        Event::party(
            EventType::RpzAcknowledged,
            by.party_id,
            json!({"serial": serial, "current": current}),
        )
        .append(&mut tx, now, &by.actor())
        .await?;
        tx.commit().await?;
        self.compliance()
            .await?
            .into_iter()
            .find(|c| c.party_id == by.party_id.to_string())
            .ok_or(Error::NotFound("isp"))
    }

    /// Every ISP against the current serial: its acknowledgements and the
    /// latest probe of each of its resolvers (latest by id: ids are
    /// time-ordered, and a simulated clock can give many probes one time).
    pub async fn compliance(&self) -> Result<Vec<Compliance>> {
        let current = crate::orders::current_serial(&mut *self.pool.acquire().await?).await?;
        let rows = sqlx::query(
            "SELECT p.id, p.name, (SELECT MAX(a.serial) FROM rpz_acks a WHERE a.party_id = p.id) AS acked, \
             (SELECT MAX(a.acked_at) FROM rpz_acks a WHERE a.party_id = p.id) AS acked_at \
             FROM parties p WHERE p.kind = 'isp' ORDER BY p.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let probes = sqlx::query(
            "SELECT party_id, resolver, serial, probed_at, enforced, not_enforced, overblocked, unreachable, detail FROM compliance_probes c \
             WHERE id = (SELECT MAX(id) FROM compliance_probes d WHERE d.party_id = c.party_id AND d.resolver = c.resolver) \
             ORDER BY party_id, resolver",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let acked: Option<i64> = r.try_get("acked")?;
            let party_id: String = r.try_get("id")?;
            let mut mine = Vec::new();
            for p in probes.iter().filter(|p| {
                p.try_get::<String, _>("party_id")
                    .is_ok_and(|id| id == party_id)
            }) {
                mine.push(ProbeResult {
                    resolver: p.try_get("resolver")?,
                    serial: p.try_get("serial")?,
                    probed_at: Timestamp::from_unix_millis(p.try_get("probed_at")?),
                    enforced: p.try_get("enforced")?,
                    not_enforced: p.try_get("not_enforced")?,
                    overblocked: p.try_get("overblocked")?,
                    unreachable: p.try_get("unreachable")?,
                    detail: serde_json::from_str(&p.try_get::<String, _>("detail")?)
                        .map_err(Error::corrupt)?,
                });
            }
            let zone_sync = self.zone_sync(&party_id, current).await?;
            out.push(Compliance {
                zone_sync,
                party_id,
                name: r.try_get("name")?,
                current_serial: current,
                acknowledged_serial: acked,
                acknowledged_at: r
                    .try_get::<Option<i64>, _>("acked_at")?
                    .map(Timestamp::from_unix_millis),
                status: match acked {
                    None => "never",
                    Some(a) if a >= current => "current",
                    Some(_) => "behind",
                },
                probes: mine,
            });
        }
        Ok(out)
    }

    /// Record what the primary saw, matching each observation to an ISP by
    /// its TSIG key, else by the address (allow-list, NOTIFY target or
    /// resolver). Transfers and NOTIFY answers are logged (and audited);
    /// SOA polls only update the ISP's latest poll. Returns how many were
    /// matched to an ISP; the rest are dropped.
    pub async fn record_sync(&self, batch: &[SyncEvidence]) -> Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT party_id, resolvers, notify, allow_transfer_from, tsig_key_name, previous_tsig_key_name FROM isp_resolvers ORDER BY party_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut isps = Vec::with_capacity(rows.len());
        for r in &rows {
            let list = |col: &str| -> Result<Vec<String>> {
                serde_json::from_str(&r.try_get::<String, _>(col)?).map_err(Error::corrupt)
            };
            // a network the rules refuse (stored before them) attributes
            // nothing: evidence from anyone inside it is no ISP's
            let rules = self.ctx.isp_rules;
            let mut nets = Vec::new();
            for a in list("allow_transfer_from")?
                .iter()
                .take(rules.max_transfer_hosts)
            {
                let net = IpNet::parse("allow_transfer_from", a).map_err(Error::corrupt)?;
                if rules
                    .check_transfer_host("allow_transfer_from", &net)
                    .is_ok()
                {
                    nets.push(net);
                }
            }
            let mut ips = Vec::new();
            for a in list("resolvers")?.iter().chain(list("notify")?.iter()) {
                if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
                    ips.push(sa.ip().to_canonical());
                }
            }
            isps.push((
                r.try_get::<String, _>("party_id")?,
                r.try_get::<String, _>("tsig_key_name")?,
                nets,
                ips,
                r.try_get::<Option<String>, _>("previous_tsig_key_name")?,
            ));
        }
        let owner = |e: &SyncEvidence| -> Option<String> {
            let peer = e.peer.to_canonical();
            if let Some(k) = &e.key {
                let k = k.trim_end_matches('.');
                // the previous key too: a secondary not yet moved is the
                // ISP's all the same
                let same = |n: &str| n.trim_end_matches('.').eq_ignore_ascii_case(k);
                return isps
                    .iter()
                    .find(|i| same(&i.1) || i.4.as_deref().is_some_and(same))
                    .map(|i| i.0.clone());
            }
            isps.iter()
                .find(|i| i.2.iter().any(|n| n.contains(peer)) || i.3.contains(&peer))
                .map(|i| i.0.clone())
        };
        let now = self.now();
        let mut matched = 0;
        let mut logged = Vec::new();
        for e in batch {
            let Some(party) = owner(e) else { continue };
            matched += 1;
            match &e.kind {
                SyncKind::Poll { serial } => {
                    sqlx::query(
                        "INSERT INTO rpz_polls (party_id, peer, serial, polls, at) VALUES ($1, $2, $3, 1, $4) \
                         ON CONFLICT (party_id) DO UPDATE SET peer = excluded.peer, serial = excluded.serial, \
                         polls = rpz_polls.polls + 1, at = excluded.at",
                    )
                    .bind(&party)
                    .bind(e.peer.to_canonical().to_string())
                    .bind(serial)
                    .bind(now.unix_millis())
                    .execute(&self.pool)
                    .await?;
                }
                SyncKind::Transfer {
                    kind,
                    from,
                    serial,
                    complete,
                } => logged.push((
                    party,
                    e.peer,
                    kind.clone(),
                    *from,
                    *serial,
                    *complete,
                    String::new(),
                )),
                SyncKind::Notify {
                    serial,
                    answered,
                    detail,
                } => logged.push((
                    party,
                    e.peer,
                    "NOTIFY".to_owned(),
                    None,
                    *serial,
                    *answered,
                    detail.clone(),
                )),
            }
        }
        if logged.is_empty() {
            return Ok(matched);
        }
        let mut tx = self.write().await?;
        for (party, peer, kind, from, serial, complete, detail) in logged {
            sqlx::query(
                "INSERT INTO rpz_sync_log (id, party_id, peer, kind, from_serial, serial, complete, detail, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&party)
            .bind(peer.to_canonical().to_string())
            .bind(&kind)
            .bind(from)
            .bind(serial)
            .bind(i64::from(complete))
            .bind(&detail)
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
            let event = if kind == "NOTIFY" {
                EventType::RpzNotifyAnswered
            } else {
                EventType::RpzTransferred
            };
            let after = json!({"peer": peer.to_canonical().to_string(), "kind": kind, "from_serial": from, "serial": serial, "complete": complete, "detail": detail});
            Event::party(event, &party, after)
                .append(&mut tx, now, &Actor::system("rpz-primary"))
                .await?;
        }
        tx.commit().await?;
        Ok(matched)
    }

    async fn zone_sync(&self, party: &str, current: i64) -> Result<ZoneSync> {
        let event = |r: &sqlx::any::AnyRow| -> Result<SyncEvent> {
            Ok(SyncEvent {
                peer: r.try_get("peer")?,
                kind: r.try_get("kind")?,
                from_serial: r.try_get("from_serial")?,
                serial: r.try_get("serial")?,
                complete: r.try_get::<i64, _>("complete")? != 0,
                detail: r.try_get("detail")?,
                at: Timestamp::from_unix_millis(r.try_get("at")?),
            })
        };
        let cols = "peer, kind, from_serial, serial, complete, detail, at";
        // the latest entry of the sync log that meets `cond`
        let last = |cond: &'static str| async move {
            let sql = format!(
                "SELECT {cols} FROM rpz_sync_log WHERE party_id = $1 AND {cond} ORDER BY id DESC LIMIT 1"
            );
            let row = sqlx::query(&sql)
                .bind(party)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(event).transpose()
        };
        let last_transfer = last("kind <> 'NOTIFY'").await?;
        let last_notify = last("kind = 'NOTIFY'").await?;
        let last_poll =
            sqlx::query("SELECT peer, serial, polls, at FROM rpz_polls WHERE party_id = $1")
                .bind(party)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| -> Result<SyncEvent> {
                    Ok(SyncEvent {
                        peer: r.try_get("peer")?,
                        kind: "SOA".into(),
                        from_serial: None,
                        serial: r.try_get("serial")?,
                        complete: true,
                        detail: format!("{} polls", r.try_get::<i64, _>("polls")?),
                        at: Timestamp::from_unix_millis(r.try_get("at")?),
                    })
                })
                .transpose()?;
        // the serial held: the highest one transferred in full, or reported
        // held in an IXFR request
        let held: Option<i64> = sqlx::query(
            "SELECT MAX(CASE WHEN complete = 1 THEN serial ELSE from_serial END) AS s FROM rpz_sync_log \
             WHERE party_id = $1 AND kind <> 'NOTIFY'",
        )
        .bind(party)
        .fetch_one(&self.pool)
        .await?
        .try_get("s")?;
        // (a secondary claiming a serial we never published holds ours at best)
        let held = held.map(|h| h.min(current));
        let (mut held_since, mut pickup_ms, mut behind_since) = (None, None, None);
        if let Some(h) = held {
            let r = sqlx::query(
                "SELECT MIN(l.at) AS at, MIN(s.created_at) AS published FROM rpz_sync_log l \
                 LEFT JOIN rpz_serials s ON s.serial = l.serial \
                 WHERE l.party_id = $1 AND l.kind <> 'NOTIFY' AND l.complete = 1 AND l.serial = $2",
            )
            .bind(party)
            .bind(h)
            .fetch_one(&self.pool)
            .await?;
            let at: Option<i64> = r.try_get("at")?;
            let published: Option<i64> = r.try_get("published")?;
            held_since = at.map(Timestamp::from_unix_millis);
            pickup_ms = at.zip(published).map(|(a, p)| (a - p).max(0));
            if h < current {
                behind_since =
                    sqlx::query("SELECT MIN(created_at) AS t FROM rpz_serials WHERE serial > $1")
                        .bind(h)
                        .fetch_one(&self.pool)
                        .await?
                        .try_get::<Option<i64>, _>("t")?
                        .map(Timestamp::from_unix_millis);
            }
        }
        Ok(ZoneSync {
            status: match held {
                None => "never",
                Some(h) if h >= current => "in_sync",
                Some(_) => "behind",
            },
            held_serial: held,
            held_since,
            pickup_ms,
            behind_since,
            last_poll,
            last_transfer,
            last_notify,
        })
    }

    /// ISPs with resolvers to probe.
    pub async fn probe_targets(&self) -> Result<Vec<ProbeTarget>> {
        let rows = sqlx::query("SELECT party_id, resolvers FROM isp_resolvers ORDER BY party_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let list: Vec<String> = serde_json::from_str(&r.try_get::<String, _>("resolvers")?)
                    .map_err(Error::corrupt)?;
                let party_id: String = r.try_get("party_id")?;
                let rules = self.ctx.isp_rules;
                let resolvers = list
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .filter(|a| match rules.check_target("resolvers", a) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(isp = %party_id, resolver = %a, reason = %e, "not probing a stored resolver that the rules refuse");
                            false
                        }
                    })
                    .collect();
                Ok(ProbeTarget {
                    party_id,
                    resolvers,
                })
            })
            .collect()
    }

    /// A random sample of the zone's blocking records, with the serial.
    pub async fn rpz_sample(&self, n: u32) -> Result<(i64, Vec<crate::RpzRecord>)> {
        let serial = crate::orders::current_serial(&mut *self.pool.acquire().await?).await?;
        let rows = sqlx::query(&format!(
            "SELECT owner, action FROM rpz_records WHERE action <> 'passthru' ORDER BY random() LIMIT {}",
            n.clamp(1, 100)
        ))
        .fetch_all(&self.pool)
        .await?;
        let records = rows
            .iter()
            .map(|r| {
                Ok(crate::RpzRecord {
                    owner: r.try_get("owner")?,
                    action: tapis_core::order::OrderAction::parse(
                        &r.try_get::<String, _>("action")?,
                    )
                    .map_err(Error::corrupt)?,
                    order_id: None,
                    category: None,
                })
            })
            .collect::<Result<_>>()?;
        Ok((serial, records))
    }

    /// Record one probe of one resolver (an audit event: compliance is
    /// evidence).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_probe(
        &self,
        party_id: &str,
        resolver: &str,
        serial: i64,
        counts: [i64; 4],
        detail: Value,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let now = self.now();
        sqlx::query(
            "INSERT INTO compliance_probes (id, party_id, resolver, serial, probed_at, enforced, not_enforced, overblocked, unreachable, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(party_id)
        .bind(resolver)
        .bind(serial)
        .bind(now.unix_millis())
        .bind(counts[0])
        .bind(counts[1])
        .bind(counts[2])
        .bind(counts[3])
        .bind(canonical::to_string(&detail)?)
        .execute(&mut *tx)
        .await?;
        let after = json!({"resolver": resolver, "serial": serial, "enforced": counts[0], "not_enforced": counts[1], "overblocked": counts[2], "unreachable": counts[3]});
        Event::party(EventType::ComplianceProbed, party_id, after)
            .append(&mut tx, now, &Actor::system("prober"))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
