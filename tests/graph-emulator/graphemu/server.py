"""The HTTPS server: one Emulator holding the tenant and the subsystems, and the request path
every call takes (faults → routing → authentication → authorization → throttling → handler →
common headers → request log).
"""

import http.client
import http.server
import json
import re
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

from . import certs, core
from .core import (CONTROL_ROUTES, GRAPH_ROUTES, IDENTITY_ROUTES, CaseInsensitiveDict,
                   GraphError, IdentityError, Request, Response, find_route, graph_error_body,
                   new_id)

# Route modules register themselves on import.
from . import control  # noqa: F401  (routes)
from .routes import load_all as _load_routes

MAX_BODY = 4 * 1024 * 1024


class Fault:
    """What faults.py asks the server to do to one request (see faults.py for matching)."""

    def __init__(self, kind, **kw):
        self.kind = kind          # latency, status, reset, truncate, malformed, extra-fields,
        self.kw = kw              # revoke-token, trickle
        self.name = kw.get("name", kind)


class NoFaults:
    def pick(self, req):
        return None


class NoThrottle:
    def charge(self, req, route):
        return {}


class Emulator:
    """Everything one running emulator knows. Route handlers reach it as req.emu."""

    def __init__(self, tenant, state_dir, seed=0):
        self.tenant = tenant
        self.state_dir = state_dir
        self.seed = seed
        self.started = time.time()
        self.log_lock = threading.Lock()
        self.request_log = []
        self.log_path = os.path.join(state_dir, "requests.jsonl")
        self._log_file = open(self.log_path, "a", encoding="utf-8")
        self.url = None
        self.ca_path = None
        _load_routes()
        # Subsystems written as separate modules; each is optional so the core runs alone.
        self.auth = _optional("auth", "Auth", self)
        if self.auth is not None and hasattr(self.auth, "verify"):
            self.auth.verify = _remember_signatures(self.auth.verify)
        self.throttle = _optional("throttle", "Throttle", self) or NoThrottle()
        self.faults = _optional("faults", "Faults", self) or NoFaults()

    # --- request log --------------------------------------------------------------------

    def log(self, entry):
        with self.log_lock:
            entry["seq"] = len(self.request_log)
            self.request_log.append(entry)
            self._log_file.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._log_file.flush()

    def clear_log(self):
        with self.log_lock:
            self.request_log.clear()

    # --- urls -----------------------------------------------------------------------------

    def graph_base_url(self, req):
        host = req.headers.get("host") or self.url.split("://", 1)[1]
        return f"https://{host}/{req.version or 'v1.0'}"

    # --- dispatch ---------------------------------------------------------------------------

    def handle_graph(self, req, route=None, params=None):
        """Route, authorize, throttle and run one Graph request (also a $batch item).
        Always returns a Response; Graph errors become Graph error bodies."""
        extra = {}
        try:
            if route is None:
                route, params = find_route(GRAPH_ROUTES, req.method, req.path, req.version)
            req.params = params or {}
            if req.principal is None:
                if self.auth is None:
                    raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
                req.principal = self.auth.authenticate(req)
            authorize(route.perms, req)
            extra = self.throttle.charge(req, route) or {}
            with self.tenant.lock:
                result = route.handler(req)
            resp = result if isinstance(result, Response) else Response(200, result)
        except GraphError as e:
            resp = Response(e.status, graph_error_body(e, req.request_id, req.client_request_id),
                            dict(e.headers))
        resp.headers = {**extra, **resp.headers}
        req._route_name = route.name if route else None
        return resp


def _remember_signatures(verify, size=4096):
    """Auth.verify(token) checks an RS256 signature with a key that never changes while the
    emulator runs: the same token string always gives the same claims. Remember the good
    ones (a copy each time, so callers cannot change what is remembered): ~90 us of the
    ~270 us a Graph request spent in the emulator (bench/emulator). Expiry, revocation and
    everything else are still checked on every request by Auth.authenticate."""
    good = {}
    lock = threading.Lock()

    def remembered(token):
        claims = good.get(token)
        if claims is not None:
            return dict(claims)
        claims = verify(token)
        if isinstance(claims, dict):
            with lock:
                if len(good) >= size:
                    good.clear()
                good[token] = dict(claims)
        return claims
    return remembered


