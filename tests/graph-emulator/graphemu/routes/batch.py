"""JSON batching (reference §8.4): POST /v1.0/$batch and /beta/$batch.

The whole batch is refused (400) for: no or empty "requests", more than 20, an item without
id/method/url, a duplicate id, an absolute url, a write (POST/PUT/PATCH) without both a body
and a Content-Type header, a body without Content-Type, a dependsOn naming an unknown id or
making a cycle. Otherwise every item runs through Emulator.handle_graph with the batch's
Authorization header and version: routed, authorized, throttled (each item charged on its
own; a throttled item carries its own 429 and Retry-After) and answered on its own. An item
whose dependency did not succeed gets 424. Items run in an order that respects dependsOn and
is otherwise shuffled, and responses come back shuffled too (Graph promises no order), both
from random.Random seeded with --seed and the batch's number, so a run can be replayed.
Each item is also written to the request log, with "batch" (the batch's request-id) and
"batchItem" (the item id).
"""

import json
import random
import re
import time
from urllib.parse import parse_qs

from ..core import (CaseInsensitiveDict, GraphError, Perms, Request, Response, bad_request,
                    graph_error_body, new_id, route)

MAX_ITEMS = 20
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WRITES = ("POST", "PUT", "PATCH")
ITEM_KEYS = {"id", "method", "url", "headers", "body", "dependsOn", "atomicityGroup"}


def _batch_error(message):
    return bad_request(message, "BadRequest")


def _validate(body):
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _batch_error("Invalid batch payload format: a 'requests' array is required.")
    items = body["requests"]
    if not items:
        raise _batch_error("Invalid batch payload format: 'requests' is empty.")
    if len(items) > MAX_ITEMS:
        raise _batch_error(f"The number of batch requests ({len(items)}) exceeds the maximum of "
                           f"{MAX_ITEMS}.")
    seen = set()
    for it in items:
        if not isinstance(it, dict):
            raise _batch_error("Invalid batch payload format: each request is a JSON object.")
        for k in it:
            if k not in ITEM_KEYS:
                raise _batch_error(f"Invalid batch payload format: unknown property '{k}'.")
        rid, method, url = it.get("id"), it.get("method"), it.get("url")
        if not isinstance(rid, str) or not rid:
            raise _batch_error("Invalid batch payload format: every request needs a string "
                               "'id'.")
        if rid in seen:
            raise _batch_error(f"Batch request id '{rid}' is used more than once; ids must be "
                               "unique.")
        seen.add(rid)
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _batch_error(f"Invalid method '{method}' for request id : {rid}.")
        if not isinstance(url, str) or not url.strip():
            raise _batch_error(f"Request id : {rid} has no url.")
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url) or url.startswith("//"):
            raise _batch_error(f"Request id : {rid}: the url must be relative to the batch "
                               f"endpoint's version, e.g. '/users/…', not '{url}'.")
        headers = it.get("headers", {})
        if headers is not None and (not isinstance(headers, dict) or
                                    not all(isinstance(v, str) for v in headers.values())):
            raise _batch_error(f"Request id : {rid}: 'headers' must be an object of strings.")
        has_body = it.get("body") is not None
        has_ctype = any(k.lower() == "content-type" for k in (headers or {}))
        if (has_body and not has_ctype) or (method.upper() in WRITES and
                                            not (has_body and has_ctype)):
            raise _batch_error(f"Write request id : {rid} does not contain Content-Type header "
                               "or body.")
        deps = it.get("dependsOn", [])
        if deps is not None and (not isinstance(deps, list) or
                                 not all(isinstance(d, str) for d in deps)):
            raise _batch_error(f"Request id : {rid}: 'dependsOn' must be an array of ids.")
    ids = {it["id"] for it in items}
    for it in items:
        for d in it.get("dependsOn") or []:
            if d not in ids or d == it["id"]:
                raise _batch_error(f"Request id : {it['id']} depends on '{d}', which is not "
                                   "another request in this batch.")
    # A cycle leaves requests that can never become ready.
    left = {it["id"]: set(it.get("dependsOn") or []) for it in items}
    done = set()
    while left:
        ready = [k for k, d in left.items() if d <= done]
        if not ready:
            raise _batch_error("The dependsOn of requests " + ", ".join(sorted(left)) +
                               " form a cycle.")
        for k in ready:
            done.add(k)
            del left[k]
    return items


