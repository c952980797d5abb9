#!/usr/bin/env bash
# The filtering resolver against Unbound, one run, same machine, same RPZ,
# same upstream, same core budget. See README.md for what it measures.
#
# usage: bench/resolver/run.sh [SIZE...]        SIZE: 100k 1m 10m (default 100k 1m)
# needs: a release build (cargo build --release -p tapis), dnsperf, unbound,
#        named (bind9), nsd, dig, taskset, python3.
# env:   TAPIS (binary), OUT (work dir, default /var/tmp/tapis-resolver-bench),
#        DURATION (seconds per throughput run, default 10), ROUNDS (default 3),
#        QUOTA (% of one core for the server-bound runs, default 40), RATE
#        (fixed rate for latency and CPU per query, default 20000).
# needs root for the cgroup v1 CPU quota (/sys/fs/cgroup/cpu).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TAPIS=${TAPIS:-${CARGO_TARGET_DIR:-target}/release/tapis}
OUT=${OUT:-/var/tmp/tapis-resolver-bench}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
QUOTA=${QUOTA:-40}     # % of a core for the server-bound throughput runs
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
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rmdir /sys/fs/cgroup/cpu/tapis-bench-* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
            parts[4] = serial
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

quota() { # server percent-of-a-core (0: none) — a cgroup v1 CPU quota
    local cg=/sys/fs/cgroup/cpu/tapis-bench-$1
    mkdir -p "$cg"
    echo 100000 > "$cg/cpu.cfs_period_us"
    if [ "$2" = 0 ]; then echo -1 > "$cg/cpu.cfs_quota_us"; else echo $(( $2 * 1000 )) > "$cg/cpu.cfs_quota_us"; fi
    echo "${SPID[$1]}" > "$cg/cgroup.procs"
}

throughput() { # size server mix file budget
    local out port=${SPORT[$2]}
    out=$(taskset -c $CLI_CPU dnsperf -s 127.0.0.1 -p "$port" -d "$4" -l "$DURATION" -c 32 -q 1000 -T 1 2>&1)
    record "$1" "$2" "qps_$3_$5" "$(echo "$out" | awk '/Queries per second/ {print $4}')"
}

