#!/usr/bin/env python3
"""WebSocket backend for tests/integration/websocket_test.cpp (Debian python3-websockets).

Listens on 127.0.0.1 (kernel-chosen port) and prints "ready <port>" once it accepts.
  --mode ws      WebSocket server. /echo echoes every message (text or binary, any size);
                 the message "close-me" makes the server close with 4000 "asked". /forbidden
                 refuses the handshake with 403. --ping-interval S pings the client every S
                 seconds (0: never, so a silent tunnel stays silent).
  --mode raw101  a malicious backend: answers any request with a 101 nobody asked for, followed
                 by bytes that look like a second response.
  --mode evil    a malicious WebSocket backend (tests/integration/h2_websocket_test.cpp), by path:
                 /noconn 101 without Connection: upgrade; /wrongupgrade 101 naming another
                 protocol; /wrongaccept 101 with an accept for another key; /ok200 200 instead of
                 101; /forbidden 403 with a body; /err500 500; /flood a correct 101, then server
                 frames as fast as the socket takes them (for --flood-seconds); /eof a correct 101,
                 one text frame "bye", then close; anything else: a correct 101, then raw echo.
  --mode silent  accepts connections and never reads or writes (a TLS backend that never answers
                 the ClientHello).
Every mode but silent prints "request <path>" for each request head it reads.
"""
import argparse
import asyncio
import base64
import hashlib
import http
import sys
import time

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
    print(f"request {path}", flush=True)
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


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FLOOD_SECONDS = 10.0


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


async def evil(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        print(f"request {path}", flush=True)
        key = b""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip().encode()
        good = accept_for(key)
        ok = ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              f"Sec-WebSocket-Accept: {good}\r\n\r\n").encode()
        if path == "/noconn":
            writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {good}\r\n\r\n".encode())
        elif path == "/wrongupgrade":
            writer.write(f"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Accept: {good}\r\n\r\n".encode())
        elif path == "/wrongaccept":
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n").encode())
        elif path == "/ok200":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
        elif path == "/forbidden":
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
        elif path == "/err500":
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
        elif path == "/flood":
            writer.write(ok)
            frame = b"\x82\x7f" + (65536).to_bytes(8, "big") + b"x" * 65536
            until = time.monotonic() + FLOOD_SECONDS
            while time.monotonic() < until:
                writer.write(frame)
                await writer.drain()
        elif path == "/eof":
            writer.write(ok + b"\x81\x03bye")
        else:
            writer.write(ok)
            await writer.drain()
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        await writer.drain()
        if path not in ("/eof",):
            await asyncio.sleep(2)
    except (asyncio.IncompleteReadError, ConnectionError, IndexError):
        pass
    finally:
        writer.close()


async def silent(reader, writer):
    await asyncio.sleep(3600)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ws", "raw101", "evil", "silent"], default="ws")
    ap.add_argument("--ping-interval", type=float, default=0.2)
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    args = ap.parse_args()
    global FLOOD_SECONDS
    FLOOD_SECONDS = args.flood_seconds
    if args.mode == "raw101":
        server = await asyncio.start_server(raw101, "127.0.0.1", 0)
    elif args.mode == "evil":
        server = await asyncio.start_server(evil, "127.0.0.1", 0)
    elif args.mode == "silent":
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
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
