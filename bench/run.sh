#!/usr/bin/env bash
# bench/run.sh: phigate, nginx and HAProxy as TLS-terminating reverse proxies, side by side, in one run
# (ARCHITECTURE.md; scenarios 1-5, 8 and the audit/access-log cost; 6 and 7 through bench/slowloris.sh
# and bench/ingress_scale.sh with --scenarios all+; active health checks of 5,000 endpoints on/off and
# TLS to the backend on/off: scenarios health and backendtls; regex routing; basic auth, rate limit and
# external auth (cache hit) on/off: scenarios auth, ratelimit and extauth).
#
# One nginx backend (plain HTTP: a 3-byte body, a 1 MiB file, an upload sink) and the proxies in front
# of it, all on 127.0.0.1, with the same certificate, TLS 1.2+1.3, ECDHE+AEAD ciphers in the same order,
# upstream keep-alive, no access log and the same worker count. Proxies are pinned to PROXY_CPUS, the load
# generators and the backend to LOAD_CPUS. Every scenario runs --repeat rounds interleaved (phigate,
# nginx, haproxy, phigate, ...) so drift hits all alike, and samples each proxy's CPU time from /proc.
# bench/tools/bench_report.py prints the table (median, min-max, per-core figures, phigate/nginx and
# phigate/haproxy ratios, the issue's targets met or not) and writes bench/results/<stamp>.json.
# Everything it starts is stopped on exit (by PID) and its temp dir removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH_NAME=bench
# shellcheck source=bench/lib.sh
. bench/lib.sh

ALL_SCENARIOS=(keepalive handshake resume bigbody memory mtls audit health backendtls regex auth ratelimit extauth)

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]

  --scenarios LIST   comma-separated, run in this order (default "all"):
                       keepalive  keep-alive HTTPS, 3-byte body: req/s, p50, p99
                       handshake  a new TLS connection per request (ECDSA and RSA): handshakes/s, p99
                       resume     resumed TLS sessions (tickets), openssl s_time -reuse vs -new
                       bigbody    1 MiB downloads and 1 MiB uploads over keep-alive: MB/s
                       memory     RSS idle and with --mem-connections idle TLS connections
                       mtls       client certificates required vs not, through a TLS-originating HAProxy
                       audit      phigate's audit log on vs off; nginx's and HAProxy's access logs on vs off
                       health     keep-alive with active health checks of 5,000 other endpoints on vs off
                                  (open-source nginx has none: its "on" is the same config doing nothing)
                       backendtls keep-alive with verified TLS from the proxy to the backend vs plain HTTP
                       regex      keep-alive to 100 regex locations with a rewrite (ingress-nginx's
                                  `/svcNN(/|$)(.*)` -> `/$2`) vs 100 prefix locations, paths spread over all
                       auth       keep-alive with basic auth (phigate: cached) vs the same Ingress/location
                                  without it; one htpasswd file (APR MD5) for phigate and nginx
                       ratelimit  keep-alive with a per-address rate limit far above the load (limit-rps
                                  1000000, never reached) vs the same Ingress/location without it
                       extauth    keep-alive with external authentication answered from the proxy's
                                  cache (auth-url + auth-cache-key; nginx: auth_request + proxy_cache)
                                  vs the same Ingress/location without it; HAProxy: n/a (no auth_request)
                     "all" = all of the above; "all+" = all, then bench/slowloris.sh (scenario 6) and
                     bench/ingress_scale.sh (scenario 7, phigate only), merged into the same JSON
  --quick            smoke run: --duration 3 --repeat 1, 1 s warm-up, 1000 memory connections
  --duration S       seconds per measured run (default 10; env DURATION)
  --connections N    wrk connections for keep-alive runs (default 64; env CONNECTIONS)
  --hs-connections N wrk connections for the handshake scenario (default 32; env HS_CONNECTIONS)
  --big-connections N wrk connections for 1 MiB bodies (default 16; env BIG_CONNECTIONS)
  --mem-connections N idle TLS connections in the memory scenario (default 5000; env MEM_CONNECTIONS)
  --threads N        wrk threads (default 1; env WRK_THREADS)
  --repeat R         rounds per target; the median run is reported (default 3; env REPEAT)
  --warmup S         unrecorded warm-up run per target before a scenario, 0 = none (default 2; env WARMUP)
  --workers N        proxy workers: phigate workers, nginx worker_processes, haproxy nbthread
                     (default 1; env WORKERS)
  --rsa              RSA-2048 certificate instead of ECDSA P-256 for all but the handshake scenario
                     (which always runs both)
  --wait-quiet S     before each measured run, wait up to S s for the machine to be idle
                     (< 10% busy over 1 s); 0 = off (default 0; env WAIT_QUIET)
  --targets LIST     comma-separated subset of phigate,nginx,haproxy (default all three)
  --no-build         skip scripts/bootstrap.sh and the Release build (uses build/release/bin/phigate)
  --pgo              benchmark the profile-guided build/pgo/bin/phigate (scripts/build.sh pgo, about
                     three times a release build; with --no-build, the one already built)
  --keep-tmp         keep the temp dir (configs, logs, tool output) and print its path
  -h, --help         this help

environment:
  PROXY_CPUS=0       taskset CPU list for the proxies (empty: no pinning)
  LOAD_CPUS=1        taskset CPU list for wrk, openssl s_time, the clients and the backend (empty: none)
  PHIGATE=PATH       phigate binary to run (default build/release/bin/phigate)
  BENCH_RESULTS_DIR=DIR where the JSON goes (default bench/results, relative to the checkout)

Results: a table on stdout, and the same as JSON in BENCH_RESULTS_DIR/<UTC stamp>.json.
EOF
}

# --- options ---------------------------------------------------------------------------------
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
HS_CONNECTIONS=${HS_CONNECTIONS:-32}
BIG_CONNECTIONS=${BIG_CONNECTIONS:-16}
MEM_CONNECTIONS=${MEM_CONNECTIONS:-5000}
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
SCENARIOS=("${ALL_SCENARIOS[@]}")
EXTRAS=""
QUICK=""
ARGS="$*"

while (($#)); do
  case $1 in
    --scenarios) need_arg "$@"
      case $2 in
        all) SCENARIOS=("${ALL_SCENARIOS[@]}") ;;
        all+) SCENARIOS=("${ALL_SCENARIOS[@]}"); EXTRAS=1 ;;
        *) IFS=, read -r -a SCENARIOS <<<"$2" ;;
      esac
      shift ;;
    --quick) DURATION=3; REPEAT=1; WARMUP=1; MEM_CONNECTIONS=1000; QUICK=1 ;;
    --duration) need_arg "$@"; DURATION=${2%s}; shift ;;
    --connections) need_arg "$@"; CONNECTIONS=$2; shift ;;
    --hs-connections) need_arg "$@"; HS_CONNECTIONS=$2; shift ;;
    --big-connections) need_arg "$@"; BIG_CONNECTIONS=$2; shift ;;
    --mem-connections) need_arg "$@"; MEM_CONNECTIONS=$2; shift ;;
    --threads) need_arg "$@"; WRK_THREADS=$2; shift ;;
    --repeat) need_arg "$@"; REPEAT=$2; shift ;;
    --warmup) need_arg "$@"; WARMUP=${2%s}; shift ;;
    --workers) need_arg "$@"; WORKERS=$2; shift ;;
    --wait-quiet) need_arg "$@"; WAIT_QUIET=${2%s}; shift ;;
    --rsa) KEY_KIND=rsa ;;
    --targets) need_arg "$@"; IFS=, read -r -a TARGETS <<<"$2"; shift ;;
    --no-build) BUILD="" ;;
    --pgo) use_pgo ;;
    --keep-tmp) KEEP_TMP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
for v in DURATION CONNECTIONS HS_CONNECTIONS BIG_CONNECTIONS MEM_CONNECTIONS WRK_THREADS REPEAT WORKERS; do
  is_uint "${!v}" && ((${!v} > 0)) || die "$v must be a positive integer, got '${!v}'"
done
is_uint "$WARMUP" || die "WARMUP must be a non-negative integer, got '$WARMUP'"
is_uint "$WAIT_QUIET" || die "WAIT_QUIET must be a non-negative integer, got '$WAIT_QUIET'"
((CONNECTIONS >= WRK_THREADS)) || die "connections ($CONNECTIONS) must be >= wrk threads ($WRK_THREADS)"
((MEM_CONNECTIONS <= 20000)) || die "--mem-connections is capped at 20000"
((DURATION <= 600 && REPEAT <= 20)) || die "--duration <= 600 and --repeat <= 20, please"
check_targets
((${#SCENARIOS[@]})) || die "--scenarios is empty"
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario '$s' (${ALL_SCENARIOS[*]}, all, all+)"
done
# Scenarios 6 and 7 (all+) run their own scripts on the release build: one label, one binary.
[[ -z $PGO || -z $EXTRAS ]] || die "--pgo with --scenarios all+: bench/slowloris.sh and bench/ingress_scale.sh run the release build (use --scenarios all)"
has_scenario() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }
setup_pinning

# Descriptors for the memory scenario's idle connections (and upstream ones) in one process.
raise_nofile $((MEM_CONNECTIONS + 4 * CONNECTIONS + 1024))
# The health scenario's endpoint pool listens on 5,000 sockets; HAProxy and phigate probe them.
! has_scenario health || raise_nofile 16384

# --- 1. bootstrap and Release build -----------------------------------------------------------
[[ -z $BUILD ]] || build_phigate phigate ${EXTRAS:+phigate-test-upstream}
[[ -x $PHIGATE ]] || die "$PHIGATE not found (run without --no-build)"
need_tools wrk nginx haproxy curl openssl taskset pgrep ss python3 timeout
REPORT=$ROOT/bench/tools/bench_report.py
IDLE_CONNS=$ROOT/bench/tools/idle_conns.py
[[ -f $REPORT && -f $IDLE_CONNS ]] || die "bench/tools/bench_report.py or idle_conns.py missing"

check_idle_at_start

# --- 2. temp dir and certificates ---------------------------------------------------------------
make_tmp phigate-bench
RUNS=$TMP/runs.jsonl NOTES=$TMP/notes.jsonl
: >"$RUNS"; : >"$NOTES"
make_cert_set ec ec
has_scenario handshake || [[ $KEY_KIND == rsa ]] && make_cert_set rsa rsa

# --- 3. backend (with a TLS listener for scenario backendtls: its own CA, name BACKEND_TLS_NAME) ----------
BACKEND_TLS_NAME=backend.bench.internal
if has_scenario backendtls; then make_cert_set backend ec "$BACKEND_TLS_NAME"; BACKEND_TLS_SET=backend; fi
# ... and /auth, the external authentication service of scenario extauth (200 to this bearer token).
if has_scenario extauth; then BACKEND_AUTH_TOKEN=$(openssl rand -hex 16); fi
start_backend

# --- config variants of the proxies (start_proxy calls this after rendering each config) ---------------
# Instance names: TARGET (the main one), TARGET-rsa / TARGET-ec (the other certificate), TARGET-mem
# (fresh, connection limits raised), TARGET-log (access log / audit log on), TARGET-mtls (client
# certificates required).
MEM_LIMIT=$((MEM_CONNECTIONS + 2 * CONNECTIONS + 1024))
config_hook() {  # KIND INST FILE
  local kind=$1 inst=$2 f=$3
  case $kind:$inst in
    nginx:*-mem) raise_limit "$f" worker_connections $((MEM_LIMIT + 256)) >/dev/null ;;
    haproxy:*-mem) raise_limit "$f" maxconn "$MEM_LIMIT" >/dev/null ;;
    phigate:*-hs-*)
      sed -i 's/^tls:$/tls:\n  session_tickets: false/' "$f"
      grep -q 'session_tickets: false' "$f" || die "could not turn off phigate's session tickets" ;;
    nginx:*-hs-*)
      sed -i "s#^    ssl_certificate_key \(.*\);#&\n    ssl_session_tickets off;\n    ssl_session_cache off;#" "$f"
      grep -q 'ssl_session_tickets off;' "$f" || die "could not turn off nginx's session tickets" ;;
    haproxy:*-hs-*)
      sed -i -e "s#^\(  bind .* ssl crt [^ ]*\)#\1 no-tls-tickets#" -e "s/^global\$/global\n  tune.ssl.cachesize 0/" "$f"
      grep -q 'no-tls-tickets' "$f" || die "could not turn off HAProxy's session tickets" ;;
    phigate:*-mem) ((MEM_CONNECTIONS + 64 < 10000 * WORKERS)) || log "WARNING: $MEM_CONNECTIONS connections exceed phigate's default 10000 per worker" ;;
    phigate:*-log)
      mkdir -p "$TMP/audit-keys" "$TMP/audit"
      [[ -f $TMP/audit-keys/k1.key ]] || openssl rand -base64 -out "$TMP/audit-keys/k1.key" 32
      printf 'audit: { dir: "%s", keys: "%s", active_key: k1 }\n' "$TMP/audit" "$TMP/audit-keys" >>"$f" ;;
    nginx:*-log)
      sed -i "s#^  access_log off;#  access_log $TMP/$inst/access.log;#" "$f"
      grep -q "access_log $TMP/$inst/access.log;" "$f" || die "could not turn on nginx's access log" ;;
    haproxy:*-log)
      # HAProxy cannot write a file itself: it logs to stdout, which start_bg sends to $TMP/INST.log.
      sed -i -e "s/^global\$/global\n  log stdout format raw local0/" \
        -e "s/^defaults\$/defaults\n  log global\n  option httplog/" "$f"
      grep -q 'option httplog' "$f" || die "could not turn on HAProxy's log" ;;
    phigate:*-mtls)
      write_mtls_manifests "$TMP/$inst-k8s"
      printf 'ingress: { dir: "%s", debounce: 50ms }\n' "$TMP/$inst-k8s" >>"$f" ;;
    nginx:*-mtls)
      sed -i "s#^    ssl_certificate_key \(.*\);#&\n    ssl_verify_client on;\n    ssl_client_certificate $CLIENT_CA;\n    ssl_verify_depth 1;#" "$f"
      grep -q 'ssl_verify_client on;' "$f" || die "could not turn on client certificates for nginx" ;;
    *:*-health) health_config "$kind" "$inst" "$f" ;;
    *:*-btls) btls_config "$kind" "$inst" "$f" ;;
    *:*-rx | *:*-px) regex_config "$kind" "$inst" "$f" ;;
    *:*-ip | *:*-au | *:*-rl | *:*-xa) policy_config "$kind" "$inst" "$f" ;;
    haproxy:*-mtls)
      sed -i "s#^\(  bind .* ssl crt [^ ]*\)#\1 verify required ca-file $CLIENT_CA#" "$f"
      grep -q 'verify required' "$f" || die "could not turn on client certificates for HAProxy" ;;
  esac
}

