#!/usr/bin/env bash
# Configures (once) and builds phigate. Used by run.sh and test.sh.
#   scripts/build.sh [release|asan] [ninja targets...]
# release: build/release (Release, tests included). asan: build/asan (ASan+UBSan, debug info).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
flavor=${1:-release}
shift || true
case $flavor in
  release) dir="$root/build/release"; opts=(-DCMAKE_BUILD_TYPE=Release) ;;
  # asan keeps assertions on (no NDEBUG): PHI_ASSERT checks and PHI_BUG aborts.
  asan) dir="$root/build/asan"; opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g"
    -DPHIGATE_SANITIZE=ON) ;;
  *) echo "build.sh: unknown flavor '$flavor' (release|asan)" >&2; exit 2 ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$root/.deps/ccache}
# Paths under the checkout hashed relative to it: another clone or worktree of the same sources
# (with its own .deps) hits the same cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
# Re-running cmake on a configured tree takes a moment and fixes options left by other tools.
cmake -S "$root" -B "$dir" -G Ninja "${opts[@]}" -DPHIGATE_TESTS=ON >/dev/null
# Two cores: two jobs (Asio translation units take ~1 GiB each, memory is not the limit).
# pipefail + errexit: a failed ninja fails this script (grep finding nothing to print does not).
ninja -C "$dir" -j "$(nproc)" "$@" | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
