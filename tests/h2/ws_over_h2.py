#!/usr/bin/python3
"""WebSocket over HTTP/2 (RFC 8441) client for tests/integration/h2_websocket_test.cpp.

Connects with TLS + ALPN h2 to a loopback address, opens extended-CONNECT streams (:method CONNECT,
:protocol websocket, :scheme https, :path, :authority) and speaks a minimal RFC 6455 on them (masked
client frames, unmasked server frames, close handshake). Runs ONE mode and prints ONE flat JSON line
of what it observed; the C++ test decides pass or fail.

Modes:
  settings      the server's SETTINGS_ENABLE_CONNECT_PROTOCOL (enable_connect_protocol: 0/1).
  echo          one tunnel on --path: each size of --sizes sent as a binary message and compared
                with its echo (echo_ok), then a close handshake (close_ok) and END_STREAM (end_stream).
  many          --count tunnels at once on one connection: statuses (n_200, n_429, n_other), then a
                message echoed on each open one (echoed).
  request       one stream with a malformed or refused head (--case): status or reset code.
  reset_connect --count times: an extended CONNECT, --settle seconds, then RST_STREAM CANCEL.
  zero_window   SETTINGS_INITIAL_WINDOW_SIZE 0 and no WINDOW_UPDATE ever: a tunnel on --path (a
                flooding backend), then how it ended (reset_code, closed, elapsed_s).
  read          a tunnel on --path, reading (and returning window for) up to --size bytes within
                --time-limit: data_bytes, end_stream, reset_code, flow_error (the server sent past
                our window).

Bounded: every wait has a deadline (--time-limit), the socket a timeout; loopback only.
"""

import argparse
import ipaddress
import json
import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

ENABLE_CONNECT_PROTOCOL = 0x8


def mask(payload, key):
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def client_frame(opcode, payload):
    n = len(payload)
    b0 = bytes([0x80 | opcode])
    if n < 126:
        hdr = b0 + bytes([0x80 | n])
    elif n < 65536:
        hdr = b0 + bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        hdr = b0 + bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return hdr + key + mask(payload, key)


def parse_frames(buf):
    """Complete server frames in buf: ([(fin, opcode, payload)], rest)."""
    out = []
    while len(buf) >= 2:
        fin, opcode = buf[0] & 0x80, buf[0] & 0x0F
        masked, n = buf[1] & 0x80, buf[1] & 0x7F
        off = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = int.from_bytes(buf[2:10], "big"), 10
        key = b""
        if masked:
            key, off = buf[off:off + 4], off + 4
        if len(buf) < off + n:
            break
        payload = buf[off:off + n]
        if masked:
            payload = mask(payload, key)
        out.append((bool(fin), opcode, payload))
        buf = buf[off + n:]
    return out, buf


class Stream:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.data = b""
        self.data_total = 0
        self.ended = False
        self.reset = None
        self.messages = []  # (opcode, payload) of complete server messages
        self.partial = b""
        self.partial_op = None
        self.close_payload = None


