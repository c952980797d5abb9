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
    /// Queries from clients outside `allow_query`.
    pub refused_clients: AtomicU64,
    /// Upstream exchanges in flight now (gauge; `flight.rs`).
    pub upstream_in_flight: AtomicU64,
    /// Clients waiting on another's exchange now (gauge).
    pub upstream_waiting: AtomicU64,
    /// Misses that joined an exchange already asking their question.
    pub upstream_coalesced: AtomicU64,
    /// Misses answered SERVFAIL because the in-flight cap was reached.
    pub upstream_over_cap: AtomicU64,
    /// TCP connections closed at once because max_tcp_clients were open.
    pub tcp_refused: AtomicU64,
    /// UDP queries over the rate limit, dropped / answered with TC.
    pub rrl_dropped: AtomicU64,
    pub rrl_slipped: AtomicU64,
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
            refused_clients: AtomicU64::new(0),
            upstream_in_flight: AtomicU64::new(0),
            upstream_waiting: AtomicU64::new(0),
            upstream_coalesced: AtomicU64::new(0),
            upstream_over_cap: AtomicU64::new(0),
            tcp_refused: AtomicU64::new(0),
            rrl_dropped: AtomicU64::new(0),
            rrl_slipped: AtomicU64::new(0),
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
        for (name, help, v) in [
            (
                "tapis_resolver_queries_udp_total",
                "Queries received over UDP.",
                &self.queries_udp,
            ),
            (
                "tapis_resolver_queries_tcp_total",
                "Queries received over TCP.",
                &self.queries_tcp,
            ),
            (
                "tapis_resolver_formerr_total",
                "Malformed queries answered with FORMERR or another error.",
                &self.formerr,
            ),
            (
                "tapis_resolver_dropped_total",
                "Messages dropped without an answer (responses, too short, RPZ DROP).",
                &self.dropped,
            ),
            (
                "tapis_resolver_cache_hits_total",
                "Answers served from the cache.",
                &self.cache_hits,
            ),
            (
                "tapis_resolver_cache_misses_total",
                "Queries forwarded because the cache had no answer.",
                &self.cache_misses,
            ),
            (
                "tapis_resolver_servfail_total",
                "SERVFAIL answers (no upstream answered).",
                &self.servfail,
            ),
            (
                "tapis_resolver_refused_clients_total",
                "Queries refused because the client is outside allow_query.",
                &self.refused_clients,
            ),
            (
                "tapis_resolver_upstream_coalesced_total",
                "Cache misses that waited on an upstream query already asking the same question.",
                &self.upstream_coalesced,
            ),
            (
                "tapis_resolver_upstream_over_cap_total",
                "Cache misses answered SERVFAIL at once because the in-flight cap was reached.",
                &self.upstream_over_cap,
            ),
            (
                "tapis_resolver_tcp_refused_total",
                "TCP connections closed at once because max_tcp_clients were open.",
                &self.tcp_refused,
            ),
            (
                "tapis_resolver_rate_limited_dropped_total",
                "UDP queries over the per-prefix rate limit, dropped.",
                &self.rrl_dropped,
            ),
            (
                "tapis_resolver_rate_limited_slipped_total",
                "UDP queries over the per-prefix rate limit, answered empty with TC.",
                &self.rrl_slipped,
            ),
        ] {
            head(&mut s, name, "counter", help);
            sample(&mut s, name, &[], v.load(Relaxed));
        }
        for (name, help, v) in [
            (
                "tapis_resolver_upstream_in_flight",
                "Upstream queries in flight (at most max_upstream_queries).",
                &self.upstream_in_flight,
            ),
            (
                "tapis_resolver_upstream_waiting",
                "Clients waiting on an upstream query for the same question.",
                &self.upstream_waiting,
            ),
        ] {
            head(&mut s, name, "gauge", help);
            sample(&mut s, name, &[], v.load(Relaxed));
        }
        let hits = self.cache_hits.load(Relaxed) as f64;
        let misses = self.cache_misses.load(Relaxed) as f64;
        let ratio = if hits + misses > 0.0 {
            hits / (hits + misses)
        } else {
            0.0
        };
        let name = "tapis_resolver_cache_hit_ratio";
        head(
            &mut s,
            name,
            "gauge",
            "Cache hits over cache lookups since start.",
        );
        sample(&mut s, name, &[], ratio);
        let name = "tapis_resolver_cache_entries";
        head(&mut s, name, "gauge", "Answers held in the cache.");
        sample(&mut s, name, &[], cache_entries);
        let name = "tapis_resolver_policy_hits_total";
        head(
            &mut s,
            name,
            "counter",
            "Queries answered by a policy, by zone and action.",
        );
        for (z, counts) in self.zone_names.iter().zip(&self.hits) {
            for a in Action::ALL {
                let labels = [("zone", z.as_str()), ("action", a.as_str())];
                sample(&mut s, name, &labels, counts[a.index()].load(Relaxed));
            }
        }
        let since = |t: u64| {
            if t == 0 {
                "NaN".to_owned()
            } else {
                now_unix.saturating_sub(t).to_string()
            }
        };
        let gauges: [(&str, &str, &ZoneGauge); 5] = [
            (
                "tapis_resolver_zone_serial",
                "SOA serial of the policy in force.",
                &|z| z.serial.load(Relaxed).to_string(),
            ),
            (
                "tapis_resolver_zone_entries",
                "Trigger names in the policy in force.",
                &|z| z.entries.load(Relaxed).to_string(),
            ),
            (
                "tapis_resolver_zone_age_seconds",
                "Seconds since the policy was last confirmed current with its source.",
                &|z| since(z.refreshed_at.load(Relaxed)),
            ),
            (
                "tapis_resolver_zone_changed_seconds",
                "Seconds since the policy last changed.",
                &|z| since(z.changed_at.load(Relaxed)),
            ),
            (
                "tapis_resolver_zone_last_load_seconds",
                "Duration of the last transfer or file load applied.",
                &|z| format!("{}", z.last_load_ms.load(Relaxed) as f64 / 1000.0),
            ),
        ];
        for (name, help, f) in gauges {
            head(&mut s, name, "gauge", help);
            for (z, st) in self.zone_names.iter().zip(&self.zones) {
                sample(&mut s, name, &[("zone", z)], f(st));
            }
        }
        let name = "tapis_resolver_zone_transfers_total";
        head(&mut s, name, "counter", "Transfers and loads, by result.");
        for (z, st) in self.zone_names.iter().zip(&self.zones) {
            for (result, v) in [("ok", &st.transfers_ok), ("failed", &st.transfers_failed)] {
                let labels = [("zone", z.as_str()), ("result", result)];
                sample(&mut s, name, &labels, v.load(Relaxed));
            }
        }
        let name = "tapis_resolver_zone_updates_total";
        head(
            &mut s,
            name,
            "counter",
            "Changes installed from a primary, by kind.",
        );
        for (z, st) in self.zone_names.iter().zip(&self.zones) {
            for (kind, v) in [("axfr", &st.axfr), ("ixfr", &st.ixfr)] {
                let labels = [("zone", z.as_str()), ("kind", kind)];
                sample(&mut s, name, &labels, v.load(Relaxed));
            }
        }
        let name = "tapis_resolver_upstream_up";
        head(
            &mut s,
            name,
            "gauge",
            "Whether the upstream is considered healthy.",
        );
        for (i, u) in self.upstream_names.iter().enumerate() {
            let up = upstream_up.get(i).copied().unwrap_or(false);
            sample(&mut s, name, &[("upstream", u)], u8::from(up));
        }
        let name = "tapis_resolver_upstream_failures_total";
        head(
            &mut s,
            name,
            "counter",
            "Upstream exchanges that failed (timeout or error).",
        );
        for (u, c) in self.upstream_names.iter().zip(&self.upstream_failures) {
            sample(&mut s, name, &[("upstream", u)], c.load(Relaxed));
        }
        let name = "tapis_resolver_upstream_latency_seconds";
        head(&mut s, name, "histogram", "Upstream answer latency.");
        let (bucket, sum, count_name) = (
            "tapis_resolver_upstream_latency_seconds_bucket",
            "tapis_resolver_upstream_latency_seconds_sum",
            "tapis_resolver_upstream_latency_seconds_count",
        );
        for (u, h) in self.upstream_names.iter().zip(&self.upstream_latency) {
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let le = b.to_string();
                let labels = [("upstream", u.as_str()), ("le", le.as_str())];
                sample(&mut s, bucket, &labels, c.load(Relaxed));
            }
            let count = h.count.load(Relaxed);
            sample(&mut s, bucket, &[("upstream", u), ("le", "+Inf")], count);
            let seconds = h.sum_us.load(Relaxed) as f64 / 1e6;
            sample(&mut s, sum, &[("upstream", u)], seconds);
            sample(&mut s, count_name, &[("upstream", u)], count);
        }
        s
    }
}

