#!/usr/bin/python3
"""Users (reference §8.3, §8.5, §9): GET /users with $filter/$select/$top/$count and paging,
GET /users/{id | UPN} ($ and # UPNs), GET /me, revokeSignInSessions."""

import time
from urllib.parse import quote, urlsplit

import emutest
from emutest import USERS

D = "contoso.onmicrosoft.com"
GINA = "3b1c2d4e-0000-4000-8000-0000000000a1"
DAN = "3b1c2d4e-0000-4000-8000-0000000000a3"
OFF = "3b1c2d4e-0000-4000-8000-0000000000a4"
EXT = "extension_3f2a6c1e8d4b4e579a0f2b7c1d9e4f60_keydeskEnrolled"


def tenant():
    t = emutest.tenant()
    t["users"] += [
        {"id": GINA, "userPrincipalName": f"gina@{D}", "displayName": "Gina Global",
         "directoryRoles": ["Global Administrator"], "methods": [{"type": "password"}]},
        {"id": DAN, "userPrincipalName": f"dan.oneil@{D}", "displayName": "Dan O'Neil",
         "givenName": "Dan", "surname": "O'Neil", "jobTitle": "Engineer",
         "mail": f"dan.oneil@{D}", "extensions": {EXT: "2026-04-20"}},
        {"id": OFF, "userPrincipalName": f"olga@{D}", "displayName": "Olga Offboarded",
         "accountEnabled": False, "mail": "olga@fabrikam.com"},
    ]
    t["users"] += [{"userPrincipalName": f"load{i:02d}@{D}", "displayName": f"Load {i:02d}"}
                   for i in range(25)]
    t["extensionProperties"] = [EXT]
    return t


