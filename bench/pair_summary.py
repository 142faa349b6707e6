#!/usr/bin/env python3
"""bench/pair_summary.py: the summary of bench/pair.sh's pairs, of one run or pooled over several.

usage: bench/pair_summary.py [--a NAME] [--b NAME] [--what TEXT] FILE...

Each FILE holds one JSON line per pair. bench/pair.sh writes them, and --save FILE keeps a copy;
several runs may append to the same file. The fields of a line:
- a_rpc, b_rpc: requests per proxy CPU-second of each side;
- a_sys, b_sys: the kernel's share of that CPU;
- group: the pairs served by the same two processes;
- run: which bench/pair.sh run;
- started_first: which side was started and warmed up first.

Printed for all the pairs: each side's median requests per CPU-second, the median of the pairs'
ratios A/B, how many pairs A won, and the median ratio by the side started first.

Then one of two verdicts:

- One run: an approximate 95 % interval of the median ratio, by bootstrap (10,000 resamples, fixed
  seed). Whole process groups are resampled, never single pairs: pairs served by the same two
  processes share their luck. It says how far this run's own spread leaves the median, nothing
  more. A whole run can sit a few per cent off: A/A runs (one binary on both sides, 60 pairs) gave
  medians of 0.984 and 1.031, and each one's interval excluded 1.0. Shown only with 5 or more
  groups.
- Several runs: the run is the unit, and a run counts with 5 or more process groups.
  - Each run's median.
  - A 95 % t-interval of the ratio, from the logs of the run medians (Student's t, runs - 1
    degrees of freedom).
  - A sign test over the runs: how likely A would win at least that many runs (ties dropped) if
    neither proxy were faster.

"A ahead", for the goals in bench/README.md, means: three or more runs, pooled, with the t-interval
above 1.0.
"""
import json
import math
import os
import random
import statistics
import sys

# Student's t, two-sided 95 % (0.975 quantile), by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
        18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}
MIN_GROUPS = 5


def t975(df):
    if df in T975:
        return T975[df]
    below = [k for k in T975 if k < df]
    return T975[max(below)]  # between table entries and past 30: the next smaller entry's (wider)


def sign_p(wins, n):
    """One-sided: P(at least `wins` of `n` fair coin tosses)."""
    return sum(math.comb(n, j) for j in range(wins, n + 1)) / 2**n if n else 1.0


