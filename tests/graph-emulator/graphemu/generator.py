"""Synthetic tenants for the emulator: a realistic mix of people, methods, roles, groups and
sign-ins, deterministic for a seed (see make-tenant and README "Tenant file").

Mix of enabled members (fractions of all users; the rest are guests and disabled accounts):
password only 35 %, Microsoft Authenticator 35 %, Authenticator + phone 10 %, phone only 8 %,
FIDO2 key 5 % (half of them with Authenticator too), software OATH 4 %, Windows Hello 1 %,
email only 1 %, a live Temporary Access Pass 1 %; about 10 % also have an email method.
About 3 % are B2B guests (no methods here), 2 % disabled accounts, and a few admins (the
first two users are always a Global Administrator and an Authentication Administrator, the
operator for device-code sign-in). Sign-ins: about half the enabled members signed in during
the last 30 days; 4 % of members still use a legacy client (IMAP4, POP3, SMTP, ActiveSync…).
"""

import argparse
import json
import random
import sys
import time
import uuid

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# The same apps as tests/emutest.py, so tests can mint tokens for a generated tenant.
KIOSK_APP = "3f2a6c1e-8d4b-4e57-9a0f-2b7c1d9e4f60"
READER_APP = "0b7f5a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
OPERATOR_APP = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
KIOSK_SECRET = "kiosk~secret.value-for-tests-0123456789"      # a test value, never a real one
KIOSK_PERMISSIONS = [
    "User.Read.All", "UserAuthMethod-Passkey.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All",
    "UserAuthenticationMethod.Read.All", "UserAuthMethod-MicrosoftAuthApp.ReadWrite.All",
    "UserAuthMethod-SoftwareOATH.ReadWrite.All", "UserAuthMethod-Phone.ReadWrite.All",
    "User.RevokeSessions.All", "Policy.Read.AuthenticationMethod", "Policy.Read.All",
    "AuditLog.Read.All", "GroupMember.ReadWrite.All", "User.ReadWrite.All",
]
OPERATOR_SCOPES = ["openid", "profile", "offline_access", "User.Read.All",
                   "UserAuthenticationMethod.ReadWrite.All", "User.RevokeSessions.All",
                   "Policy.Read.AuthenticationMethod", "GroupMember.ReadWrite.All"]
TRACKING_GROUP = "7d7e7f80-1111-4222-8333-444455556666"
EXTENSION = "extension_" + KIOSK_APP.replace("-", "") + "_mfaKioskEnrolled"

# Graph's fixed ids for phone methods, by phoneType.
PHONE_IDS = {"mobile": "3179e48a-750b-4051-897c-87b9720928f7",
             "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
             "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc"}
KEYS = [("2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5 Series with NFC"),
        ("a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa", "Security Key NFC by Yubico"),
        ("ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"),
        ("ee041bce-25e5-4cdb-8f86-897fd6418464", "Feitian ePass FIDO2-NFC Authenticator")]
PHONES = ["iPhone 15", "iPhone 13", "Pixel 8", "Galaxy S23", "Galaxy A54", "iPhone SE",
          "Pixel 7a", "moto g84"]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kemi", "Liam", "Maya", "Nils", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
         "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe", "Aoife", "Bram", "Carmen", "Dario"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Schmidt", "Haddad", "Kowalski", "Silva",
        "Nguyen", "O'Neil", "Fischer", "Rossi", "Novak", "Jensen", "Mensah", "Petrov",
        "Garcia", "Murphy", "Khan", "Larsen", "Dubois", "Sato", "Berg", "Costa", "Walsh"]
DEPARTMENTS = ["Sales", "Finance", "Engineering", "Operations", "Support", "HR", "Legal",
               "Facilities", "Marketing", "Research"]
ADMIN_ROLES = ["Global Administrator", "Authentication Administrator", "User Administrator",
               "Helpdesk Administrator", "Security Reader", "Reports Reader",
               "Privileged Authentication Administrator", "Security Administrator"]
LEGACY_CLIENTS = ["IMAP4", "POP3", "Authenticated SMTP", "Exchange ActiveSync", "Other clients",
                  "MAPI over HTTP", "Exchange Web Services", "Autodiscover"]
