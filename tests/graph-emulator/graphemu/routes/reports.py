"""Authentication methods reports (reference §6.1): userRegistrationDetails and the
usersRegisteredByMethod / usersRegisteredByFeature summaries. P1/P2 tenants only.

The report is computed from the users and their methods, and it lags: it shows the
directory as it was tenant.settings["reportLagSeconds"] ago. A snapshot is kept and refreshed
once it is older than the lag; at a refresh, a user whose registrations changed less than
the lag ago keeps the row of the previous snapshot (or is absent if new). So a registration
never shows before the lag has passed, and always shows within twice the lag. Lag 0: every
request sees the directory as it is. Either way rows whose inputs did not change are reused,
so a 100,000-user report refreshes in a fraction of a second.
"""

import contextlib
import gc
import re
import time

from ..core import GraphError, Perms, bad_request, iso, not_found, route
from ..odata import Filter, page, parse_datetime
from .policies import PolicyView

REPORT_PERMS = Perms.of(app=["AuditLog.Read.All", "UserAuthenticationMethod.Read.All"],
                        roles=["Reports Reader", "Security Reader", "Security Administrator",
                               "Global Reader"])

# includedUserRoles='privilegedAdmin' (usersRegisteredByMethod doc).
PRIVILEGED_ROLES = {"Global Administrator", "Security Administrator",
                    "Conditional Access Administrator", "Exchange Administrator",
                    "SharePoint Administrator", "Helpdesk Administrator", "Billing Administrator",
                    "User Administrator", "Authentication Administrator"}

# Microsoft Authenticator passkeys (AAGUIDs for iOS and Android) are reported apart.
AUTHENTICATOR_AAGUIDS = {"90a3ccdf-635c-4729-a248-9b709135078f",
                         "de1e552d-db1d-4423-a619-566b625cdc84"}

# methodsRegistered names, in the order the report lists them.
METHOD_NAMES = ["email", "mobilePhone", "alternateMobilePhone", "officePhone",
                "microsoftAuthenticatorPush", "microsoftAuthenticatorPasswordless",
                "softwareOneTimePasscode", "hardwareOneTimePasscode", "passKeyDeviceBound",
                "passKeyDeviceBoundAuthenticator", "passKeyDeviceBoundWindowsHello",
                "windowsHelloForBusiness", "macOsSecureEnclaveKey", "temporaryAccessPass",
                "securityQuestion"]
_RANK = {n: i for i, n in enumerate(METHOD_NAMES)}
PHONE_NAMES = {"mobile": "mobilePhone", "alternateMobile": "alternateMobilePhone",
               "office": "officePhone"}
SIMPLE_NAMES = {"email": "email", "microsoftAuthenticator": "microsoftAuthenticatorPush",
                "softwareOath": "softwareOneTimePasscode",
                "hardwareOath": "hardwareOneTimePasscode",
                "windowsHelloForBusiness": "windowsHelloForBusiness",
                "platformCredential": "macOsSecureEnclaveKey",
                "temporaryAccessPass": "temporaryAccessPass"}

# Strong (MFA) methods and the method configuration that allows each ("" = not governed).
MFA_POLICY = {"microsoftAuthenticator": "microsoftauthenticator", "softwareOath": "softwareoath",
              "hardwareOath": "", "fido2": "fido2", "phone": "sms",
              "windowsHelloForBusiness": "", "platformCredential": ""}
PASSWORDLESS = {"fido2", "windowsHelloForBusiness", "platformCredential"}
# Methods that count toward self-service password reset, by SSPR category.
SSPR_CATEGORY = {"email": "email", "microsoftAuthenticator": "app", "softwareOath": "app"}

# The summaries list every method, registered by anyone or not.
SUMMARY_METHODS = ["password", "email", "mobilePhone", "alternateMobilePhone", "officePhone",
                   "microsoftAuthenticatorPush", "microsoftAuthenticatorPasswordless",
                   "softwareOneTimePasscode", "hardwareOneTimePasscode", "passKeyDeviceBound",
                   "passKeyDeviceBoundAuthenticator", "passKeyDeviceBoundWindowsHello",
                   "fido2SecurityKey", "windowsHelloForBusiness", "macOsSecureEnclaveKey",
                   "temporaryAccessPass", "securityQuestion"]
