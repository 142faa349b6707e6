#!/usr/bin/env bash
# bench/run.sh: wrk against phigate, nginx and HAProxy side by side, in one run (STYLE.md §10).
#
# One nginx backend (plain HTTP, 3-byte body) and three TLS-terminating proxies in front of it, all on
# 127.0.0.1, all with the same certificate, TLS 1.2+1.3, ECDHE+AEAD ciphers, upstream keep-alive, no
# access log and the same worker count. Proxies are pinned to PROXY_CPUS, wrk and the backend to
# LOAD_CPUS. Rounds are interleaved (phigate, nginx, haproxy, phigate, ...) so drift hits all alike.
# Prints a table and the phigate/nginx and phigate/haproxy ratios, and writes bench/results/<stamp>.json.
# Everything it starts is stopped on exit (by PID) and its temp dir removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CONF_DIR=$ROOT/bench/configs
PHIGATE=${PHIGATE:-$ROOT/build/release/bin/phigate}

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]

  --quick            smoke run: --duration 3 --repeat 1, 1 s warm-up
  --duration S       seconds per wrk run (default 10; env DURATION)
  --connections N    wrk connections (default 64; env CONNECTIONS)
  --threads N        wrk threads (default 1; env WRK_THREADS)
  --repeat R         rounds per target; the median req/s run is reported (default 3; env REPEAT)
  --warmup S         unrecorded warm-up run per target before round 1, 0 = none (default 2; env WARMUP)
  --workers N        proxy workers: phigate workers, nginx worker_processes, haproxy nbthread
                     (default 1; env WORKERS)
  --rsa              RSA-2048 certificate instead of ECDSA P-256
  --wait-quiet S     before each measured run, wait up to S s for the machine to be idle
                     (< 10% busy over 1 s); 0 = off (default 0; env WAIT_QUIET)
  --targets LIST     comma-separated subset of phigate,nginx,haproxy (default all three)
  --no-build         skip scripts/bootstrap.sh and the Release build (uses build/release/bin/phigate)
  --keep-tmp         keep the temp dir (configs, logs, wrk output) and print its path
  -h, --help         this help

environment:
  PROXY_CPUS=0       taskset CPU list for the proxies (empty: no pinning)
  LOAD_CPUS=1        taskset CPU list for wrk and the backend (empty: no pinning)
  PHIGATE=PATH       phigate binary to run (default build/release/bin/phigate)

Results: a table on stdout, and the same as JSON in bench/results/<UTC stamp>.json.
EOF
}

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# --- options ---------------------------------------------------------------------------------
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-2}
WORKERS=${WORKERS:-1}
WAIT_QUIET=${WAIT_QUIET:-0}
PROXY_CPUS=${PROXY_CPUS-0}
LOAD_CPUS=${LOAD_CPUS-1}
KEY_KIND=ec
BUILD=1
KEEP_TMP=""
TARGETS=(phigate nginx haproxy)

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }
while (($#)); do
  case $1 in
    --quick) DURATION=3; REPEAT=1; WARMUP=1 ;;
    --duration) need_arg "$@"; DURATION=${2%s}; shift ;;
    --connections) need_arg "$@"; CONNECTIONS=$2; shift ;;
    --threads) need_arg "$@"; WRK_THREADS=$2; shift ;;
    --repeat) need_arg "$@"; REPEAT=$2; shift ;;
    --warmup) need_arg "$@"; WARMUP=${2%s}; shift ;;
    --workers) need_arg "$@"; WORKERS=$2; shift ;;
    --wait-quiet) need_arg "$@"; WAIT_QUIET=${2%s}; shift ;;
    --rsa) KEY_KIND=rsa ;;
    --targets) need_arg "$@"; IFS=, read -r -a TARGETS <<<"$2"; shift ;;
    --no-build) BUILD="" ;;
    --keep-tmp) KEEP_TMP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
