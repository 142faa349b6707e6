#!/usr/bin/env python3
"""bench/pair_summary.py on made-up pairs: the figures it prints, one run's grouped bootstrap, the
run-level t-interval and sign test of pooled runs, and clear errors. Usage: test_pair_summary.py ROOT"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = sys.argv[1]
SCRIPT = os.path.join(ROOT, "bench", "pair_summary.py")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def lines(ratios, group_size, run="r1", start=("A", "B")):
    out = []
    for i, r in enumerate(ratios):
        g = i // group_size
        out.append(json.dumps({"run": run, "pair": i + 1, "group": g, "started_first": start[g % 2],
                               "first": "A", "a_rpc": 1000.0 * r, "b_rpc": 1000.0, "a_sys": 0.4, "b_sys": 0.5}))
    return out


def write(path, *runs):
    with open(path, "w", encoding="utf-8") as f:
        for run in runs:
            f.write("\n".join(run) + "\n")


def summary(*files):
    out = subprocess.run([sys.executable, SCRIPT, "--a", "x", "--b", "y", *files], capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def run_interval(text):
    m = re.search(r"interval of this run's median ratio \(bootstrap of (\d+) process groups;[^)]*\): "
                  r"([0-9.]+)-([0-9.]+)", text)
    return (int(m.group(1)), float(m.group(2)), float(m.group(3))) if m else None


def pooled(text):
    m = re.search(r"95 % t-interval of the ratio over (\d+) runs: ([0-9.]+)-([0-9.]+) \(geometric mean "
                  r"([0-9.]+)\); A ahead in (\d+) of (\d+) runs, sign test \(one-sided\): p = ([0-9.e+-]+)", text)
    return tuple(float(x) for x in m.groups()) if m else None


with tempfile.TemporaryDirectory() as d:
    # One run, A clearly ahead: 30 pairs, 6 groups of 5, every ratio 1.05-1.15.
    ahead = [1.05 + 0.1 * ((i * 7) % 30) / 29 for i in range(30)]
    write(f"{d}/ahead.jsonl", lines(ahead, 5))
    rc, text = summary(f"{d}/ahead.jsonl")
    check(rc == 0, f"ahead: rc {rc}: {text}")
    check("A ahead in 30 of 30" in text, f"ahead: pairs won: {text}")
    iv = run_interval(text)
    check(iv is not None and iv[0] == 6 and 1.0 < iv[1] <= iv[2] <= 1.15, f"ahead: interval above 1: {text}")
    check("median kernel share of proxy CPU: A 0.40, B 0.50" in text, f"ahead: kernel shares: {text}")
    check("t-interval" not in text, f"ahead: one run has no run-level interval: {text}")

    # One run, level: ratios alternate around 1; the interval contains 1.
    write(f"{d}/level.jsonl", lines([0.95 if i % 2 else 1.05 for i in range(30)], 5))
    iv = run_interval(summary(f"{d}/level.jsonl")[1])
    check(iv is not None and iv[1] < 1.0 < iv[2], f"level: interval spans 1: {iv}")

    # Five process pairs at 1.03, one at 0.97 (five pairs each). Resampled pair by pair, half of 30
    # draws from the slow group is all but impossible: the interval would be 1.03-1.03. Resampled by
    # group (6 draws), three or more slow ones happen in 6.2 % of resamples, four or more in 0.9 %: the
    # 2.5th percentile is the median of three slow groups and three fast ones, 1.000.
    write(f"{d}/grouped.jsonl", lines([1.03] * 25 + [0.97] * 5, 5))
    rc, text = summary(f"{d}/grouped.jsonl")
    iv = run_interval(text)
    check(iv is not None and iv[1] == 1.0 and iv[2] == 1.03, f"grouped: interval 1.000-1.030: {text}")
    # Groups alternate the side started first: A first in groups 0, 2, 4 (all 1.03), B in 1, 3, 5.
    check("median ratio by the side started first: A 1.030 (15 pairs), B 1.030 (15 pairs)" in text,
          f"grouped: by start order: {text}")

    # Too few groups for a bootstrap: no interval rather than a zero-width one.
    write(f"{d}/few.jsonl", lines([1.1, 1.2, 1.1, 1.2], 2))
    rc, text = summary(f"{d}/few.jsonl")
    check(rc == 0 and "interval: n/a (2 process groups" in text and run_interval(text) is None,
          f"few: n/a: {text}")

    # Three runs in one file (the --save case), every run ahead (medians 1.02, 1.04, 1.06): the
    # run-level t-interval (2 degrees of freedom) still reaches below 1.0; the rule needs more runs.
    write(f"{d}/three.jsonl", *(lines([m] * 30, 5, run=f"r{j}") for j, m in enumerate((1.02, 1.04, 1.06))))
    rc, text = summary(f"{d}/three.jsonl")
    pv = pooled(text)
    check("90 pairs from 3 runs" in text and "run medians: 1.020, 1.040, 1.060" in text, f"three: runs: {text}")
    check(pv is not None and pv[0] == 3 and abs(pv[1] - 0.991) < 0.0015 and abs(pv[2] - 1.091) < 0.0015,
          f"three: t-interval 0.991-1.091: {text}")
    check(pv is not None and pv[4] == 3 and pv[5] == 3 and abs(pv[6] / 0.125 - 1) < 0.05, f"three: sign p 1/8: {text}")
    check(run_interval(text) is None, f"three: no single-run interval when pooled: {text}")

    # Five runs over two files, medians 1.04, 1.05, 1.06 | 1.05, 1.04: interval 1.038-1.058, p 1/32.
    write(f"{d}/five-a.jsonl", *(lines([m] * 25, 5, run=f"a{j}") for j, m in enumerate((1.04, 1.05, 1.06))))
    write(f"{d}/five-b.jsonl", *(lines([m] * 25, 5, run=f"a{j}") for j, m in enumerate((1.05, 1.04))))
    rc, text = summary(f"{d}/five-a.jsonl", f"{d}/five-b.jsonl")
    pv = pooled(text)
    check(pv is not None and pv[0] == 5 and abs(pv[1] - 1.038) < 0.0015 and abs(pv[2] - 1.058) < 0.0015,
          f"five: the same run names in two files are two runs; interval 1.038-1.058: {text}")
    check(pv is not None and abs(pv[6] / (1 / 32) - 1) < 0.01, f"five: sign p 1/32: {text}")

    # A tie (a run median of exactly 1.0) is dropped from the sign test: 2 of 2 decided, p = 1/4.
    write(f"{d}/ties.jsonl", *(lines([m] * 25, 5, run=f"t{j}") for j, m in enumerate((1.0, 1.05, 1.02))))
    pv = pooled(summary(f"{d}/ties.jsonl")[1])
    check(pv is not None and pv[4] == 2 and abs(pv[6] / 0.25 - 1) < 0.01, f"ties: p 1/4: {pv}")

    # Runs whose medians rest on fewer than 5 process groups do not count; equal medians give no
    # interval (a zero-width one would pass any rule); a file given twice is read once.
    write(f"{d}/short.jsonl", *(lines([m] * 10, 5, run=f"s{j}") for j, m in enumerate((1.2, 1.3))))
    rc, text = summary(f"{d}/three.jsonl", f"{d}/short.jsonl")
    check("not counted: 2 runs of fewer than 5 process groups" in text and pooled(text) is not None
          and pooled(text)[0] == 3, f"short runs: not counted: {text}")
    write(f"{d}/equal.jsonl", *(lines([1.03] * 25, 5, run=f"e{j}") for j in range(3)))
    rc, text = summary(f"{d}/equal.jsonl")
    check(rc == 0 and "t-interval: n/a (the run medians are all equal)" in text and pooled(text) is None,
          f"equal medians: n/a: {text}")
    rc, text = summary(f"{d}/three.jsonl", f"{d}/../{os.path.basename(d)}/three.jsonl")
    check("given twice, read once" in text and "90 pairs from 3 runs" in text, f"twice: {text}")

    # Bad lines name the file and the line.
    with open(f"{d}/dup.jsonl", "w", encoding="utf-8") as f:
        f.write("\n".join(lines([1.1, 1.2], 5) + lines([1.3], 5)) + "\n")
    rc, text = summary(f"{d}/dup.jsonl")
    check(rc == 1 and "dup.jsonl:3: pair 1 of run r1 again" in text, f"duplicate pair: rc {rc}: {text}")
    with open(f"{d}/zero.jsonl", "w", encoding="utf-8") as f:
        f.write('{"run": "z", "group": 0, "pair": 1, "a_rpc": 0, "b_rpc": 1}\n')
    rc, text = summary(f"{d}/zero.jsonl")
    check(rc == 1 and "zero.jsonl:1: not a pair line (a_rpc and b_rpc must be positive" in text
          and "Traceback" not in text, f"zero rpc: rc {rc}: {text}")
    with open(f"{d}/bad.jsonl", "w", encoding="utf-8") as f:
        f.write(lines([1.0], 1)[0] + '\n{"a_rpc": 2}\n')
    rc, text = summary(f"{d}/bad.jsonl")
    check(rc == 1 and "bad.jsonl:2: not a pair line" in text, f"bad line: rc {rc}: {text}")
    with open(f"{d}/old.jsonl", "w", encoding="utf-8") as f:
        f.write('{"pair": 1, "a_rpc": 2, "b_rpc": 1}\n')
    rc, text = summary(f"{d}/old.jsonl")
    check(rc == 1 and "old.jsonl:1: no run or group" in text, f"old line: rc {rc}: {text}")

    rc, text = summary(f"{d}/missing.jsonl")
    check(rc == 1 and "missing.jsonl: cannot read" in text and "Traceback" not in text, f"missing file: {text}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("pair_summary: all checks passed")
