"""PATCH /users/{id | UPN}: the kiosk's tracking record on the user object (reference §6.2):
directory extension properties (extension_{appIdNoDashes}_{name}), declared in the tenant
file's "extensionProperties" with their dataType, and a few ordinary profile properties.

Values of extension properties live in user["_extensions"]; GET /users/{id}?$select=… returns
them through Tenant.selected_extensions(). Only what a kiosk could reasonably write is
updatable here; identity-defining properties (userPrincipalName, mail, userType, …) are
refused with 400 even where Graph would take them, so a client that tries is caught.
"""

import base64
import re

from ..core import GraphError, Perms, forbidden, no_content, route
from ..odata import parse_datetime

PATCH_USER = Perms.of(
    app=["User.ReadWrite.All", "Directory.ReadWrite.All", "User.EnableDisableAccount.All"],
    roles=["User Administrator", "Privileged Authentication Administrator"])
FULL_WRITE = {"User.ReadWrite.All", "Directory.ReadWrite.All"}
# A User Administrator may update users holding none of the roles but these.
LIMITED_ADMIN_ROLES = {"Helpdesk Administrator", "User Administrator", "Password Administrator",
                       "Reports Reader", "Message Center Reader", "Usage Summary Reports Reader",
                       "Guest Inviter", "Directory Readers"}

# Updatable here: property → (kind, max length).
UPDATABLE = {
    "displayName": ("string", 256), "givenName": ("string", 64), "surname": ("string", 64),
    "jobTitle": ("string", 128), "department": ("string", 64), "companyName": ("string", 64),
    "officeLocation": ("string", 128), "employeeId": ("string", 16),
    "employeeType": ("string", 64), "city": ("string", 128), "state": ("string", 128),
    "country": ("string", 128), "streetAddress": ("string", 1024), "postalCode": ("string", 40),
    "preferredLanguage": ("string", 16), "usageLocation": ("country", 2),
    "mobilePhone": ("string", 64), "businessPhones": ("phones", 64),
    "accountEnabled": ("bool", 0), "onPremisesExtensionAttributes": ("extattrs", 1024),
}
# Known v1.0 user properties this route refuses (read-only in Graph, or not the kiosk's).
READ_ONLY = {"id", "userPrincipalName", "mail", "userType", "createdDateTime", "creationType",
             "mailNickname", "otherMails", "proxyAddresses", "identities", "passwordProfile",
             "passwordPolicies", "signInSessionsValidFromDateTime", "lastPasswordChangeDateTime",
             "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesSecurityIdentifier",
             "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesSamAccountName",
             "onPremisesUserPrincipalName", "onPremisesLastSyncDateTime", "securityIdentifier",
             "externalUserState", "externalUserStateChangeDateTime", "assignedLicenses",
             "assignedPlans", "provisionedPlans", "licenseAssignmentStates", "signInActivity",
             "customSecurityAttributes", "deletedDateTime", "ageGroup", "employeeHireDate",
             "employeeLeaveDateTime", "employeeOrgData", "faxNumber", "imAddresses",
             "showInAddressList", "isResourceAccount", "legalAgeGroupClassification",
             "consentProvidedForMinor", "preferredDataLocation"}
# Cloud-only properties a directory-synced user still takes from Graph.
SYNC_WRITABLE = {"usageLocation", "preferredLanguage", "accountEnabled"}
EXT_ATTRS = {f"extensionAttribute{i}" for i in range(1, 16)}
EXT_TYPES = ("String", "Integer", "LargeInteger", "Boolean", "DateTime", "Binary")


def _invalid(prop):
    return GraphError(400, "Request_BadRequest",
                      f"Invalid value specified for property '{prop}' of resource 'User'.")


def _check_string(prop, v, limit, nullable=True):
    if v is None:
        if not nullable:
            raise _invalid(prop)
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise _invalid(prop)
    return v


