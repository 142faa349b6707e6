#!/usr/bin/python3
"""A test Kubernetes API server for phigate's integration tests (see tests/kube/README.md).

Implements the parts of the Kubernetes API that phigate, kubectl and the tests use, following the
API concepts reference (https://kubernetes.io/docs/reference/using-api/api-concepts/): typed
resources under /api/v1 and /apis/<group>/<version>, discovery, GET/LIST (limit + continue)/WATCH
(chunked newline-delimited events, BOOKMARKs, 410 Expired)/POST/PUT/PATCH/DELETE, the status
subresource of Ingresses, Status objects for errors, bearer tokens and client certificates,
RBAC-like rules per identity. A plain-HTTP control port lets the test change objects behind the
API's back and read what clients asked for.

Python 3 standard library plus python3-yaml; run with /usr/bin/python3.
"""

import argparse
import base64
import bisect
import copy
import datetime
import http.client
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

# Bounds: the server must survive hostile or buggy clients in tests without growing without limit.
MAX_BODY = 3 * 1024 * 1024  # the real API server's default request body limit (3 MiB)
MAX_HISTORY = 50000  # watch events kept for replay (config maxHistory); older ones are compacted away
MAX_REQUEST_LOG = 100000
MAX_LIST_SNAPSHOTS = 256  # consistent snapshots kept for continue tokens
DEFAULT_WATCH_SECONDS = 1800  # the real server picks a random 30-60 min timeout; we bound at 30 min
IDLE_TIMEOUT = 120  # seconds a keep-alive connection may stay silent

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Kind:
    def __init__(self, group, version, plural, kind, namespaced, short=(), status_sub=False, verbs=None):
        self.verbs = verbs or ["create", "delete", "get", "list", "patch", "update", "watch"]
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        self.status_sub = status_sub

    @property
    def api_version(self):
        return self.version if self.group == "" else self.group + "/" + self.version

    @property
    def qualified(self):
        # "ingresses.networking.k8s.io" or "secrets": how the real server names a resource in messages.
        return self.plural if self.group == "" else self.plural + "." + self.group


KINDS = [
    Kind("", "v1", "namespaces", "Namespace", False, ["ns"]),
    Kind("", "v1", "services", "Service", True, ["svc"]),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Kind("", "v1", "events", "Event", True, ["ev"]),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Kind("", "v1", "pods", "Pod", True, ["po"]),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"]),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", True, ["ing"], status_sub=True),
    Kind("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"]),
    Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", True),
    Kind("events.k8s.io", "v1", "events", "Event", True, ["ev"]),
    Kind("apps", "v1", "deployments", "Deployment", True, ["deploy"]),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"]),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Kind("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
         "ValidatingWebhookConfiguration", False),
    # For `kubectl auth can-i`: answered from the caller's rules, stored nowhere.
    Kind("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
         verbs=["create"]),
]
BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
GROUPS = []  # (group, version) in declaration order, core excluded
for _k in KINDS:
    if _k.group and (_k.group, _k.version) not in GROUPS:
        GROUPS.append((_k.group, _k.version))


def kind_for_object(obj):
    api_version = obj.get("apiVersion", "")
    group, _, version = api_version.rpartition("/")
    for k in KINDS:
        if k.group == group and k.version == version and k.kind == obj.get("kind"):
            return k
    return None


def kind_by_name(name):
    """Control-port lookup: "Ingress", "ingresses", "ingresses.networking.k8s.io", "ing"."""
    n = name.lower()
    matches = [k for k in KINDS if n in (k.kind.lower(), k.plural, k.qualified) or n in k.short]
    # Core events and events.k8s.io events share a Kind name: prefer the exact qualified match.
    return matches[0] if matches else None


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)
        self.code = code


def not_found(kind, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (kind.qualified, name),
                    {"name": name, "group": kind.group, "kind": kind.plural})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


# ---------------------------------------------------------------------------------------------
# Selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/)

