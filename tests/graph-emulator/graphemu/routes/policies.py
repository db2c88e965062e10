"""Tenant policies: the authentication methods policy with its method configurations
(reference §2.8, §3, §9) and the Security Defaults policy (§7.1).

State lives in tenant.policies (see Tenant._policies): one dict per method configuration,
keyed by the lower-cased configuration id, plus "securityDefaults". Configurations the tenant
file does not mention (Sms, Voice, Email, X509Certificate) are added here on first use so a
GET of the whole policy lists what Graph lists.
"""

import copy
import re

from ..core import GraphError, Perms, bad_request, check_also, iso, no_content, not_found, route

POLICY_READ = Perms.of(
    app=["Policy.Read.AuthenticationMethod", "Policy.Read.All",
         "Policy.ReadWrite.AuthenticationMethod"],
    roles=["Global Reader", "Authentication Policy Administrator"])
POLICY_WRITE = Perms.of(app=["Policy.ReadWrite.AuthenticationMethod"],
                        roles=["Authentication Policy Administrator"])

SD_READ = Perms.of(app=["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess",
                        "Policy.ReadWrite.SecurityDefaults"],
                   roles=["Security Reader", "Global Reader", "Security Administrator",
                          "Conditional Access Administrator"])
# Policy.ReadWrite.SecurityDefaults "AlsoRequires" Policy.Read.All (reference §7.1); older docs
# give Policy.ReadWrite.ConditionalAccess, also with Policy.Read.All.
SD_WRITE = Perms.of(app=["Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess"],
                    roles=["Security Administrator", "Conditional Access Administrator"],
                    also=["Policy.Read.All"])

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Configurations Graph lists besides the four the tenant file sets up.
EXTRA_CONFIGS = {
    "sms": {"@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
            "id": "Sms", "state": "disabled", "excludeTargets": [],
            "includeTargets": [{"targetType": "group", "id": "all_users",
                                "isRegistrationRequired": False, "isUsableForSignIn": True}]},
    "voice": {"@odata.type": "#microsoft.graph.voiceAuthenticationMethodConfiguration",
              "id": "Voice", "state": "disabled", "isOfficePhoneAllowed": False,
              "excludeTargets": [],
              "includeTargets": [{"targetType": "group", "id": "all_users",
                                  "isRegistrationRequired": False}]},
    "email": {"@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
              "id": "Email", "state": "enabled", "allowExternalIdToUseEmailOtp": "default",
              "excludeTargets": [],
              "includeTargets": [{"targetType": "group", "id": "all_users",
                                  "isRegistrationRequired": False}]},
    "x509certificate": {
        "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        "id": "X509Certificate", "state": "disabled", "certificateUserBindings": [],
        "authenticationModeConfiguration": {"x509CertificateAuthenticationDefaultMode":
                                            "x509CertificateSingleFactor", "rules": []},
        "excludeTargets": [],
        "includeTargets": [{"targetType": "group", "id": "all_users",
                            "isRegistrationRequired": False}]},
}
ORDER = ["fido2", "microsoftauthenticator", "sms", "temporaryaccesspass", "softwareoath",
         "voice", "email", "x509certificate"]

# Properties a PATCH may set, per configuration (besides state/includeTargets/excludeTargets).
WRITABLE = {
    "fido2": {"isSelfServiceRegistrationAllowed", "isAttestationEnforced", "keyRestrictions",
              "defaultPasskeyProfile", "passkeyProfiles"},
    "temporaryaccesspass": {"defaultLifetimeInMinutes", "defaultLength",
                            "minimumLifetimeInMinutes", "maximumLifetimeInMinutes",
                            "isUsableOnce"},
    "microsoftauthenticator": {"isSoftwareOathEnabled", "featureSettings"},
    "softwareoath": set(),
    "sms": set(),
    "voice": {"isOfficePhoneAllowed"},
    "email": {"allowExternalIdToUseEmailOtp"},
    "x509certificate": {"certificateUserBindings", "authenticationModeConfiguration"},
}
COMMON = {"state", "includeTargets", "excludeTargets"}


def method_configs(tenant):
    """{lower-case id: configuration} for every method configuration, in Graph's order."""
    p = tenant.policies
    for key, cfg in EXTRA_CONFIGS.items():
        if key not in p:
            p[key] = copy.deepcopy(cfg)
    p.setdefault("_meta", {"lastModifiedDateTime": iso(), "policyMigrationState":
                           "preMigration"})
    return {k: p[k] for k in ORDER}


