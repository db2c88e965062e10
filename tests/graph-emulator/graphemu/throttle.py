"""Resource-unit throttling for Graph routes, as the identity-and-access service does it
(reference §8.2; Microsoft Graph "service-specific throttling limits", identity and access).

Model, per application (tenant and app pair; the emulator has one tenant):
- every request costs resource units (RU): the route's base cost (GET users 2,
  GET groups/{id}/members 3, anything else 1; declared by the route as `cost`), −1 with
  $select, +1 with $expand, −1 with $top below 20, never below 1;
- a token bucket of RU with capacity `ruPer10s`, refilled continuously at ruPer10s/10 per
  second;
- POST/PATCH/PUT/DELETE also take one unit from a write bucket with capacity `writesPer150s`,
  refilled at writesPer150s/150 per second;
- a request that would take a bucket below zero is answered 429 with Retry-After, and still
  takes its units ("throttled requests still count against the limits"): a client that
  retries without waiting digs itself deeper. Retry-After is the whole number of seconds
  (at least 1) after which the same request goes through, if nothing else is sent meanwhile.

Headers: `x-ms-resource-unit` on every charged response; `x-ms-throttle-limit-percentage`
(0.8-1.8, two decimals) once more than 80 % of a bucket is used; on 429 also
`x-ms-throttle-scope` (Tenant_Application/ReadWrite|Write/{appId}/{tenantId}) and
`x-ms-throttle-information` (ResourceUnitLimitExceeded or WriteLimitExceeded).

Settings (tenant file "settings": {"throttle": {...}}, or PATCH /_emulator/settings at run
time; read at every charge): enabled (default true), ruPer10s (3500, a small tenant),
writesPer150s (3000), code (the 429 error code, default "TooManyRequests").
$batch: the outer POST /$batch (route names "batch.*") costs nothing; its items are charged
one by one as the batch route runs them through Emulator.handle_graph.

Control: GET /_emulator/throttle (settings and every app's buckets), DELETE /_emulator/throttle
(fill every bucket again).
"""

import math
import threading
import time

from .core import GraphError, Response, control_route

DEFAULTS = {"enabled": True, "ruPer10s": 3500, "writesPer150s": 3000, "code": "TooManyRequests"}
WRITE_METHODS = frozenset(("POST", "PATCH", "PUT", "DELETE"))


def settings_of(tenant):
    """The throttle settings in force: the tenant's over the defaults."""
    s = tenant.settings.get("throttle")
    if s is None or s == {}:
        return DEFAULTS
    if not isinstance(s, dict):          # {"throttle": false} means off
        return dict(DEFAULTS, enabled=bool(s))
    return {**DEFAULTS, **s}


def adjusted_cost(base, query):
    """@base RU adjusted by the query options in @query (a dict of decoded options)."""
    cost = base
    if "$select" in query:
        cost -= 1
    if "$expand" in query:
        cost += 1
    top = query.get("$top")
    if top is not None:
        try:
            if int(top) < 20:
                cost -= 1
        except ValueError:
            pass
    return max(1, cost)


def cost_of(method, path_query):
    """The RU a Graph request costs, without sending it: @path_query like
    "/v1.0/users?$select=id&$top=5" (or without the version). For benchmarks and tests
    ("total RU ÷ rate"). Unknown routes cost 1; $batch costs the sum of its items is not
    known here, so it costs 0."""
    from urllib.parse import parse_qs, urlsplit
    from . import core
    from .routes import load_all
    load_all()
    split = urlsplit(path_query)
    path = split.path
    if not (path.startswith("/v1.0/") or path.startswith("/beta/")):
        path = "/v1.0" + (path if path.startswith("/") else "/" + path)
    from .server import split_graph_path
    version, rest = split_graph_path(path)
    query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    try:
        route, _ = core.find_route(core.GRAPH_ROUTES, method.upper(), rest, version)
    except GraphError:
        return adjusted_cost(1, query)
    if route.name.startswith("batch."):
        return 0
    return adjusted_cost(route.cost, query)


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level, stamp):
        self.level = level
        self.stamp = stamp

    def refill(self, now, capacity, per_second):
        self.level = min(capacity, self.level + (now - self.stamp) * per_second)
        self.stamp = now


