#!/usr/bin/env bash
# bench/pair.sh: a paired comparison of two proxies (two phigate binaries, or phigate and a peer) that
# serve at the same time, on the same CPUs, with h2load alternating between them.
#
# Why: on a shared VM the host's noise moves every proxy's figures by 10-30 % between runs minutes
# apart, which is more than one change can move. bench/h2.sh runs the proxies one after the other, so
# each of its ratios mixes two moments of the host. Here both proxies are up for the whole run, pinned
# to PROXY_CPUS, and each pair is two back-to-back h2load runs (A then B, the next pair B then A), so
# both halves of a pair see the same host. The figure is each pair's ratio of requests per proxy
# CPU-second (A / B), CPU time from the per-thread run time in /proc/PID/task/*/schedstat (ns, user +
# system, every thread and child process). Reported: the median of the pairs' ratios, how many pairs A
# won, each side's median requests per CPU-second and an approximate interval of the run's median
# (bench/pair_summary.py); one JSON line per pair in the temp dir. A verdict needs several runs:
# --save keeps each run's pairs, and bench/pair_summary.py pools them (a t-interval over the runs;
# bench/README.md, "Paired runs").
#
# Same backend, certificate, TLS settings and HTTP/2 edits of the proxy templates as bench/h2.sh.
# Everything it starts is stopped on exit (by PID).
set -euo pipefail
CALLER_DIR=$PWD  # a relative phigate=BINARY is the caller's
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH_NAME=pair
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
  cat <<'EOF'
usage: bench/pair.sh [options]

  --a SPEC           side A: phigate[=BINARY] | nginx | haproxy (default phigate, i.e. PHIGATE)
  --b SPEC           side B: the same forms (default haproxy)
  --wrap-a CMD       run side A's proxy under CMD, a command prefix that execs it (env VAR=X, a prctl
                     wrapper; one that forks would hide the proxy's CPU time)
  --wrap-b CMD       the same for side B
  --streams M        h2load -m (default 100; 1..100; with --h1 only 1: h2load would pipeline)
  --clients N        h2load -c (default 16)
  --requests N       requests per run (h2load -n, default 60000)
  --pairs P          pairs of runs (default 8; <= 100)
  --warmup N         requests of an unrecorded warm-up run per side (default 20000, 0 = none)
  --restart K        new proxy processes for both sides every K pairs (each warmed up again): one
                     process's luck (memory layout, ASLR) then weighs on K pairs, not on all (default
                     0: the same two processes throughout)
  --h1               HTTP/1.1 over TLS instead of h2 (h2load --h1), one request at a time per connection
  --keep-tmp         keep the temp dir (configs, logs, h2load output, pairs.jsonl)
  --save FILE        append this run's pairs (JSON lines) to FILE, for a summary pooled over runs:
                     bench/pair_summary.py FILE
  -h, --help         this help

environment: PROXY_CPUS (default 0), LOAD_CPUS (default 1), PHIGATE (default build/release/bin/phigate)
Builds nothing: build first (scripts/build.sh release phigate). A relative BINARY is from the current directory.
EOF
}

