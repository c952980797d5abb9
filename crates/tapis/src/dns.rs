//! Wiring of the RPZ primary: a [`ZoneSource`] over the store, the TSIG
//! keys and allow list kept in step with ISP registrations, and NOTIFY to
//! every ISP's registered secondaries whenever the serial changes. Every
//! process serves transfers from the one serial in the database; only the
//! owner of the lease (`tapis_store::lease`) sends NOTIFY and probes.

use std::net::SocketAddr;
use std::time::Duration;

use tapis_dns::{
    Diff, Primary, PrimaryConfig, Record, Snapshot, TsigKey, ZoneConfig, ZoneDigest, ZoneSource,
};
use tapis_store::{Store, SyncEvidence, SyncKind};
use tokio::sync::mpsc;

/// The zone as the store keeps it.
pub struct StoreZone {
    store: Store,
    zone: ZoneConfig,
    /// The fingerprint of `zone`'s settings digests are kept under.
    params: String,
}

impl StoreZone {
    fn record(r: tapis_store::RpzRecord, cache: &mut tapis_dns::ExplanationCache<'_>) -> Record {
        let explanation = cache.get(r.action, r.order_id.as_deref(), r.category.as_deref());
        Record {
            owner: r.owner,
            action: r.action,
            explanation,
        }
    }
}

impl ZoneSource for StoreZone {
    async fn serial(&self) -> Result<u32, String> {
        self.store
            .rpz_serial()
            .await
            .map(tapis_dns::soa_serial)
            .map_err(|e| e.to_string())
    }

