#!/usr/bin/env python3
"""Idle keep-alive TLS connections for bench/run.sh's memory scenario.

Opens N TLS connections to a loopback proxy (at most --parallel handshakes at a time). Each sends one
keep-alive request (GET --path, HTTP/1.1), reads the whole response (Content-Length framed), and then
stays open and idle. Once all N have completed their request it prints

  READY {"open": N, "seconds": ..., "failed": ...}

and holds them until --hold seconds have passed or SIGTERM/SIGINT arrives, then prints

  SUMMARY {"open_at_end": ..., "closed_by_server": ..., ...}

and exits. A connection the server closes while idle is counted (closed_by_server), not reopened.
Bounded: N <= 20000, loopback addresses only, the whole run ends after --ready-timeout + --hold
seconds (a SIGALRM backstop ends the process a few seconds later). stdlib only (asyncio + ssl).
"""
import argparse
import asyncio
import ipaddress
import json
import resource
import signal
import ssl
import sys
import time

MAX_CONNECTIONS = 20000


def emit(tag, obj):
    sys.stdout.write(tag + " " + json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if length:
        await reader.readexactly(length)
    return int(status)


async def main_async(a):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(a.parallel)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    conns = []
    st = {"failed": 0, "fail_kinds": {}, "non200": 0, "closed_by_server": 0}
    req = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode()

    async def one(i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(a.addr, a.port, ssl=ctx, server_hostname=a.sni or None), 20)
                w.write(req)
                await w.drain()
                code = await asyncio.wait_for(read_response(r), 20)
                if code != 200:
                    st["non200"] += 1
                conns.append((r, w))
            except Exception as e:  # counted, reported; the script decides
                st["failed"] += 1
                k = type(e).__name__
                st["fail_kinds"][k] = st["fail_kinds"].get(k, 0) + 1

    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(a.connections))), a.ready_timeout)
    emit("READY", {"open": len(conns), "failed": st["failed"], "fail_kinds": st["fail_kinds"],
                   "non200": st["non200"], "seconds": round(time.monotonic() - t0, 3)})

    async def watch(r):
        try:
            await r.read(1)  # returns only when the server closes (or sends something unasked)
        except Exception:
            pass
        st["closed_by_server"] += 1

    watchers = [asyncio.ensure_future(watch(r)) for r, _ in conns]
    try:
        await asyncio.wait_for(stop.wait(), a.hold)
    except asyncio.TimeoutError:
        pass
    for t in watchers:
        t.cancel()
    emit("SUMMARY", {"open_at_end": len(conns) - st["closed_by_server"], "closed_by_server": st["closed_by_server"],
                     "failed": st["failed"]})
    for _, w in conns:
        w.transport.abort()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--parallel", type=int, default=64, help="handshakes in flight at a time")
    p.add_argument("--path", default="/")
    p.add_argument("--host", default="app.example", help="Host header")
    p.add_argument("--sni", default="", help="SNI (default none)")
    p.add_argument("--hold", type=float, default=60, help="seconds to hold the connections after READY")
    p.add_argument("--ready-timeout", type=float, default=90)
    a = p.parse_args()
    if not ipaddress.ip_address(a.addr).is_loopback:
        sys.exit("idle_conns: loopback addresses only")
    if not 0 < a.connections <= MAX_CONNECTIONS:
        sys.exit(f"idle_conns: --connections must be 1..{MAX_CONNECTIONS}")
    need = a.connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("idle_conns: time limit"))
    signal.alarm(int(a.ready_timeout + a.hold + 10))
    asyncio.run(main_async(a))


if __name__ == "__main__":
    main()
