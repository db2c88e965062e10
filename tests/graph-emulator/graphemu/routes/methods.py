"""Authentication methods: the generic /authentication/methods collection, every typed
collection in tenant.METHOD_TYPES (list, get, delete), phone methods (POST), beta
signInPreferences, and the helpers the other method modules share (target user resolution
with Graph's role rules, per-version output shapes, the default-method rule, the clock).

Reference §4, §5, §11. Collections under /authentication take no OData query options.
"""

import datetime
import re
import time

from ..core import (GraphError, Perms, Response, bad_request, forbidden, iso, no_content,
                    not_found, route)
from ..tenant import BETA_ONLY_METHODS, METHOD_TYPES

GRAPH_HOST = "https://graph.microsoft.com"

AUTH_ADMIN = "Authentication Administrator"
PRIV_AUTH_ADMIN = "Privileged Authentication Administrator"
GLOBAL_ADMIN = "Global Administrator"
READ_ROLES = [AUTH_ADMIN, PRIV_AUTH_ADMIN, "Global Reader"]
WRITE_ROLES = [AUTH_ADMIN, PRIV_AUTH_ADMIN]

# Roles whose holders an Authentication Administrator may still manage (Entra's "who can
# perform sensitive actions" table). Any other role makes the user an admin target, for
# which a delegated caller needs Privileged Authentication Administrator (or Global Admin).
AUTH_ADMIN_MANAGEABLE = {
    "Authentication Administrator", "Directory Readers", "Guest Inviter",
    "Message Center Reader", "Password Administrator", "Reports Reader",
    "Usage Summary Reports Reader", "User Experience Success Manager",
}

# Granular permission family per method type (UserAuthMethod-<x>.Read[.All] /
# .ReadWrite[.All]); None: the API has no application permission at all.
PERM_FAMILY = {
    "password": "Password", "email": "Email", "phone": "Phone", "fido2": "Passkey",
    "microsoftAuthenticator": "MicrosoftAuthApp", "softwareOath": "SoftwareOATH",
    "temporaryAccessPass": "TAP", "windowsHelloForBusiness": "WindowsHello",
    "platformCredential": None, "hardwareOath": "HardwareOATH",
}


def method_perms(short, write):
    """Perms for a typed method collection, least privileged first (reference §2.6, §3, §4,
    §11; learn.microsoft.com per-type permission tables)."""
    fam = PERM_FAMILY[short]
    if fam is None:      # platformCredentialMethods: delegated only
        scopes = (["UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"]
                  if write else
                  ["UserAuthenticationMethod.Read", "UserAuthenticationMethod.Read.All",
                   "UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"])
        return Perms.of(app=["(no application permission)"], delegated=scopes,
                        roles=WRITE_ROLES if write else READ_ROLES, self_ok=True)
    if write:
        app = [f"UserAuthMethod-{fam}.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"]
        dlg = [f"UserAuthMethod-{fam}.ReadWrite", f"UserAuthMethod-{fam}.ReadWrite.All",
               "UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"]
        return Perms.of(app=app, delegated=dlg, roles=WRITE_ROLES, self_ok=True)
    app = [f"UserAuthMethod-{fam}.Read.All", f"UserAuthMethod-{fam}.ReadWrite.All",
           "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"]
    dlg = [f"UserAuthMethod-{fam}.Read", f"UserAuthMethod-{fam}.Read.All",
           f"UserAuthMethod-{fam}.ReadWrite", f"UserAuthMethod-{fam}.ReadWrite.All",
           "UserAuthenticationMethod.Read", "UserAuthenticationMethod.Read.All",
           "UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"]
    return Perms.of(app=app, delegated=dlg, roles=READ_ROLES, self_ok=True)


GENERIC_READ = Perms.of(
    app=["UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"],
    delegated=["UserAuthenticationMethod.Read", "UserAuthenticationMethod.Read.All",
               "UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"],
    roles=READ_ROLES, self_ok=True)
GENERIC_DELETE = Perms.of(
    app=["(delegated only)"],
    delegated=["UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"],
    roles=WRITE_ROLES, self_ok=True)


# --- routes on /users/{id|UPN} and on /me -------------------------------------------------

def user_route(method, suffix, **kw):
    """Registers a handler on /users/{user}<suffix> and on /me<suffix> (params["user"] is
    "me" there; server.authorize treats that as the caller)."""
    def deco(fn):
        route(method, r"/users/(?P<user>[^/]+)" + suffix, **kw)(fn)
        route(method, r"/(?P<user>me)" + suffix, **kw)(fn)
        return fn
    return deco


