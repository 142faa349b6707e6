#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang-14, ASan+UBSan, build/fuzz) and runs each one for a
# bounded time, one process at a time. Stops when the build fails. Fails on a target that finds a crash, a sanitizer
# report, a timeout or a broken invariant, and leaves the reproducer in build/fuzz/artifacts/<target>/.
#   scripts/fuzz.sh [--seconds N] [--no-bootstrap] [target...]
# --seconds: per target (default 20). Targets: the names of fuzz/*.cpp (default: all).
# Longer runs and reproducing a finding by hand: fuzz/README.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=20
bootstrap=1
targets=()
while (($#)); do
  case $1 in
    --seconds) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds needs a positive number" >&2; exit 2; }
      seconds=$2; shift 2 ;;
    --no-bootstrap) bootstrap=""; shift ;;
    -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=()
for f in "$root"/fuzz/*.cpp; do all+=("$(basename "$f" .cpp)"); done
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ -f "$root/fuzz/$t.cpp" ]] || { echo "fuzz.sh: no target '$t' (have: ${all[*]})" >&2; exit 2; }
done

# clang-14 and libFuzzer come from Debian packages in the bootstrap list.
[[ -z $bootstrap ]] || PHIGATE_QUIET=1 "$root/scripts/bootstrap.sh"
dir="$root/build/fuzz"
export CCACHE_DIR=${CCACHE_DIR:-$root/.deps/ccache}
# Paths under the checkout hashed relative to it: another clone or worktree of the same sources
# (with its own .deps) hits the same cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$dir" -G Ninja -DPHIGATE_FUZZ=ON -DPHIGATE_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" >/dev/null
# A failed build stops here: under pipefail, `ninja | grep || true` read PIPESTATUS of `true` (0), so a
# target that no longer compiled was fuzzed from its stale binary (or failed later as "exit 127").
build_rc=0
ninja -C "$dir" -j "$(nproc)" "${targets[@]/#/fuzz_}" >"$dir/build.log" 2>&1 || build_rc=$?
grep -vE '^\[[0-9]+/[0-9]+\] ' "$dir/build.log" || true
((build_rc == 0)) || { echo "fuzz.sh: the build failed (ninja exit $build_rc); log: $dir/build.log" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for t in "${targets[@]}"; do
  # New inputs go to a working corpus in the build tree; the checked-in seeds stay read-only.
  work="$dir/corpus/$t"
  art="$dir/artifacts/$t"
  log="$dir/logs/$t.log"
  mkdir -p "$work" "$art" "$(dirname "$log")"
  rc=0
  "$dir/bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "$work" "$root/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)  # none when a seed crashes
  if ((rc != 0)); then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED (exit $rc) after ${execs:-?} runs; log: $log"
    { grep -E 'invariant violated|ERROR: |runtime error|SUMMARY' "$log" || true; } | head -5 | sed 's/^/  /'
    for a in "$art"/*; do [[ -e $a ]] && echo "  reproducer: $a (run: $dir/bin/fuzz_$t $a)"; done
  else
    echo "fuzz.sh: $t ok: ${execs:-?} runs in ${seconds}s, ${cov:-cov ?}"
  fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
