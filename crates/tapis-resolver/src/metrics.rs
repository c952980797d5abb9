//! Counters kept in atomics and rendered in the Prometheus text format on a
//! separate port (`GET /metrics`).
//!
//! Why no metrics or HTTP crate: the hot path only bumps atomics (no
//! registry lookup, no lock), and the endpoint is one path answered with
//! one body and `Connection: close` (`server::metrics_loop`: request head
//! at most 8 KiB, 5 s to send it, anything else 404). Serving that with
//! axum/hyper would add 31 crates to the resolver's 99 (axum as the
//! workspace configures it, counted with `cargo tree -e normal` on
//! 2026-12-03) for a scrape a few times a minute; the `prometheus` crate
//! would add a registry and its own locking for counters that are
//! already atomics. The format written is the plain text exposition
//! format 0.0.4, checked by the forwarder tests.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::policy::Action;

/// Upper bounds of the upstream latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// Per followed zone.
#[derive(Default)]
pub struct ZoneStats {
    pub serial: AtomicU64,
    /// Unix seconds of the last successful load or refresh check.
    pub refreshed_at: AtomicU64,
    /// Unix seconds of the last change applied.
    pub changed_at: AtomicU64,
    pub entries: AtomicU64,
    pub transfers_ok: AtomicU64,
    pub transfers_failed: AtomicU64,
    pub last_load_ms: AtomicU64,
    pub axfr: AtomicU64,
    pub ixfr: AtomicU64,
}

pub struct Metrics {
    pub queries_udp: AtomicU64,
    pub queries_tcp: AtomicU64,
    pub formerr: AtomicU64,
    pub dropped: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub servfail: AtomicU64,
    hits: Vec<[AtomicU64; 6]>,
    zone_names: Vec<String>,
    pub zones: Vec<ZoneStats>,
    upstream_names: Vec<String>,
    upstream_latency: Vec<Histogram>,
    upstream_failures: Vec<AtomicU64>,
}

impl Metrics {
    pub fn new(zone_names: Vec<String>, upstream_names: Vec<String>) -> Metrics {
        Metrics {
            queries_udp: AtomicU64::new(0),
            queries_tcp: AtomicU64::new(0),
            formerr: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            servfail: AtomicU64::new(0),
            hits: zone_names.iter().map(|_| Default::default()).collect(),
            zones: zone_names.iter().map(|_| ZoneStats::default()).collect(),
            zone_names,
            upstream_latency: upstream_names
                .iter()
                .map(|_| Histogram::default())
                .collect(),
            upstream_failures: upstream_names.iter().map(|_| AtomicU64::new(0)).collect(),
            upstream_names,
        }
    }

    pub fn policy_hit(&self, zone: usize, action: Action) {
        if let Some(z) = self.hits.get(zone) {
            z[action.index()].fetch_add(1, Relaxed);
        }
    }