/// How a per-zone gauge reads its value.
type ZoneGauge<'a> = dyn Fn(&ZoneStats) -> String + 'a;

/// `# HELP` and `# TYPE` lines of a metric.
fn head(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line: `name{label="value",…} v` (label values escaped).
fn sample(s: &mut String, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
    s.push_str(name);
    if !labels.is_empty() {
        s.push('{');
        for (i, (k, value)) in labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{k}=\"{}\"", escape(value));
        }
        s.push('}');
    }
    let _ = writeln!(s, " {v}");
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition format scrapers parse, pinned: names, HELP/TYPE
    /// lines, label escaping, `NaN` before a first load, histogram lines.
    #[test]
    fn the_exposition_text() {
        let m = Metrics::new(
            vec!["rpz.a.".into(), "odd\"zone.".into()],
            vec!["192.0.2.53:53".into()],
        );
        m.queries_udp.fetch_add(5, Relaxed);
        m.cache_hits.fetch_add(3, Relaxed);
        m.cache_misses.fetch_add(1, Relaxed);
        m.zones[0].refreshed_at.store(100, Relaxed);
        m.zones[0].serial.store(7, Relaxed);
        m.zones[1].last_load_ms.store(1234, Relaxed);
        m.zones[1].axfr.store(2, Relaxed);
        m.hits[0][Action::Nxdomain.index()].store(9, Relaxed);
        m.upstream_latency[0].counts[3].store(4, Relaxed);
        m.upstream_latency[0].count.store(4, Relaxed);
        m.upstream_latency[0].sum_us.store(12_345, Relaxed);
        insta::assert_snapshot!(m.render(150, 7, &[true]));
    }
}