SPEC_A=phigate SPEC_B=haproxy WRAP_A="" WRAP_B=""
STREAMS_M="" CLIENTS=16 REQUESTS=60000 PAIRS=8 WARMUP_N=20000 H1="" RESTART=0
PROXY_CPUS=${PROXY_CPUS-0}
LOAD_CPUS=${LOAD_CPUS-1}
WORKERS=1 WAIT_QUIET=0 KEEP_TMP="" SAVE=""
while (($#)); do
  case $1 in
    --a) need_arg "$@"; SPEC_A=$2; shift ;;
    --b) need_arg "$@"; SPEC_B=$2; shift ;;
    --wrap-a) need_arg "$@"; WRAP_A=$2; shift ;;
    --wrap-b) need_arg "$@"; WRAP_B=$2; shift ;;
    --streams) need_arg "$@"; STREAMS_M=$2; shift ;;
    --clients) need_arg "$@"; CLIENTS=$2; shift ;;
    --requests) need_arg "$@"; REQUESTS=$2; shift ;;
    --pairs) need_arg "$@"; PAIRS=$2; shift ;;
    --warmup) need_arg "$@"; WARMUP_N=$2; shift ;;
    --restart) need_arg "$@"; RESTART=$2; shift ;;
    --h1) H1=1 ;;
    --keep-tmp) KEEP_TMP=1 ;;
    --save) need_arg "$@"; SAVE=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[[ -z $SAVE || $SAVE == /* ]] || SAVE=$CALLER_DIR/$SAVE
[[ -z $SAVE ]] || { : >>"$SAVE"; } 2>/dev/null || die "--save: cannot write to $SAVE"
[[ -n $STREAMS_M ]] || { if [[ -n $H1 ]]; then STREAMS_M=1; else STREAMS_M=100; fi; }
[[ -z $H1 || $STREAMS_M == 1 ]] || die "--h1 takes --streams 1 only (h2load --h1 -m N pipelines N requests)"
for v in STREAMS_M CLIENTS REQUESTS PAIRS; do
  is_uint "${!v}" && ((${!v} > 0)) || die "$v must be a positive integer, got '${!v}'"
done
is_uint "$WARMUP_N" || die "--warmup must be a non-negative integer, got '$WARMUP_N'"
is_uint "$RESTART" || die "--restart must be a non-negative integer, got '$RESTART'"
((STREAMS_M <= 100 && PAIRS <= 100 && CLIENTS <= 1000 && REQUESTS <= 2000000)) ||
  die "--streams <= 100, --pairs <= 100, --clients <= 1000, --requests <= 2000000, please"
((RESTART == 0 || PAIRS % (2 * RESTART) == 0)) ||
  log "note: --pairs $PAIRS is not a multiple of 2 x --restart $RESTART: one side is started first more often"

# SPEC -> "KIND BINARY" (BINARY only for phigate)
parse_spec() {
  case $1 in
    phigate) echo "phigate $PHIGATE" ;;
    phigate=/*) echo "phigate ${1#phigate=}" ;;
    phigate=*) echo "phigate $CALLER_DIR/${1#phigate=}" ;;
    nginx | haproxy) echo "$1 -" ;;
    *) die "bad side '$1': phigate[=BINARY], nginx or haproxy" ;;
  esac
}
read -r KIND_A BIN_A < <(parse_spec "$SPEC_A")
read -r KIND_B BIN_B < <(parse_spec "$SPEC_B")
for b in "$BIN_A" "$BIN_B"; do [[ $b == - || -x $b ]] || die "$b is not an executable phigate binary"; done
TARGETS=("$KIND_A" "$KIND_B")
setup_pinning
raise_nofile $((4 * CLIENTS + 1024))
need_tools h2load nginx haproxy curl openssl taskset pgrep python3 timeout

make_tmp phigate-pair
make_cert_set ec ec
start_backend

config_hook() { h2_config_hook "$@"; }  # bench/lib.sh: the same HTTP/2 edits as bench/h2.sh

# A wrapper is applied by putting it in front of the proxy command: start_proxy runs
# "${PROXY_PIN[@]}" then the proxy, so the pin array gets the wrapper appended for that one start.
start_side() {  # INST KIND BINARY WRAP
  local pin=("${PROXY_PIN[@]}") w=()
  if [[ -n $4 ]]; then read -r -a w <<<"$4"; PROXY_PIN+=("${w[@]}"); fi
  [[ $2 != phigate ]] || PHIGATE=$3
  start_proxy "$2" "$1" ec
  PROXY_PIN=("${pin[@]}")
  log "$1: $2${3:+ $3}${4:+ under \"$4\"} on https://127.0.0.1:${PORT[$1]}/ (pid ${PID[$1]})"
}
# Both sides, started (and warmed up) in `start_order`, which alternates with each restart group, so
# that start order cannot favour one side. Whether it matters is open: in one A/A run (one binary on
# both sides) the side always started second served 1.6 % more per CPU-second (0.984 at -m 100, 20
# of 60 pairs; 0.987 at -m 1); the next A/A run, alternating, gave 1.031 the other way.
start_order=(A B)
start_both() {
  local s
  for s in "${start_order[@]}"; do
    if [[ $s == A ]]; then
      start_side A "$KIND_A" "$([[ $BIN_A == - ]] || echo "$BIN_A")" "$WRAP_A"
    else
      start_side B "$KIND_B" "$([[ $BIN_B == - ]] || echo "$BIN_B")" "$WRAP_B"
    fi
  done
}
start_both

cpu_ns() {  # PID: on-CPU ns of every thread of PID and its children (schedstat's first field)
  local p
  for p in $(tree_pids "$1"); do cat "/proc/$p/task/"*/schedstat 2>/dev/null || true; done |
    awk '{ s += $1 } END { printf "%.0f", s }'
}

sys_ticks() {  # PID: "utime stime" clock ticks of PID and its children (all threads)
  local p
  for p in $(tree_pids "$1"); do awk '{ sub(/.*\) /, ""); print $12, $13 }' "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ u += $1; s += $2 } END { printf "%d %d\n", u, s }'
}

PAIRS_OUT=$TMP/pairs.jsonl
RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-$$"  # tells this run's groups from another's in a pooled file
: >"$PAIRS_OUT"
RUN_RPC="" RUN_SYS=""  # set by run_side: requests per proxy CPU-second, the kernel's share of that CPU
run_side() {  # INST N TAG
  local inst=$1 n=$2 txt=$TMP/h2load-$1-$3.txt c0 c1 done_n u0 s0 u1 s1
  local proto=(); [[ -z $H1 ]] || proto=(--h1)
  read -r u0 s0 < <(sys_ticks "${PID[$inst]}")
  c0=$(cpu_ns "${PID[$inst]}")
  timeout -k 5 300 "${LOAD_PIN[@]}" h2load "${proto[@]}" -t1 -c"$CLIENTS" -m"$STREAMS_M" -n"$n" \
    "https://127.0.0.1:${PORT[$inst]}/" >"$txt" 2>&1 || die "h2load against $inst failed: $(tail -5 "$txt")"
  c1=$(cpu_ns "${PID[$inst]}")
  read -r u1 s1 < <(sys_ticks "${PID[$inst]}")
  alive "${PID[$inst]}" || die "$inst died during the run"
  done_n=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "succeeded,") print $i }' "$txt")
  [[ $done_n == "$n" ]] || die "$inst: $done_n of $n requests succeeded: $(grep -E '^(requests|status codes):' "$txt")"
  grep -q "status codes: $n 2xx" "$txt" || die "$inst: not every answer was 2xx: $(grep '^status codes:' "$txt")"
  ((c1 > c0)) || die "$inst: no CPU time read from /proc/${PID[$inst]}/task/*/schedstat (kernel without schedstats?)"
  RUN_RPC=$(awk -v n="$n" -v c="$((c1 - c0))" 'BEGIN { printf "%.0f", n / (c / 1e9) }')
  RUN_SYS=$(awk -v u="$((u1 - u0))" -v s="$((s1 - s0))" 'BEGIN { printf "%.3f\n", (u + s > 0) ? s / (u + s) : 0 }')
}

