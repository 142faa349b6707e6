#!/usr/bin/env bash
# Quick start, part 1: builds (if needed) and runs phigate on config/phigate.yaml with a demo
# certificate and a demo backend. Ctrl-C stops both (phigate drains gracefully).
#   scripts/run.sh [--config FILE]   (other configs: bring your own certificates and backends)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
config=config/phigate.yaml
[[ ${1:-} == --config ]] && config=${2:?--config needs a file}

PHIGATE_QUIET=1 scripts/bootstrap.sh
scripts/build.sh release phigate phigate-test-upstream
bin=build/release/bin

backend_pid=""
cleanup() { [[ -n $backend_pid ]] && kill "$backend_pid" 2>/dev/null || true; }
trap cleanup EXIT

if [[ $config == config/phigate.yaml ]]; then
  scripts/make-certs.sh .state/demo ec >/dev/null
  # The demo audit key (in production: a Kubernetes Secret mounted as a folder of <id>.key files).
  mkdir -p .state/demo/audit-keys && chmod 700 .state/demo/audit-keys
  [[ -s .state/demo/audit-keys/demo.key ]] || (umask 077 && openssl rand -base64 -out .state/demo/audit-keys/demo.key 32)
  # The demo backend: phigate-test-upstream on 127.0.0.1:18080, unless something already answers there.
  if ! curl -s -o /dev/null --max-time 1 http://127.0.0.1:18080/; then
    "$bin/phigate-test-upstream" --listen 127.0.0.1:18080 --name demo-backend >.state/demo/backend.log 2>&1 &
    backend_pid=$!
    for _ in $(seq 1 100); do
      grep -q '^ready' .state/demo/backend.log 2>/dev/null && break
      kill -0 "$backend_pid" 2>/dev/null || { cat .state/demo/backend.log >&2; exit 1; }
      sleep 0.05
    done
  fi
  cat <<MSG

phigate is starting on https://localhost:8443 (plain http://localhost:8080 redirects there).
In another terminal, see a proxied response with:

  curl --cacert $root/.state/demo/ca.crt https://localhost:8443/hello

Admin: curl http://127.0.0.1:9901/metrics   Stop: Ctrl-C
Audit log (encrypted): $bin/phigate audit decrypt --keys .state/demo/audit-keys .state/demo/audit

MSG
fi
"$bin/phigate" run --config "$config"
