#!/usr/bin/env python3
"""A TLS client for the TLS passthrough tests (annotations_passthrough_test.cpp).

usage: passthrough_client.py PORT SNI CAFILE MODE HOST
  whole  the ClientHello in one send
  tiny   the ClientHello in 1-byte sends (TCP_NODELAY)
  wait:PATH  connect, print "connected", wait (at most 10 s) until PATH exists, then as whole
The server's certificate must chain to CAFILE (the backend's own CA: phigate's certificates are
issued by another), the host name is not checked (SNI may be upper-case or end with a dot).
Then one GET / with Host: HOST. Prints the response head (status line first), an empty line, then the body.
Every wait is bounded by the socket timeout.
"""
import socket
import ssl
import sys

port, sni, cafile, mode, host = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(cafile)
ctx.set_alpn_protocols(["http/1.1"])
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if mode.startswith("wait:"):
    import os
    import time
    print("connected", flush=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(mode[5:]) and time.monotonic() < deadline:
        time.sleep(0.01)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname=sni)


def flush(tiny=False):
    data = out.read()
    if tiny:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
    elif data:
        sock.sendall(data)


def feed():
    data = sock.recv(65536)
    if not data:
        inc.write_eof()
    else:
        inc.write(data)
    return bool(data)


first = True
while True:
    try:
        tls.do_handshake()
        flush()
        break
    except ssl.SSLWantReadError:
        flush(tiny=first and mode == "tiny")
        first = False
        if not feed():
            print("eof during handshake")
            sys.exit(1)
tls.write(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
flush()
resp = b""
while True:
    try:
        chunk = tls.read(65536)
        if not chunk:
            break
        resp += chunk
    except ssl.SSLWantReadError:
        flush()
        if not feed():
            break
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        break
text = resp.decode("latin-1")
head, _, body = text.partition("\r\n\r\n")
print(head.replace("\r\n", "\n"))
print()
print(body)