USER_TYPES = ("all", "member", "guest")
USER_ROLES = ("all", "privilegedAdmin", "admin", "user")

CTX = "reports/authenticationMethods/userRegistrationDetails"


def metadata(req):
    """The $metadata URL @odata.context values start with: always graph.microsoft.com, as
    Graph writes them (next links, by contrast, point at this emulator)."""
    return f"https://graph.microsoft.com/{req.version or 'v1.0'}/$metadata"


def require_premium(tenant):
    """Reports and sign-in logs need an Entra ID P1 or P2 tenant (reference §6.1, §7.2)."""
    if str(tenant.license).upper() not in ("P1", "P2"):
        raise GraphError(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                         "Neither tenant is B2C or tenant doesn't have premium license")


def allow_query(req, allowed):
    """400 for a system query option this API does not support (Graph refuses them)."""
    for k in req.query:
        if k.startswith("$") and k not in allowed:
            raise GraphError(400, "BadRequest",
                             f"Query option '{k}' is not allowed. Supported query options: "
                             + ", ".join(sorted(allowed)) + ".")


# --- computing a row ----------------------------------------------------------------------

def method_name(m):
    t = m["_type"]
    if t == "phone":
        return PHONE_NAMES.get(m.get("phoneType", "mobile"), "mobilePhone")
    if t == "fido2":
        if (m.get("aaGuid") or "").lower() in AUTHENTICATOR_AAGUIDS:
            return "passKeyDeviceBoundAuthenticator"
        return "passKeyDeviceBound"
    return SIMPLE_NAMES.get(t)              # password: None (not listed)


def _preferred(m):
    """userDefaultAuthenticationMethod for a default method."""
    t = m["_type"]
    if t == "microsoftAuthenticator":
        return "push"
    if t in ("softwareOath", "hardwareOath"):
        return "oath"
    if t == "phone":
        return {"mobile": "sms", "alternateMobile": "voiceAlternateMobile",
                "office": "voiceOffice"}.get(m.get("phoneType", "mobile"), "sms")
    return "none"


# System-preferred MFA: the strongest registered second factor first.
_SYSTEM_ORDER = [("fido2", "Fido2"), ("microsoftAuthenticator", "push"),
                 ("hardwareOath", "oath"), ("softwareOath", "oath"), ("phone", None)]


def compute_row(u, view, sspr_enabled, system_preferred):
    methods = u["_methods"]
    types = {m["_type"] for m in methods}
    names = {n for n in (method_name(m) for m in methods) if n}
    roles = u["_roles"]
    uid = u["id"]
    mfa_registered = any(t in MFA_POLICY for t in types)
    mfa_capable = any(t in MFA_POLICY and (not MFA_POLICY[t] or view.allows(MFA_POLICY[t], uid)
                                           or (t == "phone" and view.allows("voice", uid)))
                      for t in types)
    passwordless = any(t in PASSWORDLESS and (t != "fido2" or view.allows("fido2", uid))
                       for t in types)
    sspr_cats = {SSPR_CATEGORY[t] for t in types if t in SSPR_CATEGORY}
    sspr_cats |= {"phone:" + m.get("phoneType", "mobile") for m in methods if m["_type"] == "phone"}
    is_admin = bool(roles)
    sspr_needed = 2 if is_admin else 1       # administrators always have two-gate SSPR
    sspr_registered = len(sspr_cats) >= sspr_needed
    sspr_on = sspr_enabled or is_admin
    default = next((m for m in methods if m.get("_default")), None)
    preferred = _preferred(default) if default is not None else "none"
    system = []
    for t, name in _SYSTEM_ORDER:
        hit = next((m for m in methods if m["_type"] == t), None)
        if hit is not None:
            system = [name or _preferred(hit)]
            break
    return {
        "id": uid,
        "userPrincipalName": u["userPrincipalName"],
        "userDisplayName": u.get("displayName") or "",
        "userType": "guest" if str(u.get("userType", "Member")).lower() == "guest" else "member",
        "isAdmin": is_admin,
        "isSsprRegistered": sspr_registered,
        "isSsprEnabled": sspr_on,
        "isSsprCapable": sspr_registered and sspr_on,
        "isMfaRegistered": mfa_registered,
        "isMfaCapable": mfa_capable,
        "isPasswordlessCapable": passwordless,
        "methodsRegistered": sorted(names, key=_RANK.__getitem__),
        "isSystemPreferredAuthenticationMethodEnabled": system_preferred,
        "systemPreferredAuthenticationMethods": system if system_preferred else [],
        "userPreferredMethodForSecondaryAuthentication": preferred,
        "_privileged": bool(roles & PRIVILEGED_ROLES),
        "_hasPassword": "password" in types,
    }