def _value(prop, v, kind, limit):
    if kind == "string":
        if prop == "displayName" and (v is None or not str(v).strip()):
            raise _invalid(prop)
        return _check_string(prop, v, limit)
    if kind == "country":
        if v is not None and not (isinstance(v, str) and re.fullmatch(r"[A-Z]{2}", v)):
            raise _invalid(prop)
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise _invalid(prop)
        return v
    if kind == "phones":
        if not isinstance(v, list) or len(v) > 1 or \
                not all(isinstance(p, str) and 0 < len(p) <= limit for p in v):
            raise _invalid(prop)
        return list(v)
    if kind == "extattrs":
        if not isinstance(v, dict):
            raise _invalid(prop)
        for k, s in v.items():
            if k not in EXT_ATTRS:
                raise GraphError(400, "Request_BadRequest",
                                 f"Property '{k}' does not exist as a declared property or "
                                 "extension property.")
            _check_string(f"{prop}.{k}", s, 1024)
        return dict(v)
    raise AssertionError(kind)


def extension_value(name, v, data_type):
    """A directory extension value checked against its dataType; None clears it."""
    if v is None:
        return None
    if data_type == "String":
        ok = isinstance(v, str) and len(v) <= 256
    elif data_type == "Integer":
        ok = isinstance(v, int) and not isinstance(v, bool) and -2**31 <= v < 2**31
    elif data_type == "LargeInteger":
        ok = isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63
    elif data_type == "Boolean":
        ok = isinstance(v, bool)
    elif data_type == "DateTime":
        ok = isinstance(v, str) and parse_datetime(v) is not None
    elif data_type == "Binary":
        try:
            ok = isinstance(v, str) and len(base64.b64decode(v, validate=True)) <= 256
        except ValueError:
            ok = False
    else:
        ok = False
    if not ok:
        raise _invalid(name)
    return v


@route("PATCH", r"/users/(?P<user>[^/]+)", perms=PATCH_USER, cost=1)
def patch_user(req):
    t = req.emu.tenant
    p = req.principal
    for k in req.query:
        if k.startswith("$"):
            raise GraphError(400, "BadRequest", f"Query option '{k}' is not allowed here.")
    user = t.user(req.params["user"])
    body = req.json()
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    # User.EnableDisableAccount.All (with User.Read.All) covers accountEnabled and nothing else.
    if not p.scopes & FULL_WRITE:
        if set(body) - {"accountEnabled"} or "User.Read.All" not in p.scopes:
            raise forbidden()
    if p.kind == "delegated" and not p.roles & {"Global Administrator",
                                                  "Privileged Authentication Administrator"}:
        if user["_roles"] - LIMITED_ADMIN_ROLES:
            raise forbidden()
    synced = bool(user.get("onPremisesSyncEnabled"))
    changes, ext_changes = {}, {}
    for prop, v in body.items():
        if prop.startswith("extension_"):
            if prop not in t.extension_properties:
                raise GraphError(400, "Request_BadRequest",
                                 f"Property '{prop}' does not exist as a declared property or "
                                 "extension property.")
            ext_changes[prop] = extension_value(prop, v, t.extension_types.get(prop, "String"))
            continue
        if prop.startswith("@odata."):
            if prop == "@odata.type" and isinstance(v, str) and \
                    v.lstrip("#") == "microsoft.graph.user":
                continue
            raise GraphError(400, "BadRequest", f"Unexpected annotation '{prop}' in the body.")
        if prop in READ_ONLY:
            raise GraphError(400, "Request_BadRequest",
                             f"Property '{prop}' is read-only and cannot be set.")
        if prop not in UPDATABLE:
            raise GraphError(400, "Request_BadRequest",
                             f"Property '{prop}' does not exist as a declared property or "
                             "extension property.")
        if synced and prop not in SYNC_WRITABLE:
            raise GraphError(400, "Request_BadRequest",
                             "Unable to update the specified properties for on-premises mastered "
                             "Directory Sync objects or objects currently undergoing migration.")
        kind, limit = UPDATABLE[prop]
        changes[prop] = _value(prop, v, kind, limit)
    after = {k for k in user["_extensions"] if ext_changes.get(k, "") is not None} | \
        {k for k, v in ext_changes.items() if v is not None}
    if len(after) > 100:
        raise GraphError(400, "Request_BadRequest",
                         "An object can have at most 100 extension property values.")
    for prop, v in changes.items():
        if prop == "onPremisesExtensionAttributes":
            attrs = dict(user.get(prop) or dict.fromkeys(sorted(EXT_ATTRS)))
            attrs.update(v)
            user[prop] = attrs
        else:
            user[prop] = v
    for prop, v in ext_changes.items():
        if v is None:
            user["_extensions"].pop(prop, None)
        else:
            user["_extensions"][prop] = v
    return no_content()