MODERN_CLIENTS = ["Browser", "Mobile apps and desktop clients"]
APPS = [("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
        ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
        ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
        ("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome")]

# (state, cumulative share of all users) for enabled members; see the module comment.
MIX = [("password", 0.35), ("authenticator", 0.70), ("authenticator+phone", 0.80),
       ("phone", 0.88), ("fido2", 0.93), ("softwareOath", 0.97), ("whfb", 0.98),
       ("email", 0.99), ("tap", 1.0)]
GUEST_SHARE = 0.03
DISABLED_SHARE = 0.02
ADMIN_SHARE = 0.003
BASE = 1767225600            # 2026-01-01T00:00:00Z: absolute dates are relative to this


def _iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class _Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def date(self, days_back_max, days_back_min=0):
        return _iso(BASE - self.rng.randint(days_back_min * 86400, days_back_max * 86400))


def _methods(g, state, i):
    """Tenant-file methods for a member in registration @state."""
    r = g.rng
    out = [{"type": "password"}]

    def authenticator(default=True):
        v = f"6.{r.randint(7, 8)}.{r.randint(0, 30)}"
        return {"type": "microsoftAuthenticator", "id": g.uuid(), "displayName": r.choice(PHONES),
                "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": v,
                "createdDateTime": g.date(700), "default": default}

    def phone(default):
        return {"type": "phone", "id": PHONE_IDS["mobile"],
                "phoneNumber": f"+1 425555{i % 10000:04d}", "phoneType": "mobile",
                "smsSignInState": "notEnabled", "createdDateTime": g.date(900),
                "default": default}

    if state == "authenticator":
        out.append(authenticator())
    elif state == "authenticator+phone":
        first = r.random() < 0.8
        out += [authenticator(first), phone(not first)]
    elif state == "phone":
        out.append(phone(True))
    elif state == "fido2":
        aaguid, model = r.choice(KEYS)
        with_app = r.random() < 0.5
        if with_app:
            out.append(authenticator())
        out.append({"type": "fido2", "id": g.uuid(), "displayName": model[:30], "aaGuid": aaguid,
                    "model": model, "attestationCertificates": [],
                    "attestationLevel": "attested", "passkeyType": "deviceBound",
                    "createdDateTime": g.date(400)})
    elif state == "softwareOath":
        out.append({"type": "softwareOath", "id": g.uuid(), "secretKey": None,
                    "createdDateTime": g.date(800), "default": True})
    elif state == "whfb":
        out.append(authenticator())
        out.append({"type": "windowsHelloForBusiness", "id": g.uuid(),
                    "displayName": f"DESKTOP-{r.randint(0, 0xFFFFF):05X}",
                    "keyStrength": "normal", "createdDateTime": g.date(300)})
    elif state == "tap":
        out.append({"type": "temporaryAccessPass", "id": g.uuid(), "startDateTime": None,
                    "lifetimeInMinutes": 60, "isUsableOnce": True, "isUsable": True,
                    "methodUsabilityReason": "EnabledByPolicy",
                    "_pass": None})
    if state == "email" or (state not in ("password", "tap") and r.random() < 0.10):
        out.append({"type": "email", "id": g.uuid(), "emailAddress": f"user{i}@outlook.example"})
    return out


def generate(n_users, license="P1", seed=0, domain="contoso.onmicrosoft.com",
             tenant_id=TENANT_ID, security_defaults=False):
    """A tenant-file dict with @n_users users (see the module comment for the mix)."""
    if n_users < 2:
        raise ValueError("a generated tenant has at least 2 users (the admins)")
    g = _Gen(seed)
    r = g.rng
    users, sign_ins = [], []
    tracked, admins = [], []
    n_admins = max(2, int(n_users * ADMIN_SHARE))
    for i in range(n_users):
        first, last = r.choice(FIRST), r.choice(LAST)
        uid = g.uuid()
        nick = f"{first}.{last}".lower().replace("'", "")
        if i == 0:
            first, last, nick, roles = "Ines", "Admin", "admin", ["Global Administrator"]
        elif i == 1:
            first, last, nick, roles = "Otto", "Operator", "operator", \
                ["Authentication Administrator"]
        elif i < n_admins:
            roles = [r.choice(ADMIN_ROLES)]
        else:
            roles = []
        u = {"id": uid, "displayName": f"{first} {last}", "givenName": first, "surname": last,
             "createdDateTime": g.date(1500, 30)}
        guest = not roles and r.random() < GUEST_SHARE
        if guest:
            u["userPrincipalName"] = f"{nick}{i}_fabrikam.com#EXT#@{domain}"
            u["mail"] = f"{nick}{i}@fabrikam.com"
            u["userType"] = "Guest"
            u["externalUserState"] = "Accepted"
            users.append(u)
            continue
        u["userPrincipalName"] = f"{nick}{i}@{domain}" if i >= 2 else f"{nick}@{domain}"
        u["mail"] = u["userPrincipalName"]
        u["jobTitle"] = "Administrator" if roles else None
        u["department"] = r.choice(DEPARTMENTS)
        if roles:
            u["directoryRoles"] = roles
            admins.append(uid)
        if not roles and r.random() < DISABLED_SHARE:
            u["accountEnabled"] = False
        x = r.random()
        state = next(s for s, edge in MIX if x < edge)
        if roles:
            state = "authenticator" if state in ("password", "email", "tap") else state
        u["methods"] = _methods(g, state, i)
        if state not in ("password", "email", "tap") and r.random() < 0.05:
            tracked.append(uid)
            u["extensions"] = {EXTENSION: g.date(60)}
        users.append(u)
        if u.get("accountEnabled", True) and r.random() < 0.5:
            legacy = r.random() < 0.08          # of the half that signed in: 4 % of members
            for _ in range(r.randint(1, 3)):
                app_id, app_name = r.choice(APPS)
                # The emulator fills id, UPN, display name and the rest (routes/signins.py).
                rec = {"minutesAgo": r.randint(1, 29 * 24 * 60), "userId": uid,
                       "appId": app_id, "appDisplayName": app_name,
                       "clientAppUsed": r.choice(LEGACY_CLIENTS) if legacy
                       else r.choice(MODERN_CLIENTS)}
                if r.random() < 0.05:
                    rec["status"] = {"errorCode": 50126,
                                     "failureReason": "Error validating credentials due to "
                                                      "invalid username or password."}
                sign_ins.append(rec)
    apps = [
        {"appId": KIOSK_APP, "displayName": "keydesk", "secrets": [{"value": KIOSK_SECRET}],
         "certificates": [], "applicationPermissions": KIOSK_PERMISSIONS},
        {"appId": READER_APP, "displayName": "reader", "secrets": [{"value": "reader"}],
         "applicationPermissions": ["User.Read.All"]},
        {"appId": OPERATOR_APP, "displayName": "keydesk operator", "publicClient": True,
         "delegatedScopes": OPERATOR_SCOPES},
    ]
    groups = [
        {"id": TRACKING_GROUP, "displayName": "MFA registered at keydesk",
         "description": "People who registered a method at a keydesk kiosk",
         "mailNickname": "mfa-registered-keydesk", "members": tracked,
         "owners": [users[1]["id"]]},
        {"id": g.uuid(), "displayName": "Tier 0 administrators", "isAssignableToRole": True,
         "mailNickname": "tier0", "members": admins},
        {"id": g.uuid(), "displayName": "Legacy mail exceptions", "mailNickname": "legacy-mail",
         "members": sorted({s["userId"] for s in sign_ins
                            if s["clientAppUsed"] in LEGACY_CLIENTS})[:50]},
    ]
    return {
        "tenant": {"id": tenant_id, "domain": domain, "displayName": "Contoso",
                   "license": license},
        "settings": {},
        "apps": apps,
        "users": users,
        "groups": groups,
        "policies": {"securityDefaults": {"isEnabled": bool(security_defaults)}},
        "signIns": sign_ins,
        "extensionProperties": [{"name": EXTENSION, "dataType": "DateTime",
                                 "targetObjects": ["User"]}],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(prog="make-tenant",
                                 description="Write a synthetic tenant file for graph-emulator.")
    ap.add_argument("--users", type=int, required=True, help="number of users (at least 2)")
    ap.add_argument("--license", choices=("free", "P1", "P2"), default="P1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--domain", default="contoso.onmicrosoft.com")
    ap.add_argument("--security-defaults", choices=("on", "off"), default="off")
    ap.add_argument("--out", required=True, help="output file ('-' for stdout)")
    args = ap.parse_args(argv)
    if args.users < 2:
        ap.error("--users must be at least 2")
    t0 = time.monotonic()
    data = generate(args.users, args.license, args.seed, args.domain,
                    security_defaults=args.security_defaults == "on")
    t1 = time.monotonic()
    text = json.dumps(data, separators=(",", ":"))     # one string: much faster than dump()
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    t2 = time.monotonic()
    print(f"make-tenant: {len(data['users'])} users, {len(data['signIns'])} sign-ins, "
          f"{len(data['groups'])} groups; generated in {t1 - t0:.2f} s, written in "
          f"{t2 - t1:.2f} s", file=sys.stderr)
    return 0
