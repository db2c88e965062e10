"""Users: GET /users ($filter, $select, $top, $count, $orderby, $search, paging), GET
/users/{id | UPN}, GET /me, POST /users/{id}/revokeSignInSessions (reference §8.3, §8.5, §9).

Basic queries take eq (and startswith on text properties) combined with and/or. ne, not,
endsWith, eq null, $search, and $count need advanced query mode: the ConsistencyLevel:
eventual header and (except $search) $count=true; otherwise 400 Request_UnsupportedQuery as
in Graph.
"""

import re
import time

from ..core import GraphError, Perms, bad_request, forbidden, route
from ..odata import Filter, page
from .methods import (AUTH_ADMIN, GLOBAL_ADMIN, PRIV_AUTH_ADMIN, GRAPH_HOST, is_admin_target,
                      iso_ts, user_route)

USER_READ = Perms.of(
    app=["User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
         "Directory.ReadWrite.All"],
    delegated=["User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All",
               "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"])
ME_READ = Perms.of(
    app=USER_READ.app,
    delegated=["User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All",
               "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
               "Directory.AccessAsUser.All"])
REVOKE = Perms.of(
    app=["User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"],
    delegated=["User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All",
               "Directory.AccessAsUser.All"],
    roles=["User Administrator", "Helpdesk Administrator", AUTH_ADMIN, PRIV_AUTH_ADMIN],
    self_ok=True)

# v1.0 user properties (CSDL), plus id and deletedDateTime from directoryObject.
USER_PROPS = [
    "id", "deletedDateTime", "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses",
    "assignedPlans", "authorizationInfo", "birthday", "businessPhones", "city", "companyName",
    "consentProvidedForMinor", "country", "createdDateTime", "creationType",
    "customSecurityAttributes", "department", "deviceEnrollmentLimit", "displayName",
    "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData",
    "employeeType", "externalUserState", "externalUserStateChangeDateTime", "faxNumber",
    "givenName", "hireDate", "identities", "identityParentId", "imAddresses", "interests",
    "isManagementRestricted", "isResourceAccount", "jobTitle", "lastPasswordChangeDateTime",
    "legalAgeGroupClassification", "licenseAssignmentStates", "mail", "mailboxSettings",
    "mailNickname", "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName",
    "onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
    "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors", "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "onPremisesUserPrincipalName",
    "otherMails", "passwordPolicies", "passwordProfile", "pastProjects", "postalCode",
    "preferredDataLocation", "preferredLanguage", "preferredName", "print",
    "provisionedPlans", "proxyAddresses", "responsibilities", "schools", "securityIdentifier",
    "serviceProvisioningErrors", "showInAddressList", "signInActivity",
    "signInSessionsValidFromDateTime", "skills", "state", "streetAddress", "surname",
    "usageLocation", "userPrincipalName", "userType",
]
USER_NAVIGATION = {"manager", "memberOf", "transitiveMemberOf", "directReports",
                   "registeredDevices", "ownedDevices", "authentication", "extensions",
                   "photo", "licenseDetails", "appRoleAssignments", "createdObjects",
                   "ownedObjects", "sponsors"}
LIST_PROPS = {"businessPhones", "otherMails", "proxyAddresses", "imAddresses", "identities",
              "assignedLicenses", "assignedPlans", "provisionedPlans", "interests",
              "pastProjects", "responsibilities", "schools", "skills",
              "licenseAssignmentStates", "onPremisesProvisioningErrors",
              "serviceProvisioningErrors"}
