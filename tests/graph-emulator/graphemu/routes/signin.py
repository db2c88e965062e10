"""Control calls that stand in for what the user does on their own phone, which Graph cannot
do (reference §4.4): sign in (with a Temporary Access Pass or a password) and then register
Microsoft Authenticator or a TOTP app in My Security Info.

    POST /_emulator/users/{u}/signin    {"method": "temporaryAccessPass", "pass": "..."}
                                        {"method": "password"}
         optional: "clientAppUsed" ("Browser" default, or "Mobile Apps and Desktop clients"),
                   "appDisplayName", "operatingSystem", "browser"
    POST /_emulator/users/{u}/register  {"method": "microsoftAuthenticator"|"softwareOath",
                                         "displayName": "iPhone 15", "deviceTag"?,
                                         "phoneAppVersion"?}

A register call is accepted only within 10 minutes after a successful sign-in of that user.
Each sign-in (successful or not) is appended to tenant.sign_ins as a signIn resource.
"""

import uuid
from urllib.parse import unquote

from ..core import GraphError, Response, control_route
from ..tenant import public
from .methods import ensure_default, iso_ts, now_ts, policy_targets_user, tap_usability

REGISTER_WINDOW_SECONDS = 600
MY_SIGNINS_APP = ("19db86c3-b2b9-44cc-b339-36da233a3be2", "My Signins")
CLIENT_APPS = ("Browser", "Mobile Apps and Desktop clients")


def _error(status, code, message):
    return GraphError(status, code, message)


def _sign_in_record(req, user, body, method, ok, error_code=0, reason=None):
    ts = now_ts(req.emu)
    client = body.get("clientAppUsed", "Browser")
    app_id, app_name = MY_SIGNINS_APP
    return {
        "id": str(uuid.uuid4()),
        "createdDateTime": iso_ts(ts),
        "userDisplayName": user.get("displayName"),
        "userPrincipalName": user["userPrincipalName"],
        "userId": user["id"],
        "appId": body.get("appId", app_id),
        "appDisplayName": body.get("appDisplayName", app_name),
        "ipAddress": "127.0.0.1",
        "userAgent": body.get("userAgent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
                                           "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
                                           "Mobile/15E148 Safari/604.1"),
        "clientAppUsed": client,
        "correlationId": str(uuid.uuid4()),
        "conditionalAccessStatus": "notApplied",
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": "Windows Azure Active Directory",
        "resourceId": "00000002-0000-0000-c000-000000000000",
        "status": {"errorCode": error_code, "failureReason": reason,
                   "additionalDetails": None if ok else
                   f"The emulator refused a {method} sign-in."},
        "deviceDetail": {"deviceId": "", "displayName": "",
                         "operatingSystem": body.get("operatingSystem", "iOS 17"),
                         "browser": body.get("browser", "Mobile Safari"),
                         "isCompliant": False, "isManaged": False, "trustType": ""},
        "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US",
                     "geoCoordinates": {"altitude": None, "latitude": 47.68,
                                        "longitude": -122.12}},
        "appliedConditionalAccessPolicies": [],
    }


@control_route("POST", r"/_emulator/users/(?P<user>[^/]+)/signin")
def sign_in(req):
    t = req.emu.tenant
    user = t.user(unquote(req.params["user"]))   # control paths arrive raw
    body = req.json()
    if not isinstance(body, dict):
        raise _error(400, "BadRequest", "A JSON object is expected.")
    method = body.get("method")
    if method not in ("temporaryAccessPass", "password"):
        raise _error(400, "BadRequest", "method must be 'temporaryAccessPass' or 'password'.")
    if body.get("clientAppUsed", "Browser") not in CLIENT_APPS:
        raise _error(400, "BadRequest", f"clientAppUsed must be one of {CLIENT_APPS}.")

    def refuse(status, code, message, aadsts):
        t.sign_ins.append(_sign_in_record(req, user, body, method, False, aadsts, message))
        raise _error(status, code, message)

    if not user.get("accountEnabled", True):
        refuse(403, "userDisabled", "The user account is disabled.", 50057)
    used_tap = None
    if method == "temporaryAccessPass":
        given = body.get("pass")
        taps = [m for m in user["_methods"] if m["_type"] == "temporaryAccessPass"]
        if not isinstance(given, str) or not taps:
            refuse(401, "invalidTemporaryAccessPass",
                   "The user has no Temporary Access Pass, or none was given.", 130500)
        tap = taps[-1]
        if given != tap.get("_pass"):
            refuse(401, "invalidTemporaryAccessPass",
                   "The Temporary Access Pass is incorrect.", 130500)
        usable, reason = tap_usability(req.emu, user, tap)
        if not usable:
            refuse(401, "invalidTemporaryAccessPass",
                   f"The Temporary Access Pass is not usable: {reason}.", 130500)
        used_tap = tap
    if used_tap is not None and used_tap.get("isUsableOnce"):
        used_tap["_used"] = True
    ts = now_ts(req.emu)
    if used_tap is not None:
        used_tap["lastUsedDateTime"] = iso_ts(ts)
    record = _sign_in_record(req, user, body, method, True)
    t.sign_ins.append(record)
    user["_lastSignIn"] = {"ts": ts, "method": method, "id": record["id"]}
    return Response(200, {"signIn": record, "method": method,
                          "registrationAllowedUntil": iso_ts(ts + REGISTER_WINDOW_SECONDS)},
                    content_type="application/json; charset=utf-8")


@control_route("POST", r"/_emulator/users/(?P<user>[^/]+)/register")
def register(req):
    t = req.emu.tenant
    user = t.user(unquote(req.params["user"]))   # control paths arrive raw
    body = req.json()
    if not isinstance(body, dict):
        raise _error(400, "BadRequest", "A JSON object is expected.")
    kind = body.get("method")
    if kind not in ("microsoftAuthenticator", "softwareOath"):
        raise _error(400, "BadRequest", "method must be 'microsoftAuthenticator' or "
                                        "'softwareOath'.")
    name = body.get("displayName")
    if kind == "microsoftAuthenticator" and (not isinstance(name, str) or not name.strip()):
        raise _error(400, "BadRequest", "displayName (the phone's name) is required.")
    last = user.get("_lastSignIn")
    now = now_ts(req.emu)
    if not last or now - last["ts"] > REGISTER_WINDOW_SECONDS:
        raise _error(403, "signInRequired",
                     "The user has not signed in during the last 10 minutes: My Security Info "
                     "needs a fresh sign-in (POST /_emulator/users/{u}/signin) before a method "
                     "can be registered.")
    policy = t.policies["microsoftauthenticator" if kind == "microsoftAuthenticator"
                        else "softwareoath"]
    if not policy_targets_user(t, policy, user):
        raise _error(403, "methodDisabledByPolicy",
                     f"The {kind} method is not enabled for this user by the authentication "
                     "methods policy.")
    fields = {"type": kind}
    if kind == "microsoftAuthenticator":
        fields.update({"displayName": name,
                       "deviceTag": body.get("deviceTag", "SoftwareTokenActivated"),
                       "phoneAppVersion": body.get("phoneAppVersion", "6.8.7"),
                       "clientAppName": "microsoftAuthenticator"})
    else:
        fields["secretKey"] = None
        if name:
            fields["_displayName"] = name
    m = t.add_method(user, fields)
    ensure_default(user)
    return Response(201, dict(public(m), type=kind, default=bool(m["_default"])),
                    content_type="application/json; charset=utf-8")
