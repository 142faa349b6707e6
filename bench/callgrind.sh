#!/usr/bin/env bash
# bench/callgrind.sh: callgrind instructions (Ir) per keep-alive HTTPS request through phigate, a figure
# that does not depend on machine load, so a refactor of the request path can be shown not to raise it.
#
# Setup as bench/run.sh's keep-alive scenario (bench/lib.sh): the nginx backend, an ECDSA certificate from
# scripts/make-certs.sh, phigate from bench/configs/phigate.yaml with 1 worker, TLS, upstream keep-alive,
# audit log off; everything on 127.0.0.1. phigate runs under `valgrind --tool=callgrind
# --instr-atstart=no`, so startup, the TLS handshake and teardown are never counted:
#   1. one TLS connection (a small python3 client, below), warm-up requests on it (upstream connection
#      opened, caches warm);
#   2. `callgrind_control -i on PID`, N sequential GETs on the SAME connection, each response read whole
#      and checked (200, body "ok\n"); `callgrind_control -i off PID`; `callgrind_control -d PID`;
#   3. an idle window on the same open connection (no requests) for the timer/tick baseline, dumped
#      separately; its Ir per second, times the request window's wall time, is subtracted;
#   4. phigate stopped by PID; Ir/request = (Ir of window - idle baseline) / N.
# phigate's phigate_connections_accepted_total must rise by exactly 1 over steps 1-3 (one connection).
# With --compare, a second binary is measured the same way against the same backend, and the ratio
# printed. Everything it starts is stopped by PID on exit; its temp dir is removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH_NAME=callgrind
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
  cat <<'EOF'
usage: PHIGATE=/path/to/phigate bench/callgrind.sh [options]

  --requests N       measured requests over one keep-alive TLS connection (default 2000)
  --warmup N         unmeasured requests on that connection first (default 100)
  --idle S           seconds of the idle (no request) baseline window (default 2; 0 = no baseline)
  --compare PATH     also measure this phigate binary; prints both figures and PHIGATE/PATH
  --h2 M             HTTP/2 instead: h2load -t1 -c16 -mM (M streams per connection) over TLS, as
                     bench/h2.sh; warm-up and measured runs are separate h2load runs, so the figure
                     includes 16 TLS handshakes (about 2.5M Ir each: use --requests 20000 or more)
  --valgrind-args A  more callgrind options, one word list (e.g. "--cache-sim=yes --LL=1048576,8,64
                     --branch-sim=yes": the cache model of docs/perf-h2-many-streams.md round 6); every
                     event the dump has is then printed per request too
  --keep-tmp         keep the temp dir (configs, logs, callgrind dumps) and print its path
  -h, --help         this help

environment:
  PHIGATE=PATH       phigate binary (default build/release/bin/phigate)
  PROXY_CPUS, LOAD_CPUS  taskset CPU lists for phigate and for the backend/client (default: no pinning;
                     Ir does not depend on it)

Prints one line per binary and, with --compare, the ratio. Inspect a kept dump with
`callgrind_annotate TMP/INST.cg.out.1` (--keep-tmp).
EOF
}

REQUESTS=2000
WARM=100
IDLE=2
COMPARE=""
H2=""
VG_ARGS=()
H2_CLIENTS=16
WORKERS=1
PROXY_CPUS=${PROXY_CPUS-}
LOAD_CPUS=${LOAD_CPUS-}
while (($#)); do
  case $1 in
    --requests) need_arg "$@"; REQUESTS=$2; shift ;;
    --warmup) need_arg "$@"; WARM=$2; shift ;;
    --idle) need_arg "$@"; IDLE=$2; shift ;;
    --compare) need_arg "$@"; COMPARE=$2; shift ;;
    --h2) need_arg "$@"; H2=$2; shift ;;
    --valgrind-args) need_arg "$@"; read -r -a VG_ARGS <<<"$2"; shift ;;
    --keep-tmp) KEEP_TMP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