def context(req, fragment):
    """@odata.context as Graph writes it (always the graph.microsoft.com host)."""
    return f"{GRAPH_HOST}/{req.version}/$metadata#{fragment}"


def is_self(req, user):
    p = req.principal
    return p is not None and p.kind == "delegated" and p.user_id == user["id"]


def is_admin_target(user):
    return bool(set(user["_roles"]) - AUTH_ADMIN_MANAGEABLE)


def target_user(req, perms=None, write=False):
    """The user a method route acts on, after the checks server.authorize cannot do:
    /me needs a delegated token; a delegated caller acting on someone else needs a *.All
    scope; writes on an admin need Privileged Authentication Administrator; routes with no
    application permission refuse app tokens."""
    t = req.emu.tenant
    p = req.principal
    key = req.params["user"]
    if key == "me":
        if p.kind != "delegated":
            raise bad_request("/me request is only valid with delegated authentication flow.",
                              "BadRequest")
        user = t.users.get(p.user_id)
        if user is None:
            raise not_found(f"Resource '{p.user_id}' does not exist or one of its queried "
                            "reference-property objects are not present.")
    else:
        user = t.user(key)
    if perms is not None and p.kind == "app" and any(a.startswith("(") for a in perms.app):
        raise forbidden("This operation is not supported with application permissions; "
                        "it needs a delegated token.")
    if p.kind == "delegated" and not is_self(req, user):
        if perms is not None and not any(s.endswith(".All") for s in p.scopes & perms.delegated):
            raise forbidden()
        if write and is_admin_target(user) and \
                not ({PRIV_AUTH_ADMIN, GLOBAL_ADMIN} & set(p.roles)):
            raise forbidden("Insufficient privileges to complete the operation. The target "
                            "user holds an administrator role: Privileged Authentication "
                            "Administrator is required.")
    return user


def no_query_options(req):
    """Authentication method collections support no OData query options (reference §5.1)."""
    for k in req.query:
        if k.startswith("$"):
            raise bad_request(f"Query option '{k}' is not supported on authentication "
                              "method resources.", "BadRequest")


# --- clock (settings.clockOffsetSeconds lets tests move time forward) ----------------------

def now_ts(emu):
    return time.time() + float(emu.tenant.settings.get("clockOffsetSeconds", 0) or 0)


def iso_ts(ts):
    return iso(datetime.datetime.fromtimestamp(ts, datetime.timezone.utc))