# Main instances, one per target.
for t in "${TARGETS[@]}"; do
  start_proxy "$t" "$t" "$KEY_KIND"
  log "$t on https://127.0.0.1:${PORT[$t]}/ (pid ${PID[$t]}, CPUs ${PROXY_CPUS:-any}, $(tls_info "${PORT[$t]}"))"
done

# --- recording ------------------------------------------------------------------------------------
# emit SCENARIO VARIANT TARGET ROUND [EXTRA JSON MEMBERS]: one run (the M_* samples of `measure`) as a
# JSON line in $RUNS.
emit() {
  local extra=${5:-}
  printf '{"scenario": "%s", "variant": "%s", "target": "%s", "round": %s, "cpu_s": %s, "wall_s": %s, "cpu_pct": %s, "rss_kib": %s, "load_cpus_busy_pct": %s, "backend_cpu_pct": %s, "proxy_cpus_task_busy_pct": %s%s}\n' \
    "$1" "$2" "$3" "$4" "$M_CPU_S" "$M_WALL_S" "$M_CPU_PCT" "$M_RSS_KIB" "$M_LOAD_BUSY" "$M_BACKEND_CPU_PCT" \
    "$M_PROXY_TASK_BUSY" "${extra:+, $extra}" >>"$RUNS"
}
wrk_json() {  # the W_* figures of the last measure_wrk as JSON members
  printf '"rps": %s, "p50_ms": %s, "p99_ms": %s, "max_ms": %s, "requests": %s, "non2xx": %s, "socket_errors": %s' \
    "$W_RPS" "$W_P50" "$W_P99" "$W_MAX" "$W_REQ" "$W_NON2XX" "$W_SOCKERR"
}
note() {  # SCENARIO JSON-OBJECT-MEMBERS: facts checked during a scenario (for the report and JSON)
  printf '{"scenario": "%s", %s}\n' "$1" "$2" >>"$NOTES"
}
say_run() {  # SCENARIO VARIANT TARGET ROUND WHAT
  log "[$1${2:+/$2}] round $4/$REPEAT $3: $5, proxy CPU ${M_CPU_PCT}%, load CPUs ${M_LOAD_BUSY}%"
}
errs() { ((W_NON2XX + W_SOCKERR)) && echo ", ERRORS non-2xx=$W_NON2XX socket=$W_SOCKERR" || true; }

warmup() {  # INST URL [WRK ARGS...]
  local inst=$1 url=$2; shift 2
  ((WARMUP > 0)) || return 0
  measure_wrk "$inst" "${PID[$inst]}" "$WARMUP" "$TMP/wrk-$inst-warmup.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "$@" "$url"
}

# --- backend alone ------------------------------------------------------------------------------
log "backend direct: wrk ${DURATION}s plain HTTP (3-byte body, then 1 MiB)"
wait_quiet
measure_wrk backend "$BACKEND_PID" "$DURATION" "$TMP/wrk-backend.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "http://127.0.0.1:$BACKEND_PORT/"
emit backend small backend 1 "$(wrk_json)"
log "backend direct: $W_RPS req/s, p99 $W_P99 ms, backend CPU $M_BACKEND_CPU_PCT%, load CPUs $M_LOAD_BUSY%"
if has_scenario bigbody; then
  wait_quiet
  measure_wrk backend "$BACKEND_PID" "$DURATION" "$TMP/wrk-backend-1m.txt" -t"$WRK_THREADS" -c"$BIG_CONNECTIONS" "http://127.0.0.1:$BACKEND_PORT/1m"
  emit backend 1m backend 1 "$(wrk_json), \"mb_s\": $(awk -v r="$W_RPS" 'BEGIN { printf "%.1f", r * 1048576 / 1e6 }')"
  log "backend direct /1m: $W_RPS req/s, backend CPU $M_BACKEND_CPU_PCT%"
fi

# ==== scenarios ====================================================================================

# 1. keep-alive HTTPS, 3-byte body.
scenario_keepalive() {
  local t r
  for t in "${TARGETS[@]}"; do warmup "$t" "https://127.0.0.1:${PORT[$t]}/"; done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      wait_quiet
      measure_wrk "$t" "${PID[$t]}" "$DURATION" "$TMP/wrk-keepalive-$t-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "https://127.0.0.1:${PORT[$t]}/"
      emit keepalive "" "$t" "$r" "$(wrk_json)"
      say_run keepalive "" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs)"
    done
  done
}

# 2. a new TLS connection (full handshake) per request: wrk with "Connection: close", ECDSA and RSA.
# wrk keeps the TLS session of a closed connection and offers it on the next one (SSL_clear), so every
# proxy would resume almost every connection: the instances here (TARGET-hs-ec, TARGET-hs-rsa) have
# session resumption turned off (no tickets, no session cache), and phigate's resumed counter checks it.
scenario_handshake() {
  local kind t r inst res0 res1 acc0 acc1 extra reused
  for kind in ec rsa; do
    [[ -n ${CERT[$kind]:-} ]] || make_cert_set "$kind" "$kind"
    for t in "${TARGETS[@]}"; do
      inst=$t-hs-$kind
      start_proxy "$t" "$inst" "$kind"
      # Resumption really off? Offer the session of a first connection on a second one.
      reused=$(stime_reused "${PORT[$inst]}")
      log "[handshake/$kind] $inst: $(tls_info "${PORT[$inst]}"); s_time -reuse resumed $reused"
      note handshake "\"target\": \"$t\", \"cert\": \"$kind\", \"stime_reuse_check\": $(jstr "$reused")"
      ((WARMUP == 0)) || measure_wrk "$inst" "${PID[$inst]}" "$WARMUP" "$TMP/wrk-$inst-warmup.txt" -t"$WRK_THREADS" -c"$HS_CONNECTIONS" -H "Connection: close" "https://127.0.0.1:${PORT[$inst]}/"
    done
    for ((r = 1; r <= REPEAT; r++)); do
      for t in "${TARGETS[@]}"; do
        inst=$t-hs-$kind
        wait_quiet
        if [[ $t == phigate ]]; then
          res0=$(phigate_metric "$inst" phigate_tls_resumed_total); acc0=$(phigate_metric "$inst" phigate_connections_accepted_total)
        fi
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-hs-$inst-$r.txt" -t"$WRK_THREADS" -c"$HS_CONNECTIONS" -H "Connection: close" "https://127.0.0.1:${PORT[$inst]}/"
        extra=""
        if [[ $t == phigate ]]; then
          res1=$(phigate_metric "$inst" phigate_tls_resumed_total); acc1=$(phigate_metric "$inst" phigate_connections_accepted_total)
          extra=", \"phigate_accepted\": $((acc1 - acc0)), \"phigate_resumed\": $((res1 - res0))"
        fi
        emit handshake "$kind" "$t" "$r" "$(wrk_json)$extra"
        say_run handshake "$kind" "$t" "$r" "$W_RPS handshakes/s, p99 $W_P99 ms$(errs)${extra:+ (phigate accepted $((acc1 - acc0)), resumed $((res1 - res0)))}"
      done
    done
    for t in "${TARGETS[@]}"; do stop_proxy "$t-hs-$kind"; done
  done
}

