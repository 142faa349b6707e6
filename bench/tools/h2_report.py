#!/usr/bin/env python3
"""Table and JSON for bench/h2.sh: reads the per-run JSON lines it wrote (one per target, h2load -m
value and round), prints medians with [min-max], requests per proxy CPU-second and the
phigate/nginx, phigate/haproxy ratios, writes bench/results/h2-<stamp>.json. stdlib only."""
import argparse
import json
import statistics


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", required=True, help="JSON object: stamp, git, host, versions, settings")
    a = ap.parse_args()
    meta = json.loads(a.settings)
    runs = [json.loads(line) for line in open(a.runs) if line.strip()]
    targets = list(dict.fromkeys(r["target"] for r in runs))
    streams = sorted({r["streams"] for r in runs})

    summary = {}
    for m in streams:
        for t in targets:
            rs = [r for r in runs if r["target"] == t and r["streams"] == m]
            for r in rs:
                r["rps_per_cpu_s"] = r["requests"] / r["proxy_cpu_s"] if r["proxy_cpu_s"] > 0 else None
            summary.setdefault(str(m), {})[t] = {
                "rps": med([r["rps"] for r in rs]),
                "rps_min": min(r["rps"] for r in rs),
                "rps_max": max(r["rps"] for r in rs),
                "p99_ms": med([r["p99_ms"] for r in rs]),
                "p50_ms": med([r["p50_ms"] for r in rs]),
                "rps_per_cpu_s": med([r["rps_per_cpu_s"] for r in rs]),
                "proxy_cpu_pct": med([r["proxy_cpu_pct"] for r in rs]),
                "failed": sum(r["failed"] for r in rs),
                "non2xx": sum(max(0, r["non2xx"]) for r in rs),
                "rounds": len(rs),
            }

    cols = targets + [f"phigate/{t}" for t in targets if t != "phigate" and "phigate" in targets]
    lines = [f"{'figure':<34}" + "".join(f"{c:>22}" for c in cols), "-" * (34 + 22 * len(cols))]
    rows = [("req/s", "rps", True), ("req/s per proxy CPU-second", "rps_per_cpu_s", False),
            ("p50 ms", "p50_ms", False), ("p99 ms", "p99_ms", False), ("proxy CPU %", "proxy_cpu_pct", False),
            ("failed + errored + timeout", "failed", False), ("non-2xx", "non2xx", False)]
    for m in streams:
        s = summary[str(m)]
        for label, key, rng in rows:
            cells = []
            for t in targets:
                v = s[t][key]
                cell = fmt(v)
                if rng:
                    cell += f" [{fmt(s[t]['rps_min'])}-{fmt(s[t]['rps_max'])}]"
                cells.append(cell)
            for t in targets:
                if t == "phigate" or "phigate" not in targets:
                    continue
                p, o = s["phigate"][key], s[t][key]
                cells.append(f"{p / o:.2f}x" if p is not None and o else "-")
            lines.append(f"{'-m ' + str(m) + ' ' + label:<34}" + "".join(f"{c:>22}" for c in cells))
    st = meta["settings"]
    lines.append(
        f"(median of {st['repeat']} round(s) x {st['duration_s']} s; h2load -t1 -c{st['clients']} -m N over TLS + ALPN h2; "
        f"{st['workers']} proxy worker(s) on CPUs {st['proxy_cpus'] or 'any'}, h2load + backend on CPUs "
        f"{st['load_cpus'] or 'any'}; per proxy CPU-second = requests / (utime+stime from /proc, nginx workers "
        f"included); p99 from h2load's per-request log; ratios > 1 favour phigate except for ms rows)")
    print("\n".join(lines))
    meta["summary"] = summary
    meta["runs"] = runs
    meta["table"] = lines
    with open(a.out, "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