for v in DURATION CONNECTIONS WRK_THREADS REPEAT WORKERS; do
  is_uint "${!v}" && ((${!v} > 0)) || die "$v must be a positive integer, got '${!v}'"
done
is_uint "$WARMUP" || die "WARMUP must be a non-negative integer, got '$WARMUP'"
is_uint "$WAIT_QUIET" || die "WAIT_QUIET must be a non-negative integer, got '$WAIT_QUIET'"
((CONNECTIONS >= WRK_THREADS)) || die "connections ($CONNECTIONS) must be >= wrk threads ($WRK_THREADS)"
((${#TARGETS[@]})) || die "--targets is empty"
for t in "${TARGETS[@]}"; do
  [[ $t == phigate || $t == nginx || $t == haproxy ]] || die "unknown target '$t' (phigate, nginx, haproxy)"
done

PROXY_PIN=() LOAD_PIN=()
if [[ -n $PROXY_CPUS ]]; then
  taskset -c "$PROXY_CPUS" true 2>/dev/null || die "cannot pin to PROXY_CPUS='$PROXY_CPUS' ($(nproc) CPUs); set PROXY_CPUS= to disable"
  PROXY_PIN=(taskset -c "$PROXY_CPUS")
fi
if [[ -n $LOAD_CPUS ]]; then
  taskset -c "$LOAD_CPUS" true 2>/dev/null || die "cannot pin to LOAD_CPUS='$LOAD_CPUS' ($(nproc) CPUs); set LOAD_CPUS= to disable"
  LOAD_PIN=(taskset -c "$LOAD_CPUS")
fi

# TLS settings shared by all three proxies.
CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
CIPHERSUITES="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

# --- 1. bootstrap and Release build -----------------------------------------------------------
if [[ -n $BUILD ]]; then
  log "bootstrap (scripts/bootstrap.sh)"
  scripts/bootstrap.sh >&2 || die "scripts/bootstrap.sh failed"
  log "building phigate (Release, build/release)"
  mkdir -p build/release
  blog=build/release/bench-build.log
  { cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPHIGATE_TESTS=OFF &&
    ninja -C build/release phigate; } >"$blog" 2>&1 || { tail -n 40 "$blog" >&2; die "Release build failed (full log: $blog)"; }
fi
[[ -x $PHIGATE ]] || die "$PHIGATE not found (run without --no-build)"
for tool in wrk nginx haproxy curl openssl taskset pgrep; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/bootstrap.sh)"
done

# --- process bookkeeping: only PIDs started here are ever signalled ---------------------------------
PIDS=()
TMP=""
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
stop_pid() {  # PID: TERM it (and its children, e.g. nginx workers), KILL whatever is left after 5 s
  local pid=$1 kids i
  kids=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  for k in $kids; do alive "$k" && kill -KILL "$k" 2>/dev/null; done
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ -n $KEEP_TMP ]]; then log "kept temp dir $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LAST_PID=""
start_bg() {  # LOGFILE CMD...: start CMD in the background, remember its PID in PIDS and LAST_PID
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# Picks a free loopback port below the ephemeral range (so wrk's and the proxies' outgoing
# connections cannot collide with it) and not handed out before in this run.
TAKEN=" "
free_port() {  # VAR
  local lo hi p hex i
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  hi=$((lo > 21000 ? lo - 1 : 30000)); lo=$((lo > 21000 ? 20000 : 10000))
  for ((i = 0; i < 500; i++)); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
    [[ $TAKEN == *" $p "* ]] && continue
    hex=$(printf ':%04X' "$p")
    awk -v h="$hex" '$2 ~ h"$" { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
    TAKEN+="$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  die "no free loopback port found"
}

render() {  # TEMPLATE OUT KEY=VALUE...: replace @KEY@ with VALUE
  local tpl=$1 out=$2 text kv; shift 2
  text=$(<"$tpl")
  for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
  [[ $text != *@[A-Z_]*@* ]] || die "unfilled placeholder in $tpl: $(grep -o '@[A-Z_]*@' <<<"$text" | head -1)"
  printf '%s\n' "$text" >"$out"
}

fail_start() {  # NAME LOG WHY
  echo "bench: error: $1 did not come up: $3" >&2
  echo "---- last lines of $2 ----" >&2
  tail -n 30 "$2" >&2 || true
  echo "----" >&2
  exit 1
}

wait_ready() {  # NAME PID URL LOG [EXTRA_URL]: poll up to 10 s for HTTP 200 with body "ok"
  local name=$1 pid=$2 url=$3 logf=$4 extra=${5:-} i code="" body
  for ((i = 0; i < 100; i++)); do
    if ! alive "$pid"; then
      local st=0; wait "$pid" 2>/dev/null || st=$?
      fail_start "$name" "$logf" "process exited with status $st"
    fi
    if [[ -z $extra ]] || [[ $(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$extra" 2>/dev/null) == 200 ]]; then
      code=$(curl -sk --max-time 1 -o "$TMP/probe" -w '%{http_code}' "$url" 2>/dev/null || true)
      if [[ $code == 200 ]]; then
        body=$(<"$TMP/probe")
        [[ $body == ok ]] || fail_start "$name" "$logf" "GET $url returned body '$body', expected 'ok'"
        return 0
      fi
    fi
    sleep 0.1
  done
  fail_start "$name" "$logf" "no HTTP 200 from $url within 10 s (last status '${code:-none}')"
}

# --- measurement helpers ------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
tree_pids() { echo "$1"; pgrep -P "$1" 2>/dev/null || true; }
cpu_ticks() {  # PID: utime+stime of PID and its children (nginx workers), in clock ticks
  local t=0 p f
  for p in $(tree_pids "$1"); do
    f=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${f:-0}))
  done
  echo "$t"
}
rss_kib() {  # PID: VmRSS of PID and its children, KiB
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
expand_cpus() {  # "0-2,5" -> "0 1 2 5"
  local part a b out=()
  IFS=, read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then a=${part%-*}; b=${part#*-}; for ((; a <= b; a++)); do out+=("$a"); done
    else out+=("$part"); fi
  done
  echo "${out[@]}"
}
cpu_lines() { if [[ -n $1 ]]; then expand_cpus "$1" | sed 's/[0-9]\+/cpu&/g'; else echo cpu; fi; }
LOAD_CPU_LINES=$(cpu_lines "$LOAD_CPUS")
PROXY_CPU_LINES=$(cpu_lines "$PROXY_CPUS")
PROXY_NCPUS=$(wc -w <<<"$PROXY_CPU_LINES"); [[ -n $PROXY_CPUS ]] || PROXY_NCPUS=$(nproc)
# cpu_stat "cpuA cpuB ..." [tasks] -> "busy total" jiffies summed over those /proc/stat lines.
# busy = everything but idle and iowait; with "tasks": only user+nice+system+steal, i.e. leaving out
# irq/softirq time (loopback packet processing), which the kernel charges to no process.
cpu_stat() {
  awk -v want=" $1 " -v tasks="${2:-}" 'index(want, " " $1 " ") {
      t = 0; for (i = 2; i <= 9; i++) t += $i
      busy += tasks ? $2 + $3 + $4 + $9 : t - $5 - $6; total += t } END { print busy, total }' /proc/stat
}
busy_pct() {  # "busy total" before, after -> percent
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
    printf "%.1f", ((y[2] - x[2]) > 0 ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0) }'
}
now_ns() { date +%s%N; }
machine_busy() {  # percent of all CPUs busy over the next second
  local a b; a=$(cpu_stat cpu); sleep 1; b=$(cpu_stat cpu); busy_pct "$a" "$b"
}
wait_quiet() {  # --wait-quiet: poll (bounded by WAIT_QUIET seconds) until the machine is idle
  ((WAIT_QUIET > 0)) || return 0
  local start=$SECONDS b
  while :; do
    b=$(machine_busy)
    awk -v b="$b" 'BEGIN { exit !(b < 10) }' && return 0
    if ((SECONDS - start >= WAIT_QUIET)); then
      log "machine still ${b}% busy after ${WAIT_QUIET}s of waiting; measuring anyway"
      return 0
    fi
  done
}

# wrk --latency output -> "rps p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
  awk 'function ms(v) {
         if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
         if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
         if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
         if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
         return v + 0 }
       $1 == "50%" { p50 = ms($2) }
       $1 == "99%" { p99 = ms($2) }
       / requests in / { req = $1 }
       /^Requests\/sec:/ { rps = $2 }
       /Non-2xx or 3xx responses:/ { non2xx = $NF }
       /Socket errors:/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
       END { if (rps == "" || p99 == "") exit 1
             printf "%s %.3f %.3f %d %d %d\n", rps, p50, p99, req, non2xx, err }' "$1"
}

# run_wrk LABEL URL PID SECONDS OUTFILE: one bounded wrk run; sets RUN (tab-separated fields:
# rps p50 p99 requests non2xx sockerr cpu_s wall_s cpu_pct rps_per_core rss_mib load_busy_pct backend_cpu_pct
# proxy_cpus_task_busy_pct)
RUN=""
run_wrk() {
  local label=$1 url=$2 pid=$3 secs=$4 out=$5 c0 c1 b0 b1 l0 l1 p0 p1 t0 t1 rss parsed rc=0
  c0=$(cpu_ticks "$pid"); b0=$(cpu_ticks "$BACKEND_PID"); l0=$(cpu_stat "$LOAD_CPU_LINES")
  p0=$(cpu_stat "$PROXY_CPU_LINES" tasks); t0=$(now_ns)
  timeout -k 5 $((secs + 30)) "${LOAD_PIN[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency "$url" \
    >"$out" 2>&1 || rc=$?
  t1=$(now_ns); c1=$(cpu_ticks "$pid"); b1=$(cpu_ticks "$BACKEND_PID"); l1=$(cpu_stat "$LOAD_CPU_LINES")
  p1=$(cpu_stat "$PROXY_CPU_LINES" tasks)
  rss=$(rss_kib "$pid")
  if ! alive "$pid"; then
    echo "bench: error: $label (pid $pid) died during the wrk run against $url" >&2
    echo "---- wrk output ----" >&2; cat "$out" >&2
    local lf=$TMP/$label.log; [[ -f $lf ]] || lf=$TMP/${label%%-*}.log
    [[ -f $lf ]] && { echo "---- last lines of $lf ----" >&2; tail -n 30 "$lf" >&2; }
    exit 1
  fi
  if ((rc != 0)) || ! parsed=$(parse_wrk "$out"); then
    echo "bench: error: wrk against $label ($url) failed (exit $rc):" >&2; cat "$out" >&2; exit 1
  fi
  RUN=$(awk -v p="$parsed" -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" \
    -v busy="$(busy_pct "$l0" "$l1")" -v pbusy="$(busy_pct "$p0" "$p1")" -v tck="$CLK_TCK" -v rss="$rss" 'BEGIN {
      split(p, f, " ")
      cpu = (c1 - c0) / tck; wall = (t1 - t0) / 1e9; bcpu = (b1 - b0) / tck
      printf "%.2f\t%.3f\t%.3f\t%d\t%d\t%d\t%.2f\t%.2f\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\n",
        f[1], f[2], f[3], f[4], f[5], f[6], cpu, wall, 100 * cpu / wall,
        (cpu > 0 ? f[4] / cpu : 0), rss / 1024, busy, 100 * bcpu / wall, pbusy }')
}

# --- quiet-machine check: one second of /proc/stat before anything of ours runs ---------------------
IDLE_CHECK_BUSY=$(machine_busy)
if awk -v b="$IDLE_CHECK_BUSY" 'BEGIN { exit !(b >= 10) }'; then
  log "WARNING: the machine is ${IDLE_CHECK_BUSY}% busy before the benchmark starts: results will be noisy"
fi

# --- 2. temp dir and certificate ----------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/phigate-bench.XXXXXX")
mkdir -p "$TMP/results" "$TMP/backend" "$TMP/nginx"
scripts/make-certs.sh "$TMP/certs" "$KEY_KIND" >/dev/null || die "scripts/make-certs.sh failed"
CERT=$TMP/certs/server.crt KEY=$TMP/certs/server.key PEM=$TMP/certs/combined.pem
cat "$CERT" "$KEY" >"$PEM"; chmod 600 "$PEM"
NGINX_USER=""
# As root, nginx would switch its workers to 'nobody', which cannot enter the 0700 temp dir.
[[ $(id -u) -eq 0 ]] && NGINX_USER="user root;"

# --- 3. backend ---------------------------------------------------------------------------------
free_port BACKEND_PORT
render "$CONF_DIR/backend-nginx.conf" "$TMP/backend/nginx.conf" DIR="$TMP/backend" \
  BACKEND_PORT="$BACKEND_PORT" NGINX_USER="$NGINX_USER"
start_bg "$TMP/backend.log" "${LOAD_PIN[@]}" nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf" \
  -e "$TMP/backend/error.log" -g "daemon off;"
BACKEND_PID=$LAST_PID
wait_ready backend "$BACKEND_PID" "http://127.0.0.1:$BACKEND_PORT/" "$TMP/backend.log"
log "backend nginx on 127.0.0.1:$BACKEND_PORT (pid $BACKEND_PID, CPUs ${LOAD_CPUS:-any})"

# --- 4. proxies ---------------------------------------------------------------------------------
declare -A PORT PID TLSINFO
start_phigate() {
  local admin
  free_port 'PORT[phigate]'; free_port admin
  render "$CONF_DIR/phigate.yaml" "$TMP/phigate.yaml" PORT="${PORT[phigate]}" ADMIN_PORT="$admin" \
    WORKERS="$WORKERS" CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" CERT="$CERT" KEY="$KEY" \
    BACKEND_PORT="$BACKEND_PORT"
  start_bg "$TMP/phigate.log" "${PROXY_PIN[@]}" "$PHIGATE" run --config "$TMP/phigate.yaml"
  PID[phigate]=$LAST_PID
  wait_ready phigate "$LAST_PID" "https://127.0.0.1:${PORT[phigate]}/" "$TMP/phigate.log" \
    "http://127.0.0.1:$admin/readyz"
  grep -q "phigate ready" "$TMP/phigate.log" || fail_start phigate "$TMP/phigate.log" "serves, but printed no 'phigate ready' line"
}
start_nginx() {
  free_port 'PORT[nginx]'
  render "$CONF_DIR/nginx-proxy.conf" "$TMP/nginx/nginx.conf" DIR="$TMP/nginx" PORT="${PORT[nginx]}" \
    WORKERS="$WORKERS" CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" CERT="$CERT" KEY="$KEY" \
    BACKEND_PORT="$BACKEND_PORT" NGINX_USER="$NGINX_USER"
  render "$CONF_DIR/nginx-openssl.cnf" "$TMP/nginx/openssl.cnf" CIPHERSUITES="$CIPHERSUITES"
  start_bg "$TMP/nginx.log" "${PROXY_PIN[@]}" env OPENSSL_CONF="$TMP/nginx/openssl.cnf" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
    -e "$TMP/nginx/error.log" -g "daemon off;"
  PID[nginx]=$LAST_PID
  wait_ready nginx "$LAST_PID" "https://127.0.0.1:${PORT[nginx]}/" "$TMP/nginx.log"
}
start_haproxy() {
  free_port 'PORT[haproxy]'
  render "$CONF_DIR/haproxy.cfg" "$TMP/haproxy.cfg" PORT="${PORT[haproxy]}" WORKERS="$WORKERS" \
    CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" PEM="$PEM" BACKEND_PORT="$BACKEND_PORT"
  start_bg "$TMP/haproxy.log" "${PROXY_PIN[@]}" haproxy -db -f "$TMP/haproxy.cfg"
  PID[haproxy]=$LAST_PID
  wait_ready haproxy "$LAST_PID" "https://127.0.0.1:${PORT[haproxy]}/" "$TMP/haproxy.log"
}
for t in "${TARGETS[@]}"; do
  "start_$t"
  # What an OpenSSL client with default settings (as wrk is) negotiates with this proxy.
  TLSINFO[$t]=$(timeout 5 openssl s_client -connect "127.0.0.1:${PORT[$t]}" </dev/null 2>/dev/null |
    awk '/^New, / { v = $2; c = $NF } /^(Server|Peer) Temp Key:/ { k = $4 } END { sub(",", "", v); sub(",", "", k); print v, c, k }')
  log "$t on https://127.0.0.1:${PORT[$t]}/ (pid ${PID[$t]}, CPUs ${PROXY_CPUS:-any}, ${TLSINFO[$t]})"
done

# --- backend alone ------------------------------------------------------------------------------
log "backend direct: wrk ${DURATION}s plain HTTP"
wait_quiet
run_wrk backend "http://127.0.0.1:$BACKEND_PORT/" "$BACKEND_PID" "$DURATION" "$TMP/wrk-backend.txt"
BACKEND_RUN=$RUN
IFS=$'\t' read -r b_rps b_p50 b_p99 _ _ _ _ _ b_cpu _ _ b_busy _ _ <<<"$BACKEND_RUN"
printf 'backend direct (nginx, plain HTTP, wrk+backend on CPUs %s): %s req/s, p50 %s ms, p99 %s ms, backend CPU %s%%, load CPUs busy %s%%\n' \
  "${LOAD_CPUS:-any}" "$b_rps" "$b_p50" "$b_p99" "$b_cpu" "$b_busy"

# --- 6. rounds ----------------------------------------------------------------------------------
if ((WARMUP > 0)); then
  for t in "${TARGETS[@]}"; do
    log "warm-up $t ${WARMUP}s"
    run_wrk "$t" "https://127.0.0.1:${PORT[$t]}/" "${PID[$t]}" "$WARMUP" "$TMP/wrk-$t-warmup.txt"
  done
fi
for ((r = 1; r <= REPEAT; r++)); do
  for t in "${TARGETS[@]}"; do
    wait_quiet
    run_wrk "$t" "https://127.0.0.1:${PORT[$t]}/" "${PID[$t]}" "$DURATION" "$TMP/wrk-$t-$r.txt"
    printf '%s\t%s\n' "$r" "$RUN" >>"$TMP/results/$t.tsv"
    IFS=$'\t' read -r rps _ p99 _ n2 se _ _ cpu _ _ busy _ _ <<<"$RUN"
    log "round $r/$REPEAT $t: $rps req/s, p99 $p99 ms, proxy CPU $cpu%, load CPUs busy $busy%$( ((n2 + se)) && echo ", ERRORS non-2xx=$n2 socket=$se")"
  done
done

# --- 7. summary ---------------------------------------------------------------------------------
# Per target: the median-req/s run (lower middle for an even count) plus min and max req/s.
# S[t] = "rps p50 p99 cpu_pct per_core rss_mib min max errors load_busy backend_pct other_pct", where
# other_pct is the share of the proxy CPUs that went to tasks other than the proxy (noise).
declare -A S
for t in "${TARGETS[@]}"; do
  S[$t]=$(sort -t$'\t' -k2,2g "$TMP/results/$t.tsv" | awk -F'\t' -v n="$PROXY_NCPUS" '
    { rps[NR] = $2; row[NR] = $0; err += $6 + $7 }
    END { m = int((NR + 1) / 2); split(row[m], f, "\t"); other = f[15] - f[10] / n; if (other < 0) other = 0
          printf "%s %s %s %s %s %s %s %s %d %s %s %.1f\n", f[2], f[3], f[4], f[10], f[11], f[12], rps[1], rps[NR], err, f[13], f[14], other }')
done

echo
printf '%-9s %12s %21s %8s %8s %7s %11s %8s %7s %6s\n' target "req/s" "min-max" "p50 ms" "p99 ms" "CPU %" "req/s/core" "RSS MiB" errors "load%"
printf '%-9s %12s %21s %8s %8s %7s %11s %8s %7s %6s\n' backend "$b_rps" "(direct, plain HTTP)" "$b_p50" "$b_p99" "$b_cpu" "-" "-" "-" "$b_busy"
for t in "${TARGETS[@]}"; do
  read -r rps p50 p99 cpu pc rss mn mx err busy _ <<<"${S[$t]}"
  printf '%-9s %12s %21s %8s %8s %7s %11s %8s %7s %6s\n' "$t" "$rps" "$mn-$mx" "$p50" "$p99" "$cpu" "$pc" "$rss" "$err" "$busy"
done
echo "(median of $REPEAT x ${DURATION}s runs; wrk -t$WRK_THREADS -c$CONNECTIONS keep-alive HTTPS; $WORKERS proxy worker(s) on CPUs ${PROXY_CPUS:-any}, wrk+backend on CPUs ${LOAD_CPUS:-any}; $KEY_KIND cert;"
echo " CPU % = proxy CPU time / wall time; req/s/core = requests per proxy CPU-second; load% = busy share of the wrk+backend CPUs)"

RATIOS=""
if [[ -n ${S[phigate]:-} ]]; then
  echo
  for o in nginx haproxy; do
    [[ -n ${S[$o]:-} ]] || continue
    line=$(awk -v a="${S[phigate]}" -v b="${S[$o]}" -v o="$o" 'BEGIN {
      split(a, x, " "); split(b, y, " ")
      r1 = y[1] > 0 ? x[1] / y[1] : 0; r2 = y[5] > 0 ? x[5] / y[5] : 0; r3 = y[3] > 0 ? x[3] / y[3] : 0
      printf "%s %.3f %.3f %.3f", o, r1, r2, r3 }')
    read -r _ r1 r2 r3 <<<"$line"
    printf 'phigate/%-8s req/s %.2fx   req/s per core %.2fx   p99 %.2fx (lower is better)\n' "$o" "$r1" "$r2" "$r3"
    RATIOS+="${RATIOS:+,}\"phigate/$o\": {\"rps\": $r1, \"rps_per_core\": $r2, \"p99\": $r3}"
  done
fi
if awk -v b="$IDLE_CHECK_BUSY" 'BEGIN { exit !(b >= 10) }'; then
  echo "WARNING: the machine was ${IDLE_CHECK_BUSY}% busy before the benchmark started: results are noisy"
fi
for t in "${TARGETS[@]}"; do
  read -r _ _ _ _ _ _ _ _ err busy _ other <<<"${S[$t]}"
  if ((err != 0)); then
    echo "WARNING: $t had $err errors (non-2xx or socket errors); see its wrk output with --keep-tmp"
  fi
  if awk -v b="$busy" 'BEGIN { exit !(b >= 90) }'; then
    echo "NOTE: the wrk+backend CPUs were ${busy}% busy during $t's median run: the load side may be the bottleneck"
  fi
  if awk -v o="$other" 'BEGIN { exit !(o >= 15) }'; then
    echo "WARNING: ${other}% of the proxy CPUs went to tasks other than $t during its median run: noisy machine"
  fi
done

# --- JSON ---------------------------------------------------------------------------------------
jstr() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "${s//$'\t'/ }"; }
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
OUT=bench/results/$STAMP.json
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false; [[ -n $(git status --porcelain 2>/dev/null) ]] && dirty=true
{
  echo "{"
  echo "  \"stamp\": $(jstr "$STAMP"),"
  echo "  \"git\": {\"commit\": $(jstr "$commit"), \"dirty\": $dirty},"
  echo "  \"host\": {\"busy_pct_before_start\": $IDLE_CHECK_BUSY, \"cpus\": $(nproc), \"cpu_model\": $(jstr "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"), \"kernel\": $(jstr "$(uname -r)")},"
  echo "  \"versions\": {\"phigate\": $(jstr "$("$PHIGATE" --version 2>&1 | head -1)"), \"nginx\": $(jstr "$(nginx -v 2>&1 | head -1)"), \"haproxy\": $(jstr "$(haproxy -v 2>&1 | head -1)"), \"wrk\": $(jstr "$(wrk -v 2>&1 | head -1 || true)"), \"openssl\": $(jstr "$(openssl version)")},"
  echo "  \"settings\": {\"duration_s\": $DURATION, \"connections\": $CONNECTIONS, \"wrk_threads\": $WRK_THREADS, \"repeat\": $REPEAT, \"warmup_s\": $WARMUP, \"wait_quiet_s\": $WAIT_QUIET, \"workers\": $WORKERS, \"cert\": $(jstr "$KEY_KIND"), \"proxy_cpus\": $(jstr "$PROXY_CPUS"), \"load_cpus\": $(jstr "$LOAD_CPUS"), \"tls12_ciphers\": $(jstr "$CIPHERS"), \"tls13_ciphersuites\": $(jstr "$CIPHERSUITES")},"
  echo "  \"backend_direct\": {\"rps\": $b_rps, \"p50_ms\": $b_p50, \"p99_ms\": $b_p99, \"backend_cpu_pct\": $b_cpu, \"load_cpus_busy_pct\": $b_busy},"
  echo "  \"targets\": {"
  n=0
  for t in "${TARGETS[@]}"; do
    read -r rps p50 p99 cpu pc rss mn mx err busy bcpu other <<<"${S[$t]}"
    if ((n++ > 0)); then echo ","; fi
    printf '    "%s": {"rps": %s, "rps_min": %s, "rps_max": %s, "p50_ms": %s, "p99_ms": %s, "cpu_pct": %s, "rps_per_core": %s, "rss_mib": %s, "errors": %s, "load_cpus_busy_pct": %s, "backend_cpu_pct": %s, "proxy_cpus_other_pct": %s, "tls": %s,\n' \
      "$t" "$rps" "$mn" "$mx" "$p50" "$p99" "$cpu" "$pc" "$rss" "$err" "$busy" "$bcpu" "$other" "$(jstr "${TLSINFO[$t]}")"
    printf '      "runs": ['
    awk -F'\t' '{ printf "%s\n        {\"round\": %s, \"rps\": %s, \"p50_ms\": %s, \"p99_ms\": %s, \"requests\": %s, \"non2xx\": %s, \"socket_errors\": %s, \"cpu_s\": %s, \"wall_s\": %s, \"cpu_pct\": %s, \"rps_per_core\": %s, \"rss_mib\": %s, \"load_cpus_busy_pct\": %s, \"backend_cpu_pct\": %s, \"proxy_cpus_task_busy_pct\": %s}",
                   (NR > 1 ? "," : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 }' "$TMP/results/$t.tsv"
    printf ']}'
  done
  echo
  echo "  },"
  echo "  \"ratios\": {${RATIOS}}"
  echo "}"
} >"$OUT"
echo
echo "wrote $OUT"
