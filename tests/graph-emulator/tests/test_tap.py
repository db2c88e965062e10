#!/usr/bin/python3
"""Temporary Access Pass (reference §3) and the sign-in / registration control calls that
stand in for the user's phone (§4.4)."""

import re
from urllib.parse import quote

import emutest
from emutest import USERS

D = "contoso.onmicrosoft.com"
GINA = "3b1c2d4e-0000-4000-8000-0000000000a1"     # Global Administrator
PAT = "3b1c2d4e-0000-4000-8000-0000000000a2"      # Privileged Authentication Administrator
EXCLUDED = "3b1c2d4e-0000-4000-8000-0000000000c1"
NO_TAP_GROUP = "7d7e7f80-1111-4222-8333-000000000001"
TAP_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
SEG = "authentication/temporaryAccessPassMethods"
ALPHABET = re.compile(r"^[A-Za-z0-9!#$%&*+\-=?@]+$")


def tenant(tap_policy=None):
    t = emutest.tenant()
    t["users"] += [
        {"id": GINA, "userPrincipalName": f"gina@{D}", "displayName": "Gina Global",
         "directoryRoles": ["Global Administrator"], "methods": [{"type": "password"}]},
        {"id": PAT, "userPrincipalName": f"pat@{D}", "displayName": "Pat Privileged",
         "directoryRoles": ["Privileged Authentication Administrator"],
         "methods": [{"type": "password"}]},
        {"id": EXCLUDED, "userPrincipalName": f"xena@{D}", "displayName": "Xena Excluded",
         "methods": [{"type": "password"}]},
    ]
    t["groups"].append({"id": NO_TAP_GROUP, "displayName": "No TAP", "members": [EXCLUDED]})
    t["policies"]["temporaryAccessPass"] = dict(
        {"excludeTargets": [{"targetType": "group", "id": NO_TAP_GROUP}]}, **(tap_policy or {}))
    return t


class TapBase(emutest.EmulatorTestCase):
    TENANT = tenant()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.emu.token()

    def create(self, user, body=None, token=None, version="v1.0"):
        return self.emu.post(f"/{version}/users/{user}/{SEG}", {} if body is None else body,
                             token=token or self.app)

    def created(self, user, body=None, **kw):
        status, headers, tap = self.create(user, body, **kw)
        self.assertEqual(status, 201, tap)
        return tap

    def settings(self, **kw):
        self.assertEqual(self.emu.patch("/_emulator/settings", kw)[0], 200)

    def signin(self, user, **body):
        return self.emu.post(f"/_emulator/users/{user}/signin", body)

    def register(self, user, **body):
        return self.emu.post(f"/_emulator/users/{user}/register", body)