def main(argv):
    a_name, b_name, what, files = "A", "B", "", []
    i = 0
    while i < len(argv):
        if argv[i] in ("--a", "--b", "--what") and i + 1 < len(argv):
            if argv[i] == "--a":
                a_name = argv[i + 1]
            elif argv[i] == "--b":
                b_name = argv[i + 1]
            else:
                what = argv[i + 1]
            i += 2
        elif argv[i] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            files.append(argv[i])
            i += 1
    if not files:
        print("usage: bench/pair_summary.py [--a NAME] [--b NAME] [--what TEXT] FILE...", file=sys.stderr)
        return 2
    pairs = []
    seen_files, seen_pairs = set(), set()
    for f in files:
        real = os.path.realpath(f)
        if real in seen_files:
            print(f"pair_summary.py: {f}: given twice, read once", file=sys.stderr)
            continue
        seen_files.add(real)
        try:
            text = open(f, encoding="utf-8").read()
        except OSError as e:
            print(f"pair_summary.py: {f}: cannot read ({e.strerror})", file=sys.stderr)
            return 1
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                p = json.loads(line)
                a, b = p["a_rpc"], p["b_rpc"]
                if not all(isinstance(x, (int, float)) and x > 0 for x in (a, b)):
                    raise ValueError("a_rpc and b_rpc must be positive numbers")
                p["ratio"] = a / b
            except (ValueError, KeyError, TypeError) as e:
                print(f"pair_summary.py: {f}:{n}: not a pair line ({e})", file=sys.stderr)
                return 1
            if "group" not in p or "run" not in p:
                print(f"pair_summary.py: {f}:{n}: no run or group (an older pair.sh's line)", file=sys.stderr)
                return 1
            p["run_key"] = (real, p["run"])
            if (p["run_key"], p.get("pair")) in seen_pairs:
                print(f"pair_summary.py: {f}:{n}: pair {p.get('pair')} of run {p['run']} again", file=sys.stderr)
                return 1
            seen_pairs.add((p["run_key"], p.get("pair")))
            pairs.append(p)
    if not pairs:
        print("pair_summary.py: no pairs", file=sys.stderr)
        return 1

    ratios = [p["ratio"] for p in pairs]
    n = len(ratios)
    won = sum(r > 1 for r in ratios)
    runs = {}  # run -> group -> ratios, in file order
    for p in pairs:
        runs.setdefault(p["run_key"], {}).setdefault(p["group"], []).append(p["ratio"])

    print(f"A = {a_name}\nB = {b_name}")
    if what:
        print(what)
    print(f"{n} pairs" + (f" from {len(runs)} runs" if len(runs) > 1 else ""))
    print(
        f"median requests per proxy CPU-second: A {statistics.median(p['a_rpc'] for p in pairs):,.0f}, "
        f"B {statistics.median(p['b_rpc'] for p in pairs):,.0f}"
    )
    print(
        f"median of the pairs' ratios A/B: {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
        f"max {max(ratios):.3f}); A ahead in {won} of {n}"
    )
    by_start = {}
    for p in pairs:
        by_start.setdefault(p.get("started_first"), []).append(p["ratio"])
    if len(by_start) == 2 and None not in by_start:
        print(
            "median ratio by the side started first: "
            + ", ".join(f"{s} {statistics.median(v):.3f} ({len(v)} pairs)" for s, v in sorted(by_start.items()))
        )

    if len(runs) == 1:
        groups = list(next(iter(runs.values())).values())
        if len(groups) < MIN_GROUPS:
            print(f"interval: n/a ({len(groups)} process groups; {MIN_GROUPS} or more needed: --restart)")
        else:
            rng = random.Random(1)
            meds = sorted(
                statistics.median([r for g in rng.choices(groups, k=len(groups)) for r in g]) for _ in range(10000)
            )
            print(
                f"approximate 95 % interval of this run's median ratio (bootstrap of {len(groups)} process "
                f"groups; a run's own spread only, not the run-to-run one): {meds[250]:.3f}-{meds[9749]:.3f}"
            )
    else:
        # A run counts when its own median rests on MIN_GROUPS process groups or more.
        counted = [g for g in runs.values() if len(g) >= MIN_GROUPS]
        if len(counted) < len(runs):
            print(f"not counted: {len(runs) - len(counted)} runs of fewer than {MIN_GROUPS} process groups")
        medians = [statistics.median([r for g in groups.values() for r in g]) for groups in counted]
        print("run medians: " + ", ".join(f"{m:.3f}" for m in medians))
        k = len(medians)
        logs = [math.log(m) for m in medians]
        if k < 2 or statistics.stdev(logs) == 0:
            why = f"{k} runs counted" if k < 2 else "the run medians are all equal"
            print(f"t-interval: n/a ({why})")
        else:
            mean = statistics.fmean(logs)
            half = t975(k - 1) * statistics.stdev(logs) / math.sqrt(k)
            wins = sum(m > 1 for m in medians)
            decided = sum(m != 1 for m in medians)
            print(
                f"95 % t-interval of the ratio over {k} runs: {math.exp(mean - half):.3f}-"
                f"{math.exp(mean + half):.3f} (geometric mean {math.exp(mean):.3f}); A ahead in {wins} of {k} "
                f"runs, sign test (one-sided): p = {sign_p(wins, decided):.2g}"
            )
    # The kernel's share of the proxy's CPU (utime/stime ticks, 10 ms each: a guide, not a measure).
    if all("a_sys" in p and "b_sys" in p for p in pairs):
        print(
            f"median kernel share of proxy CPU: A {statistics.median(p['a_sys'] for p in pairs):.2f}, "
            f"B {statistics.median(p['b_sys'] for p in pairs):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
