# bench/lib.sh: shell machinery shared by bench/run.sh, bench/slowloris.sh, bench/h2.sh and bench/pair.sh (sourced, not run).
#
# The sourcing script sets BENCH_NAME (the prefix of its messages) and, before calling the functions
# that use them, PROXY_CPUS, LOAD_CPUS, WORKERS, WAIT_QUIET, KEEP_TMP and TARGETS. It provides:
#   - die/log, option checks;
#   - CPU pinning (PROXY_PIN, LOAD_PIN arrays for taskset);
#   - bootstrap + Release build, tool checks;
#   - process bookkeeping: every process started with start_bg is remembered by PID, and only those PIDs
#     (with their direct children, e.g. nginx workers) are ever signalled, on exit or by stop_pid;
#   - free_port, render (the @KEY@ templates in bench/configs), wait_ready;
#   - certificates (ECDSA P-256 or RSA-2048, from scripts/make-certs.sh), the nginx backend, and the three
#     proxies under test (start_proxy), with a per-script hook to edit each rendered config;
#   - /proc sampling: CPU ticks and RSS of a process tree, busy share of CPU sets, wait-quiet;
#   - measure: one bounded load-generator run with those samples around it, and parse_wrk.
# shellcheck shell=bash

BENCH_NAME=${BENCH_NAME:-bench}
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CONF_DIR=$ROOT/bench/configs
# --pgo (bench/run.sh, bench/h2.sh): the profile-guided build (scripts/build.sh pgo) instead.
PHIGATE_GIVEN=${PHIGATE:+1}
PHIGATE=${PHIGATE:-$ROOT/build/release/bin/phigate}
PGO=""