def split_top_level(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


LABEL_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
SET_RE = re.compile(r"^(" + LABEL_KEY + r")\s+(in|notin)\s*\(([^()]*)\)$")


def parse_label_selector(s):
    reqs = []
    if not s:
        return reqs
    for raw in split_top_level(s):
        p = raw.strip()
        if not p:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = SET_RE.match(p)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), values))
        elif "!=" in p:
            k, v = p.split("!=", 1)
            reqs.append((k.strip(), "!=", v.strip()))
        elif "==" in p:
            k, v = p.split("==", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif "=" in p:
            k, v = p.split("=", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif p.startswith("!"):
            reqs.append((p[1:].strip(), "!exists", None))
        else:
            reqs.append((p, "exists", None))
        if not re.match("^" + LABEL_KEY + "$", reqs[-1][0]):
            raise bad_request("unable to parse requirement: invalid label key \"%s\"" % reqs[-1][0])
    return reqs


def labels_match(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, val in reqs:
        have = key in labels
        v = labels.get(key)
        if op == "=" and v != val:
            return False
        if op == "!=" and have and v == val:
            return False
        if op == "in" and (not have or v not in val):
            return False
        if op == "notin" and have and v in val:
            return False
        if op == "exists" and not have:
            return False
        if op == "!exists" and have:
            return False
    return True


def parse_field_selector(s):
    reqs = []
    if not s:
        return reqs
    for raw in s.split(","):
        p = raw.strip()
        if "!=" in p:
            k, v, op = *p.split("!=", 1), "!="
        elif "==" in p:
            k, v, op = *p.split("==", 1), "="
        elif "=" in p:
            k, v, op = *p.split("=", 1), "="
        else:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, p))
        k = k.strip()
        if k not in ("metadata.name", "metadata.namespace"):
            raise bad_request('field label not supported: %s' % k)
        reqs.append((k, op, v.strip()))
    return reqs


def fields_match(reqs, obj):
    md = obj.get("metadata") or {}
    for key, op, val in reqs:
        have = md.get(key.split(".", 1)[1], "")
        if (op == "=") != (have == val):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Merge patch (RFC 7386)

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def spec_part(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


# ---------------------------------------------------------------------------------------------
# Storage and watch history

class Event:
    __slots__ = ("rv", "type", "kind", "obj", "old")

    def __init__(self, rv, type_, kind, obj, old):
        self.rv, self.type, self.kind, self.obj, self.old = rv, type_, kind, obj, old


class Store:
    def __init__(self, max_history=MAX_HISTORY):
        self.max_history = max_history
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {}  # (Kind, ns, name) -> object (never mutated in place: replaced on write)
        self.history = []  # Events in resourceVersion order
        self.compacted_rv = 0  # events with rv <= this are gone
        self.cut_gen = 0
        self.open_watches = 0
        self.snapshots = {}  # id -> (rv, [objects])
        self.snapshot_order = []

    # Callers hold self.cond.
    def _emit(self, type_, kind, obj, old):
        self.history.append(Event(self.rv, type_, kind, obj, old))
        if len(self.history) > self.max_history + self.max_history // 10:
            # Trimmed in batches so that a storm costs amortised O(1) per event.
            drop = len(self.history) - self.max_history
            self.compacted_rv = max(self.compacted_rv, self.history[drop - 1].rv)
            del self.history[:drop]
        self.cond.notify_all()

    def _stamp(self, kind, obj, old):
        self.rv += 1
        md = obj.setdefault("metadata", {})
        md["resourceVersion"] = str(self.rv)
        if old is None:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            md["generation"] = 1
        else:
            omd = old["metadata"]
            md["uid"] = omd["uid"]
            md["creationTimestamp"] = omd["creationTimestamp"]
            md["generation"] = omd.get("generation", 1) + (1 if spec_part(obj) != spec_part(old) else 0)
        obj["kind"] = kind.kind
        obj["apiVersion"] = kind.api_version

    def put(self, kind, obj):
        """Create or replace (control port). Returns (type, object)."""
        md = obj.setdefault("metadata", {})
        key = (kind, md.get("namespace", ""), md["name"])
        old = self.objects.get(key)
        self._stamp(kind, obj, old)
        self.objects[key] = obj
        t = "ADDED" if old is None else "MODIFIED"
        self._emit(t, kind, obj, old)
        return t, obj

    def delete(self, kind, ns, name):
        key = (kind, ns, name)
        old = self.objects.pop(key)
        self.rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("DELETED", kind, gone, old)
        return gone

    def compact(self):
        # Every resourceVersion handed out so far becomes too old; the counter moves on so that a
        # fresh LIST returns a version from which a watch can start again.
        self.compacted_rv = self.rv
        self.rv += 1
        self.history = []
        self.snapshots.clear()
        self.snapshot_order.clear()
        self.cond.notify_all()

    def list(self, kind, ns):
        items = [o for (k, n, _), o in self.objects.items() if k is kind and (not ns or n == ns)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items

    def save_snapshot(self, items):
        sid = uuid.uuid4().hex
        self.snapshots[sid] = (self.rv, items)
        self.snapshot_order.append(sid)
        while len(self.snapshot_order) > MAX_LIST_SNAPSHOTS:
            self.snapshots.pop(self.snapshot_order.pop(0), None)
        return sid


# ---------------------------------------------------------------------------------------------
# Identities and authorization

class Rule:
    """"verb,verb group/resource[,resource] [namespace] [name,name]" or "*"."""

    def __init__(self, text):
        parts = text.split()
        if parts == ["*"]:
            self.verbs, self.group, self.resources, self.ns, self.names = {"*"}, "*", {"*"}, None, None
            return
        if len(parts) < 2 or len(parts) > 4:
            raise ValueError("rule %r: expected 'verbs group/resources [namespace] [names]'" % text)
        self.verbs = set(parts[0].split(","))
        if "/" not in parts[1] and parts[1] != "*":
            raise ValueError("rule %r: resource must be 'group/resource' ('/x' for the core group)" % text)
        if parts[1] == "*":
            self.group, res = "*", "*"
        else:
            self.group, res = parts[1].split("/", 1)
        self.resources = set(res.split(","))
        self.ns = parts[2] if len(parts) > 2 and parts[2] not in ("*", "") else None
        self.names = set(parts[3].split(",")) if len(parts) > 3 else None

    def allows(self, verb, group, resource, ns, name):
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if self.group != "*" and self.group != group:
            return False
        if "*" not in self.resources and resource not in self.resources:
            return False
        if self.ns is not None and self.ns != ns:
            return False
        if self.names is not None and name not in self.names:
            return False
        return True


class Identities:
    def __init__(self, config):
        self.lock = threading.Lock()
        self.by_name = {}
        for ident in config.get("identities", []):
            rules = [Rule(r) for r in ident.get("rules", [])]
            self.by_name[ident["name"]] = {"token": ident.get("token", ""), "rules": rules,
                                           "all": not ident.get("rules")}

    def by_token(self, token):
        with self.lock:
            for name, ident in self.by_name.items():
                if ident["token"] and ident["token"] == token:
                    return name
        return None

    def set_token(self, name, token):
        with self.lock:
            if name not in self.by_name:
                raise KeyError(name)
            self.by_name[name]["token"] = token

    def allowed(self, user, verb, group, resource, ns, name):
        with self.lock:
            ident = self.by_name.get(user)
            if ident is None:
                return False  # a verified certificate for an unknown user: authenticated, no rights
            if ident["all"]:
                return True
            return any(r.allows(verb, group, resource, ns, name) for r in ident["rules"])


def forbidden(user, verb, kind, resource, ns, name):
    # The real server's wording (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go).
    subject = kind.qualified if not name else '%s "%s"' % (kind.qualified, name)
    scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
    msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        subject, user, verb, resource, kind.group, scope)
    return ApiError(403, "Forbidden", msg, {"name": name, "group": kind.group, "kind": kind.plural})


# ---------------------------------------------------------------------------------------------
# The server

class State:
    def __init__(self, config):
        self.store = Store(max(1, min(int(config.get("maxHistory") or MAX_HISTORY), MAX_HISTORY)))
        self.identities = Identities(config)
        self.bookmark_interval = max(0.05, config.get("bookmarkIntervalMs", 1000) / 1000.0)
        self.max_watch_seconds = config.get("maxWatchSeconds", 0)
        self.slow_ms = 0
        self.misbehave_lock = threading.Lock()
        self.misbehave = {}  # mode -> (responses or events left, size in bytes)
        self.log_lock = threading.Lock()
        self.requests = []
        self.api_port = 0

    def log_request(self, entry):
        with self.log_lock:
            if len(self.requests) < MAX_REQUEST_LOG:
                self.requests.append(entry)

    def take_misbehaviour(self, modes):
        """The first armed mode of `modes` (consuming one use), or None."""
        with self.misbehave_lock:
            for m in modes:
                left, size = self.misbehave.get(m, (0, 0))
                if left > 0:
                    self.misbehave[m] = (left - 1, size)
                    return m, size
        return None, 0

    def slow(self):
        if self.slow_ms > 0:
            time.sleep(self.slow_ms / 1000.0)


STATE = None


class Quiet:
    def log_message(self, fmt, *args):  # no per-request noise on stderr; /requests has the log
        pass


class ApiHandler(Quiet, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server_version = "fake-apiserver"
    sys_version = ""

    def setup(self):
        # The TLS handshake runs here, on the connection's own thread, so a stalled client cannot
        # block accept() for everyone else.
        self.request.settimeout(10)
        self.request.do_handshake()
        super().setup()

    # --- plumbing

    def send_json(self, code, obj, extra_headers=()):
        body = (json.dumps(obj) + "\n").encode()
        if self.entry["verb"] and code < 300:
            mode, size = STATE.take_misbehaviour(("malformed", "huge"))
            if mode == "malformed":
                body = body[: len(body) // 2]  # cut inside the JSON; Content-Length matches the cut
            elif mode == "huge":
                obj = dict(obj)
                obj["padding"] = "x" * size
                body = (json.dumps(obj) + "\n").encode()
        STATE.slow()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.entry["status"] = code

    def send_error_status(self, err):
        self.send_json(err.code, err.status)

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise ApiError(411, "BadRequest", "chunked request bodies are not supported here")
        self.body_read = True
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
        return self.rfile.read(n) if n else b""

    def discard_unread_body(self):
        # A request refused before its body was read (401, 403, 404...) must not leave the body
        # on a kept-alive connection, where it would be parsed as the next request.
        if getattr(self, "body_read", False):
            return
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or n < 0 or n > MAX_BODY:
            self.close_connection = True
        elif n:
            self.rfile.read(n)

    def authenticate(self):
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return STATE.identities.by_token(auth[len("Bearer "):].strip())
        if auth:
            return None
        cert = self.request.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return None

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        u = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        self.entry = {"user": "", "verb": "", "group": "", "resource": "", "ns": "", "name": "",
                      "method": method, "path": self.path, "status": 0}
        STATE.log_request(self.entry)  # logged on arrival (in order); fields filled in as known
        self.body_read = False
        try:
            self.route(method, u.path)
        except ApiError as e:
            if self.entry["status"] == 0:
                self.discard_unread_body()
                self.send_error_status(e)
        except (BrokenPipeError, ConnectionError, ssl.SSLError, socket.timeout, OSError):
            self.close_connection = True
        except Exception as e:  # a bug here must show as a 500 Status, not a hung client
            traceback.print_exc()
            if self.entry["status"] == 0:
                self.send_error_status(ApiError(500, "InternalError", "internal error: %s" % e))

    # --- routing

    def route(self, method, path):
        parts = [p for p in path.split("/") if p]
        if path in ("/version", "/healthz", "/livez", "/readyz"):
            # Public information (system:public-info-viewer) in a real cluster.
            if path == "/version":
                return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake",
                                            "platform": "linux/amd64"})
            return self.send_text(200, "ok")
        user = self.authenticate()
        self.entry["user"] = user or ""
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if parts == ["api"]:
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "127.0.0.1:%d" % STATE.api_port}]})
        if parts == ["apis"]:
            return self.send_json(200, api_group_list())
        if len(parts) >= 1 and parts[0] == "openapi":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        elif len(parts) == 2 and parts[0] == "apis":
            gv = [g for g in GROUPS if g[0] == parts[1]]
            if not gv:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, api_group(gv[0][0], gv[0][1]))
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not any(k.group == group and k.version == version for k in KINDS):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                raise method_not_allowed(method)
            return self.send_json(200, api_resource_list(group, version))
        ns = ""
        if (len(rest) >= 3 and rest[0] == "namespaces" and
                (group, version, rest[2]) in BY_PATH and BY_PATH[(group, version, rest[2])].namespaced):
            ns, rest = rest[1], rest[2:]
        kind = BY_PATH.get((group, version, rest[0]))
        if kind is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and not (sub == "status" and kind.status_sub):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if ns == "" and kind.namespaced and method not in ("GET",) and not name and method != "POST":
            raise method_not_allowed(method)
        self.serve_resource(method, user, kind, ns, name, sub)

    def send_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.entry["status"] = code

    # --- resources

    def serve_resource(self, method, user, kind, ns, name, sub):
        watch = self.query.get("watch", "") in ("1", "true", "True")
        if method == "GET":
            verb = "get" if name else ("watch" if watch else "list")
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            raise method_not_allowed(method)
        resource = kind.plural + ("/" + sub if sub else "")
        e = self.entry
        e.update(verb=verb, group=kind.group, resource=resource, ns=ns, name=name)
        if "dryRun" in self.query and verb not in ("get", "list", "watch"):
            # Ignoring it would store what the client asked only to try: refuse instead.
            raise bad_request("dryRun is not supported by the test API server")
        if STATE.take_misbehaviour(("status-500",))[0]:
            raise ApiError(500, "InternalError", "Internal error occurred: injected by the test")
        if kind.plural == "selfsubjectaccessreviews":
            if method != "POST" or name:
                raise method_not_allowed(method)
            return self.do_access_review(user)
        # resourceNames rules apply to list/watch when the client names the object with a field
        # selector (RBAC since Kubernetes 1.10 for watch; the reflector pattern for one object).
        authz_name = name
        if not name and verb in ("list", "watch"):
            for k, op, v in parse_field_selector(self.query.get("fieldSelector", "")):
                if k == "metadata.name" and op == "=":
                    authz_name = v
        if not STATE.identities.allowed(user, verb, kind.group, resource, ns, authz_name):
            raise forbidden(user, verb, kind, resource, ns, name)
        if method == "POST" and name:
            raise method_not_allowed(method)
        if method == "POST" and kind.namespaced and not ns:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if verb == "get":
            return self.do_get(kind, ns, name)
        if verb == "list":
            return self.do_list(kind, ns)
        if verb == "watch":
            return self.do_watch(kind, ns)
        if verb == "create":
            return self.do_create(kind, ns)
        if verb == "update":
            return self.do_update(kind, ns, name, sub)
        if verb == "patch":
            return self.do_patch(kind, ns, name, sub)
        if verb == "delete":
            return self.do_delete(kind, ns, name)
        raise method_not_allowed(method)

    def parse_object(self, raw, content_type="application/json"):
        if "protobuf" in content_type or "cbor" in content_type:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json, application/yaml")
        try:
            if "yaml" in content_type:
                obj = yaml.safe_load(raw.decode("utf-8"))
            else:
                obj = json.loads(raw.decode("utf-8"))
        except (ValueError, yaml.YAMLError) as ex:
            raise bad_request("the object provided is unparseable: %s" % str(ex).splitlines()[0])
        if not isinstance(obj, dict):
            raise bad_request("the object provided is not a JSON object")
        return obj

    def do_access_review(self, user):
        # Every authenticated user may ask about itself (system:basic-user in a real cluster).
        ctype = self.headers.get("Content-Type") or ""
        raw = self.read_body()
        if ctype.startswith("application/vnd.kubernetes.protobuf"):
            # kubectl sends this one in protobuf and does not fall back to JSON on 415.
            review = access_review_from_protobuf(raw)
        else:
            review = self.parse_object(raw, ctype)
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = attrs.get("resource", "") + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
        allowed = STATE.identities.allowed(user, attrs.get("verb", ""), attrs.get("group", ""), resource,
                                           attrs.get("namespace", ""), attrs.get("name", ""))
        review["status"] = {"allowed": allowed}
        if not allowed:
            review["status"]["reason"] = "no rule of the test server allows it"
        review.setdefault("metadata", {})["creationTimestamp"] = None
        self.send_json(201, review)

    def do_get(self, kind, ns, name):
        with STATE.store.cond:
            obj = STATE.store.objects.get((kind, ns, name))
        if obj is None:
            raise not_found(kind, name)
        self.send_json(200, obj)

    def do_list(self, kind, ns):
        labels = parse_label_selector(self.query.get("labelSelector", ""))
        fields = parse_field_selector(self.query.get("fieldSelector", ""))
        try:
            limit = int(self.query.get("limit", "0") or 0)
        except ValueError:
            raise bad_request("limit: invalid value")
        cont = self.query.get("continue", "")
        store = STATE.store
        with store.cond:
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()).decode())
                    rv, sid, offset = int(tok["rv"]), tok["id"], int(tok["start"])
                except Exception:
                    raise bad_request("continue key is not valid: incorrect encoded start resourceVersion")
                snap = store.snapshots.get(sid)
                if rv <= store.compacted_rv or snap is None:
                    raise ApiError(410, "Expired", (
                        "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter."))
                rv, items = snap
            else:
                offset = 0
                items = [o for o in store.list(kind, ns)
                         if labels_match(labels, o) and fields_match(fields, o)]
                rv = store.rv
                sid = None
            page = items[offset:offset + limit] if limit > 0 else items[offset:]
            md = {"resourceVersion": str(rv)}
            end = offset + len(page)
            if end < len(items):
                if sid is None:
                    sid = store.save_snapshot(items)
                md["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"rv": rv, "id": sid, "start": end}).encode()).decode()
                md["remainingItemCount"] = len(items) - end
        # Items of a typed list carry no kind/apiVersion on a real server either.
        out_items = []
        for o in page:
            o = dict(o)
            o.pop("kind", None)
            o.pop("apiVersion", None)
            out_items.append(o)
        self.send_json(200, {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                             "metadata": md, "items": out_items})

    def watch_matches(self, kind, ns, labels, fields, obj):
        if obj is None:
            return False
        if ns and obj["metadata"].get("namespace", "") != ns:
            return False
        return labels_match(labels, obj) and fields_match(fields, obj)

    def do_watch(self, kind, ns):
        labels = parse_label_selector(self.query.get("labelSelector", ""))
        fields = parse_field_selector(self.query.get("fieldSelector", ""))
        bookmarks = self.query.get("allowWatchBookmarks", "") in ("1", "true", "True")
        try:
            seconds = int(self.query.get("timeoutSeconds", "0") or 0)
        except ValueError:
            raise bad_request("timeoutSeconds: invalid value")
        if seconds <= 0:
            seconds = DEFAULT_WATCH_SECONDS
        if STATE.max_watch_seconds > 0:
            seconds = min(seconds, STATE.max_watch_seconds)
        deadline = time.monotonic() + seconds
        rv_param = self.query.get("resourceVersion", "")
        # Streaming lists (KEP-3157): initial state as ADDED events, then a BOOKMARK annotated
        # k8s.io/initial-events-end; the reference requires allowWatchBookmarks with it.
        initial_events = self.query.get("sendInitialEvents", "") in ("1", "true", "True")
        if initial_events and not bookmarks:
            raise ApiError(422, "Invalid", "sendInitialEvents is forbidden for watch unless the "
                           "WatchBookmarks feature is enabled (allowWatchBookmarks=true)")
        store = STATE.store
        expired = None
        initial = []
        with store.cond:
            if rv_param in ("", "0") or initial_events:
                # "Get State and Start at Most Recent" / "Start at Any": synthetic ADDED events for
                # the current state, then changes after it.
                initial = [o for o in store.list(kind, ns) if self.watch_matches(kind, ns, labels, fields, o)]
                pos = store.rv
            else:
                try:
                    pos = int(rv_param)
                except ValueError:
                    raise bad_request('resourceVersion: Invalid value: "%s"' % rv_param)
                if pos <= store.compacted_rv:
                    expired = "too old resource version: %d (%d)" % (pos, store.compacted_rv + 1)
            gen = store.cut_gen
            store.open_watches += 1
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            self.entry["status"] = 200
            self.wfile.flush()
            if expired:
                self.send_event({"type": "ERROR", "object": status_obj(410, "Expired", expired)})
                self.end_chunks()
                return
            for o in initial:
                self.send_event({"type": "ADDED", "object": o})
            if initial_events:
                self.send_event({"type": "BOOKMARK", "object": {
                    "kind": kind.kind, "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(pos),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}}})
            last_mark = time.monotonic()
            while True:
                out = []
                with store.cond:
                    while True:
                        if store.cut_gen != gen:
                            return self.cut()
                        if pos < store.compacted_rv:
                            out.append({"type": "ERROR", "object": status_obj(
                                410, "Expired", "too old resource version: %d (%d)" % (pos, store.compacted_rv + 1))})
                            break
                        first = bisect.bisect_right(store.history, pos, key=lambda e: e.rv)
                        pending = store.history[first:first + 1000]
                        if pending:
                            for ev in pending:
                                out.extend(self.translate(ev, kind, ns, labels, fields))
                            pos = pending[-1].rv
                            if out:
                                break
                            continue
                        now = time.monotonic()
                        if now >= deadline:
                            break
                        if bookmarks and now - last_mark >= STATE.bookmark_interval:
                            pos = max(pos, store.rv)
                            out.append({"type": "BOOKMARK", "object": {
                                "kind": kind.kind, "apiVersion": kind.api_version,
                                "metadata": {"resourceVersion": str(pos)}}})
                            last_mark = now
                            break
                        wait = min(deadline - now, 1.0)
                        if bookmarks:
                            wait = min(wait, STATE.bookmark_interval - (now - last_mark))
                        store.cond.wait(max(0.005, wait))
                for ev in out:
                    self.send_event(ev)
                if out and out[-1]["type"] == "ERROR":
                    self.end_chunks()
                    return
                if time.monotonic() >= deadline and not out:
                    self.end_chunks()
                    return
        finally:
            with store.cond:
                store.open_watches -= 1

    def translate(self, ev, kind, ns, labels, fields):
        if ev.kind is not kind:
            return []
        now_in = self.watch_matches(kind, ns, labels, fields, ev.obj if ev.type != "DELETED" else ev.old)
        was_in = self.watch_matches(kind, ns, labels, fields, ev.old)
        if ev.type == "ADDED":
            return [{"type": "ADDED", "object": ev.obj}] if now_in else []
        if ev.type == "DELETED":
            return [{"type": "DELETED", "object": ev.obj}] if was_in else []
        # MODIFIED: an object entering or leaving the selection is ADDED or DELETED for this watcher.
        if now_in and was_in:
            return [{"type": "MODIFIED", "object": ev.obj}]
        if now_in:
            return [{"type": "ADDED", "object": ev.obj}]
        if was_in:
            return [{"type": "DELETED", "object": ev.obj}]
        return []

    def send_event(self, ev):
        data = (json.dumps(ev) + "\n").encode()
        mode, size = STATE.take_misbehaviour(("watch-garbage", "watch-huge"))
        if mode == "watch-garbage":
            data = b"this is not a watch event {\n"
        elif mode == "watch-huge":
            ev = dict(ev)
            ev["padding"] = "x" * size
            data = (json.dumps(ev) + "\n").encode()
        STATE.slow()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self):
        # No terminating chunk and no TLS close_notify: the stream just ends, as when a load
        # balancer or the API server dies mid-watch.
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True
        self.wfile = _Discard()
        return None

    def check_name(self, kind, obj, ns, name=None):
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if name is not None and md.get("name") and md["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (
                md["name"], name))
        if name is not None:
            md["name"] = name
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, "Invalid", "%s \"\" is invalid: metadata.name: Required value: name or "
                               "generateName is required" % kind.kind,
                               {"group": kind.group, "kind": kind.kind,
                                "causes": [{"reason": "FieldValueRequired",
                                            "message": "Required value: name or generateName is required",
                                            "field": "metadata.name"}]})
        if kind.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace "
                                  "sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if obj.get("kind") and obj["kind"] != kind.kind:
            raise bad_request("the kind of the object (%s) does not match the URL (%s)" % (obj["kind"], kind.kind))
        return md["name"]

    def do_create(self, kind, ns):
        obj = self.parse_object(self.read_body(), self.headers.get("Content-Type") or "")
        name = self.check_name(kind, obj, ns)
        obj["metadata"].pop("resourceVersion", None)
        if kind.status_sub:
            obj.pop("status", None)  # PrepareForCreate resets status (only the subresource writes it)

        def compute(old):
            if old is not None:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (kind.qualified, name),
                               {"name": name, "group": kind.group, "kind": kind.plural})
            return "CREATE", copy.deepcopy(obj)

        self.send_json(201, self.admitted_write(kind, ns, name, "", compute))

    def conflict(self, kind, name):
        return ApiError(409, "Conflict", (
            'Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your '
            'changes to the latest version and try again') % (kind.qualified, name),
            {"name": name, "group": kind.group, "kind": kind.plural})

    def prepare_existing(self, kind, sub, old, new):
        """`new` with the subresource rules applied against `old`."""
        if sub == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        elif kind.status_sub:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        new.setdefault("metadata", {})
        return new

    def admitted_write(self, kind, ns, name, sub, compute):
        """Runs `compute(old)` → (operation, new object or None to delete) under the store lock,
        asks the matching validating webhooks outside it (a slow webhook must not stall every
        watcher), then stores if nobody wrote in between (else computes again, bounded)."""
        store = STATE.store
        for _ in range(5):
            with store.cond:
                old = store.objects.get((kind, ns, name))
                op, new = compute(old)
                old_rv = old["metadata"]["resourceVersion"] if old is not None else None
                hooks = matching_webhooks(store, kind, sub, op)
            if hooks:
                admit(hooks, self.entry["user"], op, kind, sub, ns, name, new, old)
            with store.cond:
                cur = store.objects.get((kind, ns, name))
                if (cur["metadata"]["resourceVersion"] if cur is not None else None) != old_rv:
                    continue
                if new is None:
                    return store.delete(kind, ns, name)
                return store.put(kind, new)[1]
        raise self.conflict(kind, name)

    def do_update(self, kind, ns, name, sub):
        obj = self.parse_object(self.read_body(), self.headers.get("Content-Type") or "")
        self.check_name(kind, obj, ns, name)

        def compute(old):
            if old is None:
                raise not_found(kind, name)
            want = obj["metadata"].get("resourceVersion")
            if want and want != old["metadata"]["resourceVersion"]:
                raise self.conflict(kind, name)
            return "UPDATE", self.prepare_existing(kind, sub, old, copy.deepcopy(obj))

        self.send_json(200, self.admitted_write(kind, ns, name, sub, compute))

    def do_patch(self, kind, ns, name, sub):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                         "application/apply-patch+yaml"):
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types "
                           "include: application/merge-patch+json, application/strategic-merge-patch+json, "
                           "application/apply-patch+yaml")
        apply = ctype == "application/apply-patch+yaml"
        if apply and not self.query.get("fieldManager"):
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        patch = self.parse_object(self.read_body(), "yaml" if apply else "json")
        # Strategic-merge directives are not understood; drop them rather than store them.
        patch = {k: v for k, v in patch.items() if not k.startswith("$")}
        created = []

        def compute(old):
            if old is None:
                if not apply:
                    raise not_found(kind, name)
                # Server-side apply creates the object.
                obj = copy.deepcopy(patch)
                self.check_name(kind, obj, ns, name)
                if kind.status_sub and sub != "status":
                    obj.pop("status", None)
                created.append(True)
                return "CREATE", obj
            want = (patch.get("metadata") or {}).get("resourceVersion")
            if want and want != old["metadata"]["resourceVersion"]:
                raise self.conflict(kind, name)
            new = merge_patch(copy.deepcopy(old), patch)
            self.check_name(kind, new, ns, name)
            return "UPDATE", self.prepare_existing(kind, sub, old, new)

        stored = self.admitted_write(kind, ns, name, sub, compute)
        self.send_json(201 if created and stored["metadata"].get("generation") == 1 else 200, stored)

    def do_delete(self, kind, ns, name):
        raw = self.read_body()
        opts = {}
        if raw.strip():
            opts = self.parse_object(raw)
        pre = opts.get("preconditions") or {}

        def compute(old):
            if old is None:
                raise not_found(kind, name)
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise self.conflict(kind, name)
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise self.conflict(kind, name)
            return "DELETE", None

        self.send_json(200, self.admitted_write(kind, ns, name, "", compute))


