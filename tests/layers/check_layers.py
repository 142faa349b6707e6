#!/usr/bin/env python3
"""The layer table of ARCHITECTURE.md and the library edges of src/CMakeLists.txt must agree.

The build already refuses an include of a library that is not linked (each library sees only the
public headers of what it links). This closes the other gap: a new DEPS edge that the table does
not allow (an upward or sideways dependency) fails here, so the table stays the truth.
"""
import re
import sys
from pathlib import Path

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
arch = (root / "ARCHITECTURE.md").read_text()
cmake = (root / "src" / "CMakeLists.txt").read_text()

rows = {}
for line in arch.splitlines():
    m = re.match(r"\|\s*([0-9]+|–)\s*\|\s*([a-z]+)\s*\|.*\|\s*([^|]+?)\s*\|\s*$", line)
    if m:
        layer = -1 if m.group(1) == "–" else int(m.group(1))
        rows[m.group(2)] = (layer, m.group(3))

libs = {}
for m in re.finditer(r"phigate_library\((\w+)\s(.*?)\)\n", cmake, re.S):
    deps = re.findall(r"phigate_(\w+)", m.group(2).split("DEPS", 1)[1] if "DEPS" in m.group(2) else "")
    libs[m.group(1)] = [d for d in deps if d != "boost" and d != "warnings"]

problems = []
for lib, deps in sorted(libs.items()):
    if lib not in rows:
        problems.append(f"library '{lib}' has no row in ARCHITECTURE.md's layer table")
        continue
    layer, may_use = rows[lib]
    for d in deps:
        if d not in rows:
            problems.append(f"{lib} -> {d}: '{d}' has no row in the layer table")
            continue
        dlayer = rows[d][0]
        allowed = (
            d in re.findall(r"[a-z]+", may_use)
            or may_use == "everything"
            or (re.match(r"layers 0–(\d)", may_use) and dlayer <= int(re.match(r"layers 0–(\d)", may_use).group(1)))
        )
        if not allowed:
            problems.append(f"{lib} (layer {layer}) -> {d} (layer {dlayer}): not in its 'may use' ({may_use})")
        if dlayer > layer >= 0:
            problems.append(f"{lib} (layer {layer}) -> {d} (layer {dlayer}): points upward")

for p in problems:
    print("layers:", p)
print(f"layers: {len(libs)} libraries, {sum(len(d) for d in libs.values())} edges, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