# --- the lagging snapshot -------------------------------------------------------------------

class Snapshot:
    def __init__(self, at, rows):
        self.at = at                  # time.time() of the refresh: lastUpdatedDateTime
        self.rows = rows              # user id → (registration signature, row), in
                                      # directory order
        self.when = iso(_utc(at))


def clock(emu):
    """Emulated now, epoch seconds: settings.clockOffsetSeconds moves time forward (the same
    clock as the methods routes), so tests can let a report lag pass without sleeping."""
    return time.time() + float(emu.tenant.settings.get("clockOffsetSeconds", 0) or 0)


def _utc(ts):
    import datetime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def _changed_at(stamp):
    """When a registration stamp (iso seconds) was set, rounded up: never early."""
    dt = parse_datetime(stamp) if isinstance(stamp, str) else None
    return dt.timestamp() + 1 if dt else float("-inf")


@contextlib.contextmanager
def no_gc():
    """Pause the cyclic garbage collector: building 100,000 small objects otherwise sets off
    collections that scan the whole tenant, several times slower than the work itself."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def snapshot(emu):
    """The report as clients see it now (see the module comment)."""
    with no_gc():
        return _snapshot(emu)


def _snapshot(emu):
    t = emu.tenant
    lag = float(t.settings.get("reportLagSeconds", 0) or 0)
    now = clock(emu)
    snap = getattr(emu, "_report_snapshot", None)
    if snap is not None and lag > 0 and now - snap.at <= lag:
        return snap
    view = PolicyView(t)
    sspr = bool(t.settings.get("ssprEnabled", False))
    system_pref = bool(t.settings.get("systemPreferredMfaEnabled", True))
    prev = snap.rows if (snap is not None and lag > 0) else None
    # Rows whose inputs did not change are reused (a 100,000-user report refreshes quickly).
    inputs = (view.fingerprint, sspr, system_pref)
    cache = getattr(emu, "_report_cache", {}) \
        if getattr(emu, "_report_inputs", None) == inputs else {}
    emu._report_inputs = inputs
    new_cache = {}
    rows = {}
    for uid, u in t.users.items():
        if not u.get("accountEnabled", True):
            continue
        stamp = u.get("_registrationUpdated")
        methods, roles = u["_methods"], u["_roles"]
        # A registration change: the stamp moves (whole seconds, so also count the methods).
        sig = (stamp, len(methods))
        if prev is not None:
            old = prev.get(uid)
            if (old is None or old[0] != sig) and now - _changed_at(stamp) < lag:
                if old is not None:
                    rows[uid] = old
                continue
        # What a row depends on, cheaply (a new default method moves neither stamp nor count).
        key = (sig, [m.get("_default") for m in methods], u["userPrincipalName"],
               u.get("displayName"), u.get("userType"), frozenset(roles) if roles else None)
        hit = cache.get(uid)
        row = hit[1] if hit is not None and hit[0] == key else \
            compute_row(u, view, sspr, system_pref)
        new_cache[uid] = (key, row)
        rows[uid] = (sig, row)
    emu._report_cache = new_cache
    snap = Snapshot(now, rows)
    emu._report_snapshot = snap
    return snap


def _public(row, when):
    out = {k: v for k, v in row.items() if not k.startswith("_")}
    out["lastUpdatedDateTime"] = when
    return out


# --- userRegistrationDetails ----------------------------------------------------------------

BOOL_FIELDS = ("isAdmin", "isMfaCapable", "isMfaRegistered", "isPasswordlessCapable",
               "isSsprCapable", "isSsprEnabled", "isSsprRegistered",
               "isSystemPreferredAuthenticationMethodEnabled")
# field → operators $filter allows on it (userregistrationdetails resource page).
FILTERABLE = {**{f: {"eq"} for f in BOOL_FIELDS},
              "methodsRegistered": {"any"}, "systemPreferredAuthenticationMethods": {"any"},
              "userPreferredMethodForSecondaryAuthentication": {"eq"},
              "userPrincipalName": {"eq", "startswith"}, "userDisplayName": {"eq", "startswith"},
              "userType": {"eq"}, "id": {"eq"}}


def check_filter_ops(flt, allowed_ops, literal_types, what):
    """Refuse what a field does not support: "not", operators other than @allowed_ops[field]
    (e.g. "ne" needs advanced queries), literals of the wrong type."""
    def walk(node):
        op = node[0]
        if op in ("and", "or"):
            walk(node[1])
            walk(node[2])
            return
        if op == "not":
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported operator 'not' in filter on {what}.")
        field, lit = node[1], node[2]
        if op not in allowed_ops[field]:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported operator '{op}' for property '{field}' of {what}.")
        want = literal_types.get(field)
        if want is not None and (not isinstance(lit, want) or
                                 (want is int and isinstance(lit, bool))):
            raise GraphError(400, "BadRequest",
                             f"Invalid filter clause: the literal {lit!r} does not match the "
                             f"type of property '{field}'.")
    walk(flt.tree)


def _filter(req):
    text = req.query.get("$filter")
    if not text:
        return None
    flt = Filter(text, {f: (lambda r, f=f: r[f]) for f in FILTERABLE})
    types = {f: (bool if f in BOOL_FIELDS else str) for f in FILTERABLE}
    check_filter_ops(flt, FILTERABLE, types, "resource 'userRegistrationDetails'")
    return flt


def _orderby(req, rows):
    text = req.query.get("$orderby")
    if not text:
        return rows
    m = re.fullmatch(r"\s*(userPrincipalName|userDisplayName)(?:\s+(asc|desc))?\s*", text)
    if not m:
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"Unsupported $orderby '{text}': only userPrincipalName and "
                         "userDisplayName can be ordered by.")
    field, direction = m.group(1), m.group(2) or "asc"
    return sorted(rows, key=lambda r: (r[field] or "").lower(), reverse=direction == "desc")


@route("GET", r"/reports/authenticationMethods/userRegistrationDetails", perms=REPORT_PERMS,
       cost=1)
def list_registration_details(req):
    require_premium(req.emu.tenant)
    allow_query(req, {"$filter", "$orderby", "$top", "$skiptoken"})
    flt = _filter(req)
    snap = snapshot(req.emu)
    rows = [r for _, r in snap.rows.values()]
    if flt is not None:
        rows = [r for r in rows if flt.matches(r)]
    rows = _orderby(req, rows)
    when = snap.when
    return page(req, rows, 100, 999, f"{metadata(req)}#{CTX}",
                lambda r: _public(r, when))


@route("GET", r"/reports/authenticationMethods/userRegistrationDetails/(?P<uid>[^/]+)",
       perms=REPORT_PERMS, cost=1)
def get_registration_details(req):
    require_premium(req.emu.tenant)
    allow_query(req, set())
    snap = snapshot(req.emu)
    hit = snap.rows.get(req.params["uid"]) or snap.rows.get(req.params["uid"].lower())
    if hit is None:
        raise not_found(f"Resource '{req.params['uid']}' does not exist or one of its queried "
                        "reference-property objects are not present.")
    return {"@odata.context": f"{metadata(req)}#{CTX}/$entity",
            **_public(hit[1], snap.when)}


# --- summaries --------------------------------------------------------------------------------

def _function_args(req, name):
    """includedUserTypes/includedUserRoles from name(includedUserTypes='all',…)."""
    text = req.params.get("args")
    args = {"includedUserTypes": "all", "includedUserRoles": "all"}
    if text is None or not text.strip():
        return args
    seen = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\w+)\s*=\s*'([^']*)'\s*", part)
        if not m:
            raise bad_request(f"The parameters of function '{name}' are not valid: '{text}'.",
                              "BadRequest")
        k, v = m.groups()
        if k not in args or k in seen:
            raise bad_request(f"The function '{name}' has no parameter '{k}'.", "BadRequest")
        seen.add(k)
        allowed = USER_TYPES if k == "includedUserTypes" else USER_ROLES
        if v not in allowed:
            raise bad_request(f"The parameter '{k}' has an invalid value '{v}'. Allowed values: "
                              + ", ".join(allowed) + ".", "BadRequest")
        args[k] = v
    return args


def _in_scope(req, name):
    require_premium(req.emu.tenant)
    allow_query(req, set())
    args = _function_args(req, name)
    types, roles = args["includedUserTypes"], args["includedUserRoles"]
    snap = snapshot(req.emu)
    rows = []
    for _, r in snap.rows.values():
        if types != "all" and r["userType"] != types:
            continue
        if roles == "admin" and not r["isAdmin"]:
            continue
        if roles == "privilegedAdmin" and not r["_privileged"]:
            continue
        if roles == "user" and r["isAdmin"]:
            continue
        rows.append(r)
    return args, rows


FUNC = r"(?:\((?P<args>[^/]*)\))?"


@route("GET", r"/reports/authenticationMethods/usersRegisteredByMethod" + FUNC,
       perms=REPORT_PERMS, cost=1)
def users_registered_by_method(req):
    args, rows = _in_scope(req, "usersRegisteredByMethod")
    counts = dict.fromkeys(SUMMARY_METHODS, 0)
    for r in rows:
        if r["_hasPassword"]:
            counts["password"] += 1
        for n in r["methodsRegistered"]:
            counts[n] = counts.get(n, 0) + 1
    return {"@odata.context": f"{metadata(req)}#microsoft.graph."
                              "userRegistrationMethodSummary",
            "@odata.type": "#microsoft.graph.userRegistrationMethodSummary",
            "userTypes": args["includedUserTypes"], "userRoles": args["includedUserRoles"],
            "totalUserCount": len(rows),
            "userRegistrationMethodCounts": [{"authenticationMethod": k, "userCount": v}
                                             for k, v in counts.items()]}


@route("GET", r"/reports/authenticationMethods/usersRegisteredByFeature" + FUNC,
       perms=REPORT_PERMS, cost=1)
def users_registered_by_feature(req):
    args, rows = _in_scope(req, "usersRegisteredByFeature")
    features = {"ssprRegistered": "isSsprRegistered", "ssprEnabled": "isSsprEnabled",
                "ssprCapable": "isSsprCapable", "passwordlessCapable": "isPasswordlessCapable",
                "mfaCapable": "isMfaCapable"}
    return {"@odata.context": f"{metadata(req)}#microsoft.graph."
                              "userRegistrationFeatureSummary",
            "@odata.type": "#microsoft.graph.userRegistrationFeatureSummary",
            "userTypes": args["includedUserTypes"], "userRoles": args["includedUserRoles"],
            "totalUserCount": len(rows),
            "userRegistrationFeatureCounts": [
                {"feature": f, "userCount": sum(1 for r in rows if r[k])}
                for f, k in features.items()]}