# ---------------------------------------------------------------------------------------------
# Validating admission webhooks (https://kubernetes.io/docs/reference/access-authn-authz/
# extensible-admission-controllers/): only clientConfig.url, only AdmissionReview v1.

MAX_WEBHOOK_RESPONSE = 1024 * 1024


def matching_webhooks(store, kind, sub, op):
    """The webhooks of stored ValidatingWebhookConfigurations whose rules match. Store locked."""
    resource = kind.plural + ("/" + sub if sub else "")
    out = []
    vwc = BY_PATH[("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")]
    for (k, _, _), cfg in sorted(store.objects.items(), key=lambda kv: kv[0][2]):
        if k is not vwc:
            continue
        for hook in cfg.get("webhooks") or []:
            for rule in hook.get("rules") or []:
                ops = rule.get("operations") or []
                res = rule.get("resources") or []
                if (("*" in ops or op in ops) and
                        any(g in ("*", kind.group) for g in rule.get("apiGroups") or []) and
                        any(v in ("*", kind.version) for v in rule.get("apiVersions") or []) and
                        any(r in ("*/*", resource) or (r == "*" and not sub) for r in res)):
                    out.append(copy.deepcopy(hook))
                    break
    return out


def admit(hooks, user, op, kind, sub, ns, name, new, old):
    """Calls each webhook; raises the ApiError a real API server would answer on a denial."""
    for hook in hooks:
        hook_name = hook.get("name", "")
        fail_closed = hook.get("failurePolicy", "Fail") != "Ignore"
        uid = str(uuid.uuid4())
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": uid,
            "kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
            "resource": {"group": kind.group, "version": kind.version, "resource": kind.plural},
            "requestKind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
            "requestResource": {"group": kind.group, "version": kind.version, "resource": kind.plural},
            "name": name, "namespace": ns, "operation": op,
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": new, "oldObject": old, "dryRun": False}}
        if sub:
            review["request"]["subResource"] = sub
        try:
            response = call_webhook(hook, review)
            if not isinstance(response, dict) or response.get("uid") != uid:
                raise ValueError("expected response.uid=%r" % uid)
        except Exception as ex:  # unreachable, TLS failure, timeout, bad JSON, wrong uid
            if fail_closed:
                raise ApiError(500, "InternalError", 'Internal error occurred: failed calling webhook "%s": %s' % (
                    hook_name, str(ex).splitlines()[0] if str(ex) else type(ex).__name__))
            continue
        if response.get("allowed") is True:
            continue
        st = dict(response.get("status") or {})
        code = st.get("code") if isinstance(st.get("code"), int) else 0
        denied = 'admission webhook "%s" denied the request' % hook_name
        message = "%s: %s" % (denied, st["message"]) if st.get("message") else denied + " without explanation"
        err = ApiError(max(code, 400), st.get("reason") or "", message)
        raise err


