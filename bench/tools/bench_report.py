#!/usr/bin/env python3
"""Table and JSON for bench/run.sh.

Input: --runs (JSON lines, one per measured run: scenario, variant, target, round and the figures),
--notes (JSON lines: facts checked during the run), --meta (settings, versions, host), optionally
--slowloris-json (bench/slowloris.sh's output) and --ingress-json (bench/ingress_scale.sh --json).
Each figure is the median over the rounds (each figure on its own; lower middle for an even count),
with the min-max of the scenario's main figure. Prints one table with the phigate/nginx and
phigate/haproxy ratios per scenario and the targets of bench/README.md (met / not met), and writes
everything to --out.
"""
import argparse
import json
import sys

TARGETS = ("phigate", "nginx", "haproxy")


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[(len(xs) - 1) // 2] if xs else None


def load_lines(path):
    out = []
    if path:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def per_core(run, scale=1.0, count="requests"):
    """Work done per proxy CPU-second (requests, handshakes or MB)."""
    c = run.get("cpu_s") or 0
    n = run.get(count)
    return n * scale / c if c > 0 and n is not None else None


def summarise(runs):
    """(scenario, variant, target) -> {metric: median, metric_min, metric_max, rounds, errors}."""
    groups = {}
    for r in runs:
        groups.setdefault((r["scenario"], r.get("variant", ""), r["target"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        scen = key[0]
        for r in rs:  # derived per-run figures
            if scen in ("keepalive", "handshake", "mtls", "mtls_handshake", "audit", "backend", "health",
                        "backendtls", "regex", "auth", "ratelimit", "extauth"):
                r["per_core"] = per_core(r)
            elif scen == "resume":
                r["per_core"] = per_core(r, count="connections")
            elif scen == "bigbody":
                r["per_core"] = per_core(r, scale=1.048576)
        s = {"rounds": len(rs), "errors": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in rs)}
        names = set()
        for r in rs:
            names.update(k for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        for k in sorted(names - {"round"}):
            vals = [r.get(k) for r in rs if r.get(k) is not None]
            if vals:
                s[k] = med(vals)
                s[k + "_min"] = min(vals)
                s[k + "_max"] = max(vals)
        out[key] = s
    return out


def fmt(v, nd=None):
    if v is None:
        return "-"
    if nd is None:
        nd = 0 if abs(v) >= 1000 else (1 if abs(v) >= 10 else 2)
    return f"{v:,.{nd}f}".replace(",", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--notes")
    ap.add_argument("--out", required=True)
    ap.add_argument("--slowloris-json")
    ap.add_argument("--ingress-json")
    a = ap.parse_args()
    meta = json.load(open(a.meta))
    runs = load_lines(a.runs)
    notes = load_lines(a.notes)
    S = summarise(runs)
    targets = [t for t in TARGETS if any(k[2] == t for k in S)]

    def get(scen, var, t, m):
        return S.get((scen, var, t), {}).get(m)

    rows = []  # (label, metric key, scen, var, unit, higher_is_better, range?)

    def row(label, scen, var, m, better="higher", rng=False):
        if any((scen, var, t) in S for t in targets):
            rows.append((label, scen, var, m, better, rng))

    row("1 keep-alive req/s", "keepalive", "", "rps", rng=True)
    row("1 keep-alive req/s per core", "keepalive", "", "per_core")
    row("1 keep-alive p50 ms", "keepalive", "", "p50_ms", "lower")
    row("1 keep-alive p99 ms", "keepalive", "", "p99_ms", "lower")
    row("1 keep-alive proxy CPU %", "keepalive", "", "cpu_pct", "info")
    for kind, name in (("ec", "ECDSA"), ("rsa", "RSA")):
        row(f"2 full hs/s {name}", "handshake", kind, "rps", rng=True)
        row(f"2 full hs/s {name} per core", "handshake", kind, "per_core")
        row(f"2 full hs {name} p99 ms", "handshake", kind, "p99_ms", "lower")
        row(f"2 full hs {name} proxy CPU %", "handshake", kind, "cpu_pct", "info")
    row("3 resumed hs/s (s_time -reuse)", "resume", "reuse", "hs_s", rng=True)
    row("3 resumed hs/s per core", "resume", "reuse", "per_core")
    row("3 full hs/s (s_time -new)", "resume", "new", "hs_s", rng=True)
    row("3 full hs/s (s_time) per core", "resume", "new", "per_core")
    row("4 1 MiB download MB/s", "bigbody", "down", "mb_s", rng=True)
    row("4 1 MiB download MB/s per core", "bigbody", "down", "per_core")
    row("4 1 MiB upload MB/s", "bigbody", "up", "mb_s", rng=True)
    row("4 1 MiB upload MB/s per core", "bigbody", "up", "per_core")
    row("5 RSS idle KiB", "memory", "", "rss_idle_kib", "lower")
    row("5 KiB per idle TLS conn", "memory", "", "kib_per_conn", "lower", rng=True)
    row("8 no mTLS req/s (via client HAProxy)", "mtls", "plain", "rps", rng=True)
    row("8 mTLS req/s (via client HAProxy)", "mtls", "mtls", "rps", rng=True)
    row("8 no mTLS req/s per core", "mtls", "plain", "per_core")
    row("8 mTLS req/s per core", "mtls", "mtls", "per_core")
    row("8 full hs/s no client cert", "mtls_handshake", "plain", "rps", rng=True)
    row("8 full hs/s client cert", "mtls_handshake", "mtls", "rps", rng=True)
    row("8 full hs/s no client cert per core", "mtls_handshake", "plain", "per_core")
    row("8 full hs/s client cert per core", "mtls_handshake", "mtls", "per_core")
    row("A log off req/s", "audit", "off", "rps", rng=True)
    row("A log on req/s (phigate: audit)", "audit", "on", "rps", rng=True)
    row("A log off req/s per core", "audit", "off", "per_core")
    row("A log on req/s per core", "audit", "on", "per_core")
    row("H checks off req/s", "health", "off", "rps", rng=True)
    row("H 5000 checked endpoints req/s (nginx: no checks)", "health", "on", "rps", rng=True)
    row("H checks off req/s per core", "health", "off", "per_core")
    row("H checks on req/s per core", "health", "on", "per_core")
    row("H checks on p99 ms", "health", "on", "p99_ms", "lower")
    row("H checks on: idle proxy CPU % (no traffic)", "health", "on", "idle_cpu_pct", "lower")
    row("H probes/s seen by the endpoints", "health", "on", "pool_probes_per_s", "info")
    row("T plain to backend req/s", "backendtls", "off", "rps", rng=True)
    row("T TLS to backend (verified) req/s", "backendtls", "on", "rps", rng=True)
    row("T plain to backend req/s per core", "backendtls", "off", "per_core")
    row("T TLS to backend req/s per core", "backendtls", "on", "per_core")
    row("T TLS to backend p99 ms", "backendtls", "on", "p99_ms", "lower")
    row("T TLS backend conns per 1k req", "backendtls", "on", "backend_conns_per_1k", "info")
    row("T TLS backend CPU %", "backendtls", "on", "backend_cpu_pct", "info")
    row("R 100 prefix locations req/s", "regex", "prefix", "rps", rng=True)
    row("R 100 regex locations + rewrite req/s", "regex", "regex", "rps", rng=True)
    row("R prefix req/s per core", "regex", "prefix", "per_core")
    row("R regex + rewrite req/s per core", "regex", "regex", "per_core")
    row("R regex + rewrite p99 ms", "regex", "regex", "p99_ms", "lower")
    row("B Ingress, no auth req/s", "auth", "off", "rps", rng=True)
    row("B basic auth (cached) req/s", "auth", "on", "rps", rng=True)
    row("B no auth req/s per core", "auth", "off", "per_core")
    row("B basic auth req/s per core", "auth", "on", "per_core")
    row("B basic auth p99 ms", "auth", "on", "p99_ms", "lower")
    row("L Ingress, no limit req/s", "ratelimit", "off", "rps", rng=True)
    row("L limit-rps not reached req/s", "ratelimit", "on", "rps", rng=True)
    row("L no limit req/s per core", "ratelimit", "off", "per_core")
    row("L rate limit req/s per core", "ratelimit", "on", "per_core")
    row("L rate limit p99 ms", "ratelimit", "on", "p99_ms", "lower")
    row("X Ingress, no ext auth req/s (HAProxy: n/a)", "extauth", "off", "rps", rng=True)
    row("X external auth (cache hit) req/s", "extauth", "on", "rps", rng=True)
    row("X no ext auth req/s per core", "extauth", "off", "per_core")
    row("X external auth req/s per core", "extauth", "on", "per_core")
    row("X external auth p99 ms", "extauth", "on", "p99_ms", "lower")

    # Derived per-target ratios (log on/off, mTLS/plain).
    derived = {}
    for t in targets:
        d = {}
        for scen, on, off, m in (("audit", "on", "off", "rps"), ("audit", "on", "off", "per_core"),
                                 ("mtls", "mtls", "plain", "rps"), ("mtls", "mtls", "plain", "per_core"),
                                 ("mtls_handshake", "mtls", "plain", "per_core"),
                                 ("mtls_handshake", "mtls", "plain", "rps"),
                                 ("health", "on", "off", "rps"), ("health", "on", "off", "per_core"),
                                 ("backendtls", "on", "off", "rps"), ("backendtls", "on", "off", "per_core"),
                                 ("regex", "regex", "prefix", "rps"), ("regex", "regex", "prefix", "per_core"),
                                 ("auth", "on", "off", "rps"), ("auth", "on", "off", "per_core"),
                                 ("ratelimit", "on", "off", "rps"), ("ratelimit", "on", "off", "per_core"),
                                 ("extauth", "on", "off", "rps"), ("extauth", "on", "off", "per_core")):
            x, y = get(scen, on, t, m), get(scen, off, t, m)
            if x is not None and y:
                d[f"{scen}_{on}/{off}_{m}"] = x / y
        derived[t] = d

    def ratio(scen, var, m, o):
        x, y = get(scen, var, "phigate", m), get(scen, var, o, m)
        return x / y if x is not None and y else None

    # --- table ---
    lw = max(len(r[0]) for r in rows) if rows else 20
    cols = [t for t in targets]
    hdr = f"{'scenario / figure':<{lw}} " + " ".join(f"{t:>22}" for t in cols)
    if "phigate" in targets:
        hdr += " " + " ".join(f"{'phigate/' + o:>15}" for o in ("nginx", "haproxy") if o in targets)
    print()
    print(hdr)
    print("-" * len(hdr))
    table = []
    for label, scen, var, m, better, rng in rows:
        cells, jrow = [], {"figure": label, "scenario": scen, "variant": var, "metric": m, "better": better}
        for t in cols:
            v = get(scen, var, t, m)
            c = fmt(v)
            if rng and v is not None:
                c += f" [{fmt(get(scen, var, t, m + '_min'))}-{fmt(get(scen, var, t, m + '_max'))}]"
            cells.append(f"{c:>22}")
            jrow[t] = v
            if rng:
                jrow[t + "_min"], jrow[t + "_max"] = get(scen, var, t, m + "_min"), get(scen, var, t, m + "_max")
        line = f"{label:<{lw}} " + " ".join(cells)
        if "phigate" in targets:
            for o in ("nginx", "haproxy"):
                if o in targets:
                    r = ratio(scen, var, m, o)
                    jrow["phigate/" + o] = r
                    line += f" {(fmt(r, 2) + 'x') if r is not None else '-':>15}"
        print(line)
        table.append(jrow)
    for t in targets:
        if derived[t]:
            print(f"{t}: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(derived[t].items())))
    st = meta["settings"]
    print(f"(median of {st['repeat']} round(s) x {st['duration_s']} s per figure, [min-max] of the main figure;"
          f" {st['workers']} proxy worker(s) on CPUs {st['proxy_cpus'] or 'any'}, load generators + backend on CPUs"
          f" {st['load_cpus'] or 'any'}; per core = work per proxy CPU-second (utime+stime from /proc, nginx"
          f" workers included); keep-alive wrk -t{st['wrk_threads']} -c{st['connections']}, handshakes"
          f" -c{st['hs_connections']} with Connection: close, 1 MiB bodies -c{st['big_connections']}, memory"
          f" {st['mem_connections']} idle TLS connections; ratios > 1 favour phigate except for ms, MiB and KiB rows)")

    # --- targets (bench/README.md) ---
    verdicts = []

    def verdict(name, value, ok, detail):
        verdicts.append({"target": name, "value": value, "met": ok, "detail": detail})

    if "phigate" in targets:
        for o in ("nginx", "haproxy"):
            if o not in targets:
                continue
            r_pc, r_raw = ratio("keepalive", "", "per_core", o), ratio("keepalive", "", "rps", o)
            if r_pc is not None:
                verdict(f"keep-alive req/s >= 1.3x {o} (per core)", r_pc, r_pc >= 1.3,
                        f"per core {r_pc:.2f}x, raw req/s {r_raw:.2f}x")
            p = ratio("keepalive", "", "p99_ms", o)
            if p is not None:
                verdict(f"keep-alive p99 no worse than {o}", p, p <= 1.0, f"p99 ratio {p:.2f}x (<= 1.00)")
        r = ratio("handshake", "ec", "per_core", "nginx")
        if r is not None:
            verdict("full ECDSA handshakes per proxy CPU-second >= 1.1x nginx", r, r >= 1.1,
                    f"{r:.2f}x (RSA: {fmt(ratio('handshake', 'rsa', 'per_core', 'nginx'), 2)}x)")
        for d in ("down", "up"):
            r, rr = ratio("bigbody", d, "per_core", "nginx"), ratio("bigbody", d, "mb_s", "nginx")
            if r is not None:
                verdict(f"1 MiB {'download' if d == 'down' else 'upload'} throughput >= nginx (per core)", r, r >= 1.0,
                        f"per core {r:.2f}x, raw MB/s {rr:.2f}x")
        r = ratio("memory", "", "kib_per_conn", "nginx")
        if r is not None:
            verdict("memory per idle TLS connection <= 0.5x nginx", r, r <= 0.5,
                    f"{fmt(get('memory', '', 'phigate', 'kib_per_conn'))} KiB vs {fmt(get('memory', '', 'nginx', 'kib_per_conn'))} KiB: {r:.2f}x")
        d = derived.get("phigate", {})
        if "audit_on/off_per_core" in d:
            c = d["audit_on/off_per_core"]
            verdict("audit log on costs <= 10% of keep-alive req/s (per core)", c, c >= 0.90,
                    f"on/off per core {c:.3f}, raw req/s {d.get('audit_on/off_rps', 0):.3f}")
        if "mtls_mtls/plain_per_core" in d:
            c = d["mtls_mtls/plain_per_core"]
            verdict("mTLS adds only the handshake cost (keep-alive req/s per core within 5%)", c, c >= 0.95,
                    f"mTLS/plain per core {c:.3f}, raw {d.get('mtls_mtls/plain_rps', 0):.3f};"
                    f" full handshakes with/without client cert per core {d.get('mtls_handshake_mtls/plain_per_core', 0):.3f}")

    extra = {}
    if a.slowloris_json:
        sl = json.load(open(a.slowloris_json))
        extra["slowloris"] = sl
        p = sl.get("targets", {}).get("phigate")
        if p:
            base, att = p["baseline"]["p99_ms"], p["attack"]["p99_ms"]
            worst = p["p99_delta_ms"]["worst"]
            print(f"6 slowloris ({sl['settings']['slowloris_connections']} conns): p99 baseline/attack "
                  + ", ".join(f"{t} {fmt(sl['targets'][t]['baseline']['p99_ms'])}/{fmt(sl['targets'][t]['attack']['p99_ms'])} ms"
                              for t in targets if t in sl["targets"]) + f" (from {a.slowloris_json})")
            ok = p.get("verdict", {}).get("result") == "PASS" and att <= base * 1.3 + 2
            verdict("slowloris: normal traffic p99 unchanged within noise", att / base if base else None, ok,
                    f"phigate p99 {fmt(base)} -> {fmt(att)} ms (median), worst round delta {fmt(worst)} ms;"
                    " within noise = attack p99 <= 1.3x baseline + 2 ms and slowloris.sh PASS")
    if a.ingress_json:
        ing = json.load(open(a.ingress_json))
        extra["ingress_scale"] = ing
        for r in ing.get("sizes", []):
            print(f"7 ingress-scale {r['ingresses']} Ingresses: {fmt(r['rps'])} req/s, p99 {r['p99']},"
                  f" load {r['build_ms']} ms, reload {r['reload_ms']} ms, peak {r['peak_mib']} MiB (phigate only)")

    if verdicts:
        print()
        print("targets (bench/README.md):")
        for v in verdicts:
            print(f"  {'MET    ' if v['met'] else 'NOT MET'}  {v['target']}: {v['detail']}")

    # --- warnings ---
    warn = []
    if meta["host"]["busy_pct_before_start"] >= 10:
        warn.append(f"the machine was {meta['host']['busy_pct_before_start']}% busy before the benchmark started: noisy")
    for (scen, var, t), s in sorted(S.items()):
        if s.get("errors"):
            warn.append(f"{scen}/{var or '-'} {t}: {s['errors']} errors (non-2xx or socket errors)")
        if s.get("load_cpus_busy_pct", 0) >= 90 and s.get("cpu_pct", 100) < 85 and scen not in ("memory", "backend"):
            warn.append(f"NOTE {scen}/{var or '-'} {t}: load CPUs {s['load_cpus_busy_pct']:.0f}% busy, proxy {s['cpu_pct']:.0f}%:"
                        " the load side limits the raw rate; compare per core")
        pb, cp = s.get("proxy_cpus_task_busy_pct"), s.get("cpu_pct")
        ncpu = meta["settings"].get("proxy_ncpus", 1) or 1
        if pb is not None and cp is not None and pb - cp / ncpu >= 15 and scen not in ("memory", "backend"):
            warn.append(f"{scen}/{var or '-'} {t}: {pb - cp / ncpu:.0f}% of the proxy CPUs went to other tasks: noisy")
        rng = (s.get("rps_min"), s.get("rps_max"))
        if rng[0] and rng[1] and rng[1] / rng[0] > 1.3:
            warn.append(f"{scen}/{var or '-'} {t}: req/s varied {rng[0]:.0f}-{rng[1]:.0f} over rounds (> 30%): disturbed runs")
    for n in notes:
        if n.get("scenario") == "audit" and n.get("target") == "phigate" and n.get("verify_exit") != 0:
            warn.append(f"phigate audit verify failed (exit {n.get('verify_exit')}): {n.get('verify_output')}")
        if n.get("scenario") == "health" and n.get("checks") == "failed":
            warn.append(f"health: {n.get('target')}'s active checks were not seen running: {n.get('detail')}")
        if n.get("scenario") == "auth" and n.get("cache") == "missed":
            warn.append(f"auth: phigate verified {n.get('auth_verified')} credentials during a measured run (round"
                        f" {n.get('round')}): not only the cached path was measured")
        if n.get("scenario") == "extauth" and n.get("cache") == "missed":
            warn.append(f"extauth: the auth service got {n.get('auth_service_requests')} requests from {n.get('target')}"
                        f" during a measured run (round {n.get('round')}): not only cache hits were measured")
        if n.get("scenario") == "extauth" and str(n.get("result", "")).startswith("n/a"):
            warn.append(f"NOTE extauth {n.get('target')}: {n.get('result')}")
        if n.get("scenario") == "ratelimit" and n.get("limit") == "reached":
            warn.append(f"ratelimit: {n.get('target')} refused {n.get('refused')} requests in round {n.get('round')}:"
                        " the limit was reached")
        if n.get("scenario") == "backendtls" and n.get("reuse") == "poor":
            warn.append(f"backendtls: {n.get('target')} opened {n.get('backend_conns')} backend connections for"
                        f" {n.get('backend_requests')} requests: it measures handshakes, not keep-alive")
    for (scen, var, t), s in S.items():
        if scen == "handshake" and t == "phigate" and s.get("phigate_resumed"):
            warn.append(f"handshake/{var}: phigate resumed {s['phigate_resumed']} sessions: not all handshakes were full")
        if scen == "resume" and var == "reuse" and t == "phigate":
            acc, res = s.get("phigate_accepted"), s.get("phigate_resumed")
            if acc and res is not None and res < 0.9 * acc:
                warn.append(f"resume: phigate resumed only {res} of {acc} connections")
    if warn:
        print()
        for w in warn:
            print(("" if w.startswith("NOTE") else "WARNING: ") + w)

    doc = dict(meta)
    doc.update({"table": table, "targets_met": verdicts, "derived_ratios": derived,
                "summary": {f"{k[0]}/{k[1] or '-'}/{k[2]}": v for k, v in sorted(S.items())},
                "notes": notes, "runs": runs, "warnings": warn})
    doc.update(extra)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print()
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