# 3. resumed sessions: openssl s_time -reuse (one session, offered on every new connection) vs -new.
# s_time prints one mark per connection ('r' resumed, '*' not) and "N connections in T real seconds"
# (T in whole seconds: the rate uses our own wall-clock time of the run instead).
parse_stime() {  # FILE -> "connections resumed_marks marks"
  awk '/connections in [0-9.]+ real seconds/ { n = $1 }
       /^[r*]+$/ { m += length($0); x = $0; r += gsub(/r/, "", x) }
       END { if (n == "") exit 1; print n, r + 0, m + 0 }' "$1"
}
stime_reused() {  # PORT: "R/N" connections resumed by s_time -reuse in one second
  local out parsed n r m
  out=$(timeout 10 "${LOAD_PIN[@]}" openssl s_time -connect "127.0.0.1:$1" -reuse -time 1 -www / 2>&1) || true
  parsed=$(parse_stime /dev/stdin <<<"$out") || { echo "s_time failed"; return 0; }
  read -r n r m <<<"$parsed"
  echo "$r/$m"
}
scenario_resume() {
  local mode t r out parsed n rmarks marks res0 res1 acc0 acc1 extra
  for ((r = 1; r <= REPEAT; r++)); do
    for mode in reuse new; do
      for t in "${TARGETS[@]}"; do
        wait_quiet
        out=$TMP/stime-$mode-$t-$r.txt
        if [[ $t == phigate ]]; then
          res0=$(phigate_metric "$t" phigate_tls_resumed_total); acc0=$(phigate_metric "$t" phigate_connections_accepted_total)
        fi
        measure "$t" "${PID[$t]}" $((DURATION + 30)) "$out" openssl s_time -connect "127.0.0.1:${PORT[$t]}" "-$mode" -time "$DURATION" -www /
        parsed=$(parse_stime "$out") || { cat "$out" >&2; die "openssl s_time against $t failed (exit $M_RC)"; }
        read -r n rmarks marks <<<"$parsed"
        extra=""
        if [[ $t == phigate ]]; then
          res1=$(phigate_metric "$t" phigate_tls_resumed_total); acc1=$(phigate_metric "$t" phigate_connections_accepted_total)
          extra=", \"phigate_accepted\": $((acc1 - acc0)), \"phigate_resumed\": $((res1 - res0))"
        fi
        emit resume "$mode" "$t" "$r" "\"connections\": $n, \"stime_resumed\": $rmarks, \"stime_marks\": $marks, \"hs_s\": $(awk -v n="$n" -v s="$M_WALL_S" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')$extra"
        say_run resume "$mode" "$t" "$r" "$n connections in ${M_WALL_S}s, $rmarks/$marks resumed per s_time${extra:+ (phigate accepted $((acc1 - acc0)), resumed $((res1 - res0)))}"
        [[ $mode == new ]] || ((rmarks * 10 >= marks * 9)) || log "WARNING: $t resumed only $rmarks of $marks s_time connections"
      done
    done
  done
}

# 4. 1 MiB downloads (GET /1m) and uploads (POST /upload, 1 MiB body) over keep-alive.
scenario_bigbody() {
  local t r dir code size got n0 n1 short extra lua=$TMP/upload.lua
  printf 'wrk.method = "POST"\nwrk.body = string.rep("x", 1048576)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' >"$lua"
  # Byte-count checks, once per proxy: a whole 1 MiB download, and a whole 1 MiB upload as the backend saw it.
  head -c 1048576 /dev/zero >"$TMP/upload.bin"
  for t in "${TARGETS[@]}"; do
    size=$(curl -sk --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "https://127.0.0.1:${PORT[$t]}/1m")
    [[ $size == "200 1048576" ]] || die "GET /1m through $t: expected '200 1048576', got '$size'"
    : >"$TMP/backend/upload.log"
    code=$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' -H 'Expect:' --data-binary @"$TMP/upload.bin" "https://127.0.0.1:${PORT[$t]}/upload")
    sleep 0.2
    got=$(awk '{ print $1 }' "$TMP/backend/upload.log" | tail -1)
    [[ $code == 200 ]] && ((${got:-0} >= 1048576)) || die "1 MiB upload through $t: status $code, backend read ${got:-nothing} bytes"
    note bigbody "\"target\": \"$t\", \"download_bytes_checked\": 1048576, \"upload_request_length_at_backend\": $got"
  done
  for dir in down up; do
    for t in "${TARGETS[@]}"; do
      if [[ $dir == down ]]; then warmup "$t" "https://127.0.0.1:${PORT[$t]}/1m"
      else warmup "$t" "https://127.0.0.1:${PORT[$t]}/upload" -s "$lua"; fi
    done
    for ((r = 1; r <= REPEAT; r++)); do
      for t in "${TARGETS[@]}"; do
        wait_quiet
        extra=""
        if [[ $dir == down ]]; then
          measure_wrk "$t" "${PID[$t]}" "$DURATION" "$TMP/wrk-big-$dir-$t-$r.txt" -t"$WRK_THREADS" -c"$BIG_CONNECTIONS" "https://127.0.0.1:${PORT[$t]}/1m"
        else
          n0=$(wc -l <"$TMP/backend/upload.log")
          measure_wrk "$t" "${PID[$t]}" "$DURATION" "$TMP/wrk-big-$dir-$t-$r.txt" -t"$WRK_THREADS" -c"$BIG_CONNECTIONS" -s "$lua" "https://127.0.0.1:${PORT[$t]}/upload"
          sleep 0.2
          n1=$(wc -l <"$TMP/backend/upload.log")
          # Every upload the backend answered, with the bytes it read (request_length includes the head).
          short=$(tail -n +$((n0 + 1)) "$TMP/backend/upload.log" | awk '$1 < 1048576 || $2 != 200' | wc -l)
          extra=", \"backend_uploads\": $((n1 - n0)), \"backend_short_uploads\": $short"
          ((short == 0)) || log "WARNING: the backend got $short uploads shorter than 1 MiB (or not 200) through $t"
          ((n1 - n0 >= W_REQ)) || log "WARNING: wrk counted $W_REQ uploads through $t, the backend $((n1 - n0))"
        fi
        emit bigbody "$dir" "$t" "$r" "$(wrk_json), \"mb_s\": $(awk -v n="$W_REQ" -v w="$M_WALL_S" 'BEGIN { printf "%.1f", n * 1048576 / 1e6 / w }')$extra"
        say_run bigbody "$dir" "$t" "$r" "$W_RPS req/s ($(awk -v r="$W_RPS" 'BEGIN { printf "%.0f", r * 1.048576 }') MB/s)$(errs)"
      done
    done
  done
}

# 5. memory: a fresh instance per round and target; RSS idle after a warm-up, then with N idle TLS
# keep-alive connections (each did one request).
scenario_memory() {
  local t r inst idle with cl out est ready i c0 t0 l0
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      inst=$t-mem
      start_proxy "$t" "$inst" "$KEY_KIND"
      measure_wrk "$inst" "${PID[$inst]}" 2 "$TMP/wrk-$inst-warm-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "https://127.0.0.1:${PORT[$inst]}/"
      wait_quiet
      sleep 2
      idle=$(rss_kib "${PID[$inst]}")
      out=$TMP/idle-$inst-$r.txt
      c0=$(cpu_ticks "${PID[$inst]}"); t0=$(now_ns); l0=$(cpu_stat "$LOAD_CPU_LINES")
      start_bg "$out" "${LOAD_PIN[@]}" timeout -k 5 300 python3 -u "$IDLE_CONNS" --port "${PORT[$inst]}" \
        --connections "$MEM_CONNECTIONS" --hold 120 --ready-timeout 120
      cl=$LAST_PID
      ready=""
      for ((i = 0; i < 1300; i++)); do
        grep -q '^READY ' "$out" 2>/dev/null && { ready=1; break; }
        alive "$cl" || break
        sleep 0.1
      done
      [[ -n $ready ]] || { cat "$out" >&2; stop_pid "$cl"; die "the idle-connection client did not get $MEM_CONNECTIONS connections open against $inst"; }
      sleep 2
      with=$(rss_kib "${PID[$inst]}")
      est=$(ss -Htn state established "( dport = :${PORT[$inst]} )" 2>/dev/null | wc -l)
      # CPU samples over the time it took to open the connections (handshakes + one request each).
      read -r M_CPU_S M_WALL_S M_CPU_PCT < <(awk -v a="$c0" -v b="$(cpu_ticks "${PID[$inst]}")" -v t="$CLK_TCK" \
        -v t0="$t0" -v t1="$(now_ns)" 'BEGIN { c = (b - a) / t; w = (t1 - t0) / 1e9; printf "%.2f %.3f %.1f\n", c, w, 100 * c / w }')
      M_LOAD_BUSY=$(busy_pct "$l0" "$(cpu_stat "$LOAD_CPU_LINES")")
      M_RSS_KIB=$with
      emit memory "" "$t" "$r" "\"connections\": $MEM_CONNECTIONS, \"rss_idle_kib\": $idle, \"rss_with_kib\": $with, \"kib_per_conn\": $(awk -v a="$idle" -v b="$with" -v n="$MEM_CONNECTIONS" 'BEGIN { printf "%.2f", (b - a) / n }'), \"established_per_ss\": $est, \"client\": $(sed -n 's/^READY //p' "$out" | head -1)"
      log "[memory] round $r/$REPEAT $t: RSS idle $((idle / 1024)) MiB, with $MEM_CONNECTIONS idle TLS connections $((with / 1024)) MiB ($(awk -v a="$idle" -v b="$with" -v n="$MEM_CONNECTIONS" 'BEGIN { printf "%.1f", (b - a) / n }') KiB each; $est established per ss)"
      stop_pid "$cl"; forget_pid "$cl"
      stop_proxy "$inst"
    done
  done
}