is_uint "$REQUESTS" && ((REQUESTS > 0 && REQUESTS <= 100000)) || die "--requests must be 1..100000, got '$REQUESTS'"
is_uint "$WARM" && ((WARM > 0 && WARM <= 10000)) || die "--warmup must be 1..10000, got '$WARM'"
is_uint "$IDLE" && ((IDLE <= 60)) || die "--idle must be 0..60 seconds, got '$IDLE'"
[[ -z $H2 ]] || { is_uint "$H2" && ((H2 > 0 && H2 <= 100)); } || die "--h2 must be 1..100, got '$H2'"
[[ -z $H2 ]] || need_tools h2load
BINS=("$PHIGATE")
[[ -z $COMPARE ]] || BINS+=("$COMPARE")
for b in "${BINS[@]}"; do [[ -x $b ]] || die "$b is not an executable phigate (set PHIGATE= or build it)"; done
need_tools valgrind callgrind_control nginx curl openssl python3 timeout pgrep
setup_pinning

# Bounds (seconds). Under callgrind a request costs ~1 ms of wall time; startup a few seconds.
START_TIMEOUT=${START_TIMEOUT:-90}
CTRL_TIMEOUT=${CTRL_TIMEOUT:-60}
RUN_TIMEOUT=$((120 + REQUESTS / 10))

make_tmp phigate-callgrind
make_cert_set ec ec
start_backend

# --- the client: one TLS connection, driven over stdin/stdout -------------------------------------
cat >"$TMP/client.py" <<'PY'
"""One keep-alive TLS connection to HOST:PORT. Sends WARM sequential GETs and prints 'WARM', waits for
'GO' on stdin, sends N GETs (each response read whole and checked), prints 'DONE N SECONDS', waits for
'QUIT', closes. Every wait is bounded; any error exits non-zero with a message on stderr."""
import select, socket, ssl, sys, time

host, port, ca, warm, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if host not in ("127.0.0.1", "::1"):
    sys.exit("loopback only")
REQ = ("GET / HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: callgrind-bench\r\n\r\n" % (host, port)).encode()

ctx = ssl.create_default_context(cafile=ca)
sock = ctx.wrap_socket(socket.create_connection((host, port), timeout=60), server_hostname=host)
sock.settimeout(60)
rf = sock.makefile("rb")

def one():
    sock.sendall(REQ)
    status = rf.readline()
    if not status.startswith(b"HTTP/1.1 200 "):
        raise SystemExit("bad status line %r" % status)
    length, chunked = None, False
    while True:
        line = rf.readline()
        if not line:
            raise SystemExit("connection closed in the response head")
        if line in (b"\r\n", b"\n"):
            break
        k, _, v = line.partition(b":")
        k, v = k.strip().lower(), v.strip().lower()
        if k == b"content-length":
            length = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v:
            chunked = True
        elif k == b"connection" and b"close" in v:
            raise SystemExit("the proxy closes the connection: no keep-alive")
    if chunked:
        body = b""
        while True:
            size = int(rf.readline().split(b";")[0], 16)
            data = rf.read(size + 2)
            if size == 0:
                break
            body += data[:-2]
    elif length is not None:
        body = rf.read(length)
    else:
        raise SystemExit("response without framing")
    if body != b"ok\n":
        raise SystemExit("unexpected body %r" % body[:64])

def wait_for(word, limit=300):
    r, _, _ = select.select([sys.stdin], [], [], limit)
    if not r:
        raise SystemExit("no %s within %d s" % (word, limit))
    line = sys.stdin.readline().strip()
    if line != word:
        raise SystemExit("expected %s, got %r" % (word, line))

for _ in range(warm):
    one()
print("WARM %d %s %s" % (warm, sock.version(), sock.cipher()[0]), flush=True)
wait_for("GO")
t0 = time.monotonic()
for _ in range(n):
    one()
print("DONE %d %.3f" % (n, time.monotonic() - t0), flush=True)
wait_for("QUIT")
sock.close()
print("BYE", flush=True)
PY