latency() { # size server mix file
    local port=${SPORT[$2]} pid=${SPID[$2]}
    local vout="$OUT/latency-$2-$3-$1.txt" before after cpu n
    before=$(cpu_ticks "$pid")
    /usr/bin/time -f "%U %S" -o "$OUT/client-cpu.txt" \
        taskset -c $CLI_CPU dnsperf -s 127.0.0.1 -p "$port" -d "$4" -l 10 -Q "$RATE" -c 32 -q 1000 -T 1 -v > "$vout" 2>&1 || true
    after=$(cpu_ticks "$pid")
    n=$(awk '/Queries completed/ {print $3}' "$vout")
    # per-query lines: "> NOERROR name A 0.000123" (last field: seconds)
    read -r p50 p99 < <(awk '$1 == ">" {print $NF}' "$vout" | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.3f %.3f\n", a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000; else print "NaN NaN"}')
    record "$1" "$2" "p50_ms_$3_at_$RATE" "$p50"
    record "$1" "$2" "p99_ms_$3_at_$RATE" "$p99"
    cpu=$(echo "scale=2; ($after - $before) * 1000000 / $(getconf CLK_TCK) / $n" | bc)
    record "$1" "$2" "cpu_us_per_query_$3_at_$RATE" "$cpu"
    read -r cu cs < "$OUT/client-cpu.txt"
    record "$1" "$2" "client_cpu_us_per_query_$3_at_$RATE" "$(echo "scale=2; ($cu + $cs) * 1000000 / $n" | bc)"
    rm -f "$vout"
}

misses_file() { # tag -> file of unique names under bench.
    local f="$OUT/miss-$1.txt"
    python3 -c "
with open('$f','w') as o:
    for i in range(1_500_000): o.write(f'm{i}.$1.bench A\n')
"
    echo "$f"
}

declare -A SPID SPORT
SPORT[tapis]=$P_TAPIS
SPORT[unbound]=$P_UNBOUND

start_server() { # size server
    local size=$1 server=$2 dir="$OUT/$1"
    local last; last=$(awk '/^last/ {print $2}' "$dir/stats.txt")
    local names; names=$(awk '/^names/ {print $2}' "$dir/stats.txt")
    local w="$OUT/$server"; rm -rf "$w"; mkdir -p "$w"
    local t0; t0=$(date +%s.%N)
    if [ "$server" = tapis ]; then
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
    else
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
    fi
    SPID[$server]=$!
    PIDS+=(${SPID[$server]})
    wait_status ${SPORT[$server]} "$last" NXDOMAIN 1800 >/dev/null
    record "$size" "$server" load_s "$(echo "$(date +%s.%N) - $t0" | bc)"
    sleep 2
    local pid=${SPID[$server]} rss; rss=$(rss_kb $pid)
    record "$size" "$server" rss_mb_loaded "$(echo "scale=1; $rss / 1024" | bc)"
    record "$size" "$server" peak_rss_mb_load "$(echo "scale=1; $(hwm_kb $pid) / 1024" | bc)"
    record "$size" "$server" bytes_per_name_total "$(echo "scale=1; $rss * 1024 / $names" | bc)"
}

run_size() { # size
    local size=$1 dir="$OUT/$1"
    start_server "$size" tapis
    start_server "$size" unbound
    seq 1 1000 | awk '{print "c" $1 ".bench A"}' > "$OUT/cached.txt"
    for s in tapis unbound; do
        taskset -c $CLI_CPU dnsperf -s 127.0.0.1 -p ${SPORT[$s]} -d "$OUT/cached.txt" -n 1 >/dev/null 2>&1
    done
    # throughput, alternating servers round by round (the machine is
    # shared: alternation spreads background load over both)
    for round in $(seq 1 "$ROUNDS"); do
        for budget in "$QUOTA" 100; do
            for s in tapis unbound; do
                quota $s $([ "$budget" = 100 ] && echo 0 || echo "$budget")
                throughput "$size" $s blocked "$dir/blocked.txt" "cpu$budget"
                throughput "$size" $s cached "$OUT/cached.txt" "cpu$budget"
                local mf; mf=$(misses_file "$s$size$round$budget")
                throughput "$size" $s miss "$mf" "cpu$budget"
                rm -f "$mf"
            done
        done
    done
    for s in tapis unbound; do quota $s 0; done
    # latency and CPU per query at a fixed rate (full core)
    for s in tapis unbound; do
        latency "$size" $s blocked "$dir/blocked.txt"
        latency "$size" $s cached "$OUT/cached.txt"
        record "$size" $s rss_mb_after_queries "$(echo "scale=1; $(rss_kb ${SPID[$s]}) / 1024" | bc)"
    done
    # IXFR: 1,000 names added and 1,000 deleted; BIND NOTIFYs both
    edit_zone 2 "$dir/ixfr-add.txt" "$dir/ixfr-del.txt"
    local r0; r0=$(date +%s.%N)
    rndc_reload
    local done_t="" done_u=""
    while [ -z "$done_t" ] || [ -z "$done_u" ]; do
        [ -n "$done_t" ] || { [ "$(status_of $P_TAPIS ixfr999.added.example)" = NXDOMAIN ] && done_t=$(echo "$(date +%s.%N) - $r0" | bc); }
        [ -n "$done_u" ] || { [ "$(status_of $P_UNBOUND ixfr999.added.example)" = NXDOMAIN ] && done_u=$(echo "$(date +%s.%N) - $r0" | bc); }
        (( $(echo "$(date +%s.%N) - $r0 > 1800" | bc) )) && { echo "IXFR never applied" >&2; exit 1; }
        sleep 0.02
    done
    record "$size" tapis ixfr_1000_reload_to_enforced_s "$done_t"
    record "$size" unbound ixfr_1000_reload_to_enforced_s "$done_u"
    record "$size" tapis ixfr_apply_ms_logged "$(grep 'IXFR applied' "$OUT/tapis/err.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | sed -n 's/.*ms=\([0-9]*\).*/\1/p')"
    sleep 1
    for s in tapis unbound; do
        record "$size" $s peak_rss_mb_overall "$(echo "scale=1; $(hwm_kb ${SPID[$s]}) / 1024" | bc)"
        record "$size" $s rss_mb_after_ixfr "$(echo "scale=1; $(rss_kb ${SPID[$s]}) / 1024" | bc)"
        kill ${SPID[$s]}; wait ${SPID[$s]} 2>/dev/null || true
    done
}

start_nsd
for size in "${SIZES[@]}"; do
    n=$(echo "$size" | sed 's/k$/000/; s/m$/000000/')
    dir="$OUT/$size"
    [ -f "$dir/stats.txt" ] || { log "generating $n names"; python3 bench/resolver/gen.py "$n" "$dir" --real "$ROOT/../shared/data/blocklists/gambling-indonesia.txt"; }
    log "BIND loading the $size zone"
    start_bind "$dir/rpz.zone"
    run_size "$size"
    kill $BIND_PID; wait $BIND_PID 2>/dev/null || true
done
log "results in $RESULTS"
# medians of the rounds
awk -F'\t' 'NR > 1 { k = $1 "\t" $2 "\t" $3; v[k] = v[k] " " $4; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
    END { for (i = 1; i <= n; i++) { m = split(v[order[i]], a, " "); asort(a); print order[i] "\t" a[int((m + 1) / 2)] } }' "$RESULTS" > "$OUT/summary.tsv"
column -t "$OUT/summary.tsv"
