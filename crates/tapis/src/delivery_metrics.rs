//! The delivery workers' figures on `/metrics`: per destination (a
//! platform's webhook or a party's email route) whether its circuit
//! breaker is open, what is in flight and waiting, attempts by outcome and
//! recent latency, from [`tapis_channel::Delivery::stats`]. Destinations are
//! parties, so the label sets are bounded by the parties registered.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tapis_http::metrics::prometheus_client::metrics::counter::Counter;
use tapis_http::metrics::prometheus_client::metrics::family::Family;
use tapis_http::metrics::prometheus_client::metrics::gauge::Gauge;
use tapis_http::metrics::prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// At most this many destinations are reported (as the store's gauges).
const MAX_SERIES: usize = 1000;

/// A metrics source reading `delivery`'s snapshot at every scrape.
pub fn source(
    delivery: Arc<tapis_channel::Delivery>,
) -> Arc<dyn tapis_http::metrics::MetricsSource> {
    Arc::new(move |reg: &mut Registry| collect(&delivery, reg))
}

fn collect(delivery: &tapis_channel::Delivery, reg: &mut Registry) {
    let stats = delivery.stats();
    let gauge = Family::<Labels, Gauge<f64, AtomicU64>>::default;
    let (breaker, in_flight, waiting, failures_in_a_row, p50, p99) =
        (gauge(), gauge(), gauge(), gauge(), gauge(), gauge());
    let attempts = Family::<Labels, Counter>::default();
    for d in stats.destinations.iter().take(MAX_SERIES) {
        let l = vec![
            ("party", d.destination.party_id.to_string()),
            ("channel", d.destination.channel.as_str().to_owned()),
        ];
        breaker
            .get_or_create(&l)
            .set(if d.breaker == "closed" { 0.0 } else { 1.0 });
        in_flight.get_or_create(&l).set(d.in_flight as f64);
        waiting.get_or_create(&l).set(d.waiting as f64);
        failures_in_a_row
            .get_or_create(&l)
            .set(f64::from(d.consecutive_failures));
        if let Some(ms) = d.p50_ms {
            p50.get_or_create(&l).set(ms as f64 / 1000.0);
        }
        if let Some(ms) = d.p99_ms {
            p99.get_or_create(&l).set(ms as f64 / 1000.0);
        }
        for (outcome, n) in [
            ("success", d.successes),
            ("failure", d.failures),
            ("timeout", d.timeouts),
            ("rejected", d.rejected),
        ] {
            let mut l = l.clone();
            l.push(("outcome", outcome.to_owned()));
            attempts.get_or_create(&l).inc_by(n);
        }
    }
    reg.register(
        "delivery_breaker_open",
        "Whether a destination's circuit breaker is open or probing (1) or closed (0)",
        breaker,
    );
    reg.register(
        "delivery_in_flight",
        "Messages being sent now, per destination",
        in_flight,
    );
    reg.register(
        "delivery_waiting",
        "Claimed messages waiting for a free slot of their destination",
        waiting,
    );
    reg.register(
        "delivery_consecutive_failures",
        "Failed or timed-out attempts in a row, per destination",
        failures_in_a_row,
    );
    reg.register(
        "delivery_latency_p50_seconds",
        "Median attempt latency over a destination's last 512 attempts",
        p50,
    );
    reg.register(
        "delivery_latency_p99_seconds",
        "99th percentile attempt latency over a destination's last 512 attempts",
        p99,
    );
    reg.register(
        "delivery_attempts",
        "Delivery attempts by this process since it started, by outcome (rejected: the breaker was open)",
        attempts,
    );
    reg.register(
        "delivery_pending_commits",
        "Attempts finished and waiting for their group commit",
        {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(stats.pending_commits).unwrap_or(i64::MAX));
            g
        },
    );
}
