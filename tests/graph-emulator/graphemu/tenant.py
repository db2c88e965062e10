"""The tenant: apps, users, their authentication methods, groups, policies, sign-ins.

Objects are kept in Graph's JSON shape. Keys starting with "_" are the emulator's own (a
method's public key, a TAP's pass, the default-method flag) and never leave the server:
public() strips them. The JSON tenant file format is documented in ../README.md.
"""

import copy
import json
import re
import threading

from .core import GraphError, iso, new_id, not_found

# Short method type names used in tenant files → (collection segment, @odata.type), v1.0
# unless noted (reference §5.1).
METHOD_TYPES = {
    "password": ("passwordMethods", "#microsoft.graph.passwordAuthenticationMethod"),
    "email": ("emailMethods", "#microsoft.graph.emailAuthenticationMethod"),
    "phone": ("phoneMethods", "#microsoft.graph.phoneAuthenticationMethod"),
    "fido2": ("fido2Methods", "#microsoft.graph.fido2AuthenticationMethod"),
    "microsoftAuthenticator": ("microsoftAuthenticatorMethods",
                               "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"),
    "softwareOath": ("softwareOathMethods", "#microsoft.graph.softwareOathAuthenticationMethod"),
    "temporaryAccessPass": ("temporaryAccessPassMethods",
                            "#microsoft.graph.temporaryAccessPassAuthenticationMethod"),
    "windowsHelloForBusiness": ("windowsHelloForBusinessMethods",
                                "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"),
    "platformCredential": ("platformCredentialMethods",
                           "#microsoft.graph.platformCredentialAuthenticationMethod"),
    # beta only
    "hardwareOath": ("hardwareOathMethods", "#microsoft.graph.hardwareOathAuthenticationMethod"),
}
COLLECTION_TO_TYPE = {seg: short for short, (seg, _) in METHOD_TYPES.items()}
ODATA_TO_TYPE = {odata: short for short, (_, odata) in METHOD_TYPES.items()}
BETA_ONLY_METHODS = {"hardwareOath"}
EXTENSION_NAME = re.compile(r"extension_[0-9a-f]{32}_[A-Za-z0-9_]+")