def call_webhook(hook, review):
    cc = hook.get("clientConfig") or {}
    url = cc.get("url")
    if not url:
        raise ValueError("only clientConfig.url is supported by the test API server")
    u = urlsplit(url)
    if u.scheme != "https" or u.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError("webhook URL must be https on loopback here: %s" % url)
    ctx = ssl.create_default_context()
    if cc.get("caBundle"):
        ctx = ssl.create_default_context(cadata=base64.b64decode(cc["caBundle"]).decode())
    timeout = min(max(int(hook.get("timeoutSeconds", 10)), 1), 30)
    conn = http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx, timeout=timeout)
    try:
        body = json.dumps(review).encode()
        conn.request("POST", (u.path or "/") + ("?" + u.query if u.query else ""), body=body,
                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        resp = conn.getresponse()
        data = resp.read(MAX_WEBHOOK_RESPONSE + 1)
        if len(data) > MAX_WEBHOOK_RESPONSE:
            raise ValueError("webhook response too large")
        if resp.status != 200:
            raise ValueError("webhook answered HTTP %d" % resp.status)
        return (json.loads(data.decode("utf-8")) or {}).get("response")
    finally:
        conn.close()


class _Discard:
    closed = False

    def write(self, _):
        return 0

    def close(self):
        pass

    def flush(self):
        pass


def protobuf_fields(data):
    """(field number, wire type, value) of one protobuf message; only what a review needs."""
    i, out = 0, []

    def varint():
        nonlocal i
        shift, value = 0, 0
        while True:
            if i >= len(data) or shift > 63:
                raise bad_request("the object provided is unparseable: bad protobuf varint")
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, wire, varint()))
        elif wire == 2:
            n = varint()
            if i + n > len(data):
                raise bad_request("the object provided is unparseable: truncated protobuf")
            out.append((field, wire, data[i:i + n]))
            i += n
        else:
            raise bad_request("the object provided is unparseable: unexpected protobuf wire type")
    return out


