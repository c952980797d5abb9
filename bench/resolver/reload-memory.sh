#!/usr/bin/env bash
# Peak memory of a full reload of a 1 M-name zone file, against the steady
# state: a reload that changes 2,000 names (read as a diff, applied in
# place) and one that replaces every name (built aside).
# usage: bench/resolver/reload-memory.sh  (after run.sh generated $OUT/1m)
set -euo pipefail
cd "$(dirname "$0")/../.."
TAPIS=${TAPIS:-${CARGO_TARGET_DIR:-target}/release/tapis}
OUT=${OUT:-/var/tmp/tapis-resolver-bench}
W="$OUT/reload-memory"; rm -rf "$W"; mkdir -p "$W"
cp "$OUT/1m/rpz.zone" "$W/zone"
cat > "$W/r.toml" <<EOT
listen = "127.0.0.1:15373"
metrics_listen = "127.0.0.1:15391"
threads = 1
upstreams = ["127.0.0.1:9"]
data_dir = "$W/data"
[[zone]]
name = "rpz.bench."
file = "$W/zone"
file_poll_secs = 1
EOT
TAPIS_LOG=warn "$TAPIS" --config "$W/r.toml" resolver > /dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
serial() { curl -s http://127.0.0.1:15391/metrics 2>/dev/null | awk -F' ' '/^tapis_resolver_zone_serial/ {print $2}'; }
wait_serial() { until [ "$(serial)" = "$1" ]; do sleep 0.2; done; }
kb() { awk "/$1/ {print \$2}" /proc/$PID/status; }
wait_serial 1; sleep 2
steady=$(kb VmRSS); echo "steady RSS: $((steady / 1024)) MB (peak so far $(( $(kb VmHWM) / 1024 )) MB, the initial load)"
# reset the high-water mark so the reload's own peak shows
echo 5 > /proc/$PID/clear_refs
python3 - "$W/zone" "$OUT/1m/ixfr-add.txt" "$OUT/1m/ixfr-del.txt" <<'PY'
import sys
z, add, dele = sys.argv[1:]
gone = set(l.strip() for l in open(dele))
lines = open(z).read().splitlines(True)
with open(z + ".new", "w") as o:
    for line in lines:
        if " SOA " in line:
            p = line.split(); p[4] = "2"; line = " ".join(p) + "\n"
        n = line.split(" ", 1)[0]
        if n in gone or (n.startswith("*.") and n[2:] in gone):
            continue
        o.write(line)
    for l in open(add):
        o.write(f"{l.strip()} CNAME .\n")
PY
mv "$W/zone.new" "$W/zone"
wait_serial 2; sleep 1
echo "2,000 changes (diff, in place): peak $(( $(kb VmHWM) / 1024 )) MB, after $(( $(kb VmRSS) / 1024 )) MB, steady before $((steady / 1024)) MB"
steady=$(kb VmRSS)
echo 5 > /proc/$PID/clear_refs
sed 's/ 1 3600 600 86400 300/ 3 3600 600 86400 300/; s/^\([^@ $*][^ ]*\) CNAME/x\1 CNAME/; s/^\*\.\([^ ]*\) CNAME/*.x\1 CNAME/' "$OUT/1m/rpz.zone" > "$W/zone.new"
mv "$W/zone.new" "$W/zone"
wait_serial 3; sleep 1
echo "every name replaced (built aside): peak $(( $(kb VmHWM) / 1024 )) MB, after $(( $(kb VmRSS) / 1024 )) MB, steady before $((steady / 1024)) MB"
