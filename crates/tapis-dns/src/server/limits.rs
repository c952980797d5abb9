//! What a stranger may hold of the primary, and how loudly it may make it
//! complain: TCP connection slots (a total, a share per address, and a
//! reserve only peers known to be entitled may use), the addresses that
//! recently proved a TSIG key, the TSIG replay cache, and log lines
//! limited per kind.
//!
//! A peer is *entitled* when its address is on the unsigned-transfer allow
//! list, or it sent a request whose TSIG verified within the last
//! [`SIGNER_MEMORY`] (secondaries poll the SOA, signed, before they
//! transfer). Everyone else shares `max − reserved` connections; a
//! connection whose first message verifies moves to the entitled class
//! and frees its shared slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an address that sent a verified TSIG request counts as
/// entitled to the reserved TCP slots.
pub const SIGNER_MEMORY: Duration = Duration::from_secs(3600);
/// Addresses remembered as signers at most (beyond this, new ones are not
/// remembered until old ones expire: a key holder is not a stranger, but
/// memory stays bounded).
const MAX_SIGNERS: usize = 4096;
/// Accepted MACs remembered at most for replay detection (each for the
/// fudge window); beyond this the oldest are forgotten first.
const MAX_REPLAY: usize = 65_536;
/// At most one log line per kind in this long.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The key connections are counted under: an IPv4 address, or the /64 of
/// an IPv6 address (one host usually holds a whole /64).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Total,
    PerAddress,
    Shared,
}

impl Refused {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "all TCP connections in use",
            Refused::PerAddress => "too many TCP connections from this address",
            Refused::Shared => {
                "TCP connections for unsigned strangers in use (the rest are reserved)"
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Connections of peers not (yet) known to be entitled.
    shared: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The primary's TCP connections, counted.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    counts: Arc<Mutex<Counts>>,
}

/// The limits [`Slots::admit`] applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotLimits {
    pub(crate) max: usize,
    pub(crate) reserved: usize,
    pub(crate) per_address: usize,
}

impl Slots {
    /// Admit a connection from `ip` (entitled or not), or say why not.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        entitled: bool,
        limits: SlotLimits,
    ) -> Result<Slot, Refused> {
        let key = address_key(ip);
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= limits.max {
            return Err(Refused::Total);
        }
        if c.by_address.get(&key).copied().unwrap_or(0) >= limits.per_address {
            return Err(Refused::PerAddress);
        }
        if !entitled && c.shared >= limits.max.saturating_sub(limits.reserved) {
            return Err(Refused::Shared);
        }
        c.total += 1;
        if !entitled {
            c.shared += 1;
        }
        *c.by_address.entry(key).or_default() += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            key,
            shared: !entitled,
        })
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (c.total, c.shared)
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<Mutex<Counts>>,
    key: IpAddr,
    shared: bool,
}

impl Slot {
    /// The peer proved a key: its connection no longer takes a shared slot.
    pub(crate) fn entitle(&mut self) {
        if self.shared {
            let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            c.shared = c.shared.saturating_sub(1);
            self.shared = false;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if self.shared {
            c.shared = c.shared.saturating_sub(1);
        }
        if let Some(n) = c.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.key);
            }
        }
    }
}

/// Addresses that recently sent a request whose TSIG verified.
#[derive(Debug, Default)]
pub(crate) struct Signers {
    seen: Mutex<HashMap<IpAddr, Instant>>,
}

impl Signers {
    pub(crate) fn remember(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_SIGNERS && !seen.contains_key(&ip) {
            seen.retain(|_, at| now.duration_since(*at) < SIGNER_MEMORY);
            if seen.len() >= MAX_SIGNERS {
                return;
            }
        }
        seen.insert(ip.to_canonical(), now);
    }

    pub(crate) fn knows(&self, ip: IpAddr) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(&ip.to_canonical())
            .is_some_and(|at| at.elapsed() < SIGNER_MEMORY)
    }
}

/// MACs of signed requests already accepted, each kept until its signing
/// time is outside the fudge window (after that the time check refuses a
/// replay anyway).
#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    inner: Mutex<ReplayInner>,
}

#[derive(Debug, Default)]
struct ReplayInner {
    /// MAC → the unix time until which it is remembered.
    seen: HashMap<Vec<u8>, u64>,
    /// The same, in insertion order, for expiry.
    order: std::collections::VecDeque<(u64, Vec<u8>)>,
}