def access_review_from_protobuf(raw):
    # The envelope is "k8s\0" + runtime.Unknown{typeMeta=1, raw=2, ...}; raw is a
    # SelfSubjectAccessReview{metadata=1, spec=2{resourceAttributes=1{namespace=1, verb=2, group=3,
    # version=4, resource=5, subresource=6, name=7}}} (k8s.io/api/authorization/v1/generated.proto).
    if not raw.startswith(b"k8s\x00"):
        raise bad_request("the object provided is unparseable: no protobuf envelope")
    body = next((v for f, w, v in protobuf_fields(raw[4:]) if f == 2 and w == 2), b"")
    spec = next((v for f, w, v in protobuf_fields(body) if f == 2 and w == 2), b"")
    attrs_raw = next((v for f, w, v in protobuf_fields(spec) if f == 1 and w == 2), b"")
    names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
    attrs = {names[f]: v.decode("utf-8", "replace") for f, w, v in protobuf_fields(attrs_raw)
             if w == 2 and f in names}
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
            "spec": {"resourceAttributes": attrs}}


def method_not_allowed(method):
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def api_group(group, version):
    gv = {"groupVersion": group + "/" + version, "version": version}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list():
    groups = []
    for g, v in GROUPS:
        a = api_group(g, v)
        a.pop("kind")
        a.pop("apiVersion")
        groups.append(a)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def singular(kind):
    return kind.kind.lower()


