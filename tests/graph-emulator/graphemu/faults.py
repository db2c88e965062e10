"""Fault injection: rules that make chosen requests slow, fail, or break on the wire, so tests
can show how a client survives what production networks and Graph do.

A rule (JSON):

    {"name": "tap-503",                      optional, shown in the request log ("fault")
     "method": "POST",                       optional, any method if absent
     "path": "^/v1.0/users/[^/]+/authentication/temporaryAccessPassMethods$",
     "kind": "status", "status": 503, "retryAfter": 2,
     "count": 1,                             optional: apply this many times, then never
     "after": 0,                             optional: let the first N matching requests pass
     "probability": 1.0}                     optional: 0..1, drawn from random.Random(--seed)

`path` is a regular expression searched (re.search) in the request path as sent (with the
version, percent-encoded, no query), in the same path percent-decoded, and in the path
after the version (what Graph routes match), so "^/v1.0/users/…$", "/users/" and
"^/(?P<tenant>[^/]+)/oauth2/v2.0/token$" all work. Rules are tried in order; the first one
that matches and fires is applied. A rule whose probability draw fails lets later rules try.

Kinds and their options (the server applies them, see server.Handler):
- latency: ms (default 1000): wait, then answer normally.
- status: status (default 503), retryAfter (seconds; 429 gets "1" unless given, null for
  none), message, code: answer with that error instead of running the request. Graph routes
  get Graph's error body; identity routes (token endpoint, discovery) get the identity
  platform's error body ({"error": "temporarily_unavailable" / "server_error" /
  "invalid_request"…, "error_description": "AADSTS…", "error_codes": […], …}).
- reset: phase "request" (default: the request is not run) or "response" (it is run, the
  tenant changes, and the client never hears): the connection is dropped with a TCP reset.
- truncate: the headers and half the body are sent, then the connection is closed cleanly
  (close_notify): Content-Length promises more than arrives.
- malformed: half the body followed by an HTML fragment, with a matching Content-Length.
- extra-fields: every JSON object in the body gains "emulatorUnexpectedField".
- revoke-token: the bearer token on the request is revoked first (the request gets 401).
- trickle: bytes (default 16) every ms (default 50) milliseconds: slow but complete.

A faults file (--faults FILE) is {"rules": [...]} or a bare list. Control calls:
GET /_emulator/faults (rules with "remaining", "hits" and "seen"), POST /_emulator/faults (a
rule or {"rules": [...]}, appended), DELETE /_emulator/faults (all rules gone, and the
probability draws start again from --seed, so a test can replay a sequence).
"""

import json
import random
import re
import threading
from urllib.parse import unquote, urlsplit

from .core import GraphError, Response, control_route, no_content

KINDS = ("latency", "status", "reset", "truncate", "malformed", "extra-fields", "revoke-token",
         "trickle")
COMMON_KEYS = {"name", "method", "path", "kind", "count", "after", "probability"}
KIND_KEYS = {
    "latency": {"ms"},
    "status": {"status", "retryAfter", "message", "code"},
    "reset": {"phase"},
    "truncate": set(),
    "malformed": set(),
    "extra-fields": set(),
    "revoke-token": set(),
    "trickle": {"ms", "bytes"},
}


def _number(rule, key, lo, hi, integer=False):
    v = rule.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and v != int(v)):
        raise ValueError(f"fault rule {rule.get('name') or rule.get('path')!r}: {key} must be "
                         f"a{'n integer' if integer else ' number'}")
    if not lo <= v <= hi:
        raise ValueError(f"fault rule {rule.get('name') or rule.get('path')!r}: {key} must be "
                         f"between {lo} and {hi}")