die() { echo "$BENCH_NAME: error: $*" >&2; exit 1; }
log() { echo "$BENCH_NAME: $*" >&2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }
jstr() {  # STRING -> a JSON string literal
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\t'/ }; s=${s//$'\n'/ }; s=${s//$'\r'/ }
  printf '"%s"' "$s"
}
check_targets() {  # validates TARGETS
  ((${#TARGETS[@]})) || die "--targets is empty"
  local t
  for t in "${TARGETS[@]}"; do
    [[ $t == phigate || $t == nginx || $t == haproxy ]] || die "unknown target '$t' (phigate, nginx, haproxy)"
  done
}

# TLS settings shared by all three proxies: the six ECDHE+AEAD TLS 1.2 suites and the three TLS 1.3 ones,
# in this order, server preference (groups X25519:P-256:P-384 are set in each template).
CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
CIPHERSUITES="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

# --- pinning ----------------------------------------------------------------------------------
PROXY_PIN=() LOAD_PIN=()
setup_pinning() {  # PROXY_CPUS, LOAD_CPUS -> PROXY_PIN, LOAD_PIN, *_CPU_LINES, PROXY_NCPUS
  PROXY_PIN=() LOAD_PIN=()
  if [[ -n $PROXY_CPUS ]]; then
    taskset -c "$PROXY_CPUS" true 2>/dev/null || die "cannot pin to PROXY_CPUS='$PROXY_CPUS' ($(nproc) CPUs); set PROXY_CPUS= to disable"
    PROXY_PIN=(taskset -c "$PROXY_CPUS")
  fi
  if [[ -n $LOAD_CPUS ]]; then
    taskset -c "$LOAD_CPUS" true 2>/dev/null || die "cannot pin to LOAD_CPUS='$LOAD_CPUS' ($(nproc) CPUs); set LOAD_CPUS= to disable"
    LOAD_PIN=(taskset -c "$LOAD_CPUS")
  fi
  LOAD_CPU_LINES=$(cpu_lines "$LOAD_CPUS")
  PROXY_CPU_LINES=$(cpu_lines "$PROXY_CPUS")
  PROXY_NCPUS=$(wc -w <<<"$PROXY_CPU_LINES"); [[ -n $PROXY_CPUS ]] || PROXY_NCPUS=$(nproc)
}

raise_nofile() {  # N: raise the soft open-files limit to at least N
  local need=$1 hard
  if (($(ulimit -n) < need)); then
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] || ((hard >= need)) || die "ulimit -Hn is $hard, need >= $need open files"
    ulimit -n "$need" || die "cannot raise ulimit -n to $need"
  fi
}

# --- bootstrap and build ------------------------------------------------------------------------
use_pgo() {  # --pgo: benchmark build/pgo/bin/phigate (built by build_phigate)
  [[ -z $PHIGATE_GIVEN ]] || die "--pgo and PHIGATE= name two binaries: give one"
  PGO=1
  PHIGATE=$ROOT/build/pgo/bin/phigate
}
is_pgo_binary() { [[ $PHIGATE -ef $ROOT/build/pgo/bin/phigate ]]; }  # what the results JSON records
build_phigate() {  # NINJA_TARGETS...: scripts/bootstrap.sh, then scripts/build.sh release TARGETS (and pgo)
  log "bootstrap (scripts/bootstrap.sh)"
  PHIGATE_QUIET=1 "$ROOT/scripts/bootstrap.sh" >&2 || die "scripts/bootstrap.sh failed"
  log "building (scripts/build.sh release $*)"
  "$ROOT/scripts/build.sh" release "$@" >&2 || die "Release build failed"
  if [[ -n $PGO ]]; then
    log "building (scripts/build.sh pgo: instrumented build, training run, optimised build)"
    "$ROOT/scripts/build.sh" pgo >&2 || die "profile-guided build failed"
  fi
}
need_tools() {  # TOOL...
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null || die "$tool not found (run scripts/bootstrap.sh)"; done
}

# --- process bookkeeping: only PIDs started here are ever signalled ---------------------------------
PIDS=()
TMP=""
KEEP_TMP=${KEEP_TMP:-}
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
stop_pid() {  # PID: TERM it (and its children, e.g. nginx workers), KILL whatever is left after 5 s
  local pid=$1 kids i k
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kids=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  for k in $kids; do alive "$k" && kill -KILL "$k" 2>/dev/null; done
  wait "$pid" 2>/dev/null || true
}
forget_pid() {  # PID: drop a stopped PID from PIDS
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  local rc=$? pid
  set +e
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ -n $KEEP_TMP ]]; then log "kept temp dir $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
make_tmp() {  # PREFIX: the run's temp dir (TMP), removed on exit unless --keep-tmp; installs the traps
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

LAST_PID=""
start_bg() {  # LOGFILE CMD...: start CMD in the background, remember its PID in PIDS and LAST_PID
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# A free loopback port below the ephemeral range (so the outgoing connections of wrk and the proxies
# cannot collide with it) and not handed out before in this run.
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
  echo "$BENCH_NAME: error: $1 did not come up: $3" >&2
  echo "---- last lines of $2 ----" >&2
  tail -n 30 "$2" >&2 || true
  echo "----" >&2
  exit 1
}

PROBE_CURL_ARGS=()  # more curl options for wait_ready's probe (e.g. a client certificate)
wait_ready() {  # NAME PID URL LOG [EXTRA_URL]: poll up to 10 s for HTTP 200 with body "ok"
  local name=$1 pid=$2 url=$3 logf=$4 extra=${5:-} i code="" body
  for ((i = 0; i < 100; i++)); do
    if ! alive "$pid"; then
      local st=0; wait "$pid" 2>/dev/null || st=$?
      fail_start "$name" "$logf" "process exited with status $st"
    fi
    if [[ -z $extra ]] || [[ $(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$extra" 2>/dev/null) == 200 ]]; then
      code=$(curl -sk --max-time 1 "${PROBE_CURL_ARGS[@]}" -o "$TMP/probe" -w '%{http_code}' "$url" 2>/dev/null || true)
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

# raise_limit FILE KEYWORD NEEDED: if "KEYWORD n" in FILE has n < NEEDED, set it to NEEDED; prints the
# value in force afterwards.
raise_limit() {
  local f=$1 kw=$2 need=$3 cur
  cur=$(awk -v k="$kw" '{ for (i = 1; i < NF; i++) if ($i == k) { v = $(i + 1); gsub(/[^0-9]/, "", v); print v; exit } }' "$f")
  [[ -n $cur ]] || die "no '$kw' in $f"
  if ((cur < need)); then
    sed -i -E "s/\\b${kw}[[:space:]]+[0-9]+/$kw $need/" "$f"
    log "$(basename "$f"): $kw $cur -> $need"
  fi
  awk -v k="$kw" '{ for (i = 1; i < NF; i++) if ($i == k) { v = $(i + 1); gsub(/[^0-9]/, "", v); print v; exit } }' "$f"
}

# --- certificates ---------------------------------------------------------------------------------
# make_cert_set NAME KIND [DNS NAMES...]: a demo CA and server certificate (KIND ec = P-256, rsa = 2048)
# in $TMP/certs-NAME; CERT[NAME], KEY[NAME], PEM[NAME] (cert+key for HAProxy), CA[NAME].
declare -A CERT KEY PEM CA
make_cert_set() {
  local name=$1 kind=$2 d=$TMP/certs-$1; shift 2
  "$ROOT/scripts/make-certs.sh" "$d" "$kind" "$@" >/dev/null || die "scripts/make-certs.sh failed"
  CERT[$name]=$d/server.crt KEY[$name]=$d/server.key PEM[$name]=$d/combined.pem CA[$name]=$d/ca.crt
  cat "$d/server.crt" "$d/server.key" >"$d/combined.pem"; chmod 600 "$d/combined.pem"
}

NGINX_USER=""
# As root, nginx would switch its workers to 'nobody', which cannot enter the 0700 temp dir.
[[ $(id -u) -eq 0 ]] && NGINX_USER="user root;"

# --- backend: nginx, plain HTTP, on LOAD_CPUS -------------------------------------------------------
# Serves "ok\n" at every path; /1m is a 1 MiB file (made here) and /upload reads and discards a request
# body of up to 2 MiB (access-logged to backend/upload.log with its length, so byte counts can be checked).
# With BACKEND_TLS_SET set to a make_cert_set name (before the call), the backend also listens with TLS
# on BACKEND_TLS_PORT (TLS 1.2+1.3, the proxies' cipher lists, server preference, so every proxy gets
# the same suite), logging one line per new TLS connection to backend/tls-conn.log.
# With BACKEND_AUTH_TOKEN set (before the call), it also serves /auth, an external authentication
# service: 200 "ok" to `Authorization: Bearer $BACKEND_AUTH_TOKEN`, 401 to anything else, one line per
# request in $BACKEND_AUTH_LOG.
BACKEND_PORT="" BACKEND_PID="" BACKEND_TLS_SET="" BACKEND_TLS_PORT="" BACKEND_AUTH_TOKEN="" BACKEND_AUTH_LOG=""
start_backend() {
  local tls="" env=() auth=""
  mkdir -p "$TMP/backend/www"
  head -c 1048576 /dev/urandom >"$TMP/backend/www/1m"
  free_port BACKEND_PORT
  if [[ -n $BACKEND_TLS_SET ]]; then
    free_port BACKEND_TLS_PORT
    render "$CONF_DIR/nginx-openssl.cnf" "$TMP/backend/openssl.cnf" CIPHERSUITES="$CIPHERSUITES"
    env=(env OPENSSL_CONF="$TMP/backend/openssl.cnf")
    tls="  map \$connection_requests \$first_on_conn { 1 1; default 0; }
  log_format tlsconn '\$ssl_protocol \$ssl_cipher \$ssl_session_reused \$ssl_server_name';
  server {
    listen 127.0.0.1:$BACKEND_TLS_PORT ssl;
    ssl_certificate ${CERT[$BACKEND_TLS_SET]};
    ssl_certificate_key ${KEY[$BACKEND_TLS_SET]};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $CIPHERS;
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:be:4m;
    access_log $TMP/backend/tls-conn.log tlsconn if=\$first_on_conn;
    location / { return 200 \"ok\\n\"; }
  }"
  fi
  if [[ -n $BACKEND_AUTH_TOKEN ]]; then
    [[ $BACKEND_AUTH_TOKEN =~ ^[A-Za-z0-9]+$ ]] || die "BACKEND_AUTH_TOKEN must be alphanumeric"
    BACKEND_AUTH_LOG=$TMP/backend/auth.log
    auth="    location = /auth {
      access_log $BACKEND_AUTH_LOG;
      if (\$http_authorization = \"Bearer $BACKEND_AUTH_TOKEN\") { return 200 \"ok\\n\"; }
      return 401;
    }"
  fi
  render "$CONF_DIR/backend-nginx.conf" "$TMP/backend/nginx.conf" DIR="$TMP/backend" \
    BACKEND_PORT="$BACKEND_PORT" NGINX_USER="$NGINX_USER" TLS_SERVER="$tls" AUTH_LOCATION="$auth"
  start_bg "$TMP/backend.log" "${LOAD_PIN[@]}" "${env[@]}" nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf" \
    -e "$TMP/backend/error.log" -g "daemon off;"
  BACKEND_PID=$LAST_PID
  wait_ready backend "$BACKEND_PID" "http://127.0.0.1:$BACKEND_PORT/" "$TMP/backend.log"
  log "backend nginx on 127.0.0.1:$BACKEND_PORT${BACKEND_TLS_PORT:+ and TLS on 127.0.0.1:$BACKEND_TLS_PORT} (pid $BACKEND_PID, CPUs ${LOAD_CPUS:-any})"
}
nginx_status() {  # PORT [ADDR]: "accepts requests" from an nginx stub_status at ADDR:PORT/__status
  curl -s --max-time 2 "http://${2:-127.0.0.1}:$1/__status" 2>/dev/null |
    awk 'p { print $1, $3; exit } /^ *server accepts handled requests/ { p = 1 }'
}

# --- proxies under test ---------------------------------------------------------------------------
# start_proxy KIND INST [CERTSET]: KIND phigate|nginx|haproxy, INST a unique instance name (its config,
# log and temp files are $TMP/INST*), CERTSET a make_cert_set name (default "ec"). Renders the template
# from bench/configs, calls the script's config_hook KIND INST FILE (if defined; it may edit FILE), starts
# it pinned to PROXY_CPUS and waits until it answers "ok" through TLS. Sets PORT[INST], PID[INST],
# KIND_OF[INST], and ADMIN[INST] for phigate (its admin port: /metrics, /readyz).
declare -A PORT PID ADMIN KIND_OF
start_proxy() {
  local kind=$1 inst=$2 cs=${3:-ec} f
  [[ -n ${CERT[$cs]:-} ]] || die "no certificate set '$cs'"
  KIND_OF[$inst]=$kind
  case $kind in
    phigate)
      free_port "PORT[$inst]"; free_port "ADMIN[$inst]"
      f=$TMP/$inst.yaml
      render "$CONF_DIR/phigate.yaml" "$f" PORT="${PORT[$inst]}" ADMIN_PORT="${ADMIN[$inst]}" \
        WORKERS="$WORKERS" CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" CERT="${CERT[$cs]}" KEY="${KEY[$cs]}" \
        BACKEND_PORT="$BACKEND_PORT"
      ! declare -F config_hook >/dev/null || config_hook "$kind" "$inst" "$f"
      start_bg "$TMP/$inst.log" "${PROXY_PIN[@]}" "$PHIGATE" run --config "$f"
      PID[$inst]=$LAST_PID
      wait_ready "$inst" "$LAST_PID" "https://127.0.0.1:${PORT[$inst]}${READY_PATH:-/}" "$TMP/$inst.log" \
        "http://127.0.0.1:${ADMIN[$inst]}/readyz"
      grep -q "phigate ready" "$TMP/$inst.log" || fail_start "$inst" "$TMP/$inst.log" "serves, but printed no 'phigate ready' line"
      ;;
    nginx)
      free_port "PORT[$inst]"
      mkdir -p "$TMP/$inst"
      f=$TMP/$inst/nginx.conf
      render "$CONF_DIR/nginx-proxy.conf" "$f" DIR="$TMP/$inst" PORT="${PORT[$inst]}" \
        WORKERS="$WORKERS" CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" CERT="${CERT[$cs]}" KEY="${KEY[$cs]}" \
        BACKEND_PORT="$BACKEND_PORT" NGINX_USER="$NGINX_USER"
      render "$CONF_DIR/nginx-openssl.cnf" "$TMP/$inst/openssl.cnf" CIPHERSUITES="$CIPHERSUITES"
      ! declare -F config_hook >/dev/null || config_hook "$kind" "$inst" "$f"
      start_bg "$TMP/$inst.log" "${PROXY_PIN[@]}" env OPENSSL_CONF="$TMP/$inst/openssl.cnf" nginx -p "$TMP/$inst" \
        -c "$f" -e "$TMP/$inst/error.log" -g "daemon off;"
      PID[$inst]=$LAST_PID
      wait_ready "$inst" "$LAST_PID" "https://127.0.0.1:${PORT[$inst]}${READY_PATH:-/}" "$TMP/$inst.log"
      ;;
    haproxy)
      free_port "PORT[$inst]"
      f=$TMP/$inst.cfg
      render "$CONF_DIR/haproxy.cfg" "$f" PORT="${PORT[$inst]}" WORKERS="$WORKERS" \
        CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" PEM="${PEM[$cs]}" BACKEND_PORT="$BACKEND_PORT"
      ! declare -F config_hook >/dev/null || config_hook "$kind" "$inst" "$f"
      start_bg "$TMP/$inst.log" "${PROXY_PIN[@]}" haproxy -db -f "$f"
      PID[$inst]=$LAST_PID
      wait_ready "$inst" "$LAST_PID" "https://127.0.0.1:${PORT[$inst]}${READY_PATH:-/}" "$TMP/$inst.log"
      ;;
    *) die "unknown proxy kind '$kind'" ;;
  esac
}
# h2_config_hook KIND INST FILE: the HTTP/2 edits of a rendered proxy config (bench/h2.sh, bench/pair.sh;
# their config_hook calls it): HTTP/2 offered by ALPN, and one idle upstream pool size for all three.
h2_config_hook() {
  case $1 in
    phigate)
      # On by default; said explicitly so that a changed default cannot turn this into an h1 run.
      printf 'http2: { enabled: true }\n' >>"$3"
      # Same idle upstream pool for all three: -c16 x -m100 = up to 1600 requests in flight, each an
      # HTTP/1.1 upstream connection; an idle cap below that closes and reopens connections per request.
      sed -i -E 's/keepalive_connections: [0-9]+/keepalive_connections: 2048/' "$3" ;;
    nginx)
      # nginx 1.22 (Debian 12): `listen ... http2`; later versions also take `http2 on;`.
      sed -i -E 's/^(    listen 127\.0\.0\.1:[0-9]+ ssl);/\1 http2;/' "$3"
      grep -q 'ssl http2;' "$3" || die "could not turn on nginx's http2"
      sed -i -E 's/^(    keepalive) [0-9]+;/\1 2048;/' "$3" ;;
    haproxy)
      sed -i -E 's/^(  bind .* ssl crt [^ ]+)/\1 alpn h2,http\/1.1/' "$3"
      grep -q 'alpn h2,http/1.1' "$3" || die "could not turn on HAProxy's alpn h2"
      # HAProxy's idle pool is unbounded by default (pool-max-conn -1): bound it like the others.
      sed -i -E 's/^(  server b .*)$/\1 pool-max-conn 2048/' "$3" ;;
  esac
}
stop_proxy() {  # INST
  [[ -n ${PID[$1]:-} ]] || return 0
  stop_pid "${PID[$1]}"; forget_pid "${PID[$1]}"
  unset "PID[$1]"
}
tls_info() {  # PORT [SNI]: "protocol cipher group" an OpenSSL client with default settings (as wrk) gets
  timeout 5 openssl s_client -connect "127.0.0.1:$1" ${2:+-servername "$2"} </dev/null 2>/dev/null |
    awk '/^New, / { v = $2; c = $NF } /^(Server|Peer) Temp Key:/ { k = $4 } END { sub(",", "", v); sub(",", "", k); print v, c, k }'
}
phigate_metric() {  # INST NAME: sum of a phigate counter/gauge from its /metrics (0 if unavailable)
  curl -s --max-time 2 "http://127.0.0.1:${ADMIN[$1]}/metrics" 2>/dev/null |
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'
}