N_USERS = 7 + 3 + 25
DEFAULT_PROPS = {"businessPhones", "displayName", "givenName", "jobTitle", "mail",
                 "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                 "userPrincipalName", "id"}
ADVANCED = {"ConsistencyLevel": "eventual"}


class UsersTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.emu.token()

    def get(self, path, **kw):
        kw.setdefault("token", self.app)
        return self.emu.get(path, **kw)

    def users(self, query, **kw):
        status, _, body = self.get("/v1.0/users?" + query, **kw)
        self.assertEqual(status, 200, body)
        return body

    # --- list --------------------------------------------------------------------------------

    def test_list_default_shape(self):
        body = self.users("$top=3")
        self.assertEqual(body["@odata.context"],
                         "https://graph.microsoft.com/v1.0/$metadata#users")
        self.assertEqual(len(body["value"]), 3)
        for u in body["value"]:
            self.assertEqual(set(u), DEFAULT_PROPS)
            self.assertIsInstance(u["businessPhones"], list)
        self.assertIn("@odata.nextLink", body)

    def test_select(self):
        body = self.users("$select=id,accountEnabled,userType&$filter=" + quote(f"id eq '{OFF}'"))
        self.assertEqual(body["value"], [{"id": OFF, "accountEnabled": False,
                                          "userType": "Member"}])
        self.assertEqual(body["@odata.context"],
                         "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled,"
                         "userType)")
        err = self.assertGraphError(self.get("/v1.0/users?$select=id,bogus"), 400, "BadRequest")
        self.assertIn("bogus", err["message"])

    def test_filter_eq(self):
        for q, want in ((f"userPrincipalName eq 'ada@{D}'", [USERS["ada"]]),
                        (f"userPrincipalName eq 'ADA@{D.upper()}'", [USERS["ada"]]),
                        ("mail eq 'gail@fabrikam.com'", [USERS["guest"]]),
                        ("displayName eq 'Dan O''Neil'", [DAN]),
                        ("userType eq 'Guest'", [USERS["guest"]]),
                        ("accountEnabled eq false", [OFF]),
                        (f"id eq '{USERS['bob']}'", [USERS["bob"]]),
                        ("givenName eq 'Dan' and surname eq 'O''Neil'", [DAN]),
                        (f"mail eq 'olga@fabrikam.com' or userPrincipalName eq 'ada@{D}'",
                         [USERS["ada"], OFF]),
                        (f"{EXT} eq '2026-04-20'", [DAN])):
            got = [u["id"] for u in self.users("$filter=" + quote(q))["value"]]
            self.assertEqual(sorted(got), sorted(want), q)

    def test_filter_startswith(self):
        got = self.users("$filter=" + quote("startswith(displayName,'Dan O''N')"))["value"]
        self.assertEqual([u["id"] for u in got], [DAN])
        got = self.users("$filter=" + quote("startswith(userPrincipalName,'load1')") +
                         "&$top=999")["value"]
        self.assertEqual(len(got), 10)
        got = self.users("$filter=" + quote("startswith(surname,'o''') or "
                                            "startswith(givenName,'ZZZ')"))["value"]
        self.assertEqual([u["id"] for u in got], [DAN])
        self.assertGraphError(self.get("/v1.0/users?$filter=" +
                                       quote("startswith(accountEnabled,'t')")), 400,
                              "Request_UnsupportedQuery")

    def test_filter_type_mismatch_and_syntax(self):
        self.assertGraphError(self.get("/v1.0/users?$filter=" +
                                       quote("accountEnabled eq 'true'")), 400)
        self.assertGraphError(self.get("/v1.0/users?$filter=" + quote("displayName eq 'x")),
                              400)
        self.assertGraphError(self.get("/v1.0/users?$filter=" + quote("city2 eq 'x'")), 400,
                              "Request_UnsupportedQuery")

    def test_advanced_queries_need_header_and_count(self):
        for q in ("accountEnabled ne true", "not(accountEnabled eq true)",
                  "endswith(mail,'@fabrikam.com')"):
            path = "/v1.0/users?$filter=" + quote(q)
            err = self.assertGraphError(self.get(path), 400, "Request_UnsupportedQuery")
            self.assertIn("ConsistencyLevel", err["message"])
            self.assertGraphError(self.get(path, headers=ADVANCED), 400,
                                  "Request_UnsupportedQuery")
            self.assertGraphError(self.get(path + "&$count=true"), 400)
            body = self.users("$filter=" + quote(q) + "&$count=true", headers=ADVANCED)
            got = sorted(u["id"] for u in body["value"])
            want = [USERS["guest"], OFF] if "fabrikam" in q else [OFF]
            self.assertEqual(got, sorted(want), q)
            self.assertEqual(body["@odata.count"], len(want))

    def test_count(self):
        self.assertGraphError(self.get("/v1.0/users?$count=true"), 400)
        body = self.users("$count=true&$top=5", headers=ADVANCED)
        self.assertEqual(body["@odata.count"], N_USERS)
        self.assertEqual(len(body["value"]), 5)
        self.assertNotIn("@odata.count", self.users("$top=5"))

    def test_top_limits(self):
        for top in ("0", "1000", "-1"):
            self.assertGraphError(self.get("/v1.0/users?$top=" + top), 400)
        self.assertEqual(len(self.users("$top=999")["value"]), N_USERS)
        self.assertEqual(len(self.users("")["value"]), N_USERS)       # default 100

    def test_paging_follows_next_link_verbatim(self):
        seen = []
        url = "/v1.0/users?$select=id,displayName&$top=4&$filter=" + \
              quote("startswith(displayName,'Load')")
        pages = 0
        while url:
            status, _, body = self.get(url)
            self.assertEqual(status, 200, body)
            self.assertLessEqual(len(body["value"]), 4)
            for u in body["value"]:
                self.assertEqual(set(u), {"id", "displayName"})
            seen += [u["id"] for u in body["value"]]
            link = body.get("@odata.nextLink")
            if link:
                parts = urlsplit(link)
                self.assertEqual(parts.scheme, "https")
                self.assertEqual(parts.port, self.emu.port)
                self.assertIn("$skiptoken=", link)
                url = parts.path + "?" + parts.query
            else:
                url = None
            pages += 1
        self.assertEqual(pages, 7)
        self.assertEqual(len(seen), 25)
        self.assertEqual(len(set(seen)), 25)

    def test_unknown_query_option(self):
        self.assertGraphError(self.get("/v1.0/users?$frobnicate=1"), 400, "BadRequest")

    def test_search_and_orderby(self):
        self.assertGraphError(self.get('/v1.0/users?$search="displayName:dan"'), 400,
                              "Request_UnsupportedQuery")
        got = self.users('$search=' + quote('"displayName:o\'neil"'), headers=ADVANCED)["value"]
        self.assertEqual([u["id"] for u in got], [DAN])
        names = [u["displayName"] for u in
                 self.users("$orderby=displayName%20desc&$top=999")["value"]]
        self.assertEqual(names, sorted(names, key=str.lower, reverse=True))

    # --- one user ------------------------------------------------------------------------

    def test_get_by_id_and_upn(self):
        status, _, body = self.get(f"/v1.0/users/{USERS['ada']}")
        self.assertEqual(status, 200)
        self.assertEqual(body["@odata.context"],
                         "https://graph.microsoft.com/v1.0/$metadata#users/$entity")
        self.assertEqual(set(body) - {"@odata.context"}, DEFAULT_PROPS)
        self.assertNotIn("accountEnabled", body)
        status, _, by_upn = self.get(f"/v1.0/users/ADA@{D}")
        self.assertEqual(by_upn, body)
        status, _, body = self.get(f"/v1.0/users/{OFF}?$select=id,accountEnabled,userType,"
                                   "displayName,onPremisesSyncEnabled")
        self.assertEqual(status, 200)
        self.assertEqual(body["accountEnabled"], False)
        self.assertIsNone(body["onPremisesSyncEnabled"])
        self.assertTrue(body["@odata.context"].endswith(
            "#users(id,accountEnabled,userType,displayName,onPremisesSyncEnabled)/$entity"))

    def test_extension_properties_only_when_selected_and_set(self):
        body = self.get(f"/v1.0/users/{DAN}?$select=id,{EXT}")[2]
        self.assertEqual(body[EXT], "2026-04-20")
        body = self.get(f"/v1.0/users/{USERS['ada']}?$select=id,{EXT}")[2]
        self.assertNotIn(EXT, body)
        self.assertNotIn(EXT, self.get(f"/v1.0/users/{DAN}")[2])

    def test_not_found(self):
        err = self.assertGraphError(self.get(f"/v1.0/users/nobody@{D}"), 404,
                                    "Request_ResourceNotFound")
        self.assertEqual(err["message"], f"Resource 'nobody@{D}' does not exist or one of its "
                                         "queried reference-property objects are not present.")

    def test_dollar_upn_needs_key_syntax(self):
        self.assertGraphError(self.get(f"/v1.0/users/$ops@{D}"), 400)
        status, _, body = self.get(f"/v1.0/users('$ops@{D}')")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], USERS["dollar"])
        status, _, body = self.get(f"/v1.0/users('%24ops%40{D}')?$select=id")
        self.assertEqual((status, body.get("id")), (200, USERS["dollar"]))

    def test_guest_upn_hash_must_be_encoded(self):
        status, _, body = self.get(f"/v1.0/users/gail_fabrikam.com%23EXT%23@{D}")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], USERS["guest"])
        self.assertEqual(body["userPrincipalName"], f"gail_fabrikam.com#EXT#@{D}")
        # an unencoded '#' starts a fragment: the server sees only 'gail_fabrikam.com'
        self.assertGraphError(self.get(f"/v1.0/users/gail_fabrikam.com#EXT#@{D}"), 404,
                              "Request_ResourceNotFound")

    def test_me(self):
        tok = self.emu.token(emutest.DELEGATED_APP, user=f"bob@{D}")
        status, _, body = self.emu.get("/v1.0/me", token=tok)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], USERS["bob"])
        body = self.emu.get("/v1.0/me?$select=id,accountEnabled", token=tok)[2]
        self.assertEqual(body["accountEnabled"], True)
        self.assertGraphError(self.get("/v1.0/me"), 400, "BadRequest")      # app token

    def test_authorization(self):
        reader = self.emu.token(emutest.READER_APP)                  # User.Read.All is enough
        self.assertEqual(self.get("/v1.0/users?$top=1", token=reader)[0], 200)
        none = self.emu.token(emutest.DELEGATED_APP)                 # app token, no roles
        self.assertGraphError(self.get("/v1.0/users", token=none), 403,
                              "Authorization_RequestDenied")
        self.assertGraphError(self.get(f"/v1.0/users/{USERS['ada']}", token=none), 403,
                              "Authorization_RequestDenied")
        basic = self.emu.token(emutest.DELEGATED_APP, user=f"bob@{D}",
                               scopes=["User.ReadBasic.All"])
        self.assertEqual(self.get(f"/v1.0/users/{USERS['ada']}?$select=id,displayName",
                                  token=basic)[0], 200)
        self.assertGraphError(self.get(f"/v1.0/users/{USERS['ada']}?$select=accountEnabled",
                                       token=basic), 403, "Authorization_RequestDenied")

    def test_cost(self):
        self.get("/v1.0/users?$top=1")
        entry = [e for e in self.emu.log() if e["path"].startswith("/v1.0/users?")][-1]
        self.assertEqual(entry["route"], "users.list_users")


class RevokeTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    def test_revoke(self):
        app = self.emu.token()
        victim = self.emu.token(emutest.DELEGATED_APP, user=f"dave@{D}")
        self.assertEqual(self.emu.get("/v1.0/me", token=victim)[0], 200)
        before = self.emu.get(f"/v1.0/users/{USERS['dave']}?$select="
                              "signInSessionsValidFromDateTime", token=app)[2]
        status, _, body = self.emu.post(f"/v1.0/users/{USERS['dave']}/revokeSignInSessions",
                                        token=app)
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"@odata.context":
                                "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
                                "value": True})
        self.assertGraphError(self.emu.get("/v1.0/me", token=victim), 401)
        after = self.emu.get(f"/v1.0/users/{USERS['dave']}?$select="
                             "signInSessionsValidFromDateTime", token=app)[2]
        self.assertGreaterEqual(after["signInSessionsValidFromDateTime"],
                           before["signInSessionsValidFromDateTime"])
        self.assertEqual(self.emu.user_state(USERS["dave"])["signInSessionsValidFromDateTime"],
                         after["signInSessionsValidFromDateTime"])
        time.sleep(1.1)                      # the revoking second itself counts as revoked
        fresh = self.emu.token(emutest.DELEGATED_APP, user=f"dave@{D}")
        self.assertEqual(self.emu.get("/v1.0/me", token=fresh)[0], 200)
        # app tokens are not user sessions
        self.assertEqual(self.emu.get("/v1.0/users?$top=1", token=app)[0], 200)

    def test_authorization(self):
        path = f"/v1.0/users/{USERS['bob']}/revokeSignInSessions"
        self.assertGraphError(self.emu.post(path, token=self.emu.token(emutest.READER_APP)),
                              403, "Authorization_RequestDenied")
        ada = self.emu.token(emutest.DELEGATED_APP, user=f"ada@{D}")
        self.assertGraphError(self.emu.post(path, token=ada), 403, "Authorization_RequestDenied")
        admin = self.emu.token(emutest.DELEGATED_APP, user=f"admin@{D}")   # Auth Admin
        self.assertEqual(self.emu.post(path, token=admin)[0], 200)
        self.assertGraphError(self.emu.post(f"/v1.0/users/{GINA}/revokeSignInSessions",
                                            token=admin), 403, "Authorization_RequestDenied")
        # revoking one's own sessions needs no role, and ends the token that did it
        self.assertEqual(self.emu.post("/v1.0/me/revokeSignInSessions", token=ada)[0], 200)
        self.assertGraphError(self.emu.get("/v1.0/me", token=ada), 401)
        self.assertGraphError(self.emu.post("/v1.0/me/revokeSignInSessions",
                                            token=self.emu.token()), 400)

    def test_unknown_user(self):
        self.assertGraphError(self.emu.post(f"/v1.0/users/nobody@{D}/revokeSignInSessions",
                                            token=self.emu.token()), 404,
                              "Request_ResourceNotFound")


if __name__ == "__main__":
    emutest.main()
