"""/_emulator/: control calls for tests and demo mode. Real Graph has no such prefix, so no
client can reach these by accident. Never authenticated: the emulator listens on loopback."""

from .core import Response, control_route, no_content
from .tenant import public


@control_route("GET", r"/_emulator/health")
def health(req):
    return {"status": "ok", "url": req.emu.url, "ca": req.emu.ca_path,
            "tenant": req.emu.tenant.id}


@control_route("GET", r"/_emulator/requests")
def requests(req):
    """The request log, oldest first; ?since=SEQ for only newer entries."""
    since = int(req.query.get("since", "-1"))
    with req.emu.log_lock:
        return {"value": [e for e in req.emu.request_log if e.get("seq", -1) > since]}


@control_route("DELETE", r"/_emulator/requests")
def clear_requests(req):
    req.emu.clear_log()
    return no_content()


@control_route("GET", r"/_emulator/state")
def state(req):
    return req.emu.tenant.snapshot()


@control_route("GET", r"/_emulator/users/(?P<user>[^/]+)")
def user_state(req):
    u = req.emu.tenant.user(req.params["user"])
    return dict(public(u), directoryRoles=sorted(u["_roles"]),
                signInSessionsValidFromDateTime=u["_signInSessionsValidFrom"],
                extensions=u["_extensions"],
                methods=[dict(public(m), type=m["_type"], default=m["_default"])
                         for m in u["_methods"]])


@control_route("PATCH", r"/_emulator/settings")
def settings(req):
    """Change tenant settings while running (token lifetime, report lag, licence)."""
    body = req.json()
    t = req.emu.tenant
    if "license" in body:
        t.license = body.pop("license")
    t.settings.update(body)
    return Response(200, {"settings": t.settings, "license": t.license})