# --- /proc sampling ------------------------------------------------------------------------------
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
  local part a b out=() parts
  IFS=, read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then a=${part%-*}; b=${part#*-}; for ((; a <= b; a++)); do out+=("$a"); done
    else out+=("$part"); fi
  done
  echo "${out[@]}"
}
cpu_lines() { if [[ -n $1 ]]; then expand_cpus "$1" | sed 's/[0-9]\+/cpu&/g'; else echo cpu; fi; }
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
IDLE_CHECK_BUSY=0
check_idle_at_start() {  # one second of /proc/stat before anything of ours runs
  IDLE_CHECK_BUSY=$(machine_busy)
  if awk -v b="$IDLE_CHECK_BUSY" 'BEGIN { exit !(b >= 10) }'; then
    log "WARNING: the machine is ${IDLE_CHECK_BUSY}% busy before the benchmark starts: results will be noisy"
  fi
}

# measure LABEL PID LIMIT_S OUT CMD...: runs CMD pinned to LOAD_CPUS, bounded by `timeout LIMIT_S`, its
# output in OUT, and samples around it. Sets M_RC (CMD's exit status), M_CPU_S (CPU seconds of PID and
# its children), M_WALL_S, M_CPU_PCT, M_RSS_KIB (afterwards), M_LOAD_BUSY (busy % of LOAD_CPUS),
# M_BACKEND_CPU_PCT and M_PROXY_TASK_BUSY (task busy % of PROXY_CPUS: compare with M_CPU_PCT to see
# other processes on the proxy CPUs). Exits with the proxy's log if PID died.
measure() {
  local label=$1 pid=$2 limit=$3 out=$4 c0 c1 b0 b1 l0 l1 p0 p1 t0 t1 lf; shift 4
  c0=$(cpu_ticks "$pid"); b0=$(cpu_ticks "${BACKEND_PID:-$pid}"); l0=$(cpu_stat "$LOAD_CPU_LINES")
  p0=$(cpu_stat "$PROXY_CPU_LINES" tasks); t0=$(now_ns)
  M_RC=0
  timeout -k 5 "$limit" "${LOAD_PIN[@]}" "$@" >"$out" 2>&1 || M_RC=$?
  t1=$(now_ns); c1=$(cpu_ticks "$pid"); b1=$(cpu_ticks "${BACKEND_PID:-$pid}"); l1=$(cpu_stat "$LOAD_CPU_LINES")
  p1=$(cpu_stat "$PROXY_CPU_LINES" tasks)
  M_RSS_KIB=$(rss_kib "$pid")
  if ! alive "$pid"; then
    echo "$BENCH_NAME: error: $label (pid $pid) died during the run of '$1'" >&2
    echo "---- output ----" >&2; cat "$out" >&2
    lf=$TMP/$label.log; [[ -f $lf ]] || lf=$TMP/${label%%-*}.log
    [[ -f $lf ]] && { echo "---- last lines of $lf ----" >&2; tail -n 30 "$lf" >&2; }
    exit 1
  fi
  read -r M_CPU_S M_WALL_S M_CPU_PCT M_BACKEND_CPU_PCT < <(awk -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" \
    -v t0="$t0" -v t1="$t1" -v tck="$CLK_TCK" 'BEGIN { cpu = (c1 - c0) / tck; wall = (t1 - t0) / 1e9
      printf "%.2f %.3f %.1f %.1f\n", cpu, wall, 100 * cpu / wall, 100 * ((b1 - b0) / tck) / wall }')
  M_LOAD_BUSY=$(busy_pct "$l0" "$l1")
  M_PROXY_TASK_BUSY=$(busy_pct "$p0" "$p1")
}

