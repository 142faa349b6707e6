#!/usr/bin/env bash
# Writes docs/annotations.md from the annotation registry (src/ingress/annotation_registry.cpp):
#   scripts/gen-annotations.sh [PHIGATE_BINARY]   (default: build/release/bin/phigate, built first)
# The annotations_doc test (tests/annotations/check_doc.sh) fails while the committed file differs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-}
if [[ -z $bin ]]; then
  "$root/scripts/build.sh" release phigate
  bin="$root/build/release/bin/phigate"
fi
"$bin" annotations --markdown >"$root/docs/annotations.md.tmp"
mv "$root/docs/annotations.md.tmp" "$root/docs/annotations.md"
echo "wrote docs/annotations.md"
