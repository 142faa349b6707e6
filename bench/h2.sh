#!/usr/bin/env bash
# bench/h2.sh: HTTP/2 over TLS (ALPN h2) to phigate, nginx (`http2`) and HAProxy (`alpn h2`), side by
# side, in one run, with h2load (Debian nghttp2-client): 1, 10 and 100 concurrent streams per
# connection (h2load -m).
#
# Same backend (plain HTTP/1.1 nginx, 3-byte body), certificate, TLS settings and proxy templates
# (bench/configs/) as bench/run.sh; each proxy's rendered config gets one change: HTTP/2 offered by ALPN
# (phigate offers it by default, `http2.enabled`). Proxies pinned to PROXY_CPUS, h2load and the backend
# to LOAD_CPUS. For each -m value, --repeat rounds interleaved (phigate, nginx, haproxy, phigate, ...),
# each a bounded h2load run with the proxy's CPU time sampled from /proc around it. Figures: requests/s,
# p99 (from h2load's per-request log), requests per proxy CPU-second, failed requests; a table with
# phigate/nginx and phigate/haproxy ratios on stdout and bench/results/h2-<UTC stamp>.json.
# Everything it starts is stopped on exit (by PID) and its temp dir removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH_NAME=h2
# shellcheck source=bench/lib.sh
. bench/lib.sh
REPORT=$ROOT/bench/tools/h2_report.py

usage() {
  cat <<'EOF'
usage: bench/h2.sh [options]

  --quick            smoke run: --duration 3 --repeat 1, 1 s warm-up, --clients 8
  --streams LIST     comma-separated h2load -m values (default 1,10,100; each <= 100)
  --clients N        h2load connections (-c, default 16; env CLIENTS)
  --duration S       seconds per measured run (default 10; env DURATION)
  --repeat R         rounds per target and -m value; the median is reported (default 3; env REPEAT)
  --warmup S         unrecorded warm-up run per target before the first -m, 0 = none (default 2; env WARMUP)
  --workers N        proxy workers: phigate workers, nginx worker_processes, haproxy nbthread (default 1)
  --wait-quiet S     before each measured run, wait up to S s for the machine to be idle (default 0)
  --targets LIST     comma-separated subset of phigate,nginx,haproxy (default all three)
  --no-build         skip scripts/bootstrap.sh and the Release build (uses build/release/bin/phigate)
  --pgo              benchmark the profile-guided build/pgo/bin/phigate (scripts/build.sh pgo, about
                     three times a release build; with --no-build, the one already built)
  --keep-tmp         keep the temp dir (configs, logs, h2load output) and print its path
  -h, --help         this help

environment:
  PROXY_CPUS=0       taskset CPU list for the proxies (empty: no pinning)
  LOAD_CPUS=1        taskset CPU list for h2load and the backend (empty: no pinning)
  PHIGATE=PATH       phigate binary (default build/release/bin/phigate)
  BENCH_RESULTS_DIR=DIR where the JSON goes (default bench/results, relative to the checkout)

Results: a table on stdout, and the same as JSON in BENCH_RESULTS_DIR/h2-<UTC stamp>.json.
EOF
}

# --- options ---------------------------------------------------------------------------------
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-16}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-2}
WORKERS=${WORKERS:-1}
WAIT_QUIET=${WAIT_QUIET:-0}
PROXY_CPUS=${PROXY_CPUS-0}
LOAD_CPUS=${LOAD_CPUS-1}
STREAMS=(1 10 100)
BUILD=1
KEEP_TMP=""
TARGETS=(phigate nginx haproxy)

while (($#)); do
  case $1 in
    --quick) DURATION=3; REPEAT=1; WARMUP=1; CLIENTS=8 ;;
    --streams) need_arg "$@"; IFS=, read -r -a STREAMS <<<"$2"; shift ;;
    --clients) need_arg "$@"; CLIENTS=$2; shift ;;
    --duration) need_arg "$@"; DURATION=${2%s}; shift ;;
    --repeat) need_arg "$@"; REPEAT=$2; shift ;;
    --warmup) need_arg "$@"; WARMUP=${2%s}; shift ;;
    --workers) need_arg "$@"; WORKERS=$2; shift ;;
    --wait-quiet) need_arg "$@"; WAIT_QUIET=${2%s}; shift ;;
    --targets) need_arg "$@"; IFS=, read -r -a TARGETS <<<"$2"; shift ;;
    --no-build) BUILD="" ;;
    --pgo) use_pgo ;;
    --keep-tmp) KEEP_TMP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
