#!/usr/bin/env bash
# Quick start, part 2: builds and runs every test (unit and integration) with ctest.
#   scripts/test.sh            Release build (build/release)
#   scripts/test.sh --asan     the same tests under AddressSanitizer + UBSan (build/asan)
# Extra arguments after the flavor go to ctest (e.g. -R RouteTable, -L unit).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
flavor=release
if [[ ${1:-} == --asan ]]; then flavor=asan; shift; fi

PHIGATE_QUIET=1 scripts/bootstrap.sh
scripts/build.sh "$flavor"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "build/$flavor"
ctest --output-on-failure -j "$(nproc)" --timeout 300 "$@"
