#!/usr/bin/env python3
"""WebSocket backend for tests/integration/websocket_test.cpp (Debian python3-websockets).

Listens on 127.0.0.1 (kernel-chosen port) and prints "ready <port>" once it accepts.
  --mode ws      WebSocket server. /echo echoes every message (text or binary, any size);
                 the message "close-me" makes the server close with 4000 "asked". /forbidden
                 refuses the handshake with 403. --ping-interval S pings the client every S
                 seconds (0: never, so a silent tunnel stays silent).
  --mode raw101  a malicious backend: answers any request with a 101 nobody asked for, followed
                 by bytes that look like a second response.
"""
import argparse
import asyncio
import http
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            if msg == "close-me":
                await ws.close(code=4000, reason="asked")
                return
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def refuse(path, headers):
    if path.startswith("/forbidden"):
        return http.HTTPStatus.FORBIDDEN, [("Content-Length", "0")], b""
    return None


async def raw101(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        del head
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
        await writer.drain()
        await asyncio.sleep(5)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ws", "raw101"], default="ws")
    ap.add_argument("--ping-interval", type=float, default=0.2)
    args = ap.parse_args()
    if args.mode == "raw101":
        server = await asyncio.start_server(raw101, "127.0.0.1", 0)
    else:
        server = await websockets.serve(echo, "127.0.0.1", 0, max_size=None, process_request=refuse,
                                        ping_interval=args.ping_interval or None, ping_timeout=None)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    await asyncio.Future()  # until killed by the test


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
