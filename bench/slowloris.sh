#!/usr/bin/env bash
# bench/slowloris.sh: normal keep-alive HTTPS traffic with and without 2,000 slowloris connections held
# open against the same proxy, for phigate, nginx and HAProxy side by side (ARCHITECTURE.md; benchmark
# scenario 6; requirement "a slowloris attack of 2,000 connections must not delay a normal request by
# more than 100 ms").
#
# Same backend, certificate, TLS settings and proxy templates (bench/configs/) as bench/run.sh. For each
# target, interleaved over --repeat rounds: (a) baseline wrk -t1 -c64 -dD --latency; (b) the same while
# bench/tools/slowloris.py holds N TLS connections with an unfinished request head (one header line
# every 5-10 s; connections the proxy closes are reopened). wrk starts only once all N are open.
# Prints a table (p99 with and without the attack, delta, req/s, ratios, PASS/FAIL for phigate) and
# writes bench/results/slowloris-<UTC stamp>.json. Everything it starts is stopped on exit, by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH_NAME=slowloris
# shellcheck source=bench/lib.sh
. bench/lib.sh
SLOWLORIS=$ROOT/bench/tools/slowloris.py
REPORT=$ROOT/bench/tools/slowloris_report.py

usage() {
  cat <<'EOF'
usage: bench/slowloris.sh [options]

  --quick              smoke run: --duration 3 --repeat 1, 1 s warm-up
  --connections-slow N slowloris connections held open during the attack run (default 2000; env SLOW)
  --duration S         seconds per wrk run (default 10; env DURATION)
  --connections N      wrk connections (default 64; env CONNECTIONS)
  --repeat R           rounds per target (default 3; env REPEAT)
  --warmup S           unrecorded wrk warm-up per target before round 1, 0 = none (default 2; env WARMUP)
  --limit-ms MS        allowed p99 delay under attack for phigate's PASS (default 100; env LIMIT_MS)
  --header-timeout S   give all three proxies the same request-head timeout: phigate
                       timeouts.request_header, nginx client_header_timeout, HAProxy timeout
                       http-request (default: each proxy's own default, 10 s / 60 s / 60 s)
  --wait-quiet S       before each measured run, wait up to S s for the machine to be idle
                       (< 10% busy over 1 s); 0 = off (default 0; env WAIT_QUIET)
  --targets LIST       comma-separated subset of phigate,nginx,haproxy (default all three)
  --no-build           skip scripts/bootstrap.sh and the Release build (uses build/release/bin/phigate)
  --keep-tmp           keep the temp dir (configs, logs, wrk and slowloris output) and print its path
  -h, --help           this help

environment:
  PROXY_CPUS=0         taskset CPU list for the proxies (empty: no pinning)
  LOAD_CPUS=1          taskset CPU list for wrk, the backend and the slowloris client (empty: no pinning)
  PHIGATE=PATH         phigate binary (default build/release/bin/phigate)
  SLOW_READY_TIMEOUT=90  seconds the slowloris client may take to get all N connections open

Results: a table on stdout, and the same as JSON in bench/results/slowloris-<UTC stamp>.json.
EOF
}

# --- options ---------------------------------------------------------------------------------
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
SLOW=${SLOW:-2000}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-2}
LIMIT_MS=${LIMIT_MS:-100}
HEADER_TIMEOUT=${HEADER_TIMEOUT:-}
WAIT_QUIET=${WAIT_QUIET:-0}
SLOW_READY_TIMEOUT=${SLOW_READY_TIMEOUT:-90}
PROXY_CPUS=${PROXY_CPUS-0}
LOAD_CPUS=${LOAD_CPUS-1}
WORKERS=1
BUILD=1
KEEP_TMP=""
TARGETS=(phigate nginx haproxy)

while (($#)); do
  case $1 in
    --quick) DURATION=3; REPEAT=1; WARMUP=1 ;;
    --connections-slow) need_arg "$@"; SLOW=$2; shift ;;
    --duration) need_arg "$@"; DURATION=${2%s}; shift ;;
    --connections) need_arg "$@"; CONNECTIONS=$2; shift ;;
    --repeat) need_arg "$@"; REPEAT=$2; shift ;;
    --warmup) need_arg "$@"; WARMUP=${2%s}; shift ;;
    --limit-ms) need_arg "$@"; LIMIT_MS=$2; shift ;;
    --wait-quiet) need_arg "$@"; WAIT_QUIET=${2%s}; shift ;;
    --header-timeout) need_arg "$@"; HEADER_TIMEOUT=${2%s}; shift ;;
    --targets) need_arg "$@"; IFS=, read -r -a TARGETS <<<"$2"; shift ;;
    --no-build) BUILD="" ;;
    --keep-tmp) KEEP_TMP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
