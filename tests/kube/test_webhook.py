#!/usr/bin/python3
"""A minimal validating admission webhook for testing fake_apiserver.py's admission calls.

Denies an object whose annotation `test.phigate.io/deny` is set (the value is the message),
allows anything else; with --hang it never answers. Prints "listening PORT" on 127.0.0.1.
"""

import argparse
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        review = json.loads(self.rfile.read(min(n, 4 * 1024 * 1024)))
        if ARGS.hang:
            HANG.wait(60)  # longer than any webhook timeout
            return
        req = review.get("request") or {}
        obj = req.get("object") or req.get("oldObject") or {}
        deny = ((obj.get("metadata") or {}).get("annotations") or {}).get("test.phigate.io/deny")
        response = {"uid": req.get("uid"), "allowed": deny is None}
        if deny is not None:
            response["status"] = {"code": 403, "message": deny}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--hang", action="store_true")
    ARGS = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
