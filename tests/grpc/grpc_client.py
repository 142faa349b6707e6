#!/usr/bin/python3
"""A small gRPC-over-HTTP/2 client for integration tests (python3-h2 4.1, Debian).

One call: request head, messages (gRPC length-prefixed framing, opaque payloads), then prints one
JSON object: status, response headers, messages, trailers, whether the response was trailers-only,
and the RST_STREAM code if the stream was reset. --bidi sends each message only after the previous
one was echoed (a real bidirectional exchange). Loopback only; every wait is bounded.
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events


def frame(payload: bytes) -> bytes:
    return b"\0" + struct.pack(">I", len(payload)) + payload


def split(buf: bytes):
    out = []
    while len(buf) >= 5:
        n = struct.unpack(">I", buf[1:5])[0]
        if len(buf) < 5 + n:
            break
        out.append(buf[5:5 + n])
        buf = buf[5 + n:]
    return out, buf


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--sni", default="")
    ap.add_argument("--cafile", default="")
    ap.add_argument("--authority", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--header", action="append", default=[], help="name:value")
    ap.add_argument("--message", action="append", default=[])
    ap.add_argument("--bidi", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    if a.tls:
        ctx = ssl.create_default_context(cafile=a.cafile or None)
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname=a.sni or None)
        if sock.selected_alpn_protocol() != "h2":
            print(json.dumps({"error": "no h2 in ALPN", "alpn": sock.selected_alpn_protocol()}))
            return 3
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    scheme = "https" if a.tls else "http"
    headers = [(":method", "POST"), (":scheme", scheme), (":authority", a.authority), (":path", a.path),
               ("content-type", "application/grpc"), ("te", "trailers")]
    for h in a.header:
        k, v = h.split(":", 1)
        headers.append((k.strip().lower(), v.strip()))
    messages = [m.encode() for m in a.message]
    conn.send_headers(sid, headers, end_stream=False)
    if not a.bidi:
        body = b"".join(frame(m) for m in messages)
        conn.send_data(sid, body, end_stream=True) if body else conn.end_stream(sid)
    pending = list(messages)
    if a.bidi and pending:
        conn.send_data(sid, frame(pending.pop(0)), end_stream=not pending)
    elif a.bidi:
        conn.end_stream(sid)
    sock.sendall(conn.data_to_send())

    result = {"status": None, "headers": {}, "messages": [], "trailers": {}, "trailers_only": False, "reset": None}
    buf = b""
    heads = 0
    done = False
    deadline = time.monotonic() + a.timeout
    while not done and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            result["closed"] = True
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                heads += 1
                for k, v in ev.headers:
                    if k == ":status":
                        result["status"] = int(v)
                    else:
                        result["headers"][k] = v
                if ev.stream_ended is not None:
                    result["trailers_only"] = True
            elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                result["trailers"] = {k: v for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                got, buf = split(buf + ev.data)
                result["messages"].extend(m.decode(errors="replace") for m in got)
                if a.bidi and got and pending:
                    conn.send_data(sid, frame(pending.pop(0)), end_stream=not pending)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                done = True
            elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                result["reset"] = int(ev.error_code)
                done = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                result["goaway"] = int(ev.error_code)
                done = True
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    result["ended"] = done
    print(json.dumps(result))
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
