#!/usr/bin/python3
"""Directory role assignments (GET /roleManagement/directory/roleAssignments): one per user
role, built-in template ids, $filter/$select/paging, and who may read them."""

import unittest

import emutest
from test_reports import follow

U = emutest.USERS
PATH = "/v1.0/roleManagement/directory/roleAssignments"
ROLE_READER_APP = "b16c7d8e-9fa0-4b12-83c4-d5e6f708192a"   # RoleManagement.Read.Directory only
AUTH_ADMIN = "c4e39bd9-1100-46d3-8c65-fb160da0071f"


def tenant():
    t = emutest.tenant()
    t["apps"].append({"appId": ROLE_READER_APP, "displayName": "role reader",
                      "secrets": [{"value": "r"}],
                      "applicationPermissions": ["RoleManagement.Read.Directory"]})
    bob = next(u for u in t["users"] if u["id"] == U["bob"])
    bob["directoryRoles"] = ["Reports Reader", "Global Reader"]
    return t


class RoleAssignmentTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def test_list(self):
        token = self.emu.token(ROLE_READER_APP)
        status, _, body = self.emu.get(PATH, token=token)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["@odata.context"].endswith(
            "$metadata#roleManagement/directory/roleAssignments"))
        self.assertEqual([(a["principalId"], a["roleDefinitionId"], a["directoryScopeId"])
                          for a in body["value"]],
                         [(U["admin"], AUTH_ADMIN, "/"),
                          (U["bob"], "f2ef992c-3afb-46b9-b7cf-a126ee74c451", "/"),
                          (U["bob"], "4a5d8f65-41da-4de4-8968-e035b65339cf", "/")])
        self.assertEqual(len({a["id"] for a in body["value"]}), 3)

    def test_filter_select_paging(self):
        token = self.emu.token(ROLE_READER_APP)
        status, _, body = self.emu.get(
            PATH + f"?$filter=principalId%20eq%20'{U['admin']}'&$select=principalId",
            token=token)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["value"], [{"principalId": U["admin"]}])
        status, _, body = self.emu.get(PATH + f"?$filter=principalId%20eq%20'{U['ada']}'",
                                       token=token)
        self.assertEqual((status, body["value"]), (200, []))
        rows, pages = follow(self, PATH + "?$top=1", token)
        self.assertEqual((len(rows), pages), (3, 3))
        status, _, body = self.emu.get(PATH + "?$select=nope", token=token)
        self.assertEqual(status, 400, body)
        status, _, body = self.emu.get(PATH + "?$orderby=id", token=token)
        self.assertEqual(status, 400, body)

    def test_permissions(self):
        # The kiosk's own permissions do not include reading roles; the reader app has none.
        status, _, body = self.emu.get(PATH, token=self.emu.token(emutest.READER_APP))
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"]["code"], "Authorization_RequestDenied")


if __name__ == "__main__":
    unittest.main()