# wrk --latency output -> "rps p50_ms p99_ms max_ms requests non2xx socket_errors"
parse_wrk() {
  awk 'function ms(v) {
         if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
         if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
         if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
         if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
         return v + 0 }
       $1 == "Latency" && max == "" { max = ms($4) }
       $1 == "50%" { p50 = ms($2) }
       $1 == "99%" { p99 = ms($2) }
       / requests in / { req = $1 }
       /^Requests\/sec:/ { rps = $2 }
       /Non-2xx or 3xx responses:/ { non2xx = $NF }
       /Socket errors:/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
       END { if (rps == "" || p99 == "") exit 1
             printf "%s %.3f %.3f %.3f %d %d %d\n", rps, p50, p99, max, req, non2xx, err }' "$1"
}

# measure_wrk LABEL PID SECONDS OUT WRK_ARGS...: one bounded wrk run (`wrk WRK_ARGS -d SECONDS --latency`)
# with measure's samples; also sets W_RPS W_P50 W_P99 W_MAX W_REQ W_NON2XX W_SOCKERR. Exits if wrk fails.
measure_wrk() {
  local label=$1 pid=$2 secs=$3 out=$4 parsed; shift 4
  measure "$label" "$pid" $((secs + 30)) "$out" wrk -d"${secs}s" --latency "$@"
  if ((M_RC != 0)) || ! parsed=$(parse_wrk "$out"); then
    echo "$BENCH_NAME: error: wrk against $label failed (exit $M_RC): wrk $*" >&2; cat "$out" >&2; exit 1
  fi
  read -r W_RPS W_P50 W_P99 W_MAX W_REQ W_NON2XX W_SOCKERR <<<"$parsed"
}
