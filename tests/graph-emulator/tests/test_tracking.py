#!/usr/bin/python3
"""Tracking writes on the user (reference §6.2): PATCH /users/{id | UPN} with declared
directory extension properties (typed) and a few profile properties; everything else 400;
who may write (User.ReadWrite.All, User Administrator, not on privileged admins)."""

from urllib.parse import quote

import emutest

U = emutest.USERS
D = "contoso.onmicrosoft.com"
APPID = emutest.KIOSK_APP.replace("-", "")
ENROLLED = f"extension_{APPID}_mfaKioskEnrolled"     # DateTime
DESK = f"extension_{APPID}_kioskDesk"                # String (declared by name only)
VISITS = f"extension_{APPID}_kioskVisits"            # Integer
ACTIVE = f"extension_{APPID}_kioskActive"            # Boolean
UNDECLARED = f"extension_{APPID}_notDeclared"
DISABLER_APP = "b16c7d8e-9fa0-4b12-83d4-e5f60718293a"    # User.EnableDisableAccount.All
USER_ADMIN = "3b1c2d4e-0000-4000-8000-0000000000d1"


def tenant():
    t = emutest.tenant()
    t["extensionProperties"] = [
        {"name": ENROLLED, "dataType": "DateTime", "targetObjects": ["User"]},
        DESK,
        {"name": VISITS, "dataType": "Integer", "targetObjects": ["User"]},
        {"name": ACTIVE, "dataType": "Boolean", "targetObjects": ["User"]},
    ]
    t["apps"].append({"appId": DISABLER_APP, "displayName": "disabler", "secrets": [{"value": "d"}],
                      "applicationPermissions": ["User.EnableDisableAccount.All",
                                                 "User.Read.All"]})
    t["users"] += [
        {"id": USER_ADMIN, "userPrincipalName": f"uma@{D}", "displayName": "Uma Users",
         "directoryRoles": ["User Administrator"], "methods": [{"type": "password"}]},
        {"id": "3b1c2d4e-0000-4000-8000-0000000000d2", "userPrincipalName": f"synced@{D}",
         "displayName": "Syd Synced", "onPremisesSyncEnabled": True,
         "methods": [{"type": "password"}]},
    ]
    return t


class TrackingTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.kiosk = self.emu.token()

    def patch(self, user, body, token=None):
        return self.emu.patch(f"/v1.0/users/{quote(user, safe='')}", body,
                              token=token or self.kiosk)

    def state(self, user):
        return self.emu.user_state(user)

    def test_extension_written_and_read_back(self):
        stamp = "2026-04-20T10:15:30Z"
        status, _, body = self.patch(U["ada"], {ENROLLED: stamp, DESK: "desk-3"})
        self.assertEqual(status, 204, body)
        self.assertIsNone(body)
        self.assertEqual(self.state(U["ada"])["extensions"], {ENROLLED: stamp, DESK: "desk-3"})
        # v1.0 returns extension properties only when selected (the users routes).
        status, _, body = self.emu.get(f"/v1.0/users/{U['ada']}?$select=id,{ENROLLED}",
                                       token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertEqual(body[ENROLLED], stamp)
        plain = self.emu.get(f"/v1.0/users/{U['ada']}", token=self.kiosk)[2]
        self.assertNotIn(ENROLLED, plain)
        # null clears the value
        self.assertEqual(self.patch(U["ada"], {ENROLLED: None, DESK: None})[0], 204)
        self.assertEqual(self.state(U["ada"])["extensions"], {})

    def test_by_upn_and_unknown_user(self):
        self.assertEqual(self.patch(f"bob@{D}", {VISITS: 3, ACTIVE: True})[0], 204)
        self.assertEqual(self.state(U["bob"])["extensions"], {VISITS: 3, ACTIVE: True})
        self.assertGraphError(self.patch(f"nobody@{D}", {VISITS: 1}), 404,
                              "Request_ResourceNotFound")

    def test_undeclared_extension_refused(self):
        err = self.assertGraphError(self.patch(U["ada"], {UNDECLARED: "x"}), 400,
                                    "Request_BadRequest")
        self.assertEqual(err["message"], f"Property '{UNDECLARED}' does not exist as a declared "
                                         "property or extension property.")

    def test_extension_types_checked(self):
        for prop, value in ((ENROLLED, "yesterday"), (ENROLLED, "2026-13-01T00:00:00Z"),
                            (ENROLLED, "2026-04-20"), (ENROLLED, 1713607200),
                            (VISITS, "3"), (VISITS, 2 ** 31), (VISITS, True), (ACTIVE, "true"),
                            (DESK, 5), (DESK, "x" * 257)):
            with self.subTest(prop=prop, value=value):
                self.assertGraphError(self.patch(U["ada"], {prop: value}), 400,
                                      "Request_BadRequest")
        self.assertEqual(self.state(U["ada"])["extensions"], {})
        self.assertEqual(self.patch(U["ada"], {ENROLLED: "2026-04-20T10:15:30.1234567+02:00"})[0],
                         204)
        self.patch(U["ada"], {ENROLLED: None})

    def test_profile_properties(self):
        body = {"jobTitle": "Kiosk visitor", "department": "Facilities",
                "officeLocation": "Building 3", "businessPhones": ["+1 425 555 0109"],
                "usageLocation": "US",
                "onPremisesExtensionAttributes": {"extensionAttribute7": "mfa-kiosk:2026"}}
        self.assertEqual(self.patch(U["carol"], body)[0], 204)
        st = self.state(U["carol"])
        for k in ("jobTitle", "department", "officeLocation", "businessPhones", "usageLocation"):
            self.assertEqual(st[k], body[k])
        self.assertEqual(st["onPremisesExtensionAttributes"]["extensionAttribute7"],
                         "mfa-kiosk:2026")
        self.assertIsNone(st["onPremisesExtensionAttributes"]["extensionAttribute1"])

    def test_refused_properties(self):
        for body, code in (({"id": U["ada"]}, "Request_BadRequest"),
                           ({"userPrincipalName": f"ada2@{D}"}, "Request_BadRequest"),
                           ({"mail": "a@b.c"}, "Request_BadRequest"),
                           ({"userType": "Guest"}, "Request_BadRequest"),
                           ({"favouriteColour": "red"}, "Request_BadRequest"),
                           ({"displayName": ""}, "Request_BadRequest"),
                           ({"displayName": None}, "Request_BadRequest"),
                           ({"jobTitle": "x" * 129}, "Request_BadRequest"),
                           ({"accountEnabled": "no"}, "Request_BadRequest"),
                           ({"businessPhones": ["1", "2"]}, "Request_BadRequest"),
                           ({"usageLocation": "usa"}, "Request_BadRequest"),
                           ({"onPremisesExtensionAttributes": {"extensionAttribute16": "x"}},
                            "Request_BadRequest")):
            with self.subTest(body=body):
                self.assertGraphError(self.patch(U["ada"], body), 400, code)
        self.assertGraphError(self.emu.patch(f"/v1.0/users/{U['ada']}", None, token=self.kiosk,
                                             raw=b"[]",
                                             headers={"Content-Type": "application/json"}), 400)

    def test_all_or_nothing(self):
        self.assertGraphError(self.patch(U["dave"], {"jobTitle": "Sales lead",
                                                     UNDECLARED: "x"}), 400)
        self.assertIsNone(self.state(U["dave"]).get("jobTitle"))

    def test_synced_user_profile_is_read_only(self):
        self.assertGraphError(self.patch(f"synced@{D}", {"jobTitle": "x"}), 400,
                              "Request_BadRequest")
        self.assertEqual(self.patch(f"synced@{D}", {ENROLLED: "2026-04-20T10:15:30Z"})[0], 204)

    def test_permissions(self):
        reader = self.emu.token(emutest.READER_APP)
        self.assertGraphError(self.patch(U["ada"], {DESK: "x"}, token=reader), 403,
                              "Authorization_RequestDenied")
        # User.EnableDisableAccount.All (+ User.Read.All): accountEnabled and nothing else.
        disabler = self.emu.token(DISABLER_APP)
        self.assertEqual(self.patch(U["dollar"], {"accountEnabled": False}, token=disabler)[0],
                         204)
        self.assertIs(self.state(U["dollar"])["accountEnabled"], False)
        self.assertEqual(self.patch(U["dollar"], {"accountEnabled": True}, token=disabler)[0],
                         204)
        self.assertGraphError(self.patch(U["dollar"], {"jobTitle": "x"}, token=disabler), 403)

    def test_delegated_roles(self):
        scopes = ["User.ReadWrite.All"]
        op = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}", scopes=scopes)
        self.assertGraphError(self.patch(U["ada"], {DESK: "x"}, token=op), 403)
        uma = self.emu.token(emutest.DELEGATED_APP, user=f"uma@{D}", scopes=scopes)
        self.assertEqual(self.patch(U["ada"], {DESK: "desk-1"}, token=uma)[0], 204)
        # A User Administrator may not change a privileged admin.
        self.assertGraphError(self.patch(U["admin"], {DESK: "desk-1"}, token=uma), 403)
        self.assertEqual(self.patch(U["ada"], {DESK: None}, token=uma)[0], 204)


if __name__ == "__main__":
    emutest.main()