class TapTest(TapBase):
    def test_create_default(self):
        tap = self.created(USERS["ada"])
        self.assertEqual(tap["@odata.type"], TAP_TYPE)
        self.assertEqual(set(tap) - {"@odata.context", "@odata.type"},
                         {"id", "temporaryAccessPass", "createdDateTime", "startDateTime",
                          "lifetimeInMinutes", "isUsableOnce", "isUsable",
                          "methodUsabilityReason"})
        self.assertEqual(len(tap["temporaryAccessPass"]), 8)         # policy defaultLength
        self.assertRegex(tap["temporaryAccessPass"], ALPHABET)
        self.assertEqual(tap["lifetimeInMinutes"], 60)                # policy default
        self.assertIs(tap["isUsableOnce"], False)                     # policy isUsableOnce
        self.assertIs(tap["isUsable"], True)
        self.assertEqual(tap["methodUsabilityReason"], "EnabledByPolicy")
        # the pass is shown only once
        status, _, got = self.emu.get(f"/v1.0/users/{USERS['ada']}/{SEG}/{tap['id']}",
                                      token=self.app)
        self.assertEqual(status, 200)
        self.assertIsNone(got["temporaryAccessPass"])
        self.assertIn("temporaryAccessPass", got)
        status, _, listed = self.emu.get(f"/v1.0/users/{USERS['ada']}/{SEG}", token=self.app)
        self.assertEqual([t["id"] for t in listed["value"]], [tap["id"]])
        self.assertIsNone(listed["value"][0]["temporaryAccessPass"])
        self.assertNotIn("_pass", str(listed))
        generic = self.emu.get(f"/v1.0/users/{USERS['ada']}/authentication/methods",
                               token=self.app)[2]["value"]
        self.assertIn(TAP_TYPE, [m["@odata.type"] for m in generic])

    def test_new_tap_replaces_old(self):
        first = self.created(USERS["bob"])
        second = self.created(USERS["bob"], {"isUsableOnce": True, "lifetimeInMinutes": 120})
        self.assertNotEqual(first["temporaryAccessPass"], second["temporaryAccessPass"])
        listed = self.emu.get(f"/v1.0/users/{USERS['bob']}/{SEG}", token=self.app)[2]["value"]
        self.assertEqual([t["id"] for t in listed], [second["id"]])
        self.assertEqual((listed[0]["lifetimeInMinutes"], listed[0]["isUsableOnce"]),
                         (120, True))

    def test_lifetime_limits(self):
        for n in (5, 43201, 30, 481, "60", True):
            self.assertGraphError(self.create(USERS["carol"], {"lifetimeInMinutes": n}), 400)
        self.assertEqual(self.created(USERS["carol"], {"lifetimeInMinutes": 480})
                         ["lifetimeInMinutes"], 480)

    def test_body_validation(self):
        for body in ({"temporaryAccessPass": "mine"}, {"isUsable": True}, {"colour": "red"},
                     {"isUsableOnce": "yes"}, {"startDateTime": "tomorrow"},
                     {"startDateTime": "2020-01-01T00:00:00Z"},
                     {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod"}):
            self.assertGraphError(self.create(USERS["carol"], body), 400)
        self.created(USERS["carol"], {"@odata.type": TAP_TYPE})

    def test_not_yet_valid_then_expired(self):
        uid = USERS["dave"]
        tap = self.created(uid, {"startDateTime": "2099-01-01T08:00:00.000Z",
                                 "lifetimeInMinutes": 60})
        self.assertEqual(tap["startDateTime"], "2099-01-01T08:00:00Z")
        self.assertEqual((tap["isUsable"], tap["methodUsabilityReason"]),
                         (False, "NotYetValid"))
        tap = self.created(uid, {"lifetimeInMinutes": 60})
        path = f"/v1.0/users/{uid}/{SEG}/{tap['id']}"
        try:
            self.settings(clockOffsetSeconds=3601)
            got = self.emu.get(path, token=self.app)[2]
            self.assertEqual((got["isUsable"], got["methodUsabilityReason"]),
                             (False, "Expired"))
            self.assertEqual(self.signin(uid, method="temporaryAccessPass",
                                         **{"pass": tap["temporaryAccessPass"]})[0], 401)
        finally:
            self.settings(clockOffsetSeconds=0)

    def test_delete(self):
        tap = self.created(USERS["carol"])
        path = f"/v1.0/users/{USERS['carol']}/{SEG}/{tap['id']}"
        self.assertGraphError(self.emu.delete(path, token=self.emu.token(emutest.READER_APP)),
                              403)
        self.assertEqual(self.emu.delete(path, token=self.app)[0], 204)
        self.assertGraphError(self.emu.get(path, token=self.app), 404, "itemNotFound")

    def test_policy_excluded_user(self):
        err = self.assertGraphError(self.create(EXCLUDED), 400, "badRequest")
        self.assertIn("not enabled for this user", err["message"])

    def test_authorization(self):
        self.assertGraphError(self.create(USERS["ada"], token=self.emu.token(
            emutest.READER_APP)), 403, "Authorization_RequestDenied")
        bob = self.emu.token(emutest.DELEGATED_APP, user=f"bob@{D}")
        self.assertGraphError(self.create(USERS["ada"], token=bob), 403,
                              "Authorization_RequestDenied")
        self.assertGraphError(self.create(USERS["bob"], token=bob), 403)     # own TAP
        admin = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")   # Auth Admin
        self.created(USERS["ada"], token=admin)
        self.assertGraphError(self.create(GINA, token=admin), 403, "Authorization_RequestDenied")
        self.assertGraphError(self.create(USERS["admin"], token=admin), 403)   # self
        pat = self.emu.token(emutest.DELEGATED_APP, user=f"pat@{D}")
        self.created(GINA, token=pat)
        self.created(USERS["admin"], token=pat)
        self.assertEqual(self.emu.get(f"/v1.0/users/{GINA}/{SEG}", token=admin)[0], 200)


class SignInTest(TapBase):
    def test_one_time_tap_sign_in_then_register_authenticator(self):
        uid = USERS["ada"]                        # password only: never registered MFA
        tap = self.created(uid, {"isUsableOnce": True})
        self.assertGraphError(self.register(uid, method="microsoftAuthenticator",
                                            displayName="iPhone 15"), 403)
        self.assertEqual(self.signin(uid, method="temporaryAccessPass", **{"pass": "nope"})[0],
                         401)
        status, _, body = self.signin(uid, method="temporaryAccessPass",
                                      clientAppUsed="Mobile Apps and Desktop clients",
                                      **{"pass": tap["temporaryAccessPass"]})
        self.assertEqual(status, 200, body)
        rec = body["signIn"]
        self.assertEqual((rec["userId"], rec["clientAppUsed"], rec["status"]["errorCode"]),
                         (uid, "Mobile Apps and Desktop clients", 0))
        self.assertRegex(rec["createdDateTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        got = self.emu.get(f"/v1.0/users/{uid}/{SEG}/{tap['id']}", token=self.app)[2]
        self.assertEqual((got["isUsable"], got["methodUsabilityReason"]),
                         (False, "OneTimeUsed"))
        self.assertEqual(self.signin(uid, method="temporaryAccessPass",
                                     **{"pass": tap["temporaryAccessPass"]})[0], 401)
        status, _, m = self.register(uid, method="microsoftAuthenticator",
                                     displayName="iPhone 15")
        self.assertEqual(status, 201, m)
        self.assertTrue(m["default"])
        listed = self.emu.get(f"/v1.0/users/{uid}/authentication/microsoftAuthenticatorMethods",
                              token=self.app)[2]["value"]
        self.assertEqual([a["displayName"] for a in listed], ["iPhone 15"])
        # a TOTP app afterwards: not the default
        status, _, oath = self.register(uid, method="softwareOath", displayName="Aegis")
        self.assertEqual((status, oath["default"]), (201, False))
        self.assertEqual(len(self.emu.get(f"/v1.0/users/{uid}/authentication/"
                                          "softwareOathMethods", token=self.app)[2]["value"]), 1)

    def test_multi_use_tap_and_password(self):
        uid = USERS["carol"]
        tap = self.created(uid, {"isUsableOnce": False})
        for _ in range(2):
            self.assertEqual(self.signin(uid, method="temporaryAccessPass",
                                         **{"pass": tap["temporaryAccessPass"]})[0], 200)
        got = self.emu.get(f"/v1.0/users/{uid}/{SEG}/{tap['id']}", token=self.app)[2]
        self.assertTrue(got["isUsable"])
        status, _, body = self.signin(USERS["dave"], method="password")
        self.assertEqual((status, body["signIn"]["clientAppUsed"]), (200, "Browser"))

    def test_register_window(self):
        uid = USERS["dave"]
        self.assertEqual(self.signin(uid, method="password")[0], 200)
        try:
            self.settings(clockOffsetSeconds=601)
            err = self.assertGraphError(self.register(uid, method="softwareOath"), 403)
            self.assertIn("10 minutes", err["message"])
        finally:
            self.settings(clockOffsetSeconds=0)
        self.assertEqual(self.register(uid, method="softwareOath")[0], 201)

    def test_bad_calls(self):
        self.assertEqual(self.signin(USERS["bob"], method="sms")[0], 400)
        self.assertEqual(self.signin(USERS["bob"], method="temporaryAccessPass",
                                     **{"pass": "x"})[0], 401)          # bob has no TAP
        self.assertEqual(self.register(USERS["bob"], method="fido2")[0], 400)
        self.assertEqual(self.signin(f"nobody@{D}", method="password")[0], 404)
        guest = quote(f"gail_fabrikam.com#EXT#@{D}", safe="")
        self.assertEqual(self.signin(guest, method="password")[0], 200)


class OneTimePolicyTest(TapBase):
    TENANT = tenant({"isUsableOnce": True, "defaultLength": 12, "defaultLifetimeInMinutes": 30,
                     "minimumLifetimeInMinutes": 10, "maximumLifetimeInMinutes": 43200})

    def test_policy_defaults_and_one_time(self):
        tap = self.created(USERS["ada"])
        self.assertEqual(len(tap["temporaryAccessPass"]), 12)
        self.assertEqual((tap["lifetimeInMinutes"], tap["isUsableOnce"]), (30, True))
        err = self.assertGraphError(self.create(USERS["ada"], {"isUsableOnce": False}), 400)
        self.assertIn("isUsableOnce", err["message"])
        self.assertEqual(self.created(USERS["ada"], {"lifetimeInMinutes": 43200})
                         ["lifetimeInMinutes"], 43200)


class DisabledPolicyTest(TapBase):
    TENANT = tenant({"state": "disabled"})

    def test_disabled(self):
        err = self.assertGraphError(self.create(USERS["ada"]), 400, "badRequest")
        self.assertIn("disabled", err["message"])


if __name__ == "__main__":
    emutest.main()