class PolicyView:
    """Which users the methods policy allows each method for, precomputed once (group
    memberships as sets) so a report over 100,000 users asks in constant time."""

    def __init__(self, tenant):
        configs = method_configs(tenant)
        legacy = tenant.policies["_meta"].get("policyMigrationState") != "migrationComplete"
        self.rules = {}
        for key, cfg in configs.items():
            if cfg.get("state") != "enabled":
                # Before migration the legacy MFA policy still allows phone methods.
                self.rules[key] = True if key in ("sms", "voice") and legacy else False
                continue
            self.rules[key] = (self._ids(tenant, cfg.get("includeTargets", [])),
                               self._ids(tenant, cfg.get("excludeTargets", [])))
        # What reports cache rows on: the configurations and who their targets name.
        self.fingerprint = (repr(sorted((k, repr(v)) for k, v in configs.items())),
                            tuple((k, None if isinstance(r, bool) else
                                   tuple(None if ids is None else hash(frozenset(ids))
                                         for ids in r))
                                  for k, r in sorted(self.rules.items())))

    @staticmethod
    def _ids(tenant, targets):
        """None for all_users, else the set of user ids the targets name."""
        ids = set()
        for t in targets:
            if t.get("id") == "all_users":
                return None
            if t.get("targetType") == "user":
                ids.add(t.get("id"))
                continue
            g = tenant.groups.get(t.get("id"))
            if g is not None:
                ids.update(g["_members"])
        return ids

    def allows(self, config_id, user_id):
        rule = self.rules.get(config_id.lower(), True)   # not governed: password, WHfB, …
        if rule is True or rule is False:
            return rule
        include, exclude = rule               # None means all_users
        if include is not None and user_id not in include:
            return False
        return exclude is not None and user_id not in exclude


def enabled_for_user(tenant, config_id, user):
    """Does the methods policy allow method @config_id ("fido2", "sms", …) for @user: state
    enabled, the user in an included target (all_users, a group, or the user) and in no
    excluded one. Phone methods also count as allowed before migration (the legacy MFA
    policy still governs them)."""
    return PolicyView(tenant).allows(config_id, user["id"])


def _context(req, suffix):
    from .reports import metadata          # reports imports this module
    return f"{metadata(req)}#{suffix}"


def _config_view(cfg):
    return {k: copy.deepcopy(v) for k, v in cfg.items() if not k.startswith("_")}


@route("GET", r"/policies/authenticationMethodsPolicy", perms=POLICY_READ, cost=1)
def get_methods_policy(req):
    t = req.emu.tenant
    configs = method_configs(t)
    meta = t.policies["_meta"]
    return {
        "@odata.context": _context(req, "policies/authenticationMethodsPolicy/$entity"),
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": "The tenant-wide policy that controls which authentication methods are "
                       "allowed in the tenant, authentication method registration requirements, "
                       "and self-service password reset settings",
        "lastModifiedDateTime": meta["lastModifiedDateTime"],
        "policyVersion": "1.5",
        "reconfirmationInDays": 0,
        "policyMigrationState": meta["policyMigrationState"],
        "registrationEnforcement": {"authenticationMethodsRegistrationCampaign": {
            "snoozeDurationInDays": 1, "state": "default", "excludeTargets": [],
            "includeTargets": [{"id": "all_users", "targetType": "group",
                                "targetedAuthenticationMethod": "microsoftAuthenticator"}]}},
        "authenticationMethodConfigurations@odata.context": _context(
            req, "policies/authenticationMethodsPolicy/authenticationMethodConfigurations"),
        "authenticationMethodConfigurations": [_config_view(c) for c in configs.values()],
    }


def _config(req):
    configs = method_configs(req.emu.tenant)
    cfg = configs.get(req.params["cfg"].lower())
    if cfg is None:
        raise not_found(f"Resource '{req.params['cfg']}' does not exist or one of its queried "
                        "reference-property objects are not present.", "itemNotFound")
    return cfg


CONFIG_PATH = (r"/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/"
               r"(?P<cfg>[^/]+)")


@route("GET", CONFIG_PATH, perms=POLICY_READ, cost=1)
def get_config(req):
    cfg = _config(req)
    return {"@odata.context": _context(req, "policies/authenticationMethodsPolicy/"
                                            "authenticationMethodConfigurations/$entity"),
            **_config_view(cfg)}


def _invalid(prop, value, why=""):
    return bad_request(f"Invalid value '{value}' for property '{prop}'" + (f": {why}" if why
                                                                             else "."),
                       "badRequest")


def _bool(prop, v):
    if not isinstance(v, bool):
        raise _invalid(prop, v, "a Boolean is required")
    return v