class Client:
    def __init__(self, args, window=None):
        self.args = args
        self.t0 = time.monotonic()
        self.streams = {}
        self.closed = False
        self.goaway = None
        self.flow_error = False
        self.ack = window is None
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False, normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        initial = {h2.settings.SettingCodes.ENABLE_PUSH: 0}
        if window is not None:
            initial[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = window
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values=initial)
        ctx = ssl.create_default_context(cafile=args.cafile)
        ctx.set_alpn_protocols(["h2"])
        source = (args.source, 0) if args.source else None
        raw = socket.create_connection((args.host, args.port), timeout=args.io_timeout, source_address=source)
        self.sock = ctx.wrap_socket(raw, server_hostname=args.sni)
        self.alpn = self.sock.selected_alpn_protocol()
        self.conn.initiate_connection()
        self.flush()
        self.settings_seen = False
        self.pump(lambda: self.settings_seen, 10)

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except (OSError, ssl.SSLError):
                self.closed = True

    def st(self, sid):
        return self.streams.setdefault(sid, Stream())

    def handle(self, ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
        elif isinstance(ev, h2.events.ResponseReceived):
            s = self.st(ev.stream_id)
            for k, v in ev.headers:
                if k == ":status":
                    s.status = int(v)
                else:
                    s.headers[k] = v
        elif isinstance(ev, h2.events.DataReceived):
            s = self.st(ev.stream_id)
            s.data += ev.data
            s.data_total += len(ev.data)
            if self.ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            frames, s.data = parse_frames(s.data)
            for fin, op, payload in frames:
                if op == 0x8:
                    s.close_payload = payload
                elif op in (0x9, 0xA):
                    continue
                elif op == 0x0:
                    s.partial += payload
                else:
                    s.partial, s.partial_op = payload, op
                if op in (0x0, 0x1, 0x2) and fin:
                    s.messages.append((s.partial_op, s.partial))
                    s.partial = b""
        elif isinstance(ev, h2.events.StreamEnded):
            self.st(ev.stream_id).ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.st(ev.stream_id).reset = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = int(ev.error_code)

    def pump(self, done, timeout):
        """Reads and handles frames until done() or timeout seconds (bounded)."""
        until = time.monotonic() + timeout
        while not done() and not self.closed and time.monotonic() < until:
            self.sock.settimeout(max(0.01, min(0.2, until - time.monotonic())))
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except (OSError, ssl.SSLError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.FlowControlError:
                self.flow_error = True
                self.closed = True
                break
            except h2.exceptions.ProtocolError:
                self.closed = True
                break
            for ev in events:
                self.handle(ev)
            self.flush()
        return done()

    def open(self, path, headers=None, protocol="websocket", method="CONNECT", end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        h = headers if headers is not None else [
            (":method", method), (":protocol", protocol), (":scheme", "https"), (":path", path),
            (":authority", self.args.authority), ("sec-websocket-version", "13")]
        self.conn.send_headers(sid, h, end_stream=end_stream)
        self.flush()
        self.st(sid)
        return sid

    def send(self, sid, data, timeout):
        """Sends data on sid within the flow-control windows (bounded by timeout)."""
        until = time.monotonic() + timeout
        while data and time.monotonic() < until and not self.closed:
            s = self.st(sid)
            if s.reset is not None:
                return False
            try:
                w = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            except h2.exceptions.StreamClosedError:
                return False
            if w <= 0:
                self.pump(lambda: self.conn.local_flow_control_window(sid) > 0, until - time.monotonic())
                continue
            self.conn.send_data(sid, data[:w])
            data = data[w:]
            self.flush()
        return not data

    def summary(self):
        return {"alpn": self.alpn, "closed": self.closed, "goaway_code": self.goaway,
                "flow_error": self.flow_error, "elapsed_s": round(time.monotonic() - self.t0, 3)}


def echo_one(c, sid, payload, timeout):
    s = c.st(sid)
    before = len(s.messages)
    if not c.send(sid, client_frame(0x2, payload), timeout):
        return False
    c.pump(lambda: len(s.messages) > before or s.reset is not None or s.ended, timeout)
    return len(s.messages) > before and s.messages[before][1] == payload


def close_handshake(c, sid, timeout):
    s = c.st(sid)
    c.send(sid, client_frame(0x8, (1000).to_bytes(2, "big")), timeout)
    ok = c.pump(lambda: s.close_payload is not None, timeout)
    # RFC 6455 §7.1.1: the server closes its TCP side first; RFC 8441 §5: that is END_STREAM.
    try:
        c.conn.end_stream(sid)
        c.flush()
    except h2.exceptions.ProtocolError:
        pass
    c.pump(lambda: s.ended or s.reset is not None, timeout)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True,
                    choices=["settings", "echo", "many", "request", "reset_connect", "reset_tunnel", "zero_window", "read"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", default="", help="local address to connect from (127.0.0.x)")
    ap.add_argument("--sni", default="app.example")
    ap.add_argument("--authority", default="app.example")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--path", default="/echo")
    ap.add_argument("--sizes", default="5,70000,1500000")
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--case", default="")
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--time-limit", type=float, default=20)
    ap.add_argument("--io-timeout", type=float, default=10)
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback or (args.source and not ipaddress.ip_address(args.source).is_loopback):
        print("loopback only", file=sys.stderr)
        return 2
    out = {"mode": args.mode}
    try:
        c = Client(args, window=0 if args.mode == "zero_window" else None)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"mode": args.mode, "error": type(e).__name__}, separators=(",", ":")))
        return 1
    tl = args.time_limit
    out["enable_connect_protocol"] = c.conn.remote_settings.get(ENABLE_CONNECT_PROTOCOL, 0)
    if args.mode == "echo":
        sid = c.open(args.path)
        s = c.st(sid)
        c.pump(lambda: s.status is not None or s.reset is not None, tl)
        out.update(status=s.status, reset_code=s.reset, accept_header="sec-websocket-accept" in s.headers,
                   set_cookie=s.headers.get("set-cookie", ""))
        if s.status == 200:
            ok = True
            for size in [int(x) for x in args.sizes.split(",") if x]:
                ok = echo_one(c, sid, os.urandom(size), tl) and ok
            out["echo_ok"] = ok
            out["close_ok"] = close_handshake(c, sid, tl)
        out.update(end_stream=s.ended, reset_after=s.reset)
    elif args.mode == "many":
        sids = [c.open(args.path) for _ in range(args.count)]
        c.pump(lambda: all(c.st(x).status is not None or c.st(x).reset is not None for x in sids), tl)
        statuses = [c.st(x).status for x in sids]
        out.update(n_200=statuses.count(200), n_429=statuses.count(429),
                   n_other=len([x for x in statuses if x not in (200, 429)]))
        echoed = 0
        for x in sids:
            if c.st(x).status == 200 and echo_one(c, x, b"hello %d" % x, tl):
                echoed += 1
        out["echoed"] = echoed
        # After closing one, another fits under the cap again.
        open_ones = [x for x in sids if c.st(x).status == 200]
        if open_ones:
            close_handshake(c, open_ones[0], tl)
            sid = c.open(args.path)
            c.pump(lambda: c.st(sid).status is not None or c.st(sid).reset is not None, tl)
            out["after_close_status"] = c.st(sid).status
    elif args.mode == "request":
        a = args.authority
        cases = {
            "plain_connect": [(":method", "CONNECT"), (":authority", a)],
            "protocol_foo": None,
            "protocol_h2c": None,
            "content_length": None,
            "extra_pseudo": None,
            "missing_scheme": [(":method", "CONNECT"), (":protocol", "websocket"), (":path", args.path),
                               (":authority", a)],
            "protocol_on_get": [(":method", "GET"), (":protocol", "websocket"), (":scheme", "https"),
                                (":path", args.path), (":authority", a)],
            "normal": None,
        }
        if args.case not in cases:
            print("unknown case", file=sys.stderr)
            return 2
        base = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", args.path),
                (":authority", a), ("sec-websocket-version", "13")]
        h = cases[args.case]
        if args.case == "protocol_foo":
            h = [(k, "foo" if k == ":protocol" else v) for k, v in base]
        elif args.case == "protocol_h2c":
            h = [(k, "h2c" if k == ":protocol" else v) for k, v in base]
        elif args.case == "content_length":
            h = base + [("content-length", "5")]
        elif args.case == "extra_pseudo":
            h = base[:5] + [(":foo", "bar")] + base[5:]
        elif args.case == "normal":
            h = base
        sid = c.open(args.path, headers=h)
        s = c.st(sid)
        c.pump(lambda: s.status is not None or s.reset is not None, tl)
        out.update(status=s.status, reset_code=s.reset)
    elif args.mode == "reset_connect":
        statuses = []
        for _ in range(args.count):
            sid = c.open(args.path)
            c.pump(lambda: c.st(sid).status is not None, args.settle)
            statuses.append(c.st(sid).status)
            try:
                c.conn.reset_stream(sid, 0x8)
                c.flush()
            except h2.exceptions.ProtocolError:
                pass
        c.pump(lambda: False, args.settle)
        out["answered"] = len([x for x in statuses if x is not None])
    elif args.mode == "reset_tunnel":
        # An open tunnel the client aborts with RST_STREAM CANCEL after one echo.
        sid = c.open(args.path)
        s = c.st(sid)
        c.pump(lambda: s.status is not None or s.reset is not None, tl)
        out["status"] = s.status
        if s.status == 200:
            out["echo_ok"] = echo_one(c, sid, b"before the reset", tl)
            c.conn.reset_stream(sid, 0x8)
            c.flush()
            c.pump(lambda: False, args.settle)
    elif args.mode == "zero_window":
        sid = c.open(args.path)
        s = c.st(sid)
        c.pump(lambda: s.status is not None or s.reset is not None, 10)
        out["status"] = s.status
        t = time.monotonic()
        c.pump(lambda: s.reset is not None or s.ended or c.goaway is not None, tl)
        out.update(reset_code=s.reset, end_stream=s.ended, data_bytes=s.data_total,
                   waited_s=round(time.monotonic() - t, 3))
    elif args.mode == "read":
        sid = c.open(args.path)
        s = c.st(sid)
        c.pump(lambda: s.status is not None or s.reset is not None, 10)
        out["status"] = s.status
        c.pump(lambda: s.data_total >= args.size or s.reset is not None or s.ended, tl)
        out.update(data_bytes=s.data_total, end_stream=s.ended, reset_code=s.reset,
                   first_message=s.messages[0][1][:64].decode("latin-1") if s.messages else "")
    out.update(c.summary())
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
