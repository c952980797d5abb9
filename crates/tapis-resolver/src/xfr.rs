//! Following policy zones: when to check the primary's SOA and transfer
//! (IXFR with AXFR fallback, through tapis-dns's transfer client, TSIG on
//! every message), where each transferred record goes, NOTIFY handling,
//! zone files watched for changes, and local snapshots.
//!
//! One task per zone is the zone's only writer. A full transfer (or file
//! load) builds a new [`PolicyZone`] aside and swaps it in; an IXFR's diffs
//! are collected first and then applied together under the zone's write
//! lock, so queries see the old serial or the new one, never a mix. When
//! the primary cannot be reached the policy in force stays in force (even
//! past the SOA expire: an order must not lapse because a link is down),
//! and each change is written to `<data_dir>/<zone>.rpz` so a restart
//! starts from it and catches up by IXFR.

use std::io::{BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use tapis_dns::TsigKey;
use tapis_dns::serial::serial_gt;
use tapis_dns::tsig::{self, RequestAuth, unix_now};
use tapis_dns::wire::{Message, MessageBuilder, Name, Rcode, flags, opcode};
use tapis_dns::xfr::{Ask, Connection, Kind, Sequence, Step, soa_serial, zone_record};
use tokio::sync::{Notify, watch};

use crate::Error;
use crate::config::ZoneSource;
use crate::metrics::Metrics;
use crate::policy::{Policies, PolicyZone, Reload, ReloadPlan, ZoneRecord};

/// One followed zone.
pub struct Followed {
    pub index: usize,
    pub origin: Name,
    pub source: ZoneSource,
    pub min_refresh: u32,
    pub max_refresh: u32,
    pub file_poll: Duration,
    pub wake: Notify,
}

/// All followed zones, for the NOTIFY handler and the follower tasks.
pub struct Zones {
    pub zones: Vec<Arc<Followed>>,
    pub policies: Arc<Policies>,
    pub metrics: Arc<Metrics>,
    pub data_dir: PathBuf,
}

impl Zones {
    /// Answers a NOTIFY from `src`: accepted (and the zone's follower woken)
    /// when it names a followed zone and comes from its primary's address,
    /// with a valid signature if it is signed. `None`: not worth an answer.
    pub fn notify(&self, bytes: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
        let msg = Message::parse(bytes).ok()?;
        if msg.header.is_response() || msg.questions.len() != 1 {
            return None;
        }
        let q = &msg.questions[0];
        let zone = self.zones.iter().find(|z| z.origin.eq_ignore_case(&q.name));
        let answer = |rcode: Rcode| {
            let f = flags::QR | flags::AA | (u16::from(opcode::NOTIFY) << 11) | rcode.0;
            let mut b = MessageBuilder::new(msg.header.id, f);
            b.question(q);
            b.finish()
        };
        let Some(zone) = zone else {
            return Some(answer(Rcode::NOTAUTH));
        };
        let ZoneSource::Primary { addr, key } = &zone.source else {
            return Some(answer(Rcode::REFUSED));
        };
        if addr.ip() != src.ip() {
            tracing::warn!(zone = %zone.origin, from = %src.ip(), "NOTIFY from an address that is not the primary: refused");
            return Some(answer(Rcode::REFUSED));
        }
        let keys: Vec<TsigKey> = key.iter().cloned().collect();
        match tsig::verify_request(&msg, &keys, unix_now()) {
            Ok(RequestAuth::Signed(mut signer)) => {
                zone.wake.notify_one();
                let mut a = answer(Rcode::NOERROR);
                signer.sign(&mut a, unix_now());
                Some(a)
            }
            Ok(RequestAuth::Unsigned) => {
                // Unsigned NOTIFY from the primary's address: it only
                // makes us check sooner; the transfer itself is signed.
                zone.wake.notify_one();
                Some(answer(Rcode::NOERROR))
            }
            Err(failure) => {
                tracing::warn!(zone = %zone.origin, error = %failure.error(), "NOTIFY with a bad signature: refused");
                Some(failure.finish_response(answer(Rcode::NOTAUTH)))
            }
        }
    }

    /// Runs every follower until `shutdown` turns true.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.zones
            .iter()
            .map(|z| {
                let zones = self.clone();
                let z = z.clone();
                let sd = shutdown.clone();
                tokio::spawn(async move { zones.follow(z, sd).await })
            })
            .collect()
    }

    fn snapshot_path(&self, origin: &Name) -> PathBuf {
        let name = tapis_dns::name::to_text(origin.wire());
        let name = name.trim_end_matches('.');
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.data_dir.join(format!(
            "{}.rpz",
            if safe.is_empty() { "root" } else { &safe }
        ))
    }

    fn installed(&self, z: &Followed, started: Instant, changed: bool) {
        let st = &self.metrics.zones[z.index];
        let now = unix_now();
        st.refreshed_at.store(now, Relaxed);
        if changed {
            st.changed_at.store(now, Relaxed);
            st.last_load_ms
                .store(started.elapsed().as_millis() as u64, Relaxed);
        }
        if let Some(zone) = self.policies.zone(z.index) {
            st.serial
                .store(u64::from(zone.serial().unwrap_or(0)), Relaxed);
            st.entries.store(zone.len() as u64, Relaxed);
        }
        st.transfers_ok.fetch_add(1, Relaxed);
    }

    async fn follow(self: Arc<Self>, z: Arc<Followed>, mut shutdown: watch::Receiver<bool>) {
        match &z.source {
            ZoneSource::File(path) => self.follow_file(&z, path.clone(), &mut shutdown).await,
            ZoneSource::Primary { addr, key } => {
                self.follow_primary(&z, *addr, key.clone(), &mut shutdown)
                    .await;
            }
        }
    }

    async fn follow_file(&self, z: &Followed, path: PathBuf, shutdown: &mut watch::Receiver<bool>) {
        let mut seen: Option<(SystemTime, u64)> = None;
        loop {
            let stamp = std::fs::metadata(&path)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            if stamp.is_some() && stamp != seen {
                let started = Instant::now();
                let origin = z.origin.clone();
                let p = path.clone();
                let base = self.policies.zone(z.index).filter(|b| !b.is_empty());
                let loaded = tokio::task::spawn_blocking(move || match base {
                    Some(base) => diff_file(&p, &base).map(|d| match d {
                        Some((plan, reload)) => Loaded::Diff(plan, reload),
                        None => Loaded::TooMuch,
                    }),
                    None => load_file(&p, &origin).map(|z| Loaded::Zone(Box::new(z))),
                })
                .await;
                // most of the zone changed: build it aside after all
                let loaded = match loaded {
                    Ok(Ok(Loaded::TooMuch)) => {
                        let (p, origin) = (path.clone(), z.origin.clone());
                        tokio::task::spawn_blocking(move || {
                            load_file(&p, &origin).map(|z| Loaded::Zone(Box::new(z)))
                        })
                        .await
                    }
                    other => other,
                };
                let loaded = match loaded {
                    Ok(Ok(Loaded::Diff(plan, reload))) => {
                        let changes = plan.len() + reload.changes();
                        match self
                            .policies
                            .update(z.index, |zone| zone.reload_apply(plan, reload))
                        {
                            Some(Ok(())) => {
                                tracing::info!(zone = %z.origin, changes, ms = started.elapsed().as_millis() as u64, "policy zone file reloaded in place");
                                Ok(Ok(None))
                            }
                            Some(Err(e)) => Ok(Err(e)),
                            None => Ok(Ok(None)),
                        }
                    }
                    Ok(Ok(Loaded::Zone(zone))) => Ok(Ok(Some(zone))),
                    Ok(Ok(Loaded::TooMuch)) => Ok(Err(Error::Zone("reload failed".into()))),
                    Ok(Err(e)) => Ok(Err(e)),
                    Err(e) => Err(e),
                };
                match loaded {
                    Ok(Ok(Some(zone))) => {
                        tracing::info!(zone = %z.origin, file = %path.display(), entries = zone.len(), ms = started.elapsed().as_millis() as u64, "policy zone loaded from file");
                        self.policies.replace(z.index, *zone);
                        self.installed(z, started, true);
                        seen = stamp;
                    }
                    Ok(Ok(None)) => {
                        self.installed(z, started, true);
                        seen = stamp;
                    }
                    Ok(Err(e)) => {
                        self.metrics.zones[z.index]
                            .transfers_failed
                            .fetch_add(1, Relaxed);
                        tracing::error!(zone = %z.origin, error = %e, "zone file not loaded; the policy in force stays");
                        seen = stamp;
                    }
                    Err(e) => tracing::error!(error = %e, "zone file loader failed"),
                }
            } else if stamp.is_none() && seen.is_none() {
                tracing::warn!(zone = %z.origin, file = %path.display(), "zone file not found; waiting for it");
                seen = Some((SystemTime::UNIX_EPOCH, u64::MAX));
            }
            tokio::select! {
                _ = tokio::time::sleep(z.file_poll) => {}
                _ = z.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn follow_primary(
        &self,
        z: &Followed,
        primary: SocketAddr,
        key: Option<TsigKey>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let snapshot = self.snapshot_path(&z.origin);
        if snapshot.exists() {
            let started = Instant::now();
            let origin = z.origin.clone();
            let p = snapshot.clone();
            match tokio::task::spawn_blocking(move || load_file(&p, &origin)).await {
                Ok(Ok(zone)) => {
                    tracing::info!(zone = %z.origin, serial = zone.serial(), entries = zone.len(), "policy restored from the local snapshot");
                    self.policies.replace(z.index, zone);
                    self.installed(z, started, true);
                    // not confirmed with the primary yet
                    self.metrics.zones[z.index].refreshed_at.store(0, Relaxed);
                }
                Ok(Err(e)) => {
                    tracing::warn!(zone = %z.origin, error = %e, "local snapshot unreadable; starting empty")
                }
                Err(e) => tracing::warn!(error = %e, "snapshot loader failed"),
            }
        }
        let mut dirty = false;
        let mut last_write: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let result = self.refresh(z, primary, key.as_ref()).await;
            let current = self.policies.zone(z.index);
            let soa = current.as_ref().and_then(|c| c.soa().cloned());
            let (refresh, retry) = soa.map_or((60, 10), |s| (s.refresh, s.retry));
            let wait = match result {
                Ok(changed) => {
                    self.installed(z, started, changed);
                    dirty |= changed;
                    refresh.clamp(z.min_refresh, z.max_refresh)
                }
                Err(e) => {
                    self.metrics.zones[z.index]
                        .transfers_failed
                        .fetch_add(1, Relaxed);
                    tracing::warn!(zone = %z.origin, %primary, error = %e, "refresh failed; the policy in force stays");
                    retry.clamp(z.min_refresh.min(5), z.max_refresh)
                }
            };
            drop(current);
            if dirty && last_write.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                self.write_snapshot(z, &snapshot).await;
                dirty = false;
                last_write = Some(Instant::now());
            }
            let sleep_for = if dirty {
                Duration::from_secs(u64::from(wait).min(10))
            } else {
                Duration::from_secs(u64::from(wait))
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep_for) => {}
                _ = z.wake.notified() => {}
                _ = shutdown.changed() => {
                    if dirty {
                        self.write_snapshot(z, &snapshot).await;
                    }
                    return;
                }
            }
        }
    }

    async fn write_snapshot(&self, z: &Followed, path: &Path) {
        let Some(zone) = self.policies.zone(z.index) else {
            return;
        };
        let path = path.to_path_buf();
        let r = tokio::task::spawn_blocking(move || write_zone(&zone, &path)).await;
        match r {
            Ok(Ok(())) => tracing::debug!(zone = %z.origin, "snapshot written"),
            Ok(Err(e)) => tracing::warn!(zone = %z.origin, error = %e, "snapshot not written"),
            Err(e) => tracing::warn!(error = %e, "snapshot writer failed"),
        }
    }

    /// Checks the primary's serial and transfers what changed. Ok(true)
    /// when a new version was installed.
    pub async fn refresh(
        &self,
        z: &Followed,
        primary: SocketAddr,
        key: Option<&TsigKey>,
    ) -> Result<bool, Error> {
        let ours = self.policies.zone(z.index).and_then(|p| p.serial());
        let theirs = soa_serial(primary, &z.origin, key).await?;
        if let Some(ours) = ours
            && !serial_gt(theirs, ours)
        {
            return Ok(false);
        }
        let started = Instant::now();
        // A full transfer of a zone we have is applied as a diff against it.
        let base = self.policies.zone(z.index).filter(|p| !p.is_empty());
        let mut outcome = transfer(primary, &z.origin, key, ours, base).await?;
        if matches!(outcome, Transferred::TooMuch) {
            tracing::info!(zone = %z.origin, "most of the zone changed: building the new version aside");
            outcome = transfer(primary, &z.origin, key, None, None).await?;
        }
        match outcome {
            Transferred::UpToDate | Transferred::TooMuch => Ok(false),
            Transferred::Full(zone) => {
                tracing::info!(zone = %z.origin, serial = zone.serial(), entries = zone.len(), ms = started.elapsed().as_millis() as u64, "AXFR installed");
                self.policies.replace(z.index, *zone);
                self.metrics.zones[z.index].axfr.fetch_add(1, Relaxed);
                Ok(true)
            }
            Transferred::Reload { plan, reload } => {
                let changes = plan.len() + reload.changes();
                let applied = self
                    .policies
                    .update(z.index, |zone| zone.reload_apply(plan, reload));
                match applied {
                    Some(Ok(())) => {
                        tracing::info!(zone = %z.origin, changes, ms = started.elapsed().as_millis() as u64, "AXFR applied in place");
                        self.metrics.zones[z.index].axfr.fetch_add(1, Relaxed);
                        Ok(true)
                    }
                    Some(Err(e)) => self.axfr_aside(z, primary, key, e).await,
                    None => Ok(false),
                }
            }
            Transferred::Diff { ops, serial } => {
                let n = ops.len();
                let applied = self.policies.update(z.index, |zone| -> Result<(), Error> {
                    for (rec, add) in &ops {
                        zone.apply(rec, *add)?;
                    }
                    Ok(())
                });
                match applied {
                    Some(Ok(())) => {
                        tracing::info!(zone = %z.origin, serial, changes = n, ms = started.elapsed().as_millis() as u64, "IXFR applied");
                        self.metrics.zones[z.index].ixfr.fetch_add(1, Relaxed);
                        Ok(true)
                    }
                    Some(Err(e)) => self.axfr_aside(z, primary, key, e).await,
                    None => Ok(false),
                }
            }
        }
    }

    /// A change that did not apply leaves the zone in an unknown state:
    /// take the whole zone, built aside.
    async fn axfr_aside(
        &self,
        z: &Followed,
        primary: SocketAddr,
        key: Option<&TsigKey>,
        e: Error,
    ) -> Result<bool, Error> {
        tracing::warn!(zone = %z.origin, error = %e, "change did not apply; taking the whole zone by AXFR");
        match transfer(primary, &z.origin, key, None, None).await? {
            Transferred::Full(zone) => {
                self.policies.replace(z.index, *zone);
                self.metrics.zones[z.index].axfr.fetch_add(1, Relaxed);
                Ok(true)
            }
            _ => Err(Error::Transfer("the AXFR returned no zone".into())),
        }
    }
}

