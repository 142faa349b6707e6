#!/usr/bin/env bash
# scripts/pgo-train.sh BINARY: the training run of a profile-guided build (scripts/build.sh pgo).
# BINARY is phigate built with -fprofile-generate; it writes its profile (.gcda files) when it exits.
# The training load is the benchmarks' own smoke runs against that binary alone (loopback, bounded,
# every process stopped by PID by the bench scripts): HTTP/1.1 keep-alive, new and resumed TLS
# handshakes, 1 MiB bodies both ways, client certificates, the audit log, verified TLS to the
# backend, regex routing with rewrites, basic auth, rate limits, external auth, and HTTP/2 with 1,
# 10 and 100 streams per connection. Paths the load does not reach keep their usual optimisation
# (-fprofile-partial-training in build.sh), so a path left out of training is not made slower.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:?usage: scripts/pgo-train.sh BINARY}
[[ -x $bin ]] || { echo "pgo-train.sh: $bin is not executable" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export PHIGATE=$bin BENCH_RESULTS_DIR=$out
"$root/bench/run.sh" --no-build --quick --targets phigate \
  --scenarios keepalive,handshake,resume,bigbody,mtls,audit,backendtls,regex,auth,ratelimit,extauth >"$out/run.log" 2>&1 ||
  { tail -20 "$out/run.log" >&2; echo "pgo-train.sh: bench/run.sh failed" >&2; exit 1; }
"$root/bench/h2.sh" --no-build --quick --targets phigate >"$out/h2.log" 2>&1 ||
  { tail -20 "$out/h2.log" >&2; echo "pgo-train.sh: bench/h2.sh failed" >&2; exit 1; }
