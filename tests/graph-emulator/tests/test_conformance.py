#!/usr/bin/python3
"""Conformance of the emulator's Graph responses (and of the request bodies it accepts) with
Microsoft's v1.0 schema (graphemu/schema.py over shared/reference/graph-metadata): every GET
route on v1.0 and beta, the write routes with valid bodies, and $batch items. A tenant from
graphemu.generator has every method type, sign-ins and tracking extensions. Each problem the
checker finds fails the test, naming the request and the JSON path."""

import os
import sys
from urllib.parse import quote, urlsplit

import emutest
import fido2util

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from graphemu import generator, schema  # noqa: E402

WRITER_APP = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
VERSIONS = ("v1.0", "beta")
METHOD_COLLECTIONS = {          # collection segment → CSDL type
    "passwordMethods": "passwordAuthenticationMethod",
    "emailMethods": "emailAuthenticationMethod",
    "phoneMethods": "phoneAuthenticationMethod",
    "fido2Methods": "fido2AuthenticationMethod",
    "microsoftAuthenticatorMethods": "microsoftAuthenticatorAuthenticationMethod",
    "softwareOathMethods": "softwareOathAuthenticationMethod",
    "temporaryAccessPassMethods": "temporaryAccessPassAuthenticationMethod",
    "windowsHelloForBusinessMethods": "windowsHelloForBusinessAuthenticationMethod",
    "platformCredentialMethods": "platformCredentialAuthenticationMethod",
}
BETA_METHOD_COLLECTIONS = {"hardwareOathMethods": "hardwareOathAuthenticationMethod"}
TYPE_TO_COLLECTION = {"#microsoft.graph." + t: seg
                      for seg, t in {**METHOD_COLLECTIONS, **BETA_METHOD_COLLECTIONS}.items()}


PLATFORM_USER = "5e6f7a8b-0000-4000-8000-0000000000aa"


def tenant():
    t = generator.generate(60, seed=2)      # seed 2: every method type the generator makes
    t.setdefault("settings", {})["throttle"] = {"enabled": False}
    t["users"].append({
        "id": PLATFORM_USER, "userPrincipalName": "mac.user@contoso.onmicrosoft.com",
        "methods": [{"type": "password"},
                    {"type": "platformCredential", "displayName": "MacBook Pro",
                     "keyStrength": "normal", "platform": "macOS"},
                    {"type": "hardwareOath", "displayName": "OATH token",
                     "device": {"serialNumber": "TOTP0001", "manufacturer": "Contoso",
                                "model": "T1", "hashFunction": "hmacsha1",
                                "timeIntervalInSeconds": 30}}]})
    t["apps"].append({"appId": WRITER_APP, "displayName": "policy writer",
                      "secrets": [{"value": "w"}],
                      "applicationPermissions": ["Policy.ReadWrite.AuthenticationMethod",
                                                 "Policy.ReadWrite.SecurityDefaults",
                                                 "Policy.Read.All"]})
    return t