def _optional(module, cls, emu):
    try:
        mod = __import__(f"graphemu.{module}", fromlist=[cls])
    except ModuleNotFoundError as e:
        if e.name == f"graphemu.{module}":
            return None
        raise
    return getattr(mod, cls)(emu)


def authorize(perms, req):
    """403 Authorization_RequestDenied unless the token carries what the route needs
    (reference §11): an application permission for app tokens; a delegated scope plus one of
    the directory roles for delegated tokens acting on others."""
    p = req.principal
    core.check_also(perms, req)
    if p.kind == "app":
        if perms.app and not (p.scopes & perms.app):
            raise core.forbidden()
        return
    if perms.delegated and not (p.scopes & perms.delegated):
        raise core.forbidden()
    if not perms.roles:
        return
    if "Global Administrator" in p.roles or (p.roles & perms.roles):
        return
    target = req.params.get("user")
    if perms.self_ok and target is not None and req.emu.tenant.users.get(p.user_id) is not None:
        me = req.emu.tenant.users[p.user_id]
        if target in (p.user_id, "me") or target.lower() == me["userPrincipalName"].lower():
            return
    raise core.forbidden()


def split_graph_path(path):
    """'/v1.0/users/x' → ('v1.0', '/users/x'); OData key syntax users('x') → users/x;
    each segment percent-decoded. Raises 400 for what Graph refuses."""
    parts = path.split("/", 2)
    version = parts[1]
    rest = "/" + (parts[2] if len(parts) > 2 else "")
    segs = []
    for raw in rest.split("/")[1:]:
        seg = unquote(raw)
        if "('" in seg and seg.endswith("')"):
            name, key = seg[:-2].split("('", 1)
            segs.extend([name, key.replace("''", "'")])
            continue
        segs.append(seg)
    # A UPN that starts with '$' must use the key syntax /users('$x@y'), or Graph says 400.
    for i, raw in enumerate(rest.split("/")[1:]):
        if i > 0 and rest.split("/")[i] == "users" and unquote(raw).startswith("$") \
                and not raw.startswith("$ref") and "('" not in raw:
            raise GraphError(400, "Request_BadRequest",
                             "Invalid object identifier '%s'." % unquote(raw))
    return version, "/" + "/".join(segs)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"        # keep-alive: clients reuse TLS connections
    disable_nagle_algorithm = True        # without it every response waits ~40 ms (testinfra §5)
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120

    def setup(self):
        # TLS handshake here, in the connection's own thread, so a slow client never stalls
        # the accept loop.
        try:
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.server.emu.log({"ts": time.time(), "method": None, "path": None,
                                 "status": None, "tlsError": str(e)})
            self.request.close()
            raise ConnectionAbortedError(str(e)) from None
        super().setup()

    def log_message(self, fmt, *args):
        pass                              # the JSON request log is the log

    def parse_request(self):
        """BaseHTTPRequestHandler.parse_request (Python 3.11) with one change: well-formed
        header lines are parsed without the email package, which took a quarter of the
        emulator's own time per request (bench/emulator). self.headers is the same
        http.client.HTTPMessage as before; anything unusual (folded lines, a line without a
        colon) still goes through http.client's parser."""
        self.command = None
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) == 0:
            return False
        if len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                base_version_number = version.split("/", 1)[1]
                version_number = base_version_number.split(".")
                if len(version_number) != 2:
                    raise ValueError
                version_number = int(version_number[0]), int(version_number[1])
            except (ValueError, IndexError):
                self.send_error(400, "Bad request version (%r)" % version)
                return False
            if version_number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if version_number >= (2, 0):
                self.send_error(505, "Invalid HTTP version (%s)" % base_version_number)
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(400, "Bad request syntax (%r)" % requestline)
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(400, "Bad HTTP/0.9 request type (%r)" % command)
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = _parse_headers(self.rfile, self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(431, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(431, "Too many headers", str(err))
            return False
        conntype = self.headers.get("Connection", "")
        if conntype.lower() == "close":
            self.close_connection = True
        elif conntype.lower() == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if (expect.lower() == "100-continue" and self.protocol_version >= "HTTP/1.1" and
                self.request_version >= "HTTP/1.1"):
            if not self.handle_expect_100():
                return False
        return True

    def do_GET(self):
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    # --- the request path -----------------------------------------------------------------

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise GraphError(413, "RequestEntityTooLarge", "The request body is too large.")
        return self.rfile.read(length) if length else b""

    def _handle(self):
        emu = self.server.emu
        t0 = time.monotonic()
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = CaseInsensitiveDict(self.headers.items())
        req = Request(method=self.command, path=split.path, raw_path=self.path, version="",
                      query=query, headers=headers, body=b"", emu=emu, request_id=new_id(),
                      client_request_id="")
        req.client_request_id = headers.get("client-request-id") or req.request_id
        entry = {"ts": time.time(), "method": self.command, "path": _loggable_path(self.path),
                 "requestId": req.request_id,
                 "clientRequestId": headers.get("client-request-id"),
                 "userAgent": headers.get("user-agent"),
                 "throttlePriority": headers.get("x-ms-throttle-priority")}
        fault = None
        try:
            req.body = self._read_body()
            kind = self._kind(split.path)
            if kind == "graph":
                req.version, req.path = split_graph_path(split.path)
            elif kind == "control":
                # Control calls name users by UPN too: decode each segment like Graph paths.
                req.path = "/".join(unquote(seg) for seg in split.path.split("/"))
            fault = emu.faults.pick(req) if kind != "control" else None
            if fault is not None:
                entry["fault"] = fault.name
                resp = self._pre_fault(fault, req)
                if resp is None and fault.kind == "reset" and \
                        fault.kw.get("phase", "request") == "request":
                    entry.update({"version": req.version, "status": None,
                                  "ms": round((time.monotonic() - t0) * 1000, 2)})
                    emu.log(entry)
                    self._reset()
                    return
            else:
                resp = None
            if resp is None:
                resp = self._dispatch(kind, req)
        except GraphError as e:
            resp = Response(e.status, graph_error_body(e, req.request_id, req.client_request_id),
                            dict(e.headers))
        except Exception as e:  # a bug in the emulator must show, not hang the client
            import traceback
            traceback.print_exc(file=sys.stderr)
            resp = Response(500, graph_error_body(
                GraphError(500, "generalException", f"emulator bug: {type(e).__name__}: {e}"),
                req.request_id, req.client_request_id))
        p = req.principal
        entry.update({"version": req.version, "route": getattr(req, "_route_name", None),
                      "status": resp.status, "appId": p.app_id if p else None,
                      "userId": p.user_id if p else None, "body": _loggable_body(req),
                      "retryAfter": resp.headers.get("Retry-After"),
                      "ms": round((time.monotonic() - t0) * 1000, 2)})
        if "fault" not in entry or fault.kind not in ("reset", "truncate"):
            emu.log(entry)
        self._send(req, resp, fault, entry)

    @staticmethod
    def _kind(path):
        if path.startswith("/_emulator/"):
            return "control"
        if path.startswith("/v1.0/") or path.startswith("/beta/") or path in ("/v1.0", "/beta"):
            return "graph"
        return "identity"

    def _dispatch(self, kind, req):
        emu = self.server.emu
        if kind == "graph":
            return emu.handle_graph(req)
        table = CONTROL_ROUTES if kind == "control" else IDENTITY_ROUTES
        try:
            route, params = find_route(table, req.method, req.path)
        except GraphError:
            raise GraphError(404, "NotFound", f"No such endpoint: {req.method} {req.path}")
        req.params = params
        req._route_name = route.name
        try:
            with emu.tenant.lock:
                result = route.handler(req)
        except IdentityError as e:
            return Response(e.status, identity_error_body(e, req), dict(e.headers),
                            content_type="application/json; charset=utf-8")
        if isinstance(result, Response):
            return result
        return Response(200, result, content_type="application/json; charset=utf-8")

    # --- faults ---------------------------------------------------------------------------

    def _pre_fault(self, fault, req):
        """Faults that act before the handler. Returns a Response to send instead, or None."""
        if fault.kind in ("latency", "trickle"):
            if fault.kind == "latency":
                time.sleep(fault.kw.get("ms", 0) / 1000)
            return None
        if fault.kind == "status":
            status = fault.kw.get("status", 503)
            headers = {}
            if fault.kw.get("retryAfter") is not None:
                headers["Retry-After"] = str(fault.kw["retryAfter"])
            if self._kind(urlsplit(req.raw_path).path) == "identity":
                # The login host answers with its own error shape, not Graph's.
                error, aadsts, text = IDENTITY_FAULTS.get(
                    status, IDENTITY_FAULTS[500 if status >= 500 else 400])
                err = IdentityError(status, fault.kw.get("code", error), aadsts,
                                    fault.kw.get("message", text), headers)
                return Response(status, identity_error_body(err, req), headers,
                                content_type="application/json; charset=utf-8")
            codes = {429: "TooManyRequests", 500: "generalException", 502: "BadGateway",
                     503: "serviceNotAvailable", 504: "GatewayTimeout"}
            err = GraphError(status, fault.kw.get("code", codes.get(status, "generalException")),
                             fault.kw.get("message", "Injected fault."), headers)
            return Response(status, graph_error_body(err, req.request_id, req.client_request_id),
                            headers)
        if fault.kind == "revoke-token":
            if self.server.emu.auth is not None:
                self.server.emu.auth.revoke_bearer(req)
            return None
        return None                        # reset/truncate/malformed/extra-fields act on output

    def _reset(self):
        # Close with SO_LINGER 0 and no TLS close_notify: the client sees a TCP reset
        # (ECONNRESET), as with a dropped connection. (Unwrapping first would wait for the
        # client's close_notify, which a client waiting for a response never sends.)
        self.close_connection = True
        try:
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.request.close()
        except OSError:
            pass

    def _close_cleanly(self):
        # Send TLS close_notify without waiting for the client's, then FIN: the client reads
        # what was sent and then a clean end of stream, so a short body is visible as short.
        self.close_connection = True
        try:
            self.request.setblocking(False)
            self.request.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.request.close()
        except OSError:
            pass

    # --- output ---------------------------------------------------------------------------

    def _send(self, req, resp, fault, entry):
        body = resp.body
        if isinstance(body, (dict, list)):
            if fault is not None and fault.kind == "extra-fields":
                body = _with_extra_fields(body)
            data = json.dumps(body, separators=(",", ":")).encode()
        elif isinstance(body, bytes):
            data = body
        else:
            data = b""
        if fault is not None and fault.kind == "malformed" and data:
            data = data[: max(1, len(data) // 2)] + b"<html>Service Unavailable"
        if fault is not None and fault.kind == "reset":
            # phase "response": the request ran (the tenant changed); the answer is lost.
            self.server.emu.log(entry)
            self._reset()
            return
        self.send_response(resp.status)
        if data or resp.status not in (204, 304):
            self.send_header("Content-Type", resp.content_type)
        self.send_header("request-id", req.request_id)
        self.send_header("client-request-id", req.client_request_id)
        self.send_header("x-ms-ags-diagnostic",
                         '{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"0",'
                         '"ScaleUnit":"000","RoleInstance":"EMULATOR"}}')
        self.send_header("Strict-Transport-Security", "max-age=31536000")
        if not any(k.lower() == "cache-control" for k in resp.headers):
            self.send_header("Cache-Control", "no-cache")   # token responses send no-store
        for k, v in resp.headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        if fault is None:
            # Headers and body in one write: one TLS record and one send() instead of two
            # (each costs ~50 us on loopback with Nagle off; bench/emulator).
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(data)
            out = b"".join(self._headers_buffer)
            self._headers_buffer = []
            self.wfile.write(out)
            return
        self.end_headers()
        if fault.kind == "truncate" and data:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            entry["truncated"] = True
            self.server.emu.log(entry)
            self._close_cleanly()
            return
        if fault.kind == "truncate":
            self.server.emu.log(entry)     # no body to cut: sent whole, logged here
        if fault.kind == "trickle" and data:
            step = max(1, int(fault.kw.get("bytes", 16)))
            delay = fault.kw.get("ms", 50) / 1000
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                time.sleep(delay)
            return
        self.wfile.write(data)


_HEADER_LINE = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*?)\r?\n")


def _parse_headers(rfile, message_class):
    """http.client.parse_headers(rfile, message_class), faster: the same limits (line length,
    number of headers) and the same message for lines of the form "Name: value"; any other
    line (folded, no colon, a name the email package would not take) makes the whole block
    go through the email package as before."""
    lines = []
    while True:
        line = rfile.readline(65537)
        if len(line) > 65536:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > 100:
            raise http.client.HTTPException("got more than 100 headers")
        if line in (b"\r\n", b"\n", b""):
            break
    msg = message_class()
    for line in lines[:-1]:
        m = _HEADER_LINE.fullmatch(line.decode("iso-8859-1"))
        if m is None:
            import email.parser
            return email.parser.Parser(_class=message_class).parsestr(
                b"".join(lines).decode("iso-8859-1"))
        msg.set_raw(m.group(1), m.group(2))
    return msg


# Injected "status" faults on the login host: (error, AADSTS code, description).
IDENTITY_FAULTS = {
    400: ("invalid_request", 90014, "The request body must contain the following parameter: "
                                    "'grant_type'."),
    429: ("temporarily_unavailable", 90055, "TenantThrottlingError - There are too many "
                                            "incoming requests."),
    500: ("server_error", 50000, "There was an error issuing a token or an issue with our "
                                 "sign-in service."),
    503: ("temporarily_unavailable", 90033, "A transient error has occurred. Please try "
                                            "again."),
    504: ("temporarily_unavailable", 90033, "A transient error has occurred. Please try "
                                            "again."),
}


def _with_extra_fields(body):
    """Graph adds properties over time; clients must ignore ones they do not know."""
    if isinstance(body, dict):
        out = {k: _with_extra_fields(v) for k, v in body.items()}
        out["emulatorUnexpectedField"] = {"note": "clients must ignore unknown properties"}
        return out
    if isinstance(body, list):
        return [_with_extra_fields(v) for v in body]
    return body


SECRET_FIELDS = {"client_secret", "client_assertion", "device_code", "refresh_token", "code",
                 "password", "temporaryAccessPass", "assertion"}


def _loggable_body(req):
    """What the request log keeps of a body: JSON as sent (tests assert on it), form fields
    with secret values replaced by their length. On the login host (where secrets travel) a
    body that is not a form is never logged raw: JSON has its secret fields replaced too, and
    anything else is logged by size only."""
    if not req.body:
        return None
    ctype = (req.headers.get("content-type") or "").lower()
    if "x-www-form-urlencoded" in ctype:
        return {k: (f"<{len(v)} chars>" if k in SECRET_FIELDS else v)
                for k, v in req.form().items()}
    identity = not req.version and not urlsplit(req.raw_path).path.startswith("/_emulator/")
    try:
        body = json.loads(req.body)
    except ValueError:
        if identity:
            return {"unparsed": f"<{len(req.body)} bytes>"}
        return {"unparsed": req.body[:200].decode(errors="replace")}
    return _redact(body) if identity else body


def _redact(obj):
    if isinstance(obj, dict):
        return {k: (f"<{len(str(v))} chars>" if k in SECRET_FIELDS else _redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def _loggable_path(path):
    """The request target with secret query parameters (which the login host refuses)
    replaced by their length."""
    if "?" not in path:
        return path
    base, _, query = path.partition("?")
    parts = []
    for item in query.split("&"):
        k, sep, v = item.partition("=")
        parts.append(f"{k}=<{len(unquote(v))} chars>" if unquote(k) in SECRET_FIELDS and sep
                     else item)
    return base + "?" + "&".join(parts)


def identity_error_body(e, req):
    """The identity platform's error JSON (reference §1.1): error, error_description with
    AADSTS code, trace and correlation ids and timestamp on \\r\\n-separated lines,
    error_codes, timestamp, trace_id, correlation_id, error_uri, and any extra fields
    (suberror, claims) the error carries."""
    trace = new_id()
    corr = req.client_request_id or new_id()
    ts = core.iso().replace("T", " ")
    body = {"error": e.error,
            "error_description": f"AADSTS{e.aadsts}: {e.description}\r\nTrace ID: {trace}"
                                 f"\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}",
            "error_codes": [e.aadsts], "timestamp": ts, "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={e.aadsts}"}
    body.update(getattr(e, "extra", None) or {})
    return body


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, emu, ssl_context):
        self.emu = emu
        self.ssl_context = ssl_context
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout)):
            return                        # clients hang up; that is not news
        super().handle_error(request, client_address)


def make_server(emu, host="127.0.0.1", port=0):
    ca, cert, key = certs.ensure(emu.state_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    srv = Server((host, port), emu, ctx)
    emu.ca_path = ca
    emu.url = f"https://{host}:{srv.server_address[1]}"
    return srv
