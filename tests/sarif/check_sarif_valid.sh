#!/usr/bin/env bash
# ctest check_sarif_valid: check_sarif_sample writes a SARIF log with findings of every kind and
# one without findings; validate_sarif.mjs checks both against the SARIF 2.1.0 schema and GitHub
# code scanning's rules, after its self-test (broken logs must be refused).
#   check_sarif_valid.sh SAMPLE_EXE OUTDIR
# Exit 77 (ctest SKIP) when the pinned npm packages are not installed, except in CI (CI=true),
# where that fails: scripts/bootstrap.sh installs them (npm ci --prefix tests/sarif).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sample=$1
out=$2
missing=""
command -v node >/dev/null || missing="node"
[[ -f $here/node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json && -d $here/node_modules/ajv ]] \
  || missing="${missing:+$missing, }tests/sarif/node_modules (npm ci --prefix tests/sarif)"
if [[ -n $missing ]]; then
  if [[ -n ${CI:-} ]]; then
    echo "check_sarif_valid: missing $missing; scripts/bootstrap.sh installs it" >&2
    exit 1
  fi
  echo "check_sarif_valid: SKIP: missing $missing; run scripts/bootstrap.sh"
  exit 77
fi
rm -rf "$out"
"$sample" "$out"
node "$here/validate_sarif.mjs" --self-test
node "$here/validate_sarif.mjs" "$out/findings.sarif" "$out/clean.sarif"