class ConformanceTest(emutest.EmulatorTestCase):
    TENANT = tenant()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.emu.token(emutest.KIOSK_APP)
        cls.writer = cls.emu.token(WRITER_APP)
        # platformCredentialMethods are delegated-only: the operator signed in as the admin.
        cls.operator = cls.emu.token(emutest.DELEGATED_APP,
                                     user=generator.generate(2)["users"][0]["userPrincipalName"])
        state = cls.emu.get("/_emulator/state")[2]
        cls.users = state["users"]
        cls.extensions = sorted({k for u in cls.users for k in u.get("extensions", {})}
                                | {generator.EXTENSION})
        cls.checked = 0

    # --- helpers --------------------------------------------------------------------------

    def conforms(self, method, path, type_name, *, body=None, token=None, status=200,
                 collection=None, extra=()):
        """Send the request, expect @status, check the body against @type_name."""
        version = path.split("/")[1]
        got, headers, resp = self.emu.request(method, path, body=body,
                                              token=token or self.token)
        self.assertEqual(got, status, f"{method} {path}: {resp}")
        if type_name is not None:
            problems = schema.check_response(resp, type_name, collection,
                                             list(extra) + self.extensions, version)
            self.assertEqual(problems, [], f"{method} {path} is not a {type_name}")
            type(self).checked += 1
        return resp

    def collection(self, path, type_name, **kw):
        """A collection and every page of it (following @odata.nextLink)."""
        items = []
        while path:
            resp = self.conforms("GET", path, type_name, collection=True, **kw)
            items += resp["value"]
            link = resp.get("@odata.nextLink")
            path = None
            if link:
                u = urlsplit(link)
                path = u.path + ("?" + u.query if u.query else "")
        return items

    def uid(self, pred):
        for u in self.users:
            if pred(u):
                return u["id"]
        self.fail("the generated tenant has no such user")

    # --- users ------------------------------------------------------------------------------

    def test_users(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                users = self.collection(f"/{v}/users", "user")
                self.assertEqual(len(users), len(self.users))
                self.collection(f"/{v}/users?$select=id,displayName,accountEnabled&$top=7",
                                "user")
                self.collection(f"/{v}/users?$filter=" + quote("accountEnabled eq false"),
                                "user")
                for u in self.users[:8]:
                    self.conforms("GET", f"/{v}/users/{u['id']}", "user")
                    upn = quote(u["userPrincipalName"], safe="@")
                    self.conforms("GET", f"/{v}/users/{upn}?$select=id,displayName,"
                                         "userPrincipalName,accountEnabled,userType,"
                                         "onPremisesSyncEnabled", "user")
                    self.conforms("GET", f"/{v}/users/{u['id']}?$select=id,"
                                         f"{generator.EXTENSION}", "user")

    def test_me(self):
        admin = self.users[0]["userPrincipalName"]
        token = self.emu.token(emutest.DELEGATED_APP, user=admin)
        for v in VERSIONS:
            self.conforms("GET", f"/{v}/me", "user", token=token)
            self.conforms("GET", f"/{v}/me/authentication/methods", "authenticationMethod",
                          token=token, collection=True)

    # --- authentication methods -------------------------------------------------------------

    def test_every_method_of_every_user(self):
        seen = set()
        for v in VERSIONS:
            for u in self.users:
                methods = self.collection(f"/{v}/users/{u['id']}/authentication/methods",
                                          "authenticationMethod")
                for m in methods:
                    seen.add(m["@odata.type"])
                    seg = TYPE_TO_COLLECTION[m["@odata.type"]]
                    self.conforms("GET", f"/{v}/users/{u['id']}/authentication/methods/{m['id']}",
                                  "authenticationMethod")
                    token = self.operator if seg == "platformCredentialMethods" else None
                    self.conforms("GET", f"/{v}/users/{u['id']}/authentication/{seg}/{m['id']}",
                                  "authenticationMethod", token=token)
        # The tenant must exercise every method type.
        self.assertEqual(seen, set(TYPE_TO_COLLECTION))

    def test_method_collections(self):
        for u in self.users[:12] + [u for u in self.users if u["id"] == PLATFORM_USER]:
            for v in VERSIONS:
                colls = dict(METHOD_COLLECTIONS, **(BETA_METHOD_COLLECTIONS if v == "beta"
                                                    else {}))
                for seg, t in colls.items():
                    token = self.operator if seg == "platformCredentialMethods" else None
                    with self.subTest(user=u["userPrincipalName"], version=v, collection=seg):
                        self.collection(f"/{v}/users/{u['id']}/authentication/{seg}", t,
                                        token=token)

    def test_sign_in_preferences_beta(self):
        uid = self.users[2]["id"]
        self.conforms("GET", f"/beta/users/{uid}/authentication/signInPreferences",
                      "signInPreferences")

    def test_creation_options(self):
        uid = self.uid(lambda u: u.get("accountEnabled", True) and u.get("userType") != "Guest"
                       and not u.get("directoryRoles"))
        for v, suffix in (("v1.0", ""), ("beta", ""), ("beta", "(challengeTimeoutInMinutes=10)")):
            self.conforms("GET", f"/{v}/users/{uid}/authentication/fido2Methods/"
                                 f"creationOptions{suffix}", "webauthnCredentialCreationOptions")

    # --- writes with valid bodies -----------------------------------------------------------

    def member(self, n):
        """The n-th enabled member without roles (different tests write to different users)."""
        members = [u for u in self.users if u.get("accountEnabled", True)
                   and u.get("userType", "Member") == "Member" and not u.get("directoryRoles")]
        return members[n]

    def test_register_fido2(self):
        for n, v in enumerate(VERSIONS):
            uid = self.member(10 + n)["id"]
            opts = self.conforms("GET", f"/{v}/users/{uid}/authentication/fido2Methods/"
                                        "creationOptions", "webauthnCredentialCreationOptions")
            cred = fido2util.make_credential(opts, display_name="YubiKey 5 NFC 1234")
            target = f"POST /{v}/users/{uid}/authentication/fido2Methods"
            self.assertEqual(schema.check_request(target, cred.body), [], target)
            created = self.conforms("POST", target.split(" ", 1)[1], "fido2AuthenticationMethod",
                                    body=cred.body, status=201)
            self.assertNotIn("publicKeyCredential", created)      # write-only

    def test_create_tap(self):
        for n, v in enumerate(VERSIONS):
            uid = self.member(12 + n)["id"]
            body = {"lifetimeInMinutes": 60, "isUsableOnce": True}
            target = f"POST /{v}/users/{uid}/authentication/temporaryAccessPassMethods"
            self.assertEqual(schema.check_request(target, body), [], target)
            self.conforms("POST", target.split(" ", 1)[1],
                          "temporaryAccessPassAuthenticationMethod", body=body, status=201)
            self.collection(f"/{v}/users/{uid}/authentication/temporaryAccessPassMethods",
                            "temporaryAccessPassAuthenticationMethod")

    def test_create_phone_method(self):
        uid = self.member(14)["id"]
        body = {"phoneNumber": "+1 2065550199", "phoneType": "mobile"}
        self.assertEqual(schema.check(body, "phoneAuthenticationMethod"), [])
        self.conforms("POST", f"/v1.0/users/{uid}/authentication/phoneMethods",
                      "phoneAuthenticationMethod", body=body, status=201)

    def test_tracking_patch(self):
        uid = self.member(15)["id"]
        body = {generator.EXTENSION: "2026-04-20T10:15:30Z", "employeeId": "K-42"}
        target = f"PATCH /v1.0/users/{uid}"
        self.assertEqual(schema.check_request(target, body, extra_props=self.extensions), [])
        self.conforms("PATCH", f"/v1.0/users/{uid}", None, body=body, status=204)
        self.conforms("GET", f"/v1.0/users/{uid}?$select=id,employeeId,{generator.EXTENSION}",
                      "user")

    def test_group_membership(self):
        gid = generator.TRACKING_GROUP
        uid = self.member(16)["id"]
        body = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"}
        target = f"POST /v1.0/groups/{gid}/members/$ref"
        self.assertEqual(schema.check_request(target, body), [])
        self.conforms("POST", f"/v1.0/groups/{gid}/members/$ref", None, body=body, status=204)
        for v in VERSIONS:
            self.collection(f"/{v}/groups", "group")
            self.conforms("GET", f"/{v}/groups/{gid}", "group")
            self.collection(f"/{v}/groups/{gid}/members", "directoryObject")

    def test_revoke_sign_in_sessions(self):
        uid = self.member(17)["id"]
        for v in VERSIONS:
            self.conforms("POST", f"/{v}/users/{uid}/revokeSignInSessions", "Edm.Boolean")

    # --- policies, reports, sign-ins ---------------------------------------------------------

    def test_policies(self):
        for v in VERSIONS:
            policy = self.conforms("GET", f"/{v}/policies/authenticationMethodsPolicy",
                                   "authenticationMethodsPolicy")
            for cfg in policy["authenticationMethodConfigurations"]:
                self.conforms("GET", f"/{v}/policies/authenticationMethodsPolicy/"
                                     f"authenticationMethodConfigurations/{cfg['id']}",
                              "authenticationMethodConfiguration")
            self.conforms("GET", f"/{v}/policies/identitySecurityDefaultsEnforcementPolicy",
                          "identitySecurityDefaultsEnforcementPolicy")

    def test_policy_writes(self):
        tap = {"@odata.type":
               "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
               "defaultLifetimeInMinutes": 60, "isUsableOnce": False}
        self.assertEqual(schema.check(tap, "authenticationMethodConfiguration"), [])
        self.conforms("PATCH", "/v1.0/policies/authenticationMethodsPolicy/"
                               "authenticationMethodConfigurations/TemporaryAccessPass", None,
                      body=tap, token=self.writer, status=204)
        sd = {"isEnabled": False}
        self.assertEqual(schema.check(sd, "identitySecurityDefaultsEnforcementPolicy"), [])
        self.conforms("PATCH", "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", None,
                      body=sd, token=self.writer, status=204)

    def test_reports(self):
        for v in VERSIONS:
            details = self.collection(f"/{v}/reports/authenticationMethods/"
                                      "userRegistrationDetails", "userRegistrationDetails")
            for d in details[:5]:
                self.conforms("GET", f"/{v}/reports/authenticationMethods/"
                                     f"userRegistrationDetails/{d['id']}",
                              "userRegistrationDetails")
            self.conforms("GET", f"/{v}/reports/authenticationMethods/usersRegisteredByMethod"
                                 "(includedUserTypes='all',includedUserRoles='all')",
                          "userRegistrationMethodSummary")
            self.conforms("GET", f"/{v}/reports/authenticationMethods/usersRegisteredByFeature"
                                 "(includedUserTypes='all',includedUserRoles='all')",
                          "userRegistrationFeatureSummary")

    def test_sign_ins(self):
        for v in VERSIONS:
            items = self.collection(f"/{v}/auditLogs/signIns", "signIn")
            self.assertTrue(items)
            self.collection(f"/{v}/auditLogs/signIns?$filter=" +
                            quote("clientAppUsed eq 'IMAP4'"), "signIn")

    # --- $batch -----------------------------------------------------------------------------

    def test_batch_items(self):
        u = self.users[3]["id"]
        requests = [
            {"id": "1", "method": "GET", "url": f"/users/{u}", "type": "user"},
            {"id": "2", "method": "GET", "url": f"/users/{u}/authentication/methods",
             "type": "authenticationMethod"},
            {"id": "3", "method": "GET",
             "url": "/policies/identitySecurityDefaultsEnforcementPolicy",
             "type": "identitySecurityDefaultsEnforcementPolicy"},
            {"id": "4", "method": "GET", "url": "/users?$top=3", "type": "user"},
        ]
        types = {r["id"]: r.pop("type") for r in requests}
        status, _, body = self.emu.post("/v1.0/$batch", {"requests": requests},
                                        token=self.token)
        self.assertEqual(status, 200, body)
        self.assertEqual(sorted(r["id"] for r in body["responses"]), ["1", "2", "3", "4"])
        for item in body["responses"]:
            self.assertEqual(item["status"], 200, item)
            self.assertEqual(schema.check_response(item["body"], types[item["id"]]), [],
                             f"$batch item {item['id']}")

    def test_zz_checked_enough(self):
        # Runs last (alphabetical): the other tests checked a good number of responses.
        self.assertGreater(type(self).checked, 100)


if __name__ == "__main__":
    emutest.main()