class Throttle:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.ru = {}          # appId (lower) → _Bucket of resource units
        self.writes = {}      # appId (lower) → _Bucket of writes
        self.throttled = 0    # 429s answered so far
        self.clock = time.monotonic   # tests may substitute a fake clock

    def _bucket(self, table, app, capacity, now):
        b = table.get(app)
        if b is None:
            b = table[app] = _Bucket(float(capacity), now)
        return b

    def charge(self, req, route):
        """Headers to add to the response, or raise a 429 GraphError."""
        if route.name.startswith("batch."):
            return {}
        cost = adjusted_cost(route.cost, req.query)
        s = settings_of(self.emu.tenant)
        headers = {"x-ms-resource-unit": str(cost)}
        if not s.get("enabled", True):
            return headers
        ru_cap = float(s["ruPer10s"])
        w_cap = float(s["writesPer150s"])
        ru_rate = ru_cap / 10.0
        w_rate = w_cap / 150.0
        app = (req.principal.app_id if req.principal else "").lower()
        is_write = req.method in WRITE_METHODS
        now = self.clock()
        with self.lock:
            ru = self._bucket(self.ru, app, ru_cap, now)
            ru.refill(now, ru_cap, ru_rate)
            ru.level -= cost
            waits = []
            if ru.level < 0:
                # After waiting, the same request must find its cost in the bucket again.
                waits.append(((cost - ru.level) / ru_rate, "ReadWrite",
                              "ResourceUnitLimitExceeded"))
            used = (ru_cap - ru.level) / ru_cap if ru_cap > 0 else 2.0
            if is_write:
                w = self._bucket(self.writes, app, w_cap, now)
                w.refill(now, w_cap, w_rate)
                w.level -= 1
                if w.level < 0:
                    waits.append(((1 - w.level) / w_rate, "Write", "WriteLimitExceeded"))
                used = max(used, (w_cap - w.level) / w_cap if w_cap > 0 else 2.0)
            if waits:
                self.throttled += 1
        if used > 0.8:
            headers["x-ms-throttle-limit-percentage"] = f"{min(1.8, used):.2f}"
        if not waits:
            return headers
        wait, limit, info = max(waits)
        seconds = max(1, math.ceil(wait - 1e-9))
        headers.update({
            "Retry-After": str(seconds),
            "x-ms-throttle-scope": f"Tenant_Application/{limit}/{req.principal.app_id}/"
                                   f"{self.emu.tenant.id}",
            "x-ms-throttle-information": info,
        })
        raise GraphError(429, s.get("code") or DEFAULTS["code"],
                         f"Your request is throttled temporarily. Please try after {seconds} "
                         "seconds.", headers=headers)

    def snapshot(self):
        now = self.clock()
        s = settings_of(self.emu.tenant)
        ru_cap, w_cap = float(s["ruPer10s"]), float(s["writesPer150s"])
        with self.lock:
            apps = {}
            for app, b in self.ru.items():
                level = min(ru_cap, b.level + (now - b.stamp) * ru_cap / 10.0)
                apps.setdefault(app, {})["resourceUnits"] = round(level, 2)
            for app, b in self.writes.items():
                level = min(w_cap, b.level + (now - b.stamp) * w_cap / 150.0)
                apps.setdefault(app, {})["writes"] = round(level, 2)
            return {"settings": s, "apps": apps, "throttled": self.throttled}

    def reset(self):
        with self.lock:
            self.ru.clear()
            self.writes.clear()


@control_route("GET", r"/_emulator/throttle")
def throttle_state(req):
    """Settings in force, what is left in every app's buckets, how many 429s so far."""
    t = req.emu.throttle
    if not isinstance(t, Throttle):
        return {"settings": None, "apps": {}, "throttled": 0}
    return t.snapshot()


@control_route("DELETE", r"/_emulator/throttle")
def throttle_reset(req):
    """Fill every bucket again (between tests)."""
    t = req.emu.throttle
    if isinstance(t, Throttle):
        t.reset()
    return Response(204, None)
