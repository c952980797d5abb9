//! The answer cache: upstream answers kept whole (minus their OPT record),
//! keyed by lowercase name, type and class, for the smallest TTL in them
//! (RFC 2308 for negative answers: the SOA's TTL capped by its MINIMUM).
//! A hit copies the answer into the caller's buffer, writes the client's id
//! and question over it and counts the TTLs down: no allocation.
//!
//! Negative answers are cached per (name, type), NXDOMAIN included (a
//! simplification: RFC 2308 lets an NXDOMAIN cover every type).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tapis_dns::wire::{HEADER_LEN, Message, Rcode, flags, rtype};

use crate::packet::{Query, push_opt, truncate};

const SHARDS: usize = 16;

/// A small multiplicative hasher for byte keys (cache keys are client
/// names: a per-process random seed keeps collisions unpredictable).
#[derive(Clone, Copy)]
pub struct SeededHash(u64);

pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (h >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 ^= crate::table::hash(bytes);
        self.0 = self.0.rotate_left(23).wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
}

impl BuildHasher for SeededHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

struct Entry {
    /// The answer: header, question, records; no OPT.
    msg: Box<[u8]>,
    /// Where each record's TTL is.
    ttl_at: Box<[u16]>,
    stored: Instant,
    ttl: u32,
}

struct Shard {
    map: HashMap<Box<[u8]>, Entry, SeededHash>,
    bytes: usize,
}

/// Limits.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub max_bytes: usize,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
}

pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    limits: CacheLimits,
    hasher: SeededHash,
    clock: CacheClock,
}

/// Where the cache reads the time: the monotonic clock plus an offset that
/// only tests move ([`CacheClock::advance`]), so TTL countdown and expiry
/// are tested without waiting on the real clock. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct CacheClock {
    offset_ms: Arc<AtomicU64>,
}

impl CacheClock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The cache key of a query: lowercase name, type, class.
pub fn key<'b>(q: &Query<'_>, buf: &'b mut [u8; 259]) -> &'b [u8] {
    let n = q.qname_lower();
    buf[..n.len()].copy_from_slice(n);
    buf[n.len()..n.len() + 2].copy_from_slice(&q.qtype.to_be_bytes());
    buf[n.len() + 2..n.len() + 4].copy_from_slice(&q.qclass.to_be_bytes());
    &buf[..n.len() + 4]
}

impl Cache {
    pub fn new(limits: CacheLimits) -> Cache {
        let seed = rand::random::<u64>();
        Cache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::with_hasher(SeededHash(seed)),
                        bytes: 0,
                    })
                })
                .collect(),
            limits,
            hasher: SeededHash(seed),
            clock: CacheClock::default(),
        }
    }

    /// The clock entries age by (tests advance it).
    pub fn clock(&self) -> &CacheClock {
        &self.clock
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h >> 59) as usize % SHARDS]
    }

    /// Entries held (for metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the cached answer to `q` into `out`; false on a miss.
    pub fn answer(&self, q: &Query<'_>, our_udp: u16, limit: usize, out: &mut Vec<u8>) -> bool {
        let mut kb = [0u8; 259];
        let k = key(q, &mut kb);
        let now = self.clock.now();
        let shard = self.shard(k);
        {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(e) = s.map.get(k) else {
                return false;
            };
            let age = now.saturating_duration_since(e.stored).as_secs();
            if age >= u64::from(e.ttl) {
                if let Some(e) = s.map.remove(k) {
                    s.bytes -= e.msg.len() + k.len() + 64;
                }
                return false;
            }
            out.clear();
            out.extend_from_slice(&e.msg);
            let age = age as u32;
            for &at in e.ttl_at.iter() {
                let at = usize::from(at);
                let t = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
                out[at..at + 4].copy_from_slice(&t.saturating_sub(age).to_be_bytes());
            }
        }
        out[0..2].copy_from_slice(&q.id.to_be_bytes());
        // RD as the client asked; RA; not authoritative
        let f = u16::from_be_bytes([out[2], out[3]]);
        let f = (f & !(flags::RD | flags::AA | flags::TC)) | (q.flags & flags::RD) | flags::RA;
        out[2..4].copy_from_slice(&f.to_be_bytes());
        out[HEADER_LEN..q.question_end].copy_from_slice(q.question());
        if q.edns.is_some() {
            push_opt(out, our_udp, None, 0);
        }
        if out.len() > limit {
            truncate(out, q, our_udp);
        }
        true
    }

    /// Stores an upstream answer to `q` (already matched to it); returns
    /// the answer without its OPT record, ready to be sent through
    /// [`Cache::answer`]'s rewriting, or `None` if it cannot be used.
    pub fn store(&self, q: &Query<'_>, upstream: &[u8]) -> Option<Prepared> {
        let prepared = prepare(upstream, &self.limits)?;
        if prepared.ttl > 0 {
            let mut kb = [0u8; 259];
            let k = key(q, &mut kb);
            let size = prepared.msg.len() + k.len() + 64;
            let per_shard = self.limits.max_bytes / SHARDS;
            if size <= per_shard {
                let mut s = self.shard(k).lock().unwrap_or_else(PoisonError::into_inner);
                if s.bytes + size > per_shard {
                    // Free a tenth at once, so a full cache scans its
                    // entries once per many inserts, not on every insert.
                    let now = self.clock.now();
                    evict(
                        &mut s,
                        per_shard / 10 * 9 - size.min(per_shard / 10 * 9),
                        now,
                    );
                }
                let e = Entry {
                    msg: prepared.msg.clone().into_boxed_slice(),
                    ttl_at: prepared.ttl_at.clone().into_boxed_slice(),
                    stored: self.clock.now(),
                    ttl: prepared.ttl,
                };
                if let Some(old) = s.map.insert(k.into(), e) {
                    s.bytes -= old.msg.len() + k.len() + 64;
                }
                s.bytes += size;
            }
        }
        Some(prepared)
    }
}