for v in DURATION CLIENTS REPEAT WORKERS; do
  is_uint "${!v}" && ((${!v} > 0)) || die "$v must be a positive integer, got '${!v}'"
done
is_uint "$WARMUP" || die "WARMUP must be a non-negative integer, got '$WARMUP'"
is_uint "$WAIT_QUIET" || die "WAIT_QUIET must be a non-negative integer, got '$WAIT_QUIET'"
((${#STREAMS[@]})) || die "--streams is empty"
for m in "${STREAMS[@]}"; do
  # 100 is phigate's default http2.max_concurrent_streams (nginx 128, HAProxy 100): above it h2load
  # would measure refused streams, not throughput.
  is_uint "$m" && ((m > 0 && m <= 100)) || die "--streams values must be 1..100, got '$m'"
done
((DURATION <= 600 && REPEAT <= 20 && CLIENTS <= 1000)) || die "--duration <= 600, --repeat <= 20, --clients <= 1000, please"
check_targets
setup_pinning
raise_nofile $((4 * CLIENTS + 1024))

# --- 1. bootstrap and Release build -----------------------------------------------------------
WITH_PHIGATE=""; [[ " ${TARGETS[*]} " == *" phigate "* ]] && WITH_PHIGATE=1
[[ -z $BUILD || -z $WITH_PHIGATE ]] || build_phigate phigate
[[ -z $WITH_PHIGATE || -x $PHIGATE ]] || die "$PHIGATE not found (run without --no-build)"
need_tools h2load nginx haproxy curl openssl taskset pgrep python3 timeout
[[ -f $REPORT ]] || die "bench/tools/h2_report.py missing"
check_idle_at_start

# --- 2. temp dir, certificate, backend ----------------------------------------------------------
make_tmp phigate-h2
RUNS=$TMP/runs.jsonl
: >"$RUNS"
make_cert_set ec ec
start_backend

# --- 3. proxies: the bench/run.sh templates with HTTP/2 offered -----------------------------------
config_hook() { h2_config_hook "$@"; }  # bench/lib.sh: HTTP/2 offered by each proxy
for t in "${TARGETS[@]}"; do
  start_proxy "$t" "$t" ec
  alpn=$(timeout 5 openssl s_client -connect "127.0.0.1:${PORT[$t]}" -alpn h2,http/1.1 </dev/null 2>/dev/null |
    awk -F': ' '/^ALPN protocol:/ { print $2 }' || true)
  [[ $alpn == h2 ]] || die "$t does not negotiate h2 by ALPN (got '${alpn:-none}'): this build has no HTTP/2 for clients"
  log "$t on https://127.0.0.1:${PORT[$t]}/ (pid ${PID[$t]}, CPUs ${PROXY_CPUS:-any}, ALPN $alpn, TLS $(tls_info "${PORT[$t]}"))"
done

# --- 4. one bounded h2load run ------------------------------------------------------------------
# run_h2load TARGET M SECONDS TAG: sets H_JSON (JSON members) or exits on failure.
H_JSON=""
run_h2load() {
  local t=$1 m=$2 secs=$3 tag=$4 out=$TMP/h2load-$1-m$2-$4.txt lf=$TMP/h2load-$1-m$2-$4.log stats
  measure "$t" "${PID[$t]}" $((secs + 30)) "$out" h2load -t1 -c"$CLIENTS" -m"$m" -D"$secs" --log-file="$lf" \
    "https://127.0.0.1:${PORT[$t]}/"
  if ((M_RC != 0)) || ! grep -q '^Application protocol: h2' "$out"; then
    echo "$BENCH_NAME: error: h2load against $t failed (exit $M_RC) or did not speak h2" >&2; cat "$out" >&2; exit 1
  fi
  # h2load: "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
  #         "status codes: N 2xx, N 3xx, N 4xx, N 5xx"; the log: start_us<TAB>status<TAB>duration_us.
  stats=$(python3 - "$out" "$lf" "$M_WALL_S" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
st = re.search(r"status codes: (\d+) 2xx", text)
durs = sorted(int(l.split("\t")[2]) for l in open(sys.argv[2]) if l.count("\t") >= 2)
if not req or not durs:
    sys.exit(1)
p = lambda q: durs[min(len(durs) - 1, int(q * len(durs)))] / 1000.0
done, failed = int(req.group(4)), int(req.group(5)) + int(req.group(6)) + int(req.group(7))
print('"requests": %d, "failed": %d, "non2xx": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f'
      % (done, failed, done - int(st.group(1)) if st else -1, p(0.50), p(0.99), durs[-1] / 1000.0))
EOF
  ) || { echo "$BENCH_NAME: error: could not read h2load's output for $t" >&2; cat "$out" >&2; exit 1; }
  local rps
  rps=$(awk -v s="$stats" -v w="$M_WALL_S" 'BEGIN { match(s, /"requests": [0-9]+/); n = substr(s, RSTART + 12, RLENGTH - 12); printf "%.1f", n / w }')
  H_JSON=$(printf '%s, "rps": %s, "proxy_cpu_s": %s, "proxy_cpu_pct": %s, "wall_s": %s, "rss_mib": %.1f, "load_cpus_busy_pct": %s, "proxy_task_busy_pct": %s' \
    "$stats" "$rps" "$M_CPU_S" "$M_CPU_PCT" "$M_WALL_S" "$(awk -v r="$M_RSS_KIB" 'BEGIN { print r / 1024 }')" \
    "$M_LOAD_BUSY" "$M_PROXY_TASK_BUSY")
}

# --- 5. rounds ----------------------------------------------------------------------------------
if ((WARMUP > 0)); then
  for t in "${TARGETS[@]}"; do
    log "warm-up $t ${WARMUP}s"
    run_h2load "$t" 10 "$WARMUP" warmup
  done
fi
for m in "${STREAMS[@]}"; do
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      wait_quiet
      run_h2load "$t" "$m" "$DURATION" "r$r"
      echo "{\"target\": \"$t\", \"streams\": $m, \"round\": $r, $H_JSON}" >>"$RUNS"
      log "-m $m round $r/$REPEAT $t: $(grep -o '"p99_ms": [^,]*' <<<"$H_JSON"), $(grep -o '"rps": [^,]*, "proxy_cpu_s": [^,]*' <<<"$H_JSON")"
    done
  done
done

# --- 6. table and JSON ----------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "${BENCH_RESULTS_DIR:=bench/results}"
OUT=$BENCH_RESULTS_DIR/h2-$STAMP.json
python3 "$REPORT" --runs "$RUNS" --out "$OUT" --settings "$(
  cat <<EOF
{"stamp": "$STAMP", "git_commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)", "git_dirty": $([[ -n $(git status --porcelain 2>/dev/null) ]] && echo true || echo false),
 "host": {"busy_pct_before_start": $IDLE_CHECK_BUSY, "cpus": $(nproc), "kernel": "$(uname -r)"},
 "versions": {"phigate": $(jstr "$([[ -z $WITH_PHIGATE ]] || "$PHIGATE" --version 2>&1 | head -1)"), "nginx": $(jstr "$(nginx -v 2>&1 | head -1)"), "haproxy": $(jstr "$(haproxy -v 2>&1 | head -1)"), "h2load": $(jstr "$(h2load --version 2>&1 | head -1)")},
 "settings": {"phigate_binary": $(jstr "$PHIGATE"), "pgo": $(is_pgo_binary && echo true || echo false), "duration_s": $DURATION, "clients": $CLIENTS, "streams": [$(IFS=,; echo "${STREAMS[*]}")], "h2load_threads": 1, "repeat": $REPEAT, "warmup_s": $WARMUP, "workers": $WORKERS, "cert": "ec", "proxy_cpus": "$PROXY_CPUS", "load_cpus": "$LOAD_CPUS", "wait_quiet_s": $WAIT_QUIET}}
EOF
)"
log "results in $OUT"