enum Loaded {
    Zone(Box<PolicyZone>),
    Diff(ReloadPlan, Reload),
    TooMuch,
}

/// Reads a zone file as a diff against `base` (`None`: too much changed).
fn diff_file(path: &Path, base: &PolicyZone) -> Result<Option<(ReloadPlan, Reload)>, Error> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut reload = base.reload_begin();
    tapis_dns::zonefile::parse(BufReader::with_capacity(1 << 16, f), base.origin(), |r| {
        base.reload_record(&mut reload, &r)
    })?;
    if reload.overflowed() {
        return Ok(None);
    }
    let plan = base.reload_plan(&reload);
    Ok(Some((plan, reload)))
}

fn load_file(path: &Path, origin: &Name) -> Result<PolicyZone, Error> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut zone = PolicyZone::new(origin);
    tapis_dns::zonefile::parse(BufReader::with_capacity(1 << 16, f), origin, |r| {
        zone.apply(&r, true)
    })?;
    Ok(zone)
}

fn write_zone(zone: &PolicyZone, path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let tmp = path.with_extension("rpz.tmp");
    let f = std::fs::File::create(&tmp)
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    let mut w = BufWriter::with_capacity(1 << 16, f);
    let mut err = None;
    zone.for_each_record(|r| {
        if err.is_none()
            && let Err(e) = tapis_dns::zonefile::write_record(&mut w, &r)
        {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(Error::io(format!("cannot write {}", tmp.display()), e));
    }
    w.flush()
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    w.get_ref()
        .sync_all()
        .map_err(|e| Error::io(format!("cannot sync {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("cannot rename to {}", path.display()), e))?;
    Ok(())
}

/// What a transfer brought.
pub enum Transferred {
    UpToDate,
    Full(Box<PolicyZone>),
    /// A full transfer of a zone we had, as a diff against it.
    Reload {
        plan: ReloadPlan,
        reload: Reload,
    },
    /// A full transfer that changed too much for an in-place reload.
    TooMuch,
    Diff {
        ops: Vec<(ZoneRecord, bool)>,
        serial: u32,
    },
}

/// Asks for an IXFR from `ours` (or an AXFR without one) and reads the
/// answer stream, verifying each message's TSIG.
pub async fn transfer(
    primary: SocketAddr,
    origin: &Name,
    key: Option<&TsigKey>,
    ours: Option<u32>,
    base: Option<Arc<PolicyZone>>,
) -> Result<Transferred, Error> {
    let ask = ours.map_or(Ask::Axfr, Ask::Ixfr);
    let what = format!(
        "{} of {origin}",
        if ours.is_some() { "IXFR" } else { "AXFR" }
    );
    let work = async {
        let request = tapis_dns::xfr::request(origin, ask, key);
        let mut conn = Connection::open(primary, request).await?;
        let mut reader = Stream::new(origin, ours, base);
        loop {
            let bytes = conn.next_answer(&what).await?;
            let m = Message::parse(&bytes)
                .map_err(|e| Error::Transfer(format!("{primary} sent a malformed message: {e}")))?;
            for r in &m.answers {
                let rec = zone_record(&m, r)
                    .map_err(|e| Error::Transfer(format!("bad record data for {}: {e}", r.name)))?;
                if reader.push(rec)? {
                    return reader.finish();
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), work)
        .await
        .map_err(|_| {
            Error::Transfer(format!(
                "transfer from {primary} took longer than 10 minutes"
            ))
        })?
}

/// Reads an AXFR or IXFR answer stream record by record: the toolkit's
/// [`Sequence`] says where each record belongs; this puts it there.
struct Stream {
    sequence: Sequence,
    /// The opening SOA, until the next record says what kind of transfer
    /// this is.
    opening: Option<ZoneRecord>,
    sink: Option<Sink>,
    ops: Vec<(ZoneRecord, bool)>,
    origin: Name,
    /// The zone in force, when a full transfer should be applied as a diff.
    base: Option<Arc<PolicyZone>>,
}

/// Where a full transfer goes: a zone built aside, or a reload done as a
/// diff against the zone in force (no second copy).
enum Sink {
    Build(Box<PolicyZone>),
    Diff(Reload),
}

impl Stream {
    fn new(origin: &Name, ours: Option<u32>, base: Option<Arc<PolicyZone>>) -> Stream {
        Stream {
            sequence: Sequence::new(origin, ours),
            opening: None,
            sink: None,
            ops: Vec::new(),
            origin: origin.clone(),
            base,
        }
    }

    /// Starts the full zone with the opening SOA.
    fn start_zone(&mut self) -> Result<(), Error> {
        self.sink = Some(match &self.base {
            Some(base) => Sink::Diff(base.reload_begin()),
            None => Sink::Build(Box::new(PolicyZone::new(&self.origin))),
        });
        match self.opening.take() {
            Some(first) => self.put(&first),
            None => Ok(()),
        }
    }

    fn put(&mut self, rec: &ZoneRecord) -> Result<(), Error> {
        match (&mut self.sink, &self.base) {
            (Some(Sink::Build(zone)), _) => zone.apply(rec, true),
            (Some(Sink::Diff(reload)), Some(base)) => base.reload_record(reload, rec),
            _ => Err(Error::Transfer("reload without a base".into())),
        }
    }

    /// Feeds a record; true when the stream is complete.
    fn push(&mut self, rec: ZoneRecord) -> Result<bool, Error> {
        match self.sequence.push_record(&rec)? {
            Step::Opening => self.opening = Some(rec),
            Step::Zone => {
                if self.sink.is_none() {
                    self.start_zone()?;
                }
                self.put(&rec)?;
            }
            Step::Delete => self.ops.push((rec, false)),
            Step::Add => self.ops.push((rec, true)),
            Step::Framing => {}
            Step::End => {
                // an AXFR of an empty zone: SOA, SOA
                if self.sequence.complete() == Some(Kind::Full) && self.sink.is_none() {
                    self.start_zone()?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn finish(self) -> Result<Transferred, Error> {
        match (self.sequence.complete(), self.sink) {
            (Some(Kind::UpToDate), _) => Ok(Transferred::UpToDate),
            (Some(Kind::Full), Some(Sink::Build(zone))) => Ok(Transferred::Full(zone)),
            (Some(Kind::Full), Some(Sink::Diff(reload))) => {
                if reload.overflowed() {
                    return Ok(Transferred::TooMuch);
                }
                let base = self
                    .base
                    .ok_or_else(|| Error::Transfer("reload without a base".into()))?;
                let plan = base.reload_plan(&reload);
                Ok(Transferred::Reload { plan, reload })
            }
            (Some(Kind::Incremental), _) => Ok(Transferred::Diff {
                ops: self.ops,
                serial: self.sequence.serial(),
            }),
            _ => Err(Error::Transfer("the transfer ended in the middle".into())),
        }
    }
}