# 8. mutual TLS: wrk -> plain HTTP -> HAProxy (client side, on LOAD_CPUS; TLS with keep-alive, a
# client certificate or none) -> the proxy under test (client certificates required, or the main
# instance without). Plus the handshake cost: the same chain with a new TLS connection (full handshake,
# no session reuse) from the client HAProxy to the proxy per request, with and without a certificate.
CLIENT_CA="" CLIENT_DIR=""
make_client_certs() {
  CLIENT_DIR=$TMP/client-certs; mkdir -p "$CLIENT_DIR"; chmod 700 "$CLIENT_DIR"
  local d=$CLIENT_DIR
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$d/ca.key" -sha256 -days 30 -subj "/CN=bench client CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$d/ca.crt" 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/client.key" 2>/dev/null
  openssl req -new -key "$d/client.key" -subj "/CN=bench-client" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 -sha256 \
    -extfile "$d/client.ext" -out "$d/client.crt" 2>/dev/null || die "could not make the client certificate"
  cat "$d/client.crt" "$d/client.key" >"$d/client.pem"; chmod 600 "$d/client.pem"
  CLIENT_CA=$d/ca.crt
}
backend_manifests() {  # the IngressClass, and Service "backend" with one EndpointSlice to the bench backend
  cat <<EOF
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: phigate }
spec: { controller: phigate.io/ingress-controller }
---
apiVersion: v1
kind: Service
metadata: { name: backend, namespace: default }
spec: { ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: backend-a, namespace: default, labels: { kubernetes.io/service-name: backend } }
addressType: IPv4
ports: [{ name: http, port: $BACKEND_PORT }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
---
EOF
}
write_mtls_manifests() {  # DIR: IngressClass, backend Service+EndpointSlice, CA Secret, Ingress for mtls.app.example
  local d=$1
  mkdir -p "$d"
  { backend_manifests; cat <<EOF
apiVersion: v1
kind: Secret
metadata: { name: client-ca, namespace: default }
data: { ca.crt: $(base64 -w0 "$CLIENT_CA") }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: mtls
  namespace: default
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations:
    nginx.ingress.kubernetes.io/auth-tls-secret: default/client-ca
    nginx.ingress.kubernetes.io/auth-tls-verify-client: "on"
    nginx.ingress.kubernetes.io/auth-tls-verify-depth: "1"
spec:
  ingressClassName: phigate
  rules:
  - host: mtls.app.example
    http:
      paths:
      - { path: /, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }
EOF
  } >"$d/mtls.yaml"
}
scenario_mtls() {
  local t r mode inst code hc_pid cfg=$TMP/haproxy-client.cfg i n parsed out
  [[ -n $CLIENT_CA ]] || make_client_certs
  declare -A CPORT
  for t in "${TARGETS[@]}"; do
    inst=$t-mtls
    PROBE_CURL_ARGS=(--cert "$CLIENT_DIR/client.crt" --key "$CLIENT_DIR/client.key")
    start_proxy "$t" "$inst" "$KEY_KIND"
    PROBE_CURL_ARGS=()
    # phigate: the Ingress must have loaded (wait for the mTLS host to refuse a request without a cert).
    for ((i = 0; i < 100; i++)); do
      code=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' --resolve "mtls.app.example:${PORT[$inst]}:127.0.0.1" "https://mtls.app.example:${PORT[$inst]}/" 2>/dev/null || true)
      [[ $code != 200 ]] && break
      sleep 0.1
    done
    local with without
    without=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' --resolve "mtls.app.example:${PORT[$inst]}:127.0.0.1" "https://mtls.app.example:${PORT[$inst]}/" 2>/dev/null || true)
    with=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' --cert "$CLIENT_DIR/client.crt" --key "$CLIENT_DIR/client.key" --resolve "mtls.app.example:${PORT[$inst]}:127.0.0.1" "https://mtls.app.example:${PORT[$inst]}/" 2>/dev/null || true)
    [[ $with == 200 && $without != 200 ]] || die "$inst does not require client certificates as configured: with a certificate $with, without ${without:-no answer} (expected 200 and a refusal)"
    note mtls "\"target\": \"$t\", \"status_with_client_cert\": \"$with\", \"status_without\": \"${without:-000}\""
    log "[mtls] $inst on ${PORT[$inst]}: with a client certificate $with, without ${without:-000} (refused)"
  done
  # The TLS-originating client proxy: one frontend per (target, mode).
  {
    printf 'global\n  nbthread 1\n  maxconn 4096\n  ssl-server-verify required\n\ndefaults\n  mode http\n  option http-keep-alive\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\n'
    for t in "${TARGETS[@]}"; do
      for mode in mtls plain; do
        free_port "CPORT[$t-$mode]"
        local host=app.example port=${PORT[$t]} crt=""
        [[ $mode == mtls ]] && { host=mtls.app.example; port=${PORT[$t-mtls]}; crt=" crt $CLIENT_DIR/client.pem"; }
        # keep-alive to the proxy: TLS connections reused for many requests
        printf 'listen c-%s-%s\n  bind 127.0.0.1:%s\n  http-request set-header Host %s\n  http-reuse always\n  server s 127.0.0.1:%s ssl sni str(%s) ca-file %s%s\n\n' \
          "$t" "$mode" "${CPORT[$t-$mode]}" "$host" "$port" "$host" "${CA[$KEY_KIND]}" "$crt"
        # a new TLS connection to the proxy per request, full handshake (no session reuse)
        free_port "CPORT[$t-$mode-hs]"
        printf 'listen h-%s-%s\n  bind 127.0.0.1:%s\n  option http-server-close\n  http-request set-header Host %s\n  http-reuse never\n  server s 127.0.0.1:%s ssl no-ssl-reuse sni str(%s) ca-file %s%s\n\n' \
          "$t" "$mode" "${CPORT[$t-$mode-hs]}" "$host" "$port" "$host" "${CA[$KEY_KIND]}" "$crt"
      done
    done
  } >"$cfg"
  start_bg "$TMP/haproxy-client.log" "${LOAD_PIN[@]}" haproxy -db -f "$cfg"
  hc_pid=$LAST_PID
  for t in "${TARGETS[@]}"; do
    for mode in mtls plain; do
      wait_ready "haproxy-client" "$hc_pid" "http://127.0.0.1:${CPORT[$t-$mode]}/" "$TMP/haproxy-client.log"
      wait_ready "haproxy-client" "$hc_pid" "http://127.0.0.1:${CPORT[$t-$mode-hs]}/" "$TMP/haproxy-client.log"
    done
  done
  for t in "${TARGETS[@]}"; do
    for mode in plain mtls; do
      inst=$t; [[ $mode == mtls ]] && inst=$t-mtls
      warmup "$inst" "http://127.0.0.1:${CPORT[$t-$mode]}/"
    done
  done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      for mode in plain mtls; do
        inst=$t; [[ $mode == mtls ]] && inst=$t-mtls
        wait_quiet
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-mtls-$t-$mode-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "http://127.0.0.1:${CPORT[$t-$mode]}/"
        emit mtls "$mode" "$t" "$r" "$(wrk_json), \"client_proxy_rss_kib\": $(rss_kib "$hc_pid")"
        say_run mtls "$mode" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs)"
      done
    done
  done
  # Handshake cost: a full handshake per request between the client HAProxy and the proxy, with a
  # client certificate or without (wrk keeps its own connections to the client HAProxy alive).
  local res0 res1 acc0 acc1 extra
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      for mode in plain mtls; do
        inst=$t; [[ $mode == mtls ]] && inst=$t-mtls
        wait_quiet
        [[ $t == phigate ]] && { res0=$(phigate_metric "$inst" phigate_tls_resumed_total); acc0=$(phigate_metric "$inst" phigate_connections_accepted_total); }
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-mtls-hs-$t-$mode-$r.txt" -t"$WRK_THREADS" -c"$HS_CONNECTIONS" "http://127.0.0.1:${CPORT[$t-$mode-hs]}/"
        extra=""
        if [[ $t == phigate ]]; then
          res1=$(phigate_metric "$inst" phigate_tls_resumed_total); acc1=$(phigate_metric "$inst" phigate_connections_accepted_total)
          extra=", \"phigate_accepted\": $((acc1 - acc0)), \"phigate_resumed\": $((res1 - res0))"
        fi
        emit mtls_handshake "$mode" "$t" "$r" "$(wrk_json)$extra"
        say_run mtls_handshake "$mode" "$t" "$r" "$W_RPS handshakes/s, p99 $W_P99 ms$(errs)${extra:+ (phigate accepted $((acc1 - acc0)), resumed $((res1 - res0)))}"
      done
    done
  done
  stop_pid "$hc_pid"; forget_pid "$hc_pid"
  for t in "${TARGETS[@]}"; do stop_proxy "$t-mtls"; done
}

# Audit log (phigate) and access logs (nginx, HAProxy), on vs off, keep-alive as scenario 1.
scenario_audit() {
  local t r mode inst vout lines
  for t in "${TARGETS[@]}"; do
    start_proxy "$t" "$t-log" "$KEY_KIND"
    warmup "$t" "https://127.0.0.1:${PORT[$t]}/"
    warmup "$t-log" "https://127.0.0.1:${PORT[$t-log]}/"
  done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      for mode in off on; do
        inst=$t; [[ $mode == on ]] && inst=$t-log
        wait_quiet
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-audit-$inst-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "https://127.0.0.1:${PORT[$inst]}/"
        emit audit "$mode" "$t" "$r" "$(wrk_json)"
        say_run audit "$mode" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs)"
      done
    done
  done
  for t in "${TARGETS[@]}"; do
    if [[ $t == phigate ]]; then
      local recs; recs=$(phigate_metric phigate-log phigate_audit_records_total)
      stop_proxy phigate-log  # SIGTERM seals the active segment
      vout=$("$PHIGATE" audit verify --keys "$TMP/audit-keys" "$TMP/audit" 2>&1) && vrc=0 || vrc=$?
      log "[audit] phigate audit verify (exit $vrc): $(tr '\n' ' ' <<<"$vout" | cut -c1-300)"
      note audit "\"target\": \"phigate\", \"verify_exit\": $vrc, \"verify_output\": $(jstr "$vout"), \"records_metric\": ${recs:-0}, \"audit_bytes\": $(du -sb "$TMP/audit" | awk '{ print $1 }')"
    else
      if [[ $t == nginx ]]; then lines=$(wc -l <"$TMP/nginx-log/access.log"); else lines=$(grep -c ' "GET / HTTP/1.1"' "$TMP/haproxy-log.log" || true); fi
      stop_proxy "$t-log"
      note audit "\"target\": \"$t\", \"access_log_lines\": $lines"
      log "[audit] $t access log: $lines lines"
    fi
  done
}

