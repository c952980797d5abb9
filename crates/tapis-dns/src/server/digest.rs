//! The zone's ZONEMD digest (RFC 8976) as the primary serves it: the digest
//! of each serial it transfers, computed once from a snapshot (one at a
//! time: concurrent transfers of a new serial wait for the one
//! computation), remembered for the last few serials, and handed to the
//! zone source to keep and log (`ZoneSource::digest_computed`); a digest
//! the source already keeps (another process computed it) is taken from
//! there instead.

use std::collections::VecDeque;

use tracing::warn;

use super::Primary;
use crate::source::ZoneSource;
use crate::zonemd::{Digester, ZoneDigest, digest_stream};

/// Serials whose digest is remembered in memory.
const REMEMBERED: usize = 64;

#[derive(Debug, Default)]
pub(super) struct Digests {
    recent: std::sync::Mutex<VecDeque<ZoneDigest>>,
    computing: tokio::sync::Mutex<()>,
}

impl Digests {
    fn get(&self, serial: u32) -> Option<ZoneDigest> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|d| d.serial == serial)
            .copied()
    }

    fn put(&self, d: ZoneDigest) {
        let mut r = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.iter().any(|x| x.serial == d.serial) {
            return;
        }
        r.push_back(d);
        while r.len() > REMEMBERED {
            r.pop_front();
        }
    }
}

impl<S: ZoneSource> Primary<S> {
    /// The digest of `serial` if it is known (remembered, or kept by the
    /// source), without computing anything: the digest a secondary holding
    /// `serial` got from this primary.
    pub(super) async fn known_digest(&self, serial: u32) -> Option<ZoneDigest> {
        let digests = &self.inner.digests;
        if let Some(d) = digests.get(serial) {
            return Some(d);
        }
        match self.inner.source.known_digest(serial).await {
            Ok(Some(d)) if d.serial == serial => {
                digests.put(d);
                Some(d)
            }
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, serial, "zone source failed (known digest)");
                None
            }
        }
    }

    /// The digest of the zone at `serial`: known, or computed now from a
    /// snapshot if `serial` is still the current one (else `None`: the
    /// zone moved on). A computed digest is handed to the source.
    pub async fn zone_digest(&self, serial: u32) -> Option<ZoneDigest> {
        if let Some(d) = self.inner.digests.get(serial) {
            return Some(d);
        }
        let _one = self.inner.digests.computing.lock().await;
        if let Some(d) = self.known_digest(serial).await {
            return Some(d);
        }
        let snapshot = match self.inner.source.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "zone source failed (snapshot for the digest)");
                return None;
            }
        };
        if snapshot.serial != serial {
            return None;
        }
        let started = std::time::Instant::now();
        let d = match digest_stream(Digester::for_zone(self.inner.zone.clone()), snapshot).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, serial, "zone digest not computed");
                return None;
            }
        };
        tracing::info!(serial, digest = %d.hex(), elapsed_ms = started.elapsed().as_millis() as u64, "zone digest (ZONEMD) computed");
        self.inner.digests.put(d);
        if let Err(e) = self.inner.source.digest_computed(d).await {
            warn!(error = %e, serial, "zone digest not kept by the source");
        }
        Some(d)
    }

    /// The digest of the zone as it is now (computed if needed; a few
    /// tries if the serial moves meanwhile): what to log and have ready
    /// before telling secondaries about a serial.
    pub async fn current_digest(&self) -> Option<ZoneDigest> {
        for _ in 0..3 {
            let serial = self.serial().await?;
            if let Some(d) = self.zone_digest(serial).await {
                return Some(d);
            }
        }
        None
    }
}
