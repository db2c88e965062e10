#!/usr/bin/python3
"""Groups and membership, the kiosk's narrowest tracking write (reference §6.2): listing,
filters, paging, members as directoryObjects, POST/DELETE members/$ref with every documented
error, and who may do it (application permissions, delegated roles, owners, role-assignable
groups, dynamic groups)."""

from urllib.parse import quote

import emutest
from test_reports import follow

U = emutest.USERS
D = "contoso.onmicrosoft.com"
G = emutest.GROUP_ID
ROLE_GROUP = "7d7e7f80-2222-4222-8333-444455556666"
DYNAMIC_GROUP = "7d7e7f80-3333-4222-8333-444455556666"
OWNED_GROUP = "7d7e7f80-4444-4222-8333-444455556666"
BIG_GROUP = "7d7e7f80-5555-4222-8333-444455556666"
MEMBER_READER_APP = "9f4a5b6c-7d8e-4f90-a1b2-c3d4e5f60718"   # GroupMember.Read.All only
ROLE_APP = "a05b6c7d-8e9f-4a01-b2c3-d4e5f6071829"            # + RoleManagement.ReadWrite.Directory
GROUPS_ADMIN = "3b1c2d4e-0000-4000-8000-0000000000c1"
REF = "https://graph.microsoft.com/v1.0/directoryObjects/"
UNKNOWN = "3b1c2d4e-0000-4000-8000-0000000000ff"


def tenant():
    t = emutest.tenant()
    t["apps"] += [
        {"appId": MEMBER_READER_APP, "displayName": "member reader", "secrets": [{"value": "m"}],
         "applicationPermissions": ["GroupMember.Read.All"]},
        {"appId": ROLE_APP, "displayName": "role groups", "secrets": [{"value": "r"}],
         "applicationPermissions": ["GroupMember.ReadWrite.All",
                                    "RoleManagement.ReadWrite.Directory"]},
    ]
    t["users"].append({"id": GROUPS_ADMIN, "userPrincipalName": f"gina@{D}",
                       "displayName": "Gina Groups", "directoryRoles": ["Groups Administrator"],
                       "methods": [{"type": "password"}]})
    t["groups"] += [
        {"id": ROLE_GROUP, "displayName": "Tier 0 administrators", "isAssignableToRole": True,
         "members": [U["admin"]]},
        {"id": DYNAMIC_GROUP, "displayName": "All staff", "groupTypes": ["DynamicMembership"],
         "membershipRule": "(user.userType -eq \"Member\")", "members": [U["ada"]]},
        {"id": OWNED_GROUP, "displayName": "Kiosk desk 3", "owners": [U["admin"]], "members": []},
        {"id": BIG_GROUP, "displayName": "MFA pilot", "members": [U[n] for n in
                                                                  ("ada", "bob", "carol", "dave",
                                                                   "dollar", "guest")]},
    ]
    return t


class GroupReadTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.kiosk = self.emu.token()

    def test_list_shape(self):
        status, _, body = self.emu.get("/v1.0/groups", token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["@odata.context"].endswith("$metadata#groups"))
        groups = {g["id"]: g for g in body["value"]}
        self.assertEqual(len(groups), 5)
        g = groups[G]
        for k in ("displayName", "mailEnabled", "securityEnabled", "groupTypes",
                  "isAssignableToRole", "mailNickname", "createdDateTime", "visibility"):
            self.assertIn(k, g)
        self.assertNotIn("members", g)
        self.assertFalse(any(k.startswith("_") for k in g))

    def test_filter_select_and_paging(self):
        q = "?$filter=" + quote("displayName eq 'MFA registered at keydesk'")
        rows = self.emu.get("/v1.0/groups" + q, token=self.kiosk)[2]["value"]
        self.assertEqual([g["id"] for g in rows], [G])
        q = "?$filter=" + quote("startswith(displayName,'mfa')") + "&$select=id,displayName"
        rows = self.emu.get("/v1.0/groups" + q, token=self.kiosk)[2]["value"]
        self.assertEqual({g["id"] for g in rows}, {G, BIG_GROUP})
        self.assertEqual(set(rows[0]), {"id", "displayName"})
        items, pages = follow(self, "/v1.0/groups?$top=2", self.kiosk)
        self.assertEqual((len(items), pages), (5, 3))
        for bad in ("displayName ne 'x'", "endswith(displayName,'x')", "colour eq 'red'",
                    "securityEnabled eq 'yes'"):
            with self.subTest(filter=bad):
                self.assertGraphError(self.emu.get("/v1.0/groups?$filter=" + quote(bad),
                                                   token=self.kiosk), 400)
        self.assertGraphError(self.emu.get("/v1.0/groups?$top=1000", token=self.kiosk), 400)

    def test_get_one(self):
        status, _, body = self.emu.get(f"/v1.0/groups/{G}?$select=displayName", token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["displayName"], "MFA registered at keydesk")
        self.assertGraphError(self.emu.get(f"/v1.0/groups/{UNKNOWN}", token=self.kiosk), 404,
                              "Request_ResourceNotFound")
        self.assertGraphError(self.emu.get("/v1.0/groups/not-a-guid", token=self.kiosk), 400)

    def test_members_are_directory_objects(self):
        status, _, body = self.emu.get(f"/v1.0/groups/{BIG_GROUP}/members", token=self.kiosk)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["@odata.context"].endswith("$metadata#directoryObjects"))
        ada = body["value"][0]
        self.assertEqual(ada["@odata.type"], "#microsoft.graph.user")
        self.assertEqual(set(ada) - {"@odata.type"},
                         {"id", "businessPhones", "displayName", "givenName", "jobTitle", "mail",
                          "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                          "userPrincipalName"})
        self.assertEqual(ada["userPrincipalName"], f"ada@{D}")
        sel = self.emu.get(f"/v1.0/groups/{BIG_GROUP}/members?$select=id,userPrincipalName",
                           token=self.kiosk)[2]["value"]
        self.assertEqual(set(sel[0]), {"@odata.type", "id", "userPrincipalName"})

    def test_members_paging(self):
        items, pages = follow(self, f"/v1.0/groups/{BIG_GROUP}/members?$top=4", self.kiosk)
        self.assertEqual((len(items), pages), (6, 2))
        self.assertGraphError(self.emu.get(f"/v1.0/groups/{BIG_GROUP}/members?$top=1000",
                                           token=self.kiosk), 400)
        self.assertGraphError(self.emu.get(f"/v1.0/groups/{BIG_GROUP}/members?$filter="
                                           + quote("id eq 'x'"), token=self.kiosk), 400)

    def test_members_without_user_read_are_ids_only(self):
        # Graph shows directory objects it may not read as id + @odata.type, rest null.
        token = self.emu.token(MEMBER_READER_APP)
        ada = self.emu.get(f"/v1.0/groups/{BIG_GROUP}/members", token=token)[2]["value"][0]
        self.assertEqual(ada["id"], U["ada"])
        self.assertIsNone(ada["displayName"])
        self.assertIsNone(ada["userPrincipalName"])

    def test_reader_app_refused(self):
        reader = self.emu.token(emutest.READER_APP)          # User.Read.All only
        self.assertGraphError(self.emu.get("/v1.0/groups", token=reader), 403,
                              "Authorization_RequestDenied")
        self.assertGraphError(self.emu.get(f"/v1.0/groups/{G}/members", token=reader), 403)

    def test_members_cost_three_units(self):
        _, headers, _ = self.emu.get(f"/v1.0/groups/{G}/members", token=self.kiosk)
        if "x-ms-resource-unit" not in headers:
            self.skipTest("no throttling module")
        self.assertEqual(headers["x-ms-resource-unit"], "3")


class MembershipWriteTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def setUp(self):
        self.kiosk = self.emu.token()

    def add(self, group, ref, token=None):
        return self.emu.post(f"/v1.0/groups/{group}/members/$ref", {"@odata.id": ref},
                             token=token or self.kiosk)

    def members(self, group):
        groups = self.emu.get("/_emulator/state")[2]["groups"]
        return next(g["members"] for g in groups if g["id"] == group)

    def test_add_then_duplicate_then_remove(self):
        status, _, body = self.add(G, REF + U["ada"])
        self.assertEqual(status, 204, body)
        self.assertIsNone(body)
        self.assertIn(U["ada"], self.members(G))
        err = self.assertGraphError(self.add(G, REF + U["ada"]), 400, "Request_BadRequest")
        self.assertEqual(err["message"], "One or more added object references already exist for "
                                         "the following modified properties: 'members'.")
        status, _, body = self.emu.delete(f"/v1.0/groups/{G}/members/{U['ada']}/$ref",
                                          token=self.kiosk)
        self.assertEqual(status, 204, body)
        self.assertNotIn(U["ada"], self.members(G))
        self.assertGraphError(self.emu.delete(f"/v1.0/groups/{G}/members/{U['ada']}/$ref",
                                              token=self.kiosk), 404)

    def test_reference_forms(self):
        base = f"https://{self.emu.host}:{self.emu.port}"
        for i, ref in enumerate((f"{base}/v1.0/directoryObjects/{U['bob']}",
                                 f"https://graph.microsoft.com/v1.0/users/{U['carol']}",
                                 "https://graph.microsoft.com/beta/directoryObjects"
                                 f"('{U['dave']}')",
                                 f"https://graph.microsoft.com/v1.0/groups/{BIG_GROUP}")):
            with self.subTest(ref=ref):
                status, _, body = self.add(OWNED_GROUP, ref)
                self.assertEqual(status, 204, body)
        self.assertEqual(set(self.members(OWNED_GROUP)), {U["bob"], U["carol"], U["dave"],
                                                          BIG_GROUP})
        for n in (U["bob"], U["carol"], U["dave"], BIG_GROUP):
            self.emu.delete(f"/v1.0/groups/{OWNED_GROUP}/members/{n}/$ref", token=self.kiosk)

    def test_bad_references(self):
        for ref in (U["ada"], f"directoryObjects/{U['ada']}",
                    f"https://graph.microsoft.com/v1.0/directoryObjects/ada@{D}",
                    f"https://graph.microsoft.com/v1.0/applications/{U['ada']}",
                    f"http://graph.microsoft.com/v1.0/directoryObjects/{U['ada']}",
                    f"https://graph.microsoft.com/v2.0/directoryObjects/{U['ada']}", 42, None):
            with self.subTest(ref=ref):
                self.assertGraphError(self.add(G, ref), 400)
        for body in ({}, {"@odata.id": REF + U["ada"], "extra": 1}, [REF + U["ada"]]):
            with self.subTest(body=body):
                self.assertGraphError(self.emu.post(f"/v1.0/groups/{G}/members/$ref", body,
                                                    token=self.kiosk), 400)
        self.assertGraphError(self.emu.post(f"/v1.0/groups/{G}/members/$ref", None,
                                            token=self.kiosk), 400)

    def test_unknown_objects(self):
        self.assertGraphError(self.add(G, REF + UNKNOWN), 404, "Request_ResourceNotFound")
        self.assertGraphError(self.add(UNKNOWN, REF + U["ada"]), 404)
        self.assertGraphError(self.emu.delete(f"/v1.0/groups/{G}/members/{UNKNOWN}/$ref",
                                              token=self.kiosk), 404)

    def test_reader_app_refused(self):
        reader = self.emu.token(emutest.READER_APP)
        self.assertGraphError(self.add(G, REF + U["ada"], token=reader), 403,
                              "Authorization_RequestDenied")
        self.assertGraphError(self.add(G, REF + U["ada"], token=self.emu.token(MEMBER_READER_APP)),
                              403)

    def test_role_assignable_group_needs_role_management(self):
        self.assertGraphError(self.add(ROLE_GROUP, REF + U["bob"]), 403)
        status, _, body = self.add(ROLE_GROUP, REF + U["bob"], token=self.emu.token(ROLE_APP))
        self.assertEqual(status, 204, body)
        self.assertGraphError(self.emu.delete(f"/v1.0/groups/{ROLE_GROUP}/members/{U['bob']}/$ref",
                                              token=self.kiosk), 403)
        self.assertEqual(self.emu.delete(f"/v1.0/groups/{ROLE_GROUP}/members/{U['bob']}/$ref",
                                         token=self.emu.token(ROLE_APP))[0], 204)

    def test_dynamic_group_refuses_manual_members(self):
        self.assertGraphError(self.add(DYNAMIC_GROUP, REF + U["bob"]), 400, "Request_BadRequest")
        self.assertGraphError(self.emu.delete(f"/v1.0/groups/{DYNAMIC_GROUP}/members/{U['ada']}"
                                              "/$ref", token=self.kiosk), 400)

    def test_delegated_needs_role_or_ownership(self):
        scopes = ["GroupMember.ReadWrite.All"]
        # The operator (Authentication Administrator) owns OWNED_GROUP but not G.
        op = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}", scopes=scopes)
        self.assertGraphError(self.add(G, REF + U["dave"], token=op), 403)
        self.assertEqual(self.add(OWNED_GROUP, REF + U["dave"], token=op)[0], 204)
        self.assertEqual(self.emu.delete(f"/v1.0/groups/{OWNED_GROUP}/members/{U['dave']}/$ref",
                                         token=op)[0], 204)
        gina = self.emu.token(emutest.DELEGATED_APP, user=f"gina@{D}", scopes=scopes)
        self.assertEqual(self.add(G, REF + U["dave"], token=gina)[0], 204)
        self.assertEqual(self.emu.delete(f"/v1.0/groups/{G}/members/{U['dave']}/$ref",
                                         token=gina)[0], 204)
        gina_read = self.emu.token(emutest.DELEGATED_APP, user=f"gina@{D}",
                                   scopes=["GroupMember.Read.All"])
        self.assertGraphError(self.add(G, REF + U["dave"], token=gina_read), 403)


if __name__ == "__main__":
    emutest.main()
