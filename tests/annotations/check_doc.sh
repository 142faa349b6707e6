#!/usr/bin/env bash
# ctest annotations_doc: docs/annotations.md is exactly `phigate annotations --markdown`.
#   check_doc.sh PHIGATE_BINARY SOURCE_DIR
set -euo pipefail
bin=$1
doc=$2/docs/annotations.md
if ! diff -u "$doc" <("$bin" annotations --markdown); then
  echo "docs/annotations.md is stale (it must equal \`phigate annotations --markdown\`): run scripts/gen-annotations.sh and commit the result" >&2
  exit 1
fi