class Rule:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError(f"a fault rule is a JSON object, not {spec!r}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"fault rule kind {kind!r} is not one of {', '.join(KINDS)}")
        unknown = set(spec) - COMMON_KEYS - KIND_KEYS[kind]
        if unknown:
            raise ValueError(f"fault rule {spec.get('name') or kind!r}: unknown keys "
                             f"{sorted(unknown)} for kind {kind}")
        if not isinstance(spec.get("path"), str):
            raise ValueError(f"fault rule {spec.get('name') or kind!r}: path (a regular "
                             "expression) is required")
        try:
            self.regex = re.compile(spec["path"])
        except re.error as e:
            raise ValueError(f"fault rule path {spec['path']!r}: {e}") from None
        _number(spec, "count", 0, 1e12, integer=True)
        _number(spec, "after", 0, 1e12, integer=True)
        _number(spec, "probability", 0, 1)
        _number(spec, "ms", 0, 600000)
        _number(spec, "status", 100, 599, integer=True)
        _number(spec, "bytes", 1, 1 << 20, integer=True)
        if spec.get("retryAfter") is not None:
            _number(spec, "retryAfter", 0, 1e6)
        if kind == "reset" and spec.get("phase", "request") not in ("request", "response"):
            raise ValueError("fault rule phase must be \"request\" or \"response\"")
        self.spec = dict(spec)
        self.kind = kind
        self.name = spec.get("name") or kind
        self.method = (spec.get("method") or "").upper() or None
        self.remaining = spec.get("count")       # None: unlimited
        self.after = spec.get("after") or 0
        self.probability = spec.get("probability")
        self.seen = 0                            # matching requests so far
        self.hits = 0                            # times applied

    def matches(self, method, paths):
        if self.method is not None and self.method != method:
            return False
        return any(self.regex.search(p) for p in paths)

    def fault(self):
        from .server import Fault
        kw = {k: v for k, v in self.spec.items() if k in KIND_KEYS[self.kind]}
        if self.kind == "status":
            kw.setdefault("status", 503)
            if "retryAfter" not in self.spec and kw["status"] == 429:
                kw["retryAfter"] = 1
        elif self.kind == "latency":
            kw.setdefault("ms", 1000)
        elif self.kind == "trickle":
            kw.setdefault("ms", 50)
            kw.setdefault("bytes", 16)
        elif self.kind == "reset":
            kw.setdefault("phase", "request")
        return Fault(self.kind, name=self.name, **kw)

    def describe(self):
        return dict(self.spec, remaining=self.remaining, hits=self.hits, seen=self.seen)


def parse_rules(data):
    """[Rule] from {"rules": [...]}, a bare list, or a single rule object."""
    if isinstance(data, dict) and "rules" in data:
        if set(data) - {"rules"}:
            raise ValueError(f"unknown keys {sorted(set(data) - {'rules'})} beside \"rules\"")
        data = data["rules"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError("fault rules: expected {\"rules\": [...]} or a list of rules")
    return [Rule(r) for r in data]


class Faults:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.rules = []
        self.random = random.Random(emu.seed)

    def load_file(self, path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        self.add(parse_rules(data))

    def add(self, rules):
        with self.lock:
            self.rules.extend(rules)

    def clear(self):
        """No rules, and the probability draws start again from --seed."""
        with self.lock:
            self.rules.clear()
            self.random = random.Random(self.emu.seed)

    def pick(self, req):
        """The Fault to apply to @req, or None. Counts and draws happen under one lock, so
        with a fixed --seed the same sequence of requests meets the same faults."""
        if not self.rules:
            return None
        raw = urlsplit(req.raw_path).path
        paths = (raw, unquote(raw), req.path)
        method = req.method.upper()
        with self.lock:
            for rule in self.rules:
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if not rule.matches(method, paths):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.probability is not None and self.random.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                return rule.fault()
        return None

    def describe(self):
        with self.lock:
            return [r.describe() for r in self.rules]


def _faults(req):
    f = req.emu.faults
    if not isinstance(f, Faults):
        raise GraphError(501, "NotImplemented", "this emulator has no fault injection")
    return f


@control_route("GET", r"/_emulator/faults")
def list_faults(req):
    return {"rules": _faults(req).describe()}


@control_route("POST", r"/_emulator/faults")
def add_faults(req):
    f = _faults(req)
    try:
        rules = parse_rules(req.json())
    except ValueError as e:
        raise GraphError(400, "BadRequest", str(e)) from None
    f.add(rules)
    return Response(201, {"rules": f.describe()})


@control_route("DELETE", r"/_emulator/faults")
def clear_faults(req):
    _faults(req).clear()
    return no_content()
