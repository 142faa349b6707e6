#!/usr/bin/env python3
"""WebSocket client for tests/integration/websocket_test.cpp (Debian python3-websockets).

Connects through phigate's https listener to wss://app.example:<port><path> (TCP to 127.0.0.1,
certificate checked against --ca). Prints one result line per step; exits 0 only when every
check held. Every wait is bounded.
  basic          echo of text and binary both ways, client ping answered, server pings, a 1 MiB
                 message, a server-initiated close (4000) and a client-initiated close (1000)
  many N FILE    opens N tunnels, echoes once on each, prints "opened N", waits for FILE to exist
                 (the test reloads phigate meanwhile), echoes again on each, prints "echoed K"
  idle           opens one tunnel, echoes once, prints "opened", then stays silent until the
                 tunnel is closed; prints "closed after <ms> ms"
"""
import argparse
import asyncio
import os
import resource
import ssl
import sys
import time

import websockets


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


async def connect(args, path, **kw):
    return await websockets.connect(f"wss://app.example:{args.port}{path}", host="127.0.0.1", port=args.port,
                                    ssl=context(args.ca), server_hostname="app.example", max_size=None,
                                    ping_interval=None, open_timeout=20, close_timeout=5, **kw)


async def basic(args):
    ws = await connect(args, "/echo")
    await ws.send("hello")
    assert await asyncio.wait_for(ws.recv(), 10) == "hello"
    blob = os.urandom(1 << 20)
    await ws.send(blob)
    got = await asyncio.wait_for(ws.recv(), 30)
    assert got == blob, f"1 MiB message came back as {len(got)} bytes"
    print("large ok", flush=True)
    pong = await ws.ping(b"p1")
    await asyncio.wait_for(pong, 10)
    print("ping ok", flush=True)
    await asyncio.sleep(0.5)  # the server pings every 0.2 s: those pongs cross the tunnel too
    for i in range(50):
        await ws.send(f"m{i}")
    for i in range(50):
        assert await asyncio.wait_for(ws.recv(), 10) == f"m{i}"
    await ws.send("close-me")
    try:
        await asyncio.wait_for(ws.recv(), 10)
        raise AssertionError("no close from the server")
    except websockets.ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 4000, f"server close: {e}"
    print("server close ok", flush=True)

    ws = await connect(args, "/echo")
    await ws.send(b"\x00\x01binary")
    assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\x01binary"
    await asyncio.wait_for(ws.close(code=1000, reason="bye"), 10)
    assert ws.close_code == 1000, f"client close answered with {ws.close_code}"
    print("client close ok", flush=True)
    print("ok basic", flush=True)


async def many(args):
    n = args.count
    sem = asyncio.Semaphore(100)  # bounded handshakes in flight

    async def open_one(i):
        async with sem:
            ws = await connect(args, "/echo")
            await ws.send(f"hi {i}")
            assert await asyncio.wait_for(ws.recv(), 30) == f"hi {i}"
            return ws

    conns = await asyncio.gather(*(open_one(i) for i in range(n)))
    print(f"opened {len(conns)}", flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(args.trigger):
        if time.monotonic() > deadline:
            print("no trigger", flush=True)
            return False
        await asyncio.sleep(0.01)

    async def echo_again(i, ws):
        try:
            await ws.send(f"after {i}")
            return await asyncio.wait_for(ws.recv(), 30) == f"after {i}"
        except websockets.ConnectionClosed:
            return False

    ok = await asyncio.gather(*(echo_again(i, ws) for i, ws in enumerate(conns)))
    print(f"echoed {sum(ok)}", flush=True)
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return sum(ok) == n


async def idle(args):
    ws = await connect(args, "/echo")
    await ws.send("hi")
    assert await asyncio.wait_for(ws.recv(), 10) == "hi"
    print("opened", flush=True)
    start = time.monotonic()
    try:
        await asyncio.wait_for(ws.recv(), args.wait)
        print("unexpected message", flush=True)
        return False
    except websockets.ConnectionClosed:
        print(f"closed after {int((time.monotonic() - start) * 1000)} ms", flush=True)
        return True
    except asyncio.TimeoutError:
        print("still open", flush=True)
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--wait", type=float, default=20)
    ap.add_argument("mode", choices=["basic", "many", "idle"])
    ap.add_argument("count", type=int, nargs="?", default=0)
    ap.add_argument("trigger", nargs="?", default="")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.mode == "basic":
        ok = asyncio.run(basic(args)) is None
    elif args.mode == "many":
        ok = asyncio.run(many(args))
    else:
        ok = asyncio.run(idle(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
