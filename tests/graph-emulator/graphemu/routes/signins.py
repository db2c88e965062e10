"""Sign-in logs (reference §7.2): GET /auditLogs/signIns, newest first, for legacy-auth
detection. P1/P2 tenants only; only the last 30 days (the P1/P2 retention).

Records come from tenant.sign_ins (the tenant file's "signIns"). Each is completed once, in
place, to the v1.0 signIn shape: missing properties get Graph's values for an ordinary
successful sign-in, "minutesAgo": N becomes a createdDateTime N minutes before the emulator
started (so a checked-in tenant file never ages out of retention), and the user's UPN and
display name are filled from the directory when only userId is given.
"""

import datetime

from ..core import GraphError, Perms, iso, new_id, route
from ..odata import Filter, page, parse_datetime
from .reports import allow_query, check_filter_ops, clock, metadata, no_gc, require_premium

SIGNIN_PERMS = Perms.of(app=["AuditLog.Read.All"],
                        roles=["Global Reader", "Reports Reader", "Security Administrator",
                               "Security Operator", "Security Reader"])
RETENTION_DAYS = 30
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

FILTERABLE = {"clientAppUsed": {"eq"}, "userId": {"eq"}, "userPrincipalName": {"eq", "startswith"},
              "appId": {"eq"}, "appDisplayName": {"eq", "startswith"},
              "createdDateTime": {"eq", "ge", "le", "gt", "lt"}, "isInteractive": {"eq"},
              "conditionalAccessStatus": {"eq"}, "ipAddress": {"eq", "startswith"}}
LITERAL_TYPES = {"clientAppUsed": str, "userId": str, "userPrincipalName": str, "appId": str,
                 "appDisplayName": str, "createdDateTime": datetime.datetime,
                 "isInteractive": bool, "conditionalAccessStatus": str, "ipAddress": str}


def _complete(rec, tenant, started):
    """Fill @rec (in place) to the full v1.0 signIn shape."""
    if "minutesAgo" in rec:
        ago = float(rec.pop("minutesAgo"))
        rec["createdDateTime"] = iso(datetime.datetime.fromtimestamp(
            started - ago * 60, datetime.timezone.utc))
    rec.setdefault("id", new_id())
    rec.setdefault("createdDateTime", iso())
    user = tenant.users.get(rec.get("userId")) if rec.get("userId") else None
    if user is None and rec.get("userPrincipalName"):
        uid = tenant.upn_index.get(rec["userPrincipalName"].lower())
        user = tenant.users.get(uid) if uid else None
    rec.setdefault("userId", user["id"] if user else new_id())
    rec.setdefault("userPrincipalName", user["userPrincipalName"] if user else None)
    rec.setdefault("userDisplayName", user.get("displayName") if user else None)
    rec.setdefault("appId", "00000002-0000-0ff1-ce00-000000000000")
    rec.setdefault("appDisplayName", "Office 365 Exchange Online")
    if not isinstance(rec.get("clientAppUsed"), str):
        rec["clientAppUsed"] = "Browser"
    legacy = rec["clientAppUsed"].lower() not in ("browser", "mobile apps and desktop clients")
    rec.setdefault("ipAddress", "203.0.113.10")
    rec.setdefault("correlationId", new_id())
    rec.setdefault("conditionalAccessStatus", "notApplied")
    rec.setdefault("isInteractive", not legacy)
    rec.setdefault("resourceDisplayName", "Office 365 Exchange Online")
    rec.setdefault("resourceId", "00000002-0000-0ff1-ce00-000000000000")
    rec.setdefault("resourceTenantId", tenant.id)
    rec.setdefault("homeTenantId", tenant.id)
    rec.setdefault("servicePrincipalId", "")
    rec.setdefault("servicePrincipalName", None)
    rec.setdefault("userAgent", "" if legacy else
                   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/124.0 Safari/537.36")
    rec.setdefault("riskDetail", "none")
    rec.setdefault("riskLevelAggregated", "none")
    rec.setdefault("riskLevelDuringSignIn", "none")
    rec.setdefault("riskState", "none")
    rec.setdefault("riskEventTypes", [])
    rec.setdefault("riskEventTypes_v2", [])
    status = rec.get("status") or {}
    rec["status"] = {"errorCode": status.get("errorCode", 0),
                     "failureReason": status.get("failureReason",
                                                 "Other." if status.get("errorCode") else None),
                     "additionalDetails": status.get("additionalDetails")}
    device = rec.get("deviceDetail") or {}
    rec["deviceDetail"] = {"deviceId": "", "displayName": "", "operatingSystem": "",
                           "browser": "", "isCompliant": False, "isManaged": False,
                           "trustType": "", **device}
    loc = rec.get("location") or {}
    rec["location"] = {"city": "Seattle", "state": "Washington", "countryOrRegion": "US",
                       "geoCoordinates": {"altitude": None, "latitude": 47.6,
                                          "longitude": -122.3}, **loc}
    rec.setdefault("appliedConditionalAccessPolicies", [])
    rec.setdefault("authenticationAppDeviceDetails", None)
    rec["_ts"] = (parse_datetime(rec["createdDateTime"]) or
                  datetime.datetime.now(datetime.timezone.utc))
    return rec


def _sorted(emu):
    """Every record, completed, newest first (cached while the list does not grow)."""
    t = emu.tenant
    done = getattr(emu, "_signins_done", 0)
    with no_gc():
        for rec in t.sign_ins[done:]:
            _complete(rec, t, emu.started)
    if done != len(t.sign_ins) or getattr(emu, "_signins_sorted", None) is None:
        emu._signins_done = len(t.sign_ins)
        emu._signins_sorted = sorted(t.sign_ins, key=lambda r: r["_ts"], reverse=True)
    return emu._signins_sorted


@route("GET", r"/auditLogs/signIns", perms=SIGNIN_PERMS, cost=1)
def list_sign_ins(req):
    t = req.emu.tenant
    require_premium(t)
    if t.settings.get("signInsRequireDirectoryRead"):
        # The documented known issue: sign-ins also needed Directory.Read.All.
        if not req.principal.scopes & {"Directory.Read.All", "Directory.ReadWrite.All"}:
            raise GraphError(403, "Authorization_RequestDenied",
                             "Insufficient privileges to complete the operation.")
    allow_query(req, {"$filter", "$top", "$skiptoken"})
    flt = None
    if req.query.get("$filter"):
        flt = Filter(req.query["$filter"],
                     {f: (lambda r, f=f: r["_ts"] if f == "createdDateTime" else r.get(f))
                      for f in FILTERABLE})
        check_filter_ops(flt, FILTERABLE, LITERAL_TYPES, "resource 'signIn'")
    cutoff = datetime.datetime.fromtimestamp(clock(req.emu), datetime.timezone.utc) - \
        datetime.timedelta(days=RETENTION_DAYS)
    rows = []
    for r in _sorted(req.emu):
        if r["_ts"] < cutoff:
            break                                   # newest first: the rest are older
        if flt is None or flt.matches(r):
            rows.append(r)
    return page(req, rows, 1000, 1000, f"{metadata(req)}#auditLogs/signIns",
                lambda r: {k: v for k, v in r.items() if not k.startswith("_")})