def _sub_request(req, it):
    from ..server import split_graph_path       # the same path rules as a request on the wire
    url = it["url"].strip()
    if not url.startswith("/"):
        url = "/" + url
    path_part, _, qs = url.partition("?")
    raw = f"/{req.version}{path_part}"
    headers = CaseInsensitiveDict((it.get("headers") or {}).items())
    for h in ("authorization", "host", "user-agent", "x-ms-throttle-priority"):
        if req.headers.get(h) is not None and h not in headers:
            headers[h] = req.headers.get(h)
    if req.headers.get("authorization") is not None:
        headers["authorization"] = req.headers.get("authorization")
    body = b""
    if it.get("body") is not None:
        b = it["body"]
        body = b.encode() if isinstance(b, str) and "json" not in \
            headers.get("content-type", "").lower() else json.dumps(b).encode()
    query = {k: v[0] for k, v in parse_qs(qs, keep_blank_values=True).items()}
    sub = Request(method=it["method"].upper(), path=path_part, raw_path=raw + ("?" + qs if qs
                                                                                else ""),
                  version=req.version, query=query, headers=headers, body=body, emu=req.emu,
                  request_id=new_id(), client_request_id="", in_batch=True)
    sub.client_request_id = headers.get("client-request-id") or req.client_request_id
    _, sub.path = split_graph_path(raw)
    return sub


def _item_response(rid, resp):
    out = {"id": rid, "status": resp.status}
    headers = {"Cache-Control": "no-cache"}
    body = resp.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace") if body else None
    if body is not None:
        headers["Content-Type"] = resp.content_type
    headers.update({k: str(v) for k, v in resp.headers.items()})
    out["headers"] = headers
    if body is not None:
        out["body"] = body
    return out


def _log_item(req, it, sub, resp, t0):
    p = sub.principal
    req.emu.log({"ts": time.time(), "method": sub.method, "path": sub.raw_path,
                 "requestId": sub.request_id, "clientRequestId": sub.client_request_id,
                 "userAgent": sub.headers.get("user-agent"),
                 "throttlePriority": sub.headers.get("x-ms-throttle-priority"),
                 "version": sub.version, "route": getattr(sub, "_route_name", None),
                 "status": resp.status, "appId": p.app_id if p else None,
                 "userId": p.user_id if p else None, "body": it.get("body"),
                 "retryAfter": resp.headers.get("Retry-After"),
                 "ms": round((time.monotonic() - t0) * 1000, 2),
                 "batch": req.request_id, "batchItem": it["id"]})


# Any valid token may post a batch; each item is authorized on its own.
@route("POST", r"/\$batch", perms=Perms.of(app=[]), cost=0)
def run_batch(req):
    if req.in_batch:
        raise _batch_error("A batch request cannot contain another $batch.")
    for k in req.query:
        if k.startswith("$"):
            raise _batch_error(f"Query option '{k}' is not allowed on $batch.")
    items = _validate(req.json())
    emu = req.emu
    n = getattr(emu, "_batch_count", 0)
    emu._batch_count = n + 1
    rng = random.Random(f"{emu.seed}:{n}")
    status = {}                                  # id → HTTP status, once run
    responses = []
    pending = list(items)
    while pending:
        ready = [it for it in pending if all(d in status for d in it.get("dependsOn") or [])]
        it = ready[rng.randrange(len(ready))]
        pending.remove(it)
        rid = it["id"]
        failed = [d for d in it.get("dependsOn") or [] if not 200 <= status[d] < 300]
        t0 = time.monotonic()
        if failed:
            err = GraphError(424, "FailedDependency",
                             f"The request depends on request {', '.join(failed)}, which did not "
                             "succeed.")
            resp = Response(424, graph_error_body(err, new_id(), req.client_request_id))
            status[rid] = 424
            responses.append(_item_response(rid, resp))
            continue
        try:
            sub = _sub_request(req, it)
        except GraphError as e:                  # a path Graph refuses (e.g. /users/$x@y)
            resp = Response(e.status, graph_error_body(e, new_id(), req.client_request_id),
                            dict(e.headers))
        else:
            resp = emu.handle_graph(sub)
            _log_item(req, it, sub, resp, t0)
        status[rid] = resp.status
        responses.append(_item_response(rid, resp))
    rng.shuffle(responses)
    return {"responses": responses}