    async fn snapshot(&self) -> Result<Snapshot, String> {
        let (serial, mut rows) = self
            .store
            .rpz_snapshot(tapis_dns::SNAPSHOT_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        // turn the store's batches into the zone's as they come
        let (tx, records) = mpsc::channel(2);
        let explanations = self.zone.explanations.clone();
        tokio::spawn(async move {
            let mut cache = tapis_dns::ExplanationCache::new(&explanations);
            while let Some(batch) = rows.recv().await {
                let out = batch
                    .map(|b| {
                        b.into_iter()
                            .map(|r| StoreZone::record(r, &mut cache))
                            .collect()
                    })
                    .map_err(|e| e.to_string());
                let stop = out.is_err();
                if tx.send(out).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Snapshot {
            serial: tapis_dns::soa_serial(serial),
            records,
        })
    }

    async fn changes_since(&self, serial: u32) -> Result<Option<Vec<Diff>>, String> {
        let current = self.store.rpz_serial().await.map_err(|e| e.to_string())?;
        let from = i64::from(serial);
        if from == current {
            return Ok(Some(Vec::new()));
        }
        if from > current {
            return Ok(None);
        }
        let Some(entries) = self
            .store
            .rpz_journal_since(from)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let mut diffs: Vec<Diff> = Vec::new();
        let mut cache = tapis_dns::ExplanationCache::new(&self.zone.explanations);
        for (s, op, record) in entries {
            if diffs.last().is_none_or(|d| i64::from(d.to) != s) {
                let prev = diffs.last().map(|d| i64::from(d.to)).unwrap_or(from);
                if s != prev + 1 {
                    // a gap in the journal: send the whole zone instead
                    return Ok(None);
                }
                diffs.push(Diff {
                    from: tapis_dns::soa_serial(s - 1),
                    to: tapis_dns::soa_serial(s),
                    removed: vec![],
                    added: vec![],
                });
            }
            if let Some(d) = diffs.last_mut() {
                if op == "del" {
                    d.removed.push(StoreZone::record(record, &mut cache));
                } else {
                    d.added.push(StoreZone::record(record, &mut cache));
                }
            }
        }
        if diffs.last().map(|d| i64::from(d.to)) != Some(current) {
            return Ok(None);
        }
        Ok(Some(diffs))
    }

    async fn known_digest(&self, serial: u32) -> Result<Option<ZoneDigest>, String> {
        let kept = self
            .store
            .rpz_digest(i64::from(serial), &self.params)
            .await
            .map_err(|e| e.to_string())?;
        Ok(kept.and_then(|hex| ZoneDigest::from_hex(serial, &hex)))
    }

    /// Keep and log it (`rpz.digest`): the serial's leaf in the log.
    async fn digest_computed(&self, d: ZoneDigest) -> Result<(), String> {
        self.store
            .record_rpz_digest(
                i64::from(d.serial),
                &self.params,
                tapis_dns::zonemd::SCHEME_SIMPLE,
                tapis_dns::zonemd::HASH_SHA384,
                &d.hex(),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Start the primary on `rpz.dns_listen`, within `rpz`'s TCP limits, and
/// the task that refreshes its keys and sends NOTIFY (to private or
/// special-purpose addresses only when `allow_private_targets`). Returns
/// the bound address.
pub async fn start(
    store: Store,
    zone: ZoneConfig,
    rpz: &crate::config::RpzSettings,
    allow_private_targets: bool,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listen = rpz.dns_listen;
    // the compiler keeps owners short enough for a zone name this long
    let zone_wire = zone.zone.trim_end_matches('.').len() + 2;
    if zone_wire > tapis_store::ZONE_NAME_BUDGET {
        anyhow::bail!(
            "rpz.zone_name {:?} is too long: at most {} octets on the wire",
            zone.zone,
            tapis_store::ZONE_NAME_BUDGET
        );
    }
    let (udp, tcp) = tapis_dns::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for DNS on {listen}: {e} (try --dns-listen 127.0.0.1:0)")
    })?;
    let addr = udp.local_addr()?;
    let mut config = PrimaryConfig::new(zone.clone());
    config.tcp_max_connections = rpz.tcp_max_connections;
    config.tcp_reserved_connections = rpz.tcp_reserved_connections;
    config.tcp_connections_per_address = rpz.tcp_connections_per_address;
    config.tcp_idle_timeout = Duration::from_secs(rpz.tcp_idle_timeout_secs);
    config.tcp_message_timeout = Duration::from_secs(rpz.tcp_message_timeout_secs);
    let primary = Primary::new(
        config,
        StoreZone {
            store: store.clone(),
            zone: zone.clone(),
            params: tapis_dns::zonemd::params_fingerprint(&zone),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let targets = refresh(&store, &primary).await;
    let evidence = spawn_evidence_writer(store.clone(), primary.observe());
    let server = primary.clone();
    let mut stop = shutdown.clone();
    let serve = tokio::spawn(async move {
        let until = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = server.run(udp, tcp, until).await {
            tracing::error!(error = %e, "RPZ primary stopped");
        }
    });
    let task = tokio::spawn(async move {
        let mut events = store.subscribe_events();
        let mut targets = targets;
        let mut notified: Option<i64> = None;
        let mut pass_started = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            // NOTIFY is the owner's (one sender for all processes); a new
            // owner notifies the current serial once, whatever the last
            // one sent (a bump during the handover is not lost)
            if !store.is_owner() {
                notified = None;
            } else {
                match store.rpz_serial().await {
                    Ok(serial) if serial > 0 && notified != Some(serial) => {
                        // the serial's digest first: computed, kept and
                        // logged before secondaries are told (their
                        // transfers then carry it without waiting)
                        if primary
                            .zone_digest(tapis_dns::soa_serial(serial))
                            .await
                            .is_none()
                        {
                            tracing::warn!(serial, "NOTIFY without the serial's digest logged");
                        }
                        // asked again just before sending: a process frozen
                        // between the two finds its lease lapsed on waking
                        if store.is_owner() {
                            notify_all(&zone, serial, &targets, &evidence, allow_private_targets);
                            notified = Some(serial);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the zone serial"),
                }
            }
            let by_commit = tokio::select! {
                _ = events.changed() => true,
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                _ = shutdown.changed() => false,
            };
            // a burst of commits (every notice is one) is one pass
            if by_commit {
                tapis_channel::coalesce(pass_started, &mut shutdown).await;
            }
            pass_started = tokio::time::Instant::now();
            targets = refresh(&store, &primary).await;
        }
        let _ = serve.await;
    });
    Ok((addr, task))
}

/// Where to send NOTIFY, and with which key.
type NotifyTargets = Vec<(std::net::SocketAddr, Option<TsigKey>)>;

/// Load ISPs' keys and allow lists into the primary, in one read of the
/// store; returns the NOTIFY targets with their keys.
async fn refresh<S: ZoneSource>(store: &Store, primary: &Primary<S>) -> NotifyTargets {
    let access = match store.xfr_access().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read ISP transfer settings");
            return Vec::new();
        }
    };
    let keys: Vec<TsigKey> = access
        .keys
        .iter()
        .filter_map(|(name, secret)| {
            match TsigKey::new(name, tapis_store::TSIG_ALGORITHM, secret) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::error!(key = %name, error = %e, "unusable TSIG key");
                    None
                }
            }
        })
        .collect();
    let targets = access
        .notify
        .iter()
        .map(|(addr, key_name)| {
            let key = keys
                .iter()
                .find(|k| {
                    k.name()
                        .to_string()
                        .trim_end_matches('.')
                        .eq_ignore_ascii_case(key_name.trim_end_matches('.'))
                })
                .cloned();
            (*addr, key)
        })
        .collect();
    primary.set_access(keys, access.allow);
    targets
}

/// Record what the primary sees secondaries do (and NOTIFY answers, sent
/// on the returned channel) in the store, in batches: the evidence ISP
/// compliance starts from. A transfer counts only when it came over TCP or
/// was TSIG-signed ([`tapis_dns::Observation::is_evidence`]); one unsigned
/// UDP datagram could come from anyone.
fn spawn_evidence_writer(
    store: Store,
    mut observed: mpsc::Receiver<tapis_dns::Observation>,
) -> mpsc::Sender<SyncEvidence> {
    let (tx, mut rx) = mpsc::channel::<SyncEvidence>(4096);
    let forward = tx.clone();
    tokio::spawn(async move {
        while let Some(o) = observed.recv().await {
            // only what cannot be forged counts as a transfer (a poll over
            // unsigned UDP stays what it is: the latest poll)
            if matches!(o.event, tapis_dns::Observed::Transfer { .. }) && !o.is_evidence() {
                tracing::debug!(peer = %o.peer, "unsigned UDP transfer request: answered, not evidence");
                continue;
            }
            let kind = match o.event {
                tapis_dns::Observed::SoaPoll { serial } => SyncKind::Poll {
                    serial: i64::from(serial),
                },
                tapis_dns::Observed::Transfer {
                    kind,
                    from,
                    serial,
                    complete,
                } => SyncKind::Transfer {
                    kind: kind.to_owned(),
                    from: from.map(i64::from),
                    serial: i64::from(serial),
                    complete,
                },
            };
            let e = SyncEvidence {
                peer: o.peer,
                key: o.key,
                kind,
            };
            if forward.send(e).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            if let Err(e) = store.record_sync(&batch).await {
                tracing::warn!(error = %e, n = batch.len(), "cannot record zone transfer evidence");
            }
            batch.clear();
        }
    });
    tx
}

/// NOTIFY every registered secondary, signed with its ISP's key; each
/// answer (or silence) is evidence. A target on a private or
/// special-purpose address is skipped (and said so) unless
/// `allow_private_targets`: the sender refuses it anyway, whatever reached
/// the database.
fn notify_all(
    zone: &ZoneConfig,
    serial: i64,
    targets: &[(std::net::SocketAddr, Option<TsigKey>)],
    evidence: &mpsc::Sender<SyncEvidence>,
    allow_private_targets: bool,
) {
    for (addr, key) in targets.iter().cloned() {
        if !allow_private_targets && tapis_core::channel::is_private_ip(addr.ip()) {
            tracing::warn!(%addr, "NOTIFY not sent: a private or special-purpose address (channel.allow_private_targets is off)");
            continue;
        }
        let zone = zone.clone();
        let evidence = evidence.clone();
        tokio::spawn(async move {
            let soa = tapis_dns::soa_serial(serial);
            let key_name = key
                .as_ref()
                .map(|k| k.name().to_string().trim_end_matches('.').to_owned());
            let outcome = notify_once(addr, &zone, soa, key, allow_private_targets).await;
            let (answered, detail) = match &outcome {
                Ok(rcode) => (true, rcode.clone()),
                Err(e) => (false, e.clone()),
            };
            let _ = evidence
                .send(SyncEvidence {
                    peer: addr.ip(),
                    key: key_name,
                    kind: SyncKind::Notify {
                        serial,
                        answered,
                        detail,
                    },
                })
                .await;
        });
    }
}

/// One NOTIFY (retried inside), falling back to unsigned for a secondary
/// without TSIG; the answer's rcode as text, or the error.
async fn notify_once(
    addr: SocketAddr,
    zone: &ZoneConfig,
    soa: u32,
    key: Option<TsigKey>,
    allow_private_targets: bool,
) -> Result<String, String> {
    let options = tapis_dns::NotifyOptions {
        allow_private_targets,
        ..Default::default()
    };
    match tapis_dns::send_notify_with(addr, zone, soa, key.as_ref(), &options).await {
        // a secondary without TSIG (e.g. Unbound, allow-listed for
        // transfers) rejects a signed NOTIFY with FORMERR or a TSIG error:
        // tell it again, unsigned
        Ok(o)
            if key.is_some()
                && (o.rcode == tapis_dns::wire::Rcode::FORMERR
                    || o.rcode == tapis_dns::wire::Rcode::NOTIMP
                    || o.tsig_error.is_some()) =>
        {
            match tapis_dns::send_notify_with(addr, zone, soa, None, &options).await {
                Ok(o) => {
                    tracing::info!(%addr, serial = soa, rcode = ?o.rcode, "NOTIFY answered (unsigned: the secondary has no TSIG)");
                    Ok(format!("{:?} (unsigned)", o.rcode))
                }
                Err(e) => {
                    tracing::warn!(%addr, serial = soa, error = %e, "NOTIFY not answered");
                    Err(e.to_string())
                }
            }
        }
        Ok(o) => {
            tracing::info!(%addr, serial = soa, rcode = ?o.rcode, attempts = o.attempts, "NOTIFY answered");
            Ok(format!("{:?}", o.rcode))
        }
        Err(e) => {
            tracing::warn!(%addr, serial = soa, error = %e, "NOTIFY not answered");
            Err(e.to_string())
        }
    }
}

/// How the compliance prober runs.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub interval: Duration,
    pub sample: u32,
    pub canaries: Vec<String>,
}

/// Probe every registered ISP resolver every `interval`: a random sample
/// of blocked names (a wildcard owner is probed as `tapis-probe.<name>`)
/// and the canaries, each answer judged against the zone; results go to the
/// store (and its audit log).
pub fn spawn_prober(
    store: Store,
    zone: ZoneConfig,
    settings: ProbeSettings,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    use tapis_dns::probe::{Verdict, judge_blocked, judge_canary, query};
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(settings.interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            // probes are the owner's: N processes must not probe N times
            if !store.is_owner() {
                continue;
            }
            let targets = match store.probe_targets().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read probe targets");
                    continue;
                }
            };
            if targets.iter().all(|t| t.resolvers.is_empty()) {
                continue;
            }
            let (serial, sample) = match store.rpz_sample(settings.sample).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot sample the zone");
                    continue;
                }
            };
            for target in &targets {
                for resolver in &target.resolvers {
                    let mut counts = [0i64; 4];
                    let mut detail = Vec::new();
                    let mut tally = |v: Verdict| match v {
                        Verdict::Enforced | Verdict::Clear => counts[0] += 1,
                        Verdict::NotEnforced => counts[1] += 1,
                        Verdict::Overblocked => counts[2] += 1,
                        Verdict::Unreachable => counts[3] += 1,
                    };
                    for r in &sample {
                        let name = match r.owner.strip_prefix("*.") {
                            Some(base) => format!("tapis-probe.{base}"),
                            None => r.owner.clone(),
                        };
                        let v = match query(*resolver, &name, Duration::from_secs(2)).await {
                            Ok(obs) => judge_blocked(r.action, &zone.block_page_host, &obs),
                            Err(_) => Verdict::Unreachable,
                        };
                        tally(v);
                        detail.push(
                            serde_json::json!({"name": name, "expected": r.action, "verdict": v}),
                        );
                    }
                    for canary in &settings.canaries {
                        let v = match query(*resolver, canary, Duration::from_secs(2)).await {
                            Ok(obs) => judge_canary(&zone.block_page_host, &obs),
                            Err(_) => Verdict::Unreachable,
                        };
                        tally(v);
                        detail.push(serde_json::json!({"name": canary, "expected": "not blocked", "verdict": v}));
                    }
                    if let Err(e) = store
                        .record_probe(
                            &target.party_id,
                            &resolver.to_string(),
                            serial,
                            counts,
                            serde_json::Value::Array(detail),
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "cannot record a probe");
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the database says, NOTIFY goes to a private or
    /// special-purpose address only when the operator allows it.
    #[tokio::test]
    async fn notify_skips_private_targets_unless_allowed() {
        let listener = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let target = listener.local_addr().expect("addr");
        let targets: NotifyTargets = vec![
            (target, None),
            ("169.254.169.254:80".parse().expect("addr"), None),
        ];
        let (tx, mut rx) = mpsc::channel(8);
        notify_all(&ZoneConfig::default(), 5, &targets, &tx, false);
        let mut buf = [0u8; 512];
        assert!(
            tokio::time::timeout(Duration::from_millis(300), listener.recv_from(&mut buf))
                .await
                .is_err(),
            "nothing sent"
        );
        assert!(rx.try_recv().is_err(), "and no evidence recorded");

        notify_all(&ZoneConfig::default(), 5, &targets[..1], &tx, true);
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), listener.recv_from(&mut buf))
            .await
            .expect("sent when allowed")
            .expect("recv");
        assert!(n > 12);
    }
}