impl ReplayCache {
    /// Records `mac` (valid until `until`, unix seconds) at `now`; false if
    /// it was already accepted and is still remembered: a replay.
    pub(crate) fn first_use(&self, mac: &[u8], until: u64, now: u64) -> bool {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // forget what is past its window, and the oldest beyond the bound
        // (entries are roughly in time order; one remembered a little
        // longer only makes the check stricter)
        while r
            .order
            .front()
            .is_some_and(|(t, _)| *t < now || r.order.len() >= MAX_REPLAY)
        {
            if let Some((t, old)) = r.order.pop_front()
                && r.seen.get(&old) == Some(&t)
            {
                r.seen.remove(&old);
            }
        }
        if r.seen.get(mac).is_some_and(|t| *t >= now) {
            return false;
        }
        r.seen.insert(mac.to_vec(), until);
        r.order.push_back((until, mac.to_vec()));
        true
    }
}

/// Log lines limited per kind: at most one every [`LOG_EVERY`], saying how
/// many were held back since the last.
#[derive(Debug, Default)]
pub(crate) struct Quiet {
    kinds: Mutex<HashMap<&'static str, (Option<Instant>, u64)>>,
}

impl Quiet {
    /// Whether a line of `kind` may be logged now: `Some(n)` with the
    /// number held back since the last one, or `None` (counted).
    pub(crate) fn allow(&self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut k = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, held) = k.entry(kind).or_insert((None, 0));
        match last {
            Some(t) if now.duration_since(*t) < LOG_EVERY => {
                *held += 1;
                None
            }
            _ => {
                *last = Some(now);
                Some(std::mem::take(held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SlotLimits {
        SlotLimits {
            max: 10,
            reserved: 4,
            per_address: 3,
        }
    }

    #[test]
    fn slots_keep_a_reserve_for_entitled_peers() {
        let slots = Slots::default();
        let ip = |i: u8| IpAddr::from([127, 0, 0, i]);
        let mut held = Vec::new();
        for i in 2..4 {
            for _ in 0..3 {
                held.push(slots.admit(ip(i), false, limits()).expect("room"));
            }
            assert_eq!(
                slots.admit(ip(i), false, limits()).err(),
                Some(Refused::PerAddress)
            );
        }
        assert_eq!(slots.counts(), (6, 6));
        assert_eq!(
            slots.admit(ip(9), false, limits()).err(),
            Some(Refused::Shared)
        );
        // an entitled peer uses the reserve
        let mut mine: Vec<Slot> = (0..3)
            .map(|_| slots.admit(ip(1), true, limits()).expect("reserve"))
            .collect();
        assert_eq!(slots.counts(), (9, 6));
        // a stranger's connection that proves a key frees its shared slot
        held[0].entitle();
        assert_eq!(slots.counts(), (9, 5));
        mine.push(slots.admit(ip(8), false, limits()).expect("shared room"));
        assert_eq!(
            slots.admit(ip(7), true, limits()).err(),
            Some(Refused::Total)
        );
        drop(mine);
        drop(held);
        assert_eq!(slots.counts(), (0, 0));
        // IPv6 counts by /64
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let _a: Vec<Slot> = (1..=3)
            .map(|i| slots.admit(v6(i), false, limits()).expect("room"))
            .collect();
        assert_eq!(
            slots.admit(v6(99), false, limits()).err(),
            Some(Refused::PerAddress)
        );
    }

    #[test]
    fn a_mac_is_accepted_once_within_its_window() {
        let r = ReplayCache::default();
        assert!(r.first_use(b"mac-1", 1300, 1000));
        assert!(!r.first_use(b"mac-1", 1300, 1001), "replayed");
        assert!(r.first_use(b"mac-2", 1300, 1001));
        // past its window it is forgotten (the time check refuses it then)
        assert!(r.first_use(b"mac-1", 1700, 1400));
    }

    #[test]
    fn log_lines_are_limited_per_kind() {
        let q = Quiet::default();
        let t0 = Instant::now();
        assert_eq!(q.allow_at("tsig", t0), Some(0));
        for i in 1..=50u64 {
            assert_eq!(
                q.allow_at("tsig", t0 + Duration::from_millis(i * 100)),
                None
            );
        }
        assert_eq!(q.allow_at("tcp", t0), Some(0), "kinds are apart");
        assert_eq!(q.allow_at("tsig", t0 + LOG_EVERY), Some(50));
        assert_eq!(q.allow_at("tsig", t0 + LOG_EVERY), None);
    }
}
