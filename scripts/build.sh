#!/usr/bin/env bash
# Configures (once) and builds phigate. Used by run.sh and test.sh.
#   scripts/build.sh [release|asan|pgo] [ninja targets...]
# release: build/release (Release, tests included). asan: build/asan (ASan+UBSan, debug info).
# pgo: build/pgo/bin/phigate only, profile-guided (GCC -fprofile-use): an instrumented build, a
#   training run (scripts/pgo-train.sh: the benchmarks' smoke runs against it, a few minutes; needs
#   what scripts/bootstrap.sh installs: nginx, wrk, h2load, htpasswd, ...), then the optimised build:
#   about 13 minutes on 2 cores. The binary to ship and to benchmark (bench/h2.sh --pgo,
#   docker/build-image.sh --binary build/pgo/bin/phigate); the tests run on the release build, from
#   the same sources.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
flavor=${1:-release}
shift || true
case $flavor in
  release) dir="$root/build/release"; opts=(-DCMAKE_BUILD_TYPE=Release) ;;
  # asan keeps assertions on (no NDEBUG): PHI_ASSERT checks and PHI_BUG aborts.
  asan) dir="$root/build/asan"; opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g"
    -DPHIGATE_SANITIZE=ON) ;;
  pgo) dir="$root/build/pgo" ;;
  *) echo "build.sh: unknown flavor '$flavor' (release|asan|pgo)" >&2; exit 2 ;;
esac
export CCACHE_DIR=${CCACHE_DIR:-$root/.deps/ccache}
# Paths under the checkout hashed relative to it: another clone or worktree of the same sources
# (with its own .deps) hits the same cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
# Two cores: two jobs (Asio translation units take ~1 GiB each, memory is not the limit).
# pipefail + errexit: a failed ninja fails this script (grep finding nothing to print does not).
build() { ninja -C "$dir" -j "$(nproc)" "$@" | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }; }
if [[ $flavor == pgo ]]; then
  (($# == 0)) || { echo "build.sh: pgo builds phigate only (no targets)" >&2; exit 2; }
  prof=$dir/profile
  final=$dir/bin/phigate
  # Each phase configures from scratch (no option left in the cache by the other phase or by an
  # earlier configure) and only the last step puts a binary at $final: a failed training or build
  # leaves none there, never the instrumented one.
  configure() {  # CXX_FLAGS_RELEASE EXE_LINKER_FLAGS
    rm -f "$dir/CMakeCache.txt"
    cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPHIGATE_TESTS=OFF -DPHIGATE_BENCH=OFF \
      -DPHIGATE_SANITIZE=OFF -DPHIGATE_FUZZ=OFF -DPHIGATE_TCMALLOC=ON -DCMAKE_CXX_FLAGS= \
      "-DCMAKE_CXX_FLAGS_RELEASE=$1" "-DCMAKE_EXE_LINKER_FLAGS=$2" >/dev/null
  }
  rm -f "$final" "$dir/phigate-instrumented"
  # Counters updated atomically where the target has them: the audit writer and the resolver are
  # other threads. The profile is written when the instrumented phigate exits (SIGTERM, drained).
  configure "-O3 -DNDEBUG -fprofile-generate=$prof -fprofile-update=prefer-atomic" -fprofile-generate
  build phigate
  mv "$final" "$dir/phigate-instrumented"
  rm -rf "$prof"
  echo "build.sh: training the instrumented phigate (scripts/pgo-train.sh)" >&2
  "$root/scripts/pgo-train.sh" "$dir/phigate-instrumented"
  # The training must have reached both codecs (a profile is written by any exit, even --version's,
  # and a process killed instead of stopped writes none).
  for hot in http/h2_server.cpp http/parser.cpp; do
    f=$(find "$prof" -name "*#${hot//\//#}.gcda" -print -quit 2>/dev/null)
    [[ -n $f ]] && gcov-dump -l "$f" | awk '/: +[0-9]+: / { for (i = 3; i <= NF; i++) if ($i + 0 > m) m = $i + 0 }
      END { exit !(m >= 10000) }' ||
      { echo "build.sh: the training run left no profile of $hot in $prof" >&2; exit 1; }
  done
  # -fprofile-partial-training: code the training never ran is optimised as without a profile (not
  # for size). GCC 12 reports false positives of these flow-sensitive warnings on inlined Boost.JSON
  # and std::string code once profiles reshape inlining: off here (the release build of the same
  # sources is where they are checked, as errors).
  use="-O3 -DNDEBUG -fprofile-use=$prof -fprofile-partial-training -Wno-missing-profile"
  for w in stringop-overflow stringop-overread array-bounds maybe-uninitialized uninitialized; do
    use+=" -Wno-$w"
  done
  configure "$use" ""
  build phigate
  rm -f "$dir/phigate-instrumented"
  exit 0
fi
# Re-running cmake on a configured tree takes a moment and fixes options left by other tools.
cmake -S "$root" -B "$dir" -G Ninja "${opts[@]}" -DPHIGATE_TESTS=ON >/dev/null
build "$@"
