#!/usr/bin/env python3
"""Table and JSON for bench/slowloris.sh: reads the per-run JSON lines it wrote, prints the summary,
writes bench/results/slowloris-<stamp>.json. stdlib only."""
import argparse
import json
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, nd=2):
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", required=True, help="JSON object: stamp, git, host, versions, settings")
    ap.add_argument("--limit-ms", type=float, default=100)
    a = ap.parse_args()
    meta = json.loads(a.settings)
    runs = [json.loads(line) for line in open(a.runs) if line.strip()]
    targets = list(dict.fromkeys(r["target"] for r in runs))
    n_slow = meta["settings"]["slowloris_connections"]

    summary = {}
    for t in targets:
        base = {r["round"]: r for r in runs if r["target"] == t and r["phase"] == "baseline"}
        att = {r["round"]: r for r in runs if r["target"] == t and r["phase"] == "attack"}
        rounds = sorted(set(base) & set(att))
        deltas = [att[i]["p99_ms"] - base[i]["p99_ms"] for i in rounds]
        win = [att[i]["slowloris"].get("window") or {} for i in rounds]
        summ = [att[i]["slowloris"].get("summary") or {} for i in rounds]
        s = {
            "baseline": {"rps": med([base[i]["rps"] for i in rounds]), "p50_ms": med([base[i]["p50_ms"] for i in rounds]),
                         "p99_ms": med([base[i]["p99_ms"] for i in rounds]),
                         "max_ms": max(base[i]["max_ms"] for i in rounds),
                         "errors": sum(base[i]["non2xx"] + base[i]["socket_errors"] for i in rounds),
                         "proxy_cpu_pct": med([base[i]["proxy_cpu_pct"] for i in rounds]),
                         "rss_mib": med([base[i]["rss_mib"] for i in rounds]),
                         "load_cpus_busy_pct": med([base[i]["load_cpus_busy_pct"] for i in rounds])},
            "attack": {"rps": med([att[i]["rps"] for i in rounds]), "p50_ms": med([att[i]["p50_ms"] for i in rounds]),
                       "p99_ms": med([att[i]["p99_ms"] for i in rounds]),
                       "max_ms": max(att[i]["max_ms"] for i in rounds),
                       "errors": sum(att[i]["non2xx"] + att[i]["socket_errors"] for i in rounds),
                       "proxy_cpu_pct": med([att[i]["proxy_cpu_pct"] for i in rounds]),
                       "rss_mib": med([att[i]["rss_mib"] for i in rounds]),
                       "load_cpus_busy_pct": med([att[i]["load_cpus_busy_pct"] for i in rounds])},
            "p99_delta_ms": {"per_round": [round(d, 3) for d in deltas], "median": med(deltas),
                             "worst": max(deltas) if deltas else None},
            "slowloris": {
                # lowest number of slowloris connections open at any moment of any wrk run
                "min_open_during_wrk": min((w.get("min_open", -1) for w in win), default=None),
                "closed_by_server_during_wrk": [w.get("closed_by_server") for w in win],
                "reopened_during_wrk": [w.get("reopened") for w in win],
                "errors_during_wrk": [w.get("errors") for w in win],
                "ready_after_s": [(x.get("ready_after_s")) for x in summ],
                "closed_by_server_total": [x.get("closed_by_server") for x in summ],
                "server_responses": [x.get("server_responses") for x in summ],
                "client_cpu_s_during_wrk": [att[i]["slowloris"].get("client_cpu_s_during_wrk") for i in rounds],
                "estab_mid_wrk_incl_wrk": [att[i]["slowloris"].get("estab_mid_wrk_incl_wrk") for i in rounds],
            },
        }
        if t == "phigate":
            s["slowloris"]["phigate_shed_during_attack"] = [att[i].get("phigate_shed_during_attack") for i in rounds]
        summary[t] = s

    # --- table ---
    hdr = ("target", "base req/s", "base p99", "atk req/s", "atk p99", "delta p99", "worst dlt", "atk max",
           "errors", "min open", "closed", "CPU% atk", "RSS atk", "load% b/a")
    w = (8, 11, 9, 10, 9, 10, 10, 9, 7, 10, 7, 9, 8, 10)
    line = lambda cols: " ".join(str(c).rjust(n) if i else str(c).ljust(n) for i, (c, n) in enumerate(zip(cols, w)))
    print()
    print(line(hdr))
    for t in targets:
        s = summary[t]
        sl = s["slowloris"]
        closed = sum(x or 0 for x in sl["closed_by_server_during_wrk"])
        print(line((t, fmt(s["baseline"]["rps"]), fmt(s["baseline"]["p99_ms"]), fmt(s["attack"]["rps"]),
                    fmt(s["attack"]["p99_ms"]), fmt(s["p99_delta_ms"]["median"]), fmt(s["p99_delta_ms"]["worst"]),
                    fmt(s["attack"]["max_ms"]), s["baseline"]["errors"] + s["attack"]["errors"],
                    f"{sl['min_open_during_wrk']}/{n_slow}", closed, fmt(s["attack"]["proxy_cpu_pct"], 1),
                    fmt(s["attack"]["rss_mib"], 1),
                    f"{s['baseline']['load_cpus_busy_pct']:.0f}/{s['attack']['load_cpus_busy_pct']:.0f}")))
    st = meta["settings"]
    print(f"(median of {st['repeat']} round(s) x {st['duration_s']}s wrk -t1 -c{st['connections']} keep-alive HTTPS per phase;"
          f" attack = {n_slow} slowloris TLS connections held open, one header line every 5-10 s;"
          f" latencies in ms; delta p99 = attack p99 - baseline p99 of the same round (median / worst round);"
          f" atk max = wrk's max latency over the attack runs; errors = non-2xx + socket errors, both phases;"
          f" min open = fewest slowloris connections open during any wrk run; closed = slowloris connections the"
          f" proxy closed during the wrk runs (reopened at once); CPU% and RSS MiB of the proxy under attack;"
          f" load% b/a = busy share of the wrk+backend+slowloris CPUs, baseline/attack;"
          f" proxies on CPUs {st['proxy_cpus'] or 'any'}, wrk+backend+slowloris client on CPUs {st['load_cpus'] or 'any'})")

    ratios = {}
    if "phigate" in summary:
        p = summary["phigate"]
        print()
        for o in ("nginx", "haproxy"):
            if o not in summary:
                continue
            q = summary[o]
            r = {
                "attack_p99": p["attack"]["p99_ms"] / q["attack"]["p99_ms"] if q["attack"]["p99_ms"] else None,
                "attack_rps": p["attack"]["rps"] / q["attack"]["rps"] if q["attack"]["rps"] else None,
                "baseline_p99": p["baseline"]["p99_ms"] / q["baseline"]["p99_ms"] if q["baseline"]["p99_ms"] else None,
                "baseline_rps": p["baseline"]["rps"] / q["baseline"]["rps"] if q["baseline"]["rps"] else None,
            }
            ratios[f"phigate/{o}"] = r
            print(f"phigate/{o:<8} under attack: p99 {fmt(r['attack_p99'])}x (lower is better), req/s {fmt(r['attack_rps'])}x"
                  f"   |   baseline: p99 {fmt(r['baseline_p99'])}x, req/s {fmt(r['baseline_rps'])}x")
        worst = p["p99_delta_ms"]["worst"]
        ok_delay = worst is not None and worst <= a.limit_ms
        ok_err = p["attack"]["errors"] == 0
        ok_held = (p["slowloris"]["min_open_during_wrk"] or 0) > 0
        verdict = "PASS" if ok_delay and ok_err else "FAIL"
        why = [f"worst-round p99 delta {fmt(worst)} ms {'<=' if ok_delay else '>'} {a.limit_ms:g} ms"]
        why.append("no errors in the normal traffic" if ok_err else f"{p['attack']['errors']} errors in the normal traffic")
        print()
        print(f"{verdict}: phigate, {n_slow} slowloris connections: {'; '.join(why)}")
        if not ok_held:
            print("WARNING: no slowloris connection was open during phigate's wrk runs: the attack did not hold")
        summary["phigate"]["verdict"] = {"result": verdict, "limit_ms": a.limit_ms, "worst_delta_ms": worst,
                                         "errors": p["attack"]["errors"]}
    for t in targets:
        sl = summary[t]["slowloris"]
        if sl["min_open_during_wrk"] is not None and sl["min_open_during_wrk"] < n_slow:
            print(f"NOTE: {t}: as few as {sl['min_open_during_wrk']}/{n_slow} slowloris connections were open during"
                  f" a wrk run (closed by the proxy during wrk: {sl['closed_by_server_during_wrk']}; the client"
                  f" reopens them at once)")
        if summary[t]["attack"]["load_cpus_busy_pct"] >= 95 and summary[t]["attack"]["proxy_cpu_pct"] < 85:
            print(f"NOTE: {t}: under attack the load CPUs were {summary[t]['attack']['load_cpus_busy_pct']:.0f}% busy"
                  f" (slowloris client CPU {sl['client_cpu_s_during_wrk']} s per wrk run) while the proxy used only"
                  f" {summary[t]['attack']['proxy_cpu_pct']:.0f}% CPU: the load side, not the proxy, limits this run")
        if summary[t]["baseline"]["errors"] + summary[t]["attack"]["errors"]:
            print(f"WARNING: {t} had errors in the normal traffic (non-2xx or socket errors); see --keep-tmp wrk output")
    if meta["host"]["busy_pct_before_start"] >= 10:
        print(f"WARNING: the machine was {meta['host']['busy_pct_before_start']}% busy before the benchmark started:"
              " results are noisy")

    doc = dict(meta)
    doc.update({"targets": summary, "ratios": ratios, "runs": runs})
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print()
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
