#!/usr/bin/env bash
# bench/kube_reload.sh: time from an Ingress change at the (test) Kubernetes API server to the new
# route answering through phigate (ingress.source: kubernetes), with 10 and with 5,000 Ingresses
# already served. Each repetition creates one new Ingress for a new host at the API server and
# polls phigate with curl (bounded) until that host answers 200; the median is printed.
# Loopback only (tests/kube/fake_apiserver.py as the API server); every wait is bounded.
#   bench/kube_reload.sh [--sizes "10 5000"] [--reps N] [--debounce DUR] [--no-build]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZES="10 5000"
REPS=5
DEBOUNCE=200ms
BUILD=1
while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --debounce) DEBOUNCE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "kube_reload: unknown option $1" >&2; exit 2 ;;
  esac
done
if ((BUILD)); then
  scripts/build.sh release phigate phigate-test-upstream
fi
bin=build/release/bin
tmp=$(mktemp -d /tmp/phigate-kube-reload-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

wait_line() {  # FILE PATTERN TRIES(x50ms)
  for _ in $(seq "$3"); do grep -q "$2" "$1" && return 0; sleep 0.05; done
  echo "kube_reload: timed out waiting for '$2' in $1" >&2; tail -5 "$1" >&2; return 1
}

# Certificates: the API server's (127.0.0.1, its own CA) and phigate's serving certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench api CA" \
  -keyout "$tmp/api-ca.key" -out "$tmp/api-ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$tmp/api.key" -out "$tmp/api.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/api.ext"
openssl x509 -req -in "$tmp/api.csr" -CA "$tmp/api-ca.crt" -CAkey "$tmp/api-ca.key" -CAcreateserial -days 2 \
  -extfile "$tmp/api.ext" -out "$tmp/api.crt" 2>/dev/null
scripts/make-certs.sh "$tmp/certs" ec "*.bench.example" >/dev/null
printf '{"identities": [{"name": "admin", "token": "bench-token", "rules": []}], "bookmarkIntervalMs": 1000, "maxWatchSeconds": 0}\n' \
  >"$tmp/api.json"

"$bin/phigate-test-upstream" --listen 127.0.0.1:0 >"$tmp/upstream.log" 2>&1 &
pids+=($!)
wait_line "$tmp/upstream.log" '^ready' 200
up_port=$(sed -n 's/^ready 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/upstream.log")

ingresses() {  # FIRST COUNT: Ingress documents (YAML) for hosts h<i>.bench.example, all to Service web
  python3 - "$1" "$2" <<'PY'
import sys
first, n = int(sys.argv[1]), int(sys.argv[2])
docs = []
for i in range(first, first + n):
    docs.append(f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing-{i}, namespace: default}}
spec:
  ingressClassName: phigate
  rules:
  - host: h{i}.bench.example
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}""")
print("\n---\n".join(docs))
PY
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

run_size() {  # COUNT -> one result line
  local count=$1 d="$tmp/size-$1"
  mkdir -p "$d/api"
  /usr/bin/python3 tests/kube/fake_apiserver.py --dir "$d/api" --cert "$tmp/api.crt" --key "$tmp/api.key" \
    --client-ca "$tmp/api-ca.crt" --config "$tmp/api.json" >"$d/api.log" 2>&1 &
  local api_pid=$!
  pids+=("$api_pid")
  wait_line "$d/api.log" '^listening' 200
  local api_port control_port
  read -r api_port control_port < <(sed -n 's/^listening \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$d/api.log")
  local control="http://127.0.0.1:$control_port"
  {
    printf 'apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: phigate}\n'
    printf 'spec: {controller: phigate.io/ingress-controller}\n---\n'
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n'
    printf 'spec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n'
    printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
    printf 'metadata: {name: web-x, namespace: default, labels: {kubernetes.io/service-name: web}}\n'
    printf 'addressType: IPv4\nports: [{name: http, port: %s}]\n' "$up_port"
    printf 'endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]\n---\n'
    ingresses 0 "$count"
  } >"$d/seed.yaml"
  curl -sS --max-time 120 -o /dev/null --data-binary @"$d/seed.yaml" "$control/apply"
  cat >"$d/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: $tmp/api-ca.crt}}]
users: [{name: admin, user: {token: bench-token}}]
contexts: [{name: bench, context: {cluster: bench, user: admin}}]
current-context: bench
YAML
  cat >"$d/phigate.yaml" <<YAML
listeners: { https: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
workers: 1
log: { level: info }
tls: { default_certificate: { cert: $tmp/certs/server.crt, key: $tmp/certs/server.key } }
ingress:
  source: kubernetes
  debounce: $DEBOUNCE
  kubernetes: { kubeconfig: $d/kubeconfig }
  events: false
YAML
  "$bin/phigate" run --config "$d/phigate.yaml" >"$d/phigate.log" 2>&1 &
  local pg=$!
  pids+=("$pg")
  wait_line "$d/phigate.log" 'phigate ready' 600
  local port admin
  port=$(sed -n 's/^phigate ready.* https=127.0.0.1:\([0-9]*\).*/\1/p' "$d/phigate.log" | head -1)
  admin=$(sed -n 's/^phigate ready.* admin=127.0.0.1:\([0-9]*\).*/\1/p' "$d/phigate.log" | head -1)
  local t0 t1 sync_ms
  t0=$(date +%s%N)
  for _ in $(seq 1200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz") == 200 ]] && break
    sleep 0.05
  done
  t1=$(date +%s%N)
  sync_ms=$(((t1 - t0) / 1000000))
  local times=() rep
  for rep in $(seq "$REPS"); do
    local i=$((count + rep)) host ok=0
    host="h$((count + rep)).bench.example"
    ingresses "$i" 1 >"$d/new.yaml"
    t0=$(date +%s%N)
    curl -sS --max-time 10 -o /dev/null --data-binary @"$d/new.yaml" "$control/apply"
    for _ in $(seq 3000); do  # at most ~30 s
      if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$tmp/certs/ca.crt" \
        --resolve "$host:$port:127.0.0.1" "https://$host:$port/") == 200 ]]; then ok=1; break; fi
      sleep 0.01
    done
    t1=$(date +%s%N)
    ((ok)) || { echo "kube_reload: $host never answered" >&2; tail -5 "$d/phigate.log" >&2; exit 1; }
    times+=($(((t1 - t0) / 1000000)))
  done
  local build_ms
  build_ms=$(grep -o 'generation [0-9]* in [0-9]* ms' "$d/phigate.log" | tail -1 | awk '{print $4}')
  printf '%-10s %8s %11s %12s   %s\n' "$count" "$sync_ms" "${build_ms:-?}" \
    "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
  kill "$pg" "$api_pid"
  wait "$pg" "$api_pid" 2>/dev/null || true
}

printf '%-10s %8s %11s %12s   %s\n' ingresses sync_ms build_ms median_ms "each (ms)"
for n in $SIZES; do run_size "$n"; done
echo "(change = one new Ingress created at the API server; answered = curl gets 200 for its host through"
echo " phigate; includes the watch event, ingress.debounce=$DEBOUNCE, the build and curl polling every ~10 ms;"
echo " sync_ms = phigate ready line to /readyz 200; build_ms = the last build as phigate logs it)"
