#!/usr/bin/env bash
# Builds and runs the Google Benchmark micro-benchmarks (bench/micro/README.md).
#   bench/micro/run.sh [benchmark flags...]     e.g. --benchmark_filter=Route
# Release build in build/micro (tests off, PHIGATE_BENCH on), pinned to CPU 0 when taskset exists.
# Prints the console table and writes bench/results/micro-<UTC stamp>.json (git-ignored).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir="$root/build/micro"
export CCACHE_DIR=${CCACHE_DIR:-$root/.deps/ccache}
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPHIGATE_BENCH=ON -DPHIGATE_TESTS=OFF >/dev/null
# At most two jobs: the machine has two cores and other builds may be running.
ninja -C "$dir" -j 2 phigate_micro | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
test "${PIPESTATUS[0]}" -eq 0

mkdir -p "$root/bench/results"
out="$root/bench/results/micro-$(date -u +%Y%m%dT%H%M%SZ).json"
pin=()
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then pin=(taskset -c 0); fi
# Three repetitions, console shows mean/median/stddev/cv; the JSON keeps every repetition.
defaults=(--benchmark_repetitions=3 --benchmark_display_aggregates_only=true)
"${pin[@]}" "$dir/bin/phigate_micro" "${defaults[@]}" --benchmark_out="$out" --benchmark_out_format=json "$@"
echo "results: $out"
