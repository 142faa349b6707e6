#!/usr/bin/env bash
# bench/ingress_scale.sh: phigate with 5,000 Ingresses (10,000 hosts, 20,000 paths) versus one.
# Reports the time to load and to reload, peak memory (VmHWM), and keep-alive request latency
# (wrk, Host = the last generated host) at both sizes. Loopback only; bounded runs.
#   bench/ingress_scale.sh [--ingresses N] [--duration S] [--no-build] [--json FILE]
# --json FILE also writes the results as JSON (bench/run.sh --scenarios all+ merges it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=5000
DURATION=10
BUILD=1
JSON=""
while (($#)); do
  case $1 in
    --ingresses) N=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --json) JSON=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "ingress_scale: unknown option $1" >&2; exit 2 ;;
  esac
done
if ((BUILD)); then
  PHIGATE_QUIET=1 scripts/bootstrap.sh
  scripts/build.sh release phigate phigate-test-upstream
fi
bin=build/release/bin
tmp=$(mktemp -d /tmp/phigate-scale-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

scripts/make-certs.sh "$tmp/certs" ec >/dev/null
"$bin/phigate-test-upstream" --listen 127.0.0.1:0 >"$tmp/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q '^ready' "$tmp/upstream.log" && break; sleep 0.05; done
up_port=$(sed -n 's/^ready 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/upstream.log")

# N Ingresses, each with 2 hosts x 2 paths, one Service + EndpointSlice each, in 50 files.
generate() {  # generate DIR COUNT
  python3 - "$1" "$2" "$up_port" <<'PY'
import os, sys
d, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(d, exist_ok=True)
open(os.path.join(d, "class.yaml"), "w").write(
    "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: phigate}\n"
    "spec: {controller: phigate.io/ingress-controller}\n")
per_file = max(1, n // 50)
for f in range(0, n, per_file):
    docs = []
    for i in range(f, min(n, f + per_file)):
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: svc-{i}, namespace: ns-{i % 20}}}
spec: {{ports: [{{name: http, port: 80, targetPort: 8080}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-{i}-x, namespace: ns-{i % 20}, labels: {{kubernetes.io/service-name: svc-{i}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: ["127.0.0.1"], conditions: {{ready: true}}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing-{i}, namespace: ns-{i % 20}, creationTimestamp: "2026-01-01T00:00:00Z"}}
spec:
  ingressClassName: phigate
  rules:""")
        for h in range(2):
            docs[-1] += f"""
  - host: h{i}-{h}.example.com
    http:
      paths:
      - {{path: /api, pathType: Prefix, backend: {{service: {{name: svc-{i}, port: {{number: 80}}}}}}}}
      - {{path: /, pathType: Prefix, backend: {{service: {{name: svc-{i}, port: {{number: 80}}}}}}}}"""
    open(os.path.join(d, f"ing-{f:05d}.yaml"), "w").write("\n---\n".join(docs) + "\n")
PY
}

run_size() {  # run_size COUNT -> prints one result line
  local count=$1 dir="$tmp/k8s-$1" cfg="$tmp/phigate-$1.yaml" log="$tmp/phigate-$1.log"
  generate "$dir" "$count"
  cat >"$cfg" <<YAML
listeners: { https: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
workers: 1
log: { level: info }
tls: { default_certificate: { cert: $tmp/certs/server.crt, key: $tmp/certs/server.key } }
ingress: { dir: $dir, debounce: 50ms }
YAML
  local t0 t1
  t0=$(date +%s%N)
  taskset -c 0 "$bin/phigate" run --config "$cfg" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do grep -q 'phigate ready' "$log" && break; sleep 0.05; done
  t1=$(date +%s%N)
  grep -q 'phigate ready' "$log" || { tail "$log" >&2; exit 1; }
  local port load_ms
  port=$(sed -n 's/^phigate ready.* https=127.0.0.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  load_ms=$(sed -n 's/.*loaded .*generation 1 in \([0-9]*\) ms.*/\1/p' "$log" | head -1)
  # Reload: touch one file, wait for the generation-2 line.
  touch "$dir/class.yaml"
  for _ in $(seq 600); do grep -q 'generation 2 in' "$log" && break; sleep 0.05; done
  local reload_ms
  reload_ms=$(sed -n 's/.*reloaded .*generation 2 in \([0-9]*\) ms.*/\1/p' "$log" | head -1)
  local host="h$((count - 1))-1.example.com"
  local out
  out=$(taskset -c 1 timeout $((DURATION + 10)) wrk -t1 -c32 -d"${DURATION}s" --latency -H "Host: $host" \
    "https://127.0.0.1:$port/api/x")
  local rps p50 p99 hwm
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  printf '%-10s %8s %12s %11s %12s %10s %8s %8s\n' "$count" "$((($t1 - t0) / 1000000))" "${load_ms:-?}" \
    "${reload_ms:-?}" "$((hwm / 1024))" "$rps" "$p50" "$p99"
  printf '{"ingresses": %s, "start_ms": %s, "build_ms": "%s", "reload_ms": "%s", "peak_mib": %s, "rps": %s, "p50": "%s", "p99": "%s"}\n' \
    "$count" "$((($t1 - t0) / 1000000))" "${load_ms:-?}" "${reload_ms:-?}" "$((hwm / 1024))" "${rps:-0}" "$p50" "$p99" >>"$tmp/sizes.jsonl"
  kill "$pid"
}

printf '%-10s %8s %12s %11s %12s %10s %8s %8s\n' ingresses start_ms build_ms reload_ms peak_MiB req/s p50 p99
run_size 1
run_size "$N"
echo "(hosts = 2 x ingresses, paths = 4 x ingresses; build_ms/reload_ms = read + translate + compile as phigate logs it;"
echo " start_ms = process start to ready; wrk -t1 -c32 -d${DURATION}s keep-alive, Host = the last generated host)"
if [[ -n $JSON ]]; then
  python3 -c 'import json, sys; print(json.dumps({"sizes": [json.loads(l) for l in open(sys.argv[1])], "duration_s": int(sys.argv[2])}, indent=1))' \
    "$tmp/sizes.jsonl" "$DURATION" >"$JSON"
fi