def api_resource_list(group, version):
    resources = []
    for k in KINDS:
        if k.group != group or k.version != version:
            continue
        r = {"name": k.plural, "singularName": singular(k), "namespaced": k.namespaced, "kind": k.kind,
             "verbs": k.verbs}
        if k.short:
            r["shortNames"] = k.short
        resources.append(r)
        if k.status_sub:
            resources.append({"name": k.plural + "/status", "singularName": "", "namespaced": k.namespaced,
                              "kind": k.kind, "verbs": ["get", "patch", "update"]})
    gv = version if not group else group + "/" + version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


# ---------------------------------------------------------------------------------------------
# Control port

class ControlHandler(Quiet, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def answer(self, code, payload, text=False):
        if text:
            body = payload.encode()
            ctype = "text/plain; charset=utf-8"
        else:
            body = (json.dumps(payload) + "\n").encode()
            ctype = "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        text = q.get("format") in ("text", "lines", "tsv")
        try:
            n = int(self.headers.get("Content-Length") or 0)
            if n < 0 or n > 64 * MAX_BODY:
                raise ValueError("body too large")
            body = self.rfile.read(n) if n else b""
            fn = getattr(self, "c_%s_%s" % (method.lower(), u.path.strip("/").replace("/", "_")), None)
            if fn is None:
                return self.answer(404, {"error": "no such control endpoint: %s %s" % (method, u.path)})
            fn(q, body, text)
        except (KeyError, ValueError, yaml.YAMLError) as e:
            self.answer(400, {"error": "%s: %s" % (type(e).__name__, e)})

    def c_post_apply(self, q, body, text):
        text_in = body.decode("utf-8")
        docs = []
        stripped = text_in.lstrip()
        if stripped.startswith("{") or stripped.startswith("["):
            try:
                parsed = json.loads(text_in)
                docs = parsed if isinstance(parsed, list) else [parsed]
            except ValueError:
                docs = list(yaml.safe_load_all(text_in))
        else:
            docs = list(yaml.safe_load_all(text_in))
        objs = []
        for d in docs:
            if d is None:
                continue
            if not isinstance(d, dict):
                raise ValueError("a document is not an object")
            if d.get("kind", "").endswith("List") and isinstance(d.get("items"), list):
                objs.extend(d["items"])
            else:
                objs.append(d)
        prepared = []
        for o in objs:
            k = kind_for_object(o)
            if k is None:
                raise ValueError("unknown apiVersion/kind %s/%s" % (o.get("apiVersion"), o.get("kind")))
            o = copy.deepcopy(o)
            md = o.setdefault("metadata", {})
            if not md.get("name"):
                raise ValueError("%s without metadata.name" % k.kind)
            if k.namespaced:
                md.setdefault("namespace", "default")
            else:
                md.pop("namespace", None)
            md.pop("resourceVersion", None)
            prepared.append((k, o))
        store = STATE.store
        with store.cond:
            for k, o in prepared:
                store.put(k, o)
            rv = str(store.rv)
        self.answer(200, rv if text else {"resourceVersion": rv}, text)

    def c_post_delete(self, q, body, text):
        k = kind_by_name(q["kind"])
        if k is None:
            raise ValueError("unknown kind %s" % q["kind"])
        store = STATE.store
        with store.cond:
            key = (k, q.get("ns", "") if k.namespaced else "", q["name"])
            if key not in store.objects:
                return self.answer(404, {"error": "no such object"})
            store.delete(*key)
            rv = str(store.rv)
        self.answer(200, rv if text else {"resourceVersion": rv}, text)

    def c_post_storm(self, q, body, text):
        k = BY_PATH[("discovery.k8s.io", "v1", "endpointslices")]
        count = int(q.get("count", "1"))
        if count < 0 or count > 1000000:
            raise ValueError("count out of range")
        store = STATE.store
        with store.cond:
            key = (k, q.get("ns", "default"), q["name"])
            if key not in store.objects:
                return self.answer(404, {"error": "no such EndpointSlice"})
            for i in range(count):
                o = copy.deepcopy(store.objects[key])
                eps = o.get("endpoints") or [{"addresses": ["10.0.0.1"]}]
                for j, ep in enumerate(eps):
                    # Rotate each endpoint's address through 10.200.0.0/16 (never reachable here).
                    n = (i * len(eps) + j) % 65000 + 1
                    ep["addresses"] = ["10.200.%d.%d" % (n // 256, n % 256)]
                o["endpoints"] = eps
                store.put(k, o)
            rv = str(store.rv)
        self.answer(200, rv if text else {"resourceVersion": rv}, text)

    def c_post_compact(self, q, body, text):
        with STATE.store.cond:
            STATE.store.compact()
            rv = str(STATE.store.compacted_rv)
        self.answer(200, rv if text else {"compactedResourceVersion": rv}, text)

    def c_post_cut(self, q, body, text):
        store = STATE.store
        with store.cond:
            store.cut_gen += 1
            store.cond.notify_all()
            n = store.open_watches
        # Wait (bounded) until the watch threads have noticed and hung up.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with store.cond:
                if store.open_watches == 0:
                    break
            time.sleep(0.005)
        self.answer(200, str(n) if text else {"cut": n}, text)

    def c_post_slow(self, q, body, text):
        STATE.slow_ms = max(0, int(q.get("ms", "0")))
        self.answer(200, "ok" if text else {"slowMs": STATE.slow_ms}, text)

    def c_post_misbehave(self, q, body, text):
        mode = q["mode"]
        if mode not in ("malformed", "huge", "watch-garbage", "watch-huge", "status-500"):
            raise ValueError("unknown mode %s" % mode)
        count = int(q.get("count", "1"))
        size = int(q.get("bytes", str(16 * 1024 * 1024)))
        if count < 0 or size < 0 or size > 512 * 1024 * 1024:
            raise ValueError("count or bytes out of range")
        with STATE.misbehave_lock:
            STATE.misbehave[mode] = (count, size)
        self.answer(200, "ok" if text else {"mode": mode, "count": count, "bytes": size}, text)

    def c_post_token(self, q, body, text):
        STATE.identities.set_token(q["identity"], q["token"])
        self.answer(200, "ok" if text else {"ok": True}, text)

    def c_get_objects(self, q, body, text):
        k = kind_by_name(q["kind"])
        if k is None:
            raise ValueError("unknown kind %s" % q["kind"])
        with STATE.store.cond:
            items = STATE.store.list(k, q.get("ns", "") if k.namespaced else "")
        if text:
            return self.answer(200, "".join(json.dumps(o) + "\n" for o in items), True)
        self.answer(200, items)

    def c_get_requests(self, q, body, text):
        with STATE.log_lock:
            reqs = list(STATE.requests)
        if text:
            fields = ["user", "verb", "group", "resource", "ns", "name", "method", "path", "status"]
            lines = ["\t".join(str(r[f]).replace("\t", " ").replace("\n", " ") for f in fields) for r in reqs]
            return self.answer(200, "".join(line + "\n" for line in lines), True)
        self.answer(200, reqs)

    def c_get_watches(self, q, body, text):
        with STATE.store.cond:
            n = STATE.store.open_watches
        self.answer(200, str(n) if text else {"open": n}, text)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        ex = sys.exc_info()[1]
        if isinstance(ex, (ssl.SSLError, OSError, ConnectionError)):
            return  # failed handshakes (an unknown client certificate, plain HTTP) are expected
        traceback.print_exc()


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", required=True)
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    STATE = State(config)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(cafile=args.client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # client certificates optional, verified when sent
    ctx.set_alpn_protocols(["http/1.1"])  # no HTTP/2 here

    api = QuietServer(("127.0.0.1", 0), ApiHandler)
    api.socket = ctx.wrap_socket(api.socket, server_side=True, do_handshake_on_connect=False)
    control = QuietServer(("127.0.0.1", 0), ControlHandler)
    STATE.api_port = api.server_address[1]
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print("listening %d %d" % (api.server_address[1], control.server_address[1]), flush=True)
    try:
        api.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