fn evict(s: &mut Shard, target: usize, now: Instant) {
    let mut freed = 0;
    s.map.retain(|k, e| {
        let keep = now.saturating_duration_since(e.stored).as_secs() < u64::from(e.ttl);
        if !keep {
            freed += e.msg.len() + k.len() + 64;
        }
        keep
    });
    s.bytes -= freed;
    if s.bytes > target {
        // Still full: drop arbitrary entries (hash order is effectively
        // random) until there is room.
        let mut drop_keys = Vec::new();
        let mut would = s.bytes;
        for (k, e) in &s.map {
            if would <= target {
                break;
            }
            would -= e.msg.len() + k.len() + 64;
            drop_keys.push(k.clone());
        }
        for k in drop_keys {
            if let Some(e) = s.map.remove(&k) {
                s.bytes -= e.msg.len() + k.len() + 64;
            }
        }
    }
}

/// An upstream answer made ready to cache and to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub msg: Vec<u8>,
    pub ttl_at: Vec<u16>,
    /// Seconds it may be cached (0: not at all).
    pub ttl: u32,
    pub rcode: Rcode,
}

/// Makes an upstream answer minimal, caps its TTLs, and works out how long
/// it may be cached.
pub fn prepare(upstream: &[u8], limits: &CacheLimits) -> Option<Prepared> {
    let m = Message::parse(upstream).ok()?;
    if m.questions.len() != 1 {
        return None;
    }
    let rcode = m.header.rcode();
    // Minimal responses (as Unbound's default): a positive answer keeps
    // its answer section only, a negative one its authority (the SOA);
    // the additional section (glue, the upstream's OPT) is never passed on.
    let positive = !m.answers.is_empty();
    let cut = if positive {
        m.authority.first().or(m.additional.first())
    } else {
        m.additional.first()
    }
    .map_or(upstream.len(), |r| r.start);
    let mut msg = upstream[..cut].to_vec();
    msg[10..12].copy_from_slice(&[0, 0]);
    if positive {
        msg[8..10].copy_from_slice(&[0, 0]);
    }
    let mut ttl_at = Vec::new();
    let mut min_ttl = u32::MAX;
    let mut soa_neg: Option<u32> = None;
    for (i, r) in m.records().enumerate() {
        if r.start >= cut {
            break;
        }
        let at = r.rdata.start - 6;
        let Ok(at16) = u16::try_from(at) else {
            return None;
        };
        let capped = r.ttl.min(limits.max_ttl);
        msg[at..at + 4].copy_from_slice(&capped.to_be_bytes());
        ttl_at.push(at16);
        let in_answer_or_authority = i < m.answers.len() + m.authority.len();
        if in_answer_or_authority {
            min_ttl = min_ttl.min(capped);
        }
        if r.rtype == rtype::SOA
            && i >= m.answers.len()
            && i < m.answers.len() + m.authority.len()
            && r.rdata.end >= 4
            && let Some(t) = upstream.get(r.rdata.end - 4..r.rdata.end)
        {
            let minimum = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
            soa_neg = Some(r.ttl.min(minimum).min(limits.max_negative_ttl));
        }
    }
    let negative = m.answers.is_empty();
    let ttl = match rcode {
        Rcode::NOERROR if !negative => min_ttl,
        Rcode::NOERROR | Rcode::NXDOMAIN if negative => soa_neg.unwrap_or(0),
        _ => 0,
    };
    let ttl = if m.header.flags & flags::TC != 0 {
        0
    } else {
        ttl
    };
    Some(Prepared {
        msg,
        ttl_at,
        ttl: if ttl == u32::MAX { 0 } else { ttl },
        rcode,
    })
}

