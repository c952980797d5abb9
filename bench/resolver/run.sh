#!/usr/bin/env bash
# The filtering resolver against Unbound, one run, same machine, same RPZ,
# same upstream, same core budget. See README.md for what it measures.
#
# usage: bench/resolver/run.sh [SIZE...]        SIZE: 100k 1m 10m (default 100k 1m)
# needs: a release build (cargo build --release -p tapis), dnsperf, unbound,
#        named (bind9), nsd, dig, taskset, python3.
# env:   TAPIS (binary), OUT (work dir, default /var/tmp/tapis-resolver-bench),
#        DURATION (seconds per throughput run, default 15), RATE (fixed rate
#        for latency and CPU per query, default 20000).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TAPIS=${TAPIS:-${CARGO_TARGET_DIR:-target}/release/tapis}
OUT=${OUT:-/var/tmp/tapis-resolver-bench}
DURATION=${DURATION:-15}
RATE=${RATE:-20000}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100k 1m)
RES_CPU=0       # the resolver under test
CLI_CPU=1       # dnsperf, and the upstream (NSD) and primary (BIND)
P_BIND=15300 P_NSD=15301 P_TAPIS=15353 P_UNBOUND=15354 P_METRICS=15390 P_RNDC=15399
command -v dnsperf >/dev/null || { echo "install dnsperf" >&2; exit 2; }
[ -x "$TAPIS" ] || { echo "no release build at $TAPIS (cargo build --release -p tapis)" >&2; exit 2; }
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
echo -e "size\tserver\tmetric\tvalue" > "$RESULTS"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
record() { echo -e "$1\t$2\t$3\t$4" >> "$RESULTS"; log "$1 $2 $3 = $4"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_of() { dig @127.0.0.1 -p "$1" "$2" A +tries=1 +time=1 +noall +comments 2>/dev/null | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }
wait_status() { # port name status timeout_s -> seconds waited (float)
    local start=$(date +%s.%N)
    while [ "$(status_of "$1" "$2")" != "$3" ]; do
        if (( $(echo "$(date +%s.%N) - $start > $4" | bc) )); then echo "timeout"; return 1; fi
        sleep 0.05
    done
    echo "$(date +%s.%N) - $start" | bc
}

start_nsd() {
    local d="$OUT/nsd"; mkdir -p "$d"
    printf '$TTL 3600\n@ SOA ns.bench. admin.bench. 1 3600 600 86400 300\n@ NS ns.bench.\nns A 127.0.0.1\n* A 192.0.2.1\n' > "$d/bench.zone"
    cat > "$d/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$P_NSD
  username: ""
  zonesdir: "$d"
  pidfile: "$d/nsd.pid"
  database: ""
  xfrdfile: "$d/xfrd.state"
  zonelistfile: "$d/zone.list"
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  server-count: 1
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: "bench."
  zonefile: "bench.zone"
EOF
    taskset -c $CLI_CPU nsd -d -c "$d/nsd.conf" 2> "$d/nsd.log" &
    PIDS+=($!)
    wait_status $P_NSD x.bench NOERROR 20 >/dev/null
}

start_bind() { # zone file
    local d="$OUT/bind"; rm -rf "$d"; mkdir -p "$d"
    cp "$1" "$d/rpz.zone"
    local secret; secret=$(head -c 32 /dev/urandom | base64)
    cat > "$d/named.conf" <<EOF
options {
  directory "$d"; pid-file "$d/named.pid"; session-keyfile "$d/session.key"; managed-keys-directory "$d";
  listen-on port $P_BIND { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; dnssec-validation no;
  notify explicit; also-notify { 127.0.0.1 port $P_TAPIS; 127.0.0.1 port $P_UNBOUND; }; notify-delay 0;
  ixfr-from-differences yes; allow-transfer { 127.0.0.1; }; max-journal-size unlimited;
};
key "rndc-key" { algorithm hmac-sha256; secret "$secret"; };
controls { inet 127.0.0.1 port $P_RNDC allow { 127.0.0.1; } keys { "rndc-key"; }; };
zone "rpz.bench" { type primary; file "rpz.zone"; };
EOF
    printf 'key "rndc-key" { algorithm hmac-sha256; secret "%s"; };\noptions { default-key "rndc-key"; default-server 127.0.0.1; default-port %s; };\n' "$secret" $P_RNDC > "$d/rndc.conf"
    taskset -c $CLI_CPU named -g -4 -c "$d/named.conf" 2> "$d/named.log" &
    BIND_PID=$!
    PIDS+=($BIND_PID)
    local start=$(date +%s)
    until dig @127.0.0.1 -p $P_BIND rpz.bench SOA +short +tries=1 +time=1 2>/dev/null | grep -q bench; do
        sleep 0.5
        [ $(( $(date +%s) - start )) -lt 1800 ] || { echo "BIND did not load the zone" >&2; exit 1; }
    done
}

rndc_reload() { rndc -c "$OUT/bind/rndc.conf" reload rpz.bench >/dev/null; }

edit_zone() { # serial add-file del-file  (the next serial: adds and deletes 1,000 names)
    local z="$OUT/bind/rpz.zone" tmp="$OUT/bind/rpz.zone.new"
    python3 - "$z" "$tmp" "$1" "$2" "$3" <<'EOF'
import sys
src, dst, serial, add, dele = sys.argv[1:]
gone = set(l.strip() for l in open(dele))
with open(src) as f, open(dst, "w") as o:
    for line in f:
        if " SOA " in line:
            parts = line.split()
            parts[5] = serial
            line = " ".join(parts) + "\n"
        name = line.split(" ", 1)[0]
        if name in gone or (name.startswith("*.") and name[2:] in gone):
            continue
        o.write(line)
    for l in open(add):
        o.write(f"{l.strip()} CNAME .\n")
EOF
    mv "$tmp" "$z"
}

throughput() { # size server port mix file
    local out
    out=$(taskset -c $CLI_CPU dnsperf -s 127.0.0.1 -p "$3" -d "$5" -l "$DURATION" -c 32 -q 1000 -T 1 2>&1)
    record "$1" "$2" "qps_$4" "$(echo "$out" | awk '/Queries per second/ {print $4}')"
    record "$1" "$2" "lost_$4" "$(echo "$out" | awk '/Queries lost/ {print $3}')"
}

latency() { # size server port pid mix file
    local vout="$OUT/latency-$2-$4-$1.txt" before after t0 t1 cpu
    before=$(cpu_ticks "$4"); t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$OUT/client-cpu.txt" \
        taskset -c $CLI_CPU dnsperf -s 127.0.0.1 -p "$3" -d "$6" -l 10 -Q "$RATE" -c 32 -q 1000 -T 1 -v > "$vout" 2>&1 || true
    after=$(cpu_ticks "$4"); t1=$(date +%s.%N)
    local n; n=$(awk '/Queries completed/ {print $3}' "$vout")
    # per-query lines: "> NOERROR name A 0.000123" (last field: seconds)
    read -r p50 p99 < <(awk '$1 == ">" {print $NF}' "$vout" | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.3f %.3f\n", a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000; else print "NaN NaN"}')
    record "$1" "$2" "p50_ms_$5_at_$RATE" "$p50"
    record "$1" "$2" "p99_ms_$5_at_$RATE" "$p99"
    cpu=$(echo "scale=2; ($after - $before) * 1000000 / $(getconf CLK_TCK) / $n" | bc)
    record "$1" "$2" "cpu_us_per_query_$5_at_$RATE" "$cpu"
    read -r cu cs < "$OUT/client-cpu.txt"
    record "$1" "$2" "client_cpu_s_$5_at_$RATE" "$(echo "$cu + $cs" | bc)"
}

misses_file() { # tag -> file of unique names under bench.
    local f="$OUT/miss-$1.txt"
    python3 -c "
import sys
with open('$f','w') as o:
    for i in range(3_000_000): o.write(f'm{i}.$1.bench A\n')
"
    echo "$f"
}

run_server() { # size server
    local size=$1 server=$2 dir="$OUT/$1" port pid
    local last; last=$(awk '/^last/ {print $2}' "$dir/stats.txt")
    local names; names=$(awk '/^names/ {print $2}' "$dir/stats.txt")
    local w="$OUT/$server"; rm -rf "$w"; mkdir -p "$w"
    local t0; t0=$(date +%s.%N)
    if [ "$server" = tapis ]; then
        port=$P_TAPIS
        cat > "$w/resolver.toml" <<EOF
listen = "127.0.0.1:$P_TAPIS"
metrics_listen = "127.0.0.1:$P_METRICS"
threads = 1
upstreams = ["127.0.0.1:$P_NSD"]
cache_bytes = 67108864
data_dir = "$w/data"
[[zone]]
name = "rpz.bench."
primary = "127.0.0.1:$P_BIND"
EOF
        TAPIS_LOG=info taskset -c $RES_CPU "$TAPIS" --config "$w/resolver.toml" resolver > "$w/out.log" 2> "$w/err.log" &
        pid=$!
    else
        port=$P_UNBOUND
        cat > "$w/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$P_UNBOUND
  port: $P_UNBOUND
  num-threads: 1
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$w"
  pidfile: "$w/unbound.pid"
  use-syslog: no
  logfile: "$w/unbound.log"
  verbosity: 1
  module-config: "respip iterator"
  do-not-query-localhost: no
  msg-cache-size: 32m
  rrset-cache-size: 32m
  access-control: 127.0.0.0/8 allow
  qname-minimisation: no
remote-control:
  control-enable: no
rpz:
  name: rpz.bench.
  primary: 127.0.0.1@$P_BIND
  allow-notify: 127.0.0.1
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$P_NSD
EOF
        taskset -c $RES_CPU unbound -d -c "$w/unbound.conf" > "$w/out.log" 2>&1 &
        pid=$!
    fi
    PIDS+=($pid)
    local waited; waited=$(wait_status $port "$last" NXDOMAIN 1800)
    record "$size" "$server" load_s "$(echo "$(date +%s.%N) - $t0" | bc)"
    sleep 2
    local rss; rss=$(rss_kb $pid)
    record "$size" "$server" rss_mb_loaded "$(echo "scale=1; $rss / 1024" | bc)"
    record "$size" "$server" peak_rss_mb_load "$(echo "scale=1; $(hwm_kb $pid) / 1024" | bc)"
    local mean; mean=$(awk '/^mean_wire_len/ {print $2}' "$dir/stats.txt")
    record "$size" "$server" bytes_per_name_total "$(echo "scale=1; $rss * 1024 / $names" | bc)"
    record "$size" "$server" bytes_per_name_beyond_name "$(echo "scale=1; $rss * 1024 / $names - $mean" | bc)"

    # throughput: blocked, cached (warmed), misses (unique names)
    throughput "$size" "$server" $port blocked "$dir/blocked.txt"
    seq 1 1000 | awk '{print "c" $1 ".bench A"}' > "$OUT/cached.txt"
    taskset -c $CLI_CPU dnsperf -s 127.0.0.1 -p $port -d "$OUT/cached.txt" -n 1 >/dev/null 2>&1
    throughput "$size" "$server" $port cached "$OUT/cached.txt"
    throughput "$size" "$server" $port miss "$(misses_file "$server$size")"
    # latency and CPU per query at a fixed rate
    latency "$size" "$server" $port $pid blocked "$dir/blocked.txt"
    latency "$size" "$server" $port $pid cached "$OUT/cached.txt"
    record "$size" "$server" rss_mb_after_queries "$(echo "scale=1; $(rss_kb $pid) / 1024" | bc)"

    # IXFR: 1,000 names added and 1,000 deleted, BIND NOTIFYs
    local serial probe
    if [ "$server" = tapis ]; then
        serial=2; edit_zone 2 "$dir/ixfr-add.txt" "$dir/ixfr-del.txt"; probe=ixfr999.added.example
    else
        serial=3; edit_zone 3 "$dir/ixfr-del.txt" "$dir/ixfr-add.txt"; probe=$(head -1 "$dir/ixfr-del.txt")
    fi
    local before_hwm; before_hwm=$(hwm_kb $pid)
    local r0; r0=$(date +%s.%N)
    rndc_reload
    wait_status $port "$probe" NXDOMAIN 1800 >/dev/null
    record "$size" "$server" ixfr_1000_notify_to_enforced_s "$(echo "$(date +%s.%N) - $r0" | bc)"
    if [ "$server" = tapis ]; then
        record "$size" "$server" ixfr_apply_ms_logged "$(grep 'IXFR applied' "$w/err.log" | tail -1 | sed -n 's/.*ms=\([0-9]*\).*/\1/p')"
    fi
    sleep 1
    record "$size" "$server" peak_rss_mb_after_ixfr "$(echo "scale=1; $(hwm_kb $pid) / 1024" | bc)"
    record "$size" "$server" rss_mb_after_ixfr "$(echo "scale=1; $(rss_kb $pid) / 1024" | bc)"
    kill $pid; wait $pid 2>/dev/null || true
}

start_nsd
for size in "${SIZES[@]}"; do
    n=$(echo "$size" | sed 's/k$/000/; s/m$/000000/')
    dir="$OUT/$size"
    [ -f "$dir/stats.txt" ] || { log "generating $n names"; python3 bench/resolver/gen.py "$n" "$dir" --real "$ROOT/../shared/data/blocklists/gambling-indonesia.txt"; }
    log "BIND loading the $size zone"
    start_bind "$dir/rpz.zone"
    run_server "$size" tapis
    run_server "$size" unbound
    kill $BIND_PID; wait $BIND_PID 2>/dev/null || true
done
log "results in $RESULTS"
column -t "$RESULTS"