    pub fn upstream_latency(&self, i: usize, d: Duration) {
        if let Some(h) = self.upstream_latency.get(i) {
            let s = d.as_secs_f64();
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                if s <= *b {
                    c.fetch_add(1, Relaxed);
                }
            }
            h.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
            h.count.fetch_add(1, Relaxed);
        }
    }

    pub fn upstream_failure(&self, i: usize) {
        if let Some(c) = self.upstream_failures.get(i) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, now_unix: u64, cache_entries: usize, upstream_up: &[bool]) -> String {
        let mut s = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "tapis_resolver_queries_udp_total",
            "Queries received over UDP.",
            self.queries_udp.load(Relaxed),
        );
        counter(
            "tapis_resolver_queries_tcp_total",
            "Queries received over TCP.",
            self.queries_tcp.load(Relaxed),
        );
        counter(
            "tapis_resolver_formerr_total",
            "Malformed queries answered with FORMERR or another error.",
            self.formerr.load(Relaxed),
        );
        counter(
            "tapis_resolver_dropped_total",
            "Messages dropped without an answer (responses, too short, RPZ DROP).",
            self.dropped.load(Relaxed),
        );
        counter(
            "tapis_resolver_cache_hits_total",
            "Answers served from the cache.",
            self.cache_hits.load(Relaxed),
        );
        counter(
            "tapis_resolver_cache_misses_total",
            "Queries forwarded because the cache had no answer.",
            self.cache_misses.load(Relaxed),
        );
        counter(
            "tapis_resolver_servfail_total",
            "SERVFAIL answers (no upstream answered).",
            self.servfail.load(Relaxed),
        );
        let hits = self.cache_hits.load(Relaxed) as f64;
        let misses = self.cache_misses.load(Relaxed) as f64;
        let ratio = if hits + misses > 0.0 {
            hits / (hits + misses)
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_cache_hit_ratio Cache hits over cache lookups since start.\n# TYPE tapis_resolver_cache_hit_ratio gauge\ntapis_resolver_cache_hit_ratio {ratio}"
        );
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_cache_entries Answers held in the cache.\n# TYPE tapis_resolver_cache_entries gauge\ntapis_resolver_cache_entries {cache_entries}"
        );
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_policy_hits_total Queries answered by a policy, by zone and action.\n# TYPE tapis_resolver_policy_hits_total counter"
        );
        for (z, counts) in self.zone_names.iter().zip(&self.hits) {
            for a in Action::ALL {
                let _ = writeln!(
                    s,
                    "tapis_resolver_policy_hits_total{{zone=\"{}\",action=\"{}\"}} {}",
                    escape(z),
                    a.as_str(),
                    counts[a.index()].load(Relaxed)
                );
            }
        }
        let gauge = |s: &mut String, name: &str, help: &str, f: &dyn Fn(&ZoneStats) -> String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (z, st) in self.zone_names.iter().zip(&self.zones) {
                let _ = writeln!(s, "{name}{{zone=\"{}\"}} {}", escape(z), f(st));
            }
        };
        gauge(
            &mut s,
            "tapis_resolver_zone_serial",
            "SOA serial of the policy in force.",
            &|z| z.serial.load(Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "tapis_resolver_zone_entries",
            "Trigger names in the policy in force.",
            &|z| z.entries.load(Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "tapis_resolver_zone_age_seconds",
            "Seconds since the policy was last confirmed current with its source.",
            &|z| {
                let t = z.refreshed_at.load(Relaxed);
                if t == 0 {
                    "NaN".into()
                } else {
                    now_unix.saturating_sub(t).to_string()
                }
            },
        );
        gauge(
            &mut s,
            "tapis_resolver_zone_changed_seconds",
            "Seconds since the policy last changed.",
            &|z| {
                let t = z.changed_at.load(Relaxed);
                if t == 0 {
                    "NaN".into()
                } else {
                    now_unix.saturating_sub(t).to_string()
                }
            },
        );
        gauge(
            &mut s,
            "tapis_resolver_zone_last_load_seconds",
            "Duration of the last transfer or file load applied.",
            &|z| format!("{}", z.last_load_ms.load(Relaxed) as f64 / 1000.0),
        );
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_zone_transfers_total Transfers and loads, by result.\n# TYPE tapis_resolver_zone_transfers_total counter"
        );
        for (z, st) in self.zone_names.iter().zip(&self.zones) {
            let _ = writeln!(
                s,
                "tapis_resolver_zone_transfers_total{{zone=\"{}\",result=\"ok\"}} {}",
                escape(z),
                st.transfers_ok.load(Relaxed)
            );
            let _ = writeln!(
                s,
                "tapis_resolver_zone_transfers_total{{zone=\"{}\",result=\"failed\"}} {}",
                escape(z),
                st.transfers_failed.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_zone_updates_total Changes installed from a primary, by kind.\n# TYPE tapis_resolver_zone_updates_total counter"
        );
        for (z, st) in self.zone_names.iter().zip(&self.zones) {
            for (kind, v) in [("axfr", &st.axfr), ("ixfr", &st.ixfr)] {
                let _ = writeln!(
                    s,
                    "tapis_resolver_zone_updates_total{{zone=\"{}\",kind=\"{kind}\"}} {}",
                    escape(z),
                    v.load(Relaxed)
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_upstream_up Whether the upstream is considered healthy.\n# TYPE tapis_resolver_upstream_up gauge"
        );
        for (i, u) in self.upstream_names.iter().enumerate() {
            let up = upstream_up.get(i).copied().unwrap_or(false);
            let _ = writeln!(
                s,
                "tapis_resolver_upstream_up{{upstream=\"{}\"}} {}",
                escape(u),
                u8::from(up)
            );
        }
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_upstream_failures_total Upstream exchanges that failed (timeout or error).\n# TYPE tapis_resolver_upstream_failures_total counter"
        );
        for (u, c) in self.upstream_names.iter().zip(&self.upstream_failures) {
            let _ = writeln!(
                s,
                "tapis_resolver_upstream_failures_total{{upstream=\"{}\"}} {}",
                escape(u),
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP tapis_resolver_upstream_latency_seconds Upstream answer latency.\n# TYPE tapis_resolver_upstream_latency_seconds histogram"
        );
        for (u, h) in self.upstream_names.iter().zip(&self.upstream_latency) {
            let u = escape(u);
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    s,
                    "tapis_resolver_upstream_latency_seconds_bucket{{upstream=\"{u}\",le=\"{b}\"}} {}",
                    c.load(Relaxed)
                );
            }
            let count = h.count.load(Relaxed);
            let _ = writeln!(
                s,
                "tapis_resolver_upstream_latency_seconds_bucket{{upstream=\"{u}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                s,
                "tapis_resolver_upstream_latency_seconds_sum{{upstream=\"{u}\"}} {}",
                h.sum_us.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "tapis_resolver_upstream_latency_seconds_count{{upstream=\"{u}\"}} {count}"
            );
        }
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
