#!/usr/bin/env python3
"""A TLS client that controls how its bytes are cut into TCP segments (tls_test.cpp).

usage: tls_segments.py PORT MODE
  tiny        the ClientHello in 1-byte sends (TCP_NODELAY), then one GET
  pipelined   the client Finished and a GET in one send
  closenotify a GET and the client's close_notify in one send
  upload      a 1 MiB POST to ?echo=1, the echoed body must come back whole
  proxy       a PROXY v1 header and the ClientHello in one send, then one GET
Prints the response status line, then "body N" (bytes of body) and "eof" when the server closed.
Every wait is bounded by the socket timeout.
"""
import socket
import ssl
import sys

port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="app.example")


def flush(tiny=False, preamble=b""):
    data = preamble + out.read()
    if tiny:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
    elif data:
        sock.sendall(data)


def feed():
    data = sock.recv(65536)
    if not data:
        inc.write_eof()
        return False
    inc.write(data)
    return True


first = True
for _ in range(100):  # bounded handshake
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        proxy = b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n" if mode == "proxy" and first else b""
        flush(tiny=(mode == "tiny" and first), preamble=proxy)
        first = False
        if not feed():
            sys.exit("eof during handshake")
else:
    sys.exit("handshake did not finish")

body = b""
if mode == "upload":
    body = bytes(range(256)) * 4096  # 1 MiB
    req = (b"POST /up?echo=1 HTTP/1.1\r\nHost: app.example\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
else:
    req = b"GET /seg HTTP/1.1\r\nHost: app.example\r\n\r\n"

if mode == "pipelined":
    tls.write(req)
    flush()  # the Finished (still in `out`) and the request go out in one send
elif mode == "closenotify":
    flush()  # the Finished alone
    tls.write(req)
    try:
        tls.unwrap()
    except ssl.SSLWantReadError:
        pass  # close_notify queued; we do not wait for the server's here
    flush()  # request record + close_notify in one send
else:
    flush()
    view = memoryview(req)
    for off in range(0, len(req), 65536):
        tls.write(view[off:off + 65536])
        flush()

resp = b""
eof = False
for _ in range(100000):  # bounded: every recv has the socket timeout
    try:
        chunk = tls.read(65536)
        if not chunk:
            eof = True
            break
        resp += chunk
        head, sep, rest = resp.partition(b"\r\n\r\n")
        if sep:
            cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if cl and len(rest) >= int(cl[0].split(b":")[1]) and mode != "closenotify":
                break
    except ssl.SSLWantReadError:
        if not feed():
            try:
                tls.read(1)
            except (ssl.SSLError, ssl.SSLEOFError):
                pass
            eof = True
            break
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        eof = True
        break
head, _, rest = resp.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode() if head else "no response")
print("body", len(rest))
if mode == "upload":
    print("echo-ok" if rest == body else "echo-mismatch")
if eof:
    print("eof")