# H. active health checks: keep-alive HTTPS as scenario 1 to the one real backend, while the proxy
# also actively checks HEALTH_N (5,000) other endpoints every HEALTH_INTERVAL (5 s: ~1,000 probes/s)
# on a route that gets no traffic (host health-pool.example). The endpoints are HEALTH_N distinct
# loopback addresses 127.0.1.1-127.0.20.250, one port, each its own listening socket of one small
# nginx (the "pool", on LOAD_CPUS, GET /healthz -> 200): loopback only, nothing on 0.0.0.0, and the
# distinct addresses keep the probes' 4-tuples distinct (no ephemeral port pressure). Variant off is
# the main instance (no pool route); variant on is TARGET-health, started for its round only (so no
# proxy probes while another one is measured), and measured once its checks are seen running:
# phigate's /metrics (phigate_health_probes_total >= HEALTH_N, phigate_health_endpoints healthy >=
# HEALTH_N), HAProxy's stats CSV (every pool server UP with L7OK). Open-source nginx has no active
# health checks (only passive max_fails): its "on" instance carries the same 5,000-server upstream
# and does nothing with it, so its on/off ratio is the noise floor of this scenario. Before each
# measured run, the instance's CPU over HEALTH_IDLE_S seconds without traffic is the checks' own cost.
HEALTH_N=5000 HEALTH_INTERVAL=5 HEALTH_HOST=health-pool.example HEALTH_IDLE_S=3
HEALTH_PORT="" HEALTH_PID="" HEALTH_LIST=""
declare -A HSTATS
health_addr() { echo "127.0.$((1 + $1 / 250)).$((1 + $1 % 250))"; }
start_health_pool() {
  local d=$TMP/health-pool i
  mkdir -p "$d"
  free_port HEALTH_PORT
  HEALTH_LIST=$TMP/health-endpoints.txt
  for ((i = 0; i < HEALTH_N; i++)); do echo "$(health_addr "$i"):$HEALTH_PORT"; done >"$HEALTH_LIST"
  {
    printf '%s\nworker_processes 1;\nworker_rlimit_nofile %d;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n' \
      "$NGINX_USER" $((HEALTH_N * 2 + 4096)) "$d" "$d"
    printf 'events { worker_connections %d; }\nhttp {\n  access_log off;\n' $((HEALTH_N * 2 + 2048))
    for i in body proxy fastcgi uwsgi scgi; do printf '  %s_temp_path %s/%s;\n' "${i/body/client_body}" "$d" "$i"; done
    printf '  server {\n'
    sed 's/^/    listen /; s/$/;/' "$HEALTH_LIST"
    printf '    location = /healthz { return 200 "ok\\n"; }\n    location = /__status { stub_status; }\n    location / { return 404; }\n  }\n}\n'
  } >"$d/nginx.conf"
  start_bg "$TMP/health-pool.log" "${LOAD_PIN[@]}" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g "daemon off;"
  HEALTH_PID=$LAST_PID
  wait_ready health-pool "$HEALTH_PID" "http://$(health_addr 0):$HEALTH_PORT/healthz" "$TMP/health-pool.log"
  wait_ready health-pool "$HEALTH_PID" "http://$(health_addr $((HEALTH_N - 1))):$HEALTH_PORT/healthz" "$TMP/health-pool.log"
  log "[health] pool: nginx with $HEALTH_N listeners $(health_addr 0)-$(health_addr $((HEALTH_N - 1))):$HEALTH_PORT (pid $HEALTH_PID, CPUs ${LOAD_CPUS:-any})"
}
health_config() {  # KIND INST FILE: the pool route/upstream/backend with active checks (config_hook)
  local kind=$1 inst=$2 f=$3 inc
  case $kind in
    phigate)
      sed -i "s#^upstream: { \(.*\) }\$#upstream: { \1, health: { active: { path: /healthz, interval: ${HEALTH_INTERVAL}s, timeout: 1s } } }#" "$f"
      grep -q 'health: { active:' "$f" || die "could not turn on phigate's active health checks"
      printf '  - host: %s\n    paths: [ { path: /, type: Prefix, backends: [%s] } ]\n' "$HEALTH_HOST" \
        "$(awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 }' "$HEALTH_LIST")" >>"$f" ;;
    nginx)
      inc=$TMP/$inst/health-pool.conf
      {
        printf '  upstream hc {\n'
        sed 's/^/    server /; s/$/;/' "$HEALTH_LIST"
        printf '    keepalive 16;\n  }\n  server {\n    listen 127.0.0.1:%s ssl;\n    server_name %s;\n' "${PORT[$inst]}" "$HEALTH_HOST"
        grep -E '^    ssl_certificate(_key)? ' "$f"
        printf '    location / { proxy_pass http://hc; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }\n'
      } >"$inc"
      # After the main server, so that stays the default server of the port.
      sed -i "\$s#^}\$#  include $inc;\n}#" "$f"
      grep -q "include $inc;" "$f" || die "could not add the pool upstream to nginx" ;;
    haproxy)
      free_port "HSTATS[$inst]"
      sed -i "s#^  default_backend be#  use_backend hc if { req.hdr(host) -m beg -i $HEALTH_HOST }\n&#" "$f"
      grep -q 'use_backend hc' "$f" || die "could not add the pool backend to HAProxy"
      {
        printf '\nbackend hc\n  option httpchk GET /healthz\n  default-server check inter %ss fall 3 rise 2\n' "$HEALTH_INTERVAL"
        awk '{ printf "  server h%d %s\n", NR, $0 }' "$HEALTH_LIST"
        printf '\nlisten stats\n  bind 127.0.0.1:%s\n  stats enable\n  stats uri /stats\n' "${HSTATS[$inst]}"
      } >>"$f" ;;
  esac
}
haproxy_pool_state() {  # INST: "servers up_l7ok chkfail" of backend hc from HAProxy's stats CSV
  curl -s --max-time 5 "http://127.0.0.1:${HSTATS[$1]}/stats;csv" 2>/dev/null |
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; sub(/^# /, "", h); c[h] = i }; next }
      $1 == "hc" && $2 != "BACKEND" && $2 != "FRONTEND" {
        n++; if ($c["status"] == "UP" && $c["check_status"] ~ /^L7OK/) ok++; f += $c["chkfail"] }
      END { printf "%d %d %d\n", n, ok, f }'
}
phigate_healthy() {  # INST: phigate_health_endpoints{state="healthy"}
  curl -s --max-time 2 "http://127.0.0.1:${ADMIN[$1]}/metrics" 2>/dev/null |
    awk '$1 ~ /^phigate_health_endpoints\{/ && $1 ~ /state="healthy"/ { s += $2 } END { printf "%d", s }'
}
# health_wait T INST ROUND: waits (bounded) until INST's checks have gone round all HEALTH_N endpoints
# once; a note per target in round 1. Dies if phigate's or HAProxy's checks do not show up.
health_wait() {
  local t=$1 inst=$2 r=$3 i probes healthy fails st n ok detail=""
  for ((i = 0; i < (3 * HEALTH_INTERVAL + 10) * 2; i++)); do
    case $t in
      phigate)
        probes=$(phigate_metric "$inst" phigate_health_probes_total); healthy=$(phigate_healthy "$inst")
        fails=$(phigate_metric "$inst" phigate_health_probe_failures_total)
        detail="phigate_health_probes_total $probes, phigate_health_endpoints{state=healthy} $healthy, probe failures $fails"
        ((probes >= HEALTH_N && healthy >= HEALTH_N)) && break ;;
      haproxy)
        read -r n ok fails <<<"$(haproxy_pool_state "$inst")"
        detail="$n pool servers, $ok UP with L7OK, chkfail $fails"
        ((n == HEALTH_N && ok == HEALTH_N)) && break ;;
      nginx) detail="open-source nginx: no active health checks (passive max_fails only); the 5,000-server upstream is idle"; break ;;
    esac
    sleep 0.5
  done
  [[ $t == nginx ]] || ((i < (3 * HEALTH_INTERVAL + 10) * 2)) || {
    note health "\"target\": \"$t\", \"round\": $r, \"checks\": \"failed\", \"detail\": $(jstr "$detail")"
    die "[health] $inst: active checks not seen on all $HEALTH_N endpoints within $((3 * HEALTH_INTERVAL + 10)) s: $detail"
  }
  log "[health] $inst round $r: checks running after $((i / 2)) s: $detail"
  ((r == 1)) && note health "\"target\": \"$t\", \"checks\": \"$([[ $t == nginx ]] && echo none || echo running)\", \"seconds_to_first_cycle\": $((i / 2)), \"detail\": $(jstr "$detail")"
  return 0
}
scenario_health() {
  local t r mode inst s0 s1 pc0 pc1 p0 p1 f0 f1 extra pool i0 idle w0 w1 span
  [[ -n $HEALTH_PID ]] || start_health_pool
  for t in "${TARGETS[@]}"; do warmup "$t" "https://127.0.0.1:${PORT[$t]}/"; done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      for mode in off on; do
        inst=$t
        if [[ $mode == on ]]; then
          inst=$t-health
          start_proxy "$t" "$inst" "$KEY_KIND"
          health_wait "$t" "$inst" "$r"
          warmup "$inst" "https://127.0.0.1:${PORT[$inst]}/"
        fi
        # The checks' own cost, without traffic: the instance's CPU over HEALTH_IDLE_S idle seconds.
        i0=$(cpu_ticks "${PID[$inst]}"); sleep "$HEALTH_IDLE_S"
        idle=$(awk -v a="$i0" -v b="$(cpu_ticks "${PID[$inst]}")" -v tck="$CLK_TCK" -v s="$HEALTH_IDLE_S" 'BEGIN { printf "%.1f", 100 * (b - a) / tck / s }')
        wait_quiet
        # Probe counters are read right before and after the run, with their own clock (rates per s).
        [[ $inst == phigate-health ]] && { p0=$(phigate_metric "$inst" phigate_health_probes_total); f0=$(phigate_metric "$inst" phigate_health_probe_failures_total); }
        read -r _ s0 <<<"$(nginx_status "$HEALTH_PORT" "$(health_addr 0)")"; pc0=$(cpu_ticks "$HEALTH_PID"); w0=$(now_ns)
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-health-$inst-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "https://127.0.0.1:${PORT[$inst]}/"
        read -r _ s1 <<<"$(nginx_status "$HEALTH_PORT" "$(health_addr 0)")"; pc1=$(cpu_ticks "$HEALTH_PID"); w1=$(now_ns)
        [[ $inst == phigate-health ]] && { p1=$(phigate_metric "$inst" phigate_health_probes_total); f1=$(phigate_metric "$inst" phigate_health_probe_failures_total); }
        span=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        pool=$(awk -v a="$s0" -v b="$s1" -v c0="$pc0" -v c1="$pc1" -v w="$span" -v tck="$CLK_TCK" \
          'BEGIN { printf "\"pool_probes_per_s\": %.1f, \"pool_cpu_pct\": %.1f", (b - a - 1) / w, 100 * (c1 - c0) / tck / w }')
        extra=""
        if [[ $inst == phigate-health ]]; then
          extra=", \"phigate_probes_per_s\": $(awk -v a="$p0" -v b="$p1" -v w="$span" 'BEGIN { printf "%.1f", (b - a) / w }'), \"phigate_probe_failures\": $((f1 - f0)), \"phigate_healthy\": $(phigate_healthy "$inst")"
        fi
        emit health "$mode" "$t" "$r" "$(wrk_json), \"idle_cpu_pct\": $idle, $pool$extra"
        say_run health "$mode" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs); idle CPU $idle%; ${pool//\"/}${extra//\"/}"
        [[ $mode == off ]] || stop_proxy "$inst"
      done
    done
  done
  stop_pid "$HEALTH_PID"; forget_pid "$HEALTH_PID"; HEALTH_PID=""
}