/// Sends a prepared (uncached or just cached) answer to `q`, as a cache hit
/// would.
pub fn answer_prepared(p: &Prepared, q: &Query<'_>, our_udp: u16, limit: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&p.msg);
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    let f = u16::from_be_bytes([out[2], out[3]]);
    let f = (f & !(flags::RD | flags::AA | flags::TC)) | (q.flags & flags::RD) | flags::RA;
    out[2..4].copy_from_slice(&f.to_be_bytes());
    if out.len() >= q.question_end {
        out[HEADER_LEN..q.question_end].copy_from_slice(q.question());
    }
    if q.edns.is_some() {
        push_opt(out, our_udp, None, 0);
    }
    if out.len() > limit {
        truncate(out, q, our_udp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(name: &[u8], ttl: u32) -> (Vec<u8>, Vec<u8>) {
        let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        let mut a = q.clone();
        a[2] = 0x81;
        a[7] = 1;
        a.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        a.extend_from_slice(&ttl.to_be_bytes());
        a.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        (q, a)
    }

    #[test]
    fn a_full_cache_stays_within_budget_and_keeps_answering() {
        let limits = CacheLimits {
            max_bytes: 16 * 4096,
            max_ttl: 3600,
            max_negative_ttl: 60,
        };
        let c = Cache::new(limits);
        let mut out = Vec::new();
        for i in 0..20_000u32 {
            let name = format!("\x08n{i:07}\x04test\x00");
            let (q, a) = answer(name.as_bytes(), 300);
            let q = Query::parse(&q).expect("query");
            let p = c.store(&q, &a).expect("stored");
            assert_eq!(p.ttl, 300);
            // the newest entry is always there
            assert!(c.answer(&q, 1232, 512, &mut out));
        }
        let bytes: usize = c
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum();
        assert!(bytes <= limits.max_bytes, "{bytes}");
        assert!(c.len() > 100, "{}", c.len());
    }

    #[test]
    fn ttls_count_down_and_expire_on_the_cache_clock() {
        let c = Cache::new(CacheLimits {
            max_bytes: 1 << 20,
            max_ttl: 3600,
            max_negative_ttl: 60,
        });
        let (q, a) = answer(b"\x01a\x04test\x00", 300);
        let q = Query::parse(&q).expect("query");
        c.store(&q, &a).expect("stored");
        let ttl = |out: &[u8]| {
            let m = tapis_dns::wire::Message::parse(out).expect("answer");
            m.answers[0].ttl
        };
        let mut out = Vec::new();
        assert!(c.answer(&q, 1232, 512, &mut out));
        assert_eq!(ttl(&out), 300);
        c.clock().clone().advance(Duration::from_secs(2));
        assert!(c.answer(&q, 1232, 512, &mut out));
        assert_eq!(ttl(&out), 298, "counted down by the time it was held");
        c.clock().advance(Duration::from_secs(298));
        assert!(!c.answer(&q, 1232, 512, &mut out), "expired at its TTL");
        assert!(c.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn ttls_are_capped() {
        let limits = CacheLimits {
            max_bytes: 1 << 20,
            max_ttl: 100,
            max_negative_ttl: 60,
        };
        let (_, a) = answer(b"\x01a\x04test\x00", 86_400);
        let p = prepare(&a, &limits).expect("prepared");
        assert_eq!(p.ttl, 100);
    }

    #[test]
    fn positive_answers_are_made_minimal() {
        let limits = CacheLimits {
            max_bytes: 1 << 20,
            max_ttl: 3600,
            max_negative_ttl: 60,
        };
        let (_, mut a) = answer(b"\x01a\x04test\x00", 300);
        // an NS in authority, glue and an OPT in additional
        a[9] = 1;
        a[11] = 2;
        a.extend_from_slice(&[
            0xC0, 14, 0, 2, 0, 1, 0, 0, 0, 60, 0, 5, 2, b'n', b's', 0xC0, 14,
        ]);
        a.extend_from_slice(&[0xC0, 0x34, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53]);
        a.extend_from_slice(&[0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]);
        tapis_dns::wire::Message::parse(&a).expect("valid test answer");
        let p = prepare(&a, &limits).expect("prepared");
        let m = tapis_dns::wire::Message::parse(&p.msg).expect("parses");
        assert_eq!(
            (m.answers.len(), m.authority.len(), m.additional.len()),
            (1, 0, 0)
        );
        assert_eq!(p.ttl, 300, "only the answer section counts");
    }
}
