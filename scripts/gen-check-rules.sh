#!/usr/bin/env bash
# Regenerates the rule table of docs/check.md (between its RULES-TABLE markers) from
# `phigate check --format json`'s rules: the test CheckCli.TheDocsListEveryRule keeps them in step.
#   scripts/gen-check-rules.sh   (after a build: uses build/release/bin/phigate)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'listeners: { https: ["127.0.0.1:0"] }\n' >"$tmp/empty.yaml"
"$root/build/release/bin/phigate" check --config "$tmp/empty.yaml" --format json >"$tmp/out.json" || true
python3 - "$tmp/out.json" "$root/docs/check.md" <<'PY'
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
rows = ["| rule | safeguard | default severity | enforced | runs | what it finds |", "|---|---|---|---|---|---|"]
for r in rules:
    cell = lambda t: t.replace("|", "\\|")
    if r.get("built_in"):
        rows.append("| %s | %s | built in | – | – | %s. **Met by construction:** %s |"
                    % (r["id"], r["hipaa"], cell(r["title"]), cell(r["built_in"])))
    else:
        # E/W: an error where PHI is served, a warning elsewhere (the rule's warning_off_phi).
        severity = "E/W" if r.get("warning_off_phi") else r["severity"]
        rows.append("| %s | %s | %s | %s | %s | %s |" % (r["id"], r["hipaa"], severity,
                    "yes" if r["enforceable"] else "", "CLI + run" if r["runtime"] else "CLI", cell(r["title"])))
doc = open(sys.argv[2]).read()
begin, end = "<!-- RULES-TABLE begin -->\n", "<!-- RULES-TABLE end -->\n"
a, b = doc.index(begin) + len(begin), doc.index(end)
open(sys.argv[2], "w").write(doc[:a] + "\n".join(rows) + "\n" + doc[b:])
PY