def parse_iso(text):
    """A DateTimeOffset (2026-04-20T10:15:30Z, optional fraction, Z or ±hh:mm) as epoch
    seconds, or None if it is not one."""
    if not isinstance(text, str):
        return None
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,7})?"
                 r"(Z|z|[+-]\d\d:\d\d)$", text.strip())
    if not m:
        return None
    try:
        dt = datetime.datetime(*(int(m.group(i)) for i in range(1, 7)),
                               tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    ts = dt.timestamp() + (float("0" + m.group(7)) if m.group(7) else 0.0)
    tz = m.group(8)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        ts -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return ts


# --- policies ---------------------------------------------------------------------------

def policy_targets_user(tenant, policy, user):
    """Whether an authentication method configuration includes @user (state, include and
    exclude targets: all_users or groups)."""
    def hits(targets):
        for tgt in targets or []:
            tid = tgt.get("id")
            if tid == "all_users":
                return True
            g = tenant.groups.get(tid)
            if g is not None and user["id"] in g.get("_members", []):
                return True
        return False
    if policy.get("state") != "enabled":
        return False
    return hits(policy.get("includeTargets")) and not hits(policy.get("excludeTargets"))


# --- output shapes ----------------------------------------------------------------------

# Properties per type beyond id/createdDateTime (v1.0 CSDL; beta additions below).
# Write-only (publicKeyCredential) and navigation properties are never returned.
PROPS = {
    "password": ["password"],
    "email": ["emailAddress"],
    "phone": ["phoneNumber", "phoneType", "smsSignInState"],
    "fido2": ["displayName", "aaGuid", "model", "attestationCertificates", "attestationLevel",
              "passkeyType"],
    "microsoftAuthenticator": ["displayName", "deviceTag", "phoneAppVersion"],
    "softwareOath": ["secretKey"],
    "temporaryAccessPass": ["temporaryAccessPass", "startDateTime", "lifetimeInMinutes",
                            "isUsableOnce", "isUsable", "methodUsabilityReason"],
    "windowsHelloForBusiness": ["displayName", "keyStrength"],
    "platformCredential": ["displayName", "keyStrength", "platform"],
    "hardwareOath": [],
}
BETA_EXTRA = {"microsoftAuthenticator": ["clientAppName"]}
DEFAULTS = {"attestationCertificates": [], "passkeyType": "deviceBound",
            "attestationLevel": "notAttested"}
ALWAYS_NULL = {"password", "secretKey"}       # Graph never returns these secrets


def types_in(version):
    return [s for s in METHOD_TYPES if version == "beta" or s not in BETA_ONLY_METHODS]


def tap_usability(emu, user, m):
    """(isUsable, methodUsabilityReason) of a TAP, computed now (reference §3)."""
    t = emu.tenant
    policy = t.policies["temporaryaccesspass"]
    if not policy_targets_user(t, policy, user):
        return False, "DisabledByPolicy"
    if m.get("isUsableOnce") and m.get("_used"):
        return False, "OneTimeUsed"
    now = now_ts(emu)
    start = m.get("_startTs")
    if start is None:        # a TAP from the tenant file
        start = parse_iso(m.get("startDateTime")) or parse_iso(m.get("createdDateTime")) or 0
    if now < start:
        return False, "NotYetValid"
    if now >= start + 60 * int(m.get("lifetimeInMinutes", 0)):
        return False, "Expired"
    return True, "EnabledByPolicy"


def method_view(req, user, m, with_type=False, reveal=None):
    """A method as Graph returns it in req.version; @with_type adds @odata.type (items of the
    generic methods collection, single-entity responses); @reveal is a TAP's pass (only in
    the creation response)."""
    short = m["_type"]
    out = {}
    if with_type:
        out["@odata.type"] = METHOD_TYPES[short][1]
    out["id"] = m["id"]
    for prop in PROPS[short] + (BETA_EXTRA.get(short, []) if req.version == "beta" else []):
        if prop in ALWAYS_NULL:
            out[prop] = None
        elif short == "temporaryAccessPass" and prop in ("isUsable", "methodUsabilityReason"):
            usable, reason = tap_usability(req.emu, user, m)
            out[prop] = usable if prop == "isUsable" else reason
        elif prop == "temporaryAccessPass":
            out[prop] = reveal
        else:
            v = m.get(prop, DEFAULTS.get(prop))
            out[prop] = list(v) if isinstance(v, list) else v
    out["createdDateTime"] = m.get("createdDateTime")
    if req.version == "beta":
        out["lastUsedDateTime"] = m.get("lastUsedDateTime")
    return out


# --- the default MFA method -----------------------------------------------------------------

# Types that can be the user's default MFA method (the targets of signInPreferences'
# userPreferredMethodForSecondaryAuthentication: push, oath, sms/voice*), best first.
DEFAULT_CAPABLE = ("microsoftAuthenticator", "softwareOath", "hardwareOath", "phone")
PHONE_PRIORITY = {"mobile": 0, "alternateMobile": 1, "office": 2}


def _default_rank(m):
    return (DEFAULT_CAPABLE.index(m["_type"]), PHONE_PRIORITY.get(m.get("phoneType"), 3),
            m.get("createdDateTime") or "")


def default_method(user):
    for m in user["_methods"]:
        if m.get("_default") and m["_type"] in DEFAULT_CAPABLE:
            return m
    return None


def ensure_default(user):
    """If the user has default-capable methods but none is the default (the default was
    deleted, or the first one was just added), the best remaining one becomes default."""
    if default_method(user) is not None:
        return
    for m in user["_methods"]:
        m["_default"] = False
        m.pop("_preference", None)
    capable = sorted((m for m in user["_methods"] if m["_type"] in DEFAULT_CAPABLE),
                     key=_default_rank)
    if capable:
        capable[0]["_default"] = True


def delete_method(req, user, m):
    """Delete @m with Graph's rules (password: never; default: only when it is the last
    default-capable method; mobile phone: not while an alternateMobile exists)."""
    t = req.emu.tenant
    short = m["_type"]
    if short == "password":
        raise bad_request("The password authentication method cannot be deleted.", "badRequest")
    if m.get("_default") and short in DEFAULT_CAPABLE and \
            any(o is not m and o["_type"] in DEFAULT_CAPABLE for o in user["_methods"]):
        raise bad_request("Cannot delete default method with other methods configured. "
                          "Please change default method before deletion.", "badRequest")
    if short == "phone" and m.get("phoneType") == "mobile" and \
            any(o["_type"] == "phone" and o.get("phoneType") == "alternateMobile"
                for o in user["_methods"]):
        raise bad_request("A user can't have an alternate mobile number without a mobile "
                          "number. Delete the alternateMobile phone method first.",
                          "badRequest")
    t.remove_method(user, m)
    ensure_default(user)


def find_typed(req, user, short, method_id):
    m = None
    for cand in user["_methods"]:
        if cand["_type"] == short and cand["id"].lower() == method_id.lower():
            m = cand
    if m is None:
        raise not_found(f"Authentication method '{method_id}' was not found for the user.",
                        "itemNotFound")
    return m


# --- the generic collection -----------------------------------------------------------------

@user_route("GET", r"/authentication/methods", perms=GENERIC_READ)
def list_methods(req):
    user = target_user(req, GENERIC_READ)
    no_query_options(req)
    kinds = types_in(req.version)
    return {"@odata.context": context(req, f"users('{user['id']}')/authentication/methods"),
            "value": [method_view(req, user, m, with_type=True)
                      for m in user["_methods"] if m["_type"] in kinds]}


def _find_any(req, user, method_id):
    kinds = types_in(req.version)
    for m in user["_methods"]:
        if m["_type"] in kinds and m["id"].lower() == method_id.lower():
            return m
    raise not_found(f"Authentication method '{method_id}' was not found for the user.",
                    "itemNotFound")


@user_route("GET", r"/authentication/methods/(?P<mid>[^/]+)", perms=GENERIC_READ)
def get_method(req):
    user = target_user(req, GENERIC_READ)
    no_query_options(req)
    m = _find_any(req, user, req.params["mid"])
    return dict({"@odata.context": context(
        req, f"users('{user['id']}')/authentication/methods/$entity")},
        **method_view(req, user, m, with_type=True))


@user_route("DELETE", r"/authentication/methods/(?P<mid>[^/]+)", perms=GENERIC_DELETE)
def delete_generic(req):
    """Delegated only (reference §5.3: the generic collection is Deletable=false for apps)."""
    user = target_user(req, GENERIC_DELETE, write=True)
    m = _find_any(req, user, req.params["mid"])
    delete_method(req, user, m)
    return no_content()


# --- typed collections: list, get, delete ------------------------------------------------------

def _register_typed(short):
    seg, _ = METHOD_TYPES[short]
    versions = ("beta",) if short in BETA_ONLY_METHODS else ("v1.0", "beta")
    read, write = method_perms(short, False), method_perms(short, True)
    def list_typed(req):
        user = target_user(req, read)
        no_query_options(req)
        return {"@odata.context": context(req, f"users('{user['id']}')/authentication/{seg}"),
                "value": [method_view(req, user, m) for m in user["_methods"]
                          if m["_type"] == short]}

    def get_typed(req):
        user = target_user(req, read)
        no_query_options(req)
        m = find_typed(req, user, short, req.params["mid"])
        return dict({"@odata.context": context(
            req, f"users('{user['id']}')/authentication/{seg}/$entity")},
            **method_view(req, user, m, with_type=True))

    def delete_typed(req):
        user = target_user(req, write, write=True)
        m = find_typed(req, user, short, req.params["mid"])
        delete_method(req, user, m)
        return no_content()

    for fn, name in ((list_typed, "list"), (get_typed, "get"), (delete_typed, "delete")):
        fn.__name__ = f"{name}_{seg}"
    user_route("GET", rf"/authentication/{seg}", perms=read, versions=versions)(list_typed)
    # A bound function such as fido2Methods/creationOptions is not a method id.
    user_route("GET", rf"/authentication/{seg}/(?P<mid>(?!creationOptions\b)[^/]+)", perms=read,
               versions=versions)(get_typed)
    user_route("DELETE", rf"/authentication/{seg}/(?P<mid>[^/]+)", perms=write,
               versions=versions)(delete_typed)


# phoneMethods POST is declared before the generic typed routes so its perms are its own.
PHONE_WRITE = method_perms("phone", True)
PHONE_IDS = {"mobile": "3179e48a-750b-4051-897c-87b9720928f7",
             "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
             "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc"}
PHONE_RE = re.compile(r"^\+\d{1,3} \d{4,15}(x\d{1,8})?$")


@user_route("POST", r"/authentication/phoneMethods", perms=PHONE_WRITE)
def create_phone(req):
    """POST phoneMethods {phoneNumber "+1 2065555555", phoneType mobile|alternateMobile|office}
    (reference §5.2): one of each type; alternateMobile needs a mobile."""
    user = target_user(req, PHONE_WRITE, write=True)
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("Invalid request body.", "BadRequest")
    for k in body:
        if k not in ("phoneNumber", "phoneType") and k != "@odata.type":
            raise bad_request(f"The property '{k}' does not exist on type "
                              "'microsoft.graph.phoneAuthenticationMethod'. Make sure to only "
                              "use property names that are defined by the type or mark the "
                              "type as open type.", "BadRequest")
    number, ptype = body.get("phoneNumber"), body.get("phoneType")
    if ptype not in PHONE_IDS:
        raise bad_request("Invalid value for phoneType; expected mobile, alternateMobile or "
                          "office.", "badRequest")
    if not isinstance(number, str) or not PHONE_RE.match(number):
        raise bad_request("Invalid phone number format. Phone numbers must be in the format "
                          "'+{country code} {number}x{extension}'.", "badRequest")
    phones = {m.get("phoneType"): m for m in user["_methods"] if m["_type"] == "phone"}
    if ptype in phones:
        raise bad_request(f"The user already has a phone method of type '{ptype}'.",
                          "badRequest")
    if ptype == "alternateMobile" and "mobile" not in phones:
        raise bad_request("A user can't have an alternate mobile number without a mobile "
                          "number.", "badRequest")
    m = req.emu.tenant.add_method(user, {
        "type": "phone", "id": PHONE_IDS[ptype], "phoneNumber": number, "phoneType": ptype,
        "smsSignInState": "notEnabled" if ptype == "mobile" else "notSupported"})
    ensure_default(user)
    body = dict({"@odata.context": context(
        req, f"users('{user['id']}')/authentication/phoneMethods/$entity")},
        **method_view(req, user, m, with_type=True))
    return Response(201, body, {"Location": f"{req.base_url()}/users/{user['id']}/"
                                            f"authentication/phoneMethods/{m['id']}"})


for _short in METHOD_TYPES:
    _register_typed(_short)


# --- beta signInPreferences: change the default before deleting it ----------------------------

PREFERENCE_TYPES = {
    "push": lambda m: m["_type"] == "microsoftAuthenticator",
    "oath": lambda m: m["_type"] in ("softwareOath", "hardwareOath", "microsoftAuthenticator"),
    "sms": lambda m: m["_type"] == "phone" and m.get("phoneType") == "mobile",
    "voiceMobile": lambda m: m["_type"] == "phone" and m.get("phoneType") == "mobile",
    "voiceAlternateMobile": lambda m: m["_type"] == "phone" and
    m.get("phoneType") == "alternateMobile",
    "voiceOffice": lambda m: m["_type"] == "phone" and m.get("phoneType") == "office",
}


def _preference_of(m):
    if m is None:
        return None
    if m.get("_preference"):
        return m["_preference"]
    if m["_type"] == "microsoftAuthenticator":
        return "push"
    if m["_type"] in ("softwareOath", "hardwareOath"):
        return "oath"
    return {"mobile": "sms", "alternateMobile": "voiceAlternateMobile",
            "office": "voiceOffice"}.get(m.get("phoneType"))


def _sign_in_preferences(req, user):
    return {"@odata.context": context(
        req, f"users('{user['id']}')/authentication/signInPreferences"),
        "isSystemPreferredAuthenticationMethodEnabled":
            bool(user.get("_systemPreferredMfa",
                          req.emu.tenant.settings.get("systemPreferredMfaEnabled", False))),
        "userPreferredMethodForSecondaryAuthentication": _preference_of(default_method(user))}


SIGNIN_PREF_READ = GENERIC_READ
SIGNIN_PREF_WRITE = Perms.of(
    app=["UserAuthenticationMethod.ReadWrite.All"],
    delegated=["UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All"],
    roles=WRITE_ROLES, self_ok=True)


@user_route("GET", r"/authentication/signInPreferences", perms=SIGNIN_PREF_READ,
            versions=("beta",))
def get_sign_in_preferences(req):
    user = target_user(req, SIGNIN_PREF_READ)
    return _sign_in_preferences(req, user)


@user_route("PATCH", r"/authentication/signInPreferences", perms=SIGNIN_PREF_WRITE,
            versions=("beta",))
def patch_sign_in_preferences(req):
    """Beta only (reference §5.3): makes the method behind the given preference the default."""
    user = target_user(req, SIGNIN_PREF_WRITE, write=True)
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("Invalid request body.", "BadRequest")
    for k in body:
        if k not in ("userPreferredMethodForSecondaryAuthentication",
                     "isSystemPreferredAuthenticationMethodEnabled"):
            raise bad_request(f"The property '{k}' does not exist on type "
                              "'microsoft.graph.signInPreferences'. Make sure to only use "
                              "property names that are defined by the type or mark the type as "
                              "open type.", "BadRequest")
    if "isSystemPreferredAuthenticationMethodEnabled" in body:
        v = body["isSystemPreferredAuthenticationMethodEnabled"]
        if not isinstance(v, bool):
            raise bad_request("isSystemPreferredAuthenticationMethodEnabled must be a "
                              "Boolean.", "BadRequest")
        user["_systemPreferredMfa"] = v
    if "userPreferredMethodForSecondaryAuthentication" in body:
        pref = body["userPreferredMethodForSecondaryAuthentication"]
        if pref not in PREFERENCE_TYPES:
            raise bad_request(f"Invalid value '{pref}' for "
                              "userPreferredMethodForSecondaryAuthentication.", "badRequest")
        cands = sorted((m for m in user["_methods"] if m["_type"] in DEFAULT_CAPABLE and
                        PREFERENCE_TYPES[pref](m)), key=_default_rank)
        if not cands:
            raise bad_request(f"The user has no registered method for '{pref}'.", "badRequest")
        for m in user["_methods"]:
            m["_default"] = False
            m.pop("_preference", None)
        cands[0]["_default"] = True
        cands[0]["_preference"] = pref
    return _sign_in_preferences(req, user)


# --- segments under /authentication that this emulator does not serve ---------------------

SEGMENTS = {
    "v1.0": {"emailMethods", "fido2Methods", "methods", "microsoftAuthenticatorMethods",
             "passwordMethods", "phoneMethods", "platformCredentialMethods",
             "softwareOathMethods", "temporaryAccessPassMethods",
             "windowsHelloForBusinessMethods"},
    "beta": {"hardwareOathMethods", "signInPreferences"},
}
EXISTING_NOT_SERVED = {
    "v1.0": {"externalAuthenticationMethods", "operations"},
    "beta": {"passwordlessMicrosoftAuthenticatorMethods", "qrCodePinMethod", "requirements",
             "resourceAccountKeyAuthenticationMethods"},
}
_SERVED_ANY = sorted(SEGMENTS["v1.0"] | SEGMENTS["beta"])
_CATCH = r"/authentication/(?!(?:%s)(?:/|$))(?P<seg>[^/]+)(?:/.*)?" % "|".join(_SERVED_ANY)


def _unserved(req, seg):
    existing = EXISTING_NOT_SERVED["v1.0"] | (EXISTING_NOT_SERVED["beta"]
                                              if req.version == "beta" else set())
    if seg in existing:
        raise GraphError(501, "NotImplemented",
                         f"graph-emulator does not implement '{seg}'.")
    raise bad_request(f"Resource not found for the segment '{seg}'.", "BadRequest")


def _beta_only_on_v1(req):
    seg = req.path.split("/authentication/", 1)[1].split("/")[0]
    raise bad_request(f"Resource not found for the segment '{seg}'.", "BadRequest")


_OPEN = Perms.of()
for _verb in ("GET", "POST", "PATCH", "PUT", "DELETE"):
    user_route(_verb, _CATCH, perms=_OPEN)(lambda req: _unserved(req, req.params["seg"]))
    # beta-only segments on v1.0: 400 as for any segment v1.0 does not have
    user_route(_verb, r"/authentication/(?:%s)(?:/.*)?" % "|".join(sorted(SEGMENTS["beta"])),
               perms=_OPEN, versions=("v1.0",))(_beta_only_on_v1)

__all__ = ["user_route", "target_user", "context", "method_view", "method_perms",
           "delete_method", "ensure_default", "find_typed", "no_query_options", "now_ts",
           "iso_ts", "parse_iso", "policy_targets_user", "is_self", "tap_usability"]
