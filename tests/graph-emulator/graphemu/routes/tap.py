"""Temporary Access Pass (reference §3): create (the pass is shown once), list, get, delete.
Usability (isUsable, methodUsabilityReason) is computed at every read from the policy, the
validity window and one-time use; sign-ins that consume a TAP are simulated by
/_emulator/users/{u}/signin (signin.py)."""

import secrets

from ..core import GraphError, Response, bad_request, forbidden
from .methods import (context, is_self, iso_ts, method_perms,
                      method_view, now_ts, parse_iso, policy_targets_user,
                      target_user, user_route)

SEG = "temporaryAccessPassMethods"
TAP_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
TAP_READ = method_perms("temporaryAccessPass", False)
TAP_WRITE = method_perms("temporaryAccessPass", True)
# Letters, digits and the punctuation Entra's passes show (e.g. "+drkzqAD").
ALPHABET = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            "!#$%&*+-=?@")
READ_ONLY = {"id", "temporaryAccessPass", "isUsable", "methodUsabilityReason",
             "createdDateTime", "lastUsedDateTime"}


def _fail(message, code="badRequest"):
    return GraphError(400, code, message)


def new_pass(length):
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


# List, get and delete are the generic typed-collection routes in methods.py; a TAP's
# pass is revealed only in the response to its creation (method_view without reveal).


@user_route("POST", rf"/authentication/{SEG}", perms=TAP_WRITE)
def create_tap(req):
    user = target_user(req, TAP_WRITE, write=True)
    if is_self(req, user):
        raise forbidden("Self-service operations aren't supported: a Temporary Access Pass "
                        "cannot be created for yourself.")
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: a JSON object is expected.", "BadRequest")
    for k, v in body.items():
        if k == "@odata.type":
            if v != TAP_TYPE:
                raise bad_request(f"The @odata.type '{v}' does not match "
                                  "'microsoft.graph.temporaryAccessPassAuthenticationMethod'.",
                                  "BadRequest")
        elif k in READ_ONLY:
            raise bad_request(f"The property '{k}' is read-only and cannot be set.",
                              "BadRequest")
        elif k not in ("startDateTime", "lifetimeInMinutes", "isUsableOnce"):
            raise bad_request(f"The property '{k}' does not exist on type "
                              "'microsoft.graph.temporaryAccessPassAuthenticationMethod'. Make "
                              "sure to only use property names that are defined by the type or "
                              "mark the type as open type.", "BadRequest")
    t = req.emu.tenant
    pol = t.policies["temporaryaccesspass"]
    if pol.get("state") != "enabled":
        raise _fail("The Temporary Access Pass authentication method is disabled in the "
                    "tenant's authentication methods policy.")
    if not policy_targets_user(t, pol, user):
        raise _fail("The Temporary Access Pass authentication method is not enabled for this "
                    "user by the authentication methods policy.")
    now = now_ts(req.emu)
    start = now
    if body.get("startDateTime") is not None:
        start = parse_iso(body["startDateTime"])
        if start is None:
            raise bad_request(f"Cannot convert the literal '{body['startDateTime']}' to the "
                              "expected type 'Edm.DateTimeOffset'.", "BadRequest")
        if start < now - 300:
            raise _fail("startDateTime cannot be in the past.")
    lo = int(pol.get("minimumLifetimeInMinutes", 60))
    hi = int(pol.get("maximumLifetimeInMinutes", 480))
    lifetime = body.get("lifetimeInMinutes")
    if lifetime is None:
        lifetime = int(pol.get("defaultLifetimeInMinutes", 60))
    elif not isinstance(lifetime, int) or isinstance(lifetime, bool):
        raise bad_request("Cannot convert the literal to the expected type 'Edm.Int32' for "
                          "lifetimeInMinutes.", "BadRequest")
    elif not 10 <= lifetime <= 43200:
        raise _fail("lifetimeInMinutes must be between 10 and 43200 minutes.")
    elif not lo <= lifetime <= hi:
        raise _fail(f"lifetimeInMinutes {lifetime} is outside the range the Temporary Access "
                    f"Pass policy allows ({lo} to {hi} minutes).")
    once = body.get("isUsableOnce")
    if once is None:
        once = bool(pol.get("isUsableOnce", False))
    elif not isinstance(once, bool):
        raise bad_request("Cannot convert the literal to the expected type 'Edm.Boolean' for "
                          "isUsableOnce.", "BadRequest")
    elif once is False and pol.get("isUsableOnce"):
        raise _fail("The Temporary Access Pass policy requires one-time passes: isUsableOnce "
                    "cannot be false.")
    length = min(48, max(8, int(pol.get("defaultLength", 8))))
    # A user has at most one TAP: a new one replaces the old.
    for old in [m for m in user["_methods"] if m["_type"] == "temporaryAccessPass"]:
        t.remove_method(user, old)
    secret = new_pass(length)
    m = t.add_method(user, {"type": "temporaryAccessPass", "startDateTime": iso_ts(start),
                            "lifetimeInMinutes": lifetime, "isUsableOnce": once,
                            "_pass": secret, "_startTs": start, "_used": False})
    body = dict({"@odata.context": context(
        req, f"users('{user['id']}')/authentication/{SEG}/$entity")},
        **method_view(req, user, m, with_type=True, reveal=secret))
    return Response(201, body, {"Location": f"{req.base_url()}/users/{user['id']}/"
                                            f"authentication/{SEG}/{m['id']}"})
