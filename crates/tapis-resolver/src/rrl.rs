//! Response-rate limiting over UDP: a UDP source address can be forged, so
//! without a limit anyone could aim the resolver's answers at a victim (an
//! amplifier: a 40-octet query buys an answer up to `max_udp_size`). Each
//! client prefix (/24 for IPv4, /56 for IPv6, as BIND's RRL) gets at most
//! `rate_limit` answers per second; past it, queries are dropped, except
//! every `slip`-th, which gets an empty answer with TC set, so a real client
//! caught by the limit retries over TCP (where a source cannot be forged,
//! and which this limit does not touch) while a forged flood reflects at
//! most a header and question per `slip` queries.
//!
//! The count is taken when a query arrives, before any lookup, so a flood
//! over the limit costs neither a policy lookup nor an upstream query.
//!
//! Memory is fixed: `SLOTS` 64-bit atomics (512 KiB), four ways per
//! bucket, each slot holding a 32-bit tag of the prefix's keyed hash, the
//! second it was last counted in (16 bits) and that second's count (16
//! bits). A prefix not found takes the stalest (or least counted) slot of
//! its bucket. Nothing is allocated or locked on the way; a lost race
//! between two threads miscounts by one.
//!
//! Loopback (`rate_limit_exempt`'s default) is exempt: the kernel drops
//! loopback sources arriving from the network, so they cannot be forged.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::access::{Cidr, any_contains, canonical};

/// Slots in the table (a power of two).
pub const SLOTS: usize = 1 << 16;
const WAYS: usize = 4;

/// What to do with a query from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Within the limit: answer.
    Send,
    /// Over it, and this one slips: an empty truncated answer.
    Slip,
    /// Over it: say nothing.
    Drop,
}

/// The limiter's settings.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Answers per second per prefix; 0: no limit.
    pub rate: u32,
    /// Every `slip`-th query over the limit is answered with TC; 0: none.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub exempt: Vec<Cidr>,
}

pub struct RateLimiter {
    slots: Box<[AtomicU64]>,
    limits: RateLimits,
    exempt: Box<[Cidr]>,
    seed: u64,
    start: Instant,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn pack(tag: u32, sec: u16, count: u16) -> u64 {
    (u64::from(tag) << 32) | (u64::from(sec) << 16) | u64::from(count)
}

fn unpack(v: u64) -> (u32, u16, u16) {
    ((v >> 32) as u32, (v >> 16) as u16, v as u16)
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            exempt: limits.exempt.clone().into_boxed_slice(),
            limits,
            seed: rand::random(),
            start: Instant::now(),
        }
    }

    /// The client prefix `ip` is counted under: IPv4 as IPv4-mapped IPv6,
    /// host bits cleared.
    fn prefix(&self, ip: IpAddr) -> u128 {
        let (bits, len) = match canonical(ip) {
            IpAddr::V4(a) => (
                u128::from(a.to_ipv6_mapped()),
                96 + u32::from(self.limits.ipv4_prefix),
            ),
            IpAddr::V6(a) => (u128::from(a), u32::from(self.limits.ipv6_prefix)),
        };
        bits & u128::MAX.checked_shl(128 - len).unwrap_or(0)
    }

    /// Counts a query from `ip` and says what to do with it.
    #[inline]
    pub fn check(&self, ip: IpAddr) -> Rate {
        if self.limits.rate == 0 || any_contains(&self.exempt, ip) {
            return Rate::Send;
        }
        let p = self.prefix(ip);
        let h = mix(p as u64 ^ self.seed) ^ mix((p >> 64) as u64 ^ self.seed.rotate_left(32));
        // 0 marks an empty slot: never a tag
        let tag = ((h >> 32) as u32) | 1;
        let bucket = (h as usize & (SLOTS / WAYS - 1)) * WAYS;
        let now = (self.start.elapsed().as_secs() & 0xFFFF) as u16;
        let ways = &self.slots[bucket..bucket + WAYS];
        for slot in ways {
            let mut cur = slot.load(Relaxed);
            loop {
                let (t, sec, count) = unpack(cur);
                if t != tag {
                    break;
                }
                let count = if sec == now {
                    count.saturating_add(1)
                } else {
                    1
                };
                match slot.compare_exchange_weak(cur, pack(tag, now, count), Relaxed, Relaxed) {
                    Ok(_) => return self.verdict(count),
                    Err(v) => cur = v,
                }
            }
        }
        // not tracked: take the slot counted least this second
        let weight = |v: u64| {
            let (t, sec, count) = unpack(v);
            if t == 0 || sec != now { 0 } else { count }
        };
        let victim = ways
            .iter()
            .min_by_key(|s| weight(s.load(Relaxed)))
            .unwrap_or(&ways[0]);
        victim.store(pack(tag, now, 1), Relaxed);
        self.verdict(1)
    }

    fn verdict(&self, count: u16) -> Rate {
        let count = u32::from(count);
        if count <= self.limits.rate {
            return Rate::Send;
        }
        let over = count - self.limits.rate;
        if self.limits.slip > 0 && over.is_multiple_of(self.limits.slip) {
            Rate::Slip
        } else {
            Rate::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RateLimits {
            rate,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec!["127.0.0.0/8".parse().expect("cidr")],
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn limits_per_prefix_with_slips() {
        let l = limiter(10, 2);
        let verdicts: Vec<Rate> = (0..30).map(|_| l.check(ip("192.0.2.7"))).collect();
        // a second boundary may fall inside the run: at least the first
        // ten are sent, and past the limit every second query slips
        assert!(verdicts[..10].iter().all(|v| *v == Rate::Send));
        if verdicts.iter().filter(|v| **v == Rate::Send).count() == 10 {
            assert_eq!(verdicts[10], Rate::Drop);
            assert_eq!(verdicts[11], Rate::Slip);
            assert_eq!(verdicts[12], Rate::Drop);
        }
        assert!(verdicts.contains(&Rate::Slip) || verdicts.len() < 12);
        // same /24: counted together; another /24: its own budget
        assert_ne!(l.check(ip("192.0.2.200")), Rate::Send);
        assert_eq!(l.check(ip("192.0.3.1")), Rate::Send);
        // IPv6 by /56; mapped IPv4 is IPv4
        assert_ne!(l.check(ip("::ffff:192.0.2.9")), Rate::Send);
        for _ in 0..10 {
            assert_eq!(l.check(ip("2001:db8:0:100::1")), Rate::Send);
        }
        assert_ne!(l.check(ip("2001:db8:0:1ff::2")), Rate::Send);
        assert_eq!(l.check(ip("2001:db8:0:200::1")), Rate::Send);
        // exempt, and off
        assert!((0..100).all(|_| l.check(ip("127.0.0.1")) == Rate::Send));
        let off = limiter(0, 2);
        assert!((0..100).all(|_| off.check(ip("192.0.2.1")) == Rate::Send));
        // slip 0: everything over the limit is dropped
        let l = limiter(1, 0);
        let v: Vec<Rate> = (0..5).map(|_| l.check(ip("198.51.100.1"))).collect();
        assert!(!v.contains(&Rate::Slip));
    }
}