def public(obj):
    """A deep copy without the emulator's private keys."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


class TenantFileError(Exception):
    pass


class Tenant:
    """All directory state. Callers hold Tenant.lock while they read or change it."""

    def __init__(self, data, source="<memory>"):
        self.lock = threading.RLock()
        self.source = source
        try:
            self._load(data)
        except (KeyError, TypeError, ValueError) as e:
            raise TenantFileError(f"{source}: {type(e).__name__}: {e}") from e

    @classmethod
    def from_file(cls, path):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise TenantFileError(f"{path}: {e}") from e
        return cls(data, path)

    # --- loading ---------------------------------------------------------------------

    def _load(self, data):
        t = data["tenant"]
        self.id = t["id"]
        self.domain = t.get("domain", "contoso.onmicrosoft.com")
        self.display_name = t.get("displayName", "Contoso")
        self.license = t.get("license", "free")          # "free", "P1" or "P2"
        self.settings = {
            "accessTokenLifetimeSeconds": 3600,
            "idTokenLifetimeSeconds": 3600,
            "deviceCodeExpiresIn": 900,
            "deviceCodeInterval": 5,
            "reportLagSeconds": 0,
            "fido2ChallengeTimeoutMinutes": 5,
        }
        self.settings.update(data.get("settings", {}))
        self.apps = {a["appId"].lower(): self._app(a) for a in data.get("apps", [])}
        self.users = {}
        self.upn_index = {}
        for u in data.get("users", []):
            self.add_user(u)
        self.groups = {}
        for g in data.get("groups", []):
            self.add_group(g)
        self.policies = self._policies(data.get("policies", {}))
        self.sign_ins = list(data.get("signIns", []))
        # Directory extension properties: "extension_{appIdNoDashes}_{name}", or
        # {"name": that, "dataType": "DateTime", "targetObjects": ["User"]}.
        self.extension_properties = set()
        self.extension_types = {}
        for e in data.get("extensionProperties", []):
            name = e if isinstance(e, str) else e["name"]
            if not EXTENSION_NAME.fullmatch(name):
                raise ValueError(f"extension property {name!r} is not named "
                                 "extension_{appIdWithoutDashes}_{name}")
            self.extension_properties.add(name)
            self.extension_types[name] = "String" if isinstance(e, str) else \
                e.get("dataType", "String")

    @staticmethod
    def _app(a):
        app = dict(a)
        app.setdefault("displayName", "app")
        app.setdefault("secrets", [])
        app.setdefault("certificates", [])
        app.setdefault("applicationPermissions", [])
        app.setdefault("delegatedScopes", [])
        app.setdefault("publicClient", False)
        return app

    def add_user(self, u):
        user = {k: v for k, v in u.items() if k not in ("methods", "directoryRoles", "extensions")}
        if "id" not in user:                  # not setdefault: new_id() costs (100k users)
            user["id"] = new_id()
        user.setdefault("displayName", user["userPrincipalName"].split("@")[0])
        user.setdefault("accountEnabled", True)
        user.setdefault("userType", "Member")
        user.setdefault("mail", None)
        if "createdDateTime" not in user:
            user["createdDateTime"] = iso()
        user["_roles"] = set(u.get("directoryRoles", []))
        user["_extensions"] = dict(u.get("extensions", {}))
        user["_methods"] = []
        user["_signInSessionsValidFrom"] = None
        user["_registrationUpdated"] = user["createdDateTime"]
        self.users[user["id"]] = user
        self.upn_index[user["userPrincipalName"].lower()] = user["id"]
        for m in u.get("methods", []):
            self.add_method(user, m)
        return user

    def add_method(self, user, m):
        """Adds a method given in tenant-file form ({"type": "fido2", ...}) or Graph form."""
        m = dict(m)
        short = m.pop("type", None) or ODATA_TO_TYPE.get(m.get("@odata.type"))
        if short not in METHOD_TYPES:
            raise ValueError(f"unknown method type {short!r} for {user['userPrincipalName']}")
        method = {"@odata.type": METHOD_TYPES[short][1], "id": m.pop("id", None) or new_id()}
        if short == "password":
            method["id"] = "28c10230-6103-485e-b985-444c60001490"  # Graph's fixed password id
        method["createdDateTime"] = m.pop("createdDateTime", None) or iso()
        method["_default"] = bool(m.pop("default", False))
        method["_type"] = short
        method.update(m)
        user["_methods"].append(method)
        user["_registrationUpdated"] = iso()
        return method

    def add_group(self, g):
        group = {k: v for k, v in g.items() if k != "members"}
        group.setdefault("id", new_id())
        group.setdefault("isAssignableToRole", False)
        group.setdefault("securityEnabled", True)
        group.setdefault("mailEnabled", False)
        group["_members"] = list(dict.fromkeys(g.get("members", [])))
        self.groups[group["id"]] = group
        return group

    @staticmethod
    def _policies(p):
        fido2 = {
            "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
            "id": "Fido2", "state": "enabled", "isSelfServiceRegistrationAllowed": True,
            "isAttestationEnforced": False,
            "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []},
            "includeTargets": [{"targetType": "group", "id": "all_users",
                                "isRegistrationRequired": False}],
            "excludeTargets": [],
        }
        fido2.update(p.get("fido2", {}))
        tap = {
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
            "id": "TemporaryAccessPass", "state": "enabled", "defaultLifetimeInMinutes": 60,
            "defaultLength": 8, "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480,
            "isUsableOnce": False,
            "includeTargets": [{"targetType": "group", "id": "all_users",
                                "isRegistrationRequired": False}],
            "excludeTargets": [],
        }
        tap.update(p.get("temporaryAccessPass", {}))
        authenticator = {
            "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethodConfiguration",
            "id": "MicrosoftAuthenticator", "state": "enabled", "isSoftwareOathEnabled": False,
            "featureSettings": {},
            "includeTargets": [{"targetType": "group", "id": "all_users",
                                "isRegistrationRequired": False,
                                "authenticationMode": "any"}],
            "excludeTargets": [],
        }
        authenticator.update(p.get("microsoftAuthenticator", {}))
        software_oath = {
            "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethodConfiguration",
            "id": "SoftwareOath", "state": "enabled",
            "includeTargets": [{"targetType": "group", "id": "all_users",
                                "isRegistrationRequired": False}],
            "excludeTargets": [],
        }
        software_oath.update(p.get("softwareOath", {}))
        security_defaults = {
            "id": "00000000-0000-0000-0000-000000000005",
            "displayName": "Security Defaults",
            "description": "Security defaults is a set of basic identity security mechanisms "
                           "recommended by Microsoft.",
            "isEnabled": False,
        }
        security_defaults.update(p.get("securityDefaults", {}))
        return {"fido2": fido2, "temporaryaccesspass": tap,
                "microsoftauthenticator": authenticator, "softwareoath": software_oath,
                "securityDefaults": security_defaults}

    # --- lookups ---------------------------------------------------------------------

    def user(self, key):
        """A user by object id or UPN (case-insensitive), or Graph's 404."""
        u = self.users.get(key)
        if u is None:
            uid = self.upn_index.get(key.lower())
            u = self.users.get(uid) if uid else None
        if u is None:
            raise not_found(f"Resource '{key}' does not exist or one of its queried reference-"
                            "property objects are not present.")
        return u

    def app(self, app_id):
        return self.apps.get((app_id or "").lower())

    def group(self, gid):
        g = self.groups.get(gid)
        if g is None:
            raise not_found(f"Resource '{gid}' does not exist or one of its queried reference-"
                            "property objects are not present.")
        return g

    def methods_of(self, user, short=None):
        return [m for m in user["_methods"] if short is None or m["_type"] == short]

    def find_method(self, user, short, method_id):
        for m in user["_methods"]:
            if m["_type"] == short and m["id"] == method_id:
                return m
        raise not_found(f"Authentication method '{method_id}' was not found.", "itemNotFound")

    def remove_method(self, user, method):
        user["_methods"].remove(method)
        user["_registrationUpdated"] = iso()

    def snapshot(self):
        """A JSON-able dump of everything (control API, debugging)."""
        with self.lock:
            return {
                "tenant": {"id": self.id, "domain": self.domain, "displayName": self.display_name,
                           "license": self.license},
                "settings": self.settings,
                "users": [dict(public(u), directoryRoles=sorted(u["_roles"]),
                               methods=[dict(public(m), type=m["_type"], default=m["_default"])
                                        for m in u["_methods"]])
                          for u in self.users.values()],
                "groups": [dict(public(g), members=list(g["_members"]))
                           for g in self.groups.values()],
                "policies": copy.deepcopy(self.policies),
            }


def ensure_tenant_error(fn):
    """Turn TenantFileError into a clear message for the command line."""
    try:
        return fn()
    except TenantFileError as e:
        raise SystemExit(f"graph-emulator: bad tenant file: {e}") from None


__all__ = ["Tenant", "TenantFileError", "METHOD_TYPES", "COLLECTION_TO_TYPE", "ODATA_TO_TYPE",
           "BETA_ONLY_METHODS", "public", "GraphError"]
