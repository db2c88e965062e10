"""Groups and group membership, the kiosk's narrowest tracking write (reference §6.2):
GET /groups, GET /groups/{id}, GET /groups/{id}/members, POST /groups/{id}/members/$ref,
DELETE /groups/{id}/members/{id}/$ref.

Delegated writes: Graph lets a group's owners manage its members, and otherwise needs a
directory role (Groups Administrator, User Administrator, Directory Writers). Perms cannot
say "owner", so the write routes declare no roles and check role-or-owner themselves.
"""

import re

from ..core import GraphError, Perms, bad_request, forbidden, no_content, not_found, route
from ..odata import Filter, page, select
from .reports import allow_query, check_filter_ops, metadata

READ = Perms.of(app=["GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All",
                     "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"])
WRITE = Perms.of(app=["GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                      "Directory.ReadWrite.All"])
WRITE_ROLES = {"Groups Administrator", "User Administrator", "Directory Writers"}
# Role-assignable groups (isAssignableToRole): also RoleManagement.ReadWrite.Directory, and
# for delegated callers Privileged Role Administrator.
ROLE_GROUP_PERMS = {"RoleManagement.ReadWrite.Directory"}
ROLE_GROUP_ROLES = {"Privileged Role Administrator"}
# Without one of these, directoryObject collections show users as id + @odata.type only.
USER_READ = {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
             "Directory.ReadWrite.All"}

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

GROUP_DEFAULTS = {
    "deletedDateTime": None, "classification": None, "createdDateTime": "2024-01-15T09:00:00Z",
    "creationOptions": [], "description": None, "expirationDateTime": None, "groupTypes": [],
    "isAssignableToRole": False, "mail": None, "mailEnabled": False, "mailNickname": None,
    "membershipRule": None, "membershipRuleProcessingState": None,
    "onPremisesDomainName": None, "onPremisesLastSyncDateTime": None,
    "onPremisesNetBiosName": None, "onPremisesSamAccountName": None,
    "onPremisesSecurityIdentifier": None, "onPremisesSyncEnabled": None,
    "preferredDataLocation": None, "preferredLanguage": None, "proxyAddresses": [],
    "renewedDateTime": "2024-01-15T09:00:00Z", "resourceBehaviorOptions": [],
    "resourceProvisioningOptions": [], "securityEnabled": True, "securityIdentifier": None,
    "theme": None, "uniqueName": None, "visibility": None, "onPremisesProvisioningErrors": [],
    "serviceProvisioningErrors": []}
# Tenant-file keys that are not group properties (owners: who may manage members).
FILE_ONLY = {"owners"}
USER_DEFAULT_PROPS = ["businessPhones", "displayName", "givenName", "jobTitle", "mail",
                      "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                      "userPrincipalName", "id"]
GROUP_FILTER = {"displayName": {"eq", "startswith"}, "id": {"eq"}, "mailNickname": {"eq"},
                "mail": {"eq", "startswith"}, "securityEnabled": {"eq"},
                "mailEnabled": {"eq"}, "isAssignableToRole": {"eq"}}
GROUP_FILTER_TYPES = {"displayName": str, "id": str, "mailNickname": str, "mail": str,
                      "securityEnabled": bool, "mailEnabled": bool, "isAssignableToRole": bool}


def group_view(g):
    out = {"id": g["id"]}
    for k, v in GROUP_DEFAULTS.items():
        out[k] = g.get(k, v)
    out["displayName"] = g.get("displayName")
    for k, v in g.items():
        if not k.startswith("_") and k not in out and k not in FILE_ONLY:
            out[k] = v
    if out["mailNickname"] is None and out["displayName"]:
        out["mailNickname"] = re.sub(r"[^A-Za-z0-9]", "", out["displayName"])[:64] or None
    return out


def _group(req):
    t = req.emu.tenant
    gid = req.params["group"]
    if not GUID.fullmatch(gid):
        raise GraphError(400, "Request_BadRequest", f"Invalid object identifier '{gid}'.")
    return t.group(gid)


@route("GET", r"/groups", perms=READ, cost=1)
def list_groups(req):
    allow_query(req, {"$filter", "$select", "$top", "$skiptoken", "$orderby"})
    groups = [group_view(g) for g in req.emu.tenant.groups.values()]
    if req.query.get("$filter"):
        flt = Filter(req.query["$filter"], {f: (lambda g, f=f: g.get(f)) for f in GROUP_FILTER})
        check_filter_ops(flt, GROUP_FILTER, GROUP_FILTER_TYPES, "resource 'Group'")
        groups = [g for g in groups if flt.matches(g)]
    order = req.query.get("$orderby")
    if order:
        m = re.fullmatch(r"\s*displayName(?:\s+(asc|desc))?\s*", order)
        if not m:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported sort property in $orderby: '{order}'.")
        groups.sort(key=lambda g: (g["displayName"] or "").lower(), reverse=m.group(1) == "desc")
    sel = req.query.get("$select")
    return page(req, groups, 100, 999, f"{metadata(req)}#groups",
                lambda g: select(g, sel))


@route("GET", r"/groups/(?P<group>[^/]+)", perms=READ, cost=1)
def get_group(req):
    allow_query(req, {"$select"})
    g = group_view(_group(req))
    sel = req.query.get("$select")
    ctx = f"{metadata(req)}#groups/$entity"
    if sel:
        ctx = f"{metadata(req)}#groups({sel})/$entity"
    return {"@odata.context": ctx, **select(g, sel)}


def _member_view(req, t, oid, full_users):
    u = t.users.get(oid)
    if u is not None:
        obj = {"@odata.type": "#microsoft.graph.user"}
        for k in USER_DEFAULT_PROPS:
            v = u.get(k)
            if k == "businessPhones" and v is None:
                v = []
            obj[k] = v if (full_users or k == "id") else ([] if k == "businessPhones"
                                                           else None)
        if full_users:
            for k, v in u.items():
                if not k.startswith("_") and k not in obj:
                    obj[k] = v
        return obj
    g = t.groups.get(oid)
    if g is not None:
        return {"@odata.type": "#microsoft.graph.group", **group_view(g)}
    return {"@odata.type": "#microsoft.graph.directoryObject", "id": oid,
            "deletedDateTime": None}


def _select_member(obj, sel, full_users):
    if not sel:
        if obj["@odata.type"] == "#microsoft.graph.user":
            return {k: obj[k] for k in ["@odata.type", *USER_DEFAULT_PROPS]}
        return obj
    out = select(obj, sel)
    if obj["@odata.type"] == "#microsoft.graph.user" and not full_users:
        out = {k: (v if k in ("@odata.type", "id") else None) for k, v in out.items()}
    return out


@route("GET", r"/groups/(?P<group>[^/]+)/members", perms=READ, cost=3)
def list_members(req):
    allow_query(req, {"$select", "$top", "$skiptoken"})
    t = req.emu.tenant
    g = _group(req)
    full = bool(req.principal.scopes & USER_READ)
    sel = req.query.get("$select")
    return page(req, list(g["_members"]), 100, 999,
                f"{metadata(req)}#directoryObjects",
                lambda oid: _select_member(_member_view(req, t, oid, full), sel, full))


# --- membership writes ------------------------------------------------------------------------

REF = re.compile(r"https://[^/?#]+/(?:v1\.0|beta)/(?:directoryObjects|users|groups|devices|"
                 r"servicePrincipals|orgContacts|contacts)"
                 r"(?:/(?P<a>[^/?#()]+)|\('(?P<b>[^']+)'\))/?")


def _authorize_write(req, g):
    p = req.principal
    if g.get("isAssignableToRole"):
        if p.kind == "app" and not p.scopes & ROLE_GROUP_PERMS:
            raise forbidden()
        if p.kind == "delegated" and "Global Administrator" not in p.roles and \
                not p.roles & ROLE_GROUP_ROLES:
            raise forbidden()
    if p.kind != "delegated" or "Global Administrator" in p.roles or p.roles & WRITE_ROLES \
            or p.roles & ROLE_GROUP_ROLES:
        return
    if p.user_id in g.get("owners", []) and not g.get("isAssignableToRole"):
        return
    raise forbidden()


def _check_static(g):
    if "DynamicMembership" in (g.get("groupTypes") or []) or g.get("membershipRule"):
        raise GraphError(400, "Request_BadRequest",
                         "Insufficient privileges to complete the operation. Members of a "
                         "group with dynamic membership cannot be changed manually.")


@route("POST", r"/groups/(?P<group>[^/]+)/members/\$ref", perms=WRITE, cost=1)
def add_member(req):
    allow_query(req, set())
    t = req.emu.tenant
    g = _group(req)
    body = req.json()
    if not isinstance(body, dict) or set(body) != {"@odata.id"}:
        raise bad_request("The request body must be a JSON object with exactly one property, "
                          "'@odata.id'.", "Request_BadRequest")
    ref = body["@odata.id"]
    m = REF.fullmatch(ref) if isinstance(ref, str) else None
    if m is None:
        raise bad_request(f"Invalid URL format specified in @odata.id: '{ref}'.",
                          "Request_BadRequest")
    oid = m.group("a") or m.group("b")
    if not GUID.fullmatch(oid):
        raise bad_request(f"Invalid object identifier '{oid}'.", "Request_BadRequest")
    _authorize_write(req, g)
    _check_static(g)
    target = next((k for k in (oid, oid.lower()) if k in t.users or k in t.groups), None)
    if target is None:
        raise not_found(f"Resource '{oid}' does not exist or one of its queried "
                        "reference-property objects are not present.")
    if target == g["id"] or (target in t.groups and g.get("isAssignableToRole")):
        raise bad_request("A group cannot be added as a member of itself, and role-assignable "
                          "groups cannot have groups as members.", "Request_BadRequest")
    if target in g["_members"]:
        raise bad_request("One or more added object references already exist for the following "
                          "modified properties: 'members'.", "Request_BadRequest")
    g["_members"].append(target)
    return no_content()


@route("DELETE", r"/groups/(?P<group>[^/]+)/members/(?P<member>[^/]+)/\$ref", perms=WRITE,
       cost=1)
def remove_member(req):
    allow_query(req, set())
    g = _group(req)
    mid = req.params["member"]
    if not GUID.fullmatch(mid):
        raise bad_request(f"Invalid object identifier '{mid}'.", "Request_BadRequest")
    _authorize_write(req, g)
    _check_static(g)
    hit = next((x for x in g["_members"] if x.lower() == mid.lower()), None)
    if hit is None:
        raise not_found("One or more removed object references do not exist for the following "
                        "modified properties: 'members'.")
    g["_members"].remove(hit)
    return no_content()