# --- helpers --------------------------------------------------------------------------------------
ctl() {  # PID ARGS...: callgrind_control, bounded
  timeout -k 5 "$CTRL_TIMEOUT" callgrind_control "$@" >>"$TMP/callgrind_control.log" 2>&1 ||
    die "callgrind_control $* failed or timed out (see $TMP/callgrind_control.log)"
}
# dump_ir OUTBASE K: waits (bounded) for dump file OUTBASE.K and prints its total Ir: its 'totals:' line
# (the sum of every cost line; its 'summary:' header line stays 0 when instrumentation is toggled).
dump_ir() {
  local base=$1 k=$2 f i
  f=$base.$k
  for ((i = 0; i < 100; i++)); do
    if [[ -s $f ]] && grep -q '^totals:' "$f"; then
      awk '/^totals:/ { print $2; exit }' "$f"
      return 0
    fi
    sleep 0.1
  done
  die "no callgrind dump $f after callgrind_control -d"
}
wait_up() {  # INST PID: bounded wait for /readyz, HTTP 200 "ok" through TLS, and the 'phigate ready' line
  local inst=$1 pid=$2 i code
  for ((i = 0; i < START_TIMEOUT * 4; i++)); do
    if ! alive "$pid"; then
      local st=0; wait "$pid" 2>/dev/null || st=$?
      fail_start "$inst" "$TMP/$inst.log" "process exited with status $st"
    fi
    if [[ $(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ADMIN[$inst]}/readyz" 2>/dev/null) == 200 ]]; then
      code=$(curl -s --cacert "${CA[ec]}" --max-time 5 -o "$TMP/probe" -w '%{http_code}' "https://127.0.0.1:${PORT[$inst]}/" 2>/dev/null || true)
      if [[ $code == 200 ]]; then
        [[ $(<"$TMP/probe") == ok ]] || fail_start "$inst" "$TMP/$inst.log" "GET / returned '$(<"$TMP/probe")', expected 'ok'"
        grep -q "phigate ready" "$TMP/$inst.log" || fail_start "$inst" "$TMP/$inst.log" "serves, but printed no 'phigate ready' line"
        return 0
      fi
    fi
    sleep 0.25
  done
  fail_start "$inst" "$TMP/$inst.log" "not ready within $START_TIMEOUT s under valgrind"
}
client_read() {  # VAR WORD LIMIT: read one line of the client into VAR; it must start with WORD
  local _line=""
  if ! read -r -t "$3" _line <&"$C_OUT"; then
    die "client: no '$2' within $3 s: $(tail -n 5 "$TMP/client.err" 2>/dev/null | tr '\n' ' ')"
  fi
  [[ $_line == "$2"* ]] || die "client: expected '$2', got '$_line': $(tail -n 5 "$TMP/client.err" 2>/dev/null | tr '\n' ' ')"
  printf -v "$1" '%s' "$_line"
}

# measure_bin INST BINARY: one phigate under callgrind; sets R_IR[INST] (window), R_NET[INST] (minus the
# idle baseline), R_PER[INST] (R_NET / N)
declare -A R_IR R_NET R_PER
measure_bin() {
  local inst=$1 bin=$2 f pid out line acc0 acc1 t_req t_cli idle_ir=0 idle_wall=0 ir
  free_port "PORT[$inst]"; free_port "ADMIN[$inst]"
  f=$TMP/$inst.yaml
  render "$CONF_DIR/phigate.yaml" "$f" PORT="${PORT[$inst]}" ADMIN_PORT="${ADMIN[$inst]}" \
    WORKERS="$WORKERS" CIPHERS="$CIPHERS" CIPHERSUITES="$CIPHERSUITES" CERT="${CERT[ec]}" KEY="${KEY[ec]}" \
    BACKEND_PORT="$BACKEND_PORT"
  ! grep -q '^audit:' "$f" || die "$f has an audit section; the keep-alive scenario runs with the audit log off"
  if [[ -n $H2 ]]; then  # as bench/h2.sh: HTTP/2 said explicitly, an idle pool above clients x streams
    printf 'http2: { enabled: true }\n' >>"$f"
    sed -i -E 's/keepalive_connections: [0-9]+/keepalive_connections: 2048/' "$f"
  fi
  out=$TMP/$inst.cg.out
  # --instr-atstart=no: nothing is simulated or counted until `callgrind_control -i on` (with
  # --collect-atstart=no, `-i on` would switch on instrumentation but not collection: Ir stays 0).
  start_bg "$TMP/$inst.log" "${PROXY_PIN[@]}" valgrind --tool=callgrind --instr-atstart=no "${VG_ARGS[@]}" \
    --callgrind-out-file="$out" "$bin" run --config "$f"
  pid=$LAST_PID; PID[$inst]=$pid
  log "$inst: $bin under callgrind (pid $pid) on https://127.0.0.1:${PORT[$inst]}/, waiting until ready"
  wait_up "$inst" "$pid"
  acc0=$(phigate_metric "$inst" phigate_connections_accepted_total)
  if [[ -n $H2 ]]; then
    measure_h2 "$inst" "$pid" "$out" "$acc0"
    return
  fi

  # The client as a coprocess; its pipe ends are copied because bash unsets COPROC when it exits.
  coproc CGCLIENT { exec "${LOAD_PIN[@]}" python3 "$TMP/client.py" 127.0.0.1 "${PORT[$inst]}" "${CA[ec]}" "$WARM" "$REQUESTS" 2>"$TMP/client.err"; }
  local cpid=$CGCLIENT_PID
  PIDS+=("$cpid")
  exec {C_OUT}<&"${CGCLIENT[0]}" {C_IN}>&"${CGCLIENT[1]}"
  client_read line WARM "$RUN_TIMEOUT"
  log "$inst: $WARM warm-up requests done on one connection ($(cut -d" " -f3- <<<"$line")); measuring $REQUESTS"

  local t0 t1
  t0=$(now_ns)
  ctl -i on "$pid"
  echo GO >&"$C_IN"
  client_read line DONE "$RUN_TIMEOUT"
  ctl -i off "$pid"
  t1=$(now_ns)
  ctl -d "$pid"
  ir=$(dump_ir "$out" 1)
  ((ir > 0)) || die "$inst: the dump holds 0 Ir: instrumentation did not switch on (see $TMP/callgrind_control.log)"
  # wall time with instrumentation on (the idle baseline scales with it), and the client's own time
  t_req=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  t_cli=$(awk '{ print $3 }' <<<"$line")

  if ((IDLE > 0)); then  # same state (one open idle connection), no requests
    ctl -z "$pid"
    t0=$(now_ns)
    ctl -i on "$pid"
    sleep "$IDLE"
    ctl -i off "$pid"
    t1=$(now_ns)
    ctl -d "$pid"
    idle_ir=$(dump_ir "$out" 2)
    idle_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  fi
  echo QUIT >&"$C_IN"
  client_read line BYE 30
  exec {C_OUT}<&- {C_IN}>&-
  wait "$cpid" 2>/dev/null || true
  forget_pid "$cpid"
  acc1=$(phigate_metric "$inst" phigate_connections_accepted_total)
  ((acc1 - acc0 == 1)) || die "$inst accepted $((acc1 - acc0)) connections during the run, expected exactly 1"
  stop_pid "$pid"; forget_pid "$pid"

  R_IR[$inst]=$ir
  read -r "R_NET[$inst]" "R_PER[$inst]" < <(awk -v ir="$ir" -v w="$t_req" -v ii="$idle_ir" -v iw="$idle_wall" -v n="$REQUESTS" \
    'BEGIN { base = (iw > 0) ? ii * w / iw : 0; net = ir - base; printf "%.0f %.1f\n", net, net / n }')
  log "$inst: Ir $ir over $REQUESTS requests (client ${t_cli}s, instrumented ${t_req}s); idle baseline $idle_ir Ir in ${idle_wall}s -> $(awk -v ir="$ir" -v net="${R_NET[$inst]}" 'BEGIN { printf "%.0f", ir - net }') subtracted"
}

# measure_h2 INST PID OUT ACC0: the --h2 variant of measure_bin's window (h2load instead of the client;
# no idle baseline: between runs no connection is open)
measure_h2() {
  local inst=$1 pid=$2 out=$3 acc0=$4 url="https://127.0.0.1:${PORT[$1]}/" ir acc1 h
  h=(timeout -k 5 "$RUN_TIMEOUT" "${LOAD_PIN[@]}" h2load -t1 -c"$H2_CLIENTS" -m"$H2")
  "${h[@]}" -n"$WARM" "$url" >"$TMP/$inst.h2load-warm.txt" 2>&1 || die "$inst: warm-up h2load failed: $(tail -3 "$TMP/$inst.h2load-warm.txt")"
  ctl -i on "$pid"
  "${h[@]}" -n"$REQUESTS" "$url" >"$TMP/$inst.h2load.txt" 2>&1 || die "$inst: h2load failed: $(tail -3 "$TMP/$inst.h2load.txt")"
  ctl -i off "$pid"
  ctl -d "$pid"
  grep -q '^Application protocol: h2' "$TMP/$inst.h2load.txt" || die "$inst: h2load did not speak h2"
  grep -q "requests: $REQUESTS total, $REQUESTS started, $REQUESTS done, $REQUESTS succeeded" "$TMP/$inst.h2load.txt" ||
    die "$inst: not every request succeeded: $(grep '^requests:' "$TMP/$inst.h2load.txt")"
  ir=$(dump_ir "$out" 1)
  ((ir > 0)) || die "$inst: the dump holds 0 Ir: instrumentation did not switch on (see $TMP/callgrind_control.log)"
  acc1=$(phigate_metric "$inst" phigate_connections_accepted_total)
  ((acc1 - acc0 == 2 * H2_CLIENTS)) || die "$inst accepted $((acc1 - acc0)) connections, expected $((2 * H2_CLIENTS))"
  stop_pid "$pid"; forget_pid "$pid"
  R_IR[$inst]=$ir; R_NET[$inst]=$ir
  R_PER[$inst]=$(awk -v ir="$ir" -v n="$REQUESTS" 'BEGIN { printf "%.1f", ir / n }')
  log "$inst: Ir $ir over $REQUESTS HTTP/2 requests (h2load -c$H2_CLIENTS -m$H2, handshakes included)"
}

INSTS=(a)
measure_bin a "$PHIGATE"
if [[ -n $COMPARE ]]; then INSTS+=(b); measure_bin b "$COMPARE"; fi

# --- report ---------------------------------------------------------------------------------------
if [[ -n $H2 ]]; then
  echo "callgrind Ir per HTTP/2 request (1 worker, h2load -t1 -c$H2_CLIENTS -m$H2 -n$REQUESTS after a -n$WARM warm-up run, audit off, $H2_CLIENTS TLS handshakes included)"
else
  echo "callgrind Ir per keep-alive HTTPS request (1 worker, default-settings python3 ssl client, audit off, $REQUESTS requests on one connection after $WARM warm-up; idle baseline ${IDLE}s)"
fi
printf '%-6s %16s %14s %14s %14s  %s\n' which Ir_window idle_subtr Ir_net Ir/request binary
declare -A names=([a]="$PHIGATE" [b]="$COMPARE")
for i in "${INSTS[@]}"; do
  printf '%-6s %16s %14.0f %14s %14s  %s\n' "$i" "${R_IR[$i]}" "$(awk -v a="${R_IR[$i]}" -v b="${R_NET[$i]}" 'BEGIN { print a - b }')" \
    "${R_NET[$i]}" "${R_PER[$i]}" "${names[$i]}"
done
if [[ -n $COMPARE ]]; then
  awk -v a="${R_PER[a]}" -v b="${R_PER[b]}" 'BEGIN { printf "ratio a/b (PHIGATE / --compare) = %.4f\n", a / b }'
fi
if ((${#VG_ARGS[@]})); then  # every event of the request window's dump, per request (no idle subtraction)
  n=$REQUESTS
  for i in "${INSTS[@]}"; do
    awk -v who="$i" -v n="$n" '/^events:/ { for (k = 2; k <= NF; k++) ev[k] = $k }
      /^totals:/ { printf "%-6s per request:", who; for (k = 2; k <= NF; k++) printf " %s %.1f", ev[k], $k / n; print ""; exit }' \
      "$TMP/$i.cg.out.1"
  done
fi