for v in DURATION CONNECTIONS SLOW REPEAT LIMIT_MS SLOW_READY_TIMEOUT; do
  is_uint "${!v}" && ((${!v} > 0)) || die "$v must be a positive integer, got '${!v}'"
done
[[ -z $HEADER_TIMEOUT ]] || { is_uint "$HEADER_TIMEOUT" && ((HEADER_TIMEOUT > 0)); } ||
  die "--header-timeout must be a positive number of seconds, got '$HEADER_TIMEOUT'"
is_uint "$WAIT_QUIET" || die "WAIT_QUIET must be a non-negative integer, got '$WAIT_QUIET'"
is_uint "$WARMUP" || die "WARMUP must be a non-negative integer, got '$WARMUP'"
((SLOW <= 20000)) || die "--connections-slow is capped at 20000"
((DURATION <= 600 && REPEAT <= 20)) || die "--duration <= 600 and --repeat <= 20, please"
check_targets


setup_pinning

# Descriptors: every proxy (and the client) must be able to hold N + wrk's connections + upstreams.
NEED_FDS=$((SLOW + 4 * CONNECTIONS + 1024))
raise_nofile "$NEED_FDS"
log "ulimit -n $(ulimit -n) (need >= $NEED_FDS)"

# --- 1. bootstrap and Release build -----------------------------------------------------------
[[ -z $BUILD ]] || build_phigate phigate
[[ -x $PHIGATE ]] || die "$PHIGATE not found (run without --no-build)"
need_tools wrk nginx haproxy curl openssl taskset pgrep ss python3 timeout
[[ -f $SLOWLORIS && -f $REPORT ]] || die "bench/tools/slowloris.py or slowloris_report.py missing"

# --- measurement (bench/lib.sh) -------------------------------------------------------------------
# run_wrk LABEL URL PID SECONDS OUTFILE: one bounded wrk run; sets WRK_JSON (a JSON object's members)
WRK_JSON=""
run_wrk() {
  measure_wrk "$1" "$3" "$4" "$5" -t1 -c"$CONNECTIONS" "$2"
  WRK_JSON=$(printf '"rps": %s, "p50_ms": %s, "p99_ms": %s, "max_ms": %s, "requests": %d, "non2xx": %d, "socket_errors": %d, "proxy_cpu_pct": %s, "wall_s": %.2f, "rss_mib": %.1f, "load_cpus_busy_pct": %s' \
    "$W_RPS" "$W_P50" "$W_P99" "$W_MAX" "$W_REQ" "$W_NON2XX" "$W_SOCKERR" "$M_CPU_PCT" "$M_WALL_S" \
    "$(awk -v r="$M_RSS_KIB" 'BEGIN { print r / 1024 }')" "$M_LOAD_BUSY")
}

estab_to() {  # PORT: established TCP connections with that destination port (client side)
  ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}
check_idle_at_start

# --- 2. temp dir and certificate ----------------------------------------------------------------
make_tmp phigate-slowloris
make_cert_set ec ec

# --- 3. backend (the same as bench/run.sh) ------------------------------------------------------
start_backend

# --- 4. proxies, from the bench/run.sh templates; connection limits raised only if too low ---------
# nginx counts client and upstream connections against worker_connections; HAProxy's maxconn counts
# client connections. phigate keeps its own default (limits.max_connections_per_worker).
NGINX_CONNS=$((SLOW + 2 * CONNECTIONS + 256 + 256))
HAPROXY_CONNS=$((SLOW + CONNECTIONS + 256))
declare -A LIMIT
config_hook() {  # KIND INST FILE (called by start_proxy after rendering FILE)
  local n
  case $1 in
    phigate)
      LIMIT[phigate]="max_connections_per_worker default (10000); timeouts.request_header default (10 s)"
      if [[ -n $HEADER_TIMEOUT ]]; then
        printf 'timeouts: { request_header: %ss }\n' "$HEADER_TIMEOUT" >>"$3"
        LIMIT[phigate]="max_connections_per_worker default (10000); timeouts.request_header ${HEADER_TIMEOUT}s"
      fi
      ((SLOW + CONNECTIONS < 10000)) || log "WARNING: $SLOW+$CONNECTIONS connections exceed phigate's default 10000 per worker: it will shed"
      ;;
    nginx)
      n=$(raise_limit "$3" worker_connections "$NGINX_CONNS")
      LIMIT[nginx]="worker_connections $n; client_header_timeout default (60 s)"
      if [[ -n $HEADER_TIMEOUT ]]; then
        sed -i "s/^http {\$/http {\n  client_header_timeout ${HEADER_TIMEOUT}s;/" "$3"
        grep -q "client_header_timeout ${HEADER_TIMEOUT}s;" "$3" || die "could not set client_header_timeout"
        LIMIT[nginx]="worker_connections $n; client_header_timeout ${HEADER_TIMEOUT}s"
      fi
      ;;
    haproxy)
      n=$(raise_limit "$3" maxconn "$HAPROXY_CONNS")
      LIMIT[haproxy]="maxconn $n; timeout http-request unset (falls back to timeout client 60 s)"
      if [[ -n $HEADER_TIMEOUT ]]; then
        sed -i "s/^defaults\$/defaults\n  timeout http-request ${HEADER_TIMEOUT}s/" "$3"
        grep -q "timeout http-request ${HEADER_TIMEOUT}s" "$3" || die "could not set timeout http-request"
        LIMIT[haproxy]="maxconn $n; timeout http-request ${HEADER_TIMEOUT}s"
      fi
      ;;
  esac
}
for t in "${TARGETS[@]}"; do
  start_proxy "$t" "$t" ec
  log "$t on https://127.0.0.1:${PORT[$t]}/ (pid ${PID[$t]}, CPUs ${PROXY_CPUS:-any}; ${LIMIT[$t]})"