def _int(prop, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int):
        raise _invalid(prop, v, "an Int32 is required")
    if not lo <= v <= hi:
        raise _invalid(prop, v, f"must be between {lo} and {hi}")
    return v


def _enum(prop, v, allowed):
    if v not in allowed:
        raise _invalid(prop, v, "expected one of " + ", ".join(allowed))
    return v


def _targets(prop, v, include, key):
    if not isinstance(v, list):
        raise _invalid(prop, v, "a collection is required")
    out = []
    for t in v:
        if not isinstance(t, dict):
            raise _invalid(prop, t)
        allowed = {"id", "targetType", "@odata.type"}
        if include:
            allowed |= {"isRegistrationRequired"}
            if key == "microsoftauthenticator":
                allowed |= {"authenticationMode"}
            if key == "sms":
                allowed |= {"isUsableForSignIn"}
            if key == "fido2":
                allowed |= {"allowedPasskeyProfiles"}
        for k in t:
            if k not in allowed:
                raise bad_request(f"The property '{k}' does not exist on type "
                                  "'microsoft.graph.authenticationMethodTarget'. Make sure to "
                                  "only use property names that are defined by the type.",
                                  "badRequest")
        target_type = _enum(f"{prop}/targetType", t.get("targetType"), ("group", "user"))
        tid = t.get("id")
        if not isinstance(tid, str) or not (tid == "all_users" or GUID.fullmatch(tid)):
            raise _invalid(f"{prop}/id", tid, "a group or user object id, or all_users")
        if tid == "all_users" and target_type != "group":
            raise _invalid(f"{prop}/targetType", target_type)
        item = {"targetType": target_type, "id": tid}
        if include:
            item["isRegistrationRequired"] = _bool(f"{prop}/isRegistrationRequired",
                                                   t.get("isRegistrationRequired", False))
            if key == "microsoftauthenticator":
                item["authenticationMode"] = _enum(f"{prop}/authenticationMode",
                                                   t.get("authenticationMode", "any"),
                                                   ("any", "push", "deviceBasedPush"))
            if key == "sms":
                item["isUsableForSignIn"] = _bool(f"{prop}/isUsableForSignIn",
                                                  t.get("isUsableForSignIn", True))
            if key == "fido2" and "allowedPasskeyProfiles" in t:
                item["allowedPasskeyProfiles"] = t["allowedPasskeyProfiles"]
        out.append(item)
    return out


def _key_restrictions(v):
    if not isinstance(v, dict):
        raise _invalid("keyRestrictions", v)
    for k in v:
        if k not in ("isEnforced", "enforcementType", "aaGuids", "@odata.type"):
            raise bad_request(f"The property '{k}' does not exist on type "
                              "'microsoft.graph.fido2KeyRestrictions'.", "badRequest")
    out = {"isEnforced": _bool("keyRestrictions/isEnforced", v.get("isEnforced", False)),
           "enforcementType": _enum("keyRestrictions/enforcementType",
                                    v.get("enforcementType", "block"), ("allow", "block")),
           "aaGuids": v.get("aaGuids", [])}
    if not isinstance(out["aaGuids"], list) or \
            not all(isinstance(g, str) and GUID.fullmatch(g) for g in out["aaGuids"]):
        raise _invalid("keyRestrictions/aaGuids", out["aaGuids"], "AAGUIDs are GUID strings")
    out["aaGuids"] = [g.lower() for g in out["aaGuids"]]
    return out


def _feature_settings(v):
    if not isinstance(v, dict):
        raise _invalid("featureSettings", v)
    out = {}
    for name, fc in v.items():
        if name == "@odata.type":
            continue
        if name not in ("displayAppInformationRequiredState",
                        "displayLocationInformationRequiredState"):
            raise bad_request(f"The property '{name}' does not exist on type "
                              "'microsoft.graph.microsoftAuthenticatorFeatureSettings'.",
                              "badRequest")
        if not isinstance(fc, dict):
            raise _invalid(f"featureSettings/{name}", fc)
        state = _enum(f"featureSettings/{name}/state", fc.get("state", "default"),
                      ("default", "enabled", "disabled"))
        item = {"state": state}
        for side in ("includeTarget", "excludeTarget"):
            tgt = fc.get(side)
            if tgt is not None:
                if not isinstance(tgt, dict) or not isinstance(tgt.get("id"), str):
                    raise _invalid(f"featureSettings/{name}/{side}", tgt)
                item[side] = {"targetType": _enum(f"featureSettings/{name}/{side}/targetType",
                                                  tgt.get("targetType", "group"),
                                                  ("group", "role")),
                              "id": tgt["id"]}
        out[name] = item
    return out


