"""The contract between the server and the route modules: requests, responses, errors, routing.

A route module registers handlers with @route; a handler takes a Request and returns a
Response (or a dict, which becomes a 200 JSON response) and raises GraphError for anything a
client must see as an error. The server does authentication, authorization, throttling,
fault injection, logging and the common headers around it.
"""

import datetime
import json
import re
import time
import uuid
from dataclasses import dataclass, field

GRAPH_VERSIONS = ("v1.0", "beta")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


_iso_now = [None, ""]                    # (whole second, its text): loading 100k users calls
                                         # iso() once per method


def iso(dt=None):
    """Graph's DateTimeOffset form: 2026-04-20T10:15:30Z."""
    if dt is None:
        sec = int(time.time())
        if _iso_now[0] != sec:
            _iso_now[1] = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            _iso_now[0] = sec
        return _iso_now[1]
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id():
    return str(uuid.uuid4())


class GraphError(Exception):
    """A Graph error: {"error":{"code","message","innerError":{…}}} with @status."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class IdentityError(Exception):
    """An identity-platform (login host) error: {"error","error_description" with AADSTS…}."""

    def __init__(self, status, error, aadsts, description, headers=None):
        super().__init__(f"{status} {error}: AADSTS{aadsts}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description
        self.headers = headers or {}


# Common Graph errors, named as Graph names them (reference §8.1).
def bad_request(message, code="badRequest"):
    return GraphError(400, code, message)


def not_found(message="Resource not found.", code="Request_ResourceNotFound"):
    return GraphError(404, code, message)


def forbidden(message="Insufficient privileges to complete the operation.",
              code="Authorization_RequestDenied"):
    return GraphError(403, code, message)


def method_not_allowed():
    return GraphError(405, "methodNotAllowed", "The method is not supported for this URL.")


@dataclass
class Principal:
    """Who a bearer token speaks for (filled in by auth.py)."""
    kind: str                      # "app" or "delegated"
    app_id: str
    scopes: frozenset              # application permissions (app) or delegated scopes
    user_id: str = None            # delegated: the signed-in user's object id
    roles: frozenset = frozenset()  # delegated: the user's directory role display names
    token_id: str = ""


@dataclass
class Perms:
    """Who may call a route (reference §11, least privilege first).

    app: application permissions, any one of which is enough.
    delegated: delegated scopes, any one of which is enough ...
    roles: ... and, for delegated calls on other users, one of these directory roles.
    self_ok: a delegated caller acting on their own user needs no role.
    also: permissions the token must carry as well, every one of them ("AlsoRequires" in
      Microsoft's permission map, e.g. Policy.ReadWrite.SecurityDefaults + Policy.Read.All).
      Checked by server.authorize() for every route (via check_also()).
    """
    app: frozenset = frozenset()
    delegated: frozenset = frozenset()
    roles: frozenset = frozenset()
    self_ok: bool = False
    also: frozenset = frozenset()

    @staticmethod
    def of(app=(), delegated=None, roles=(), self_ok=False, also=()):
        return Perms(frozenset(app), frozenset(app if delegated is None else delegated),
                     frozenset(roles), self_ok, frozenset(also))


def check_also(perms, req):
    """403 unless the token also carries every permission in @perms.also (any token kind)."""
    p = req.principal
    if perms.also and not perms.also <= (p.scopes if p else frozenset()):
        raise forbidden()


class CaseInsensitiveDict(dict):
    def __init__(self, items=()):
        super().__init__()
        for k, v in items:
            self[k] = v

    def __setitem__(self, k, v):
        super().__setitem__(k.lower(), v)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __contains__(self, k):
        return super().__contains__(k.lower())


@dataclass
class Request:
    method: str
    path: str                      # without the version prefix, percent-decoded per segment
    raw_path: str                  # as received, with query string
    version: str                   # "v1.0", "beta", or "" for identity/control routes
    query: dict                    # $filter etc., decoded
    headers: CaseInsensitiveDict
    body: bytes
    emu: object                    # the Emulator (tenant, lock, settings, subsystems)
    params: dict = field(default_factory=dict)   # named groups of the route pattern
    principal: Principal = None
    request_id: str = ""
    client_request_id: str = ""
    in_batch: bool = False
    _json: object = None

    def json(self):
        """The body as JSON; Graph answers a malformed body with 400 BadRequest."""
        if self._json is None:
            if not self.body:
                raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
            ctype = self.headers.get("content-type", "")
            if "json" not in ctype.lower():
                raise GraphError(415, "UnsupportedMediaType",
                                 "Content-Type must be application/json.")
            try:
                self._json = json.loads(self.body)
            except ValueError:
                raise bad_request("Unable to read JSON request payload. Please ensure "
                                  "Content-Type header is set and payload is of valid JSON "
                                  "format.", "BadRequest") from None
        return self._json

    def form(self):
        """An application/x-www-form-urlencoded body (identity platform)."""
        from urllib.parse import parse_qs
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def base_url(self):
        """Where this emulator is reached, for @odata.nextLink and @odata.id values."""
        return self.emu.graph_base_url(self)


@dataclass
class Response:
    status: int = 200
    body: object = None            # dict/list (JSON), bytes, or None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def no_content():
    return Response(204, None)


def created(body):
    return Response(201, body)


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    versions: tuple
    perms: Perms
    cost: int                      # resource units (reference §8.2)
    name: str


GRAPH_ROUTES = []      # under /v1.0 and /beta
IDENTITY_ROUTES = []   # the login host: /{tenant}/oauth2/v2.0/..., discovery
CONTROL_ROUTES = []    # /_emulator/...: test control, never authenticated, never in real Graph


def _register(table, method, pattern, versions, perms, cost):
    def deco(fn):
        table.append(Route(method, re.compile("^" + pattern + "$"), fn, versions, perms, cost,
                           fn.__module__.split(".")[-1] + "." + fn.__name__))
        return fn
    return deco


def route(method, pattern, *, versions=GRAPH_VERSIONS, perms=None, cost=1):
    """A Graph route. @pattern is a regex over the path after /v1.0 or /beta, with named
    groups; `{id}`-style segments should use [^/]+ (segments arrive percent-decoded)."""
    if perms is None:
        raise ValueError("every Graph route declares who may call it")
    return _register(GRAPH_ROUTES, method, pattern, versions, perms, cost)


def identity_route(method, pattern):
    return _register(IDENTITY_ROUTES, method, pattern, (), None, 0)


def control_route(method, pattern):
    return _register(CONTROL_ROUTES, method, pattern, (), None, 0)


_HEAD = re.compile(r"\^/(?:\(\?P<\w+>([A-Za-z0-9_-]+)\)|((?:[A-Za-z0-9_-]|\\\$)+))(?:/|\$$)")
_candidates = {}     # id(table) → (len(table), {first segment: [routes]}, [routes for any])


def _routes_for(table, path):
    """The routes of @table that can match @path, in table order: those whose pattern starts
    with @path's first segment as a literal, and those whose first segment is not a plain
    literal (or that contain "|"). Same answer as trying every route, without ~100 regex
    matches per request."""
    cached = _candidates.get(id(table))
    if cached is None or cached[0] != len(table):
        heads = []
        for r in table:
            # A "|" might be a top-level alternative: such a route is tried for every path.
            m = _HEAD.match(r.pattern.pattern) if "|" not in r.pattern.pattern else None
            heads.append((m.group(1) or m.group(2).replace("\\$", "$")) if m else None)
        by_head = {}
        for h in set(heads) - {None}:
            by_head[h] = [r for r, rh in zip(table, heads) if rh in (h, None)]
        cached = (len(table), by_head, [r for r, rh in zip(table, heads) if rh is None])
        _candidates[id(table)] = cached
    seg = path.split("/", 2)[1] if path.startswith("/") else None
    return cached[1].get(seg, cached[2])


def find_route(table, method, path, version=""):
    """(route, params) for @method @path, or raise 404/405 as Graph does."""
    path_matched = False
    for r in _routes_for(table, path):
        m = r.pattern.match(path)
        if not m:
            continue
        if version and version not in r.versions:
            continue
        path_matched = True
        if r.method == method:
            return r, m.groupdict()
    if path_matched:
        raise method_not_allowed()
    raise GraphError(400, "BadRequest",
                     f"Resource not found for the segment '{path.strip('/').split('/')[0]}'.")


def graph_error_body(err, request_id, client_request_id):
    return {"error": {"code": err.code, "message": err.message,
                      "innerError": {"date": iso().rstrip("Z"), "request-id": request_id,
                                     "client-request-id": client_request_id}}}