done

# --- 5. one attack: slowloris up (all N open), wrk, check they stayed open, slowloris down ---------
# Sets SL_JSON (JSON members: slowloris ready/window/summary lines and ss counts) or exits on failure.
SL_JSON=""
wait_line() {  # FILE REGEX SECONDS PID: wait until a line matching REGEX appears in FILE (bounded)
  local f=$1 re=$2 secs=$3 pid=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    grep -qE "$re" "$f" 2>/dev/null && return 0
    alive "$pid" || { grep -qE "$re" "$f" 2>/dev/null && return 0; return 1; }
    sleep 0.1
  done
  return 1
}
tagged() {  # FILE TAG: the JSON after the first "TAG " line of the slowloris client's output, or null
  local l; l=$(grep -m1 "^$2 " "$1" 2>/dev/null || true); l=${l#"$2 "}; echo "${l:-null}"
}
attack_run() {  # TARGET ROUND
  local t=$1 r=$2 port=${PORT[$1]} out=$TMP/slowloris-$1-$2.txt sl estab_before estab_mid_f mid_pid \
    estab_mid estab_after sl_c0 sl_c1 shed0=0 shed1=0 open_mid=-1 lifetime
  lifetime=$((SLOW_READY_TIMEOUT + DURATION + 30))
  [[ $t == phigate ]] && shed0=$(phigate_metric phigate phigate_connections_shed_total)
  start_bg "$out.err" "${LOAD_PIN[@]}" python3 -u "$SLOWLORIS" --port "$port" --connections "$SLOW" \
    --duration "$lifetime" --ready-timeout "$SLOW_READY_TIMEOUT"
  sl=$LAST_PID
  # python3's stdout goes to $out.err together with stderr; the tagged lines are what we read.
  if ! wait_line "$out.err" '^(READY|NOTREADY) ' $((SLOW_READY_TIMEOUT + 10)) "$sl" ||
    grep -q '^NOTREADY ' "$out.err"; then
    stop_pid "$sl"; forget_pid "$sl"
    echo "---- slowloris client output ----" >&2; cat "$out.err" >&2
    tail -n 20 "$TMP/$t.log" >&2 2>/dev/null || true
    die "the slowloris client could not hold $SLOW connections open against $t at the same time. A proxy that closes unfinished heads after T s needs more than $SLOW/T TLS handshakes per second from the client (about 1 ms of CPU each on LOAD_CPUS); on a busy machine try --wait-quiet, fewer --connections-slow or --header-timeout"
  fi
  estab_before=$(estab_to "$port")
  log "  $SLOW slowloris connections open against $t ($(tagged "$out.err" READY)); $estab_before established per ss"
  # Mid-run check of what the kernel sees (includes wrk's connections), from a child we track.
  estab_mid_f=$TMP/estab-mid-$t-$r
  ( sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"; ss -Htn state established "( dport = :$port )" | wc -l >"$estab_mid_f" ) &
  mid_pid=$!; PIDS+=("$mid_pid")
  kill -USR1 "$sl"
  sl_c0=$(cpu_ticks "$sl")
  run_wrk "$t" "https://127.0.0.1:$port/" "${PID[$t]}" "$DURATION" "$TMP/wrk-$t-attack-$r.txt"
  kill -USR2 "$sl" 2>/dev/null || true
  sl_c1=$(cpu_ticks "$sl")
  wait "$mid_pid" 2>/dev/null || true; forget_pid "$mid_pid"
  estab_mid=$(cat "$estab_mid_f" 2>/dev/null || echo -1)
  wait_line "$out.err" '^WINDOW ' 5 "$sl" || log "WARNING: no WINDOW line from the slowloris client"
  estab_after=$(estab_to "$port")
  [[ $t == phigate ]] && { shed1=$(phigate_metric phigate phigate_connections_shed_total); open_mid=$(phigate_metric phigate phigate_connections_open); }
  stop_pid "$sl"; forget_pid "$sl"
  wait_line "$out.err" '^SUMMARY ' 5 "$sl" || log "WARNING: no SUMMARY line from the slowloris client"
  SL_JSON="\"slowloris\": {\"ready\": $(tagged "$out.err" READY), \"window\": $(tagged "$out.err" WINDOW), \"summary\": $(tagged "$out.err" SUMMARY), \"estab_before_wrk\": $estab_before, \"estab_mid_wrk_incl_wrk\": $estab_mid, \"estab_after_wrk\": $estab_after, \"client_cpu_s_during_wrk\": $(awk -v a="$sl_c0" -v b="$sl_c1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')}"
  [[ $t == phigate ]] && SL_JSON+=", \"phigate_shed_during_attack\": $((shed1 - shed0)), \"phigate_connections_open_end\": $open_mid"
  # Let the proxy drop the N connections before the next run.
  local i
  for ((i = 0; i < 50; i++)); do (($(estab_to "$port") <= 4)) && break; sleep 0.1; done
  sleep 1
}

# --- 6. rounds ----------------------------------------------------------------------------------
RUNS=$TMP/runs.jsonl
if ((WARMUP > 0)); then
  for t in "${TARGETS[@]}"; do
    log "warm-up $t ${WARMUP}s"
    run_wrk "$t" "https://127.0.0.1:${PORT[$t]}/" "${PID[$t]}" "$WARMUP" "$TMP/wrk-$t-warmup.txt"
  done
fi
for ((r = 1; r <= REPEAT; r++)); do
  for t in "${TARGETS[@]}"; do
    wait_quiet
    run_wrk "$t" "https://127.0.0.1:${PORT[$t]}/" "${PID[$t]}" "$DURATION" "$TMP/wrk-$t-base-$r.txt"
    echo "{\"target\": \"$t\", \"round\": $r, \"phase\": \"baseline\", $WRK_JSON}" >>"$RUNS"
    log "round $r/$REPEAT $t baseline: $(grep -o '"rps": [^,]*, "p50_ms": [^,]*, "p99_ms": [^,]*, "max_ms": [^,]*' <<<"$WRK_JSON")"
    wait_quiet
    attack_run "$t" "$r"
    echo "{\"target\": \"$t\", \"round\": $r, \"phase\": \"attack\", $WRK_JSON, $SL_JSON}" >>"$RUNS"
    log "round $r/$REPEAT $t attack:   $(grep -o '"rps": [^,]*, "p50_ms": [^,]*, "p99_ms": [^,]*, "max_ms": [^,]*' <<<"$WRK_JSON")"
  done
done

# --- 7. table and JSON ----------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
OUT=bench/results/slowloris-$STAMP.json
LIMITS_JSON=""
for t in "${TARGETS[@]}"; do LIMITS_JSON+="${LIMITS_JSON:+, }\"$t\": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "${LIMIT[$t]}")"; done
python3 "$REPORT" --runs "$RUNS" --out "$OUT" --limit-ms "$LIMIT_MS" --settings "$(
  cat <<EOF
{"stamp": "$STAMP", "git_commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)", "git_dirty": $([[ -n $(git status --porcelain 2>/dev/null) ]] && echo true || echo false),
 "host": {"busy_pct_before_start": $IDLE_CHECK_BUSY, "cpus": $(nproc), "kernel": "$(uname -r)"},
 "versions": {"phigate": $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$("$PHIGATE" --version 2>&1 | head -1)"), "nginx": "$(nginx -v 2>&1 | head -1)", "haproxy": "$(haproxy -v 2>&1 | head -1)", "python": "$(python3 --version 2>&1)"},
 "settings": {"duration_s": $DURATION, "connections": $CONNECTIONS, "wrk_threads": 1, "slowloris_connections": $SLOW, "slowloris_interval_s": [5, 10], "repeat": $REPEAT, "warmup_s": $WARMUP, "workers": $WORKERS, "cert": "ec", "proxy_cpus": "$PROXY_CPUS", "load_cpus": "$LOAD_CPUS", "limit_ms": $LIMIT_MS, "header_timeout_s": ${HEADER_TIMEOUT:-null}, "wait_quiet_s": $WAIT_QUIET},
 "proxy_limits": {$LIMITS_JSON}}
EOF
)"