# T. TLS to the backend: keep-alive HTTPS to the proxy as scenario 1, and from the proxy to the backend
# plain HTTP (off: the main instance) or HTTPS with verification (on: TARGET-btls) to the same backend
# nginx's TLS listener (certificate for BACKEND_TLS_NAME from the run's own backend CA; TLS 1.2+1.3 and
# the proxies' cipher lists, server preference). phigate: `backend_tls: { ca, name, server_name: true,
# verify: true }`; nginx: proxy_pass https:// with proxy_ssl_verify on, proxy_ssl_trusted_certificate,
# proxy_ssl_name, proxy_ssl_server_name on, proxy_ssl_session_reuse on; HAProxy: `ssl verify required
# ca-file sni str() verifyhost`. All keep upstream connections alive; the backend's stub_status
# (accepted connections vs requests during each run) checks it, and the backend's per-connection log
# what each proxy negotiated (protocol, cipher, SNI).
btls_config() {  # KIND INST FILE (config_hook)
  local kind=$1 f=$3
  case $kind in
    phigate)
      sed -i "s#backends: \[\"127.0.0.1:$BACKEND_PORT\"\] }#backends: [\"127.0.0.1:$BACKEND_TLS_PORT\"], backend_tls: { ca: \"${CA[backend]}\", name: $BACKEND_TLS_NAME, server_name: true, verify: true } }#" "$f"
      grep -q 'backend_tls: { ca:' "$f" || die "could not turn on phigate's backend_tls" ;;
    nginx)
      sed -i -e "s#^    server 127.0.0.1:$BACKEND_PORT;#    server 127.0.0.1:$BACKEND_TLS_PORT;#" \
        -e "s#^      proxy_pass http://b;#      proxy_pass https://b;\n      proxy_ssl_verify on;\n      proxy_ssl_trusted_certificate ${CA[backend]};\n      proxy_ssl_name $BACKEND_TLS_NAME;\n      proxy_ssl_server_name on;\n      proxy_ssl_session_reuse on;\n      proxy_ssl_protocols TLSv1.2 TLSv1.3;\n      proxy_ssl_ciphers $CIPHERS;#" "$f"
      grep -q "server 127.0.0.1:$BACKEND_TLS_PORT;" "$f" && grep -q 'proxy_ssl_verify on;' "$f" || die "could not turn on nginx's TLS to the backend" ;;
    haproxy)
      sed -i "s#^  server b 127.0.0.1:$BACKEND_PORT max-reuse 100000\$#  server b 127.0.0.1:$BACKEND_TLS_PORT max-reuse 100000 ssl verify required ca-file ${CA[backend]} sni str($BACKEND_TLS_NAME) verifyhost $BACKEND_TLS_NAME ssl-min-ver TLSv1.2#" "$f"
      grep -q 'ssl verify required' "$f" || die "could not turn on HAProxy's TLS to the backend" ;;
  esac
}
scenario_backendtls() {
  local t r mode inst a0 q0 a1 q1 n0 line conns reqs per1k extra c0 c1 h0 h1 rs0 rs1
  [[ -n $BACKEND_TLS_PORT ]] || die "the backend has no TLS listener"
  for t in "${TARGETS[@]}"; do
    n0=$(wc -l <"$TMP/backend/tls-conn.log" 2>/dev/null || echo 0)
    start_proxy "$t" "$t-btls" "$KEY_KIND"
    sleep 0.3  # the backend's log line for the new connection
    line=$(tail -n +$((n0 + 1)) "$TMP/backend/tls-conn.log" 2>/dev/null | tail -1)
    [[ -n $line ]] || die "[backendtls] $t-btls: the backend logged no TLS connection"
    log "[backendtls] $t-btls on ${PORT[$t-btls]}: to the backend: $line (protocol cipher resumed SNI)"
    note backendtls "\"target\": \"$t\", \"backend_tls_connection\": $(jstr "$line")"
    warmup "$t" "https://127.0.0.1:${PORT[$t]}/"
    warmup "$t-btls" "https://127.0.0.1:${PORT[$t-btls]}/"
  done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      for mode in off on; do
        inst=$t; [[ $mode == on ]] && inst=$t-btls
        wait_quiet
        read -r a0 q0 <<<"$(nginx_status "$BACKEND_PORT")"
        [[ $t == phigate ]] && { c0=$(phigate_metric "$inst" phigate_upstream_connects_total); h0=$(phigate_metric "$inst" phigate_backend_tls_handshakes_total); rs0=$(phigate_metric "$inst" phigate_backend_tls_resumed_total); }
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-btls-$inst-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "https://127.0.0.1:${PORT[$inst]}/"
        read -r a1 q1 <<<"$(nginx_status "$BACKEND_PORT")"
        conns=$((a1 - a0 - 1)) reqs=$((q1 - q0 - 1))
        per1k=$(awk -v c="$conns" -v q="$reqs" 'BEGIN { printf "%.3f", (q > 0 ? 1000 * c / q : 0) }')
        extra=""
        if [[ $t == phigate ]]; then
          c1=$(phigate_metric "$inst" phigate_upstream_connects_total); h1=$(phigate_metric "$inst" phigate_backend_tls_handshakes_total); rs1=$(phigate_metric "$inst" phigate_backend_tls_resumed_total)
          extra=", \"phigate_upstream_connects\": $((c1 - c0)), \"phigate_backend_tls_handshakes\": $((h1 - h0)), \"phigate_backend_tls_resumed\": $((rs1 - rs0))"
        fi
        emit backendtls "$mode" "$t" "$r" "$(wrk_json), \"backend_conns\": $conns, \"backend_requests\": $reqs, \"backend_conns_per_1k\": $per1k$extra"
        say_run backendtls "$mode" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs); backend: $conns new connections for $reqs requests, backend CPU $M_BACKEND_CPU_PCT%${extra:+; ${extra//\"/}}"
        if ((conns * 100 > reqs)); then
          log "WARNING: [backendtls] $inst opened $conns backend connections for $reqs requests"
          note backendtls "\"target\": \"$t\", \"variant\": \"$mode\", \"round\": $r, \"reuse\": \"poor\", \"backend_conns\": $conns, \"backend_requests\": $reqs"
        fi
      done
    done
  done
  for t in "${TARGETS[@]}"; do stop_proxy "$t-btls"; done
}

# R. regex routing: keep-alive HTTPS as scenario 1, to one host with REGEX_N (100) locations. Variant
# regex (TARGET-rx): the locations ingress-nginx renders for `use-regex` + `rewrite-target: /$2` on paths
# `/svcNN(/|$)(.*)`: phigate gets that Ingress (one RE2 set), nginx 100 `location ~* "^/svcNN(/|$)(.*)"`
# blocks each with `rewrite ... /$2 break` (what ingress-nginx writes), HAProxy one ACL of 100 `path_reg`
# patterns and 100 `replace-path` rules. Variant prefix (TARGET-px): 100 plain prefix locations `/svcNN`, no rewrite. A wrk Lua
# script cycles the request path over /svc00/item .. /svc99/item, so every location is hit alike; the
# backend answers any path. Before measuring, each instance must route /svc42/item (200) and refuse an
# unknown prefix (404).
REGEX_N=100
write_regex_manifests() {  # DIR MODE(rx|px)
  local d=$1 mode=$2 i
  mkdir -p "$d"
  {
    backend_manifests
    cat <<EOF
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: svc
  namespace: default
  creationTimestamp: "2026-01-01T00:00:00Z"
EOF
    [[ $mode == rx ]] && printf '  annotations:\n    nginx.ingress.kubernetes.io/use-regex: "true"\n    nginx.ingress.kubernetes.io/rewrite-target: /$2\n'
    printf 'spec:\n  ingressClassName: phigate\n  rules:\n  - http:\n      paths:\n'
    for ((i = 0; i < REGEX_N; i++)); do
      if [[ $mode == rx ]]; then
        printf '      - { path: "/svc%02d(/|$)(.*)", pathType: ImplementationSpecific, backend: { service: { name: backend, port: { number: 80 } } } }\n' "$i"
      else
        printf '      - { path: /svc%02d, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }\n' "$i"
      fi
    done
  } >"$d/regex.yaml"
}
regex_config() {  # KIND INST FILE (config_hook)
  local kind=$1 inst=$2 f=$3 mode=${2##*-} i loc rules
  case $kind in
    phigate)
      # The Ingress replaces the static catch-all route: no `routes:` section.
      sed -i '/^routes:$/,$d' "$f"
      ! grep -q '^routes:' "$f" || die "could not drop phigate's static routes"
      write_regex_manifests "$TMP/$inst-k8s" "$mode"
      printf 'ingress: { dir: "%s", debounce: 50ms }\n' "$TMP/$inst-k8s" >>"$f" ;;
    nginx)
      loc=$TMP/$inst/regex-locations.conf
      {
        for ((i = 0; i < REGEX_N; i++)); do
          if [[ $mode == rx ]]; then
            printf '    location ~* "^/svc%02d(/|$)(.*)" {\n      rewrite "(?i)^/svc%02d(/|$)(.*)" /$2 break;\n' "$i" "$i"
          else
            printf '    location /svc%02d {\n' "$i"
          fi
          printf '      proxy_pass http://b;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n'
          printf '      proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-For $remote_addr;\n'
          printf '      proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Forwarded-Host $host;\n'
          printf '      proxy_set_header X-Forwarded-Port $server_port;\n      proxy_set_header X-Real-IP $remote_addr;\n'
          printf '      proxy_set_header X-Request-Id $request_id;\n    }\n'
        done
        # No location matched: 404, as in the other proxies.
        printf '    location / { return 404; }\n'
      } >"$loc"
      # The config's own `location / { ... }` block (up to its closing brace) is replaced by the include.
      sed -i "/^    location \/ {\$/,/^    }\$/c\\    include $loc;" "$f"
      grep -q "include $loc;" "$f" || die "could not add nginx's regex locations" ;;
    haproxy)
      rules=$TMP/$inst-rules.cfg
      # One ACL `known` with REGEX_N patterns (OR): no match -> 404; then, for regex, one replace-path per
      # location (each applies only where its pattern matches).
      {
        for ((i = 0; i < REGEX_N; i++)); do
          if [[ $mode == rx ]]; then printf '  acl known path_reg -i ^/svc%02d(/|$)(.*)\n' "$i"; else printf '  acl known path_beg /svc%02d\n' "$i"; fi
        done
        printf '  http-request deny deny_status 404 unless known\n'
        if [[ $mode == rx ]]; then
          for ((i = 0; i < REGEX_N; i++)); do printf '  http-request replace-path (?i)^/svc%02d(/|$)(.*) /\\2\n' "$i"; done
        fi
        printf '  default_backend be\n'
      } >"$rules"
      # The rules go into the frontend in place of `default_backend be`.
      sed -i -e "/^  default_backend be\$/r $rules" -e "/^  default_backend be\$/d" "$f"
      grep -q 'deny_status 404' "$f" || die "could not add HAProxy's regex rules" ;;
  esac
}
scenario_regex() {
  local t r mode inst code i script=$TMP/regex-paths.lua
  printf 'local i = 0\nrequest = function()\n  i = (i + 1) %% %d\n  return wrk.format(nil, string.format("/svc%%02d/item", i))\nend\n' "$REGEX_N" >"$script"
  for t in "${TARGETS[@]}"; do
    for mode in rx px; do
      inst=$t-$mode
      READY_PATH=/svc42/item start_proxy "$t" "$inst" "$KEY_KIND"
      # / is a 404 here: start_proxy waits for /svc42/item instead (phigate: once its Ingress loaded).
      code=""
      for ((i = 0; i < 100; i++)); do
        code=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:${PORT[$inst]}/svc42/item" 2>/dev/null || true)
        [[ $code == 200 ]] && break
        sleep 0.1
      done
      [[ $code == 200 ]] || die "[regex] $inst does not route /svc42/item (got ${code:-no answer})"
      code=$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:${PORT[$inst]}/other/item" 2>/dev/null || true)
      [[ $code == 404 ]] || die "[regex] $inst answers /other/item with ${code:-nothing}, expected 404"
      note regex "\"target\": \"$t\", \"variant\": \"$mode\", \"routes\": $REGEX_N, \"svc42_status\": 200, \"unknown_status\": 404"
      log "[regex] $inst on ${PORT[$inst]}: /svc42/item 200, /other/item 404"
      warmup "$inst" "https://127.0.0.1:${PORT[$inst]}/" -s "$script"
    done
  done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${TARGETS[@]}"; do
      for mode in px rx; do
        inst=$t-$mode
        wait_quiet
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-regex-$inst-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" -s "$script" "https://127.0.0.1:${PORT[$inst]}/"
        emit regex "$([[ $mode == rx ]] && echo regex || echo prefix)" "$t" "$r" "$(wrk_json)"
        say_run regex "$mode" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs)"
      done
    done
  done
  for t in "${TARGETS[@]}"; do stop_proxy "$t-rx"; stop_proxy "$t-px"; done
}

