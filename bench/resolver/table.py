#!/usr/bin/env python3
"""Markdown tables from run.sh's summary.tsv: tapis beside Unbound, with the
ratio. usage: table.py SUMMARY.tsv"""
import collections
import sys

rows = collections.defaultdict(dict)
sizes = []
for line in open(sys.argv[1]):
    size, server, metric, value = line.rstrip("\n").split("\t")
    if size not in sizes:
        sizes.append(size)
    try:
        rows[(size, metric)][server] = float(value)
    except ValueError:
        pass

NAMES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}


def table(title, metrics, higher_is_better, fmt):
    print(f"\n### {title}\n")
    print("| names | measure | tapis | Unbound | tapis ÷ Unbound |")
    print("|---|---|---:|---:|---:|")
    for size in sizes:
        for metric, label in metrics:
            r = rows.get((size, metric), {})
            t, u = r.get("tapis"), r.get("unbound")
            if t is None or u is None:
                continue
            ratio = (t / u) if u else float("nan")
            print(f"| {size} | {label} | {fmt(t)} | {fmt(u)} | {ratio:.2f}× |")


k = lambda v: f"{v / 1000:.1f} k"
table(
    "Throughput, server-bound (40 % of one core each; queries per second)",
    [("qps_blocked_cpu40", "blocked"), ("qps_cached_cpu40", "cached"), ("qps_miss_cpu40", "miss")],
    True,
    k,
)
table(
    "Throughput, one whole core each (client-bound: dnsperf tops out near 150 k qps)",
    [("qps_blocked_cpu100", "blocked"), ("qps_cached_cpu100", "cached"), ("qps_miss_cpu100", "miss")],
    True,
    k,
)
table(
    "At a fixed 20,000 qps (lower is better)",
    [
        ("cpu_us_per_query_blocked_at_20000", "server CPU µs/query, blocked"),
        ("cpu_us_per_query_cached_at_20000", "server CPU µs/query, cached"),
        ("p50_ms_blocked_at_20000", "p50 ms, blocked"),
        ("p99_ms_blocked_at_20000", "p99 ms, blocked"),
        ("p50_ms_cached_at_20000", "p50 ms, cached"),
        ("p99_ms_cached_at_20000", "p99 ms, cached"),
        ("client_cpu_us_per_query_blocked_at_20000", "dnsperf CPU µs/query, blocked"),
    ],
    False,
    lambda v: f"{v:.3f}" if v < 10 else f"{v:.1f}",
)
table(
    "Memory, load and IXFR (lower is better)",
    [
        ("rss_mb_loaded", "RSS after load, empty cache (MB)"),
        ("bytes_per_name_total", "RSS per name (bytes)"),
        ("peak_rss_mb_overall", "peak RSS over the run, IXFR included (MB)"),
        ("load_s", "zone load by AXFR, start to enforced (s)"),
        ("ixfr_1000_reload_to_enforced_s", "IXFR of 2,000 changes, reload to enforced (s)"),
    ],
    False,
    lambda v: f"{v:.2f}" if v < 100 else f"{v:.0f}",
)
print()
for size in sizes:
    t = rows.get((size, "ixfr_apply_ms_logged"), {}).get("tapis")
    if t is not None:
        print(f"- {size}: tapis's own IXFR transfer and apply: {t:.0f} ms.")