def _validate(key, cfg, body):
    """The configuration @cfg with @body applied, or a 400 for anything Graph refuses."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "BadRequest")
    new = copy.deepcopy(cfg)
    for prop, v in body.items():
        if prop == "@odata.type":
            if not isinstance(v, str) or v.lstrip("#") != cfg["@odata.type"].lstrip("#"):
                raise bad_request(f"A type named '{v}' could not be resolved as a subtype of "
                                  f"'{cfg['@odata.type'].lstrip('#')}'.", "BadRequest")
            continue
        if prop == "id":
            if not isinstance(v, str) or v.lower() != cfg["id"].lower():
                raise _invalid("id", v, "the id cannot be changed")
            continue
        if prop not in COMMON and prop not in WRITABLE[key]:
            raise bad_request(f"The property '{prop}' does not exist on type "
                              f"'{cfg['@odata.type'].lstrip('#')}'. Make sure to only use "
                              "property names that are defined by the type or mark the type "
                              "as open type.", "BadRequest")
        if prop == "state":
            new[prop] = _enum(prop, v, ("enabled", "disabled"))
        elif prop in ("includeTargets", "excludeTargets"):
            new[prop] = _targets(prop, v, prop == "includeTargets", key)
        elif prop in ("isSelfServiceRegistrationAllowed", "isAttestationEnforced",
                      "isUsableOnce", "isSoftwareOathEnabled", "isOfficePhoneAllowed"):
            new[prop] = _bool(prop, v)
        elif prop == "keyRestrictions":
            new[prop] = _key_restrictions(v)
        elif prop in ("defaultLifetimeInMinutes", "minimumLifetimeInMinutes",
                      "maximumLifetimeInMinutes"):
            new[prop] = _int(prop, v, 10, 43200)
        elif prop == "defaultLength":
            new[prop] = _int(prop, v, 8, 48)
        elif prop == "featureSettings":
            new[prop] = _feature_settings(v)
        elif prop == "allowExternalIdToUseEmailOtp":
            new[prop] = _enum(prop, v, ("default", "enabled", "disabled"))
        elif prop == "defaultPasskeyProfile":
            if v is not None and not isinstance(v, str):
                raise _invalid(prop, v)
            new[prop] = v
        else:                                  # collections passed through as given
            if not isinstance(v, (list, dict)):
                raise _invalid(prop, v)
            new[prop] = copy.deepcopy(v)
    if key == "temporaryaccesspass":
        lo, dflt, hi = (new["minimumLifetimeInMinutes"], new["defaultLifetimeInMinutes"],
                        new["maximumLifetimeInMinutes"])
        if not lo <= dflt <= hi:
            raise bad_request("Invalid TemporaryAccessPass policy: minimumLifetimeInMinutes "
                              f"({lo}) <= defaultLifetimeInMinutes ({dflt}) <= "
                              f"maximumLifetimeInMinutes ({hi}) must hold.", "badRequest")
    return new


@route("PATCH", CONFIG_PATH, perms=POLICY_WRITE, cost=1)
def patch_config(req):
    cfg = _config(req)
    key = cfg["id"].lower()
    new = _validate(key, cfg, req.json())
    cfg.clear()
    cfg.update(new)
    req.emu.tenant.policies["_meta"]["lastModifiedDateTime"] = iso()
    return no_content()


# --- Security Defaults ------------------------------------------------------------------------

SD_PATH = r"/policies/identitySecurityDefaultsEnforcementPolicy"


@route("GET", SD_PATH, perms=SD_READ, cost=1)
def get_security_defaults(req):
    sd = req.emu.tenant.policies["securityDefaults"]
    return {"@odata.context": _context(req, "policies/identitySecurityDefaultsEnforcementPolicy/"
                                            "$entity"),
            **{k: v for k, v in sd.items() if not k.startswith("_")}}


@route("PATCH", SD_PATH, perms=SD_WRITE, cost=1)
def patch_security_defaults(req):
    check_also(SD_WRITE, req)
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "BadRequest")
    for k in body:
        if k not in ("isEnabled", "@odata.type"):
            raise bad_request(f"Property '{k}' is read-only or not supported in this request; "
                              "only isEnabled can be updated.", "BadRequest")
    if "isEnabled" not in body:
        raise bad_request("The request body must contain isEnabled.", "BadRequest")
    if not isinstance(body["isEnabled"], bool):
        raise GraphError(400, "BadRequest",
                         f"Cannot convert the literal '{body['isEnabled']}' to the expected "
                         "type 'Edm.Boolean'.")
    req.emu.tenant.policies["securityDefaults"]["isEnabled"] = body["isEnabled"]
    return no_content()