warm_up() {
  ((WARMUP_N > 0)) || return 0
  local s
  for s in "${start_order[@]}"; do run_side "$s" "$WARMUP_N" warmup; done
}
warm_up
for ((p = 1; p <= PAIRS; p++)); do
  if ((RESTART > 0 && p > 1 && (p - 1) % RESTART == 0)); then
    stop_proxy A
    stop_proxy B
    for s in A B; do [[ ! -f $TMP/$s.log ]] || mv "$TMP/$s.log" "$TMP/$s.before-pair-$p.log"; done  # --keep-tmp keeps each
    start_order=("${start_order[1]}" "${start_order[0]}")
    start_both
    warm_up
  fi
  if ((p % 2)); then order=(A B); else order=(B A); fi
  declare -A R=() S=()
  for s in "${order[@]}"; do run_side "$s" "$REQUESTS" "p$p"; R[$s]=$RUN_RPC; S[$s]=$RUN_SYS; done
  group=$((RESTART > 0 ? (p - 1) / RESTART : 0))  # pairs served by the same two processes
  echo "{\"run\": \"$RUN_ID\", \"pair\": $p, \"group\": $group, \"started_first\": \"${start_order[0]}\", \"first\": \"${order[0]}\", \"a_rpc\": ${R[A]}, \"b_rpc\": ${R[B]}, \"a_sys\": ${S[A]}, \"b_sys\": ${S[B]}}" >>"$PAIRS_OUT"
  log "pair $p (${order[0]} first): A ${R[A]}, B ${R[B]} requests per CPU-second, A/B $(awk -v a="${R[A]}" -v b="${R[B]}" 'BEGIN { printf "%.3f", a / b }')"
done

what="$([[ -n $H1 ]] && echo h1 || echo h2) -m $STREAMS_M, $REQUESTS requests per run, $PAIRS pairs"
((RESTART == 0)) || what+=", new processes every $RESTART pairs"
[[ -z $SAVE ]] || cat "$PAIRS_OUT" >>"$SAVE"  # first: a failing summary must not lose the run
python3 bench/pair_summary.py --a "$SPEC_A${WRAP_A:+ ($WRAP_A)}" --b "$SPEC_B${WRAP_B:+ ($WRAP_B)}" --what "$what" "$PAIRS_OUT"
