//! What a replay says at the end: the summary printed after the timeline
//! (expectations, facts, and the comparison with the historical record
//! when the scenario has one) and the machine-readable JSON report
//! written by `--report`.

use std::path::Path;

use serde_json::json;
use tapis_core::Timestamp;

use super::driver::Outcome;
use super::scenario::Scenario;
use crate::cli::print_line;

/// A duration in days, hours and minutes.
pub fn span(ms: i64) -> String {
    let mins = ms / 60_000;
    let (d, h, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

fn slowest(ms: &[f64]) -> f64 {
    ms.iter().copied().fold(0.0, f64::max)
}

fn between(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<i64> {
    Some(b?.unix_millis() - a?.unix_millis())
}

/// Print the summary (and the comparison with the record); true when
/// every expectation passed and every step ran.
pub fn summary(sc: &Scenario, o: &Outcome, print: bool) -> bool {
    let failed: Vec<_> = o.checks.iter().filter(|c| !c.passed).collect();
    let passed = failed.is_empty() && o.error.is_none();
    if !print {
        return passed;
    }
    let f = &o.facts;
    print_line("");
    print_line(&format!("== summary: {}", sc.meta.name));
    print_line(&format!(
        "   expectations: {} passed, {} failed{}",
        o.checks.len() - failed.len(),
        failed.len(),
        if o.error.is_some() {
            "; the replay stopped early"
        } else {
            ""
        }
    ));
    for c in &failed {
        print_line(&format!(
            "   FAILED step {} (line {}) at {}: expected {}, found {}",
            c.step, c.line, c.at, c.expectation, c.found
        ));
    }
    if let Some(e) = &o.error {
        print_line(&format!("   ERROR: {e}"));
    }
    print_line(&format!(
        "   {} notice(s), {} item(s) targeted; {} escalation(s); {} order(s), at most {} name(s) blocked at once",
        f.notices, f.items_targeted, f.escalations, f.orders, f.names_blocked
    ));
    print_line(&format!(
        "   webhooks received {} (signatures verified; refused while down {}, bad signature {}), emails {}; the clock moved in {} hop(s)",
        f.webhooks_received,
        f.webhooks_refused,
        f.webhooks_unverified,
        f.emails_received,
        f.advances
    ));
    if !f.notify_latency_ms.is_empty() {
        print_line(&format!(
            "   ISP secondaries notified {:.1} ms (slowest, real time) after an order came into force",
            slowest(&f.notify_latency_ms)
        ));
    }
    if let Some(c) = &sc.comparison {
        let hist = c.first_escalation.0.unix_millis() - c.first_request.0.unix_millis();
        let ours = between(f.first_request, f.first_escalation);
        print_line("");
        print_line(&format!("== compared with {}", c.label));
        print_line(&format!(
            "   {:<36} {:<30} {}",
            "", "the record", "tapis (this replay)"
        ));
        print_line(&format!(
            "   {:<36} {:<30} {}",
            "first request -> first escalation",
            span(hist),
            ours.map(span).unwrap_or_else(|| "no escalation".into())
        ));
        let record = format!("{} / {}", c.names_blocked, c.items_targeted);
        let replayed = format!("{} / {}", f.names_blocked, f.items_targeted);
        print_line(&format!(
            "   {:<36} {record:<30} {replayed}",
            "names blocked / items targeted"
        ));
        if let Some(lift) = c.block_lifted {
            print_line(&format!(
                "   {:<36} {:<30} {}",
                "block in force",
                span(lift.0.unix_millis() - c.first_escalation.0.unix_millis()),
                between(f.first_block, f.block_ended)
                    .map(|ms| format!("{} (approved, with an end date from the start)", span(ms)))
                    .unwrap_or_else(|| "no block".into())
            ));
        }
        print_line(&format!(
            "   {:<36} {:<30} {}",
            "ISPs told",
            "by letter; compliance unknown",
            if f.notify_latency_ms.is_empty() {
                "no ISP secondary in this scenario".to_owned()
            } else {
                format!(
                    "NOTIFY {:.1} ms after the effective time",
                    slowest(&f.notify_latency_ms)
                )
            }
        ));
        for n in &c.notes {
            print_line(&format!("   - {n}"));
        }
    }
    print_line("");
    print_line(if passed { "PASSED" } else { "FAILED" });
    passed
}

pub fn report_json(
    sc: &Scenario,
    file: &Path,
    mode: &str,
    o: &Outcome,
    passed: bool,
) -> serde_json::Value {
    let f = &o.facts;
    let ts = |t: Option<Timestamp>| t.map(|t| sc.show(t));
    json!({
        "scenario": sc.meta.name,
        "file": file.display().to_string(),
        "mode": mode,
        "start": sc.show(sc.start),
        "end": sc.show(sc.end()),
        "sla": sc.meta.sla,
        "passed": passed,
        "error": o.error,
        "expectations": {
            "total": o.checks.len(),
            "passed": o.checks.iter().filter(|c| c.passed).count(),
            "failed": o.checks.iter().filter(|c| !c.passed).count(),
            "results": o.checks,
        },
        "facts": {
            "notices": f.notices,
            "items_targeted": f.items_targeted,
            "escalations": f.escalations,
            "orders": f.orders,
            "names_blocked": f.names_blocked,
            "first_request": ts(f.first_request),
            "first_escalation": ts(f.first_escalation),
            "first_request_to_first_escalation_secs": between(f.first_request, f.first_escalation).map(|ms| ms / 1000),
            "first_block": ts(f.first_block),
            "block_ended": ts(f.block_ended),
            "notify_latency_ms": f.notify_latency_ms,
            "webhooks_received": f.webhooks_received,
            "webhooks_refused": f.webhooks_refused,
            "webhooks_unverified": f.webhooks_unverified,
            "emails_received": f.emails_received,
            "clock_hops": f.advances,
        },
        "comparison": sc.comparison.as_ref().map(|c| json!({
            "label": c.label,
            "record": {
                "first_request_to_first_escalation_secs": (c.first_escalation.0.unix_millis() - c.first_request.0.unix_millis()) / 1000,
                "names_blocked": c.names_blocked,
                "items_targeted": c.items_targeted,
            },
            "tapis": {
                "first_request_to_first_escalation_secs": between(f.first_request, f.first_escalation).map(|ms| ms / 1000),
                "names_blocked": f.names_blocked,
                "items_targeted": f.items_targeted,
            },
        })),
        "timeline": o.entries,
    })
}