DEFAULT_SELECT = ["businessPhones", "displayName", "givenName", "jobTitle", "mail",
                  "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                  "userPrincipalName", "id"]
# What User.ReadBasic.All may read (the "basic profile").
BASIC_PROPS = {"id", "displayName", "givenName", "surname", "mail", "userPrincipalName",
               "businessPhones", "jobTitle", "mobilePhone", "officeLocation",
               "preferredLanguage"}
_CANON = {p.lower(): p for p in USER_PROPS}

EQ_FIELDS = {"id", "userPrincipalName", "mail", "displayName", "userType", "accountEnabled",
             "givenName", "surname", "jobTitle", "department", "employeeId", "mailNickname",
             "onPremisesSyncEnabled", "createdDateTime", "companyName", "city", "country",
             "officeLocation", "onPremisesImmutableId", "preferredLanguage", "state",
             "usageLocation", "employeeType"}
STARTSWITH_FIELDS = {"displayName", "userPrincipalName", "mail", "givenName", "surname",
                     "jobTitle", "department", "mailNickname", "employeeId", "companyName",
                     "city", "country", "officeLocation", "state", "usageLocation"}
ENDSWITH_FIELDS = {"mail", "userPrincipalName", "displayName", "givenName", "surname",
                   "mailNickname", "otherMails", "proxyAddresses"}
ANY_FIELDS = {"otherMails", "proxyAddresses", "businessPhones", "imAddresses"}
RANGE_FIELDS = {"createdDateTime", "employeeHireDate", "employeeLeaveDateTime",
                "signInSessionsValidFromDateTime"}
BOOL_FIELDS = {"accountEnabled", "onPremisesSyncEnabled"}
SYSTEM_OPTIONS = {"$filter", "$select", "$top", "$skiptoken", "$count", "$orderby",
                  "$search", "$expand", "$format", "$skip"}


# --- values -------------------------------------------------------------------------------

def value(tenant, user, prop):
    if prop == "signInSessionsValidFromDateTime":
        return user.get("_signInSessionsValidFrom") or user.get("createdDateTime")
    if prop.startswith("extension_"):
        return user.get("_extensions", {}).get(prop)
    v = user.get(prop)
    if v is None and prop in LIST_PROPS:
        return []
    return list(v) if isinstance(v, list) else v


def _is_extension(tenant, name):
    return name.startswith("extension_") and name in getattr(tenant, "extension_properties", ())


def parse_select(req):
    """The canonical property names of $select, or None. Unknown names: 400 as in Graph."""
    text = req.query.get("$select")
    if text is None:
        return None
    names = [s.strip() for s in text.split(",")]
    out = []
    for n in names:
        if not n:
            raise bad_request("Syntax error: character ',' is not valid at this position in "
                              f"'$select={text}'.", "BadRequest")
        if n == "*":
            out.extend(p for p in USER_PROPS if p not in out)
            continue
        canon = _CANON.get(n.lower())
        if canon is None and _is_extension(req.emu.tenant, n):
            canon = n
        if canon is None:
            raise bad_request("Parsing OData Select and Expand failed: Could not find a "
                              f"property named '{n}' on type 'microsoft.graph.user'.",
                              "BadRequest")
        if canon not in out:
            out.append(canon)
    return out


def _basic_only(req):
    full = (USER_READ.app | USER_READ.delegated | ME_READ.delegated) - {"User.ReadBasic.All"}
    return not (req.principal.scopes & full)


def project(req, user, props, is_me=False):
    if props is None:
        props = DEFAULT_SELECT
        if _basic_only(req) and not is_me:
            props = [p for p in props if p in BASIC_PROPS]
    elif _basic_only(req) and not is_me:
        extra = [p for p in props if p not in BASIC_PROPS]
        if extra:
            raise forbidden()
    t = req.emu.tenant
    # Directory extension properties come back only when selected, and only once set.
    return {p: value(t, user, p) for p in props
            if not p.startswith("extension_") or p in user.get("_extensions", {})}


def _context(req, props, entity):
    sel = f"({','.join(props)})" if props is not None else ""
    return f"{GRAPH_HOST}/{req.version}/$metadata#users{sel}{'/$entity' if entity else ''}"


def _check_options(req, allowed):
    for k in req.query:
        if k.startswith("$") and k not in SYSTEM_OPTIONS:
            raise bad_request(f"Unrecognized query argument specified: '{k}'.", "BadRequest")
        if k.startswith("$") and k not in allowed:
            raise bad_request(f"Query option '{k}' is not allowed on this request.",
                              "BadRequest")
    exp = req.query.get("$expand")
    if exp is not None:
        first = exp.split(",")[0].split("(")[0].strip()
        if first in USER_NAVIGATION:
            raise GraphError(501, "NotImplemented",
                             f"graph-emulator does not implement $expand={first}.")
        raise bad_request("Parsing OData Select and Expand failed: Could not find a property "
                          f"named '{first}' on type 'microsoft.graph.user'.", "BadRequest")


# --- GET /users ------------------------------------------------------------------------------

def _advanced(req):
    return (req.headers.get("ConsistencyLevel") or "").strip().lower() == "eventual"


def _needs_advanced(op):
    return GraphError(400, "Request_UnsupportedQuery",
                      f"Operator '{op}' is not supported because the required parameters might "
                      "be missing. Try adding $count=true query parameter and "
                      "ConsistencyLevel:eventual header. Refer to "
                      "https://aka.ms/graph-docs/advanced-queries for more information")


def _unsupported(field):
    return GraphError(400, "Request_UnsupportedQuery",
                      f"Unsupported or invalid query filter clause specified for property "
                      f"'{field}' of resource 'User'.")


def _check_types(field, lit, op):
    if field.startswith("extension_"):
        return                       # typed by the extension's dataType; not checked here
    if field in BOOL_FIELDS:
        if not isinstance(lit, bool):
            raise bad_request("A binary operator with incompatible types was detected. Found "
                              f"operand types 'Edm.Boolean' and '{_edm(lit)}' for operator kind "
                              f"'{op}'.", "BadRequest")
    elif lit is not None and not isinstance(lit, str):
        raise bad_request("A binary operator with incompatible types was detected. Found "
                          f"operand types 'Edm.String' and '{_edm(lit)}' for operator kind "
                          f"'{op}'.", "BadRequest")


def _edm(lit):
    return {bool: "Edm.Boolean", int: "Edm.Int32", float: "Edm.Double",
            str: "Edm.String"}.get(type(lit), "Edm.Null" if lit is None else "Edm.Untyped")


def _validate_filter(node, advanced, count):
    """Graph's rules for which operators work in basic mode (reference §8.5)."""
    op = node[0]
    adv_ok = advanced and count
    if op in ("and", "or"):
        _validate_filter(node[1], advanced, count)
        _validate_filter(node[2], advanced, count)
        return
    if op == "not":
        if not adv_ok:
            raise _needs_advanced("not")
        _validate_filter(node[1], advanced, count)
        return
    field, lit = node[1], node[2]
    if op == "eq":
        if field not in EQ_FIELDS and not field.startswith("extension_"):
            raise _unsupported(field)
        if lit is None and not adv_ok:
            raise _needs_advanced("eq null")
        _check_types(field, lit, "Equal")
    elif op == "ne":
        if not adv_ok:
            raise _needs_advanced("ne")
        if field not in EQ_FIELDS and not field.startswith("extension_"):
            raise _unsupported(field)
        _check_types(field, lit, "NotEqual")
    elif op == "startswith":
        if field not in STARTSWITH_FIELDS:
            raise _unsupported(field)
        if not isinstance(lit, str):
            raise bad_request("startswith expects a string literal.", "BadRequest")
    elif op == "endswith":
        if not adv_ok:
            raise _needs_advanced("endsWith")
        if field not in ENDSWITH_FIELDS:
            raise _unsupported(field)
        if not isinstance(lit, str):
            raise bad_request("endswith expects a string literal.", "BadRequest")
    elif op == "any":
        if field not in ANY_FIELDS:
            raise _unsupported(field)
    elif op in ("gt", "ge", "lt", "le"):
        if field not in RANGE_FIELDS:
            raise _unsupported(field)
        if not adv_ok and field != "createdDateTime":
            raise _needs_advanced(op)
    else:
        raise _unsupported(field)


class _UserFilter(Filter):
    """odata.Filter plus endswith, which Graph supports in advanced mode."""

    def _eval(self, node, obj):
        if node[0] == "endswith":
            v = self.fields[node[1]](obj)
            lit = str(node[2]).lower()
            if isinstance(v, list):
                return any(isinstance(x, str) and x.lower().endswith(lit) for x in v)
            return isinstance(v, str) and v.lower().endswith(lit)
        return super()._eval(node, obj)


def _filter(req, users):
    text = req.query.get("$filter")
    if text is None:
        return users
    t = req.emu.tenant
    fields = {p: (lambda u, p=p: value(t, u, p)) for p in USER_PROPS}
    for ext in getattr(t, "extension_properties", ()):
        fields[ext] = (lambda u, p=ext: value(t, u, p))
    f = _UserFilter(text, fields, functions=("startswith", "endswith"))
    _validate_filter(f.tree, _advanced(req), req.query.get("$count", "").lower() == "true")
    return [u for u in users if f.matches(u)]


def _search(req, users):
    text = req.query.get("$search")
    if text is None:
        return users
    if not _advanced(req):
        raise GraphError(400, "Request_UnsupportedQuery",
                         "Request with $search query parameter only works through MSGraph "
                         "with a special request header: 'ConsistencyLevel: eventual'")
    terms = []
    for clause in text.replace(" OR ", " or ").split(" or "):
        c = clause.strip()
        if not (len(c) >= 2 and c[0] == '"' and c[-1] == '"' and ":" in c):
            raise bad_request(f"Invalid $search clause {c}: expected \"property:text\".",
                              "Request_UnsupportedQuery")
        prop, needle = c[1:-1].split(":", 1)
        if prop not in ("displayName", "mail", "userPrincipalName", "givenName", "surname",
                        "mailNickname"):
            raise bad_request(f"$search is not supported on property '{prop}'.",
                              "Request_UnsupportedQuery")
        terms.append((prop, needle.lower()))

    def hit(u):
        for prop, needle in terms:
            v = (u.get(prop) or "").lower()
            # tokenized prefix match, as directory $search does
            words = [v] + [w for w in re.split(r"[\s._@-]+", v) if w]
            if any(w.startswith(needle) for w in words):
                return True
        return False
    return [u for u in users if hit(u)]


def _orderby(req, users):
    text = req.query.get("$orderby")
    if text is None:
        return users
    parts = text.strip().split()
    prop = parts[0] if parts else ""
    desc = len(parts) > 1 and parts[1].lower() == "desc"
    if prop not in ("displayName", "userPrincipalName") or len(parts) > 2 or \
            (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"Sorting not supported for '{text}'.")
    if ("$filter" in req.query or "$search" in req.query) and not _advanced(req):
        raise GraphError(400, "Request_UnsupportedQuery",
                         "Sorting not supported for current query.")
    return sorted(users, key=lambda u: (u.get(prop) or "").lower(), reverse=desc)


@route("GET", r"/users", perms=USER_READ, cost=2)
def list_users(req):
    _check_options(req, {"$filter", "$select", "$top", "$skiptoken", "$count", "$orderby",
                         "$search"})
    t = req.emu.tenant
    count = req.query.get("$count")
    if count is not None:
        if count.lower() not in ("true", "false"):
            raise bad_request(f"Invalid value '{count}' for $count.", "BadRequest")
        if count.lower() == "true" and not _advanced(req):
            raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    props = parse_select(req)
    users = _orderby(req, _search(req, _filter(req, list(t.users.values()))))
    body = page(req, users, 100, 999, _context(req, props, False),
                project=lambda u: project(req, u, props))
    if (count or "").lower() == "true":
        body = {"@odata.context": body["@odata.context"], "@odata.count": len(users),
                **{k: v for k, v in body.items() if k != "@odata.context"}}
    return body


# --- GET /users/{id | UPN} and /me --------------------------------------------------------------

@route("GET", r"/users/(?P<user>[^/]+)", perms=USER_READ)
def get_user(req):
    _check_options(req, {"$select", "$expand"})
    user = req.emu.tenant.user(req.params["user"])
    props = parse_select(req)
    return {"@odata.context": _context(req, props, True), **project(req, user, props)}


@route("GET", r"/me", perms=ME_READ)
def get_me(req):
    if req.principal.kind != "delegated":
        raise bad_request("/me request is only valid with delegated authentication flow.",
                          "BadRequest")
    _check_options(req, {"$select", "$expand"})
    user = req.emu.tenant.users[req.principal.user_id]
    props = parse_select(req)
    return {"@odata.context": _context(req, props, True),
            **project(req, user, props, is_me=True)}


# --- revokeSignInSessions ------------------------------------------------------------------------

@user_route("POST", r"/revokeSignInSessions", perms=REVOKE)
def revoke_sign_in_sessions(req):
    """Invalidates the user's refresh tokens and session cookies: delegated access tokens
    issued before now stop working (auth.authenticate checks _signInSessionsValidFromTs)."""
    p = req.principal
    t = req.emu.tenant
    if req.params["user"] == "me":
        if p.kind != "delegated":
            raise bad_request("/me request is only valid with delegated authentication flow.",
                              "BadRequest")
        user = t.users[p.user_id]
    else:
        user = t.user(req.params["user"])
    if p.kind == "delegated" and p.user_id != user["id"]:
        if not any(s.endswith(".All") for s in p.scopes & REVOKE.delegated):
            raise forbidden()
        if is_admin_target(user) and not ({PRIV_AUTH_ADMIN, GLOBAL_ADMIN} & set(p.roles)):
            raise forbidden("Insufficient privileges to complete the operation. The target "
                            "user holds an administrator role.")
    now = time.time()
    user["_signInSessionsValidFromTs"] = now
    user["_signInSessionsValidFrom"] = iso_ts(now)
    return {"@odata.context": f"{GRAPH_HOST}/{req.version}/$metadata#Edm.Boolean",
            "value": True}