# B, L. basic auth and rate limits: keep-alive HTTPS as scenario 1, to the same host with and
# without the policy. phigate gets both only through Ingress annotations, so both of its variants come
# from an Ingress in `ingress.dir` (TARGET-ip: the Ingress without annotations; TARGET-au: auth-type
# basic + auth-secret, an auth-file Secret; TARGET-rl: limit-rps); nginx and HAProxy get the same
# location/frontend with and without the directives (TARGET-ip is their main config).
#  - auth: one htpasswd file, `htpasswd -nbm` (APR MD5, $apr1$), for phigate (the Secret's key `auth`)
#    and nginx (`auth_basic_user_file`); HAProxy's `userlist` gets MD5-crypt ($1$, `openssl passwd -1`:
#    the same algorithm, glibc's crypt has no $apr1$). wrk sends `Authorization: Basic` on every request,
#    to both variants. phigate verifies once per worker and then hits its cache (docs/auth-basic.md): its
#    `phigate_auth_basic_checks_total` must show only cached checks during a measured run; nginx and
#    HAProxy have no cache and hash the password on every request.
#  - ratelimit: `limit-rps: "1000000"` (burst x5, nodelay), far above what wrk reaches from its one
#    address; nginx `limit_req_zone $binary_remote_addr ... rate=1000000r/s` + `limit_req burst=5000000
#    nodelay` (what ingress-nginx renders); HAProxy a stick-table `http_req_rate(1s)` tracked per source
#    with a deny above 1000000. Any refusal (non-2xx) is reported: the limit was reached.
# X. external authentication with a cache hit, the same way, variant TARGET-xa:
#  - the auth service is the backend nginx's /auth (lib.sh, BACKEND_AUTH_TOKEN): 200 to `Authorization:
#    Bearer <the run's random token>`, 401 to anything else, one line per request in its auth.log.
#  - phigate: a Service `auth` (port 8080) + EndpointSlice to the backend, and on the Ingress
#    `auth-url: http://auth.default.svc.cluster.local:8080/auth`, `auth-cache-key: "$http_authorization"`,
#    `auth-cache-duration: "200 5m"` (docs/auth-external.md).
#  - nginx: what ingress-nginx renders for those: `auth_request` to an internal location proxying to
#    /auth (pooled upstream, no request body, the X-Original-* fields), `proxy_cache` keyed on
#    `$http_authorization` in a zone in the instance's temp dir, `proxy_cache_valid 200 5m`.
#  - HAProxy: n/a: it has no auth_request without Lua or SPOE (not in the bench's configs).
#  wrk sends the token on every request, to both variants, so every measured request is a cache hit:
#  checked per run by the auth service's log (no request expected) and phigate's
#  phigate_auth_external_checks_total (only result="cached" verdicts; fresh subrequests = the verdicts
#  minus the cached ones).
POLICY_RPS=1000000
AUTH_USER=bench AUTH_PASS="" AUTH_B64=""
auth_files() {  # the credentials, the htpasswd file (phigate, nginx) and HAProxy's MD5-crypt hash
  [[ -z $AUTH_PASS ]] || return 0
  need_tools htpasswd
  mkdir -p "$TMP/auth"
  AUTH_PASS=$(openssl rand -hex 12)
  AUTH_B64=$(printf '%s:%s' "$AUTH_USER" "$AUTH_PASS" | base64 -w0)
  htpasswd -nbm "$AUTH_USER" "$AUTH_PASS" | sed '/^$/d' >"$TMP/auth/htpasswd"
  grep -q "^$AUTH_USER:\$apr1\\$" "$TMP/auth/htpasswd" || die "htpasswd -nbm wrote no \$apr1\$ hash"
  openssl passwd -1 "$AUTH_PASS" >"$TMP/auth/haproxy-md5crypt"
}
write_policy_manifests() {  # DIR MODE(ip|au|rl|xa): one Ingress for every path, with MODE's annotations
  local d=$1 mode=$2
  mkdir -p "$d"
  {
    backend_manifests
    if [[ $mode == xa ]]; then
      cat <<EOF
apiVersion: v1
kind: Service
metadata: { name: auth, namespace: default }
spec: { ports: [{ name: http, port: 8080, targetPort: 8080 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: auth-a, namespace: default, labels: { kubernetes.io/service-name: auth } }
addressType: IPv4
ports: [{ name: http, port: $BACKEND_PORT }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
---
EOF
    fi
    if [[ $mode == au ]]; then
      cat <<EOF
apiVersion: v1
kind: Secret
metadata: { name: basic-auth, namespace: default }
data: { auth: $(base64 -w0 "$TMP/auth/htpasswd") }
---
EOF
    fi
    cat <<EOF
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
  namespace: default
  creationTimestamp: "2026-01-01T00:00:00Z"
EOF
    case $mode in
      au) printf '  annotations:\n    nginx.ingress.kubernetes.io/auth-type: basic\n    nginx.ingress.kubernetes.io/auth-secret: basic-auth\n    nginx.ingress.kubernetes.io/auth-realm: bench\n' ;;
      rl) printf '  annotations:\n    nginx.ingress.kubernetes.io/limit-rps: "%s"\n' "$POLICY_RPS" ;;
      xa)
        printf '  annotations:\n    nginx.ingress.kubernetes.io/auth-url: "http://auth.default.svc.cluster.local:8080/auth"\n'
        printf '    nginx.ingress.kubernetes.io/auth-cache-key: "$http_authorization"\n'
        printf '    nginx.ingress.kubernetes.io/auth-cache-duration: "200 5m"\n' ;;
    esac
    printf 'spec:\n  ingressClassName: phigate\n  rules:\n  - http:\n      paths:\n'
    printf '      - { path: /, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }\n'
  } >"$d/app.yaml"
}
policy_config() {  # KIND INST FILE (config_hook)
  local kind=$1 inst=$2 f=$3 mode=${2##*-} rules
  case $kind in
    phigate)
      # The Ingress replaces the static catch-all route: no `routes:` section.
      sed -i '/^routes:$/,$d' "$f"
      ! grep -q '^routes:' "$f" || die "could not drop phigate's static routes"
      write_policy_manifests "$TMP/$inst-k8s" "$mode"
      printf 'ingress: { dir: "%s", debounce: 50ms }\n' "$TMP/$inst-k8s" >>"$f" ;;
    nginx)
      case $mode in
        au)
          sed -i "s#^      proxy_pass http://b;#      auth_basic \"bench\";\n      auth_basic_user_file $TMP/auth/htpasswd;\n&#" "$f"
          grep -q 'auth_basic_user_file' "$f" || die "could not add nginx's basic auth" ;;
        rl)
          sed -i -e "s#^  access_log off;#&\n  limit_req_zone \$binary_remote_addr zone=bench:10m rate=${POLICY_RPS}r/s;#" \
            -e "s#^      proxy_pass http://b;#      limit_req zone=bench burst=$((POLICY_RPS * 5)) nodelay;\n&#" "$f"
          grep -q 'limit_req zone=bench' "$f" && grep -q 'limit_req_zone' "$f" || die "could not add nginx's rate limit" ;;
        xa)
          # ingress-nginx's auth-url + auth-cache-key: auth_request to an internal location that proxies
          # to the auth service through a cache keyed on the same expression.
          rules=$TMP/$inst-auth-location.conf
          cat >"$rules" <<EOF

    location = /_external-auth {
      internal;
      proxy_pass http://b/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host auth.default.svc.cluster.local;
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Sent-From "nginx-ingress-controller";
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Auth-Request-Redirect \$request_uri;
      proxy_cache authcache;
      proxy_cache_key "\$http_authorization";
      proxy_cache_valid 200 5m;
    }
EOF
          sed -i -e "s#^  access_log off;#&\n  proxy_cache_path $TMP/$inst/authcache levels=1:2 keys_zone=authcache:1m max_size=16m inactive=10m;#" \
            -e "s#^      proxy_pass http://b;#      auth_request /_external-auth;\n&#" \
            -e "/^    ssl_prefer_server_ciphers on;\$/r $rules" "$f"
          grep -q 'auth_request /_external-auth;' "$f" && grep -q 'proxy_cache_key' "$f" && grep -q 'proxy_cache_path' "$f" ||
            die "could not add nginx's external authentication" ;;
      esac ;;
    haproxy)
      [[ $mode == ip ]] && return 0
      [[ $mode == xa ]] && die "HAProxy has no external authentication here (scenario extauth skips it)"
      rules=$TMP/$inst-rules.cfg
      # The rules go into the frontend in place of `default_backend be` (which they end with).
      if [[ $mode == au ]]; then
        printf '  http-request auth realm bench unless { http_auth(benchusers) }\n  default_backend be\n' >"$rules"
        printf '\nuserlist benchusers\n  user %s password %s\n' "$AUTH_USER" "$(<"$TMP/auth/haproxy-md5crypt")" >>"$f"
      else
        printf '  stick-table type ip size 100k expire 10s store http_req_rate(1s)\n  http-request track-sc0 src\n' >"$rules"
        printf '  http-request deny deny_status 503 if { sc_http_req_rate(0) gt %s }\n  default_backend be\n' "$POLICY_RPS" >>"$rules"
      fi
      sed -i -e "/^  default_backend be\$/r $rules" -e "/^  default_backend be\$/d" "$f"
      grep -q 'http_auth(benchusers)\|track-sc0' "$f" || die "could not add HAProxy's $mode rules" ;;
  esac
}
http_code() {  # URL [CURL ARGS...]: the status code of one GET ("" when no answer)
  local url=$1; shift
  curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}
auth_counts() {  # INST: "verified cached failed" from phigate's phigate_auth_basic_checks_total
  curl -s --max-time 2 "http://127.0.0.1:${ADMIN[$1]}/metrics" 2>/dev/null | awk '
    /^phigate_auth_basic_checks_total\{/ { if ($1 ~ /result="verified"/) v += $2; if ($1 ~ /result="cached"/) c += $2; if ($1 ~ /result="failed"/) f += $2 }
    END { printf "%d %d %d", v, c, f }'
}
ext_counts() {  # INST: "fresh cached" from phigate's phigate_auth_external_checks_total
  # A cache hit counts as `cached` and as its verdict: the fresh subrequests are the verdicts minus those.
  curl -s --max-time 2 "http://127.0.0.1:${ADMIN[$1]}/metrics" 2>/dev/null | awk '
    /^phigate_auth_external_checks_total\{/ { if ($1 ~ /result="cached"/) c += $2; else n += $2 }
    END { printf "%d %d", n - c, c }'
}
auth_log_lines() {  # requests the auth service (the backend's /auth) has answered so far
  [[ -f $BACKEND_AUTH_LOG ]] || { echo 0; return 0; }
  wc -l <"$BACKEND_AUTH_LOG"
}
extauth_prechecks() {  # TARGET: TARGET-xa is up; its answers without, with a wrong and with the token
  local t=$1 inst=$1-xa a0 a1 code n0 c0 n1 c1
  [[ -n $BACKEND_AUTH_LOG ]] || die "[extauth] the backend has no /auth (BACKEND_AUTH_TOKEN unset)"
  a0=$(auth_log_lines)
  code=$(http_code "https://127.0.0.1:${PORT[$inst]}/")
  a1=$(auth_log_lines)
  [[ $code == 401 ]] || die "[extauth] $inst answers ${code:-nothing} without Authorization, expected 401"
  ((a1 > a0)) || die "[extauth] $inst answered a request without Authorization without asking the auth service"
  code=$(http_code "https://127.0.0.1:${PORT[$inst]}/" -H "Authorization: Bearer wrong$BACKEND_AUTH_TOKEN")
  [[ $code == 401 ]] || die "[extauth] $inst answers ${code:-nothing} to a wrong token, expected 401"
  code=$(http_code "https://127.0.0.1:${PORT[$inst]}/" -H "Authorization: Bearer $BACKEND_AUTH_TOKEN")
  [[ $code == 200 ]] || die "[extauth] $inst answers ${code:-nothing} to the right token, expected 200"
  # The answer for the token is cached by now (the readiness probe sent it first): 3 more requests,
  # no more auth requests; phigate counts them as cached.
  [[ $t == phigate ]] && read -r n0 c0 <<<"$(ext_counts "$inst")"
  a0=$(auth_log_lines)
  for _ in 1 2 3; do
    code=$(http_code "https://127.0.0.1:${PORT[$inst]}/" -H "Authorization: Bearer $BACKEND_AUTH_TOKEN")
    [[ $code == 200 ]] || die "[extauth] $inst answers ${code:-nothing} to the right token, expected 200"
  done
  a1=$(auth_log_lines)
  ((a1 == a0)) || die "[extauth] $inst asked the auth service $((a1 - a0)) times for 3 requests with a cached token"
  if [[ $t == phigate ]]; then
    read -r n1 c1 <<<"$(ext_counts "$inst")"
    ((c1 - c0 == 3 && n1 == n0)) ||
      die "[extauth] phigate counted $((c1 - c0)) cached and $((n1 - n0)) fresh checks for 3 requests with a cached token"
  fi
  note extauth "\"target\": \"$t\", \"no_token\": 401, \"no_token_asked_auth\": true, \"wrong_token\": 401, \"right\": 200, \"cached_without_asking\": 3"
  log "[extauth] $inst on ${PORT[$inst]}: no token 401 (auth service asked), wrong token 401, right 200, then 3 answers from the cache"
}
policy_scenario() {  # SCENARIO SUFFIX(au|rl|xa)
  local scen=$1 sfx=$2 t r mode inst code hdr=() v0 c0 f0 v1 c1 f1 extra shown refused n0 n1 a0 a1 missed tgs=()
  [[ $sfx == au ]] && { auth_files; hdr=(-H "Authorization: Basic $AUTH_B64"); }
  [[ $sfx == xa ]] && hdr=(-H "Authorization: Bearer $BACKEND_AUTH_TOKEN")
  for t in "${TARGETS[@]}"; do
    if [[ $sfx == xa && $t == haproxy ]]; then
      log "[extauth] haproxy: n/a (no auth_request without Lua or SPOE)"
      note extauth "\"target\": \"haproxy\", \"result\": \"n/a: no auth_request without Lua or SPOE\""
      continue
    fi
    tgs+=("$t")
  done
  ((${#tgs[@]})) || { log "[$scen] no target to run"; return 0; }
  for t in "${tgs[@]}"; do
    start_proxy "$t" "$t-ip" "$KEY_KIND"
    [[ $(http_code "https://127.0.0.1:${PORT[$t-ip]}/") == 200 ]] || die "[$scen] $t-ip does not answer 200"
    if [[ $sfx == au ]]; then
      PROBE_CURL_ARGS=(-u "$AUTH_USER:$AUTH_PASS")
      start_proxy "$t" "$t-au" "$KEY_KIND"
      PROBE_CURL_ARGS=()
      code=$(http_code "https://127.0.0.1:${PORT[$t-au]}/")
      [[ $code == 401 ]] || die "[auth] $t-au answers ${code:-nothing} without credentials, expected 401"
      code=$(http_code "https://127.0.0.1:${PORT[$t-au]}/" -u "$AUTH_USER:wrong-$AUTH_PASS")
      [[ $code == 401 ]] || die "[auth] $t-au answers ${code:-nothing} to a wrong password, expected 401"
      code=$(http_code "https://127.0.0.1:${PORT[$t-au]}/" "${hdr[@]}")
      [[ $code == 200 ]] || die "[auth] $t-au answers ${code:-nothing} to the right credentials, expected 200"
      note auth "\"target\": \"$t\", \"no_credentials\": 401, \"wrong_password\": 401, \"right\": 200"
      log "[auth] $t-au on ${PORT[$t-au]}: no credentials 401, wrong password 401, right 200"
    elif [[ $sfx == xa ]]; then
      PROBE_CURL_ARGS=("${hdr[@]}")
      start_proxy "$t" "$t-xa" "$KEY_KIND"
      PROBE_CURL_ARGS=()
      extauth_prechecks "$t"
    else
      start_proxy "$t" "$t-rl" "$KEY_KIND"
      note ratelimit "\"target\": \"$t\", \"rps_limit\": $POLICY_RPS, \"burst\": $((POLICY_RPS * 5))"
      log "[ratelimit] $t-rl on ${PORT[$t-rl]}: limit $POLICY_RPS req/s per client address, burst $((POLICY_RPS * 5))"
    fi
    warmup "$t-ip" "https://127.0.0.1:${PORT[$t-ip]}/" "${hdr[@]}"
    warmup "$t-$sfx" "https://127.0.0.1:${PORT[$t-$sfx]}/" "${hdr[@]}"
  done
  for ((r = 1; r <= REPEAT; r++)); do
    for t in "${tgs[@]}"; do
      for mode in off on; do
        inst=$t-ip; [[ $mode == on ]] && inst=$t-$sfx
        extra=""
        [[ $t == phigate && $inst == phigate-au ]] && read -r v0 c0 f0 <<<"$(auth_counts "$inst")"
        [[ $t == phigate && $inst == phigate-xa ]] && read -r n0 c0 <<<"$(ext_counts "$inst")"
        a0=$(auth_log_lines)
        wait_quiet
        measure_wrk "$inst" "${PID[$inst]}" "$DURATION" "$TMP/wrk-$scen-$inst-$r.txt" -t"$WRK_THREADS" -c"$CONNECTIONS" "${hdr[@]}" "https://127.0.0.1:${PORT[$inst]}/"
        if [[ $inst == phigate-au ]]; then
          read -r v1 c1 f1 <<<"$(auth_counts "$inst")"
          extra=", \"auth_verified\": $((v1 - v0)), \"auth_cached\": $((c1 - c0)), \"auth_failed\": $((f1 - f0))"
          if ((v1 - v0 > 0 || f1 - f0 > 0 || c1 - c0 < W_REQ)); then
            log "WARNING: [auth] phigate verified $((v1 - v0)) and failed $((f1 - f0)) credentials, $((c1 - c0)) cached for $W_REQ requests"
            note auth "\"target\": \"phigate\", \"round\": $r, \"cache\": \"missed\", \"auth_verified\": $((v1 - v0))"
          fi
        fi
        if [[ $inst == *-xa ]]; then
          a1=$(auth_log_lines)
          extra=", \"auth_service_requests\": $((a1 - a0))"
          missed=$((a1 > a0)) shown=""
          if [[ $t == phigate ]]; then
            read -r n1 c1 <<<"$(ext_counts "$inst")"
            extra+=", \"auth_cached\": $((c1 - c0)), \"auth_fresh\": $((n1 - n0))"
            ((n1 - n0 > 0 || c1 - c0 < W_REQ)) && missed=1
            shown="; phigate: $((n1 - n0)) fresh, $((c1 - c0)) cached checks for $W_REQ requests"
          fi
          if ((missed)); then
            log "WARNING: [extauth] $inst: the auth service got $((a1 - a0)) requests during the run$shown"
            note extauth "\"target\": \"$t\", \"round\": $r, \"cache\": \"missed\", \"auth_service_requests\": $((a1 - a0))"
          fi
        fi
        refused=$((W_NON2XX + W_SOCKERR))
        if [[ $mode == on && $sfx == rl ]] && ((refused > 0)); then
          log "WARNING: [ratelimit] $inst: $refused requests refused or failed: the limit was reached"
          note ratelimit "\"target\": \"$t\", \"round\": $r, \"limit\": \"reached\", \"refused\": $refused"
        fi
        emit "$scen" "$mode" "$t" "$r" "$(wrk_json)$extra"
        shown=${extra#, }
        say_run "$scen" "$mode" "$t" "$r" "$W_RPS req/s, p99 $W_P99 ms$(errs)${shown:+; $([[ $sfx == xa ]] && echo auth || echo "phigate checks"): ${shown//\"/}}"
      done
    done
  done
  for t in "${tgs[@]}"; do stop_proxy "$t-ip"; stop_proxy "$t-$sfx"; done
}
scenario_auth() { policy_scenario auth au; }
scenario_ratelimit() { policy_scenario ratelimit rl; }
scenario_extauth() { policy_scenario extauth xa; }

for s in "${SCENARIOS[@]}"; do
  log "==== scenario $s"
  "scenario_$s"
done

# --- scenarios 6 and 7 from their own scripts (--scenarios all+) -----------------------------------
EXTRA_ARGS=()
if [[ -n $EXTRAS ]]; then
  SL_ARGS=(--no-build --wait-quiet "$WAIT_QUIET" --repeat "$REPEAT" --duration "$DURATION" --warmup "$WARMUP" --targets "$(IFS=,; echo "${TARGETS[*]}")")
  [[ -z $QUICK ]] || SL_ARGS+=(--connections-slow 500)
  log "==== scenario slowloris: bench/slowloris.sh ${SL_ARGS[*]}"
  before=$(ls bench/results/slowloris-*.json 2>/dev/null | sort | tail -1 || true)
  PROXY_CPUS=$PROXY_CPUS LOAD_CPUS=$LOAD_CPUS bench/slowloris.sh "${SL_ARGS[@]}" | tee "$TMP/slowloris.txt" >&2 || die "bench/slowloris.sh failed"
  after=$(ls bench/results/slowloris-*.json 2>/dev/null | sort | tail -1 || true)
  [[ -n $after && $after != "$before" ]] && EXTRA_ARGS+=(--slowloris-json "$after")
  log "==== scenario ingress-scale: bench/ingress_scale.sh --no-build --duration $DURATION"
  bench/ingress_scale.sh --no-build --duration "$DURATION" --json "$TMP/ingress_scale.json" | tee "$TMP/ingress_scale.txt" >&2 || die "bench/ingress_scale.sh failed"
  EXTRA_ARGS+=(--ingress-json "$TMP/ingress_scale.json")
fi

# --- table and JSON -------------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "${BENCH_RESULTS_DIR:=bench/results}"
OUT=$BENCH_RESULTS_DIR/$STAMP.json
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false; [[ -n $(git status --porcelain 2>/dev/null) ]] && dirty=true
META=$TMP/meta.json
cat >"$META" <<EOF
{"stamp": "$STAMP", "command": $(jstr "bench/run.sh $ARGS"), "git": {"commit": "$commit", "dirty": $dirty},
 "host": {"busy_pct_before_start": $IDLE_CHECK_BUSY, "cpus": $(nproc), "cpu_model": $(jstr "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"), "kernel": $(jstr "$(uname -r)"), "mem_total_kib": $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)},
 "versions": {"phigate": $(jstr "$("$PHIGATE" --version 2>&1 | head -1)"), "nginx": $(jstr "$(nginx -v 2>&1 | head -1)"), "haproxy": $(jstr "$(haproxy -v 2>&1 | head -1)"), "wrk": $(jstr "$(wrk -v 2>&1 | head -1 || true)"), "openssl": $(jstr "$(openssl version)"), "python": $(jstr "$(python3 --version 2>&1)")},
 "settings": {"phigate_binary": $(jstr "$PHIGATE"), "pgo": $(is_pgo_binary && echo true || echo false), "scenarios": $(jstr "${SCENARIOS[*]}"), "targets": $(jstr "${TARGETS[*]}"), "duration_s": $DURATION, "connections": $CONNECTIONS, "hs_connections": $HS_CONNECTIONS, "big_connections": $BIG_CONNECTIONS, "mem_connections": $MEM_CONNECTIONS, "wrk_threads": $WRK_THREADS, "repeat": $REPEAT, "warmup_s": $WARMUP, "wait_quiet_s": $WAIT_QUIET, "workers": $WORKERS, "cert": "$KEY_KIND", "proxy_cpus": "$PROXY_CPUS", "proxy_ncpus": $PROXY_NCPUS, "load_cpus": "$LOAD_CPUS", "tls12_ciphers": "$CIPHERS", "tls13_ciphersuites": "$CIPHERSUITES"}}
EOF
python3 "$REPORT" --meta "$META" --runs "$RUNS" --notes "$NOTES" --out "$OUT" "${EXTRA_ARGS[@]}"
